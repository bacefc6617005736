"""The printk layouts of the kernel's OOM report, era by era: one table for the writer and the reader.

Every line mm/oom_kill.c and its helpers print at an OOM kill is laid out here, for
each kernel era the reference read (``../shared/reference/kernel-mm-facts.md`` §3:
the trees 2.6.32, 3.4, 3.10, 4.9, 4.19, 5.4, 5.15, 6.6, 6.8 and 6.13):

=====================  =========================================  ===================
line                   kernel function                            table
=====================  =========================================  ===================
header (§3.2)          ``dump_header()``                          :data:`OOM_HEADER`,
                                                                  :data:`CPUSET_LINE`
``CPU:``/``Pid:``      lib/dump_stack.c                           :data:`DUMP_STACK`,
                                                                  :data:`CALL_TRACE`
Mem-Info (§3.3)        ``__show_mem()``, ``show_free_areas()``    :data:`MEMINFO`
memcg (§3.4)           ``mem_cgroup_print_oom_meminfo()``         :data:`MEMCG`
task table (§3.5)      ``dump_tasks()``, ``dump_task()``          :data:`TASK_TABLE`
``oom-kill:`` (§3.6)   ``dump_oom_summary()``                     :data:`OOM_KILL_SUMMARY`
kill lines (§3.7)      ``oom_kill_process()``,                    :data:`KILL_LINES`
                       ``__oom_kill_process()``
reaper (§3.8)          ``oom_reap_task()``                        :data:`REAPER_LINES`
=====================  =========================================  ===================

Each table is a tuple of ``(since, layout)`` pairs, newest first: a kernel logs in
the layout of the first entry whose version is not newer than its own
(:func:`layout_for`; anything older than the oldest entry logs in the oldest). The
printf formats are the kernel's, converted only in their C length modifiers
(:func:`printf`). The writer (:mod:`.dmesg`) renders these layouts; the reader
(:mod:`.parse`) reads them with the regular expressions beside each table (named
``*_RE``), which accept every era's layout at once and are checked against the
writer's lines for every era (tests/analysis/kernlog/test_formats.py). The task
table is read by its header's column names, so a new row layout needs no new
expression: its entry in :data:`TASK_TABLE` is enough for both sides.

Adding a layout (say a 6.20 task row): name the version in
:mod:`memtrace.linux.version`, add ``(V6_20, TaskLayout(...))`` at the top of
:data:`TASK_TABLE` (its header line, its row format with the :class:`DumpTaskRow`
value each conversion prints, and the column that tells it from older layouts), and
extend the round-trip test's version list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, TypeVar

from memtrace.linux.limits import PAGE_COUNTER_MAX, PAGE_SIZE, RES_COUNTER_MAX_KB
from memtrace.linux.proc import score_adj_to_oom_adj, stored_oom_adj
from memtrace.linux.version import (
    DUMP_STACK_PREEMPT_MODEL,
    DUMP_STACK_UID,
    V2_6_32,
    V3_4,
    V3_10,
    V4_9,
    V4_19,
    V5_4,
    V5_15,
    V6_6,
    V6_8,
    V6_13,
    KernelVersion,
)

__all__ = [
    "ALL_UNRECLAIMABLE_RE",
    "BUDDY_LINE_RE",
    "BUDDY_ORDER_RE",
    "BUDDY_RE",
    "CALL_TRACE",
    "COLUMN_MAX",
    "COUNT_MAX",
    "CPUSET_LINE",
    "CPUSET_RE",
    "CPU_LEAD_RE",
    "CPU_LINE_RE",
    "DEADLOCKED",
    "DUMP_STACK",
    "EXITING_RE",
    "FRAME_RE",
    "FREE_SWAP_RE",
    "HARDWARE_RE",
    "HEADER_FIELD_RE",
    "HEADER_LEAD_RE",
    "HEADER_RE",
    "HSTATE_KB",
    "HUGEPAGES_RE",
    "KILLED_DETAIL_RE",
    "KILLED_FIELD_RE",
    "KILLED_LEAD_RE",
    "KILL_LINES",
    "KILL_RE",
    "KILL_SCORE_RE",
    "KV_KB_RE",
    "KV_PAGES_RE",
    "LOWMEM_RESERVE_RE",
    "MEMCG",
    "MEMCG_COUNTER",
    "MEMCG_COUNTER_RE",
    "MEMCG_STATS_HEAD",
    "MEMCG_STATS_RE",
    "MEMCG_TASK_IN",
    "MEMCG_V1_STAT",
    "MEMCG_V2_STAT",
    "MEMINFO",
    "NODE_LINE_RE",
    "NO_KILLABLE",
    "NO_KILLABLE_RE",
    "NR_ORDERS",
    "OOM_GROUP_RE",
    "OOM_HEADER",
    "OOM_KILL_SUMMARY",
    "PAGES_HIGHMEM_RE",
    "PAGES_OTHER_RE",
    "PAGES_RAM_RE",
    "PAGES_RESERVED_RE",
    "PANIC",
    "PANIC_2_6_32_RE",
    "PANIC_RE",
    "PID_LINE_RE",
    "REAPED_RE",
    "REAPER_LINES",
    "RT_CURRENT_RE",
    "STAT_LINE_RE",
    "STAT_ONELINE_RE",
    "SUMMARY_RE",
    "SUMMARY_TASK_RE",
    "SWAP_CACHE_RE",
    "TASKS_STATE_RE",
    "TASK_HEADER_RE",
    "TASK_IN_RE",
    "TASK_ROW_RE",
    "TASK_TABLE",
    "TOTAL_PAGECACHE_RE",
    "TOTAL_SWAP_RE",
    "UNABLE_TO_REAP_RE",
    "ZONE_LINE_RE",
    "CallTrace",
    "DumpTaskRow",
    "MemInfoLayout",
    "MemcgLayout",
    "Printk",
    "TaskLayout",
    "column_fits",
    "dmesg_timestamp",
    "dump_tasks_header",
    "format_dump_task",
    "guess_task_columns",
    "layout_for",
    "printf",
    "task_columns",
    "task_layout_by_marker",
]

_L = TypeVar("_L")

# --------------------------------------------------------------------------- printk


def dmesg_timestamp(ts_ns: int) -> str:
    """printk's ``[%5lu.%06lu]`` prefix for a time since boot in ns (seconds.micros)."""
    usec = ts_ns // 1000
    return f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}]"


