"""Zones and watermarks against the reference's worked example (kernel-mm-facts.md §5.2)."""

from __future__ import annotations

from memtrace.kernel.kernel import Kernel
from memtrace.kernel.page_alloc import PageAllocator, int_sqrt
from memtrace.tracer import Bus, default_registry

from ..conftest import GiB


def _allocator_with_managed(dma: int, dma32: int, normal: int) -> PageAllocator:
    a = PageAllocator(8 * GiB)
    for zone, managed in zip(a.zones, (dma, dma32, normal)):
        zone.managed_pages = managed
    return a


def test_min_free_kbytes_and_watermarks_match_the_worked_example() -> None:
    """Zones DMA 3840, DMA32 748,000, Normal 1,277,160 managed pages give
    min_free_kbytes 11395, Normal min/low/high 1792/3069/4346 and DMA32
    1049/1797/2545 pages."""
    a = _allocator_with_managed(3840, 748_000, 1_277_160)
    min_free_kbytes = a.calculate_min_free_kbytes()
    assert min_free_kbytes == 11395 == int_sqrt(8_116_000 * 16)
    a.setup_per_zone_wmarks(min_free_kbytes, watermark_scale_factor=10)
    normal, dma32 = a.zones[2], a.zones[1]
    assert (normal.wmark_min, normal.wmark_low, normal.wmark_high) == (1792, 3069, 4346)
    assert (dma32.wmark_min, dma32.wmark_low, dma32.wmark_high) == (1049, 1797, 2545)


def test_min_free_kbytes_is_clamped() -> None:
    small = _allocator_with_managed(10, 10, 10)
    assert small.calculate_min_free_kbytes() == 128
    huge = _allocator_with_managed(3840, 748_000, 1 << 32)
    assert huge.calculate_min_free_kbytes() == 262144


def test_lowmem_reserve_and_totalreserve() -> None:
    """setup_per_zone_lowmem_reserve(): DMA keeps (DMA32+Normal)/256 against a
    Normal allocation; totalreserve adds each zone's largest reserve and high mark."""
    a = _allocator_with_managed(3840, 748_000, 1_277_160)
    a.setup_per_zone_wmarks(11395, 10)
    dma, dma32, normal = a.zones
    assert dma.lowmem_reserve == [0, 748_000 // 256, (748_000 + 1_277_160) // 256]
    assert dma32.lowmem_reserve == [0, 0, 1_277_160 // 256]
    assert normal.lowmem_reserve == [0, 0, 0]
    assert a.totalreserve_pages == sum(min(max(z.lowmem_reserve) + z.wmark_high, z.managed_pages) for z in a.zones)


def test_allocation_and_free_restore_the_free_lists() -> None:
    a = PageAllocator(1 * GiB)
    a.setup_per_zone_wmarks(a.calculate_min_free_kbytes(), 10)
    before = a.nr_free_pages
    pfns = a.alloc_pages(1000, mark="low")
    assert len(pfns) == 1000 and len(set(pfns.tolist())) == 1000
    assert a.nr_free_pages == before - 1000
    a.free_pages(pfns)
    assert a.nr_free_pages == before
    assert (a.alloc_pages(1000, mark="low") == pfns).all()


def test_allocation_stops_at_the_watermark() -> None:
    a = PageAllocator(1 * GiB)
    a.setup_per_zone_wmarks(a.calculate_min_free_kbytes(), 10)
    can = a.available_above("min")
    got = a.alloc_pages(can + 10_000, mark="min")
    assert len(got) == can
    assert all(not z.watermark_ok(z.wmark_min, a.highest_zoneidx) for z in a.zones)


def test_meminfo_totals_of_a_fresh_machine() -> None:
    """MemTotal is the managed pages: RAM less the firmware pages in ZONE_DMA, the
    struct page array (64 bytes a page) and the kernel image."""
    k = Kernel(24 * GiB, 0, Bus(default_registry()))
    nr = 24 * GiB // 4096
    assert k.alloc.totalram_pages == nr - 256 - nr * 64 // 4096 - (48 << 20) // 4096
