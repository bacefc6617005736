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

A report read from a kernel log carries one more key per kill, ``log`` (:class:`LogFacts`;
absent for a trace), with what only a log tells and how each fact was read. What the log
cannot tell is null. Its shape (``docs/report-json.md`` has the whole of it)::

    "log": {"facts": {"victim": {"value", "evidence": [{"lines", "rule", "read_as"}],
                                 "conflicts": [{"value", "lines", "rule", "note"}]},
                      "chosen", "trigger_pid", "trigger_comm", "constraint", "memcg",
                      "kernel_release", "gfp_mask", "order"},
            "oom_kind", "chosen", "gfp", "page_size", "platform",
            "zones": [...], "nodes": [...], "watermarks", "fragmentation",
            "swap", "hugepages": [...], "memory", "memcg", "task_table", "victim_rss_kb",
            "abridged": [...]}
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
    formula_why: str = ""  # why oom_badness() gives no points for the row (it leaves the task out)


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
    #: page cache dropped and pages swapped out by reclaim in the window; None when
    #: the trace has no per-page events to tell (an import: mm_vmscan_* give counts
    #: of reclaimed pages, not which pages they were)
    file_cache_reclaimed_bytes: int | None = 0
    swapped_out_pages: int | None = 0


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


# --------------------------------------------------------------------------- kernel logs


@dataclass(frozen=True)
class Evidence:
    """One statement of a fact in a kernel log: the raw lines (1-based) it was read from,
    the reader's rule (which line of which layout), how the line stage read those lines
    (``read_as``: prefixes stripped, pieces rejoined, ``truncated:`` when the paste cut
    it), and for a conflict the value it gives and why it lost (``note``)."""

    lines: tuple[int, ...]
    rule: str
    read_as: str | None = None
    value: Any = None
    note: str = ""


@dataclass(frozen=True)
class Fact:
    """A fact of a log's report: its value (None: not stated, or stated only where the
    paste cut it), the statements that support it and those that disagree."""

    value: Any
    evidence: tuple[Evidence, ...] = ()
    conflicts: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class GfpInfo:
    """The failed allocation's gfp mask: its flags as the kernel printed them
    (``%pGg``, 4.5+) or decoded with the bit layout of the report's kernel
    (``flags_how``); the highest zone it may use (``gfp_zone()``)."""

    mask: int
    flags: str | None
    flags_how: str
    zone: str | None


@dataclass(frozen=True)
class PageSize:
    """The page size of the machine (bytes), how it was found, and whether it is a
    guess (4 KiB when nothing in the log tells)."""

    nr_bytes: int
    how: str
    guessed: bool


@dataclass(frozen=True)
class Platform:
    """The machine: architecture and distribution with how each was told (never guessed
    from a distribution suffix alone: ``-aws``/``-azure`` kernels also run on arm64),
    the kernel release, its taint flags and build, the ``Hardware name:`` line."""

    arch: str | None
    arch_how: str | None
    distribution: str | None
    distribution_how: str | None
    release: str | None
    taint: str | None = None
    build: str | None = None
    hardware: str | None = None


@dataclass(frozen=True)
class ZoneState:
    """One zone of one node at the OOM (its show_mem line, kB): free memory, the
    watermarks, ``lowmem_reserve[]`` (pages, by zone type), and its buddy free lists
    (blocks per order, block size in kB, migrate types per order)."""

    node: int | None
    zone: str
    free_kb: int | None
    min_kb: int | None
    low_kb: int | None
    high_kb: int | None
    boost_kb: int | None = None
    managed_kb: int | None = None
    present_kb: int | None = None
    free_cma_kb: int | None = None
    reserved_highatomic_kb: int | None = None
    lowmem_reserve_pages: tuple[int, ...] = ()
    free_blocks: tuple[int, ...] = ()
    block_kb: tuple[int, ...] = ()
    block_types: tuple[str, ...] = ()
    buddy_free_kb: int | None = None
    largest_free_order: int | None = None
    all_unreclaimable: bool | None = None
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class NodeState:
    """One node at the OOM: its zones' free memory and watermarks summed (kB), its
    per-node counters (kernel stacks, page tables, ...), ``all_unreclaimable?``."""

    node: int | None
    free_kb: int | None
    min_kb: int | None
    low_kb: int | None
    high_kb: int | None
    kernel_stack_kb: int | None = None
    pagetables_kb: int | None = None
    all_unreclaimable: bool | None = None


