"""The kernel log's OOM reports, rebuilt from a trace in the printk format of its kernel.

Folds the OOM events of a trace into the text a real kernel writes to its log at each
OOM kill (mm/oom_kill.c ``dump_header()``, ``dump_tasks()``, ``dump_oom_summary()``,
``__oom_kill_process()``, ``oom_reap_task()``), in the layout of the kernel version the
trace header names (``meta["machine"]["kernel_version"]``). The layouts are those of
``../shared/reference/kernel-mm-facts.md`` §3; the printf formats below are quoted from
it, converted to Python only in their length modifiers (see :func:`_printf`).

The simulated kernel emits, at each OOM kill and in this order: one ``zoneinfo`` per
zone (reason ``oom``), one ``meminfo_sample``, for a memcg OOM one ``memcg_stat`` of the
OOM memcg, one ``oom_candidate`` per eligible task, then ``oom_kill``; later an
``oom_reap`` for the victim. A panic emits ``oom_panic`` instead of ``oom_kill``. Task
names, uids and the current oom_score_adj come from ``process_start``, ``fork`` and
``oom_score_adj_update``.

Which kernel's format: the reference was read from the trees 2.6.32, 3.4, 3.10, 4.9,
4.19, 5.4, 5.15, 6.6, 6.8 and 6.13. A version between two of them renders like the
older one (5.10 as 5.4, 6.18 as 6.13; :func:`kernel_era`). The one exception is the
dump_stack ``CPU:`` line, whose ``UID:`` (6.11) and preemption model (6.16) fields come
from lib/dump_stack.c patches and are decided on the exact version.

Each printk line gets the ``[%5lu.%06lu]`` prefix. A printk with embedded newlines (the
Mem-Info first block) gives one line per newline, each with the same prefix, as the
console and syslog show it (dmesg(1) indents such continuation lines instead).

Simplified, on purpose (a reader must know what is invented):

- Timestamps: the ``dump_header`` lines carry the time of the first event of the OOM
  (its first ``zoneinfo``, ``memcg_stat`` or ``oom_candidate``), the ``oom-kill:`` and
  kill lines the time of ``oom_kill``, the reaper line the time of ``oom_reap``. A real
  log advances a few microseconds per line.
- ``gfp_mask`` in the events is read in the 6.x bit layout (the simulator models 6.13)
  and re-encoded, flag by flag, in the layout of older kernels.
- One CPU (``CPU: 0``, a task's ``cpu`` column 0), one NUMA node (``Node 0``), no
  cpusets (``cpuset=/ mems_allowed=0``, ``nodemask=(null)``), no taint, kernel release
  ``<version>.0-memtrace #1`` unless the header gives ``machine.kernel_release``.
- The ``Call Trace:`` is a fixed list of representative frames for the page-fault path
  (global: the page allocator's slow path; memcg: the charge path, as in the real
  6.18 sample), without addresses, offsets or the register dump.
- Mem-Info: counters the simulator does not model print 0 (isolated, bounce, CMA,
  per-cpu lists, THP, sec_pagetables, writeback_tmp, reserved_highatomic, boost,
  hugepages, the per-zone LRU, mlocked, writepending and stack/page-table split).
  Free memory is all order-0 movable pages (no buddy allocator): ``N*4kB (M) 0*8kB
  ... = ...kB``. ``all_unreclaimable?`` prints ``no``. lowmem_reserve[] is recomputed
  from the zones' managed pages with the default ratios (256, 256, 32). The 2.6.32
  per-cpu ``hi:/btch:/usd:`` lines and the unreclaimable-slab dump are not printed.
- memcg: no child cgroups (``total_*`` equal the local values); the v1 memory+swap
  limit equals the memory limit (as in the real sample) unless ``memcg_stat`` carries
  ``memsw_limit_bytes``; failcnt of memory+swap and kmem is 0; kmem usage is the
  memcg's kernel memory. ``memcg_stat`` fields the schema lacks (``pgpgin``,
  ``pgpgout``, ``file_writeback_bytes``, ``swapcached_bytes``,
  ``workingset_refault_anon``/``_file``) are read when present and print 0 otherwise.
- 4.9 task rows split page-table bytes into PTE and PMD pages assuming densest packing
  (one PMD page per 512 PTE pages); 3.x rows count all of them as ``nr_ptes``.
  3.4's ``oom_adj`` is the ``signal->oom_adj`` an oom_score_adj write stored then
  (``memtrace.linux.proc.stored_oom_adj``); 2.6.32's, which had no oom_score_adj,
  is the one the legacy badness uses (``score_adj_to_oom_adj``, §1.6).
- A panic report's gfp_mask and order come from the ``oom_panic`` event; traces that
  lack them fall back to the panicking task's last ``reclaim_begin``, else
  GFP_HIGHUSER_MOVABLE|__GFP_ZERO, order 0 (an anonymous page fault).
- The 3.x "Kill process %d (%s) sharing same memory" lines are not printed (the
  simulator has no shared mm between processes).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from memtrace.errors import TraceFormatError
from memtrace.linux.gfp import GFP_HIGHUSER_MOVABLE_ZERO, format_gfp_mask
from memtrace.linux.limits import PAGE_COUNTER_MAX, PAGE_SIZE, RES_COUNTER_MAX_KB
from memtrace.linux.proc import score_adj_to_oom_adj, stored_oom_adj
from memtrace.linux.version import (
    DEFAULT_KERNEL_VERSION,
    DUMP_STACK_PREEMPT_MODEL,
    DUMP_STACK_UID,
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
    kernel_era,
    parse_kernel_version,
)
from memtrace.tracer import MEMINFO_FIELDS, EventRecord, TraceReader
from memtrace.tracer.meta import meta_part
from memtrace.tracer.tracepoints import check_fields

__all__ = [
    "DumpTaskRow",
    "OomReportText",
    "ZoneSnapshot",
    "dmesg_timestamp",
    "dump_tasks_header",
    "format_dump_task",
    "memcg_oom_info",
    "oom_reports_from_events",
    "render_dmesg",
    "show_mem",
]

#: The fields each tracepoint's handler reads whatever the event (seq, ts_ns and pid
#: are in every schema): a trace whose schema lacks one is refused, naming it.
DMESG_READS: dict[str, tuple[str, ...]] = {
    "process_start": ("comm", "uid", "oom_score_adj"),
    "fork": ("child_pid", "child_comm"),
    "exit": (),
    "oom_score_adj_update": ("comm", "oom_score_adj"),
    "sysctl_set": ("name", "value"),
    "reclaim_begin": ("gfp_flags", "order"),
    "zoneinfo": ("zone", "zid", "present_pages", "managed_pages", "nr_free", "wmark_min", "wmark_low",
                 "wmark_high", "reason"),
    "meminfo_sample": (),
    "memcg_stat": (),
    "oom_candidate": ("oom_id", "tgid", "uid", "comm", "total_vm", "rss_anon", "rss_file", "rss_shmem",
                      "swapents", "pgtables_bytes", "oom_score_adj"),
    "oom_kill": ("oom_id", "victim_pid", "comm", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb",
                 "uid", "pgtables_kb", "oom_score_adj", "points", "totalpages", "constraint", "memcg",
                 "task_memcg", "gfp_mask", "order", "message"),
    "oom_reap": ("victim_pid", "comm", "success", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb"),
    "oom_panic": ("oom_id", "reason", "constraint"),
}
#: Fields read when the schema has them (older traces lack some).
DMESG_READS_IF_PRESENT: dict[str, tuple[str, ...]] = {
    "meminfo_sample": tuple(f for _m, f in MEMINFO_FIELDS),
    "memcg_stat": ("path", "usage_bytes", "limit_bytes", "memsw_limit_bytes", "failcnt", "swap_bytes",
                   "anon_bytes", "file_bytes", "shmem_bytes", "kernel_bytes", "file_mapped_bytes",
                   "file_dirty_bytes", "file_writeback_bytes", "swapcached_bytes", "inactive_anon_bytes",
                   "active_anon_bytes", "inactive_file_bytes", "active_file_bytes", "unevictable_bytes",
                   "workingset_refault_anon", "workingset_refault_file", "pgfault", "pgmajfault", "pgpgin",
                   "pgpgout"),
    "oom_panic": ("gfp_mask", "order"),
}
#: Tracepoints this module reads; render_dmesg() skips every other batch unopened.
NEEDED_TRACEPOINTS = frozenset(DMESG_READS)


@dataclass(frozen=True)
class OomReportText:
    """One OOM report as the kernel log shows it.

    ``oom_id`` is the OOM invocation (the events' ``oom_id``); ``ts_ns`` the time of the
    kill (or panic); ``lines`` every line of the report, each with its ``[ seconds.micros]``
    prefix, up to the reaper line when the trace has one.
    """

    oom_id: int
    ts_ns: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The report as one string, a newline after every line."""
        return "".join(line + "\n" for line in self.lines)


# --------------------------------------------------------------------------- printk


def dmesg_timestamp(ts_ns: int) -> str:
    """printk's ``[%5lu.%06lu]`` prefix for a time since boot in ns (seconds.micros)."""
    usec = ts_ns // 1000
    return f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}]"


