"""``filemap:`` -> ``page_cache_add``, ``page_cache_delete`` (one event per page).

``mm_filemap_add_to_page_cache`` and ``mm_filemap_delete_from_page_cache`` print
``dev %d:%d ino %lx pfn=0x%lx ofs=%lu order=%u`` (4.19: ``page=%p pfn=%lu``): a folio
of ``1 << order`` pages becomes that many events. Whether the page was shmem is not
printed (false); a deletion's reason is reclaim when it happens in kswapd or inside
a reclaim of the task (:mod:`.vmscan`), else truncate (drop_caches cannot be told
apart).

For the derived workload, pages of a file on a block device (a major number other
than 0: not tmpfs, pipes or the block device's own inode) added in a task's context
are that task's reads (the dirtied ones, :mod:`.writeback`, its writes), and a
deletion in its context outside reclaim, of a file the trace wrote, its unlink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.limits import PAGE_SHIFT

from .fields import KTHREAD_PREFIXES, PARSE_ERRORS, UnreadableLine, c_ulong, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Filemap"]

#: page_cache_delete reasons (the schema's enum codes).
_TRUNCATE, _RECLAIM = 0, 2
#: The largest folio order read (larger orders are cut to it).
_MAX_FOLIO_ORDER = 10


def _cache_fields(payload: str) -> tuple[int, int, int, int]:
    """(ino, page index, pfn, order) of a filemap event."""
    # "dev 8:1 ino 1a2b pfn=0x1234 ofs=4096 order=0"; 4.19 "page=... pfn=%lu"
    words = payload.split()
    ino = c_ulong(int(words[words.index("ino") + 1], 16), "ino")
    f = kv_fields(payload)
    pfn_text = f.get("pfn", "0")
    pfn = c_ulong(int(pfn_text, 16) if pfn_text[:2] == "0x" else int(pfn_text), "pfn")
    index = c_ulong(int(f.get("ofs", "0")), "ofs") >> PAGE_SHIFT
    order = int(f.get("order", "0"))
    c_ulong(pfn + (1 << min(order, _MAX_FOLIO_ORDER)) - 1, "pfn")  # of the last page, which is written too
    return ino, index, pfn, order


class Filemap:
    """The ``filemap`` system: pages entering and leaving the page cache."""

    SYSTEM = "filemap"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        #: (ino, index) -> pages of the folio added there (what a dirtied folio spans)
        self.folios: dict[tuple[int, int], int] = {}
        #: inodes seen on a block device's file system (device major not 0): only
        #: their pages are the workload's files (not tmpfs, pipes, the block device's own)
        self.real: set[int] = set()

    def handlers(self) -> dict[str, Handler]:
        return {"mm_filemap_add_to_page_cache": self._add, "mm_filemap_delete_from_page_cache": self._delete}

    def _read(self, payload: str) -> tuple[int, int, int, int]:
        try:
            return _cache_fields(payload)
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e

    def _add(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        ino, index, pfn, order = self._read(payload)
        n = 1 << min(order, _MAX_FOLIO_ORDER)
        for i in range(n):
            self.out.emit("page_cache_add", ts, pid, ino, index + i, pfn + i, False)
        dev = _dev(payload)
        if dev is not None and not dev.startswith("0:"):
            self.real.add(ino)
        if ino in self.real and pid > 0 and not comm.startswith(KTHREAD_PREFIXES):
            self.folios[(ino, index)] = n
            p = self.work.proc(pid, comm, ts)
            self.work.tick(p, ts)
            self.work.file_pages(p, dev or "0:0", ino, index, n, dirtied=False)
        return True

    def _delete(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        ino, index, pfn, order = self._read(payload)
        in_reclaim = comm.startswith("kswapd") or self.b.vmscan.in_reclaim(pid)
        reason = _RECLAIM if in_reclaim else _TRUNCATE
        for i in range(1 << min(order, _MAX_FOLIO_ORDER)):
            self.out.emit("page_cache_delete", ts, pid, ino, index + i, pfn + i, False, reason)
        self.folios.pop((ino, index), None)
        if not in_reclaim and pid > 0 and ino in self.real and not comm.startswith(KTHREAD_PREFIXES):
            p = self.work.procs.get(pid)
            if p is not None:
                self.work.file_gone(p, ts, ino)
        return True

    def dirtied(self, comm: str, pid: int, ts: int, dev: str, ino: int, index: int) -> None:
        """A page-cache folio of ``ino`` at ``index`` dirtied in task ``pid``'s context
        (of a file whose pages the trace showed entering the page cache: the block
        device's own inode, the file system's metadata, is not one)."""
        if ino not in self.real or pid <= 0 or comm.startswith(KTHREAD_PREFIXES):
            return
        p = self.work.proc(pid, comm, ts)
        self.work.tick(p, ts)
        self.work.file_pages(p, dev, ino, index, self.folios.get((ino, index), 1), dirtied=True)


def _dev(payload: str) -> str | None:
    """The ``major:minor`` after ``dev`` in a filemap event's text."""
    words = payload.split()
    try:
        dev = words[words.index("dev") + 1]
    except (ValueError, IndexError):
        return None
    major, sep, minor = dev.partition(":")
    return dev if sep and major.isdigit() and minor.isdigit() else None