_C_INT = re.compile(r"%(-?\d*)(?:hh|h|ll|l)?[diu]")


def printf(fmt: str, *args: object) -> str:
    """``fmt`` (a C printf format of the kernel: ``%lu``, ``%5hd``, ``%8ld``, ``%.20s``)
    applied to ``args``: only the C length modifiers are dropped."""
    return _C_INT.sub(r"%\1d", fmt) % args


class Printk(NamedTuple):
    """One printk: the kernel's format and, for each conversion, the name of the
    value it prints (the writer looks each name up in the values it has)."""

    fmt: str
    args: tuple[str, ...]

    def render(self, values: Mapping[str, object]) -> str:
        """The line with ``values[name]`` for each conversion."""
        return printf(self.fmt, *(values[name] for name in self.args))


#: A ``name:%lu`` (or ``name: %lukB``, ``name? %s``) conversion: the name printed before it.
_KEYED = re.compile(r"([A-Za-z_][A-Za-z0-9_()\[\]]*)[:?]\s?%")
_CONVERSION = re.compile(r"%[-0-9.]*(?:hh|h|ll|l)?[diuxs]")


def _keyed(fmt: str, *lead: str) -> Printk:
    """A printk of ``key:%fmt`` pairs whose values are named by their keys (``?``
    dropped); ``lead`` names the conversions before the first key (``Node %d``)."""
    keys = [m.group(1) for m in _KEYED.finditer(fmt)]
    args = (*lead, *keys)
    if len(args) != len(_CONVERSION.findall(fmt)):
        raise AssertionError(f"a conversion without a name in {fmt!r}")
    return Printk(fmt, args)


def layout_for(table: Sequence[tuple[KernelVersion, _L]], version: KernelVersion) -> _L:
    """The layout ``version`` logs in: the first entry of ``table`` (newest first)
    whose version is not newer than ``version``; the oldest for older kernels."""
    for since, layout in table:
        if version >= since:
            return layout
    return table[-1][1]


# --------------------------------------------------------------------------- dump_header()

#: The first line of dump_header() (§3.2): ``gfp`` is the mask as
#: :func:`memtrace.linux.gfp.format_gfp_mask` prints it for the era; 3.4 printed the
#: stored ``signal->oom_adj``, 2.6.32 the only ``oom_adj`` there was.
OOM_HEADER: tuple[tuple[KernelVersion, Printk], ...] = (
    (V5_4, Printk("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_score_adj=%hd",
                  ("comm", "gfp", "order", "oom_score_adj"))),
    (V4_9, Printk("%s invoked oom-killer: gfp_mask=%s, nodemask=(null), order=%d, oom_score_adj=%hd",
                  ("comm", "gfp", "order", "oom_score_adj"))),
    (V3_10, Printk("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_score_adj=%hd",
                   ("comm", "gfp", "order", "oom_score_adj"))),
    (V3_4, Printk("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_adj=%d, oom_score_adj=%d",
                  ("comm", "gfp", "order", "stored_oom_adj", "oom_score_adj"))),
    (V2_6_32, Printk("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_adj=%d",
                     ("comm", "gfp", "order", "legacy_oom_adj"))),
)
#: cpuset_print_current_mems_allowed() after the header, before 5.4 (no cpusets: ``/``, node 0).
CPUSET_LINE: tuple[tuple[KernelVersion, Printk | None], ...] = (
    (V5_4, None),
    (V2_6_32, Printk("%s cpuset=/ mems_allowed=0", ("comm",))),
)

#: Reads every :data:`OOM_HEADER` (and a gfp_mask printed without flags, as a number),
#: 2.6.2x's ``oomkilladj=``, and the pre-2.6.19 header that names no process
#: (``oom-killer: gfp_mask=0x1d2[, order=0]``: ``comm`` None).
HEADER_RE = re.compile(
    r"^(?:(?P<comm>.*?) invoked )?oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+|\d+)(?:\((?P<flags>[^)]*)\))?"
    r"(?:,(?: nodemask=(?P<nodemask>[^,]*),)? order=(?P<order>-?\d+))?"
    r"(?:, (?:oom_adj|oomkilladj)=(?P<oom_adj>-?\d+))?(?:, oom_score_adj=(?P<adj>-?\d+))?"
)
#: The start of a header, however much of it a paste kept (``X invoked oom-killer``).
HEADER_LEAD_RE = re.compile(r"^(?:(?P<comm>.*?) invoked oom-killer(?::|$)|oom-killer: )")
#: One field of a header, read on its own from a header the paste cut or garbled.
HEADER_FIELD_RE = re.compile(
    r"(?P<key>gfp_mask|nodemask|order|oom_adj|oomkilladj|oom_score_adj)="
    r"(?P<value>0x[0-9a-fA-F]+(?:\([^)]*\))?|-?\d+|\(null\)|[0-9,-]+)"
)
#: Reads :data:`CPUSET_LINE` (any cpuset and node list).
CPUSET_RE = re.compile(r"^(?P<comm>.*?) cpuset=(?P<cpuset>\S*) mems_allowed=(?P<mems>\S*)$")

# --------------------------------------------------------------------------- dump_stack()

#: lib/dump_stack.c dump_stack_print_info(), decided on the exact version: 6.11 adds
#: ``UID: %u`` ("dump_stack: add the UID"), 6.16 the preemption model (the simulator
#: does not preempt: ``PREEMPT(none)``); before 3.10 the x86 ``Pid:`` line. Untainted,
#: build ``#1``.
DUMP_STACK: tuple[tuple[KernelVersion, Printk], ...] = (
    (DUMP_STACK_PREEMPT_MODEL, Printk("CPU: %d UID: %u PID: %d Comm: %.20s %s %s #1 PREEMPT(none) ",
                                      ("cpu", "uid", "pid", "comm", "taint", "release"))),
    (DUMP_STACK_UID, Printk("CPU: %d UID: %u PID: %d Comm: %.20s %s %s #1",
                            ("cpu", "uid", "pid", "comm", "taint", "release"))),
    (V3_10, Printk("CPU: %d PID: %d Comm: %.20s %s %s #1", ("cpu", "pid", "comm", "taint", "release"))),
    (V2_6_32, Printk("Pid: %d, comm: %.20s %s %s #1", ("pid", "comm", "taint", "release"))),
)


