"""The OOM root-cause report as data, whatever it was built from.

Built from a memtrace trace (simulated or imported from perf/ftrace) by
:mod:`.build`, or from a kernel log (dmesg, journalctl -k, syslog) by the kernel-log
reader: both produce these frozen objects, and everything that shows a report reads
only these (:mod:`.sections` lays them out for text, Markdown and HTML; JSON is
:meth:`OomReport.as_dict`). A field a source cannot tell is None and renders as
unknown. Sizes are bytes, times ns, and fields named ``*_pages`` are in pages. The
JSON shape is the one of ``memtrace report --format json``::

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
    formula_points: int | None = None  # oom_badness() recomputed from the row (None: not recomputable)


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
class WhatIfBaseline:
    """The unchanged replay of the recorded workload scored against the recording
    (``memtrace.replay.baseline``): a what-if is an answer only when it reproduces
    the recording. ``reasons`` say which process diverged and why; ``assumptions``
    what every replay assumed the recording's OOM victims did after their kill (an
    imported trace); ``exact`` marks a simulated recording, which an unchanged
    replay repeats byte for byte (no replay is run to know it)."""

    reproduces: bool
    summary: str
    reasons: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    exact: bool = False


@dataclass(frozen=True)
class Grower:
    """A process whose memory grew before a kill: RSS (anon + file + shmem, bytes) at
    the start of the window (None: unknown, it was there before the trace started
    and no reading shows it then; ``growth_bytes`` is then what the trace saw it
    reach) and at the kill."""

    pid: int
    comm: str | None
    start_bytes: int | None  # None: it predates the trace and nothing showed its RSS then
    end_bytes: int
    growth_bytes: int
    cgroup: str | None = None


@dataclass(frozen=True)
class ReclaimActivity:
    """Reclaim in the window before a kill: runs and pages, and why scanned pages
    stayed (sums of shrink_list's counters, pages)."""

    kswapd_wakes: int = 0
    kswapd_reclaimed_pages: int = 0
    direct_runs: int = 0
    direct_scanned_pages: int = 0
    direct_reclaimed_pages: int = 0
    memcg_runs: int = 0
    memcg_scanned_pages: int = 0
    memcg_reclaimed_pages: int = 0
    scanned_pages: int = 0
    reclaimed_pages: int = 0
    kept_dirty_pages: int = 0
    kept_no_swap_pages: int = 0
    kept_mapped_pages: int = 0
    activated_pages: int = 0
    file_cache_reclaimed_bytes: int = 0  # page cache dropped by reclaim in the window
    swapped_out_pages: int = 0


@dataclass(frozen=True)
class ProcessSeries:
    """A process's RSS (anon + file + shmem, bytes) over time."""

    pid: int
    comm: str | None
    ts_ns: tuple[int, ...]
    rss_bytes: tuple[int, ...]


@dataclass(frozen=True)
class Timeline:
    """Memory over time: ``kinds`` maps a kind (anon, file, shmem, swap, kernel, free)
    to bytes at each ``ts_ns`` (the /proc/meminfo readings); ``processes`` holds the
    RSS of each process; ``kills_ts_ns`` marks the OOM kills."""

    ts_ns: tuple[int, ...] = ()
    kinds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    processes: tuple[ProcessSeries, ...] = ()
    kills_ts_ns: tuple[int, ...] = ()


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
    what_if_baseline: WhatIfBaseline | None = None  # the unchanged replay the what-ifs rest on
    gfp_mask: int | None = None
    order: int | None = None
    totalpages: int | None = None
    kernel_version: str | None = None
    formula: str | None = None  # which oom_badness() era recomputed the points
    victim_ranked_first: bool | None = None  # does the recomputation agree with the kernel?
    memory: dict[str, int] | None = None  # state at the kill (meminfo or memcg usage), bytes
    extra: dict[str, Any] = field(default_factory=dict)
    growers: tuple[Grower, ...] = ()  # top growers in the window before the kill, largest first
    reclaim: ReclaimActivity | None = None
    timeline: Timeline | None = None  # the window before the kill
    outlived_kill: tuple[Unreclaimable, ...] = ()  # memory the kill could not free and that stayed
    window_ns: int | None = None  # how far back timeline, growers and reclaim look

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
    timeline: Timeline | None = None  # the whole input, for plots
    scenario: str | None = None
    machine: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "warnings": list(self.warnings),
                               "kills": [k.as_dict() for k in self.kills]}
        if self.scenario is not None:
            out["scenario"] = self.scenario
        if self.machine is not None:
            out["machine"] = dict(self.machine)
        if self.timeline is not None:
            out["timeline"] = asdict(self.timeline)
        return out


__all__ = [
    "Candidate",
    "Grower",
    "OomKillReport",
    "OomReport",
    "ProcessSeries",
    "ReclaimActivity",
    "TaskRef",
    "Timeline",
    "Unreclaimable",
    "WhatIf",
    "WhatIfBaseline",
]
