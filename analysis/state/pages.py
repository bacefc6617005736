"""Pages: what each page frame holds and who maps it (page_fault, cow, lru_move).

Models the outcomes of mm/memory.c handle_pte_fault() as the simulated kernel
reports them: do_anonymous_page() (the zero page on a read, a new anonymous page on
a write), do_read_fault() and do_shared_fault() (map the page-cache page),
do_wp_page() / wp_page_copy() (a private copy; the shared page loses a mapping),
do_swap_page() (a new anonymous page where the pte held a swap entry); and the LRU
list each page is on. A fault on a file page not yet cached reports pfn 0 and waits
in :attr:`~.core.FoldState.pending` for the page_cache_add that follows
(:mod:`.pagecache`); a refused charge or an exit ends that wait.

Faults are folded per process and VMA as vectorised steps, each over a stretch of
events in which no page repeats, so that the result is that of the events in order.
"""

from __future__ import annotations

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT
from memtrace.tracer import EventBatch

from ._arrays import no_repeat_segments, unique_in_order
from .core import PendingFault
from .model import (
    K_ANON,
    K_FILE,
    K_NONE,
    K_SHMEM,
    LRU_INACTIVE_ANON,
    O_COW_ANON,
    O_COW_FILE,
    O_COW_SHMEM,
    O_SWAPIN,
    O_ZERO_FILL,
    PTE_ZERO,
    SWP_BASE,
    ZERO_PFN,
    Process,
    VmArea,
)
from .pgtable import alloc_page_tables
from .provider import StateProvider, folds

__all__ = ["PageProvider"]


