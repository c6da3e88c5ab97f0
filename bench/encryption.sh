#!/usr/bin/env bash
# Archive encryption throughput (AES-256-GCM segments) on 256 MiB, next to sha256; about 20 seconds.
# The benchmark is operator/src/test/java/dev/stasis/bench/EncryptionBenchmark.java.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -q -B -o package -DskipTests
java -Xmx2g -cp "operator/target/test-classes:operator/target/classes:$(cat operator/target/classpath.txt)" \
  dev.stasis.bench.EncryptionBenchmark
