"""What a probe program prints: output records, and bpftrace's text and JSON forms.

The tracer never writes to a terminal: each ``printf``, ``time``, ``print`` and
map print becomes one frozen output record (:data:`Output`), handed to the
tracer's ``output`` callback in event order. :func:`render_text` gives the text
bpftrace prints for it (histograms drawn with ``@``, 16-column labels, 52-column
bars), :func:`render_json` the line ``bpftrace -f json`` prints. Map keys and
values from the trace (comms, paths) are drawn :func:`memtrace.escape.printable`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtrace.escape import printable

from .values import Hist, LHist, Stats

__all__ = [
    "AttachOutput",
    "MapOutput",
    "Output",
    "PrintfOutput",
    "TimeOutput",
    "ValueOutput",
    "json_object",
    "render_json",
    "render_text",
]


@dataclass(frozen=True)
class PrintfOutput:
    """One printf() line (the text as formatted, newline included if asked for)."""

    text: str


@dataclass(frozen=True)
class TimeOutput:
    """A time() call: simulated time formatted with strftime."""

    text: str


@dataclass(frozen=True)
class ValueOutput:
    """print(expression): one value."""

    value: int | str


@dataclass(frozen=True)
class MapOutput:
    """A map printed (print(@m), or at END): entries in print order."""

    name: str
    kind: str
    entries: tuple[tuple[Any, Any], ...]
    keyed: bool
    #: by print(@m) (no blank line after one-line values), not at the end of the run
    printed: bool = False


@dataclass(frozen=True)
class AttachOutput:
    """bpftrace's "Attaching N probes..." line."""

    probes: int


Output = PrintfOutput | TimeOutput | ValueOutput | MapOutput | AttachOutput


def _key_text(key: Any, sep: str) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return sep.join(printable(str(p)) for p in parts)  # a comm or path from the trace: no escapes


def _hist_lines(value: Hist | LHist) -> list[str]:
    """bpftrace's rows: a 16-column label, an 8-column count, a bar of ``@`` of
    ``int(count / (float)max * 52)`` (C float arithmetic, as ``src/output/text.cpp``
    computes it) in a 52-column frame."""
    buckets = value.buckets()
    top = max((b.count for b in buckets), default=0)
    lines = []
    for b in buckets:
        bar = "@" * _bar_width(b.count, top)
        lines.append(f"{b.label:<16}{b.count:>8} |{bar:<52}|")
    return lines


def _bar_width(count: int, top: int) -> int:
    """``(int)((count / (float)top) * 52)`` in single precision; 0 when every
    count is 0."""
    if not top:
        return 0
    return int(np.float32(np.float32(count) / np.float32(top)) * np.float32(52))


def render_text(out: Output) -> str:
    """bpftrace's text output of one output record (newlines included)."""
    if isinstance(out, (PrintfOutput, TimeOutput)):
        return out.text
    if isinstance(out, ValueOutput):
        return f"{out.value}\n"
    if isinstance(out, AttachOutput):
        return f"Attaching {out.probes} probe{'s' if out.probes != 1 else ''}...\n"
    if not out.entries:
        return ""
    parts: list[str] = []
    for key, value in out.entries:
        head = out.name + (f"[{_key_text(key, ', ')}]" if out.keyed else "")
        if isinstance(value, (Hist, LHist)):
            parts.append(f"{head}:\n" + "\n".join(_hist_lines(value)) + "\n\n")
        elif isinstance(value, Stats):
            parts.append(f"{head}: count {value.count}, average {value.average}, total {value.total}\n")
        else:
            parts.append(f"{head}: {printable(str(value))}\n")
    text = "".join(parts)
    return text if text.endswith("\n\n") or out.printed else text + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, Stats):
        return {"count": value.count, "average": value.average, "total": value.total}
    if isinstance(value, (Hist, LHist)):
        rows = []
        for b in value.buckets():
            row: dict[str, int] = {}
            if b.min is not None:
                row["min"] = b.min
            if b.max is not None:
                row["max"] = b.max
            row["count"] = b.count
            rows.append(row)
        return rows
    return value


def json_object(out: Output) -> dict[str, Any] | None:
    """bpftrace ``-f json``'s object for one output record (None: prints nothing)."""
    if isinstance(out, PrintfOutput):
        return {"type": "printf", "data": out.text}
    if isinstance(out, TimeOutput):
        return {"type": "time", "data": out.text}
    if isinstance(out, ValueOutput):
        return {"type": "value", "data": out.value}
    if isinstance(out, AttachOutput):
        return {"type": "attached_probes", "data": {"probes": out.probes}}
    if not out.entries:
        return None
    kind = {"hist": "hist", "lhist": "hist", "stats": "stats", "avg": "stats"}.get(out.kind, "map")
    if out.keyed:
        data: Any = {_key_text(k, ","): _json_value(v) for k, v in out.entries}
    else:
        data = _json_value(out.entries[0][1])
    return {"type": kind, "data": {out.name: data}}


def render_json(out: Output) -> str:
    """One line of bpftrace ``-f json`` output (newline included), or ''."""
    obj = json_object(out)
    return "" if obj is None else json.dumps(obj) + "\n"


