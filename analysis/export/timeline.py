"""What a timeline viewer shows of a trace, folded from its events in ``seq`` order.

:func:`timeline` streams a trace as :data:`Item` values, which :mod:`.perfetto` and
:mod:`.chrome` write in their formats:

- **processes** (:class:`ProcessSeen`): every task the trace names, with its comm
  (from :class:`memtrace.tracer.tasks.TaskTable`, so renames follow); a process
  track groups everything of one pid;
- **counters** (:class:`CounterValue`):

  - machine-wide ``/proc/meminfo`` lines (:data:`MEMINFO_COUNTERS`), from every
    ``meminfo_sample`` and ``snapshot`` reading, in bytes;
  - each process's RSS by kind (``kmem:rss_stat`` members: file, anon, shmem, swap
    entries), in bytes, on the process's track group;
  - each memory cgroup's limit (``cgroup`` mkdir/set_max; 0 is unlimited and not
    drawn) and its usage where the trace reads it (``memcg_stat``, at each memcg OOM);

- **slices** (:class:`SliceBegin`/:class:`SliceEnd`): direct and memcg reclaim runs
  of a task (``reclaim_begin`` -> ``reclaim_end``: the allocation stalls), and
  kswapd's awake periods (``kswapd_wake`` -> ``kswapd_sleep``), on a ``kswapd`` track;
- **instants** (:class:`Instant`): OOM kills (victim, points, constraint, memcg as
  arguments) on the triggering task and on an ``OOM`` track, ENOMEM refusals of the
  overcommit policy on the refused task, ``drop_caches`` and labelled snapshots.

Times are the trace's own nanoseconds. Everything else in the trace (page faults,
page cache, LRU moves) is left to the table exports: a viewer draws the counters
they add up to. Memory is flat: one pass, a few values per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from memtrace.tracer.batch import EventBatch
from memtrace.tracer.tasks import TASK_TRACEPOINTS, TaskTable
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracepoints import MEMINFO_FIELDS

__all__ = [
    "MEMINFO_COUNTERS",
    "CounterTrack",
    "CounterValue",
    "Instant",
    "Item",
    "ProcessSeen",
    "SliceBegin",
    "SliceEnd",
    "Track",
    "timeline",
]

#: The /proc/meminfo lines drawn as machine-wide counters, in bytes.
MEMINFO_COUNTERS = (
    "MemFree", "MemAvailable", "Buffers", "Cached", "AnonPages", "Shmem", "Mapped", "Dirty", "Writeback",
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)", "Unevictable", "Slab", "PageTables",
    "SwapFree", "Committed_AS",
)
_FIELD_OF = dict(MEMINFO_FIELDS)
#: kmem:rss_stat members as counter names.
_RSS_NAMES = {"MM_FILEPAGES": "RSS file", "MM_ANONPAGES": "RSS anon", "MM_SHMEMPAGES": "RSS shmem",
              "MM_SWAPENTS": "swap entries"}
#: Tracepoints the timeline reads; the rest are skipped without decoding their rows.
_READS = frozenset({
    "meminfo_sample", "snapshot", "rss_stat", "cgroup", "memcg_stat", "reclaim_begin", "reclaim_end",
    "kswapd_wake", "kswapd_sleep", "oom_kill", "vm_enough_memory", "drop_caches",
}) | TASK_TRACEPOINTS


@dataclass(frozen=True)
class Track:
    """Where slices and instants go: a process's (``pid``) or a machine-wide one
    (``pid`` None), by name."""

    name: str
    pid: int | None = None


@dataclass(frozen=True)
class CounterTrack:
    """A counter: its name, the process it belongs to (None: machine-wide) and unit."""

    name: str
    pid: int | None = None
    unit: str = "bytes"


@dataclass(frozen=True)
class ProcessSeen:
    """A process named for the first time, or renamed."""

    ts_ns: int
    pid: int
    comm: str


@dataclass(frozen=True)
class CounterValue:
    ts_ns: int
    track: CounterTrack
    value: int


@dataclass(frozen=True)
class SliceBegin:
    ts_ns: int
    track: Track
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SliceEnd:
    ts_ns: int
    track: Track
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Instant:
    ts_ns: int
    track: Track
    name: str
    args: dict[str, Any] = field(default_factory=dict)


Item = ProcessSeen | CounterValue | SliceBegin | SliceEnd | Instant

#: The machine-wide tracks.
KSWAPD = Track("kswapd")
OOM = Track("OOM")
EVENTS = Track("events")


class _Folder:
    """Turns batches into items; keeps only the open slices and the names seen."""

    def __init__(self) -> None:
        self.tasks = TaskTable()
        self.named: dict[int, str] = {}
        self.open_reclaim: dict[int, str] = {}
        self.kswapd_awake = False
        self.limits: dict[str, int] = {}

    def names(self, ts_ns: int) -> Iterator[Item]:
        for task in self.tasks:
            if self.named.get(task.pid) != task.comm:
                self.named[task.pid] = task.comm
                yield ProcessSeen(ts_ns, task.pid, task.comm)

    def fold(self, batch: EventBatch) -> Iterator[Item]:
        name = batch.tp.name
        if name in TASK_TRACEPOINTS:
            self.tasks.on_batch(batch)
            yield from self.names(int(batch.ints("ts_ns")[0]))
        handler = getattr(self, f"_{name}", None)
        if handler is not None:
            yield from handler(batch)

    def _task(self, pid: int, ts_ns: int) -> Iterator[Item]:
        """A process track for ``pid`` before anything is drawn on it."""
        if pid not in self.named:
            self.named[pid] = comm = self.tasks.comm(pid, f"pid {pid}")
            yield ProcessSeen(ts_ns, pid, comm)

    def _meminfo_sample(self, b: EventBatch) -> Iterator[Item]:
        lines = [(CounterTrack(line), b.ints(_FIELD_OF[line]).tolist()) for line in MEMINFO_COUNTERS
                 if b.tp.has_field(_FIELD_OF[line])]
        for i, t in enumerate(b.ints("ts_ns").tolist()):
            for track, values in lines:
                yield CounterValue(t, track, int(values[i]))

    def _snapshot(self, b: EventBatch) -> Iterator[Item]:
        yield from self._meminfo_sample(b)
        for t, label in zip(b.ints("ts_ns").tolist(), b.strs("label")):
            yield Instant(t, EVENTS, f"snapshot {label}", {"label": label})

    def _rss_stat(self, b: EventBatch) -> Iterator[Item]:
        for t, pid, member, size in zip(b.ints("ts_ns").tolist(), b.ints("mm_pid").tolist(), b.enum_names("member"),
                                        b.ints("size_bytes").tolist()):
            yield from self._task(pid, t)
            yield CounterValue(t, CounterTrack(_RSS_NAMES.get(member, member), pid), int(size))

    def _cgroup(self, b: EventBatch) -> Iterator[Item]:
        for t, op, path, limit in zip(b.ints("ts_ns").tolist(), b.enum_names("op"), b.strs("path"),
                                      b.ints("limit_bytes").tolist()):
            if op in ("mkdir", "set_max") and limit:
                yield CounterValue(t, CounterTrack(f"memcg {path} limit"), int(limit))

    def _memcg_stat(self, b: EventBatch) -> Iterator[Item]:
        for t, path, usage in zip(b.ints("ts_ns").tolist(), b.strs("path"), b.ints("usage_bytes").tolist()):
            yield CounterValue(t, CounterTrack(f"memcg {path} usage"), int(usage))

    def _reclaim_begin(self, b: EventBatch) -> Iterator[Item]:
        for t, pid, kind, order, memcg in zip(b.ints("ts_ns").tolist(), b.ints("pid").tolist(), b.enum_names("kind"),
                                              b.ints("order").tolist(), b.strs("memcg")):
            yield from self._task(pid, t)
            if pid in self.open_reclaim:  # an unmatched begin: close it where the next opens
                yield SliceEnd(t, Track("reclaim", pid))
            self.open_reclaim[pid] = kind
            args: dict[str, Any] = {"order": int(order)}
            if memcg:
                args["memcg"] = memcg
            yield SliceBegin(t, Track("reclaim", pid), f"{kind} reclaim", args)

    def _reclaim_end(self, b: EventBatch) -> Iterator[Item]:
        for t, pid, scanned, reclaimed in zip(b.ints("ts_ns").tolist(), b.ints("pid").tolist(),
                                              b.ints("nr_scanned").tolist(), b.ints("nr_reclaimed").tolist()):
            if self.open_reclaim.pop(pid, None) is not None:
                yield SliceEnd(t, Track("reclaim", pid), {"nr_scanned": int(scanned), "nr_reclaimed": int(reclaimed)})

    def _kswapd_wake(self, b: EventBatch) -> Iterator[Item]:
        for t, order in zip(b.ints("ts_ns").tolist(), b.ints("order").tolist()):
            if not self.kswapd_awake:
                self.kswapd_awake = True
                yield SliceBegin(t, KSWAPD, "kswapd awake", {"order": int(order)})

    def _kswapd_sleep(self, b: EventBatch) -> Iterator[Item]:
        reclaimed = b.ints("nr_reclaimed").tolist() if b.tp.has_field("nr_reclaimed") else [None] * b.n
        for t, n in zip(b.ints("ts_ns").tolist(), reclaimed):
            if self.kswapd_awake:
                self.kswapd_awake = False
                yield SliceEnd(t, KSWAPD, {} if n is None else {"nr_reclaimed": int(n)})

    def _oom_kill(self, b: EventBatch) -> Iterator[Item]:
        for i, t in enumerate(b.ints("ts_ns").tolist()):
            pid = int(b.ints("pid")[i])
            victim = int(b.ints("victim_pid")[i])
            args: dict[str, Any] = {
                "victim_pid": victim, "victim": b.strs("comm")[i], "points": int(b.ints("points")[i]),
                "constraint": b.enum_names("constraint")[i], "oom_score_adj": int(b.ints("oom_score_adj")[i]),
            }
            if b.strs("memcg")[i]:
                args["memcg"] = b.strs("memcg")[i]
            yield from self._task(pid, t)
            yield from self._task(victim, t)
            name = f"OOM kill: {args['victim']} ({victim})"
            yield Instant(t, OOM, name, args)
            yield Instant(t, Track("events", victim), name, args)

    def _vm_enough_memory(self, b: EventBatch) -> Iterator[Item]:
        for t, pid, pages, op in zip(b.ints("ts_ns").tolist(), b.ints("pid").tolist(), b.ints("nr_pages").tolist(),
                                     b.strs("op")):
            yield from self._task(pid, t)
            yield Instant(t, Track("events", pid), f"ENOMEM ({op})", {"nr_pages": int(pages), "op": op})

    def _drop_caches(self, b: EventBatch) -> Iterator[Item]:
        for t, value, pages in zip(b.ints("ts_ns").tolist(), b.ints("value").tolist(), b.ints("nr_pages").tolist()):
            yield Instant(t, EVENTS, f"drop_caches {value}", {"value": int(value), "nr_pages": int(pages)})

    def close(self, ts_ns: int) -> Iterator[Item]:
        """End the slices still open when the trace ends."""
        for pid in sorted(self.open_reclaim):
            yield SliceEnd(ts_ns, Track("reclaim", pid))
        self.open_reclaim.clear()
        if self.kswapd_awake:
            self.kswapd_awake = False
            yield SliceEnd(ts_ns, KSWAPD)


def timeline(trace: str | os.PathLike[str] | TraceReader) -> Iterator[Item]:
    """The timeline items of ``trace``, in ``seq`` order, streamed."""
    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    folder = _Folder()
    last_ts = 0
    for batch in reader.ordered_batches():
        if batch.n == 0 or batch.tp.name not in _READS:
            continue
        last_ts = max(last_ts, int(batch.ints("ts_ns")[-1]))
        yield from folder.fold(batch)
    yield from folder.close(last_ts)
