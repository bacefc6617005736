"""OOM reports read from a kernel log, as the raw facts they print and how each was read.

The parser reads the layouts of :mod:`.formats` (``../shared/reference/kernel-mm-facts.md``
§3) for every tree read there (2.6.32, 3.4, 3.10, 4.9, 4.19, 5.4, 5.15, 6.6, 6.8+) and
the older and vendor forms real logs hold: the ``invoked oom-killer`` header (§3.2; also
2.6.2x's ``oomkilladj=`` and the pre-2.6.19 header that names no process), the dump_stack
``CPU:``/``Pid:`` line (kernel release, allocating pid; taints with RHEL's dashes,
``Kdump: loaded``), Mem-Info (§3.3: the first block, node and zone lines with their
watermarks and ``lowmem_reserve[]``, buddy free lists, hugepage pools, swap and page
totals) or the memcg usage and ``memory.stat`` lines (§3.4), the task table in each of
its layouts (§3.5, read by its header's column names), the ``oom-kill:`` summary (§3.6),
the kill lines (§3.7, including 2.6.32's ``kill process ... or a child``, the ``sacrifice
child`` pair, the RHEL6/RHEL7 ``UID`` forms and 2.6.11's ``Killed process N (comm).``),
the reaper line (§3.8), ``memory.oom.group`` kills and the panics.

A log holds several reports and much else, interleaved; lines come from
:func:`.lines.kernel_log_lines` (prefixes stripped, wrapped lines rejoined) and are read
one at a time; every line that is not part of a report is counted and skipped. Nothing
in the input makes the parser raise.

Every fact a report states is recorded as a :class:`~.evidence.Statement` with the raw
lines and the rule it came from (``ParsedOom.statements``); where the log states a fact
twice and the statements disagree (a memcg OOM whose summary says CONSTRAINT_NONE, a
victim pid cut short by the paste), :meth:`ParsedOom.fact` gives the strongest reading
and the others as conflicts. The attributes (``killed_pid``, ``trigger_comm``, ...) hold
the values as read; the properties (:attr:`ParsedOom.constraint`, :attr:`~ParsedOom.memcg`,
...) the resolved ones.

Where a report begins and ends: a header always starts one. Without a header (a paste
that begins mid-report, a rate-limited dump_header), the first line only an OOM report
prints (the task table, the ``oom-kill:`` summary, a kill line, the memcg lines, an OOM
panic) starts one, and so does a ``CPU:`` line whose call trace runs through
``out_of_memory()``. A report ends at its kill line; what follows belongs to it only if
it is what the kernel prints after a kill (the reaper, ``sharing same memory``, the
``memory.oom.group`` kills, a panic). A ``CPU:`` line of another Oops, BUG or WARNING is
not the trigger's: only the dump_stack right after the header, or a ``CPU:`` line whose
trace passes through the OOM killer before the report's kill line, names it.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from memtrace.units import KiB, MiB

from ..importers.textio import TextLines, head_text, open_text
from . import formats as fmt
from .evidence import Resolved, Source, Statement, resolve
from .limits import LOG_MAX_REJOIN_STEPS, LOG_MAX_REPORT_LINES, LOG_MAX_REPORTS, LOG_MAX_TEXT_BYTES
from .lines import Gate, kernel_log_blocks, kernel_log_lines
from .prefix import KMSG_LEVEL_RE, LogLine, split_prefix

__all__ = [
    "CONSTRAINTS",
    "BuddyList",
    "HugePool",
    "OomLog",
    "ParsedOom",
    "TaskRow",
    "looks_like_kernel_log",
    "parse_oom_lines",
    "parse_oom_log",
]

#: The values ``constrained_alloc()`` returns (include/linux/oom.h enum oom_constraint).
CONSTRAINTS = ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY", "CONSTRAINT_MEMCG")

# --------------------------------------------------------------------------- raw facts


@dataclass
class TaskRow:
    """One row of the task dump (mm/oom_kill.c ``dump_task()``), as printed.

    Memory in pages except ``pgtables_bytes``; None for columns the row's layout
    does not have (§3.5: ``rss_anon``/``rss_file``/``rss_shmem`` from 6.8,
    ``pgtables_bytes`` 4.19+, ``nr_ptes`` 3.10..4.x, ``nr_pmds`` 4.9-era,
    ``swapents`` 3.10+, ``cpu`` and ``oom_adj`` 2.6.32/3.4). ``lineno`` is the raw line.
    """

    pid: int
    uid: int | None = None
    tgid: int | None = None
    total_vm: int | None = None
    rss: int | None = None
    rss_anon: int | None = None
    rss_file: int | None = None
    rss_shmem: int | None = None
    pgtables_bytes: int | None = None
    nr_ptes: int | None = None
    nr_pmds: int | None = None
    swapents: int | None = None
    cpu: int | None = None
    oom_adj: int | None = None
    oom_score_adj: int | None = None
    name: str = ""
    lineno: int = 0


#: The TaskRow fields a task-table column of the same name fills.
_ROW_COLUMNS = frozenset(f.name for f in fields(TaskRow)) - {"pid", "name", "lineno"}


@dataclass(frozen=True)
class BuddyList:
    """One zone's buddy free lists as ``show_free_areas()`` prints them: per order, the
    free blocks, the block size (kB) and the migrate types with blocks there; the zone's
    free total (kB). ``node`` None on kernels that print no node (non-NUMA, 2.6)."""

    node: int | None
    zone: str
    counts: tuple[int, ...]
    block_kb: tuple[int, ...]
    types: tuple[str, ...]
    total_kb: int
    lineno: int


@dataclass(frozen=True)
class HugePool:
    """One node's pool of one huge page size (``hugetlb_show_meminfo_node()``)."""

    node: int
    size_kb: int
    total: int
    free: int
    surp: int
    lineno: int


