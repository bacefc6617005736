"""Swap: pages written to swap and read back (swap_out, swap_in).

Models mm/vmscan.c pageout() through mm/page_io.c swap_writepage() as the simulated
kernel reports it: an anonymous page's ptes become swap entries in every mm that
maps it (rmap_walk_anon(); anonymous entries live in the page tables), a shmem
page leaves its object's page cache for a slot (unmapped first, as try_to_unmap()
does) and the slot remembers the object and index (shmem_writepage()). A swap-in of
an anonymous page is folded by the page_fault that follows (its pte held the swap
entry); a shmem page comes back into its object's page cache. Simplified: no swap
cache (the simulated kernel has none).
"""

from __future__ import annotations

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT
from memtrace.tracer import EventBatch

from ._arrays import unique_in_order
from .model import K_NONE, LRU_NONE, swp_entry
from .provider import StateProvider, folds

__all__ = ["SwapProvider"]


class SwapProvider(StateProvider):
    """Folds swap-outs and swap-ins into the page tables, page arrays and swap slots."""

    def _grow_swap(self, slots: np.ndarray) -> None:
        """Make the swap slots cover ``slots`` (all below ``slot_limit``)."""
        st = self.state
        if len(slots):
            top = int(slots.max()) + 1
            if top > st.swap.nr_slots:
                st.swap.grow(min(max(top, st.swap.nr_slots * 5 // 4, st.swap_pages), st.slot_limit))

    @folds("swap_out", reads=("pfn", "slot", "ino", "index", "memcg_id"), pfns=("pfn",), slots=("slot",),
           touches="pages")
    def _swap_out(self, batch: EventBatch) -> None:
        st = self.state
        pg = st.pages
        pfn = batch.ints("pfn").astype(np.int64, copy=False)
        slot = batch.ints("slot").astype(np.int64, copy=False)
        ino = batch.ints("ino").astype(np.int64, copy=False)
        index = batch.ints("index").astype(np.int64, copy=False)
        st.grow_pages(pfn)
        self._grow_swap(slot)
        st.nr_page_events += batch.n
        ts = int(batch.ints("ts_ns")[-1])
        for memcg, n in zip(*np.unique(batch.ints("memcg_id"), return_counts=True)):
            st.history.swapped_out.append((ts, int(memcg), int(n)))
        anon = ino == 0
        if anon.any():
            # rmap_walk_anon(): the page sits at its virtual page in every mm that shares it.
            ap, vpn, entries = pfn[anon], index[anon], swp_entry(slot[anon])
            for proc in st.procs.values():
                for v in proc.vmas:
                    if v.shared:
                        continue
                    lo, hi = v.start >> PAGE_SHIFT, v.end >> PAGE_SHIFT
                    inside = np.flatnonzero((vpn >= lo) & (vpn < hi))
                    if not len(inside):
                        continue
                    pos = vpn[inside] - lo
                    hit = v.ptes[pos] == ap[inside]
                    if hit.any():
                        v.ptes[pos[hit]] = entries[inside[hit]]
        if (~anon).any():
            for x in unique_in_order(ino[~anon]).tolist():
                sel = ino == x
                mapped = sel & (pg.mapcount[pfn] > 0)
                if mapped.any():
                    st.rmap_walk_file(int(x), pfn[mapped])
            s = slot[~anon]
            st.swap.shmem[s] = True
            st.swap.ino[s] = ino[~anon]
            st.swap.index[s] = index[~anon]
        pg.kind[pfn] = K_NONE
        pg.mapcount[pfn] = 0
        pg.lru[pfn] = LRU_NONE

    @folds("swap_in", reads=("slot", "ino"), slots=("slot",), touches="pages")
    def _swap_in(self, batch: EventBatch) -> None:
        st = self.state
        ino = batch.ints("ino").astype(np.int64, copy=False)
        slot = batch.ints("slot").astype(np.int64, copy=False)
        self._grow_swap(slot)
        st.nr_page_events += batch.n
        shm = ino != 0
        if shm.any():
            st.swap.shmem[slot[shm]] = False
