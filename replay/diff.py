"""Compare two traces: what changed in the inputs, in the outcome, and where the
event streams part.

:func:`diff_traces` reads both files once, side by side, in ``seq`` order. Each
batch goes to its side's :class:`~.summary.Summarizer`; while the streams still
agree, :class:`_Aligner` compares them column by column with numpy over the
stretch where both sides hold one tracepoint, so finding the first divergence
costs a few vector comparisons per batch, not Python work per event. Memory stays
bounded by one flush group per file.

Two events are the same when they are of the same tracepoint and every field
(``seq``, ``ts_ns``, ``pid`` and the tracepoint's own) is equal. The first
divergence is the first position, in ``seq`` order, where the two streams hold
different events, or where one of them ends.

A change of sysctl or machine shows first in the boot-time configuration events
(``sysctl_set``, ``zoneinfo``, ``cgroup``) and then shifts every later ``seq``, so that first
divergence says little. The *workload divergence* answers "where did behaviour
first differ": it skips the configuration tracepoints and compares events without
their ``seq``. It is the same as the first divergence whenever that is not a
configuration event.

This module computes; the one-line verdict and the text table are :mod:`.render`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtrace.errors import MemtraceError, ScenarioError
from memtrace.kernel.workload import scenario_from_dict
from memtrace.tracer.batch import EventBatch
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.limits import MAX_RUNS

from .assume import DEFAULT_ASSUMPTION, apply_assumption, parse_assumption, victims
from .baseline import BaselineScore, score_baseline
from .render import verdict
from .summary import COUNTERS, MEMORY_KINDS, MemoryByKind, Summarizer, TraceSummary, file_size


@dataclass(frozen=True)
class EventAt:
    """One side's event at the divergence: its ``seq``, time and tracepoint."""

    seq: int
    ts_ns: int
    tracepoint: str
    value: Any = None  # the differing field's value (enum names decoded)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts_ns": self.ts_ns, "tracepoint": self.tracepoint, "value": self.value}


@dataclass(frozen=True)
class Divergence:
    """Where two event streams part.

    ``index`` counts the equal events before it. ``a`` and ``b`` are the events at
    that position (None when that stream has ended). ``field`` is the first field,
    in schema order, that differs, or None when the tracepoints differ or a stream
    ended.
    """

    index: int
    a: EventAt | None
    b: EventAt | None
    field: str | None

    @property
    def seq(self) -> int:
        at = self.a or self.b
        assert at is not None
        return at.seq

    @property
    def ts_ns(self) -> int:
        at = self.a or self.b
        assert at is not None
        return at.ts_ns

    @property
    def tracepoint(self) -> str:
        at = self.a or self.b
        assert at is not None
        return at.tracepoint

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seq": self.seq,
            "ts_ns": self.ts_ns,
            "tracepoint": self.tracepoint,
            "field": self.field,
            "a": self.a.as_dict() if self.a else None,
            "b": self.b.as_dict() if self.b else None,
        }


