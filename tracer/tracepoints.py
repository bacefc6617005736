"""Every tracepoint memtrace knows, defined once.

Field names follow the real kernel's where it has one (``kmem:rss_stat``,
``filemap:mm_filemap_add_to_page_cache``, ``exceptions:page_fault_user``); sizes
carry their unit in the name (``len_bytes``, ``size_bytes``, ``nr_pages``).

Adding a tracepoint is one definition here, appended after the last one
(``NAME = _define("name", "doc", (fields...), kernel="system:event")``): it
joins :data:`TRACEPOINTS` and :func:`default_registry` with the next id, so every
existing tracepoint keeps its id and every trace file its bytes. The bus, the
trace file, ``memtrace list`` and the one-liner language read it from there; the
code that emits it (kernel/) and the code that folds it (a state provider, the
task table's :data:`~memtrace.tracer.tasks.TASK_FIELDS`, the replay summary's
``COUNTERS``) are the only other places a tracepoint is named.
"""

from __future__ import annotations

from collections.abc import Iterable

from memtrace.errors import TraceFormatError

from .schema import Field, Registry, Tracepoint

#: Kind of the VMA a page belongs to. ``anon_shared`` is MAP_SHARED|MAP_ANONYMOUS
#: (shmem "dev/zero"); ``shm`` is a shared mapping of a tmpfs, POSIX or SysV shmem
#: object; ``heap`` is the brk area (private anonymous).
VMA_KINDS = ("anon_private", "anon_shared", "file_private", "file_shared", "shm", "heap")

#: kmem:rss_stat members (include/linux/mm_types_task.h NR_MM_COUNTERS order).
RSS_MEMBERS = ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES")

#: /proc/meminfo lines carried by a snapshot, and the snapshot field for each.
MEMINFO_FIELDS: tuple[tuple[str, str], ...] = (
    ("MemTotal", "mem_total"),
    ("MemFree", "mem_free"),
    ("MemAvailable", "mem_available"),
    ("Buffers", "buffers"),
    ("Cached", "cached"),
    ("SwapCached", "swap_cached"),
    ("Active", "active"),
    ("Inactive", "inactive"),
    ("Active(anon)", "active_anon"),
    ("Inactive(anon)", "inactive_anon"),
    ("Active(file)", "active_file"),
    ("Inactive(file)", "inactive_file"),
    ("Unevictable", "unevictable"),
    ("Mlocked", "mlocked"),
    ("SwapTotal", "swap_total"),
    ("SwapFree", "swap_free"),
    ("Dirty", "dirty"),
    ("Writeback", "writeback"),
    ("AnonPages", "anon_pages"),
    ("Mapped", "mapped"),
    ("Shmem", "shmem"),
    ("KReclaimable", "kreclaimable"),
    ("Slab", "slab"),
    ("SReclaimable", "sreclaimable"),
    ("SUnreclaim", "sunreclaim"),
    ("KernelStack", "kernel_stack"),
    ("PageTables", "page_tables"),
    ("CommitLimit", "commit_limit"),
    ("Committed_AS", "committed_as"),
)


def _u64(name: str, doc: str, unit: str = "") -> Field:
    return Field(name, "u64", doc, unit=unit)


#: The built-in tracepoints as they are defined below. A tracepoint's registry id
#: is its position here, and a trace file names each chunk's tracepoint by that
#: id: a new tracepoint is appended at the end of this file, never inserted.
_SCHEMA = Registry()


def _define(name: str, doc: str, fields: tuple[Field, ...], kernel: str = "") -> Tracepoint:
    """Define one built-in tracepoint: it takes the next registry id."""
    return _SCHEMA.add(Tracepoint(name, doc, fields, kernel=kernel))


