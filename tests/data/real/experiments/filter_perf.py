#!/usr/bin/env python3
"""filter_perf.py IN OUT ROOT_PID... : keep the perf script lines of the workload.

Keeps a line if its task (tid) is one of ROOT_PID or was forked (directly or not)
by one of them after the trace started (sched:sched_process_fork), or if its comm
is kswapd* or oom_reaper. Prints per-event counts of the kept lines.
"""
import collections
import re
import sys

LINE = re.compile(r"^\s*(?P<comm>.*?)\s+(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<ts>\d+\.\d+):\s+(?P<event>[\w:]+):")
CHILD = re.compile(r"child_pid=(\d+)")


def main():
    src, dst, *roots = sys.argv[1:]
    keep = {int(r) for r in roots}
    counts = collections.Counter()
    total = unparsed = 0
    with open(src, errors="replace") as fin, open(dst, "w") as fout:
        for line in fin:
            total += 1
            m = LINE.match(line)
            if not m:
                unparsed += 1
                continue
            tid = int(m["tid"])
            comm = m["comm"]
            if tid in keep or comm.startswith("kswapd") or comm == "oom_reaper":
                fout.write(line)
                counts[m["event"]] += 1
                if m["event"] == "sched:sched_process_fork":
                    c = CHILD.search(line)
                    if c:
                        keep.add(int(c.group(1)))
    print(f"filter_perf: {sum(counts.values())} of {total} lines kept ({unparsed} unparsed), roots {roots}")
    for ev, n in sorted(counts.items()):
        print(f"  {n:8d} {ev}")


if __name__ == "__main__":
    main()
