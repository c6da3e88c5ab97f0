#!/usr/bin/env bash
# Deduplicated checkpoints through the operator and the agent (issue 18), on the real parts
# bench/run.sh uses, against a whole archive of the same process in the same run: a 1 GiB memchurn
# checkpointed whole, then 10 times deduplicated with 5% rewritten between each, then after a new
# mapping and after scattered page writes; the whole archive and the 10th restored, alternating.
# Writes the last section of bench/dedup.md and issue 18's target table into BENCHMARKS.md (a section of
# its own that bench/run.sh keeps). About 10 minutes; needs 4x the size in RAM.
#
#   bench/dedup-operator.sh [--size 1024] [--checkpoints 10] [--restores 2] [--no-write]
#
# The benchmark is operator/src/test/java/dev/stasis/bench/DedupOperatorBenchmark.java.
BENCH_MAIN=dev.stasis.bench.DedupOperatorBenchmark exec "$(dirname "$0")/run.sh" "$@"
