"""Invoking the OOM killer from the allocator and from memcg charges: the parts of
mm/oom_kill.c out_of_memory() that touch kernel state (6.13 skeleton, §1.7), built
on the pure badness and selection rules of oom_kill.py.

What the report needs is emitted as events, in the order dump_header() prints it:
``zoneinfo`` per zone and a ``meminfo_sample`` (global OOM) or a ``memcg_stat``
(memcg OOM), one ``oom_candidate`` per dumped task, then ``oom_kill``.

Simplified: the victim exits at once (its exit_mmap runs before the allocating task
retries). On 5.4+ kernels the OOM reaper, queued OOM_REAPER_DELAY (2 s) later, then
finds nothing left to reap and prints nothing, as on a real kernel whenever the
victim exits promptly; on 4.6 .. 5.3, whose reaper ran at once, it reaps the victim's
private memory first and logs the "oom_reaper: reaped process" line. No cpuset or
mempolicy constraints; oom_kill_allocating_task applies to global OOMs only, as in
the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import LONG_MIN, PAGE_SIZE
from memtrace.linux.oom_kill import Badness, OomTask, oom_badness, oom_totalpages, select_bad_process
from memtrace.linux.version import OOM_LAST_WINS, OOM_REAPER, parse_kernel_version
from memtrace.tracer import tracepoints as tp

from . import mmap
from .memcontrol import UNLIMITED, MemCgroup
from .meminfo import emit_meminfo_sample
from .mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, MmStruct, Task
from .page_alloc import PG_ACTIVE, PG_ANON, PG_DIRTY, PG_LRU, PG_SWAPBACKED, PG_UNEVICTABLE

if TYPE_CHECKING:
    from .kernel import Kernel



class TaskKilled(Exception):
    """The current task was chosen as the OOM victim and has exited."""


class KernelPanic(Exception):
    """panic_on_oom, or no killable task on a global OOM: the run ends."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def children_mms(k: Kernel) -> dict[Task, list[MmStruct]]:
    """The mms of each task's children, in task order (one pass over the tasks):
    the 2.6.32 badness() adds half of each child's total_vm."""
    out: dict[Task, list[MmStruct]] = {}
    for c in k.tasks.values():
        if c.parent is not None and c.mm is not None:
            out.setdefault(c.parent, []).append(c.mm)
    return out


def oom_task(k: Kernel, task: Task, children: Mapping[Task, list[MmStruct]] | None = None) -> OomTask:
    """What oom_badness() reads of ``task``; ``children`` (from :func:`children_mms`)
    spares a scan of every task per candidate."""
    mm = task.mm
    rss = mm.rss if mm is not None else [0, 0, 0, 0]
    if children is None:
        children = children_mms(k)
    children_vm = tuple(cmm.total_vm for cmm in children.get(task, ()) if cmm is not mm)
    return OomTask(
        pid=task.pid,
        comm=task.comm,
        uid=task.uid,
        oom_score_adj=task.oom_score_adj,
        rss_anon=rss[MM_ANONPAGES],
        rss_file=rss[MM_FILEPAGES],
        rss_shmem=rss[MM_SHMEMPAGES],
        swapents=rss[MM_SWAPENTS],
        pgtables_bytes=mm.pgtables_bytes if mm is not None else 0,
        total_vm=mm.total_vm if mm is not None else 0,
        has_mm=mm is not None,
        is_kthread=task.kthread,
        cap_sys_admin=task.uid == 0,
        children_total_vm=children_vm,
        cpu_time_jiffies=task.cpu_ns * 250 // 1_000_000_000,
        start_time_s=task.start_ns // 1_000_000_000,
        oom_adj=task.legacy_oom_adj,
    )


def memcg_oom_failcnt(k: Kernel, memcg: MemCgroup) -> int:
    """The failcnt mem_cgroup_print_oom_meminfo() prints on the memory line: the
    memory counter's failcnt, but on v2 since 6.15 memory.events max (the counter
    no longer counts there)."""
    if k.memcgs.cgroup_version != 1 and k.memcgs.track_failcnt_v1_only:
        return memcg.events_max
    return memcg.failcnt


