"""The OOM root-cause report as data, whatever it was built from.

Built from a memtrace trace (simulated or imported from perf/ftrace) or from a
kernel log (dmesg, journalctl -k, syslog): both produce these objects, and the
renderers (text, Markdown, HTML, JSON) read only these. A field a source cannot
tell is None and renders as unknown; the JSON shape is the one of
``memtrace report --format json``::

    {"source": ..., "warnings": [...],
     "kills": [{"ts_ns", "trigger": {"pid", "comm"}, "constraint", "memcg",
                "victim": {"pid", "comm", "points"},
                "candidates": [{"pid", "comm", "points", "rss_pages", "swap_pages",
                                "pgtables_pages", "oom_score_adj", "adj_points", ...}],
                "unreclaimable": [...], "explanation": ["..."], "what_if": [...], ...}]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskRef:
    """A process named in a report."""

    pid: int | None
    comm: str | None


@dataclass(frozen=True)
class Candidate:
    """One task the OOM killer weighed, its badness broken down as the kernel
    computes it (pages; ``points`` None when the task was ineligible)."""

    pid: int
    comm: str
    points: int | None
    rss_pages: int | None
    swap_pages: int | None
    pgtables_pages: int | None
    oom_score_adj: int | None
    adj_points: int | None
    uid: int | None = None
    rss_anon_pages: int | None = None
    rss_file_pages: int | None = None
    rss_shmem_pages: int | None = None
    total_vm_pages: int | None = None
    note: str = ""  # e.g. what a log row lacks for the recomputation


@dataclass(frozen=True)
class Unreclaimable:
    """Memory reclaim could not free, and why (``kind`` is one of
    ``anon_no_swap``, ``shmem_no_owner``, ``shmem_no_swap``, ``mlocked``,
    ``file_cache_gone``, ``dirty``, ``kernel``, ``swap_full``)."""

    kind: str
    bytes: int | None
    detail: str


@dataclass(frozen=True)
class WhatIf:
    """A candidate change and what a replay of the workload with it showed."""

    change: str  # e.g. "vm.overcommit_memory=2", "oom_score_adj of leaker = -1000"
    outcome: str  # "avoided", "victim changed", "same victim", "not replayable"
    detail: str
    victim: TaskRef | None = None


@dataclass(frozen=True)
class OomKillReport:
    """Everything known about one OOM kill."""

    ts_ns: int | None
    trigger: TaskRef | None
    constraint: str | None  # CONSTRAINT_NONE, CONSTRAINT_MEMCG, ... or "overcommit" for a refusal
    memcg: str | None
    victim: TaskRef
    victim_points: int | None
    candidates: tuple[Candidate, ...] = ()
    unreclaimable: tuple[Unreclaimable, ...] = ()
    explanation: tuple[str, ...] = ()
    what_if: tuple[WhatIf, ...] = ()
    gfp_mask: int | None = None
    order: int | None = None
    totalpages: int | None = None
    kernel_version: str | None = None
    formula: str | None = None  # which oom_badness() era recomputed the points
    victim_ranked_first: bool | None = None  # does the recomputation agree with the kernel?
    memory: dict[str, int] | None = None  # state at the kill (meminfo or memcg usage), bytes
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["victim"] = {"pid": self.victim.pid, "comm": self.victim.comm, "points": self.victim_points}
        del d["victim_points"]
        return d


@dataclass(frozen=True)
class OomReport:
    """All OOM kills found in one input."""

    source: str  # "trace", "dmesg", "perf-script", "ftrace"
    kills: tuple[OomKillReport, ...]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "warnings": list(self.warnings), "kills": [k.as_dict() for k in self.kills]}
