"""``memtrace trace --live``: a one-liner program run on the running kernel's events.

The capture (:class:`.session.CaptureSession`) decodes each drain's pages at once
(:mod:`.ringbuf`) and holds them in a :class:`.feed.LiveMerger` until they are older
than the watermark: now on the trace clock (CLOCK_MONOTONIC_RAW plus the offset the
start marker gave) less :data:`WATERMARK_SLACK_NS`; an event older than that was in
the buffer when the drain began, so the events released are in time order across
CPUs. They go through the importer's mappers (:mod:`.feed`) as in ``record --live``,
and the memtrace events those write reach the program's :class:`Tracer` in ``seq``
order: the program sees the same ``page_fault``, ``rss_stat``, ``mmap`` ... events as
on the trace ``record --live`` would write, so a program written for a trace file
runs live. Interval probes fire on the trace clock from the start, also while no
event comes (:meth:`Tracer.advance`); a Ctrl-C ends the run, and the program's END
probes and maps print then, as bpftrace's do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from memtrace.tracer.batch import EventBatch, concat
from memtrace.tracer.probes import Tracer
from memtrace.tracer.probes.runtime import TRACED_ALWAYS
from memtrace.tracer.tasks import TASK_TRACEPOINTS

from ..builder import TraceBuilder
from .feed import LiveFeeder, LiveMerger
from .record import SPOOL_PREFIX, kernel_version, remove_stale_spools
from .ringbuf import EventChunk, RingDecoder, walk_pages
from .session import SYNC_PREFIX, CaptureOptions, CaptureSession, DrainVerdict, stop_on_signals
from .targets import LiveTarget

__all__ = ["FEED_EVENTS", "SLICE_PAGES", "WATERMARK_SLACK_NS", "WORK_BUDGET_S", "LiveTraceResult", "seq_ordered",
           "trace_live"]

#: How far behind now (trace clock) the released events stay: an event is committed
#: within microseconds of its time stamp; 20 ms covers a preempted writer too.
WATERMARK_SLACK_NS = 20_000_000
#: Pages decoded at a time.
SLICE_PAGES = 64
#: Decoding and feeding between two drains stop after this long (s), so that the
#: kernel's buffers are emptied at least this often whatever the backlog.
WORK_BUDGET_S = 0.02
#: Events fed to the importer at a time.
FEED_EVENTS = 2048


@dataclass(frozen=True)
class LiveTraceResult:
    """How a live ``trace`` run went: the target, why it stopped, the events read
    and lost."""

    target: str
    stop_reason: str
    elapsed_ns: int
    events_read: int
    lost_events: int
    missing_tracepoints: list[str]
    warnings: list[str]


def seq_ordered(batches: Sequence[EventBatch]) -> Iterator[EventBatch]:
    """The events of ``batches`` (each in ``seq`` order) in global ``seq`` order, as
    maximal runs of one tracepoint's events."""
    by_tp: dict[str, list[EventBatch]] = {}
    for b in batches:
        if b.n:
            by_tp.setdefault(b.tp.name, []).append(b)
    merged = [concat(parts) for parts in by_tp.values()]
    if len(merged) <= 1:
        yield from merged
        return
    seqs = np.concatenate([m.ints("seq") for m in merged])
    owner = np.repeat(np.arange(len(merged)), [m.n for m in merged])
    local = np.concatenate([np.arange(m.n) for m in merged])
    order = np.argsort(seqs, kind="stable")
    run_owner = owner[order]
    cuts = np.flatnonzero(run_owner[1:] != run_owner[:-1]) + 1
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), order.size]):
        yield merged[int(run_owner[lo])].take(local[order[lo:hi]])


