"""Every tracepoint memtrace knows, defined once.

Field names follow the real kernel's where it has one (``kmem:rss_stat``,
``filemap:mm_filemap_add_to_page_cache``, ``exceptions:page_fault_user``); sizes
carry their unit in the name (``len_bytes``, ``size_bytes``, ``nr_pages``).
"""

from __future__ import annotations

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


MMAP = Tracepoint(
    "mmap",
    "an mmap(2) call, with its result; shmat(2) also maps through here",
    (
        _u64("addr", "start address of the new mapping (0 on failure)"),
        _u64("len_bytes", "length of the mapping", "bytes"),
        Field("prot", "u8", "PROT_READ=1 | PROT_WRITE=2 | PROT_EXEC=4"),
        Field("flags", "u32", "MAP_SHARED=0x1 MAP_PRIVATE=0x2 MAP_ANONYMOUS=0x20 MAP_LOCKED=0x2000 MAP_NORESERVE=0x4000"),
        Field("vma_kind", "enum", "kind of the mapping", values=VMA_KINDS),
        _u64("ino", "inode of the backing file or shmem object (0 for private anon)"),
        Field("path", "str", "backing file path, or '' for anonymous memory"),
        Field("handle", "str", "the scenario's name for this mapping"),
        _u64("charged_pages", "pages charged to Committed_AS by this call", "pages"),
        Field("ret", "i64", "0 on success, or -errno (-12 is ENOMEM)"),
    ),
    kernel="syscalls:sys_enter_mmap + syscalls:sys_exit_mmap",
)

MUNMAP = Tracepoint(
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

BRK = Tracepoint(
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

PAGE_FAULT = Tracepoint(
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

COW = Tracepoint(
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

FORK = Tracepoint(
    "fork",
    "a process forked; the child shares its parent's pages copy-on-write",
    (
        Field("child_pid", "i32", "pid of the new process"),
        Field("child_comm", "str", "command name of the child"),
        _u64("charged_pages", "Committed_AS charged for the child's VM_ACCOUNT VMAs", "pages"),
    ),
    kernel="sched:sched_process_fork",
)

EXIT = Tracepoint(
    "exit",
    "a process exited and its mm was torn down",
    (
        Field("comm", "str", "command name"),
        Field("code", "i32", "exit code"),
    ),
    kernel="sched:sched_process_exit",
)

FILE_OPEN = Tracepoint(
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

UNLINK = Tracepoint(
    "unlink",
    "a file name was removed; its pages go when the last user does",
    (
        Field("path", "str", "file path"),
        _u64("ino", "inode number"),
    ),
    kernel="syscalls:sys_enter_unlink",
)

SHM = Tracepoint(
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

PAGE_CACHE_ADD = Tracepoint(
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

PAGE_CACHE_DELETE = Tracepoint(
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

WRITEBACK = Tracepoint(
    "writeback",
    "dirty pages of one file written back and marked clean",
    (
        _u64("ino", "inode written back"),
        _u64("nr_pages", "pages written", "pages"),
        Field("reason", "enum", "what started it", values=("sync", "periodic", "background", "reclaim")),
    ),
    kernel="writeback:writeback_single_inode",
)

DROP_CACHES = Tracepoint(
    "drop_caches",
    "a write to /proc/sys/vm/drop_caches",
    (
        Field("value", "u32", "1 page cache, 2 slab (dentries, inodes), 3 both"),
        _u64("nr_pages", "page-cache pages freed", "pages"),
        _u64("slab_pages", "reclaimable slab pages freed", "pages"),
    ),
    kernel="(none: dmesg 'drop_caches: %d')",
)

RSS_STAT = Tracepoint(
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

SYSCTL_SET = Tracepoint(
    "sysctl_set",
    "a sysctl was written",
    (
        Field("name", "str", "sysctl name, e.g. vm.swappiness"),
        Field("value", "str", "new value"),
        Field("old", "str", "previous value"),
    ),
    kernel="(none)",
)

SNAPSHOT = Tracepoint(
    "snapshot",
    "a labelled reading of /proc/meminfo taken by a scenario step",
    (Field("label", "str", "the scenario's label for this moment"),)
    + tuple(Field(f, "u64", f"/proc/meminfo {m}", unit="bytes") for m, f in MEMINFO_FIELDS),
    kernel="(none: a read of /proc/meminfo)",
)

PROCESS_START = Tracepoint(
    "process_start",
    "a scenario process started (not forked): its pid, name and oom_score_adj",
    (
        Field("comm", "str", "command name"),
        Field("uid", "u32", "user id"),
        Field("oom_score_adj", "i32", "initial oom_score_adj"),
    ),
    kernel="sched:sched_process_exec",
)

TRACEPOINTS: tuple[Tracepoint, ...] = (
    MMAP,
    MUNMAP,
    BRK,
    PAGE_FAULT,
    COW,
    FORK,
    EXIT,
    PROCESS_START,
    FILE_OPEN,
    UNLINK,
    SHM,
    PAGE_CACHE_ADD,
    PAGE_CACHE_DELETE,
    WRITEBACK,
    DROP_CACHES,
    RSS_STAT,
    SYSCTL_SET,
    SNAPSHOT,
)


def default_registry() -> Registry:
    """A registry of every built-in tracepoint, in their fixed id order."""
    return Registry(TRACEPOINTS)