_C_INT = re.compile(r"%(-?\d*)(?:hh|h|ll|l)?[diu]")


def _printf(fmt: str, *args: Any) -> str:
    """``fmt`` (a C printf format of the kernel: ``%lu``, ``%5hd``, ``%8ld``, ``%.20s``)
    applied to ``args``: only the C length modifiers are dropped."""
    return _C_INT.sub(r"%\1d", fmt) % args


# --------------------------------------------------------------------------- task table


class DumpTaskRow(NamedTuple):
    """One row of dump_tasks() (mm/oom_kill.c dump_task()): memory in pages except
    ``pgtables_bytes``. ``cpu`` (2.6.32/3.4 only) and ``nr_pmds`` (4.9 only; None:
    estimated from the page-table bytes) are columns the simulator does not model."""

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


def dump_tasks_header(version: KernelVersion) -> list[str]:
    """The lines dump_tasks() prints before the rows (reference §3.5)."""
    era = kernel_era(version)
    if era >= V6_8:
        return ["Tasks state (memory values in pages):",
                "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
                "oom_score_adj name"]
    if era >= V4_19:
        return ["Tasks state (memory values in pages):",
                "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"]
    if era >= V4_9:
        return ["[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name"]
    if era >= V3_10:
        return ["[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name"]
    if era >= V3_4:
        return ["[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name"]
    return ["[ pid ]   uid  tgid total_vm      rss cpu oom_adj name"]


