"""The process table at one moment: what ``ps``/``top`` and ``/proc/PID/oom_score`` show.

For every live process: its RSS by kind (the ``MM_ANONPAGES``, ``MM_FILEPAGES`` and
``MM_SHMEMPAGES`` counters of ``mm->rss_stat``), swap entries (``MM_SWAPENTS``),
page-table bytes (``mm_pgtables_bytes()``), ``oom_score_adj``, and the OOM killer's
view of it: ``oom_badness()`` points and ``/proc/PID/oom_score``
(fs/proc/base.c ``proc_oom_score()``, §1.5 of kernel-mm-facts.md), computed with the
formula of the trace's kernel version (:mod:`memtrace.linux.oom_kill`). ``oom_score`` always
uses the global ``totalram_pages() + total_swap_pages``, also for a process in a memory
cgroup, as the kernel does; a memcg OOM ranks with the cgroup's limit instead, so its
points can differ (``memtrace report`` shows those).

Two sources:

- a trace (:func:`ps_trace`): the state folded up to a /proc/meminfo reading
  (:func:`memtrace.analysis.state.fold_at`); RSS from the last ``rss_stat`` of each
  counter, page tables recounted from the faults (x86-64, as ``PageTables``), totalpages
  from the reading's MemTotal and SwapTotal; comm, uid, oom_score_adj, memcg and OOM
  victims from the task table (:class:`memtrace.tracer.tasks.TaskTable`) fed the same
  events;
- a live snapshot (:func:`ps_snapshot`): ``/proc/PID/status`` (RssAnon, RssFile, RssShmem,
  VmSwap, VmPTE) and the kernel's own ``oom_score``, beside which the recomputed score
  is shown, so a reader can check the formula against the running kernel.

Not modelled: the 2.6.32 ``badness()`` needs CPU time and start time that neither a
trace nor a snapshot carries, so before 2.6.36 ``oom_score`` is left unknown (None);
``MMF_OOM_SKIP`` and ``in_vfork()`` are not visible in either and taken as unset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.oom_kill import (
    OomTask,
    oom_badness,
    oom_score_formula,
    oom_score_needs_cpu_times,
    proc_oom_score,
)
from memtrace.linux.version import DEFAULT_KERNEL_VERSION, KernelVersion, parse_kernel_version
from memtrace.tracer import TraceReader
from memtrace.tracer.meta import meta_part
from memtrace.tracer.tasks import ROOT_MEMCG_ID, UNKNOWN_COMM, TaskTable
from memtrace.units import format_seconds

from .state import MemoryState, Reading, StateFolder, fold_at

__all__ = ["SORT_KEYS", "ProcRow", "ProcTable", "ps_snapshot", "ps_state", "ps_trace"]

CAP_SYS_ADMIN = 21


@dataclass(frozen=True)
class ProcRow:
    """One process as ``/proc/PID/status`` and ``/proc/PID/oom_score`` show it.

    Sizes are in bytes. ``points`` is ``oom_badness()`` with the global totalpages,
    in pages (None when ineligible or unknown); ``oom_score`` is what
    ``/proc/PID/oom_score`` prints (recomputed); ``kernel_oom_score`` is what the
    kernel itself printed (snapshots only, else None).
    """

    pid: int
    comm: str
    uid: int
    memcg: str | None
    rss_anon_bytes: int
    rss_file_bytes: int
    rss_shmem_bytes: int
    swap_bytes: int
    pgtables_bytes: int
    oom_score_adj: int
    points: int | None
    oom_score: int | None
    kernel_oom_score: int | None = None
    ineligible: str | None = None

    @property
    def rss_bytes(self) -> int:
        """``get_mm_rss()`` in bytes: anon + file + shmem."""
        return self.rss_anon_bytes + self.rss_file_bytes + self.rss_shmem_bytes

    @property
    def score_differs(self) -> bool:
        """True when the kernel printed an oom_score and the recomputation differs."""
        return self.kernel_oom_score is not None and self.oom_score is not None \
            and self.kernel_oom_score != self.oom_score


@dataclass(frozen=True)
class ProcTable:
    """The process table of one moment. ``totalpages`` is ``totalram_pages() +
    total_swap_pages`` (pages), None when the source does not give it."""

    source: str
    at: str
    ts_ns: int | None
    kernel_version: str
    formula: str
    totalpages: int | None
    rows: tuple[ProcRow, ...]
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "at": self.at, "ts_ns": self.ts_ns, "kernel_version": self.kernel_version,
            "formula": self.formula, "totalpages": self.totalpages,
            "processes": [dict(asdict(r), rss_bytes=r.rss_bytes) for r in self.rows],
            "notes": list(self.notes),
        }


#: ``--sort`` keys: each sorts descending on its value, pid ascending on ties.
SORT_KEYS: dict[str, Callable[[ProcRow], int]] = {
    "points": lambda r: r.points if r.points is not None else -(1 << 62),
    "rss": lambda r: r.rss_bytes,
    "swap": lambda r: r.swap_bytes,
    "anon": lambda r: r.rss_anon_bytes,
    "pid": lambda r: -r.pid,
}


def _version(text: str) -> tuple[KernelVersion, str, list[str]]:
    try:
        return parse_kernel_version(text), text, []
    except ValueError:
        return (parse_kernel_version(DEFAULT_KERNEL_VERSION), DEFAULT_KERNEL_VERSION,
                [f"kernel version {text!r} not understood: the {DEFAULT_KERNEL_VERSION} formula is used"])


def _score(task: OomTask, totalpages: int | None, version: KernelVersion) -> tuple[int | None, int | None, str | None]:
    """(points, oom_score, why ineligible) of ``task``; None where it cannot be known."""
    if oom_score_needs_cpu_times(version) or not totalpages:
        return None, None, None
    b = oom_badness(task, totalpages, version)
    return b.points, proc_oom_score(task, totalpages, version), b.ineligible


def _sorted(rows: list[ProcRow], sort: str) -> tuple[ProcRow, ...]:
    key = SORT_KEYS[sort]
    return tuple(sorted(rows, key=lambda r: (-key(r), r.pid)))


# --------------------------------------------------------------------------- traces


def ps_state(state: MemoryState, reading: Reading | None, sort: str = "points", *,
             tasks: TaskTable) -> ProcTable:
    """The live processes of a folded trace state, at ``reading`` when there is one.
    ``tasks`` is the task table fed the batches the state was folded from: it names
    each process (comm, uid, oom_score_adj, memcg, whether it was an OOM victim); the
    state gives its memory (RSS counters, page tables, mappings)."""
    machine = meta_part(state.meta, "machine")
    version, version_text, notes = _version(str(machine.get("kernel_version") or DEFAULT_KERNEL_VERSION))
    totalpages: int | None = None
    ram, swap = machine.get("ram_bytes"), machine.get("swap_bytes") or 0
    if reading is not None and "MemTotal" in reading.meminfo:
        totalpages = (int(reading.meminfo["MemTotal"]) + int(reading.meminfo.get("SwapTotal", 0))) // PAGE_SIZE
    elif isinstance(ram, int) and ram > 0 and isinstance(swap, int):
        totalpages = (ram + swap) // PAGE_SIZE
        notes.append("no /proc/meminfo reading: totalpages is the trace header's RAM + swap"
                     + (" (the importer's assumption when its input did not say)" if state.imported else ""))
    else:
        notes.append("no /proc/meminfo reading: totalpages (RAM + swap) unknown, oom_score not computed")
    if state.imported:
        source = state.meta.get("source")
        said = source.get("notes", []) if isinstance(source, Mapping) else []
        notes.extend(n for n in said if isinstance(n, str) and n.startswith(("kernel version", "RAM ", "swap ")))
        notes.append("page tables are recounted from the faults the trace shows (an estimate for a real trace)")
    rows = []
    victims = []
    for pid in sorted(state.procs):
        p = state.procs[pid]
        task = tasks.get(pid)
        if task is not None and not task.alive:
            continue
        # A process whose task events the trace lacks (its mm seen in rss_stat or faults
        # only) keeps the defaults the kernel gives a task: uid 0, adj 0, root memcg.
        comm = task.comm if task is not None and task.comm != UNKNOWN_COMM else "?"
        if task is not None and task.oom_victim:
            victims.append(f"{comm} (pid {pid})")
            continue
        uid = task.uid if task is not None and task.uid is not None else 0
        adj = task.oom_score_adj if task is not None and task.oom_score_adj is not None else 0
        memcg_id = task.memcg_id if task is not None else ROOT_MEMCG_ID
        rss = {m: int(p.rss_bytes.get(m, 0)) for m in ("MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES",
                                                        "MM_SWAPENTS")}
        pgtables_bytes = p.mm_pgtables_bytes
        # Models kernel/oom.py oom_task(): CAP_SYS_ADMIN is taken as uid 0.
        oom_task = OomTask(pid=pid, comm=comm, uid=uid, oom_score_adj=adj,
                           rss_anon=rss["MM_ANONPAGES"] // PAGE_SIZE, rss_file=rss["MM_FILEPAGES"] // PAGE_SIZE,
                           rss_shmem=rss["MM_SHMEMPAGES"] // PAGE_SIZE, swapents=rss["MM_SWAPENTS"] // PAGE_SIZE,
                           pgtables_bytes=pgtables_bytes, total_vm=p.total_vm_pages, has_mm=p.has_mm,
                           cap_sys_admin=uid == 0)
        points, score, why = _score(oom_task, totalpages, version)
        rows.append(ProcRow(pid=pid, comm=comm, uid=uid, memcg=state.cgroup_path(memcg_id),
                            rss_anon_bytes=rss["MM_ANONPAGES"], rss_file_bytes=rss["MM_FILEPAGES"],
                            rss_shmem_bytes=rss["MM_SHMEMPAGES"], swap_bytes=rss["MM_SWAPENTS"],
                            pgtables_bytes=pgtables_bytes, oom_score_adj=adj, points=points,
                            oom_score=score, ineligible=why))
    if victims:
        notes.append(f"left out, marked as OOM victims and not yet seen to exit: {', '.join(victims)}")
    at = reading.name if reading is not None else "end of trace"
    ts = reading.ts_ns if reading is not None else state.ts_ns
    return ProcTable(state.source, at, ts, version_text, oom_score_formula(version), totalpages,
                     _sorted(rows, sort), tuple(notes))


def ps_trace(reader: TraceReader, at: str | int | None = None, sort: str = "points") -> tuple[ProcTable, list[str]]:
    """The process table of a trace at a snapshot label, a time (ns), or its last
    reading; returns it with the fold's warnings. An unknown label raises what
    :func:`memtrace.analysis.state.fold_at` raises (it names the label)."""
    folder: StateFolder
    folder, reading, warnings = fold_at(reader, at)
    table = ps_state(folder.state(), reading, sort, tasks=folder.tasks)
    if isinstance(at, int) and reading is None:
        table = ProcTable(table.source, f"t={format_seconds(at)}", at, table.kernel_version, table.formula,
                          table.totalpages, table.rows, table.notes)
    return table, warnings


# --------------------------------------------------------------------------- snapshots


def _part(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is a map, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _status_bytes(proc: Mapping[str, Any], key: str) -> int:
    status = proc.get("status")
    value = status.get(key, 0) if isinstance(status, Mapping) else 0
    return int(value) if isinstance(value, (int, float)) and value > 0 else 0


def ps_snapshot(snap: Mapping[str, Any], name: str = "snapshot", sort: str = "points") -> ProcTable:
    """The process table of a live snapshot (:mod:`.procsnap`): the kernel's
    ``oom_score`` beside the one recomputed from ``/proc/PID/status``.

    The status counters and ``oom_score`` are read one after the other, so a process
    whose memory moved in between shows a difference that is a race, not a formula
    error. ``is_global_init`` is pid 1 when the snapshot was taken in the initial
    pid namespace (a snapshot taken inside a container sees its own init as pid 1).
    """
    taken = _part(snap, "taken")
    version, version_text, notes = _version(str(taken.get("kernel_release") or DEFAULT_KERNEL_VERSION))
    mi = _part(snap, "meminfo")
    totalpages = None
    if isinstance(mi.get("MemTotal"), int):
        totalpages = (int(mi["MemTotal"]) + int(mi.get("SwapTotal", 0) or 0)) // PAGE_SIZE
    # Models oom_unkillable_task()'s is_global_init(): pid 1 of the initial pid
    # namespace. A snapshot taken in a container sees its own init as pid 1; its
    # NSpid line then names the outer pids too (when /proc shows them).
    initial_ns = taken.get("initial_pid_ns")
    if not isinstance(initial_ns, bool):
        init = next((p for p in snap.get("processes", []) or [] if isinstance(p, Mapping) and p.get("pid") == 1),
                    None)
        nspid = init.get("nspid") if init is not None else None
        initial_ns = not (isinstance(nspid, list) and len(nspid) > 1)
    rows = []
    for proc in snap.get("processes", []) or []:
        if not isinstance(proc, Mapping) or proc.get("kthread") or not isinstance(proc.get("pid"), int):
            continue
        pid = int(proc["pid"])
        is_init = pid == 1 and initial_ns
        adj = proc.get("oom_score_adj")
        adj = int(adj) if isinstance(adj, int) and -1000 <= adj <= 1000 else 0
        anon, file, shmem = (_status_bytes(proc, k) for k in ("RssAnon", "RssFile", "RssShmem"))
        swap, pte = _status_bytes(proc, "VmSwap"), _status_bytes(proc, "VmPTE")
        cap = proc.get("cap_eff")
        task = OomTask(pid=pid, comm=str(proc.get("comm", "?")), uid=int(proc.get("uid", 0) or 0),
                       oom_score_adj=adj, rss_anon=anon // PAGE_SIZE, rss_file=file // PAGE_SIZE,
                       rss_shmem=shmem // PAGE_SIZE, swapents=swap // PAGE_SIZE, pgtables_bytes=pte,
                       total_vm=_status_bytes(proc, "VmSize") // PAGE_SIZE,
                       has_mm="VmRSS" in _part(proc, "status"),
                       is_init=is_init,
                       cap_sys_admin=bool(int(cap) >> CAP_SYS_ADMIN & 1) if isinstance(cap, int) else
                       int(proc.get("uid", 0) or 0) == 0)
        points, score, why = _score(task, totalpages, version)
        kernel_score = proc.get("oom_score")
        rows.append(ProcRow(pid=pid, comm=task.comm, uid=task.uid, memcg=proc.get("memcg"),
                            rss_anon_bytes=anon, rss_file_bytes=file, rss_shmem_bytes=shmem, swap_bytes=swap,
                            pgtables_bytes=pte, oom_score_adj=adj, points=points, oom_score=score,
                            kernel_oom_score=int(kernel_score) if isinstance(kernel_score, int) else None,
                            ineligible=why))
    if totalpages is None:
        notes.append("the snapshot has no MemTotal: oom_score not recomputed")
    notes.append("status counters and oom_score are read one after the other: a busy process may differ by a race")
    at = str(taken.get("wall_time") or name)
    uptime = taken.get("uptime_s")
    ts = int(uptime * 1e9) if isinstance(uptime, (int, float)) else None
    return ProcTable("snapshot", at, ts, version_text, oom_score_formula(version), totalpages, _sorted(rows, sort),
                     tuple(notes))
