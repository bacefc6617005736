"""OOM reports read from a kernel log: dmesg, ``journalctl -k``, syslog, as the raw facts they print.

The parser reads the layouts of :mod:`.formats` (``../shared/reference/kernel-mm-facts.md``
§3) for every tree read there (2.6.32, 3.4, 3.10, 4.9, 4.19, 5.4, 5.15, 6.6, 6.8+):
the ``invoked oom-killer`` header (§3.2), the dump_stack ``CPU:``/``Pid:`` line
(kernel release, allocating pid), Mem-Info (§3.3) or the memcg usage and
``memory.stat`` lines (§3.4, one-line and multi-line forms, v1 and v2), the task
table in each of its layouts (§3.5, read by its header's column names), the
``oom-kill:`` summary (§3.6), the kill lines (§3.7, including 2.6.32's lowercase
``kill process ... or a child`` and the ``sacrifice child`` pair), the reaper line
(§3.8), ``memory.oom.group`` kills and the panics.

A log holds several reports and much else, interleaved; lines are read one at a
time, each stripped of its prefix (:mod:`.prefix`), and every line that is not
part of a report is counted and skipped. Nothing in the input makes the parser
raise: damaged lines are skipped, a report cut short is reported with what it has
and a warning.

:func:`parse_oom_log` returns :class:`ParsedOom` objects, the raw facts of each
report (numbers as printed, converted to bytes/pages only where named so);
:mod:`.analyse` turns them into the report. What a log cannot tell is left None: a
journal line without the kernel's own timestamp has no ``ts_ns``; a 4.19-era row
has no RSS split by type.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from memtrace.units import KiB, MiB

from ..importers.textio import head_text, open_text
from . import formats as fmt
from .lines import kernel_log_lines
from .prefix import KMSG_LEVEL_RE, LogLine, split_prefix

__all__ = [
    "OomLog",
    "ParsedOom",
    "TaskRow",
    "looks_like_kernel_log",
    "parse_oom_lines",
    "parse_oom_log",
]


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


#: The TaskRow fields a task-table column of the same name fills.
_ROW_COLUMNS = frozenset(f.name for f in fields(TaskRow)) - {"pid", "name"}


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
        except ValueError as e:  # a number too long for int(): skip the line
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
        m = fmt.HEADER_RE.match(stripped)
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

        m = fmt.KILL_RE.match(stripped)
        if m:
            return self._kill_line(line, m)
        m = fmt.REAPED_RE.match(stripped) or fmt.UNABLE_TO_REAP_RE.match(stripped)
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

        m = fmt.PANIC_RE.match(stripped) or fmt.PANIC_2_6_32_RE.match(stripped)
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

        if fmt.NO_KILLABLE_RE.match(stripped):
            cur.no_killable = True
            return True
        m = fmt.EXITING_RE.match(stripped)
        if m:
            cur.kill_message = m.group("msg")
            cur.already_exiting = True
            cur.killed_pid = int(m.group("pid"))
            cur.killed_comm = m.group("comm")
            cur.killed_ts_ns = line.ts_ns
            return True
        m = fmt.OOM_GROUP_RE.match(stripped)
        if m:
            cur.oom_group = m.group("path")
            return True
        m = fmt.SUMMARY_RE.match(stripped)
        if m:
            self.mode = ""
            cur.summary = _summary_fields(m.group("body"))
            return True

        if self.mode == "tasks":
            m = fmt.TASK_ROW_RE.match(stripped)
            if m:
                row = _task_row(int(m.group("pid")), m.group("rest"), cur.task_columns)
                if row is None:
                    cur.warnings.append(f"line {line.lineno}: a task row does not match its header; skipped")
                    return False
                cur.tasks.append(row)
                return True
        m = fmt.TASK_HEADER_RE.match(stripped)
        if m:
            cur.task_columns = tuple(m.group("cols").split())
            self.mode = "tasks"
            return True
        if fmt.TASKS_STATE_RE.match(stripped):
            self.mode = "tasks"
            return True

        m = fmt.CPU_LINE_RE.match(stripped) or fmt.PID_LINE_RE.match(stripped)
        if m:
            if cur.kernel_release is None:
                cur.kernel_release = m.group("release")
                cur.trigger_pid = _count(m.group("pid"), fmt.COLUMN_MAX["pid"])
                cur.trigger_uid = _count(m.groupdict().get("uid"), fmt.COLUMN_MAX["uid"])
            return True
        m = fmt.CPUSET_RE.match(stripped)
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

        m = fmt.MEMCG_COUNTER_RE.match(stripped)
        if m:
            cur.memcg_counters[m.group("name")] = (int(m.group("usage")), int(m.group("limit")),
                                                   int(m.group("failcnt")))
            return True
        m = fmt.TASK_IN_RE.match(stripped)
        if m:
            cur.task_in, cur.limit_of = m.group("task"), m.group("limit")
            return True
        m = fmt.MEMCG_STATS_RE.match(stripped)
        if m:
            path, rest = m.group("path"), m.group("rest").strip()
            if cur.memcg_stats_path is None:
                cur.memcg_stats_path = path
                if rest:  # <= 4.x one-line form: "cache:0KB rss:1024KB ..."
                    for key, value, unit in fmt.STAT_ONELINE_RE.findall(rest):
                        mult = {"KB": KiB, "MB": MiB}.get(unit, 1)
                        cur.memcg_stats[key] = int(value) * mult
                else:
                    cur.memcg_stats_multiline = True
                    self.mode = "stats"
            return True
        if self.mode == "stats":
            m = fmt.STAT_LINE_RE.match(stripped)
            if m:
                cur.memcg_stats[m.group("key")] = int(m.group("value"))
                return True
        return False

    def _meminfo_line(self, cur: ParsedOom, s: str) -> bool:
        m = fmt.NODE_LINE_RE.match(s)
        if m:
            node: dict[str, Any] = {"nid": int(m.group("nid"))}
            node.update({k: int(v) for k, v in fmt.KV_KB_RE.findall(s)})
            unrec = fmt.ALL_UNRECLAIMABLE_RE.search(s)
            if unrec:
                node["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.nodes.append(node)
            return True
        m = fmt.ZONE_LINE_RE.match(s)
        if m:
            zone: dict[str, Any] = {"zone": m.group("zone")}
            if m.group("nid") is not None:
                zone["nid"] = int(m.group("nid"))
            zone.update({k: int(v) for k, v in fmt.KV_KB_RE.findall(s)})
            unrec = fmt.ALL_UNRECLAIMABLE_RE.search(s)
            if unrec:
                zone["all_unreclaimable"] = unrec.group(1) == "yes"
            cur.zones.append(zone)
            return True
        if s.startswith("lowmem_reserve[]:") or fmt.BUDDY_RE.match(s) or (s.startswith("Node ") and "hugepages_" in s):
            return True
        if s.startswith("Swap cache stats:") or (s.endswith("pages HighMem/MovableOnly")
                                                 and fmt.PAGES_HIGHMEM_RE.match(s)):
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
            score = fmt.KILL_SCORE_RE.search(rest)
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
        d = fmt.KILLED_DETAIL_RE.search(rest)
        if d:
            cur.killed_total_vm_kb = _count(d.group("total_vm"))
            cur.killed_anon_rss_kb = _count(d.group("anon"))
            cur.killed_file_rss_kb = _count(d.group("file"))
            cur.killed_shmem_rss_kb = _count(d.group("shmem"))
            cur.killed_uid = _count(d.group("uid"), fmt.COLUMN_MAX["uid"])
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
    task = fmt.SUMMARY_TASK_RE.search(body)
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
        columns = fmt.guess_task_columns(len(rest.split()) - 1)
        if not columns:
            return None
    numeric = [c for c in columns if c != "name"]
    parts = rest.split(None, len(numeric))
    if len(parts) < len(numeric):
        return None
    row = TaskRow(pid=pid, name=parts[len(numeric)] if len(parts) > len(numeric) else "")
    if not 0 <= pid <= fmt.COLUMN_MAX["pid"]:
        return None
    for col, text in zip(numeric, parts):
        value = _int(text)
        if value is None or not fmt.column_fits(col, value):
            return None  # a damaged row: no value the kernel could print there
        if col in _ROW_COLUMNS:
            setattr(row, col, value)
    return row


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
    prefixed = sum(1 for ln in lines[:50] if split_prefix(ln)[:2] != (None, None) or KMSG_LEVEL_RE.match(ln))
    return prefixed >= max(1, len(lines[:50]) // 2)