@dataclass
class ParsedOom:
    """The facts of one OOM report as the log printed them.

    Memory values keep the log's units, named in the field (``*_kb``, ``*_pages``);
    ``memcg_counters`` maps ``memory``, ``memory+swap``, ``swap``, ``kmem`` to
    ``(usage_kb, limit_kb, failcnt)``; ``memcg_stats`` holds ``memory.stat`` in bytes
    (the one-line ``cache:0KB`` form of old kernels converted); ``meminfo_pages`` the
    first Mem-Info block (pages); ``nodes`` and ``zones`` each node and zone line's
    ``key: kB`` values (a zone also its ``lowmem_reserve`` in pages and ``lineno``);
    ``buddy`` and ``hugepages`` the free lists and pools. ``statements`` holds every
    statement of a fact with where it was read (:mod:`.evidence`); ``task_table`` is
    ``"full"``, ``"cut"`` or ``"absent"`` with the reasons in ``task_table_why``.
    """

    lineno: int
    ts_ns: int | None = None
    wall: str | None = None
    header: bool = False
    trigger_comm: str | None = None
    trigger_pid: int | None = None
    trigger_uid: int | None = None
    gfp_mask: int | None = None
    gfp_flags: str | None = None
    order: int | None = None
    nodemask: str | None = None
    trigger_oom_score_adj: int | None = None
    trigger_oom_adj: int | None = None
    cpuset: str | None = None
    mems_allowed: str | None = None
    kernel_release: str | None = None
    kernel_build: str | None = None
    taint: str | None = None
    hardware: str | None = None
    compaction_disabled: bool = False
    sysrq: bool = False
    meminfo_pages: dict[str, int] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    zones: list[dict[str, Any]] = field(default_factory=list)
    buddy: list[BuddyList] = field(default_factory=list)
    hugepages: list[HugePool] = field(default_factory=list)
    pagecache_pages: int | None = None
    swapcache_pages: int | None = None
    swap_free_kb: int | None = None
    swap_total_kb: int | None = None
    ram_pages: int | None = None
    highmem_pages: int | None = None
    reserved_pages: int | None = None
    memcg_counters: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    memcg_stats_path: str | None = None
    memcg_stats: dict[str, int] = field(default_factory=dict)
    memcg_stats_multiline: bool = False
    task_in: str | None = None  # 3.x-4.19 "Task in X killed as a result of limit of Y": X
    limit_of: str | None = None  # ... Y
    task_columns: tuple[str, ...] = ()
    tasks: list[TaskRow] = field(default_factory=list)
    task_table: str = "absent"
    task_table_why: list[str] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)  # the oom-kill: line's key=value
    kill_message: str | None = None  # "Out of memory", "Memory cgroup out of memory", ...
    chosen_pid: int | None = None  # "Kill process N ... score S or sacrifice child"
    chosen_comm: str | None = None
    chosen_score: int | None = None
    killed_pid: int | None = None
    killed_comm: str | None = None
    killed_ts_ns: int | None = None
    killed_total_vm_kb: int | None = None
    killed_anon_rss_kb: int | None = None
    killed_file_rss_kb: int | None = None
    killed_shmem_rss_kb: int | None = None
    killed_uid: int | None = None
    killed_pgtables_kb: int | None = None
    killed_oom_score_adj: int | None = None
    also_killed: list[tuple[int, str]] = field(default_factory=list)  # oom.group, sharing mm
    oom_group: str | None = None
    reaped: dict[str, Any] | None = None
    panic: str | None = None
    no_killable: bool = False
    already_exiting: bool = False
    arch_hints: list[tuple[str, Source, int]] = field(default_factory=list)  # arch, where, strength
    frames: list[str] = field(default_factory=list)  # call-trace functions of its own dump_stack
    abridged: list[str] = field(default_factory=list)  # how a person or the paste shortened it
    statements: dict[str, list[Statement]] = field(default_factory=dict)
    lines: int = 0
    warnings: list[str] = field(default_factory=list)

    # -- evidence

    def state(self, fact: str, value: Hashable, source: Source, weight: int, trusted: bool = True,
              note: str = "") -> None:
        """Record a statement of ``fact`` (see :mod:`.evidence`)."""
        self.statements.setdefault(fact, []).append(Statement(value, source, weight, trusted, note))

    def fact(self, name: str) -> Resolved:
        """``name``'s value from its strongest trusted statement, with support and conflicts."""
        return resolve(self.statements.get(name))

    # -- resolved facts

    @property
    def is_memcg(self) -> bool:
        """A memory-cgroup OOM (CONSTRAINT_MEMCG)."""
        return self.constraint == "CONSTRAINT_MEMCG"

    @property
    def constraint(self) -> str | None:
        """``constrained_alloc()``'s result from the strongest evidence (see :meth:`fact`):
        the kill message, ``oom_memcg=`` and the memcg lines outweigh a summary line that
        says otherwise; a report with neither says CONSTRAINT_NONE."""
        value = self.fact("constraint").value
        return value if isinstance(value, str) else None

    @property
    def memcg(self) -> str | None:
        """The OOM memcg's path (memcg OOMs only)."""
        if not self.is_memcg:
            return None
        value = self.fact("memcg").value
        return value if isinstance(value, str) else None

    @property
    def cgroup_version(self) -> int | None:
        """1 or 2 from the memcg usage lines (v1 prints ``memory+swap``, v2 ``swap``)."""
        if "memory+swap" in self.memcg_counters:
            return 1
        if "swap" in self.memcg_counters:
            return 2
        if self.memcg_stats:
            return 2 if "anon" in self.memcg_stats and "rss" not in self.memcg_stats else 1
        return None

    @property
    def victim_pid(self) -> int | None:
        """The killed task's pid (the ``Killed process`` line; None when the log ends
        before it)."""
        return self.killed_pid

    @property
    def summary_pid(self) -> int | None:
        try:
            return int(self.summary["pid"]) if "pid" in self.summary else None
        except ValueError:
            return None

    @property
    def victim_comm(self) -> str | None:
        return self.killed_comm

    @property
    def complete(self) -> bool:
        """The report reached its end: a kill, a panic, or nothing killable."""
        return self.killed_pid is not None or self.panic is not None or self.no_killable

    def row(self, pid: int) -> TaskRow | None:
        for r in self.tasks:
            if r.pid == pid:
                return r
        return None


@dataclass
class OomLog:
    """Every OOM report of one log, in order, with what the parser skipped."""

    path: str
    reports: list[ParsedOom]
    lines: int
    unknown_lines: int
    warnings: list[str]


# --------------------------------------------------------------------------- numbers


def _int(text: str | None) -> int | None:
    if text is None or len(text) > 24:  # no field the kernel prints is longer
        return None
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _count(text: str | None, hi: int = fmt.COUNT_MAX) -> int | None:
    """A number of a Killed-process or header line, None when absent or beyond what
    the kernel could have printed there."""
    value = _int(text)
    return value if value is not None and 0 <= value <= hi else None


#: No printk line is longer (printk's record limit is 1024 bytes; a rejoined line stays
#: well under this): a longer text is junk, and reading it with the report's expressions
#: could take quadratic time.
_MAX_LINE = 4096

# --------------------------------------------------------------------------- weights

# How much each rule is worth (evidence.py): for the same fact, the line the kernel
# prints for exactly that fact outweighs a line that implies it, which outweighs a default.
W_EXACT = 100  # the line that states it (Killed line, header comm, dump_stack after the header)
W_MEMCG_MESSAGE = 90  # "Memory cgroup out of memory", oom_memcg=, "limit of": only a memcg OOM prints them
W_MEMCG_LINES = 85  # memcg usage and stats lines (mem_cgroup_print_oom_meminfo)
W_SUMMARY = 80  # the oom-kill: summary's own field
W_IMPLIED = 70  # a field that implies it (the header's nodemask, the cpuset line's comm)
W_TRACE = 60  # a call trace through the OOM killer
W_CALLER = 40  # the printk caller id of a line printed in the allocating task's context
W_ODD = 30  # a value no kernel of the read trees prints (a patched kernel)
W_DEFAULT = 10  # what holds when nothing else is printed
W_CUT = 5  # the last field of a line the paste cut (kept as a conflict, never chosen)

#: Functions whose presence in a call trace means the OOM killer is running in that task.
_OOM_FRAMES = frozenset({"out_of_memory", "oom_kill_process", "dump_header", "mem_cgroup_out_of_memory",
                         "pagefault_out_of_memory", "__alloc_pages_may_oom", "mem_cgroup_oom_synchronize",
                         "moom_callback", "bpf_out_of_memory"})
_MEMCG_FRAMES = frozenset({"mem_cgroup_out_of_memory", "mem_cgroup_oom_synchronize"})

#: Lines that open another kernel report (its CPU line and call trace are not the OOM's).
_FOREIGN_RE = re.compile(
    r"^(?:BUG: |WARNING: |------------\[ cut here \]|INFO: task |Unable to handle kernel |general protection fault"
    r"|Oops(?::| -)|kernel BUG at |watchdog: BUG|rcu: INFO|Internal error: |.{1,64}: page allocation failure"
    r"|page allocation failure|=+$|sysrq: Show )"
)
#: A line a person or the paste put in place of what was left out.
_ELISION_RE = re.compile(
    r"^\s*(?:\[\s*(?:\.{2,}|…|snip|trim|cut)\s*\]|<\s*(?:snip|trim|cut)\s*>|\.{3,}|…|\.\s\.\s\.)\s*$")
#: The first words of the lines :data:`_FOREIGN_RE` and :data:`_SYSRQ_RE` read (a cheap test first).
_FOREIGN_STARTS = ("BUG: ", "WARNING: ", "------------[", "INFO: ", "Unable to handle", "general protection",
                   "Oops", "kernel BUG", "watchdog: ", "rcu: INFO", "Internal error", "page allocation", "=",
                   "sysrq: ", "SysRq ")