@dataclass(frozen=True)
class TraceDiff:
    """Two traces compared: the inputs that differ, the figures of each side, the
    first divergence and a one-line verdict.

    ``changes`` maps an input (``vm.swappiness``, ``machine.ram_bytes``,
    ``cgroup./leaker.max``, ``seed``, ``workload``) to its (A, B) values.
    ``identical`` is true when both streams hold the same events and both files are
    complete and undamaged. ``workload_divergence`` is where behaviour first parts
    (configuration events skipped, ``seq`` not compared).
    """

    a: TraceSummary
    b: TraceSummary
    changes: dict[str, tuple[Any, Any]]
    divergence: Divergence | None
    verdict: str
    workload_divergence: Divergence | None = None

    @property
    def identical(self) -> bool:
        return (self.divergence is None and self.a.complete and self.b.complete
                and self.a.damage is None and self.b.damage is None)

    @property
    def reproduction(self) -> BaselineScore:
        """How closely B reproduces A (kills in order, ENOMEMs, each process's memory):
        the baseline score when B is the unchanged replay of A."""
        return score_baseline(self.a, self.b)

    def metrics(self) -> list[tuple[str, str, int | None, int | None]]:
        """The comparable figures as (key, label, A, B), in display order.

        Memory rows are in bytes; a side without meminfo readings has None there.
        """
        rows: list[tuple[str, str, int | None, int | None]] = [
            ("oom_kills", "OOM kills", len(self.a.oom_kills), len(self.b.oom_kills)),
            ("enomem_refusals", "ENOMEM refusals", len(self.a.refusals), len(self.b.refusals)),
        ]
        for which in ("peak", "final"):
            ma: MemoryByKind | None = getattr(self.a, f"memory_{which}")
            mb: MemoryByKind | None = getattr(self.b, f"memory_{which}")
            for kind in MEMORY_KINDS:
                rows.append((f"{kind}_{which}_bytes", f"{kind} {which}",
                             getattr(ma, kind) if ma else None, getattr(mb, kind) if mb else None))
        ca, cb = self.a.counters(), self.b.counters()
        for c in COUNTERS:
            rows.append((c.key, c.label, ca[c.key], cb[c.key]))
        rows.append(("events", "events", self.a.total_events, self.b.total_events))
        return rows

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON-able data (every figure for both sides, ``a`` and ``b``)."""

        def side(fa: Any, fb: Any) -> dict[str, Any]:
            return {"a": fa, "b": fb}

        def mem(m: MemoryByKind | None) -> dict[str, int] | None:
            return m.as_dict() if m is not None else None

        ca, cb = self.a.counters(), self.b.counters()
        out: dict[str, Any] = {
            "a": self.a.trace,
            "b": self.b.trace,
            "identical": self.identical,
            "verdict": self.verdict,
            "changes": {k: side(va, vb) for k, (va, vb) in self.changes.items()},
            "oom_kills": side([k.as_dict() for k in self.a.oom_kills], [k.as_dict() for k in self.b.oom_kills]),
            "enomem": side([r.as_dict() for r in self.a.refusals], [r.as_dict() for r in self.b.refusals]),
            "memory_peak_bytes": side(mem(self.a.memory_peak), mem(self.b.memory_peak)),
            "memory_final_bytes": side(mem(self.a.memory_final), mem(self.b.memory_final)),
        }
        for c in COUNTERS:
            out[c.key] = side(ca[c.key], cb[c.key])
        out["events"] = side(self.a.events, self.b.events)
        out["total_events"] = side(self.a.total_events, self.b.total_events)
        out["end_ns"] = side(self.a.end_ns, self.b.end_ns)
        out["first_divergence"] = self.divergence.as_dict() if self.divergence else None
        out["workload_divergence"] = self.workload_divergence.as_dict() if self.workload_divergence else None
        out["reproduction"] = self.reproduction.as_dict()
        out["complete"] = side(self.a.complete, self.b.complete)
        out["damage"] = side(_damage_dict(self.a), _damage_dict(self.b))
        out["warnings"] = side(list(self.a.warnings), list(self.b.warnings))
        return out


def _damage_dict(s: TraceSummary) -> dict[str, Any] | None:
    d = s.damage
    if d is None:
        return None
    return {"offset": d.offset, "reason": d.reason, "chunks_skipped": d.chunks_skipped,
            "events_recovered": d.events_recovered}


# --------------------------------------------------------------------------- alignment


#: Most runs of one tracepoint (batches) diff reads of each trace: 524,288, an
#: eighth of the reader's MAX_RUNS. diff walks both traces event by event in seq
#: order (it names the first event that differs), at about 70 µs a pair of runs
#: here, so a trace whose tracepoints alternate event by event costs that per
#: event; beyond the bound, a one-line error.
DIFF_MAX_RUNS = MAX_RUNS // 8

#: Tracepoints that record the machine's configuration (sysctls, zones, memory
#: cgroups and their limits), not its behaviour: the workload divergence skips them.
CONFIG_TRACEPOINTS = frozenset({"sysctl_set", "zoneinfo", "cgroup"})


class _Cursor:
    """A position in one side's stream of batches; every batch pulled is also handed
    to ``sink`` (the side's summarizer), exactly once. Batches of a tracepoint in
    ``skip`` are sunk but never become the current batch."""

    def __init__(self, batches: Iterator[EventBatch], sink: Callable[[EventBatch], None],
                 skip: frozenset[str] = frozenset()) -> None:
        self._it = batches
        self._sink = sink
        self._skip = skip
        self.batch: EventBatch | None = None
        self.off = 0

    def fill(self) -> bool:
        """Make ``batch[off]`` the next event; False when the stream has ended."""
        while self.batch is None or self.off >= self.batch.n:
            nxt = next(self._it, None)
            if nxt is None:
                self.batch = None
                return False
            self._sink(nxt)
            if nxt.tp.name in self._skip:
                continue
            self.batch, self.off = nxt, 0
        return True

    def drain(self) -> None:
        for batch in self._it:
            self._sink(batch)


def _shape(batch: EventBatch) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    return tuple((f.name, f.type, f.values) for f in batch.tp.all_fields)


def _value(batch: EventBatch, name: str, i: int) -> Any:
    f = batch.tp.field(name)
    if f.type == "str":
        return batch.strs(name)[i]
    v = batch.ints(name)[i].item()
    if f.type == "enum":
        return f.values[v] if v < len(f.values) else v
    return bool(v) if f.type == "bool" else v


def _first_mismatch(a: EventBatch, ia: int, b: EventBatch, ib: int, n: int,
                    ignore: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """(offset, field) of the first of ``n`` aligned events that differ in a field
    not in ``ignore``, else None."""
    best: tuple[int, str] | None = None
    for f in a.tp.all_fields:
        if f.name in ignore:
            continue
        x = a.columns[f.name]
        y = b.columns[f.name]
        limit = n if best is None else best[0]
        if limit == 0:
            break
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            xs, ys = x[ia : ia + limit], y[ib : ib + limit]
            if np.array_equal(xs, ys):
                continue
            at = int(np.argmax(xs != ys))
        else:
            xl, yl = list(x[ia : ia + limit]), list(y[ib : ib + limit])
            if xl == yl:
                continue
            at = next(i for i, (p, q) in enumerate(zip(xl, yl, strict=True)) if p != q)
        if best is None or at < best[0]:
            best = (at, f.name)
    return best


def _event_at(batch: EventBatch | None, off: int, field: str | None) -> EventAt | None:
    if batch is None:
        return None
    value = _value(batch, field, off) if field is not None else None
    return EventAt(int(batch.ints("seq")[off]), int(batch.ints("ts_ns")[off]), batch.tp.name, value)


class _Aligner:
    """Walks two streams in step and finds where they part (see the module docstring)."""

    def __init__(self, a: _Cursor, b: _Cursor, ignore: frozenset[str] = frozenset()) -> None:
        self.a, self.b = a, b
        self.ignore = ignore

    def run(self) -> Divergence | None:
        a, b = self.a, self.b
        pos = 0
        while True:
            has_a, has_b = a.fill(), b.fill()
            if not has_a or not has_b:
                if has_a == has_b:
                    return None
                return Divergence(pos, _event_at(a.batch, a.off, None), _event_at(b.batch, b.off, None), None)
            ba, bb = a.batch, b.batch
            assert ba is not None and bb is not None
            if ba.tp.name != bb.tp.name or _shape(ba) != _shape(bb):
                return Divergence(pos, _event_at(ba, a.off, None), _event_at(bb, b.off, None), None)
            n = min(ba.n - a.off, bb.n - b.off)
            hit = _first_mismatch(ba, a.off, bb, b.off, n, self.ignore)
            if hit is not None:
                i, name = hit
                return Divergence(pos + i, _event_at(ba, a.off + i, name), _event_at(bb, b.off + i, name), name)
            a.off += n
            b.off += n
            pos += n


def first_divergence(a: str | os.PathLike[str], b: str | os.PathLike[str], *,
                     workload: bool = False) -> Divergence | None:
    """Where the event streams of two trace files part, or None if they hold the same
    events. With ``workload``, where their behaviour parts: configuration events
    skipped and ``seq`` not compared (see the module docstring)."""
    ra, rb = TraceReader(a), TraceReader(b)
    skip = CONFIG_TRACEPOINTS if workload else frozenset()
    return _Aligner(_Cursor(ra.ordered_batches(max_runs=DIFF_MAX_RUNS), lambda _b: None, skip),
                    _Cursor(rb.ordered_batches(max_runs=DIFF_MAX_RUNS), lambda _b: None, skip),
                    frozenset({"seq"}) if workload else frozenset()).run()


def _is_config(d: Divergence) -> bool:
    return any(at is not None and at.tracepoint in CONFIG_TRACEPOINTS for at in (d.a, d.b))


# --------------------------------------------------------------------------- inputs


def input_changes(meta_a: Mapping[str, Any], meta_b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What differs between the inputs two trace headers record.

    Keys, in this order: ``scenario``; machine keys (``machine.ram_bytes``); cgroup
    keys (``cgroup./leaker.max``); ``seed``; ``workload`` when the processes or
    files differ; then every effective sysctl that differs (``vm.swappiness``),
    those set explicitly on either side (``sysctl_overrides``, the scenario's
    ``[sysctl]``) before those the kernel derives at boot (``vm.min_free_kbytes``
    follows RAM).
    """
    out: dict[str, tuple[Any, Any]] = {}
    if meta_a.get("scenario") != meta_b.get("scenario"):
        out["scenario"] = (meta_a.get("scenario"), meta_b.get("scenario"))
    ma, mb = _mapping(meta_a.get("machine")), _mapping(meta_b.get("machine"))
    for key in sorted(set(ma) | set(mb)):
        if ma.get(key) != mb.get(key):
            out[f"machine.{key}"] = (ma.get(key), mb.get(key))
    wa, wb = _mapping(meta_a.get("workload")), _mapping(meta_b.get("workload"))
    ca, cb = _cgroups(wa), _cgroups(wb)
    for path in sorted(set(ca) | set(cb)):
        ga, gb = ca.get(path, {}), cb.get(path, {})
        for key in sorted((set(ga) | set(gb)) - {"path"}):
            if ga.get(key) != gb.get(key):
                out[f"cgroup.{path}.{key}"] = (ga.get(key), gb.get(key))
    if meta_a.get("seed") != meta_b.get("seed"):
        out["seed"] = (meta_a.get("seed"), meta_b.get("seed"))
    # An imported trace's OOM victims run, in a replay, what it assumed they would
    # have done after their kill (replay.assume): compared with that applied.
    aka, akb = _assumed(meta_a), _assumed(meta_b)
    if aka is not None and akb is not None and aka != akb:
        out["assume-after-kill"] = (aka, akb)
    skip = ("machine", "sysctl", "cgroup", "description")
    rest_a = {k: v for k, v in _normalised(_with_assumption(wa, meta_a)).items() if k not in skip}
    rest_b = {k: v for k, v in _normalised(_with_assumption(wb, meta_b)).items() if k not in skip}
    if rest_a != rest_b and "assume-after-kill" not in out:
        out["workload"] = ("recorded", "different processes or files")
    sa, sb = _mapping(meta_a.get("sysctl")), _mapping(meta_b.get("sysctl"))
    explicit = {_vm(k) for meta in (meta_a, meta_b) for k in _mapping(meta.get("sysctl_overrides"))}
    explicit |= {_vm(k) for w in (wa, wb) for k in _mapping(w.get("sysctl"))}
    differing = [k for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]
    if not sa or not sb:
        # One side records no sysctl table (a trace imported from a real kernel):
        # only what was set explicitly is a change of input.
        differing = [k for k in differing if k in explicit]
    for key in sorted(differing, key=lambda k: k not in explicit):
        out[key] = (sa.get(key), sb.get(key))
    return out


def _assumed(meta: Mapping[str, Any]) -> str | None:
    """The after-kill assumption a header says its workload runs with (None: none
    needed, not an import with kills)."""
    derived = meta.get("derived")
    if not victims(derived if isinstance(derived, Mapping) else None):
        return None
    assert isinstance(derived, Mapping)
    text = derived.get("assumption")
    try:
        return str(parse_assumption(text)) if isinstance(text, str) else str(DEFAULT_ASSUMPTION)
    except ScenarioError:
        return None


def _with_assumption(workload: Mapping[str, Any], meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """``workload`` with its after-kill assumption applied (as a replay runs it)."""
    derived = meta.get("derived")
    text = _assumed(meta)
    if text is None or not isinstance(derived, Mapping):
        return workload
    return apply_assumption(workload, derived, parse_assumption(text))


def _normalised(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    """A workload as ``Scenario.to_dict()`` writes it (defaults left out), so that
    two spellings of the same scenario compare equal; as it is if it does not load."""
    try:
        return scenario_from_dict(workload, "<trace header>").to_dict()
    except MemtraceError:
        return workload


def _vm(key: str) -> str:
    return key if key.startswith("vm.") else f"vm.{key}"


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _cgroups(workload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    groups = workload.get("cgroup", [])
    if not isinstance(groups, list):
        return {}
    return {str(g.get("path")): g for g in groups if isinstance(g, Mapping)}


# --------------------------------------------------------------------------- diff


def diff_traces(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    consumers_a: tuple[Callable[[EventBatch], None], ...] = (),
    consumers_b: tuple[Callable[[EventBatch], None], ...] = (),
) -> TraceDiff:
    """Compare trace ``a`` (the baseline) with trace ``b``, reading each once.

    Damage in either file is not an error: the diff covers what was read and each
    summary carries the reader's warnings. ``consumers_a``/``consumers_b`` see every
    batch of their side as it is read (progress bars). Raises TraceFormatError only
    when a file is not a readable trace at all.
    """
    ra, rb = TraceReader(a), TraceReader(b)
    fa, fb = Summarizer(), Summarizer()

    def sink(folder: Summarizer, extra: tuple[Callable[[EventBatch], None], ...]) -> Callable[[EventBatch], None]:
        def feed(batch: EventBatch) -> None:
            folder.on_batch(batch)
            for c in extra:
                c(batch)
        return feed

    ca = _Cursor(ra.ordered_batches(max_runs=DIFF_MAX_RUNS), sink(fa, consumers_a))
    cb = _Cursor(rb.ordered_batches(max_runs=DIFF_MAX_RUNS), sink(fb, consumers_b))
    divergence = _Aligner(ca, cb).run()
    ca.drain()
    cb.drain()
    sa = fa.finish(ra.path, ra.meta, ra.footer, trace_bytes=file_size(ra.path), damage=ra.damage,
                   warnings=ra.warnings)
    sb = fb.finish(rb.path, rb.meta, rb.footer, trace_bytes=file_size(rb.path), damage=rb.damage,
                   warnings=rb.warnings)
    changes = input_changes(ra.meta, rb.meta)
    workload = divergence
    if divergence is not None and _is_config(divergence):
        # A second read, without the summarizers: only when the configuration differs.
        workload = first_divergence(a, b, workload=True)
    return TraceDiff(sa, sb, changes, divergence, verdict(sa, sb, divergence, changes, workload), workload)
