"""Text renderers of the command line: free(1) tables, tracepoint listings, event
counts and trace statistics (a diff renders in :mod:`memtrace.replay.render`).

Pure functions from data to strings, every line under 80 columns. Sizes and times
are spelled by :mod:`memtrace.units`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memtrace.units import MiB, format_seconds, format_size

if TYPE_CHECKING:
    from memtrace.api import TraceStat
    from memtrace.tracer.schema import Tracepoint

__all__ = [
    "FREE_COLUMNS",
    "FREE_HEADERS",
    "WIDTH",
    "event_table",
    "free_table",
    "render_stat",
    "tracepoint_listing",
    "wrap",
]

#: The widest line a command prints (bcc tools' rule: under 80 columns).
WIDTH = 79
FREE_COLUMNS = ("total", "used", "free", "shared", "buff_cache", "available")
FREE_HEADERS = ("total", "used", "free", "shared", "buff/cache", "available")


def wrap(text: str, indent: str = "    ", *, break_on_hyphens: bool = False) -> str:
    """``text`` filled to :data:`WIDTH`, continuation lines indented; a word with a
    hyphen (a file name, a scenario) is kept whole unless ``break_on_hyphens``."""
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=break_on_hyphens)


def free_table(snapshots: Sequence[Mapping[str, Any]], deltas: bool = True) -> str:
    """free -m for each snapshot (``{label, ts_ns, free}``; MiB, as procps divides:
    floor of kB/1024), with a ``change`` row against the previous snapshot when
    ``deltas``."""
    lines: list[str] = []
    head = f"{'':8}" + "".join(f"{h:>11}" for h in FREE_HEADERS)
    prev: Mapping[str, int] | None = None
    for snap in snapshots:
        free = snap["free"]
        lines.append(f"{snap['label']}  (t={format_seconds(snap['ts_ns'], 6)})")
        lines.append(head)
        lines.append(f"{'Mem:':8}" + "".join(f"{free[c] // MiB:>11}" for c in FREE_COLUMNS))
        if deltas and prev is not None:
            before = prev
            lines.append(f"{'change:':8}" + "".join(
                f"{'':>11}" if c == "total" else f"{free[c] // MiB - before[c] // MiB:>+11}" for c in FREE_COLUMNS))
        prev = free
        lines.append("")
    if not snapshots:
        lines.append("(no snapshots)")
    return "\n".join(lines).rstrip("\n")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def tracepoint_listing(tps: Iterable[Tracepoint]) -> str:
    """Tracepoints with typed fields, in the manner of ``bpftrace -lv``."""
    out: list[str] = []
    for t in tps:
        out.append(f"{t.name}  [{_cut(t.kernel or '-', 70 - len(t.name))}]")
        out.append(f"    {_cut(t.doc, 74)}")
        for f in t.all_fields:
            unit = f" ({f.unit})" if f.unit else ""
            if f.values:
                doc = f"{f.doc}: {'|'.join(f.values)}"
            else:
                doc = f.doc + unit
            prefix = f"    {f.type:<5} {f.name:<14} "
            out.append(prefix + _cut(doc, 79 - len(prefix)))
        out.append("")
    return "\n".join(out).rstrip("\n")


def event_table(counts: Mapping[str, int]) -> str:
    """Events per tracepoint: ``TRACEPOINT  EVENTS`` rows, counts with separators."""
    width = max((len(n) for n in counts), default=10)
    lines = [f"{'TRACEPOINT':<{width}}  {'EVENTS':>12}"]
    lines.extend(f"{name:<{width}}  {count:>12,}" for name, count in counts.items())
    return "\n".join(lines)


def render_stat(st: TraceStat) -> str:
    """``memtrace stat``: the scenario, totals, and events per tracepoint."""
    s = st.stats
    return "\n".join([
        f"{st.trace}: scenario {st.scenario}",
        f"{s.total_events:,} events, {format_seconds(s.duration_ns)}, {format_size(s.size_bytes)} in {s.chunks} chunks",
        event_table(s.counts),
    ])