_SYSRQ_RE = re.compile(r"^sysrq: (?:SysRq : )?Manual OOM execution|^SysRq : Manual OOM execution")
#: Register lines of each architecture's dump (``show_regs()``): the strongest arch hint.
_ARCH_REGS = (
    (re.compile(r"^RIP: [0-9a-f]{4}:"), "x86_64"),
    (re.compile(r"^EIP: (?:[0-9a-f]{4}:)?"), "i386"),
    (re.compile(r"^PC is at |^pc : \[<[0-9a-f]{8}>\]"), "arm"),
    (re.compile(r"^pc : |^pstate: |^x29: "), "arm64"),
    (re.compile(r"^NIP:? +\[?[0-9a-f]{16}"), "ppc64"),
    (re.compile(r"^Krnl PSW : "), "s390x"),
    (re.compile(r"^epc : [0-9a-f]{16}|^sepc: "), "riscv64"),
)
_ARCH_STARTS = ("RIP: ", "EIP: ", "pc : ", "pstate: ", "x29: ", "PC is at", "NIP", "Krnl PSW", "epc :", "sepc: ")
#: Entry-code frames only one architecture has.
_ARCH_FRAMES = {
    "asm_exc_page_fault": "x86_64", "entry_SYSCALL_64_after_hwframe": "x86_64", "do_syscall_64": "x86_64",
    "el0_da": "arm64", "el0t_64_sync": "arm64", "el0_svc": "arm64", "el0t_64_sync_handler": "arm64",
    "do_hash_fault": "ppc64", "data_access_common_virt": "ppc64", "hash__do_page_fault": "ppc64",
    "do_DataAbort": "arm", "__dabt_usr": "arm", "pgm_check_handler": "s390x", "sysenter_past_esp": "i386",
    "do_page_fault_asm": "riscv64", "walk_stackframe": "riscv64",
}
#: Call-trace address layouts of one architecture: the x86-64 kernel map at
#: 0xffffffff80000000 (modules above), riscv64's at 0xffffffe000000000 (5.x), s390's
#: ``([<...>] show_stack``, ppc64's ``[c000...] [c000...]``, ARM32's ``a from b+0x..``.
_ARCH_ADDRESSES = (
    (re.compile(r"\[<ffffffff[89a-f][0-9a-f]{7}>\]"), "x86_64"),
    (re.compile(r"\[<ffffffe0[0-9a-f]{8}>\]"), "riscv64"),
    (re.compile(r"^\(\[<[0-9a-f]{16}>\] show_stack"), "s390x"),
    (re.compile(r"^\[c0000000[0-9a-f]{8}\] \[c"), "ppc64"),
    (re.compile(r"^\S+ from \S+\+0x[0-9a-f]+/0x[0-9a-f]+$"), "arm"),
)
_HINT_REGISTER, _HINT_FRAME, _HINT_ADDRESS = 3, 2, 1


# --------------------------------------------------------------------------- parser


