"""Decoded live events, in time order, into the importer's :class:`~..builder.TraceBuilder`.

Each CPU's ring buffer is in time order; the CPUs are merged here: offline (a
recording's spooled pages) by :func:`merge_cpus`, which holds back the events newer
than the oldest of the CPUs' latest, and live by :class:`LiveMerger`, which holds
back those newer than a watermark (now on the trace clock, less a margin: an event
older than that was committed before the drain began).

:class:`LiveFeeder` hands the merged events to the builder as ``perf script |
memtrace import`` would: the hot events (``kmem:rss_stat``,
``exceptions:page_fault_user``) to the mappers' row-level entry points
(:meth:`..mapping.kmem.Kmem.rss_event`, :meth:`..mapping.exceptions.Exceptions.fault_event`)
as numbers, the others as the text their ``TP_printk`` prints (:mod:`.payload`) to
:meth:`TraceBuilder.event`. The raw events carry no comm and no tgid (perf keeps
them from its own side-band records), so the feeder keeps them: from /proc at the
start, then from ``task:task_newtask`` (``clone_flags & CLONE_THREAD``: a thread of
its parent's process), ``sched:sched_process_fork`` and ``task:task_rename`` (every
comm change, an exec's included, fires it before the change). An event gets the
comm of its thread, as perf prints it. ``task_newtask`` and the clock-sync
``trace_marker`` writes are used here and not passed on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..builder import TraceBuilder
from .payload import fault_text, payload_text, rss_stat_text
from .ringbuf import EventChunk
from .session import SYNC_PREFIX
from .targets import TaskInfo
from .tracefs import EventFormat

__all__ = ["CLONE_THREAD", "CLONE_VM", "UNKNOWN_COMM", "LiveFeeder", "LiveMerger", "merge_cpus"]

#: include/uapi/linux/sched.h
CLONE_VM = 0x00000100
CLONE_THREAD = 0x00010000
#: The comm of a task nothing named, as perf prints it.
UNKNOWN_COMM = "<...>"
_U64 = 1 << 64


def merge_cpus(streams: Iterable[Iterator[EventChunk]]) -> Iterator[EventChunk]:
    """The events of each CPU's stream (each in time order) as one stream in time
    order, a chunk at a time: an event is released once every CPU that still has
    events has shown one at least as late."""
    its = list(streams)
    pending: list[EventChunk] = [EventChunk.empty() for _ in its]
    done = [False] * len(its)

    def refill(i: int) -> None:
        while not done[i] and len(pending[i]) == 0:
            nxt = next(its[i], None)
            if nxt is None:
                done[i] = True
            else:
                pending[i] = nxt

    for i in range(len(its)):
        refill(i)
    while True:
        live = [i for i in range(len(its)) if len(pending[i])]
        if not live:
            return
        fronts = [int(pending[i].ts_ns.max()) for i in live if not done[i]]
        mark = min(fronts) if fronts else None
        out: list[EventChunk] = []
        for i in live:
            chunk = pending[i]
            if mark is None:
                out.append(chunk)
                pending[i] = EventChunk.empty()
                continue
            due = chunk.ts_ns <= mark
            if bool(due.all()):
                out.append(chunk)
                pending[i] = EventChunk.empty()
            elif bool(due.any()):
                out.append(chunk.take(np.flatnonzero(due)))
                pending[i] = chunk.take(np.flatnonzero(~due))
        merged = EventChunk.concat(out)
        if len(merged):
            yield merged.take(np.argsort(merged.ts_ns, kind="stable"))
        for i in range(len(its)):
            refill(i)


class LiveMerger:
    """Chunks of any CPU in, events older than a watermark out, in time order."""

    def __init__(self) -> None:
        self.pending: list[EventChunk] = []

    def add(self, chunk: EventChunk) -> None:
        if len(chunk):
            self.pending.append(chunk)

    def release(self, watermark_ns: int | None = None) -> EventChunk:
        """The events at or before ``watermark_ns`` (None: all), in time order."""
        held = EventChunk.concat(self.pending)
        self.pending = []
        if len(held) == 0:
            return held
        if watermark_ns is None:
            return held.take(np.argsort(held.ts_ns, kind="stable"))
        due = held.ts_ns <= watermark_ns
        if not bool(due.all()):
            self.pending.append(held.take(np.flatnonzero(~due)))
            held = held.take(np.flatnonzero(due))
        return held.take(np.argsort(held.ts_ns, kind="stable"))


class LiveFeeder:
    """Feeds time-ordered :class:`EventChunk`\\ s into ``builder`` (see the module
    docstring). ``tasks`` are the tasks known at the start (comm, tgid).

    One thing the feeder tells the importer that its events alone would not in time:
    whose mm a fork's copies are. ``fork()`` copies the parent's page tables, and
    with them its RSS counters, into the child's new mm in the parent's context
    (``kmem:rss_stat`` with ``curr=0``), before ``task:task_newtask`` names the
    child; the importer would take the mm for the parent's (the task in whose
    context it fired). So ``curr=0`` counters of an mm nobody owns yet, fired by a
    task whose own mm is another, wait for that task's next event: when it is the
    ``task_newtask`` of a process (no ``CLONE_VM``), the mm is the child's.
    """

    def __init__(self, builder: TraceBuilder, formats: dict[int, EventFormat], tasks: Iterable[TaskInfo] = ()) -> None:
        self.builder = builder
        self.names = {eid: fmt.full_name for eid, fmt in formats.items()}
        by_name = {fmt.full_name: eid for eid, fmt in formats.items()}
        self.rss_id = by_name.get("kmem:rss_stat", -1)
        self.fault_id = by_name.get("exceptions:page_fault_user", -1)
        #: tid -> its comm now
        self.comms: dict[int, str] = {}
        for t in tasks:
            self.comms[t.tid] = t.comm
            if t.tgid != t.tid:
                builder.thread(t.tid, t.tgid)
        #: tid -> the curr=0 rss_stat rows of an unowned mm it fired, waiting
        self.held: dict[int, list[tuple[int, int, int, int, int, int]]] = {}
        #: mms whose owner a fork told (see the class docstring)
        self.fork_copies = 0
        #: real tracepoint -> events read
        self.counts: dict[str, int] = {}
        #: clock-sync marker text -> its trace time
        self.markers: dict[str, int] = {}
        self.first_ts_ns: int | None = None
        self.last_ts_ns = 0

    def feed(self, chunk: EventChunk) -> None:
        """One chunk of events, in time order (and later than any fed before)."""
        n = len(chunk)
        if n == 0:
            return
        ids, counts = np.unique(chunk.event_id, return_counts=True)
        for eid, count in zip(ids.tolist(), counts.tolist()):
            name = self.names.get(eid, f"unknown:{eid}")
            self.counts[name] = self.counts.get(name, 0) + count
        if self.first_ts_ns is None:
            self.first_ts_ns = int(chunk.ts_ns[0])
        self.last_ts_ns = max(self.last_ts_ns, int(chunk.ts_ns[-1]))
        b = self.builder
        out = b.out
        comms, bcomms, tgid, procs = self.comms, b.comms, b.tgid, b.work.procs
        rss_id, fault_id = self.rss_id, self.fault_id
        hot = (rss_id, fault_id)
        rss_event, fault_event = b.kmem.rss_event, b.exceptions.fault_event
        fields = chunk.fields
        held = self.held
        last_ts = b.last_ts
        passed = 0
        rows = zip(chunk.ts_ns.tolist(), chunk.tid.tolist(), chunk.event_id.tolist(), chunk.a.tolist(),
                   chunk.b.tolist(), chunk.c.tolist(), chunk.d.tolist())
        for i, (ts, tid, eid, a, bb, c, d) in enumerate(rows):
            if eid in hot:
                passed += 1
                pid = tgid.get(tid, tid) if tgid else tid
                if eid == rss_id:
                    if not bb and self._unowned(a):
                        p = procs.get(pid)
                        if p is not None and p.mm_id is not None and p.mm_id != a:
                            held.setdefault(tid, []).append((ts, tid, a, bb, c, d))
                            continue
                elif a < 0:
                    a += _U64  # an address above 2**63 (the vsyscall page)
                if held and tid in held:
                    self._release(tid, None)
                    last_ts = b.last_ts
                comm = comms.get(tid, UNKNOWN_COMM)
                if bcomms.get(pid) == comm and (eid == fault_id or 0 <= c < 4):
                    # TraceBuilder.event()'s steps for a known task whose comm is
                    # unchanged, with the numbers instead of the text.
                    if ts > last_ts:
                        last_ts = b.last_ts = ts
                        if b.first_ts is None:
                            b.first_ts = ts
                    if eid == rss_id:
                        rss_event(comm, pid, ts, a, bb != 0, c, d)
                    else:
                        fault_event(comm, pid, ts, a, (bb & 2) != 0)
                    if out.seq >= out.next_flush:
                        b.flush()
                    continue
                if eid == rss_id:
                    b.event(comm, tid, ts, "kmem:rss_stat", rss_stat_text(a, bb, c, d))
                else:
                    b.event(comm, tid, ts, "exceptions:page_fault_user", fault_text(a, c, bb))
                last_ts = b.last_ts
                continue
            if held and tid in held:
                self._release(tid, fields.get(i))
            if self._rare(ts, tid, self.names.get(eid, ""), fields.get(i, {})):
                passed += 1
            last_ts = b.last_ts
        b.lines += passed

    def _unowned(self, mm_id: int) -> bool:
        """No live process has ``mm_id`` as its mm now (an mm_struct the kernel
        freed is reused, hash and all: the child of a shell that exec'd may get its
        old mm's)."""
        owner = self.builder.kmem.mm_owner.get(mm_id)
        if owner is None:
            return True
        p = self.builder.work.procs.get(owner)
        return p is None or p.ended or p.mm_id != mm_id

    def finish(self) -> None:
        """The end of the events: counters still waiting are fed as they are."""
        for tid in list(self.held):
            self._release(tid, None)

    def _release(self, tid: int, fields: dict[str, int | str] | None) -> None:
        """Feed the counters ``tid`` held, the mm a fork's child's when ``fields``
        are those of the task_newtask of a process."""
        rows = self.held.pop(tid)
        b = self.builder
        if fields is not None and "clone_flags" in fields and not int(fields["clone_flags"]) & CLONE_VM:
            child = int(fields.get("pid", 0))
            for mm in {row[2] for row in rows}:
                b.kmem.mm_owner[mm] = child
                self.fork_copies += 1
        for ts, _tid, mm, curr, member, size in rows:
            pid = b.tgid.get(tid, tid)
            comm = self.comms.get(tid, UNKNOWN_COMM)
            if b.comms.get(pid) == comm and 0 <= member < 4:
                if ts > b.last_ts:
                    b.last_ts = ts
                b.kmem.rss_event(comm, pid, ts, mm, curr != 0, member, size)
            else:
                b.event(comm, tid, ts, "kmem:rss_stat", rss_stat_text(mm, curr, member, size))
        if b.out.seq >= b.out.next_flush:
            b.flush()

    def _rare(self, ts: int, tid: int, name: str, f: dict[str, int | str]) -> bool:
        """Any event but the hot two: side tables first, then to the builder as
        text. False when it was only used here."""
        comms = self.comms
        if name == "ftrace:print":
            text = str(f.get("buf", ""))
            if text.startswith(SYNC_PREFIX):
                self.markers.setdefault(text, ts)
            return False
        if name == "task:task_newtask":
            child = int(f.get("pid", 0))
            comms[child] = str(f.get("comm", comms.get(tid, UNKNOWN_COMM)))
            if int(f.get("clone_flags", 0)) & CLONE_THREAD:
                self.builder.thread(child, self.builder.tgid.get(tid, tid))
            return False
        comm = comms.get(tid, UNKNOWN_COMM)
        if name == "sched:sched_process_fork":
            comms.setdefault(int(f.get("child_pid", 0)), str(f.get("child_comm", comm)))
        self.builder.event(comm, tid, ts, name, payload_text(name, f))
        if name == "task:task_rename":  # fired before the change: the event has the old comm
            comms[int(f.get("pid", tid))] = str(f.get("newcomm", comm))
        return True
