# Stasis: `make run` tries it on this machine, `make test` runs every test, `make bench` measures it
# against the by-hand CRIU pipeline (BENCHMARKS.md).
# All three install what they need first (CRIU, a local Kubernetes control plane; `make test` a real
# node too); a second run reuses the cache in $(STASIS_CACHE).
export STASIS_CACHE ?= $(HOME)/.cache/stasis
MVN ?= mvn -B -q
JAR := operator/target/stasis.jar
VERSION ?= 0.1.0
# Images are named $(IMAGE_PREFIX)stasis-operator:$(VERSION) and $(IMAGE_PREFIX)stasis-agent:$(VERSION),
# e.g. IMAGE_PREFIX=registry.example.com/stasis/ (push them there, then point the chart at them).
IMAGE_PREFIX ?=
CONTAINER_ENGINE ?= $(shell command -v docker || command -v podman)

.PHONY: run test bench deps criu control-plane node test-tools helm build crds images clean

run: deps build
	java -jar $(JAR) local --state-dir .stasis

# Not quiet: Surefire's and Failsafe's "Tests run:" lines are the record of what ran.
test: deps node
	mvn -B verify

# 6–15 minutes; rewrites BENCHMARKS.md and bench/results.json. Not part of `make test`.
bench:
	MVN="$(MVN)" bench/run.sh

deps: criu control-plane test-tools helm

criu:
	scripts/install-criu.sh

control-plane:
	scripts/control-plane.sh install

# The real node of the pod tests (kubelet, containerd, ...): scripts/node.sh and docs/real-node.md.
node: criu control-plane test-tools
	scripts/node.sh install

test-tools:
	scripts/install-test-tools.sh

helm:
	scripts/install-helm.sh

build:
	$(MVN) package -DskipTests

# Needs docker or podman; everything the images contain is tested without one (AgentImageCriuIT).
images: build
	@test -n "$(CONTAINER_ENGINE)" || { echo "make images needs a container engine (docker or podman); this machine has none" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f images/Dockerfile --target operator -t $(IMAGE_PREFIX)stasis-operator:$(VERSION) .
	$(CONTAINER_ENGINE) build -f images/Dockerfile --target agent -t $(IMAGE_PREFIX)stasis-agent:$(VERSION) .

# Regenerates crds/ from the API classes, and the copies the Helm chart and kustomize install;
# CrdDriftTest and PackagedCrdsTest fail while they differ.
crds: build
	cp operator/target/classes/META-INF/fabric8/*-v1.yml crds/
	cp crds/*-v1.yml charts/stasis/crds/
	cp crds/*-v1.yml config/crd/

clean:
	$(MVN) clean
