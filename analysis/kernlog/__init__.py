"""The kernel log's OOM reports: one set of printk layouts, written and read.

- :mod:`.formats`: the printk layouts of every kernel era, as tables (header,
  dump_stack, Mem-Info, memcg, task table, ``oom-kill:`` summary, kill and reaper
  lines), with the expressions that read them back;
- :mod:`.dmesg` (and :mod:`.showmem`): a trace's OOM events written as the kernel of
  its version logs them (``memtrace dmesg``);
- :mod:`.parse`: a real log (dmesg, ``journalctl -k``, syslog; line prefixes stripped
  by :mod:`.prefix`) read into the raw facts of each report (:class:`ParsedOom`);
- :mod:`.analyse`: those facts turned into the OOM report (``memtrace report LOG``);
- :mod:`.limits`: how much of a log the reader reads in full (text, reports, report
  lines, rejoin tries), and :mod:`.craft`: hostile logs that test those bounds.
"""

from __future__ import annotations

from .analyse import infer_kernel_version, oom_report_from_parsed, report_from_log
from .dmesg import OomReportText, oom_reports_from_batches, oom_reports_from_events, render_dmesg
from .lines import kernel_log_lines
from .parse import OomLog, ParsedOom, TaskRow, looks_like_kernel_log, parse_oom_lines, parse_oom_log
from .prefix import LogLine, split_prefix

__all__ = [
    "LogLine",
    "OomLog",
    "OomReportText",
    "ParsedOom",
    "TaskRow",
    "infer_kernel_version",
    "kernel_log_lines",
    "looks_like_kernel_log",
    "oom_report_from_parsed",
    "oom_reports_from_batches",
    "oom_reports_from_events",
    "parse_oom_lines",
    "parse_oom_log",
    "render_dmesg",
    "report_from_log",
    "split_prefix",
]
