#!/usr/bin/env bash
# Jobs as they really run (issue 19), on the real parts bench/run.sh uses: the frozen time of an
# MPI-shaped job over a /dev/shm segment, Stasis against bare `criu dump` in the same run (target:
# within 5%), and a TCP pair with data in flight both ways checkpointed (leaveRunning: false) and
# restored 100 times in a row without a lost byte. Writes bench/jobs.md and the last section of
# BENCHMARKS.md. About 10 minutes.
#
#   bench/jobs.sh [--repetitions 7] [--sizes 0,256] [--cycles 100] [--no-write]
#
# The benchmark is operator/src/test/java/dev/stasis/bench/JobsBenchmark.java.
BENCH_MAIN=dev.stasis.bench.JobsBenchmark exec "$(dirname "$0")/run.sh" "$@"
