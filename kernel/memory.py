"""Page faults and unmapping, over page ranges: mm/memory.c as of 6.13.

:func:`handle_mm_fault_range` is what a user access to every page of a range costs:
for each page it takes the path ``handle_pte_fault()`` would take
(``do_anonymous_page``, ``do_read_fault``, ``do_cow_fault``, ``do_shared_fault``,
``do_wp_page`` with ``wp_page_copy`` or ``wp_page_reuse``), vectorised over the
range with numpy. :func:`zap_vma_range` is ``zap_pte_range()``.

Simplified: one fault per page (no fault-around, no THP, no mTHP); the page_fault
event carries the outcome (major, pfn) because the simulator knows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.gfp import GFP_HIGHUSER_MOVABLE_ZERO
from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, filemap, swap, vmscan
from .errors import StepFault
from .mm_types import (
    MM_ANONPAGES,
    MM_FILEPAGES,
    MM_SHMEMPAGES,
    MM_SWAPENTS,
    PTE_NONE,
    PTE_ZERO,
    VM_LOCKED,
    ZERO_PFN,
    Task,
    VmArea,
)
from .page_alloc import PG_ANON, PG_DIRTY, PG_PINNED, PG_SWAPBACKED, PG_YOUNG
from .swapfile import is_swap_entry

if TYPE_CHECKING:
    from .kernel import Kernel

_KIND_CODE = {k: i for i, k in enumerate(tp.VMA_KINDS)}


def _map_file_pages(k: Kernel, mm_rss_member: int, task: Task, pfns: np.ndarray) -> None:
    """page_add_file_rmap(): one more mapping of each page; the first counts in
    NR_FILE_MAPPED; the mapper's RSS grows."""
    mapcount = k.mem_map.mapcount
    first = int(np.count_nonzero(mapcount[pfns] == 0))
    mapcount[pfns] += 1
    k.stat.nr_file_mapped += first
    mm = task.mm
    assert mm is not None
    k.add_rss(mm, mm_rss_member, len(pfns))


def _new_anon_pages(k: Kernel, task: Task, vma: VmArea, idx: np.ndarray) -> np.ndarray:
    """folio_prepare + folio_add_new_anon_rmap + lru add for new private pages."""
    pfns = k.alloc_pages(len(idx), "do_anonymous_page", GFP_HIGHUSER_MOVABLE_ZERO)
    owner = task.mm
    assert owner is not None
    mm = k.mem_map
    mm.flags[pfns] = PG_ANON | PG_SWAPBACKED
    mm.mapcount[pfns] = 1
    mm.mapping[pfns] = owner.id
    mm.index[pfns] = vma.anon_pgoff + idx
    k.lru_add(pfns)
    k.stat.nr_anon_mapped += len(pfns)
    k.add_rss(owner, MM_ANONPAGES, len(pfns))
    vma.anon_vma = True
    return pfns


def _alloc_page_tables(k: Kernel, task: Task, addrs: np.ndarray) -> None:
    """The page-table pages mapping ``addrs`` in ``task``'s mm needs (a user task's)."""
    mm = task.mm
    assert mm is not None
    k.alloc_page_tables(mm, addrs)


def _file_member(vma: VmArea) -> int:
    return MM_SHMEMPAGES if vma.inode is not None and vma.inode.shmem else MM_FILEPAGES


def _unmap_pages(k: Kernel, task: Task, pfns: np.ndarray) -> None:
    """page_remove_rmap() for present pages (pfn >= 0) leaving one mapping each:
    anon pages whose last mapping goes are freed; file and shmem pages stay cached."""
    if not len(pfns):
        return
    mem = k.mem_map
    anon = (mem.flags[pfns] & PG_ANON) != 0
    shmem = ~anon & ((mem.flags[pfns] & PG_SWAPBACKED) != 0)
    mm = task.mm
    assert mm is not None
    k.add_rss(mm, MM_ANONPAGES, -int(np.count_nonzero(anon)))
    k.add_rss(mm, MM_SHMEMPAGES, -int(np.count_nonzero(shmem)))
    k.add_rss(mm, MM_FILEPAGES, -int(np.count_nonzero(~anon & ~shmem)))
    mem.mapcount[pfns] -= 1
    gone = mem.mapcount[pfns] == 0
    anon_gone = pfns[anon & gone]
    k.stat.nr_anon_mapped -= len(anon_gone)
    k.stat.nr_file_mapped -= int(np.count_nonzero(~anon & gone))
    k.free_pages(anon_gone)