def format_dump_task(row: DumpTaskRow, version: KernelVersion) -> str:
    """One dump_task() row in ``version``'s exact printf layout (reference §3.5)."""
    era = kernel_era(version)
    if era >= V6_8:
        return _printf("[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %8ld %8lu         %5hd %s",
                       row.pid, row.uid, row.tgid, row.total_vm, row.rss, row.rss_anon,
                       row.rss_file, row.rss_shmem, row.pgtables_bytes, row.swapents,
                       row.oom_score_adj, row.comm)
    if era >= V4_19:
        return _printf("[%7d] %5d %5d %8lu %8lu %8ld %8lu         %5hd %s",
                       row.pid, row.uid, row.tgid, row.total_vm, row.rss,
                       row.pgtables_bytes, row.swapents, row.oom_score_adj, row.comm)
    table_pages = row.pgtables_bytes // PAGE_SIZE
    if era >= V4_9:
        # 4.9 counted PTE and PMD table pages apart (mm->nr_ptes, mm_nr_pmds()).
        nr_pmds = row.nr_pmds if row.nr_pmds is not None else -(-table_pages // 513)
        return _printf("[%5d] %5d %5d %8lu %8lu %7ld %7ld %8lu         %5hd %s",
                       row.pid, row.uid, row.tgid, row.total_vm, row.rss,
                       table_pages - nr_pmds, nr_pmds, row.swapents, row.oom_score_adj,
                       row.comm)
    if era >= V3_10:
        return _printf("[%5d] %5d %5d %8lu %8lu %7lu %8lu         %5hd %s",
                       row.pid, row.uid, row.tgid, row.total_vm, row.rss, table_pages,
                       row.swapents, row.oom_score_adj, row.comm)
    if era >= V3_4:
        return _printf("[%5d] %5d %5d %8lu %8lu %3u     %3d         %5d %s",
                       row.pid, row.uid, row.tgid, row.total_vm, row.rss, row.cpu,
                       stored_oom_adj(row.oom_score_adj), row.oom_score_adj, row.comm)
    return _printf("[%5d] %5d %5d %8lu %8lu %3d     %3d %s",
                   row.pid, row.uid, row.tgid, row.total_vm, row.rss, row.cpu,
                   score_adj_to_oom_adj(row.oom_score_adj), row.comm)


# --------------------------------------------------------------------------- dump_stack


def _dump_stack(version: KernelVersion, pid: int, uid: int, comm: str, release: str,
                memcg: bool) -> list[str]:
    """lib/dump_stack.c dump_stack_print_info() and a simplified ``Call Trace:``."""
    era = kernel_era(version)
    if era < V3_10:
        # 2.6.32 ... 3.9 x86 dump_stack(): "Pid: %d, comm: %.20s %s %s %.*s"
        lines = [f"Pid: {pid}, comm: {comm[:20]} Not tainted {release} #1"]
    else:
        # 6.11+ adds "UID: %u" (lib/dump_stack.c patch of June 2024), 6.16+ the
        # preemption model "%s " (patch of March 2025); the simulator does not preempt.
        uid_part = f"UID: {uid} " if version >= DUMP_STACK_UID else ""
        preempt = " PREEMPT(none) " if version >= DUMP_STACK_PREEMPT_MODEL else ""
        lines = [f"CPU: 0 {uid_part}PID: {pid} Comm: {comm[:20]} Not tainted {release} #1{preempt}"]
    # Simplified: representative frames of the page-fault path, no addresses/offsets.
    modern = era >= V5_15
    if memcg:
        if modern:  # the frames of the real 6.18 sample, .cold and "? " frames dropped
            frames = ["dump_stack_lvl", "dump_header", "oom_kill_process", "out_of_memory",
                      "mem_cgroup_out_of_memory", "try_charge_memcg", "charge_memcg",
                      "__mem_cgroup_charge", "do_anonymous_page", "__handle_mm_fault",
                      "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault"]
        else:
            frames = ["dump_stack", "dump_header", "oom_kill_process", "out_of_memory",
                      "mem_cgroup_out_of_memory", "try_charge", "mem_cgroup_try_charge",
                      "handle_mm_fault", "__do_page_fault", "do_page_fault", "page_fault"]
    elif modern:
        frames = ["dump_stack_lvl", "dump_header", "oom_kill_process", "out_of_memory",
                  "__alloc_pages_slowpath", "__alloc_pages_noprof" if era >= V6_13 else "__alloc_pages",
                  "do_anonymous_page", "__handle_mm_fault", "handle_mm_fault",
                  "exc_page_fault", "asm_exc_page_fault"]
    else:
        frames = ["dump_stack", "dump_header", "oom_kill_process", "out_of_memory",
                  "__alloc_pages_nodemask", "alloc_pages_vma", "handle_mm_fault",
                  "__do_page_fault", "do_page_fault", "page_fault"]
    lines.append("Call Trace:")
    body = [" " + f for f in frames]
    if era >= V6_6:  # x86 <TASK> markers (5.16+)
        body = [" <TASK>", *body, " </TASK>"]
    return lines + body


# --------------------------------------------------------------------------- Mem-Info


class ZoneSnapshot(NamedTuple):
    """A zone at the OOM, as a ``zoneinfo`` event gives it (struct zone; pages)."""

    name: str
    zid: int
    present: int
    managed: int
    nr_free: int
    wmark_min: int
    wmark_low: int
    wmark_high: int


#: x86-64 zone indices and sysctl_lowmem_reserve_ratio defaults (mm/page_alloc.c).
_ZONE_INDEX = {"DMA": 0, "DMA32": 1, "Normal": 2, "Movable": 3, "Device": 4}
_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)
#: x86-64 hstates as hugetlb_show_meminfo_node() lists them (1 GiB first).
_HSTATE_KB = (1048576, 2048)


def _lowmem_reserve(zones: Sequence[ZoneSnapshot], nr_zone_types: int) -> dict[str, list[int]]:
    """setup_per_zone_lowmem_reserve() (6.13) recomputed from managed pages: zone i
    keeps managed(i+1..j) / ratio[i] against allocations that may use zone j.

    A zone is placed by its name, else by its ``zid``; one whose index is not a zone
    type of the layout (a negative or too large ``zid`` of an unknown name) has no
    reserve (all 0) and adds to no other zone's."""
    managed = [0] * nr_zone_types
    for z in zones:
        idx = _ZONE_INDEX.get(z.name, z.zid)
        if 0 <= idx < nr_zone_types:
            managed[idx] = z.managed
    out: dict[str, list[int]] = {}
    for z in zones:
        i = _ZONE_INDEX.get(z.name, z.zid)
        reserve = [0] * nr_zone_types
        ratio = _LOWMEM_RESERVE_RATIO[i] if 0 <= i < min(nr_zone_types, len(_LOWMEM_RESERVE_RATIO)) else 0
        if ratio and managed[i]:
            above = 0
            for j in range(i + 1, nr_zone_types):
                above += managed[j]
                reserve[j] = above // ratio
        out[z.name] = reserve
    return out


def _split_printk(text: str) -> list[str]:
    """The log lines of one printk whose text has embedded newlines."""
    return text.rstrip("\n").split("\n")