class CallTrace(NamedTuple):
    """The ``Call Trace:`` frames of an era. Simplified: representative frames of the
    page-fault path, no addresses or offsets, no register dump."""

    global_oom: tuple[str, ...]  # the page allocator's slow path
    memcg_oom: tuple[str, ...]  # the memcg charge path
    task_markers: bool  # x86 ``<TASK>`` ... ``</TASK>`` around the frames (5.16+)


_MEMCG_FRAMES = ("dump_stack_lvl", "dump_header", "oom_kill_process", "out_of_memory",
                 "mem_cgroup_out_of_memory", "try_charge_memcg", "charge_memcg",
                 "__mem_cgroup_charge", "do_anonymous_page", "__handle_mm_fault",
                 "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault")  # the real 6.18 sample's


def _global_frames(alloc_pages: str) -> tuple[str, ...]:
    return ("dump_stack_lvl", "dump_header", "oom_kill_process", "out_of_memory", "__alloc_pages_slowpath",
            alloc_pages, "do_anonymous_page", "__handle_mm_fault", "handle_mm_fault", "exc_page_fault",
            "asm_exc_page_fault")


#: The frames after the dump_stack line (.cold and ``? `` frames dropped).
CALL_TRACE: tuple[tuple[KernelVersion, CallTrace], ...] = (
    (V6_13, CallTrace(_global_frames("__alloc_pages_noprof"), _MEMCG_FRAMES, True)),
    (V6_6, CallTrace(_global_frames("__alloc_pages"), _MEMCG_FRAMES, True)),
    (V5_15, CallTrace(_global_frames("__alloc_pages"), _MEMCG_FRAMES, False)),
    (V2_6_32, CallTrace(
        ("dump_stack", "dump_header", "oom_kill_process", "out_of_memory", "__alloc_pages_nodemask",
         "alloc_pages_vma", "handle_mm_fault", "__do_page_fault", "do_page_fault", "page_fault"),
        ("dump_stack", "dump_header", "oom_kill_process", "out_of_memory", "mem_cgroup_out_of_memory",
         "try_charge", "mem_cgroup_try_charge", "handle_mm_fault", "__do_page_fault", "do_page_fault",
         "page_fault"),
        False)),
)

#: 3.x .. 6.x lib/dump_stack.c (6.11+ has "UID: %u"); RHEL's ``Kdump: loaded``; taint
#: flags with RHEL7's dashes (``G    B          ------------ T``); ``build`` is what
#: follows the release (``#1 SMP ...``, ``PREEMPT(full)``).
CPU_LINE_RE = re.compile(
    r"^CPU: (?P<cpu>\d+) (?:UID: (?P<uid>\d+) )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?) +(?:Kdump: loaded +)?"
    r"(?:Not tainted|Tainted: (?P<taint>[A-Z \-]*?)) *(?P<release>\d+\.\d+\S*)(?P<build>.*)$"
)
#: A ``CPU:`` line whose tail (taint, release) the paste lost: its pid and comm.
CPU_LEAD_RE = re.compile(
    r"^CPU: (?P<cpu>\d+) (?:UID: (?P<uid>\d+) )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?)"
    r"(?: +(?:Kdump: loaded|Not tainted|Tainted:).*)?$"
)
#: 2.6.32: "Pid: %d, comm: %.20s %s %s %.*s".
PID_LINE_RE = re.compile(
    r"^Pid: (?P<pid>\d+), comm: (?P<comm>.*?) +(?:Not tainted|Tainted: (?P<taint>[A-Z \-]*?)) *"
    r"(?P<release>\d+\.\d+\S*)(?P<build>.*)$"
)
#: The -rt patches' "current: comm/pid." before the OOM call trace (2.6.1x).
RT_CURRENT_RE = re.compile(r"^current: (?P<comm>.+)/(?P<pid>\d+)\.$")
#: dump_stack_print_info()'s second line.
HARDWARE_RE = re.compile(r"^Hardware name: (?P<name>.+?)\s*$")
#: One frame of a call trace, any architecture and era: ``dump_header+0x52/0x230``,
#: ``[<ffffffff81685fac>] dump_stack+0x19/0x1b``, 2.6's ``[out_of_memory+271/304]``.
FRAME_RE = re.compile(r"(?:^|[\s\[\]>])(?:\? )?(?P<fn>[A-Za-z_][\w.]*)\+(?:0x[0-9a-f]+/0x[0-9a-f]+|\d+/\d+)")

# --------------------------------------------------------------------------- Mem-Info


class MemInfoLayout(NamedTuple):
    """show_mem() of a global OOM (and, before 3.10, of a memcg OOM too).

    ``first`` is one printk of page counts split at its newlines; ``node`` the
    per-node line in kB (4.8+); ``zone`` each zone's line in kB, followed by its
    ``lowmem_reserve[]`` of ``nr_zone_types`` entries (ZONE_DEVICE configured from
    4.19, as distribution kernels do) and its buddy line (migrate-type letters from
    3.10); ``hugepages`` the hugetlb lines (3.10+); ``tail`` the totals. Values are
    named as the kernel prints them; the writer prints 0 for counters it does not
    model.
    """

    first: Printk
    node: Printk | None
    zone: Printk
    nr_zone_types: int
    migrate_letters: bool
    hugepages: bool
    tail: tuple[Printk, ...]


_FIRST_6_6 = _keyed(
    "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
    " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
    " unevictable:%lu dirty:%lu writeback:%lu\n"
    " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
    " mapped:%lu shmem:%lu pagetables:%lu\n"
    " sec_pagetables:%lu bounce:%lu\n"
    " kernel_misc_reclaimable:%lu\n"
    " free:%lu free_pcp:%lu free_cma:%lu\n")
_FIRST_5_15 = _keyed(
    "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
    " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
    " unevictable:%lu dirty:%lu writeback:%lu\n"
    " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
    " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n"
    " kernel_misc_reclaimable:%lu\n"
    " free:%lu free_pcp:%lu free_cma:%lu\n")
_FIRST_4_9 = _keyed(
    "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
    " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
    " unevictable:%lu dirty:%lu writeback:%lu unstable:%lu\n"
    " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
    " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n"
    " free:%lu free_pcp:%lu free_cma:%lu\n")
_FIRST_2_6_32 = _keyed(
    "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
    " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
    " unevictable:%lu dirty:%lu writeback:%lu unstable:%lu\n"
    " free:%lu slab_reclaimable:%lu slab_unreclaimable:%lu\n"
    " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n")