def handle_mm_fault_range(k: Kernel, task: Task, vma: VmArea, first: int, count: int, write: bool) -> int:
    """Access pages [first, first+count) of ``vma`` (page indices) for read or write.

    Returns the number of faults taken. A write to a mapping without PROT_WRITE is
    SIGSEGV; an access past the end of a file mapping's file is SIGBUS.
    """
    if count <= 0:
        return 0
    if write and not vma.writable:
        raise StepFault("SIGSEGV", f"write to read-only mapping {vma.handle!r}", fatal=True)
    inode = vma.inode
    if inode is not None and not inode.shmem:
        file_pages = inode.size_pages - vma.pgoff
        if first + count > file_pages:
            raise StepFault("SIGBUS", f"access past the end of {inode.path!r} through {vma.handle!r}", fatal=True)
    idx = np.arange(first, first + count, dtype=np.int64)
    # The pages this access works on are locked against reclaim meanwhile (the
    # folio lock / elevated refcount of the real fault path).
    pinned = _pin(k, vma, idx)
    try:
        nr = 0
        swapped = is_swap_entry(vma.ptes[idx])
        if swapped.any():
            nr += _swap_fault(k, task, vma, idx[swapped], write)
        ptes = vma.ptes[idx]
        pw = vma.pte_write[idx]
        if vma.shared:
            nr += _shared_fault(k, task, vma, idx, ptes, pw, write)
        else:
            nr += _private_fault(k, task, vma, idx, ptes, pw, write)
        # Every page accessed now has its pte young bit set; a write to a lazily
        # freed page (MADV_FREE) dirties its pte, so reclaim keeps the page.
        now = vma.ptes[idx]
        present = now[now >= 0]
        k.mem_map.flags[present] |= PG_YOUNG
        if write:
            lazy = present[(k.mem_map.flags[present] & (PG_ANON | PG_SWAPBACKED)) == PG_ANON]
            k.mem_map.flags[lazy] |= PG_DIRTY
        if vma.flags & VM_LOCKED:
            vmscan.mlock_pages(k, present)
    finally:
        k.mem_map.flags[pinned] &= ~np.uint16(PG_PINNED)
    if task.memcg is not None:
        task.memcg.pgfault += nr
    return nr


def _pin(k: Kernel, vma: VmArea, idx: np.ndarray) -> np.ndarray:
    ptes = vma.ptes[idx]
    pfns = [ptes[ptes >= 0]]
    if vma.inode is not None:
        findex = vma.pgoff + idx
        vma.inode.ensure_capacity(int(findex.max()) + 1)
        cached = vma.inode.pages[findex]
        pfns.append(cached[cached >= 0])
    out: np.ndarray = np.concatenate(pfns)
    out = out[(k.mem_map.flags[out] & PG_PINNED) == 0]
    k.mem_map.flags[out] |= PG_PINNED
    return out


def _swap_fault(k: Kernel, task: Task, vma: VmArea, idx: np.ndarray, write: bool) -> int:
    """do_swap_page() for every swap entry in the range: major faults."""
    n = len(idx)
    cost = np.full(n, costs.SWAP_READ_PAGE_NS + costs.ANON_FAULT_NS, dtype=np.int64)
    ts = k.event_times(cost)
    if write and not vma.writable:
        raise StepFault("SIGSEGV", f"write to read-only mapping {vma.handle!r}", fatal=True)
    pfns = swap.do_swap_page(k, task, vma, idx, write, ts)
    _emit_faults(k, vma, idx, write, np.ones(n, dtype=bool), pfns, ts)
    _alloc_page_tables(k, task, vma.start + idx * PAGE_SIZE)
    if task.memcg is not None:
        task.memcg.pgmajfault += n
    return n


def _emit_faults(k: Kernel, vma: VmArea, idx: np.ndarray, write: bool,
                 major: np.ndarray, pfns: np.ndarray, ts: np.ndarray) -> None:
    k.emit(
        tp.PAGE_FAULT,
        len(idx),
        ts_ns=ts,
        address=vma.start + idx * PAGE_SIZE,
        write=write,
        major=major,
        vma_kind=_KIND_CODE[vma.kind],
        pfn=np.where(pfns < 0, ZERO_PFN, pfns),
    )