def memcg_stat_fields(k: Kernel, memcg: MemCgroup) -> dict[str, int]:
    """memory.stat of ``memcg``'s subtree, recounted from the struct page array."""
    mem = k.mem_map
    ids = memcg.subtree_ids()
    pfns = np.flatnonzero(np.isin(mem.memcg, ids) & ((mem.flags & PG_LRU) != 0))
    flags = mem.flags[pfns]
    anon_lru = (flags & PG_SWAPBACKED) != 0
    active = (flags & PG_ACTIVE) != 0
    unevictable = (flags & PG_UNEVICTABLE) != 0
    is_anon_page = (flags & PG_ANON) != 0
    shmem = anon_lru & ~is_anon_page
    P = PAGE_SIZE
    return {
        "usage_bytes": memcg.usage_pages * P,
        "limit_bytes": (memcg.max_pages if memcg.max_pages < UNLIMITED else 0) * P,
        "failcnt": memcg_oom_failcnt(k, memcg),
        "swap_bytes": memcg.swap_pages * P,
        "anon_bytes": int(np.count_nonzero(is_anon_page)) * P,
        "file_bytes": int(np.count_nonzero(~is_anon_page)) * P,
        "shmem_bytes": int(np.count_nonzero(shmem)) * P,
        "file_mapped_bytes": int(np.count_nonzero(~is_anon_page & (mem.mapcount[pfns] > 0))) * P,
        "file_dirty_bytes": int(np.count_nonzero(~anon_lru & ~is_anon_page & ((flags & PG_DIRTY) != 0))) * P,
        "kernel_bytes": memcg.kmem_pages * P,
        "inactive_anon_bytes": int(np.count_nonzero(anon_lru & ~active & ~unevictable)) * P,
        "active_anon_bytes": int(np.count_nonzero(anon_lru & active & ~unevictable)) * P,
        "inactive_file_bytes": int(np.count_nonzero(~anon_lru & ~active & ~unevictable)) * P,
        "active_file_bytes": int(np.count_nonzero(~anon_lru & active & ~unevictable)) * P,
        "unevictable_bytes": int(np.count_nonzero(unevictable)) * P,
        "pgfault": memcg.pgfault,
        "pgmajfault": memcg.pgmajfault,
        "pgpgin": memcg.pgpgin,
        "pgpgout": memcg.pgpgout,
    }


def _dump_header(k: Kernel, memcg: MemCgroup | None) -> None:
    """The state dump_header() prints, as events."""
    k.emit_zoneinfo("oom")
    emit_meminfo_sample(k)
    if memcg is not None:
        k.emit(tp.MEMCG_STAT, path=memcg.path, **memcg_stat_fields(k, memcg))


def _emit_candidates(k: Kernel, oom_id: int, rows: tuple[tuple[OomTask, Badness], ...]) -> None:
    if not k.sysctls["vm.oom_dump_tasks"]:
        return
    for t, b in rows:
        k.emit(tp.OOM_CANDIDATE, oom_id=oom_id, tgid=t.pid, uid=t.uid, comm=t.comm, total_vm=t.total_vm,
               rss_anon=t.rss_anon, rss_file=t.rss_file, rss_shmem=t.rss_shmem, swapents=t.swapents,
               pgtables_bytes=t.pgtables_bytes, oom_score_adj=t.oom_score_adj,
               points=LONG_MIN if b.points is None else b.points)


def _oom_reap(k: Kernel, victim: Task) -> None:
    """Models oom_reap_task_mm() where the reaper ran as soon as it was woken
    (4.6 .. 5.3; 5.4+ waits OOM_REAPER_DELAY, by which time an exiting victim is
    gone and nothing is printed): private and anonymous memory is unmapped at once;
    shared file and shmem mappings stay until the victim's own exit."""
    mm = victim.mm
    assert mm is not None
    saved = k.current
    k.current = victim
    for vma in list(mm.vmas):
        if vma.inode is None or not vma.shared:
            mmap.remove_vma(k, victim, vma)
    k.flush_rss()
    k.current = saved
    P = PAGE_SIZE // 1024
    k.emit(tp.OOM_REAP, victim_pid=victim.pid, comm=victim.comm, success=True,
           anon_rss_kb=mm.rss[MM_ANONPAGES] * P, file_rss_kb=mm.rss[MM_FILEPAGES] * P,
           shmem_rss_kb=mm.rss[MM_SHMEMPAGES] * P)


