"""The OOM root-cause report of a kernel log: parsed reports turned into :class:`~..report.model.OomReport`.

:func:`oom_report_from_parsed` takes the :class:`~.parse.ParsedOom` facts of
:mod:`.parse` and recomputes every candidate's badness from its task-table row with
:mod:`memtrace.linux.oom_kill` for the report's kernel (from its ``CPU:`` line, or
inferred from the layouts it printed, :func:`infer_kernel_version`), says what each
row lacks for that formula, whether the victim is the one the recomputation ranks
first, what could not be reclaimed and why, and who grew across successive reports
of the same memcg or machine. :func:`report_from_log` does both steps for a file.

What a log cannot tell is left None or said: a memcg report prints no machine swap
total, so ``totalpages`` counts no swap when the cgroup allows swap (said in the
candidate notes); a row that lacks a term of the era's formula counts it as 0 (said
in its note).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memtrace.errors import ParseError
from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.oom_kill import Badness, OomTask, oom_badness, select_bad_process
from memtrace.linux.proc import oom_adj_to_score_adj
from memtrace.linux.version import (
    OOM_BADNESS_IN_PAGES,
    OOM_BADNESS_REWRITE,
    OOM_NO_ROOT_BONUS,
    V2_6_32,
    V3_4,
    V3_10,
    V4_9,
    V4_19,
    V5_4,
    KernelVersion,
    format_kernel_version,
    parse_kernel_version,
)
from memtrace.units import KiB, format_size

from ..report.model import Candidate, LogFacts, OomKillReport, OomReport, TaskRef, Unreclaimable
from .facts import log_facts
from .formats import task_layout_by_marker
from .machine import page_size, platform
from .parse import ParsedOom, TaskRow, looks_like_kernel_log, parse_oom_log

__all__ = ["infer_kernel_version", "oom_report_from_parsed", "report_from_log"]


# --------------------------------------------------------------------------- versions


def infer_kernel_version(r: ParsedOom) -> tuple[KernelVersion | None, str]:
    """The report's kernel version and how it is known: from the dump_stack line's
    release, else from the layout of the header, task table and kill line (the
    oldest tree read with that layout). (None, why) when nothing tells."""
    if r.kernel_release:
        try:
            return parse_kernel_version(r.kernel_release), f"kernel {r.kernel_release} (dump_stack line)"
        except ValueError:
            pass
    # The task table's header tells the era of its row layout (formats.TASK_TABLE).
    table = task_layout_by_marker(set(r.task_columns))
    since = table[0] if table is not None else None
    guess: KernelVersion | None = None
    if since is not None and since > V3_4:
        guess = since
        if since == V4_19 and (r.killed_pgtables_kb is not None or bool(r.summary)
                               or (r.chosen_pid is None and r.killed_pid is not None)):
            # The 4.19 rows lasted until 6.8; the kill lines changed at 5.4
            # (formats.KILL_LINES): pgtables in the Killed line, the oom-kill:
            # summary, no "Kill process" line.
            guess = V5_4
    elif since == V3_4 or (r.trigger_oom_adj is not None and r.trigger_oom_score_adj is not None):
        guess = V3_4
    elif since is not None or r.trigger_oom_adj is not None:
        guess = V2_6_32
    # No task table: the header and the kill lines (formats.OOM_HEADER, KILL_LINES).
    elif r.killed_pgtables_kb is not None or r.summary:
        guess = V5_4
    elif r.nodemask is not None or r.killed_shmem_rss_kb is not None:
        guess = V4_9
    elif r.killed_anon_rss_kb is not None:
        guess = V3_10
    elif r.chosen_pid is not None and r.chosen_score is not None and r.kill_message and "a child" in str(r.chosen_comm):
        guess = V2_6_32
    if guess is None:
        return None, "kernel version unknown: no dump_stack line and no version-specific layout"
    return guess, f"kernel {format_kernel_version(guess)}-era layout (inferred: the log names no release)"


# --------------------------------------------------------------------------- report


def _pages_size(pages: int, pb: int) -> str:
    return format_size(pages * pb)


def _who(pid: int | None, comm: str | None) -> str:
    if pid is None:
        return comm or "an unknown task"
    return f"{comm} ({pid})" if comm else f"pid {pid}"


def _stat(stats: dict[str, int], *keys: str) -> int | None:
    for k in keys:
        if k in stats:
            return stats[k]
    return None


def _totalpages(r: ParsedOom, swap_total_pages: int | None, pb: int) -> tuple[int | None, str]:
    """``oc->totalpages`` (§1.4) from what the report printed, and how it was found
    (``pb``: the page size in bytes)."""
    pkb = pb // KiB
    if r.is_memcg:
        mem = r.memcg_counters.get("memory")
        limit_bytes = _stat(r.memcg_stats, "hierarchical_memory_limit")
        if mem is not None:
            limit_pages = mem[1] // pkb
        elif limit_bytes is not None:
            limit_pages = limit_bytes // pb
        else:
            return None, "the memcg limit is not in the report"
        swap_pages: int | None
        how = f"the memcg limit, {limit_pages} pages ({_pages_size(limit_pages, pb)})"
        if "memory+swap" in r.memcg_counters:  # v1: memsw.max - memory.max
            swap_pages = max(0, r.memcg_counters["memory+swap"][1] // pkb - limit_pages)
        elif "swap" in r.memcg_counters:  # v2: swap.max
            swap_pages = r.memcg_counters["swap"][1] // pkb
        else:
            swap_pages = None
        if swap_pages == 0 or swap_total_pages == 0:
            return limit_pages or 1, how + "; no swap allowed"
        if swap_pages is None and swap_total_pages is None:
            return limit_pages or 1, how + "; swap limit and machine swap unknown: no swap counted"
        if swap_total_pages is None:
            return limit_pages or 1, (how + "; the cgroup may swap but the report prints no machine swap "
                                      "total: no swap counted (memcg swappiness assumed non-zero)")
        part = swap_total_pages if swap_pages is None else min(swap_pages, swap_total_pages)
        return (limit_pages + part) or 1, how + f" + {part} swap pages (memcg swappiness assumed non-zero)"
    if r.ram_pages is None:
        return None, "no 'pages RAM' line in the report"
    managed = r.ram_pages - (r.reserved_pages or 0)
    swap = (r.swap_total_kb or 0) // pkb
    how = f"totalram {managed} pages (pages RAM - reserved) + swap {swap} pages"
    return managed + swap, how


def _row_task(row: TaskRow, version: KernelVersion, pb: int) -> tuple[OomTask, list[str]]:
    """The OomTask a task row describes, and what the row lacks for ``version``'s
    formula. oom_badness() divides the page-table bytes by its own PAGE_SIZE (4 KiB):
    the task gets the row's page-table pages (in the log's ``pb``-byte pages) times that,
    so that the term stays in the log's pages."""
    lacks: list[str] = []
    if row.rss_anon is not None:
        anon, file, shmem = row.rss_anon, row.rss_file or 0, row.rss_shmem or 0
    else:
        anon, file, shmem = row.rss or 0, 0, 0
    if row.pgtables_bytes is not None:
        pgtables = row.pgtables_bytes // pb * PAGE_SIZE
    elif row.nr_ptes is not None:
        pgtables = (row.nr_ptes + (row.nr_pmds or 0)) * PAGE_SIZE
    else:
        pgtables = 0
        if version >= OOM_BADNESS_REWRITE:
            lacks.append("page tables (nr_ptes) not printed: counted as 0")
    if row.swapents is None:
        swap = 0
        if version >= OOM_BADNESS_REWRITE:
            lacks.append("swap entries not printed: counted as 0")
    else:
        swap = row.swapents
    oom_adj = None
    if row.oom_score_adj is not None:
        adj = row.oom_score_adj
    elif row.oom_adj is not None:
        oom_adj = row.oom_adj
        adj = oom_adj_to_score_adj(oom_adj) if -17 <= oom_adj <= 15 else 0
    else:
        adj = 0
        lacks.append("oom_score_adj not printed: taken as 0")
    if row.oom_adj is not None and version < OOM_BADNESS_REWRITE:
        oom_adj = row.oom_adj
    if version < OOM_BADNESS_REWRITE:
        lacks.append("2.6.32 badness() also uses children's total_vm, CPU and run time, nice, capabilities "
                     "and cpusets, which the row lacks: recomputed from total_vm and oom_adj only")
    elif version < OOM_NO_ROOT_BONUS and (row.uid == 0):
        lacks.append("CAP_SYS_ADMIN is not in the row: the root bonus of this era is not applied")
    task = OomTask(
        pid=row.pid, comm=row.name, uid=row.uid if row.uid is not None and row.uid >= 0 else 0,
        oom_score_adj=max(-1000, min(1000, adj)), rss_anon=max(0, anon), rss_file=max(0, file),
        rss_shmem=max(0, shmem), swapents=max(0, swap), pgtables_bytes=max(0, pgtables),
        total_vm=max(0, row.total_vm or 0), is_init=row.pid == 1,
        oom_adj=oom_adj if oom_adj is None or -17 <= oom_adj <= 15 else None,
    )
    return task, lacks