_NODE_HEAD = ("Node %d active_anon:%lukB inactive_anon:%lukB active_file:%lukB "
              "inactive_file:%lukB unevictable:%lukB isolated(anon):%lukB "
              "isolated(file):%lukB mapped:%lukB dirty:%lukB writeback:%lukB shmem:%lukB")
_NODE_6_6 = _keyed(_NODE_HEAD + " shmem_thp:%lukB shmem_pmdmapped:%lukB anon_thp:%lukB"
                   " writeback_tmp:%lukB kernel_stack:%lukB pagetables:%lukB sec_pagetables:%lukB"
                   " all_unreclaimable? %s", "nid")
_NODE_5_15 = _keyed(_NODE_HEAD + " shmem_thp: %lukB shmem_pmdmapped: %lukB anon_thp: %lukB"
                    " writeback_tmp:%lukB kernel_stack:%lukB pagetables:%lukB"
                    " all_unreclaimable? %s", "nid")
_NODE_4_9 = _keyed(_NODE_HEAD + " shmem_thp: %lukB shmem_pmdmapped: %lukB anon_thp: %lukB"
                   " writeback_tmp:%lukB unstable:%lukB all_unreclaimable? %s", "nid")

_ZONE_5_15_TAIL = (" min:%lukB low:%lukB high:%lukB"
                   " reserved_highatomic:%luKB active_anon:%lukB inactive_anon:%lukB"
                   " active_file:%lukB inactive_file:%lukB unevictable:%lukB"
                   " writepending:%lukB present:%lukB managed:%lukB mlocked:%lukB"
                   " bounce:%lukB free_pcp:%lukB local_pcp:%ukB free_cma:%lukB")
_ZONE_6_6 = _keyed("Node 0 %s free:%lukB boost:%lukB" + _ZONE_5_15_TAIL, "zone")
_ZONE_5_15 = _keyed("Node 0 %s free:%lukB" + _ZONE_5_15_TAIL, "zone")  # no boost (§3.3)
_ZONE_4_9 = _keyed("Node 0 %s free:%lukB min:%lukB low:%lukB high:%lukB active_anon:%lukB"
                   " inactive_anon:%lukB active_file:%lukB inactive_file:%lukB"
                   " unevictable:%lukB writepending:%lukB present:%lukB managed:%lukB"
                   " mlocked:%lukB kernel_stack:%lukB pagetables:%lukB bounce:%lukB"
                   " free_pcp:%lukB local_pcp:%ukB free_cma:%lukB", "zone")
_ZONE_2_6_32 = _keyed("Node 0 %s free:%lukB min:%lukB low:%lukB high:%lukB active_anon:%lukB"
                      " inactive_anon:%lukB active_file:%lukB inactive_file:%lukB"
                      " unevictable:%lukB isolated(anon):%lukB isolated(file):%lukB"
                      " present:%lukB mlocked:%lukB dirty:%lukB writeback:%lukB mapped:%lukB"
                      " shmem:%lukB slab_reclaimable:%lukB slab_unreclaimable:%lukB"
                      " kernel_stack:%lukB pagetables:%lukB unstable:%lukB bounce:%lukB"
                      " writeback_tmp:%lukB pages_scanned:%lu all_unreclaimable? %s", "zone")

# The totals after the buddy lines: show_swap_cache_info() and show_mem()'s page counts.
_PAGECACHE = Printk("%ld total pagecache pages", ("pagecache",))  # NR_FILE_PAGES
_SWAPCACHE = Printk("%lu pages in swap cache", ("swapcache",))
_SWAP_STATS = Printk("Swap cache stats: add %lu, delete %lu, find %lu/%lu",
                     ("swap_add", "swap_delete", "swap_find_success", "swap_find_total"))  # gone by 6.6
_SWAP_FREE = Printk("Free swap  = %ldkB", ("free_swap",))
_SWAP_TOTAL = Printk("Total swap = %lukB", ("total_swap",))
_RAM = Printk("%lu pages RAM", ("ram",))
_TAIL_3_10 = (Printk("%lu pages HighMem/MovableOnly", ("highmem",)), Printk("%lu pages reserved", ("reserved",)),
              Printk("%lu pages cma reserved", ("cma",)), Printk("%lu pages hwpoisoned", ("hwpoisoned",)))
_TAIL_2_6_32 = (Printk("%lu pages reserved", ("reserved",)), Printk("%lu pages shared", ("shared",)),
                Printk("%lu pages non-shared", ("non_shared",)))

#: show_mem() (reference §3.3): 6.13 exact; 5.15, 4.19/5.4 and 2.6.32 with the
#: differences the reference lists. Not in the reference, recalled from the trees
#: and so less certain: the 4.19/5.4 node and zone lines, the 2.6.32 zone line beyond
#: ``pages_scanned:``/``all_unreclaimable?``; 3.4/3.10 print the 2.6.32 block and
#: 4.9 the 4.19 one. The 2.6.32 per-cpu ``hi:/btch:/usd:`` lines and the
#: unreclaimable-slab dump are not laid out.
MEMINFO: tuple[tuple[KernelVersion, MemInfoLayout], ...] = (
    (V6_6, MemInfoLayout(_FIRST_6_6, _NODE_6_6, _ZONE_6_6, 5, True, True,
                         (_PAGECACHE, _SWAPCACHE, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_3_10))),
    (V5_15, MemInfoLayout(_FIRST_5_15, _NODE_5_15, _ZONE_5_15, 5, True, True,
                          (_PAGECACHE, _SWAPCACHE, _SWAP_STATS, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_3_10))),
    (V4_19, MemInfoLayout(_FIRST_4_9, _NODE_4_9, _ZONE_4_9, 5, True, True,
                          (_PAGECACHE, _SWAPCACHE, _SWAP_STATS, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_3_10))),
    (V4_9, MemInfoLayout(_FIRST_4_9, _NODE_4_9, _ZONE_4_9, 4, True, True,
                         (_PAGECACHE, _SWAPCACHE, _SWAP_STATS, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_3_10))),
    (V3_10, MemInfoLayout(_FIRST_2_6_32, None, _ZONE_2_6_32, 4, True, True,
                          (_PAGECACHE, _SWAPCACHE, _SWAP_STATS, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_3_10))),
    (V2_6_32, MemInfoLayout(_FIRST_2_6_32, None, _ZONE_2_6_32, 4, False, False,
                            (_PAGECACHE, _SWAPCACHE, _SWAP_STATS, _SWAP_FREE, _SWAP_TOTAL, _RAM, *_TAIL_2_6_32))),
)
#: x86-64 hstates as hugetlb_show_meminfo_node() lists them (1 GiB first), kB.
HSTATE_KB = (1048576, 2048)
#: Buddy free-list orders a buddy line prints (MAX_ORDER 11).
NR_ORDERS = 11

