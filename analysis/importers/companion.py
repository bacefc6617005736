"""The companion kernel log of an import: what its OOM reports add to the trace.

A ``perf script`` or ftrace dump shows the tracepoints; the kernel log of the same
run (``memtrace import --dmesg``) shows what they do not carry: each OOM's task table
(uid, oom_score_adj, memory of every candidate), the memory cgroup and its limit,
the constraint and the badness. :class:`CompanionLog` holds the parsed log
(:mod:`..kernlog.parse`), its report (:mod:`..kernlog.analyse`) and the facts the
tracepoint mappers look up by pid; it hands each kill of the trace the first unused
report of the same victim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernlog.analyse import oom_report_from_parsed
from ..kernlog.parse import OomLog, ParsedOom, TaskRow
from ..report.model import OomKillReport, OomReport
from .workload import SeenMemory

if TYPE_CHECKING:
    from .workload import WorkloadBuilder

__all__ = ["MATCH_WINDOW_NS", "CompanionLog"]

#: A log report is the same kill as a trace's ``oom:mark_victim`` when their times
#: (where both have one) are this close.
MATCH_WINDOW_NS = 2_000_000_000


class CompanionLog:
    """A parsed companion log (or none: every lookup then finds nothing)."""

    def __init__(self, log: OomLog | None) -> None:
        self.log = log
        self.path = log.path if log is not None else None
        self.reports: list[ParsedOom] = log.reports if log is not None else []
        self.report: OomReport | None = oom_report_from_parsed(self.reports) if self.reports else None
        #: pid -> its first task-table row and the report that printed it
        self.rows: dict[int, tuple[TaskRow, ParsedOom]] = {}
        #: pid -> the memcg whose OOM task table lists it
        self.task_memcg: dict[int, str] = {}
        #: the indices of the reports a kill of the trace was matched with
        self.used: set[int] = set()
        for r in self.reports:
            for row in r.tasks:
                self.rows.setdefault(row.pid, (row, r))
                if r.is_memcg and r.memcg:
                    self.task_memcg.setdefault(row.pid, r.memcg)

    def __bool__(self) -> bool:
        return self.log is not None

    def feed(self, work: WorkloadBuilder) -> None:
        """Give the derived workload each task's memory at the first report that
        lists it (pages, and when: the report's time on the log's clock)."""
        for pid, (row, r) in self.rows.items():
            anon = row.rss_anon if row.rss_anon is not None else (row.rss or 0)
            ts = r.ts_ns if r.ts_ns is not None else r.killed_ts_ns
            work.log_rows[pid] = SeenMemory(ts, max(0, anon), max(0, row.rss_file or 0), max(0, row.rss_shmem or 0))

    def match(self, victim: int, ts_ns: int) -> tuple[ParsedOom, OomKillReport] | None:
        """The log's report of a kill of ``victim`` at ``ts_ns``: the first unused one
        with this victim (within :data:`MATCH_WINDOW_NS` when both have times)."""
        if self.report is None:
            return None
        for i, r in enumerate(self.reports):
            if i in self.used or r.victim_pid != victim:
                continue
            t = r.killed_ts_ns or r.ts_ns
            if t is not None and abs(t - ts_ns) > MATCH_WINDOW_NS:
                continue
            self.used.add(i)
            return r, self.report.kills[i]
        return None
