"""State rebuilt from a trace's events: processes, VMAs, pages, files, shmem, swap, cgroups.

A state provider in the lttng-analyses sense: :class:`StateFolder` is fed event
batches in ``seq`` order (``TraceReader.ordered_batches()``, or live from a bus) and
folds them into a picture of memory at that moment. The picture is kept the way the
kernel keeps it, in arrays, never one Python object per page:

- per page frame (pfn), numpy arrays sized from the trace header's
  ``machine.ram_bytes`` (:class:`PageArrays`): what the page holds (``K_ANON``,
  ``K_FILE``, ``K_SHMEM`` or nothing known), its map count, the inode and file index
  of a page-cache page, the VMA whose fault created an anonymous page and how
  (zero-fill, copy-on-write of a file, shmem or anonymous page, swap-in), its memory
  cgroup, LRU list and (estimated) dirty bit;
- per VMA (:class:`VmArea`, models struct vm_area_struct), one int32 entry per page,
  as the simulated kernel's own page tables: a pfn, ``PTE_NONE``, ``PTE_ZERO`` or a
  swap entry ``-(slot + 3)``;
- per swap slot, the shmem object and offset of a swapped shmem page (anonymous swap
  entries live in the page tables, as in the kernel).

How each event changes that picture is the kernel's own rule (mm/memory.c faults and
copy-on-write, mm/rmap.c unmapping, mm/filemap.c page cache, mm/swap_state.c swap,
kernel/fork.c dup_mmap, mm/mmap.c munmap and brk, fs/inode.c iput_final), as
:mod:`memtrace.kernel` implements it; this module imports nothing of the kernel and
reads only events, so it works on any trace.

What the events cannot tell, and what is therefore estimated or left unknown:

- ``mmap`` does not carry the file offset: a file VMA's ``pgoff`` is learnt from its
  first fault on an already-cached page, or from the first page-cache add that
  follows a fault on a missing one (the kernel adds those pages in the faults'
  order); a partial munmap from the start moves it as the kernel does. A fault on a
  page not yet cached reports pfn 0 and is resolved by that add.
- ``page_cache_add`` does not say whether a page was added by read(2) or write(2),
  and a write to an already cached page emits nothing, so the dirty bit is an
  estimate: pages added to a file its last ``file_open`` created, and pages written
  through a shared mapping, are dirty; ``writeback`` cleans a whole inode. Explain
  compares the estimate with /proc/meminfo Dirty and says when they differ.
- Pages the kernel allocates without an event (page tables, kernel stacks, slab) are
  not in the page arrays; /proc/meminfo readings give their totals. Page-table pages
  per process are recounted with the x86-64 4-level rule (one table page per 2 MiB,
  1 GiB and 512 GiB region touched, plus the PGD), as the simulated kernel allocates
  them.
- SHM_LOCK has no event: pages of a locked SysV segment added later are not known
  to be unevictable. No swap cache (the simulated kernel has none).
- Imported real traces have no page frame numbers: :attr:`MemoryState.has_pages` is
  false and only per-process counters (``rss_stat``) and the OOM rows are known.

What the fold refuses to hold (the file's checksums say nothing of its values): an
event whose values cannot be true, or would size the arrays beyond what the trace's
machine could use, is left out and counted in :attr:`StateFolder.warnings`, so the
rest of the trace stays readable:

- a mapping (``mmap``, ``brk``) reaching past the x86-64 user address space
  (:data:`TASK_SIZE_MAX_4LEVEL`, 128 TiB with 4-level paging), or whose per-page table
  would take the live mappings past :data:`MAX_PTE_ENTRIES`;
- a page event naming a pfn, or a swap event a slot, at or above
  :attr:`StateFolder.pfn_limit` / :attr:`StateFolder.slot_limit`: twice what the
  header's ``machine.ram_bytes`` / ``swap_bytes`` give, at least
  :data:`DEFAULT_TRACKED` and at most :data:`MAX_TRACKED` entries.

Header parts that are not maps (``meta.machine`` a string) read as absent, with a
warning. A schema that lacks a field the fold reads, or holds it as another kind of
type, is a :class:`~memtrace.errors.TraceFormatError` naming both (:func:`check_fields`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX_4LEVEL
from memtrace.tracer import MEMINFO_FIELDS, EventBatch, TraceReader
from memtrace.tracer.meta import meta_int, meta_part, note, value_desc
from memtrace.tracer.tracepoints import check_fields

#: The most page-table entries (int32, one per page) the fold keeps for all live
#: mappings together: 512 GiB of mapped address space, 512 MiB of arrays. A mapping
#: that would go beyond is left out of the per-page state, with a warning.
MAX_PTE_ENTRIES = 1 << 27
#: Page frames (swap slots) tracked when the header gives no RAM (swap): 64 GiB's worth.
DEFAULT_TRACKED = 1 << 24
#: The most page frames (swap slots) tracked whatever the header says: 1 TiB's worth
#: (about 27 bytes of page arrays per frame, 13 per slot).
MAX_TRACKED = 1 << 28

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

#: Page-table regions on x86-64 with 4-level paging: one PTE table per 2 MiB, one PMD
#: table per 1 GiB, one PUD table per 512 GiB (the PGD is per mm).
TABLE_SHIFTS = (21, 30, 39)

#: meminfo name -> reading field name, and back.
MEMINFO_FIELD_OF = dict(MEMINFO_FIELDS)
MEMINFO_NAME_OF = {f: m for m, f in MEMINFO_FIELDS}
ROOT_MEMCG_ID = 1

#: Tracepoints whose events mark a moment (a /proc/meminfo reading).
READING_TRACEPOINTS = ("snapshot", "meminfo_sample")


def swp_entry(slots: np.ndarray) -> np.ndarray:
    """The pte value of swap ``slots``."""
    return (SWP_BASE - np.asarray(slots, dtype=np.int64)).astype(np.int32)


def swp_offset(entries: np.ndarray) -> np.ndarray:
    """The swap slots of pte values ``entries`` (which must be swap entries)."""
    return SWP_BASE - np.asarray(entries, dtype=np.int64)


# --------------------------------------------------------------------------- objects


@dataclass(eq=False)
class VmArea:
    """Models struct vm_area_struct as the events show it: [start, end) of one
    process, its kind, backing inode and page table (one int32 entry per page)."""

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
    pgoff: int = 0
    pgoff_known: bool = False
    anon_vma: bool = False
    forked_from: int | None = None  # vid of the parent's VMA this one was copied from
    created_ns: int = 0
    alive: bool = True
    ptes: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    #: shared file mappings only: which entries are writable (took a write fault); the
    #: kernel folds their pte dirty bit into the page when they are zapped
    wrote: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.ptes is None:
            self.ptes = np.full(self.nr_pages, PTE_NONE, dtype=np.int32)
        if self.kind == "file_shared" and self.wrote is None:
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


@dataclass(eq=False)
class Process:
    """Models the parts of struct task_struct and mm_struct the events show."""

    pid: int
    comm: str
    uid: int = 0
    oom_score_adj: int = 0
    parent: int | None = None
    memcg_id: int = ROOT_MEMCG_ID
    start_ns: int = 0
    exit_ns: int | None = None
    exit_code: int | None = None
    killed: bool = False
    has_mm: bool = True
    vmas: list[VmArea] = field(default_factory=list)
    #: page-table regions, as (shift << 48) | region (x86-64: see TABLE_SHIFTS)
    tables: set[int] = field(default_factory=set)
    #: latest kmem:rss_stat values, bytes, by member name
    rss_bytes: dict[str, int] = field(default_factory=dict)
    brk_start: int | None = None

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
        self.kind = np.zeros(0, dtype=np.uint8)
        self.mapcount = np.zeros(0, dtype=np.int32)
        self.ino = np.zeros(0, dtype=np.int32)
        self.index = np.zeros(0, dtype=np.int64)
        self.origin = np.zeros(0, dtype=np.uint8)
        self.owner_vid = np.zeros(0, dtype=np.int32)
        self.memcg = np.zeros(0, dtype=np.uint16)
        self.lru = np.zeros(0, dtype=np.uint8)
        self.dirty = np.zeros(0, dtype=bool)
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


@dataclass
class History:
    """The small events of a trace, kept whole for reports: readings, OOM rows and
    kills, reclaim, refusals, per-process RSS over time. Each record is a dict of
    the event's fields (enums decoded), as ``EventBatch.records()`` gives them."""

    readings: list[Reading] = field(default_factory=list)
    rss: list[tuple[int, int, str, int]] = field(default_factory=list)  # ts_ns, pid, member, bytes
    #: page cache dropped by reclaim and pages swapped out: (ts_ns of the batch's last event,
    #: memcg id, pages), one row per batch and memory cgroup
    cache_reclaimed: list[tuple[int, int, int]] = field(default_factory=list)
    swapped_out: list[tuple[int, int, int]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def of(self, name: str) -> list[dict[str, Any]]:
        return self.events.get(name, [])


#: Tracepoints whose every event History keeps (few per run).
HISTORY_TRACEPOINTS = frozenset({
    "mmap", "munmap", "brk", "fork", "exit", "process_start", "file_open", "unlink", "shm",
    "writeback", "drop_caches", "sysctl_set", "kswapd_wake", "kswapd_sleep", "reclaim_begin",
    "reclaim_end", "shrink_list", "shrink_slab", "vm_enough_memory", "oom_score_adj_update",
    "oom_candidate", "oom_kill", "oom_reap", "oom_panic", "zoneinfo", "cgroup", "memcg_stat",
})

#: Fields naming a page frame (the index of the page arrays), by tracepoint.
_PFN_FIELDS: dict[str, tuple[str, ...]] = {
    "page_fault": ("pfn",), "cow": ("old_pfn", "new_pfn"), "page_cache_add": ("pfn",),
    "page_cache_delete": ("pfn",), "swap_out": ("pfn",), "lru_move": ("pfn",),
}
#: Fields naming a swap slot (the index of the swap-slot arrays), by tracepoint.
_SLOT_FIELDS: dict[str, tuple[str, ...]] = {"swap_out": ("slot",), "swap_in": ("slot",)}

#: The fields each StateFolder handler reads, by tracepoint (the common seq, ts_ns and
#: pid are in every schema). A trace whose schema lacks one cannot be folded.
FOLD_READS: dict[str, tuple[str, ...]] = {
    "page_fault": ("address", "write", "pfn"),
    "cow": ("old_pfn", "new_pfn"),
    "page_cache_add": ("pfn", "ino", "index", "shmem"),
    "page_cache_delete": ("pfn", "ino", "reason"),
    "swap_out": ("pfn", "slot", "ino", "index", "memcg_id"),
    "swap_in": ("slot", "ino"),
    "lru_move": ("pfn", "to_lru"),
    "mmap": ("addr", "len_bytes", "prot", "flags", "vma_kind", "ino", "path", "handle", "ret"),
    "munmap": ("addr", "len_bytes", "handle"),
    "brk": ("old_brk", "brk", "ret"),
    "fork": ("child_pid", "child_comm"),
    "exit": ("comm", "code"),
    "process_start": ("comm", "uid", "oom_score_adj"),
    "file_open": ("ino", "path", "shmem", "size_bytes", "created"),
    "unlink": ("ino",),
    "shm": ("op", "ino", "name", "size_bytes"),
    "writeback": ("ino",),
    "rss_stat": ("mm_pid", "member", "size_bytes"),
    "oom_score_adj_update": ("comm", "oom_score_adj"),
    "cgroup": ("op", "path", "memcg_id", "limit_bytes", "task_pid"),
    "snapshot": ("label",),
    "oom_kill": ("victim_pid", "comm"),
}
#: Fields read when the schema has them (the /proc/meminfo readings).
FOLD_READS_IF_PRESENT: dict[str, tuple[str, ...]] = {
    "snapshot": tuple(f for _m, f in MEMINFO_FIELDS),
    "meminfo_sample": tuple(f for _m, f in MEMINFO_FIELDS),
}


# --------------------------------------------------------------------------- folder


class StateFolder:
    """Folds event batches, fed in ``seq`` order, into a :class:`MemoryState`.

    A bus consumer (:meth:`on_batch`). ``meta`` is the trace header's meta map; its
    RAM and swap sizes size the page and swap-slot arrays when the first event naming
    a pfn or slot comes (they grow if events show more, up to :attr:`pfn_limit` and
    :attr:`slot_limit`). ``reads`` adds, by tracepoint, fields a caller will read
    from :attr:`history` (checked with the fold's own, see :func:`check_fields`);
    ``reader`` names the caller in the error. What the fold left out of an odd trace
    is in :attr:`warnings`.
    """

    def __init__(self, meta: Mapping[str, Any] | None = None, *,
                 reads: Mapping[str, Iterable[str]] | None = None,
                 reader: str = "the state fold (memtrace explain, ps, report)") -> None:
        meta = dict(meta) if isinstance(meta, Mapping) else {}
        self.meta = meta
        self._header_warnings: list[str] = []
        machine = meta_part(meta, "machine", self._header_warnings)
        source = meta.get("source")
        if source is not None and not isinstance(source, (str, Mapping)):
            note(self._header_warnings, f"trace header: meta.source is {value_desc(source)}, not a name or a map: "
                                         "ignored (the trace is taken as simulated)")
        ram_pages = self._header_pages(machine, "ram_bytes")
        swap_pages = self._header_pages(machine, "swap_bytes")
        #: page frames (swap slots) at or above this are not tracked: events naming
        #: one are left out, with a warning
        self.pfn_limit = _tracked(ram_pages)
        self.slot_limit = _tracked(swap_pages)
        self._ram_pages, self._swap_pages = ram_pages, swap_pages
        self.pages = PageArrays(0)
        self.nr_swap = 0
        self.slot_shmem = np.zeros(0, dtype=bool)
        self.slot_ino = np.zeros(0, dtype=np.int32)
        self.slot_index = np.zeros(0, dtype=np.int64)
        self._reader = reader
        self._reads: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (reads or {}).items()}
        self._checked: set[str] = set()
        self._skipped: dict[str, list[Any]] = {}  # key -> [first message, count]
        self._pte_entries = 0  # page-table entries of the live VMAs (MAX_PTE_ENTRIES)
        self.procs: dict[int, Process] = {}
        self.vmas: dict[int, VmArea] = {}
        self.inodes: dict[int, Inode] = {}
        self.cgroups: dict[int, str] = {ROOT_MEMCG_ID: "/"}
        self.cgroup_limits: dict[str, int] = {}
        self.history = History()
        self.last_seq = -1
        self.first_ts_ns: int | None = None
        self.last_ts_ns = 0
        self.nr_page_events = 0  # events that name a page frame
        self.unattributed_faults = 0
        self._next_vid = 1
        # Faults whose page was not yet cached when they fired: (vma, keys, pte index, write).
        self._pending: list[tuple[VmArea, np.ndarray, np.ndarray, np.ndarray]] = []
        self._handlers: dict[str, Callable[[EventBatch], None]] = {
            "page_fault": self._page_fault,
            "cow": self._cow,
            "page_cache_add": self._page_cache_add,
            "page_cache_delete": self._page_cache_delete,
            "swap_out": self._swap_out,
            "swap_in": self._swap_in,
            "lru_move": self._lru_move,
            "mmap": self._mmap,
            "munmap": self._munmap,
            "brk": self._brk,
            "fork": self._fork,
            "exit": self._exit,
            "process_start": self._process_start,
            "file_open": self._file_open,
            "unlink": self._unlink,
            "shm": self._shm,
            "writeback": self._writeback,
            "rss_stat": self._rss_stat,
            "oom_score_adj_update": self._oom_score_adj_update,
            "cgroup": self._cgroup,
            "snapshot": self._reading,
            "meminfo_sample": self._reading,
            "oom_kill": self._oom_kill,
            "vm_enough_memory": self._refused,
        }

    def _header_pages(self, machine: Mapping[str, Any], key: str) -> int:
        """``machine[key]`` (bytes) in pages; 0 when absent, not a number, negative
        or more than the fold tracks (with a warning for the last three)."""
        nr_bytes = meta_int(machine, key, "machine", self._header_warnings)
        if nr_bytes is None:
            return 0
        if not 0 <= nr_bytes >> PAGE_SHIFT <= MAX_TRACKED:
            note(self._header_warnings,
                  f"trace header: machine.{key} {nr_bytes:,} is outside 0..{MAX_TRACKED << PAGE_SHIFT:,} "
                  "(the most the fold tracks page by page): ignored")
            return 0
        return nr_bytes >> PAGE_SHIFT

    @property
    def warnings(self) -> list[str]:
        """What the fold ignored or left out: header parts it could not read, and
        events with impossible values (one line per kind, with how many more)."""
        out = list(self._header_warnings)
        for message, count in self._skipped.values():
            out.append(message if count == 1 else f"{message} (and {count - 1:,} more like it)")
        return out

    def _skip(self, key: str, message: str, count: int = 1) -> None:
        """Record that ``count`` events were left out; the first message of each
        ``key`` is kept."""
        entry = self._skipped.get(key)
        if entry is None:
            self._skipped[key] = [message, count]
        else:
            entry[1] += count

    # -- feeding

    def on_batch(self, batch: EventBatch) -> None:
        """Fold one batch (events of one tracepoint, in seq order).

        TraceFormatError when the trace's schema of the tracepoint lacks a field the
        fold (or the caller's ``reads``) needs; events with impossible page frame
        numbers or swap slots are left out of the per-page state (see
        :attr:`warnings`)."""
        if batch.n == 0:
            return
        name = batch.tp.name
        if name not in self._checked:
            check_fields(batch.tp, self._reader, (*FOLD_READS.get(name, ()), *self._reads.get(name, ())),
                         FOLD_READS_IF_PRESENT.get(name, ()))
            self._checked.add(name)
        h = self.history
        h.counts[name] = h.counts.get(name, 0) + batch.n
        if name in HISTORY_TRACEPOINTS:
            h.events.setdefault(name, []).extend(r.fields for r in batch.records())
        handler = self._handlers.get(name)
        if handler is not None:
            folded = self._plausible(batch)
            if folded.n:
                handler(folded)
        if self.first_ts_ns is None:
            self.first_ts_ns = int(batch.columns["ts_ns"][0])
        self.last_seq = int(batch.columns["seq"][-1])
        self.last_ts_ns = int(batch.columns["ts_ns"][-1])

    def state(self) -> MemoryState:
        """The folded picture now (shares the folder's arrays: read, do not keep
        across more batches)."""
        return MemoryState(self)

    # -- helpers

    def _proc(self, pid: int, comm: str = "?") -> Process:
        p = self.procs.get(pid)
        if p is None:
            p = Process(pid=pid, comm=comm)
            self.procs[pid] = p
        return p

    def _inode(self, ino: int) -> Inode:
        node = self.inodes.get(ino)
        if node is None:
            node = Inode(ino=ino)
            self.inodes[ino] = node
        return node

    def _plausible(self, batch: EventBatch) -> EventBatch:
        """``batch`` without the events naming a page frame or swap slot beyond what
        the fold tracks (:attr:`pfn_limit`, :attr:`slot_limit`): such a value cannot
        come from the trace's machine, and would size the arrays from it."""
        name = batch.tp.name
        checks = [(f, self.pfn_limit, "page frame", "ram_bytes") for f in _PFN_FIELDS.get(name, ())]
        checks += [(f, self.slot_limit, "swap slot", "swap_bytes") for f in _SLOT_FIELDS.get(name, ())]
        bad: np.ndarray | None = None
        for fname, limit, what, header in checks:
            col = np.asarray(batch[fname])
            out = col >= limit
            if col.dtype.kind == "i":
                out |= col < 0
            if out.any():
                i = int(np.flatnonzero(out)[0])
                self._skip(f"{name}.{fname}",
                           f"{name} (seq {int(batch['seq'][i])}): {fname} {int(col[i]):,} is not a {what} the fold "
                           f"tracks (below {limit:,}, from machine.{header}): event left out",
                           int(np.count_nonzero(out)))
                bad = out if bad is None else bad | out
        return batch if bad is None else batch.select(~bad)

    def _new_vma(self, where: str, **kw: Any) -> VmArea | None:
        """A new VMA [start, end) with its page table, or None (and a warning naming
        ``where``, the event) when the range is impossible on x86-64 or its table would
        take the live VMAs past :data:`MAX_PTE_ENTRIES`."""
        start, end = int(kw["start"]), int(kw["end"])
        if not 0 <= start <= end <= TASK_SIZE_MAX_4LEVEL:
            self._skip(f"range:{where.split(' ')[0]}",
                       f"{where}: a mapping of {end - start:,} bytes, [{start:#x}, {end:#x}), is outside the "
                       f"x86-64 user address space (which ends at {TASK_SIZE_MAX_4LEVEL:#x}): left out")
            return None
        nr_pages = (end - start) >> PAGE_SHIFT
        if not self._reserve_ptes(nr_pages, where):
            return None
        v = VmArea(vid=self._next_vid, **kw)
        self._next_vid += 1
        self.vmas[v.vid] = v
        return v

    def _reserve_ptes(self, nr_pages: int, where: str) -> bool:
        """Count ``nr_pages`` more page-table entries, if they fit in
        :data:`MAX_PTE_ENTRIES`; else warn naming ``where`` and return False."""
        if self._pte_entries + nr_pages > MAX_PTE_ENTRIES:
            self._skip(f"ptes:{where.split(' ')[0]}",
                       f"{where}: {nr_pages:,} more pages would take the live mappings past the "
                       f"{MAX_PTE_ENTRIES:,} page-table entries the fold keeps: left out of the per-page state")
            return False
        self._pte_entries += nr_pages
        return True

    def _set_ptes(self, vma: VmArea, ptes: np.ndarray) -> None:
        """Replace ``vma``'s page table (a shrink), keeping the entry count."""
        self._pte_entries += len(ptes) - len(vma.ptes)
        vma.ptes = ptes

    def _grow_pages(self, pfns: np.ndarray) -> None:
        if len(pfns):
            top = int(pfns.max()) + 1
            if top > self.pages.nr_pfns:
                want = max(top, self.pages.nr_pfns * 5 // 4, self._ram_pages)
                self.pages.grow(min(want, self.pfn_limit))

    def _grow_swap(self, slots: np.ndarray) -> None:
        if len(slots):
            top = int(slots.max()) + 1
            if top > self.nr_swap:
                n = min(max(top, self.nr_swap * 5 // 4, self._swap_pages), self.slot_limit)
                for name in ("slot_shmem", "slot_ino", "slot_index"):
                    old = getattr(self, name)
                    new = np.zeros(n, dtype=old.dtype)
                    new[: len(old)] = old
                    setattr(self, name, new)
                self.nr_swap = n

    def _memcg_of(self, pid: int) -> int:
        p = self.procs.get(pid)
        return p.memcg_id if p is not None else ROOT_MEMCG_ID

    def _add_tables(self, proc: Process, addrs: np.ndarray) -> None:
        """alloc_page_tables(): the table pages that mapping ``addrs`` needs."""
        if not len(addrs):
            return
        a = addrs.astype(np.uint64)
        for shift in TABLE_SHIFTS:
            regions = _distinct(a >> np.uint64(shift))
            base = shift << 48
            proc.tables.update((base | r) for r in regions.tolist())

    def _free_tables(self, proc: Process, start: int, end: int) -> None:
        """free_pgtables(): table pages in [start, end) no remaining VMA overlaps."""
        if end <= start or not proc.tables:
            return
        for shift in TABLE_SHIFTS:
            lo_r, hi_r = start >> shift, (end - 1) >> shift
            base = shift << 48
            have = [r for r in range(lo_r, hi_r + 1) if (base | r) in proc.tables] if hi_r - lo_r < 4096 else [
                t & ((1 << 48) - 1) for t in proc.tables if t >> 48 == shift and lo_r <= (t & ((1 << 48) - 1)) <= hi_r]
            for r in have:
                lo, hi = r << shift, (r + 1) << shift
                if any(v.start < hi and v.end > lo for v in proc.vmas):
                    continue
                proc.tables.discard(base | r)

    def _find_vmas(self, proc: Process, addr: np.ndarray) -> tuple[list[VmArea], np.ndarray]:
        """(VMAs sorted by start, index into them per address; -1 where none covers it)."""
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

    def _unmap_ptes(self, vma: VmArea, pos: np.ndarray | slice, zap: bool = True) -> None:
        """zap_pte_range() (``zap``) or try_to_unmap() on entries ``pos`` of ``vma``:
        present pages lose a mapping; a zapped writable entry of a shared file
        mapping makes its page dirty (set_page_dirty of the pte's dirty bit)."""
        ptes = vma.ptes[pos]
        mask = ptes >= 0
        present = ptes[mask]
        if len(present):
            self.pages.mapcount[present] -= 1
            if zap and vma.wrote is not None:
                w = present[vma.wrote[pos][mask]]
                self.pages.dirty[w[self.pages.kind[w] == K_FILE]] = True
        if vma.wrote is not None:
            vma.wrote[pos] = False
        vma.ptes[pos] = PTE_NONE

    def _remove_vma(self, proc: Process, vma: VmArea) -> None:
        self._unmap_ptes(vma, slice(None))
        if vma.alive:
            self._pte_entries -= len(vma.ptes)
            self.vmas.pop(vma.vid, None)  # its arrays go once no pending fault holds it
        vma.alive = False
        if vma in proc.vmas:
            proc.vmas.remove(vma)
        self._free_tables(proc, vma.start, vma.end)
        if vma.ino:
            node = self._inode(vma.ino)
            node.nr_vmas = max(node.nr_vmas - 1, 0)
            self._maybe_evict(node)

    def _maybe_evict(self, node: Inode) -> None:
        """iput_final(): an inode with no name and no mapping goes, with its swap
        entries (its cached pages leave by page_cache_delete events)."""
        if node.evicted or not node.unlinked or node.nr_vmas > 0:
            return
        node.evicted = True
        if node.shmem and self.nr_swap:
            gone = self.slot_shmem & (self.slot_ino == node.ino)
            self.slot_shmem[gone] = False

    def _unmap_file_pfns(self, ino: int, pfns: np.ndarray) -> None:
        """rmap_walk_file(): clear every pte of a VMA of ``ino`` mapping one of ``pfns``."""
        for proc in self.procs.values():
            for v in proc.vmas:
                if v.ino != ino:
                    continue
                hit = np.flatnonzero(np.isin(v.ptes, pfns))
                if len(hit):
                    self._unmap_ptes(v, hit, zap=False)

    # -- page events

    def _page_fault(self, batch: EventBatch) -> None:
        pfn_all = np.asarray(batch["pfn"], dtype=np.int64)
        self.nr_page_events += int(np.count_nonzero(pfn_all))
        self._grow_pages(pfn_all)
        pids = np.asarray(batch["pid"])
        addr_all = np.asarray(batch["address"], dtype=np.uint64)
        write_all = np.asarray(batch["write"], dtype=bool)
        single = len(pids) == 1 or bool((pids[0] == pids).all())
        for pid in _unique_in_order(pids):
            sel = None if single else np.flatnonzero(pids == pid)
            addr = addr_all if sel is None else addr_all[sel]
            write = write_all if sel is None else write_all[sel]
            pfn = pfn_all if sel is None else pfn_all[sel]
            proc = self._proc(int(pid))
            self._add_tables(proc, addr)
            vmas, vidx = self._find_vmas(proc, addr)
            missing = vidx < 0
            if missing.any():
                self.unattributed_faults += int(np.count_nonzero(missing))
            for vi in _unique_in_order(vidx[~missing]):
                m = np.flatnonzero(vidx == vi)
                v = vmas[int(vi)]
                i = ((addr[m] - np.uint64(v.start)) >> np.uint64(PAGE_SHIFT)).astype(np.int64)
                for a, b in _no_repeat_segments(i):
                    self._fault_vma(proc, v, i[a:b], write[m[a:b]], pfn[m[a:b]])

    def _fault_vma(self, proc: Process, v: VmArea, i: np.ndarray, write: np.ndarray, pfn: np.ndarray) -> None:
        """One VMA's faults, no page twice: mm/memory.c handle_pte_fault() outcomes."""
        pg = self.pages
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
                if v.prot & 2:
                    v.wrote[i[known & write]] = True  # type: ignore[index]
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

    def _learn_pgoff(self, v: VmArea, i: np.ndarray, pfns: np.ndarray) -> None:
        if v.pgoff_known or not v.ino or not len(pfns):
            return
        pg = self.pages
        ok = (pg.kind[pfns] != K_NONE) & (pg.ino[pfns] == v.ino)
        if ok.any():
            j = int(np.flatnonzero(ok)[0])
            v.pgoff = int(pg.index[pfns[j]]) - int(i[j])
            v.pgoff_known = True

    def _add_pending(self, v: VmArea, i: np.ndarray, write: np.ndarray) -> None:
        keys = (np.int64(v.ino) << np.int64(32)) | (i + v.pgoff).astype(np.int64)
        self._pending.append((v, keys, i.copy(), write.copy()))

    def _cow(self, batch: EventBatch) -> None:
        pg = self.pages
        old = np.asarray(batch["old_pfn"], dtype=np.int64)
        new = np.asarray(batch["new_pfn"], dtype=np.int64)
        self._grow_pages(np.concatenate([old, new]))
        self.nr_page_events += batch.n
        k = pg.kind[old]
        pg.origin[new] = np.select([k == K_FILE, k == K_SHMEM, k == K_ANON],
                                   [O_COW_FILE, O_COW_SHMEM, O_COW_ANON], O_ZERO_FILL)
        pg.cow_src[old[k != K_ANON]] = True

    def _page_cache_add(self, batch: EventBatch) -> None:
        pg = self.pages
        pfn = np.asarray(batch["pfn"], dtype=np.int64)
        self._grow_pages(pfn)
        self.nr_page_events += batch.n
        ino = np.asarray(batch["ino"], dtype=np.int64)
        index = np.asarray(batch["index"], dtype=np.int64)
        shmem = np.asarray(batch["shmem"], dtype=bool)
        pids = np.asarray(batch["pid"])
        pg.kind[pfn] = np.where(shmem, K_SHMEM, K_FILE)
        pg.mapcount[pfn] = 0
        pg.ino[pfn] = ino
        pg.index[pfn] = index
        pg.origin[pfn] = O_NONE
        pg.owner_vid[pfn] = -1
        pg.lru[pfn] = np.where(shmem, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE)
        pg.cow_src[pfn] = False
        upids, inv = np.unique(pids, return_inverse=True)
        pg.memcg[pfn] = np.array([self._memcg_of(int(p)) for p in upids.tolist()], dtype=np.uint16)[inv]
        # Dirty estimate: new pages of a file its last open created are being written.
        dirty = np.zeros(len(pfn), dtype=bool)
        for x in _unique_in_order(ino).tolist():
            node = self._inode(int(x))
            sel = ino == x
            node.shmem = node.shmem or bool(shmem[sel][0])
            if node.last_open_created and not node.shmem:
                dirty |= sel
        keys = (ino << np.int64(32)) | index
        resolved = np.zeros(len(pfn), dtype=bool)
        if self._pending:
            order = np.argsort(keys, kind="stable")
            sk = keys[order]
            keep = []
            for v, pk, pi, pw in self._pending:
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
                        if v.prot & 2:
                            v.wrote[pi[hit][pw[hit]]] = True  # type: ignore[index]
                if not hit.all():
                    keep.append((v, pk[~hit], pi[~hit], pw[~hit]))
            self._pending = keep
        pg.dirty[pfn[dirty & ~resolved]] = True
        pg.dirty[pfn[~dirty & ~resolved]] = False

    def _page_cache_delete(self, batch: EventBatch) -> None:
        pg = self.pages
        pfn = np.asarray(batch["pfn"], dtype=np.int64)
        self._grow_pages(pfn)
        self.nr_page_events += batch.n
        ino = np.asarray(batch["ino"], dtype=np.int64)
        why = np.asarray(batch["reason"])
        reasons = batch.tp.field("reason").values
        reclaim = why == reasons.index("reclaim") if "reclaim" in reasons else np.zeros(len(why), dtype=bool)
        if reclaim.any():
            ts = int(np.asarray(batch["ts_ns"])[-1])
            for memcg, n in zip(*np.unique(pg.memcg[pfn[reclaim]], return_counts=True)):
                self.history.cache_reclaimed.append((ts, int(memcg), int(n)))
        mapped = pg.mapcount[pfn] > 0
        if mapped.any():
            for x in _unique_in_order(ino[mapped]).tolist():
                self._unmap_file_pfns(int(x), pfn[mapped & (ino == x)])
        pg.kind[pfn] = K_NONE
        pg.mapcount[pfn] = 0
        pg.dirty[pfn] = False
        pg.lru[pfn] = LRU_NONE

    def _swap_out(self, batch: EventBatch) -> None:
        pg = self.pages
        pfn = np.asarray(batch["pfn"], dtype=np.int64)
        slot = np.asarray(batch["slot"], dtype=np.int64)
        ino = np.asarray(batch["ino"], dtype=np.int64)
        index = np.asarray(batch["index"], dtype=np.int64)
        self._grow_pages(pfn)
        self._grow_swap(slot)
        self.nr_page_events += batch.n
        ts = int(np.asarray(batch["ts_ns"])[-1])
        for memcg, n in zip(*np.unique(np.asarray(batch["memcg_id"]), return_counts=True)):
            self.history.swapped_out.append((ts, int(memcg), int(n)))
        anon = ino == 0
        if anon.any():
            # rmap_walk_anon(): the page sits at its virtual page in every mm that shares it.
            ap, vpn, entries = pfn[anon], index[anon], swp_entry(slot[anon])
            for proc in self.procs.values():
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
            for x in _unique_in_order(ino[~anon]).tolist():
                sel = ino == x
                mapped = sel & (pg.mapcount[pfn] > 0)
                if mapped.any():
                    self._unmap_file_pfns(int(x), pfn[mapped])
            s = slot[~anon]
            self.slot_shmem[s] = True
            self.slot_ino[s] = ino[~anon]
            self.slot_index[s] = index[~anon]
        pg.kind[pfn] = K_NONE
        pg.mapcount[pfn] = 0
        pg.lru[pfn] = LRU_NONE

    def _swap_in(self, batch: EventBatch) -> None:
        ino = np.asarray(batch["ino"], dtype=np.int64)
        slot = np.asarray(batch["slot"], dtype=np.int64)
        self._grow_swap(slot)
        self.nr_page_events += batch.n
        # Anonymous swap-ins are folded by the page_fault that follows (its pte held
        # the swap entry); a shmem page comes back into its object's page cache.
        shm = ino != 0
        if shm.any():
            self.slot_shmem[slot[shm]] = False

    def _lru_move(self, batch: EventBatch) -> None:
        pfn = np.asarray(batch["pfn"], dtype=np.int64)
        self._grow_pages(pfn)
        to = np.asarray(batch["to_lru"], dtype=np.uint8)
        # The last move of a page wins.
        rev_pfn, first = np.unique(pfn[::-1], return_index=True)
        self.pages.lru[rev_pfn] = to[::-1][first]

    # -- address-space events

    def _mmap(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            if f["ret"] != 0 or f["addr"] == 0:
                continue
            proc = self._proc(f["pid"])
            ino = int(f["ino"])
            kind = f["vma_kind"]
            addr = int(f["addr"])
            where = f"mmap (seq {f['seq']}, pid {proc.pid})"
            if addr % PAGE_SIZE:
                self._skip("align:mmap", f"{where}: address {addr:#x} is not page aligned (mmap returns "
                                         "page-aligned addresses): left out")
                continue
            # do_mmap() rounds the length up to whole pages.
            v = self._new_vma(where, pid=proc.pid, start=addr, end=addr + _page_align(int(f["len_bytes"])),
                              kind=kind, handle=f["handle"], ino=ino, path=f["path"], prot=int(f["prot"]),
                              flags=int(f["flags"]), created_ns=int(f["ts_ns"]))
            if v is None:
                continue
            proc.vmas.append(v)
            if ino:
                node = self._inode(ino)
                node.nr_vmas += 1
                if f["path"] and not node.path:
                    node.path = f["path"]
                if kind == "anon_shared":
                    node.kind, node.shmem, node.unlinked = "anon_shared", True, True
                    node.creator_pid = proc.pid
                    node.size_bytes = int(f["len_bytes"])
                elif kind == "shm":
                    node.shmem = True

    def _munmap(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            proc = self.procs.get(f["pid"])
            if proc is None:
                continue
            v = proc.vma_by_handle(f["handle"]) if f["handle"] else None
            start, length = int(f["addr"]), _page_align(int(f["len_bytes"]))
            if start % PAGE_SIZE:  # __do_munmap(): EINVAL, nothing unmapped
                self._skip("align:munmap", f"munmap (seq {f['seq']}, pid {proc.pid}): address {start:#x} is not "
                                           "page aligned (the kernel refuses it): ignored")
                continue
            if v is None:
                v = next((x for x in proc.vmas if x.start <= start < x.end), None)
            end = start + length
            if v is None or end <= v.start or start >= v.end:
                continue  # nothing of the mapping is in the range
            if start <= v.start and end >= v.end:
                self._remove_vma(proc, v)
                continue
            count = (min(end, v.end) - max(start, v.start)) >> PAGE_SHIFT
            if start <= v.start:  # the head goes
                self._unmap_ptes(v, slice(0, count))
                self._set_ptes(v, v.ptes[count:].copy())
                if v.wrote is not None:
                    v.wrote = v.wrote[count:].copy()
                v.start += count << PAGE_SHIFT
                v.pgoff += count
            else:  # the tail goes
                first = (start - v.start) >> PAGE_SHIFT
                self._unmap_ptes(v, slice(first, None))
                self._set_ptes(v, v.ptes[:first].copy())
                if v.wrote is not None:
                    v.wrote = v.wrote[:first].copy()
                v.end = start
            self._free_tables(proc, start, end)

    def _brk(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            if f["ret"] != f["brk"]:
                continue  # refused: the break stays
            proc = self._proc(f["pid"])
            old_top = _page_align(int(f["old_brk"]))
            new_top = _page_align(int(f["ret"]))
            heap = proc.vma_by_handle("heap")
            where = f"brk (seq {f['seq']}, pid {proc.pid})"
            if new_top > TASK_SIZE_MAX_4LEVEL or old_top > TASK_SIZE_MAX_4LEVEL:
                self._skip("range:brk", f"{where}: a break at {max(new_top, old_top):#x} is outside the x86-64 "
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
                    self._unmap_ptes(heap, slice(first, None))
                    self._set_ptes(heap, heap.ptes[:first].copy())
                    heap.end = new_top
                    self._free_tables(proc, new_top, old_top)

    def _fork(self, batch: EventBatch) -> None:
        pg = self.pages
        for r in batch.records():
            f = r.fields
            parent = self._proc(f["pid"])
            child = self._proc(int(f["child_pid"]), f["child_comm"])
            child.comm = f["child_comm"]
            child.uid, child.oom_score_adj = parent.uid, parent.oom_score_adj
            child.parent, child.memcg_id = parent.pid, parent.memcg_id
            child.start_ns = int(f["ts_ns"])
            child.exit_ns = None
            # dup_mmap(): every VMA is copied; page tables only of those with an anon_vma.
            where = f"fork (seq {f['seq']}, pid {parent.pid})"
            for v in sorted(parent.vmas, key=lambda x: x.start):
                c = self._new_vma(where, pid=child.pid, start=v.start, end=v.end, kind=v.kind, handle=v.handle,
                                  ino=v.ino, path=v.path, prot=v.prot, flags=v.flags, pgoff=v.pgoff,
                                  pgoff_known=v.pgoff_known, anon_vma=v.anon_vma, forked_from=v.vid,
                                  created_ns=int(f["ts_ns"]))
                if c is None:
                    continue
                child.vmas.append(c)
                if v.ino:
                    self._inode(v.ino).nr_vmas += 1
                if v.anon_vma:
                    c.ptes = v.ptes.copy()
                    present = c.ptes[c.ptes >= 0]
                    pg.mapcount[present] += 1
                    touched = np.flatnonzero(c.ptes != PTE_NONE).astype(np.uint64)
                    self._add_tables(child, np.uint64(v.start) + (touched << np.uint64(PAGE_SHIFT)))

    def _exit(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            proc = self._proc(f["pid"], f["comm"])
            for v in list(proc.vmas):
                self._remove_vma(proc, v)
            proc.tables.clear()
            proc.exit_ns = int(f["ts_ns"])
            proc.exit_code = int(f["code"])
        self._pending = [p for p in self._pending if p[0].alive]

    def _process_start(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            proc = self._proc(f["pid"], f["comm"])
            proc.comm, proc.uid, proc.oom_score_adj = f["comm"], int(f["uid"]), int(f["oom_score_adj"])
            proc.start_ns = int(f["ts_ns"])
            proc.exit_ns = None

    def _file_open(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            node = self._inode(int(f["ino"]))
            node.path = f["path"]
            node.shmem = bool(f["shmem"])
            if node.kind not in ("posix_shm", "sysv", "anon_shared"):
                node.kind = "tmpfs" if node.shmem else "file"
            node.size_bytes = int(f["size_bytes"])
            node.last_open_created = bool(f["created"])
            node.unlinked = False
            if f["created"] and node.creator_pid is None:
                node.creator_pid = int(f["pid"])

    def _unlink(self, batch: EventBatch) -> None:
        for r in batch.records():
            node = self._inode(int(r.fields["ino"]))
            node.unlinked = True
            self._maybe_evict(node)

    def _shm(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            ino = int(f["ino"])
            if not ino:
                continue
            node = self._inode(ino)
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
                self._maybe_evict(node)
            elif op == "ftruncate":
                node.size_bytes = int(f["size_bytes"])

    def _writeback(self, batch: EventBatch) -> None:
        pg = self.pages
        dirty = np.flatnonzero(pg.dirty)
        if not len(dirty):
            return
        inos = np.unique(np.asarray(batch["ino"], dtype=np.int64))
        clean = dirty[np.isin(pg.ino[dirty], inos)]
        pg.dirty[clean] = False

    def _rss_stat(self, batch: EventBatch) -> None:
        ts = np.asarray(batch["ts_ns"]).tolist()
        pids = np.asarray(batch["mm_pid"]).tolist()
        members = batch.tp.field("member").values
        codes = np.asarray(batch["member"]).tolist()
        sizes = np.asarray(batch["size_bytes"]).tolist()
        for t, pid, c, size in zip(ts, pids, codes, sizes):
            member = members[c]
            self._proc(pid).rss_bytes[member] = size
            self.history.rss.append((t, pid, member, size))

    def _oom_score_adj_update(self, batch: EventBatch) -> None:
        for r in batch.records():
            self._proc(r.fields["pid"], r.fields["comm"]).oom_score_adj = int(r.fields["oom_score_adj"])

    def _cgroup(self, batch: EventBatch) -> None:
        for r in batch.records():
            f = r.fields
            self.cgroups[int(f["memcg_id"])] = f["path"]
            if f["op"] in ("mkdir", "set_max"):
                self.cgroup_limits[f["path"]] = int(f["limit_bytes"])
            elif f["op"] == "attach":
                self._proc(int(f["task_pid"])).memcg_id = int(f["memcg_id"])

    def _refused(self, batch: EventBatch) -> None:
        """A refused charge ends the operation: faults of the task still waiting for
        their page (a shmem page whose charge failed with ENOSPC) will get none."""
        pids = set(np.asarray(batch["pid"]).tolist())
        self._pending = [p for p in self._pending if p[0].pid not in pids]

    def _oom_kill(self, batch: EventBatch) -> None:
        for r in batch.records():
            self._proc(int(r.fields["victim_pid"]), r.fields["comm"]).killed = True

    def _reading(self, batch: EventBatch) -> None:
        snapshot = batch.tp.name == "snapshot"
        for r in batch.records():
            f = r.fields
            mi = {MEMINFO_NAME_OF[k]: int(v) for k, v in f.items() if k in MEMINFO_NAME_OF}
            self.history.readings.append(
                Reading(int(f["seq"]), int(f["ts_ns"]), f["label"] if snapshot else None, mi))


# --------------------------------------------------------------------------- state view


class MemoryState:
    """The folded picture at one moment, read-only by convention: what
    :mod:`memtrace.analysis.explain` and :mod:`memtrace.analysis.graph` read."""

    def __init__(self, folder: StateFolder) -> None:
        self._f = folder
        self.meta = folder.meta
        self.pages = folder.pages
        self.procs = folder.procs
        self.inodes = folder.inodes
        self.cgroups = folder.cgroups
        self.cgroup_limits = folder.cgroup_limits
        self.history = folder.history
        self.seq = folder.last_seq
        self.ts_ns = folder.last_ts_ns
        self.nr_swap = folder.nr_swap
        self.slot_shmem = folder.slot_shmem
        self.slot_ino = folder.slot_ino
        self.slot_index = folder.slot_index

    @property
    def imported(self) -> bool:
        """True for a trace imported from a real kernel (its header names a source
        other than memtrace's simulator)."""
        return is_imported(self.meta)

    @property
    def has_pages(self) -> bool:
        """True when the trace names page frames: simulated traces do; imported real
        traces do not (unless their events carry pfns), and per-page state is then
        unknown."""
        return not self.imported or self._f.nr_page_events > 0

    @property
    def unattributed_faults(self) -> int:
        return self._f.unattributed_faults

    @property
    def source(self) -> str:
        """``trace`` for a simulated trace, else the importer's format (``perf-script``)."""
        return source_name(self.meta)

    @property
    def swap_bytes(self) -> int:
        """The header's ``machine.swap_bytes``; 0 when absent or unreadable."""
        return max(meta_int(meta_part(self.meta, "machine"), "swap_bytes", "machine") or 0, 0)

    def live_vmas(self) -> Iterator[VmArea]:
        """Every VMA of every live process, by pid then address."""
        for pid in sorted(self.procs):
            p = self.procs[pid]
            if p.alive:
                yield from sorted(p.vmas, key=lambda v: v.start)

    def cgroup_path(self, memcg_id: int) -> str:
        return self.cgroups.get(int(memcg_id), f"memcg {memcg_id}")

    def page_counts(self) -> dict[str, int]:
        """Pages by what they hold, as the fold sees them: ``anon`` (mapped anonymous),
        ``file`` and ``shmem`` (page cache), ``file_mapped`` (file and shmem pages
        mapped by some process, NR_FILE_MAPPED), ``dirty`` (estimate), ``mlocked``
        (on the unevictable list) and ``swap`` (slots in use)."""
        pg = self.pages
        anon = (pg.kind == K_ANON) & (pg.mapcount > 0)
        file = pg.kind == K_FILE
        shmem = pg.kind == K_SHMEM
        cached = file | shmem
        return {
            "anon": int(np.count_nonzero(anon)),
            "file": int(np.count_nonzero(file)),
            "shmem": int(np.count_nonzero(shmem)),
            "file_mapped": int(np.count_nonzero(cached & (pg.mapcount > 0))),
            "dirty": int(np.count_nonzero(file & pg.dirty)),
            "mlocked": int(np.count_nonzero((anon | cached) & (pg.lru == LRU_UNEVICTABLE))),
            "swap": self.swap_slots_in_use(),
        }

    def anon_swap_slots(self) -> np.ndarray:
        """Distinct swap slots held by anonymous page-table entries."""
        parts = [swp_offset(v.ptes[v.ptes <= SWP_BASE]) for v in self.live_vmas() if not v.shared]
        parts = [p for p in parts if len(p)]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def swap_slots_in_use(self) -> int:
        return int(len(self.anon_swap_slots()) + np.count_nonzero(self.slot_shmem))

    def pgtables_pages(self) -> int:
        """PageTables as the x86-64 rule recounts it from the faults seen, in pages."""
        return sum(p.pgtables_pages for p in self.procs.values())


#: Header ``source`` values of traces the simulator recorded.
SIMULATED_SOURCES = frozenset({"", "trace", "memtrace", "simulated", "simulator"})


def is_imported(meta: Mapping[str, Any]) -> bool:
    """True when a trace header says it was imported from a real kernel: an
    ``imported`` flag, or a ``source`` (a name such as ``perf-script``, or the
    importer's map with its ``format``)."""
    if meta.get("imported"):
        return True
    return source_name(meta) != "trace"


def source_name(meta: Mapping[str, Any]) -> str:
    """``trace`` for a simulated trace, else the format it was imported from."""
    src = meta.get("source")
    if isinstance(src, Mapping):
        src = src.get("format") or "imported"
    if not isinstance(src, str) or src.lower() in SIMULATED_SOURCES:
        return "imported" if meta.get("imported") else "trace"
    return src


def untraced_fields(meta: Mapping[str, Any], tracepoint: str) -> dict[str, str]:
    """Fields of ``tracepoint`` an importer wrote placeholders for (the real input does
    not carry them), with its note on each: the header's ``source.unknown`` map."""
    src = meta.get("source")
    unknown = src.get("unknown") if isinstance(src, Mapping) else None
    fields = unknown.get(tracepoint) if isinstance(unknown, Mapping) else None
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {}


# --------------------------------------------------------------------------- walking


class Stop(Exception):
    """Raised by an observer to end a walk early."""


def walk(reader: TraceReader, folder: StateFolder, *,
         observe: Callable[[str, dict[str, Any], StateFolder], None] | None = None,
         observe_tracepoints: Iterable[str] = ()) -> StateFolder:
    """Feed every batch of ``reader``, in seq order, to ``folder``.

    Events of ``observe_tracepoints`` are fed one at a time and, after each,
    ``observe(name, fields, folder)`` is called: the folder's state is then the state
    right after that event. ``observe`` may raise :class:`Stop` to end the walk.
    """
    watched = frozenset(observe_tracepoints)
    try:
        for batch in reader.ordered_batches():
            if observe is None or batch.tp.name not in watched:
                folder.on_batch(batch)
                continue
            for i, rec in enumerate(batch.records()):
                folder.on_batch(batch.select(_one(batch.n, i)))
                observe(batch.tp.name, rec.fields, folder)
    except Stop:
        pass
    return folder


def fold_at(reader: TraceReader, at: str | int | None = None, *,
            max_buffered_events: int = 1 << 23) -> tuple[StateFolder, Reading | None, list[str]]:
    """Fold ``reader`` up to one /proc/meminfo reading, so that the state and the
    reading describe the same moment.

    ``at`` is a snapshot label (str), a time in ns since boot (int: the last reading
    at or before it), or None (the last reading of the trace). A trace with no
    reading (imported ones) is folded to that time, or to its end. Events after the
    chosen reading are not folded: in the time and default modes they are held back
    until the next reading shows they come before it (at most
    ``max_buffered_events``; beyond that they are folded and a warning says the state
    is later than the reading). Returns the folder, the reading (None when there is
    none) and warnings. KeyError names the label when no snapshot has it.
    """
    folder = StateFolder(reader.meta)
    warnings: list[str] = []
    held: list[EventBatch] = []
    held_n = 0
    chosen: Reading | None = None
    labels: list[str] = []
    stale = False
    by_label = isinstance(at, str)
    for batch in reader.ordered_batches():
        name = batch.tp.name
        if name in READING_TRACEPOINTS:
            for i in range(batch.n):
                one = batch.select(_one(batch.n, i))
                ts = int(one.columns["ts_ns"][0])
                if isinstance(at, int) and not isinstance(at, bool) and ts > at:
                    return _done(folder, chosen, warnings, stale, held)
                for h in held:
                    folder.on_batch(h)
                held, held_n = [], 0
                folder.on_batch(one)
                reading = folder.history.readings[-1]
                if name == "snapshot":
                    labels.append(str(reading.label))
                if by_label:
                    if reading.label == at:
                        return _done(folder, reading, warnings, False)
                    continue
                chosen, stale = reading, False
            continue
        if by_label:
            folder.on_batch(batch)
            continue
        if isinstance(at, int):
            ts = np.asarray(batch.columns["ts_ns"])
            if int(ts[-1]) > at:
                keep = ts <= at
                if keep.any():
                    held.append(batch.select(keep))
                return _done(folder, chosen, warnings, stale, held)
        held.append(batch)
        held_n += batch.n
        if held_n > max_buffered_events:
            for h in held:
                folder.on_batch(h)
            held, held_n = [], 0
            stale = True
    if by_label:
        known = ", ".join(labels) or "none"
        raise KeyError(f"no snapshot labelled {at!r} (labels: {known})")
    if chosen is None:
        # No reading at all (an imported trace): the state at the end of the trace.
        for h in held:
            folder.on_batch(h)
    return _done(folder, chosen, warnings, stale)


def _done(folder: StateFolder, reading: Reading | None, warnings: list[str], stale: bool,
          held: list[EventBatch] | None = None) -> tuple[StateFolder, Reading | None, list[str]]:
    if reading is None and held:
        # No reading before the time asked for: the state at that time.
        for h in held:
            folder.on_batch(h)
    warnings.extend(w for w in folder.warnings if w not in warnings)
    if stale and reading is not None:
        warnings.append(f"events after the reading at {reading.name} were folded (too many to hold back): "
                        "the breakdown may not match its /proc/meminfo")
    return folder, reading, warnings


def fold_trace(reader: TraceReader) -> StateFolder:
    """Fold a whole trace: the state at its end."""
    return walk(reader, StateFolder(reader.meta))


# --------------------------------------------------------------------------- helpers


def _one(n: int, i: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[i] = True
    return m


def _tracked(header_pages: int) -> int:
    """How many page frames (swap slots) the fold tracks for a header giving
    ``header_pages`` of RAM (swap): twice that, at least DEFAULT_TRACKED, at most
    MAX_TRACKED (a header may understate RAM; no header says 8 EiB truthfully)."""
    return min(MAX_TRACKED, max(2 * header_pages, DEFAULT_TRACKED))


def _page_align(nr_bytes: int) -> int:
    return (nr_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of ``a`` (sorted input, the common case, takes one pass)."""
    if len(a) < 2:
        return a
    step = a[1:] != a[:-1]
    if len(a) > 64 and not bool(np.all(a[1:] >= a[:-1])) and not bool(np.all(a[1:] <= a[:-1])):
        return np.unique(a)
    return a[np.concatenate(([True], step))]


def _unique_in_order(a: np.ndarray) -> np.ndarray:
    """Distinct values of ``a`` in order of first appearance."""
    a = np.asarray(a)
    if len(a) == 0:
        return a
    if len(a) == 1 or (a[0] == a).all():
        return a[:1]
    vals, first = np.unique(a, return_index=True)
    return vals[np.argsort(first)]


def _no_repeat_segments(keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive [a, b) ranges of ``keys`` in which no key appears twice, so that
    each can be applied as one vectorised step in event order."""
    n = len(keys)
    if n <= 1:
        yield 0, n
        return
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    if not len(dup):
        yield 0, n
        return
    prev = np.full(n, -1, dtype=np.int64)
    prev[order[dup + 1]] = order[dup]
    start = 0
    while start < n:
        bad = np.flatnonzero(prev[start:] >= start)
        end = start + int(bad[0]) if len(bad) else n
        yield start, end
        start = end


__all__ = [
    "K_ANON",
    "K_FILE",
    "K_NONE",
    "K_SHMEM",
    "MAX_PTE_ENTRIES",
    "History",
    "Inode",
    "MemoryState",
    "PageArrays",
    "Process",
    "Reading",
    "StateFolder",
    "Stop",
    "VmArea",
    "fold_at",
    "fold_trace",
    "is_imported",
    "source_name",
    "untraced_fields",
    "walk",
]
