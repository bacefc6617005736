"""The ``probe_count`` benchmark: a one-liner's throughput over a recorded trace.

The program is ``page_fault { @[pid] = count(); }``, bpftrace's classic "who
faults?" one-liner, compiled by :mod:`memtrace.tracer.oneliner` and run over the
1 GiB first-touch trace (262,144 page faults: bench/run.py's ``first_touch_1gib``
scenario, recorded with :func:`memtrace.api.record` to a temp file once).

Measured:

- ``events_per_s``: page-fault events through the compiled probe per second, the
  trace's batches already in memory (``TraceReader.ordered_batches()`` read once
  up front): what the probe engine itself costs. Median of ``runs`` runs after one
  warm-up, each with a freshly compiled tracer (compiling is not timed; it is
  ``compile_s``).
- ``ns_per_event``: the same rate inverted, so that bench/run.py's "at most" target
  expresses the issue's floor (50 ns = 20 M events/s).
- ``busy_events_per_s``: the same for :data:`BUSY_PROGRAM` (predicate, tuple key,
  histogram), in memory.
- ``with_read_events_per_s``: the same, reading the trace file inside the timed
  region (``memtrace trace FILE -e ...`` minus start-up): decoding dominates.

Checked: the map holds exactly one key, the toucher's pid, counting 262,144.

Run it alone: ``.venv/bin/python bench/run.py --only probe_count``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

PROGRAM = "page_fault { @[pid] = count(); }"
#: A busier program for ``busy_events_per_s``: a predicate, a tuple key with an enum
#: and a string, and a log2 histogram of a computed value.
BUSY_PROGRAM = 'page_fault /write && !major/ { @[comm, vma_kind] = count(); @us = hist(nsecs / 1000); }'
WARMUP_RUNS = 1


def probe_count(runs: int) -> dict[str, Any]:
    """Time the count-by-pid one-liner over the first-touch trace."""
    try:
        from run import FIRST_TOUCH_NR_PAGES, _first_touch_scenario

        from memtrace.api import record
        from memtrace.tracer.oneliner import compile_program
        from memtrace.tracer.probes import run_batches
        from memtrace.tracer.tracefile import TraceReader
    except ImportError as exc:
        reason = f"cannot import memtrace ({exc}); run `make venv` and use .venv/bin/python"
        return {"events_per_s": None, "ns_per_event": None, "runs": runs, "events_per_s_reason": reason,
                "problems": [reason]}

    problems: list[str] = []
    probe_s: list[float] = []
    read_s: list[float] = []
    busy_s: list[float] = []
    compile_s: list[float] = []
    events = 0
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-") as tmp:
        path = Path(tmp) / "first-touch.mtrace"
        try:
            result = record(_first_touch_scenario(), str(path))
            reader = TraceReader(path)
            batches = list(reader.ordered_batches())
        except Exception as exc:  # report, keep the benchmark object whole
            traceback.print_exc(file=sys.stderr)
            reason = f"recording the first-touch trace failed: {type(exc).__name__}: {exc}"
            return {"events_per_s": None, "ns_per_event": None, "runs": runs, "events_per_s_reason": reason,
                    "problems": [reason]}
        events = sum(b.n for b in batches if b.tp.name == "page_fault")
        pids = result.pids
        for i in range(WARMUP_RUNS + runs):
            start = time.perf_counter()
            tracer = compile_program(PROGRAM, registry=reader.registry)
            compiled = time.perf_counter()
            run_batches(tracer, batches)
            done = time.perf_counter()
            counts = dict(tracer.maps["@"])
            if i == 0:
                expected = dict.fromkeys(pids.values(), FIRST_TOUCH_NR_PAGES) if len(pids) == 1 else None
                if expected is not None and counts != expected:
                    problems.append(f"@[pid] = count() gave {counts}, expected {expected}")
                elif sum(counts.values()) != events:
                    problems.append(f"@[pid] = count() counted {sum(counts.values())} events, the trace has {events}")
            if i >= WARMUP_RUNS:
                compile_s.append(compiled - start)
                probe_s.append(done - compiled)
            busy = compile_program(BUSY_PROGRAM, registry=reader.registry)
            start = time.perf_counter()
            run_batches(busy, batches)
            if i >= WARMUP_RUNS:
                busy_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            run_batches(compile_program(PROGRAM, registry=reader.registry), TraceReader(path).ordered_batches())
            if i >= WARMUP_RUNS:
                read_s.append(time.perf_counter() - start)

    median = statistics.median(probe_s)
    return {
        "events_per_s": round(events / median),
        "ns_per_event": round(median / events * 1e9, 3),
        "busy_events_per_s": round(events / statistics.median(busy_s)),
        "with_read_events_per_s": round(events / statistics.median(read_s)),
        "events": events,
        "batches": len(batches),
        "probe_s": round(median, 6),
        "compile_s": round(statistics.median(compile_s), 6),
        "program": PROGRAM,
        "runs": runs,
        "probe_runs_s": [round(s, 6) for s in probe_s],
        "problems": problems,
    }
