"""The data the state providers fold into: page frames, VMAs, processes, inodes,
readings and history, kept as the kernel keeps them (arrays, never one Python
object per page).

Plain data with the few properties that read it; how events change it is in the
providers (:mod:`.tasks`, :mod:`.vmas`, :mod:`.pages`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE
from memtrace.tracer.tasks import ROOT_MEMCG_ID, Task, TaskTable

__all__ = [
    "KIND_NAMES",
    "K_ANON",
    "K_FILE",
    "K_NONE",
    "K_SHMEM",
    "LRU_ACTIVE_ANON",
    "LRU_ACTIVE_FILE",
    "LRU_INACTIVE_ANON",
    "LRU_INACTIVE_FILE",
    "LRU_NONE",
    "LRU_UNEVICTABLE",
    "ORIGIN_NAMES",
    "O_COW_ANON",
    "O_COW_FILE",
    "O_COW_SHMEM",
    "O_NONE",
    "O_SWAPIN",
    "O_ZERO_FILL",
    "PRIVATE_KINDS",
    "PTE_NONE",
    "PTE_ZERO",
    "ROOT_MEMCG_ID",
    "SHARED_KINDS",
    "SWP_BASE",
    "UNNAMED",
    "ZERO_PFN",
    "History",
    "Inode",
    "PageArrays",
    "Process",
    "Reading",
    "SwapSlots",
    "VmArea",
    "swp_entry",
    "swp_offset",
]

#: What a page frame holds, as :attr:`PageArrays.kind` codes.
K_NONE, K_ANON, K_FILE, K_SHMEM = 0, 1, 2, 3
KIND_NAMES = ("none", "anon", "file", "shmem")

#: How an anonymous page came to be, as :attr:`PageArrays.origin` codes.
O_NONE, O_ZERO_FILL, O_COW_FILE, O_COW_ANON, O_COW_SHMEM, O_SWAPIN = 0, 1, 2, 3, 4, 5
ORIGIN_NAMES = ("unknown", "zero-fill", "cow-file", "cow-anon", "cow-shmem", "swap-in")

#: Page-table entry values other than a pfn (>= 0); swap entries are <= SWP_BASE.
PTE_NONE = -1
PTE_ZERO = -2
SWP_BASE = -3
#: The pfn a page_fault event reports for the zero page, or for a file page that is
#: not yet in the page cache (it is added right after the fault, by page_cache_add).
ZERO_PFN = 0

#: VMA kinds (tracepoints.VMA_KINDS) that map page-cache or shmem pages shared.
SHARED_KINDS = frozenset({"anon_shared", "file_shared", "shm"})
#: VMA kinds whose writes make private anonymous pages.
PRIVATE_KINDS = frozenset({"anon_private", "heap", "file_private"})

#: LRU list codes (tracepoints.LRU_LISTS order).
LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, LRU_UNEVICTABLE = range(5)
#: No LRU known.
LRU_NONE = 255

#: The comm of a process no task event named yet (events of its mm came first).
UNNAMED = "?"


def swp_entry(slots: np.ndarray) -> np.ndarray:
    """The pte value of swap ``slots``."""
    return (SWP_BASE - np.asarray(slots, dtype=np.int64)).astype(np.int32)


def swp_offset(entries: np.ndarray) -> np.ndarray:
    """The swap slots of pte values ``entries`` (which must be swap entries)."""
    return SWP_BASE - np.asarray(entries, dtype=np.int64)


@dataclass(eq=False)
class VmArea:
    """Models struct vm_area_struct as the events show it: [start, end) of one
    process, its kind, backing inode and page table (one int32 entry per page:
    a pfn, :data:`PTE_NONE`, :data:`PTE_ZERO` or a swap entry ``-(slot + 3)``)."""

    vid: int
    pid: int
    start: int
    end: int
    kind: str
    handle: str
    ino: int = 0
    path: str = ""
    prot: int = 0
    flags: int = 0
    #: the file offset of ``start``, in pages (vm_pgoff)
    pgoff: int = 0
    pgoff_known: bool = False
    anon_vma: bool = False
    #: vid of the parent's VMA this one was copied from by fork
    forked_from: int | None = None
    created_ns: int = 0
    alive: bool = True
    #: the page table: every page starts as PTE_NONE
    ptes: np.ndarray = field(init=False, repr=False)
    #: shared file mappings only: which entries are writable (took a write fault); the
    #: kernel folds their pte dirty bit into the page when they are zapped
    wrote: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.ptes = np.full(self.nr_pages, PTE_NONE, dtype=np.int32)
        if self.kind == "file_shared":
            self.wrote = np.zeros(self.nr_pages, dtype=bool)

    @property
    def nr_pages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT

    @property
    def length_bytes(self) -> int:
        return self.end - self.start

    @property
    def shared(self) -> bool:
        return self.kind in SHARED_KINDS

    @property
    def label(self) -> str:
        """How a person names the mapping: its handle, or its address range."""
        return self.handle or f"{self.start:#x}-{self.end:#x}"


class Process:
    """Models the parts of struct task_struct and struct mm_struct the events show.

    The task (comm, uid, oom_score_adj, parent, memory cgroup, start, exit, OOM
    victim) is the trace's row in :class:`~memtrace.tracer.tasks.TaskTable`, read
    through on every access (a pid reused by a new process reads the new row); the
    mm (VMAs, page-table regions, kmem:rss_stat counters) is folded here. Values the
    events never gave read as the kernel's defaults (uid 0, oom_score_adj 0, the root
    cgroup).
    """

    def __init__(self, pid: int, tasks: TaskTable) -> None:
        self.pid = pid
        self._tasks = tasks
        self.vmas: list[VmArea] = []
        #: page-table regions, as (shift << 48) | region (x86-64: see memtrace.analysis.state.pgtable)
        self.tables: set[int] = set()
        #: latest kmem:rss_stat values, bytes, by member name
        self.rss_bytes: dict[str, int] = {}
        #: a process the events show always has an mm (kernel threads have no events)
        self.has_mm = True

    def __repr__(self) -> str:
        return f"Process(pid={self.pid}, comm={self.comm!r}, vmas={len(self.vmas)}, alive={self.alive})"

    @property
    def task(self) -> Task | None:
        """This pid's row of the task table (None before any event named it)."""
        return self._tasks.get(self.pid)

    @property
    def comm(self) -> str:
        task = self.task
        return task.comm if task is not None else UNNAMED

    @property
    def uid(self) -> int:
        task = self.task
        return task.uid if task is not None and task.uid is not None else 0

    @property
    def oom_score_adj(self) -> int:
        task = self.task
        return task.oom_score_adj if task is not None and task.oom_score_adj is not None else 0

    @property
    def parent(self) -> int | None:
        task = self.task
        return task.parent if task is not None else None

    @property
    def memcg_id(self) -> int:
        task = self.task
        return task.memcg_id if task is not None else ROOT_MEMCG_ID

    @property
    def start_ns(self) -> int:
        """When the trace saw it start (0: before the trace, or not seen)."""
        task = self.task
        return task.start_ns if task is not None and task.start_ns is not None else 0

    @property
    def exit_ns(self) -> int | None:
        task = self.task
        return task.exit_ns if task is not None else None

    @property
    def exit_code(self) -> int | None:
        task = self.task
        return task.exit_code if task is not None else None

    @property
    def killed(self) -> bool:
        """Chosen by the OOM killer (an ``oom_kill`` event named it)."""
        task = self.task
        return task.oom_victim if task is not None else False

    @property
    def alive(self) -> bool:
        return self.exit_ns is None

    @property
    def name(self) -> str:
        return f"{self.comm} (pid {self.pid})"

    def vma_by_handle(self, handle: str) -> VmArea | None:
        for v in self.vmas:
            if v.handle == handle:
                return v
        return None

    @property
    def pgtables_pages(self) -> int:
        """Page-table pages of this mm, the PGD included, as the kernel counts
        PageTables (0 once the process has exited)."""
        return len(self.tables) + 1 if self.has_mm and self.alive else 0

    @property
    def mm_pgtables_bytes(self) -> int:
        """``mm_pgtables_bytes()``: the PTE, PMD and PUD table pages of this mm, in
        bytes, as VmPTE and oom_badness() read it. Unlike PageTables it leaves out
        the PGD, which pgd_alloc() does not charge to the mm."""
        return len(self.tables) * PAGE_SIZE if self.has_mm and self.alive else 0

    @property
    def total_vm_pages(self) -> int:
        return sum(v.nr_pages for v in self.vmas)


