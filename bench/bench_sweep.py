"""The ``sweep`` benchmark: 64 replays of oom-leak on Dask, against the same serially.

oom-leak is recorded once; the sweep varies ``vm.swappiness`` over 64 values
(0:126:2; the machine has no swap, so every replay does the same work, ~1.5 M
events each). Measured in one run, on the same machine state:

- ``serial_seconds``: the 64 cells through ``SerialRunner`` (one process, one after
  another);
- ``seconds``: the 64 cells on a ``LocalCluster`` of 2 single-threaded worker
  processes (``DaskRunner(workers=2)``), cluster start-up excluded
  (``cluster_start_s`` says what it costs);
- ``replays_per_s`` and ``speedup`` (serial over Dask; the target is >= 1.7 on 2
  cores), and ``equal``: every cell's result equals its serial twin.

Run it alone: ``.venv/bin/python bench/run.py --only sweep``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

REPLAYS = 64


def sweep(runs: int) -> dict[str, Any]:
    from memtrace.api import record
    from memtrace.replay.sweep import DaskRunner, SerialRunner, SweepTarget, parse_axis, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "oom-leak.mtrace"
        record("oom-leak", trace)
        target = SweepTarget.from_trace(trace)
        axes = [parse_axis(f"vm.swappiness=0:{2 * (REPLAYS - 1)}:2")]
        start = time.perf_counter()
        serial = run_sweep(target, axes, SerialRunner())
        serial_s = time.perf_counter() - start
        start = time.perf_counter()
        with DaskRunner(workers=2) as runner:
            cluster_s = time.perf_counter() - start
            start = time.perf_counter()
            on_dask = run_sweep(target, axes, runner)
            dask_s = time.perf_counter() - start
    problems = [] if on_dask == serial else ["a Dask cell differs from its serial replay"]
    kills = {r.outcome for r in serial.results}
    if kills != {"kill leaker"}:
        problems.append(f"expected every replay to kill leaker, got {sorted(kills)}")
    return {
        "replays": REPLAYS,
        "seconds": round(dask_s, 3),
        "replays_per_s": round(REPLAYS / dask_s, 2),
        "serial_seconds": round(serial_s, 3),
        "speedup": round(serial_s / dask_s, 2),
        "seconds_per_serial_second": round(dask_s / serial_s, 3),
        "cluster_start_s": round(cluster_s, 2),
        "workers": 2,
        "equal": on_dask == serial,
        "runs": 1,
        "problems": problems,
    }