MMAP = _define(
    "mmap",
    "an mmap(2) call, with its result; shmat(2) also maps through here",
    (
        _u64("addr", "start address of the new mapping (0 on failure)"),
        _u64("len_bytes", "length of the mapping", "bytes"),
        Field("prot", "u8", "PROT_READ=1 | PROT_WRITE=2 | PROT_EXEC=4"),
        Field("flags", "u32",
              "MAP_SHARED=0x1 MAP_PRIVATE=0x2 MAP_ANONYMOUS=0x20 MAP_LOCKED=0x2000 MAP_NORESERVE=0x4000"),
        Field("vma_kind", "enum", "kind of the mapping", values=VMA_KINDS),
        _u64("ino", "inode of the backing file or shmem object (0 for private anon)"),
        Field("path", "str", "backing file path, or '' for anonymous memory"),
        Field("handle", "str", "the scenario's name for this mapping"),
        _u64("charged_pages", "pages charged to Committed_AS by this call", "pages"),
        Field("ret", "i64", "0 on success, or -errno (-12 is ENOMEM)"),
    ),
    kernel="syscalls:sys_enter_mmap + syscalls:sys_exit_mmap",
)

MUNMAP = _define(
    "munmap",
    "an munmap(2) (or shmdt(2)) of a mapping, whole or part",
    (
        _u64("addr", "start of the unmapped range"),
        _u64("len_bytes", "length of the unmapped range", "bytes"),
        Field("handle", "str", "the scenario's name for the mapping"),
        _u64("uncharged_pages", "pages returned to Committed_AS", "pages"),
    ),
    kernel="syscalls:sys_enter_munmap",
)

BRK = _define(
    "brk",
    "a brk(2) call: the program break moves (or stays, on failure)",
    (
        _u64("old_brk", "program break before the call"),
        _u64("brk", "requested break"),
        _u64("ret", "program break after the call (the old one on failure)"),
        Field("charged_pages", "i64", "change of Committed_AS by this call", "pages"),
    ),
    kernel="syscalls:sys_enter_brk + syscalls:sys_exit_brk",
)

PAGE_FAULT = _define(
    "page_fault",
    "a user page fault, one per faulted page (no fault-around)",
    (
        _u64("address", "faulting virtual address (page aligned)"),
        Field("write", "bool", "the access was a write"),
        Field("major", "bool", "the fault needed I/O (VM_FAULT_MAJOR)"),
        Field("vma_kind", "enum", "kind of the faulting mapping", values=VMA_KINDS),
        _u64("pfn", "page frame mapped by the fault"),
    ),
    kernel="exceptions:page_fault_user",
)

COW = _define(
    "cow",
    "copy-on-write break: a write to a shared or file-backed private page copies it",
    (
        _u64("address", "virtual address of the page"),
        _u64("old_pfn", "page frame that was shared"),
        _u64("new_pfn", "the new private anonymous copy"),
        Field("vma_kind", "enum", "kind of the mapping", values=VMA_KINDS),
    ),
    kernel="(none: mm/memory.c:wp_page_copy)",
)

FORK = _define(
    "fork",
    "a process forked; the child shares its parent's pages copy-on-write",
    (
        Field("child_pid", "i32", "pid of the new process"),
        Field("child_comm", "str", "command name of the child"),
        _u64("charged_pages", "Committed_AS charged for the child's VM_ACCOUNT VMAs", "pages"),
    ),
    kernel="sched:sched_process_fork",
)

EXIT = _define(
    "exit",
    "a process exited and its mm was torn down",
    (
        Field("comm", "str", "command name"),
        Field("code", "i32", "exit code"),
    ),
    kernel="sched:sched_process_exit",
)

PROCESS_START = _define(
    "process_start",
    "a scenario process started (not forked): its pid, name and oom_score_adj",
    (
        Field("comm", "str", "command name"),
        Field("uid", "u32", "user id"),
        Field("oom_score_adj", "i32", "initial oom_score_adj"),
    ),
    kernel="sched:sched_process_exec",
)

FILE_OPEN = _define(
    "file_open",
    "a file was opened (or created): names the inode that page-cache events carry",
    (
        Field("path", "str", "file path"),
        _u64("ino", "inode number"),
        _u64("size_bytes", "file size after the open", "bytes"),
        Field("shmem", "bool", "the file lives on tmpfs (shmem)"),
        Field("created", "bool", "the open created the file"),
    ),
    kernel="syscalls:sys_enter_openat",
)

UNLINK = _define(
    "unlink",
    "a file name was removed; its pages go when the last user does",
    (
        Field("path", "str", "file path"),
        _u64("ino", "inode number"),
    ),
    kernel="syscalls:sys_enter_unlink",
)

