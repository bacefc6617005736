"""Traces in the formats engineers already use: Parquet/CSV tables, Perfetto, Chrome JSON.

- :mod:`.tables`: one Parquet or CSV table per tracepoint (pandas, polars, DuckDB);
- :mod:`.timeline`: what a timeline viewer shows (processes, counters, slices,
  instants), folded from a trace;
- :mod:`.perfetto`: that timeline as a Perfetto trace (``.pftrace``, ui.perfetto.dev);
- :mod:`.chrome`: the same as Chrome's Trace Event Format JSON (chrome://tracing).

The heavy libraries (pyarrow, perfetto's protobufs) are imported by the module that
writes their format, when it is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_FORMATS", "ExportResult", "export_trace"]

#: Every format :func:`export_trace` writes, and whether its output is a directory.
EXPORT_FORMATS = {"perfetto": False, "chrome-json": False, "parquet": True, "csv": True}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``output`` (a file, or a directory of tables) and how much."""

    format: str
    output: str
    items: int
    files: dict[str, str]
    rows: dict[str, int]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "output": self.output, "items": self.items, "files": dict(self.files),
                "rows": dict(self.rows), "warnings": list(self.warnings)}


def export_trace(trace: str | os.PathLike[str], fmt: str, output: str | os.PathLike[str], *,
                 progress: Callable[[int], None] | None = None) -> ExportResult:
    """Export ``trace`` as ``fmt`` (one of :data:`EXPORT_FORMATS`) to ``output``: a
    file for ``perfetto`` and ``chrome-json``, a directory for ``parquet`` and ``csv``.
    ``progress`` gets the events written so far (tables only)."""
    from memtrace.safewrite import safe_output
    from memtrace.tracer.tracefile import TraceReader

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    if EXPORT_FORMATS[fmt]:
        from .tables import export_tables

        t = export_tables(trace, output, fmt, progress=progress)
        return ExportResult(fmt, t.directory, t.total_rows, t.files, t.rows, t.warnings)
    reader = TraceReader(trace)
    path = Path(output)
    if fmt == "perfetto":
        from .perfetto import write_perfetto

        with safe_output(path) as b:
            n = write_perfetto(reader, b)
    else:
        from .chrome import write_chrome_json

        with safe_output(path, text=True) as f:
            n = write_chrome_json(reader, f)
    return ExportResult(fmt, str(path), n, {fmt: str(path)}, {}, tuple(reader.warnings))
