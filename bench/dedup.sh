#!/usr/bin/env bash
# Deduplication of successive checkpoints (issue 18): bytes uploaded and stored per chunker and
# chunk size on synthetic CRIU pages images; results in bench/dedup.md. About 5 minutes at the
# default 256 MiB on a 2-core machine; the argument is the memory size in MiB (needs ~3x in heap).
# The benchmark is operator/src/test/java/dev/stasis/bench/DedupBenchmark.java.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -q -B -o package -DskipTests
size="${1:-256}"
java -Xmx$((size * 4 + 512))m -cp "operator/target/test-classes:operator/target/classes:$(cat operator/target/classpath.txt)" \
  dev.stasis.bench.DedupBenchmark "$size"