SHM = _define(
    "shm",
    "a POSIX or SysV shared-memory call on a shmem object",
    (
        Field("op", "enum", "the call", values=("shm_open", "ftruncate", "shm_unlink", "shmget", "shmctl_rmid")),
        Field("name", "str", "POSIX name or SysV segment handle"),
        _u64("ino", "inode of the shmem object"),
        _u64("size_bytes", "object size after the call", "bytes"),
        Field("charged_pages", "i64", "change of Committed_AS by this call", "pages"),
    ),
    kernel="syscalls:sys_enter_shmget, sys_enter_shmctl, sys_enter_ftruncate",
)

PAGE_CACHE_ADD = _define(
    "page_cache_add",
    "a page joined a page cache (file or shmem), one event per page",
    (
        _u64("ino", "inode of the file or shmem object"),
        _u64("index", "page offset in the file", "pages"),
        _u64("pfn", "page frame"),
        Field("shmem", "bool", "the page is shmem/tmpfs (swap-backed)"),
    ),
    kernel="filemap:mm_filemap_add_to_page_cache",
)

PAGE_CACHE_DELETE = _define(
    "page_cache_delete",
    "a page left a page cache, one event per page",
    (
        _u64("ino", "inode of the file or shmem object"),
        _u64("index", "page offset in the file", "pages"),
        _u64("pfn", "page frame"),
        Field("shmem", "bool", "the page is shmem/tmpfs (swap-backed)"),
        Field("reason", "enum", "why it left", values=("truncate", "drop_caches", "reclaim")),
    ),
    kernel="filemap:mm_filemap_delete_from_page_cache",
)

WRITEBACK = _define(
    "writeback",
    "dirty pages of one file written back and marked clean",
    (
        _u64("ino", "inode written back"),
        _u64("nr_pages", "pages written", "pages"),
        Field("reason", "enum", "what started it", values=("sync", "periodic", "background", "reclaim")),
    ),
    kernel="writeback:writeback_single_inode",
)

DROP_CACHES = _define(
    "drop_caches",
    "a write to /proc/sys/vm/drop_caches",
    (
        Field("value", "u32", "1 page cache, 2 slab (dentries, inodes), 3 both"),
        _u64("nr_pages", "page-cache pages freed", "pages"),
        _u64("slab_pages", "reclaimable slab pages freed", "pages"),
    ),
    kernel="(none: dmesg 'drop_caches: %d')",
)

RSS_STAT = _define(
    "rss_stat",
    "a process's RSS counter changed (one event per counter per operation)",
    (
        Field("mm_pid", "i32", "pid of the process owning the mm (the kernel hashes the mm as mm_id)"),
        Field("curr", "bool", "the current task owns the mm"),
        Field("member", "enum", "which counter", values=RSS_MEMBERS),
        Field("size_bytes", "i64", "new value of the counter", "bytes"),
    ),
    kernel="kmem:rss_stat",
)

SYSCTL_SET = _define(
    "sysctl_set",
    "a sysctl was written",
    (
        Field("name", "str", "sysctl name, e.g. vm.swappiness"),
        Field("value", "str", "new value"),
        Field("old", "str", "previous value"),
    ),
    kernel="(none)",
)

SNAPSHOT = _define(
    "snapshot",
    "a labelled reading of /proc/meminfo taken by a scenario step",
    (Field("label", "str", "the scenario's label for this moment"),
     *(Field(f, "u64", f"/proc/meminfo {m}", unit="bytes") for m, f in MEMINFO_FIELDS)),
    kernel="(none: a read of /proc/meminfo)",
)


LRU_LISTS = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")

LRU_MOVE = _define(
    "lru_move",
    "pages moved between LRU lists, one event per page",
    (
        _u64("pfn", "page frame"),
        Field("from_lru", "enum", "list the page left", values=LRU_LISTS),
        Field("to_lru", "enum", "list the page joined", values=LRU_LISTS),
        Field("reason", "enum", "why it moved",
              values=("activate", "deactivate", "rotate", "mlock", "munlock", "refault")),
        Field("memcg_id", "u16", "memory cgroup of the page's lruvec (cgroup events name it; 1 = /)"),
    ),
    kernel="(mm_lru_activate, mm_vmscan_lru_shrink_active)",
)

