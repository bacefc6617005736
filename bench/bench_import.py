"""The ``import_perf_script`` benchmark: ``memtrace import`` of a large perf script.

The input is synthesised with the line shapes of the real sample in
``../shared/real-traces/`` (a 6.18 ``perf script`` of a memcg OOM): a few processes
that mmap (enter and exit), fault pages in (``exceptions:page_fault_user`` followed by
the ``kmem:rss_stat`` it raises), move their break, are throttled by memcg reclaim
(``vmscan:mm_vmscan_memcg_reclaim_begin``/``_end``) and one OOM kill
(``oom:mark_victim``), in the proportions of the sample (about half faults, half
rss_stat). ``lines_per_s`` is the median over ``runs`` of lines imported per second
of wall time, trace written to a temporary file; ``ns_per_line`` its inverse.
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

BENCH_LINES = 1_000_000
PAGE = 4096


def _line(comm: str, pid: int, cpu: int, ts_us: int, event: str, payload: str) -> str:
    """One line in perf script's default layout (comm, tid, [cpu], time, event)."""
    return (f"{comm:>16} {pid:>7} [{cpu:03d}] {ts_us // 1_000_000:>5}.{ts_us % 1_000_000:06d}: "
            f"{event:>38}: {payload}\n")


def write_perf_script(out: TextIO, nr_lines: int) -> int:
    """Write about ``nr_lines`` lines of a synthetic perf script; returns the count."""
    written = 0
    ts = 150_000_000  # microseconds since boot
    procs = [(4724 + i, "python3", 1_000_000_000 + 7919 * i, 0x7F0000000000 + (i << 32)) for i in range(4)]
    arena_bytes = 2 << 20
    anon = {pid: 0 for pid, *_ in procs}
    cursor = {pid: base for pid, _, _, base in procs}
    arena_end = {pid: base for pid, _, _, base in procs}
    k = 0
    while written < nr_lines:
        pid, comm, mm_id, _ = procs[k % len(procs)]
        cpu = k % 2
        k += 1
        ts += 3
        if cursor[pid] >= arena_end[pid]:  # a new 2 MiB arena, as the sample's python3 makes
            out.write(_line(comm, pid, cpu, ts, "syscalls:sys_enter_mmap",
                            f"addr: 0x00000000, len: 0x{arena_bytes:08x}, prot: 0x00000003, flags: 0x00000022, "
                            "fd: 0xffffffff, off: 0x00000000"))
            out.write(_line(comm, pid, cpu, ts + 1, "syscalls:sys_exit_mmap", f"0x{cursor[pid]:x}"))
            arena_end[pid] = cursor[pid] + arena_bytes
            written += 2
            continue
        if k % 4099 == 0:
            out.write(_line(comm, pid, cpu, ts, "syscalls:sys_enter_brk", f"brk: 0x{0x55CCC52AB000 + k * PAGE:08x}"))
            written += 1
            continue
        if k % 1031 == 0:
            out.write(_line(comm, pid, cpu, ts, "vmscan:mm_vmscan_memcg_reclaim_begin",
                            "order=0 gfp_flags=GFP_HIGHUSER_MOVABLE"))
            out.write(_line(comm, pid, cpu, ts + 40, "vmscan:mm_vmscan_memcg_reclaim_end", "nr_reclaimed=50"))
            written += 2
            continue
        addr = cursor[pid]
        cursor[pid] += PAGE
        anon[pid] += PAGE
        out.write(_line(comm, pid, cpu, ts, "exceptions:page_fault_user",
                        f"address=0x{addr:x} ip=0x7f73a8103b03 error_code=0x6"))
        out.write(_line(comm, pid, cpu, ts + 2, "kmem:rss_stat",
                        f"mm_id={mm_id} curr=1 type=MM_ANONPAGES size={anon[pid]}B"))
        written += 2
    out.write(_line("python3", 4847, 1, ts + 10, "oom:mark_victim",
                    "pid=4725 comm=python3 total-vm=33000kB anon-rss=23168kB file-rss:6628kB shmem-rss:0kB "
                    "uid=0 pgtables=100kB oom_score_adj=300"))
    return written + 1


def import_perf_script(runs: int) -> dict[str, Any]:
    from memtrace.analysis.importers import import_trace

    times: list[float] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.perf-script.txt"
        with open(src, "w") as f:
            lines = write_perf_script(f, BENCH_LINES)
        out = Path(tmp) / "big.mtrace"
        result = import_trace(src, out)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            result = import_trace(src, out)
            times.append(time.perf_counter() - start)
        if result.lines != lines:
            problems.append(f"imported {result.lines} lines, wrote {lines}")
        if result.unknown_lines:
            problems.append(f"{result.unknown_lines} lines not recognised")
        trace_bytes = result.trace_bytes
        gz = Path(tmp) / "big.perf-script.txt.gz"
        with open(src, "rb") as f, gzip.open(gz, "wb", compresslevel=1) as g:
            g.write(f.read())
        start = time.perf_counter()
        gz_result = import_trace(gz, out)
        gz_s = time.perf_counter() - start
        if gz_result.lines != lines:
            problems.append(f"gzip input: imported {gz_result.lines} lines, wrote {lines}")
    median = statistics.median(times)
    return {
        "lines": lines,
        "lines_per_s": round(lines / median),
        "ns_per_line": round(median * 1e9 / lines),
        "seconds": round(median, 4),
        "gzip_lines_per_s": round(lines / gz_s),
        "events": sum(result.events.values()),
        "trace_bytes": trace_bytes,
        "runs": runs,
        "runs_s": [round(t, 4) for t in times],
        "problems": problems,
    }