class _LiveRun:
    """The decoding, merging and feeding of one ``trace --live`` run.

    Reading and processing are kept apart so that processing never makes the
    kernel drop events: a drain only queues the pages (cheap); after it, the pages
    are decoded (oldest first) and the events fed for at most
    :data:`WORK_BUDGET_S` before the next drain, so that a burst is held in memory
    and caught up with later. The watermark is the older of now (less
    :data:`WATERMARK_SLACK_NS`) and the first time stamp of any page still queued;
    the events released under it are fed in order before any later release.
    """

    def __init__(self, session: CaptureSession, tracer: Tracer, builder: TraceBuilder,
                 say: Callable[[str], None]) -> None:
        self.session = session
        self.tracer = tracer
        self.builder = builder
        self.say = say
        self.merger = LiveMerger()
        self.written: list[EventBatch] = []
        builder.out.on_batch = self.written.append
        self.queued: dict[int, deque[bytes]] = {}
        self.decoder: RingDecoder | None = None
        self.feeder: LiveFeeder | None = None
        #: the tracepoints whose events the program sees: its probes', and those that
        #: name tasks and files (on a file, every tracepoint moves an interval
        #: program's clock; live, the clock moves on by itself)
        self.wanted = {name for p in tracer.probes for name in p.tracepoints} | set(TASK_TRACEPOINTS) | set(
            TRACED_ALWAYS)
        #: trace clock - CLOCK_MONOTONIC_RAW, once the start marker is read
        self.raw_offset_ns: int | None = None
        #: events released in time order, fed up to ready_at
        self.ready = EventChunk.empty()
        self.ready_at = 0
        #: the watermark of the last release
        self.released_to: int | None = None

    def begin(self) -> None:
        """The session has started: its formats and tasks are known."""
        s = self.session
        self.decoder = RingDecoder(s.formats, s.page_size)
        self.feeder = LiveFeeder(self.builder, s.formats, s.tasks.values())

    def on_pages(self, cpu: int, data: bytes) -> None:
        """A drain's pages of ``cpu``: queued, in slices of :data:`SLICE_PAGES`."""
        step = SLICE_PAGES * self.session.page_size
        q = self.queued.setdefault(cpu, deque())
        for at in range(0, len(data), step):
            q.append(data[at:at + step])

    def work(self, budget_s: float | None) -> None:
        """Decode queued slices, oldest first, for up to ``budget_s`` (None: all)."""
        assert self.decoder is not None
        until = None if budget_s is None else time.monotonic() + budget_s
        while True:
            heads = [(int.from_bytes(q[0][:8], "little"), cpu) for cpu, q in self.queued.items() if q]
            if not heads:
                return
            _ts, cpu = min(heads)
            self._decode(cpu, self.queued[cpu].popleft())
            if until is not None and time.monotonic() >= until:
                return

    def _decode(self, cpu: int, data: bytes) -> None:
        assert self.decoder is not None
        walk = walk_pages(data, self.decoder.page_size)
        for mark in walk.lost:
            self.session.loss.mark(cpu, mark.events)
            self.say(f"lost {mark.events if mark.events >= 0 else 'some'} events on cpu {cpu}")
        chunk = self.decoder.decode(data, walk)
        if self.raw_offset_ns is None:
            for row, fields in chunk.fields.items():
                text = fields.get("buf")
                if isinstance(text, str) and text.startswith(f"{SYNC_PREFIX} start"):
                    ts = int(chunk.ts_ns[row])
                    sync = self.session.sync({text: ts}).get("start")
                    if sync is not None:
                        self.raw_offset_ns = sync.trace_minus_monotonic_raw_ns
                        self.tracer.start_clock(ts)
        self.merger.add(chunk)

    def watermark(self) -> int | None:
        """The time up to which every event has been decoded (None: unknown yet)."""
        if self.raw_offset_ns is None:
            return None
        mark = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW) + self.raw_offset_ns - WATERMARK_SLACK_NS
        for q in self.queued.values():
            if q:
                mark = min(mark, int.from_bytes(q[0][:8], "little") - 1)
        return mark

    def _feed_ready(self, until: float | None) -> None:
        """Feed the released events, :data:`FEED_EVENTS` at a time, until ``until``
        (monotonic s; None: all of them)."""
        assert self.feeder is not None
        ready = self.ready
        while self.ready_at < len(ready):
            hi = min(len(ready), self.ready_at + FEED_EVENTS)
            self.feeder.feed(ready.slice(self.ready_at, hi))
            self.ready_at = hi
            if until is not None and time.monotonic() >= until:
                return

    def _release(self, watermark_ns: int | None) -> None:
        """Once the ready events are fed: release those up to ``watermark_ns``."""
        if self.ready_at >= len(self.ready):
            self.ready = self.merger.release(watermark_ns)
            self.ready_at = 0
            self.released_to = watermark_ns

    def _to_tracer(self) -> None:
        """What the importer wrote so far, to the program in ``seq`` order; its clock
        to the last watermark once every event before it reached it."""
        self.builder.flush()
        batches = list(self.written)
        self.written.clear()
        for batch in seq_ordered([b for b in batches if b.tp.name in self.wanted]):
            if self.tracer.exited:
                return
            self.tracer.on_batch(batch)
        if self.ready_at >= len(self.ready) and self.released_to is not None:
            self.tracer.advance(self.released_to)

    def after_drain(self) -> DrainVerdict:
        """After each drain: decoding and feeding, oldest first, for up to
        :data:`WORK_BUDGET_S`."""
        if self.feeder is None:
            return "idle"
        until = time.monotonic() + WORK_BUDGET_S
        while time.monotonic() < until:
            if self.ready_at < len(self.ready):
                self._feed_ready(until)
                continue
            if any(self.queued.values()):
                self.work(0.0)
            mark = self.watermark()
            if mark is None:
                break
            self._release(mark)
            if self.ready_at >= len(self.ready) and not any(self.queued.values()):
                break
        self._to_tracer()
        if self.tracer.exited:
            return "stop"
        return "busy" if any(self.queued.values()) or self.ready_at < len(self.ready) else "idle"

    def finish(self) -> None:
        """The capture has stopped: everything queued decoded, fed and delivered."""
        if self.feeder is None:
            return
        self._feed_ready(None)
        self.work(None)
        self._release(None)
        self._feed_ready(None)
        self.feeder.finish()
        self._to_tracer()