KSWAPD_WAKE = _define(
    "kswapd_wake",
    "kswapd starts a balance_pgdat() run (a zone fell below its low watermark)",
    (
        Field("nid", "i32", "NUMA node"),
        Field("zid", "i32", "highest zone index to balance"),
        Field("order", "i32", "allocation order"),
    ),
    kernel="vmscan:mm_vmscan_kswapd_wake",
)

KSWAPD_SLEEP = _define(
    "kswapd_sleep",
    "kswapd goes back to sleep (the node is balanced above the high watermark, or hopeless)",
    (
        Field("nid", "i32", "NUMA node"),
        _u64("nr_reclaimed", "pages reclaimed in this run", "pages"),
    ),
    kernel="vmscan:mm_vmscan_kswapd_sleep",
)

RECLAIM_BEGIN = _define(
    "reclaim_begin",
    "direct or memory-cgroup reclaim begins in the allocating task",
    (
        Field("kind", "enum", "which reclaim", values=("direct", "memcg")),
        Field("order", "i32", "allocation order"),
        _u64("gfp_flags", "allocation flags"),
        Field("memcg", "str", "memory cgroup being reclaimed ('' for direct reclaim)"),
    ),
    kernel="vmscan:mm_vmscan_direct_reclaim_begin, vmscan:mm_vmscan_memcg_reclaim_begin",
)

RECLAIM_END = _define(
    "reclaim_end",
    "direct or memory-cgroup reclaim ends",
    (
        Field("kind", "enum", "which reclaim", values=("direct", "memcg")),
        _u64("nr_scanned", "pages scanned", "pages"),
        _u64("nr_reclaimed", "pages reclaimed", "pages"),
        Field("memcg", "str", "memory cgroup reclaimed ('' for direct reclaim)"),
    ),
    kernel="vmscan:mm_vmscan_direct_reclaim_end, vmscan:mm_vmscan_memcg_reclaim_end",
)

SHRINK_LIST = _define(
    "shrink_list",
    "one shrink_inactive_list() pass over an LRU list, with why pages stayed",
    (
        Field("lru", "enum", "list scanned", values=LRU_LISTS),
        Field("priority", "i32", "scan priority (12 = 1/4096 of the list ... 0 = all)"),
        _u64("nr_scanned", "pages scanned", "pages"),
        _u64("nr_reclaimed", "pages freed", "pages"),
        _u64("nr_dirty", "dirty file pages found (written back, not freed now)", "pages"),
        _u64("nr_activate", "referenced pages moved to the active list", "pages"),
        _u64("nr_mapped_kept", "mapped pages kept (referenced, or could not be unmapped)", "pages"),
        _u64("nr_no_swap", "anon/shmem pages kept because swap is absent or full", "pages"),
        Field("memcg", "str", "memory cgroup of the lruvec ('' = node)"),
    ),
    kernel="vmscan:mm_vmscan_lru_shrink_inactive",
)

SHRINK_SLAB = _define(
    "shrink_slab",
    "the superblock shrinker scanned the dentry and inode caches during reclaim",
    (
        Field("shrinker", "str", "shrinker name"),
        _u64("nr_objects", "freeable objects as reported (count x vfs_cache_pressure / 100)", "pages"),
        _u64("nr_to_scan", "objects the shrinker was asked to scan", "pages"),
        _u64("freed", "slab freed", "pages"),
        Field("priority", "i32", "reclaim priority"),
    ),
    kernel="vmscan:mm_shrink_slab_start + vmscan:mm_shrink_slab_end",
)

SWAP_OUT = _define(
    "swap_out",
    "an anonymous or shmem page was written to swap and freed",
    (
        _u64("pfn", "page frame freed"),
        _u64("slot", "swap slot (offset in the swap device, pages)"),
        Field("owner", "i32", "pid owning the page (anon), or 0 for shmem"),
        _u64("ino", "shmem inode (0 for anon)"),
        _u64("index", "virtual page number (anon) or offset in the shmem object"),
        Field("memcg_id", "u16", "memory cgroup charged (cgroup events name it; 1 = /)"),
    ),
    kernel="(none: swap_writepage; count in /proc/vmstat pswpout)",
)

