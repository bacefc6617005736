"""Swap-out and swap-in of anonymous and shmem pages: mm/vmscan.c pageout(),
mm/swap_state.c and mm/memory.c do_swap_page() as of 6.13, without the swap cache
(see swapfile.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, rmap, vmscan
from .mm_types import MM_ANONPAGES, MM_SWAPENTS, Task, VmArea
from .page_alloc import PG_ANON, PG_SWAPBACKED
from .swapfile import swp_entry, swp_offset

if TYPE_CHECKING:
    from .kernel import Kernel


def swap_out_pages(k: Kernel, pfns: np.ndarray) -> int:
    """Write anonymous and shmem pages to swap and free them; returns pages written.

    Anonymous pages leave a swap entry in every pte that mapped them (the slot's
    count is the number of such ptes); shmem pages leave it in their object's page
    cache slot and their ptes become empty. The caller made sure there is room.
    """
    if not len(pfns):
        return 0
    mem = k.mem_map
    flags = mem.flags[pfns]
    anon = pfns[(flags & PG_ANON) != 0]
    shmem = pfns[(flags & PG_ANON) == 0]
    slots_anon = k.swap.get_swap_pages(len(anon))
    slots_shmem = k.swap.get_swap_pages(len(shmem))
    if len(anon):
        # Each pte that maps the page will hold a reference to the slot.
        k.swap.swap_map[slots_anon] = np.maximum(mem.mapcount[anon], 1)
        k.swap.swap_memcg[slots_anon] = mem.memcg[anon]
        owners = np.array([k.mm_owner.get(int(m), 0) for m in mem.mapping[anon].tolist()], dtype=np.int32)
        k.emit(tp.SWAP_OUT, len(anon), pfn=anon, slot=slots_anon, owner=owners, ino=0,
               index=mem.index[anon], memcg_id=mem.memcg[anon])
        rmap.try_to_unmap(k, anon, swp_entry(slots_anon))
    if len(shmem):
        k.swap.swap_memcg[slots_shmem] = mem.memcg[shmem]
        inos = mem.mapping[shmem]
        index = mem.index[shmem]
        k.emit(tp.SWAP_OUT, len(shmem), pfn=shmem, slot=slots_shmem, owner=0, ino=inos, index=index,
               memcg_id=mem.memcg[shmem])
        rmap.try_to_unmap(k, shmem)
        for ino in np.unique(inos).tolist():
            sel = inos == ino
            inode = k.inodes[ino]
            inode.pages[index[sel]] = swp_entry(slots_shmem[sel])
        k.stat.nr_shmem -= len(shmem)
        k.stat.nr_file_pages -= len(shmem)
    k.memcgs.charge_swap(mem.memcg[pfns], +1)
    k.free_pages(pfns)
    k.advance(len(pfns) * costs.SWAP_WRITE_PAGE_NS)
    k.swap_outs += len(pfns)
    return len(pfns)


def free_swap_entries(k: Kernel, entries: np.ndarray) -> None:
    """Drop one reference per swap entry (zap, truncate, swap-in); slots that
    become free are uncharged from their cgroup's swap."""
    if not len(entries):
        return
    freed = k.swap.free(swp_offset(entries))
    k.memcgs.charge_swap(k.swap.swap_memcg[freed], -1)


def do_swap_page(k: Kernel, task: Task, vma: VmArea, idx: np.ndarray, write: bool, ts_ns: np.ndarray) -> np.ndarray:
    """Models do_swap_page() for the swap entries at page indices ``idx`` of a
    private mapping: read each page back into a new page (a major fault) and map it,
    writable when the access is a write. Returns the new pfns."""
    entries = vma.ptes[idx]
    slots = swp_offset(entries)
    mm = task.mm
    assert mm is not None
    pfns = k.alloc_pages(len(idx), "do_swap_page")
    mem = k.mem_map
    mem.flags[pfns] = PG_ANON | PG_SWAPBACKED
    mem.mapcount[pfns] = 1
    mem.mapping[pfns] = mm.id
    mem.index[pfns] = vma.anon_pgoff + idx
    k.lru_add(pfns)
    k.stat.nr_anon_mapped += len(pfns)
    vma.ptes[idx] = pfns
    vma.pte_write[idx] = write
    k.add_rss(mm, MM_ANONPAGES, len(pfns))
    k.add_rss(mm, MM_SWAPENTS, -len(pfns))
    k.emit(tp.SWAP_IN, len(pfns), ts_ns=ts_ns, address=vma.start + idx * PAGE_SIZE, slot=slots, pfn=pfns, ino=0)
    free_swap_entries(k, entries)
    k.workingset_refault_anon += len(pfns)
    vmscan.lru_note_cost(k, False, len(pfns), 0)
    k.swap_ins += len(pfns)
    return pfns