def trace_live(target: LiveTarget, tracer: Tracer, *, options: CaptureOptions | None = None,
               status: Callable[[str], None] | None = None) -> LiveTraceResult:
    """Run ``tracer`` (a compiled program) on ``target``'s live events until the
    duration, a signal (Ctrl-C), the command's or targets' exit, or the program's
    ``exit()``; then finish it (END probes, maps printed). Raises CaptureError when
    the capture cannot run here."""
    say = status or (lambda _msg: None)
    session = CaptureSession(target, options or CaptureOptions(snapshots=False), say)
    # A spool directory as record --live's, so that the next capture removes it
    # when this one is killed (remove_stale_spools).
    remove_stale_spools(say)
    tmp = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-")
    builder: TraceBuilder | None = None
    try:
        builder = TraceBuilder(os.path.join(tmp, "live.mtrace"), source_format="tracefs",
                               source_path=session.instance.path, kernel_version=kernel_version())
        run = _LiveRun(session, tracer, builder, say)
        with stop_on_signals(session):
            try:
                session.start()
                run.begin()
                tracer.start()
                say(f"tracing {target.describe()}: {len(session.enabled)} tracepoints; Ctrl-C to stop")
                session.run(run.on_pages, run.after_drain)
                session.stop(run.on_pages)
            finally:
                session.close()
        run.finish()
        tracer.finish()
        read = sum(run.feeder.counts.values()) if run.feeder is not None else 0
        warnings = list(session.warnings)
        if session.loss.events:
            warnings.append(f"lost {session.loss.events:,} events (ring buffer overruns): the program missed them; "
                            "a bigger --buffer-kb may help")
        return LiveTraceResult(session.target.describe(), session.stop_reason or "", session.elapsed_ns(), read,
                               session.loss.events, list(session.missing), warnings)
    finally:
        if builder is not None:
            builder.abort()
        shutil.rmtree(tmp, ignore_errors=True)
