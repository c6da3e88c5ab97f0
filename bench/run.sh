#!/usr/bin/env bash
# Benchmarks: Stasis against the by-hand CRIU pipeline, measured in one run (see BENCHMARKS.md).
#
#   bench/run.sh [--sizes 64,256,1024,4096] [--repetitions 5] [--large-repetitions 3] [--huge-repetitions 1]
#                [--checkpoints 1000] [--control-plane-repetitions 3] [--no-write] [--frozen-only]
#
# Installs what it needs (CRIU, the local control plane) like `make test`, builds, then starts a
# kube-apiserver, an S3 server, the operator and an agent, and measures. Prints a table and
# rewrites BENCHMARKS.md and bench/results.json. Needs root (CRIU does), curl, tar and zstd. Its storage
# stores whole archives (deduplication: false) whatever the default; bench/dedup-operator.sh measures
# deduplicated checkpoints against them and writes issue 18's targets into BENCHMARKS.md.
# About 10 minutes on a quiet 2-core machine, up to 30 while other work runs (4 GiB needs about
# 12 GiB of RAM and 20 GiB of disk); fewer sizes or repetitions make it quicker.
# BENCH_MAIN runs another benchmark of the same harness (bench/jobs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
MVN="${MVN:-mvn -B -q}"

for tool in curl tar zstd gcc; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done
scripts/install-criu.sh
scripts/control-plane.sh install
# The harness lives with the tests (it reuses their S3 server and workloads); the roles run from
# the jar's runtime class path, as `make run` starts them.
$MVN package -DskipTests
$MVN -pl operator dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt

cd operator
exec java -Dstasis.repoRoot=.. -Dstasis.runtimeClasspath="target/classes:$(cat target/classpath.txt)" \
  -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" "${BENCH_MAIN:-dev.stasis.bench.Benchmark}" "$@"
