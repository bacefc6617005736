"""Fold a trace's events into the figures a diff compares: a state provider.

:class:`Summarizer` is a bus consumer: fed every batch of a trace (live, or read
back in ``seq`` order), it keeps a handful of counters and nothing per event, so a
trace of any length folds in constant memory. :func:`summarize_trace` reads a file
through it and returns a :class:`TraceSummary`, whose :meth:`~TraceSummary.as_record_dict`
has the shape of ``memtrace record --json``.

What each figure is made of (tracepoints of :mod:`memtrace.tracer.tracepoints`):

- memory by kind, from every ``meminfo_sample`` and ``snapshot`` event (the periodic
  and the labelled /proc/meminfo readings): ``anon`` = AnonPages, ``file`` = Cached
  less Shmem (Cached counts shmem pages, as in fs/proc/meminfo.c), ``shmem`` = Shmem,
  ``swap`` = SwapTotal less SwapFree (swap in use). *Peak* is the largest reading,
  *final* the last one; memory is known at readings only, so a peak between two
  readings is missed (the kernel samples every 100 ms of simulated time).
- major faults: ``page_fault`` events with ``major`` set.
- pages reclaimed by kswapd: the sum of ``kswapd_sleep.nr_reclaimed``; directly (and by
  memcg reclaim, separately): the sum of ``reclaim_end.nr_reclaimed`` by ``kind``.
- swap-outs and swap-ins: ``swap_out`` and ``swap_in`` events (one per page);
  kswapd wakes: ``kswapd_wake`` events.
- OOM kills: ``oom_kill`` events (victim pid, comm, badness points, constraint).
- names: the comm of a pid, and the first pid of each comm, from the task events
  (:class:`~memtrace.tracer.tasks.TaskTable`).
- each process's memory (:class:`ProcessMemory`): the peak and the last value of
  each ``kmem:rss_stat`` counter of its mm (file, anon, shmem pages; swap entries),
  in bytes; each memory cgroup's peak usage where the trace reads it
  (``memcg_stat.usage_bytes``, at each memcg OOM).
- ENOMEM refusals: the recorder's footer lists every failed step with its errno; the
  refusals are those with ``ENOMEM``. A trace without a footer (recorder killed,
  file cut) falls back on the event stream: ``vm_enough_memory`` events, or, in a
  trace that has none, ``mmap`` events returning -ENOMEM.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from memtrace.linux.errors import ENOMEM
from memtrace.linux.proc import free_columns
from memtrace.tracer.batch import EventBatch
from memtrace.tracer.tasks import UNKNOWN_COMM, TaskTable
from memtrace.tracer.tracefile import Damage, TraceReader
from memtrace.tracer.tracepoints import MEMINFO_FIELDS

#: Memory kinds of a diff, in display order.
MEMORY_KINDS = ("anon", "file", "shmem", "swap")


class MemoryByKind(NamedTuple):
    """Memory by kind, in bytes, from one /proc/meminfo reading (or the peaks of many)."""

    anon: int
    file: int
    shmem: int
    swap: int

    @property
    def total(self) -> int:
        return self.anon + self.file + self.shmem + self.swap

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


@dataclass(frozen=True)
class OomKill:
    """One ``oom_kill`` event: the victim, its badness and when (ns since boot)."""

    pid: int
    comm: str
    points: int
    ts_ns: int
    seq: int
    oom_id: int
    constraint: str
    memcg: str
    trigger_pid: int

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "points": self.points, "ts_ns": self.ts_ns,
                "seq": self.seq, "oom_id": self.oom_id, "constraint": self.constraint,
                "memcg": self.memcg, "trigger_pid": self.trigger_pid}


@dataclass(frozen=True)
class Refusal:
    """A request refused with ENOMEM: who, which call, and when (ns since boot).

    ``step`` (the step's label in the process's step list: ``"4"``, or ``"3.2"``
    inside a repeat) and ``message`` come from the recorder's footer; they are None
    and "" when the refusal was read from events.
    """

    pid: int
    comm: str
    op: str
    ts_ns: int
    step: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "op": self.op, "ts_ns": self.ts_ns,
                "step": self.step, "message": self.message}


def _sum(col: np.ndarray) -> int:
    return int(col.sum(dtype=np.uint64))


def _events(b: EventBatch) -> int:
    return b.n


def _major_faults(b: EventBatch) -> int:
    return int(np.count_nonzero(b.ints("major"))) if b.tp.has_field("major") else 0


def _kswapd_reclaimed(b: EventBatch) -> int:
    return _sum(b.ints("nr_reclaimed")) if b.tp.has_field("nr_reclaimed") else 0


def _reclaimed_by(kind: str) -> Callable[[EventBatch], int]:
    """The pages ``reclaim_end`` events of ``kind`` (direct, memcg) reclaimed."""

    def count(b: EventBatch) -> int:
        if not (b.tp.has_field("kind") and b.tp.has_field("nr_reclaimed")):
            return 0
        kinds = b.tp.field("kind").values
        if kind not in kinds:
            return 0
        return _sum(b.ints("nr_reclaimed")[b.ints("kind") == kinds.index(kind)])
    return count


class Counter(NamedTuple):
    """One figure a diff compares: its key (a :class:`TraceSummary` property and a
    ``memtrace diff --json`` key), label and unit, and how a batch of
    ``tracepoint`` adds to it (a batch whose schema lacks the fields adds 0)."""

    key: str
    label: str
    unit: str
    tracepoint: str
    count: Callable[[EventBatch], int]


#: The counters of a summary a diff compares, in display order. Counting another
#: tracepoint is one entry here: the diff's table and JSON show every counter.
COUNTERS: tuple[Counter, ...] = (
    Counter("major_faults", "major faults", "faults", "page_fault", _major_faults),
    Counter("reclaimed_kswapd_pages", "reclaimed by kswapd", "pages", "kswapd_sleep", _kswapd_reclaimed),
    Counter("reclaimed_direct_pages", "reclaimed directly", "pages", "reclaim_end", _reclaimed_by("direct")),
    Counter("reclaimed_memcg_pages", "reclaimed by memcg", "pages", "reclaim_end", _reclaimed_by("memcg")),
    Counter("swap_outs", "swap-outs", "pages", "swap_out", _events),
    Counter("swap_ins", "swap-ins", "pages", "swap_in", _events),
    Counter("kswapd_wakes", "kswapd wakes", "wakes", "kswapd_wake", _events),
)
_COUNTERS_OF: dict[str, tuple[Counter, ...]] = {
    name: tuple(c for c in COUNTERS if c.tracepoint == name) for name in dict.fromkeys(c.tracepoint for c in COUNTERS)
}


#: kmem:rss_stat members by the memory kind they count.
RSS_KINDS = {"MM_ANONPAGES": "anon", "MM_FILEPAGES": "file", "MM_SHMEMPAGES": "shmem", "MM_SWAPENTS": "swap"}


@dataclass(frozen=True)
class ProcessMemory:
    """One process's memory as its rss_stat events show it: by kind (``anon``,
    ``file``, ``shmem``, ``swap``), the largest and the last value, in bytes, and
    when it was first and last seen (ns)."""

    pid: int
    comm: str
    peak: Mapping[str, int]
    final: Mapping[str, int]
    first_ns: int
    last_ns: int

    @property
    def peak_rss(self) -> int:
        """The largest of anon + file + shmem at any one rss_stat (resident bytes)."""
        return self.peak.get("rss", 0)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "peak": dict(self.peak), "final": dict(self.final),
                "first_ns": self.first_ns, "last_ns": self.last_ns}


@dataclass(frozen=True)
class TraceSummary:
    """What one trace shows: its inputs (from the header), outcome and counters.

    ``events`` maps tracepoint name to events read (non-zero only); ``end_ns`` is
    the simulated time the run ended (the footer's, else the last event's).
    ``complete`` is false when the footer is missing or says the recording was
    aborted (an interrupted ``record``/``replay``); ``damage`` and ``warnings``
    say what the reader lost.
    """

    trace: str
    scenario: str
    meta: Mapping[str, Any]
    events: dict[str, int]
    total_events: int
    end_ns: int
    trace_bytes: int
    snapshots: list[dict[str, Any]]
    oom_kills: tuple[OomKill, ...]
    refusals: tuple[Refusal, ...]
    errors: list[dict[str, Any]]
    pids: dict[str, int]
    memory_peak: MemoryByKind | None
    memory_final: MemoryByKind | None
    #: every :data:`COUNTERS` figure, by key
    counts: dict[str, int]
    complete: bool
    damage: Damage | None
    warnings: tuple[str, ...] = ()
    footer_oom_kills: list[dict[str, Any]] | None = None
    panic: str | None = None
    #: every process with rss_stat events, by pid
    processes: Mapping[int, ProcessMemory] = field(default_factory=dict)
    #: each memory cgroup's largest usage read (memcg_stat), bytes
    memcg_peak: Mapping[str, int] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        """The :data:`COUNTERS` of this trace, by key, in display order."""
        return {c.key: self.counts[c.key] for c in COUNTERS}

    @property
    def major_faults(self) -> int:
        return self.counts["major_faults"]

    @property
    def reclaimed_kswapd_pages(self) -> int:
        return self.counts["reclaimed_kswapd_pages"]

    @property
    def reclaimed_direct_pages(self) -> int:
        return self.counts["reclaimed_direct_pages"]

    @property
    def reclaimed_memcg_pages(self) -> int:
        return self.counts["reclaimed_memcg_pages"]

    @property
    def reclaimed_pages(self) -> int:
        """Pages reclaimed by kswapd, directly and by memcg reclaim together."""
        return self.reclaimed_kswapd_pages + self.reclaimed_direct_pages + self.reclaimed_memcg_pages

    @property
    def swap_outs(self) -> int:
        return self.counts["swap_outs"]

    @property
    def swap_ins(self) -> int:
        return self.counts["swap_ins"]

    @property
    def kswapd_wakes(self) -> int:
        return self.counts["kswapd_wakes"]

    def as_record_dict(self) -> dict[str, Any]:
        """This trace in the shape of ``memtrace record --json``.

        ``oom_kills`` and ``errors`` are the recorder's footer lists when the file
        has a footer (so a summary of a fresh recording equals what ``record``
        printed, apart from the meminfo lines a snapshot event does not carry);
        otherwise they are rebuilt from events (errors then only as refusals).
        """
        sysctl = self.meta.get("sysctl", {})
        kills = self.footer_oom_kills
        if kills is None:
            kills = [k.as_dict() for k in self.oom_kills]
        return {
            "scenario": self.scenario,
            "trace": self.trace,
            "sysctl": dict(sysctl) if isinstance(sysctl, Mapping) else {},
            "events": dict(self.events),
            "snapshots": list(self.snapshots),
            "oom_kills": kills,
            "errors": list(self.errors),
            "trace_bytes": self.trace_bytes,
            "duration_ns": self.end_ns,
            "pids": dict(self.pids),
            "panic": self.panic,
        }


@dataclass
class Summarizer:
    """A bus consumer folding batches into the counters of a :class:`TraceSummary`.

    Feed it batches in ``seq`` order (``TraceReader.ordered_batches``, or the bus);
    then :meth:`finish` with what the reader learnt of the file.
    """

    events: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    peak: list[int] | None = None
    final: list[int] | None = None
    final_seq: int = -1
    counts: dict[str, int] = field(default_factory=lambda: {c.key: 0 for c in COUNTERS})
    oom_kills: list[OomKill] = field(default_factory=list)
    vm_refusals: list[Refusal] = field(default_factory=list)
    mmap_refusals: list[Refusal] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    panics: list[str] = field(default_factory=list)
    tasks: TaskTable = field(default_factory=TaskTable)
    #: comm -> the first pid started with it
    pids: dict[str, int] = field(default_factory=dict)
    #: pid -> kind -> [peak, last] bytes; pid -> [first, last] ns
    rss: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    rss_seen: dict[int, list[int]] = field(default_factory=dict)
    memcg_peak: dict[str, int] = field(default_factory=dict)

    def on_batch(self, batch: EventBatch) -> None:
        name = batch.tp.name
        n = batch.n
        if not n:
            return
        self.events[name] = self.events.get(name, 0) + n
        ts = batch.ints("ts_ns")
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts_ns = lo if self.first_ts_ns is None else min(self.first_ts_ns, lo)
        self.last_ts_ns = hi if self.last_ts_ns is None else max(self.last_ts_ns, hi)
        if self.tasks.folds(batch):
            self.tasks.on_batch(batch)
            for pid in self.tasks.started(batch):
                self.pids.setdefault(self.tasks.comm(pid), pid)
        for counter in _COUNTERS_OF.get(name, ()):
            self.counts[counter.key] += counter.count(batch)
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, batch)

    def comm(self, pid: int) -> str:
        """The comm of ``pid`` from the task events so far; "" if none named it."""
        comm = self.tasks.comm(pid)
        return "" if comm == UNKNOWN_COMM else comm

    # -- handlers, one per tracepoint of interest

    def _oom_kill(self, b: EventBatch) -> None:
        for rec in b.records():
            f = rec.fields
            self.oom_kills.append(OomKill(
                pid=int(f.get("victim_pid", f["pid"])), comm=str(f.get("comm", "")),
                points=int(f.get("points", 0)), ts_ns=int(f["ts_ns"]), seq=int(f["seq"]),
                oom_id=int(f.get("oom_id", 0)), constraint=str(f.get("constraint", "")),
                memcg=str(f.get("memcg", "")), trigger_pid=int(f["pid"]),
            ))

    def _vm_enough_memory(self, b: EventBatch) -> None:
        for rec in b.records():
            f = rec.fields
            pid = int(f["pid"])
            self.vm_refusals.append(Refusal(pid, self.comm(pid), str(f.get("op", "")),
                                            int(f["ts_ns"])))

    def _mmap(self, b: EventBatch) -> None:
        if not b.tp.has_field("ret"):
            return
        ret = b.ints("ret")
        pids, ts = b.ints("pid"), b.ints("ts_ns")
        for i in np.flatnonzero(ret == ENOMEM).tolist():
            pid = int(pids[i])
            self.mmap_refusals.append(Refusal(pid, self.comm(pid), "mmap", int(ts[i])))

    def _rss_stat(self, b: EventBatch) -> None:
        if not all(b.tp.has_field(f) for f in ("mm_pid", "member", "size_bytes")):
            return
        for ts, pid, member, size in zip(b.ints("ts_ns").tolist(), b.ints("mm_pid").tolist(), b.enum_names("member"),
                                         b.ints("size_bytes").tolist()):
            kind = RSS_KINDS.get(member)
            if kind is None:
                continue
            kinds = self.rss.setdefault(pid, {})
            value = kinds.setdefault(kind, [0, 0])
            value[0], value[1] = max(value[0], size), size
            if kind != "swap":
                rss = sum(kinds[k][1] for k in ("anon", "file", "shmem") if k in kinds)
                total = kinds.setdefault("rss", [0, 0])
                total[0], total[1] = max(total[0], rss), rss
            seen = self.rss_seen.setdefault(pid, [ts, ts])
            seen[0], seen[1] = min(seen[0], ts), max(seen[1], ts)

    def _memcg_stat(self, b: EventBatch) -> None:
        if not (b.tp.has_field("path") and b.tp.has_field("usage_bytes")):
            return
        for path, usage in zip(b.strs("path"), b.ints("usage_bytes").tolist()):
            self.memcg_peak[path] = max(self.memcg_peak.get(path, 0), int(usage))

    def _oom_panic(self, b: EventBatch) -> None:
        if b.tp.has_field("reason"):
            self.panics.extend(b.strs("reason"))

    def _meminfo(self, b: EventBatch) -> None:
        needed = ("anon_pages", "cached", "shmem", "swap_total", "swap_free")
        if not all(b.tp.has_field(c) for c in needed):
            return

        def col(name: str) -> np.ndarray:
            return b.ints(name).astype(np.int64)

        anon = col("anon_pages")
        shmem = col("shmem")
        file = np.maximum(col("cached") - shmem, 0)
        swap = np.maximum(col("swap_total") - col("swap_free"), 0)
        kinds = (anon, file, shmem, swap)
        peak = [int(k.max()) for k in kinds]
        self.peak = peak if self.peak is None else [max(x, y) for x, y in zip(self.peak, peak, strict=True)]
        seq = b.ints("seq")
        last = int(np.argmax(seq))
        if int(seq[last]) > self.final_seq:
            self.final_seq = int(seq[last])
            self.final = [int(k[last]) for k in kinds]

    def _snapshot(self, b: EventBatch) -> None:
        self._meminfo(b)
        for rec in b.records():
            f = rec.fields
            mi = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}
            try:
                free = free_columns(mi).as_dict()
            except KeyError:
                free = {}
            self.snapshots.append({"label": f.get("label", ""), "ts_ns": int(f["ts_ns"]),
                                   "free": free, "meminfo": mi})

    # -- result

    def finish(
        self,
        trace: str,
        meta: Mapping[str, Any],
        footer: Mapping[str, Any] | None,
        *,
        trace_bytes: int,
        damage: Damage | None = None,
        warnings: Iterable[str] = (),
    ) -> TraceSummary:
        """The summary of everything fed so far, with the file's header and footer."""
        extra = footer.get("extra", {}) if isinstance(footer, Mapping) else {}
        extra = extra if isinstance(extra, Mapping) else {}
        errors = extra.get("errors")
        refusals: list[Refusal]
        if isinstance(errors, list):
            refusals = [
                Refusal(int(e.get("pid", 0)), str(e.get("comm", "")), str(e.get("op", "")),
                        int(e.get("ts_ns", 0)), None if e.get("step") is None else str(e.get("step")),
                        str(e.get("message", "")))
                for e in errors if isinstance(e, Mapping) and e.get("errno") == "ENOMEM"
            ]
        else:
            errors = [r.as_dict() | {"errno": "ENOMEM"} for r in self._event_refusals()]
            refusals = self._event_refusals()
        end_ns = extra.get("end_ns")
        if not isinstance(end_ns, int):
            end_ns = self.last_ts_ns or 0
        pids = extra.get("pids")
        if not isinstance(pids, Mapping):
            pids = self.pids
        footer_kills = extra.get("oom_kills")
        panic = extra.get("panic")
        if panic is None and self.panics:
            panic = self.panics[0]
        scenario = meta.get("scenario", "")
        return TraceSummary(
            trace=trace,
            scenario=str(scenario) if scenario is not None else "",
            meta=meta,
            events=dict(self.events),
            total_events=sum(self.events.values()),
            end_ns=end_ns,
            trace_bytes=trace_bytes,
            snapshots=list(self.snapshots),
            oom_kills=tuple(self.oom_kills),
            refusals=tuple(refusals),
            errors=list(errors),
            pids=dict(pids),
            memory_peak=MemoryByKind(*self.peak) if self.peak is not None else None,
            memory_final=MemoryByKind(*self.final) if self.final is not None else None,
            counts=dict(self.counts),
            complete=isinstance(footer, Mapping) and footer.get("aborted") is not True,
            damage=damage,
            warnings=tuple(warnings),
            footer_oom_kills=list(footer_kills) if isinstance(footer_kills, list) else None,
            panic=str(panic) if panic is not None else None,
            processes={pid: ProcessMemory(pid, self.comm(pid), {k: v[0] for k, v in kinds.items()},
                                          {k: v[1] for k, v in kinds.items()}, *self.rss_seen[pid])
                       for pid, kinds in self.rss.items()},
            memcg_peak=dict(self.memcg_peak),
        )

    def _event_refusals(self) -> list[Refusal]:
        """Refusals read from events: vm_enough_memory, else mmap returning -ENOMEM."""
        found = self.vm_refusals or self.mmap_refusals
        return [Refusal(r.pid, r.comm or self.comm(r.pid), r.op, r.ts_ns) for r in found]


