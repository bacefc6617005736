"""The kernel log's OOM reports, rebuilt from a trace in the printk format of its kernel.

Folds the OOM events of a trace into the text a real kernel writes to its log at each
OOM kill (mm/oom_kill.c ``dump_header()``, ``dump_tasks()``, ``dump_oom_summary()``,
``__oom_kill_process()``, ``oom_reap_task()``), in the layout of the kernel version the
trace header names (``meta["machine"]["kernel_version"]``). The layouts are the era
tables of :mod:`.formats` (``../shared/reference/kernel-mm-facts.md`` §3), which the
reader (:mod:`.parse`) reads back.

The simulated kernel emits, at each OOM kill and in this order: one ``zoneinfo`` per
zone (reason ``oom``), one ``meminfo_sample``, for a memcg OOM one ``memcg_stat`` of the
OOM memcg, one ``oom_candidate`` per eligible task, then ``oom_kill``; later an
``oom_reap`` for the victim. A panic emits ``oom_panic`` instead of ``oom_kill``. Task
names, uids and the current oom_score_adj come from the task table
(:class:`memtrace.tracer.tasks.TaskTable`: ``process_start``, ``fork``, ``exit``,
``oom_score_adj_update``).

Which kernel's format: the reference was read from the trees 2.6.32, 3.4, 3.10, 4.9,
4.19, 5.4, 5.15, 6.6, 6.8 and 6.13. A version between two of them renders like the
older one (5.10 as 5.4, 6.18 as 6.13). The dump_stack ``CPU:`` line's ``UID:`` (6.11)
and preemption model (6.16) fields come from lib/dump_stack.c patches and are decided
on the exact version.

Each printk line gets the ``[%5lu.%06lu]`` prefix. A printk with embedded newlines (the
Mem-Info first block) gives one line per newline, each with the same prefix, as the
console and syslog show it (dmesg(1) indents such continuation lines instead).

Simplified, on purpose (a reader must know what is invented; the Mem-Info and memcg
blocks say their own in :mod:`.showmem`):

- Timestamps: the ``dump_header`` lines carry the time of the first event of the OOM
  (its first ``zoneinfo``, ``memcg_stat`` or ``oom_candidate``), the ``oom-kill:`` and
  kill lines the time of ``oom_kill``, the reaper line the time of ``oom_reap``. A real
  log advances a few microseconds per line.
- ``gfp_mask`` in the events is read in the 6.x bit layout (the simulator models 6.13)
  and re-encoded, flag by flag, in the layout of older kernels.
- One CPU (``CPU: 0``, a task's ``cpu`` column 0), one NUMA node (``Node 0``), no
  cpusets (``cpuset=/ mems_allowed=0``, ``nodemask=(null)``), no taint, kernel release
  ``<version>.0-memtrace #1`` unless the header gives ``machine.kernel_release``.
- The ``Call Trace:`` is a fixed list of representative frames for the page-fault path
  (global: the page allocator's slow path; memcg: the charge path, as in the real
  6.18 sample), without addresses, offsets or the register dump.
- 4.9 task rows split page-table bytes into PTE and PMD pages assuming densest packing
  (one PMD page per 512 PTE pages); 3.x rows count all of them as ``nr_ptes``.
  3.4's ``oom_adj`` is the ``signal->oom_adj`` an oom_score_adj write stored then
  (``memtrace.linux.proc.stored_oom_adj``); 2.6.32's, which had no oom_score_adj,
  is the one the legacy badness uses (``score_adj_to_oom_adj``, §1.6).
- A panic report's gfp_mask and order come from the ``oom_panic`` event; traces that
  lack them fall back to the panicking task's last ``reclaim_begin``, else
  GFP_HIGHUSER_MOVABLE|__GFP_ZERO, order 0 (an anonymous page fault).
- The 3.x "Kill process %d (%s) sharing same memory" lines are not printed (the
  simulator has no shared mm between processes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from memtrace.errors import TraceFormatError
from memtrace.linux.gfp import GFP_HIGHUSER_MOVABLE_ZERO, format_gfp_mask
from memtrace.linux.proc import score_adj_to_oom_adj, stored_oom_adj
from memtrace.linux.version import DEFAULT_KERNEL_VERSION, V3_10, KernelVersion, parse_kernel_version
from memtrace.tracer import MEMINFO_FIELDS, EventBatch, EventRecord, TraceReader, default_registry
from memtrace.tracer.meta import meta_part
from memtrace.tracer.tasks import TASK_TRACEPOINTS, Task, TaskTable
from memtrace.tracer.tracepoints import check_fields

from .formats import (
    CALL_TRACE,
    CPUSET_LINE,
    DEADLOCKED,
    DUMP_STACK,
    KILL_LINES,
    NO_KILLABLE,
    OOM_HEADER,
    OOM_KILL_SUMMARY,
    PANIC,
    REAPER_LINES,
    DumpTaskRow,
    dmesg_timestamp,
    dump_tasks_header,
    format_dump_task,
    layout_for,
)
from .showmem import ZoneSnapshot, memcg_oom_info, show_mem

__all__ = [
    "DMESG_READS",
    "DMESG_READS_IF_PRESENT",
    "OomReportText",
    "oom_reports_from_batches",
    "oom_reports_from_events",
    "render_dmesg",
]

#: The fields each tracepoint's handler reads whatever the event (seq, ts_ns and pid
#: are in every schema): a trace whose schema lacks one is refused, naming it. The
#: task tracepoints are read by the task table (:mod:`memtrace.tracer.tasks`).
DMESG_READS: dict[str, tuple[str, ...]] = {
    "process_start": ("comm", "uid", "oom_score_adj"),
    "fork": ("child_pid", "child_comm"),
    "exit": ("comm",),
    "oom_score_adj_update": ("comm", "oom_score_adj"),
    "sysctl_set": ("name", "value"),
    "reclaim_begin": ("gfp_flags", "order"),
    "zoneinfo": ("zone", "zid", "present_pages", "managed_pages", "nr_free", "wmark_min", "wmark_low",
                 "wmark_high", "reason"),
    "meminfo_sample": (),
    "memcg_stat": (),
    "oom_candidate": ("oom_id", "tgid", "uid", "comm", "total_vm", "rss_anon", "rss_file", "rss_shmem",
                      "swapents", "pgtables_bytes", "oom_score_adj"),
    "oom_kill": ("oom_id", "victim_pid", "comm", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb",
                 "uid", "pgtables_kb", "oom_score_adj", "points", "totalpages", "constraint", "memcg",
                 "task_memcg", "gfp_mask", "order", "message"),
    "oom_reap": ("victim_pid", "comm", "success", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb"),
    "oom_panic": ("oom_id", "reason", "constraint"),
}
#: Fields read when the schema has them (older traces lack some).
DMESG_READS_IF_PRESENT: dict[str, tuple[str, ...]] = {
    "meminfo_sample": tuple(f for _m, f in MEMINFO_FIELDS),
    "memcg_stat": ("path", "usage_bytes", "limit_bytes", "memsw_limit_bytes", "failcnt", "swap_bytes",
                   "anon_bytes", "file_bytes", "shmem_bytes", "kernel_bytes", "file_mapped_bytes",
                   "file_dirty_bytes", "file_writeback_bytes", "swapcached_bytes", "inactive_anon_bytes",
                   "active_anon_bytes", "inactive_file_bytes", "active_file_bytes", "unevictable_bytes",
                   "workingset_refault_anon", "workingset_refault_file", "pgfault", "pgmajfault", "pgpgin",
                   "pgpgout"),
    "oom_panic": ("gfp_mask", "order"),
}
#: Tracepoints this module reads (its own and the task table's); render_dmesg()
#: skips every other batch unopened.
NEEDED_TRACEPOINTS = frozenset(DMESG_READS) | TASK_TRACEPOINTS


@dataclass(frozen=True)
class OomReportText:
    """One OOM report as the kernel log shows it.

    ``oom_id`` is the OOM invocation (the events' ``oom_id``); ``ts_ns`` the time of the
    kill (or panic); ``lines`` every line of the report, each with its ``[ seconds.micros]``
    prefix, up to the reaper line when the trace has one.
    """

    oom_id: int
    ts_ns: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The report as one string, a newline after every line."""
        return "".join(line + "\n" for line in self.lines)


# --------------------------------------------------------------------------- dump_stack


def _dump_stack(version: KernelVersion, pid: int, uid: int, comm: str, release: str,
                memcg: bool) -> list[str]:
    """lib/dump_stack.c dump_stack_print_info() and a simplified ``Call Trace:``."""
    line = layout_for(DUMP_STACK, version).render(
        {"cpu": 0, "uid": uid, "pid": pid, "comm": comm, "taint": "Not tainted", "release": release})
    trace = layout_for(CALL_TRACE, version)
    body = [" " + f for f in (trace.memcg_oom if memcg else trace.global_oom)]
    if trace.task_markers:
        body = [" <TASK>", *body, " </TASK>"]
    return [line, "Call Trace:", *body]


# --------------------------------------------------------------------------- kill lines


class _Victim(NamedTuple):
    """An oom_kill event's victim fields (kB) and score inputs."""

    message: str
    pid: int
    comm: str
    total_vm_kb: int
    anon_rss_kb: int
    file_rss_kb: int
    shmem_rss_kb: int
    uid: int
    pgtables_kb: int
    oom_score_adj: int
    points: int
    totalpages: int

    @property
    def score(self) -> int:
        """3.x and 4.x's printed score: chosen_points * 1000 / totalpages."""
        return max(self.points, 0) * 1000 // self.totalpages if self.totalpages else 0


def _kill_lines(version: KernelVersion, v: _Victim) -> list[str]:
    """The "Kill/Killed process" lines of ``version`` (reference §3.7). The chosen
    task is the victim (the simulator kills no child in its parent's place)."""
    values = {**v._asdict(), "score": v.score}
    return [printk.render(values) for printk in layout_for(KILL_LINES, version)]


def _oom_kill_summary(version: KernelVersion, constraint: str, memcg: str, task_memcg: str,
                      victim: _Victim) -> list[str]:
    """dump_oom_summary() (5.4+, reference §3.6). No cpusets (current's cpuset is
    ``/``, mems 0) and a NULL nodemask."""
    printk = layout_for(OOM_KILL_SUMMARY, version)
    if printk is None:
        return []
    scope = f"oom_memcg={memcg or '/'}" if constraint == "CONSTRAINT_MEMCG" else "global_oom"
    return [printk.render({"constraint": constraint, "nodemask": "(null)", "cpuset": "/", "mems_allowed": "0",
                           "scope": scope, "task_memcg": task_memcg or "/", "comm": victim.comm,
                           "pid": victim.pid, "uid": victim.uid})]


# --------------------------------------------------------------------------- folding


class _Current(NamedTuple):
    """What dump_header() prints of the task that hit the OOM."""

    comm: str
    uid: int
    oom_score_adj: int


def _own_facts(task: Task | None) -> bool:
    """A task the trace started (``process_start``, ``fork``) or set an
    oom_score_adj for, and not seen to exit: not a row the table made up for a pid
    an event only named (a fork's unseen parent, an unseen victim)."""
    return task is not None and task.alive and (task.start_ns is not None or task.oom_score_adj is not None)


@dataclass
class _Report:
    """A report being written; ``lines`` grow until the trace ends."""

    oom_id: int
    ts_ns: int
    lines: list[str] = field(default_factory=list)

    def printk(self, ts_ns: int, messages: Iterable[str]) -> None:
        prefix = dmesg_timestamp(ts_ns)
        self.lines.extend(f"{prefix} {m}" for m in messages)


class _OomLog:
    """Folds event batches into OOM reports: the state the kernel log's writer would see.

    Holds only what a report needs (the task table, the pending OOM's context, the
    reports written so far), never the event stream.
    """

    def __init__(self, meta: Mapping[str, Any], warnings: list[str] | None = None) -> None:
        #: header parts read as absent because they are not maps
        self.warnings = warnings if warnings is not None else []
        machine = meta_part(meta, "machine", self.warnings)
        sysctl = meta_part(meta, "sysctl", self.warnings)
        text = str(machine.get("kernel_version") or DEFAULT_KERNEL_VERSION)
        try:
            self.version = parse_kernel_version(text)
        except ValueError:
            raise TraceFormatError(f"trace header: machine.kernel_version {text!r} is not a kernel version "
                                   "(expected e.g. '6.13' or '2.6.32')") from None
        try:
            self.cgroup_version = int(machine.get("cgroup_version", 2))
            self.oom_dump_tasks = bool(int(sysctl.get("vm.oom_dump_tasks", 1)))
        except (TypeError, ValueError) as exc:
            raise TraceFormatError(f"trace header: bad machine.cgroup_version or "
                                   f"sysctl vm.oom_dump_tasks ({exc})") from None
        release = machine.get("kernel_release")
        if not release:
            release = (f"{text}.0" if text.count(".") == 1 else text) + "-memtrace"
        self.release = str(release)
        self.tasks = TaskTable()
        self.last_gfp: dict[int, tuple[int, int]] = {}
        self.reports: list[_Report] = []
        self.awaiting_reap: dict[int, _Report] = {}
        # Latest zones of any reason and latest meminfo sample: kept across OOMs.
        self.zones_any: dict[int, ZoneSnapshot] = {}
        self.meminfo: dict[str, int] = {}
        # The pending OOM's context, emptied by _reset() after each report.
        self.start_ts: int | None = None
        self.zones_oom: dict[int, ZoneSnapshot] = {}
        self.memcg_stat: dict[str, Any] | None = None
        self.candidates: dict[int, list[dict[str, Any]]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "exit": self._exit,
            "sysctl_set": self._sysctl_set,
            "reclaim_begin": self._reclaim_begin,
            "zoneinfo": self._zoneinfo,
            "meminfo_sample": self._meminfo_sample,
            "memcg_stat": self._memcg_stat,
            "oom_candidate": self._oom_candidate,
            "oom_kill": self._oom_kill,
            "oom_reap": self._oom_reap,
            "oom_panic": self._oom_panic,
        }

    def _reset(self) -> None:
        """Forget the context of the OOM just reported."""
        self.start_ts = None
        self.zones_oom = {}
        self.memcg_stat = None
        self.candidates = {}

    def on_batch(self, batch: EventBatch) -> None:
        """Fold one batch (batches in ``seq`` order, each a run of one tracepoint)."""
        self.tasks.on_batch(batch)
        handler = self._handlers.get(batch.tp.name)
        if handler is not None:
            for record in batch.records():
                handler(record.fields)

    def finish(self) -> list[OomReportText]:
        return [OomReportText(r.oom_id, r.ts_ns, tuple(r.lines)) for r in self.reports]

    # -- task state

    def _exit(self, f: dict[str, Any]) -> None:
        self.last_gfp.pop(int(f["pid"]), None)

    def _sysctl_set(self, f: dict[str, Any]) -> None:
        if f["name"] == "vm.oom_dump_tasks":
            with contextlib.suppress(ValueError):
                self.oom_dump_tasks = int(f["value"]) != 0

    def _reclaim_begin(self, f: dict[str, Any]) -> None:
        self.last_gfp[int(f["pid"])] = (int(f["gfp_flags"]), int(f["order"]))

    # -- the OOM's context

    def _mark(self, f: dict[str, Any]) -> None:
        if self.start_ts is None:
            self.start_ts = int(f["ts_ns"])

    def _zoneinfo(self, f: dict[str, Any]) -> None:
        zone = ZoneSnapshot(f["zone"], int(f["zid"]), int(f["present_pages"]), int(f["managed_pages"]),
                            int(f["nr_free"]), int(f["wmark_min"]), int(f["wmark_low"]),
                            int(f["wmark_high"]))
        self.zones_any[zone.zid] = zone
        if f["reason"] == "oom":
            self.zones_oom[zone.zid] = zone
            self._mark(f)

    def _meminfo_sample(self, f: dict[str, Any]) -> None:
        self.meminfo = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}

    def _memcg_stat(self, f: dict[str, Any]) -> None:
        self.memcg_stat = dict(f)
        self._mark(f)

    def _oom_candidate(self, f: dict[str, Any]) -> None:
        self.candidates.setdefault(int(f["oom_id"]), []).append(f)
        self._mark(f)

    # -- reports

    def _current(self, pid: int, rows: Sequence[dict[str, Any]], victim: Mapping[str, Any] | None) -> _Current:
        """The task that hit the OOM: from the task table, else its dump row."""
        task = self.tasks.get(pid)
        if task is not None and _own_facts(task):
            return _Current(task.comm, task.uid or 0, task.oom_score_adj or 0)
        for row in rows:
            if int(row["tgid"]) == pid:
                return _Current(row["comm"], int(row["uid"]), int(row["oom_score_adj"]))
        if victim is not None and int(victim["victim_pid"]) == pid:
            return _Current(victim["comm"], int(victim["uid"]), int(victim["oom_score_adj"]))
        return _Current("?", 0, 0)

    def _dump_header(self, report: _Report, ts_ns: int, pid: int, gfp_mask: int, order: int,
                     memcg: bool, task_memcg: str, rows: Sequence[dict[str, Any]],
                     victim: Mapping[str, Any] | None) -> None:
        """mm/oom_kill.c dump_header(): header, dump_stack, Mem-Info or the memcg
        block, and the task table."""
        version = self.version
        cur = self._current(pid, rows, victim)
        values: dict[str, object] = {"comm": cur.comm, "gfp": format_gfp_mask(gfp_mask, version), "order": order,
                                     "oom_score_adj": cur.oom_score_adj}
        printk = layout_for(OOM_HEADER, version)
        if "stored_oom_adj" in printk.args:
            values["stored_oom_adj"] = stored_oom_adj(cur.oom_score_adj)
        if "legacy_oom_adj" in printk.args:
            values["legacy_oom_adj"] = score_adj_to_oom_adj(cur.oom_score_adj)
        header = [printk.render(values)]
        cpuset = layout_for(CPUSET_LINE, version)  # cpuset_print_current_mems_allowed()
        if cpuset is not None:
            header.append(cpuset.render(values))
        report.printk(ts_ns, header)
        report.printk(ts_ns, _dump_stack(version, pid, cur.uid, cur.comm, self.release, memcg))
        if memcg and self.memcg_stat is not None:
            report.printk(ts_ns, memcg_oom_info(version, self.cgroup_version,
                                                self.memcg_stat, task_memcg))
        # Before 3.10, dump_header() printed show_mem() for memcg OOMs too.
        if not memcg or version < V3_10:
            zones = self.zones_oom or self.zones_any
            report.printk(ts_ns, show_mem(version, self.meminfo,
                                          [zones[k] for k in sorted(zones)]))
        if self.oom_dump_tasks:
            table = dump_tasks_header(version) + [format_dump_task(_row(r), version) for r in rows]
            report.printk(ts_ns, table)

    def _oom_kill(self, f: dict[str, Any]) -> None:
        ts = int(f["ts_ns"])
        oom_id = int(f["oom_id"])
        rows = self.candidates.get(oom_id, [])
        report = _Report(oom_id, ts)
        constraint = f["constraint"]
        memcg = constraint == "CONSTRAINT_MEMCG"
        self._dump_header(report, self.start_ts if self.start_ts is not None else ts,
                          int(f["pid"]), int(f["gfp_mask"]), int(f["order"]), memcg,
                          f["task_memcg"], rows, f)
        victim = _Victim(f["message"], int(f["victim_pid"]), f["comm"], int(f["total_vm_kb"]),
                         int(f["anon_rss_kb"]), int(f["file_rss_kb"]), int(f["shmem_rss_kb"]),
                         int(f["uid"]), int(f["pgtables_kb"]), int(f["oom_score_adj"]),
                         int(f["points"]), int(f["totalpages"]))
        oom_memcg = f["memcg"] or (self.memcg_stat or {}).get("path", "")
        tail = _oom_kill_summary(self.version, constraint, oom_memcg, f["task_memcg"], victim)
        tail += _kill_lines(self.version, victim)
        report.printk(ts, tail)
        self.reports.append(report)
        self.awaiting_reap[victim.pid] = report
        self._reset()

    def _oom_reap(self, f: dict[str, Any]) -> None:
        report = self.awaiting_reap.pop(int(f["victim_pid"]), None)
        layout = layout_for(REAPER_LINES, self.version)
        if report is None or layout is None:
            return
        reaped, unable = layout
        values = {"pid": int(f["victim_pid"]), "comm": f["comm"], "anon_rss_kb": int(f["anon_rss_kb"]),
                  "file_rss_kb": int(f["file_rss_kb"]), "shmem_rss_kb": int(f["shmem_rss_kb"])}
        report.printk(int(f["ts_ns"]), [(reaped if f["success"] else unable).render(values)])

    def _oom_panic(self, f: dict[str, Any]) -> None:
        ts = int(f["ts_ns"])
        oom_id = int(f["oom_id"])
        pid = int(f["pid"])
        rows = self.candidates.get(oom_id, [])
        memcg = f["constraint"] == "CONSTRAINT_MEMCG"
        if "gfp_mask" in f:
            gfp_mask, order = int(f["gfp_mask"]), int(f["order"])
        else:  # traces written before oom_panic carried them
            gfp_mask, order = self.last_gfp.get(pid, (GFP_HIGHUSER_MOVABLE_ZERO, 0))
        report = _Report(oom_id, ts)
        task_memcg = str(self.memcg_stat.get("path", "")) if memcg and self.memcg_stat else ""
        self._dump_header(report, self.start_ts if self.start_ts is not None else ts, pid,
                          gfp_mask, order, memcg, task_memcg, rows, None)
        reason = str(f["reason"]).strip()
        tail = []
        if reason == DEADLOCKED:  # 6.13 out_of_memory(), !oc->chosen
            tail.append(NO_KILLABLE)
        tail.append(PANIC.render({"reason": reason}))
        report.printk(ts, tail)
        self.reports.append(report)
        self._reset()


