"""madvise(2): mm/madvise.c as of 6.18 (read in 6.18.19), for the advice memtrace
models: MADV_DONTNEED, MADV_FREE, MADV_COLD, MADV_PAGEOUT and MADV_WILLNEED.

- MADV_DONTNEED zaps the range (madvise_dontneed_single_vma() ->
  zap_page_range_single_batched()): anonymous pages are freed and uncharged, the
  RSS drops, swap entries are freed; file and shmem pages are only unmapped (the
  page cache keeps them); the next touch faults again (a fresh zeroed page for
  anonymous memory). Since 6.14 (PT_RECLAIM) the PTE tables of every whole 2 MiB
  the range covered are freed too (zap_pte_range() with reclaim_pt).
- MADV_FREE (madvise_free_single_vma(), private anonymous mappings only: EINVAL
  for any other) makes each page lazily freed (folio_mark_lazyfree() ->
  lru_lazyfree()): clean, no longer swap-backed, on the inactive file list, still
  mapped and charged; swap entries in the range are dropped. Reclaim discards a
  lazily freed page without I/O, even without swap, unless it was written again
  (then it is anonymous again: vmscan.py).
- MADV_COLD deactivates the range's pages (madvise_cold_or_pageout_pte_range()
  -> folio_deactivate()), clearing their referenced and young bits.
- MADV_PAGEOUT reclaims them now (reclaim_pages() -> shrink_folio_list() ignoring
  references): anonymous pages go to swap if there is room, else stay (activated);
  lazily freed pages are discarded; clean page cache is dropped; dirty page cache
  is not written by this task (only kswapd writes): it is marked for immediate
  reclaim and freed once the flusher has written it.
- MADV_WILLNEED reads a file mapping's missing pages into the page cache
  (vfs_fadvise(POSIX_FADV_WILLNEED): readahead, nothing mapped) and a shmem
  mapping's swapped-out pages back (shmem_swapin_range()).

MADV_DONTNEED, MADV_FREE, MADV_COLD and MADV_PAGEOUT of a VM_LOCKED mapping are
EINVAL (madvise_dontneed_free_valid_vma(), can_madv_lru_vma()). A range over a hole
acts on what is mapped and returns ENOMEM.

Simplified: COLD, PAGEOUT and FREE act on pages mapped once only (the kernel skips
shared folios for COLD and PAGEOUT, and for FREE clears only exclusive dirty
folios: a page shared after fork is left as it is here); an anonymous page's swap
read-ahead of MADV_WILLNEED is not modelled (no swap cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.errors import EINVAL, ENOMEM
from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.version import PT_RECLAIM, parse_kernel_version
from memtrace.tracer import tracepoints as tp

from . import costs, filemap, memory, mmap, page_writeback, swap, vmscan
from .errors import StepFault
from .mm_types import MM_SWAPENTS, PTE_NONE, PTE_SHIFT, VM_LOCKED, Task, VmArea
from .page_alloc import PG_ANON, PG_DIRTY, PG_LRU, PG_REFERENCED, PG_SWAPBACKED, PG_YOUNG
from .swapfile import is_swap_entry

if TYPE_CHECKING:
    from .kernel import Kernel

_U16 = np.uint16


def _present(vma: VmArea, first: int, count: int) -> np.ndarray:
    ptes = vma.ptes[first: first + count]
    out: np.ndarray = ptes[ptes >= 0]
    return out


def _exclusive(k: Kernel, pfns: np.ndarray) -> np.ndarray:
    """Pages mapped by this one pte (folio_mapcount() == folio_nr_pages())."""
    out: np.ndarray = pfns[k.mem_map.mapcount[pfns] == 1]
    return out


def madvise_dontneed(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Zap pages [first, first+count) of ``vma``; on 6.14+ free the PTE tables of
    the whole 2 MiB regions the range covers. Returns present pages unmapped."""
    nr = memory.zap_vma_range(k, task, vma, first, count)
    if parse_kernel_version(k.kernel_version) >= PT_RECLAIM:
        mm = task.mm
        assert mm is not None
        start = vma.start + first * PAGE_SIZE
        end = start + count * PAGE_SIZE
        span = 1 << PTE_SHIFT
        freed = []
        for region in range(-(-start // span), end // span):
            pfn = mm.tables.pop((PTE_SHIFT, region), None)
            if pfn is not None:
                freed.append(pfn)
        if freed:
            k.free_pages(np.array(freed, dtype=np.int32))
            k.stat.nr_pagetable -= len(freed)
    return nr


def madvise_free(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Make the range's exclusively mapped anonymous pages lazily freed; drop its
    swap entries. Returns pages made lazyfree."""
    mm = task.mm
    assert mm is not None
    ptes = vma.ptes[first: first + count]
    entries = ptes[is_swap_entry(ptes)]
    if len(entries):
        # "just clear page table to prevent swap-in": the next touch gets a zero page.
        swap.free_swap_entries(k, entries)
        k.add_rss(mm, MM_SWAPENTS, -len(entries))
        vma.ptes[first: first + count] = np.where(is_swap_entry(ptes), PTE_NONE, ptes)
    mem = k.mem_map
    pfns = _exclusive(k, _present(vma, first, count))
    flags = mem.flags[pfns]
    pfns = pfns[((flags & (PG_ANON | PG_SWAPBACKED | PG_LRU)) == (PG_ANON | PG_SWAPBACKED | PG_LRU))]
    # clear_young_dirty_ptes(), folio_clear_dirty(), then lru_lazyfree().
    mem.flags[pfns] &= ~_U16(PG_YOUNG | PG_DIRTY | PG_REFERENCED)
    lists = vmscan.lru_of(mem.flags[pfns])
    mem.flags[pfns] &= ~_U16(PG_SWAPBACKED)
    for lru in (vmscan.INACTIVE_ANON, vmscan.ACTIVE_ANON):
        vmscan.move_pages(k, pfns[lists == lru], lru, vmscan.INACTIVE_FILE, "deactivate")
    return len(pfns)


def madvise_cold(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Deactivate the range's exclusively mapped pages (folio_deactivate()), their
    referenced and young bits cleared. Returns pages looked at."""
    mem = k.mem_map
    pfns = _exclusive(k, _present(vma, first, count))
    pfns = pfns[(mem.flags[pfns] & PG_LRU) != 0]
    mem.flags[pfns] &= ~_U16(PG_YOUNG | PG_REFERENCED)
    vmscan.deactivate_pages(k, pfns)
    return len(pfns)


def madvise_pageout(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Reclaim the range's exclusively mapped pages now (reclaim_pages()). Returns
    pages reclaimed."""
    mem = k.mem_map
    pfns = _exclusive(k, _present(vma, first, count))
    pfns = pfns[(mem.flags[pfns] & PG_LRU) != 0]
    mem.flags[pfns] &= ~_U16(PG_YOUNG | PG_REFERENCED)
    return vmscan.reclaim_pages(k, pfns)


def madvise_willneed(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Read the range of a file mapping into the page cache (readahead, nothing
    mapped), or a shmem mapping's swapped-out pages back. Returns pages read."""
    inode = vma.inode
    if inode is None:
        return 0  # anonymous: swap read-ahead into the swap cache, not modelled
    findex = vma.pgoff + np.arange(first, first + count, dtype=np.int64)
    if inode.shmem:
        findex = findex[filemap.swapped_pages(inode, findex)]
    else:
        findex = findex[findex < inode.size_pages]
        findex = findex[filemap.missing_pages(inode, findex)]
    if not len(findex):
        return 0
    cost = np.full(len(findex), costs.SWAP_READ_PAGE_NS if inode.shmem else costs.DISK_READ_PAGE_NS,
                   dtype=np.int64)
    ts = k.event_times(cost)
    filemap.add_to_page_cache(k, inode, findex, ts)
    return len(findex)


_ADVICE = {
    "dontneed": madvise_dontneed,
    "free": madvise_free,
    "cold": madvise_cold,
    "pageout": madvise_pageout,
    "willneed": madvise_willneed,
}


def do_madvise(k: Kernel, task: Task, handle: str, offset_bytes: int, length_bytes: int, advice: str) -> None:
    """Models do_madvise() on a range of the mapping named ``handle`` (offset from
    its lowest address; length 0: to its end). Emits madvise with the pages acted
    on; raises StepFault(EINVAL) for advice the mapping does not take (nothing is
    done), StepFault(ENOMEM) when the range covers a hole (after acting on what is
    mapped), as the syscall returns."""
    k.advance(costs.SYSCALL_NS)
    start, length, parts, hole = mmap.handle_range(task, handle, offset_bytes, length_bytes, "ENOMEM")
    page_writeback.writeback_end_io(k)

    def event(nr: int, ret: int) -> None:
        k.emit(tp.MADVISE, addr=start, len_bytes=length, advice=advice, handle=handle, nr_pages=nr, ret=ret)

    for part in parts:
        vma = part.vma
        if advice != "willneed" and vma.flags & VM_LOCKED:
            event(0, EINVAL)
            raise StepFault("EINVAL", f"madvise({advice}) of locked mapping {handle!r}", fatal=False)
        if advice == "free" and (vma.inode is not None or vma.shared):
            event(0, EINVAL)
            raise StepFault("EINVAL", f"madvise(free) of {vma.kind} mapping {handle!r}: only private "
                                      "anonymous memory takes MADV_FREE", fatal=False)
    nr = 0
    for vma, first, count in parts:
        nr += _ADVICE[advice](k, task, vma, first, count)
    k.flush_rss()
    if hole:
        event(nr, ENOMEM)
        raise StepFault("ENOMEM", f"madvise({advice}) range of {handle!r} covers unmapped addresses", fatal=False)
    event(nr, 0)


__all__ = ["do_madvise", "madvise_cold", "madvise_dontneed", "madvise_free", "madvise_pageout", "madvise_willneed"]
