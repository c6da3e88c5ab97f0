#!/usr/bin/env bash
# Starts the counter test workload the way CRIU can move it (init and session leader of its own PID
# namespace) and prints the PID to put into a Checkpoint. It counts into the file you name.
#   scripts/demo-workload.sh /tmp/count.txt
set -euo pipefail
out="${1:?usage: $0 <count-file>}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.stasis/workloads/counter"
mkdir -p "$(dirname "$bin")"
[[ -x "$bin" && "$bin" -nt "$repo/operator/src/test/workloads/counter.c" ]] \
  || gcc -O2 -o "$bin" "$repo/operator/src/test/workloads/counter.c"
setsid unshare --pid --fork setsid "$bin" "$out" </dev/null >/dev/null 2>&1 &
launcher=$!
for _ in $(seq 100); do
  inner=$(cat /proc/$launcher/task/*/children 2>/dev/null | tr -d ' ')
  [[ -n "$inner" ]] && { echo "$inner"; exit 0; }
  sleep 0.05
done
echo "the workload did not start" >&2
exit 1
