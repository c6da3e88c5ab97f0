#!/usr/bin/env bash
# Times placement of 1,000 Restores over 500 NodeProfiles (goal: under a second in total).
# The benchmark is operator/src/test/java/dev/stasis/bench/PlacementBenchmark.java.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -q -B -o package -DskipTests
java -cp "operator/target/test-classes:operator/target/classes:$(cat operator/target/classpath.txt)" \
  dev.stasis.bench.PlacementBenchmark
