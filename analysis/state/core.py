"""What the state providers share: the picture they fold into, and the operations
more than one of them needs (unmapping pages, evicting an inode, growing the page
arrays, counting what was left out).

:class:`FoldState` plays the part of lttng-analyses' automaton ``State``: one object
that every provider holds and changes; :class:`~.folder.StateFolder` feeds the
providers and :class:`~.view.MemoryState` reads it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT
from memtrace.tracer.meta import meta_int, meta_part, note, value_desc
from memtrace.tracer.tasks import ROOT_MEMCG_ID, TaskTable

from .model import K_FILE, PTE_NONE, UNNAMED, History, Inode, PageArrays, Process, SwapSlots, VmArea

__all__ = ["DEFAULT_TRACKED", "MAX_PROCS", "MAX_TRACKED", "FoldState", "PendingFault", "tracked"]

#: Page frames (swap slots) tracked when the header gives no RAM (swap): 64 GiB's worth.
DEFAULT_TRACKED = 1 << 24
#: The most page frames (swap slots) tracked whatever the header says: 1 TiB's worth
#: (about 27 bytes of page arrays per frame, 13 per slot).
MAX_TRACKED = 1 << 28
#: The most processes the fold keeps at once: 131,072 (a Process costs about 1.5 KB,
#: its task row and a ps row as much again: ~0.5 GB). A machine runs far fewer at
#: once; the exited are forgotten first (see FoldState.proc), so a long trace of
#: many short-lived processes stays whole. A crafted trace of 80 million process
#: starts in 1 MB made ps take 4.8 GB and 115 s with the task table's bound alone.
MAX_PROCS = 1 << 17


def tracked(header_pages: int) -> int:
    """How many page frames (swap slots) the fold tracks for a header giving
    ``header_pages`` of RAM (swap): twice that, at least DEFAULT_TRACKED, at most
    MAX_TRACKED (a header may understate RAM; no header says 8 EiB truthfully)."""
    return min(MAX_TRACKED, max(2 * header_pages, DEFAULT_TRACKED))


class PendingFault(NamedTuple):
    """Faults of one VMA on file pages not yet in the page cache when they fired: the
    page_cache_add events that follow resolve them (:mod:`.pagecache`).

    ``keys`` are (ino << 32) | file index, ``pos`` the positions of the faulting
    pages in the VMA's page table, ``write`` whether each fault was a write."""

    vma: VmArea
    keys: np.ndarray
    pos: np.ndarray
    write: np.ndarray


@dataclass
class _Skipped:
    """Events left out for one reason: the first one's message, and how many."""

    message: str
    count: int


