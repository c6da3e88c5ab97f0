# Stasis: `make run` tries it on this machine, `make test` runs every test, `make bench` measures it
# against the by-hand CRIU pipeline (BENCHMARKS.md).
# All three install what they need first (CRIU, a local Kubernetes control plane; `make test` a real
# node too); a second run reuses the cache in $(STASIS_CACHE).
export STASIS_CACHE ?= $(HOME)/.cache/stasis
MVN ?= mvn -B -q
JAR := operator/target/stasis.jar
# `make images IMAGE_REGISTRY=https://registry.example.com/stasis` pushes the images there too.
IMAGE_REGISTRY ?=
# `make run NODES=2`: a second agent as node local-b (its own work folder), to move work between nodes.
NODES ?= 1

.PHONY: run cluster test bench deps criu control-plane node test-tools mpi-workloads helm build crds images clean

run: deps build
	java -jar $(JAR) local --state-dir .stasis --nodes $(NODES)

# A real one-node Kubernetes cluster on this machine (kubelet, containerd, a registry) with Stasis installed
# by Helm from its own images (scripts/cluster.sh); in the foreground until Ctrl-C. Kubeconfig:
# .stasis/node/kubeconfig.
cluster: helm build
	scripts/cluster.sh

# Not quiet: Surefire's and Failsafe's "Tests run:" lines are the record of what ran.
test: deps node
	mvn -B verify

# 6–15 minutes; rewrites BENCHMARKS.md and bench/results.json. Not part of `make test`.
bench:
	MVN="$(MVN)" bench/run.sh

deps: criu control-plane test-tools mpi-workloads helm

criu:
	scripts/install-criu.sh

control-plane:
	scripts/control-plane.sh install

# The real node of the pod tests (kubelet, containerd, ...): scripts/node.sh and docs/real-node.md.
node: criu control-plane test-tools
	scripts/node.sh install

test-tools:
	scripts/install-test-tools.sh
	scripts/install-dashboard-check.sh
	scripts/install-kstatus.sh

# LAMMPS and Open MPI from Debian in a private prefix: the real MPI jobs the tests checkpoint.
mpi-workloads:
	scripts/install-mpi-workloads.sh

helm:
	scripts/install-helm.sh

build:
	$(MVN) package -DskipTests

# stasis-operator, stasis-agent and the demo stasis-counter, without a container engine (images/build.sh):
# an OCI image layout in .stasis/images, pushed to $(IMAGE_REGISTRY) when it is set.
images: build
	images/build.sh $(if $(IMAGE_REGISTRY),--push $(IMAGE_REGISTRY))

# Regenerates crds/ from the API classes, and the copies the Helm chart and kustomize install;
# CrdDriftTest and PackagedCrdsTest fail while they differ.
crds: build
	cp operator/target/classes/META-INF/fabric8/*-v1.yml crds/
	cp crds/*-v1.yml charts/stasis/crds/
	cp crds/*-v1.yml config/crd/

clean:
	$(MVN) clean