def _private_fault(k: Kernel, task: Task, vma: VmArea, idx: np.ndarray, ptes: np.ndarray,
                   pw: np.ndarray, write: bool) -> int:
    inode = vma.inode
    mem = k.mem_map
    if not write:
        fault = ptes == PTE_NONE
        fidx = idx[fault]
        n = len(fidx)
        if n == 0:
            return 0
        if inode is None:
            # do_anonymous_page() read: map the shared zero page, allocate nothing.
            cost = np.full(n, costs.ZERO_PAGE_FAULT_NS, dtype=np.int64)
            ts = k.event_times(cost)
            vma.ptes[fidx] = PTE_ZERO
            _emit_faults(k, vma, fidx, False, np.zeros(n, bool), np.full(n, -1), ts)
            _alloc_page_tables(k, task, vma.start + fidx * PAGE_SIZE)
            return n
        # do_read_fault(): map the page-cache page read-only.
        findex = vma.pgoff + fidx
        missing = filemap.missing_pages(inode, findex)
        major = (missing & (not inode.shmem)) | filemap.swapped_pages(inode, findex)
        cost = np.where(major, costs.DISK_READ_PAGE_NS, 0) + np.where(
            missing & inode.shmem, costs.SHMEM_FAULT_NS, costs.FILE_MINOR_FAULT_NS)
        ts = k.event_times(cost.astype(np.int64))
        pfns_out = np.where(missing, -1, inode.pages[findex])
        _emit_faults(k, vma, fidx, False, major, pfns_out, ts)
        filemap.add_to_page_cache(k, inode, findex[missing], ts[missing])
        pfns = inode.pages[findex]
        _map_file_pages(k, _file_member(vma), task, pfns)
        vma.ptes[fidx] = pfns
        vma.pte_write[fidx] = False
        _alloc_page_tables(k, task, vma.start + fidx * PAGE_SIZE)
        return n

    # Write access to a private mapping.
    none = ptes == PTE_NONE
    zero = ptes == PTE_ZERO
    present = ptes >= 0
    wp = present & ~pw
    fault = none | zero | wp
    if not fault.any():
        return 0
    safe = np.where(present, ptes, 0)
    is_anon = present & ((mem.flags[safe] & PG_ANON) != 0)
    reuse = wp & is_anon & (mem.mapcount[safe] == 1)  # wp_page_reuse()
    copy = wp & ~reuse  # wp_page_copy() of a shared anon page or a file page
    file_cow = none & (inode is not None)  # do_cow_fault()
    fresh = none & (inode is None) | zero  # do_anonymous_page() / zero-page copy
    need_new = fresh | copy | file_cow

    fidx = idx[fault]
    n = len(fidx)
    major = np.zeros(len(idx), dtype=bool)
    missing = np.zeros(len(idx), dtype=bool)
    if inode is not None and file_cow.any():
        findex_all = vma.pgoff + idx
        missing[file_cow] = filemap.missing_pages(inode, findex_all[file_cow])
        major = missing.copy() if not inode.shmem else np.zeros(len(idx), dtype=bool)
        major[file_cow] |= filemap.swapped_pages(inode, findex_all[file_cow])
    cost = np.select(
        [reuse, copy | file_cow, fresh],
        [costs.WP_REUSE_FAULT_NS, costs.COW_FAULT_NS, costs.ANON_FAULT_NS],
        0,
    ) + np.where(major, costs.DISK_READ_PAGE_NS, 0) + np.where(missing & ~major, costs.SHMEM_FAULT_NS, 0)
    cost_f = cost[fault].astype(np.int64)
    ts_f = k.event_times(cost_f)
    ts_all = np.zeros(len(idx), dtype=np.int64)
    ts_all[fault] = ts_f

    # Sources of copies: file pages read in as needed (do_cow_fault reads the page).
    if inode is not None and file_cow.any():
        findex = vma.pgoff + idx[file_cow]
        filemap.add_to_page_cache(k, inode, findex[missing[file_cow]], ts_all[file_cow][missing[file_cow]])
        old_file = inode.pages[findex]
    else:
        old_file = np.empty(0, dtype=np.int32)

    new_idx = idx[need_new]
    new_pfns = _new_anon_pages(k, task, vma, new_idx)
    result = ptes.copy()
    result[need_new] = new_pfns
    _emit_faults(k, vma, fidx, True, major[fault], result[fault], ts_f)

    # COW events: copies of mapped pages (wp_page_copy) and of file pages (do_cow_fault).
    cow_mask = copy | file_cow
    if cow_mask.any():
        old = np.where(copy, safe, 0)
        old[file_cow] = old_file
        k.emit(
            tp.COW,
            int(np.count_nonzero(cow_mask)),
            ts_ns=ts_all[cow_mask],
            address=vma.start + idx[cow_mask] * PAGE_SIZE,
            old_pfn=old[cow_mask],
            new_pfn=result[cow_mask],
            vma_kind=_KIND_CODE[vma.kind],
        )
    # The copied-from mapped pages lose this mapping.
    _unmap_pages(k, task, safe[copy])
    vma.ptes[idx] = result
    vma.pte_write[idx[fault]] = True
    _alloc_page_tables(k, task, vma.start + new_idx * PAGE_SIZE)
    return n


