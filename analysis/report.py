"""OOM root-cause reports built from a trace: who grew, what reclaim could not free,
why this victim, and (with replays) what would have avoided it.

:func:`build_report` folds a trace once (:mod:`memtrace.analysis.state`) and returns
an :class:`~memtrace.analysis.report_model.OomReport` with one entry per OOM kill, per
OOM panic and per overcommit refusal (``constraint`` ``"overcommit"``: the request
failed with ENOMEM before any OOM). For each kill:

- the constraint and memcg, the trigger (the task whose allocation invoked the OOM
  killer: the ``oom_kill`` event's context) and the memory at the kill (the OOM's own
  /proc/meminfo reading, or the memcg's ``memcg_stat``);
- a timeline of the window before it (:data:`DEFAULT_WINDOW_NS`, or the whole trace
  when shorter): memory by kind from the readings, each process's RSS from
  ``kmem:rss_stat``, the top growers;
- reclaim in the window (kswapd, direct and memcg reclaim, and why scanned pages
  stayed: ``shrink_list``'s dirty, no-swap and mapped counters) and what could not be
  reclaimed at the kill, from the state folded up to the OOM (:class:`Unreclaimable`
  kinds ``anon_no_swap``, ``swap_full``, ``shmem_no_owner``, ``shmem_no_swap``,
  ``mlocked``, ``file_cache_gone``, ``dirty``, ``kernel``);
- every candidate row (``oom_candidate``) with its badness recomputed by
  :func:`memtrace.oom_kill.oom_badness` for the trace's kernel version, compared with
  the recorded points, and :func:`memtrace.oom_kill.select_bad_process` run on the
  rows to check the victim;
- what the kill left: shmem that no process owns stays charged (``outlived_kill``).

What-if answers need replays, which analysis cannot run (it imports only the tracer):
:func:`what_if_changes` proposes the changes, the CLI replays them and
:func:`judge_what_if` classifies each outcome as a
:class:`~memtrace.analysis.report_model.WhatIf`; :func:`with_what_if` adds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from memtrace.linux.limits import LONG_MIN
from memtrace.linux.oom_kill import OomTask, oom_badness, select_bad_process
from memtrace.linux.proc import OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN
from memtrace.linux.version import DEFAULT_KERNEL_VERSION, parse_kernel_version

from .explain import ExplainResult, Part, explain_state, kind_totals
from .report_model import (
    Candidate,
    Grower,
    OomKillReport,
    OomReport,
    ProcessSeries,
    ReclaimActivity,
    TaskRef,
    Timeline,
    Unreclaimable,
    WhatIf,
)
from .state import (
    K_SHMEM,
    LRU_UNEVICTABLE,
    PAGE_SIZE,
    StateFolder,
    meta_int,
    meta_part,
    untraced_fields,
    walk,
)

#: How far back before a kill the timeline, growers and reclaim look, in ns.
DEFAULT_WINDOW_NS = 300 * 1_000_000_000
#: At most this many /proc/meminfo readings in a timeline (more are thinned evenly).
MAX_TIMELINE_POINTS = 1500
#: Processes drawn in a timeline: the victim, the trigger and the largest others.
MAX_TIMELINE_PROCESSES = 6
#: The simulated kernel's version when a header names none.

_RSS_MEMBERS = ("MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES")

#: The fields the report reads from the events the fold keeps whole (History), by
#: tracepoint; checked against the trace's schema before the fold (see
#: memtrace.analysis.tracer.tracepoints.check_fields).
REPORT_READS: dict[str, tuple[str, ...]] = {
    "oom_kill": ("oom_id", "victim_pid", "comm", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "points",
                 "totalpages", "constraint", "memcg", "task_memcg", "gfp_mask", "order", "message"),
    "oom_candidate": ("oom_id", "tgid", "uid", "comm", "total_vm", "rss_anon", "rss_file", "rss_shmem",
                      "swapents", "pgtables_bytes", "oom_score_adj", "points"),
    "oom_panic": ("oom_id", "reason", "constraint", "gfp_mask", "order"),
    "vm_enough_memory": ("nr_pages", "committed_bytes", "limit_bytes", "mode", "op"),
    "memcg_stat": ("path", "usage_bytes", "limit_bytes", "failcnt", "swap_bytes", "anon_bytes", "file_bytes",
                   "shmem_bytes", "kernel_bytes"),
    "kswapd_sleep": ("nr_reclaimed",),
    "reclaim_end": ("kind", "memcg", "nr_scanned", "nr_reclaimed"),
    "shrink_list": ("memcg", "nr_scanned", "nr_reclaimed", "nr_dirty", "nr_no_swap", "nr_mapped_kept",
                    "nr_activate"),
}
#: oom_candidate counts OomTask refuses when negative (a schema with signed fields).
_CANDIDATE_COUNTS = ("rss_anon", "rss_file", "rss_shmem", "swapents", "pgtables_bytes", "total_vm")


def format_size(nr_bytes: int | None) -> str:
    """A byte count for people: ``768 MiB``, ``1.5 GiB``, ``12 KiB``, ``0 B``."""
    if nr_bytes is None:
        return "unknown"
    n = abs(nr_bytes)
    sign = "-" if nr_bytes < 0 else ""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            text = f"{v:.0f}" if v == int(v) or v >= 100 else f"{v:.1f}"
            return f"{sign}{text} {unit}"
    return f"{sign}{n} B"


def format_ts(ts_ns: int | None) -> str:
    """Seconds since boot, as dmesg shows them: ``4.929 s``."""
    return "?" if ts_ns is None else f"{ts_ns / 1e9:.3f} s"


# --------------------------------------------------------------------------- folding


@dataclass
class _AtOom:
    """What the fold showed at one OOM: the breakdown at its reading, and scope sums."""

    explain: ExplainResult | None
    mlocked_bytes: int = 0
    dirty_bytes: int = 0


class _Observer:
    """Takes pictures of the state at each OOM and right after each victim's exit."""

    def __init__(self) -> None:
        self.at_oom: dict[int, _AtOom] = {}
        self.victims: dict[int, int] = {}  # victim pid -> oom_id, until it exits
        self.scope: dict[int, str | None] = {}  # oom_id -> memcg path (None: global)
        self.outlived: dict[int, list[tuple[int, int, int]]] = {}  # oom_id -> (ino, memcg, bytes)

    def __call__(self, name: str, f: dict[str, Any], folder: StateFolder) -> None:
        if name == "oom_candidate":
            self._picture(int(f["oom_id"]), folder, None)
        elif name == "oom_kill":
            oom_id = int(f["oom_id"])
            memcg = f["memcg"] or None
            self.scope[oom_id] = memcg
            self._picture(oom_id, folder, memcg)
            self.victims[int(f["victim_pid"])] = oom_id
        elif name == "exit":
            oom_id = self.victims.pop(int(f["pid"]), None)
            if oom_id is not None:
                self.outlived[oom_id] = _unowned_shmem(folder, self.scope.get(oom_id))

    def _picture(self, oom_id: int, folder: StateFolder, memcg: str | None) -> None:
        if oom_id in self.at_oom:
            return
        state = folder.state()
        reading = folder.history.readings[-1] if folder.history.readings else None
        res = explain_state(state, reading) if state.has_pages or reading is not None else None
        pg = state.pages
        used = pg.kind != 0
        self.at_oom[oom_id] = _AtOom(
            res,
            mlocked_bytes=int(np.count_nonzero(used & (pg.lru == LRU_UNEVICTABLE))) * PAGE_SIZE,
            dirty_bytes=int(np.count_nonzero(used & pg.dirty)) * PAGE_SIZE,
        )


