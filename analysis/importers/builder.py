"""The importer's dispatcher: each parsed line of real kernel text to its tracepoint's mapper.

The text readers (:mod:`.perf_script`, :mod:`.ftrace`) cut each line into the task
(comm, pid), the time and the event's name and text; :class:`TraceBuilder` hands the
event to the handler its real tracepoint registered (:mod:`.mapping`, one module
per tracepoint system), which emits memtrace events with the schemas of
:mod:`memtrace.tracer.tracepoints` into the trace being written (:mod:`.assemble`)
and feeds the replay workload (:mod:`.workload`).

A process is named when first seen (``process_start``, whose uid and
oom_score_adj come from the companion log's task table when it has the pid). An
exec is what the kernel says is one (``sched:sched_process_exec``, a successful
``execve``, or, in a trace that shows neither, a new mm in ``kmem:rss_stat``): an
``exec`` event, the old mappings gone. Any other comm change (``task:task_rename``
outside an execve, or a new comm in the input's comm column) is a rename: a
``task_rename`` event, the mappings kept. Threads join their process (the input's
pid/tid or tgid columns, or a clone with CLONE_THREAD). Any line whose tracepoint no mapper knows is
counted as unknown and skipped, never fatal; a known event whose text is not what
the kernel prints is counted as unreadable (:class:`.mapping.fields.UnreadableLine`);
any other exception is a bug and propagates.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..kernlog.parse import OomLog
from .assemble import ImportResult, TraceOutput, import_meta
from .companion import CompanionLog
from .mapping import Exceptions, Filemap, Kmem, Oom, Pagemap, Sched, Syscalls, Task, Vmscan, Writeback
from .mapping.fields import UnreadableLine
from .snapshot import StartSnapshot
from .workload import VMA_STEPS, WorkloadBuilder

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
                 memtrace_version: str = "0.1.0", snapshot: Mapping[str, Any] | None = None,
                 snapshot_path: str | None = None, vma_steps: bool = VMA_STEPS) -> None:
        self.source_format = source_format
        self.source_path = source_path
        self.kernel_version = kernel_version
        self.companion = CompanionLog(companion)
        self.work = WorkloadBuilder(vma_steps=vma_steps)
        #: the start-of-trace snapshot (``memtrace snapshot``), if given
        self.snapshot = StartSnapshot(snapshot, snapshot_path)
        self.snapshot.feed(self.work)
        self.companion.feed(self.work)
        self.lines = 0
        self.comment_lines = 0
        self.unknown_lines = 0
        self.unknown_events: dict[str, int] = {}
        self.summarised: dict[str, dict[str, int]] = {}
        self.warnings: list[str] = []
        self.notes: list[str] = []
        #: pid -> the comm its lines last showed
        self.comms: dict[int, str] = {}
        #: thread id -> process id (learned from the input's pid/tid columns, or
        #: from a clone with CLONE_THREAD)
        self.tgid: dict[int, int] = {}
        #: the thread id of the event being handled (handlers get its process's pid)
        self.tid = 0
        #: an exec tracepoint (sched_process_exec, sys_enter_execve) was seen: a new
        #: mm is no exec of its own
        self.execs_traced = False
        #: pid -> the time of an exec inferred from a new mm, not yet confirmed
        self.exec_inferred: dict[int, int] = {}
        self._last_rename: list[Any] | None = None
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
        self.task = Task(self)
        self.writeback = Writeback(self)
        #: real tracepoint name, bare and as ``system:name`` -> its handler
        self.handlers: dict[str, Handler] = {}
        for mapper in (self.syscalls, self.exceptions, self.kmem, self.filemap, self.vmscan, self.oom, self.sched,
                       self.pagemap, self.task, self.writeback):
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
        self.tid = pid
        if self.tgid:
            pid = self.tgid.get(pid, pid)
        if self.comms.get(pid) != comm and comm and comm != "<...>":
            self._seen(comm, pid, ts_ns, exec_line=name.endswith("sched_process_exec"))
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
        pid = self.tgid.get(pid, pid)
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

    def _seen(self, comm: str, pid: int, ts_ns: int, *, exec_line: bool = False) -> None:
        """A task seen for the first time, or under a new comm: an exec's (on the
        exec's own line, or inside an execve: the exec handlers follow) or a rename."""
        old = self.comms.get(pid)
        if old is not None:
            if exec_line or self.syscalls.in_execve(self.tid):
                self.comms[pid] = comm
            else:
                self.rename(pid, ts_ns, comm)
            return
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
        elif (row := self.snapshot.rows.get(pid)) is not None and pid not in self.work.forked:
            uid = row.uid
            if pid not in adjs:
                adj = row.oom_score_adj
            p.uid, p.oom_score_adj = uid, max(-1000, min(1000, adj))
        self.out.emit("process_start", ts_ns, pid, comm, uid, max(-1000, min(1000, adj)))

    def rename(self, pid: int, ts_ns: int, comm: str) -> None:
        """``pid``'s comm changed without an exec: a ``task_rename``, mappings kept."""
        old = self.comms.get(pid)
        if old == comm:
            return
        self.comms[pid] = comm
        p = self.work.proc(pid, comm, ts_ns)
        self.work.rename(p, comm)
        self._last_rename = self.out.emit("task_rename", ts_ns, pid, old if old is not None else "", comm)

    def _take_back_rename(self, pid: int, comm: str) -> tuple[int, int] | None:
        """The comm change just written as a rename of ``pid`` was its exec's (a
        trace without exec tracepoints shows the new comm a line or two before the
        new mm): taken back while it is not yet written out. Returns its (seq, ts),
        for the exec to take its place."""
        row = self._last_rename
        self._last_rename = None
        rows = self.out.rows.get("task_rename")
        if row is None or not rows or row[2] != pid or row[4] != comm:
            return None
        for i in range(len(rows) - 1, -1, -1):
            if rows[i] is row:
                del rows[i]
                return int(row[0]), int(row[1])
        return None

    def exec(self, pid: int, ts_ns: int, comm: str, filename: str, old_pid: int, *, inferred: bool = False) -> None:
        """``pid`` executed a new image: an ``exec`` event; its old mappings go."""
        if old_pid != pid and old_pid > 0:  # a thread's exec: it becomes the process
            self.thread(old_pid, pid)
        self.comms[pid] = comm
        p = self.work.proc(pid, comm, ts_ns)
        if not inferred and self.exec_inferred.pop(pid, None) is not None:
            self.work.rename(p, comm)  # the exec event was written at its new mm
            self.summary("exec (already taken from its new mm)")
            return
        at: tuple[int, int] | None = None
        if inferred:
            self.exec_inferred[pid] = ts_ns
            at = self._take_back_rename(pid, comm)
        if p.mm_switched:  # the old mm went at the switch (kmem: exec_mmap())
            p.mm_switched = False
            self.work.rename(p, comm)
        else:
            self.work.tick(p, ts_ns)
            self.work.exec_(p, ts_ns, comm)
        if at is None:
            self.out.emit("exec", ts_ns, pid, comm, filename, old_pid)
        else:  # in the place of the rename it was taken for
            rows = self.out.rows.setdefault("exec", [])
            bisect.insort(rows, [at[0], at[1], pid, comm, filename, old_pid], key=lambda r: int(r[0]))

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

