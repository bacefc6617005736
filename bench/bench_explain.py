"""The ``explain_large`` benchmark: ``memtrace explain`` on a 64 GiB machine.

The trace is a 64 GiB machine (16,777,216 page frames) filled with mixed memory by
:data:`SCENARIO`: 20 GiB of private anonymous memory, 16 GiB of page cache nobody
maps, a 4 GiB shared file mapping, 2 GiB of copy-on-write copies of a private file
mapping (and the 2 GiB of cache they replaced), a 6 GiB tmpfs file no process owns,
and 4 GiB forked with half of it copied by the child: about 58 GiB in use, 16.8 M
events. It is recorded once with :func:`memtrace.api.record` (about a minute) and
kept in ``bench/.build/`` under a name that changes with the scenario and the
memtrace version.

Measured, in a fresh Python process per run (so that peak memory is the explain's
alone): ``seconds``, the wall time of opening the trace, folding it up to the
``full`` snapshot and breaking the memory down (:func:`explain_trace`; interpreter
start-up and imports excluded), and ``peak_rss_mib``, that process's peak resident
memory (``VmHWM`` of /proc/self/status). Medians of ``runs`` runs after one warm-up.
``cli_seconds`` is one run of the whole command (``memtrace explain TRACE --at full
--json``), start-up included.

Checked: every kind's parts sum exactly to its /proc/meminfo total, with no
warning; the machine has at least 16 M pages.

Run it alone: ``.venv/bin/python bench/run.py --only explain_large``.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent / ".build"
LABEL = "full"
MIN_PAGES = 16_000_000
WARMUP_RUNS = 1

SCENARIO = """\
name = "explain-large"
description = "a 64 GiB machine full of mixed memory, for the explain_large benchmark"

[machine]
ram = "64GiB"
swap = 0

[[file]]
path = "/data/a.dat"
size = "8GiB"

[[file]]
path = "/data/b.dat"
size = "8GiB"

[[file]]
path = "/data/c.dat"
size = "4GiB"

[[file]]
path = "/data/d.dat"
size = "2GiB"

[[process]]
name = "db"
steps = [
  { op = "mmap", handle = "buffers", length = "20GiB", prot = "rw" },
  { op = "touch", handle = "buffers", write = true },
  { op = "sleep", duration = "60s" },
]

[[process]]
name = "reader"
steps = [
  { op = "read", file = "/data/a.dat" },
  { op = "read", file = "/data/b.dat" },
  { op = "sleep", duration = "60s" },
]

[[process]]
name = "mapper"
steps = [
  { op = "mmap", handle = "c", file = "/data/c.dat", length = "4GiB", prot = "r", shared = true },
  { op = "touch", handle = "c" },
  { op = "mmap", handle = "d", file = "/data/d.dat", length = "2GiB", prot = "rw" },
  { op = "touch", handle = "d", write = true },
  { op = "sleep", duration = "60s" },
]

[[process]]
name = "spool"
steps = [
  { op = "write", file = "/dev/shm/spool", length = "6GiB" },
]

[[process]]
name = "forker"
steps = [
  { op = "mmap", handle = "data", length = "4GiB", prot = "rw" },
  { op = "touch", handle = "data", write = true },
  { op = "fork", child = "child" },
  { op = "sleep", duration = "60s" },
]

[[process]]
name = "child"
forked = true
steps = [
  { op = "touch", handle = "data", write = true, length = "2GiB" },
  { op = "sleep", duration = "60s" },
]

[[process]]
name = "observer"
start = "50s"
steps = [ { op = "snapshot", label = "full" } ]
"""

#: Runs in a child process: explain the trace, print one JSON line.
_CHILD = """
import json, resource, sys, time
from memtrace.analysis.explain import explain_trace
from memtrace.tracer.tracefile import TraceReader
start = time.perf_counter()
res = explain_trace(TraceReader(sys.argv[1]), sys.argv[2])
seconds = time.perf_counter() - start
# VmHWM is this process's own high-water mark: ru_maxrss would also carry the
# parent's, inherited through fork and exec (signal->maxrss).
try:
    with open("/proc/self/status") as status:
        peak_mib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_mib, "mismatches": res.mismatches(),
                  "warnings": list(res.warnings), "parts": len(res.parts),
                  "mem_total": res.meminfo.get("MemTotal", 0)}))
"""


def _trace() -> tuple[Path, dict[str, Any]]:
    """The benchmark's trace, recorded on first use and kept in bench/.build/."""
    import memtrace
    from memtrace.api import record
    from memtrace.kernel.workload import load_scenario

    key = hashlib.sha256((SCENARIO + memtrace.__version__).encode()).hexdigest()[:12]
    path = BUILD_DIR / f"explain-large-{key}.mtrace"
    info: dict[str, Any] = {"trace": str(path), "trace_recorded_now": False}
    if not path.exists():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        toml = BUILD_DIR / "explain-large.toml"
        toml.write_text(SCENARIO)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        start = time.perf_counter()
        record(load_scenario(toml), tmp)
        os.replace(tmp, path)
        info.update(trace_recorded_now=True, record_s=round(time.perf_counter() - start, 1))
    info["trace_bytes"] = path.stat().st_size
    return path, info


def _child(trace: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(trace), LABEL], capture_output=True, text=True,
                          check=False, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"explain failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def explain_large(runs: int) -> dict[str, Any]:
    """Time explain on the 64 GiB trace; see the module docstring."""
    problems: list[str] = []
    try:
        trace, info = _trace()
        _child(trace)  # warm-up: page cache of the trace file, .pyc files
        results = [_child(trace) for _ in range(runs)]
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
        reason = f"{type(e).__name__}: {e}"
        return {"seconds": None, "peak_rss_mib": None, "runs": runs, "seconds_reason": reason,
                "problems": [reason]}
    last = results[-1]
    if last["mismatches"] or last["warnings"]:
        problems.append(f"parts do not sum to meminfo: {last['mismatches']} {last['warnings']}")
    pages = last["mem_total"] // 4096
    machine_pages = (64 << 30) // 4096
    if machine_pages < MIN_PAGES:
        problems.append(f"the machine has {machine_pages} pages, fewer than {MIN_PAGES}")
    cli_start = time.perf_counter()
    memtrace_bin = Path(sys.executable).with_name("memtrace")
    cmd = [str(memtrace_bin), "explain", str(trace), "--at", LABEL, "--json"] if memtrace_bin.exists() else [
        sys.executable, "-m", "memtrace", "explain", str(trace), "--at", LABEL, "--json"]
    cli = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    cli_s = time.perf_counter() - cli_start
    if cli.returncode != 0:
        problems.append(f"memtrace explain exited {cli.returncode}: {cli.stderr.strip()[-300:]}")
    return {
        "seconds": round(statistics.median(r["seconds"] for r in results), 3),
        "peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in results), 1),
        "cli_seconds": round(cli_s, 3),
        "machine_pages": machine_pages,
        "mem_total_pages": pages,
        "parts": last["parts"],
        "runs": runs,
        "runs_s": [round(r["seconds"], 3) for r in results],
        **info,
        "problems": problems,
    }
