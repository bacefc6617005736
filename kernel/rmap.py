"""Reverse mapping: find and remove every page-table entry of a page, mm/rmap.c 6.13.

As the kernel does, the walk goes straight to where a page can be mapped instead of
searching page tables: an anonymous page (rmap_walk_anon()) can only be mapped at
its own virtual address (its ``index``), in its mm or in mms forked from it; a file
or shmem page (rmap_walk_file()) only in VMAs of its inode, at
``index - vm_pgoff``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, PTE_NONE, MmStruct, VmArea
from .page_alloc import PG_ANON, PG_SWAPBACKED

if TYPE_CHECKING:
    from .kernel import Kernel


def _clear(k: Kernel, vma: VmArea, mm: MmStruct, pos: np.ndarray, new: np.ndarray | None) -> None:
    """Clear ptes ``pos`` of ``vma`` (or set them to swap entries ``new``)."""
    pfns = vma.ptes[pos]
    flags = k.mem_map.flags[pfns]
    anon = (flags & PG_ANON) != 0
    shmem = ~anon & ((flags & PG_SWAPBACKED) != 0)
    k.add_rss(mm, MM_ANONPAGES, -int(np.count_nonzero(anon)))
    k.add_rss(mm, MM_SHMEMPAGES, -int(np.count_nonzero(shmem)))
    k.add_rss(mm, MM_FILEPAGES, -int(np.count_nonzero(~anon & ~shmem)))
    if new is not None:
        k.add_rss(mm, MM_SWAPENTS, int(np.count_nonzero(new != PTE_NONE)))
        vma.ptes[pos] = new
    else:
        vma.ptes[pos] = PTE_NONE
    vma.pte_write[pos] = False


def try_to_unmap(k: Kernel, pfns: np.ndarray, swap_entries: np.ndarray | None = None) -> None:
    """Models try_to_unmap(): clear every pte mapping one of ``pfns``.

    Anonymous pages being swapped out leave their swap entry in each pte
    (``swap_entries[i]`` for ``pfns[i]``), which moves the mm's RSS from
    MM_ANONPAGES to MM_SWAPENTS; file and shmem pages leave an empty pte (they
    fault back in from their file). Mapcounts drop to zero and NR_ANON_MAPPED /
    NR_FILE_MAPPED lose the pages, which the caller then frees.
    """
    if not len(pfns):
        return
    mem = k.mem_map
    is_mapped = mem.mapcount[pfns] > 0
    mapped = pfns[is_mapped]
    if not len(mapped):
        return
    entries = swap_entries[is_mapped] if swap_entries is not None else None
    anon = (mem.flags[mapped] & PG_ANON) != 0
    if anon.any():
        _unmap_anon(k, mapped[anon], entries[anon] if entries is not None else None)
    if (~anon).any():
        _unmap_file(k, mapped[~anon])
    k.stat.nr_anon_mapped -= int(np.count_nonzero(anon))
    k.stat.nr_file_mapped -= int(np.count_nonzero(~anon))
    mem.mapcount[mapped] = 0


def _unmap_anon(k: Kernel, pfns: np.ndarray, entries: np.ndarray | None) -> None:
    """rmap_walk_anon(): each page sits at linear index ``index`` in any mm sharing
    it, at ``index - anon_pgoff`` of a private VMA (its virtual page unless an
    mremap() moved the VMA)."""
    vpn = k.mem_map.index[pfns]
    for task in k.tasks.values():
        mm = task.mm
        if mm is None or not mm.vmas:
            continue
        for vma in mm.vmas:
            if vma.shared:
                continue
            lo, hi = vma.anon_pgoff, vma.anon_pgoff + vma.nr_pages
            inside = (vpn >= lo) & (vpn < hi)
            if not inside.any():
                continue
            pos = vpn[inside] - lo
            hit = vma.ptes[pos] == pfns[inside]
            if hit.any():
                new = entries[inside][hit] if entries is not None else None
                _clear(k, vma, mm, pos[hit], new)


def _unmap_file(k: Kernel, pfns: np.ndarray) -> None:
    """rmap_walk_file(): each page sits at ``index - vm_pgoff`` in VMAs of its inode."""
    mem = k.mem_map
    inos = mem.mapping[pfns]
    index = mem.index[pfns]
    wanted = set(np.unique(inos).tolist())
    for task in k.tasks.values():
        mm = task.mm
        if mm is None:
            continue
        for vma in mm.vmas:
            if vma.inode is None or vma.inode.ino not in wanted:
                continue
            sel = inos == vma.inode.ino
            pos = index[sel] - vma.pgoff
            inside = (pos >= 0) & (pos < vma.nr_pages)
            pos = pos[inside]
            hit = vma.ptes[pos] == pfns[sel][inside]
            if hit.any():
                _clear(k, vma, mm, pos[hit], None)
