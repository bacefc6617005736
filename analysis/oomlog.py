"""OOM reports read back from a kernel log: dmesg, ``journalctl -k``, syslog.

The parser follows the printk formats of ``../shared/reference/kernel-mm-facts.md``
§3 for every tree read there (2.6.32, 3.4, 3.10, 4.9, 4.19, 5.4, 5.15, 6.6, 6.8+):
the ``invoked oom-killer`` header (§3.2), the dump_stack ``CPU:``/``Pid:`` line
(kernel release, allocating pid), Mem-Info (§3.3) or the memcg usage and
``memory.stat`` lines (§3.4, one-line and multi-line forms, v1 and v2), the task
table in each of its five layouts (§3.5, read by its header's column names), the
``oom-kill:`` summary (§3.6), the kill lines (§3.7, including 2.6.32's lowercase
``kill process ... or a child`` and the ``sacrifice child`` pair), the reaper line
(§3.8), ``memory.oom.group`` kills and the panics.

A log holds several reports and much else, interleaved; lines are read one at a
time, each stripped of its prefix (``[ 153.241486]``, ``<4>``, ``dmesg -x``
facility, ``dmesg -T`` wall time, syslog/journal ``host kernel:``, printk caller
ids), and every line that is not part of a report is counted and skipped. Nothing
in the input makes the parser raise: damaged lines are skipped, a report cut short
is reported with what it has and a warning.

Two layers:

- :func:`parse_oom_log` returns :class:`ParsedOom` objects, the raw facts of each
  report (numbers as printed, converted to bytes/pages only where named so);
- :func:`report_from_log` turns them into :class:`~.report_model.OomReport`: every
  candidate's badness recomputed from its task-table row with
  :mod:`memtrace.oom_kill` for the report's kernel (from its ``CPU:`` line, or
  inferred from the layout), what each row lacks for that formula, whether the
  victim is the one the recomputation ranks first, what could not be reclaimed and
  why, and who grew across successive reports of the same memcg or machine.

What a log cannot tell is left None: a journal line without the kernel's own
timestamp has no ``ts_ns``; a 4.19-era row has no RSS split by type; a memcg report
prints no machine swap total, so ``totalpages`` counts no swap when the cgroup
allows swap (said in the candidate notes).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from memtrace.errors import ParseError
from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.oom_kill import OomTask, oom_badness, select_bad_process
from memtrace.linux.proc import oom_adj_to_score_adj
from memtrace.linux.version import (
    OOM_BADNESS_IN_PAGES,
    OOM_BADNESS_REWRITE,
    OOM_NO_ROOT_BONUS,
    V2_6_32,
    V3_4,
    V3_10,
    V4_9,
    V4_19,
    V5_4,
    V6_8,
    KernelVersion,
    format_kernel_version,
    parse_kernel_version,
)

from .importers.textio import head_text, open_text
from .report.model import Candidate, OomKillReport, OomReport, TaskRef, Unreclaimable

__all__ = [
    "LogLine",
    "OomLog",
    "ParsedOom",
    "TaskRow",
    "infer_kernel_version",
    "kernel_log_lines",
    "looks_like_kernel_log",
    "oom_report_from_parsed",
    "parse_oom_lines",
    "parse_oom_log",
    "report_from_log",
    "split_prefix",
]

KiB = 1024
MiB = 1 << 20


# --------------------------------------------------------------------------- prefixes


@dataclass(frozen=True)
class LogLine:
    """One log line without its prefix: the kernel's timestamp (ns since boot, None
    when the line has none), the printk text, the 1-based line number, and the
    wall-clock or host prefix when one was stripped."""

    ts_ns: int | None
    text: str
    lineno: int
    wall: str | None = None


_KMSG_LEVEL = re.compile(r"^<\d{1,3}>")
# dmesg -x: "kern  :warn  : "
_FACILITY = re.compile(r"^[a-z]{2,8}\s*:[a-z]{3,7}\s*:\s")
# syslog / journalctl short: "Nov 26 22:48:00 host kernel: " (also "kernel[0]:")
_SYSLOG = re.compile(
    r"^(?P<wall>(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d(?:\.\d+)?)"
    r"|(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
    r"\s+(?P<host>\S+)\s+kernel(?:\[\d+\])?:\s?"
)
# dmesg --time-format iso: "2024-11-26T22:48:00,123456+00:00 "
_ISO = re.compile(r"^(?P<wall>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.,]\d+[+-]\d\d:?\d\d)\s")
# "[  153.241486]" ; dmesg -T "[Tue Nov 26 22:48:00 2024]"
_KTS = re.compile(r"^\[\s*(?P<s>\d+)\.(?P<frac>\d{1,9})\]\s?")
_CTIME = re.compile(r"^\[(?P<wall>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]\s?")
# journalctl -o short-monotonic after the timestamp: "host kernel: "
_HOST_KERNEL = re.compile(r"^\S+\s+kernel(?:\[\d+\])?:\s?")
# CONFIG_PRINTK_CALLER: "[ T4847] " / "[  C1] "
_CALLER = re.compile(r"^\[\s*[TC]\d+\]\s?")


def split_prefix(raw: str) -> tuple[int | None, str | None, str]:
    """``(ts_ns, wall, text)`` of one raw log line: the kernel timestamp in ns (None
    if absent), a wall-clock prefix (syslog, journal, ``dmesg -T``/iso; None if
    absent) and the printk text after every prefix."""
    s = raw.rstrip("\r\n")
    wall: str | None = None
    ts_ns: int | None = None
    m = _KMSG_LEVEL.match(s)
    if m:
        s = s[m.end():]
    m = _FACILITY.match(s)
    if m:
        s = s[m.end():]
    m = _SYSLOG.match(s)
    if m:
        wall = m.group("wall")
        s = s[m.end():]
    else:
        m = _ISO.match(s)
        if m:
            wall = m.group("wall")
            s = s[m.end():]
    m = _KTS.match(s)
    if m:
        frac = m.group("frac")
        ts_ns = int(m.group("s")) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac))
        s = s[m.end():]
        m = _HOST_KERNEL.match(s)
        if m:
            s = s[m.end():]
    else:
        m = _CTIME.match(s)
        if m:
            wall = m.group("wall")
            s = s[m.end():]
    m = _CALLER.match(s)
    if m:
        s = s[m.end():]
    return ts_ns, wall, s


def kernel_log_lines(lines: Iterable[str]) -> Iterator[LogLine]:
    """Each raw line as a :class:`LogLine` (prefix stripped)."""
    for lineno, raw in enumerate(lines, 1):
        ts_ns, wall, text = split_prefix(raw)
        yield LogLine(ts_ns, text, lineno, wall)


# --------------------------------------------------------------------------- raw facts


@dataclass
class TaskRow:
    """One row of the task dump (mm/oom_kill.c ``dump_task()``), as printed.

    Memory in pages except ``pgtables_bytes``; None for columns the row's layout
    does not have (§3.5: ``rss_anon``/``rss_file``/``rss_shmem`` from 6.8,
    ``pgtables_bytes`` 4.19+, ``nr_ptes`` 3.10..4.x, ``nr_pmds`` 4.9-era,
    ``swapents`` 3.10+, ``cpu`` and ``oom_adj`` 2.6.32/3.4).
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


#: Task-table column names (as the header prints them) and the TaskRow field each fills.
_TASK_COLUMNS = {
    "uid": "uid", "tgid": "tgid", "total_vm": "total_vm", "rss": "rss", "rss_anon": "rss_anon",
    "rss_file": "rss_file", "rss_shmem": "rss_shmem", "pgtables_bytes": "pgtables_bytes",
    "nr_ptes": "nr_ptes", "nr_pmds": "nr_pmds", "swapents": "swapents", "cpu": "cpu",
    "oom_adj": "oom_adj", "oom_score_adj": "oom_score_adj",
}


