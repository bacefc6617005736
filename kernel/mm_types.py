"""Process address spaces and files: vm_area_struct, mm_struct, task_struct, inode.

Models include/linux/mm_types.h, include/linux/sched.h and include/linux/fs.h as far
as memory accounting needs them. Page tables are one numpy array per VMA (one entry
per page), not a radix tree; which page-table pages exist is tracked per 2 MiB
(PTE table), 1 GiB (PMD table) and 512 GiB (PUD table) region, as x86-64 4-level
paging allocates them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from .engine import Signal
    from .memcontrol import MemCgroup

# vm_flags (include/linux/mm.h).
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYWRITE = 0x20
VM_LOCKED = 0x2000
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000

# mmap(2) flags and prot bits (include/uapi/asm-generic/mman*.h).
PROT_READ, PROT_WRITE, PROT_EXEC = 0x1, 0x2, 0x4
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x1, 0x2, 0x20
MAP_LOCKED, MAP_NORESERVE = 0x2000, 0x4000

#: Page-table entry values other than a pfn (>= 0).
PTE_NONE = -1
PTE_ZERO = -2  # the shared zero page: a read of untouched private anonymous memory
ZERO_PFN = 0  # reported pfn of the zero page (a reserved frame)

PTE_SHIFT, PMD_SHIFT, PUD_SHIFT = 21, 30, 39  # regions covered by one table page

#: RSS counters (include/linux/mm_types_task.h): indices into MmStruct.rss.
MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES = range(4)

#: x86-64 user layout without ASLR (as under `setarch -R`): top-down mmap base and
#: the start of the brk heap.
MMAP_BASE = 0x7FFF_C000_0000
START_BRK = 0x5555_5555_9000
MMAP_MIN_ADDR = 0x10000
THP_ALIGN_BYTES = 2 << 20

#: THREAD_SIZE on x86-64: 16 KiB of kernel stack per task.
THREAD_SIZE_PAGES = 4


def prot_bits(prot: str) -> int:
    """PROT_* bits from a ``"rwx"`` string."""
    return (PROT_READ if "r" in prot else 0) | (PROT_WRITE if "w" in prot else 0) | (
        PROT_EXEC if "x" in prot else 0
    )


@dataclass(eq=False)
class Inode:
    """Models struct inode with its struct address_space (i_mapping).

    ``pages`` holds the pfn cached at each page index (-1: not cached); it grows
    with the file. ``acct`` is how a shmem object charges Committed_AS:
    ``"blocks"`` per page as allocated (tmpfs files, created VM_NORESERVE) or
    ``"size"`` for the whole object up front (shared anon, SysV), see
    mm/shmem.c:shmem_acct_size()/shmem_acct_blocks().
    """

    ino: int
    path: str
    shmem: bool
    size_bytes: int = 0
    pages: np.ndarray = field(default_factory=lambda: np.full(0, -1, dtype=np.int32), repr=False)
    nlink: int = 1
    i_mmap: int = 0  # VMAs mapping the file (i_mmap tree size)
    acct: str = ""
    charged_pages: int = 0
    #: workingset shadow per page index: the nonresident age at eviction (-1: none)
    shadow: np.ndarray = field(default_factory=lambda: np.full(0, -1, dtype=np.int64), repr=False)
    dirtied_when_ns: int = -1  # when the inode first went dirty (-1: clean)
    unevictable: bool = False  # AS_UNEVICTABLE (SysV SHM_LOCK)
    evicted: bool = False

    @property
    def size_pages(self) -> int:
        return -(-self.size_bytes // PAGE_SIZE)

    def ensure_capacity(self, nr_pages: int) -> None:
        """Grow the page index to hold at least ``nr_pages`` entries."""
        if len(self.pages) < nr_pages:
            size = max(nr_pages, 2 * len(self.pages))
            grown = np.full(size, -1, dtype=np.int32)
            grown[: len(self.pages)] = self.pages
            self.pages = grown
            shadow = np.full(size, -1, dtype=np.int64)
            shadow[: len(self.shadow)] = self.shadow
            self.shadow = shadow

    def cached_pfns(self) -> np.ndarray:
        return self.pages[self.pages >= 0]


@dataclass(eq=False)
class VmArea:
    """Models struct vm_area_struct: [start, end) with flags, backing and page table.

    ``ptes`` holds, per page, a pfn, PTE_NONE or PTE_ZERO; ``pte_write`` whether
    that entry is writable (false after fork for copy-on-write, and for read
    faults of dirty-tracked shared file mappings). ``anon_vma`` is set by the first
    write fault of a private mapping (anon_vma_prepare()); fork copies page tables
    only of VMAs that have one (vma_needs_copy()).
    """

    start: int
    end: int
    flags: int
    kind: str
    handle: str
    inode: Inode | None = None
    pgoff: int = 0  # first file page mapped
    charged_pages: int = 0  # VM_ACCOUNT charge held by this VMA
    anon_vma: bool = False
    #: linear page index of the VMA's first page for its anonymous pages (the
    #: vm_pgoff of an anonymous VMA): the virtual page number it was mapped at,
    #: kept when mremap() moves it; -1 at construction means start >> PAGE_SHIFT.
    anon_pgoff: int = -1
    ptes: np.ndarray = field(init=False, repr=False)
    pte_write: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ptes = np.full(self.nr_pages, PTE_NONE, dtype=np.int32)
        self.pte_write = np.zeros(self.nr_pages, dtype=bool)
        if self.anon_pgoff < 0:
            self.anon_pgoff = self.start >> PAGE_SHIFT

    @property
    def nr_pages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT

    @property
    def length_bytes(self) -> int:
        return self.end - self.start

    @property
    def shared(self) -> bool:
        return bool(self.flags & VM_SHARED)

    @property
    def writable(self) -> bool:
        return bool(self.flags & VM_WRITE)


@dataclass(eq=False)
class MmStruct:
    """Models struct mm_struct: the VMAs, brk, RSS counters and page-table pages."""

    id: int
    owner_pid: int
    vmas: list[VmArea] = field(default_factory=list)
    rss: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    start_brk: int = START_BRK
    brk: int = START_BRK
    #: page-table pages by (level shift, region number) -> pfn; the PGD is apart.
    tables: dict[tuple[int, int], int] = field(default_factory=dict)
    pgd_pfn: int = -1
    #: the VMAs of each mapping handle, lowest first (kept by insert and remove)
    _handles: dict[str, list[VmArea]] = field(default_factory=dict, repr=False)
    #: get_unmapped_area()'s cache, as mm->free_area_cache and mm->cached_hole_size
    #: were until 3.10: where the last top-down search ended, and the largest hole
    #: above it (bytes)
    _free_area_cache: int = MMAP_BASE
    _cached_hole_size: int = 0

    def by_handle(self, handle: str) -> VmArea | None:
        """The lowest VMA of the mapping named ``handle``, or None."""
        vmas = self._handles.get(handle)
        return vmas[0] if vmas else None

    def fragments(self, handle: str) -> list[VmArea]:
        """Every VMA of the mapping named ``handle``, lowest first: one, unless a
        partial munmap or mprotect split it (__split_vma())."""
        return list(self._handles.get(handle, ()))

    @property
    def total_vm(self) -> int:
        """Mapped virtual memory in pages (mm->total_vm)."""
        return sum(v.nr_pages for v in self.vmas)

    @property
    def pgtables_pages(self) -> int:
        """PTE, PMD and PUD table pages (mm_pgtables_bytes() / PAGE_SIZE)."""
        return len(self.tables)

    @property
    def pgtables_bytes(self) -> int:
        return self.pgtables_pages * PAGE_SIZE

    def get_unmapped_area(self, length: int) -> int:
        """Top-down search below MMAP_BASE for a gap of ``length`` bytes.

        Models arch_get_unmapped_area_topdown(); mappings of 2 MiB or more are
        aligned to 2 MiB as thp_get_unmapped_area() does for anonymous memory
        since 6.7 (applied here to every mapping). Returns 0 when nothing fits.

        The search starts where the last one ended unless a hole above that point
        could hold ``length`` (mm->free_area_cache and mm->cached_hole_size, as
        arch_get_unmapped_area_topdown() kept them until 3.10 replaced them with
        the augmented VMA tree): the same address as a search from the top, without
        walking every mapping for every mmap. Any unmap, move or shrink forgets the
        cache (:meth:`layout_changed`).
        """
        align = THP_ALIGN_BYTES if length >= THP_ALIGN_BYTES else PAGE_SIZE
        if length <= self._cached_hole_size:
            self.layout_changed()
        top = self._free_area_cache
        hole = self._cached_hole_size
        vmas = self.vmas
        i = bisect.bisect_left(vmas, top, key=_vma_start) - 1
        while i >= 0 and vmas[i].start >= self.brk:
            vma = vmas[i]
            start = (top - length) & ~(align - 1)
            if vma.end <= top and start >= vma.end:
                return self._found(start, length, top, hole)
            if vma.end <= top:
                hole = max(hole, top - vma.end)
            top = vma.start
            i -= 1
        start = (top - length) & ~(align - 1)
        if start < max(self.brk, MMAP_MIN_ADDR):
            return 0
        return self._found(start, length, top, hole)

    def _found(self, start: int, length: int, top: int, hole: int) -> int:
        """Remember where the search ended: the new mapping's start, and the largest
        hole above it (what is left of the one it took included)."""
        self._free_area_cache = start
        self._cached_hole_size = max(hole, top - (start + length))
        return start

    def layout_changed(self) -> None:
        """A VMA was unmapped, moved or shrunk (or the break moved): the next
        search starts from the top again."""
        self._free_area_cache = MMAP_BASE
        self._cached_hole_size = 0

    def insert(self, vma: VmArea) -> None:
        """Add ``vma`` in address order (after any VMA starting at the same address)."""
        bisect.insort(self.vmas, vma, key=_vma_start)
        bisect.insort(self._handles.setdefault(vma.handle, []), vma, key=_vma_start)

    def remove(self, vma: VmArea) -> None:
        """Drop ``vma`` from the mm (its pages and tables are the caller's)."""
        self.vmas.remove(vma)
        vmas = self._handles[vma.handle]
        vmas.remove(vma)
        if not vmas:
            del self._handles[vma.handle]
        self.layout_changed()


def _vma_start(vma: VmArea) -> int:
    return vma.start


@dataclass(eq=False)
class Task:
    """Models struct task_struct of a single-threaded process."""

    pid: int
    comm: str
    uid: int
    oom_score_adj: int
    mm: MmStruct | None
    parent: Task | None = None
    exited: bool = False
    exit_code: int = 0
    exit_signal: Signal | None = None
    memcg: MemCgroup | None = None
    kthread: bool = False
    start_ns: int = 0
    cpu_ns: int = 0  # time spent running (utime + stime)
    legacy_oom_adj: int | None = None  # a value written to /proc/PID/oom_adj, as stored
    kernel_stack_pfns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32), repr=False)