class _Parser:
    """The line-at-a-time state machine behind :func:`parse_oom_lines`."""

    def __init__(self) -> None:
        self.reports: list[ParsedOom] = []
        self.cur: ParsedOom | None = None
        self.tentative = False  # cur was started by a line any kernel report prints (Mem-Info)
        self.mode = ""  # "", "meminfo", "stats", "tasks"
        self.stack_expected = False  # after the header, before Mem-Info: its dump_stack comes
        self.foreign = False  # inside another Oops/BUG/WARNING (its CPU line is not the OOM's)
        # A CPU line whose trace may reach the OOM killer, and whether another report's (a BUG,
        # a lockup) printed it: such a trace confirms the trigger of an open report, it starts none.
        self.pending_cpu: tuple[LogLine, re.Match[str], bool] | None = None
        self.pending_frames = 0
        self.sysrq_next = False  # "sysrq: Manual OOM execution" announced the next header
        self.after_panic = False  # a panic: the dump_stack that follows is the panic's
        self.summary_open = False  # the current report's oom-kill line was cut by a splat
        self.table_ts: list[int | None] = []  # timestamps of the table's header and rows
        self.release: tuple[str, LogLine] | None = None  # the latest CPU line's release in the log
        self.last_ts: int | None = None  # the kernel time of the open report's latest line
        self.quiet = 0  # lines since the open report's latest line
        self.hardware: tuple[str, int] | None = None
        self.lines = 0
        self.unknown = 0
        self.report_lines = 0  # lines read into reports, all reports together (LOG_MAX_REPORT_LINES)
        self.warnings: list[str] = []

    # -- report boundaries

    def _start(self, line: LogLine, header: bool, tentative: bool = False) -> ParsedOom:
        self._finish()
        self.cur = ParsedOom(lineno=line.lineno, ts_ns=line.ts_ns, wall=line.wall, header=header)
        self.tentative = tentative
        self.mode = ""
        self.stack_expected = header
        self.summary_open = False
        self.table_ts = []
        if self.sysrq_next:
            self.cur.sysrq = True
            self.sysrq_next = False
        return self.cur

    def _open(self, line: LogLine) -> ParsedOom:
        """The report a line only an OOM report prints belongs to: the open one, unless
        it already reached its kill (then a new one, without header)."""
        cur = self.cur
        if cur is None or cur.complete:
            cur = self._start(line, header=False)
        self.tentative = False
        return cur

    def _finish(self) -> None:
        cur = self.cur
        self.cur = None
        self.mode = ""
        self.pending_cpu = None
        self.stack_expected = False
        self.summary_open = False
        self.last_ts = None
        self.quiet = 0
        if cur is None:
            return
        if self.tentative and not cur.complete:
            return  # a Mem-Info or CPU line no OOM report came after
        if cur.header and (cur.tasks or cur.task_columns) and not any(
                s.weight >= W_EXACT for s in cur.statements.get("trigger_pid", ())):
            cur.abridged.append("the dump_stack and Mem-Info lines the kernel prints between the header and the "
                                "task table are silently left out")
        if "constraint" not in cur.statements and (cur.header or cur.kill_message or cur.zones or cur.meminfo_pages):
            cur.state("constraint", "CONSTRAINT_NONE", Source((cur.lineno,), "no constraint printed and nothing of a "
                                                                             "memcg OOM: a global OOM"), W_DEFAULT)
        _task_table_state(cur, self.table_ts)
        if not cur.complete:
            cur.warnings.append(f"line {cur.lineno}: the OOM report is truncated: it ends before its kill line")
        self.reports.append(cur)

    def _by_victim(self, pid: int) -> ParsedOom | None:
        for r in reversed(([self.cur] if self.cur else []) + self.reports):
            if r is not None and (r.killed_pid == pid or any(p == pid for p, _ in r.also_killed)):
                return r
        return None

    # -- one line

    def feed(self, line: LogLine) -> None:
        self.lines += 1
        if self.cur is not None and (self.quiet > _REPORT_QUIET_LINES or (
                line.ts_ns is not None and self.last_ts is not None and line.ts_ns - self.last_ts > _REPORT_GAP_NS)):
            self._finish()  # whatever comes now is another report's
        try:
            known = self._feed(line)
        except ValueError as e:  # a number too long for int(): skip the line
            known = False
            if len(self.warnings) < 100:
                self.warnings.append(f"line {line.lineno}: skipped ({e})")
        if not known:
            self.unknown += 1
            self.quiet += 1
        elif self.cur is not None:
            self.cur.lines += 1
            self.report_lines += 1
            self.quiet = 0
            if line.ts_ns is not None:
                self.last_ts = line.ts_ns

    def idle(self) -> bool:
        """Between reports: no line the gate of :func:`parse_oom_lines` lets pass
        unread (:data:`_WANTED_STARTS`) would change what the parser knows."""
        cur = self.cur
        return ((cur is None or cur.complete) and self.pending_cpu is None and not self.stack_expected
                and not self.summary_open and self.mode == "")

    def _feed(self, line: LogLine) -> bool:
        s = line.text.strip()
        if not s or len(s) > _MAX_LINE:
            return False
        if self._frame(line, s):
            return True
        if "oom-killer" in s:
            m = fmt.HEADER_LEAD_RE.match(s)
            if m:
                self._header(line, s, m)
                return True
        if "process" in s:
            m = fmt.KILL_RE.match(s)
            if m:
                return self._kill_line(line, m)
            m2 = fmt.KILLED_LEAD_RE.match(s)
            if m2 and "truncated" in line.rule:
                return self._cut_killed_line(line, m2)
        if s.startswith("oom_reaper:"):
            return self._reaper(line, s)
        if s.startswith(("Kernel panic", "out of memory.")):
            m = fmt.PANIC_RE.match(s) or fmt.PANIC_2_6_32_RE.match(s)
            if m:
                return self._panic(line, m.group("msg"))
        if s.startswith("oom-kill:"):
            self._summary(line, s)
            return True
        if self.summary_open and self.cur is not None and s.startswith(",task="):
            self._summary_tail(line, s)
            return True
        if s.startswith(("CPU: ", "Pid: ")):
            return self._cpu_line(line, s)
        if s.startswith(_FOREIGN_STARTS) or "allocation failure" in s:
            if _SYSRQ_RE.match(s):
                self.sysrq_next = True
                return True
            if _FOREIGN_RE.match(s):
                self.foreign = True
                self.pending_cpu = None
                return False
        return self._report_line(line, s)

    def _src(self, line: LogLine, rule: str) -> Source:
        return Source(line.linenos or (line.lineno,), rule, line.rule)

    # -- the header and dump_stack

    def _header(self, line: LogLine, s: str, lead: re.Match[str]) -> None:
        r = self._start(line, header=True)
        self.foreign = False
        self.after_panic = False
        truncated = "truncated" in line.rule
        comm = lead.group("comm")
        src = self._src(line, "header: '<comm> invoked oom-killer: gfp_mask=...' (dump_header)")
        if comm is not None:
            r.trigger_comm = comm
            r.state("trigger_comm", comm, src, W_EXACT)
        end = len(s.rstrip(", "))
        for m in fmt.HEADER_FIELD_RE.finditer(s, lead.end()):
            key, value = m.group("key"), m.group("value")
            cut = truncated and m.end() >= end  # the paste cut this field: its value may be short
            fsrc = self._src(line, f"header field {key}=")
            if key == "gfp_mask":
                gm = re.match(r"(0x[0-9a-fA-F]+|\d+)(?:\((.*)\))?$", value)
                if gm:
                    mask = _int(gm.group(1))
                    if not cut:
                        r.gfp_mask, r.gfp_flags = mask, gm.group(2)
                    r.state("gfp_mask", mask, fsrc, W_EXACT, trusted=not cut)
            elif key == "nodemask":
                # Not evidence of a constraint: 4.x kernels print the allocation's nodemask,
                # which cpusets fill in (cpuset_current_mems_allowed) for any allocation.
                r.nodemask = value
            elif key == "order":
                order = _int(value)
                if not cut:
                    r.order = order
                r.state("order", order, fsrc, W_EXACT, trusted=not cut)
                if order == -1 and not cut:
                    r.sysrq = True
            elif key in ("oom_adj", "oomkilladj"):
                if not cut:
                    r.trigger_oom_adj = _int(value)
            elif key == "oom_score_adj" and not cut:
                r.trigger_oom_score_adj = _int(value)
        if truncated:
            r.abridged.append(f"line {line.lineno}: the header is cut short")
        self._caller(r, line, "header")

    def _caller(self, r: ParsedOom, line: LogLine, what: str) -> None:
        """A ``[T123]`` caller id on a line dump_header/oom_kill_process print: the
        allocating task (out_of_memory() runs in its context)."""
        caller = line.caller
        if caller and caller[0] == "T" and caller[1:].isdigit():
            r.state("trigger_pid", int(caller[1:]),
                    self._src(line, f"printk caller id [{caller}] of the {what} line (printed by the allocating task)"),
                    W_CALLER)

    def _cpu_line(self, line: LogLine, s: str) -> bool:
        m = fmt.CPU_LINE_RE.match(s) or fmt.PID_LINE_RE.match(s)
        lead = m or fmt.CPU_LEAD_RE.match(s)
        if lead is None:
            return False
        if m is not None:
            self.release = (m.group("release"), line)
        cur = self.cur
        if cur is not None and self.stack_expected and not self.foreign:
            self.stack_expected = False
            self._attach_cpu(cur, line, lead, W_EXACT, "dump_stack line right after the header")
            self.pending_cpu = None
            return True
        if self.after_panic:
            return False  # the panic's own dump_stack
        # Another dump_stack: the trigger's only if its call trace runs through the OOM killer.
        self.pending_cpu = (line, lead, self.foreign)
        self.pending_frames = 0
        return cur is not None and not cur.complete

    def _attach_cpu(self, r: ParsedOom, line: LogLine, m: re.Match[str], weight: int, rule: str) -> None:
        src = self._src(line, rule)
        pid = _count(m.group("pid"), fmt.COLUMN_MAX["pid"])
        comm = m.group("comm")
        cut = "truncated" in line.rule and not re.search(r" (?:Kdump: loaded|Not tainted|Tainted:)", line.text)
        r.state("trigger_pid", pid, src, weight)
        r.state("trigger_comm", comm, src, weight - 20, trusted=not cut)
        gd = m.groupdict()
        if gd.get("release") and r.kernel_release is None:
            r.kernel_release = gd["release"]
            r.kernel_build = (gd.get("build") or "").strip() or None
            r.taint = (gd.get("taint") or "").strip() or None
            r.state("kernel_release", gd["release"], src, weight)
        if weight >= W_EXACT:
            r.trigger_pid = pid
            r.trigger_uid = _count(gd.get("uid"), fmt.COLUMN_MAX["uid"])

    def _frame(self, line: LogLine, s: str) -> bool:
        """A call-trace frame: an OOM-killer frame confirms a pending CPU line as the
        trigger's; memcg frames and arch-specific entry frames are evidence."""
        if "+" not in s or s.startswith(_ARCH_STARTS):  # "pc : fn+0x1c/0x4a0" is a register line
            return False
        m = fmt.FRAME_RE.search(s)
        if m is None:
            return False
        fn = m.group("fn")
        cur = self.cur
        if self.pending_cpu is not None:
            self.pending_frames += 1
            if fn in _OOM_FRAMES:
                pline, pm, foreign = self.pending_cpu
                self.pending_cpu = None
                if cur is None or cur.complete:
                    if foreign:
                        return False
                    cur = self._start(pline, header=False)
                    self.tentative = False
                if not any(st.weight >= W_TRACE for st in cur.statements.get("trigger_pid", ())):
                    self._attach_cpu(cur, pline, pm, W_TRACE,
                                     "CPU line whose call trace runs through the OOM killer (the allocating task)")
                self.foreign = False
            elif self.pending_frames > 64:
                self.pending_cpu = None
        if cur is None or cur.complete or (self.foreign and self.pending_cpu is None and fn not in _OOM_FRAMES):
            return cur is not None and not cur.complete
        if len(cur.frames) < 96:
            cur.frames.append(fn)
        if fn in _MEMCG_FRAMES:
            cur.state("constraint", "CONSTRAINT_MEMCG",
                      self._src(line, f"call trace through {fn}() (a memcg charge hit its limit)"), W_TRACE)
        elif fn == "moom_callback":
            cur.sysrq = True
        if len(cur.arch_hints) < 8:
            arch = _ARCH_FRAMES.get(fn)
            if arch is not None:
                cur.arch_hints.append((arch, self._src(line, f"call-trace frame {fn}"), _HINT_FRAME))
            elif len(cur.frames) <= 3:  # the layout of the first frames' addresses
                for regex, arch in _ARCH_ADDRESSES:
                    if regex.search(s):
                        cur.arch_hints.append((arch, self._src(line, "layout of the call-trace addresses"),
                                               _HINT_ADDRESS))
                        break
        return True

    # -- the kill

    def _kill_line(self, line: LogLine, m: re.Match[str]) -> bool:
        verb, rest = m.group("verb"), m.group("rest") or ""
        pid, comm, msg = int(m.group("pid")), m.group("comm"), m.group("msg")
        cur = self.cur
        if rest == " sharing same memory":
            if cur is None:
                return False
            cur.also_killed.append((pid, comm))
            return True
        if verb.lower() == "kill process":  # "<msg>: Kill process N (c) score S or sacrifice child"
            if cur is None or cur.killed_pid is not None or cur.chosen_pid is not None or cur.complete:
                cur = self._start(line, header=False)
            self.tentative = False
            self.mode = ""
            cur.kill_message = msg
            cur.chosen_pid, cur.chosen_comm = pid, comm
            score = fmt.KILL_SCORE_RE.search(rest)
            cur.chosen_score = int(score.group("score")) if score else None
            cur.state("chosen", (pid, comm), self._src(line, "'Kill process N (comm) score S' line "
                                                             "(oom_kill_process before 5.x: the chosen task)"), W_EXACT)
            self._message(cur, line, msg)
            self._caller(cur, line, "Kill process")
            return True
        # "Killed process N (comm) ..."
        if cur is not None and cur.killed_pid is not None:
            if cur.oom_group is not None:  # memory.oom.group: every task of the memcg
                cur.also_killed.append((pid, comm))
                return True
            cur = self._start(line, header=False)  # dump_header was rate-limited
        cur = self._open(line)
        self.mode = ""
        if msg:
            cur.kill_message = msg
        cur.killed_pid, cur.killed_comm, cur.killed_ts_ns = pid, comm, line.ts_ns
        form = "RHEL6 'Killed process N, UID n, (comm)'" if m.group("uid") else (
            "RHEL7 'Killed process N (comm), UID n'" if ", UID " in rest else "'Killed process N (comm)'")
        cur.state("victim", (pid, comm), self._src(line, f"{form} line (__oom_kill_process: the task killed)"),
                  W_EXACT)
        truncated = "truncated" in line.rule
        end = len(line.text.rstrip())
        start = line.text.find(rest) if rest else end
        values: dict[str, int] = {}
        if m.group("uid"):
            values["UID"] = int(m.group("uid"))
        for f in fmt.KILLED_FIELD_RE.finditer(line.text, max(start, 0)):
            if truncated and f.end() >= end:
                cur.abridged.append(f"line {line.lineno}: the Killed line is cut after {f.group(0)!r}")
                continue
            key = f.group("key") or f.group("ukey")
            values[key] = int(f.group("kb") if f.group("kb") is not None else f.group("n"))
        rhel7_uid = re.search(r"\), UID (\d+),", line.text)
        if rhel7_uid:
            values["UID"] = int(rhel7_uid.group(1))
        cur.killed_total_vm_kb = values.get("total-vm")
        cur.killed_anon_rss_kb = values.get("anon-rss")
        cur.killed_file_rss_kb = values.get("file-rss")
        cur.killed_shmem_rss_kb = values.get("shmem-rss")
        cur.killed_uid = values.get("UID") if values.get("UID", 0) <= fmt.COLUMN_MAX["uid"] else None
        cur.killed_pgtables_kb = values.get("pgtables")
        adj = values.get("oom_score_adj")
        cur.killed_oom_score_adj = adj if adj is None or -1000 <= adj <= 1000 else None
        if rest.rstrip().endswith(("..", "…")):
            cur.abridged.append(f"line {line.lineno}: the Killed line's tail is elided")
        if cur.ts_ns is None:
            cur.ts_ns = line.ts_ns
        self._message(cur, line, msg)
        self._caller(cur, line, "Killed process")
        return True

    def _cut_killed_line(self, line: LogLine, m: re.Match[str]) -> bool:
        """A Killed line the paste cut before the comm closed: the pid, untrusted when the
        line ends right after it."""
        cur = self._open(line)
        pid = int(m.group("pid"))
        cut = not m.group("more")
        cur.state("victim", (pid, None), self._src(line, "Killed process line cut before its comm"), W_CUT
                  if cut else W_IMPLIED, trusted=not cut)
        if not cut and cur.killed_pid is None:
            cur.killed_pid, cur.killed_ts_ns = pid, line.ts_ns
        cur.abridged.append(f"line {line.lineno}: the Killed line is cut short")
        self._message(cur, line, m.group("msg"))
        return True

    def _message(self, r: ParsedOom, line: LogLine, msg: str | None) -> None:
        if msg and msg.startswith("Memory cgroup out of memory"):
            r.state("constraint", "CONSTRAINT_MEMCG",
                    self._src(line, "kill message 'Memory cgroup out of memory' (mem_cgroup_out_of_memory)"),
                    W_MEMCG_MESSAGE)

    def _summary(self, line: LogLine, s: str) -> None:
        cur = self._open(line)
        self.mode = ""
        truncated = "truncated" in line.rule
        body = s[len("oom-kill:"):]
        fields_, last = _summary_fields(body)
        src = self._src(line, "oom-kill: summary line (dump_oom_summary, 5.x+)")
        if truncated and last is not None:
            cut_value = fields_.pop(last, None)
            cur.abridged.append(f"line {line.lineno}: the oom-kill line is cut after {last}={cut_value}")
            self.summary_open = True  # its tail may come later, after what cut it
            if last == "pid" and cut_value is not None and cut_value.isdigit():
                cur.state("chosen", (int(cut_value), fields_.get("task")), src._replace(
                    rule="oom-kill: summary line, pid= at the cut end of the line"), W_CUT, trusted=False,
                    note=f"pid={cut_value} is the last field of a line the paste cut: it may be the first digits "
                         "of the real pid")
        cur.summary.update(fields_)
        self._summary_statements(cur, line, src, fields_)

    def _summary_tail(self, line: LogLine, s: str) -> None:
        """``,task=...,pid=...,uid=...`` after a splat that cut the oom-kill line (012)."""
        cur = self.cur
        assert cur is not None
        fields_, _last = _summary_fields(s)
        cur.summary.update(fields_)
        self.summary_open = False
        self._summary_statements(cur, line, self._src(
            line, "oom-kill: summary line, its tail printed after the report that interrupted it"), fields_)

    def _summary_statements(self, cur: ParsedOom, line: LogLine, src: Source, fields_: dict[str, str]) -> None:
        constraint = fields_.get("constraint")
        if constraint:
            known = constraint in CONSTRAINTS
            cur.state("constraint", constraint, src._replace(rule=src.rule + ": constraint="),
                      W_SUMMARY if known else W_ODD,
                      note="" if known else f"{constraint} is not a constraint of the kernels read (a patched kernel)")
        if fields_.get("oom_memcg"):
            cur.state("constraint", "CONSTRAINT_MEMCG", src._replace(rule="oom-kill: summary's oom_memcg="),
                      W_MEMCG_MESSAGE)
            cur.state("memcg", fields_["oom_memcg"], src._replace(rule="oom-kill: summary's oom_memcg="), W_EXACT)
        nodemask = fields_.get("nodemask")
        if nodemask and nodemask != "(null)":
            cur.state("constraint", "CONSTRAINT_MEMORY_POLICY", src._replace(
                rule="oom-kill: summary's nodemask= not (null) (kept only for CONSTRAINT_MEMORY_POLICY)"), W_IMPLIED)
        pid = _count(fields_.get("pid"), fmt.COLUMN_MAX["pid"])
        if pid is not None:
            cur.state("chosen", (pid, fields_.get("task")), src._replace(rule=src.rule + ": task=,pid="), W_SUMMARY)
        self._caller(cur, line, "oom-kill")

    def _reaper(self, line: LogLine, s: str) -> bool:
        m = fmt.REAPED_RE.match(s) or fmt.UNABLE_TO_REAP_RE.match(s)
        if m is None:
            return False
        pid = int(m.group("pid"))
        target = self._by_victim(pid)
        if target is None:
            return False
        target.reaped = {"pid": pid, "comm": m.group("comm"), "ts_ns": line.ts_ns,
                         "success": "anon" in m.groupdict(),
                         **({k: int(m.group(k)) * KiB for k in ("anon", "file", "shmem")}
                            if "anon" in m.groupdict() else {})}
        return True

    def _panic(self, line: LogLine, msg: str) -> bool:
        lowered = msg.lower()
        self.after_panic = True
        self.pending_cpu = None
        if "memory" not in lowered and "oom" not in lowered:
            self.foreign = True
            return False
        if self.cur is None or self.cur.killed_pid is not None or self.cur.panic is not None:
            self._start(line, header=False)
        assert self.cur is not None
        self.tentative = False
        self.cur.panic = msg.strip()
        self._finish()
        return True

    # -- everything else a report prints

    def _report_line(self, line: LogLine, s: str) -> bool:
        cur = self.cur
        if s.startswith("Out of memory and"):
            cur = self._open(line)
            cur.no_killable = True
            return True
        m = fmt.EXITING_RE.match(s) if "OOM victim" in s else None
        if m:
            cur = self._open(line)
            cur.kill_message = m.group("msg")
            cur.already_exiting = True
            cur.killed_pid = int(m.group("pid"))
            cur.killed_comm = m.group("comm")
            cur.killed_ts_ns = line.ts_ns
            cur.state("victim", (cur.killed_pid, cur.killed_comm),
                      self._src(line, "'OOM victim N (comm) is already exiting' (no kill needed)"), W_EXACT)
            self._message(cur, line, m.group("msg"))
            return True
        m = fmt.OOM_GROUP_RE.match(s) if s.startswith("Tasks in ") else None
        if m:
            if cur is None:
                return False
            cur.oom_group = m.group("path")
            return True
        if s[0] == "[" or s.startswith("Tasks state"):
            known = self._task_line(line, s)
            if known is not None:
                return known
        if s[0] in ".[<…" and _ELISION_RE.match(s):
            if cur is not None and not cur.complete:
                cur.abridged.append(f"line {line.lineno}: '{s}' (something left out)")
                if self.mode == "tasks":
                    cur.task_table_why.append(f"rows left out at line {line.lineno} ('{s}')")
                return True
            return False
        if cur is not None and not cur.complete:
            known = self._dump_line(cur, line, s)
            if known:
                return True
        return self._memory_line(line, s)

    def _task_line(self, line: LogLine, s: str) -> bool | None:
        cur = self.cur
        if fmt.TASKS_STATE_RE.match(s):
            cur = self._open(line)
            self.mode = "tasks"
            self.stack_expected = False
            self.table_ts = [line.ts_ns]
            return True
        m = fmt.TASK_HEADER_RE.match(s)
        if m:
            if cur is None or cur.complete or self.mode != "tasks":
                cur = self._open(line)
                self.table_ts = []
            cur.task_columns = tuple(m.group("cols").split())
            self.mode = "tasks"
            self.stack_expected = False
            self.table_ts.append(line.ts_ns)
            return True
        m = fmt.TASK_ROW_RE.match(s)
        if m is None:
            return None
        if self.mode != "tasks":
            if cur is not None and not cur.complete and cur.task_columns:
                return None  # a stray row-looking line (a stack address) inside a report
            # A row without its header: a paste that begins inside the table.
            if _task_row(int(m.group("pid")), m.group("rest"), ()) is None:
                return None
            cur = self._open(line)
            self.mode = "tasks"
            self.table_ts = []
            cur.task_table_why.append(f"rows without the table's header (line {line.lineno})")
        assert cur is not None
        row = _task_row(int(m.group("pid")), m.group("rest"), cur.task_columns)
        if row is None:
            cur.warnings.append(f"line {line.lineno}: a task row does not match its header; skipped")
            return False
        row.lineno = line.lineno
        cur.tasks.append(row)
        self.table_ts.append(line.ts_ns)
        return True

    def _dump_line(self, cur: ParsedOom, line: LogLine, s: str) -> bool:
        """A line of the open report's dump_header (before its kill line)."""
        m = fmt.CPUSET_RE.match(s) if " cpuset=" in s else None
        if m and cur.cpuset is None:
            cur.cpuset = m.group("cpuset")
            cur.mems_allowed = m.group("mems")
            cur.state("trigger_comm", m.group("comm"),
                      self._src(line, "'<comm> cpuset=... mems_allowed=...' line (cpuset_print_current_mems_allowed)"),
                      W_IMPLIED)
            return True
        m = fmt.RT_CURRENT_RE.match(s) if s.startswith("current: ") else None
        if m:
            src = self._src(line, "-rt patch's 'current: comm/pid.' line")
            cur.state("trigger_pid", int(m.group("pid")), src, W_TRACE)
            cur.state("trigger_comm", m.group("comm"), src, W_TRACE)
            return True
        m = fmt.HARDWARE_RE.match(s) if s.startswith("Hardware name: ") else None
        if m:
            if cur.hardware is None and not self.foreign:
                cur.hardware = m.group("name")
            self.hardware = (m.group("name"), line.lineno)
            return True
        if s == "COMPACTION is disabled!!!":
            cur.compaction_disabled = True
            return True
        if s.startswith("Workqueue: ") and "moom_callback" in s:
            cur.sysrq = True
            return True
        for regex, arch in _ARCH_REGS if s.startswith(_ARCH_STARTS) else ():
            if regex.match(s):
                if len(cur.arch_hints) < 8:
                    cur.arch_hints.append((arch, self._src(line, f"register line '{s[:12].strip()}'"),
                                           _HINT_REGISTER))
                return True
        return False

    def _memory_line(self, line: LogLine, s: str) -> bool:
        """Mem-Info and the memcg lines: the open report's, or a tentative one's."""
        cur = self.cur
        if s in ("Mem-Info:", "Mem-info:"):
            if cur is None or cur.complete:
                cur = self._start(line, header=False, tentative=True)
            self.mode = "meminfo"
            self.stack_expected = False
            self.foreign = False
            return True
        m = fmt.MEMCG_COUNTER_RE.match(s) if ": usage " in s else None
        if m:
            cur = self._open(line)
            self.stack_expected = False
            cur.memcg_counters[m.group("name")] = (int(m.group("usage")), int(m.group("limit")),
                                                   int(m.group("failcnt")))
            cur.state("constraint", "CONSTRAINT_MEMCG", self._src(
                line, f"memcg usage line '{m.group('name')}: usage ...' (mem_cgroup_print_oom_meminfo)"),
                W_MEMCG_LINES)
            return True
        m = fmt.TASK_IN_RE.match(s) if s.startswith("Task in ") else None
        if m:
            cur = self._open(line)
            cur.task_in, cur.limit_of = m.group("task"), m.group("limit")
            src = self._src(line, "'Task in X killed as a result of limit of Y' (mem_cgroup_print_oom_info, "
                                  "before 4.19)")
            cur.state("constraint", "CONSTRAINT_MEMCG", src, W_MEMCG_MESSAGE)
            cur.state("memcg", m.group("limit"), src, W_EXACT)
            return True
        m = fmt.MEMCG_STATS_RE.match(s) if s.startswith("Memory cgroup stats for ") else None
        if m:
            cur = self._open(line)
            path, rest = m.group("path"), m.group("rest").strip()
            src = self._src(line, "'Memory cgroup stats for P:' (the OOM memcg's memory.stat)")
            cur.state("constraint", "CONSTRAINT_MEMCG", src, W_MEMCG_LINES)
            if cur.memcg_stats_path is None:
                cur.memcg_stats_path = path
                if rest:  # <= 4.x one-line form: "cache:0KB rss:1024KB ...", once per memcg of the hierarchy
                    for key, value, unit in fmt.STAT_ONELINE_RE.findall(rest):
                        mult = {"KB": KiB, "MB": MiB}.get(unit, 1)
                        cur.memcg_stats[key] = int(value) * mult
                    if cur.memcg_counters:  # right after the usage lines: the OOM memcg itself comes first
                        cur.state("memcg", path, src._replace(rule="first 'Memory cgroup stats for P:' after the "
                                                                   "usage lines (the OOM memcg)"), W_IMPLIED)
                else:
                    cur.memcg_stats_multiline = True
                    self.mode = "stats"
                    cur.state("memcg", path, src, W_IMPLIED + 10)
            return True
        if self.mode == "stats" and cur is not None:
            m = fmt.STAT_LINE_RE.match(s)
            if m:
                cur.memcg_stats[m.group("key")] = int(m.group("value"))
                return True
        if cur is not None and not cur.complete and (self.mode == "meminfo" or cur.meminfo_pages):
            return self._meminfo_line(cur, line, s)
        return False

    def _meminfo_line(self, cur: ParsedOom, line: LogLine, s: str) -> bool:
        m = fmt.NODE_LINE_RE.match(s)
        if m:
            node: dict[str, Any] = {"nid": int(m.group("nid")), "lineno": line.lineno}
            node.update({k: int(v) for k, v in fmt.KV_KB_RE.findall(s)})
            unrec = fmt.ALL_UNRECLAIMABLE_RE.search(s)
            if unrec:
                node["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.nodes.append(node)
            return True
        m = fmt.ZONE_LINE_RE.match(s)
        if m:
            zone: dict[str, Any] = {"zone": m.group("zone"), "lineno": line.lineno}
            if m.group("nid") is not None:
                zone["nid"] = int(m.group("nid"))
            zone.update({k: int(v) for k, v in fmt.KV_KB_RE.findall(s)})
            unrec = fmt.ALL_UNRECLAIMABLE_RE.search(s)
            if unrec:
                zone["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.zones.append(zone)
            return True
        m = fmt.LOWMEM_RESERVE_RE.match(s)
        if m:
            if cur.zones and "lowmem_reserve" not in cur.zones[-1]:
                cur.zones[-1]["lowmem_reserve"] = [int(x) for x in m.group("pages").split()]
            return True
        m = fmt.BUDDY_LINE_RE.match(s)
        if m:
            orders = fmt.BUDDY_ORDER_RE.findall(m.group("rest"))
            if len(cur.buddy) < 64:
                cur.buddy.append(BuddyList(
                    _int(m.group("nid")), m.group("zone"), tuple(int(c) for c, _, _ in orders),
                    tuple(int(k) for _, k, _ in orders), tuple(t for _, _, t in orders),
                    int(m.group("total") or 0), line.lineno))
            return True
        m = fmt.HUGEPAGES_RE.match(s)
        if m:
            if len(cur.hugepages) < 64:
                cur.hugepages.append(HugePool(int(m.group("nid")), int(m.group("size")), int(m.group("total")),
                                              int(m.group("free")), int(m.group("surp")), line.lineno))
            return True
        if s.startswith(("Swap cache stats:", "Swap cache:")):
            return True
        m = fmt.PAGES_HIGHMEM_RE.match(s)
        if m:
            cur.highmem_pages = int(m.group("n"))
            return True
        for regex, attr in ((fmt.TOTAL_PAGECACHE_RE, "pagecache_pages"), (fmt.SWAP_CACHE_RE, "swapcache_pages"),
                            (fmt.FREE_SWAP_RE, "swap_free_kb"), (fmt.TOTAL_SWAP_RE, "swap_total_kb"),
                            (fmt.PAGES_RAM_RE, "ram_pages"), (fmt.PAGES_RESERVED_RE, "reserved_pages")):
            m = regex.match(s)
            if m:
                setattr(cur, attr, int(m.group("n")))
                return True
        if fmt.PAGES_OTHER_RE.match(s):
            return True
        if self.mode == "meminfo":
            pairs = fmt.KV_PAGES_RE.findall(s)
            # The first block: "active_anon:%lu inactive_anon:%lu ..." (pages, no kB).
            if pairs and len(pairs) == len(s.split()):
                for key, value in pairs:
                    cur.meminfo_pages[key] = int(value)
                return True
        return False

    def close(self) -> None:
        self._finish()

    def log_wide(self) -> None:
        """Facts the log states once for every report: the kernel release and the
        hardware of another dump_stack line in the same log, for reports that print none."""
        release = next(((r.kernel_release, r) for r in self.reports if r.kernel_release), None)
        fallback = release[0] if release else (self.release[0] if self.release else None)
        for r in self.reports:
            if r.kernel_release is None and fallback is not None:
                where = (f"report of line {release[1].lineno}" if release else
                         f"line {self.release[1].lineno}" if self.release else "?")
                r.kernel_release = fallback
                r.state("kernel_release", fallback, Source(
                    (), f"CPU line of another kernel message of the same log ({where}): the same machine, assumed "
                        "the same boot"), W_CALLER)
            if r.hardware is None and self.hardware is not None:
                r.hardware = self.hardware[0]


def _summary_fields(body: str) -> tuple[dict[str, str], str | None]:
    """The oom-kill: line's ``key=value`` fields (``global_oom`` becomes a key) and the
    key of the last field.

    The cpuset and memcg paths contain no commas in practice; a comm may (it is
    last but two), so ``task`` takes everything up to ``,pid=``.
    """
    out: dict[str, str] = {}
    last: str | None = None
    task = fmt.SUMMARY_TASK_RE.search(body)
    if task:
        out.update(task.groupdict())
        body = body[:task.start()]
        last = "uid"
    for part in body.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            out[key] = value
            if not task:
                last = key
        elif part:
            out[part] = ""
            if not task:
                last = part
    return out, last


def _task_row(pid: int, rest: str, columns: tuple[str, ...]) -> TaskRow | None:
    """A task row read by its header's columns (``columns`` ends with ``name``)."""
    if not columns:  # no header seen: guess the layout from the number of fields
        columns = fmt.guess_task_columns(len(rest.split()) - 1)
        if not columns:
            return None
    numeric = [c for c in columns if c != "name"]
    parts = rest.split(None, len(numeric))
    if len(parts) < len(numeric):
        return None
    row = TaskRow(pid=pid, name=parts[len(numeric)].strip() if len(parts) > len(numeric) else "")
    if not 0 <= pid <= fmt.COLUMN_MAX["pid"]:
        return None
    for col, text in zip(numeric, parts):
        value = _int(text)
        if value is None or not fmt.column_fits(col, value):
            return None  # a damaged row: no value the kernel could print there
        if col in _ROW_COLUMNS:
            setattr(row, col, value)
    return row


#: A report's lines come within seconds (a slow serial console prints a big task table in
#: tens): a line this long after the open report's latest one (ns), or after this many
#: lines that are none of its own, belongs to something else, and ends the report.
_REPORT_GAP_NS = 30_000_000_000
_REPORT_QUIET_LINES = 1000
#: A pause between two lines of one task table that no console explains (seconds): a
#: serial console prints a row in ~10 ms.
_TABLE_GAP_NS = 50_000_000


def _task_table_state(r: ParsedOom, stamps: list[int | None]) -> None:
    """``r.task_table``: absent (no header, no row), cut (rows left out, without their
    header, or the report ends inside the table), full otherwise; the reasons in
    ``r.task_table_why``."""
    why = r.task_table_why
    if not r.tasks and not r.task_columns:
        r.task_table = "absent"
        return
    if not r.tasks and not r.complete:
        why.append("the table's header is printed but no row follows before the log ends")
    if not r.task_columns and r.tasks and not any("without the table's header" in w for w in why):
        why.append("rows without the table's header")
    if r.tasks and not (r.killed_pid is not None or r.chosen_pid is not None or r.summary or r.panic
                        or r.no_killable):
        why.append("the log ends inside the table (no kill line after it)")
    times = [t for t in stamps if t is not None]
    if any(b < a for a, b in itertools.pairwise(times)):
        why.append("its rows are out of order in time (reordered or pasted from several places)")
    deltas = [b - a for a, b in itertools.pairwise(times)]
    if len(deltas) >= 2:
        small = min(deltas)
        big = max(deltas)
        if big > _TABLE_GAP_NS and big > 8 * max(small, 1):
            why.append(f"a pause of {big / 1e9:.3f} s between two of its lines, against {small / 1e9:.3f} s "
                       "between others: rows were left out")
    for text in r.abridged:
        if "silently left out" in text:
            why.append(f"the report was abridged without marks ({text}): rows may be missing too")
            break
    victim = r.killed_pid if r.killed_pid is not None else r.summary_pid
    columns = set(r.task_columns)
    if (victim is not None and r.tasks and "pgtables_bytes" in columns and r.row(victim) is None
            and r.chosen_pid is None):
        why.append(f"the victim {victim} is not among its rows (dump_tasks lists every eligible task)")
    r.task_table = "cut" if why else "full"


def parse_oom_lines(lines: Iterable[str], path: str = "<lines>") -> OomLog:
    """Every OOM report in raw log ``lines``; never raises on content. ``OomLog.lines``
    counts the raw lines (the reader joins wrapped ones and splits escaped ones).

    Between reports, the reader is told to skip the lines no report could begin with
    (:class:`~.lines.Gate`, :data:`_WANTED_STARTS`): they are counted as unknown, unread.
    Reading stops at the bounds of :mod:`.limits` (the rest of ``lines`` is not read;
    a warning says where)."""
    return _parse_oom(lambda gate: kernel_log_lines(lines, gate), path)


def _parse_oom(read: Callable[[Gate], Iterable[LogLine]], path: str, text: _LogText | None = None) -> OomLog:
    """:func:`parse_oom_lines` of the LogLines ``read`` gives through the gate it is given.

    Once :data:`~.limits.LOG_MAX_REPORTS` reports are read and another begins, or
    :data:`~.limits.LOG_MAX_REPORT_LINES` lines are read into reports, the reports
    are read no further: the rest of the log is counted in ``text`` (its raw lines,
    when the log is a file) or left unread (lines)."""
    parser = _Parser()
    gate = Gate(_WANTED_STARTS, _WANTED_ANYWHERE)
    feed, idle = parser.feed, parser.idle
    stop_line = 0  # the first raw line not read in full, when the bounds stopped the reader
    for line in read(gate):
        feed(line)
        gate.active = idle()
        if parser.cur is not None and len(parser.reports) >= LOG_MAX_REPORTS:
            stop_line = parser.cur.lineno  # the line that began one report too many: dropped
            parser.cur = None
            break
        if parser.report_lines >= LOG_MAX_REPORT_LINES:
            stop_line = max(line.linenos or (line.lineno,)) + 1
            break
    parser.close()
    parser.log_wide()
    warnings = list(parser.warnings)
    for r in parser.reports:
        warnings.extend(r.warnings)
    lines = gate.lines
    if stop_line:
        why = (f"{LOG_MAX_REPORTS:,} OOM reports" if len(parser.reports) >= LOG_MAX_REPORTS and parser.report_lines
               < LOG_MAX_REPORT_LINES else f"{LOG_MAX_REPORT_LINES:,} lines of OOM reports")
        head = f"{path}: read in full up to line {stop_line - 1:,} ({why}, memtrace's bound); "
        if text is None:
            warnings.append(head + "the rest is not read")
        else:
            rest = text.count_from(stop_line)
            lines = stop_line - 1 + rest.lines
            warnings.append(head + f"the {rest.lines:,} lines after it, with {rest.headers:,} more "
                            f"'invoked oom-killer' and {rest.kills:,} more 'Killed process' lines, are counted, "
                            "not read")
    if gate.reader is not None and gate.reader.rejoin_steps_left <= 0:
        warnings.append(f"{path}: wrapped lines are no longer rejoined after {LOG_MAX_REJOIN_STEPS:,} tries "
                        "(memtrace's bound): lines after that are read as they stand")
    if text is not None and text.cut:
        warnings.append(f"{path}: only the first {text.read_bytes / (1 << 20):,.0f} MiB of its text "
                        f"{'(inflated) ' if text.gzipped else ''}are read ({LOG_MAX_TEXT_BYTES >> 20:,} MiB, "
                        "memtrace's bound); the rest is not")
    return OomLog(path, parser.reports, lines, parser.unknown + gate.skipped, warnings)


class _Rest(NamedTuple):
    """What the raw text after the reader stopped holds: lines, OOM headers, kill lines."""

    lines: int
    headers: int
    kills: int


class _LogText:
    """The text blocks of a log file for the OOM reader, at most
    :data:`~.limits.LOG_MAX_TEXT_BYTES` of them, able to count what follows any line
    when the reader stops there (:meth:`count_from`).

    It keeps the last few raw blocks (about a MiB each) with the number of the raw line
    each begins with: the line reader looks back at most :data:`~.lines.MAX_PIECES`
    lines of at most :data:`~memtrace.analysis.importers.textio.MAX_LINE_BYTES` each,
    so the line the reader stopped at is in one of them."""

    _KEPT_BLOCKS = 4

    def __init__(self, text: TextLines) -> None:
        self.gzipped = text.gzipped
        self.raw = text.raw_blocks()
        self.read_bytes = 0
        self.cut = False  # LOG_MAX_TEXT_BYTES stopped the reading
        self.recent: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=self._KEPT_BLOCKS)
        self.next_lineno = 1

    def blocks(self) -> Iterator[str]:
        """The text, decoded, in blocks of whole lines."""
        for raw in self.raw:
            if not self._take(raw):
                return
            yield raw.decode("utf-8", errors="replace")

    def _take(self, raw: bytes) -> bool:
        if self.read_bytes + len(raw) > LOG_MAX_TEXT_BYTES:
            self.cut = True
            self.raw.close()
            return False
        self.read_bytes += len(raw)
        self.recent.append((self.next_lineno, raw))
        self.next_lineno += raw.count(b"\n")
        return True

    def count_from(self, lineno: int) -> _Rest:
        """The lines, ``invoked oom-killer`` lines and ``Killed process`` lines from raw
        line ``lineno`` to the end of the text (or the bound), read as bytes."""
        parts: list[bytes] = []
        for first, raw in self.recent:
            if lineno >= first + raw.count(b"\n"):
                continue
            pos = 0
            for _ in range(max(0, lineno - first)):
                pos = raw.index(b"\n", pos) + 1
            parts.append(raw[pos:])
        self.recent.clear()
        lines = headers = kills = 0
        for raw in itertools.chain(parts, (raw for raw in self.raw if self._take(raw))):
            lines += raw.count(b"\n")
            headers += raw.count(b"invoked oom-killer")
            kills += raw.count(b"Killed process")
        return _Rest(lines, headers, kills)


#: How a line begins when it can start or concern an OOM report (or open another
#: kernel report whose dump_stack must not be taken for the OOM's), once stripped.
_WANTED_STARTS = ("CPU: ", "Pid: ", "oom", "Out of", "out of", "Memory cgroup", "Killed process", "Kill process",
                  "kill process", "Kernel panic", "Mem-", "Tasks ", "Task in ", "[", "memory", "swap: usage", "kmem",
                  "BUG", "WARNING", "------------[", "INFO: ", "Unable to handle", "general protection", "Oops",
                  "Internal error", "kernel BUG", "watchdog:", "==", "sysrq", "SysRq", "rcu: INFO", "current: ",
                  "Hardware name:")
#: What such a line holds elsewhere: the header (its comm comes first), an allocation
#: failure report (its comm too), the kill message of a task already exiting.
_WANTED_ANYWHERE = ("oom-killer", "allocation failure", "OOM victim")


def parse_oom_log(path: str | os.PathLike[str]) -> OomLog:
    """Every OOM report in the log file ``path`` (plain or gzip); ParseError only
    when the file cannot be opened. The same as :func:`parse_oom_lines` of its lines,
    read in blocks of text (:func:`~.lines.kernel_log_blocks`, faster), within the
    bounds of :mod:`.limits`: beyond them the rest is counted or left unread, and a
    warning says so."""
    text = open_text(path)
    bounded = _LogText(text)
    log = _parse_oom(lambda gate: kernel_log_blocks(bounded.blocks(), gate), text.path, bounded)
    log.warnings[:0] = text.warnings
    return log


_LOG_MARKERS = ("invoked oom-killer", "Killed process", "Out of memory", "Out of Memory", "oom-kill:", "oom_reaper:",
                "oom-killer: gfp_mask=")


def looks_like_kernel_log(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` reads as a kernel log: it mentions the OOM killer, or
    most of its first lines carry a dmesg, syslog or journal kernel prefix. A
    ``perf script`` or ftrace dump is not a kernel log (import it instead)."""
    head = head_text(path, 1 << 20)
    if not head or "\x00" in head[:4096]:
        return False
    lines = [ln for ln in head.splitlines()[:200] if ln.strip()]
    if not lines:
        return False
    tracey = sum(1 for ln in lines[:50] if re.search(r"\b[a-z_]+:[a-z_]+:\s", ln)
                 or re.search(r"\]\s+[.dDbNnhHsz0-9]{4,5}\s+\d+\.\d+:", ln))
    if tracey > len(lines[:50]) // 2:
        return False
    if any(marker in head for marker in _LOG_MARKERS):
        return True
    prefixed = sum(1 for ln in lines[:50] if split_prefix(ln)[:2] != (None, None) or KMSG_LEVEL_RE.match(ln))
    return prefixed >= max(1, len(lines[:50]) // 2)