def _shared_fault(k: Kernel, task: Task, vma: VmArea, idx: np.ndarray, ptes: np.ndarray,
                  pw: np.ndarray, write: bool) -> int:
    inode = vma.inode
    assert inode is not None
    none = ptes == PTE_NONE
    # Dirty-tracked shared file mappings map read-only and take a write-protect
    # fault on the first write (do_page_mkwrite); shmem maps writable at once.
    wp = (ptes >= 0) & ~pw & write & (not inode.shmem)
    fault = none | wp
    fidx = idx[fault]
    n = len(fidx)
    if n == 0:
        return 0
    findex = vma.pgoff + idx
    missing = np.zeros(len(idx), dtype=bool)
    missing[none] = filemap.missing_pages(inode, findex[none])
    major = missing & (not inode.shmem)
    major[none] |= filemap.swapped_pages(inode, findex[none])
    base = np.where(wp, costs.WP_REUSE_FAULT_NS, np.where(missing & inode.shmem, costs.SHMEM_FAULT_NS,
                                                          costs.FILE_MINOR_FAULT_NS))
    cost = (base + np.where(major, costs.DISK_READ_PAGE_NS, 0))[fault].astype(np.int64)
    ts_f = k.event_times(cost)
    ts_all = np.zeros(len(idx), dtype=np.int64)
    ts_all[fault] = ts_f
    new_ptes = ptes.copy()
    pfns_known = np.where(missing, -1, np.where(none, inode.pages[findex], ptes))
    _emit_faults(k, vma, fidx, write, major[fault], pfns_known[fault], ts_f)
    filemap.add_to_page_cache(k, inode, findex[missing], ts_all[missing])
    map_idx = none
    pfns = inode.pages[findex[map_idx]]
    _map_file_pages(k, _file_member(vma), task, pfns)
    new_ptes[map_idx] = pfns
    vma.ptes[idx] = new_ptes
    writable = vma.writable and (write or inode.shmem)
    if writable:
        vma.pte_write[fidx] = True
    if write:
        filemap.mark_dirty(k, inode, new_ptes[fault])
    _alloc_page_tables(k, task, vma.start + idx[map_idx] * PAGE_SIZE)
    return n


def zap_vma_range(k: Kernel, task: Task, vma: VmArea, first: int, count: int) -> int:
    """Models zap_pte_range() over pages [first, first+count) of ``vma``: every
    present entry is unmapped. Returns the number of present pages unmapped."""
    ptes = vma.ptes[first: first + count]
    present = ptes[ptes >= 0]
    if vma.flags & VM_LOCKED:
        vmscan.munlock_pages(k, present)
    entries = ptes[is_swap_entry(ptes)]
    if len(entries):
        swap.free_swap_entries(k, entries)
        mm = task.mm
        assert mm is not None
        k.add_rss(mm, MM_SWAPENTS, -len(entries))
    if vma.shared and vma.inode is not None and not vma.inode.shmem:
        # The pte dirty bit is folded into the page on unmap (set_page_dirty).
        writable = vma.pte_write[first: first + count][ptes >= 0]
        dirty_candidates = present[writable & ((k.mem_map.flags[present] & PG_DIRTY) == 0)]
        filemap.mark_dirty(k, vma.inode, dirty_candidates)
    _unmap_pages(k, task, present)
    k.advance(len(present) * costs.ZAP_PAGE_NS)
    vma.ptes[first: first + count] = PTE_NONE
    vma.pte_write[first: first + count] = False
    return len(present)