class PageProvider(StateProvider):
    """Folds page faults, copy-on-write and LRU moves into the page arrays and the
    VMAs' page tables."""

    # -- helpers

    @staticmethod
    def _find_vmas(proc: Process, addr: np.ndarray) -> tuple[list[VmArea], np.ndarray]:
        """find_vma() per address: (VMAs sorted by start, index into them per address;
        -1 where none covers it)."""
        vmas = sorted(proc.vmas, key=lambda v: v.start)
        if not vmas:
            return vmas, np.full(len(addr), -1, dtype=np.int64)
        starts = np.array([v.start for v in vmas], dtype=np.uint64)
        ends = np.array([v.end for v in vmas], dtype=np.uint64)
        a = addr.astype(np.uint64)
        idx = np.searchsorted(starts, a, side="right").astype(np.int64) - 1
        ok = idx >= 0
        ok[ok] = a[ok] < ends[idx[ok]]
        idx[~ok] = -1
        return vmas, idx

    def _learn_pgoff(self, v: VmArea, i: np.ndarray, pfns: np.ndarray) -> None:
        """A file VMA's offset, from its first fault on a page already cached."""
        if v.pgoff_known or not v.ino or not len(pfns):
            return
        pg = self.state.pages
        ok = (pg.kind[pfns] != K_NONE) & (pg.ino[pfns] == v.ino)
        if ok.any():
            j = int(np.flatnonzero(ok)[0])
            v.pgoff = int(pg.index[pfns[j]]) - int(i[j])
            v.pgoff_known = True

    def _add_pending(self, v: VmArea, i: np.ndarray, write: np.ndarray) -> None:
        keys = (np.int64(v.ino) << np.int64(32)) | (i + v.pgoff).astype(np.int64)
        self.state.pending.append(PendingFault(v, keys, i.copy(), write.copy()))

    # -- events

    @folds("page_fault", reads=("address", "write", "pfn"), pfns=("pfn",), touches="pages")
    def _page_fault(self, batch: EventBatch) -> None:
        st = self.state
        pfn_all = batch.ints("pfn").astype(np.int64, copy=False)
        st.nr_page_events += int(np.count_nonzero(pfn_all))
        st.grow_pages(pfn_all)
        pids = batch.ints("pid")
        addr_all = batch.ints("address").astype(np.uint64, copy=False)
        write_all = batch.ints("write").astype(bool, copy=False)
        single = len(pids) == 1 or bool((pids[0] == pids).all())
        for pid in unique_in_order(pids):
            sel = None if single else np.flatnonzero(pids == pid)
            addr = addr_all if sel is None else addr_all[sel]
            write = write_all if sel is None else write_all[sel]
            pfn = pfn_all if sel is None else pfn_all[sel]
            proc = st.proc(int(pid))
            alloc_page_tables(proc, addr)
            vmas, vidx = self._find_vmas(proc, addr)
            missing = vidx < 0
            if missing.any():
                st.unattributed_faults += int(np.count_nonzero(missing))
            for vi in unique_in_order(vidx[~missing]):
                m = np.flatnonzero(vidx == vi)
                v = vmas[int(vi)]
                i = ((addr[m] - np.uint64(v.start)) >> np.uint64(PAGE_SHIFT)).astype(np.int64)
                for a, b in no_repeat_segments(i):
                    self._fault_vma(proc, v, i[a:b], write[m[a:b]], pfn[m[a:b]])

    def _fault_vma(self, proc: Process, v: VmArea, i: np.ndarray, write: np.ndarray, pfn: np.ndarray) -> None:
        """One VMA's faults, no page twice: mm/memory.c handle_pte_fault() outcomes."""
        pg = self.state.pages
        old = v.ptes[i].astype(np.int64)
        zero = pfn == ZERO_PFN
        if v.shared:
            # do_shared_fault() / do_page_mkwrite(): map the page-cache page; a page not
            # yet cached is reported as pfn 0 and added right after the fault.
            pend = zero
            if pend.any():
                self._add_pending(v, i[pend], write[pend])
            known = ~zero
            same = known & (old == pfn)
            new = known & ~same
            if new.any():
                p = pfn[new]
                self._learn_pgoff(v, i[new], p)
                v.ptes[i[new]] = p
                pg.mapcount[p] += 1
            if v.kind == "file_shared":
                d = pfn[known & write]
                pg.dirty[d] = True
                if v.prot & 2 and v.wrote is not None:
                    v.wrote[i[known & write]] = True
            return
        # Private mappings.
        rd = ~write
        if v.ino == 0:
            zr = rd & zero  # do_anonymous_page() read: the zero page
            v.ptes[i[zr]] = PTE_ZERO
        else:
            zr = rd & zero  # do_read_fault() of a page not yet cached
            if zr.any():
                self._add_pending(v, i[zr], write[zr])
        swapped = old <= SWP_BASE
        # Read faults on present file pages: map the page-cache page read-only.
        rmap = rd & ~zero & ~swapped
        if rmap.any():
            p = pfn[rmap]
            self._learn_pgoff(v, i[rmap], p)
            v.ptes[i[rmap]] = p
            pg.mapcount[p] += 1
        # New anonymous pages: write faults that did not reuse the page, and swap-ins.
        newanon = (write & (old != pfn)) | (rd & ~zero & swapped)
        if not newanon.any():
            return
        p = pfn[newanon]
        o = old[newanon]
        copied = o[o >= 0]
        if len(copied):  # wp_page_copy(): the shared page loses this mapping
            pg.mapcount[copied] -= 1
        pg.kind[p] = K_ANON
        pg.mapcount[p] = 1
        pg.origin[p] = np.where(o <= SWP_BASE, O_SWAPIN, O_ZERO_FILL)
        pg.owner_vid[p] = v.vid
        pg.index[p] = (v.start >> PAGE_SHIFT) + i[newanon]
        pg.ino[p] = 0
        pg.memcg[p] = proc.memcg_id
        pg.lru[p] = LRU_INACTIVE_ANON
        pg.dirty[p] = False
        pg.cow_src[p] = False
        v.ptes[i[newanon]] = p
        v.anon_vma = True

    @folds("cow", reads=("old_pfn", "new_pfn"), pfns=("old_pfn", "new_pfn"), touches="pages")
    def _cow(self, batch: EventBatch) -> None:
        """wp_page_copy(): the new page's origin is the kind of page it copies (the
        page_fault that follows maps it)."""
        st = self.state
        pg = st.pages
        old = batch.ints("old_pfn").astype(np.int64, copy=False)
        new = batch.ints("new_pfn").astype(np.int64, copy=False)
        st.grow_pages(np.concatenate([old, new]))
        st.nr_page_events += batch.n
        k = pg.kind[old]
        pg.origin[new] = np.select([k == K_FILE, k == K_SHMEM, k == K_ANON],
                                   [O_COW_FILE, O_COW_SHMEM, O_COW_ANON], O_ZERO_FILL)
        pg.cow_src[old[k != K_ANON]] = True

    @folds("lru_move", reads=("pfn", "to_lru"), pfns=("pfn",), touches="pages")
    def _lru_move(self, batch: EventBatch) -> None:
        st = self.state
        pfn = batch.ints("pfn").astype(np.int64, copy=False)
        st.grow_pages(pfn)
        to = batch.ints("to_lru").astype(np.uint8, copy=False)
        # The last move of a page wins.
        rev_pfn, first = np.unique(pfn[::-1], return_index=True)
        st.pages.lru[rev_pfn] = to[::-1][first]

    @folds("vm_enough_memory", keep=True)
    def _refused(self, batch: EventBatch) -> None:
        """A refused charge ends the operation: faults of the task still waiting for
        their page (a shmem page whose charge failed with ENOSPC) will get none."""
        pids = set(batch.ints("pid").tolist())
        self.state.pending = [p for p in self.state.pending if p.vma.pid not in pids]

    @folds("exit", keep=True)
    def _exit(self, batch: EventBatch) -> None:
        """Faults of VMAs the exit removed wait for nothing."""
        self.state.pending = [p for p in self.state.pending if p.vma.alive]
