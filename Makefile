# Stasis: `make run` tries it on this machine, `make test` runs every test.
# Both install what they need first (CRIU, a local Kubernetes control plane); a second run reuses
# the cache in $(STASIS_CACHE).
export STASIS_CACHE ?= $(HOME)/.cache/stasis
MVN ?= mvn -B -q
JAR := operator/target/stasis.jar

.PHONY: run test deps criu control-plane test-tools build crds clean

run: deps build
	java -cp "$(JAR):$$(cat operator/target/classpath.txt)" dev.stasis.cli.Main local --state-dir .stasis

# Not quiet: Surefire's and Failsafe's "Tests run:" lines are the record of what ran.
test: deps
	mvn -B verify

deps: criu control-plane test-tools

criu:
	scripts/install-criu.sh

control-plane:
	scripts/control-plane.sh install

test-tools:
	scripts/install-test-tools.sh

build:
	$(MVN) package -DskipTests

# Regenerates crds/ from the API classes; CrdDriftTest fails while they differ.
crds: build
	cp operator/target/classes/META-INF/fabric8/*-v1.yml crds/

clean:
	$(MVN) clean
