# Stasis: `make run` tries it on this machine, `make test` runs every test, `make bench` measures it
# against the by-hand CRIU pipeline (BENCHMARKS.md).
# All three install what they need first (CRIU, a local Kubernetes control plane); a second run reuses
# the cache in $(STASIS_CACHE).
export STASIS_CACHE ?= $(HOME)/.cache/stasis
MVN ?= mvn -B -q
JAR := operator/target/stasis.jar

.PHONY: run test bench deps criu control-plane build crds clean

run: deps build
	java -cp "$(JAR):$$(cat operator/target/classpath.txt)" dev.stasis.cli.Main local --state-dir .stasis

test: deps
	$(MVN) verify

# 6–15 minutes; rewrites BENCHMARKS.md and bench/results.json. Not part of `make test`.
bench:
	MVN="$(MVN)" bench/run.sh

deps: criu control-plane

criu:
	scripts/install-criu.sh

control-plane:
	scripts/control-plane.sh install

build:
	$(MVN) package -DskipTests

# Regenerates crds/ from the API classes; CrdDriftTest fails while they differ.
crds: build
	cp operator/target/classes/META-INF/fabric8/*-v1.yml crds/

clean:
	$(MVN) clean
