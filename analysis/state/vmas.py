"""VMAs: the address space of each process (mmap, munmap, brk, mremap, mprotect,
madvise, fork, exit).

Models mm/mmap.c do_mmap(), __do_munmap() and do_brk_flags(), mm/mremap.c
mremap_to()/vma_expand, mm/mprotect.c mprotect_fixup(), mm/madvise.c
madvise_dontneed_single_vma(), kernel/fork.c dup_mmap() and kernel/exit.c
exit_mmap() as :mod:`memtrace.kernel` implements them: a VMA is made with an empty
page table (one int32 entry per page), cut from the head or the tail, or split in
two, by a partial munmap (__split_vma(): a middle unmap leaves two VMAs with the
same handle), split where a partial mprotect changes the protection, grown,
shrunk or moved with its page table by mremap, copied by fork (with its page table
when it has an anon_vma, sharing every present page copy-on-write), and zapped on
munmap, MADV_DONTNEED and exit. A lazily freed page (MADV_FREE) stays mapped until
reclaim discards it (``lazyfree_discard``).

``mmap`` does not carry the file offset: a file VMA's ``pgoff`` is learnt from its
faults (:mod:`.pages`, :mod:`.pagecache`); a munmap of the head moves it as the
kernel does.

What this provider refuses to hold: a mapping reaching past the x86-64 user address
space (:data:`~memtrace.linux.limits.TASK_SIZE_MAX_4LEVEL`, 128 TiB with 4-level
paging), one at an address mmap would never return (not page aligned), or one whose
page table would take the live mappings past :data:`MAX_PTE_ENTRIES`; each is left
out with a warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX_4LEVEL
from memtrace.linux.version import PT_RECLAIM, parse_kernel_version
from memtrace.tracer import EventBatch
from memtrace.tracer.meta import meta_part

from ._arrays import page_align
from .model import PTE_NONE, Process, VmArea
from .pgtable import alloc_page_tables, free_pgtables, free_pte_tables
from .provider import StateProvider, folds

__all__ = ["MAX_PTE_ENTRIES", "VmaProvider"]

#: The most page-table entries (int32, one per page) the fold keeps for all live
#: mappings together: 512 GiB of mapped address space, 512 MiB of arrays. A mapping
#: that would go beyond is left out of the per-page state, with a warning.
MAX_PTE_ENTRIES = 1 << 27


class VmaProvider(StateProvider):
    """Folds the address-space events into each :class:`~.model.Process`'s VMAs."""

    # -- helpers

    def _new_vma(self, where: str, **kw: Any) -> VmArea | None:
        """A new VMA [start, end) with its page table, or None (and a warning naming
        ``where``, the event) when the range is impossible on x86-64 or its table would
        take the live VMAs past :data:`MAX_PTE_ENTRIES`."""
        st = self.state
        start, end = int(kw["start"]), int(kw["end"])
        if not 0 <= start <= end <= TASK_SIZE_MAX_4LEVEL:
            st.skip(f"range:{where.split(' ')[0]}",
                    f"{where}: a mapping of {end - start:,} bytes, [{start:#x}, {end:#x}), is outside the "
                    f"x86-64 user address space (which ends at {TASK_SIZE_MAX_4LEVEL:#x}): left out")
            return None
        nr_pages = (end - start) >> PAGE_SHIFT
        if not self._reserve_ptes(nr_pages, where):
            return None
        v = VmArea(vid=st.next_vid, **kw)
        st.next_vid += 1
        st.vmas[v.vid] = v
        return v

    def _reserve_ptes(self, nr_pages: int, where: str) -> bool:
        """Count ``nr_pages`` more page-table entries, if they fit in
        :data:`MAX_PTE_ENTRIES`; else warn naming ``where`` and return False."""
        st = self.state
        if st.pte_entries + nr_pages > MAX_PTE_ENTRIES:
            st.skip(f"ptes:{where.split(' ')[0]}",
                    f"{where}: {nr_pages:,} more pages would take the live mappings past the "
                    f"{MAX_PTE_ENTRIES:,} page-table entries the fold keeps: left out of the per-page state")
            return False
        st.pte_entries += nr_pages
        return True

    def _set_ptes(self, vma: VmArea, ptes: np.ndarray) -> None:
        """Replace ``vma``'s page table (a shrink), keeping the entry count."""
        self.state.pte_entries += len(ptes) - len(vma.ptes)
        vma.ptes = ptes

    def _split(self, proc: Process, v: VmArea, at: int) -> VmArea:
        """__split_vma(): ``v`` keeps [start, at); a new VMA, returned, takes [at, end)
        with the page-table entries beyond ``at`` (no entry is added or lost)."""
        st = self.state
        first = (at - v.start) >> PAGE_SHIFT
        tail = VmArea(vid=st.next_vid, pid=v.pid, start=at, end=v.end, kind=v.kind, handle=v.handle, ino=v.ino,
                      path=v.path, prot=v.prot, flags=v.flags, pgoff=v.pgoff + first, pgoff_known=v.pgoff_known,
                      anon_vma=v.anon_vma, forked_from=v.forked_from, created_ns=v.created_ns)
        st.next_vid += 1
        tail.ptes = v.ptes[first:].copy()
        v.ptes = v.ptes[:first].copy()
        if v.wrote is not None:
            tail.wrote = v.wrote[first:].copy()
            v.wrote = v.wrote[:first].copy()
        v.end = at
        st.vmas[tail.vid] = tail
        proc.vmas.insert(proc.vmas.index(v) + 1, tail)
        if v.ino:
            st.inode(v.ino).nr_vmas += 1
        return tail

    def _overlapping(self, proc: Process, handle: str, start: int, end: int) -> list[VmArea]:
        """The VMAs of ``proc`` that [start, end) overlaps, those named ``handle``
        first (a split mapping has several), in address order."""
        hits = [v for v in proc.vmas if v.start < end and v.end > start]
        named = [v for v in hits if v.handle == handle] if handle else []
        return sorted(named or hits, key=lambda v: v.start)

    def _remove_vma(self, proc: Process, vma: VmArea) -> None:
        """remove_vma() after unmap_vmas(): the pages lose their mappings, the page
        tables no other VMA needs go, and the backing inode loses a mapper."""
        st = self.state
        st.unmap_ptes(vma, slice(None))
        if vma.alive:
            st.pte_entries -= len(vma.ptes)
            st.vmas.pop(vma.vid, None)  # its arrays go once no pending fault holds it
        vma.alive = False
        if vma in proc.vmas:
            proc.vmas.remove(vma)
        free_pgtables(proc, vma.start, vma.end)
        if vma.ino:
            node = st.inode(vma.ino)
            node.nr_vmas = max(node.nr_vmas - 1, 0)
            st.iput_final(node)

    # -- events

    @folds("mmap", reads=("addr", "len_bytes", "prot", "flags", "vma_kind", "ino", "path", "handle", "ret"),
           keep=True)
    def _mmap(self, batch: EventBatch) -> None:
        st = self.state
        for r in batch.records():
            f = r.fields
            if f["ret"] != 0 or f["addr"] == 0:
                continue
            proc = st.proc(f["pid"])
            ino = int(f["ino"])
            kind = f["vma_kind"]
            addr = int(f["addr"])
            where = f"mmap (seq {f['seq']}, pid {proc.pid})"
            if addr % PAGE_SIZE:
                st.skip("align:mmap", f"{where}: address {addr:#x} is not page aligned (mmap returns "
                                      "page-aligned addresses): left out")
                continue
            # do_mmap() rounds the length up to whole pages.
            v = self._new_vma(where, pid=proc.pid, start=addr, end=addr + page_align(int(f["len_bytes"])),
                              kind=kind, handle=f["handle"], ino=ino, path=f["path"], prot=int(f["prot"]),
                              flags=int(f["flags"]), created_ns=int(f["ts_ns"]))
            if v is None:
                continue
            proc.vmas.append(v)
            if ino:
                node = st.inode(ino)
                node.nr_vmas += 1
                if f["path"] and not node.path:
                    node.path = f["path"]
                if kind == "anon_shared":
                    node.kind, node.shmem, node.unlinked = "anon_shared", True, True
                    node.creator_pid = proc.pid
                    node.size_bytes = int(f["len_bytes"])
                elif kind == "shm":
                    node.shmem = True

    @folds("munmap", reads=("addr", "len_bytes", "handle"), keep=True)
    def _munmap(self, batch: EventBatch) -> None:
        st = self.state
        for r in batch.records():
            f = r.fields
            proc = st.procs.get(f["pid"])
            if proc is None:
                continue
            start, length = int(f["addr"]), page_align(int(f["len_bytes"]))
            if start % PAGE_SIZE:  # __do_munmap(): EINVAL, nothing unmapped
                st.skip("align:munmap", f"munmap (seq {f['seq']}, pid {proc.pid}): address {start:#x} is not "
                                        "page aligned (the kernel refuses it): ignored")
                continue
            end = start + length
            for v in self._overlapping(proc, f["handle"], start, end):
                self._unmap_range(proc, v, start, end)
            free_pgtables(proc, start, end)

    def _unmap_range(self, proc: Process, v: VmArea, start: int, end: int) -> None:
        """The part of ``v`` in [start, end) goes: the whole VMA, its head, its tail,
        or its middle (split first, the rest of it kept as a VMA of its own)."""
        st = self.state
        if start <= v.start and end >= v.end:
            self._remove_vma(proc, v)
            return
        if start > v.start and end < v.end:  # the middle: split off the tail, then cut v's tail
            self._split(proc, v, end)
        count = (min(end, v.end) - max(start, v.start)) >> PAGE_SHIFT
        if start <= v.start:  # the head goes
            st.unmap_ptes(v, slice(0, count))
            self._set_ptes(v, v.ptes[count:].copy())
            if v.wrote is not None:
                v.wrote = v.wrote[count:].copy()
            v.start += count << PAGE_SHIFT
            v.pgoff += count
        else:  # the tail goes
            first = (start - v.start) >> PAGE_SHIFT
            st.unmap_ptes(v, slice(first, None))
            self._set_ptes(v, v.ptes[:first].copy())
            if v.wrote is not None:
                v.wrote = v.wrote[:first].copy()
            v.end = start

    @folds("brk", reads=("old_brk", "brk", "ret"), keep=True)
    def _brk(self, batch: EventBatch) -> None:
        st = self.state
        for r in batch.records():
            f = r.fields
            if f["ret"] != f["brk"]:
                continue  # refused: the break stays
            proc = st.proc(f["pid"])
            old_top = page_align(int(f["old_brk"]))
            new_top = page_align(int(f["ret"]))
            heap = proc.vma_by_handle("heap")
            where = f"brk (seq {f['seq']}, pid {proc.pid})"
            if new_top > TASK_SIZE_MAX_4LEVEL or old_top > TASK_SIZE_MAX_4LEVEL:
                st.skip("range:brk", f"{where}: a break at {max(new_top, old_top):#x} is outside the x86-64 "
                                     f"user address space (which ends at {TASK_SIZE_MAX_4LEVEL:#x}): left out")
                continue
            if new_top > old_top:
                if heap is None:
                    heap = self._new_vma(where, pid=proc.pid, start=old_top, end=new_top, kind="heap",
                                         handle="heap", prot=3, created_ns=int(f["ts_ns"]))
                    if heap is not None:
                        proc.vmas.append(heap)
                else:
                    grow = (new_top - heap.end) >> PAGE_SHIFT
                    if grow > 0 and self._reserve_ptes(grow, where):
                        heap.ptes = np.concatenate([heap.ptes, np.full(grow, PTE_NONE, dtype=np.int32)])
                        heap.end = new_top
            elif new_top < old_top and heap is not None and new_top < heap.end:
                if new_top <= heap.start:
                    self._remove_vma(proc, heap)
                else:
                    first = (new_top - heap.start) >> PAGE_SHIFT
                    st.unmap_ptes(heap, slice(first, None))
                    self._set_ptes(heap, heap.ptes[:first].copy())
                    heap.end = new_top
                    free_pgtables(proc, new_top, old_top)

    @folds("mprotect", reads=("addr", "len_bytes", "prot", "handle", "ret"), keep=True)
    def _mprotect(self, batch: EventBatch) -> None:
        """mprotect_fixup(): the range gets the new protection, its VMAs split at its
        ends when it covers part of one."""
        st = self.state
        for r in batch.records():
            f = r.fields
            proc = st.procs.get(f["pid"])
            if proc is None or f["ret"] != 0:
                continue
            start, end = int(f["addr"]), int(f["addr"]) + page_align(int(f["len_bytes"]))
            for v in self._overlapping(proc, f["handle"], start, end):
                if v.start < start:
                    v = self._split(proc, v, start)
                if v.end > end:
                    self._split(proc, v, end)
                v.prot = int(f["prot"])

    @folds("mremap", reads=("addr", "old_len_bytes", "new_len_bytes", "new_addr", "handle", "ret"), keep=True)
    def _mremap(self, batch: EventBatch) -> None:
        """mremap(): the mapping at ``addr`` grows or shrinks in place, or moves to
        ``new_addr`` with its page table (move_page_tables(): the pages keep their
        mappings, only their addresses change)."""
        st = self.state
        for r in batch.records():
            f = r.fields
            proc = st.procs.get(f["pid"])
            if proc is None or f["ret"] != 0 or not f["new_addr"]:
                continue
            addr, new_addr = int(f["addr"]), int(f["new_addr"])
            new_len = page_align(int(f["new_len_bytes"]))
            v = next((x for x in proc.vmas if x.start == addr and (x.handle == f["handle"] or not f["handle"])), None)
            if v is None:
                continue
            where = f"mremap (seq {f['seq']}, pid {proc.pid})"
            nr_new = new_len >> PAGE_SHIFT
            if new_addr == addr:
                if nr_new < v.nr_pages:
                    old_end = v.end
                    self._unmap_range(proc, v, addr + new_len, old_end)
                    free_pgtables(proc, addr + new_len, old_end)
                elif nr_new > v.nr_pages and self._reserve_ptes(nr_new - v.nr_pages, where):
                    grow = nr_new - v.nr_pages
                    v.ptes = np.concatenate([v.ptes, np.full(grow, PTE_NONE, dtype=np.int32)])
                    if v.wrote is not None:
                        v.wrote = np.concatenate([v.wrote, np.zeros(grow, dtype=bool)])
                    v.end = addr + new_len
                continue
            moved = self._new_vma(where, pid=proc.pid, start=new_addr, end=new_addr + new_len, kind=v.kind,
                                  handle=v.handle, ino=v.ino, path=v.path, prot=v.prot, flags=v.flags,
                                  pgoff=v.pgoff, pgoff_known=v.pgoff_known, anon_vma=v.anon_vma,
                                  forked_from=v.forked_from, created_ns=v.created_ns)
            if moved is None:
                continue
            keep = min(nr_new, v.nr_pages)
            if keep < v.nr_pages:  # shrinking while moving: the tail is unmapped first
                st.unmap_ptes(v, slice(keep, None))
            moved.ptes[:keep] = v.ptes[:keep]
            if v.wrote is not None and moved.wrote is not None:
                moved.wrote[:keep] = v.wrote[:keep]
            v.ptes[:] = PTE_NONE  # the entries moved: removing the old VMA unmaps nothing
            proc.vmas.append(moved)
            if v.ino:
                st.inode(v.ino).nr_vmas += 1
            self._remove_vma(proc, v)  # frees the old range's table pages
            touched = np.flatnonzero(moved.ptes != PTE_NONE).astype(np.uint64)
            alloc_page_tables(proc, np.uint64(new_addr) + (touched << np.uint64(PAGE_SHIFT)))

    @folds("madvise", reads=("addr", "len_bytes", "advice", "handle", "ret"), keep=True)
    def _madvise(self, batch: EventBatch) -> None:
        """MADV_DONTNEED zaps the range (zap_page_range_single(): anonymous pages are
        freed, file pages unmapped and kept in the page cache, swap entries dropped;
        from 6.14 the emptied PTE table pages go too, CONFIG_PT_RECLAIM). The other
        advice leaves the page tables as they are: MADV_FREE pages stay mapped until
        reclaim discards them (``lazyfree_discard``), MADV_COLD/PAGEOUT move pages by
        ``lru_move`` and ``swap_out`` events."""
        st = self.state
        pt_reclaim = self._version() >= PT_RECLAIM
        for r in batch.records():
            f = r.fields
            proc = st.procs.get(f["pid"])
            if proc is None or f["ret"] != 0 or f["advice"] != "dontneed":
                continue
            start, end = int(f["addr"]), int(f["addr"]) + page_align(int(f["len_bytes"]))
            for v in self._overlapping(proc, f["handle"], start, end):
                lo = (max(start, v.start) - v.start) >> PAGE_SHIFT
                hi = (min(end, v.end) - v.start) >> PAGE_SHIFT
                st.unmap_ptes(v, slice(lo, hi))
            if pt_reclaim:
                free_pte_tables(proc, start, end)

    @folds("lazyfree_discard", reads=("pfn", "owner"), pfns=("pfn",), touches="pages")
    def _lazyfree_discard(self, batch: EventBatch) -> None:
        """A lazily freed page reclaim discarded (try_to_unmap_one() of a clean
        MADV_FREE page): its mapping goes, and with it the page."""
        st = self.state
        owners = batch.ints("owner")
        pfns = batch.ints("pfn").astype(np.int64)
        for owner in np.unique(owners).tolist():
            proc = st.procs.get(int(owner))
            if proc is None:
                continue
            mine = pfns[owners == owner]
            for v in proc.vmas:
                hit = np.flatnonzero(np.isin(v.ptes, mine))
                if len(hit):
                    st.unmap_ptes(v, hit, zap=False)

    def _version(self) -> tuple[int, ...]:
        """The traced kernel's version (the header's), or the default."""
        text = meta_part(self.state.meta, "machine").get("kernel_version")
        try:
            return parse_kernel_version(str(text)) if text else (0,)
        except ValueError:
            return (0,)

    @folds("fork", keep=True)
    def _fork(self, batch: EventBatch) -> None:
        """dup_mmap(): every VMA is copied; page tables only of those with an anon_vma."""
        st = self.state
        pg = st.pages
        for seq, ts_ns, pid, child_pid in zip(batch.ints("seq").tolist(), batch.ints("ts_ns").tolist(),
                                              batch.ints("pid").tolist(), batch.ints("child_pid").tolist()):
            parent, child = st.proc(pid), st.proc(child_pid)
            where = f"fork (seq {seq}, pid {parent.pid})"
            for v in sorted(parent.vmas, key=lambda x: x.start):
                c = self._new_vma(where, pid=child.pid, start=v.start, end=v.end, kind=v.kind, handle=v.handle,
                                  ino=v.ino, path=v.path, prot=v.prot, flags=v.flags, pgoff=v.pgoff,
                                  pgoff_known=v.pgoff_known, anon_vma=v.anon_vma, forked_from=v.vid,
                                  created_ns=ts_ns)
                if c is None:
                    continue
                child.vmas.append(c)
                if v.ino:
                    st.inode(v.ino).nr_vmas += 1
                if v.anon_vma:
                    c.ptes = v.ptes.copy()
                    present = c.ptes[c.ptes >= 0]
                    pg.mapcount[present] += 1
                    touched = np.flatnonzero(c.ptes != PTE_NONE).astype(np.uint64)
                    alloc_page_tables(child, np.uint64(v.start) + (touched << np.uint64(PAGE_SHIFT)))

    @folds("exit", keep=True)
    @folds("exec", keep=True)
    def _exit(self, batch: EventBatch) -> None:
        """exit_mmap(): every VMA goes, with the page tables (at an exit, and at an
        exec, whose exec_mmap() drops the old mm for the new image's)."""
        st = self.state
        for pid in batch.ints("pid").tolist():
            proc = st.proc(pid)
            for v in list(proc.vmas):
                self._remove_vma(proc, v)
            proc.tables.clear()
