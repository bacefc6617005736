"""The page cache: files, read(2)/write(2), dirty pages, writeback, drop_caches, unlink.

Models mm/filemap.c (``__filemap_add_folio``, ``filemap_read``,
``generic_perform_write``), mm/page-writeback.c (dirty accounting), fs/sync.c,
fs/drop_caches.c with mm/truncate.c (``invalidate_mapping_pages``,
``truncate_inode_pages``) and the inode lifetime of fs/inode.c (``iput_final``),
all as of 6.13. Shmem pages live in the same structure (mm/shmem.c keeps them in
the page cache of a shmem inode); what differs for them is in shmem.py.

Simplified: no readahead window (every missing page is read, one page of I/O each);
the block-device cache (Buffers) is not modelled; dentry/inode slab is a boot-time
pool, not per file. Writeback I/O and dirty throttling are page_writeback.py's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

# The mm files call each other as the kernel's do: these modules import this one
# back, and are used only once every module is loaded.
from . import costs, page_writeback, rmap, swap, vmscan
from .errors import StepFault
from .mm_types import Inode, Task
from .page_alloc import (
    PG_ACTIVE,
    PG_DIRTY,
    PG_LRU,
    PG_PINNED,
    PG_REFERENCED,
    PG_SWAPBACKED,
    PG_UNEVICTABLE,
    PG_WRITEBACK,
)
from .swapfile import SWP_BASE, swp_offset

if TYPE_CHECKING:
    from .kernel import Kernel

#: Mount points whose files are tmpfs (shmem).
TMPFS_MOUNTS = ("/dev/shm/", "/run/", "/tmp/")


def is_tmpfs_path(path: str) -> bool:
    return path.startswith(TMPFS_MOUNTS)


# ---------------------------------------------------------------------- inodes


def open_file(k: Kernel, path: str, create: bool) -> Inode:
    """Models do_filp_open(): look the path up, creating the file if asked.

    A file on a tmpfs mount is a shmem inode charging Committed_AS per page
    (VM_NORESERVE). Raises StepFault(ENOENT) for a missing file not created.
    """
    inode = k.namespace.get(path)
    created = False
    if inode is None:
        if not create:
            raise StepFault("ENOENT", f"no such file {path!r}")
        shmem = is_tmpfs_path(path)
        inode = k.new_inode(path, shmem=shmem, acct="blocks" if shmem else "")
        k.namespace[path] = inode
        created = True
    k.emit(tp.FILE_OPEN, path=path, ino=inode.ino, size_bytes=inode.size_bytes, shmem=inode.shmem, created=created)
    return inode


def unlink(k: Kernel, path: str) -> None:
    """Models vfs_unlink(): drop the name; the pages go when the last user does."""
    inode = k.namespace.pop(path, None)
    if inode is None:
        raise StepFault("ENOENT", f"no such file {path!r}")
    k.emit(tp.UNLINK, path=path, ino=inode.ino)
    inode.nlink = 0
    iput(k, inode)


def iput(k: Kernel, inode: Inode) -> None:
    """Models iput_final()/evict(): an inode with no name and no mapping is freed,
    its pages truncated and its Committed_AS charge returned."""
    if inode.evicted or inode.nlink > 0 or inode.i_mmap > 0:
        return
    truncate_inode_pages(k, inode, 0)
    if inode.charged_pages:
        k.vm_unacct_memory(inode.charged_pages)
        inode.charged_pages = 0
    inode.evicted = True
    del k.inodes[inode.ino]


# ---------------------------------------------------------------------- page cache


def add_to_page_cache(k: Kernel, inode: Inode, indices: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """Models __filemap_add_folio() for pages not yet cached: allocate, insert, put
    on the LRU, count in NR_FILE_PAGES (and NR_SHMEM), emit page_cache_add.

    Shmem inodes created VM_NORESERVE charge Committed_AS per page here
    (shmem_acct_blocks()); a refusal is ENOSPC. Shmem pages that were swapped out
    are read back from swap instead (shmem_swapin_folio(), already charged). A file
    page evicted recently enough is activated on refault (workingset_refault()).
    """
    n = len(indices)
    if n == 0:
        return np.empty(0, dtype=np.int32)
    old = inode.pages[indices]
    swapped = old <= SWP_BASE
    nr_new = n - int(np.count_nonzero(swapped))
    if inode.shmem and inode.acct == "blocks" and nr_new:
        owner = k.current.mm if k.current else None
        if not k.vm_enough_memory(owner, nr_new, cap_sys_admin=bool(k.current and k.current.uid == 0), op="shmem"):
            raise StepFault("ENOSPC", f"shmem charge of {nr_new} pages refused by overcommit policy", fatal=False)
        inode.charged_pages += nr_new
    try:
        pfns = k.alloc_pages(n, "page cache")
    except BaseException:
        if inode.shmem and inode.acct == "blocks" and nr_new:
            k.vm_unacct_memory(nr_new)
            inode.charged_pages -= nr_new
        raise
    mm = k.mem_map
    mm.flags[pfns] = ((PG_SWAPBACKED | PG_DIRTY) if inode.shmem else 0) | (
        PG_UNEVICTABLE if inode.unevictable else 0)
    mm.mapping[pfns] = inode.ino
    mm.index[pfns] = indices
    mm.mapcount[pfns] = 0
    inode.ensure_capacity(int(indices.max()) + 1)
    inode.pages[indices] = pfns
    k.lru_add(pfns)
    k.stat.nr_file_pages += n
    if inode.shmem:
        k.stat.nr_shmem += n
    k.emit(tp.PAGE_CACHE_ADD, n, ts_ns=ts_ns, ino=inode.ino, index=indices, pfn=pfns, shmem=inode.shmem)
    if swapped.any():
        entries = old[swapped]
        k.emit(tp.SWAP_IN, int(np.count_nonzero(swapped)), ts_ns=ts_ns[swapped], address=0,
               slot=swp_offset(entries), pfn=pfns[swapped], ino=inode.ino)
        swap.free_swap_entries(k, entries)
        k.workingset_refault_anon += len(entries)
        k.swap_ins += len(entries)
        k.advance(len(entries) * costs.SWAP_READ_PAGE_NS)
    if not inode.shmem:
        _workingset_refault(k, inode, indices, pfns)
    return pfns


def _workingset_refault(k: Kernel, inode: Inode, indices: np.ndarray, pfns: np.ndarray) -> None:
    """Models workingset_refault() for file pages: a page evicted less than a
    workingset ago (refault distance <= active file + anon lists when swap exists)
    comes back straight to the active list; every refault makes file reclaim
    costlier (lru_note_cost_refault())."""
    shadow = inode.shadow[indices]
    refault = shadow >= 0
    if not refault.any():
        return
    inode.shadow[indices] = -1
    nr = int(np.count_nonzero(refault))
    k.workingset_refault_file += nr
    st = k.stat
    workingset = st.nr_active_file
    if k.swap.nr_free > 0:
        workingset += st.nr_active_anon + st.nr_inactive_anon
    distance = k.nonresident_age - shadow[refault]
    hot = pfns[refault][distance <= workingset]
    vmscan.lru_note_cost(k, True, nr, 0)
    vmscan.activate_pages(k, hot, "refault")


def reclaim_file_pages(k: Kernel, pfns: np.ndarray) -> None:
    """Models the file half of shrink_folio_list(): unmap clean file pages from
    every process (try_to_unmap), leave a workingset shadow and drop them from the
    page cache (__remove_mapping())."""
    if not len(pfns):
        return
    rmap.try_to_unmap(k, pfns)
    mem = k.mem_map
    inos = mem.mapping[pfns]
    index = mem.index[pfns]
    for ino in np.unique(inos).tolist():
        sel = inos == ino
        inode = k.inodes[ino]
        idx = index[sel]
        inode.shadow[idx] = k.nonresident_age + np.arange(len(idx))
        k.nonresident_age += len(idx)
        delete_from_page_cache(k, inode, idx, "reclaim")


def missing_pages(inode: Inode, indices: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``indices`` are not in the page cache (holes, or shmem
    pages out on swap)."""
    inode.ensure_capacity(int(indices.max()) + 1 if len(indices) else 0)
    missing: np.ndarray = inode.pages[indices] < 0
    return missing


