#!/usr/bin/env bash
# Jobs as they really run (issue 19), on the real parts bench/run.sh uses: the frozen time of an
# MPI-shaped job over a /dev/shm segment, Stasis against bare `criu dump` in the same run (target:
# within 5%), and a TCP pair with data in flight both ways checkpointed (leaveRunning: false) and
# restored 100 times in a row without a lost byte. Writes bench/jobs.md and the last section of
# BENCHMARKS.md. About 10 minutes.
#
#   bench/jobs.sh [--repetitions 7] [--sizes 0,256] [--cycles 100] [--no-write]
#
# The benchmark is operator/src/test/java/dev/stasis/bench/JobsBenchmark.java. Needs root (CRIU
# does), curl, tar, zstd and gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
MVN="${MVN:-mvn -B -q}"

for tool in curl tar zstd gcc; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done
scripts/install-criu.sh
scripts/control-plane.sh install
$MVN package -DskipTests
$MVN -pl operator dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt

cd operator
exec java -Dstasis.repoRoot=.. -Dstasis.runtimeClasspath="target/classes:$(cat target/classpath.txt)" \
  -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" dev.stasis.bench.JobsBenchmark "$@"
