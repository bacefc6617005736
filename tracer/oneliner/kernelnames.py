"""Probe names as bpftrace spells them: real kernel tracepoints read through memtrace's.

``tracepoint:oom:mark_victim``, ``t:exceptions:page_fault_user`` and
``tracepoint:kmem:rss_stat`` name a real kernel tracepoint. Each one memtrace
records (the importer's mapping, ``analysis/importers/mapping/``, turns it into
one of memtrace's tracepoints; the schema's ``kernel`` text names it) is a
:class:`KernelProbe` here: the memtrace tracepoint it reads, the filter that picks
its events out of that tracepoint's (``mm_vmscan_direct_reclaim_begin`` is a
``reclaim_begin`` whose ``kind`` is ``direct``), and its fields under the kernel's
names (``args.total_vm`` of ``oom:mark_victim`` is ``oom_kill``'s
``total_vm_kb``; ``args.pid`` is the victim, as in the kernel).

Each kernel field is an expression of the one-liner language over the memtrace
event (``args.NAME`` there is memtrace's field, ``pid`` the builtin; an enum field
read as a kernel integer gives its code, the kernel's value), or is not recorded
(the kernel's ``ip`` of a page fault, ``mm_id`` of rss_stat): reading it is an
error that says so. The kernel's fields and their C types follow
``include/trace/events/{syscalls,exceptions,kmem,filemap,vmscan,oom,sched,
writeback}.h`` and the syscall ``format`` files of 6.x kernels.

Simplified: an ``enter`` and an ``exit`` syscall tracepoint read the same memtrace
event (memtrace records the call once, with its result), so both fire at the same
time and a latency between them is 0.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

__all__ = ["KERNEL_PROBES", "KernelField", "KernelProbe", "ProbeRow", "kernel_probe", "match_kernel_probes",
           "probe_listing"]


@dataclass(frozen=True)
class KernelField:
    """One field of a real tracepoint: its C type and name, and the expression
    (one-liner language, over the memtrace event) that gives it, or "" when memtrace
    does not record it."""

    ctype: str
    name: str
    expr: str = ""
    note: str = ""


@dataclass(frozen=True)
class KernelProbe:
    """A real kernel tracepoint (``system:event``) and the memtrace tracepoint it reads."""

    system: str
    event: str
    tracepoint: str
    fields: tuple[KernelField, ...]
    #: expression selecting this probe's events among the memtrace tracepoint's ("" = all)
    where: str = ""
    note: str = ""
    _index: dict[str, KernelField] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.fields})

    @property
    def name(self) -> str:
        """``system:event``."""
        return f"{self.system}:{self.event}"

    @property
    def probe(self) -> str:
        """The probe as bpftrace prints it (``probe`` builtin, ``-l``)."""
        return f"tracepoint:{self.system}:{self.event}"

    def field(self, name: str) -> KernelField | None:
        return self._index.get(name)


def _f(spec: str, expr: str = "", note: str = "") -> KernelField:
    """``"unsigned long len"`` -> KernelField("unsigned long", "len", expr);
    ``"char comm[16]"`` -> KernelField("char[16]", "comm", ...)."""
    ctype, _, name = spec.rpartition(" ")
    name, bracket, size = name.partition("[")
    return KernelField(ctype + bracket + size, name, expr, note)


_NR = _f("int __syscall_nr")
_EXIT_NOTE = "the same event as the enter probe: memtrace records the call once, with its result"

KERNEL_PROBES: tuple[KernelProbe, ...] = (
    KernelProbe("syscalls", "sys_enter_mmap", "mmap", (
        _NR, _f("unsigned long addr", note="the hint; memtrace's mmap holds the address mapped (args.addr of "
                                           "sys_exit_mmap's ret)"),
        _f("unsigned long len", "args.len_bytes"), _f("unsigned long prot", "args.prot"),
        _f("unsigned long flags", "args.flags"), _f("unsigned long fd"), _f("unsigned long off"))),
    KernelProbe("syscalls", "sys_exit_mmap", "mmap", (
        _NR, _f("long ret", "args.ret < 0 ? args.ret : args.addr")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_munmap", "munmap", (
        _NR, _f("unsigned long addr", "args.addr"), _f("size_t len", "args.len_bytes"))),
    KernelProbe("syscalls", "sys_exit_munmap", "munmap", (_NR, _f("long ret")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_brk", "brk", (_NR, _f("unsigned long brk", "args.brk"))),
    KernelProbe("syscalls", "sys_exit_brk", "brk", (_NR, _f("long ret", "args.ret")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_mprotect", "mprotect", (
        _NR, _f("unsigned long start", "args.addr"), _f("size_t len", "args.len_bytes"),
        _f("unsigned long prot", "args.prot"))),
    KernelProbe("syscalls", "sys_exit_mprotect", "mprotect", (_NR, _f("long ret", "args.ret")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_madvise", "madvise", (
        _NR, _f("unsigned long start", "args.addr"), _f("size_t len_in", "args.len_bytes"),
        _f("int behavior", note="memtrace's madvise has the advice by name: args.advice"))),
    KernelProbe("syscalls", "sys_exit_madvise", "madvise", (_NR, _f("long ret", "args.ret")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_mremap", "mremap", (
        _NR, _f("unsigned long addr", "args.addr"), _f("unsigned long old_len", "args.old_len_bytes"),
        _f("unsigned long new_len", "args.new_len_bytes"), _f("unsigned long flags", "args.flags"),
        _f("unsigned long new_addr", note="the MREMAP_FIXED target; memtrace's mremap holds where it went "
                                          "(args.new_addr)"))),
    KernelProbe("syscalls", "sys_exit_mremap", "mremap", (
        _NR, _f("long ret", "args.ret < 0 ? args.ret : args.new_addr")), note=_EXIT_NOTE),
    KernelProbe("syscalls", "sys_enter_openat", "file_open", (
        _NR, _f("int dfd"), _f("const char * filename", "args.path"), _f("int flags"), _f("umode_t mode"))),
    KernelProbe("syscalls", "sys_enter_unlink", "unlink", (_NR, _f("const char * pathname", "args.path"))),
    KernelProbe("exceptions", "page_fault_user", "page_fault", (
        _f("unsigned long address", "args.address"), _f("unsigned long ip"),
        _f("unsigned long error_code", note="memtrace's page_fault has args.write and args.major"))),
    KernelProbe("kmem", "rss_stat", "rss_stat", (
        _f("unsigned int mm_id", note="memtrace names the mm by its owner: args.mm_pid"),
        _f("unsigned int curr", "args.curr"),
        _f("int member", "args.member", "the counter's number (NR_MM_COUNTERS order); args.member "
                                          "of memtrace's rss_stat is its name"),
        _f("long size", "args.size_bytes"))),
    KernelProbe("filemap", "mm_filemap_add_to_page_cache", "page_cache_add", (
        _f("unsigned long pfn", "args.pfn"), _f("unsigned long i_ino", "args.ino"),
        _f("unsigned long index", "args.index"), _f("dev_t s_dev"),
        _f("unsigned char order", "0", "memtrace has one event per page"))),
    KernelProbe("filemap", "mm_filemap_delete_from_page_cache", "page_cache_delete", (
        _f("unsigned long pfn", "args.pfn"), _f("unsigned long i_ino", "args.ino"),
        _f("unsigned long index", "args.index"), _f("dev_t s_dev"),
        _f("unsigned char order", "0", "memtrace has one event per page"))),
    KernelProbe("vmscan", "mm_vmscan_kswapd_wake", "kswapd_wake", (
        _f("int nid", "args.nid"), _f("int zid", "args.zid"), _f("int order", "args.order"))),
    KernelProbe("vmscan", "mm_vmscan_kswapd_sleep", "kswapd_sleep", (_f("int nid", "args.nid"),)),
    KernelProbe("vmscan", "mm_vmscan_direct_reclaim_begin", "reclaim_begin", (
        _f("int order", "args.order"), _f("unsigned long gfp_flags", "args.gfp_flags")),
        where='args.kind == "direct"'),
    KernelProbe("vmscan", "mm_vmscan_memcg_reclaim_begin", "reclaim_begin", (
        _f("int order", "args.order"), _f("unsigned long gfp_flags", "args.gfp_flags")),
        where='args.kind == "memcg"'),
    KernelProbe("vmscan", "mm_vmscan_direct_reclaim_end", "reclaim_end", (
        _f("unsigned long nr_reclaimed", "args.nr_reclaimed"),), where='args.kind == "direct"'),
    KernelProbe("vmscan", "mm_vmscan_memcg_reclaim_end", "reclaim_end", (
        _f("unsigned long nr_reclaimed", "args.nr_reclaimed"),), where='args.kind == "memcg"'),
    KernelProbe("vmscan", "mm_vmscan_lru_shrink_inactive", "shrink_list", (
        _f("int nid"), _f("unsigned long nr_scanned", "args.nr_scanned"),
        _f("unsigned long nr_reclaimed", "args.nr_reclaimed"), _f("unsigned long nr_dirty", "args.nr_dirty"),
        _f("unsigned long nr_writeback"), _f("unsigned long nr_congested"), _f("unsigned long nr_immediate"),
        _f("unsigned int nr_activate0"), _f("unsigned int nr_activate1"), _f("unsigned long nr_ref_keep"),
        _f("unsigned long nr_unmap_fail"), _f("int priority", "args.priority"), _f("int reclaim_flags"))),
    KernelProbe("oom", "mark_victim", "oom_kill", (
        _f("int pid", "args.victim_pid"), _f("__data_loc char[] comm", "args.comm"),
        _f("unsigned long total_vm", "args.total_vm_kb"), _f("unsigned long anon_rss", "args.anon_rss_kb"),
        _f("unsigned long file_rss", "args.file_rss_kb"), _f("unsigned long shmem_rss", "args.shmem_rss_kb"),
        _f("uid_t uid", "args.uid"), _f("unsigned long pgtables", "args.pgtables_kb"),
        _f("short oom_score_adj", "args.oom_score_adj"))),
    KernelProbe("oom", "oom_score_adj_update", "oom_score_adj_update", (
        _f("pid_t pid", "pid"), _f("char comm[16]", "args.comm"), _f("short oom_score_adj", "args.oom_score_adj"))),
    KernelProbe("oom", "finish_task_reaping", "oom_reap", (_f("int pid", "args.victim_pid"),),
                where="args.success"),
    KernelProbe("oom", "skip_task_reaping", "oom_reap", (_f("int pid", "args.victim_pid"),),
                where="!args.success"),
    KernelProbe("sched", "sched_process_fork", "fork", (
        _f("char parent_comm[16]", "comm"), _f("pid_t parent_pid", "pid"),
        _f("char child_comm[16]", "args.child_comm"), _f("pid_t child_pid", "args.child_pid"))),
    KernelProbe("sched", "sched_process_exit", "exit", (
        _f("char comm[16]", "args.comm"), _f("pid_t pid", "pid"), _f("int prio"))),
    KernelProbe("sched", "sched_process_exec", "process_start", (
        _f("__data_loc char[] filename", note="memtrace has the new comm: comm"), _f("pid_t pid", "pid"),
        _f("pid_t old_pid", "pid")),
        note="memtrace's process_start: also a process first seen in a trace, or a scenario's process"),
    KernelProbe("writeback", "writeback_single_inode", "writeback", (
        _f("char name[32]"), _f("ino_t ino", "args.ino"), _f("unsigned long state"),
        _f("unsigned long dirtied_when"), _f("unsigned long writeback_index"), _f("long nr_to_write"),
        _f("unsigned long wrote", "args.nr_pages"), _f("ino_t cgroup_ino"))),
)

_BY_NAME = {p.name: p for p in KERNEL_PROBES}


def kernel_probe(name: str) -> KernelProbe | None:
    """The probe called ``system:event``, or None."""
    return _BY_NAME.get(name)


def match_kernel_probes(system: str, event: str) -> list[KernelProbe]:
    """The probes whose system and event match the globs ``system`` and ``event``."""
    return [p for p in KERNEL_PROBES
            if fnmatch.fnmatchcase(p.system, system) and fnmatch.fnmatchcase(p.event, event)]


@dataclass(frozen=True)
class ProbeRow:
    """One probe of ``memtrace trace -l``: its name as a program writes it, the
    memtrace tracepoint it reads, and its fields as (type, name, where from)."""

    probe: str
    tracepoint: str
    fields: tuple[tuple[str, str, str], ...]


def probe_listing(pattern: str | None = None) -> list[ProbeRow]:
    """The probes a program can name, as ``bpftrace -l`` lists them: the kernel
    tracepoints memtrace records (``tracepoint:SYSTEM:EVENT``), then memtrace's own
    (``tracepoint:NAME``). ``pattern`` is a glob over the whole probe name; one
    without ``:`` also matches the event name alone (``'*rss*'``)."""
    from ..tracepoints import default_registry

    def wanted(probe: str) -> bool:
        if pattern is None:
            return True
        if fnmatch.fnmatchcase(probe, pattern):
            return True
        return ":" not in pattern and fnmatch.fnmatchcase(probe.rpartition(":")[2], pattern)

    rows = []
    for kp in sorted(KERNEL_PROBES, key=lambda p: p.probe):
        if not wanted(kp.probe):
            continue
        where = f" (where {kp.where})" if kp.where else ""
        fields = tuple((f.ctype, f.name, f"= {kp.tracepoint}{where}: {f.expr}" if f.expr else
                        f"not recorded{': ' + f.note if f.note else ''}") for f in kp.fields
                       if f.name != "__syscall_nr")
        rows.append(ProbeRow(kp.probe, kp.tracepoint, fields))
    for tp in default_registry():
        probe = f"tracepoint:{tp.name}"
        if wanted(probe):
            rows.append(ProbeRow(probe, tp.name, tuple((f.type, f.name, "") for f in tp.fields)))
    return rows
