"""OOM root-cause reports built from a trace: who grew, what reclaim could not free,
why this victim.

:func:`build_report` folds a trace once (:mod:`.observe`: the state of
:mod:`memtrace.analysis.state` and the task table :class:`memtrace.tracer.tasks.TaskTable`,
fed the same batches, with pictures of the state at each OOM) and returns an
:class:`~.model.OomReport` with one entry per OOM kill, per OOM panic and per
overcommit refusal (``constraint`` ``"overcommit"``: the request failed with ENOMEM
before any OOM). For each kill:

- the constraint and memcg, the trigger (the task whose allocation invoked the OOM
  killer: the ``oom_kill`` event's context) and the memory at the kill (the OOM's own
  /proc/meminfo reading, or the memcg's ``memcg_stat``);
- a timeline of the window before it (:data:`DEFAULT_WINDOW_NS`, or the whole trace
  when shorter): memory by kind from the readings, each process's RSS from
  ``kmem:rss_stat``, the top growers;
- reclaim in the window (kswapd, direct and memcg reclaim, and why scanned pages
  stayed: ``shrink_list``'s dirty, no-swap and mapped counters) and what could not be
  reclaimed at the kill, from the state folded up to the OOM (:class:`~.model.Unreclaimable`
  kinds ``anon_no_swap``, ``swap_full``, ``shmem_no_owner``, ``shmem_no_swap``,
  ``mlocked``, ``file_cache_gone``, ``dirty``, ``kernel``);
- every candidate row (``oom_candidate``) with its badness recomputed by
  :func:`memtrace.linux.oom_kill.oom_badness` for the trace's kernel version, compared
  with the recorded points, and :func:`memtrace.linux.oom_kill.select_bad_process` run
  on the rows to check the victim;
- what the kill left: shmem that no process owns stays charged (``outlived_kill``);
- the sentences that tell it (:mod:`.why`).

What-if answers need replays, which analysis cannot run: :mod:`.whatif`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from memtrace.linux.limits import LONG_MIN, PAGE_SIZE
from memtrace.linux.oom_kill import Badness, OomTask, oom_badness, select_bad_process
from memtrace.linux.proc import OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN
from memtrace.linux.version import DEFAULT_KERNEL_VERSION, parse_kernel_version
from memtrace.tracer import TraceReader
from memtrace.tracer.meta import meta_int, meta_part
from memtrace.tracer.tasks import ROOT_MEMCG_ID, UNKNOWN_COMM, TaskTable
from memtrace.units import format_size

from ..explain import Part, kind_totals
from ..state import StateFolder, untraced_fields, walk
from ..state.view import is_imported
from .model import (
    Candidate,
    Grower,
    OomKillReport,
    OomReport,
    ProcessSeries,
    ReclaimActivity,
    TaskRef,
    Timeline,
    Unreclaimable,
)
from .observe import OBSERVED, AtOom, Observer, scope_ids
from .why import Narrator, top_owners

__all__ = ["DEFAULT_WINDOW_NS", "REPORT_READS", "build_report"]

#: How far back before a kill the timeline, growers and reclaim look, in ns.
DEFAULT_WINDOW_NS = 300 * 1_000_000_000
#: At most this many /proc/meminfo readings in a timeline (more are thinned evenly).
MAX_TIMELINE_POINTS = 1500
#: Processes drawn in a timeline: the victim, the trigger and the largest others.
MAX_TIMELINE_PROCESSES = 6
#: The most candidates a memcg OOM's usage plot draws (the highest points first).
MAX_MEMCG_PLOT_PROCESSES = 16
#: Top growers kept per kill.
MAX_GROWERS = 5
#: Below this much page cache left at a kill, "there was almost no page cache".
LITTLE_FILE_CACHE_BYTES = 16 << 20

_RSS_MEMBERS = ("MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES")

#: The fields the report reads from the events the fold keeps whole (History), by
#: tracepoint; checked against the trace's schema before the fold (see
#: memtrace.tracer.tracepoints.check_fields).
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


# --------------------------------------------------------------------------- building


def build_report(reader: TraceReader, window_ns: int = DEFAULT_WINDOW_NS) -> OomReport:
    """The OOM report of a trace (see the module docstring).

    TraceFormatError when the trace's schema lacks a field the report reads. Values
    no kernel could have written (an oom_score_adj of 2**31 - 1, a mapping of 8 EiB)
    do not stop it: the row is clamped or the event left out, and the report's
    warnings say so."""
    folder = StateFolder(reader.meta, reads=REPORT_READS, reader="memtrace report")
    obs = Observer()
    # An imported trace's faults name no page frame (a real trace has no per-page
    # state): what they would fold (mapped pages by VMA) the report does not read,
    # and folding ~100k of them one by one (each cut apart by an rss_stat) is most
    # of a report's time.
    skip = ("page_fault",) if is_imported(reader.meta) else ()
    walk(reader, folder, observe=obs, observe_tracepoints=OBSERVED, skip=skip)
    return _Assembler(folder, folder.tasks, obs, window_ns).report([*reader.warnings, *folder.warnings])


class _Assembler:
    def __init__(self, folder: StateFolder, tasks: TaskTable, obs: Observer, window_ns: int) -> None:
        self.f = folder
        self.tasks = tasks
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
        self.why = Narrator(
            who=self.who, untraced=self.untraced,
            ram_bytes=meta_int(self.machine, "ram_bytes", "machine") or 0,
            swap_bytes=meta_int(self.machine, "swap_bytes", "machine") or 0,
            cgroup_limits=self.state.cgroup_limits, first_ts_ns=self.first_ts,
            reclaim_traced=any(self.h.counts.get(n) for n in ("reclaim_begin", "reclaim_end", "kswapd_wake",
                                                               "shrink_list")),
            imported=self.state.imported, has_pages=self.state.has_pages)

    # -- tasks

    def comm(self, pid: int | None) -> str | None:
        """The comm of ``pid`` (the task table's); ``?`` for a process the state holds
        whose comm no event gave; None for a pid nothing names."""
        if pid is None:
            return None
        task = self.tasks.get(pid)
        if task is not None and task.comm != UNKNOWN_COMM:
            return task.comm
        return "?" if task is not None or pid in self.f.procs else None

    def who(self, pid: int | None, comm: str | None = None) -> str:
        """``comm (pid N)``, ``pid N`` when the comm is unknown."""
        if pid is None:
            return comm or "an unknown task"
        name = comm or self.comm(pid)
        return f"{name} (pid {pid})" if name and name != "?" else f"pid {pid}"

    def memcg_id(self, pid: int) -> int:
        """The memory cgroup of ``pid``: the root when no event moved it."""
        task = self.tasks.get(pid)
        return task.memcg_id if task is not None else ROOT_MEMCG_ID

    def members(self, ids: set[int]) -> set[int]:
        """The processes of the state in the cgroups ``ids``."""
        return {pid for pid in self.f.procs if self.memcg_id(pid) in ids}

    # -- the report

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
            if not started and t0 is not None and ts > t0:
                start = {p: sum(m.get(x, 0) for x in _RSS_MEMBERS) for p, m in cur.items()}
                started = True
            cur.setdefault(pid, {})[member] = size
            if member not in _RSS_MEMBERS or (pids is not None and pid not in pids):
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

    def timeline(self, t0: int | None, t1: int | None, kills: list[int],
                 pids: set[int] | None = None, must: list[int] | None = None,
                 max_processes: int = MAX_TIMELINE_PROCESSES) -> Timeline:
        """Memory by kind at each reading in [t0, t1], and the RSS of the victim, the
        trigger (``must``) and the largest other processes (``max_processes`` in all,
        ``must`` always)."""
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
        chosen = list(dict.fromkeys(p for p in must or () if p in series))
        for pid in sorted(peak, key=lambda p: -peak[p]):
            if len(chosen) >= max_processes:
                break
            if pid not in chosen and peak[pid] > 0:
                chosen.append(pid)
        procs = tuple(ProcessSeries(pid, self.comm(pid), tuple(t for t, _ in series[pid]),
                                    tuple(v for _, v in series[pid])) for pid in chosen)
        return Timeline(ts_ns=tuple(r.ts_ns for r in readings), kinds={k: tuple(v) for k, v in kinds.items()},
                        processes=procs, kills_ts_ns=tuple(int(t) for t in kills))

    def growers(self, t0: int, t1: int, pids: set[int] | None) -> list[Grower]:
        """The processes whose RSS grew most from ``t0`` to ``t1``, largest first."""
        start, end, _ = self._rss_at(t0, t1, pids)
        out = []
        for pid, e in end.items():
            if pids is not None and pid not in pids:
                continue
            known = start.get(pid)
            if known is None and not self._predates(pid):
                known = 0  # started inside the window (or without memory before it)
            s = known if known is not None else 0
            if e - s > 0:
                # A process that predates the trace and has no reading before the
                # window: what it held then is unknown (start None), not 0; its
                # "growth" is then what the trace saw it reach.
                out.append(Grower(pid, self.comm(pid), known, e, e - s, self.state.cgroup_path(self.memcg_id(pid))))
        out.sort(key=lambda g: (-g.growth_bytes, g.pid))
        return out[:MAX_GROWERS]

    def _predates(self, pid: int) -> bool:
        """The trace did not see ``pid`` start (no fork, no process_start): it was
        there before the trace, holding memory the trace may not show."""
        task = self.tasks.get(pid)
        return task is None or task.start_ns is None

    # -- reclaim

    def reclaim(self, t0: int, t1: int, memcg: str | None) -> ReclaimActivity:
        """Reclaim in [t0, t1] in the OOM's scope (a memcg and its children, or all)."""

        def inside(e: dict[str, Any]) -> bool:
            return bool(t0 <= e["ts_ns"] <= t1)

        def in_scope(path: str) -> bool:
            return memcg is None or path == memcg or path.startswith(memcg.rstrip("/") + "/")

        r: dict[str, int] = {}
        if memcg is None:
            r["kswapd_wakes"] = sum(1 for e in self.h.of("kswapd_wake") if inside(e))
            r["kswapd_reclaimed_pages"] = sum(int(e["nr_reclaimed"]) for e in self.h.of("kswapd_sleep") if inside(e))
        for e in self.h.of("reclaim_end"):
            if not inside(e):
                continue
            if e["kind"] == "direct" and memcg is None:
                r["direct_runs"] = r.get("direct_runs", 0) + 1
                r["direct_scanned_pages"] = r.get("direct_scanned_pages", 0) + int(e["nr_scanned"])
                r["direct_reclaimed_pages"] = r.get("direct_reclaimed_pages", 0) + int(e["nr_reclaimed"])
            elif e["kind"] == "memcg" and in_scope(e["memcg"]):
                r["memcg_runs"] = r.get("memcg_runs", 0) + 1
                r["memcg_scanned_pages"] = r.get("memcg_scanned_pages", 0) + int(e["nr_scanned"])
                r["memcg_reclaimed_pages"] = r.get("memcg_reclaimed_pages", 0) + int(e["nr_reclaimed"])
        for e in self.h.of("shrink_list"):
            if not inside(e) or not in_scope(e["memcg"]):
                continue
            for key, field_name in (("scanned_pages", "nr_scanned"), ("reclaimed_pages", "nr_reclaimed"),
                                    ("kept_dirty_pages", "nr_dirty"), ("kept_no_swap_pages", "nr_no_swap"),
                                    ("kept_mapped_pages", "nr_mapped_kept"), ("activated_pages", "nr_activate")):
                r[key] = r.get(key, 0) + int(e[field_name])
        ids = scope_ids(self.f, memcg) if memcg else None
        if not self.state.has_pages:  # which pages reclaim took is not in the trace
            return ReclaimActivity(**r, file_cache_reclaimed_bytes=None, swapped_out_pages=None)
        r["file_cache_reclaimed_bytes"] = PAGE_SIZE * sum(
            n for ts, m, n in self.h.cache_reclaimed if t0 <= ts <= t1 and (ids is None or m in ids))
        r["swapped_out_pages"] = sum(n for ts, m, n in self.h.swapped_out
                                     if t0 <= ts <= t1 and (ids is None or m in ids))
        return ReclaimActivity(**r)

    # -- the kill

    def kill(self, k: dict[str, Any]) -> OomKillReport:
        oom_id = int(k["oom_id"])
        ts = int(k["ts_ns"])

        def known(name: str) -> bool:
            return name not in self.untraced

        memcg = (k["memcg"] or None) if known("memcg") else None
        constraint = k["constraint"] if known("constraint") else None
        trigger_pid = int(k["pid"]) or None
        victim_pid = int(k["victim_pid"])
        totalpages = int(k["totalpages"]) if known("totalpages") else None
        rows = [c for c in self.h.of("oom_candidate") if int(c["oom_id"]) == oom_id]
        candidates, formula, chosen, sel_reason, mismatch = self.candidates(rows, totalpages or 0, constraint or "")
        points = None if int(k["points"]) == LONG_MIN or not known("points") else int(k["points"])
        t0 = max(self.first_ts, ts - self.window_ns)
        pids = self.members(scope_ids(self.f, memcg)) if memcg else None
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
        memcg_timeline = None
        if constraint == "CONSTRAINT_MEMCG" and candidates:
            top = [c.pid for c in candidates[:MAX_MEMCG_PLOT_PROCESSES]]
            whole = self.timeline(t0, ts, [ts], set(top), top, max_processes=len(top))
            memcg_timeline = replace(whole, ts_ns=(), kinds={})  # the processes alone
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
            window_ns=ts - t0, memcg_timeline=memcg_timeline,
        )
        return replace(report, explanation=tuple(self.why.sentences(report)))

    def candidates(self, rows: list[dict[str, Any]], totalpages: int,
                   constraint: str) -> tuple[list[Candidate], str | None, int | None, str, list[str]]:
        """The candidate rows with their badness recomputed; the formula, the pid
        select_bad_process() picks, why, and the rows whose points differ."""
        tasks, out, mismatch = [], [], []
        formula = None
        totalpages = max(totalpages, 0)
        for c in rows:
            task, odd = self._task_of(c)
            tasks.append(task)
            b = oom_badness(task, totalpages, self.version)
            formula = b.formula
            recorded = None if int(c["points"]) == LONG_MIN else int(c["points"])
            note = ""
            if recorded != b.points:
                note = f"recorded {recorded}, the formula gives {b.points}"
                mismatch.append(f"{self.who(task.pid, task.comm)}: {note}")
            elif b.points is None:
                note = _ineligible(b)
            note = "; ".join(x for x in (note, odd) if x)
            out.append(Candidate(
                pid=task.pid, comm=task.comm, points=recorded, rss_pages=b.rss_pages, swap_pages=b.swap_pages,
                pgtables_pages=b.pgtables_pages, oom_score_adj=task.oom_score_adj, adj_points=b.adj_points,
                uid=task.uid, rss_anon_pages=task.rss_anon, rss_file_pages=task.rss_file,
                rss_shmem_pages=task.rss_shmem, total_vm_pages=task.total_vm, note=note, formula_points=b.points,
                formula_why=_ineligible(b) if b.points is None else ""))
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
                       rss_anon=counts["rss_anon"], rss_file=counts["rss_file"], rss_shmem=counts["rss_shmem"],
                       swapents=counts["swapents"], pgtables_bytes=counts["pgtables_bytes"],
                       total_vm=counts["total_vm"], cap_sys_admin=int(c["uid"]) == 0)
        return task, "; ".join(notes)

    def memory_at(self, ts: int, memcg: str | None, at: AtOom | None) -> dict[str, int] | None:
        """Memory at the kill, bytes: the memcg's last ``memcg_stat``, or the kinds of
        the OOM's /proc/meminfo reading (and MemTotal as ``total``)."""
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

    def _scope_parts(self, at: AtOom | None, memcg: str | None) -> list[Part]:
        if at is None or at.explain is None:
            return []
        parts = list(at.explain.parts)
        if memcg is None:
            return parts
        prefix = memcg.rstrip("/") + "/"
        return [p for p in parts if p.owner.cgroup is not None and (p.owner.cgroup == memcg
                                                                      or p.owner.cgroup.startswith(prefix))]

    def unreclaimable(self, memcg: str | None, at: AtOom | None, reclaim: ReclaimActivity,
                      memory: dict[str, int] | None) -> list[Unreclaimable]:
        """What reclaim could not free at the kill, and why (from the per-page state)."""
        out: list[Unreclaimable] = []
        if not self.state.has_pages:
            return out  # no per-page state: what could not be reclaimed is not known
        parts = self._scope_parts(at, memcg)
        swap_total = meta_int(self.machine, "swap_bytes", "machine") or 0
        anon = [p for p in parts if p.kind == "anon" and "swap-out" not in p.freed_by]
        if anon:
            total = sum(p.bytes for p in anon)
            top = top_owners(anon)
            if swap_total:
                out.append(Unreclaimable("swap_full", total, f"anonymous memory, and swap is full: {top}"))
            else:
                out.append(Unreclaimable("anon_no_swap", total,
                                         f"anonymous memory with no swap to write it to: {top}"))
        unowned = [p for p in parts if p.kind == "shmem" and not p.mapped_by]
        if unowned:
            out.append(Unreclaimable("shmem_no_owner", sum(p.bytes for p in unowned),
                                     f"shmem no process owns, so no kill can free it: {top_owners(unowned)}"))
        mapped_shmem = [p for p in parts if p.kind == "shmem" and p.mapped_by and "swap-out" not in p.freed_by]
        if mapped_shmem:
            out.append(Unreclaimable("shmem_no_swap", sum(p.bytes for p in mapped_shmem),
                                     f"shared memory with no swap to write it to: {top_owners(mapped_shmem)}"))
        if at is not None and at.mlocked_bytes:
            out.append(Unreclaimable("mlocked", at.mlocked_bytes, "mlocked or SHM_LOCKed pages (unevictable)"))
        file_left = sum(p.bytes for p in parts if p.kind == "file") if parts else (
            memory.get("file") if memory else None)
        if reclaim.file_cache_reclaimed_bytes:
            out.append(Unreclaimable(
                "file_cache_gone", file_left,
                f"page cache was already reclaimed: {format_size(reclaim.file_cache_reclaimed_bytes)} dropped in "
                f"the window, {format_size(file_left)} left"))
        elif file_left is not None and file_left < LITTLE_FILE_CACHE_BYTES:
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
        """Shmem no process owned when the victim exited: the kill could not free it."""
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

    # -- other entries

    def panic(self, p: dict[str, Any]) -> OomKillReport:
        """An OOM that panicked the kernel instead of killing (panic_on_oom, no victim)."""
        return OomKillReport(
            ts_ns=int(p["ts_ns"]), trigger=TaskRef(int(p["pid"]) or None, self.comm(int(p["pid"]))),
            constraint=p["constraint"], memcg=None, victim=TaskRef(None, None), victim_points=None,
            explanation=(self.why.panic(int(p["ts_ns"]), str(p["reason"])),),
            gfp_mask=int(p["gfp_mask"]), order=int(p["order"]), kernel_version=self.kernel_version,
            extra={"oom_id": int(p["oom_id"]), "panic": p["reason"]})

    def refusal(self, e: dict[str, Any]) -> OomKillReport:
        """An allocation the overcommit policy refused (``vm_enough_memory``)."""
        pid = int(e["pid"])
        op = e["op"] or self._refused_op(pid, int(e["seq"]))
        asked = int(e["nr_pages"]) * PAGE_SIZE
        mode = int(e["mode"])
        text = self.why.refusal(int(e["ts_ns"]), pid, str(op), asked, mode, int(e["committed_bytes"]),
                                int(e["limit_bytes"]))
        return OomKillReport(
            ts_ns=int(e["ts_ns"]), trigger=TaskRef(pid, self.comm(pid)), constraint="overcommit", memcg=None,
            victim=TaskRef(None, None), victim_points=None, explanation=(text,), kernel_version=self.kernel_version,
            memory={"committed": int(e["committed_bytes"]), "limit": int(e["limit_bytes"]), "requested": asked},
            extra={"kind": "refusal", "op": op, "overcommit_memory": mode})

    def _refused_op(self, pid: int, seq: int) -> str:
        """The operation a refusal without one belongs to: the next mmap, brk, fork or
        shm event of the process."""
        for name in ("mmap", "brk", "fork", "shm"):
            for e in self.h.of(name):
                if e["pid"] == pid and seq < e["seq"] <= seq + 3:
                    return name
        return ""


def _ineligible(b: Badness) -> str:
    """Why oom_badness() left a task out."""
    return b.ineligible or "ineligible"