def _unreclaimable(r: ParsedOom, swap_total_pages: int | None, pb: int) -> list[Unreclaimable]:
    """What reclaim could not free at the kill, and why, from the memcg stats or
    Mem-Info (§5.9: anon without swap, shmem without swap, mlocked, dirty,
    kernel memory, file cache already gone)."""
    out: list[Unreclaimable] = []
    if r.is_memcg and (r.memcg_stats or r.memcg_counters):
        st = r.memcg_stats
        anon = _stat(st, "total_rss", "rss", "anon")
        file = _stat(st, "total_cache", "cache", "file")
        shmem = _stat(st, "total_shmem", "shmem")
        unevictable = _stat(st, "total_unevictable", "unevictable")
        dirty = (_stat(st, "total_dirty", "dirty", "file_dirty") or 0) + (
            _stat(st, "total_writeback", "writeback", "file_writeback") or 0)
        swap_room = _memcg_swap_room(r, swap_total_pages, pb)
        if anon:
            if swap_room == 0:
                why = ("no swap: the memory+swap limit equals the memory limit"
                       if "memory+swap" in r.memcg_counters else "no swap the cgroup may use")
                out.append(Unreclaimable("anon_no_swap", anon, f"{format_size(anon)} of anonymous memory and {why}, "
                                         "so reclaim could not move it out"))
            elif swap_room is None:
                out.append(Unreclaimable("anon_no_swap", anon,
                                         f"{format_size(anon)} of anonymous memory; whether swap had room is not "
                                         "in the report"))
        if shmem and swap_room == 0:
            out.append(Unreclaimable("shmem_no_swap", shmem, f"{format_size(shmem)} of shmem/tmpfs can only be "
                                     "swapped, and there is no swap"))
        if unevictable:
            out.append(Unreclaimable("mlocked", unevictable, f"{format_size(unevictable)} unevictable (mlocked or "
                                     "SHM_LOCKed)"))
        if dirty:
            out.append(Unreclaimable("dirty", dirty, f"{format_size(dirty)} of page cache dirty or under writeback: "
                                     "it must be written before it can be freed"))
        if file is not None and (shmem or 0) <= file:
            clean = file - (shmem or 0)
            limit = r.memcg_counters.get("memory", (0, 0, 0))[1] * KiB
            if limit and clean < limit // 50:
                left = f"only {format_size(clean)} of page cache" if clean else "no page cache"
                out.append(Unreclaimable("file_cache_gone", clean, f"{left} left in the cgroup: "
                                         "nothing more to drop"))
        kmem = r.memcg_counters.get("kmem")
        kernel = _stat(st, "kernel")
        if kernel is None and kmem is not None:
            kernel = kmem[0] * KiB
        if kernel:
            out.append(Unreclaimable("kernel", kernel, f"{format_size(kernel)} of kernel memory charged to the cgroup"))
        return out
    mi = r.meminfo_pages
    if not mi:
        return out
    anon = mi.get("active_anon", 0) + mi.get("inactive_anon", 0)
    shmem = mi.get("shmem", 0)
    swap_total = r.swap_total_kb
    swap_free = r.swap_free_kb
    if anon:
        if swap_total == 0:
            out.append(Unreclaimable("anon_no_swap", anon * pb,
                                     f"{_pages_size(anon, pb)} on the anon LRU (anonymous and shmem) and no swap"))
        elif swap_free is not None and swap_free <= 0:
            out.append(Unreclaimable("swap_full", anon * pb,
                                     f"{_pages_size(anon, pb)} on the anon LRU and swap is full "
                                     f"({format_size((swap_total or 0) * KiB)} used)"))
    if shmem and swap_total == 0:
        out.append(Unreclaimable("shmem_no_swap", shmem * pb,
                                 f"{_pages_size(shmem, pb)} of shmem/tmpfs (part of the anon LRU above): "
                                 "only swap could free it"))
    if mi.get("unevictable"):
        out.append(Unreclaimable("mlocked", mi["unevictable"] * pb,
                                 f"{_pages_size(mi['unevictable'], pb)} unevictable (mlocked, SHM_LOCK, ramfs)"))
    dirty = mi.get("dirty", 0) + mi.get("writeback", 0)
    if dirty:
        out.append(Unreclaimable("dirty", dirty * pb,
                                 f"{_pages_size(dirty, pb)} of page cache dirty or under writeback"))
    file = mi.get("active_file", 0) + mi.get("inactive_file", 0)
    total = r.ram_pages or 0
    if total and file < total // 50:
        out.append(Unreclaimable("file_cache_gone", file * pb,
                                 f"only {_pages_size(file, pb)} left on the file LRU: the page cache was already "
                                 "reclaimed"))
    kernel = mi.get("slab_unreclaimable", 0) + mi.get("pagetables", 0)
    if kernel:
        out.append(Unreclaimable("kernel", kernel * pb,
                                 f"{_pages_size(kernel, pb)} of unreclaimable slab and page tables"))
    return out