def show_mem(version: KernelVersion, meminfo: Mapping[str, int], zones: Sequence[ZoneSnapshot]) -> list[str]:
    """The Mem-Info block of a global OOM (mm/show_mem.c __show_mem() and
    show_free_areas(), lib/show_mem.c, show_swap_cache_info()), from /proc/meminfo
    values in bytes (keys as /proc/meminfo names them) and the zones.

    6.13 exact layout (reference §3.3); 5.15, 4.19/5.4 and 2.6.32 with the
    differences the reference lists. Not in the reference, recalled from the trees and
    so less certain: the 4.19/5.4 node and zone lines, the 2.6.32 zone line beyond
    ``pages_scanned:``/``all_unreclaimable?``; 3.4/3.10 render with the 2.6.32 block
    and 4.9 with the 4.19 one. Unmodelled counters print 0 (module docstring).
    """
    era = kernel_era(version)

    def pages(key: str) -> int:
        return meminfo.get(key, 0) // PAGE_SIZE

    def kb(key: str) -> int:
        return meminfo.get(key, 0) // 1024

    kernel_misc_reclaimable = max(pages("KReclaimable") - pages("SReclaimable"), 0)
    lines = ["Mem-Info:"]
    # -- first block: one printk, values in pages
    if era >= V6_6:
        first = _printf(
            "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
            " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
            " unevictable:%lu dirty:%lu writeback:%lu\n"
            " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
            " mapped:%lu shmem:%lu pagetables:%lu\n"
            " sec_pagetables:%lu bounce:%lu\n"
            " kernel_misc_reclaimable:%lu\n"
            " free:%lu free_pcp:%lu free_cma:%lu\n",
            pages("Active(anon)"), pages("Inactive(anon)"), 0,
            pages("Active(file)"), pages("Inactive(file)"), 0,
            pages("Unevictable"), pages("Dirty"), pages("Writeback"),
            pages("SReclaimable"), pages("SUnreclaim"),
            pages("Mapped"), pages("Shmem"), pages("PageTables"),
            0, 0,
            kernel_misc_reclaimable,
            pages("MemFree"), 0, 0)
    elif era >= V5_15:
        first = _printf(
            "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
            " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
            " unevictable:%lu dirty:%lu writeback:%lu\n"
            " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
            " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n"
            " kernel_misc_reclaimable:%lu\n"
            " free:%lu free_pcp:%lu free_cma:%lu\n",
            pages("Active(anon)"), pages("Inactive(anon)"), 0,
            pages("Active(file)"), pages("Inactive(file)"), 0,
            pages("Unevictable"), pages("Dirty"), pages("Writeback"),
            pages("SReclaimable"), pages("SUnreclaim"),
            pages("Mapped"), pages("Shmem"), pages("PageTables"), 0,
            kernel_misc_reclaimable,
            pages("MemFree"), 0, 0)
    elif era >= V4_9:
        first = _printf(
            "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
            " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
            " unevictable:%lu dirty:%lu writeback:%lu unstable:%lu\n"
            " slab_reclaimable:%lu slab_unreclaimable:%lu\n"
            " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n"
            " free:%lu free_pcp:%lu free_cma:%lu\n",
            pages("Active(anon)"), pages("Inactive(anon)"), 0,
            pages("Active(file)"), pages("Inactive(file)"), 0,
            pages("Unevictable"), pages("Dirty"), pages("Writeback"), 0,
            pages("SReclaimable"), pages("SUnreclaim"),
            pages("Mapped"), pages("Shmem"), pages("PageTables"), 0,
            pages("MemFree"), 0, 0)
    else:
        first = _printf(
            "active_anon:%lu inactive_anon:%lu isolated_anon:%lu\n"
            " active_file:%lu inactive_file:%lu isolated_file:%lu\n"
            " unevictable:%lu dirty:%lu writeback:%lu unstable:%lu\n"
            " free:%lu slab_reclaimable:%lu slab_unreclaimable:%lu\n"
            " mapped:%lu shmem:%lu pagetables:%lu bounce:%lu\n",
            pages("Active(anon)"), pages("Inactive(anon)"), 0,
            pages("Active(file)"), pages("Inactive(file)"), 0,
            pages("Unevictable"), pages("Dirty"), pages("Writeback"), 0,
            pages("MemFree"), pages("SReclaimable"), pages("SUnreclaim"),
            pages("Mapped"), pages("Shmem"), pages("PageTables"), 0)
    lines += _split_printk(first)

    # -- node line (per-node counters since 4.8), kB; THP configured, no SCS
    node_common = (kb("Active(anon)"), kb("Inactive(anon)"), kb("Active(file)"),
                   kb("Inactive(file)"), kb("Unevictable"), 0, 0, kb("Mapped"),
                   kb("Dirty"), kb("Writeback"), kb("Shmem"))
    node_head = ("Node %d active_anon:%lukB inactive_anon:%lukB active_file:%lukB "
                 "inactive_file:%lukB unevictable:%lukB isolated(anon):%lukB "
                 "isolated(file):%lukB mapped:%lukB dirty:%lukB writeback:%lukB shmem:%lukB")
    if era >= V6_6:
        lines.append(_printf(
            node_head + " shmem_thp:%lukB shmem_pmdmapped:%lukB anon_thp:%lukB"
            " writeback_tmp:%lukB kernel_stack:%lukB pagetables:%lukB sec_pagetables:%lukB"
            " all_unreclaimable? %s",
            0, *node_common, 0, 0, 0, 0, kb("KernelStack"), kb("PageTables"), 0, "no"))
    elif era >= V5_15:
        lines.append(_printf(
            node_head + " shmem_thp: %lukB shmem_pmdmapped: %lukB anon_thp: %lukB"
            " writeback_tmp:%lukB kernel_stack:%lukB pagetables:%lukB"
            " all_unreclaimable? %s",
            0, *node_common, 0, 0, 0, 0, kb("KernelStack"), kb("PageTables"), "no"))
    elif era >= V4_9:
        lines.append(_printf(
            node_head + " shmem_thp: %lukB shmem_pmdmapped: %lukB anon_thp: %lukB"
            " writeback_tmp:%lukB unstable:%lukB all_unreclaimable? %s",
            0, *node_common, 0, 0, 0, 0, 0, "no"))

    # -- zone lines, kB, each followed by lowmem_reserve[]
    nr_zone_types = 5 if era >= V4_19 else 4  # ZONE_DEVICE configured (distro kernels)
    reserves = _lowmem_reserve(zones, nr_zone_types)
    for z in zones:
        free, wmin, wlow, whigh = (z.nr_free * 4, z.wmark_min * 4, z.wmark_low * 4,
                                   z.wmark_high * 4)
        present, managed = z.present * 4, z.managed * 4
        if era >= V5_15:
            boost = " boost:%lukB" if era >= V6_6 else ""  # 5.15: no boost (§3.3)
            fmt = ("Node 0 %s free:%lukB" + boost + " min:%lukB low:%lukB high:%lukB"
                   " reserved_highatomic:%luKB active_anon:%lukB inactive_anon:%lukB"
                   " active_file:%lukB inactive_file:%lukB unevictable:%lukB"
                   " writepending:%lukB present:%lukB managed:%lukB mlocked:%lukB"
                   " bounce:%lukB free_pcp:%lukB local_pcp:%ukB free_cma:%lukB")
            head = (z.name, free, 0) if boost else (z.name, free)
            lines.append(_printf(fmt, *head, wmin, wlow, whigh, 0, 0, 0, 0, 0, 0, 0,
                                 present, managed, 0, 0, 0, 0, 0))
        elif era >= V4_9:
            lines.append(_printf(
                "Node 0 %s free:%lukB min:%lukB low:%lukB high:%lukB active_anon:%lukB"
                " inactive_anon:%lukB active_file:%lukB inactive_file:%lukB"
                " unevictable:%lukB writepending:%lukB present:%lukB managed:%lukB"
                " mlocked:%lukB kernel_stack:%lukB pagetables:%lukB bounce:%lukB"
                " free_pcp:%lukB local_pcp:%ukB free_cma:%lukB",
                z.name, free, wmin, wlow, whigh, 0, 0, 0, 0, 0, 0, present, managed,
                0, 0, 0, 0, 0, 0, 0))
        else:
            lines.append(_printf(
                "Node 0 %s free:%lukB min:%lukB low:%lukB high:%lukB active_anon:%lukB"
                " inactive_anon:%lukB active_file:%lukB inactive_file:%lukB"
                " unevictable:%lukB isolated(anon):%lukB isolated(file):%lukB"
                " present:%lukB mlocked:%lukB dirty:%lukB writeback:%lukB mapped:%lukB"
                " shmem:%lukB slab_reclaimable:%lukB slab_unreclaimable:%lukB"
                " kernel_stack:%lukB pagetables:%lukB unstable:%lukB bounce:%lukB"
                " writeback_tmp:%lukB pages_scanned:%lu all_unreclaimable? %s",
                z.name, free, wmin, wlow, whigh, 0, 0, 0, 0, 0, 0, 0, present,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "no"))
        lines.append("lowmem_reserve[]:" + "".join(f" {r}" for r in reserves[z.name]))

    # -- buddy free lists: 11 orders, all free pages at order 0 (no buddy allocator)
    letters = era >= V3_10
    for z in zones:
        parts = []
        for order in range(11):
            nr = z.nr_free if order == 0 else 0
            parts.append(f"{nr}*{4 << order}kB " + ("(M) " if nr and letters else ""))
        lines.append(f"Node 0 {z.name}: " + "".join(parts) + f"= {z.nr_free * 4}kB")

    if era >= V3_10:
        for size_kb in _HSTATE_KB:
            lines.append(f"Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 "
                         f"hugepages_size={size_kb}kB")
    # NR_FILE_PAGES: Cached + SwapCached + Buffers (meminfo's Cached excludes the others)
    lines.append(_printf("%ld total pagecache pages",
                         pages("Cached") + pages("SwapCached") + pages("Buffers")))
    lines.append(_printf("%lu pages in swap cache", pages("SwapCached")))
    if era < V6_6:  # removed between 5.15 and 6.13
        lines.append(_printf("Swap cache stats: add %lu, delete %lu, find %lu/%lu", 0, 0, 0, 0))
    lines.append(_printf("Free swap  = %ldkB", kb("SwapFree")))
    lines.append(_printf("Total swap = %lukB", kb("SwapTotal")))
    present_total = sum(z.present for z in zones)
    reserved = sum(z.present - z.managed for z in zones)
    lines.append(_printf("%lu pages RAM", present_total))
    if era >= V3_10:
        lines.append(_printf("%lu pages HighMem/MovableOnly", 0))
        lines.append(_printf("%lu pages reserved", reserved))
        lines.append(_printf("%lu pages cma reserved", 0))
        lines.append(_printf("%lu pages hwpoisoned", 0))
    else:
        lines.append(_printf("%lu pages reserved", reserved))
        lines.append(_printf("%lu pages shared", 0))
        lines.append(_printf("%lu pages non-shared", 0))
    return lines


