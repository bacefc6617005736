"""Page cache and files: which file page each frame caches, and the files themselves
(page_cache_add, page_cache_delete, file_open, unlink, shm, writeback).

Models mm/filemap.c __filemap_add_folio() and __filemap_remove_folio() (a page
leaving the cache is unmapped from every VMA first, as try_to_unmap() does),
fs/inode.c iput_final() (an unlinked inode no VMA maps goes, with its swap
entries), POSIX and SysV shared memory objects (shm_open, shmget, shm_unlink,
shmctl(IPC_RMID), ftruncate) and writeback.

What the events cannot tell, and is therefore estimated: ``page_cache_add`` does not
say whether read(2) or write(2) added a page, and a write to an already cached page
emits nothing, so the dirty bit is an estimate: pages added to a file its last
``file_open`` created, and pages written through a shared mapping, are dirty;
``writeback`` cleans a whole inode. Explain compares the estimate with
/proc/meminfo Dirty and says when they differ.
"""

from __future__ import annotations

import numpy as np

from memtrace.tracer import EventBatch

from ._arrays import unique_in_order
from .core import PendingFault
from .model import K_FILE, K_NONE, K_SHMEM, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, LRU_NONE, O_NONE
from .provider import StateProvider, folds

__all__ = ["PageCacheProvider"]