_HANDLERS: dict[str, Callable[[Summarizer, EventBatch], None]] = {
    "oom_kill": Summarizer._oom_kill,
    "vm_enough_memory": Summarizer._vm_enough_memory,
    "mmap": Summarizer._mmap,
    "oom_panic": Summarizer._oom_panic,
    "rss_stat": Summarizer._rss_stat,
    "memcg_stat": Summarizer._memcg_stat,
    "meminfo_sample": Summarizer._meminfo,
    "snapshot": Summarizer._snapshot,
}


#: Tracepoints the summary only counts (no handler, no task fold): their order
#: against the others does not matter.
_COUNTED_ONLY = frozenset({"page_fault"})


def file_size(path: str | os.PathLike[str]) -> int:
    """Size of ``path`` in bytes, or 0 when it cannot be read."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def summarize_trace(path: str | os.PathLike[str]) -> TraceSummary:
    """Read a trace once (streaming) and summarise it; damage is reported, not raised.

    Raises TraceFormatError only when the file is not a readable trace at all.
    """
    reader = TraceReader(path)
    folder = Summarizer()
    # Page faults are only counted (events, major faults, first and last time):
    # folded a chunk at a time as read, they no longer cut the ordered runs of the
    # other tracepoints apart (an imported trace alternates faults and rss_stat).
    for batch in reader.ordered_batches(skip=_COUNTED_ONLY, skipped=folder.on_batch):
        folder.on_batch(batch)
    return folder.finish(reader.path, reader.meta, reader.footer, trace_bytes=file_size(reader.path),
                         damage=reader.damage, warnings=reader.warnings)
