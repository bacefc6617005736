"""The text of a diff: the one-line verdict and the table ``memtrace diff`` prints.

:mod:`.diff` computes what differs between two traces; this module says it in
words, every line under 80 columns. Sizes and times are spelt by
:mod:`memtrace.units`: moments as seconds since boot (``1.670 s``), sizes in a
sentence as ``192 MiB``, table cells in whole MiB as ``free -m`` prints them.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from memtrace.units import format_mib, format_seconds, format_size

from .summary import MEMORY_KINDS, OomKill, Refusal, TraceSummary

if TYPE_CHECKING:
    from .diff import Divergence, TraceDiff

__all__ = ["WIDTH", "render_diff", "verdict"]

#: Width of the text a diff renders into.
WIDTH = 79


# --------------------------------------------------------------------------- verdict


def _who(pid: int, comm: str) -> str:
    return f"{comm} (pid {pid})" if comm else f"pid {pid}"


def _refusal_for(kill: OomKill, refusals: tuple[Refusal, ...]) -> Refusal | None:
    for r in refusals:
        if r.pid == kill.pid or (r.comm and r.comm == kill.comm):
            return r
    return None


def _pct(a: int, b: int) -> str:
    if a == 0:
        return ""
    return f" ({(b - a) * 100 / a:+.0f}%)"


def _size(value: Any) -> str:
    """A byte count for a sentence (``192 MiB``); other values (``max``) as they are."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    return format_size(value)


def _damage_note(s: TraceSummary) -> str | None:
    """``NAME is damaged (...)`` for a damaged or unfinished trace, else None."""
    name = os.path.basename(s.trace)
    if s.damage is not None:
        d = s.damage
        return f"{name} is damaged ({d.reason} at byte {d.offset:,}; {d.events_recovered:,} events read)"
    if not s.complete:
        return f"{name} is incomplete (no footer; {s.total_events:,} events read)"
    return None


def verdict(a: TraceSummary, b: TraceSummary, divergence: Divergence | None,
            changes: Mapping[str, tuple[Any, Any]], workload: Divergence | None) -> str:
    """One line a person reads first: what happened to the OOM kills, refusals,
    reclaim and swap, from A (baseline) to B. A damaged side is named first, since
    every figure after it covers only what could be read. ``changes`` (from
    :func:`~.diff.input_changes`) lets a memcg kill that went away be explained by
    its raised limit; ``workload`` (the workload divergence) places a difference
    that changed no outcome, or says there is none beyond the configuration."""
    notes = [n for n in (_damage_note(a), _damage_note(b)) if n is not None]
    if divergence is None:
        if notes:
            return "; ".join(notes) + "; no difference in the events read"
        return "no difference: both traces hold the same events"
    outcome = _outcome(a, b, workload, changes)
    return "; ".join([*notes, outcome])


def _why_avoided(k: OomKill, a: TraceSummary, b: TraceSummary, changes: Mapping[str, tuple[Any, Any]]) -> str:
    r = _refusal_for(k, b.refusals)
    if r is not None:
        return f": its {r.op or 'request'} was refused with ENOMEM at {format_seconds(r.ts_ns)}"
    if k.memcg:
        for key in (f"cgroup.{k.memcg}.max", f"cgroup.{k.memcg}.high"):
            if key in changes:
                old, new = changes[key]
                return f": the {k.memcg} limit is {_size(new)} instead of {_size(old)}"
    if b.swap_outs > a.swap_outs:
        return f": {b.swap_outs - a.swap_outs:,} more pages went to swap"
    if b.reclaimed_pages > a.reclaimed_pages:
        return f": reclaim freed {b.reclaimed_pages - a.reclaimed_pages:,} more pages"
    return ""


