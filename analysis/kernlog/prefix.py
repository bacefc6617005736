"""Kernel log line prefixes, in every form people paste them: what came before the printk text.

A kernel log reaches memtrace through many hands, each adding its prefix before the
printk text, in any mix and changing from one line to the next:

- the kernel's own time since boot ``[  153.241486]`` (dmesg, ``dmesg -d`` deltas), or a
  ``dmesg -T``/``--time-format=ctime`` wall time in any locale (``[Di Aug 12 03:54:03 2025]``,
  ``[二 9月  3 05:57:48 2024]``), CONFIG_PRINTK_CALLER ids ``[ T123]``/``[  C1]``;
- console levels ``<4>``, ``dmesg -x`` facilities ``kern  :warn  :``, raw ``/dev/kmsg``
  records ``6,1234,5678,-,caller=T1;text``;
- syslog and journalctl prefixes (short, short-precise, short-iso, short-full, short-unix,
  short-monotonic; with or without a host, ``host:`` without ``kernel:``, ``<kern.warning>``
  tags, bare ``kernel:``), RFC 5424;
- mail quoting (``> ``, ``> > ``, ``# ``), indentation, non-breaking spaces, CRLF.

:func:`split_prefix` strips them from one line. Reading a whole log (escapes that hold
several kernel lines, JSON, rejoining what a mail client wrapped) is :mod:`.lines`' job;
this module is its first step (:func:`split_kernel_prefix`) and the record it makes of
each raw line (:class:`Rec`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "KERNEL_LINE",
    "KMSG_LEVEL_RE",
    "NO_PREFIX",
    "OTHER_PROGRAM",
    "QUOTE_RE",
    "LogLine",
    "Rec",
    "after_wall",
    "kmsg_unescape",
    "make_logline",
    "rsyslog_unescape",
    "split_kernel_prefix",
    "split_prefix",
]


@dataclass(frozen=True)
class LogLine:
    """One kernel message line, every prefix stripped and wrapped pieces rejoined.

    ``ts_ns`` is the kernel's timestamp in ns since boot (None when the line has none);
    ``text`` the printk text; ``lineno`` the 1-based number of the first raw line it came
    from and ``linenos`` every raw line it was made of; ``wall`` a wall-clock prefix as
    printed (syslog, journal, ``dmesg -T``, iso) and ``host`` the syslog/journal host name;
    ``rule`` how it was read: the prefix rules that applied joined by ``+`` (``syslog+kts``,
    ``kmsg``, ``quote+ctime``; empty for a line without prefix), then ``rejoined:wrapped-<shape>``
    when pieces were rejoined and ``truncated:<shape>`` when a key shape is incomplete
    (:mod:`.lines`); ``caller`` the CONFIG_PRINTK_CALLER id (``T123``: the task that printed
    it; ``C1``: a CPU in interrupt context), None when not printed.
    """

    ts_ns: int | None
    text: str
    lineno: int
    wall: str | None = None
    host: str | None = None
    linenos: tuple[int, ...] = ()
    rule: str = ""
    caller: str | None = None


_new = object.__new__
_setattr = object.__setattr__


def make_logline(ts_ns: int | None, text: str, lineno: int, wall: str | None, host: str | None,
                 linenos: tuple[int, ...], rule: str, caller: str | None = None) -> LogLine:
    """A :class:`LogLine` built without the frozen dataclass's per-field ``__setattr__``
    (it doubles the cost of a line); equal, hash and repr as ``LogLine(...)``."""
    line: LogLine = _new(LogLine)
    _setattr(line, "__dict__", {"ts_ns": ts_ns, "text": text, "lineno": lineno, "wall": wall,
                                "host": host, "linenos": linenos, "rule": rule, "caller": caller})
    return line


# --------------------------------------------------------------------------- prefixes

KMSG_LEVEL_RE = re.compile(r"^<\d{1,3}>")
_LEVEL = re.compile(r"<\d{1,3}>")
# dmesg -x: "kern  :warn  : "
_FACILITY = re.compile(r"[a-z]{2,8} *:[a-z]{3,7} *: ?")
# The kernel's "[  153.241486]", dmesg -d "[  153.241486 <    0.000123>]", then a caller id.
_KTS = re.compile(r"\[ *(\d{1,12})\.(\d{1,9})(?: *<[ \d.]{0,24}>)?\](?: ?\[ *([TC]\d{1,9})\])? ?")
_CALLER = re.compile(r"\[ *([TC]\d{1,9})\] ?")
# dmesg -T / --time-format=ctime / reltime in any locale: a bracketed date with a time.
_CTIME = re.compile(r"\[([^\[\]]{1,40}?\d:\d\d[^\[\]]{0,20})\](?: ?\[ *([TC]\d{1,9})\])? ?")
# dmesg -r / journalctl short-delta alone: "[  +0.000123]"
_DELTA = re.compile(r"\[ *[+-] *\d+\.\d+\] ?")
#: ns per unit of a fraction with n digits.
TS_SCALE: tuple[int, ...] = tuple(int(10 ** (9 - n)) for n in range(10))

# syslog / journalctl short, short-precise: "Nov 26 22:48:00[.123456] [host] [<kern.warn>] kernel: "
_SYSLOG = re.compile(
    r"(?P<wall>[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d{1,9})?)"
    r"(?: (?P<host>[^\s:\[<]{1,128}))??"
    r"(?: <(?P<tag>[a-z]{2,8}\.[a-z]{2,8})>)?"
    r" (?:(?P<kernel>kernel)(?:\[\d{1,9}\])?:|(?P<prog>[^\s:]{1,128}):) ?"
)
# journalctl short-iso(-precise), short-full, short-unix, rsyslog RFC3339: need "kernel:" or "prog[pid]:"
_JOURNAL = re.compile(
    r"(?P<wall>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
    r"|[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})?(?: [A-Z]{1,5}| [+-]\d{4})?"
    r"|\d{9,11}\.\d{1,9})"
    r"(?: (?P<host>[^\s:\[<]{1,128}))??"
    r"(?: <(?P<tag>[a-z]{2,8}\.[a-z]{2,8})>)?"
    r" (?:(?P<kernel>kernel)(?:\[\d{1,9}\])?:|(?P<prog>[^\s:\[]{1,128}\[\d{1,9}\]):) ?"
)
# dmesg --time-format=iso: "2024-11-26T22:48:00,123456+00:00 "
_ISO = re.compile(r"(?P<wall>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) ")
# RFC 5424 after its "<N>": "1 2024-11-26T22:48:00.1+00:00 host kernel - - - "
_RFC5424 = re.compile(
    r"1 (?P<wall>\d{4}-\S{1,40}) (?P<host>\S{1,128}) (?P<app>\S{1,48}) \S{1,128} \S{1,128} (?:-|\[[^\]]*\]) ?"
)
# journalctl -o short-monotonic after the timestamp: "host kernel: "
_HOST_KERNEL = re.compile(r"(?:(?P<host>[^\s:\[<]{1,128}) )?(?:<[a-z]{2,8}\.[a-z]{2,8}> )?kernel(?:\[\d{1,9}\])?: ?")
_KERNEL = re.compile(r"kernel(?:\[\d{1,9}\])?: ?")
_HOSTNAME = re.compile(r"[A-Za-z0-9*][\w.*-]{0,127}")
# /dev/kmsg: "level,seq,usec,flags[,caller=T1,...];text"
_KMSG = re.compile(r"(\d{1,3}),(\d{1,20}),(\d{1,20}),([-+c]{0,4})((?:,[^;]{0,256})?);")
_KMSG_CALLER = re.compile(r",caller=([TC]\d{1,9})")
_KMSG_ESC = re.compile(r"\\x([0-9a-fA-F]{2})|\\\\")
#: Mail quoting "> ", ">> ", "> > ", ">text" and the "# " of shell-prompt pastes ("#1 SMP"
#: at the start of a wrapped piece is text, not a quote).
QUOTE_RE = re.compile(r"(?:>[ \t]?|#(?:[ \t]|$))+")
_RSYSLOG_ESC = re.compile(r"#0([0-3][0-7])")

#: Record kinds: a line without prefix (it may continue the line before), a kernel line
#: with its own prefix, a line of another program (syslog/journal).
NO_PREFIX, KERNEL_LINE, OTHER_PROGRAM = 0, 1, 2


class Rec(NamedTuple):
    """One parsed raw line (or one piece of a split raw line), before rejoining."""

    lineno: int
    width: int  # raw width in characters, quote markers and indent included
    quote: str  # the mail quote marker it had ("> > ", "# "), "" if none
    kind: int  # NO_PREFIX, KERNEL_LINE or OTHER_PROGRAM
    ts_ns: int | None
    wall: str | None
    host: str | None
    text: str
    rule: str
    linenos: tuple[int, ...]
    caller: str | None = None


def _kts(sec: str, frac: str) -> int:
    return int(sec) * 1_000_000_000 + int(frac) * TS_SCALE[len(frac)]


def after_wall(s: str, parts: list[str]) -> tuple[int | None, str | None, str | None, str]:
    """The kernel timestamp (or dmesg -T time) and caller id at the start of ``s``:
    ``(ts_ns, wall, caller, rest)``; the rules that applied are appended to ``parts``."""
    ts_ns: int | None = None
    wall: str | None = None
    caller: str | None = None
    if s[:1] == "[":
        m = _KTS.match(s)
        if m:
            ts_ns = _kts(m.group(1), m.group(2))
            caller = m.group(3)
            s = s[m.end():]
            parts.append("kts")
        else:
            m = _CTIME.match(s)
            if m:
                wall, caller = m.group(1), m.group(2)
                s = s[m.end():]
                parts.append("ctime")
            else:
                m = _DELTA.match(s)
                if m:
                    s = s[m.end():]
                    parts.append("delta")
                else:
                    m = _CALLER.match(s)
                    if m:
                        caller = m.group(1)
                        s = s[m.end():]
                        parts.append("caller")
    return ts_ns, wall, caller, s


#: What :func:`split_kernel_prefix` returns: kind, ts_ns, wall, host, text, rule, caller.
Split = tuple[int, int | None, str | None, str | None, str, str, str | None]


def split_kernel_prefix(s: str) -> Split:
    """``(kind, ts_ns, wall, host, text, rule, caller)`` of one raw line whose
    end-of-line, NBSP, quote markers and indentation are already gone. ``kind`` is
    :data:`KERNEL_LINE` when a prefix was found, :data:`OTHER_PROGRAM` for another
    program's syslog/journal line (its ``prog[pid]: `` tag kept in ``text``),
    :data:`NO_PREFIX` otherwise."""
    parts: list[str] = []
    ts_ns: int | None = None
    wall: str | None = None
    host: str | None = None
    caller: str | None = None
    kind = NO_PREFIX
    c = s[:1]
    if c == "<":
        m = _LEVEL.match(s)
        if m:
            s = s[m.end():]
            parts.append("lvl")
            kind = KERNEL_LINE
            if s[:2] == "1 ":
                m = _RFC5424.match(s)
                if m:
                    wall, host, s = m.group("wall"), m.group("host"), s[m.end():]
                    parts.append("rfc5424")
                    if m.group("app") != "kernel":
                        return OTHER_PROGRAM, None, wall, host, m.group("app") + ": " + s, "rfc5424-other", None
            c = s[:1]
    if "a" <= c <= "z":
        if s.startswith("kernel"):
            m = _KERNEL.match(s)
            if m:
                s = s[m.end():]
                parts.append("kernel")
                kind = KERNEL_LINE
        else:
            m = _FACILITY.match(s)
            if m:
                s = s[m.end():]
                parts.append("fac")
                kind = KERNEL_LINE
        c = s[:1]
    if "0" <= c <= "9":
        m = _KMSG.match(s)
        if m:
            ts_ns = int(m.group(3)) * 1000
            fields = m.group(5)
            if fields:
                cm = _KMSG_CALLER.search(fields)
                caller = cm.group(1) if cm else None
            s = s[m.end():]
            parts.append("kmsg")
            return KERNEL_LINE, ts_ns, None, None, s, "+".join(parts), caller
        m = _JOURNAL.match(s)
        if m:
            wall, host, s = m.group("wall"), m.group("host"), s[m.end():]
            if m.group("prog"):
                return OTHER_PROGRAM, None, wall, host, m.group("prog") + ": " + s, "journal-other", None
            parts.append("journal")
            if m.group("tag"):
                parts.append("tag")
            kind = KERNEL_LINE
        else:
            m = _ISO.match(s)
            if m:
                wall, s = m.group("wall"), s[m.end():]
                parts.append("iso")
                kind = KERNEL_LINE
    elif "A" <= c <= "Z":
        m = _SYSLOG.match(s)
        if m:
            wall, host, s = m.group("wall"), m.group("host"), s[m.end():]
            prog = m.group("prog")
            if prog is not None:
                if host is not None or not _HOSTNAME.fullmatch(prog):  # another program's line
                    parts.append("syslog-other")
                    return OTHER_PROGRAM, None, wall, host, prog + ": " + s, "+".join(parts), None
                host = prog  # OOMAnalyser's "Apr 01 14:13:32 mysrv: text"
                parts.append("syslog-host")
            else:
                parts.append("syslog" if host is not None else "syslog-nohost")
            if m.group("tag"):
                parts.append("tag")
            kind = KERNEL_LINE
        else:
            m = _JOURNAL.match(s)
            if m:
                wall, host, s = m.group("wall"), m.group("host"), s[m.end():]
                if m.group("prog"):
                    return OTHER_PROGRAM, None, wall, host, m.group("prog") + ": " + s, "journal-other", None
                parts.append("journal")
                kind = KERNEL_LINE
    if parts and s.startswith("kernel"):  # "<4>kernel: ..." and the like
        m = _KERNEL.match(s)
        if m:
            s = s[m.end():]
            parts.append("kernel")
    if s[:1] == "[":
        n = len(parts)
        ts, wall2, caller, s = after_wall(s, parts)
        if ts is not None:
            ts_ns = ts
            if "kernel" in s[:140]:  # journalctl -o short-monotonic: "[  1.2] host kernel: "
                m = _HOST_KERNEL.match(s)
                if m:
                    if m.group("host"):
                        host = m.group("host")
                    s = s[m.end():]
                    parts.append("host")
        if wall is None:
            wall = wall2
        if len(parts) > n:
            kind = KERNEL_LINE
    return kind, ts_ns, wall, host, s, "+".join(parts), caller


def split_prefix(raw: str) -> tuple[int | None, str | None, str]:
    """``(ts_ns, wall, text)`` of one raw log line: the kernel timestamp in ns (None if
    absent), a wall-clock prefix (syslog, journal, ``dmesg -T``/iso; None if absent) and
    the printk text after every prefix. Escapes of rsyslog (``#012``) and /dev/kmsg
    (``\\x0a``) are decoded in place (the text may then hold newlines, which
    :func:`.lines.kernel_log_lines` splits). A line of another program (``host sshd[1]:
    ...``) is returned whole."""
    s = raw.rstrip("\r\n")
    if "\xa0" in s:
        s = s.replace("\xa0", " ")
    m = QUOTE_RE.match(s)
    if m:
        s = s[m.end():]
    body = s.lstrip(" \t")
    kind, ts_ns, wall, _host, text, rule, _caller = split_kernel_prefix(body)
    if kind == OTHER_PROGRAM:
        return None, None, raw.rstrip("\r\n")
    if kind == NO_PREFIX:
        return None, None, s
    if "kmsg" in rule and "\\" in text:
        text = kmsg_unescape(text)
    elif "#0" in text:
        text = rsyslog_unescape(text)
    return ts_ns, wall, text


def _rsyslog_char(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 8))


def rsyslog_unescape(text: str) -> str:
    """rsyslog's ``#0NN`` octal escapes decoded (``#012`` a newline, ``#011`` a tab)."""
    return _RSYSLOG_ESC.sub(_rsyslog_char, text)


def _kmsg_char(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16)) if m.group(1) else "\\"


def kmsg_unescape(text: str) -> str:
    """/dev/kmsg's ``\\xNN`` and ``\\\\`` escapes decoded."""
    return _KMSG_ESC.sub(_kmsg_char, text)