@dataclass
class ParsedOom:
    """The facts of one OOM report as the log printed them.

    Memory values keep the log's units, named in the field (``*_kb``, ``*_pages``);
    ``memcg_counters`` maps ``memory``, ``memory+swap``, ``swap``, ``kmem`` to
    ``(usage_kb, limit_kb, failcnt)``; ``memcg_stats`` holds ``memory.stat`` in bytes
    (the one-line ``cache:0KB`` form of old kernels converted); ``meminfo_pages`` the
    first Mem-Info block (pages); ``zones`` each zone line's ``key: kB`` values.
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
    compaction_disabled: bool = False
    meminfo_pages: dict[str, int] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    zones: list[dict[str, Any]] = field(default_factory=list)
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
    lines: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def is_memcg(self) -> bool:
        """A memory-cgroup OOM (CONSTRAINT_MEMCG)."""
        if self.summary.get("constraint"):
            return self.summary["constraint"] == "CONSTRAINT_MEMCG"
        return bool(self.memcg_counters) or (self.kill_message or "").startswith("Memory cgroup")

    @property
    def constraint(self) -> str | None:
        """The ``constrained_alloc()`` result the log states, or the one it implies."""
        if self.summary.get("constraint"):
            return self.summary["constraint"]
        if self.is_memcg:
            return "CONSTRAINT_MEMCG"
        if self.header or self.kill_message:
            return "CONSTRAINT_NONE"
        return None

    @property
    def memcg(self) -> str | None:
        """The OOM memcg's path (memcg OOMs only)."""
        if "oom_memcg" in self.summary:
            return self.summary["oom_memcg"]
        if not self.is_memcg:
            return None
        return self.limit_of or self.memcg_stats_path

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
        return self.killed_pid if self.killed_pid is not None else self.summary_pid

    @property
    def summary_pid(self) -> int | None:
        try:
            return int(self.summary["pid"]) if "pid" in self.summary else None
        except ValueError:
            return None

    @property
    def victim_comm(self) -> str | None:
        return self.killed_comm if self.killed_comm is not None else self.summary.get("task")

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


# --------------------------------------------------------------------------- regexes

_HEADER = re.compile(
    r"^(?P<comm>.*?) invoked oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+|\d+)(?:\((?P<flags>[^)]*)\))?,"
    r"(?: nodemask=(?P<nodemask>[^,]*),)? order=(?P<order>-?\d+)"
    r"(?:, oom_adj=(?P<oom_adj>-?\d+))?(?:, oom_score_adj=(?P<adj>-?\d+))?"
)
_CPUSET = re.compile(r"^(?P<comm>.*?) cpuset=(?P<cpuset>\S*) mems_allowed=(?P<mems>\S*)$")
# 3.x .. 6.x lib/dump_stack.c; 6.11+ has "UID: %u".
_CPU_LINE = re.compile(
    r"^CPU: (?P<cpu>\d+) (?:UID: (?P<uid>\d+) )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?) +"
    r"(?:Not tainted|Tainted: [A-Z ]*?) *(?P<release>\d+\.\d+\S*)"
)
# 2.6.32: "Pid: %d, comm: %.20s %s %s %.*s"
_PID_LINE = re.compile(
    r"^Pid: (?P<pid>\d+), comm: (?P<comm>.*?) +(?:Not tainted|Tainted: [A-Z ]*?) *(?P<release>\d+\.\d+\S*)"
)
_KV_PAGES = re.compile(r"([a-z_]+(?:\([a-z]+\))?):(\d+)(?=\s|$)")
_NODE_LINE = re.compile(r"^Node (?P<nid>\d+) active_anon:")
_ZONE_LINE = re.compile(r"^(?:Node (?P<nid>\d+) )?(?P<zone>DMA32|DMA|Normal|HighMem|Movable|Device) free:")
_KV_KB = re.compile(r"([a-z_]+(?:\([a-z]+\))?):\s?(-?\d+)[kK]B")
_BUDDY = re.compile(r"^(?:Node \d+ )?(?:DMA32|DMA|Normal|HighMem|Movable|Device): (?:\d+\*\d+kB.*)= \d+kB$")
_MEMCG_COUNTER = re.compile(
    r"^(?P<name>memory|memory\+swap|swap|kmem|kmem\.tcp): usage (?P<usage>\d+)kB, limit (?P<limit>\d+)kB, "
    r"failcnt (?P<failcnt>\d+)"
)
_MEMCG_STATS = re.compile(r"^Memory cgroup stats for (?P<path>.*?):(?P<rest>.*)$")
_STAT_LINE = re.compile(r"^(?P<key>[a-z][a-z0-9_.]*) (?P<value>\d+)$")
_STAT_ONELINE = re.compile(r"([a-z][a-z0-9_]*):(\d+)([KM]B)?")
_TASK_IN = re.compile(r"^Task in (?P<task>.*) killed as a result of limit of (?P<limit>.*)$")
_TASKS_STATE = re.compile(r"^Tasks state \(memory values in pages\):")
_TASK_HEADER = re.compile(r"^\[\s*pid\s*\]\s+(?P<cols>uid\s+tgid\s+.*name)\s*$")
_TASK_ROW = re.compile(r"^\[\s*(?P<pid>\d+)\]\s+(?P<rest>.*)$")
_SUMMARY = re.compile(r"^oom-kill:(?P<body>constraint=.*)$")
_KILL = re.compile(
    r"^(?:(?P<msg>[^:]*?): )?(?P<verb>[Kk]ill process|Killed process) (?P<pid>\d+) \((?P<comm>.*)\)"
    r"(?P<rest>(?: score -?\d+ or (?:sacrifice child|a child))| total-vm:.*| sharing same memory)?$"
)
_KILLED_DETAIL = re.compile(
    r"total-vm:(?P<total_vm>\d+)kB, anon-rss:(?P<anon>\d+)kB, file-rss:(?P<file>\d+)kB"
    r"(?:, shmem-rss:(?P<shmem>\d+)kB)?(?:, UID:(?P<uid>\d+))?(?: pgtables:(?P<pgtables>\d+)kB)?"
    r"(?: oom_score_adj:(?P<adj>-?\d+))?"
)
_SCORE = re.compile(r" score (?P<score>-?\d+) or ")
_REAPED = re.compile(
    r"^oom_reaper: reaped process (?P<pid>\d+) \((?P<comm>.*)\), now anon-rss:(?P<anon>\d+)kB, "
    r"file-rss:(?P<file>\d+)kB, shmem-rss:(?P<shmem>\d+)kB"
)
_UNABLE_REAP = re.compile(r"^oom_reaper: unable to reap pid:(?P<pid>\d+) \((?P<comm>.*)\)")
_PANIC = re.compile(r"^Kernel panic - not syncing: (?P<msg>.*)$")
_PANIC_232 = re.compile(r"^(?P<msg>out of memory\. (?:Compulsory )?panic_on_oom is selected\.?)$")
_NO_KILLABLE = re.compile(r"^Out of memory and no killable processes")
_OOM_GROUP = re.compile(r"^Tasks in (?P<path>.*) are going to be killed due to memory\.oom\.group set")
_EXITING = re.compile(r"^(?P<msg>.*?): OOM victim (?P<pid>\d+) \((?P<comm>.*)\) is already exiting")
_TOTAL_PAGECACHE = re.compile(r"^(?P<n>\d+) total pagecache pages")
_SWAP_CACHE = re.compile(r"^(?P<n>\d+) pages in swap cache")
_FREE_SWAP = re.compile(r"^Free swap\s+=\s*(?P<n>-?\d+)kB")
_TOTAL_SWAP = re.compile(r"^Total swap\s+=\s*(?P<n>\d+)kB")
_PAGES_RAM = re.compile(r"^(?P<n>\d+) pages RAM")
_PAGES_HIGHMEM = re.compile(r"^(?P<n>\d+) pages HighMem")
_PAGES_RESERVED = re.compile(r"^(?P<n>\d+) pages reserved")