SWAP_IN = _define(
    "swap_in",
    "a swapped page was read back (a major fault)",
    (
        _u64("address", "faulting virtual address (0 for a shmem read)"),
        _u64("slot", "swap slot read"),
        _u64("pfn", "new page frame"),
        _u64("ino", "shmem inode (0 for anon)"),
    ),
    kernel="(none: swap_read_folio; /proc/vmstat pswpin)",
)

VM_ENOUGH_MEMORY = _define(
    "vm_enough_memory",
    "the overcommit policy refused a charge to Committed_AS (ENOMEM)",
    (
        _u64("nr_pages", "pages asked for", "pages"),
        _u64("committed_bytes", "Committed_AS before the request", "bytes"),
        _u64("limit_bytes", "what mode 2 allowed (CommitLimit less reserves), or RAM+swap in mode 0", "bytes"),
        Field("mode", "i32", "vm.overcommit_memory"),
        Field("op", "str", "the call charged: mmap, brk, fork, shmget, shmem"),
    ),
    kernel="(none: __vm_enough_memory returns -ENOMEM; 6.6+ logs 'not enough memory for the allocation')",
)

OOM_SCORE_ADJ_UPDATE = _define(
    "oom_score_adj_update",
    "a process's oom_score_adj was written",
    (
        Field("comm", "str", "command name"),
        Field("oom_score_adj", "i32", "new value (-1000..1000)"),
    ),
    kernel="oom:oom_score_adj_update",
)

CONSTRAINTS = ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY", "CONSTRAINT_MEMCG")

OOM_CANDIDATE = _define(
    "oom_candidate",
    "one row of the OOM killer's task dump: an eligible task and its badness",
    (
        Field("oom_id", "u32", "which OOM invocation (1, 2, ...)"),
        Field("tgid", "i32", "process id"),
        Field("uid", "u32", "user id"),
        Field("comm", "str", "command name"),
        _u64("total_vm", "mapped virtual memory", "pages"),
        _u64("rss_anon", "resident anonymous pages", "pages"),
        _u64("rss_file", "resident file pages", "pages"),
        _u64("rss_shmem", "resident shmem pages", "pages"),
        _u64("swapents", "swap entries", "pages"),
        _u64("pgtables_bytes", "page-table memory", "bytes"),
        Field("oom_score_adj", "i32", "oom_score_adj"),
        Field("points", "i64", "oom_badness(); LONG_MIN (-2**63) for a task that can never be chosen"),
    ),
    kernel="(dmesg 'Tasks state' table, dump_task())",
)

OOM_KILL = _define(
    "oom_kill",
    "the OOM killer chose and killed a victim (pid is the task that triggered it)",
    (
        Field("oom_id", "u32", "which OOM invocation (1, 2, ...)"),
        Field("victim_pid", "i32", "the victim"),
        Field("comm", "str", "victim command name"),
        _u64("total_vm_kb", "victim mapped memory", "kB"),
        _u64("anon_rss_kb", "victim anonymous RSS", "kB"),
        _u64("file_rss_kb", "victim file RSS", "kB"),
        _u64("shmem_rss_kb", "victim shmem RSS", "kB"),
        Field("uid", "u32", "victim user id"),
        _u64("pgtables_kb", "victim page tables", "kB"),
        Field("oom_score_adj", "i32", "victim oom_score_adj"),
        Field("points", "i64", "victim's oom_badness()"),
        _u64("totalpages", "the badness denominator: RAM+swap, or the memcg limit", "pages"),
        Field("constraint", "enum", "constrained_alloc() result", values=CONSTRAINTS),
        Field("memcg", "str", "the OOM memcg path ('' for a global OOM)"),
        Field("task_memcg", "str", "the victim's memcg path"),
        _u64("gfp_mask", "allocation flags of the triggering allocation"),
        Field("order", "i32", "allocation order"),
        Field("message", "enum", "the kill message",
              values=("Out of memory", "Memory cgroup out of memory", "Out of memory (oom_kill_allocating_task)")),
    ),
    kernel="oom:mark_victim (6.10+ fields) + dmesg Killed process line",
)