def out_of_memory(k: Kernel, memcg: MemCgroup | None, gfp_mask: int, order: int = 0) -> bool:
    """Models out_of_memory(): choose and kill a victim. Returns True when a task
    was killed (the caller retries), False when a memcg OOM found nobody to kill.

    Raises TaskKilled when the victim is the current task, KernelPanic for
    panic_on_oom or a global OOM with nothing killable.
    """
    k.oom_id += 1
    oom_id = k.oom_id
    version = parse_kernel_version(k.kernel_version)
    current = k.current
    if memcg is None:
        constraint = "CONSTRAINT_NONE"
        totalpages = oom_totalpages(k.alloc.totalram_pages, k.swap.nr_pages, None)
        members = [t for t in k.tasks.values() if not t.exited]
    else:
        constraint = "CONSTRAINT_MEMCG"
        swap_limit = None if memcg.swap_max_pages >= UNLIMITED else memcg.swap_max_pages
        totalpages = oom_totalpages(k.alloc.totalram_pages, k.swap.nr_pages, memcg.max_pages, swap_limit,
                                    k.sysctls["vm.swappiness"])
        ids = set(memcg.subtree_ids())
        members = [t for t in k.tasks.values() if not t.exited and t.memcg is not None and t.memcg.id in ids]
    # check_panic_on_oom()
    children = children_mms(k)
    infos = [oom_task(k, t, children) for t in members]
    uptime_s = k.now_ns // 1_000_000_000
    panic = k.sysctls["vm.panic_on_oom"]
    if panic == 2 or (panic == 1 and constraint == "CONSTRAINT_NONE"):
        # check_panic_on_oom(): dump_header() (with the task table), then panic.
        _dump_header(k, memcg)
        rows_all = select_bad_process(infos, totalpages, version, memcg_oom=memcg is not None,
                                      uptime_s=uptime_s).candidates
        _emit_candidates(k, oom_id, rows_all)
        kind = "compulsory" if panic == 2 else "system-wide"
        reason = f"Out of memory: {kind} panic_on_oom is enabled"
        k.emit(tp.OOM_PANIC, oom_id=oom_id, reason=reason, constraint=constraint, gfp_mask=gfp_mask, order=order)
        raise KernelPanic(reason)

    message = "Memory cgroup out of memory" if memcg is not None else "Out of memory"
    chosen_task: Task | None = None
    points: int | None = None
    rows: tuple[tuple[OomTask, Badness], ...]
    if (k.sysctls["vm.oom_kill_allocating_task"] and memcg is None and current is not None
            and current.mm is not None and not current.kthread and current.oom_score_adj != -1000):
        cur = oom_task(k, current, children)
        b = oom_badness(cur, totalpages, version, uptime_s=uptime_s)
        rows = ((cur, b),)
        chosen_task, points = current, b.points
        message = "Out of memory (oom_kill_allocating_task)"
    else:
        sel = select_bad_process(infos, totalpages, version, memcg_oom=memcg is not None, uptime_s=uptime_s)
        rows = sel.candidates
        if sel.aborted:
            return True
        if sel.chosen is not None:
            chosen_task = k.tasks[sel.chosen.pid]
            points = sel.points
    _dump_header(k, memcg)
    _emit_candidates(k, oom_id, rows)
    if chosen_task is None:
        if memcg is None:
            reason = "System is deadlocked on memory"
            k.emit(tp.OOM_PANIC, oom_id=oom_id, reason=reason, constraint=constraint, gfp_mask=gfp_mask,
                   order=order)
            raise KernelPanic(reason)
        return False
    victim = chosen_task
    mm = victim.mm
    assert mm is not None
    P = PAGE_SIZE // 1024
    k.emit(tp.OOM_KILL, oom_id=oom_id, victim_pid=victim.pid, comm=victim.comm,
           total_vm_kb=mm.total_vm * P, anon_rss_kb=mm.rss[MM_ANONPAGES] * P,
           file_rss_kb=mm.rss[MM_FILEPAGES] * P, shmem_rss_kb=mm.rss[MM_SHMEMPAGES] * P,
           uid=victim.uid, pgtables_kb=mm.pgtables_bytes // 1024, oom_score_adj=victim.oom_score_adj,
           points=points if points is not None else LONG_MIN, totalpages=totalpages, constraint=constraint,
           memcg=memcg.path if memcg is not None else "",
           task_memcg=victim.memcg.path if victim.memcg is not None else "/",
           gfp_mask=gfp_mask, order=order, message=message)
    k.oom_kills.append({"oom_id": oom_id, "pid": victim.pid, "comm": victim.comm,
                        "points": points, "oom_score_adj": victim.oom_score_adj,
                        "constraint": constraint, "memcg": memcg.path if memcg is not None else "",
                        "trigger_pid": current.pid if current else 0,
                        "trigger_comm": current.comm if current else "", "ts_ns": k.now_ns})
    if memcg is not None:
        memcg.oom_kills += 1
    if OOM_REAPER <= version < OOM_LAST_WINS:
        _oom_reap(k, victim)
    k.kill_task(victim)
    if victim is current:
        raise TaskKilled()
    return True