@dataclass(eq=False)
class Inode:
    """Models struct inode for what memory cares about: a file, tmpfs file, POSIX or
    SysV shared-memory object, or the unnamed shmem object of a shared anonymous
    mapping; its name, whether it still has one, and how many VMAs map it."""

    ino: int
    path: str = ""
    shmem: bool = False
    kind: str = "file"  # file, tmpfs, posix_shm, sysv, anon_shared
    name: str = ""
    unlinked: bool = False
    nr_vmas: int = 0
    evicted: bool = False
    size_bytes: int = 0
    last_open_created: bool = False
    creator_pid: int | None = None

    @property
    def display(self) -> str:
        if self.kind == "posix_shm":
            return f"POSIX shm {self.name or self.path}"
        if self.kind == "sysv":
            return f"SysV segment {self.name or self.path or self.ino}"
        if self.kind == "anon_shared":
            return "shared anonymous memory (/dev/zero)"
        return self.path or f"inode {self.ino}"


@dataclass(frozen=True)
class Reading:
    """One /proc/meminfo reading of the trace: a labelled ``snapshot`` or a periodic
    ``meminfo_sample``; ``meminfo`` maps /proc/meminfo names to bytes."""

    seq: int
    ts_ns: int
    label: str | None
    meminfo: dict[str, int]

    @property
    def source(self) -> str:
        return "snapshot" if self.label is not None else "meminfo_sample"

    @property
    def name(self) -> str:
        """``after-write``, or ``t=1.234s`` for a periodic sample."""
        return self.label if self.label is not None else f"t={self.ts_ns / 1e9:.3f}s"