@dataclass(frozen=True)
class ZoneCheck:
    """One zone of the allocation's zonelist, tested as ``__zone_watermark_ok()`` does:
    usable free memory against the mark plus ``lowmem_reserve[classzone]`` (kB)."""

    node: int | None
    zone: str
    free_kb: int
    usable_kb: int
    mark_kb: int
    reserve_kb: int
    ok: bool
    ok_at_low: bool
    ok_at_high: bool


@dataclass(frozen=True)
class WatermarkVerdict:
    """Why the page allocator gave up, from the zone lines: every zone the request could
    use (``classzone`` down, every node), tested at the ``min`` mark the slow path uses
    (after reclaim; ``__GFP_HIGH`` halves it) plus ``lowmem_reserve[classzone]``.
    ``short`` names the zones that fail; ``verdict`` says what that means;
    ``oomanalyser`` what a test of the low mark in one zone (OOMAnalyser's) would say."""

    classzone: str
    order: int
    mark: str
    zones: tuple[ZoneCheck, ...]
    short: tuple[str, ...]
    all_short: bool
    verdict: str
    oomanalyser: str | None = None


@dataclass(frozen=True)
class ZoneBlocks:
    """One zone's free memory by block size: the largest order with a free block, and
    the free kB in blocks at least as large as the request and as the costly order."""

    node: int | None
    zone: str
    largest_free_order: int | None
    free_kb: int
    free_kb_at_order: int
    free_kb_at_costly_order: int
    unusable_kb: int  # in blocks only highatomic (H) or CMA (C) requests may take


@dataclass(frozen=True)
class Fragmentation:
    """Whether free memory was there but only in blocks too small (buddy free lists):
    for the request's order and for ``PAGE_ALLOC_COSTLY_ORDER`` (3)."""

    order: int
    costly_order: int
    zones: tuple[ZoneBlocks, ...]
    fragmented_for_request: bool
    heavily_fragmented: bool
    verdict: str


@dataclass(frozen=True)
class SwapState:
    """Swap at the OOM (kB): ``used_kb`` is free(1)'s ``total - free`` (slots in use,
    including those whose page is also in the swap cache); ``cache_kb`` the swap cache;
    ``used_without_cache_kb`` what OOMAnalyser calls used (``total - free - cache``)."""

    total_kb: int
    free_kb: int | None
    used_kb: int | None
    used_percent: int | None
    cache_kb: int | None
    cache_percent: int | None
    used_without_cache_kb: int | None
    used_without_cache_percent: int | None
    used_definition: str


@dataclass(frozen=True)
class MemcgState:
    """The OOM memcg (memcg OOMs): its path, cgroup version, usage and limit (kB), and
    whether it may swap: ``disabled`` (v2 ``swap.max`` 0; v1 ``memory+swap`` limit equal
    to the memory limit), ``unlimited`` (the limit is PAGE_COUNTER_MAX for the machine's
    page size) or ``limited`` (``swap_room_kb`` left)."""

    path: str | None
    cgroup_version: int | None
    usage_kb: int | None
    limit_kb: int | None
    failcnt: int | None
    swap_usage_kb: int | None
    swap_limit_kb: int | None
    swap: str | None
    swap_room_kb: int | None
    swap_how: str | None


@dataclass(frozen=True)
class HugePoolState:
    """One huge page pool (a node and a size): pages and kB it holds."""

    node: int
    size_kb: int
    total: int
    free: int
    surp: int
    pool_kb: int
    used_kb: int


@dataclass(frozen=True)
class MemoryComposition:
    """Where RAM was at the OOM (kB, from Mem-Info): RAM (``pages RAM``), what the kernel
    manages, and the parts: free, the anon and file LRU lists, unevictable, slab,
    page tables, kernel stacks, huge page pools, and what no counter accounts for.
    ``tasks_rss_kb`` is the task table's RSS sum, which counts a page shared by several
    processes once per process and no kernel memory."""

    ram_kb: int | None
    managed_kb: int | None
    parts_kb: dict[str, int]
    unaccounted_kb: int | None
    tasks_rss_kb: int | None
    tasks_rss_percent_of_ram: int | None
    ram_plus_swap_kb: int | None
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskTableState:
    """The task table (``dump_tasks()``): ``full``, ``cut`` (rows left out, without their
    header, or the log ends inside it) or ``absent`` (``vm.oom_dump_tasks=0``, or the
    paste left it out), with why; its rows and their RSS sum (pages)."""

    state: str
    why: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]
    rss_pages: int | None


