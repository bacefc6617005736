"""Text renderers of the command line: free(1) tables, tracepoint listings, event
counts, trace statistics and trace diffs.

Pure functions from data to strings, every line under 80 columns. Sizes and times
are spelled by :mod:`memtrace.units`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memtrace.units import MiB, format_seconds, format_size

if TYPE_CHECKING:
    from memtrace.api import TraceStat
    from memtrace.replay import Divergence, TraceDiff
    from memtrace.tracer.schema import Tracepoint

__all__ = [
    "FREE_COLUMNS",
    "FREE_HEADERS",
    "WIDTH",
    "event_table",
    "free_table",
    "render_diff",
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


def _fill(text: str) -> str:
    """``text`` filled to :data:`WIDTH` as the diff has always filled it (hyphens break)."""
    return wrap(text, break_on_hyphens=True)


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


# --------------------------------------------------------------------------- diff


def _mib(value: int) -> str:
    """A diff table cell in MiB: whole MiB with separators, else one decimal.

    Not :func:`memtrace.units.format_mib`: that floors, as ``free -m`` does, and a
    CHANGE column of floored cells would disagree with its own A and B columns
    (95.7 -> 255.5 would read 95 -> 255, +159).
    """
    return f"{value // MiB:,}" if value % MiB == 0 else f"{value / MiB:,.1f}"


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, int) and (key.endswith(("_bytes", ".max", ".high"))):
        return format_size(value)
    return str(value)


def _change(a: int | None, b: int | None, render: Callable[[int], str]) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if d == 0:
        return "0"
    return ("+" if d > 0 else "-") + render(abs(d))


def _divergence_text(d: Divergence, label_a: str, label_b: str, seq: bool = True) -> str:
    """``seq 12 at 1.670 s: mmap -> vm_enough_memory``: where two streams part and how."""
    if seq:
        where = f"seq {d.seq:,} at {format_seconds(d.ts_ns)}"
    elif d.a is not None and d.b is not None and format_seconds(d.a.ts_ns) != format_seconds(d.b.ts_ns):
        where = f"at {format_seconds(d.a.ts_ns)} ({label_a}) / {format_seconds(d.b.ts_ns)} ({label_b})"
    else:
        where = f"at {format_seconds(d.ts_ns)}"
    if d.field is not None and d.a is not None and d.b is not None:
        what = f"{d.tracepoint}.{d.field} {d.a.value!r} -> {d.b.value!r}"
    elif d.a is None:
        what = f"{label_a} ends; {label_b} goes on with {d.b.tracepoint if d.b else '?'}"
    elif d.b is None:
        what = f"{label_b} ends; {label_a} goes on with {d.a.tracepoint}"
    else:
        what = f"{d.a.tracepoint} -> {d.b.tracepoint}"
    return f"{where}: {what}"


def render_diff(diff: TraceDiff, label_a: str = "A", label_b: str = "B") -> str:
    """The text form of a :class:`~memtrace.replay.TraceDiff`: the verdict first, a
    table of figures, the tracepoints that moved, where the traces part, and each
    side's OOM kills and ENOMEM refusals."""
    lines = [f"{label_a}: {diff.a.trace}", f"{label_b}: {diff.b.trace}"]
    if diff.changes:
        parts = [f"{k} {_value(k, va)} -> {_value(k, vb)}" for k, (va, vb) in diff.changes.items()]
        lines.append(_fill("changed: " + "; ".join(parts)))
    lines.append(_fill("verdict: " + diff.verdict))
    if diff.identical:
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'':<26}{label_a:>17}{label_b:>17}{'CHANGE':>17}")
    for key, label, a, b in diff.metrics():
        always = key in ("oom_kills", "enomem_refusals", "events")
        if not always and not a and not b:
            continue
        render: Callable[[int], str]
        if key.endswith("_bytes"):
            label, render = f"{label} MiB", _mib
        else:
            render = "{:,}".format
        cells = [render(v) if v is not None else "-" for v in (a, b)]
        lines.append(f"{label:<26}{cells[0]:>17}{cells[1]:>17}{_change(a, b, render):>17}")
    ev_a, ev_b = diff.a.events, diff.b.events
    moved = [n for n in dict.fromkeys([*ev_a, *ev_b]) if ev_a.get(n, 0) != ev_b.get(n, 0)]
    moved.sort(key=lambda n: -abs(ev_b.get(n, 0) - ev_a.get(n, 0)))
    if moved:
        shown = [f"{n} {ev_a.get(n, 0):,} -> {ev_b.get(n, 0):,}" for n in moved[:6]]
        more = f" (+{len(moved) - 6} more)" if len(moved) > 6 else ""
        lines.append(_fill("tracepoints: " + ", ".join(shown) + more))
    d, w = diff.divergence, diff.workload_divergence
    if d is not None:
        lines.append(_fill(f"first divergence: {_divergence_text(d, label_a, label_b)}"
                          + (" (configuration)" if w is not d else "")))
    if w is not None and w is not d:
        lines.append(_fill(f"behaviour first differs: {_divergence_text(w, label_a, label_b, seq=False)}"))
    elif d is not None and w is None:
        lines.append("behaviour: the same events apart from the configuration")
    for label, side in ((label_a, diff.a), (label_b, diff.b)):
        for k in side.oom_kills:
            lines.append(_fill(f"OOM kill {label}: {k.comm} (pid {k.pid}), {k.points:,} points, at "
                              f"{format_seconds(k.ts_ns)}" + (f", memcg {k.memcg}" if k.memcg else "")))
    for label, side in ((label_a, diff.a), (label_b, diff.b)):
        for r in side.refusals:
            step = f" step {r.step}" if r.step is not None else ""
            lines.append(_fill(f"ENOMEM {label}: {r.comm or '?'} (pid {r.pid}) {r.op}{step} at "
                              f"{format_seconds(r.ts_ns)}"))
    return "\n".join(lines)
