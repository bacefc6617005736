"""The ``report_real`` benchmark: ``memtrace report`` with its what-ifs on the
largest real import.

The recording is tests/data/real/experiments/madvise/madvise-dontneed-L240 (Linux
6.18, cgroup v1: 260,982 lines of perf script; the real kernel killed a bystander,
then the freer; see that folder's README): imported once with its dmesg and
start-of-trace snapshot, then ``memtrace report TRACE -j N`` is run as a user runs
it (a fresh process, what-if replays on every CPU: the unchanged replay's baseline,
each proposed change, each again under the other after-kill assumption).
``seconds`` is the median wall time of that command, ``what_ifs`` the answers it
printed (over both kills), ``lines`` the perf script's lines.
"""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RECORDING = (Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "experiments" / "madvise"
             / "madvise-dontneed-L240")
#: At most this many timed runs (each replays a dozen times).
MAX_RUNS = 3


def report_real(runs: int) -> dict[str, Any]:
    from memtrace.api import import_trace

    perf = RECORDING.with_name(RECORDING.name + ".perf-script.txt.gz")
    with gzip.open(perf, "rb") as f:
        lines = sum(1 for _ in f)
    jobs = os.cpu_count() or 1
    times: list[float] = []
    what_ifs = 0
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "real.mtrace"
        import_trace(perf, trace, dmesg=RECORDING.with_name(RECORDING.name + ".dmesg.txt.gz"),
                     snapshot=RECORDING.with_name(RECORDING.name + ".snapshot.json.gz"))
        cmd = [sys.executable, "-m", "memtrace", "report", str(trace), "--json", "-j", str(jobs)]
        out = ""
        for _ in range(max(1, min(runs, MAX_RUNS))):
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            out = done.stdout
            if done.returncode != 0:
                problems.append(f"memtrace report exited {done.returncode}: {done.stderr.strip()[-200:]}")
                break
    if out:
        import json

        rep = json.loads(out)
        kills = [k["victim"]["comm"] for k in rep["kills"]]
        what_ifs = sum(len(k["what_if"]) for k in rep["kills"])
        if kills != ["bystander", "freer"]:
            problems.append(f"expected the kills of bystander then freer, got {kills}")
        if not all((k.get("what_if_baseline") or {}).get("reproduces") for k in rep["kills"]):
            problems.append("the unchanged replay does not reproduce the recording")
    return {
        "lines": lines,
        "seconds": round(statistics.median(times), 3) if times else None,
        "what_ifs": what_ifs,
        "jobs": jobs,
        "runs": len(times),
        "runs_s": [round(t, 3) for t in times],
        "problems": problems,
    }
