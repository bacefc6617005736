"""The OOM killer's arithmetic: badness, victim selection, /proc/PID/oom_score.

Models mm/oom_kill.c (``oom_badness``, ``badness``, ``select_bad_process``,
``oom_evaluate_task``, ``oom_scan_process_thread``) and fs/proc/base.c
``proc_oom_score``, selectable by kernel version (the eras are named in
:mod:`.version`; the oom_adj conversions are in :mod:`.proc`). Pure functions over :class:`OomTask` snapshots: no
kernel state, no events; the simulated kernel builds the snapshots, calls
:func:`select_bad_process` and emits whatever it decides, and analysis recomputes
the badness of task rows read from real logs. It belongs to no layer.

Kernel eras, from ``../shared/reference/kernel-mm-facts.md`` §1.3 and §2, refined
where kernel source or patch mail was read (each boundary is a constant of
:mod:`.version`):

======================  ==============================================================
< 2.6.36                ``badness()``: total_vm, children, CPU and run time, nice,
                        capabilities, cpuset, ``oom_adj`` bit shift (unsigned long)
2.6.36 .. 3.5           ``oom_badness()`` normalised to 0..1000 inside the function,
                        root bonus ``points -= 30``, ``+ oom_score_adj``, clamp [1, 1000]
3.6 .. 3.13             pages: ``rss + nr_ptes + swapents + adj * (totalpages / 1000)``,
                        root bonus ``adj -= 30`` (3 % of totalpages), clamp >= 1
3.14 .. 4.16            the same, root bonus ``points -= points * 3 / 100`` (3 % of usage)
4.17 .. 5.8             no root bonus, page tables from ``mm_pgtables_bytes`` (4.15+),
                        clamp >= 1
5.9+ and 5.4.y          signed ``long``, no clamp, ineligible = ``LONG_MIN``
======================  ==============================================================

Page-table term: every era uses ``pgtables_bytes // PAGE_SIZE``. Before 4.15 the
kernel counted page-table pages (``nr_ptes``, plus ``nr_pmds`` from 4.0), which is
the same number when one table page is ``PAGE_SIZE`` bytes, as on x86-64.

Simplified, on purpose:

- Tasks are thread-group leaders, one per process (``for_each_process``). 3.x
  scanned every thread (``do_each_thread``); with one snapshot per process the
  choice is the same.
- ``PF_EXITING`` (an exiting task aborts the scan, or is chosen when it is
  ``current``), ``exit_state`` and sysrq-forced OOMs are not modelled: OomTask
  does not carry them.
- The cpuset / mempolicy test is one boolean, :attr:`OomTask.cpuset_intersects`,
  relative to the allocating task (for ``/proc`` reads the kernel compares with the
  reader; the same flag is used).
- Swapoff / KSM "OOM origin": 2.6.36..3.7 expressed it differently (a badness of
  1000, later ``oom_score_adj`` raised to 1000); it is modelled as a badness of
  1000 before 3.6 and as ``oom_task_origin()`` (selected with ``ULONG_MAX``) from
  3.6 on.

All arithmetic is integer and follows C: division truncates toward zero
(:func:`c_div`, not Python's ``//``), and ``unsigned long`` results wrap modulo
2**64 where the kernel's would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .limits import LONG_MAX, PAGE_SIZE, UINT_MAX, ULONG_MAX
from .proc import (
    OOM_ADJUST_MAX,
    OOM_ADJUST_MIN,
    OOM_DISABLE,
    OOM_SCORE_ADJ_MIN,
    c_div,
    check_oom_score_adj,
    score_adj_to_oom_adj,
)
from .version import (
    OOM_BADNESS_IN_PAGES,
    OOM_BADNESS_REWRITE,
    OOM_KILL_SCORE_UNSIGNED,
    OOM_LAST_WINS,
    OOM_NO_ROOT_BONUS,
    OOM_ROOT_BONUS_ON_USAGE,
    OOM_SIGNED_BADNESS,
    OOM_SIGNED_BADNESS_BACKPORTS,
    OOM_SKIP_FLAG,
    V2_6_32,
    KernelVersion,
)

__all__ = [
    "Badness",
    "OomTask",
    "Selection",
    "legacy_badness",
    "oom_badness",
    "oom_score_formula",
    "oom_score_needs_cpu_times",
    "oom_totalpages",
    "printed_score",
    "proc_oom_score",
    "select_bad_process",
]

_U64 = ULONG_MAX
_U32 = UINT_MAX


def int_sqrt(x: int) -> int:
    """Floor square root, as lib/math/int_sqrt.c."""
    return math.isqrt(x)


def _signed(v: KernelVersion) -> bool:
    return v >= OOM_SIGNED_BADNESS or v[:2] in OOM_SIGNED_BADNESS_BACKPORTS


@dataclass(frozen=True)
class OomTask:
    """What the OOM killer reads of one process: a thread-group leader's
    task_struct, signal_struct and mm_struct counters.

    Counts are in pages except ``pgtables_bytes`` (``mm_pgtables_bytes()``, in
    bytes). ``oom_adj`` is the legacy field 2.6.32 stored instead of
    ``oom_score_adj``; when None it is derived with :func:`score_adj_to_oom_adj`.
    """

    pid: int
    comm: str
    uid: int
    oom_score_adj: int
    rss_anon: int  # MM_ANONPAGES, pages
    rss_file: int  # MM_FILEPAGES, pages
    rss_shmem: int  # MM_SHMEMPAGES, pages
    swapents: int  # MM_SWAPENTS, pages
    pgtables_bytes: int  # mm_pgtables_bytes(), bytes
    total_vm: int  # mm->total_vm, pages
    has_mm: bool = True
    is_init: bool = False
    is_kthread: bool = False
    mmf_oom_skip: bool = False
    in_vfork: bool = False
    oom_victim: bool = False  # tsk_is_oom_victim(); TIF_MEMDIE in old trees
    oom_origin: bool = False  # oom_task_origin(): swapoff, KSM unmerge
    cap_sys_admin: bool = False
    # 2.6.32 badness() inputs:
    children_total_vm: tuple[int, ...] = ()  # total_vm of children with their own mm, pages
    cpu_time_jiffies: int = 0  # utime + stime of the thread group, jiffies
    start_time_s: int = 0  # monotonic seconds at fork
    nice: int = 0
    cap_sys_resource: bool = False
    cap_sys_rawio: bool = False
    cpuset_intersects: bool = True
    oom_adj: int | None = None  # signal->oom_adj (2.6.32); None: derived from oom_score_adj

    def __post_init__(self) -> None:
        check_oom_score_adj(self.oom_score_adj)
        for name in ("rss_anon", "rss_file", "rss_shmem", "swapents", "pgtables_bytes",
                     "total_vm", "cpu_time_jiffies"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"OomTask pid {self.pid}: {name} {value} is negative")
        if any(vm < 0 for vm in self.children_total_vm):
            raise ValueError(f"OomTask pid {self.pid}: negative children_total_vm {self.children_total_vm}")
        if self.oom_adj is not None and not (
            OOM_ADJUST_MIN <= self.oom_adj <= OOM_ADJUST_MAX or self.oom_adj == OOM_DISABLE
        ):
            raise ValueError(f"OomTask pid {self.pid}: oom_adj {self.oom_adj} is outside -17..15")

    @property
    def rss(self) -> int:
        """``get_mm_rss()``: MM_FILEPAGES + MM_ANONPAGES + MM_SHMEMPAGES, in pages."""
        return self.rss_anon + self.rss_file + self.rss_shmem

    @property
    def legacy_oom_adj(self) -> int:
        """``signal->oom_adj`` as 2.6.32 read it: the stored value, or the §1.6 read
        mapping of ``oom_score_adj``."""
        return self.oom_adj if self.oom_adj is not None else score_adj_to_oom_adj(self.oom_score_adj)


@dataclass(frozen=True)
class Badness:
    """``oom_badness()`` broken down as the kernel computes it.

    ``points`` is None when the task is ineligible (``LONG_MIN`` in 5.9+, 0 in
    older trees) and is never chosen. The terms are pages (``rss_pages``,
    ``swap_pages``, ``pgtables_pages``), and 0 for ineligible tasks and in the
    2.6.32 era, whose formula has no such terms. ``adj_points`` is what
    ``oom_score_adj`` (or 2.6.32's ``oom_adj`` shift) added, ``root_bonus`` what
    the privilege discount subtracted, both in the era's units (pages, or score
    points in 2.6.36..3.5). ``formula`` is the era's formula; ``ineligible`` says
    why a task was left out (None when it competed) and ``note`` what overrode the
    formula (an OOM origin's fixed score).
    """

    points: int | None
    rss_pages: int
    swap_pages: int
    pgtables_pages: int
    adj_points: int
    root_bonus: int
    formula: str
    ineligible: str | None = None
    note: str | None = None

    @property
    def description(self) -> str:
        """The formula with the reason it did not apply, for people
        (``5.9+: ...; ineligible: oom_score_adj == OOM_SCORE_ADJ_MIN``)."""
        if self.ineligible is not None:
            return f"{self.formula}; ineligible: {self.ineligible}"
        return f"{self.formula}; {self.note}" if self.note else self.formula


def _ineligible(formula: str, why: str) -> Badness:
    return Badness(None, 0, 0, 0, 0, 0, formula, ineligible=why)


def _unkillable_reason(task: OomTask) -> str | None:
    """``oom_unkillable_task()``: the global init and kernel threads."""
    if task.is_init:
        return "global init"
    if task.is_kthread:
        return "kernel thread (PF_KTHREAD)"
    return None


def oom_badness(task: OomTask, totalpages: int, version: KernelVersion, *,
                uptime_s: int = 0, hz: int = 250) -> Badness:
    """``oom_badness(p, totalpages)`` of mm/oom_kill.c for ``version``.

    ``totalpages`` is the allowed memory in pages (:func:`oom_totalpages`). Before
    2.6.36 this is :func:`legacy_badness` (``uptime_s`` and ``hz`` are its inputs);
    otherwise see the module docstring for each era's formula.
    """
    if version < OOM_BADNESS_REWRITE:
        return legacy_badness(task, uptime_s, hz)
    if totalpages < 0:
        raise ValueError(f"totalpages {totalpages} is negative")
    formula = _formula(version)

    # oom_unkillable_task(): init and kthreads; until 5.4 also a task whose mems
    # do not intersect the allocation's (has_intersects_mems_allowed()).
    why = _unkillable_reason(task)
    if why is None and version < OOM_LAST_WINS and not task.cpuset_intersects:
        why = "mems do not intersect (has_intersects_mems_allowed)"
    if why is None and not task.has_mm:
        why = "no thread has an mm (find_lock_task_mm)"
    if why is None and task.oom_score_adj == OOM_SCORE_ADJ_MIN:
        why = "oom_score_adj == OOM_SCORE_ADJ_MIN"
    if why is None and version >= OOM_SKIP_FLAG and task.mmf_oom_skip:
        why = "MMF_OOM_SKIP set on the mm"
    if why is None and version >= OOM_SKIP_FLAG and task.in_vfork:
        why = "in_vfork()"
    if why is not None:
        return _ineligible(formula, why)

    rss, swap = task.rss, task.swapents
    pgtables = task.pgtables_bytes // PAGE_SIZE
    adj = task.oom_score_adj

    if version < OOM_BADNESS_IN_PAGES:
        # 2.6.36..3.5 oom_badness(): 0..1000 inside the function. The 2.6.36 code
        # returned 1000 for PF_OOM_ORIGIN (swapoff) straight away.
        if task.oom_origin:
            return Badness(1000, rss, swap, pgtables, 0, 0, formula, note="OOM origin -> 1000")
        if totalpages == 0:  # "The memory controller may have a limit of 0 bytes"
            totalpages = 1
        points = (rss + pgtables + swap) * 1000 // totalpages  # non-negative: // is C's /
        root_bonus = 30 if task.cap_sys_admin else 0
        points = points - root_bonus + adj
        points = 1 if points <= 0 else min(points, 1000)
        return Badness(points, rss, swap, pgtables, adj, root_bonus, formula)

    points = rss + swap + pgtables
    adj_points = adj * (totalpages // 1000)  # totalpages / 1000 is unsigned: floors
    root_bonus = 0
    if task.cap_sys_admin and version < OOM_NO_ROOT_BONUS:
        if version < OOM_ROOT_BONUS_ON_USAGE:
            # 3.6..3.13: "adj -= 30" before "adj *= totalpages / 1000".
            root_bonus = 30 * (totalpages // 1000)
        else:
            # 3.14..4.16: "points -= (points * 3) / 100" before the adj term.
            root_bonus = c_div(points * 3, 100)
    points = points - root_bonus + adj_points
    if not _signed(version):
        points = points if points > 0 else 1  # "Never return 0 for an eligible task"
    return Badness(points, rss, swap, pgtables, adj_points, root_bonus, formula)


def _formula(version: KernelVersion) -> str:
    if version < OOM_BADNESS_REWRITE:
        return ("2.6.32 badness(): total_vm + sum(child total_vm/2 + 1), /isqrt(cpu), "
                "/isqrt(isqrt(run)), x2 niced, /4 admin|resource, /4 rawio, /8 cpuset, oom_adj shift")
    if version < OOM_BADNESS_IN_PAGES:
        return "2.6.36-3.5: clamp((rss + nr_ptes + swap)*1000/totalpages - 30[admin] + adj, 1, 1000)"
    if version < OOM_ROOT_BONUS_ON_USAGE:
        return "3.6-3.13: max(rss + nr_ptes + swap + (adj - 30[admin])*(totalpages/1000), 1)"
    if version < OOM_NO_ROOT_BONUS:
        return "3.14-4.16: max(pages - pages*3/100[admin] + adj*(totalpages/1000), 1), pages = rss + swap + pgtables"
    if _signed(version):
        era = "5.9+" if version >= OOM_SIGNED_BADNESS else "5.4.y (5.9 backport)"
        return f"{era}: rss + swap + pgtables + adj*(totalpages/1000)"
    return "4.17-5.8: max(rss + swap + pgtables + adj*(totalpages/1000), 1)"


def _shift_hz(hz: int) -> int:
    """SHIFT_HZ of include/linux/jiffies.h: 100 -> 7, 250 and 300 -> 8, 1000 -> 10."""
    if not 12 <= hz < 12288:
        raise ValueError(f"HZ {hz} is outside 12..12287 (include/linux/jiffies.h)")
    shift = 4
    while hz >= 24 << (shift - 4):
        shift += 1
    return shift


def legacy_badness(task: OomTask, uptime_s: int, hz: int = 250) -> Badness:
    """2.6.32 ``badness(p, uptime)`` of mm/oom_kill.c, step by step (§2).

    ``uptime_s`` is monotonic seconds now; ``hz`` sets SHIFT_HZ for the CPU-time
    term. Arithmetic is ``unsigned long``. Returns None points for ``oom_adj ==
    OOM_DISABLE`` or no mm (the kernel returns 0, which selection skips before
    calling it); ``ULONG_MAX`` for an OOM origin (PF_OOM_ORIGIN).
    """
    formula = _formula(V2_6_32)
    oom_adj = task.legacy_oom_adj
    # 1. OOM_DISABLE, then no mm (kernel threads have none).
    if oom_adj == OOM_DISABLE:
        return _ineligible(formula, "oom_adj == OOM_DISABLE")
    if not task.has_mm or task.is_kthread:
        return _ineligible(formula, "no mm")
    # 2. The virtual size is the base.
    points = task.total_vm
    # 3. swapoff / KSM.
    if task.oom_origin:
        return Badness(ULONG_MAX, 0, 0, 0, 0, 0, formula, note="PF_OOM_ORIGIN -> ULONG_MAX")
    # 4. Half of each child's own mm, plus one.
    for child_vm in task.children_total_vm:
        points += child_vm // 2 + 1
    points &= _U64
    # 5, 6. CPU time in ~8-second units, run time in ~1024-second units.
    cpu_time = task.cpu_time_jiffies >> (_shift_hz(hz) + 3)
    run_time = (uptime_s - task.start_time_s) >> 10 if uptime_s >= task.start_time_s else 0
    # 7, 8.
    if cpu_time:
        points //= int_sqrt(cpu_time)
    if run_time:
        points //= int_sqrt(int_sqrt(run_time))
    # 9. Niced tasks count double.
    if task.nice > 0:
        points = (points * 2) & _U64
    # 10. CAP_SYS_ADMIN or CAP_SYS_RESOURCE; 11. CAP_SYS_RAWIO; they stack.
    root_bonus = 0
    if task.cap_sys_admin or task.cap_sys_resource:
        root_bonus = points - points // 4
        points //= 4
    if task.cap_sys_rawio:
        points //= 4
    # 12. No cpuset overlap with current.
    if not task.cpuset_intersects:
        points //= 8
    # 13. The oom_adj shift.
    before = points
    if oom_adj > 0:
        if not points:
            points = 1
        points = (points << oom_adj) & _U64
    elif oom_adj < 0:
        points >>= -oom_adj
    return Badness(points, 0, 0, 0, points - before, root_bonus, formula)


def proc_oom_score(task: OomTask, totalpages: int, version: KernelVersion, *,
                   uptime_s: int = 0, hz: int = 250) -> int:
    """``/proc/PID/oom_score`` (fs/proc/base.c ``proc_oom_score``), §1.5.

    ``totalpages`` must be the global ``totalram_pages + total_swap_pages`` even
    for a task in a memcg, as the kernel uses. The value is what ``%lu`` prints:

    - < 2.6.36: the raw ``badness()``;
    - 2.6.36..3.5: ``oom_badness()`` itself (0..1000);
    - 3.6..5.8: ``oom_badness() * 1000 / totalpages`` (unsigned; 0 if ineligible);
    - 5.9+ and 5.4.y: 0 if ineligible, else ``(1000 + badness*1000/totalpages)*2/3``
      in signed long (0..2000).
    """
    if totalpages <= 0:
        raise ValueError(f"totalpages {totalpages} must be >= 1 (totalram_pages + total_swap_pages)")
    b = oom_badness(task, totalpages, version, uptime_s=uptime_s, hz=hz)
    if b.points is None:
        return 0
    if version < OOM_BADNESS_IN_PAGES:
        return b.points
    if _signed(version):
        return c_div((1000 + c_div(b.points * 1000, totalpages)) * 2, 3) & _U64
    return ((b.points * 1000) & _U64) // totalpages


def oom_score_formula(version: KernelVersion) -> str:
    """How ``/proc/PID/oom_score`` is derived from ``oom_badness()`` in ``version``
    (the eras of :func:`proc_oom_score`), for people."""
    if version < OOM_BADNESS_REWRITE:
        return "oom_score = badness() of 2.6.32: needs CPU and start times"
    if version < OOM_BADNESS_IN_PAGES:
        return "oom_score = oom_badness(), 0..1000 (2.6.36..3.5)"
    if _signed(version):
        return "oom_score = (1000 + points * 1000 / totalpages) * 2 / 3 (5.9+, 5.4.y)"
    return "oom_score = points * 1000 / totalpages (3.6..5.8)"


def oom_score_needs_cpu_times(version: KernelVersion) -> bool:
    """True before 2.6.36, whose ``badness()`` reads CPU and start times, which no
    trace or snapshot carries."""
    return version < OOM_BADNESS_REWRITE


def oom_totalpages(totalram_pages: int, total_swap_pages: int, memcg_limit_pages: int | None,
                   memcg_swap_limit_pages: int | None = None, swappiness: int = 60) -> int:
    """``oc->totalpages``, the allowed memory in pages (§1.4).

    Global OOM (``memcg_limit_pages`` None, CONSTRAINT_NONE): RAM + swap. Memcg OOM:
    ``mem_cgroup_get_max() ?: 1``, the limit plus, when the memcg's swappiness is
    not 0, ``min(swap part, total_swap_pages)``. The swap part is ``swap.max`` on
    cgroup v2 or ``memsw.max - memory.max`` on v1; None means unlimited. NUMA
    mempolicy and cpuset constraints are not modelled.
    """
    if memcg_limit_pages is None:
        return totalram_pages + total_swap_pages
    total = memcg_limit_pages
    if swappiness != 0:
        swap = total_swap_pages if memcg_swap_limit_pages is None else memcg_swap_limit_pages
        total += min(swap, total_swap_pages)
    return total or 1


def printed_score(points: int, totalpages: int, version: KernelVersion) -> int:
    """The N of the "Kill process ... score N" line, from the chosen task's raw
    points (:attr:`Selection.points`).

    - < 2.6.36: the raw badness printed with ``%li`` (ULONG_MAX shows as -1);
    - 2.6.36..3.5: the 0..1000 score as is;
    - 3.6..3.x: ``chosen_points * 1000 / totalpages`` (unsigned long, wrapping) stored
      in an ``unsigned int`` and printed with ``%d``;
    - 4.x..5.3: the same normalisation printed with ``%u``.

    ValueError from 5.4: those kernels print no score in the kill line.
    """
    if version >= OOM_LAST_WINS:
        raise ValueError(f"kernel {'.'.join(map(str, version))} prints no 'score' in its kill line")
    if version < OOM_BADNESS_REWRITE:
        return points - (1 << 64) if points > LONG_MAX else points
    if version < OOM_BADNESS_IN_PAGES:
        return points
    if totalpages <= 0:
        raise ValueError(f"totalpages {totalpages} must be >= 1")
    normalised = ((points * 1000) & _U64) // totalpages & _U32
    if version < OOM_KILL_SCORE_UNSIGNED:
        return normalised - (1 << 32) if normalised >= 1 << 31 else normalised
    return normalised


@dataclass(frozen=True)
class Selection:
    """The outcome of ``select_bad_process()``.

    ``points`` is the chosen task's raw score in the era's units: badness pages, or
    the OOM-origin sentinel (``LONG_MAX`` from 5.4, ``ULONG_MAX`` 3.6..5.3 and in
    2.6.32, 1000 in 2.6.36..3.5). :func:`printed_score` normalises it for old kill
    lines. ``aborted`` means an earlier victim is still exiting: wait, kill nothing
    (``oc->chosen = -1``).

    ``candidates`` are the rows ``dump_tasks()`` would print, in iteration order,
    each with its badness: every process with an mm that is not unkillable (the
    cpuset test as the version applies it; in 2.6.32 init is listed too).
    Ineligible rows (``oom_score_adj`` -1000, MMF_OOM_SKIP, ...) are included with
    ``points`` None; filter on it for the tasks that competed.
    """

    chosen: OomTask | None
    points: int | None
    aborted: bool
    candidates: tuple[tuple[OomTask, Badness], ...]
    reason: str
    #: tasks whose score equalled the chosen one's (the era's tie rule decided)
    ties: tuple[OomTask, ...] = ()


def _who(task: OomTask) -> str:
    return f"pid {task.pid} ({task.comm})"


def _dump_row(task: OomTask, version: KernelVersion, memcg_oom: bool) -> bool:
    """Whether ``dump_tasks()`` prints a row for ``task``."""
    if version < OOM_BADNESS_REWRITE:
        # 2.6.32: thread-group leaders with an mm, init included.
        return task.has_mm and not task.is_kthread
    if _unkillable_reason(task) is not None:
        return False
    if not task.cpuset_intersects and (version < OOM_LAST_WINS or not memcg_oom):
        return False
    return task.has_mm


def select_bad_process(tasks: Sequence[OomTask], totalpages: int, version: KernelVersion,
                       memcg_oom: bool = False, uptime_s: int = 0, *, hz: int = 250) -> Selection:
    """``select_bad_process()`` of mm/oom_kill.c for ``version`` (§1.7 step 7, §2).

    ``tasks`` are the processes in iteration order (``for_each_process``, or the
    memcg's processes for a memcg OOM: the caller filters them). For each task:

    1. unkillable (init, kthread; cpuset-ineligible, for memcg OOMs too before 5.4)
       -> skip;
    2. an existing OOM victim -> abort the scan, unless (4.9+) its mm has
       MMF_OOM_SKIP, then skip. 3.6..4.8 and 2.6.36..3.5 check this before the mm;
    3. no mm -> skip;
    4. OOM origin (3.6+) -> chosen with the sentinel; the scan goes on, so a later
       origin replaces it and a later victim still aborts;
    5. ineligible badness -> skip; otherwise compare. 5.4+: a lower score is
       skipped, so an equal one replaces the pick (the last task wins a tie).
       Before: only a strictly higher score replaces it (the first wins).

    Before 2.6.36 the 2.6.32 rules apply: no mm or init -> skip; TIF_MEMDIE ->
    abort; oom_adj -17 -> skip; chosen if ``points > best || !chosen`` with
    :func:`legacy_badness` (``uptime_s``, ``hz``).
    """
    candidates = tuple(
        (t, oom_badness(t, totalpages, version, uptime_s=uptime_s, hz=hz))
        for t in tasks if _dump_row(t, version, memcg_oom)
    )
    badness = {id(t): b for t, b in candidates}
    if version < OOM_BADNESS_REWRITE:
        return _select_legacy(tasks, badness, candidates)

    last_wins = version >= OOM_LAST_WINS
    origin_points = LONG_MAX if last_wins else ULONG_MAX  # used from 3.6 on
    chosen: OomTask | None = None
    chosen_points: int | None = None
    chosen_is_origin = False
    ties: list[OomTask] = []
    eligible = 0
    for task in tasks:
        if _unkillable_reason(task) is not None:
            continue
        if not task.cpuset_intersects and (not last_wins or not memcg_oom):
            continue
        if task.oom_victim and (version < OOM_SKIP_FLAG or not task.mmf_oom_skip):
            state = "with MMF_OOM_SKIP unset" if version >= OOM_SKIP_FLAG else "(TIF_MEMDIE)"
            return Selection(None, None, True, candidates,
                             f"{_who(task)} is already an OOM victim {state} and may still free "
                             f"memory: abort the scan and kill nothing")
        if task.oom_victim:
            continue  # 4.9+: reaped or given up on (MMF_OOM_SKIP)
        if not task.has_mm:
            continue
        if task.oom_origin and version >= OOM_BADNESS_IN_PAGES:
            chosen, chosen_points, chosen_is_origin, ties = task, origin_points, True, []
            continue
        b = badness[id(task)]  # every task reaching here is a dump_tasks row
        if b.points is None:
            continue
        eligible += 1
        if chosen is not None and chosen_points is not None:
            if b.points < chosen_points:
                continue
            if b.points == chosen_points:
                if not last_wins:
                    ties.append(task)
                    continue
                ties.append(chosen)
            else:
                ties = []
        chosen, chosen_points = task, b.points
        chosen_is_origin = task.oom_origin and version < OOM_BADNESS_IN_PAGES  # 1000 from oom_badness()

    if chosen is None:
        return Selection(None, None, False, candidates,
                         "no killable task: every process is unkillable, has no mm or is ineligible")
    if chosen_is_origin:
        reason = (f"{_who(chosen)} is an OOM origin (swapoff or KSM unmerge) and is chosen "
                  f"ahead of any score")
    else:
        reason = f"{_who(chosen)} has the highest badness, {chosen_points}, of {eligible} eligible tasks"
        if ties:
            rule = "the last task scanned wins a tie" if last_wins else "the first task scanned keeps a tie"
            reason += f"; it ties with {', '.join(_who(t) for t in ties)} and {rule}"
    return Selection(chosen, chosen_points, False, candidates, reason, tuple(ties))


def _select_legacy(tasks: Sequence[OomTask], badness: dict[int, Badness],
                   candidates: tuple[tuple[OomTask, Badness], ...]) -> Selection:
    """2.6.32 ``select_bad_process()``: ``points > *ppoints || !chosen``."""
    chosen: OomTask | None = None
    best = 0
    eligible = 0
    ties: list[OomTask] = []
    for task in tasks:
        if not task.has_mm or task.is_kthread:
            continue
        if task.is_init:
            continue
        if task.oom_victim:
            return Selection(None, None, True, candidates,
                             f"{_who(task)} already has TIF_MEMDIE: abort the scan and kill nothing")
        if task.legacy_oom_adj == OOM_DISABLE:
            continue
        b = badness[id(task)]  # every task reaching here is a dump_tasks row
        points = b.points if b.points is not None else 0
        eligible += 1
        if points > best or chosen is None:
            chosen, best, ties = task, points, []
        elif points == best:
            ties.append(task)
    if chosen is None:
        return Selection(None, None, False, candidates,
                         "no killable task: every process has no mm, is init or has oom_adj -17")
    if chosen.oom_origin:
        reason = f"{_who(chosen)} has PF_OOM_ORIGIN (swapoff): badness ULONG_MAX"
    else:
        reason = f"{_who(chosen)} has the highest badness, {best}, of {eligible} eligible tasks"
        if ties:
            reason += (f"; it ties with {', '.join(_who(t) for t in ties)} and the first task "
                       f"scanned keeps a tie")
    return Selection(chosen, best, False, candidates, reason, tuple(ties))