def _scope_ids(folder: StateFolder, memcg: str | None) -> np.ndarray | None:
    if memcg is None:
        return None
    return np.array([i for i, p in folder.cgroups.items() if p == memcg or p.startswith(memcg.rstrip("/") + "/")],
                    dtype=np.int64)


def _unowned_shmem(folder: StateFolder, memcg: str | None) -> list[tuple[int, int, int]]:
    """Shmem pages no process maps, by inode and memcg, in the OOM's scope."""
    pg = folder.pages
    sel = (pg.kind == K_SHMEM) & (pg.mapcount <= 0)
    ids = _scope_ids(folder, memcg)
    if ids is not None:
        sel &= np.isin(pg.memcg, ids)
    p = np.flatnonzero(sel)
    if not len(p):
        return []
    key = pg.ino[p].astype(np.int64) * 65536 + pg.memcg[p]
    vals, counts = np.unique(key, return_counts=True)
    return [(int(k // 65536), int(k % 65536), int(n) * PAGE_SIZE) for k, n in zip(vals.tolist(), counts.tolist())]


# --------------------------------------------------------------------------- building


def build_report(reader: Any, window_ns: int = DEFAULT_WINDOW_NS) -> OomReport:
    """The OOM report of a trace (see the module docstring).

    TraceFormatError when the trace's schema lacks a field the report reads. Values
    no kernel could have written (an oom_score_adj of 2**31 - 1, a mapping of 8 EiB)
    do not stop it: the row is clamped or the event left out, and the report's
    warnings say so."""
    folder = StateFolder(reader.meta, reads=REPORT_READS, reader="memtrace report")
    obs = _Observer()
    walk(reader, folder, observe=obs, observe_tracepoints=("oom_candidate", "oom_kill", "exit"))
    return _Assembler(folder, obs, window_ns).report([*reader.warnings, *folder.warnings])


class _Assembler:
    def __init__(self, folder: StateFolder, obs: _Observer, window_ns: int) -> None:
        self.f = folder
        self.obs = obs
        self.h = folder.history
        self.window_ns = window_ns
        meta = folder.meta
        #: what the report itself ignored or clamped (header parts, odd candidate rows)
        self.warnings: list[str] = []
        self.machine: dict[str, Any] = dict(meta_part(meta, "machine"))
        for key in ("ram_bytes", "swap_bytes"):  # renderers print them as sizes
            if key in self.machine and meta_int(self.machine, key, "machine", self.warnings) is None:
                del self.machine[key]
        text = str(self.machine.get("kernel_version") or DEFAULT_KERNEL_VERSION)
        try:
            self.version = parse_kernel_version(text)
        except ValueError:
            self.version = parse_kernel_version(DEFAULT_KERNEL_VERSION)
            self.warnings.append(f"trace header: machine.kernel_version {text[:40]!r} is not a kernel version; "
                                 f"badness is recomputed with {DEFAULT_KERNEL_VERSION}'s formula")
            text = DEFAULT_KERNEL_VERSION
        self.kernel_version = text
        self.first_ts = min([r.ts_ns for r in self.h.readings] + [folder.first_ts_ns or 0])
        self.state = folder.state()
        #: oom_kill fields an importer could not fill (placeholders in the trace)
        self.untraced = untraced_fields(meta, "oom_kill")

    # -- helpers

    def comm(self, pid: int | None) -> str | None:
        if pid is None:
            return None
        p = self.f.procs.get(pid)
        return p.comm if p is not None else None

    def who(self, pid: int | None, comm: str | None = None) -> str:
        if pid is None:
            return comm or "an unknown task"
        name = comm or self.comm(pid)
        return f"{name} (pid {pid})" if name and name != "?" else f"pid {pid}"

    def report(self, warnings: list[str]) -> OomReport:
        kills: list[OomKillReport] = []
        for k in self.h.of("oom_kill"):
            kills.append(self.kill(k))
        for p in self.h.of("oom_panic"):
            kills.append(self.panic(p))
        for r in self.h.of("vm_enough_memory"):
            kills.append(self.refusal(r))
        kills.sort(key=lambda k: (k.ts_ns is None, k.ts_ns or 0))
        warnings = [*warnings, *self.warnings]
        if self.f.unattributed_faults and self.state.has_pages:
            warnings.append(f"{self.f.unattributed_faults:,} page faults hit no mapping the trace shows")
        return OomReport(source=self.state.source, kills=tuple(kills), warnings=tuple(dict.fromkeys(warnings)),
                         timeline=self.timeline(None, None, [k["ts_ns"] for k in self.h.of("oom_kill")]),
                         scenario=str(self.f.meta.get("scenario")) if self.f.meta.get("scenario") else None,
                         machine=self.machine or None)

    # -- timeline and growth

    def _rss_at(self, t0: int | None, t1: int, pids: set[int] | None) -> tuple[dict[int, int], dict[int, int],
                                                                          dict[int, list[tuple[int, int]]]]:
        """RSS by pid at ``t0`` and at ``t1`` (bytes), and each pid's series in [t0, t1]."""
        cur: dict[int, dict[str, int]] = {}
        start: dict[int, int] = {}
        series: dict[int, list[tuple[int, int]]] = {}
        started = t0 is None
        for ts, pid, member, size in self.h.rss:
            if ts > t1:
                break
            if not started and ts > t0:  # type: ignore[operator]
                start = {p: sum(m.get(x, 0) for x in _RSS_MEMBERS) for p, m in cur.items()}
                started = True
            if member not in _RSS_MEMBERS:
                cur.setdefault(pid, {})[member] = size
                continue
            cur.setdefault(pid, {})[member] = size
            if pids is not None and pid not in pids:
                continue
            total = sum(cur[pid].get(x, 0) for x in _RSS_MEMBERS)
            if started:
                s = series.setdefault(pid, [])
                if s and s[-1][0] == ts:
                    s[-1] = (ts, total)
                else:
                    s.append((ts, total))
        if not started:
            start = {p: sum(m.get(x, 0) for x in _RSS_MEMBERS) for p, m in cur.items()}
        end = {p: sum(m.get(x, 0) for x in _RSS_MEMBERS) for p, m in cur.items()}
        for pid, s in series.items():
            if pid in start and (not s or s[0][0] != t0):
                s.insert(0, (t0 if t0 is not None else s[0][0], start[pid]))
        return start, end, series

    def timeline(self, t0: int | None, t1: int | None, kills: Iterable[int],
                 pids: set[int] | None = None, must: Iterable[int] = ()) -> Timeline:
        readings = [r for r in self.h.readings if (t0 is None or r.ts_ns >= t0) and (t1 is None or r.ts_ns <= t1)]
        if len(readings) > MAX_TIMELINE_POINTS:
            step = len(readings) / MAX_TIMELINE_POINTS
            keep = {int(i * step) for i in range(MAX_TIMELINE_POINTS)} | {len(readings) - 1}
            keep |= {i for i, r in enumerate(readings) if r.label is not None}
            readings = [r for i, r in enumerate(readings) if i in keep]
        kinds: dict[str, list[int]] = {k: [] for k in ("anon", "file", "shmem", "kernel", "free", "swap")}
        for r in readings:
            tot = kind_totals(r.meminfo)
            for k in kinds:
                kinds[k].append(tot[k])
        end = t1 if t1 is not None else (self.f.last_ts_ns or 0)
        _, _, series = self._rss_at(t0, end, pids)
        for s in series.values():
            if s and s[-1][0] < end:
                s.append((end, s[-1][1]))  # the RSS holds until the next change
        peak = {pid: max(v for _, v in s) for pid, s in series.items() if s}
        chosen = list(dict.fromkeys(p for p in must if p in series))
        for pid in sorted(peak, key=lambda p: -peak[p]):
            if len(chosen) >= MAX_TIMELINE_PROCESSES:
                break
            if pid not in chosen and peak[pid] > 0:
                chosen.append(pid)
        procs = tuple(ProcessSeries(pid, self.comm(pid), tuple(t for t, _ in series[pid]),
                                    tuple(v for _, v in series[pid])) for pid in chosen)
        return Timeline(ts_ns=tuple(r.ts_ns for r in readings), kinds={k: tuple(v) for k, v in kinds.items()},
                        processes=procs, kills_ts_ns=tuple(int(t) for t in kills))

    def growers(self, t0: int, t1: int, pids: set[int] | None) -> list[Grower]:
        start, end, _ = self._rss_at(t0, t1, pids)
        out = []
        for pid, e in end.items():
            if pids is not None and pid not in pids:
                continue
            s = start.get(pid, 0)
            if e - s > 0:
                p = self.f.procs.get(pid)
                cg = self.state.cgroup_path(p.memcg_id) if p is not None else None
                out.append(Grower(pid, self.comm(pid), s, e, e - s, cg))
        out.sort(key=lambda g: (-g.growth_bytes, g.pid))
        return out[:5]

    # -- reclaim

    def reclaim(self, t0: int, t1: int, memcg: str | None) -> ReclaimActivity:
        inside = lambda e: t0 <= e["ts_ns"] <= t1  # noqa: E731
        in_scope = (lambda path: path == memcg or path.startswith(memcg.rstrip("/") + "/")) if memcg else None
        r: dict[str, int] = {}
        if memcg is None:
            r["kswapd_wakes"] = sum(1 for e in self.h.of("kswapd_wake") if inside(e))
            r["kswapd_reclaimed_pages"] = sum(e["nr_reclaimed"] for e in self.h.of("kswapd_sleep") if inside(e))
        for e in self.h.of("reclaim_end"):
            if not inside(e):
                continue
            if e["kind"] == "direct" and memcg is None:
                r["direct_runs"] = r.get("direct_runs", 0) + 1
                r["direct_scanned_pages"] = r.get("direct_scanned_pages", 0) + e["nr_scanned"]
                r["direct_reclaimed_pages"] = r.get("direct_reclaimed_pages", 0) + e["nr_reclaimed"]
            elif e["kind"] == "memcg" and (in_scope is None or in_scope(e["memcg"])):
                r["memcg_runs"] = r.get("memcg_runs", 0) + 1
                r["memcg_scanned_pages"] = r.get("memcg_scanned_pages", 0) + e["nr_scanned"]
                r["memcg_reclaimed_pages"] = r.get("memcg_reclaimed_pages", 0) + e["nr_reclaimed"]
        for e in self.h.of("shrink_list"):
            if not inside(e) or (in_scope is not None and not in_scope(e["memcg"])):
                continue
            for key, field_name in (("scanned_pages", "nr_scanned"), ("reclaimed_pages", "nr_reclaimed"),
                                    ("kept_dirty_pages", "nr_dirty"), ("kept_no_swap_pages", "nr_no_swap"),
                                    ("kept_mapped_pages", "nr_mapped_kept"), ("activated_pages", "nr_activate")):
                r[key] = r.get(key, 0) + int(e[field_name])
        ids = set(_scope_ids(self.f, memcg).tolist()) if memcg else None
        r["file_cache_reclaimed_bytes"] = PAGE_SIZE * sum(
            n for ts, m, n in self.h.cache_reclaimed if t0 <= ts <= t1 and (ids is None or m in ids))
        r["swapped_out_pages"] = sum(n for ts, m, n in self.h.swapped_out
                                     if t0 <= ts <= t1 and (ids is None or m in ids))
        return ReclaimActivity(**r)

    # -- the kill

    def kill(self, k: dict[str, Any]) -> OomKillReport:
        oom_id = int(k["oom_id"])
        ts = int(k["ts_ns"])
        known = lambda name: name not in self.untraced  # noqa: E731
        memcg = (k["memcg"] or None) if known("memcg") else None
        constraint = k["constraint"] if known("constraint") else None
        trigger_pid = int(k["pid"]) or None
        victim_pid = int(k["victim_pid"])
        totalpages = int(k["totalpages"]) if known("totalpages") else None
        rows = [c for c in self.h.of("oom_candidate") if int(c["oom_id"]) == oom_id]
        candidates, formula, chosen, sel_reason, mismatch = self.candidates(rows, totalpages or 0, constraint or "")
        points = None if int(k["points"]) == LONG_MIN or not known("points") else int(k["points"])
        t0 = max(self.first_ts, ts - self.window_ns)
        ids = set(_scope_ids(self.f, memcg).tolist()) if memcg else None
        pids = None if ids is None else {p.pid for p in self.f.procs.values() if p.memcg_id in ids}
        if not pids and memcg:
            # The cgroup's members are not in the trace (imported): the candidate rows
            # are, else every process.
            pids = {c.pid for c in candidates} or None
        growers = self.growers(t0, ts, pids)
        reclaim = self.reclaim(t0, ts, memcg)
        at = self.obs.at_oom.get(oom_id)
        memory = self.memory_at(ts, memcg, at)
        unrec = self.unreclaimable(memcg, at, reclaim, memory)
        outlived = self.outlived(oom_id)
        must = [victim_pid] + ([trigger_pid] if trigger_pid else []) + [g.pid for g in growers[:2]]
        timeline = self.timeline(t0, ts, [ts], pids, must)
        report = OomKillReport(
            ts_ns=ts, trigger=TaskRef(trigger_pid, self.comm(trigger_pid)), constraint=constraint, memcg=memcg,
            victim=TaskRef(victim_pid, k["comm"]), victim_points=points, candidates=tuple(candidates),
            unreclaimable=tuple(unrec), gfp_mask=int(k["gfp_mask"]) if known("gfp_mask") else None,
            order=int(k["order"]) if known("order") else None,
            totalpages=totalpages, kernel_version=self.kernel_version, formula=formula,
            victim_ranked_first=(chosen == victim_pid) if rows else None, memory=memory,
            extra={"oom_id": oom_id, "message": k["message"] if known("message") else None,
                   "task_memcg": k["task_memcg"] if known("task_memcg") else None,
                   "untraced": dict(self.untraced),
                   "victim_rss_kb": {"anon": int(k["anon_rss_kb"]), "file": int(k["file_rss_kb"]),
                                     "shmem": int(k["shmem_rss_kb"])},
                   "selection": sel_reason, "points_mismatch": mismatch},
            growers=tuple(growers), reclaim=reclaim, timeline=timeline, outlived_kill=tuple(outlived),
            window_ns=ts - t0,
        )
        return replace(report, explanation=tuple(self.explain(report, k)))

    def candidates(self, rows: list[dict[str, Any]], totalpages: int,
                   constraint: str) -> tuple[list[Candidate], str | None, int | None, str, list[str]]:
        tasks, out, mismatch = [], [], []
        formula = None
        totalpages = max(totalpages, 0)
        for c in rows:
            task, odd = self._task_of(c)
            tasks.append(task)
            b = oom_badness(task, totalpages, self.version)
            formula = b.formula.split(";")[0]
            recorded = None if int(c["points"]) == LONG_MIN else int(c["points"])
            note = ""
            if recorded != b.points:
                note = f"recorded {recorded}, the formula gives {b.points}"
                mismatch.append(f"{self.who(task.pid, task.comm)}: {note}")
            elif b.points is None:
                note = b.formula.split("ineligible: ")[-1] if "ineligible" in b.formula else "ineligible"
            note = "; ".join(x for x in (note, odd) if x)
            out.append(Candidate(
                pid=task.pid, comm=task.comm, points=recorded, rss_pages=b.rss_pages, swap_pages=b.swap_pages,
                pgtables_pages=b.pgtables_pages, oom_score_adj=task.oom_score_adj, adj_points=b.adj_points,
                uid=task.uid, rss_anon_pages=task.rss_anon, rss_file_pages=task.rss_file,
                rss_shmem_pages=task.rss_shmem, total_vm_pages=task.total_vm, note=note, formula_points=b.points))
        if not tasks:
            return out, None, None, "", mismatch
        sel = select_bad_process(tasks, totalpages, self.version, memcg_oom=constraint == "CONSTRAINT_MEMCG")
        out.sort(key=lambda c: (c.points is None, -(c.points or 0), c.pid))
        return out, formula, sel.chosen.pid if sel.chosen is not None else None, sel.reason, mismatch

    def _task_of(self, c: dict[str, Any]) -> tuple[OomTask, str]:
        """An oom_candidate row as the OomTask the kernel's formula reads, and a note.
        A value no kernel could have recorded (an oom_score_adj outside -1000..1000:
        __set_oom_adj() refuses such a write; a negative count) is clamped into range,
        noted on the row and warned about, instead of stopping the report."""
        pid = int(c["tgid"])
        where = f"oom_candidate (seq {c.get('seq', '?')}, pid {pid})"
        notes = []
        adj = int(c["oom_score_adj"])
        if not OOM_SCORE_ADJ_MIN <= adj <= OOM_SCORE_ADJ_MAX:
            clamped = min(max(adj, OOM_SCORE_ADJ_MIN), OOM_SCORE_ADJ_MAX)
            notes.append(f"oom_score_adj {adj} recorded, read as {clamped}")
            self.warnings.append(f"{where}: oom_score_adj {adj} is outside {OOM_SCORE_ADJ_MIN}..{OOM_SCORE_ADJ_MAX}; "
                                 f"read as {clamped} to recompute its badness")
            adj = clamped
        counts = {}
        for name in _CANDIDATE_COUNTS:
            value = int(c[name])
            if value < 0:
                notes.append(f"{name} {value} recorded, read as 0")
                self.warnings.append(f"{where}: {name} {value} is negative; read as 0 to recompute its badness")
                value = 0
            counts[name] = value
        task = OomTask(pid=pid, comm=str(c["comm"]), uid=int(c["uid"]), oom_score_adj=adj,
                       cap_sys_admin=int(c["uid"]) == 0, **counts)
        return task, "; ".join(notes)

    def memory_at(self, ts: int, memcg: str | None, at: _AtOom | None) -> dict[str, int] | None:
        if memcg is not None:
            stats = [e for e in self.h.of("memcg_stat") if e["path"] == memcg and e["ts_ns"] <= ts]
            if stats:
                e = stats[-1]
                return {"usage": e["usage_bytes"], "limit": e["limit_bytes"], "anon": e["anon_bytes"],
                        "file": e["file_bytes"] - e["shmem_bytes"], "shmem": e["shmem_bytes"],
                        "kernel": e["kernel_bytes"], "swap": e["swap_bytes"], "failcnt": e["failcnt"]}
            return None
        if at is not None and at.explain is not None and at.explain.meminfo:
            tot = kind_totals(at.explain.meminfo)
            tot["total"] = at.explain.meminfo.get("MemTotal", 0)
            return tot
        return None

    def _scope_parts(self, at: _AtOom | None, memcg: str | None) -> list[Part]:
        if at is None or at.explain is None:
            return []
        parts = list(at.explain.parts)
        if memcg is None:
            return parts
        prefix = memcg.rstrip("/") + "/"
        return [p for p in parts if p.owner.cgroup is not None and (p.owner.cgroup == memcg
                                                                      or p.owner.cgroup.startswith(prefix))]

    def unreclaimable(self, memcg: str | None, at: _AtOom | None, reclaim: ReclaimActivity,
                      memory: dict[str, int] | None) -> list[Unreclaimable]:
        out: list[Unreclaimable] = []
        if not self.state.has_pages:
            return out  # no per-page state: what could not be reclaimed is not known
        parts = self._scope_parts(at, memcg)
        swap_total = meta_int(self.machine, "swap_bytes", "machine") or 0
        anon = [p for p in parts if p.kind == "anon" and "swap-out" not in p.freed_by]
        if anon:
            total = sum(p.bytes for p in anon)
            top = _top_owners(anon)
            if swap_total:
                out.append(Unreclaimable("swap_full", total, f"anonymous memory, and swap is full: {top}"))
            else:
                out.append(Unreclaimable("anon_no_swap", total,
                                         f"anonymous memory with no swap to write it to: {top}"))
        unowned = [p for p in parts if p.kind == "shmem" and not p.mapped_by]
        if unowned:
            out.append(Unreclaimable("shmem_no_owner", sum(p.bytes for p in unowned),
                                     f"shmem no process owns, so no kill can free it: {_top_owners(unowned)}"))
        mapped_shmem = [p for p in parts if p.kind == "shmem" and p.mapped_by and "swap-out" not in p.freed_by]
        if mapped_shmem:
            out.append(Unreclaimable("shmem_no_swap", sum(p.bytes for p in mapped_shmem),
                                     f"shared memory with no swap to write it to: {_top_owners(mapped_shmem)}"))
        if at is not None and at.mlocked_bytes:
            out.append(Unreclaimable("mlocked", at.mlocked_bytes, "mlocked or SHM_LOCKed pages (unevictable)"))
        file_left = sum(p.bytes for p in parts if p.kind == "file") if parts else (
            memory.get("file") if memory else None)
        if reclaim.file_cache_reclaimed_bytes:
            out.append(Unreclaimable(
                "file_cache_gone", file_left,
                f"page cache was already reclaimed: {format_size(reclaim.file_cache_reclaimed_bytes)} dropped in "
                f"the window, {format_size(file_left)} left"))
        elif file_left is not None and file_left < 16 << 20:
            out.append(Unreclaimable("file_cache_gone", file_left,
                                     f"there was almost no page cache to reclaim ({format_size(file_left)})"))
        dirty = at.dirty_bytes if at is not None and at.dirty_bytes else 0
        if dirty:
            out.append(Unreclaimable("dirty", dirty, "dirty page cache: written back before it can be freed"))
        if memory is not None and memory.get("kernel"):
            out.append(Unreclaimable("kernel", memory["kernel"],
                                     "kernel memory (slab, stacks, page tables): only reclaimable slab can go"))
        return out

    def outlived(self, oom_id: int) -> list[Unreclaimable]:
        out = []
        for ino, memcg, n in self.obs.outlived.get(oom_id, []):
            node = self.f.inodes.get(ino)
            name = node.display if node is not None else f"inode {ino}"
            cg = self.state.cgroup_path(memcg)
            how = "shmctl(IPC_RMID)" if node is not None and node.kind == "sysv" else "deleting it"
            out.append(Unreclaimable("shmem_no_owner", n,
                                     f"{name} ({format_size(n)}), owned by no process, is still charged to {cg}; "
                                     f"only {how} frees it"))
        return out

    # -- sentences

    def explain(self, r: OomKillReport, k: dict[str, Any]) -> list[str]:
        out: list[str] = []
        when = format_ts(r.ts_ns)
        trig = self.who(r.trigger.pid, r.trigger.comm) if r.trigger else "a task"
        mem = r.memory or {}
        if r.constraint is None:
            note = self.untraced.get("constraint", "")
            hint = " (give the importer the kernel log: --dmesg)" if "dmesg" in note else ""
            out.append(f"At {when}, {trig} needed memory and the OOM killer ran; whether it was a global or a "
                       f"memory-cgroup OOM is not in the trace{hint}.")
        elif r.constraint == "CONSTRAINT_MEMCG":
            limit = mem.get("limit") or self.state.cgroup_limits.get(r.memcg or "", 0)
            at_limit = (f"which was at its limit of {format_size(limit)} (usage {format_size(mem.get('usage'))})"
                        if limit else "which was at its limit")
            out.append(f"At {when}, {trig} needed memory in memory cgroup {r.memcg}, {at_limit}: a memcg OOM "
                       f"(CONSTRAINT_MEMCG), so only the cgroup's processes were candidates.")
        else:
            ram = meta_int(self.machine, "ram_bytes", "machine") or 0
            swap = meta_int(self.machine, "swap_bytes", "machine") or 0
            swap_text = f"{format_size(swap)} of swap" if swap else "no swap"
            what = f"the machine ({format_size(ram)} of RAM, {swap_text})" if ram else "the machine"
            out.append(f"At {when}, {trig} needed memory and {what} had none left: a global OOM "
                       f"({r.constraint}), every process was a candidate.")
        if r.growers:
            g = r.growers[0]
            since = (f"Since the trace began, {format_size_ns(r.window_ns)} before" if r.window_ns is not None
                     and r.ts_ns is not None and r.ts_ns - r.window_ns <= self.first_ts
                     else f"In the {format_size_ns(r.window_ns)} before")
            text = (f"{since}, {self.who(g.pid, g.comm)} grew the most: by "
                    f"{format_size(g.growth_bytes)}, to {format_size(g.end_bytes)}")
            others = [f"{self.who(x.pid, x.comm)} by {format_size(x.growth_bytes)}" for x in r.growers[1:3]]
            out.append(text + (f" (then {', '.join(others)})." if others else "."))
        out.extend(self._reclaim_sentences(r))
        out.extend(self._victim_sentences(r))
        if r.candidates:
            if k and r.extra.get("points_mismatch"):
                out.append("Recomputed with the kernel formula, some points differ from the recorded ones: "
                           + "; ".join(r.extra["points_mismatch"]) + ".")
            else:
                out.append(f"Recomputed from the task rows with the {r.formula} formula (kernel "
                           f"{r.kernel_version}), every candidate's points equal the recorded ones"
                           + ("." if r.victim_ranked_first else
                              ", but the recomputation ranks another task first."))
        rss = r.extra.get("victim_rss_kb", {})
        if rss:
            freed = (rss.get("anon", 0) + rss.get("shmem", 0)) * 1024
            out.append(f"Killing {self.who(r.victim.pid, r.victim.comm)} freed about {format_size(freed)} of its "
                       f"private memory ({format_size(rss.get('file', 0) * 1024)} of file pages it mapped stay "
                       f"cached).")
        for u in r.outlived_kill:
            out.append(f"The tmpfs/shmem memory outlived the kill: {u.detail}.")
        return out

    def _reclaim_sentences(self, r: OomKillReport) -> list[str]:
        rc = r.reclaim
        if rc is None:
            return []
        bits = []
        if rc.kswapd_wakes:
            bits.append(f"kswapd woke {rc.kswapd_wakes} time(s) and reclaimed "
                        f"{format_size(rc.kswapd_reclaimed_pages * PAGE_SIZE)}")
        if rc.direct_runs:
            bits.append(f"direct reclaim ran {rc.direct_runs} time(s) and reclaimed "
                        f"{format_size(rc.direct_reclaimed_pages * PAGE_SIZE)}")
        if rc.memcg_runs:
            bits.append(f"memcg reclaim ran {rc.memcg_runs} time(s) and reclaimed "
                        f"{format_size(rc.memcg_reclaimed_pages * PAGE_SIZE)}")
        out = []
        traced = any(self.h.counts.get(n) for n in ("reclaim_begin", "reclaim_end", "kswapd_wake", "shrink_list"))
        if bits:
            out.append("Reclaim tried first: " + "; ".join(bits) + ".")
        elif not traced and self.state.imported:
            out.append("The trace records no reclaim (the vmscan tracepoints were not traced), so what reclaim "
                       "tried is unknown.")
        else:
            out.append("No reclaim ran in the window.")
        kept = []
        if rc.kept_no_swap_pages:
            kept.append(f"{format_size(rc.kept_no_swap_pages * PAGE_SIZE)} had no swap to go to")
        if rc.kept_dirty_pages:
            kept.append(f"{format_size(rc.kept_dirty_pages * PAGE_SIZE)} were dirty")
        if rc.kept_mapped_pages:
            kept.append(f"{format_size(rc.kept_mapped_pages * PAGE_SIZE)} were mapped and in use")
        if kept:
            out.append("Of the pages reclaim scanned, " + ", ".join(kept) + ".")
        why = []
        for u in r.unreclaimable:
            if u.kind == "anon_no_swap":
                why.append(f"{format_size(u.bytes)} of anonymous memory (no swap)")
            elif u.kind == "swap_full":
                why.append(f"{format_size(u.bytes)} of anonymous memory (swap full)")
            elif u.kind == "shmem_no_owner":
                where = u.detail.split(": ", 1)[-1]
                why.append(f"{format_size(u.bytes)} of shmem/tmpfs that no process owns ({where})")
            elif u.kind == "shmem_no_swap":
                why.append(f"{format_size(u.bytes)} of mapped shared memory (no swap)")
            elif u.kind == "mlocked":
                why.append(f"{format_size(u.bytes)} mlocked")
            elif u.kind == "file_cache_gone" and "already" in u.detail:
                why.append(f"the page cache was already gone ({format_size(u.bytes)} left)")
            elif u.kind == "file_cache_gone":
                why.append(f"there was almost no page cache ({format_size(u.bytes)})")
            elif u.kind == "dirty":
                why.append(f"{format_size(u.bytes)} of dirty page cache")
        if why:
            out.append("What was left could not be reclaimed: " + "; ".join(why) + ".")
        elif not self.state.has_pages:
            out.append("What reclaim could not free is unknown: the trace has no per-page state (which pages "
                       "were anonymous, dirty, mapped or shmem no process owned).")
        return out

    def _victim_sentences(self, r: OomKillReport) -> list[str]:
        out = []
        victim = next((c for c in r.candidates if c.pid == r.victim.pid), None)
        vname = self.who(r.victim.pid, r.victim.comm)
        eligible = [c for c in r.candidates if c.points is not None]
        if victim is None or victim.points is None:
            pts = (f" ({r.victim_points:,} points)" if r.victim_points is not None else
                   " (its badness is not in the trace)" if "points" in self.untraced else "")
            rows = "" if r.candidates else "; the trace has no task table, so the other candidates are unknown"
            out.append(f"The OOM killer killed {vname}{pts}{rows}.")
            return out
        terms = [f"rss {victim.rss_pages:,}"]
        if victim.swap_pages:
            terms.append(f"swap {victim.swap_pages:,}")
        terms.append(f"page tables {victim.pgtables_pages:,}")
        adj = ""
        if victim.adj_points:
            sign = "+" if (victim.adj_points or 0) > 0 else "-"
            per = f" (x totalpages/1000 = {r.totalpages // 1000:,})" if r.totalpages else ""
            adj = f" {sign} {abs(victim.adj_points or 0):,} for oom_score_adj {victim.oom_score_adj}{per}"
        out.append(f"The OOM killer chose {vname}: badness {victim.points:,} points = {' + '.join(terms)} pages"
                   f"{adj}; the highest of {len(eligible)} eligible task(s).")
        vrss = (victim.rss_pages or 0) + (victim.swap_pages or 0)
        for c in eligible:
            if c.pid == victim.pid:
                continue
            crss = (c.rss_pages or 0) + (c.swap_pages or 0)
            if crss > vrss and (victim.oom_score_adj or 0) > (c.oom_score_adj or 0):
                out.append(f"{vname}'s oom_score_adj of {victim.oom_score_adj} outweighed "
                           f"{self.who(c.pid, c.comm)}'s larger RSS (points {victim.points:,} against "
                           f"{c.points:,}).")
            elif (c.adj_points or 0) < 0:
                more = f"held more memory ({crss:,} pages) but " if crss > vrss else ""
                out.append(f"{self.who(c.pid, c.comm)} {more}was protected: its oom_score_adj of {c.oom_score_adj} "
                           f"took {abs(c.adj_points or 0):,} points off its {crss + (c.pgtables_pages or 0):,}, "
                           f"leaving {c.points:,}.")
        spared = [c for c in r.candidates if c.points is None]
        for c in spared:
            out.append(f"{self.who(c.pid, c.comm)} could not be chosen: {c.note or 'ineligible'}.")
        return out

    # -- other entries

    def panic(self, p: dict[str, Any]) -> OomKillReport:
        return OomKillReport(
            ts_ns=int(p["ts_ns"]), trigger=TaskRef(int(p["pid"]) or None, self.comm(int(p["pid"]))),
            constraint=p["constraint"], memcg=None, victim=TaskRef(None, None), victim_points=None,
            explanation=(f"At {format_ts(p['ts_ns'])} the kernel panicked instead of killing: {p['reason']}.",),
            gfp_mask=int(p["gfp_mask"]), order=int(p["order"]), kernel_version=self.kernel_version,
            extra={"oom_id": int(p["oom_id"]), "panic": p["reason"]})

    def refusal(self, e: dict[str, Any]) -> OomKillReport:
        pid = int(e["pid"])
        op = e["op"] or self._refused_op(pid, int(e["seq"]))
        asked = int(e["nr_pages"]) * PAGE_SIZE
        mode = int(e["mode"])
        limit = "CommitLimit less the reserves" if mode == 2 else "RAM + swap"
        text = (f"At {format_ts(e['ts_ns'])}, {self.who(pid)}'s {op or 'request'} of {format_size(asked)} was "
                f"refused with ENOMEM by the overcommit policy (vm.overcommit_memory={mode}): Committed_AS "
                f"{format_size(int(e['committed_bytes']))} plus {format_size(asked)} would exceed {limit}, "
                f"{format_size(int(e['limit_bytes']))}. The process got an error instead of the OOM killer "
                f"running later.")
        return OomKillReport(
            ts_ns=int(e["ts_ns"]), trigger=TaskRef(pid, self.comm(pid)), constraint="overcommit", memcg=None,
            victim=TaskRef(None, None), victim_points=None, explanation=(text,), kernel_version=self.kernel_version,
            memory={"committed": int(e["committed_bytes"]), "limit": int(e["limit_bytes"]), "requested": asked},
            extra={"kind": "refusal", "op": op, "overcommit_memory": mode})

    def _refused_op(self, pid: int, seq: int) -> str:
        for name in ("mmap", "brk", "fork", "shm"):
            for e in self.h.of(name):
                if e["pid"] == pid and seq < e["seq"] <= seq + 3:
                    return name
        return ""


def format_size_ns(ns: int | None) -> str:
    """A duration for people: ``4.9 s``, ``5 min``."""
    if ns is None:
        return "window"
    s = ns / 1e9
    if s >= 120:
        return f"{s / 60:.0f} min"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.1f} s"


def _top_owners(parts: list[Part], n: int = 3) -> str:
    by: dict[str, int] = {}
    for p in parts:
        name = p.owner.name
        if p.owner.type == "mapping" and p.owner.pid is not None:
            name = f"{p.owner.comm} (pid {p.owner.pid})"
        by[name] = by.get(name, 0) + p.bytes
    top = sorted(by.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{name} {format_size(b)}" for name, b in top[:n])
    return text + (f" and {len(top) - n} more" if len(top) > n else "")


# --------------------------------------------------------------------------- what if


@dataclass(frozen=True)
class WhatIfChange:
    """A change a replay can try: sysctls, ``--set`` keys (machine, cgroup) and
    oom_score_adj of processes (by pid), with the question it answers."""

    label: str
    kind: str  # oom_score_adj, overcommit, limit, ram, swap
    sysctls: tuple[tuple[str, str], ...] = ()
    sets: tuple[tuple[str, str], ...] = ()
    oom_score_adj: tuple[tuple[int, int], ...] = ()
    question: str = ""


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay with one change did: its OOM kills (pid, comm, points, ts_ns) in
    order, its ENOMEM refusals (pid, comm, op), a panic, or why it could not run."""

    kills: tuple[tuple[int, str, int | None, int], ...] = ()
    refusals: tuple[tuple[int, str, str], ...] = ()
    panic: str | None = None
    error: str | None = None


def what_if_changes(kill: OomKillReport, meta: Mapping[str, Any]) -> list[WhatIfChange]:
    """The candidate changes worth replaying for ``kill``: the victim's and the top
    grower's oom_score_adj, strict overcommit, a bigger limit (or RAM), and swap."""
    if kill.constraint == "overcommit" or kill.victim.pid is None:
        return []
    out: list[WhatIfChange] = []
    v = kill.victim
    vname = f"{v.comm} (pid {v.pid})"
    victim = next((c for c in kill.candidates if c.pid == v.pid), None)
    vadj = victim.oom_score_adj if victim is not None and victim.oom_score_adj is not None else 0
    if vadj > 0:
        out.append(WhatIfChange(f"oom_score_adj of {vname} = 0", "oom_score_adj", oom_score_adj=((v.pid, 0),),
                                question=f"without its oom_score_adj of {vadj}, is {vname} still the victim?"))
    else:
        out.append(WhatIfChange(f"oom_score_adj of {vname} = -1000", "oom_score_adj",
                                oom_score_adj=((v.pid, -1000),),
                                question=f"if {vname} could not be killed, who would be, or is there no kill?"))
    grower = next((g for g in kill.growers if g.pid != v.pid), None)
    if grower is not None and (not kill.growers or kill.growers[0].pid != v.pid):
        gname = f"{grower.comm} (pid {grower.pid})"
        out.append(WhatIfChange(f"oom_score_adj of {gname} = 1000", "oom_score_adj",
                                oom_score_adj=((grower.pid, 1000),),
                                question=f"would the OOM killer take the grower, {gname}, instead?"))
    sysctl = meta_part(meta, "sysctl")
    if meta_int(sysctl, "vm.overcommit_memory", "sysctl") != 2:
        out.append(WhatIfChange("vm.overcommit_memory=2", "overcommit", sysctls=(("vm.overcommit_memory", "2"),),
                                question="with strict overcommit, does an allocation fail with ENOMEM instead?"))
    if kill.constraint == "CONSTRAINT_MEMCG" and kill.memcg:
        out.append(WhatIfChange(f"memory.max of {kill.memcg} +50%", "limit",
                                sets=((f"cgroup.{kill.memcg}.max", "+50%"),),
                                question="with a 50% higher cgroup limit, is the kill avoided?"))
    else:
        out.append(WhatIfChange("RAM +50%", "ram", sets=(("machine.ram", "+50%"),),
                                question="with 50% more RAM, is the kill avoided?"))
    machine = meta_part(meta, "machine")
    ram = meta_int(machine, "ram_bytes", "machine") or 0
    swap = meta_int(machine, "swap_bytes", "machine") or 0
    if swap:
        out.append(WhatIfChange("swap x2", "swap", sets=(("machine.swap", "+100%"),),
                                question="with twice the swap, is the kill avoided?"))
    elif ram:
        size = max(ram // 2, 1 << 30)
        out.append(WhatIfChange(f"swap {format_size(size)}", "swap", sets=(("machine.swap", str(size)),),
                                question=f"with {format_size(size)} of swap, is the kill avoided?"))
    return out


def judge_what_if(change: WhatIfChange, kill: OomKillReport, kill_index: int, outcome: ReplayOutcome) -> WhatIf:
    """Classify a replay's outcome for the ``kill_index``-th OOM kill of the recording:
    ``avoided``, ``victim changed``, ``same victim``, ``kernel panic`` or
    ``not replayable``."""
    if outcome.error is not None:
        return WhatIf(change.label, "not replayable", outcome.error)
    if outcome.panic is not None:
        return WhatIf(change.label, "kernel panic", f"the replay panicked: {outcome.panic}")
    refused = ""
    if outcome.refusals:
        who = sorted({f"{c} (pid {p}) {op}" for p, c, op in outcome.refusals})
        refused = f"; {len(outcome.refusals)} request(s) failed with ENOMEM instead ({', '.join(who[:3])})"
    if kill_index >= len(outcome.kills):
        n = len(outcome.kills)
        detail = "no OOM kill" if n == 0 else f"only {n} OOM kill(s), this one did not happen"
        return WhatIf(change.label, "avoided", detail + refused)
    pid, comm, points, ts = outcome.kills[kill_index]
    victim = TaskRef(pid, comm)
    at = f" at {format_ts(ts)}"
    if pid == kill.victim.pid:
        return WhatIf(change.label, "same victim",
                      f"{comm} (pid {pid}) is still killed{at} ({points:,} points)" if points is not None else
                      f"{comm} (pid {pid}) is still killed{at}", victim)
    return WhatIf(change.label, "victim changed",
                  f"{comm} (pid {pid}) is killed instead{at}" + (f" ({points:,} points)" if points is not None else "")
                  + refused, victim)


def with_what_if(report: OomReport, answers: Mapping[int, Iterable[WhatIf]]) -> OomReport:
    """``report`` with the what-if answers of each kill (by index into ``kills``)."""
    kills = list(report.kills)
    for i, whatifs in answers.items():
        kills[i] = replace(kills[i], what_if=tuple(whatifs))
    return replace(report, kills=tuple(kills))


__all__ = [
    "DEFAULT_WINDOW_NS",
    "ReplayOutcome",
    "WhatIfChange",
    "build_report",
    "format_size",
    "format_ts",
    "judge_what_if",
    "what_if_changes",
    "with_what_if",
]