def _memcg_swap_room(r: ParsedOom, swap_total_pages: int | None, pb: int) -> int | None:
    """Pages of swap the memcg could still use: 0 when it may not swap (no machine
    swap, memory+swap limit at the memory limit or used up, swap.max reached);
    None when the report does not tell (a limit that allows swap, and no machine
    swap total in the log)."""
    if swap_total_pages == 0:
        return 0
    room: int | None = None
    if "memory+swap" in r.memcg_counters:
        memsw_usage, memsw_limit, _ = r.memcg_counters["memory+swap"]
        mem_limit = r.memcg_counters.get("memory", (0, memsw_limit, 0))[1]
        if memsw_limit <= mem_limit or memsw_usage >= memsw_limit:
            return 0
        room = (memsw_limit - memsw_usage) // (pb // KiB)
    elif "swap" in r.memcg_counters:
        usage, limit, _ = r.memcg_counters["swap"]
        if usage >= limit:
            return 0
        room = (limit - usage) // (pb // KiB)
    if room is None or swap_total_pages is None:
        return None
    return min(room, swap_total_pages)


def _memory_state(r: ParsedOom, pb: int) -> dict[str, int] | None:
    """The memory state the report printed, in bytes."""
    out: dict[str, int] = {}
    if r.is_memcg:
        for name, key in (("memory", "memcg"), ("memory+swap", "memsw"), ("swap", "swap"), ("kmem", "kmem")):
            if name in r.memcg_counters:
                usage, limit, failcnt = r.memcg_counters[name]
                out[f"{key}_usage_bytes"] = usage * KiB
                out[f"{key}_limit_bytes"] = limit * KiB
                out[f"{key}_failcnt"] = failcnt
        for stat in ("anon", "file", "shmem", "rss", "cache", "mapped_file", "file_mapped", "dirty",
                     "writeback", "swap", "unevictable", "kernel", "active_anon", "inactive_anon",
                     "active_file", "inactive_file"):
            if stat in r.memcg_stats:
                out[f"{stat}_bytes"] = r.memcg_stats[stat]
    for key, value in r.meminfo_pages.items():
        out[f"{key.replace('(', '_').replace(')', '')}_bytes"] = value * pb
    if r.ram_pages is not None:
        out["ram_bytes"] = r.ram_pages * pb
    if r.reserved_pages is not None:
        out["reserved_bytes"] = r.reserved_pages * pb
    if r.swap_total_kb is not None:
        out["swap_total_bytes"] = r.swap_total_kb * KiB
    if r.swap_free_kb is not None:
        out["swap_free_bytes"] = r.swap_free_kb * KiB
    if r.pagecache_pages is not None:
        out["pagecache_bytes"] = r.pagecache_pages * pb
    return out or None


