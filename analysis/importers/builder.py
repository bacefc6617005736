"""The importer's dispatcher: each parsed line of real kernel text to its tracepoint's mapper.

The text readers (:mod:`.perf_script`, :mod:`.ftrace`) cut each line into the task
(comm, pid), the time and the event's name and text; :class:`TraceBuilder` hands the
event to the handler its real tracepoint registered (:mod:`.mapping`, one module
per tracepoint system), which emits memtrace events with the schemas of
:mod:`memtrace.tracer.tracepoints` into the trace being written (:mod:`.assemble`)
and feeds the replay workload (:mod:`.workload`).

A process is named when first seen (``process_start``, whose uid and
oom_score_adj come from the companion log's task table when it has the pid) and
again at each exec (a comm change). Any line whose tracepoint no mapper knows is
counted as unknown and skipped, never fatal; a known event whose text is not what
the kernel prints is counted as unreadable (:class:`.mapping.fields.UnreadableLine`);
any other exception is a bug and propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..kernlog.parse import OomLog
from .assemble import ImportResult, TraceOutput, import_meta
from .companion import CompanionLog
from .mapping import Exceptions, Filemap, Kmem, Oom, Pagemap, Sched, Syscalls, Vmscan
from .mapping.fields import UnreadableLine
from .workload import WorkloadBuilder

__all__ = ["Handler", "ParseLine", "ParsedLine", "TraceBuilder", "feed_line"]

#: A real tracepoint's handler: ``(comm, pid, ts_ns, payload) -> known``; raises
#: UnreadableLine on text the kernel could not have printed.
Handler = Callable[[str, int, int, str], bool]
#: A text reader's line parser: ``(comm, tid, tgid or None, ts_ns, event, payload)``,
#: or None for a line that is not an event line.
ParsedLine = tuple[str, int, int | None, int, str, str]
ParseLine = Callable[[str], ParsedLine | None]


class TraceBuilder:
    """Maps real events onto memtrace tracepoints and writes the trace.

    Call :meth:`event` once per parsed line (``name`` is the tracepoint name with or
    without its system, ``payload`` the text after it), :meth:`unknown_line` for
    lines the parser could not read, then :meth:`finish`.
    """

    def __init__(self, output: str | os.PathLike[str], *, source_format: str, source_path: str,
                 companion: OomLog | None = None, kernel_version: str | None = None,
                 memtrace_version: str = "0.1.0") -> None:
        self.source_format = source_format
        self.source_path = source_path
        self.kernel_version = kernel_version
        self.companion = CompanionLog(companion)
        self.work = WorkloadBuilder()
        self.lines = 0
        self.comment_lines = 0
        self.unknown_lines = 0
        self.unknown_events: dict[str, int] = {}
        self.summarised: dict[str, dict[str, int]] = {}
        self.warnings: list[str] = []
        self.notes: list[str] = []
        #: pid -> the comm its lines last showed
        self.comms: dict[int, str] = {}
        #: thread id -> process id (learned from the input's pid/tid columns)
        self.tgid: dict[int, int] = {}
        self.first_ts: int | None = None
        self.last_ts = 0
        #: more header meta, merged into the trace's at :meth:`finish` (a live
        #: capture's facts: :mod:`.live`)
        self.extra_meta: dict[str, Any] = {}
        #: the traced machine as known besides the input (``ram_bytes``, ``swap_bytes``:
        #: a live capture reads them from /proc/meminfo); a companion log's win
        self.machine: dict[str, int] = {}
        self.out = TraceOutput(output, memtrace_version)
        # One mapper per real tracepoint system; they read each other's state
        # through these names (a fault settles its task's syscall, rss_stat gives a
        # fault its kind, a page-cache deletion asks whether its task reclaims), so
        # each is made after those it holds.
        self.syscalls = Syscalls(self)
        self.exceptions = Exceptions(self)
        self.kmem = Kmem(self)
        self.filemap = Filemap(self)
        self.vmscan = Vmscan(self)
        self.oom = Oom(self)
        self.sched = Sched(self)
        self.pagemap = Pagemap(self)
        #: real tracepoint name, bare and as ``system:name`` -> its handler
        self.handlers: dict[str, Handler] = {}
        for mapper in (self.syscalls, self.exceptions, self.kmem, self.filemap, self.vmscan, self.oom, self.sched,
                       self.pagemap):
            table = mapper.handlers()
            for name in mapper.SUMMARISED:
                table[name] = self._summarise(name)
            for name, handler in table.items():
                self.handlers[name] = self.handlers[f"{mapper.SYSTEM}:{name}"] = handler

    # -- input

    def event(self, comm: str, pid: int, ts_ns: int, name: str, payload: str) -> bool:
        """One real event; False (and counted) when its tracepoint is unknown or its
        text unreadable. The feeder counts lines (:attr:`lines`)."""
        handler = self.handlers.get(name)
        if handler is None:
            if ":" in name:
                handler = self.handlers.get(name.rpartition(":")[2])
            if handler is None:
                self.unknown_lines += 1
                key = name if len(name) <= 64 else name[:64]
                if len(self.unknown_events) < 1000 or key in self.unknown_events:
                    self.unknown_events[key] = self.unknown_events.get(key, 0) + 1
                return False
        if ts_ns > self.last_ts:
            self.last_ts = ts_ns
            if self.first_ts is None:
                self.first_ts = ts_ns
        if self.tgid:
            pid = self.tgid.get(pid, pid)
        if self.comms.get(pid) != comm and comm and comm != "<...>":
            self._seen(comm, pid, ts_ns)
        try:
            known = handler(comm, pid, ts_ns, payload)
        except UnreadableLine:
            known = False
        if self.out.seq >= self.out.next_flush:
            self.flush()
        if known:
            return True
        self.unreadable(name)
        return False

    def unreadable(self, name: str) -> None:
        """A known event whose text could not be read: counted as unknown."""
        self.unknown_lines += 1
        key = f"{name} (unreadable)"
        self.unknown_events[key] = self.unknown_events.get(key, 0) + 1

    def thread(self, tid: int, pid: int) -> None:
        """The input says ``tid`` is a thread of process ``pid``."""
        if tid != pid and self.tgid.get(tid) != pid:
            self.tgid[tid] = pid
            thread = self.work.procs.get(tid)
            if thread is not None:
                thread.merged = True

    def unknown_line(self) -> None:
        self.unknown_lines += 1

    def comment_line(self) -> None:
        self.comment_lines += 1

    def summary(self, name: str) -> None:
        """One event counted in the header's ``summarised`` under ``name``."""
        s = self.summarised.setdefault(name, {"events": 0})
        s["events"] += 1

    def _summarise(self, name: str) -> Handler:
        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            self.summary(name)
            return True
        return handler

    def _seen(self, comm: str, pid: int, ts_ns: int) -> None:
        """A task seen for the first time, or under a new comm (an exec)."""
        old = self.comms.get(pid)
        self.comms[pid] = comm
        p = self.work.proc(pid, comm, ts_ns)
        adjs = self.oom.adj
        uid, adj = 0, adjs.get(pid, 0)
        known = self.companion.rows.get(pid)
        if known is not None:
            uid = known[0].uid or 0
            if pid not in adjs and known[0].oom_score_adj is not None:
                adj = known[0].oom_score_adj
            p.uid, p.oom_score_adj = uid, max(-1000, min(1000, adj))
        if old is not None:
            self.work.exec_(p, ts_ns, comm)
        self.out.emit("process_start", ts_ns, pid, comm, uid, max(-1000, min(1000, adj)))

    # -- output

    def flush(self) -> None:
        """Write everything buffered as one flush group (faults still waiting for
        their kind keep the default)."""
        self.exceptions.flush_pending()
        self.out.flush()

    def finish(self, *, extra_warnings: Iterable[str] = ()) -> ImportResult:
        """The end of the input: the last flush group, the header, the trace file."""
        self.syscalls.finish(self.last_ts)
        self.flush()
        self.warnings.extend(extra_warnings)
        work = self.work
        if self.first_ts is not None:
            work.t0 = self.first_ts if work.t0 is None else min(work.t0, self.first_ts)
            work.t_end = max(work.t_end, self.last_ts)
        work.finish()
        meta = import_meta(self)
        meta.update(self.extra_meta)
        out = self.out
        out.close(extra={"import": {"lines": self.lines, "unknown_lines": self.unknown_lines},
                         "oom_kills": self.oom.kills, "end_ns": self.last_ts})
        out.join(meta)
        return ImportResult(
            trace=str(out.output), source=self.source_path, format=self.source_format, lines=self.lines,
            events=dict(sorted(out.counts.items(), key=lambda kv: out.registry.id_of(out.tps[kv[0]]))),
            unknown_lines=self.unknown_lines, unknown_events=dict(self.unknown_events),
            summarised=self.summarised, processes=len(meta["workload"]["process"]), oom_kills=self.oom.kills,
            warnings=self.warnings, trace_bytes=out.output.stat().st_size,
            duration_ns=(self.last_ts - self.first_ts) if self.first_ts is not None else 0,
            companion_log=self.companion.path,
        )

    def abort(self) -> None:
        """Drop the temporary files after a failure."""
        self.out.abort()


def feed_line(builder: TraceBuilder, line: str, parse_line: ParseLine,
              on_unknown: Callable[[str], None] | None = None) -> ParsedLine | None:
    """The general path of a text importer for one line: blank and ``#`` lines count
    as comments, a line ``parse_line`` cannot read counts as unknown (after
    ``on_unknown`` had a look at it), and a parsed line becomes an event, learning
    the thread's group on the way. Returns the parsed tuple
    ``(comm, tid, tgid, ts_ns, name, payload)``, or None."""
    stripped = line.strip()
    if not stripped or stripped[0] == "#":
        builder.comment_line()
        return None
    try:
        parsed = parse_line(line)
    except ValueError:
        parsed = None
    if parsed is None:
        if on_unknown is not None:
            on_unknown(line)
        builder.unknown_line()
        return None
    comm, tid, tgid, ts_ns, name, payload = parsed
    if tgid is not None and tgid != tid:
        builder.thread(tid, tgid)
    builder.event(comm, tid, ts_ns, name, payload)
    return parsed

