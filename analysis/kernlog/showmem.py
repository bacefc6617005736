"""The memory-state block of an OOM report, rendered from event values in an era's layout.

A global OOM prints show_mem()'s Mem-Info (mm/show_mem.c ``__show_mem()`` and
``show_free_areas()``, lib/show_mem.c, ``show_swap_cache_info()``); a memcg OOM
prints ``mem_cgroup_print_oom_meminfo()`` instead (before 3.10, dump_header() printed
show_mem() for memcg OOMs too). The layouts are :data:`.formats.MEMINFO` and
:data:`.formats.MEMCG`; this module fills them from a ``meminfo_sample`` (bytes,
keys as /proc/meminfo names them), the ``zoneinfo`` of each zone and a
``memcg_stat`` event's fields.

Simplified, on purpose (a reader must know what is invented):

- Mem-Info: counters the simulator does not model print 0 (isolated, bounce, CMA,
  per-cpu lists, THP, sec_pagetables, writeback_tmp, reserved_highatomic, boost,
  hugepages, the per-zone LRU, mlocked, writepending and stack/page-table split).
  Free memory is all order-0 movable pages (no buddy allocator): ``N*4kB (M) 0*8kB
  ... = ...kB``. ``all_unreclaimable?`` prints ``no``. lowmem_reserve[] is recomputed
  from the zones' managed pages with the default ratios (256, 256, 32). One NUMA node.
- memcg: no child cgroups (``total_*`` equal the local values); the v1 memory+swap
  limit equals the memory limit (as in the real sample) unless ``memcg_stat`` carries
  ``memsw_limit_bytes``; failcnt of memory+swap and kmem is 0; kmem usage is the
  memcg's kernel memory. ``memcg_stat`` fields the schema lacks (``pgpgin``,
  ``pgpgout``, ``file_writeback_bytes``, ``swapcached_bytes``,
  ``workingset_refault_anon``/``_file``) are read when present and print 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from memtrace.linux.limits import PAGE_COUNTER_MAX, PAGE_SIZE
from memtrace.linux.version import KernelVersion

from .formats import (
    HSTATE_KB,
    MEMCG,
    MEMCG_COUNTER,
    MEMCG_STATS_HEAD,
    MEMCG_TASK_IN,
    MEMCG_V1_STAT,
    MEMCG_V2_STAT,
    MEMINFO,
    NR_ORDERS,
    layout_for,
)

__all__ = ["ZoneSnapshot", "memcg_oom_info", "show_mem"]


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


class _Zeroes(dict[str, object]):
    """Values of a printk: a counter the simulator does not model prints 0."""

    def __missing__(self, key: str) -> object:
        return 0


#: x86-64 zone indices and sysctl_lowmem_reserve_ratio defaults (mm/page_alloc.c).
_ZONE_INDEX = {"DMA": 0, "DMA32": 1, "Normal": 2, "Movable": 3, "Device": 4}
_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)


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


def show_mem(version: KernelVersion, meminfo: Mapping[str, int], zones: Sequence[ZoneSnapshot]) -> list[str]:
    """The Mem-Info block of a global OOM in ``version``'s layout
    (:data:`.formats.MEMINFO`), from /proc/meminfo values in bytes (keys as
    /proc/meminfo names them) and the zones."""
    layout = layout_for(MEMINFO, version)

    def pages(key: str) -> int:
        return meminfo.get(key, 0) // PAGE_SIZE

    def kb(key: str) -> int:
        return meminfo.get(key, 0) // 1024

    lines = ["Mem-Info:"]
    # The first block: one printk of page counts, one log line per newline.
    first = _Zeroes(
        active_anon=pages("Active(anon)"), inactive_anon=pages("Inactive(anon)"),
        active_file=pages("Active(file)"), inactive_file=pages("Inactive(file)"),
        unevictable=pages("Unevictable"), dirty=pages("Dirty"), writeback=pages("Writeback"),
        slab_reclaimable=pages("SReclaimable"), slab_unreclaimable=pages("SUnreclaim"),
        mapped=pages("Mapped"), shmem=pages("Shmem"), pagetables=pages("PageTables"),
        kernel_misc_reclaimable=max(pages("KReclaimable") - pages("SReclaimable"), 0),
        free=pages("MemFree"))
    lines += layout.first.render(first).rstrip("\n").split("\n")
    if layout.node is not None:  # per-node counters since 4.8, kB; THP configured, no SCS
        lines.append(layout.node.render(_Zeroes(
            nid=0, active_anon=kb("Active(anon)"), inactive_anon=kb("Inactive(anon)"),
            active_file=kb("Active(file)"), inactive_file=kb("Inactive(file)"), unevictable=kb("Unevictable"),
            mapped=kb("Mapped"), dirty=kb("Dirty"), writeback=kb("Writeback"), shmem=kb("Shmem"),
            kernel_stack=kb("KernelStack"), pagetables=kb("PageTables"), all_unreclaimable="no")))
    reserves = _lowmem_reserve(zones, layout.nr_zone_types)
    for z in zones:
        lines.append(layout.zone.render(_Zeroes(
            zone=z.name, free=z.nr_free * 4, min=z.wmark_min * 4, low=z.wmark_low * 4, high=z.wmark_high * 4,
            present=z.present * 4, managed=z.managed * 4, all_unreclaimable="no")))
        lines.append("lowmem_reserve[]:" + "".join(f" {r}" for r in reserves[z.name]))
    # The buddy free lists: all free pages at order 0 (no buddy allocator).
    for z in zones:
        parts = []
        for order in range(NR_ORDERS):
            nr = z.nr_free if order == 0 else 0
            parts.append(f"{nr}*{4 << order}kB " + ("(M) " if nr and layout.migrate_letters else ""))
        lines.append(f"Node 0 {z.name}: " + "".join(parts) + f"= {z.nr_free * 4}kB")
    if layout.hugepages:
        for size_kb in HSTATE_KB:
            lines.append(f"Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 "
                         f"hugepages_size={size_kb}kB")
    # NR_FILE_PAGES: Cached + SwapCached + Buffers (meminfo's Cached excludes the others)
    tail = _Zeroes(
        pagecache=pages("Cached") + pages("SwapCached") + pages("Buffers"), swapcache=pages("SwapCached"),
        free_swap=kb("SwapFree"), total_swap=kb("SwapTotal"), ram=sum(z.present for z in zones),
        reserved=sum(z.present - z.managed for z in zones))
    lines += [printk.render(tail) for printk in layout.tail]
    return lines


def memcg_oom_info(version: KernelVersion, cgroup_version: int, stat: Mapping[str, Any],
                   task_memcg: str) -> list[str]:
    """What replaces Mem-Info for a memcg OOM in ``version``'s layout
    (:data:`.formats.MEMCG`): 6.13 mem_cgroup_print_oom_meminfo(), and before 5.4
    mem_cgroup_print_oom_info() with its "Task in ... killed as a result of limit
    of ..." line and one-line stats.

    ``stat`` holds a ``memcg_stat`` event's fields; ``task_memcg`` is the victim's
    memcg path.
    """
    layout = layout_for(MEMCG, version)

    def val(name: str | None) -> int:
        return int(stat.get(name, 0)) if name else 0

    path = stat.get("path", "") or "/"
    limit_bytes = val("limit_bytes")
    limit_kb = limit_bytes // 1024 if limit_bytes else layout.unlimited_kb
    memsw_limit_bytes = val("memsw_limit_bytes") or limit_bytes
    memsw_kb = memsw_limit_bytes // 1024 if memsw_limit_bytes else layout.unlimited_kb
    lines: list[str] = []
    if layout.task_in:
        lines.append(MEMCG_TASK_IN.render({"task_memcg": task_memcg or "/", "memcg": path}))
    lines.append(MEMCG_COUNTER.render({"counter": "memory", "usage": val("usage_bytes") // 1024, "limit": limit_kb,
                                       "failcnt": val("failcnt")}))
    if cgroup_version >= 2 and layout.v2_swap:
        lines.append(MEMCG_COUNTER.render({"counter": "swap", "usage": val("swap_bytes") // 1024,
                                           "limit": PAGE_COUNTER_MAX * 4, "failcnt": 0}))
    else:
        lines.append(MEMCG_COUNTER.render({"counter": "memory+swap",
                                           "usage": (val("usage_bytes") + val("swap_bytes")) // 1024,
                                           "limit": memsw_kb, "failcnt": 0}))
        if layout.kmem:
            lines.append(MEMCG_COUNTER.render({"counter": "kmem", "usage": val("kernel_bytes") // 1024,
                                               "limit": layout.unlimited_kb, "failcnt": 0}))
    if layout.multiline:
        lines.append(MEMCG_STATS_HEAD.render({"memcg": path}))
        if cgroup_version == 1 and layout.v1_stats:
            local = [(n, val(f)) for n, f in MEMCG_V1_STAT]
            lines += [f"{n} {v}" for n, v in local]
            lines.append(f"hierarchical_memory_limit {limit_bytes or PAGE_COUNTER_MAX * PAGE_SIZE}")
            lines.append(f"hierarchical_memsw_limit {memsw_limit_bytes or PAGE_COUNTER_MAX * PAGE_SIZE}")
            lines += [f"total_{n} {v}" for n, v in local]  # no child cgroups
        else:
            lines += [f"{n} {val(f)}" for n, f in MEMCG_V2_STAT]
    elif layout.oneline:
        # mem_cgroup_print_oom_info(): one pr_cont line per memcg of the subtree, in KB.
        lines.append(MEMCG_STATS_HEAD.render({"memcg": path})
                     + "".join(f" {n}:{val(f) // 1024}KB" for n, f in layout.oneline))
    return lines
