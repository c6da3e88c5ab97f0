#!/usr/bin/env bash
# Deduplication on real CRIU dumps (issue 18): runs memchurn (operator/src/test/workloads/memchurn.c)
# with the given MiB (default 256), dumps it 12 times with CRIU (--leave-running): a first
# checkpoint, 9 after 5% of its memory was rewritten in 1 MiB blocks, one after a new mapping of
# 1/16 of it, one after 5% of its pages were rewritten at scattered places; then
# DedupBenchmark --dumps measures what each chunker would upload and store. Needs root (CRIU does)
# and gcc; about 2 minutes and 13x the size in /tmp. Results in bench/dedup.md.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-256}"
scripts/install-criu.sh >/dev/null
criu="${STASIS_CACHE:-$HOME/.cache/stasis}/bin/criu"
mvn -q -B -o package -DskipTests
work=$(mktemp -d /tmp/dedup-criu.XXXXXX)
gcc -O2 -Wall -o "$work/memchurn" operator/src/test/workloads/memchurn.c
setsid "$work/memchurn" "$size" "$work/generation" </dev/null >"$work/memchurn.log" 2>&1 &
pid=$!
cleanup() { kill -KILL "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

await_generation() {
  for _ in $(seq 1 600); do
    [ "$(cat "$work/generation" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  echo "dedup-criu: memchurn did not reach generation $1" >&2
  exit 1
}

dumps=()
dump() {
  local dir="$work/dump-${#dumps[@]}"
  mkdir "$dir"
  "$criu" dump -t "$pid" -D "$dir" --leave-running -o dump.log || { tail -20 "$dir/dump.log" >&2; exit 1; }
  dumps+=("$dir")
}

await_generation 0
dump
generation=0
for signal in USR1 USR1 USR1 USR1 USR1 USR1 USR1 USR1 USR1 USR2 HUP; do
  kill "-$signal" "$pid"
  generation=$((generation + 1))
  await_generation "$generation"
  dump
done
java -Xmx1g -cp "operator/target/test-classes:operator/target/classes:$(cat operator/target/classpath.txt)" \
  dev.stasis.bench.DedupBenchmark --dumps "$pid" "${dumps[@]}"
