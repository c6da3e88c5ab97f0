# Stasis: `make run` tries it on this machine, `make test` runs every test.
# Both install what they need first (CRIU, a local Kubernetes control plane); a second run reuses
# the cache in $(STASIS_CACHE).
export STASIS_CACHE ?= $(HOME)/.cache/stasis
MVN ?= mvn -B -q
JAR := operator/target/stasis.jar

.PHONY: run test deps criu control-plane helm build crds images clean

run: deps build
	java -jar $(JAR) local --state-dir .stasis

test: deps
	$(MVN) verify

deps: criu control-plane helm

criu:
	scripts/install-criu.sh

control-plane:
	scripts/control-plane.sh install

helm:
	scripts/install-helm.sh

build:
	$(MVN) package -DskipTests

# Regenerates crds/ from the API classes, and the copies the Helm chart and kustomize install;
# CrdDriftTest and PackagedCrdsTest fail while they differ.
crds: build
	cp operator/target/classes/META-INF/fabric8/*-v1.yml crds/
	cp crds/*-v1.yml charts/stasis/crds/
	cp crds/*-v1.yml config/crd/

clean:
	$(MVN) clean
