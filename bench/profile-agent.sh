#!/usr/bin/env bash
# Profiles the agent through one 1 GiB checkpoint and restore of each kind (see bench/analysis.md,
# "Where the agent's CPU goes"):
#
#   bench/profile-agent.sh OUT_DIR
#
# Runs bench/run.sh --sizes 1024 --large-repetitions 1 --no-write and, while the 1 GiB repetitions
# run, `perf record -g` on the agent (the PID the bench wrote, nothing found by name) and the CPU
# time of each of its threads four times a second. Writes OUT_DIR/{bench.log,perf.data,threads.txt,
# marks.txt}; then: perf report -i OUT_DIR/perf.data --no-children --sort comm,sym, and
# bench/thread-cpu.py OUT_DIR for CPU-seconds per thread and kind of memory. Needs root and perf.
set -euo pipefail
out=$(realpath -m "${1:?usage: bench/profile-agent.sh OUT_DIR}")
mkdir -p "$out"
cd "$(dirname "$0")/.."
pidfile=operator/target/bench/logs/agent.pid
rm -f "$pidfile"
bench/run.sh --sizes 1024 --large-repetitions 1 --checkpoints 20 --control-plane-repetitions 1 --no-write \
  >"$out/bench.log" 2>&1 &
bench=$!
until_logged() { until grep -q "$1" "$out/bench.log"; do kill -0 "$bench" || exit 1; sleep 0.5; done; }
until_logged "1024MiB-incompressible: repetition"
agent=$(cat "$pidfile")
perf record -F 199 -g -p "$agent" -o "$out/perf.data" >"$out/perf.log" 2>&1 &
perf=$!
while kill -0 "$agent" 2>/dev/null; do
  for task in /proc/"$agent"/task/*; do
    # time, thread id, name, utime and stime in clock ticks
    echo "$(date +%s.%N) ${task##*/} $(tr ' ' _ <"$task/comm") $(cut -d' ' -f14,15 "$task/stat")"
  done 2>/dev/null
  sleep 0.25
done >"$out/threads.txt" &
until_logged "1024MiB-compressible: repetition"
echo "compressible-start $(date +%s.%N)" >"$out/marks.txt"
until_logged "Checkpoints at once"
echo "end $(date +%s.%N)" >>"$out/marks.txt"
jcmd "$agent" Compiler.perfmap >/dev/null # JIT-compiled methods' names for perf
kill -INT "$perf"
wait "$perf" || true
wait "$bench"
