"""The ``export_parquet`` benchmark: a 10-million-event trace as Parquet tables.

The trace is bench_trace_io's synthetic first-touch stream (page faults in slices,
an rss_stat per slice), written once. Measured, in a fresh subprocess per run so
memory is the export's own:

- ``events_per_s``: events exported by ``memtrace.analysis.export.tables.export_tables``
  (read, converted, encoded and written as zstd Parquet), median of ``runs``;
- ``peak_rss_mib``: the subprocess's peak RSS (VmHWM) for the 10 M-event trace, and
  ``peak_rss_short_mib`` for a trace a quarter as long: streaming means the two are
  about equal (memory does not grow with the trace);
- ``parquet_bytes``: the size of the tables written.

Run it alone: ``.venv/bin/python bench/run.py --only export_parquet``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_trace_io import TRACE_IO_EVENTS, _synthetic_writer

_EXPORT = r"""
import json, sys, time
from memtrace.analysis.export.tables import export_tables
import pyarrow, pyarrow.parquet  # imported before the clock starts
start = time.perf_counter()
result = export_tables(sys.argv[1], sys.argv[2], "parquet")
elapsed = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"events": result.total_rows, "seconds": elapsed, "peak_rss_kib": peak_kib}))
"""


def _export(trace: Path, out: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _EXPORT, str(trace), str(out)], capture_output=True, text=True,
                          check=True, timeout=900)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def export_parquet(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        long_trace, short_trace = Path(tmp) / "long.mtrace", Path(tmp) / "short.mtrace"
        _synthetic_writer(long_trace, TRACE_IO_EVENTS)
        _synthetic_writer(short_trace, TRACE_IO_EVENTS // 4)
        results = [_export(long_trace, Path(tmp) / f"long-{i}") for i in range(runs)]
        short = _export(short_trace, Path(tmp) / "short")
        size = sum(p.stat().st_size for p in (Path(tmp) / "long-0").iterdir())
    rates = [r["events"] / r["seconds"] for r in results]
    problems = [] if all(r["events"] == TRACE_IO_EVENTS for r in results) else [
        f"exported {[r['events'] for r in results]} events, expected {TRACE_IO_EVENTS}"]
    rate = statistics.median(rates)
    return {
        "events": TRACE_IO_EVENTS,
        "events_per_s": round(rate),
        "ns_per_event": round(1e9 / rate, 1),
        "seconds": round(statistics.median(r["seconds"] for r in results), 3),
        "peak_rss_mib": round(max(r["peak_rss_kib"] for r in results) / 1024, 1),
        "peak_rss_short_mib": round(short["peak_rss_kib"] / 1024, 1),
        "parquet_bytes": size,
        "runs": runs,
        "problems": problems,
    }
