"""State rebuilt from a trace's events: processes, VMAs, pages, files, shmem, swap, cgroups.

State providers in the lttng-analyses sense (its ``linuxautomaton``): one provider per
subsystem folds the events of that subsystem into one shared picture
(:class:`~.core.FoldState`), and :class:`StateFolder` feeds them every batch, in
``seq`` order (``TraceReader.ordered_batches()``, or live from a bus):

=================  ==========================================================
provider           folds
=================  ==========================================================
:mod:`.cgroups`    cgroup (paths, memory.max)
:mod:`.tasks`      process_start, fork, exit, oom_score_adj_update, cgroup
                   attach, oom_kill: the trace's
                   :class:`~memtrace.tracer.tasks.TaskTable`
:mod:`.vmas`       mmap, munmap, brk, fork, exit: VMAs and their page tables
:mod:`.pages`      page_fault, cow, lru_move (vm_enough_memory, exit: faults
                   that wait for a page)
:mod:`.pagecache`  page_cache_add, page_cache_delete, file_open, unlink, shm,
                   writeback
:mod:`.swap`       swap_out, swap_in
:mod:`.rss`        rss_stat
:mod:`.readings`   snapshot, meminfo_sample (/proc/meminfo readings)
:mod:`.history`    the rest kept whole for reports (reclaim, OOM rows, ...)
=================  ==========================================================

Each handler declares, on its own line (:func:`~.provider.folds`), the fields it
reads and whether History keeps its events; the folder's dispatch table, its schema
checks and :data:`FOLD_READS` / :data:`HISTORY_TRACEPOINTS` are made from those
declarations. A new tracepoint is its schema (``tracer/tracepoints.py``), the kernel
code that emits it, and one handler in one provider here.

The picture is kept the way the kernel keeps it, in arrays, never one Python object
per page:

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
:mod:`memtrace.kernel` implements it; this package imports nothing of the kernel and
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
  them (:mod:`.pgtable`).
- SHM_LOCK has no event: pages of a locked SysV segment added later are not known
  to be unevictable. No swap cache (the simulated kernel has none).
- Imported real traces have no page frame numbers: :attr:`MemoryState.has_pages` is
  false and only per-process counters (``rss_stat``) and the OOM rows are known.

What the fold refuses to hold (the file's checksums say nothing of its values): an
event whose values cannot be true, or would size the arrays beyond what the trace's
machine could use, is left out and counted in :attr:`StateFolder.warnings`, so the
rest of the trace stays readable:

- a mapping (``mmap``, ``brk``) reaching past the x86-64 user address space
  (:data:`~memtrace.linux.limits.TASK_SIZE_MAX_4LEVEL`, 128 TiB with 4-level paging),
  or whose per-page table would take the live mappings past :data:`MAX_PTE_ENTRIES`;
- a page event naming a pfn, or a swap event a slot, at or above
  :attr:`StateFolder.pfn_limit` / :attr:`StateFolder.slot_limit`: twice what the
  header's ``machine.ram_bytes`` / ``swap_bytes`` give, at least
  :data:`DEFAULT_TRACKED` and at most :data:`MAX_TRACKED` entries.

Header parts that are not maps (``meta.machine`` a string) read as absent, with a
warning. A schema that lacks a field the fold reads, or holds it as another kind of
type, is a :class:`~memtrace.errors.TraceFormatError` naming both
(:func:`~memtrace.tracer.tracepoints.check_fields`).
"""

from __future__ import annotations

from .core import DEFAULT_TRACKED, MAX_TRACKED, FoldState
from .folder import FOLD_READS, FOLD_READS_IF_PRESENT, HISTORY_TRACEPOINTS, PROVIDERS, StateFolder, commute_classes
from .model import (
    K_ANON,
    K_FILE,
    K_NONE,
    K_SHMEM,
    KIND_NAMES,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LRU_NONE,
    LRU_UNEVICTABLE,
    O_COW_ANON,
    O_COW_FILE,
    O_COW_SHMEM,
    O_NONE,
    O_SWAPIN,
    O_ZERO_FILL,
    ORIGIN_NAMES,
    PRIVATE_KINDS,
    PTE_NONE,
    PTE_ZERO,
    ROOT_MEMCG_ID,
    SHARED_KINDS,
    SWP_BASE,
    UNNAMED,
    ZERO_PFN,
    History,
    Inode,
    PageArrays,
    Process,
    Reading,
    SwapSlots,
    VmArea,
    swp_entry,
    swp_offset,
)
from .pgtable import TABLE_SHIFTS
from .provider import Fold, StateProvider, folds, keeps
from .readings import MEMINFO_FIELD_OF, MEMINFO_NAME_OF, READING_TRACEPOINTS
from .view import SIMULATED_SOURCES, MemoryState, is_imported, source_name, untraced_fields
from .vmas import MAX_PTE_ENTRIES
from .walk import Stop, fold_at, fold_trace, walk

__all__ = [
    "DEFAULT_TRACKED",
    "FOLD_READS",
    "FOLD_READS_IF_PRESENT",
    "HISTORY_TRACEPOINTS",
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
    "MAX_PTE_ENTRIES",
    "MAX_TRACKED",
    "MEMINFO_FIELD_OF",
    "MEMINFO_NAME_OF",
    "ORIGIN_NAMES",
    "O_COW_ANON",
    "O_COW_FILE",
    "O_COW_SHMEM",
    "O_NONE",
    "O_SWAPIN",
    "O_ZERO_FILL",
    "PRIVATE_KINDS",
    "PROVIDERS",
    "PTE_NONE",
    "PTE_ZERO",
    "READING_TRACEPOINTS",
    "ROOT_MEMCG_ID",
    "SHARED_KINDS",
    "SIMULATED_SOURCES",
    "SWP_BASE",
    "TABLE_SHIFTS",
    "UNNAMED",
    "ZERO_PFN",
    "Fold",
    "FoldState",
    "History",
    "Inode",
    "MemoryState",
    "PageArrays",
    "Process",
    "Reading",
    "StateFolder",
    "StateProvider",
    "Stop",
    "SwapSlots",
    "VmArea",
    "commute_classes",
    "fold_at",
    "fold_trace",
    "folds",
    "is_imported",
    "keeps",
    "source_name",
    "swp_entry",
    "swp_offset",
    "untraced_fields",
    "walk",
]