def _outcome(a: TraceSummary, b: TraceSummary, divergence: Divergence | None,
             changes: Mapping[str, tuple[Any, Any]]) -> str:
    parts: list[str] = []
    in_b = {(k.comm, k.pid): k for k in b.oom_kills}
    in_a = {(k.comm, k.pid): k for k in a.oom_kills}
    avoided: dict[str, list[str]] = {}  # reason -> victims, in order of the kills
    for k in a.oom_kills:
        if (k.comm, k.pid) not in in_b:
            avoided.setdefault(_why_avoided(k, a, b, changes), []).append(_who(k.pid, k.comm))
    for why, victims in avoided.items():
        if len(victims) == 1:
            parts.append(f"OOM kill of {victims[0]} avoided{why}")
        else:
            parts.append(f"OOM kills of {', '.join(victims[:-1])} and {victims[-1]} avoided{why}")
    for k in b.oom_kills:
        if (k.comm, k.pid) not in in_a:
            parts.append(f"new OOM kill of {_who(k.pid, k.comm)} at {format_seconds(k.ts_ns)}")
    for key, ka in in_a.items():
        kb = in_b.get(key)
        if kb is not None:
            when = ""
            # An imported trace counts real time since boot, a replay simulated time
            # since its own boot: their timestamps are not comparable.
            same_clock = ("source" in a.meta) == ("source" in b.meta)
            if ka.ts_ns != kb.ts_ns and same_clock:
                when = f" at {format_seconds(kb.ts_ns)} instead of {format_seconds(ka.ts_ns)}"
            parts.append(f"OOM kill of {_who(ka.pid, ka.comm)} still happens{when}")
    refused_a = {(r.pid, r.op) for r in a.refusals}
    refused_b = {(r.pid, r.op) for r in b.refusals}
    for r in b.refusals:
        explained = any(r.pid == k.pid or r.comm == k.comm for k in a.oom_kills)
        if (r.pid, r.op) not in refused_a and not explained:
            parts.append(f"{r.op or 'request'} of {_who(r.pid, r.comm)} now refused with ENOMEM "
                         f"at {format_seconds(r.ts_ns)}")
            refused_a.add((r.pid, r.op))
    for r in a.refusals:
        if (r.pid, r.op) not in refused_b:
            parts.append(f"{r.op or 'request'} of {_who(r.pid, r.comm)} no longer refused")
            refused_b.add((r.pid, r.op))
    if parts:
        return "; ".join(parts[:2]) + (f" (and {len(parts) - 2} more)" if len(parts) > 2 else "")
    if a.swap_outs != b.swap_outs:
        parts.append(f"swap-outs {a.swap_outs:,} -> {b.swap_outs:,} pages{_pct(a.swap_outs, b.swap_outs)}")
    reclaim_a, reclaim_b = a.reclaimed_pages, b.reclaimed_pages
    if reclaim_a != reclaim_b:
        parts.append(f"pages reclaimed {reclaim_a:,} -> {reclaim_b:,}{_pct(reclaim_a, reclaim_b)}")
    if a.major_faults != b.major_faults and len(parts) < 2:
        parts.append(f"major faults {a.major_faults:,} -> {b.major_faults:,}")
    if not parts:
        pa, pb = a.memory_peak, b.memory_peak
        if pa is not None and pb is not None and pa != pb:
            kind = max(MEMORY_KINDS, key=lambda k: abs(getattr(pb, k) - getattr(pa, k)))
            parts.append(f"peak {kind} {_size(getattr(pa, kind))} -> {_size(getattr(pb, kind))}")
    prefix = "no OOM kill either way; " if not a.oom_kills else ""
    if not parts and divergence is None:
        return f"{prefix}same behaviour: only the configuration differs"
    if not parts:
        assert divergence is not None
        return (f"{prefix}same outcome; the events differ from seq {divergence.seq:,} "
                f"({divergence.tracepoint}) on")
    return prefix + "; ".join(parts[:2])


# --------------------------------------------------------------------------- table


def _value(key: str, value: Any) -> str:
    """An input's value in the ``changed:`` line: sizes for byte keys, ``-`` for none."""
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


def _fill(text: str) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent="    ")


def render_diff(diff: TraceDiff, label_a: str = "A", label_b: str = "B") -> str:
    """The text form of a :class:`~.diff.TraceDiff`, every line under 80 columns:
    the inputs that changed, the verdict, then (unless the traces are identical)
    the figures of both sides, the tracepoints whose counts moved most, where the
    streams part, and every OOM kill and ENOMEM refusal."""
    lines = [f"{label_a}: {diff.a.trace}", f"{label_b}: {diff.b.trace}"]
    if diff.changes:
        parts = [f"{k} {_value(k, va)} -> {_value(k, vb)}" for k, (va, vb) in diff.changes.items()]
        lines.append(_fill("changed: " + "; ".join(parts)))
    lines.append(_fill("verdict: " + diff.verdict))
    if not diff.identical:
        lines.append(_fill(f"{label_b} repeats {label_a}: " + diff.reproduction.figures()))
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
            label, render = f"{label} MiB", format_mib
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
            lines.append(_fill(f"OOM kill {label}: {k.comm} (pid {k.pid}), {k.points:,} points, "
                               f"at {format_seconds(k.ts_ns)}" + (f", memcg {k.memcg}" if k.memcg else "")))
    for label, side in ((label_a, diff.a), (label_b, diff.b)):
        for r in side.refusals:
            step = f" step {r.step}" if r.step is not None else ""
            lines.append(_fill(f"ENOMEM {label}: {r.comm or '?'} (pid {r.pid}) {r.op}{step} "
                               f"at {format_seconds(r.ts_ns)}"))
    return "\n".join(lines)