@dataclass
class _Recomputed:
    version: KernelVersion | None
    version_how: str
    totalpages: int | None
    totalpages_how: str
    formula: str | None
    candidates: list[Candidate]
    badness: dict[int, int | None]
    ranked_first: int | None
    selection_reason: str | None
    #: tasks the recomputation found tied with the one it ranks first
    ties: tuple[int, ...] = ()


def _recompute(r: ParsedOom, swap_total_pages: int | None, pb: int) -> _Recomputed:
    version, how = infer_kernel_version(r)
    totalpages, tp_how = _totalpages(r, swap_total_pages, pb)
    if not r.tasks or version is None:
        bare = [_bare_candidate(row, pb) for row in r.tasks]
        return _Recomputed(version, how, totalpages, tp_how, None, bare, {}, None, None)
    rows: list[tuple[TaskRow, OomTask | None, list[str]]] = []
    for row in r.tasks:
        try:
            row_task, lacks = _row_task(row, version, pb)
        except ValueError as e:  # an impossible row (negative counts): keep it unscored
            rows.append((row, None, [f"row not recomputed: {e}"]))
            continue
        rows.append((row, row_task, lacks))
    tasks = [t for _, t, _ in rows if t is not None]
    needs_total = (OOM_BADNESS_REWRITE <= version < OOM_BADNESS_IN_PAGES
                   or any(t.oom_score_adj for t in tasks))
    usable_total = totalpages if totalpages is not None else (None if needs_total else 0)
    badness: dict[int, int | None] = {}
    cands: list[Candidate] = []
    formula: str | None = None
    ranked: int | None = None
    reason: str | None = None
    ties: tuple[int, ...] = ()
    if usable_total is not None:
        sel = select_bad_process(tasks, usable_total, version, memcg_oom=r.is_memcg)
        by_id = {id(t): b for t, b in sel.candidates}
        ranked = sel.chosen.pid if sel.chosen is not None else None
        reason = sel.reason
        ties = tuple(t.pid for t in sel.ties)
        for row, task, lacks in rows:
            b = by_id.get(id(task)) if task is not None else None
            if b is None and task is not None:
                b = oom_badness(task, usable_total, version)
            if b is not None:
                formula = b.formula
            notes = list(lacks)
            if b is not None and b.ineligible is not None:
                notes.append(f"ineligible: {b.ineligible}")
            points = b.points if b is not None else None
            badness[row.pid] = points
            cands.append(_candidate(row, task, b, notes, version, pb))
    else:
        for row, task, lacks in rows:
            notes = [*list(lacks), f"badness not recomputed: totalpages unknown ({tp_how})"]
            cands.append(_candidate(row, task, None, notes, version, pb))
    return _Recomputed(version, how, totalpages, tp_how, formula, cands, badness, ranked, reason, ties)