# Reading Mem-Info: its lines are read by their ``key:value`` pairs, whatever the era.
#: A ``key:pages`` pair of the first block (2.6.1x printed ``Active:``, ``inactive:``).
KV_PAGES_RE = re.compile(r"([A-Za-z_]+(?:\([a-z]+\))?):(\d+)(?=\s|$)")
#: A ``key:NkB`` pair of a node or zone line.
KV_KB_RE = re.compile(r"([a-z_]+(?:\([a-z]+\))?):\s?(-?\d+)[kK]B")
NODE_LINE_RE = re.compile(r"^Node (?P<nid>\d+) active_anon:")
ZONE_LINE_RE = re.compile(r"^(?:Node (?P<nid>\d+) )?(?P<zone>DMA32|DMA|Normal|HighMem|Movable|Device) free:")
ALL_UNRECLAIMABLE_RE = re.compile(r"all_unreclaimable\? (yes|no)")
#: A buddy free-list line (``show_free_areas()``): blocks per order, then the zone's total.
BUDDY_RE = re.compile(r"^(?:Node \d+ )?(?:DMA32|DMA|Normal|HighMem|Movable|Device): (?:\d+\*\d+kB.*)= \d+kB$")
#: The same line, read: its node (absent on non-NUMA kernels), zone and the rest.
BUDDY_LINE_RE = re.compile(
    r"^(?:Node (?P<nid>\d+) )?(?P<zone>DMA32|DMA|Normal|HighMem|Movable|Device): "
    r"(?P<rest>(?:\d+\*\d+kB.*)= (?P<total>\d+)kB|empty)$"
)
#: One order of a buddy line: ``count*sizekB`` and the migrate types that have blocks
#: there (``(UME)``: unmovable, movable, reclaimable; H highatomic, C CMA, I isolate).
BUDDY_ORDER_RE = re.compile(r"(\d+)\*(\d+)kB(?: \(([A-Z]+)\))?")
#: ``lowmem_reserve[]: 0 2890 7852 7852 7852``, after its zone line (pages).
LOWMEM_RESERVE_RE = re.compile(r"^lowmem_reserve\[\]:(?P<pages>(?: +-?\d+)*)\s*$")
#: hugetlb_show_meminfo_node() (3.10+): one line per node and hstate.
HUGEPAGES_RE = re.compile(
    r"^Node (?P<nid>\d+) hugepages_total=(?P<total>\d+) hugepages_free=(?P<free>\d+) "
    r"hugepages_surp=(?P<surp>\d+) hugepages_size=(?P<size>\d+)kB"
)
TOTAL_PAGECACHE_RE = re.compile(r"^(?P<n>\d+) total pagecache pages")
SWAP_CACHE_RE = re.compile(r"^(?P<n>\d+) pages in swap cache")
FREE_SWAP_RE = re.compile(r"^Free swap\s*[=:]\s*(?P<n>-?\d+)kB")
TOTAL_SWAP_RE = re.compile(r"^Total swap\s*=\s*(?P<n>\d+)kB")
PAGES_RAM_RE = re.compile(r"^(?P<n>\d+) pages (?:of )?RAM")
PAGES_HIGHMEM_RE = re.compile(r"^(?P<n>\d+) pages HighMem")
PAGES_RESERVED_RE = re.compile(r"^(?P<n>\d+) (?:pages reserved|reserved pages)")
#: Page counts of the tail that no report field holds.
PAGES_OTHER_RE = re.compile(
    r"^\d+ pages (?:cma reserved|hwpoisoned|shared|non-shared|in pagetable cache|of HIGHMEM|swap cached|dirty"
    r"|writeback|mapped|slab|pagetables)"
)

# --------------------------------------------------------------------------- memcg

#: memory.stat of cgroup v2 as memcg_stat_format() prints it (6.13 memory_stats[] then
#: the event counters; CONFIG_NUMA_BALANCING entries left out): name and the
#: ``memcg_stat`` event field it comes from, or None where the simulator has no counter.
MEMCG_V2_STAT: tuple[tuple[str, str | None], ...] = (
    ("anon", "anon_bytes"), ("file", "file_bytes"), ("kernel", "kernel_bytes"),
    ("kernel_stack", None), ("pagetables", None), ("sec_pagetables", None),
    ("percpu", None), ("sock", None), ("vmalloc", None), ("shmem", "shmem_bytes"),
    ("zswap", None), ("zswapped", None), ("file_mapped", "file_mapped_bytes"),
    ("file_dirty", "file_dirty_bytes"), ("file_writeback", "file_writeback_bytes"),
    ("swapcached", "swapcached_bytes"), ("anon_thp", None), ("file_thp", None),
    ("shmem_thp", None), ("inactive_anon", "inactive_anon_bytes"),
    ("active_anon", "active_anon_bytes"), ("inactive_file", "inactive_file_bytes"),
    ("active_file", "active_file_bytes"), ("unevictable", "unevictable_bytes"),
    ("slab_reclaimable", None), ("slab_unreclaimable", None), ("hugetlb", None),
    ("workingset_refault_anon", "workingset_refault_anon"),
    ("workingset_refault_file", "workingset_refault_file"),
    ("workingset_activate_anon", None), ("workingset_activate_file", None),
    ("workingset_restore_anon", None), ("workingset_restore_file", None),
    ("workingset_nodereclaim", None), ("pgdemote_kswapd", None),
    ("pgdemote_direct", None), ("pgdemote_khugepaged", None), ("pgscan", None),
    ("pgsteal", None), ("pgscan_kswapd", None), ("pgscan_direct", None),
    ("pgscan_khugepaged", None), ("pgsteal_kswapd", None), ("pgsteal_direct", None),
    ("pgsteal_khugepaged", None), ("pgfault", "pgfault"), ("pgmajfault", "pgmajfault"),
    ("pgrefill", None), ("pgactivate", None), ("pgdeactivate", None),
    ("pglazyfree", None), ("pglazyfreed", None), ("thp_fault_alloc", None),
    ("thp_collapse_alloc", None),
)

