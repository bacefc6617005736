"""``oom:`` -> ``oom_kill`` (with its context from the companion log), ``oom_score_adj_update``, ``oom_reap``.

``oom:mark_victim`` (6.10+: ``pid=%d uid=%u comm=%s total-vm=%lukB anon-rss=%lukB
file-rss:%lukB shmem-rss:%lukB uid=%u pgtables=%lukB oom_score_adj=%hd``; before,
the pid only) becomes ``oom_kill``. What it does not carry (the badness, totalpages,
the constraint, the memcg, the gfp mask) comes from the companion log's report of
the same kill (:class:`..companion.CompanionLog`), with the events the simulated
kernel emits before a kill: ``meminfo_sample`` (global OOM) or ``memcg_stat`` (memcg
OOM) and one ``oom_candidate`` per task-table row. ``finish_task_reaping`` /
``skip_task_reaping`` become ``oom_reap`` (success or not; the RSS left is not
printed). The other oom tracepoints are counted in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memtrace.linux.gfp import gfp_from_names
from memtrace.linux.limits import LONG_MIN, PAGE_SIZE, UINT_MAX
from memtrace.tracer import MEMINFO_FIELDS

from ...kernlog.parse import ParsedOom
from ...report.model import OomKillReport
from .fields import PARSE_ERRORS, UnreadableLine, c_int, c_ulong, in_range, kv_fields, number

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Oom"]

#: oom_kill's constraint and message enums, in the schema's order.
_CONSTRAINTS = ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY", "CONSTRAINT_MEMCG")
_MESSAGES = ("Out of memory", "Memory cgroup out of memory", "Out of memory (oom_kill_allocating_task)")


def _meminfo_values(r: ParsedOom) -> list[int]:
    """meminfo_sample fields (bytes, MEMINFO_FIELDS order) from a Mem-Info block."""
    mi = r.meminfo_pages
    pc = (r.pagecache_pages or 0) - (r.swapcache_pages or 0)
    anon = mi.get("active_anon", 0) + mi.get("inactive_anon", 0)
    values = {
        "mem_total": ((r.ram_pages or 0) - (r.reserved_pages or 0)), "mem_free": mi.get("free", 0),
        "cached": max(0, pc), "swap_cached": r.swapcache_pages or 0,
        "active": mi.get("active_anon", 0) + mi.get("active_file", 0),
        "inactive": mi.get("inactive_anon", 0) + mi.get("inactive_file", 0),
        "active_anon": mi.get("active_anon", 0), "inactive_anon": mi.get("inactive_anon", 0),
        "active_file": mi.get("active_file", 0), "inactive_file": mi.get("inactive_file", 0),
        "unevictable": mi.get("unevictable", 0), "dirty": mi.get("dirty", 0), "writeback": mi.get("writeback", 0),
        "anon_pages": max(0, anon - mi.get("shmem", 0)), "mapped": mi.get("mapped", 0), "shmem": mi.get("shmem", 0),
        "sreclaimable": mi.get("slab_reclaimable", 0), "sunreclaim": mi.get("slab_unreclaimable", 0),
        "slab": mi.get("slab_reclaimable", 0) + mi.get("slab_unreclaimable", 0),
        "kreclaimable": mi.get("slab_reclaimable", 0), "page_tables": mi.get("pagetables", 0),
    }
    out = [max(0, values.get(name, 0)) * PAGE_SIZE for _, name in MEMINFO_FIELDS]
    names = [name for _, name in MEMINFO_FIELDS]
    if r.swap_total_kb is not None:
        out[names.index("swap_total")] = r.swap_total_kb * 1024
    if r.swap_free_kb is not None:
        out[names.index("swap_free")] = max(0, r.swap_free_kb) * 1024
    return out


class Oom:
    """The ``oom`` system: victims, oom_score_adj writes and the reaper."""

    SYSTEM = "oom"
    SUMMARISED = ("wake_reaper", "start_task_reaping", "reclaim_retry_zone", "compact_retry")

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        self.oom_id = 0
        #: each kill as ``memtrace import --json`` reports it
        self.kills: list[dict[str, Any]] = []
        #: the pids chosen as victims so far
        self.killed: set[int] = set()
        #: a mark_victim printed the pid only (before 6.10)
        self.mark_victim_old = False
        #: pid -> its last oom_score_adj (oom_score_adj_update)
        self.adj: dict[int, int] = {}

    def handlers(self) -> dict[str, Handler]:
        return {"mark_victim": self._mark_victim, "oom_score_adj_update": self._adj_update,
                "finish_task_reaping": self._reaped(True), "skip_task_reaping": self._reaped(False)}

    def _mark_victim(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            victim = c_int(f["pid"], "pid")
            kb = {k: c_ulong(number(f[k]), k) if k in f else 0
                  for k in ("total-vm", "anon-rss", "file-rss", "shmem-rss", "pgtables")}
            uid = in_range(int(f.get("uid", "0")), 0, UINT_MAX, "uid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.oom_id += 1  # (a bad oom_score_adj below still uses up its id)
        if "total-vm" not in f:
            self.mark_victim_old = True
        vcomm = f.get("comm", self.b.comms.get(victim, ""))
        try:
            adj = int(f["oom_score_adj"]) if "oom_score_adj" in f else self.adj.get(victim, 0)
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        kill: dict[str, Any] = {"oom_id": self.oom_id, "ts_ns": ts, "trigger_pid": pid, "victim_pid": victim,
                                "comm": vcomm}
        constraint, memcg, task_memcg, gfp, order, message, points, totalpages = (
            "CONSTRAINT_NONE", "", "", 0, 0, "Out of memory", 0, 0)
        match = self.b.companion.match(victim, ts)
        if match is not None:
            r, k = match
            constraint = r.constraint or "CONSTRAINT_NONE"
            memcg = r.memcg or ""
            task_memcg = r.summary.get("task_memcg") or r.task_in or memcg
            gfp = gfp_from_names(r.gfp_flags) if r.gfp_flags else (r.gfp_mask or 0)
            order = max(0, r.order or 0)
            message = r.kill_message if r.kill_message in _MESSAGES else (
                "Memory cgroup out of memory" if r.is_memcg else "Out of memory")
            totalpages = k.totalpages or 0
            points = k.victim_points if k.victim_points is not None else 0
            self._emit_oom_context(ts, pid, r, k)
            kill["companion_line"] = r.lineno
            kill["constraint"], kill["memcg"] = constraint, memcg
        self.out.emit("oom_kill", ts, pid, self.oom_id, victim, vcomm, kb["total-vm"], kb["anon-rss"],
                      kb["file-rss"], kb["shmem-rss"], uid, kb["pgtables"], max(-1000, min(1000, adj)), points,
                      totalpages, _CONSTRAINTS.index(constraint) if constraint in _CONSTRAINTS else 0, memcg,
                      task_memcg, gfp, order, _MESSAGES.index(message))
        self.kills.append(kill)
        self.killed.add(victim)
        p = self.work.procs.get(victim)
        if p is not None:
            self.work.kill(p, ts, allocating=victim == pid)
        return True

    def _emit_oom_context(self, ts: int, pid: int, r: ParsedOom, k: OomKillReport) -> None:
        """The events the simulated kernel emits before an oom_kill, from the log:
        ``meminfo_sample`` (global), ``memcg_stat`` (memcg) and the task table."""
        emit = self.out.emit
        if r.is_memcg:
            st = r.memcg_stats
            mem = r.memcg_counters.get("memory", (0, 0, 0))
            swap = r.memcg_counters.get("swap")
            memsw = r.memcg_counters.get("memory+swap")

            def g(*keys: str) -> int:
                for key in keys:
                    if key in st:
                        return max(0, st[key])
                return 0
            swap_bytes = g("swap") or (swap[0] * 1024 if swap else max(0, (memsw[0] - mem[0]) * 1024) if memsw else 0)
            kernel = g("kernel") or (r.memcg_counters.get("kmem", (0, 0, 0))[0] * 1024)
            emit("memcg_stat", ts, pid, r.memcg or "", mem[0] * 1024, mem[1] * 1024, mem[2], swap_bytes,
                 g("anon", "total_rss", "rss"), g("file", "total_cache", "cache"), g("shmem", "total_shmem"),
                 g("file_mapped", "mapped_file", "total_mapped_file"), g("file_dirty", "dirty", "total_dirty"),
                 kernel, g("inactive_anon", "total_inactive_anon"), g("active_anon", "total_active_anon"),
                 g("inactive_file", "total_inactive_file"), g("active_file", "total_active_file"),
                 g("unevictable", "total_unevictable"), g("pgfault", "total_pgfault"),
                 g("pgmajfault", "total_pgmajfault"), g("pgpgin", "total_pgpgin"),
                 g("pgpgout", "total_pgpgout"))
        elif r.meminfo_pages:
            emit("meminfo_sample", ts, pid, *_meminfo_values(r))
        points = {c.pid: c.points for c in k.candidates}
        for row in r.tasks:
            anon = row.rss_anon if row.rss_anon is not None else (row.rss or 0)
            pgt = row.pgtables_bytes if row.pgtables_bytes is not None else (
                ((row.nr_ptes or 0) + (row.nr_pmds or 0)) * PAGE_SIZE)
            adj = row.oom_score_adj if row.oom_score_adj is not None else 0
            pts = points.get(row.pid)
            emit("oom_candidate", ts, pid, self.oom_id, row.tgid if row.tgid is not None else row.pid,
                 max(0, row.uid or 0), row.name, max(0, row.total_vm or 0), max(0, anon),
                 max(0, row.rss_file or 0), max(0, row.rss_shmem or 0), max(0, row.swapents or 0),
                 max(0, pgt), max(-1000, min(1000, adj)), LONG_MIN if pts is None else pts)

    def _adj_update(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            target = c_int(f["pid"], "pid")
            adj = max(-1000, min(1000, int(f["oom_score_adj"])))
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.adj[target] = adj
        p = self.work.procs.get(target)
        if p is not None:
            p.oom_score_adj = adj
        self.out.emit("oom_score_adj_update", ts, target, f.get("comm", comm), adj)
        return True

    def _reaped(self, success: bool) -> Handler:
        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            try:
                victim = c_int(kv_fields(payload)["pid"], "pid")
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            self.out.emit("oom_reap", ts, pid, victim, self.b.comms.get(victim, ""), success, 0, 0, 0)
            return True
        return handler