def _bare_candidate(row: TaskRow, pb: int) -> Candidate:
    return Candidate(pid=row.pid, comm=row.name, points=None, rss_pages=row.rss, swap_pages=row.swapents,
                     pgtables_pages=None if row.pgtables_bytes is None else row.pgtables_bytes // pb,
                     oom_score_adj=row.oom_score_adj, adj_points=None, uid=row.uid, rss_anon_pages=row.rss_anon,
                     rss_file_pages=row.rss_file, rss_shmem_pages=row.rss_shmem, total_vm_pages=row.total_vm,
                     note="kernel version unknown: badness not recomputed")


def _candidate(row: TaskRow, task: OomTask | None, b: Badness | None, notes: list[str],
               version: KernelVersion, pb: int) -> Candidate:
    if row.pgtables_bytes is not None:
        pgt: int | None = row.pgtables_bytes // pb
    elif row.nr_ptes is not None:
        pgt = row.nr_ptes + (row.nr_pmds or 0)
    else:
        pgt = None
    adj = row.oom_score_adj if row.oom_score_adj is not None else (task.oom_score_adj if task else None)
    return Candidate(
        pid=row.pid, comm=row.name,
        points=b.points if b is not None else None,
        rss_pages=row.rss if row.rss is not None else (task.rss if task else None),
        swap_pages=row.swapents,
        pgtables_pages=pgt,
        oom_score_adj=adj,
        adj_points=b.adj_points if b is not None and version >= OOM_BADNESS_REWRITE and b.points is not None else None,
        uid=row.uid, rss_anon_pages=row.rss_anon, rss_file_pages=row.rss_file, rss_shmem_pages=row.rss_shmem,
        total_vm_pages=row.total_vm, note="; ".join(notes),
    )


def _usage_pages(c: Candidate) -> int:
    return (c.rss_pages or 0) + (c.swap_pages or 0) + (c.pgtables_pages or 0)