def _int(text: str | None) -> int | None:
    if text is None or len(text) > 24:  # no field the kernel prints is longer
        return None
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


#: The largest value a task-table column can hold, by column: the C type the
#: kernel prints it as (uid_t, pid_t, short for oom_score_adj); counts of pages
#: or bytes are bounded at 2**52 (4 PiB of pages: no machine has more).
_COLUMN_MAX = {"uid": (1 << 32) - 1, "tgid": (1 << 31) - 1, "pid": (1 << 31) - 1, "oom_score_adj": 1000,
               "oom_adj": 17, "cpu": 1 << 20}
_COUNT_MAX = 1 << 52


def _fits(col: str, value: int) -> bool:
    lo = -1000 if col == "oom_score_adj" else -17 if col == "oom_adj" else 0
    return lo <= value <= _COLUMN_MAX.get(col, _COUNT_MAX)


def _count(text: str | None, hi: int = _COUNT_MAX) -> int | None:
    """A number of a Killed-process or header line, None when absent or beyond what
    the kernel could have printed there."""
    value = _int(text)
    return value if value is not None and 0 <= value <= hi else None


# --------------------------------------------------------------------------- parser


class _Parser:
    """The line-at-a-time state machine behind :func:`parse_oom_lines`."""

    def __init__(self) -> None:
        self.reports: list[ParsedOom] = []
        self.cur: ParsedOom | None = None
        self.mode = ""  # "", "meminfo", "stats", "tasks"
        self.lines = 0
        self.unknown = 0
        self.warnings: list[str] = []

    # -- helpers

    def _start(self, line: LogLine, header: bool) -> ParsedOom:
        self._finish()
        self.cur = ParsedOom(lineno=line.lineno, ts_ns=line.ts_ns, wall=line.wall, header=header)
        self.mode = ""
        return self.cur

    def _finish(self) -> None:
        cur = self.cur
        if cur is None:
            return
        if not cur.complete:
            cur.warnings.append(
                f"line {cur.lineno}: the OOM report is truncated: it ends before its kill line"
            )
        self.reports.append(cur)
        self.cur = None
        self.mode = ""

    def _by_victim(self, pid: int) -> ParsedOom | None:
        for r in reversed(([self.cur] if self.cur else []) + self.reports):
            if r is not None and (r.killed_pid == pid or any(p == pid for p, _ in r.also_killed)):
                return r
        return None

    # -- one line

    def feed(self, line: LogLine) -> None:
        self.lines += 1
        try:
            known = self._feed(line)
        except (ValueError, IndexError, OverflowError) as e:  # damaged numbers: skip the line
            known = False
            if len(self.warnings) < 100:
                self.warnings.append(f"line {line.lineno}: skipped ({e})")
        if not known:
            self.unknown += 1
        elif self.cur is not None:
            self.cur.lines += 1

    def _feed(self, line: LogLine) -> bool:
        text = line.text
        stripped = text.strip()
        m = _HEADER.match(stripped)
        if m:
            r = self._start(line, header=True)
            r.trigger_comm = m.group("comm")
            r.gfp_mask = _int(m.group("gfp"))
            r.gfp_flags = m.group("flags")
            r.order = _int(m.group("order"))
            r.nodemask = m.group("nodemask")
            r.trigger_oom_adj = _int(m.group("oom_adj"))
            r.trigger_oom_score_adj = _int(m.group("adj"))
            return True

        m = _KILL.match(stripped)
        if m:
            return self._kill_line(line, m)
        m = _REAPED.match(stripped) or _UNABLE_REAP.match(stripped)
        if m:
            pid = int(m.group("pid"))
            target = self._by_victim(pid)
            if target is None:
                return False
            target.reaped = {"pid": pid, "comm": m.group("comm"), "ts_ns": line.ts_ns,
                             "success": "anon" in m.groupdict(),
                             **({k: int(m.group(k)) * KiB for k in ("anon", "file", "shmem")}
                                if "anon" in m.groupdict() else {})}
            return True

        m = _PANIC.match(stripped) or _PANIC_232.match(stripped)
        if m:
            msg = m.group("msg")
            lowered = msg.lower()
            if "memory" not in lowered and "oom" not in lowered:
                return False
            if self.cur is None or self.cur.killed_pid is not None or self.cur.panic is not None:
                self._start(line, header=False)
            assert self.cur is not None
            self.cur.panic = msg.strip()
            self._finish()
            return True

        cur = self.cur
        if cur is None:
            return False

        if _NO_KILLABLE.match(stripped):
            cur.no_killable = True
            return True
        m = _EXITING.match(stripped)
        if m:
            cur.kill_message = m.group("msg")
            cur.already_exiting = True
            cur.killed_pid = int(m.group("pid"))
            cur.killed_comm = m.group("comm")
            cur.killed_ts_ns = line.ts_ns
            return True
        m = _OOM_GROUP.match(stripped)
        if m:
            cur.oom_group = m.group("path")
            return True
        m = _SUMMARY.match(stripped)
        if m:
            self.mode = ""
            cur.summary = _summary_fields(m.group("body"))
            return True

        if self.mode == "tasks":
            m = _TASK_ROW.match(stripped)
            if m:
                row = _task_row(int(m.group("pid")), m.group("rest"), cur.task_columns)
                if row is None:
                    cur.warnings.append(f"line {line.lineno}: a task row does not match its header; skipped")
                    return False
                cur.tasks.append(row)
                return True
        m = _TASK_HEADER.match(stripped)
        if m:
            cur.task_columns = tuple(m.group("cols").split())
            self.mode = "tasks"
            return True
        if _TASKS_STATE.match(stripped):
            self.mode = "tasks"
            return True

        m = _CPU_LINE.match(stripped) or _PID_LINE.match(stripped)
        if m:
            if cur.kernel_release is None:
                cur.kernel_release = m.group("release")
                cur.trigger_pid = _count(m.group("pid"), _COLUMN_MAX["pid"])
                cur.trigger_uid = _count(m.groupdict().get("uid"), _COLUMN_MAX["uid"])
            return True
        m = _CPUSET.match(stripped)
        if m and cur.cpuset is None:
            cur.cpuset = m.group("cpuset")
            cur.mems_allowed = m.group("mems")
            return True
        if stripped == "COMPACTION is disabled!!!":
            cur.compaction_disabled = True
            return True

        if stripped == "Mem-Info:":
            self.mode = "meminfo"
            return True
        if (self.mode == "meminfo" or cur.meminfo_pages) and self._meminfo_line(cur, stripped):
            return True

        m = _MEMCG_COUNTER.match(stripped)
        if m:
            cur.memcg_counters[m.group("name")] = (int(m.group("usage")), int(m.group("limit")),
                                                   int(m.group("failcnt")))
            return True
        m = _TASK_IN.match(stripped)
        if m:
            cur.task_in, cur.limit_of = m.group("task"), m.group("limit")
            return True
        m = _MEMCG_STATS.match(stripped)
        if m:
            path, rest = m.group("path"), m.group("rest").strip()
            if cur.memcg_stats_path is None:
                cur.memcg_stats_path = path
                if rest:  # <= 4.x one-line form: "cache:0KB rss:1024KB ..."
                    for key, value, unit in _STAT_ONELINE.findall(rest):
                        mult = {"KB": KiB, "MB": MiB}.get(unit, 1)
                        cur.memcg_stats[key] = int(value) * mult
                else:
                    cur.memcg_stats_multiline = True
                    self.mode = "stats"
            return True
        if self.mode == "stats":
            m = _STAT_LINE.match(stripped)
            if m:
                cur.memcg_stats[m.group("key")] = int(m.group("value"))
                return True
        return False

    def _meminfo_line(self, cur: ParsedOom, s: str) -> bool:
        m = _NODE_LINE.match(s)
        if m:
            node: dict[str, Any] = {"nid": int(m.group("nid"))}
            node.update({k: int(v) for k, v in _KV_KB.findall(s)})
            unrec = re.search(r"all_unreclaimable\? (yes|no)", s)
            if unrec:
                node["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.nodes.append(node)
            return True
        m = _ZONE_LINE.match(s)
        if m:
            zone: dict[str, Any] = {"zone": m.group("zone")}
            if m.group("nid") is not None:
                zone["nid"] = int(m.group("nid"))
            zone.update({k: int(v) for k, v in _KV_KB.findall(s)})
            unrec = re.search(r"all_unreclaimable\? (yes|no)", s)
            if unrec:
                zone["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.zones.append(zone)
            return True
        if s.startswith("lowmem_reserve[]:") or _BUDDY.match(s) or (s.startswith("Node ") and "hugepages_" in s):
            return True
        if s.startswith("Swap cache stats:") or (s.endswith("pages HighMem/MovableOnly") and _PAGES_HIGHMEM.match(s)):
            m = _PAGES_HIGHMEM.match(s)
            if m:
                cur.highmem_pages = int(m.group("n"))
            return True
        for regex, attr in ((_TOTAL_PAGECACHE, "pagecache_pages"), (_SWAP_CACHE, "swapcache_pages"),
                            (_FREE_SWAP, "swap_free_kb"), (_TOTAL_SWAP, "swap_total_kb"),
                            (_PAGES_RAM, "ram_pages"), (_PAGES_RESERVED, "reserved_pages")):
            m = regex.match(s)
            if m:
                setattr(cur, attr, int(m.group("n")))
                return True
        if re.match(r"^\d+ pages (?:cma reserved|hwpoisoned|shared|non-shared|in pagetable cache)", s):
            return True
        if self.mode == "meminfo":
            pairs = _KV_PAGES.findall(s)
            # The first block: "active_anon:%lu inactive_anon:%lu ..." (pages, no kB).
            if pairs and len(pairs) == len(s.split()):
                for key, value in pairs:
                    cur.meminfo_pages[key] = int(value)
                return True
        return False

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
            if cur is None or cur.killed_pid is not None or cur.chosen_pid is not None:
                cur = self._start(line, header=False)
            cur.kill_message = msg
            cur.chosen_pid, cur.chosen_comm = pid, comm
            score = _SCORE.search(rest)
            cur.chosen_score = int(score.group("score")) if score else None
            return True
        # "Killed process N (comm) ..."
        if cur is not None and cur.killed_pid is not None:
            if cur.oom_group is not None:  # memory.oom.group: every task of the memcg
                cur.also_killed.append((pid, comm))
                return True
            cur = self._start(line, header=False)  # dump_header was rate-limited
        if cur is None:
            cur = self._start(line, header=False)
        if msg:
            cur.kill_message = msg
        cur.killed_pid, cur.killed_comm, cur.killed_ts_ns = pid, comm, line.ts_ns
        d = _KILLED_DETAIL.search(rest)
        if d:
            cur.killed_total_vm_kb = _count(d.group("total_vm"))
            cur.killed_anon_rss_kb = _count(d.group("anon"))
            cur.killed_file_rss_kb = _count(d.group("file"))
            cur.killed_shmem_rss_kb = _count(d.group("shmem"))
            cur.killed_uid = _count(d.group("uid"), _COLUMN_MAX["uid"])
            cur.killed_pgtables_kb = _count(d.group("pgtables"))
            cur.killed_oom_score_adj = _int(d.group("adj"))
        if cur.ts_ns is None:
            cur.ts_ns = line.ts_ns
        return True

    def close(self) -> None:
        self._finish()


def _summary_fields(body: str) -> dict[str, str]:
    """The oom-kill: line's ``key=value`` fields; ``global_oom`` becomes a key.

    The cpuset and memcg paths contain no commas in practice; a comm may (it is
    last but two), so ``task`` takes everything up to ``,pid=``.
    """
    out: dict[str, str] = {}
    task = re.search(r",task=(?P<task>.*),pid=(?P<pid>-?\d+),uid=(?P<uid>\d+)$", body)
    if task:
        out.update(task.groupdict())
        body = body[:task.start()]
    for part in body.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            out[key] = value
        elif part:
            out[part] = ""
    return out


def _task_row(pid: int, rest: str, columns: tuple[str, ...]) -> TaskRow | None:
    """A task row read by its header's columns (``columns`` ends with ``name``)."""
    if not columns:  # no header seen: guess the layout from the number of fields
        columns = _guess_columns(rest)
        if not columns:
            return None
    numeric = [c for c in columns if c != "name"]
    parts = rest.split(None, len(numeric))
    if len(parts) < len(numeric):
        return None
    row = TaskRow(pid=pid, name=parts[len(numeric)] if len(parts) > len(numeric) else "")
    if not 0 <= pid <= _COLUMN_MAX["pid"]:
        return None
    for col, text in zip(numeric, parts):
        value = _int(text)
        if value is None or not _fits(col, value):
            return None  # a damaged row: no value the kernel could print there
        attr = _TASK_COLUMNS.get(col)
        if attr is not None:
            setattr(row, attr, value)
    return row


_LAYOUTS = (
    ("uid", "tgid", "total_vm", "rss", "rss_anon", "rss_file", "rss_shmem", "pgtables_bytes", "swapents",
     "oom_score_adj", "name"),
    ("uid", "tgid", "total_vm", "rss", "nr_ptes", "nr_pmds", "swapents", "oom_score_adj", "name"),
    ("uid", "tgid", "total_vm", "rss", "pgtables_bytes", "swapents", "oom_score_adj", "name"),
    ("uid", "tgid", "total_vm", "rss", "cpu", "oom_adj", "oom_score_adj", "name"),
    ("uid", "tgid", "total_vm", "rss", "cpu", "oom_adj", "name"),
)


def _guess_columns(rest: str) -> tuple[str, ...]:
    n = len(rest.split()) - 1
    for layout in _LAYOUTS:
        if len(layout) - 1 == n:
            return layout
    return ()


def parse_oom_lines(lines: Iterable[str], path: str = "<lines>") -> OomLog:
    """Every OOM report in raw log ``lines``; never raises on content."""
    parser = _Parser()
    for line in kernel_log_lines(lines):
        parser.feed(line)
    parser.close()
    warnings = list(parser.warnings)
    for r in parser.reports:
        warnings.extend(r.warnings)
    return OomLog(path, parser.reports, parser.lines, parser.unknown, warnings)


def parse_oom_log(path: str | os.PathLike[str]) -> OomLog:
    """Every OOM report in the log file ``path`` (plain or gzip); ParseError only
    when the file cannot be opened."""
    text = open_text(path)
    log = parse_oom_lines(text, text.path)
    log.warnings[:0] = text.warnings
    return log


_LOG_MARKERS = ("invoked oom-killer", "Killed process", "Out of memory", "oom-kill:", "oom_reaper:")


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
    prefixed = sum(1 for ln in lines[:50] if split_prefix(ln)[:2] != (None, None) or _KMSG_LEVEL.match(ln))
    return prefixed >= max(1, len(lines[:50]) // 2)


# --------------------------------------------------------------------------- versions


def infer_kernel_version(r: ParsedOom) -> tuple[KernelVersion | None, str]:
    """The report's kernel version and how it is known: from the dump_stack line's
    release, else from the layout of the header, task table and kill line (the
    oldest tree read with that layout). (None, why) when nothing tells."""
    if r.kernel_release:
        try:
            return parse_kernel_version(r.kernel_release), f"kernel {r.kernel_release} (dump_stack line)"
        except ValueError:
            pass
    cols = set(r.task_columns)
    guess: KernelVersion | None = None
    if "rss_anon" in cols:
        guess = V6_8
    elif "pgtables_bytes" in cols:
        modern_kill = r.killed_pgtables_kb is not None or bool(r.summary)
        guess = V5_4 if modern_kill or (r.chosen_pid is None and r.killed_pid is not None) else V4_19
    elif "nr_pmds" in cols:
        guess = V4_9
    elif "nr_ptes" in cols:
        guess = V3_10
    elif "oom_score_adj" in cols or (r.trigger_oom_adj is not None and r.trigger_oom_score_adj is not None):
        guess = V3_4
    elif "oom_adj" in cols or r.trigger_oom_adj is not None:
        guess = V2_6_32
    elif r.killed_pgtables_kb is not None or r.summary:
        guess = V5_4
    elif r.nodemask is not None or r.killed_shmem_rss_kb is not None:
        guess = V4_9
    elif r.killed_anon_rss_kb is not None:
        guess = V3_10
    elif r.chosen_pid is not None and r.chosen_score is not None and r.kill_message and "a child" in str(r.chosen_comm):
        guess = V2_6_32
    if guess is None:
        return None, "kernel version unknown: no dump_stack line and no version-specific layout"
    return guess, f"kernel {format_kernel_version(guess)}-era layout (inferred: the log names no release)"


# --------------------------------------------------------------------------- report


def _mib(nbytes: int) -> str:
    return f"{nbytes / MiB:,.1f} MiB"


def _pages_mib(pages: int) -> str:
    return _mib(pages * PAGE_SIZE)


def _who(pid: int | None, comm: str | None) -> str:
    if pid is None:
        return comm or "an unknown task"
    return f"{comm} ({pid})" if comm else f"pid {pid}"


def _stat(stats: dict[str, int], *keys: str) -> int | None:
    for k in keys:
        if k in stats:
            return stats[k]
    return None


def _totalpages(r: ParsedOom, swap_total_pages: int | None) -> tuple[int | None, str]:
    """``oc->totalpages`` (§1.4) from what the report printed, and how it was found."""
    if r.is_memcg:
        mem = r.memcg_counters.get("memory")
        limit_bytes = _stat(r.memcg_stats, "hierarchical_memory_limit")
        if mem is not None:
            limit_pages = mem[1] // 4
        elif limit_bytes is not None:
            limit_pages = limit_bytes // PAGE_SIZE
        else:
            return None, "the memcg limit is not in the report"
        swap_pages: int | None
        how = f"the memcg limit, {limit_pages} pages ({_pages_mib(limit_pages)})"
        if "memory+swap" in r.memcg_counters:  # v1: memsw.max - memory.max
            swap_pages = max(0, r.memcg_counters["memory+swap"][1] // 4 - limit_pages)
        elif "swap" in r.memcg_counters:  # v2: swap.max
            swap_pages = r.memcg_counters["swap"][1] // 4
        else:
            swap_pages = None
        if swap_pages == 0 or swap_total_pages == 0:
            return limit_pages or 1, how + "; no swap allowed"
        if swap_pages is None and swap_total_pages is None:
            return limit_pages or 1, how + "; swap limit and machine swap unknown: no swap counted"
        if swap_total_pages is None:
            return limit_pages or 1, (how + "; the cgroup may swap but the report prints no machine swap "
                                      "total: no swap counted (memcg swappiness assumed non-zero)")
        part = swap_total_pages if swap_pages is None else min(swap_pages, swap_total_pages)
        return (limit_pages + part) or 1, how + f" + {part} swap pages (memcg swappiness assumed non-zero)"
    if r.ram_pages is None:
        return None, "no 'pages RAM' line in the report"
    managed = r.ram_pages - (r.reserved_pages or 0)
    swap = (r.swap_total_kb or 0) // 4
    how = f"totalram {managed} pages (pages RAM - reserved) + swap {swap} pages"
    return managed + swap, how


def _row_task(row: TaskRow, version: KernelVersion) -> tuple[OomTask, list[str]]:
    """The OomTask a task row describes, and what the row lacks for ``version``'s
    formula."""
    lacks: list[str] = []
    if row.rss_anon is not None:
        anon, file, shmem = row.rss_anon, row.rss_file or 0, row.rss_shmem or 0
    else:
        anon, file, shmem = row.rss or 0, 0, 0
    if row.pgtables_bytes is not None:
        pgtables = row.pgtables_bytes
    elif row.nr_ptes is not None:
        pgtables = (row.nr_ptes + (row.nr_pmds or 0)) * PAGE_SIZE
    else:
        pgtables = 0
        if version >= OOM_BADNESS_REWRITE:
            lacks.append("page tables (nr_ptes) not printed: counted as 0")
    if row.swapents is None:
        swap = 0
        if version >= OOM_BADNESS_REWRITE:
            lacks.append("swap entries not printed: counted as 0")
    else:
        swap = row.swapents
    oom_adj = None
    if row.oom_score_adj is not None:
        adj = row.oom_score_adj
    elif row.oom_adj is not None:
        oom_adj = row.oom_adj
        adj = oom_adj_to_score_adj(oom_adj) if -17 <= oom_adj <= 15 else 0
    else:
        adj = 0
        lacks.append("oom_score_adj not printed: taken as 0")
    if row.oom_adj is not None and version < OOM_BADNESS_REWRITE:
        oom_adj = row.oom_adj
    if version < OOM_BADNESS_REWRITE:
        lacks.append("2.6.32 badness() also uses children's total_vm, CPU and run time, nice, capabilities "
                     "and cpusets, which the row lacks: recomputed from total_vm and oom_adj only")
    elif version < OOM_NO_ROOT_BONUS and (row.uid == 0):
        lacks.append("CAP_SYS_ADMIN is not in the row: the root bonus of this era is not applied")
    task = OomTask(
        pid=row.pid, comm=row.name, uid=row.uid if row.uid is not None and row.uid >= 0 else 0,
        oom_score_adj=max(-1000, min(1000, adj)), rss_anon=max(0, anon), rss_file=max(0, file),
        rss_shmem=max(0, shmem), swapents=max(0, swap), pgtables_bytes=max(0, pgtables),
        total_vm=max(0, row.total_vm or 0), is_init=row.pid == 1,
        oom_adj=oom_adj if oom_adj is None or -17 <= oom_adj <= 15 else None,
    )
    return task, lacks


def _unreclaimable(r: ParsedOom, swap_total_pages: int | None) -> list[Unreclaimable]:
    """What reclaim could not free at the kill, and why, from the memcg stats or
    Mem-Info (§5.9: anon without swap, shmem without swap, mlocked, dirty,
    kernel memory, file cache already gone)."""
    out: list[Unreclaimable] = []
    if r.is_memcg and (r.memcg_stats or r.memcg_counters):
        st = r.memcg_stats
        anon = _stat(st, "total_rss", "rss", "anon")
        file = _stat(st, "total_cache", "cache", "file")
        shmem = _stat(st, "total_shmem", "shmem")
        unevictable = _stat(st, "total_unevictable", "unevictable")
        dirty = (_stat(st, "total_dirty", "dirty", "file_dirty") or 0) + (
            _stat(st, "total_writeback", "writeback", "file_writeback") or 0)
        swap_room = _memcg_swap_room(r, swap_total_pages)
        if anon:
            if swap_room == 0:
                why = ("no swap: the memory+swap limit equals the memory limit"
                       if "memory+swap" in r.memcg_counters else "no swap the cgroup may use")
                out.append(Unreclaimable("anon_no_swap", anon, f"{_mib(anon)} of anonymous memory and {why}, "
                                         "so reclaim could not move it out"))
            elif swap_room is None:
                out.append(Unreclaimable("anon_no_swap", anon,
                                         f"{_mib(anon)} of anonymous memory; whether swap had room is not "
                                         "in the report"))
        if shmem and swap_room == 0:
            out.append(Unreclaimable("shmem_no_swap", shmem, f"{_mib(shmem)} of shmem/tmpfs can only be swapped, "
                                     "and there is no swap"))
        if unevictable:
            out.append(Unreclaimable("mlocked", unevictable, f"{_mib(unevictable)} unevictable (mlocked or "
                                     "SHM_LOCKed)"))
        if dirty:
            out.append(Unreclaimable("dirty", dirty, f"{_mib(dirty)} of page cache dirty or under writeback: "
                                     "it must be written before it can be freed"))
        if file is not None and (shmem or 0) <= file:
            clean = file - (shmem or 0)
            limit = r.memcg_counters.get("memory", (0, 0, 0))[1] * KiB
            if limit and clean < limit // 50:
                left = f"only {_mib(clean)} of page cache" if clean else "no page cache"
                out.append(Unreclaimable("file_cache_gone", clean, f"{left} left in the cgroup: "
                                         "nothing more to drop"))
        kmem = r.memcg_counters.get("kmem")
        kernel = _stat(st, "kernel")
        if kernel is None and kmem is not None:
            kernel = kmem[0] * KiB
        if kernel:
            out.append(Unreclaimable("kernel", kernel, f"{_mib(kernel)} of kernel memory charged to the cgroup"))
        return out
    mi = r.meminfo_pages
    if not mi:
        return out
    anon = mi.get("active_anon", 0) + mi.get("inactive_anon", 0)
    shmem = mi.get("shmem", 0)
    swap_total = r.swap_total_kb
    swap_free = r.swap_free_kb
    if anon:
        if swap_total == 0:
            out.append(Unreclaimable("anon_no_swap", anon * PAGE_SIZE,
                                     f"{_pages_mib(anon)} on the anon LRU (anonymous and shmem) and no swap"))
        elif swap_free is not None and swap_free <= 0:
            out.append(Unreclaimable("swap_full", anon * PAGE_SIZE,
                                     f"{_pages_mib(anon)} on the anon LRU and swap is full "
                                     f"({_mib((swap_total or 0) * KiB)} used)"))
    if shmem and swap_total == 0:
        out.append(Unreclaimable("shmem_no_swap", shmem * PAGE_SIZE,
                                 f"{_pages_mib(shmem)} of shmem/tmpfs (part of the anon LRU above): "
                                 "only swap could free it"))
    if mi.get("unevictable"):
        out.append(Unreclaimable("mlocked", mi["unevictable"] * PAGE_SIZE,
                                 f"{_pages_mib(mi['unevictable'])} unevictable (mlocked, SHM_LOCK, ramfs)"))
    dirty = mi.get("dirty", 0) + mi.get("writeback", 0)
    if dirty:
        out.append(Unreclaimable("dirty", dirty * PAGE_SIZE,
                                 f"{_pages_mib(dirty)} of page cache dirty or under writeback"))
    file = mi.get("active_file", 0) + mi.get("inactive_file", 0)
    total = r.ram_pages or 0
    if total and file < total // 50:
        out.append(Unreclaimable("file_cache_gone", file * PAGE_SIZE,
                                 f"only {_pages_mib(file)} left on the file LRU: the page cache was already "
                                 "reclaimed"))
    kernel = mi.get("slab_unreclaimable", 0) + mi.get("pagetables", 0)
    if kernel:
        out.append(Unreclaimable("kernel", kernel * PAGE_SIZE,
                                 f"{_pages_mib(kernel)} of unreclaimable slab and page tables"))
    return out


def _memcg_swap_room(r: ParsedOom, swap_total_pages: int | None) -> int | None:
    """Pages of swap the memcg could still use: 0 when it may not swap (no machine
    swap, memory+swap limit at the memory limit or used up, swap.max reached);
    None when the report does not tell (a limit that allows swap, and no machine
    swap total in the log)."""
    if swap_total_pages == 0:
        return 0
    room: int | None = None
    if "memory+swap" in r.memcg_counters:
        memsw_usage, memsw_limit, _ = r.memcg_counters["memory+swap"]
        mem_limit = r.memcg_counters.get("memory", (0, memsw_limit, 0))[1]
        if memsw_limit <= mem_limit or memsw_usage >= memsw_limit:
            return 0
        room = (memsw_limit - memsw_usage) // 4
    elif "swap" in r.memcg_counters:
        usage, limit, _ = r.memcg_counters["swap"]
        if usage >= limit:
            return 0
        room = (limit - usage) // 4
    if room is None or swap_total_pages is None:
        return None
    return min(room, swap_total_pages)


def _memory_state(r: ParsedOom) -> dict[str, int] | None:
    """The memory state the report printed, in bytes."""
    out: dict[str, int] = {}
    if r.is_memcg:
        for name, key in (("memory", "memcg"), ("memory+swap", "memsw"), ("swap", "swap"), ("kmem", "kmem")):
            if name in r.memcg_counters:
                usage, limit, failcnt = r.memcg_counters[name]
                out[f"{key}_usage_bytes"] = usage * KiB
                out[f"{key}_limit_bytes"] = limit * KiB
                out[f"{key}_failcnt"] = failcnt
        for stat in ("anon", "file", "shmem", "rss", "cache", "mapped_file", "file_mapped", "dirty",
                     "writeback", "swap", "unevictable", "kernel", "active_anon", "inactive_anon",
                     "active_file", "inactive_file"):
            if stat in r.memcg_stats:
                out[f"{stat}_bytes"] = r.memcg_stats[stat]
    for key, value in r.meminfo_pages.items():
        out[f"{key.replace('(', '_').replace(')', '')}_bytes"] = value * PAGE_SIZE
    if r.ram_pages is not None:
        out["ram_bytes"] = r.ram_pages * PAGE_SIZE
    if r.reserved_pages is not None:
        out["reserved_bytes"] = r.reserved_pages * PAGE_SIZE
    if r.swap_total_kb is not None:
        out["swap_total_bytes"] = r.swap_total_kb * KiB
    if r.swap_free_kb is not None:
        out["swap_free_bytes"] = r.swap_free_kb * KiB
    if r.pagecache_pages is not None:
        out["pagecache_bytes"] = r.pagecache_pages * PAGE_SIZE
    return out or None


@dataclass
class _Recomputed:
    version: KernelVersion | None
    version_how: str
    totalpages: int | None
    totalpages_how: str
    formula: str | None
    candidates: list[Candidate]
    badness: dict[int, int | None]
    ranked_first: int | None
    selection_reason: str | None


def _recompute(r: ParsedOom, swap_total_pages: int | None) -> _Recomputed:
    version, how = infer_kernel_version(r)
    totalpages, tp_how = _totalpages(r, swap_total_pages)
    if not r.tasks or version is None:
        cands = [_bare_candidate(row) for row in r.tasks]
        return _Recomputed(version, how, totalpages, tp_how, None, cands, {}, None, None)
    rows: list[tuple[TaskRow, OomTask, list[str]]] = []
    for row in r.tasks:
        try:
            task, lacks = _row_task(row, version)
        except ValueError as e:  # an impossible row (negative counts): keep it unscored
            rows.append((row, None, [f"row not recomputed: {e}"]))  # type: ignore[arg-type]
            continue
        rows.append((row, task, lacks))
    tasks = [t for _, t, _ in rows if t is not None]
    needs_total = (OOM_BADNESS_REWRITE <= version < OOM_BADNESS_IN_PAGES
                   or any(t.oom_score_adj for t in tasks))
    usable_total = totalpages if totalpages is not None else (None if needs_total else 0)
    badness: dict[int, int | None] = {}
    cands: list[Candidate] = []
    formula: str | None = None
    ranked: int | None = None
    reason: str | None = None
    if usable_total is not None:
        sel = select_bad_process(tasks, usable_total, version, memcg_oom=r.is_memcg)
        by_id = {id(t): b for t, b in sel.candidates}
        ranked = sel.chosen.pid if sel.chosen is not None else None
        reason = sel.reason
        for row, task, lacks in rows:
            b = by_id.get(id(task)) if task is not None else None
            if b is None and task is not None:
                b = oom_badness(task, usable_total, version)
            if b is not None:
                formula = b.formula.split("; ineligible")[0]
            notes = list(lacks)
            if b is not None and b.points is None:
                notes.append(b.formula.split("; ", 1)[-1])
            points = b.points if b is not None else None
            badness[row.pid] = points
            cands.append(_candidate(row, task, b, notes, version))
    else:
        for row, task, lacks in rows:
            notes = [*list(lacks), f"badness not recomputed: totalpages unknown ({tp_how})"]
            cands.append(_candidate(row, task, None, notes, version))
    return _Recomputed(version, how, totalpages, tp_how, formula, cands, badness, ranked, reason)


def _bare_candidate(row: TaskRow) -> Candidate:
    return Candidate(pid=row.pid, comm=row.name, points=None, rss_pages=row.rss, swap_pages=row.swapents,
                     pgtables_pages=None if row.pgtables_bytes is None else row.pgtables_bytes // PAGE_SIZE,
                     oom_score_adj=row.oom_score_adj, adj_points=None, uid=row.uid, rss_anon_pages=row.rss_anon,
                     rss_file_pages=row.rss_file, rss_shmem_pages=row.rss_shmem, total_vm_pages=row.total_vm,
                     note="kernel version unknown: badness not recomputed")


def _candidate(row: TaskRow, task: OomTask | None, b: Any, notes: list[str], version: KernelVersion) -> Candidate:
    if row.pgtables_bytes is not None:
        pgt: int | None = row.pgtables_bytes // PAGE_SIZE
    elif row.nr_ptes is not None:
        pgt = row.nr_ptes + (row.nr_pmds or 0)
    else:
        pgt = None
    adj = row.oom_score_adj if row.oom_score_adj is not None else (task.oom_score_adj if task else None)
    return Candidate(
        pid=row.pid, comm=row.name,
        points=b.points if b is not None else None,
        rss_pages=row.rss if row.rss is not None else (task.rss if task else None),
        swap_pages=row.swapents,
        pgtables_pages=pgt,
        oom_score_adj=adj,
        adj_points=b.adj_points if b is not None and version >= OOM_BADNESS_REWRITE and b.points is not None else None,
        uid=row.uid, rss_anon_pages=row.rss_anon, rss_file_pages=row.rss_file, rss_shmem_pages=row.rss_shmem,
        total_vm_pages=row.total_vm, note="; ".join(notes),
    )


def _usage_pages(c: Candidate) -> int:
    return (c.rss_pages or 0) + (c.swap_pages or 0) + (c.pgtables_pages or 0)


def _why_victim(r: ParsedOom, rc: _Recomputed) -> list[str]:
    """The explanation of the choice: the victim's badness broken down and, when it
    was not the biggest task, what outweighed the bigger one."""
    lines: list[str] = []
    vpid = r.chosen_pid if r.chosen_pid is not None else r.victim_pid
    cands = {c.pid: c for c in rc.candidates}
    v = cands.get(vpid) if vpid is not None else None
    if v is None or v.points is None:
        if vpid is not None and rc.candidates:
            lines.append(f"{_who(vpid, r.victim_comm)} is not in the task table: its badness cannot be recomputed")
        return lines
    if rc.version is not None and rc.version < OOM_BADNESS_REWRITE:
        lines.append(f"{_who(v.pid, v.comm)} scored {v.points} with 2.6.32's badness(): its total_vm of "
                     f"{v.total_vm_pages} pages" + (f" shifted by oom_adj {r.row(v.pid).oom_adj}"  # type: ignore[union-attr]
                                                      if r.row(v.pid) and r.row(v.pid).oom_adj else "")  # type: ignore[union-attr]
                     + (f" (the kernel printed score {r.chosen_score})" if r.chosen_score is not None else ""))
    else:
        per = (rc.totalpages // 1000) if rc.totalpages is not None else None
        adj_part = (f" + oom_score_adj {v.oom_score_adj} x {per} ({rc.totalpages} allowed pages / 1000)"
                    f" = {v.adj_points}" if v.oom_score_adj and per is not None and rc.version is not None
                    and rc.version >= OOM_BADNESS_IN_PAGES else "")
        lines.append(f"{_who(v.pid, v.comm)} scored {v.points} points: rss {v.rss_pages or 0} + swap "
                     f"{v.swap_pages or 0} + page tables {v.pgtables_pages or 0} pages{adj_part}")
    eligible = [c for c in rc.candidates if c.points is not None]
    if not eligible:
        return lines
    biggest = max(eligible, key=_usage_pages)
    if biggest.pid != v.pid and _usage_pages(biggest) > _usage_pages(v):
        if (v.oom_score_adj or 0) > 0:
            lines.append(f"{v.pid}'s oom_score_adj of {v.oom_score_adj} outweighed {biggest.pid}'s larger RSS "
                         f"(points {v.points} against {biggest.points})")
        elif (biggest.oom_score_adj or 0) < 0:
            lines.append(f"{biggest.pid}'s oom_score_adj of {biggest.oom_score_adj} protected it despite its "
                         f"larger RSS (points {biggest.points} against {v.points})")
        else:
            lines.append(f"{biggest.pid} held more memory ({_usage_pages(biggest)} pages against "
                         f"{_usage_pages(v)}) yet scored {biggest.points} against {v.points}")
    else:
        others = sorted((c for c in eligible if c.pid != v.pid), key=lambda c: c.points or 0, reverse=True)
        if others:
            o = others[0]
            lines.append(f"{v.pid} held the most memory of the {len(eligible)} eligible tasks; the next, "
                         f"{_who(o.pid, o.comm)}, scored {o.points}")
        else:
            lines.append(f"{v.pid} was the only eligible task")
    if rc.ranked_first is not None and rc.ranked_first != v.pid:
        first = cands.get(rc.ranked_first)
        lines.append(f"the recomputation ranks {_who(rc.ranked_first, first.comm if first else None)} first "
                     f"({first.points if first else '?'} points), not the victim: the row lacks what the kernel "
                     "used (see the candidates' notes), or the task changed between the dump and the choice")
    elif rc.selection_reason and "tie" in rc.selection_reason:
        lines.append(rc.selection_reason)
    if r.chosen_pid is not None and r.killed_pid is not None and r.chosen_pid != r.killed_pid:
        lines.append(f"the kernel chose {_who(r.chosen_pid, r.chosen_comm)} and killed its child "
                     f"{_who(r.killed_pid, r.killed_comm)} instead (\"sacrifice child\", before 5.x)")
    return lines


def _holders(r: ParsedOom, scope: str) -> str | None:
    """Who held the memory: the largest tasks of the table."""
    if not r.tasks:
        return None
    rows = sorted(r.tasks, key=lambda t: (t.rss or 0) + (t.swapents or 0), reverse=True)
    total = sum((t.rss or 0) + (t.swapents or 0) for t in rows)
    parts = [f"{_who(t.pid, t.name)} {_pages_mib((t.rss or 0) + (t.swapents or 0))}" for t in rows[:4]]
    more = f" and {len(rows) - 4} more" if len(rows) > 4 else ""
    return f"{scope} held by {len(rows)} tasks ({_pages_mib(total)} resident or swapped): {', '.join(parts)}{more}"


def _constraint_line(r: ParsedOom) -> str:
    trigger = _who(r.trigger_pid, r.trigger_comm) if (r.trigger_comm or r.trigger_pid) else "a task"
    alloc = ""
    if r.order is not None:
        flags = r.gfp_flags or (f"gfp_mask {r.gfp_mask:#x}" if r.gfp_mask is not None else "")
        alloc = f" on an order-{r.order} {flags} allocation".replace("  ", " ")
    if r.is_memcg:
        mem = r.memcg_counters.get("memory")
        state = (f": usage {_mib(mem[0] * KiB)} of its {_mib(mem[1] * KiB)} limit" if mem else "")
        return f"{trigger} hit the limit of memory cgroup {r.memcg or '?'}{alloc}{state}"
    if r.constraint in ("CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY"):
        return f"{trigger} ran out of the memory its {r.constraint[11:].lower()} allows{alloc}"
    free = r.meminfo_pages.get("free")
    state = f": {_pages_mib(free)} free of {_pages_mib(r.ram_pages)} RAM" if free is not None and r.ram_pages else ""
    return f"{trigger} found the machine out of memory (global OOM){alloc}{state}"


def _scope(r: ParsedOom) -> str:
    return f"memcg:{r.memcg}" if r.is_memcg else "global"


def _growers(reports: list[ParsedOom]) -> dict[int, dict[str, Any]]:
    """Per report index, the task that grew most since the previous report of the
    same scope (memcg path, or the machine), from the task tables."""
    out: dict[int, dict[str, Any]] = {}
    by_scope: dict[str, list[int]] = {}
    for i, r in enumerate(reports):
        if r.tasks:
            by_scope.setdefault(_scope(r), []).append(i)
    for idxs in by_scope.values():
        if len(idxs) < 2:
            continue
        best: dict[str, Any] | None = None
        for a, b in itertools.pairwise(idxs):
            before = {t.pid: (t.rss or 0) + (t.swapents or 0) for t in reports[a].tasks}
            for t in reports[b].tasks:
                if t.pid in before:
                    delta = (t.rss or 0) + (t.swapents or 0) - before[t.pid]
                    if delta > 0 and (best is None or delta > best["growth_pages"]):
                        best = {"pid": t.pid, "comm": t.name, "from_pages": before[t.pid],
                                "to_pages": before[t.pid] + delta, "growth_pages": delta,
                                "from_ts_ns": reports[a].ts_ns, "to_ts_ns": reports[b].ts_ns}
        if best is not None:
            for i in idxs:
                out[i] = best
    return out


def _swap_total_pages(reports: list[ParsedOom]) -> int | None:
    for r in reports:
        if r.swap_total_kb is not None:
            return r.swap_total_kb // 4
    return None


def oom_report_from_parsed(reports: list[ParsedOom], source: str = "dmesg",
                           warnings: Iterable[str] = ()) -> OomReport:
    """The :class:`OomReport` of parsed reports: badness recomputed, victims
    checked, explanations written (see the module docstring)."""
    kills: list[OomKillReport] = []
    swap_total = _swap_total_pages(reports)
    growers = _growers(reports)
    for i, r in enumerate(reports):
        rc = _recompute(r, swap_total)
        victim = TaskRef(r.victim_pid, r.victim_comm)
        vpoints = rc.badness.get(r.chosen_pid if r.chosen_pid is not None else r.victim_pid)  # type: ignore[arg-type]
        explanation: list[str] = [_constraint_line(r)]
        held = _holders(r, f"memory cgroup {r.memcg}" if r.is_memcg else "memory")
        if held:
            explanation.append(held)
        grower = growers.get(i)
        if grower is not None:
            explanation.append(
                f"{_who(grower['pid'], grower['comm'])} is the grower: its memory rose from "
                f"{grower['from_pages']} to {grower['to_pages']} pages (+{_pages_mib(grower['growth_pages'])}) "
                "between successive OOM reports")
        unrec = _unreclaimable(r, swap_total)
        for u in unrec:
            explanation.append(f"not reclaimable: {u.detail}")
        if r.panic is not None:
            explanation.append(f"the kernel panicked instead of killing: {r.panic}")
        elif r.no_killable:
            explanation.append("no task could be killed (every candidate unkillable or oom_score_adj -1000)")
        else:
            explanation.extend(_why_victim(r, rc))
        if r.reaped is not None and r.reaped.get("success"):
            explanation.append(f"the OOM reaper freed {victim.comm or 'the victim'}'s private memory; "
                               f"{_mib(r.reaped.get('file', 0) + r.reaped.get('shmem', 0))} of file and shmem "
                               "pages stayed mapped")
        if not r.complete:
            explanation.append("the report is truncated: the log ends before its kill line")
        extra: dict[str, Any] = {"log_line": r.lineno, "version_how": rc.version_how,
                                 "totalpages_how": rc.totalpages_how}
        for key, value in (("kernel_release", r.kernel_release), ("wall_clock", r.wall),
                           ("kill_message", r.kill_message), ("gfp_flags", r.gfp_flags),
                           ("panic", r.panic), ("oom_group", r.oom_group), ("reaped", r.reaped),
                           ("cgroup_version", r.cgroup_version), ("grower", grower),
                           ("task_memcg", r.summary.get("task_memcg") or r.task_in),
                           ("printed_score", r.chosen_score), ("ranked_first_pid", rc.ranked_first)):
            if value is not None:
                extra[key] = value
        if r.also_killed:
            extra["also_killed"] = [{"pid": p, "comm": c} for p, c in r.also_killed]
        if r.killed_pid is not None:
            extra["killed"] = {k: v for k, v in (
                ("total_vm_kb", r.killed_total_vm_kb), ("anon_rss_kb", r.killed_anon_rss_kb),
                ("file_rss_kb", r.killed_file_rss_kb), ("shmem_rss_kb", r.killed_shmem_rss_kb),
                ("uid", r.killed_uid), ("pgtables_kb", r.killed_pgtables_kb),
                ("oom_score_adj", r.killed_oom_score_adj), ("ts_ns", r.killed_ts_ns)) if v is not None}
        if not r.complete:
            extra["truncated"] = True
        ranked_first = None
        if rc.ranked_first is not None and victim.pid is not None:
            chosen = r.chosen_pid if r.chosen_pid is not None else victim.pid
            ranked_first = rc.ranked_first == chosen
        kills.append(OomKillReport(
            ts_ns=r.ts_ns,
            trigger=TaskRef(r.trigger_pid, r.trigger_comm) if (r.trigger_pid or r.trigger_comm) else None,
            constraint=r.constraint,
            memcg=r.memcg,
            victim=victim,
            victim_points=vpoints,
            candidates=tuple(rc.candidates),
            unreclaimable=tuple(unrec),
            explanation=tuple(explanation),
            gfp_mask=r.gfp_mask,
            order=r.order,
            totalpages=rc.totalpages,
            kernel_version=format_kernel_version(rc.version) if rc.version is not None else None,
            formula=rc.formula,
            victim_ranked_first=ranked_first,
            memory=_memory_state(r),
            extra=extra,
        ))
    return OomReport(source=source, kills=tuple(kills), warnings=tuple(warnings))


def report_from_log(path: str | os.PathLike[str]) -> OomReport:
    """The OOM report of a kernel log file (dmesg, ``journalctl -k``, syslog; plain
    or gzip): one :class:`OomKillReport` per kill (or panic) found. ParseError
    only when the file cannot be read; a log without any OOM gives no kills and
    a warning."""
    log = parse_oom_log(path)
    warnings = list(log.warnings)
    if not log.reports:
        if not looks_like_kernel_log(path):
            raise ParseError(f"{log.path}: neither a memtrace trace nor a kernel log (dmesg, journalctl -k, "
                             "syslog); a perf script or ftrace dump is read with 'memtrace import'")
        warnings.append(f"{log.path}: no OOM report in {log.lines} lines")
    return oom_report_from_parsed(log.reports, "dmesg", warnings)
