"""The raw ftrace ``trace`` / ``trace_pipe`` text of tracefs.

Layout (kernel/trace/trace_output.c, ``../shared/reference/kernel-mm-facts.md``
§7.7)::

    "%16s-%-7d " comm-pid (``%-5d`` in 4.19), optional "(%7d) " tgid, "[%03d] " cpu,
    the irq-info flags (4 or 5 characters, absent with ``noirq-info``),
    " %5lu.%06lu: " time, "<event>: " (no system), the event's TP_printk text.

Syscall events have their own text (§7.6): ``sys_mmap(addr: 0, len: 1000, ...)`` on
entry (values in hex, with or without ``0x``) and ``sys_mmap -> 0x7f3c2a400000`` on
exit. The ``# tracer:`` header and ``#`` comment lines are skipped; ``[LOST N
EVENTS]`` lines are counted as unknown and reported as a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from memtrace.linux.limits import INT_MAX, LONG_MAX

from .builder import TraceBuilder, feed_line

_SCALE = tuple(10 ** (9 - n) if n <= 9 else 0 for n in range(16))
_HEAD = re.compile(
    r"^\s*(?P<comm>.*)-(?P<pid>\d+)\s+(?:\(\s*(?P<tgid>\d+|-+)\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\d][^\s]{3,4})\s+)?(?P<ts>\d+\.\d+)$"
)
_LOST = re.compile(r"LOST (\d{1,20}) EVENTS")  # "%lu"


def parse_line(line: str) -> tuple[str, int, int | None, int, str, str] | None:
    """``(comm, pid, tgid or None, ts_ns, event, payload)`` of one ftrace line, or
    None (also when its numbers are none the kernel prints there: a pid or tgid
    beyond ``pid_t``, a time past 2**63 ns). Syscall lines get the names
    ``sys_enter_<call>`` / ``sys_exit_<call>``."""
    head, sep, rest = line.partition(": ")
    if not sep:
        return None
    m = _HEAD.match(head)
    if m is None:
        return None
    sec, _, frac = m.group("ts").partition(".")
    ts_ns = int(sec) * 1_000_000_000 + int(frac) * _SCALE[min(len(frac), 15)]
    tgid_text = m.group("tgid")
    tgid = int(tgid_text) if tgid_text and tgid_text.isdigit() else None
    pid = int(m.group("pid"))
    if ts_ns > LONG_MAX or pid > INT_MAX or (tgid is not None and tgid > INT_MAX):
        return None
    if rest.startswith("sys_"):
        first = rest.split(" ", 1)[0]
        paren = rest.find("(")
        if " -> " in rest and (paren < 0 or paren > rest.index(" -> ")):
            call, _, ret = rest.partition(" -> ")
            return m.group("comm").strip(), pid, tgid, ts_ns, "sys_exit_" + call[4:].strip(), ret
        if paren > 0 and "(" in first:
            body = rest[paren + 1:].rstrip()
            if body.endswith(")"):
                body = body[:-1]
            return m.group("comm").strip(), pid, tgid, ts_ns, "sys_enter_" + rest[4:paren], body
    name, sep, payload = rest.partition(": ")
    if not sep:
        name, payload = rest.rstrip().rstrip(":"), ""
    return m.group("comm").strip(), pid, tgid, ts_ns, name.strip(), payload


def feed(lines: Iterable[str], builder: TraceBuilder) -> None:
    """Parse every line into ``builder``."""
    lost = 0

    def count_lost(line: str) -> None:
        nonlocal lost
        m = _LOST.search(line)
        if m:
            lost += int(m.group(1))

    for line in lines:
        builder.lines += 1
        feed_line(builder, line, parse_line, count_lost)
    if lost:
        builder.warnings.append(f"the ftrace buffer lost {lost:,} events (its ring buffer overflowed)")
