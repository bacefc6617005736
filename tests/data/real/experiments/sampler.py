#!/usr/bin/env python3
"""sampler.py CGROUP_DIR OUT.csv STOP_FILE [PERIOD_MS]: sample a memory cgroup v1.

Every PERIOD_MS (10) writes one CSV row: t_ms (since the sampler started),
memory.usage_in_bytes, memory.failcnt, the memory.stat lines of STAT_KEYS (bytes)
and Dirty/Writeback of /proc/meminfo (kB, machine-wide), until STOP_FILE exists
or the cgroup is gone (at most 900 s). Runs outside the cgroup. Writes
"memtrace-real: sampler-t0" to /dev/kmsg at t_ms = 0, so the dmesg time of that
line (the clock of perf script too) is the CSV's time origin.
"""
import os
import sys
import time

STAT_KEYS = ["cache", "dirty", "writeback", "rss", "mapped_file", "inactive_file", "active_file",
             "total_cache", "total_dirty", "total_writeback", "total_rss", "total_mapped_file",
             "total_inactive_file", "total_active_file"]


def read(path):
    with open(path) as f:
        return f.read()


def main():
    cg, out, stop = sys.argv[1:4]
    period = (float(sys.argv[4]) if len(sys.argv) > 4 else 10.0) / 1000
    t0 = time.monotonic()
    nxt = t0
    try:  # ties t_ms = 0 to the dmesg (and perf) clock
        with open("/dev/kmsg", "w") as k:
            k.write(f"memtrace-real: sampler-t0 {os.path.basename(cg)}\n")
    except OSError:
        pass
    with open(out, "w") as f:
        f.write(",".join(["t_ms", "epoch_s", "usage_in_bytes", "failcnt", *STAT_KEYS,
                          "meminfo_dirty_kb", "meminfo_writeback_kb"]) + "\n")
        while not os.path.exists(stop) and time.monotonic() - t0 < 900:
            try:
                usage = read(f"{cg}/memory.usage_in_bytes").strip()
                failcnt = read(f"{cg}/memory.failcnt").strip()
                stat = dict(line.split() for line in read(f"{cg}/memory.stat").splitlines())
            except OSError:
                break
            mi = {}
            for line in read("/proc/meminfo").splitlines():
                k, v = line.split(":", 1)
                if k in ("Dirty", "Writeback"):
                    mi[k] = v.split()[0]
            t = time.monotonic()
            row = [f"{(t - t0) * 1000:.1f}", f"{time.time():.3f}", usage, failcnt]
            row += [stat.get(k, "") for k in STAT_KEYS]
            row += [mi.get("Dirty", ""), mi.get("Writeback", "")]
            f.write(",".join(row) + "\n")
            f.flush()
            nxt += period
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()


if __name__ == "__main__":
    main()