class PageArrays:
    """Models the struct page array (mem_map) as far as events show it: parallel numpy
    arrays indexed by pfn."""

    def __init__(self, nr_pfns: int) -> None:
        self.nr_pfns = 0
        #: what the frame holds (K_*)
        self.kind = np.zeros(0, dtype=np.uint8)
        #: page_mapcount(): page-table entries mapping it
        self.mapcount = np.zeros(0, dtype=np.int32)
        #: page cache: the inode and the index in it; anonymous: 0 and the virtual page
        self.ino = np.zeros(0, dtype=np.int32)
        self.index = np.zeros(0, dtype=np.int64)
        #: how an anonymous page came to be (O_*)
        self.origin = np.zeros(0, dtype=np.uint8)
        #: the vid of the VMA whose fault made an anonymous page (-1: none)
        self.owner_vid = np.zeros(0, dtype=np.int32)
        #: the memory cgroup charged (its memcg id)
        self.memcg = np.zeros(0, dtype=np.uint16)
        #: the LRU list (LRU_*)
        self.lru = np.zeros(0, dtype=np.uint8)
        #: PG_dirty, as estimated (see the package docstring)
        self.dirty = np.zeros(0, dtype=bool)
        #: a page-cache page a private mapping's write copied
        self.cow_src = np.zeros(0, dtype=bool)
        self.grow(nr_pfns)

    def grow(self, nr_pfns: int) -> None:
        """Make room for pfns below ``nr_pfns`` (a trace whose header understates RAM)."""
        if nr_pfns <= self.nr_pfns:
            return
        fills = {"kind": K_NONE, "mapcount": 0, "ino": 0, "index": 0, "origin": O_NONE,
                 "owner_vid": -1, "memcg": 0, "lru": LRU_NONE, "dirty": False, "cow_src": False}
        for name, fill in fills.items():
            old = getattr(self, name)
            new = np.full(nr_pfns, fill, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        self.nr_pfns = nr_pfns


class SwapSlots:
    """Models the swap device's slots (swap_info_struct) for shmem pages: which
    slots hold a shmem page, of which object and at which index. Anonymous swap
    entries live in the page tables, as in the kernel."""

    def __init__(self) -> None:
        self.nr_slots = 0
        self.shmem = np.zeros(0, dtype=bool)
        self.ino = np.zeros(0, dtype=np.int32)
        self.index = np.zeros(0, dtype=np.int64)

    def grow(self, nr_slots: int) -> None:
        """Make room for slots below ``nr_slots`` (new slots hold nothing)."""
        if nr_slots <= self.nr_slots:
            return
        shmem = np.zeros(nr_slots, dtype=self.shmem.dtype)
        ino = np.zeros(nr_slots, dtype=self.ino.dtype)
        index = np.zeros(nr_slots, dtype=self.index.dtype)
        shmem[: self.nr_slots] = self.shmem
        ino[: self.nr_slots] = self.ino
        index[: self.nr_slots] = self.index
        self.shmem, self.ino, self.index = shmem, ino, index
        self.nr_slots = nr_slots


@dataclass
class History:
    """The small events of a trace, kept whole for reports: readings, OOM rows and
    kills, reclaim, refusals, per-process RSS over time. Each record is a dict of
    the event's fields (enums decoded), as ``EventBatch.records()`` gives them;
    which tracepoints are kept, each provider declares (``keep=True``)."""

    readings: list[Reading] = field(default_factory=list)
    #: kmem:rss_stat values: (ts_ns, pid, member, bytes)
    rss: list[tuple[int, int, str, int]] = field(default_factory=list)
    #: page cache dropped by reclaim and pages swapped out: (ts_ns of the batch's last event,
    #: memcg id, pages), one row per batch and memory cgroup
    cache_reclaimed: list[tuple[int, int, int]] = field(default_factory=list)
    swapped_out: list[tuple[int, int, int]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def of(self, name: str) -> list[dict[str, Any]]:
        return self.events.get(name, [])
