#!/usr/bin/env python3
"""CPU-seconds per agent thread in each 1 GiB repetition, from bench/profile-agent.sh's output.

    bench/thread-cpu.py OUT_DIR

Threads are grouped by name with numbers blanked (zstd's native workers carry the name of the thread
that started them). A thread's CPU in a phase is its last reading in the phase minus its last
reading before it (its first reading, for the first phase; 0 for a thread started in the phase).
"""
import collections
import re
import sys

out = sys.argv[1]
marks = dict(line.split() for line in open(f"{out}/marks.txt"))
phases = [("incompressible", float(marks["compressible-start"])), ("compressible", float(marks["end"]))]

readings = collections.defaultdict(list)  # thread id -> [(time, name, cpu seconds)]
for line in open(f"{out}/threads.txt"):
    fields = line.split()
    if len(fields) == 5:
        readings[fields[1]].append((float(fields[0]), fields[2], (int(fields[3]) + int(fields[4])) / 100))

for index, (phase, end) in enumerate(phases):
    start = phases[index - 1][1] if index else float("-inf")
    used = collections.Counter()
    for series in readings.values():
        inside = [r for r in series if start <= r[0] < end]
        if not inside:
            continue
        before = [r for r in series if r[0] < start]
        baseline = before[-1][2] if before else (series[0][2] if index == 0 else 0)
        used[re.sub(r"\d+", "N", inside[-1][1])] += inside[-1][2] - baseline
    print(f"{phase}: {sum(used.values()):.2f} CPU-seconds")
    for name, seconds in used.most_common():
        if seconds >= 0.01:
            print(f"  {seconds:6.2f}  {name}")
