"""The ``oom_leak`` benchmark: simulate and record the built-in oom-leak scenario.

oom-leak is the whole memory-pressure story on a 4 GiB machine: 2.5 GiB of
anonymous memory faulted in, 1 GiB of page cache read and reclaimed by kswapd,
direct reclaim, and an OOM kill. ``seconds`` is the median wall time of
``memtrace.api.record()`` to a temporary file; ``events`` the events recorded.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def oom_leak(runs: int) -> dict[str, Any]:
    from memtrace.api import record

    times: list[float] = []
    events = 0
    kills: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "oom-leak.mtrace"
        record("oom-leak", out)  # warm-up: imports, first-use allocations
        for _ in range(runs):
            start = time.perf_counter()
            result = record("oom-leak", out)
            times.append(time.perf_counter() - start)
            events = sum(result.events.values())
            kills = [k["comm"] for k in result.oom_kills]
    problems = [] if kills == ["leaker"] else [f"expected one OOM kill of leaker, got {kills}"]
    return {
        "seconds": round(statistics.median(times), 4),
        "events": events,
        "runs": runs,
        "runs_s": [round(t, 4) for t in times],
        "problems": problems,
    }