OOM_REAP = _define(
    "oom_reap",
    "the OOM reaper unmapped a victim's private memory",
    (
        Field("victim_pid", "i32", "the victim"),
        Field("comm", "str", "victim command name"),
        Field("success", "bool", "false: 'unable to reap'"),
        _u64("anon_rss_kb", "anonymous RSS left", "kB"),
        _u64("file_rss_kb", "file RSS left", "kB"),
        _u64("shmem_rss_kb", "shmem RSS left", "kB"),
    ),
    kernel="oom:finish_task_reaping + dmesg oom_reaper line",
)

OOM_PANIC = _define(
    "oom_panic",
    "the kernel panicked instead of killing (panic_on_oom, or nothing killable)",
    (
        Field("oom_id", "u32", "which OOM invocation"),
        Field("reason", "str", "the panic message"),
        Field("constraint", "enum", "constrained_alloc() result", values=CONSTRAINTS),
        _u64("gfp_mask", "allocation flags of the allocation that failed"),
        Field("order", "i32", "allocation order"),
    ),
    kernel="(panic)",
)

ZONEINFO = _define(
    "zoneinfo",
    "a zone's size, free pages and watermarks (at boot, at each OOM, when watermarks change)",
    (
        Field("zone", "str", "zone name: DMA, DMA32, Normal"),
        Field("zid", "i32", "zone index"),
        _u64("present_pages", "pages in the zone", "pages"),
        _u64("managed_pages", "pages the allocator manages", "pages"),
        _u64("nr_free", "free pages", "pages"),
        _u64("wmark_min", "min watermark", "pages"),
        _u64("wmark_low", "low watermark", "pages"),
        _u64("wmark_high", "high watermark", "pages"),
        _u64("lowmem_reserve_max", "largest lowmem reserve", "pages"),
        Field("reason", "enum", "why reported", values=("boot", "oom", "sysctl")),
    ),
    kernel="(/proc/zoneinfo, dmesg zone lines)",
)

CGROUP = _define(
    "cgroup",
    "a memory cgroup was created, given a limit, or given a task",
    (
        Field("op", "enum", "what happened", values=("mkdir", "set_max", "attach")),
        Field("path", "str", "cgroup path, e.g. /oracle_oom"),
        Field("memcg_id", "u16", "the cgroup's id in memcg_id fields of other events (1 = /)"),
        _u64("limit_bytes", "memory.max (0 = unlimited)", "bytes"),
        Field("task_pid", "i32", "attached task (attach only)"),
    ),
    kernel="(cgroupfs writes)",
)

MEMCG_STAT = _define(
    "memcg_stat",
    "a memory cgroup's usage, limit and memory.stat (at each memcg OOM)",
    (
        Field("path", "str", "cgroup path"),
        _u64("usage_bytes", "memory.current / usage_in_bytes", "bytes"),
        _u64("limit_bytes", "memory.max / limit_in_bytes", "bytes"),
        _u64("failcnt", "charges that hit the limit"),
        _u64("swap_bytes", "swap charged", "bytes"),
        _u64("anon_bytes", "anonymous memory (v1: rss)", "bytes"),
        _u64("file_bytes", "page cache incl. shmem (v1: cache)", "bytes"),
        _u64("shmem_bytes", "shmem", "bytes"),
        _u64("file_mapped_bytes", "mapped page cache", "bytes"),
        _u64("file_dirty_bytes", "dirty page cache", "bytes"),
        _u64("kernel_bytes", "kernel memory (page tables, stacks)", "bytes"),
        _u64("inactive_anon_bytes", "", "bytes"),
        _u64("active_anon_bytes", "", "bytes"),
        _u64("inactive_file_bytes", "", "bytes"),
        _u64("active_file_bytes", "", "bytes"),
        _u64("unevictable_bytes", "", "bytes"),
        _u64("pgfault", "page faults charged to the cgroup"),
        _u64("pgmajfault", "major faults charged to the cgroup"),
        _u64("pgpgin", "pages charged to the cgroup (v1 pgpgin)", "pages"),
        _u64("pgpgout", "pages uncharged from the cgroup (v1 pgpgout)", "pages"),
    ),
    kernel="(memory.stat; dmesg 'Memory cgroup stats for')",
)