def swapped_pages(inode: Inode, indices: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``indices`` are shmem pages out on swap."""
    inode.ensure_capacity(int(indices.max()) + 1 if len(indices) else 0)
    swapped: np.ndarray = inode.pages[indices] <= SWP_BASE
    return swapped


def delete_from_page_cache(k: Kernel, inode: Inode, indices: np.ndarray, reason: str) -> None:
    """Models __filemap_remove_folio() plus freeing: pages leave the cache, their
    dirty/shmem accounting goes, they return to the allocator."""
    if not len(indices):
        return
    pfns = inode.pages[indices]
    flags = k.mem_map.flags[pfns]
    n = len(pfns)
    if inode.shmem:
        k.stat.nr_shmem -= n
    else:
        dirty = pfns[(flags & PG_DIRTY) != 0]
        k.stat.nr_file_dirty -= len(dirty)
        k.memcg_file_account(dirty, dirty=-1, writeback=0)
    k.stat.nr_file_pages -= n
    inode.pages[indices] = -1
    ts = k.event_times(np.full(n, costs.FREE_PAGE_NS, dtype=np.int64))
    k.emit(tp.PAGE_CACHE_DELETE, n, ts_ns=ts, ino=inode.ino, index=indices, pfn=pfns, shmem=inode.shmem, reason=reason)
    k.free_pages(pfns)


def truncate_inode_pages(k: Kernel, inode: Inode, from_index: int) -> None:
    """Models truncate_inode_pages(): drop every cached page from ``from_index`` on,
    dirty or not (their data is gone with the file), and every swap entry of a
    shmem object. Shmem block charges go too."""
    tail = inode.pages[from_index:]
    on_swap = np.flatnonzero(tail <= SWP_BASE) + from_index
    if len(on_swap):
        swap.free_swap_entries(k, inode.pages[on_swap])
        inode.pages[on_swap] = -1
        if inode.acct == "blocks":
            k.vm_unacct_memory(len(on_swap))
            inode.charged_pages -= len(on_swap)
    inode.shadow[from_index:] = -1
    cached = np.flatnonzero(inode.pages[from_index:] >= 0) + from_index
    if not len(cached):
        return
    # truncate_inode_pages_range() waits for pages under writeback.
    under_wb = inode.pages[cached][(k.mem_map.flags[inode.pages[cached]] & PG_WRITEBACK) != 0]
    if len(under_wb):
        page_writeback.folio_wait_writeback(k, under_wb)
    mapped = k.mem_map.mapcount[inode.pages[cached]] > 0
    if mapped.any():
        # A mapping still maps these pages: the kernel unmaps them first
        # (unmap_mapping_range); scenarios truncate only unmapped ranges.
        raise StepFault("EBUSY", f"truncating mapped pages of {inode.path or inode.ino!r} is not modelled")
    delete_from_page_cache(k, inode, cached, "truncate")
    if inode.shmem and inode.acct == "blocks":
        k.vm_unacct_memory(len(cached))
        inode.charged_pages -= len(cached)


def mark_dirty(k: Kernel, inode: Inode, pfns: np.ndarray) -> None:
    """Models folio_mark_dirty(): newly dirty pages count in NR_FILE_DIRTY, except
    shmem, whose mapping does no dirty accounting (noop_dirty_folio)."""
    flags = k.mem_map.flags
    clean = pfns[(flags[pfns] & PG_DIRTY) == 0]
    if not len(clean):
        return
    flags[clean] |= PG_DIRTY
    if not inode.shmem:
        k.stat.nr_file_dirty += len(clean)
        k.memcg_file_account(clean, dirty=+1, writeback=0)
        if inode.dirtied_when_ns < 0:
            inode.dirtied_when_ns = k.now_ns


def mark_page_accessed(k: Kernel, pfns: np.ndarray) -> None:
    """Models folio_mark_accessed(): the first access sets PG_referenced, the second
    moves an inactive evictable page to the active list."""
    if not len(pfns):
        return
    mm = k.mem_map
    flags = mm.flags[pfns]
    promote = ((flags & PG_REFERENCED) != 0) & ((flags & PG_ACTIVE) == 0) & (
        (flags & PG_LRU) != 0) & ((flags & PG_UNEVICTABLE) == 0)
    up = pfns[promote]
    if len(up):
        vmscan.activate_pages(k, up, "activate")
        mm.flags[up] &= ~np.uint16(PG_REFERENCED)
        k.nonresident_age += len(up)  # workingset_activation() ages the lruvec
    rest = pfns[~promote]
    mm.flags[rest] |= PG_REFERENCED


# ---------------------------------------------------------------------- syscalls


def _page_range(offset_bytes: int, length_bytes: int) -> np.ndarray:
    if length_bytes <= 0:
        return np.empty(0, dtype=np.int64)
    first = offset_bytes // PAGE_SIZE
    last = (offset_bytes + length_bytes - 1) // PAGE_SIZE
    return np.arange(first, last + 1, dtype=np.int64)


def _pin_cached(k: Kernel, inode: Inode, idx: np.ndarray) -> np.ndarray:
    """Lock the cached pages of ``idx`` against reclaim while a read or write works
    on them (the folio lock); returns what to unlock."""
    inode.ensure_capacity(int(idx.max()) + 1)
    pfns: np.ndarray = inode.pages[idx]
    pfns = pfns[pfns >= 0]
    pfns = pfns[(k.mem_map.flags[pfns] & PG_PINNED) == 0]
    k.mem_map.flags[pfns] |= PG_PINNED
    return pfns


def _unpin(k: Kernel, pfns: np.ndarray) -> None:
    k.mem_map.flags[pfns] &= ~np.uint16(PG_PINNED)


def file_read(k: Kernel, task: Task, inode: Inode, offset_bytes: int, length_bytes: int) -> None:
    """Models filemap_read(): copy a range to user space, reading missing pages
    from disk into the page cache (shmem holes read as zeroes, no page added).
    ``length_bytes`` 0 reads to end of file; reads stop at end of file."""
    end = inode.size_bytes if length_bytes == 0 else min(inode.size_bytes, offset_bytes + length_bytes)
    idx = _page_range(offset_bytes, end - offset_bytes)
    if not len(idx):
        return
    pinned = _pin_cached(k, inode, idx)
    try:
        _file_read(k, inode, idx)
    finally:
        _unpin(k, pinned)


def _file_read(k: Kernel, inode: Inode, idx: np.ndarray) -> None:
    missing = missing_pages(inode, idx)
    if inode.shmem:
        # shmem_file_read_iter(): holes read as the zero page, nothing is allocated;
        # pages out on swap are read back.
        swapped = swapped_pages(inode, idx)
        cost = np.where(swapped, costs.SWAP_READ_PAGE_NS, 0) + costs.COPY_PAGE_NS
        ts = k.event_times(cost.astype(np.int64))
        add_to_page_cache(k, inode, idx[swapped], ts[swapped])
        mark_page_accessed(k, inode.pages[idx[inode.pages[idx] >= 0]])
        return
    cost = np.where(missing, costs.DISK_READ_PAGE_NS + costs.COPY_PAGE_NS, costs.COPY_PAGE_NS).astype(np.int64)
    ts = k.event_times(cost)
    add_to_page_cache(k, inode, idx[missing], ts[missing])
    mark_page_accessed(k, inode.pages[idx])


def file_write(k: Kernel, task: Task, inode: Inode, offset_bytes: int, length_bytes: int) -> None:
    """Models generic_perform_write()/shmem_write_begin(): get each page (a partial
    page inside the old file size is read first), copy, mark dirty, grow i_size."""
    idx = _page_range(offset_bytes, length_bytes)
    if not len(idx):
        return
    pinned = _pin_cached(k, inode, idx)
    try:
        _file_write(k, inode, idx, offset_bytes, length_bytes)
    finally:
        _unpin(k, pinned)


def _file_write(k: Kernel, inode: Inode, idx: np.ndarray, offset_bytes: int, length_bytes: int) -> None:
    missing = missing_pages(inode, idx)
    old_size = inode.size_bytes
    end = offset_bytes + length_bytes
    # A page needs reading first when only part of it is written and it holds old data.
    partial = np.zeros(len(idx), dtype=bool)
    if not inode.shmem:
        first_partial = offset_bytes % PAGE_SIZE != 0
        last_partial = end % PAGE_SIZE != 0
        partial[0] |= first_partial
        partial[-1] |= last_partial
        partial &= idx * PAGE_SIZE < old_size
    cost = costs.COPY_PAGE_NS + np.where(missing & partial, costs.DISK_READ_PAGE_NS, 0)
    if inode.shmem:
        cost = cost + np.where(missing, costs.SHMEM_FAULT_NS - costs.COPY_PAGE_NS, 0)
    ts = k.event_times(cost.astype(np.int64))
    add_to_page_cache(k, inode, idx[missing], ts[missing])
    mark_dirty(k, inode, inode.pages[idx])
    inode.size_bytes = max(old_size, end)


def ftruncate(k: Kernel, inode: Inode, size_bytes: int) -> None:
    """Models do_truncate(): set i_size; pages past the new end are dropped."""
    if size_bytes < inode.size_bytes:
        truncate_inode_pages(k, inode, -(-size_bytes // PAGE_SIZE))
    inode.size_bytes = size_bytes


# ---------------------------------------------------------------------- writeback


def writeback_inode(k: Kernel, inode: Inode, reason: str) -> int:
    """Models writeback_single_inode() (WB_SYNC_NONE): every dirty page not already
    under writeback is submitted to the disk (page_writeback.py), and the inode is
    clean once none is left dirty. Returns pages submitted."""
    if inode.shmem or inode.evicted:
        return 0
    cached = inode.pages[inode.pages >= 0]
    flags = k.mem_map.flags
    dirty = cached[(flags[cached] & (PG_DIRTY | PG_WRITEBACK)) == PG_DIRTY]
    n = len(dirty)
    if n:
        k.emit(tp.WRITEBACK, ino=inode.ino, nr_pages=n, reason=reason)
        page_writeback.folio_start_writeback(k, dirty)
    if not np.count_nonzero(flags[cached] & PG_DIRTY):
        inode.dirtied_when_ns = -1
    return n


def sync(k: Kernel) -> int:
    """Models ksys_sync(): start writeback of every dirty inode, in inode order,
    then wait until the disk has written everything queued (sync_inodes_sb()).
    Returns pages submitted."""
    page_writeback.writeback_end_io(k)
    submitted = sum(writeback_inode(k, inode, "sync") for inode in list(k.inodes.values()))
    busy = k.wb_queue.busy_until_ns
    if busy > k.now_ns:
        k.advance(busy - k.now_ns)
    page_writeback.writeback_end_io(k)
    return submitted


def invalidate_mapping_pages(k: Kernel, inode: Inode) -> int:
    """Models invalidate_mapping_pages(): drop the cached pages that are clean, not
    under writeback and not mapped (mapping_evict_folio()). Shmem pages are always
    dirty, so they stay. Returns pages dropped."""
    cached = np.flatnonzero(inode.pages >= 0)
    if not len(cached):
        return 0
    pfns = inode.pages[cached]
    flags = k.mem_map.flags[pfns]
    evictable = ((flags & (PG_DIRTY | PG_WRITEBACK)) == 0) & (k.mem_map.mapcount[pfns] == 0)
    drop = cached[evictable]
    delete_from_page_cache(k, inode, drop, "drop_caches")
    return len(drop)


def drop_caches(k: Kernel, value: int) -> tuple[int, int]:
    """Models drop_caches_sysctl_handler(): bit 1 invalidates every inode's clean,
    unmapped page cache; bit 2 runs the slab shrinkers (here: the reclaimable boot
    slab of dentries and inodes). Returns (page-cache pages, slab pages) freed."""
    pages = 0
    slab = 0
    page_writeback.writeback_end_io(k)
    if value & 1:
        for inode in list(k.inodes.values()):
            pages += invalidate_mapping_pages(k, inode)
    if value & 2:
        slab = len(k.boot_slab_reclaimable)
        if slab:
            k.alloc.free_pages(k.boot_slab_reclaimable)
            k.boot_slab_reclaimable = k.boot_slab_reclaimable[:0]
            k.stat.nr_slab_reclaimable -= slab
    k.emit(tp.DROP_CACHES, value=value, nr_pages=pages, slab_pages=slab)
    return pages, slab
