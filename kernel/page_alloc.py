"""Physical memory: zones, watermarks, the page frame array and the allocator.

Models mm/page_alloc.c (6.13): zones with present/managed pages,
``calculate_min_free_kbytes``, ``__setup_per_zone_wmarks``,
``setup_per_zone_lowmem_reserve``, ``calculate_totalreserve_pages`` and
``__zone_watermark_ok``; and include/linux/mm_types.h ``struct page`` as parallel
numpy arrays indexed by pfn (:class:`MemMap`), so a range operation costs a few
array operations, not one Python object per page.

Simplified, on purpose:
- x86-64 zone layout without the PCI hole: ZONE_DMA is the first 16 MiB, ZONE_DMA32
  runs to 3 GiB, ZONE_NORMAL holds the rest; pfns are contiguous. One NUMA node.
- Only order-0 pages: no buddy orders, no fragmentation, no compaction, no per-cpu
  lists. Free pages of a zone are a LIFO stack (hot pages are reused first).
- Reserved memory (firmware, kernel image, the struct page array itself) is a fixed
  amount per zone, as memblock leaves it at boot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE

# struct page flags (include/linux/page-flags.h), as bits of MemMap.flags.
PG_LRU = 1 << 0
PG_ACTIVE = 1 << 1
PG_REFERENCED = 1 << 2
PG_DIRTY = 1 << 3
PG_WRITEBACK = 1 << 4
PG_SWAPBACKED = 1 << 5
PG_ANON = 1 << 6  # PageAnon(): the PAGE_MAPPING_ANON bit of page->mapping
PG_UNEVICTABLE = 1 << 7
PG_MLOCKED = 1 << 8
PG_SLAB = 1 << 9
PG_PGTABLE = 1 << 10
PG_KERNEL = 1 << 11  # other kernel allocations: kernel stacks, percpu, vmalloc
PG_YOUNG = 1 << 12  # a pte mapping the page was accessed since reclaim last looked (pte_young)
PG_PINNED = 1 << 13  # held by an operation in progress (the folio lock / an elevated refcount)
PG_RECLAIM = 1 << 14  # reclaim wants the page freed as soon as its writeback ends (PG_reclaim)

#: bytes of struct page per 4 KiB page on x86-64; the memmap is reserved at boot.
STRUCT_PAGE_BYTES = 64
#: kernel image, initrd leftovers and other memblock reservations (an estimate).
KERNEL_RESERVED_BYTES = 48 << 20
#: BIOS, real-mode trampoline and other firmware pages inside ZONE_DMA.
DMA_RESERVED_PAGES = 4096 - 3840

ZONE_DMA_END = (16 << 20) >> PAGE_SHIFT
ZONE_DMA32_END = (3 << 30) >> PAGE_SHIFT

#: sysctl_lowmem_reserve_ratio defaults (mm/page_alloc.c): DMA, DMA32, Normal.
LOWMEM_RESERVE_RATIO = {"DMA": 256, "DMA32": 256, "Normal": 32}


def int_sqrt(x: int) -> int:
    """Floor square root, as lib/math/int_sqrt.c."""
    return math.isqrt(x)


@dataclass
class Zone:
    """Models struct zone: a pfn range with its free pages and watermarks (pages)."""

    name: str
    index: int
    start_pfn: int
    present_pages: int
    managed_pages: int
    free_stack: np.ndarray = field(repr=False)
    nr_free: int = 0
    wmark_min: int = 0
    wmark_low: int = 0
    wmark_high: int = 0
    wmark_promo: int = 0
    lowmem_reserve: list[int] = field(default_factory=list)

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.present_pages

    def watermark_ok(self, mark: int, highest_zoneidx: int, nr_pages: int = 1) -> bool:
        """Models __zone_watermark_ok() for order-0: free pages after taking
        ``nr_pages`` stay above ``mark`` plus the lowmem reserve."""
        reserve = self.lowmem_reserve[highest_zoneidx] if highest_zoneidx < len(self.lowmem_reserve) else 0
        return self.nr_free - nr_pages > mark + reserve


class MemMap:
    """Models the struct page array (mem_map): one entry per pfn, as columns.

    - ``flags``: PG_* bits above.
    - ``mapcount``: number of page-table entries mapping the page (the kernel's
      _mapcount + 1).
    - ``mapping``: id of the owner: an address_space (file or shmem object) id, or for
      anonymous pages the id of the mm that first faulted it (its anon_vma root).
    - ``index``: page offset in the file, or for anon pages the linear index in
      their anon_vma: the virtual page number where the page was first mapped.
    - ``lru_gen``: LRU insertion stamp; smaller is older (the list order).
    - ``memcg``: id of the memory cgroup the page is charged to (0: none, 1: root).
    """

    def __init__(self, nr_pfns: int) -> None:
        self.nr_pfns = nr_pfns
        self.flags = np.zeros(nr_pfns, dtype=np.uint16)
        self.mapcount = np.zeros(nr_pfns, dtype=np.int32)
        self.mapping = np.zeros(nr_pfns, dtype=np.int32)
        self.index = np.zeros(nr_pfns, dtype=np.int64)
        self.lru_gen = np.zeros(nr_pfns, dtype=np.int64)
        self.memcg = np.zeros(nr_pfns, dtype=np.int16)


class PageAllocator:
    """Models the zoned page allocator of one node: boot layout, watermarks, alloc/free.

    Allocation walks the zonelist of a GFP_HIGHUSER_MOVABLE request (Normal, DMA32,
    DMA) and takes pages from the first zones that stay above the requested
    watermark plus lowmem reserve, as get_page_from_freelist() does.
    """

    def __init__(self, ram_bytes: int) -> None:
        nr_pfns = ram_bytes >> PAGE_SHIFT
        self.nr_pfns = nr_pfns
        self.mem_map = MemMap(nr_pfns)
        memmap_pages = -(-nr_pfns * STRUCT_PAGE_BYTES // PAGE_SIZE)
        kernel_pages = KERNEL_RESERVED_BYTES >> PAGE_SHIFT
        spans = [
            ("DMA", 0, min(nr_pfns, ZONE_DMA_END)),
            ("DMA32", ZONE_DMA_END, min(nr_pfns, ZONE_DMA32_END)),
            ("Normal", ZONE_DMA32_END, nr_pfns),
        ]
        self.zones: list[Zone] = []
        for name, start, end in spans:
            if end <= start:
                continue
            present = end - start
            if name == "DMA":
                reserved = min(DMA_RESERVED_PAGES, present)
            else:
                reserved = 0
            self.zones.append(Zone(name, len(self.zones), start, present, present - reserved,
                                   np.empty(0, dtype=np.int32)))
        # memblock reservations (memmap, kernel image) come out of the highest zone.
        top = self.zones[-1]
        top.managed_pages -= memmap_pages + kernel_pages
        if top.managed_pages <= 0:
            raise ValueError(f"RAM of {ram_bytes} bytes leaves no managed pages")
        for z in self.zones:
            reserved_pfns = z.present_pages - z.managed_pages
            # The reserved pfns sit at the bottom of each zone; free pages are popped
            # from the top of the stack, i.e. the lowest free pfns go last.
            z.free_stack = np.arange(z.end_pfn - 1, z.start_pfn + reserved_pfns - 1, -1, dtype=np.int32)
            z.nr_free = len(z.free_stack)
        self.totalreserve_pages = 0

    # ------------------------------------------------------------------ boot setup

    @property
    def totalram_pages(self) -> int:
        """totalram_pages(): managed pages of every zone (MemTotal)."""
        return sum(z.managed_pages for z in self.zones)

    @property
    def nr_free_pages(self) -> int:
        return sum(z.nr_free for z in self.zones)

    def calculate_min_free_kbytes(self) -> int:
        """Models calculate_min_free_kbytes() (6.x): 4·sqrt(lowmem kB), clamped to
        [128, 262144]. At boot the watermarks are zero, so nr_free_buffer_pages() is
        the managed pages of the zones a GFP_USER allocation may use (all of them)."""
        lowmem_kbytes = self.totalram_pages * (PAGE_SIZE // 1024)
        return max(128, min(262144, int_sqrt(lowmem_kbytes * 16)))

    def setup_per_zone_wmarks(self, min_free_kbytes: int, watermark_scale_factor: int) -> None:
        """Models __setup_per_zone_wmarks() (4.6+ form) and the lowmem reserves."""
        pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)
        lowmem_pages = self.totalram_pages  # no highmem or movable zones
        for z in self.zones:
            tmp = pages_min * z.managed_pages // lowmem_pages
            z.wmark_min = tmp
            delta = max(tmp // 4, z.managed_pages * watermark_scale_factor // 10000)
            z.wmark_low = z.wmark_min + delta
            z.wmark_high = z.wmark_low + delta
            z.wmark_promo = z.wmark_high + delta
        self.setup_per_zone_lowmem_reserve()
        self.calculate_totalreserve_pages()

    def setup_per_zone_lowmem_reserve(self) -> None:
        """Models setup_per_zone_lowmem_reserve(): zone i keeps, against an allocation
        that could use zone j > i, the managed pages of zones i+1..j / ratio[i]."""
        for i, z in enumerate(self.zones):
            z.lowmem_reserve = [0] * len(self.zones)
            managed_above = 0
            for j in range(i + 1, len(self.zones)):
                managed_above += self.zones[j].managed_pages
                ratio = LOWMEM_RESERVE_RATIO[z.name]
                z.lowmem_reserve[j] = managed_above // ratio if ratio else 0

    def calculate_totalreserve_pages(self) -> None:
        """Models calculate_totalreserve_pages(): per zone the largest lowmem reserve
        plus the high watermark, capped at managed pages."""
        total = 0
        for z in self.zones:
            reserve = max(z.lowmem_reserve, default=0) + z.wmark_high
            total += min(reserve, z.managed_pages)
        self.totalreserve_pages = total

    # ------------------------------------------------------------------ alloc/free

    @property
    def highest_zoneidx(self) -> int:
        return len(self.zones) - 1

    def zonelist(self) -> list[Zone]:
        """The zones a movable user allocation may use, preferred first."""
        return list(reversed(self.zones))

    def available_above(self, mark: str) -> int:
        """Pages that can be taken while every zone stays above watermark ``mark``
        (``min``, ``low`` or ``high``) plus its lowmem reserve."""
        hz = self.highest_zoneidx
        total = 0
        for z in self.zonelist():
            floor = getattr(z, f"wmark_{mark}") + z.lowmem_reserve[hz]
            total += max(0, z.nr_free - floor - 1)
        return total

    def alloc_pages(self, nr_pages: int, mark: str = "min") -> np.ndarray:
        """Take ``nr_pages`` free pfns, keeping every zone above ``mark``.

        Returns fewer pages than asked when the zones run down to the mark; the
        caller decides what that means (reclaim, OOM). Order-0 only.
        """
        hz = self.highest_zoneidx
        parts: list[np.ndarray] = []
        want = nr_pages
        for z in self.zonelist():
            if want == 0:
                break
            floor = getattr(z, f"wmark_{mark}") + z.lowmem_reserve[hz] if mark != "none" else 0
            can = max(0, z.nr_free - floor - (1 if mark != "none" else 0))
            take = min(want, can)
            if take:
                parts.append(z.free_stack[z.nr_free - take: z.nr_free][::-1].copy())
                z.nr_free -= take
                want -= take
        if not parts:
            return np.empty(0, dtype=np.int32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def free_pages(self, pfns: np.ndarray) -> None:
        """Return pfns to their zones' free stacks and clear their struct page."""
        if len(pfns) == 0:
            return
        mm = self.mem_map
        mm.flags[pfns] = 0
        mm.mapcount[pfns] = 0
        mm.mapping[pfns] = 0
        mm.index[pfns] = 0
        mm.lru_gen[pfns] = 0
        mm.memcg[pfns] = 0
        for z in self.zones:
            sel = pfns[(pfns >= z.start_pfn) & (pfns < z.end_pfn)]
            if len(sel):
                # Freed pages go on top (reused first), in reverse so that freeing what
                # alloc_pages returned restores the stack exactly.
                z.free_stack[z.nr_free: z.nr_free + len(sel)] = sel[::-1]
                z.nr_free += len(sel)