MEMINFO_SAMPLE = _define(
    "meminfo_sample",
    "a periodic reading of /proc/meminfo (vm.stat_interval-like, every 100 ms simulated)",
    tuple(Field(f, "u64", f"/proc/meminfo {m}", unit="bytes") for m, f in MEMINFO_FIELDS),
    kernel="(a periodic read of /proc/meminfo)",
)

RECLAIM_THROTTLED = _define(
    "reclaim_throttled",
    "a reclaiming task slept in reclaim_throttle(): waiting for writeback, or its target congested",
    (
        Field("nid", "i32", "NUMA node"),
        Field("timeout_us", "i64", "how long it would sleep at most (HZ/10 for writeback)", "us"),
        Field("delayed_us", "i64", "how long it slept, counted in jiffies as the kernel counts it", "us"),
        Field("reason", "enum", "enum vmscan_throttle_state: what it waited for",
              values=("writeback", "isolated", "noprogress", "congested")),
        Field("memcg", "str", "memory cgroup being reclaimed ('' for direct reclaim and kswapd)"),
    ),
    kernel="vmscan:mm_vmscan_throttled",
)

BALANCE_DIRTY_PAGES = _define(
    "balance_dirty_pages",
    "a writer paused by dirty throttling: dirty memory of a domain above its freerun ceiling",
    (
        Field("memcg", "str", "the domain that throttled: a cgroup v2 memory cgroup, or '' for the global one"),
        _u64("limit_pages", "the domain's dirty threshold (vm.dirty_ratio of its dirtyable memory)", "pages"),
        _u64("setpoint_pages", "the dirty level the throttle steers to", "pages"),
        _u64("dirty_pages", "dirty and writeback pages of the domain", "pages"),
        _u64("task_ratelimit_pages", "pages per second the writer is let dirty (0: over the limit)", "pages"),
        _u64("dirtied_pages", "pages the writer dirtied since its last pause", "pages"),
        Field("pause_ns", "i64", "how long the writer sleeps", "ns"),
    ),
    kernel="writeback:balance_dirty_pages",
)

LAZYFREE_DISCARD = _define(
    "lazyfree_discard",
    "reclaim freed a lazily freed (MADV_FREE) anonymous page without I/O: its ptes are gone",
    (
        _u64("pfn", "page frame freed"),
        Field("owner", "i32", "pid owning the page"),
        _u64("index", "virtual page number the page was first mapped at (as swap_out's index)"),
        Field("memcg_id", "u16", "memory cgroup that was charged (cgroup events name it; 1 = /)"),
    ),
    kernel="(none: /proc/vmstat pglazyfreed)",
)

#: madvise(2) advice memtrace models, in this order.
MADV_ADVICE = ("dontneed", "free", "cold", "pageout", "willneed")

MADVISE = _define(
    "madvise",
    "an madvise(2) call on a range of one mapping, with what it did",
    (
        _u64("addr", "start of the range"),
        _u64("len_bytes", "length of the range", "bytes"),
        Field("advice", "enum", "MADV_DONTNEED, MADV_FREE, MADV_COLD, MADV_PAGEOUT or MADV_WILLNEED",
              values=MADV_ADVICE),
        Field("handle", "str", "the scenario's name for the mapping"),
        _u64("nr_pages", "pages acted on: unmapped (dontneed), made lazyfree (free), deactivated (cold), "
                         "reclaimed (pageout), read in (willneed)", "pages"),
        Field("ret", "i64", "0, or -errno (-22 is EINVAL)"),
    ),
    kernel="syscalls:sys_enter_madvise + syscalls:sys_exit_madvise",
)

MREMAP = _define(
    "mremap",
    "an mremap(2) call: a mapping grown, shrunk or moved (its pages move with it)",
    (
        _u64("addr", "start of the mapping before the call"),
        _u64("old_len_bytes", "length before the call", "bytes"),
        _u64("new_len_bytes", "length asked for", "bytes"),
        Field("flags", "u32", "MREMAP_MAYMOVE=1 MREMAP_FIXED=2 MREMAP_DONTUNMAP=4"),
        _u64("new_addr", "start of the mapping after the call (addr if it stayed; 0 on failure)"),
        Field("handle", "str", "the scenario's name for the mapping"),
        Field("charged_pages", "i64", "change of Committed_AS by this call (VM_ACCOUNT)", "pages"),
        Field("ret", "i64", "0, or -errno (-12 is ENOMEM)"),
    ),
    kernel="syscalls:sys_enter_mremap + syscalls:sys_exit_mremap",
)