@dataclass(frozen=True)
class LogFacts:
    """What a kernel log's report holds beyond the kill (``OomKillReport.log``).

    ``facts``: victim, chosen, trigger_pid, trigger_comm, constraint, memcg,
    kernel_release, gfp_mask and order, each with how it was read and what disagrees.
    ``oom_kind``: ``allocation`` (the page allocator), ``memcg_charge``, ``sysrq`` (a
    manual OOM: SysRq-f, ``order=-1``: nothing was short), or None. ``chosen``: the task
    the kernel chose (before 5.x it may differ from the one killed, "sacrifice child").
    ``abridged``: how a person or the paste shortened the report.
    """

    facts: dict[str, Fact]
    oom_kind: str | None
    chosen: TaskRef | None
    chosen_score: int | None
    gfp: GfpInfo | None
    page_size: PageSize
    platform: Platform
    zones: tuple[ZoneState, ...] = ()
    nodes: tuple[NodeState, ...] = ()
    watermarks: WatermarkVerdict | None = None
    fragmentation: Fragmentation | None = None
    swap: SwapState | None = None
    hugepages: tuple[HugePoolState, ...] = ()
    memory: MemoryComposition | None = None
    memcg: MemcgState | None = None
    task_table: TaskTableState | None = None
    victim_rss_kb: int | None = None  # anon + file + shmem of the Killed line
    abridged: tuple[str, ...] = ()


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
    #: a memcg OOM: every candidate's RSS over the window (up to MAX_MEMCG_PLOT_PROCESSES),
    #: drawn against the cgroup's limit (``memory["limit"]``) in HTML
    memcg_timeline: Timeline | None = None
    log: LogFacts | None = None  # a kernel log's facts, how each was read (None for a trace)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["victim"] = {"pid": self.victim.pid, "comm": self.victim.comm, "points": self.victim_points}
        del d["victim_points"]
        if self.log is None:
            del d["log"]  # a trace's report keeps its shape
        return d


@dataclass(frozen=True)
class SweepCell:
    """One replay of an embedded sweep (a row of ``memtrace sweep``'s results): the
    values of the varied keys, the seed, the outcome in words, the error if the replay
    failed, and its figures by column name (``kills``, ``enomem``, ``peak_anon_bytes``,
    ``memcg_peak_bytes``, ``swap_outs``, ...; None where the replay had none)."""

    settings: tuple[tuple[str, str], ...]
    seed: int
    outcome: str
    figures: dict[str, int | None]
    error: str = ""


@dataclass(frozen=True)
class SweepTable:
    """A sweep's results embedded in a report (``report --sweep``): the target, each
    varied key with its values, the cells in grid order, a sentence per boundary found
    and the baseline score's summary line (None: a scenario target, or not scored)."""

    target: str
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: int
    cells: tuple[SweepCell, ...]
    boundaries: tuple[str, ...] = ()
    baseline: str | None = None


@dataclass(frozen=True)
class OomReport:
    """All OOM kills found in one input."""

    source: str  # "trace", "dmesg", "perf-script", "ftrace"
    kills: tuple[OomKillReport, ...]
    warnings: tuple[str, ...] = ()
    timeline: Timeline | None = None  # the whole input, for plots
    scenario: str | None = None
    machine: dict[str, Any] | None = None
    sweeps: tuple[SweepTable, ...] = ()  # embedded with report --sweep

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "warnings": list(self.warnings),
                               "kills": [k.as_dict() for k in self.kills]}
        if self.sweeps:
            out["sweeps"] = [asdict(s) for s in self.sweeps]
        if self.scenario is not None:
            out["scenario"] = self.scenario
        if self.machine is not None:
            out["machine"] = dict(self.machine)
        if self.timeline is not None:
            out["timeline"] = asdict(self.timeline)
        return out


__all__ = [
    "Candidate",
    "Evidence",
    "Fact",
    "Fragmentation",
    "GfpInfo",
    "Grower",
    "HugePoolState",
    "LogFacts",
    "MemcgState",
    "MemoryComposition",
    "NodeState",
    "OomKillReport",
    "OomReport",
    "PageSize",
    "Platform",
    "ProcessSeries",
    "ReclaimActivity",
    "SwapState",
    "SweepCell",
    "SweepTable",
    "TaskRef",
    "TaskTableState",
    "Timeline",
    "Unreclaimable",
    "WatermarkVerdict",
    "WhatIf",
    "WhatIfBaseline",
    "ZoneBlocks",
    "ZoneCheck",
    "ZoneState",
]