#: memcg1_stat_format() (6.x, CONFIG_TRANSPARENT_HUGEPAGE and CONFIG_SWAP), as in the
#: real 6.18 sample: the local stats, then hierarchical limits, then ``total_``.
MEMCG_V1_STAT: tuple[tuple[str, str | None], ...] = (
    ("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None),
    ("shmem", "shmem_bytes"), ("mapped_file", "file_mapped_bytes"),
    ("dirty", "file_dirty_bytes"), ("writeback", "file_writeback_bytes"),
    ("workingset_refault_anon", "workingset_refault_anon"),
    ("workingset_refault_file", "workingset_refault_file"),
    ("swap", "swap_bytes"), ("swapcached", "swapcached_bytes"),
    ("pgpgin", "pgpgin"), ("pgpgout", "pgpgout"), ("pgfault", "pgfault"),
    ("pgmajfault", "pgmajfault"), ("inactive_anon", "inactive_anon_bytes"),
    ("active_anon", "active_anon_bytes"), ("inactive_file", "inactive_file_bytes"),
    ("active_file", "active_file_bytes"), ("unevictable", "unevictable_bytes"),
)

_LRU_STAT = tuple((n, f"{n}_bytes") for n in ("inactive_anon", "active_anon", "inactive_file", "active_file",
                                                 "unevictable"))


class MemcgLayout(NamedTuple):
    """What replaces Mem-Info for a memcg OOM (reference §3.4).

    ``task_in``: the "Task in ... killed as a result of limit of ..." line (before
    5.4); ``unlimited_kb``: the limit an unlimited counter prints (page_counter from
    3.19, res_counter before); ``v2_swap``: a v2 hierarchy prints ``swap:`` instead
    of ``memory+swap:`` (5.4+); ``kmem``: the v1 ``kmem:`` line (3.10+);
    ``multiline``: ``Memory cgroup stats for P:`` then one ``name value`` line each,
    in bytes (5.4+); ``v1_stats``: a v1 hierarchy prints memcg1_stat_format()'s names
    there (the v1 dump came in ~6.5; 5.x printed the v2 memory.stat for both);
    ``oneline``: the names of the one-line ``name:NKB`` form (3.10 .. 4.x), empty
    when there is none.
    """

    task_in: bool
    unlimited_kb: int
    v2_swap: bool
    kmem: bool
    multiline: bool
    v1_stats: bool
    oneline: tuple[tuple[str, str | None], ...]


_PAGE_COUNTER_UNLIMITED_KB = PAGE_COUNTER_MAX * (PAGE_SIZE // 1024)

#: mem_cgroup_print_oom_meminfo() (6.13) and, before 5.4, mem_cgroup_print_oom_info().
MEMCG: tuple[tuple[KernelVersion, MemcgLayout], ...] = (
    (V6_6, MemcgLayout(False, _PAGE_COUNTER_UNLIMITED_KB, True, True, True, True, ())),
    (V5_4, MemcgLayout(False, _PAGE_COUNTER_UNLIMITED_KB, True, True, True, False, ())),
    (V4_19, MemcgLayout(True, _PAGE_COUNTER_UNLIMITED_KB, False, True, False, False, (
        ("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None), ("shmem", "shmem_bytes"),
        ("mapped_file", "file_mapped_bytes"), ("dirty", "file_dirty_bytes"),
        ("writeback", "file_writeback_bytes"), ("swap", "swap_bytes"), *_LRU_STAT))),
    (V4_9, MemcgLayout(True, _PAGE_COUNTER_UNLIMITED_KB, False, True, False, False, (
        ("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None), ("mapped_file", "file_mapped_bytes"),
        ("dirty", "file_dirty_bytes"), ("writeback", "file_writeback_bytes"), ("swap", "swap_bytes"),
        *_LRU_STAT))),
    (V3_10, MemcgLayout(True, RES_COUNTER_MAX_KB, False, True, False, False, (
        ("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None), ("mapped_file", "file_mapped_bytes"),
        ("swap", "swap_bytes"), *_LRU_STAT))),
    (V2_6_32, MemcgLayout(True, RES_COUNTER_MAX_KB, False, False, False, False, ())),
)
MEMCG_COUNTER = Printk("%s: usage %llukB, limit %llukB, failcnt %lu", ("counter", "usage", "limit", "failcnt"))
MEMCG_TASK_IN = Printk("Task in %s killed as a result of limit of %s", ("task_memcg", "memcg"))
MEMCG_STATS_HEAD = Printk("Memory cgroup stats for %s:", ("memcg",))

MEMCG_COUNTER_RE = re.compile(
    r"^(?P<name>memory|memory\+swap|swap|kmem|kmem\.tcp): usage (?P<usage>\d+)kB, limit (?P<limit>\d+)kB, "
    r"failcnt (?P<failcnt>\d+)"
)
MEMCG_STATS_RE = re.compile(r"^Memory cgroup stats for (?P<path>.*?):(?P<rest>.*)$")
#: One line of the multi-line form (bytes or counts).
STAT_LINE_RE = re.compile(r"^(?P<key>[a-z][a-z0-9_.]*) (?P<value>\d+)$")
#: One pair of the one-line form (``cache:0KB``; counts without a unit).
STAT_ONELINE_RE = re.compile(r"([a-z][a-z0-9_]*):(\d+)([KM]B)?")
TASK_IN_RE = re.compile(r"^Task in (?P<task>.*) killed as a result of limit of (?P<limit>.*)$")

# --------------------------------------------------------------------------- dump_tasks()


class DumpTaskRow(NamedTuple):
    """One task as dump_task() prints it (mm/oom_kill.c): memory in pages except
    ``pgtables_bytes``. ``cpu`` (2.6.32/3.4 only) and ``nr_pmds`` (4.9 only; None:
    estimated from the page-table bytes) are columns the simulator does not model.
    The properties are the values each era's row derives from these."""

    pid: int
    uid: int
    tgid: int
    total_vm: int
    rss_anon: int
    rss_file: int
    rss_shmem: int
    pgtables_bytes: int
    swapents: int
    oom_score_adj: int
    comm: str
    cpu: int = 0
    nr_pmds: int | None = None

    @property
    def rss(self) -> int:
        """get_mm_rss(): anon + file + shmem pages."""
        return self.rss_anon + self.rss_file + self.rss_shmem

    @property
    def table_pages(self) -> int:
        """Page-table pages (3.x ``nr_ptes`` counts all of them)."""
        return self.pgtables_bytes // PAGE_SIZE

    @property
    def pmd_pages(self) -> int:
        """4.9's ``mm_nr_pmds()``; estimated when not given as the densest packing
        (one PMD page per 512 PTE pages)."""
        return self.nr_pmds if self.nr_pmds is not None else -(-self.table_pages // 513)

    @property
    def pte_pages(self) -> int:
        """4.9's ``mm->nr_ptes``: the page-table pages that are not PMD pages."""
        return self.table_pages - self.pmd_pages

    @property
    def stored_oom_adj(self) -> int:
        """3.4's column: the ``signal->oom_adj`` an oom_score_adj write stored."""
        return stored_oom_adj(self.oom_score_adj)

    @property
    def legacy_oom_adj(self) -> int:
        """2.6.32's column: the oom_adj the legacy badness uses (§1.6)."""
        return score_adj_to_oom_adj(self.oom_score_adj)


class TaskLayout(NamedTuple):
    """dump_tasks()'s heading lines and dump_task()'s row of one era: the row's
    conversions print the :class:`DumpTaskRow` values named in ``row.args``;
    ``marker`` is the column of the header that no older layout has, which tells a
    reader the era (checked newest first)."""

    heading: tuple[str, ...]
    row: Printk
    marker: str

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names of the header line after ``pid`` (``name`` last)."""
        return task_columns(self.heading[-1]) or ()


_TASKS_STATE = "Tasks state (memory values in pages):"

#: dump_tasks() (reference §3.5).
TASK_TABLE: tuple[tuple[KernelVersion, TaskLayout], ...] = (
    (V6_8, TaskLayout(
        (_TASKS_STATE, "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
                       "oom_score_adj name"),
        Printk("[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %8ld %8lu         %5hd %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "rss_anon", "rss_file", "rss_shmem", "pgtables_bytes",
                "swapents", "oom_score_adj", "comm")),
        "rss_anon")),
    (V4_19, TaskLayout(
        (_TASKS_STATE, "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"),
        Printk("[%7d] %5d %5d %8lu %8lu %8ld %8lu         %5hd %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "pgtables_bytes", "swapents", "oom_score_adj", "comm")),
        "pgtables_bytes")),
    # 4.9 counted PTE and PMD table pages apart (mm->nr_ptes, mm_nr_pmds()).
    (V4_9, TaskLayout(
        ("[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",),
        Printk("[%5d] %5d %5d %8lu %8lu %7ld %7ld %8lu         %5hd %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "pte_pages", "pmd_pages", "swapents", "oom_score_adj",
                "comm")),
        "nr_pmds")),
    (V3_10, TaskLayout(
        ("[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",),
        Printk("[%5d] %5d %5d %8lu %8lu %7lu %8lu         %5hd %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "table_pages", "swapents", "oom_score_adj", "comm")),
        "nr_ptes")),
    (V3_4, TaskLayout(
        ("[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",),
        Printk("[%5d] %5d %5d %8lu %8lu %3u     %3d         %5d %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "cpu", "stored_oom_adj", "oom_score_adj", "comm")),
        "oom_score_adj")),
    (V2_6_32, TaskLayout(
        ("[ pid ]   uid  tgid total_vm      rss cpu oom_adj name",),
        Printk("[%5d] %5d %5d %8lu %8lu %3d     %3d %s",
               ("pid", "uid", "tgid", "total_vm", "rss", "cpu", "legacy_oom_adj", "comm")),
        "oom_adj")),
)


def dump_tasks_header(version: KernelVersion) -> list[str]:
    """The lines dump_tasks() prints before the rows (reference §3.5)."""
    return list(layout_for(TASK_TABLE, version).heading)


def format_dump_task(row: DumpTaskRow, version: KernelVersion) -> str:
    """One dump_task() row in ``version``'s exact printf layout (reference §3.5)."""
    printk = layout_for(TASK_TABLE, version).row
    return printf(printk.fmt, *(getattr(row, name) for name in printk.args))


TASKS_STATE_RE = re.compile(r"^Tasks state \(memory values in pages\):")
#: A task-table header of any era: its column names after ``pid``.
TASK_HEADER_RE = re.compile(r"^\[\s*pid\s*\]\s+(?P<cols>uid\s+tgid\s+.*name)\s*$")
TASK_ROW_RE = re.compile(r"^\[\s*(?P<pid>\d+)\]\s+(?P<rest>.*)$")


def task_columns(header: str) -> tuple[str, ...] | None:
    """The columns of a task-table header line after ``pid`` (``name`` last), or
    None when ``header`` is not one."""
    m = TASK_HEADER_RE.match(header.strip())
    return tuple(m.group("cols").split()) if m else None


def guess_task_columns(nr_numbers: int) -> tuple[str, ...]:
    """The columns (after ``pid``) of the newest layout whose rows print
    ``nr_numbers`` numbers between the pid and the name, for rows whose header the
    log lost; () when none does."""
    for _since, layout in TASK_TABLE:
        if len(layout.columns) - 1 == nr_numbers:
            return layout.columns
    return ()


def task_layout_by_marker(columns: set[str]) -> tuple[KernelVersion, TaskLayout] | None:
    """The newest ``(since, layout)`` whose marker column is among ``columns``."""
    for since, layout in TASK_TABLE:
        if layout.marker in columns:
            return since, layout
    return None


#: The largest value a task-table column can hold, by column: the C type the kernel
#: prints it as (uid_t, pid_t, short for oom_score_adj); counts of pages or bytes are
#: bounded at 2**52 (4 PiB of pages: no machine has more).
COLUMN_MAX = {"uid": (1 << 32) - 1, "tgid": (1 << 31) - 1, "pid": (1 << 31) - 1, "oom_score_adj": 1000,
              "oom_adj": 17, "cpu": 1 << 20}
COUNT_MAX = 1 << 52


def column_fits(col: str, value: int) -> bool:
    """Whether ``value`` is one the kernel could print in column ``col``."""
    lo = -1000 if col == "oom_score_adj" else -17 if col == "oom_adj" else 0
    return lo <= value <= COLUMN_MAX.get(col, COUNT_MAX)


# --------------------------------------------------------------------------- the kill

#: dump_oom_summary() (5.4+, reference §3.6): one pr_cont-built line. ``scope`` is
#: ``oom_memcg=PATH`` for a memcg OOM, else ``global_oom``.
OOM_KILL_SUMMARY: tuple[tuple[KernelVersion, Printk | None], ...] = (
    (V5_4, Printk("oom-kill:constraint=%s,nodemask=%s,cpuset=%s,mems_allowed=%s,%s,task_memcg=%s,"
                  "task=%s,pid=%d,uid=%d",
                  ("constraint", "nodemask", "cpuset", "mems_allowed", "scope", "task_memcg", "comm", "pid",
                   "uid"))),
    (V2_6_32, None),
)
SUMMARY_RE = re.compile(r"^oom-kill:(?P<body>constraint=.*)$")
#: The summary's fields that a comm (last but two) can contain a comma inside.
SUMMARY_TASK_RE = re.compile(r",task=(?P<task>.*),pid=(?P<pid>-?\d+),uid=(?P<uid>\d+)$")

#: oom_kill_process()/__oom_kill_process() (reference §3.7): before 5.4 a "Kill
#: process ... score" line for the chosen task, then "Killed process" for the victim.
#: ``score`` is 3.x/4.x's chosen_points * 1000 / totalpages; 2.6.32 printed the
#: badness ``points`` itself.
KILL_LINES: tuple[tuple[KernelVersion, tuple[Printk, ...]], ...] = (
    (V5_4, (Printk("%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, "
                   "UID:%u pgtables:%lukB oom_score_adj:%hd",
                   ("message", "pid", "comm", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "uid",
                    "pgtables_kb", "oom_score_adj")),)),
    (V4_9, (Printk("%s: Kill process %d (%s) score %u or sacrifice child", ("message", "pid", "comm", "score")),
            Printk("Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB",
                   ("pid", "comm", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb")))),
    (V3_4, (Printk("%s: Kill process %d (%s) score %d or sacrifice child", ("message", "pid", "comm", "score")),
            Printk("Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB",
                   ("pid", "comm", "total_vm_kb", "anon_rss_kb", "file_rss_kb")))),
    (V2_6_32, (Printk("%s: kill process %d (%s) score %li or a child", ("message", "pid", "comm", "points")),
               Printk("Killed process %d (%s)", ("pid", "comm")))),
)
#: Every :data:`KILL_LINES` line, and 3.x's "Kill process %d (%s) sharing same memory";
#: the RHEL6 (``Killed process N, UID n, (comm) ...``) and RHEL7 (``Killed process N
#: (comm), UID n, total-vm:...``) forms, 2.6.11's ``Out of Memory: Killed process N
#: (comm).``, and a tail a human elided (``....``). ``rest`` is read by
#: :data:`KILLED_FIELD_RE`, field by field.
KILL_RE = re.compile(
    r"^(?:(?P<msg>[^:]*?): )?(?P<verb>[Kk]ill process|Killed process) (?P<pid>\d+)(?:, UID (?P<uid>\d+),)? "
    r"\((?P<comm>.*)\)"
    r"(?P<rest>(?: score -?\d+ or (?:sacrifice child|a child))| sharing same memory"
    r"|(?:,? UID \d+,)?(?: total-vm:.*)?\.?(?: *(?:\.{2,}|…))?)$"
)
#: One ``name:NkB`` field of a Killed line (``UID:%u`` and ``oom_score_adj:%hd`` without unit).
KILLED_FIELD_RE = re.compile(
    r"(?P<key>total-vm|anon-rss|file-rss|shmem-rss|pgtables):(?P<kb>\d+)kB|(?P<ukey>UID|oom_score_adj):(?P<n>-?\d+)"
)
#: A Killed line the paste cut before its comm closed: the pid, if the line goes on after it.
KILLED_LEAD_RE = re.compile(r"^(?:(?P<msg>[^:]*?): )?Killed process (?P<pid>\d+)(?P<more>\D.*)?$")
KILLED_DETAIL_RE = re.compile(
    r"total-vm:(?P<total_vm>\d+)kB, anon-rss:(?P<anon>\d+)kB, file-rss:(?P<file>\d+)kB"
    r"(?:, shmem-rss:(?P<shmem>\d+)kB)?(?:, UID:(?P<uid>\d+))?(?: pgtables:(?P<pgtables>\d+)kB)?"
    r"(?: oom_score_adj:(?P<adj>-?\d+))?"
)
KILL_SCORE_RE = re.compile(r" score (?P<score>-?\d+) or ")
#: oom_kill_memcg_member() (memory.oom.group, 4.19+) before its Killed lines.
OOM_GROUP_RE = re.compile(r"^Tasks in (?P<path>.*) are going to be killed due to memory\.oom\.group set")
#: task_will_free_mem(): the victim was already exiting (no kill, no task table).
EXITING_RE = re.compile(r"^(?P<msg>.*?): OOM victim (?P<pid>\d+) \((?P<comm>.*)\) is already exiting")

#: oom_reap_task() (the OOM reaper came in 4.6; read in the 4.9 tree): reaped, or not.
REAPER_LINES: tuple[tuple[KernelVersion, tuple[Printk, Printk] | None], ...] = (
    (V4_9, (Printk("oom_reaper: reaped process %d (%s), now anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB",
                   ("pid", "comm", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb")),
            Printk("oom_reaper: unable to reap pid:%d (%s)", ("pid", "comm")))),
    (V2_6_32, None),
)
REAPED_RE = re.compile(
    r"^oom_reaper: reaped process (?P<pid>\d+) \((?P<comm>.*)\), now anon-rss:(?P<anon>\d+)kB, "
    r"file-rss:(?P<file>\d+)kB, shmem-rss:(?P<shmem>\d+)kB"
)
UNABLE_TO_REAP_RE = re.compile(r"^oom_reaper: unable to reap pid:(?P<pid>\d+) \((?P<comm>.*)\)")

#: out_of_memory() with no victim (6.13, ``!oc->chosen``), before its panic.
NO_KILLABLE = "Out of memory and no killable processes..."
#: The reason out_of_memory() panics with when nothing could be killed.
DEADLOCKED = "System is deadlocked on memory"
#: panic(); check_panic_on_oom() and out_of_memory() panic with their reasons.
PANIC = Printk("Kernel panic - not syncing: %s", ("reason",))
NO_KILLABLE_RE = re.compile(r"^Out of memory and no killable processes")
PANIC_RE = re.compile(r"^Kernel panic - not syncing: (?P<msg>.*)$")
#: 2.6.32's panic_on_oom message.
PANIC_2_6_32_RE = re.compile(r"^(?P<msg>out of memory\. (?:Compulsory )?panic_on_oom is selected\.?)$")