MPROTECT = _define(
    "mprotect",
    "an mprotect(2) call on a range of one mapping (a partial range splits it)",
    (
        _u64("addr", "start of the range"),
        _u64("len_bytes", "length of the range", "bytes"),
        Field("prot", "u8", "PROT_READ=1 | PROT_WRITE=2 | PROT_EXEC=4"),
        Field("handle", "str", "the scenario's name for the mapping"),
        Field("charged_pages", "i64", "change of Committed_AS by this call (VM_ACCOUNT)", "pages"),
        Field("ret", "i64", "0, or -errno (-12 is ENOMEM, -13 EACCES)"),
    ),
    kernel="syscalls:sys_enter_mprotect + syscalls:sys_exit_mprotect",
)

EXEC = _define(
    "exec",
    "execve(2) replaced the process's image: a new mm, every old mapping gone (a comm change "
    "without an exec is a task_rename)",
    (
        Field("comm", "str", "command name of the new image"),
        Field("filename", "str", "the file executed ('' when the trace does not name it)"),
        Field("old_pid", "i32", "the pid before the exec (a non-leader thread's exec takes the "
                                "leader's pid; else the pid itself)"),
    ),
    kernel="sched:sched_process_exec",
)

TASK_RENAME = _define(
    "task_rename",
    "the comm changed without an exec (prctl(PR_SET_NAME), a write to /proc/PID/comm): the "
    "mappings stay",
    (
        Field("oldcomm", "str", "command name before"),
        Field("newcomm", "str", "command name after"),
    ),
    kernel="task:task_rename",
)

#: Every built-in tracepoint, in registry id order (definition order above).
TRACEPOINTS: tuple[Tracepoint, ...] = tuple(_SCHEMA)


def default_registry() -> Registry:
    """A registry of every built-in tracepoint, in their fixed id order."""
    return Registry(TRACEPOINTS)


#: Kinds of field types, as an analysis reads them.
_TYPE_KIND = {"str": "a string", "enum": "an enum"}


def _kind(field_type: str) -> str:
    return _TYPE_KIND.get(field_type, "a number")


#: The values each numeric field type holds, as (lowest, highest).
_RANGES: dict[str, tuple[int, int]] = {
    "bool": (0, 1), "u8": (0, 2**8 - 1), "u16": (0, 2**16 - 1), "u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1),
    "i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1),
}


def _within(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def check_fields(tp: Tracepoint, reader: str, required: Iterable[str] = (),
                 optional: Iterable[str] = ()) -> None:
    """Check a trace's schema of ``tp`` against what ``reader`` (``"memtrace
    report"``) reads: each ``required`` field must exist, and each field read
    (``required``, or ``optional`` when present) must be of the kind (string, enum,
    number) this memtrace's schema gives it, and a number field may hold no value
    this memtrace's type cannot (an ``i64`` where it reads ``u64`` could be
    negative; a narrower type is fine). TraceFormatError names the tracepoint and
    the field otherwise: a trace written with another schema (a renamed or retyped
    field) is refused in one line instead of failing half-way."""
    ref = _SCHEMA.get(tp.name)
    for name in required:
        if not tp.has_field(name):
            raise TraceFormatError(f"trace schema: tracepoint {tp.name!r} has no field {name!r}, which "
                                   f"{reader} reads (the trace was written with another schema)")
    for name in (*required, *optional):
        if ref is None or not ref.has_field(name) or not tp.has_field(name):
            continue
        have, want = tp.field(name).type, ref.field(name).type
        if _kind(have) != _kind(want):
            raise TraceFormatError(f"trace schema: field {name!r} of tracepoint {tp.name!r} is {have}, but "
                                   f"{reader} reads it as {_kind(want)} ({want})")
        if have in _RANGES and want in _RANGES and not _within(_RANGES[have], _RANGES[want]):
            raise TraceFormatError(f"trace schema: field {name!r} of tracepoint {tp.name!r} is {have}, but "
                                   f"{reader} reads it as {want}, which cannot hold every {have} value")


