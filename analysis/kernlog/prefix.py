"""Kernel log lines without their prefixes: dmesg, ``dmesg -T``/``-x``, syslog, journalctl, kmsg.

A kernel log reaches memtrace through many hands, each adding its prefix before the
printk text: ``[ 153.241486]`` (the kernel's own time since boot), ``<4>`` (the
console level of /dev/kmsg), a ``dmesg -x`` facility, ``dmesg -T`` or
``--time-format iso`` wall time, syslog/journal ``Nov 26 22:48:00 host kernel:``, and
CONFIG_PRINTK_CALLER ids (``[ T4847]``). :func:`split_prefix` strips them all and
keeps the two times.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["KMSG_LEVEL_RE", "LogLine", "kernel_log_lines", "split_prefix"]


@dataclass(frozen=True)
class LogLine:
    """One log line without its prefix: the kernel's timestamp (ns since boot, None
    when the line has none), the printk text, the 1-based line number, and the
    wall-clock or host prefix when one was stripped."""

    ts_ns: int | None
    text: str
    lineno: int
    wall: str | None = None


KMSG_LEVEL_RE = re.compile(r"^<\d{1,3}>")
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
    m = KMSG_LEVEL_RE.match(s)
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