def _row(f: Mapping[str, Any]) -> DumpTaskRow:
    """An oom_candidate event as a dump_tasks() row (pid is the thread-group leader)."""
    return DumpTaskRow(
        pid=int(f["tgid"]), uid=int(f["uid"]), tgid=int(f["tgid"]),
        total_vm=int(f["total_vm"]), rss_anon=int(f["rss_anon"]), rss_file=int(f["rss_file"]),
        rss_shmem=int(f["rss_shmem"]), pgtables_bytes=int(f["pgtables_bytes"]),
        swapents=int(f["swapents"]), oom_score_adj=int(f["oom_score_adj"]), comm=f["comm"],
    )


def oom_reports_from_batches(batches: Iterable[EventBatch], meta: Mapping[str, Any],
                             warnings: list[str] | None = None) -> list[OomReportText]:
    """Every OOM report of a stream of batches (in ``seq`` order, each a run of one
    tracepoint's events, as :meth:`TraceReader.ordered_batches` and a Bus give
    them), as the kernel named by ``meta["machine"]["kernel_version"]`` would log it
    (``meta`` is a trace header's meta). Reads the stream once, keeping only what the
    reports need.

    Header parts that are not maps (``meta["machine"]`` a string) read as absent and
    a line saying so is added to ``warnings``. Raises TraceFormatError when the
    kernel version cannot be parsed.
    """
    log = _OomLog(meta if isinstance(meta, Mapping) else {}, warnings)
    for batch in batches:
        log.on_batch(batch)
    return log.finish()