def _why_victim(r: ParsedOom, rc: _Recomputed, chosen: TaskRef | None) -> list[str]:
    """The explanation of the choice: the victim's badness broken down and, when it
    was not the biggest task, what outweighed the bigger one."""
    lines: list[str] = []
    vpid = chosen.pid if chosen is not None and chosen.pid is not None else r.victim_pid
    cands = {c.pid: c for c in rc.candidates}
    v = cands.get(vpid) if vpid is not None else None
    if v is None or v.points is None:
        if vpid is not None and rc.candidates:
            lines.append(f"{_who(vpid, r.victim_comm or (chosen.comm if chosen else None))} is not in the task "
                         "table: its badness cannot be recomputed")
        return lines
    if rc.version is not None and rc.version < OOM_BADNESS_REWRITE:
        vrow = r.row(v.pid)
        oom_adj = vrow.oom_adj if vrow is not None else None
        lines.append(f"{_who(v.pid, v.comm)} scored {v.points} with 2.6.32's badness(): its total_vm of "
                     f"{v.total_vm_pages} pages" + (f" shifted by oom_adj {oom_adj}" if oom_adj else "")
                     + (f" (the kernel printed score {r.chosen_score})" if r.chosen_score is not None else ""))
    else:
        per = (rc.totalpages // 1000) if rc.totalpages is not None else None
        adj_part = (f" + oom_score_adj {v.oom_score_adj} x {per} ({rc.totalpages} allowed pages / 1000)"
                    f" = {v.adj_points}" if v.oom_score_adj and per is not None and rc.version is not None
                    and rc.version >= OOM_BADNESS_IN_PAGES else "")
        lines.append(f"{_who(v.pid, v.comm)} scored {v.points} points: rss {v.rss_pages or 0} + swap "
                     f"{v.swap_pages or 0} + page tables {v.pgtables_pages or 0} pages{adj_part}")
    eligible = [c for c in rc.candidates if c.points is not None]
    if not eligible:
        return lines
    biggest = max(eligible, key=_usage_pages)
    if biggest.pid != v.pid and _usage_pages(biggest) > _usage_pages(v):
        if (v.oom_score_adj or 0) > 0:
            lines.append(f"{v.pid}'s oom_score_adj of {v.oom_score_adj} outweighed {biggest.pid}'s larger RSS "
                         f"(points {v.points} against {biggest.points})")
        elif (biggest.oom_score_adj or 0) < 0:
            lines.append(f"{biggest.pid}'s oom_score_adj of {biggest.oom_score_adj} protected it despite its "
                         f"larger RSS (points {biggest.points} against {v.points})")
        else:
            lines.append(f"{biggest.pid} held more memory ({_usage_pages(biggest)} pages against "
                         f"{_usage_pages(v)}) yet scored {biggest.points} against {v.points}")
    else:
        others = sorted((c for c in eligible if c.pid != v.pid), key=lambda c: c.points or 0, reverse=True)
        if others:
            o = others[0]
            lines.append(f"{v.pid} held the most memory of the {len(eligible)} eligible tasks; the next, "
                         f"{_who(o.pid, o.comm)}, scored {o.points}")
        else:
            lines.append(f"{v.pid} was the only eligible task")
    if rc.ranked_first is not None and rc.ranked_first != v.pid:
        first = cands.get(rc.ranked_first)
        lines.append(f"the recomputation ranks {_who(rc.ranked_first, first.comm if first else None)} first "
                     f"({first.points if first else '?'} points), not the victim: the row lacks what the kernel "
                     "used (see the candidates' notes), or the task changed between the dump and the choice")
    elif rc.selection_reason and rc.ties:
        lines.append(rc.selection_reason)
    if r.chosen_pid is not None and r.killed_pid is not None and r.chosen_pid != r.killed_pid:
        lines.append(f"the kernel chose {_who(r.chosen_pid, r.chosen_comm)} and killed its child "
                     f"{_who(r.killed_pid, r.killed_comm)} instead (\"sacrifice child\", before 5.x)")
    return lines


def _holders(r: ParsedOom, scope: str, pb: int) -> str | None:
    """Who held the memory: the largest tasks of the table."""
    if not r.tasks:
        return None
    rows = sorted(r.tasks, key=lambda t: (t.rss or 0) + (t.swapents or 0), reverse=True)
    total = sum((t.rss or 0) + (t.swapents or 0) for t in rows)
    parts = [f"{_who(t.pid, t.name)} {_pages_size((t.rss or 0) + (t.swapents or 0), pb)}" for t in rows[:4]]
    more = f" and {len(rows) - 4} more" if len(rows) > 4 else ""
    return f"{scope} held by {len(rows)} tasks ({_pages_size(total, pb)} resident or swapped): {', '.join(parts)}{more}"


def _constraint_line(r: ParsedOom, trigger: TaskRef | None, pb: int, log: LogFacts) -> str:
    who = _who(trigger.pid, trigger.comm) if trigger is not None else "a task"
    alloc = ""
    kind = log.oom_kind
    if r.order is not None and r.order >= 0:
        flags = (log.gfp.flags if log.gfp is not None else None) or (
            f"gfp_mask {r.gfp_mask:#x}" if r.gfp_mask is not None else "")
        alloc = f" on an order-{r.order} {flags} allocation".replace("  ", " ")
    if kind == "sysrq":
        return (f"a manual OOM ({who} ran the SysRq-f handler, order=-1): the kernel was asked to kill a task, "
                "it was not short of memory")
    if r.is_memcg:
        mem = r.memcg_counters.get("memory")
        state = (f": usage {format_size(mem[0] * KiB)} of its {format_size(mem[1] * KiB)} limit" if mem else "")
        return f"{who} hit the limit of memory cgroup {r.memcg or '?'}{alloc}{state}"
    if r.constraint in ("CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY"):
        return f"{who} ran out of the memory its {r.constraint[11:].lower()} allows{alloc}"
    if r.constraint is None:
        return f"{who}: an OOM kill whose report the log cut before any constraint"
    free = r.meminfo_pages.get("free")
    state = (f": {_pages_size(free, pb)} free of {_pages_size(r.ram_pages, pb)} RAM"
             if free is not None and r.ram_pages else "")
    return f"{who} found the machine out of memory (global OOM){alloc}{state}"


def _scope(r: ParsedOom) -> str:
    return f"memcg:{r.memcg}" if r.is_memcg else "global"


def _growers(reports: list[ParsedOom]) -> dict[int, dict[str, Any]]:
    """Per report index, the task that grew most since the previous report of the
    same scope (memcg path, or the machine), from the task tables."""
    out: dict[int, dict[str, Any]] = {}
    by_scope: dict[str, list[int]] = {}
    for i, r in enumerate(reports):
        if r.tasks:
            by_scope.setdefault(_scope(r), []).append(i)
    for idxs in by_scope.values():
        if len(idxs) < 2:
            continue
        best: dict[str, Any] | None = None
        for a, b in itertools.pairwise(idxs):
            before = {t.pid: (t.rss or 0) + (t.swapents or 0) for t in reports[a].tasks}
            for t in reports[b].tasks:
                if t.pid in before:
                    delta = (t.rss or 0) + (t.swapents or 0) - before[t.pid]
                    if delta > 0 and (best is None or delta > best["growth_pages"]):
                        best = {"pid": t.pid, "comm": t.name, "from_pages": before[t.pid],
                                "to_pages": before[t.pid] + delta, "growth_pages": delta,
                                "from_ts_ns": reports[a].ts_ns, "to_ts_ns": reports[b].ts_ns}
        if best is not None:
            for i in idxs:
                out[i] = best
    return out


def _swap_total_pages(reports: list[ParsedOom], pbs: list[int]) -> int | None:
    """The machine's swap in pages, from the first report that prints it."""
    for r, pb in zip(reports, pbs):
        if r.swap_total_kb is not None:
            return r.swap_total_kb * KiB // pb
    return None


def oom_report_from_parsed(reports: list[ParsedOom], source: str = "dmesg",
                           warnings: Iterable[str] = ()) -> OomReport:
    """The :class:`OomReport` of parsed reports: badness recomputed, victims
    checked, explanations written (see the module docstring)."""
    kills: list[OomKillReport] = []
    warnings = list(warnings)
    plats = [platform(r) for r in reports]
    sizes = [page_size(r, p.arch) for r, p in zip(reports, plats)]
    pbs = [ps.nr_bytes for ps in sizes]
    swap_total = _swap_total_pages(reports, pbs)
    growers = _growers(reports)
    for i, r in enumerate(reports):
        pb = pbs[i]
        plat = platform(r, sizes[i])
        rc = _recompute(r, swap_total, pb)
        log = log_facts(r, rc.version, sizes[i], plat)
        victim = TaskRef(r.victim_pid, r.victim_comm)
        chosen = log.chosen
        trigger = _trigger(log)
        chosen_pid = chosen.pid if chosen is not None else r.victim_pid
        vpoints = rc.badness.get(chosen_pid) if chosen_pid is not None else None
        explanation: list[str] = [_constraint_line(r, trigger, pb, log)]
        if log.watermarks is not None:
            explanation.append(f"zones: {log.watermarks.verdict}")
        if log.fragmentation is not None and (log.fragmentation.fragmented_for_request
                                              or log.fragmentation.heavily_fragmented):
            explanation.append(f"free memory: {log.fragmentation.verdict}")
        held = _holders(r, f"memory cgroup {r.memcg}" if r.is_memcg else "memory", pb)
        if held:
            explanation.append(held)
        grower = growers.get(i)
        if grower is not None:
            explanation.append(
                f"{_who(grower['pid'], grower['comm'])} is the grower: its memory rose from "
                f"{grower['from_pages']} to {grower['to_pages']} pages (+{_pages_size(grower['growth_pages'], pb)}) "
                "between successive OOM reports")
        unrec = _unreclaimable(r, swap_total, pb)
        for u in unrec:
            explanation.append(f"not reclaimable: {u.detail}")
        if r.panic is not None:
            explanation.append(f"the kernel panicked instead of killing: {r.panic}")
        elif r.no_killable:
            explanation.append("no task could be killed (every candidate unkillable or oom_score_adj -1000)")
        else:
            explanation.extend(_why_victim(r, rc, chosen))
        if r.reaped is not None and r.reaped.get("success"):
            explanation.append(f"the OOM reaper freed {victim.comm or 'the victim'}'s private memory; "
                               f"{format_size(r.reaped.get('file', 0) + r.reaped.get('shmem', 0))} of file and shmem "
                               "pages stayed mapped")
        if victim.pid is None and chosen is not None and r.panic is None:
            explanation.append(f"the kernel chose {_who(chosen.pid, chosen.comm)}; the log ends before its "
                               "'Killed process' line")
        elif not r.complete:
            explanation.append("the report is truncated: the log ends before its kill line")
        explanation.extend(_conflict_sentences(log))
        if log.task_table is not None and log.task_table.state != "full":
            table = f"task table {log.task_table.state}: {'; '.join(log.task_table.why)}"
            explanation.append(table)
            warnings.append(f"line {r.lineno}: OOM report {i + 1}: {table}")
        extra: dict[str, Any] = {"log_line": r.lineno, "version_how": rc.version_how,
                                 "totalpages_how": rc.totalpages_how}
        for key, value in (("kernel_release", r.kernel_release), ("wall_clock", r.wall),
                           ("kill_message", r.kill_message), ("gfp_flags", log.gfp.flags if log.gfp else None),
                           ("panic", r.panic), ("oom_group", r.oom_group), ("reaped", r.reaped),
                           ("cgroup_version", r.cgroup_version), ("grower", grower),
                           ("task_memcg", r.summary.get("task_memcg") or r.task_in),
                           ("printed_score", r.chosen_score), ("ranked_first_pid", rc.ranked_first)):
            if value is not None:
                extra[key] = value
        if r.also_killed:
            extra["also_killed"] = [{"pid": p, "comm": c} for p, c in r.also_killed]
        if r.killed_pid is not None:
            extra["killed"] = {k: v for k, v in (
                ("total_vm_kb", r.killed_total_vm_kb), ("anon_rss_kb", r.killed_anon_rss_kb),
                ("file_rss_kb", r.killed_file_rss_kb), ("shmem_rss_kb", r.killed_shmem_rss_kb),
                ("uid", r.killed_uid), ("pgtables_kb", r.killed_pgtables_kb),
                ("oom_score_adj", r.killed_oom_score_adj), ("ts_ns", r.killed_ts_ns)) if v is not None}
        if not r.complete:
            extra["truncated"] = True
        ranked_first = None
        if rc.ranked_first is not None and chosen_pid is not None:
            ranked_first = rc.ranked_first == chosen_pid
        order = log.facts["order"].value
        kills.append(OomKillReport(
            ts_ns=r.ts_ns,
            trigger=trigger,
            constraint=r.constraint,
            memcg=r.memcg,
            victim=victim,
            victim_points=vpoints,
            candidates=tuple(rc.candidates),
            unreclaimable=tuple(unrec),
            explanation=tuple(explanation),
            gfp_mask=r.gfp_mask,
            order=order if isinstance(order, int) else None,
            totalpages=rc.totalpages,
            kernel_version=format_kernel_version(rc.version) if rc.version is not None else None,
            formula=rc.formula,
            victim_ranked_first=ranked_first,
            memory=_memory_state(r, pb),
            extra=extra,
            log=log,
        ))
    return OomReport(source=source, kills=tuple(kills), warnings=tuple(warnings))


def _trigger(log: LogFacts) -> TaskRef | None:
    pid, comm = log.facts["trigger_pid"].value, log.facts["trigger_comm"].value
    if pid is None and comm is None:
        return None
    return TaskRef(pid if isinstance(pid, int) else None, comm if isinstance(comm, str) else None)


def _conflict_sentences(log: LogFacts) -> list[str]:
    """A sentence for each fact the log states in two places that disagree."""
    out = []
    for name, fact in log.facts.items():
        label = name.replace("_", " ")
        for c in fact.conflicts:
            where = f"line {', '.join(map(str, c.lines))}" if c.lines else "the log"
            said = f"{where} reads {_value_text(c.value)} ({c.rule})" + (f": {c.note}" if c.note else "")
            if fact.value is None:
                out.append(f"{label}: not taken: {said}")
            else:
                taken = fact.evidence[0].rule if fact.evidence else "?"
                out.append(f"{label}: {_value_text(fact.value)} (from {taken}), but {said}")
    return out


def _value_text(value: object) -> str:
    if isinstance(value, dict) and "pid" in value:
        pid, comm = value.get("pid"), value.get("comm")
        return _who(pid if isinstance(pid, int) else None, comm if isinstance(comm, str) else None)
    return "nothing" if value is None else str(value)


def report_from_log(path: str | os.PathLike[str]) -> OomReport:
    """The OOM report of a kernel log file (dmesg, ``journalctl -k``, syslog; plain
    or gzip): one :class:`OomKillReport` per kill (or panic) found, within the
    bounds of :mod:`.limits` (each bound crossed is a warning). ParseError only
    when the file cannot be read; a log without any OOM gives no kills and a
    warning."""
    log = parse_oom_log(path)
    warnings = list(log.warnings)
    if not log.reports:
        if not looks_like_kernel_log(path):
            raise ParseError(f"{log.path}: neither a memtrace trace nor a kernel log (dmesg, journalctl -k, "
                             "syslog); a perf script or ftrace dump is read with 'memtrace import'")
        warnings.append(f"{log.path}: no OOM report in {log.lines} lines")
    return oom_report_from_parsed(log.reports, "dmesg", warnings)