# --------------------------------------------------------------------------- memcg

#: memory.stat of cgroup v2 as memcg_stat_format() prints it (6.13 memory_stats[] then
#: the event counters; CONFIG_NUMA_BALANCING entries left out): name and the
#: memcg_stat field it comes from, or None where the simulator has no counter (0).
_MEMCG_V2_STAT: tuple[tuple[str, str | None], ...] = (
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
_MEMCG_V1_STAT: tuple[tuple[str, str | None], ...] = (
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

_LRU_BYTES = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")


def memcg_oom_info(version: KernelVersion, cgroup_version: int, stat: Mapping[str, Any],
                   task_memcg: str) -> list[str]:
    """What replaces Mem-Info for a memcg OOM (reference §3.4): 6.13
    mem_cgroup_print_oom_meminfo(), and before 5.4 mem_cgroup_print_oom_info() with
    its "Task in ... killed as a result of limit of ..." line and one-line stats.

    ``stat`` holds a ``memcg_stat`` event's fields; ``task_memcg`` is the victim's
    memcg path. v1 stat names since 6.6 (the v1 dump came in ~6.5; 5.x printed the v2
    memory.stat for both hierarchies); before 5.4 the v1 lines whatever the hierarchy.
    """
    era = kernel_era(version)

    def val(name: str | None) -> int:
        return int(stat.get(name, 0)) if name else 0

    path = stat.get("path", "") or "/"
    limit_bytes = val("limit_bytes")
    page_counters = era >= V4_9  # page_counter since 3.19; res_counter before
    unlimited_kb = PAGE_COUNTER_MAX * 4 if page_counters else RES_COUNTER_MAX_KB
    limit_kb = limit_bytes // 1024 if limit_bytes else unlimited_kb
    memsw_limit_bytes = val("memsw_limit_bytes") or limit_bytes
    memsw_kb = memsw_limit_bytes // 1024 if memsw_limit_bytes else unlimited_kb
    lines: list[str] = []
    if era < V5_4:
        lines.append(f"Task in {task_memcg or '/'} killed as a result of limit of {path}")
    lines.append(_printf("memory: usage %llukB, limit %llukB, failcnt %lu",
                         val("usage_bytes") // 1024, limit_kb, val("failcnt")))
    v2 = cgroup_version >= 2 and era >= V5_4
    if v2:
        lines.append(_printf("swap: usage %llukB, limit %llukB, failcnt %lu",
                             val("swap_bytes") // 1024, PAGE_COUNTER_MAX * 4, 0))
    else:
        lines.append(_printf("memory+swap: usage %llukB, limit %llukB, failcnt %lu",
                             (val("usage_bytes") + val("swap_bytes")) // 1024, memsw_kb, 0))
        if era >= V3_10:
            lines.append(_printf("kmem: usage %llukB, limit %llukB, failcnt %lu",
                                 val("kernel_bytes") // 1024, unlimited_kb, 0))
    if era >= V5_4:
        lines.append(f"Memory cgroup stats for {path}:")
        if cgroup_version == 1 and era >= V6_6:
            local = [(n, val(f)) for n, f in _MEMCG_V1_STAT]
            lines += [f"{n} {v}" for n, v in local]
            hier_limit = limit_bytes or PAGE_COUNTER_MAX * PAGE_SIZE
            lines.append(f"hierarchical_memory_limit {hier_limit}")
            lines.append(f"hierarchical_memsw_limit {memsw_limit_bytes or PAGE_COUNTER_MAX * PAGE_SIZE}")
            lines += [f"total_{n} {v}" for n, v in local]  # no child cgroups
        else:
            lines += [f"{n} {val(f)}" for n, f in _MEMCG_V2_STAT]
    elif era >= V3_10:
        # mem_cgroup_print_oom_info(): one pr_cont line per memcg of the subtree, in KB.
        if era >= V4_19:
            names = (("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None),
                     ("shmem", "shmem_bytes"), ("mapped_file", "file_mapped_bytes"),
                     ("dirty", "file_dirty_bytes"), ("writeback", "file_writeback_bytes"),
                     ("swap", "swap_bytes"))
        elif era >= V4_9:
            names = (("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None),
                     ("mapped_file", "file_mapped_bytes"), ("dirty", "file_dirty_bytes"),
                     ("writeback", "file_writeback_bytes"), ("swap", "swap_bytes"))
        else:
            names = (("cache", "file_bytes"), ("rss", "anon_bytes"), ("rss_huge", None),
                     ("mapped_file", "file_mapped_bytes"), ("swap", "swap_bytes"))
        names += tuple((n, f"{n}_bytes") for n in _LRU_BYTES)
        lines.append(f"Memory cgroup stats for {path}:"
                     + "".join(f" {n}:{val(f) // 1024}KB" for n, f in names))
    return lines


# --------------------------------------------------------------------------- kill lines


class _Victim(NamedTuple):
    """An oom_kill event's victim fields (kB) and score inputs."""

    message: str
    pid: int
    comm: str
    total_vm_kb: int
    anon_rss_kb: int
    file_rss_kb: int
    shmem_rss_kb: int
    uid: int
    pgtables_kb: int
    oom_score_adj: int
    points: int
    totalpages: int


def _kill_lines(version: KernelVersion, v: _Victim) -> list[str]:
    """The "Kill/Killed process" lines of ``version`` (reference §3.7). The chosen
    task is the victim (the simulator kills no child in its parent's place)."""
    era = kernel_era(version)
    if era >= V5_4:
        return [_printf("%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, "
                        "file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd",
                        v.message, v.pid, v.comm, v.total_vm_kb, v.anon_rss_kb,
                        v.file_rss_kb, v.shmem_rss_kb, v.uid, v.pgtables_kb, v.oom_score_adj)]
    if era < V3_4:
        return [_printf("%s: kill process %d (%s) score %li or a child", v.message, v.pid,
                        v.comm, v.points),
                _printf("Killed process %d (%s)", v.pid, v.comm)]
    # 3.x and 4.x: chosen_points * 1000 / totalpages
    score = max(v.points, 0) * 1000 // v.totalpages if v.totalpages else 0
    if era >= V4_9:
        return [_printf("%s: Kill process %d (%s) score %u or sacrifice child", v.message,
                        v.pid, v.comm, score),
                _printf("Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, "
                        "file-rss:%lukB, shmem-rss:%lukB", v.pid, v.comm, v.total_vm_kb,
                        v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb)]
    return [_printf("%s: Kill process %d (%s) score %d or sacrifice child", v.message,
                    v.pid, v.comm, score),
            _printf("Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB",
                    v.pid, v.comm, v.total_vm_kb, v.anon_rss_kb, v.file_rss_kb)]


def _oom_kill_summary(constraint: str, memcg: str, task_memcg: str, victim: _Victim) -> str:
    """dump_oom_summary() (5.4+, reference §3.6): one pr_cont-built line. No cpusets
    (current's cpuset is ``/``, mems 0) and a NULL nodemask."""
    scope = f"oom_memcg={memcg or '/'}" if constraint == "CONSTRAINT_MEMCG" else "global_oom"
    return (f"oom-kill:constraint={constraint},nodemask=(null),cpuset=/,mems_allowed=0,"
            f"{scope},task_memcg={task_memcg or '/'},"
            + _printf("task=%s,pid=%d,uid=%d", victim.comm, victim.pid, victim.uid))


# --------------------------------------------------------------------------- folding


@dataclass
class _Task:
    """What the log needs of a task: comm, uid and current oom_score_adj."""

    comm: str
    uid: int
    oom_score_adj: int


@dataclass
class _Report:
    """A report being written; ``lines`` grow until the trace ends."""

    oom_id: int
    ts_ns: int
    lines: list[str] = field(default_factory=list)

    def printk(self, ts_ns: int, messages: Iterable[str]) -> None:
        prefix = dmesg_timestamp(ts_ns)
        self.lines.extend(f"{prefix} {m}" for m in messages)




class _OomLog:
    """Folds events into OOM reports: the state the kernel log's writer would see.

    Holds only what a report needs (live tasks, the pending OOM's context, the reports
    written so far), never the event stream.
    """

    def __init__(self, meta: Mapping[str, Any], warnings: list[str] | None = None) -> None:
        #: header parts read as absent because they are not maps
        self.warnings = warnings if warnings is not None else []
        machine = meta_part(meta, "machine", self.warnings)
        sysctl = meta_part(meta, "sysctl", self.warnings)
        text = str(machine.get("kernel_version") or DEFAULT_KERNEL_VERSION)
        try:
            self.version = parse_kernel_version(text)
        except ValueError:
            raise TraceFormatError(f"trace header: machine.kernel_version {text!r} is not a kernel version "
                                   "(expected e.g. '6.13' or '2.6.32')") from None
        self.era = kernel_era(self.version)
        self._checked: set[str] = set()
        try:
            self.cgroup_version = int(machine.get("cgroup_version", 2))
            self.oom_dump_tasks = bool(int(sysctl.get("vm.oom_dump_tasks", 1)))
        except (TypeError, ValueError) as exc:
            raise TraceFormatError(f"trace header: bad machine.cgroup_version or "
                                   f"sysctl vm.oom_dump_tasks ({exc})") from None
        release = machine.get("kernel_release")
        if not release:
            release = (f"{text}.0" if text.count(".") == 1 else text) + "-memtrace"
        self.release = str(release)
        self.tasks: dict[int, _Task] = {}
        self.last_gfp: dict[int, tuple[int, int]] = {}
        self.reports: list[_Report] = []
        self.awaiting_reap: dict[int, _Report] = {}
        # Latest zones of any reason and latest meminfo sample: kept across OOMs.
        self.zones_any: dict[int, ZoneSnapshot] = {}
        self.meminfo: dict[str, int] = {}
        # The pending OOM's context, emptied by _reset() after each report.
        self.start_ts: int | None = None
        self.zones_oom: dict[int, ZoneSnapshot] = {}
        self.memcg_stat: dict[str, Any] | None = None
        self.candidates: dict[int, list[dict[str, Any]]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "process_start": self._process_start,
            "fork": self._fork,
            "exit": self._exit,
            "oom_score_adj_update": self._oom_score_adj_update,
            "sysctl_set": self._sysctl_set,
            "reclaim_begin": self._reclaim_begin,
            "zoneinfo": self._zoneinfo,
            "meminfo_sample": self._meminfo_sample,
            "memcg_stat": self._memcg_stat,
            "oom_candidate": self._oom_candidate,
            "oom_kill": self._oom_kill,
            "oom_reap": self._oom_reap,
            "oom_panic": self._oom_panic,
        }

    def _reset(self) -> None:
        """Forget the context of the OOM just reported."""
        self.start_ts = None
        self.zones_oom = {}
        self.memcg_stat = None
        self.candidates = {}

    def feed(self, record: EventRecord) -> None:
        handler = self._handlers.get(record.name)
        if handler is not None:
            if record.name not in self._checked:
                missing = [f for f in DMESG_READS[record.name] if f not in record.fields]
                if missing:
                    raise TraceFormatError(f"trace schema: tracepoint {record.name!r} has no field {missing[0]!r}, "
                                           "which memtrace dmesg reads (the trace was written with another schema)")
                self._checked.add(record.name)
            handler(record.fields)

    def finish(self) -> list[OomReportText]:
        return [OomReportText(r.oom_id, r.ts_ns, tuple(r.lines)) for r in self.reports]

    # -- task state

    def _process_start(self, f: dict[str, Any]) -> None:
        self.tasks[int(f["pid"])] = _Task(f["comm"], int(f["uid"]), int(f["oom_score_adj"]))

    def _fork(self, f: dict[str, Any]) -> None:
        parent = self.tasks.get(int(f["pid"]))
        uid, adj = (parent.uid, parent.oom_score_adj) if parent else (0, 0)
        self.tasks[int(f["child_pid"])] = _Task(f["child_comm"], uid, adj)

    def _exit(self, f: dict[str, Any]) -> None:
        self.tasks.pop(int(f["pid"]), None)
        self.last_gfp.pop(int(f["pid"]), None)

    def _oom_score_adj_update(self, f: dict[str, Any]) -> None:
        pid = int(f["pid"])
        task = self.tasks.get(pid)
        if task is None:
            self.tasks[pid] = _Task(f["comm"], 0, int(f["oom_score_adj"]))
        else:
            task.oom_score_adj = int(f["oom_score_adj"])

    def _sysctl_set(self, f: dict[str, Any]) -> None:
        if f["name"] == "vm.oom_dump_tasks":
            with contextlib.suppress(ValueError):
                self.oom_dump_tasks = int(f["value"]) != 0

    def _reclaim_begin(self, f: dict[str, Any]) -> None:
        self.last_gfp[int(f["pid"])] = (int(f["gfp_flags"]), int(f["order"]))

    # -- the OOM's context

    def _mark(self, f: dict[str, Any]) -> None:
        if self.start_ts is None:
            self.start_ts = int(f["ts_ns"])

    def _zoneinfo(self, f: dict[str, Any]) -> None:
        zone = ZoneSnapshot(f["zone"], int(f["zid"]), int(f["present_pages"]), int(f["managed_pages"]),
                     int(f["nr_free"]), int(f["wmark_min"]), int(f["wmark_low"]),
                     int(f["wmark_high"]))
        self.zones_any[zone.zid] = zone
        if f["reason"] == "oom":
            self.zones_oom[zone.zid] = zone
            self._mark(f)

    def _meminfo_sample(self, f: dict[str, Any]) -> None:
        self.meminfo = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}

    def _memcg_stat(self, f: dict[str, Any]) -> None:
        self.memcg_stat = dict(f)
        self._mark(f)

    def _oom_candidate(self, f: dict[str, Any]) -> None:
        self.candidates.setdefault(int(f["oom_id"]), []).append(f)
        self._mark(f)

    # -- reports

    def _current(self, pid: int, rows: Sequence[dict[str, Any]], victim: Mapping[str, Any] | None) -> _Task:
        """The task that hit the OOM: from the process events, else its dump row."""
        task = self.tasks.get(pid)
        if task is not None:
            return task
        for row in rows:
            if int(row["tgid"]) == pid:
                return _Task(row["comm"], int(row["uid"]), int(row["oom_score_adj"]))
        if victim is not None and int(victim["victim_pid"]) == pid:
            return _Task(victim["comm"], int(victim["uid"]), int(victim["oom_score_adj"]))
        return _Task("?", 0, 0)

    def _dump_header(self, report: _Report, ts_ns: int, pid: int, gfp_mask: int, order: int,
                     memcg: bool, task_memcg: str, rows: Sequence[dict[str, Any]],
                     victim: Mapping[str, Any] | None) -> None:
        """mm/oom_kill.c dump_header(): header, dump_stack, Mem-Info or the memcg
        block, and the task table."""
        version, era = self.version, self.era
        cur = self._current(pid, rows, victim)
        gfp = format_gfp_mask(gfp_mask, version)
        if era >= V5_4:
            header = [_printf("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_score_adj=%hd",
                              cur.comm, gfp, order, cur.oom_score_adj)]
        elif era >= V4_9:
            header = [_printf("%s invoked oom-killer: gfp_mask=%s, nodemask=(null), order=%d, "
                              "oom_score_adj=%hd", cur.comm, gfp, order, cur.oom_score_adj)]
        elif era >= V3_10:
            header = [_printf("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_score_adj=%hd",
                              cur.comm, gfp, order, cur.oom_score_adj)]
        elif era >= V3_4:
            header = [_printf("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_adj=%d, "
                              "oom_score_adj=%d", cur.comm, gfp, order,
                              stored_oom_adj(cur.oom_score_adj), cur.oom_score_adj)]
        else:
            header = [_printf("%s invoked oom-killer: gfp_mask=%s, order=%d, oom_adj=%d",
                              cur.comm, gfp, order, score_adj_to_oom_adj(cur.oom_score_adj))]
        if era < V5_4:  # cpuset_print_current_mems_allowed()
            header.append(f"{cur.comm} cpuset=/ mems_allowed=0")
        report.printk(ts_ns, header)
        report.printk(ts_ns, _dump_stack(version, pid, cur.uid, cur.comm, self.release, memcg))
        if memcg and self.memcg_stat is not None:
            report.printk(ts_ns, memcg_oom_info(version, self.cgroup_version,
                                                self.memcg_stat, task_memcg))
        # Before 3.10, dump_header() printed show_mem() for memcg OOMs too.
        if not memcg or era < V3_10:
            zones = self.zones_oom or self.zones_any
            report.printk(ts_ns, show_mem(version, self.meminfo,
                                          [zones[k] for k in sorted(zones)]))
        if self.oom_dump_tasks:
            table = dump_tasks_header(version) + [format_dump_task(_row(r), version) for r in rows]
            report.printk(ts_ns, table)

    def _oom_kill(self, f: dict[str, Any]) -> None:
        ts = int(f["ts_ns"])
        oom_id = int(f["oom_id"])
        rows = self.candidates.get(oom_id, [])
        report = _Report(oom_id, ts)
        constraint = f["constraint"]
        memcg = constraint == "CONSTRAINT_MEMCG"
        self._dump_header(report, self.start_ts if self.start_ts is not None else ts,
                          int(f["pid"]), int(f["gfp_mask"]), int(f["order"]), memcg,
                          f["task_memcg"], rows, f)
        victim = _Victim(f["message"], int(f["victim_pid"]), f["comm"], int(f["total_vm_kb"]),
                         int(f["anon_rss_kb"]), int(f["file_rss_kb"]), int(f["shmem_rss_kb"]),
                         int(f["uid"]), int(f["pgtables_kb"]), int(f["oom_score_adj"]),
                         int(f["points"]), int(f["totalpages"]))
        tail = []
        if self.era >= V5_4:
            oom_memcg = f["memcg"] or (self.memcg_stat or {}).get("path", "")
            tail.append(_oom_kill_summary(constraint, oom_memcg, f["task_memcg"], victim))
        tail += _kill_lines(self.version, victim)
        report.printk(ts, tail)
        self.reports.append(report)
        self.awaiting_reap[victim.pid] = report
        self._reset()

    def _oom_reap(self, f: dict[str, Any]) -> None:
        report = self.awaiting_reap.pop(int(f["victim_pid"]), None)
        if report is None or self.era < V4_9:  # the OOM reaper came in 4.6
            return
        if f["success"]:
            line = _printf("oom_reaper: reaped process %d (%s), now anon-rss:%lukB, "
                           "file-rss:%lukB, shmem-rss:%lukB", int(f["victim_pid"]), f["comm"],
                           int(f["anon_rss_kb"]), int(f["file_rss_kb"]), int(f["shmem_rss_kb"]))
        else:
            line = _printf("oom_reaper: unable to reap pid:%d (%s)", int(f["victim_pid"]), f["comm"])
        report.printk(int(f["ts_ns"]), [line])

    def _oom_panic(self, f: dict[str, Any]) -> None:
        ts = int(f["ts_ns"])
        oom_id = int(f["oom_id"])
        pid = int(f["pid"])
        rows = self.candidates.get(oom_id, [])
        memcg = f["constraint"] == "CONSTRAINT_MEMCG"
        if "gfp_mask" in f:
            gfp_mask, order = int(f["gfp_mask"]), int(f["order"])
        else:  # traces written before oom_panic carried them
            gfp_mask, order = self.last_gfp.get(pid, (GFP_HIGHUSER_MOVABLE_ZERO, 0))
        report = _Report(oom_id, ts)
        task_memcg = str(self.memcg_stat.get("path", "")) if memcg and self.memcg_stat else ""
        self._dump_header(report, self.start_ts if self.start_ts is not None else ts, pid,
                          gfp_mask, order, memcg, task_memcg, rows, None)
        reason = str(f["reason"]).strip()
        tail = []
        if reason == "System is deadlocked on memory":  # 6.13 out_of_memory(), !oc->chosen
            tail.append("Out of memory and no killable processes...")
        tail.append(f"Kernel panic - not syncing: {reason}")
        report.printk(ts, tail)
        self.reports.append(report)
        self._reset()


def _row(f: Mapping[str, Any]) -> DumpTaskRow:
    """An oom_candidate event as a dump_tasks() row (pid is the thread-group leader)."""
    return DumpTaskRow(
        pid=int(f["tgid"]), uid=int(f["uid"]), tgid=int(f["tgid"]),
        total_vm=int(f["total_vm"]), rss_anon=int(f["rss_anon"]), rss_file=int(f["rss_file"]),
        rss_shmem=int(f["rss_shmem"]), pgtables_bytes=int(f["pgtables_bytes"]),
        swapents=int(f["swapents"]), oom_score_adj=int(f["oom_score_adj"]), comm=f["comm"],
    )


def oom_reports_from_events(events: Iterable[EventRecord], meta: Mapping[str, Any],
                            warnings: list[str] | None = None) -> list[OomReportText]:
    """Every OOM report of an event stream (in ``seq`` order), as the kernel named by
    ``meta["machine"]["kernel_version"]`` would log it (``meta`` is a trace header's
    meta). Reads the stream once, keeping only what the reports need.

    Header parts that are not maps (``meta["machine"]`` a string) read as absent and
    a line saying so is added to ``warnings``. Raises TraceFormatError when the
    kernel version cannot be parsed, or an event lacks a field a report reads.
    """
    log = _OomLog(meta if isinstance(meta, Mapping) else {}, warnings)
    for record in events:
        log.feed(record)
    return log.finish()


def _needed_records(reader: TraceReader) -> Iterator[EventRecord]:
    checked: set[str] = set()
    for batch in reader.ordered_batches():
        name = batch.tp.name
        if name in NEEDED_TRACEPOINTS:
            if name not in checked:
                check_fields(batch.tp, "memtrace dmesg", DMESG_READS[name], DMESG_READS_IF_PRESENT.get(name, ()))
                checked.add(name)
            yield from batch.records()


def render_dmesg(reader: TraceReader) -> list[OomReportText]:
    """The OOM reports of a trace file, streaming: only the batches of the tracepoints
    a report reads are turned into records (page faults and the like are skipped).

    What the header could not give (a ``machine`` that is not a map) is added to
    ``reader.warnings``, with the reader's own. TraceFormatError when the trace's
    schema lacks a field a report reads, or holds it as another kind of type."""
    return oom_reports_from_events(_needed_records(reader), reader.meta, reader.warnings)