def _record_batches(records: Iterable[EventRecord]) -> Iterator[EventBatch]:
    """Each record as a batch of one event of this memtrace's schema, after checking
    it has every field :data:`DMESG_READS` lists for its tracepoint (TraceFormatError
    naming the first it lacks). A field the record lacks and nothing reads is 0 (or
    '')."""
    registry = default_registry()
    checked: set[str] = set()
    for record in records:
        name = record.name
        if name not in NEEDED_TRACEPOINTS or name not in registry:
            continue
        if name not in checked:
            missing = [f for f in DMESG_READS.get(name, ()) if f not in record.fields]
            if missing:
                raise TraceFormatError(f"trace schema: tracepoint {name!r} has no field {missing[0]!r}, "
                                       "which memtrace dmesg reads (the trace was written with another schema)")
            checked.add(name)
        tp = registry[name]
        columns: dict[str, np.ndarray | list[str]] = {}
        for f in tp.all_fields:
            value = record.fields.get(f.name, "" if f.type == "str" else 0)
            if f.type == "str":
                columns[f.name] = [str(value)]
            else:
                code = f.code(value) if f.type == "enum" and isinstance(value, str) else value
                columns[f.name] = np.array([code], dtype=f.dtype)
        yield EventBatch(tp, columns)


def oom_reports_from_events(events: Iterable[EventRecord], meta: Mapping[str, Any],
                            warnings: list[str] | None = None) -> list[OomReportText]:
    """:func:`oom_reports_from_batches` over records (in ``seq`` order) of this
    memtrace's tracepoints. Raises TraceFormatError when the kernel version cannot
    be parsed, or an event lacks a field a report reads."""
    return oom_reports_from_batches(_record_batches(events), meta, warnings)


def _needed_batches(reader: TraceReader) -> Iterator[EventBatch]:
    checked: set[str] = set()
    for batch in reader.ordered_batches():
        name = batch.tp.name
        if name in NEEDED_TRACEPOINTS:
            if name not in checked and name in DMESG_READS:
                check_fields(batch.tp, "memtrace dmesg", DMESG_READS[name], DMESG_READS_IF_PRESENT.get(name, ()))
                checked.add(name)
            yield batch


def render_dmesg(reader: TraceReader) -> list[OomReportText]:
    """The OOM reports of a trace file, streaming: only the batches of the tracepoints
    a report reads are opened (page faults and the like are skipped).

    What the header could not give (a ``machine`` that is not a map) is added to
    ``reader.warnings``, with the reader's own. TraceFormatError when the trace's
    schema lacks a field a report reads, or holds it as another kind of type."""
    return oom_reports_from_batches(_needed_batches(reader), reader.meta, reader.warnings)
