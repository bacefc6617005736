"""/proc/meminfo and free(1): fs/proc/meminfo.c, mm/show_mem.c si_mem_available()
(6.13), kernel-mm-facts.md §6.1. All values in bytes; free(1)'s columns are
:func:`memtrace.linux.proc.free_columns`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.proc import FreeColumns, free_columns
from memtrace.tracer import tracepoints as tp
from memtrace.tracer.tracepoints import MEMINFO_FIELDS

from . import page_writeback

if TYPE_CHECKING:
    from .kernel import Kernel


def si_mem_available(k: Kernel) -> int:
    """Models si_mem_available() (6.13), in pages."""
    st = k.stat
    wmark_low = sum(z.wmark_low for z in k.alloc.zones)
    available = k.alloc.nr_free_pages - k.alloc.totalreserve_pages
    pagecache = st.nr_active_file + st.nr_inactive_file
    pagecache -= min(pagecache // 2, wmark_low)
    available += pagecache
    reclaimable = st.nr_slab_reclaimable  # + NR_KERNEL_MISC_RECLAIMABLE (none here)
    available += reclaimable - min(reclaimable // 2, wmark_low)
    return max(available, 0)


def meminfo(k: Kernel) -> dict[str, int]:
    """Models meminfo_proc_show(): the /proc/meminfo lines memtrace tracks, in bytes.

    Buffers is 0: block-device page cache is not modelled. Writeback that has
    completed by now is ended first (page_writeback.writeback_end_io()).
    """
    page_writeback.writeback_end_io(k)
    st = k.stat
    P = PAGE_SIZE
    buffers = 0
    cached = max(st.nr_file_pages - st.nr_swapcache - buffers, 0)
    values_pages = {
        "MemTotal": k.alloc.totalram_pages,
        "MemFree": k.alloc.nr_free_pages,
        "MemAvailable": si_mem_available(k),
        "Buffers": buffers,
        "Cached": cached,
        "SwapCached": st.nr_swapcache,
        "Active": st.nr_active_anon + st.nr_active_file,
        "Inactive": st.nr_inactive_anon + st.nr_inactive_file,
        "Active(anon)": st.nr_active_anon,
        "Inactive(anon)": st.nr_inactive_anon,
        "Active(file)": st.nr_active_file,
        "Inactive(file)": st.nr_inactive_file,
        "Unevictable": st.nr_unevictable,
        "Mlocked": st.nr_mlock,
        "SwapTotal": k.swap.nr_pages,
        "SwapFree": k.swap.nr_free,
        "Dirty": st.nr_file_dirty,
        "Writeback": st.nr_writeback,
        "AnonPages": st.nr_anon_mapped,
        "Mapped": st.nr_file_mapped,
        "Shmem": st.nr_shmem,
        "KReclaimable": st.nr_slab_reclaimable,
        "Slab": st.nr_slab_reclaimable + st.nr_slab_unreclaimable,
        "SReclaimable": st.nr_slab_reclaimable,
        "SUnreclaim": st.nr_slab_unreclaimable,
        "KernelStack": st.nr_kernel_stack_pages,
        "PageTables": st.nr_pagetable,
        "CommitLimit": k.commit_limit_pages(),
        "Committed_AS": k.committed_pages,
    }
    assert [m for m, _ in MEMINFO_FIELDS] == list(values_pages)
    return {name: pages * P for name, pages in values_pages.items()}


def meminfo_fields(mi: dict[str, int]) -> dict[str, int]:
    """/proc/meminfo lines (``meminfo()``) as the fields of a meminfo_sample or
    snapshot event."""
    return {f: mi[m] for m, f in MEMINFO_FIELDS}


def emit_meminfo_sample(k: Kernel) -> None:
    """A read of /proc/meminfo now, as a meminfo_sample event (the sampler's, and
    the Mem-Info part of an OOM report)."""
    k.emit(tp.MEMINFO_SAMPLE, **meminfo_fields(meminfo(k)))


__all__ = ["FreeColumns", "emit_meminfo_sample", "free_columns", "meminfo", "meminfo_fields", "si_mem_available"]
