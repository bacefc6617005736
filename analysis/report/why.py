"""The "Why" of a kill: the sentences that tell, in order, what happened.

The constraint and who needed memory; who grew; what reclaim tried and why the rest
could not be reclaimed; why this victim (its badness broken down, and who an
oom_score_adj protected or exposed); whether the recorded points match the kernel
formula; what the kill freed and what outlived it. :class:`Narrator` writes them
from a built :class:`~.model.OomKillReport` and what the trace says of itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from memtrace.linux.limits import PAGE_SIZE
from memtrace.units import KiB, format_duration, format_seconds, format_size

from ..explain import Part
from .model import OomKillReport

__all__ = ["Narrator", "top_owners"]


def top_owners(parts: list[Part], n: int = 3) -> str:
    """The ``n`` largest owners of ``parts`` with their sizes (``leaker (pid 102) 2.9 GiB,
    ... and 2 more``)."""
    by: dict[str, int] = {}
    for p in parts:
        name = p.owner.name
        if p.owner.type == "mapping" and p.owner.pid is not None:
            name = f"{p.owner.comm} (pid {p.owner.pid})"
        by[name] = by.get(name, 0) + p.bytes
    top = sorted(by.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{name} {format_size(b)}" for name, b in top[:n])
    return text + (f" and {len(top) - n} more" if len(top) > n else "")


@dataclass(frozen=True)
class Narrator:
    """Writes a kill's sentences. ``who`` names a task (``comm (pid N)``); the rest is
    what the trace says of itself: oom_kill fields an importer could not fill
    (``untraced``), the machine's RAM and swap (bytes), the cgroup limits (bytes), when
    the trace began (ns), whether reclaim was traced at all, whether it was imported
    and whether it has per-page state."""

    who: Callable[[int | None, str | None], str]
    untraced: Mapping[str, str]
    ram_bytes: int
    swap_bytes: int
    cgroup_limits: Mapping[str, int]
    first_ts_ns: int
    reclaim_traced: bool
    imported: bool
    has_pages: bool

    def sentences(self, r: OomKillReport) -> list[str]:
        """The explanation of the OOM kill ``r``."""
        out: list[str] = [self._constraint(r)]
        if r.growers:
            g = r.growers[0]
            window = format_duration(r.window_ns, unknown="window")
            since = (f"Since the trace began, {window} before" if r.window_ns is not None
                     and r.ts_ns is not None and r.ts_ns - r.window_ns <= self.first_ts_ns
                     else f"In the {window} before")
            text = (f"{since}, {self.who(g.pid, g.comm)} grew the most: by "
                    f"{format_size(g.growth_bytes)}, to {format_size(g.end_bytes)}")
            if g.start_bytes is None:
                text = (f"{since}, {self.who(g.pid, g.comm)} grew the most: to {format_size(g.end_bytes)} "
                        "(it predates the trace: what it held before is unknown)")
            others = [f"{self.who(x.pid, x.comm)} by {format_size(x.growth_bytes)}"
                      + (" (or less: it predates the trace)" if x.start_bytes is None else "")
                      for x in r.growers[1:3]]
            out.append(text + (f" (then {', '.join(others)})." if others else "."))
        out.extend(self._reclaim(r))
        out.extend(self._victim(r))
        if r.candidates:
            if r.extra.get("points_mismatch"):
                out.append("Recomputed with the kernel formula, some points differ from the recorded ones: "
                           + "; ".join(r.extra["points_mismatch"]) + ".")
            else:
                out.append(f"Recomputed from the task rows with the {r.formula} formula (kernel "
                           f"{r.kernel_version}), every candidate's points equal the recorded ones"
                           + ("." if r.victim_ranked_first else
                              ", but the recomputation ranks another task first."))
        rss = r.extra.get("victim_rss_kb", {})
        if rss:
            freed = (rss.get("anon", 0) + rss.get("shmem", 0)) * KiB
            out.append(f"Killing {self.who(r.victim.pid, r.victim.comm)} freed about {format_size(freed)} of its "
                       f"private memory ({format_size(rss.get('file', 0) * KiB)} of file pages it mapped stay "
                       f"cached).")
        for u in r.outlived_kill:
            out.append(f"The tmpfs/shmem memory outlived the kill: {u.detail}.")
        return out

    def panic(self, ts_ns: int, reason: str) -> str:
        """An OOM that panicked the kernel."""
        return f"At {format_seconds(ts_ns)} the kernel panicked instead of killing: {reason}."

    def refusal(self, ts_ns: int, pid: int, op: str, asked_bytes: int, mode: int, committed_bytes: int,
                limit_bytes: int) -> str:
        """A request the overcommit policy refused (``__vm_enough_memory()``)."""
        limit = "CommitLimit less the reserves" if mode == 2 else "RAM + swap"
        return (f"At {format_seconds(ts_ns)}, {self.who(pid, None)}'s {op or 'request'} of {format_size(asked_bytes)} "
                f"was refused with ENOMEM by the overcommit policy (vm.overcommit_memory={mode}): Committed_AS "
                f"{format_size(committed_bytes)} plus {format_size(asked_bytes)} would exceed {limit}, "
                f"{format_size(limit_bytes)}. The process got an error instead of the OOM killer running later.")

    def _constraint(self, r: OomKillReport) -> str:
        when = format_seconds(r.ts_ns)
        trig = self.who(r.trigger.pid, r.trigger.comm) if r.trigger else "a task"
        mem = r.memory or {}
        if r.constraint is None:
            note = self.untraced.get("constraint", "")
            hint = " (give the importer the kernel log: --dmesg)" if "dmesg" in note else ""
            return (f"At {when}, {trig} needed memory and the OOM killer ran; whether it was a global or a "
                    f"memory-cgroup OOM is not in the trace{hint}.")
        if r.constraint == "CONSTRAINT_MEMCG":
            limit = mem.get("limit") or self.cgroup_limits.get(r.memcg or "", 0)
            at_limit = (f"which was at its limit of {format_size(limit)} (usage {format_size(mem.get('usage'))})"
                        if limit else "which was at its limit")
            return (f"At {when}, {trig} needed memory in memory cgroup {r.memcg}, {at_limit}: a memcg OOM "
                    f"(CONSTRAINT_MEMCG), so only the cgroup's processes were candidates.")
        swap_text = f"{format_size(self.swap_bytes)} of swap" if self.swap_bytes else "no swap"
        what = f"the machine ({format_size(self.ram_bytes)} of RAM, {swap_text})" if self.ram_bytes else "the machine"
        return (f"At {when}, {trig} needed memory and {what} had none left: a global OOM "
                f"({r.constraint}), every process was a candidate.")

    def _reclaim(self, r: OomKillReport) -> list[str]:
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
        if bits:
            out.append("Reclaim tried first: " + "; ".join(bits) + ".")
        elif not self.reclaim_traced and self.imported:
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
            elif u.kind == "file_cache_gone" and rc.file_cache_reclaimed_bytes:
                # build.py says "already reclaimed" exactly when reclaim dropped page cache.
                why.append(f"the page cache was already gone ({format_size(u.bytes)} left)")
            elif u.kind == "file_cache_gone":
                why.append(f"there was almost no page cache ({format_size(u.bytes)})")
            elif u.kind == "dirty":
                why.append(f"{format_size(u.bytes)} of dirty page cache")
        if why:
            out.append("What was left could not be reclaimed: " + "; ".join(why) + ".")
        elif not self.has_pages:
            out.append("What reclaim could not free is unknown: the trace has no per-page state (which pages "
                       "were anonymous, dirty, mapped or shmem no process owned).")
        return out

    def _victim(self, r: OomKillReport) -> list[str]:
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
            sign = "+" if victim.adj_points > 0 else "-"
            per = f" (x totalpages/1000 = {r.totalpages // 1000:,})" if r.totalpages else ""
            adj = f" {sign} {abs(victim.adj_points):,} for oom_score_adj {victim.oom_score_adj}{per}"
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