class PageCacheProvider(StateProvider):
    """Folds page-cache and file events into the page arrays and the inodes."""

    @folds("page_cache_add", reads=("pfn", "ino", "index", "shmem"), pfns=("pfn",), touches="pages")
    def _page_cache_add(self, batch: EventBatch) -> None:
        st = self.state
        pg = st.pages
        pfn = batch.ints("pfn").astype(np.int64, copy=False)
        st.grow_pages(pfn)
        st.nr_page_events += batch.n
        ino = batch.ints("ino").astype(np.int64, copy=False)
        index = batch.ints("index").astype(np.int64, copy=False)
        shmem = batch.ints("shmem").astype(bool, copy=False)
        pids = batch.ints("pid")
        pg.kind[pfn] = np.where(shmem, K_SHMEM, K_FILE)
        pg.mapcount[pfn] = 0
        pg.ino[pfn] = ino
        pg.index[pfn] = index
        pg.origin[pfn] = O_NONE
        pg.owner_vid[pfn] = -1
        pg.lru[pfn] = np.where(shmem, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE)
        pg.cow_src[pfn] = False
        upids, inv = np.unique(pids, return_inverse=True)
        pg.memcg[pfn] = np.array([st.memcg_of(int(p)) for p in upids.tolist()], dtype=np.uint16)[inv]
        # Dirty estimate: new pages of a file its last open created are being written.
        dirty = np.zeros(len(pfn), dtype=bool)
        for x in unique_in_order(ino).tolist():
            node = st.inode(int(x))
            sel = ino == x
            node.shmem = node.shmem or bool(shmem[sel][0])
            if node.last_open_created and not node.shmem:
                dirty |= sel
        keys = (ino << np.int64(32)) | index
        resolved = np.zeros(len(pfn), dtype=bool)
        if st.pending:
            self._resolve_pending(pfn, ino, index, keys, resolved)
        pg.dirty[pfn[dirty & ~resolved]] = True
        pg.dirty[pfn[~dirty & ~resolved]] = False

    def _resolve_pending(self, pfn: np.ndarray, ino: np.ndarray, index: np.ndarray, keys: np.ndarray,
                         resolved: np.ndarray) -> None:
        """Map the pages that faults waited for (see :class:`~.core.PendingFault`);
        ``resolved`` marks the events that did."""
        st = self.state
        pg = st.pages
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        keep = []
        for v, pk, pi, pw in st.pending:
            if not v.alive:
                continue
            if not v.pgoff_known:
                # The cache adds that follow a fault come in the faults' order: the
                # first page added for this inode shows the mapping's file offset.
                first = np.flatnonzero((ino == v.ino) & ~resolved)
                if len(first):
                    v.pgoff = int(index[first[0]]) - int(pi[0])
                    v.pgoff_known = True
                    pk = (np.int64(v.ino) << np.int64(32)) | (pi + v.pgoff).astype(np.int64)
            pos = np.searchsorted(sk, pk)
            pos_c = np.minimum(pos, len(sk) - 1)
            hit = (pos < len(sk)) & (sk[pos_c] == pk)
            if hit.any():
                j = order[pos_c[hit]]
                p = pfn[j]
                v.ptes[pi[hit]] = p
                pg.mapcount[p] += 1
                resolved[j] = True
                if v.kind == "file_shared":
                    pg.dirty[p[pw[hit]]] = True
                    if v.prot & 2 and v.wrote is not None:
                        v.wrote[pi[hit][pw[hit]]] = True
            if not hit.all():
                keep.append(PendingFault(v, pk[~hit], pi[~hit], pw[~hit]))
        st.pending = keep

    @folds("page_cache_delete", reads=("pfn", "ino", "reason"), pfns=("pfn",), touches="pages")
    def _page_cache_delete(self, batch: EventBatch) -> None:
        st = self.state
        pg = st.pages
        pfn = batch.ints("pfn").astype(np.int64, copy=False)
        st.grow_pages(pfn)
        st.nr_page_events += batch.n
        ino = batch.ints("ino").astype(np.int64, copy=False)
        why = batch.ints("reason")
        reasons = batch.tp.field("reason").values
        reclaim = why == reasons.index("reclaim") if "reclaim" in reasons else np.zeros(len(why), dtype=bool)
        if reclaim.any():
            ts = int(batch.ints("ts_ns")[-1])
            for memcg, n in zip(*np.unique(pg.memcg[pfn[reclaim]], return_counts=True)):
                st.history.cache_reclaimed.append((ts, int(memcg), int(n)))
        mapped = pg.mapcount[pfn] > 0
        if mapped.any():
            for x in unique_in_order(ino[mapped]).tolist():
                st.rmap_walk_file(int(x), pfn[mapped & (ino == x)])
        pg.kind[pfn] = K_NONE
        pg.mapcount[pfn] = 0
        pg.dirty[pfn] = False
        pg.lru[pfn] = LRU_NONE

    @folds("file_open", reads=("ino", "path", "shmem", "size_bytes", "created"), keep=True)
    def _file_open(self, batch: EventBatch) -> None:
        st = self.state
        for r in batch.records():
            f = r.fields
            node = st.inode(int(f["ino"]))
            node.path = f["path"]
            node.shmem = bool(f["shmem"])
            if node.kind not in ("posix_shm", "sysv", "anon_shared"):
                node.kind = "tmpfs" if node.shmem else "file"
            node.size_bytes = int(f["size_bytes"])
            node.last_open_created = bool(f["created"])
            node.unlinked = False
            if f["created"] and node.creator_pid is None:
                node.creator_pid = int(f["pid"])

    @folds("unlink", reads=("ino",), keep=True)
    def _unlink(self, batch: EventBatch) -> None:
        st = self.state
        for ino in batch.ints("ino").tolist():
            node = st.inode(ino)
            node.unlinked = True
            st.iput_final(node)

    @folds("shm", reads=("op", "ino", "name", "size_bytes"), keep=True)
    def _shm(self, batch: EventBatch) -> None:
        st = self.state
        for r in batch.records():
            f = r.fields
            ino = int(f["ino"])
            if not ino:
                continue
            node = st.inode(ino)
            op = f["op"]
            node.shmem = True
            if op == "shm_open":
                node.kind, node.name = "posix_shm", f["name"]
            elif op == "shmget":
                node.kind, node.name = "sysv", f["name"]
                node.size_bytes = int(f["size_bytes"])
                if node.creator_pid is None:
                    node.creator_pid = int(f["pid"])
            elif op in ("shm_unlink", "shmctl_rmid"):
                node.unlinked = True
                st.iput_final(node)
            elif op == "ftruncate":
                node.size_bytes = int(f["size_bytes"])

    @folds("writeback", reads=("ino",), keep=True)
    def _writeback(self, batch: EventBatch) -> None:
        """The flusher wrote an inode back: its pages are clean."""
        pg = self.state.pages
        dirty = np.flatnonzero(pg.dirty)
        if not len(dirty):
            return
        inos = np.unique(batch.ints("ino").astype(np.int64, copy=False))
        clean = dirty[np.isin(pg.ino[dirty], inos)]
        pg.dirty[clean] = False