class FoldState:
    """The folded picture, shared by the providers (see the package docstring).

    ``meta`` is the trace header's meta map: its ``machine.ram_bytes`` and
    ``swap_bytes`` size the page and swap-slot arrays when the first event naming a
    pfn or slot comes (:meth:`grow_pages`, and the swap provider's growth), up to
    :attr:`pfn_limit` and :attr:`slot_limit`.
    """

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        meta = dict(meta) if isinstance(meta, Mapping) else {}
        self.meta: dict[str, Any] = meta
        self.header_warnings: list[str] = []
        machine = meta_part(meta, "machine", self.header_warnings)
        source = meta.get("source")
        if source is not None and not isinstance(source, (str, Mapping)):
            note(self.header_warnings, f"trace header: meta.source is {value_desc(source)}, not a name or a map: "
                                       "ignored (the trace is taken as simulated)")
        #: RAM and swap the header gives, in pages (0: not given, or not believable)
        self.ram_pages = self._header_pages(machine, "ram_bytes")
        self.swap_pages = self._header_pages(machine, "swap_bytes")
        #: page frames (swap slots) at or above this are not tracked: events naming
        #: one are left out, with a warning
        self.pfn_limit = tracked(self.ram_pages)
        self.slot_limit = tracked(self.swap_pages)
        self.pages = PageArrays(0)
        self.swap = SwapSlots()
        #: the one pid -> task table (comm, uid, oom_score_adj, parent, memcg, life)
        self.tasks = TaskTable()
        #: pid -> process, at most MAX_PROCS of them (see :meth:`proc`)
        self.procs: dict[int, Process] = {}
        self._proc_pids: np.ndarray | None = None
        #: pids in exit order: the processes to forget first when procs is full
        self._exited: deque[int] = deque()
        #: the live VMAs, by vid; the page-table entries they hold (the vmas provider
        #: keeps them under MAX_PTE_ENTRIES), and the next vid
        self.vmas: dict[int, VmArea] = {}
        self.pte_entries = 0
        self.next_vid = 1
        self.inodes: dict[int, Inode] = {}
        #: memcg id -> cgroup path, and path -> memory.max (bytes)
        self.cgroups: dict[int, str] = {ROOT_MEMCG_ID: "/"}
        self.cgroup_limits: dict[str, int] = {}
        self.history = History()
        self.pending: list[PendingFault] = []
        self.last_seq = -1
        self.first_ts_ns: int | None = None
        self.last_ts_ns = 0
        #: events that name a page frame
        self.nr_page_events = 0
        #: page faults at an address no VMA of the process covers
        self.unattributed_faults = 0
        self._skipped: dict[str, _Skipped] = {}

    def _header_pages(self, machine: Mapping[str, Any], key: str) -> int:
        """``machine[key]`` (bytes) in pages; 0 when absent, not a number, negative
        or more than the fold tracks (with a warning for the last three)."""
        nr_bytes = meta_int(machine, key, "machine", self.header_warnings)
        if nr_bytes is None:
            return 0
        if not 0 <= nr_bytes >> PAGE_SHIFT <= MAX_TRACKED:
            note(self.header_warnings,
                 f"trace header: machine.{key} {nr_bytes:,} is outside 0..{MAX_TRACKED << PAGE_SHIFT:,} "
                 "(the most the fold tracks page by page): ignored")
            return 0
        return nr_bytes >> PAGE_SHIFT

    # -- what was left out

    @property
    def warnings(self) -> list[str]:
        """What the fold ignored or left out: header parts it could not read, and
        events with impossible values (one line per kind, with how many more)."""
        out = list(self.header_warnings)
        for s in self._skipped.values():
            out.append(s.message if s.count == 1 else f"{s.message} (and {s.count - 1:,} more like it)")
        return out

    def skip(self, key: str, message: str, count: int = 1) -> None:
        """Record that ``count`` events were left out; the first message of each
        ``key`` is kept."""
        entry = self._skipped.get(key)
        if entry is None:
            self._skipped[key] = _Skipped(message, count)
        else:
            entry.count += count

    # -- objects

    def proc(self, pid: int, comm: str = UNNAMED) -> Process:
        """The process ``pid``, made (with ``comm`` in the task table) on first sight.

        At most MAX_PROCS processes are kept: a crafted trace can start millions of
        pids (and a Process costs 1.5 KB). When full, the longest-exited process
        whose mappings are gone is forgotten to make room; when every one is live,
        a new pid gets a process that is not kept (its events fold into nothing),
        counted in a warning."""
        p = self.procs.get(pid)
        if p is None:
            p = Process(pid, self.tasks)
            if len(self.procs) >= MAX_PROCS and not self._forget_exited():
                self.skip("procs", f"more than {MAX_PROCS:,} live processes: the events of the others are "
                                   "left out")
                return p
            self.procs[pid] = p
            self._proc_pids = None
            self.tasks.task(pid, comm)
        return p

    def exited(self, pid: int) -> None:
        """Note that ``pid`` exited: the first to forget when :attr:`procs` is full.
        The queue is compacted when it outgrows the table (a pid started and ended
        millions of times)."""
        self._exited.append(pid)
        if len(self._exited) > 2 * len(self.procs) + 1024:
            procs = self.procs
            self._exited = deque(dict.fromkeys(q for q in self._exited if q in procs and not procs[q].alive))

    def _forget_exited(self) -> bool:
        """Forget the longest-exited process whose mappings are gone; False when none is."""
        while self._exited:
            pid = self._exited.popleft()
            p = self.procs.get(pid)
            if p is not None and not p.alive and not p.vmas:
                del self.procs[pid]
                self._proc_pids = None
                return True
        return False

    def known_pids(self, pids: np.ndarray) -> np.ndarray | None:
        """While :attr:`procs` is full of live processes: which of ``pids`` have a
        process (the others' events are left out, and counted); None while there is
        room. Vectorised, so that millions of new pids past the bound cost no Python
        work per event."""
        if len(self.procs) < MAX_PROCS or self._exited:
            return None
        if self._proc_pids is None:
            self._proc_pids = np.sort(np.fromiter(self.procs, dtype=np.int64, count=len(self.procs)))
        known = self._proc_pids
        at = np.minimum(np.searchsorted(known, pids), len(known) - 1)
        mask: np.ndarray = known[at] == pids
        if (dropped := int(len(mask) - np.count_nonzero(mask))):
            self.skip("procs", f"more than {MAX_PROCS:,} live processes: the events of the others are "
                               "left out", dropped)
        return mask

    def inode(self, ino: int) -> Inode:
        """The inode ``ino``, made on first sight."""
        node = self.inodes.get(ino)
        if node is None:
            node = self.inodes[ino] = Inode(ino=ino)
        return node

    def memcg_of(self, pid: int) -> int:
        """The memory cgroup of ``pid`` (the root when no event named it)."""
        task = self.tasks.get(pid)
        return task.memcg_id if task is not None else ROOT_MEMCG_ID

    def grow_pages(self, pfns: np.ndarray) -> None:
        """Make the page arrays cover ``pfns`` (all below :attr:`pfn_limit`)."""
        if len(pfns):
            top = int(pfns.max()) + 1
            if top > self.pages.nr_pfns:
                want = max(top, self.pages.nr_pfns * 5 // 4, self.ram_pages)
                self.pages.grow(min(want, self.pfn_limit))

    # -- operations several providers share

    def unmap_ptes(self, vma: VmArea, pos: np.ndarray | slice, zap: bool = True) -> None:
        """zap_pte_range() (``zap``) or try_to_unmap() on entries ``pos`` of ``vma``:
        present pages lose a mapping; a zapped writable entry of a shared file
        mapping makes its page dirty (set_page_dirty of the pte's dirty bit)."""
        pg = self.pages
        ptes = vma.ptes[pos]
        mask = ptes >= 0
        present = ptes[mask]
        if len(present):
            pg.mapcount[present] -= 1
            if zap and vma.wrote is not None:
                w = present[vma.wrote[pos][mask]]
                pg.dirty[w[pg.kind[w] == K_FILE]] = True
        if vma.wrote is not None:
            vma.wrote[pos] = False
        vma.ptes[pos] = PTE_NONE

    def rmap_walk_file(self, ino: int, pfns: np.ndarray) -> None:
        """rmap_walk_file() for try_to_unmap(): clear every pte of a VMA of ``ino``
        mapping one of ``pfns``."""
        for proc in self.procs.values():
            for v in proc.vmas:
                if v.ino != ino:
                    continue
                hit = np.flatnonzero(np.isin(v.ptes, pfns))
                if len(hit):
                    self.unmap_ptes(v, hit, zap=False)

    def iput_final(self, node: Inode) -> None:
        """iput_final(): an inode with no name and no mapping goes, with its swap
        entries (its cached pages leave by page_cache_delete events)."""
        if node.evicted or not node.unlinked or node.nr_vmas > 0:
            return
        node.evicted = True
        swap = self.swap
        if node.shmem and swap.nr_slots:
            gone = swap.shmem & (swap.ino == node.ino)
            swap.shmem[gone] = False
