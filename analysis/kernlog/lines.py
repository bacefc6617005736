"""Kernel log text in, clean kernel-message lines out: the first stage of the OOM-log reader.

People paste kernel logs as every tool and mail client leaves them (the prefixes of
:mod:`.prefix`, in any mix), and more:

- raw ``/dev/kmsg`` records (their `` KEY=value`` dictionary lines dropped, ``\\x0a``
  escapes split), rsyslog ``#012``/``#011`` escapes that join several kernel lines into
  one, ``journalctl -o json`` objects, kernel lines quoted inside Kubernetes event or
  container-log JSON, console output glued before a kernel line;
- lines hard-wrapped by a mail client or cut by a terminal, rejoined by :mod:`.rejoin`
  where the joined text completes a line shape of :mod:`.shapes`.

:func:`kernel_log_lines` does all of it, one pass, holding at most :data:`MAX_PIECES` raw
lines; it never raises on content. Each :class:`~.prefix.LogLine` says how it was read
(``rule``) and which raw lines it is made of (``linenos``).

The common path (a plain dmesg, ``dmesg -T``, syslog or journal short-iso line) is matched
whole by one compiled expression and its LogLine built directly; everything else takes the
general path (:func:`_records`), 5-10x slower per line. Both read every line the same
(tests/analysis/kernlog/test_lines.py checks it).

:func:`kernel_log_blocks` reads blocks of text (a file as :mod:`..importers.textio` gives
it) into the same lines, faster when a consumer's :class:`Gate` skips most of them: one
expression over the text takes each run of lines the gate would skip.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .prefix import (
    KERNEL_LINE,
    NO_PREFIX,
    OTHER_PROGRAM,
    QUOTE_RE,
    TS_SCALE,
    LogLine,
    Rec,
    kmsg_unescape,
    rsyslog_unescape,
    split_kernel_prefix,
)
from .rejoin import MAX_PIECES, add_rule, finish, resolve
from .shapes import ReaderState, complete

__all__ = ["MAX_PIECES", "Gate", "kernel_log_blocks", "kernel_log_lines"]

_KTS_MID = re.compile(r"\[ *\d{1,12}\.\d{6,9}\] ")
_KMSG_DICT = re.compile(r" [A-Z_][A-Z0-9_]{0,63}=")
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.){8,8192})"')
_QUOTED_LEAD = re.compile(r"[Kk]ill(?:ed)? process|invoked oom-killer|oom-kill:|oom_reaper:|are going to be killed")



def _records(raw: str, lineno: int, st: ReaderState) -> list[Rec]:
    """The records of one raw line (several when rsyslog, /dev/kmsg or a journal JSON
    message joined kernel lines; none for a /dev/kmsg dictionary line)."""
    s = raw
    if s[-1:] == "\n":
        s = s[:-1]
    if s[-1:] == "\r":
        s = s[:-1]
    extra = ""
    if "\xa0" in s:
        s = s.replace("\xa0", " ")
        extra = "nbsp"
    width = len(s)
    if st.kmsg and s[:1] == " " and _KMSG_DICT.match(s):
        return []
    quote = ""
    c = s[:1]
    if c == ">" or c == "#":
        m = QUOTE_RE.match(s)
        if m:
            quote = m.group()
            s = s[m.end():]
            c = s[:1]
    if width > st.widest.get(quote, 0):
        st.widest[quote] = width
    body = s
    indent = False
    if c == " " or c == "\t":
        body = s.lstrip(" \t")
        indent = True
    kind, ts_ns, wall, host, text, rule, caller = split_kernel_prefix(body)
    if kind == NO_PREFIX:
        lead = body[:1]
        if lead == "{" or '"' in body:
            recs = _json_records(body, lineno, width, quote)
            if recs:
                return recs
        if "] " in body:
            m = _KTS_MID.search(body)
            if m and m.start() > 0:
                kind, ts_ns, wall, host, text, rule, caller = split_kernel_prefix(body[m.start():])
                rule = add_rule(rule, "midline")
        if kind == NO_PREFIX:
            rule = "quote" if quote else ""
            if extra:
                rule = add_rule(rule, extra)
            if st.kmsg and "\\" in s:  # a wrapped /dev/kmsg record goes on with its escapes
                pieces = kmsg_unescape(s).split("\n")
                last = len(pieces) - 1
                return [Rec(lineno, width if last == 0 else 0, quote, NO_PREFIX, None, None, None, pieces[0], rule,
                             (lineno,))] + [
                    Rec(lineno, width if i == last else 0, quote, KERNEL_LINE, st.kmsg_ts, None, None, p,
                        "kmsg+split:kmsg", (lineno,), st.kmsg_caller) for i, p in enumerate(pieces) if i and p.strip()]
            if "#012" in s:  # rsyslog joined kernel lines; the paste lost their prefix
                pieces = rsyslog_unescape(s).split("\n")
                return _split_records(pieces, lineno, width, quote, None, None, None, rule, "split:#012", None)
            return [Rec(lineno, width, quote, NO_PREFIX, None, None, None, s, rule, (lineno,))]
    st.kmsg = "kmsg" in rule
    if st.kmsg:
        st.kmsg_ts = ts_ns
    if indent:
        rule = "indent+" + rule
    if quote:
        rule = "quote+" + rule
    if extra:
        rule = rule + "+" + extra
    if kind == OTHER_PROGRAM:
        return [Rec(lineno, width, quote, OTHER_PROGRAM, None, wall, host, text, rule, (lineno,))]
    if "kmsg" in rule:
        st.kmsg_caller = caller
        if "\\" in text:
            pieces = kmsg_unescape(text).split("\n")
            return _split_records(pieces, lineno, width, quote, ts_ns, wall, host, rule, "split:kmsg", caller)
    elif "#0" in text:
        pieces = rsyslog_unescape(text).split("\n")
        return _split_records(pieces, lineno, width, quote, ts_ns, wall, host, rule, "split:#012", caller)
    return [Rec(lineno, width, quote, KERNEL_LINE, ts_ns, wall, host, text, rule, (lineno,), caller)]


def _split_records(pieces: list[str], lineno: int, width: int, quote: str, ts_ns: int | None,
                   wall: str | None, host: str | None, rule: str, why: str, caller: str | None) -> list[Rec]:
    if len(pieces) == 1:
        return [Rec(lineno, width, quote, KERNEL_LINE, ts_ns, wall, host, pieces[0], rule, (lineno,), caller)]
    rule = add_rule(rule, why)
    return [Rec(lineno, width if i == len(pieces) - 1 else 0, quote, KERNEL_LINE, ts_ns, wall, host, p, rule,
                (lineno,), caller) for i, p in enumerate(pieces) if p.strip() or i == 0]


def _json_records(body: str, lineno: int, width: int, quote: str) -> list[Rec]:
    """Kernel lines carried by JSON: a ``journalctl -o json`` object (its MESSAGE), or a
    whole OOM line quoted in a string of other JSON (a Kubernetes event's ``message``, a
    container log's ``log``): only a quoted text that completes an OOM shape is taken."""
    b = body.strip()
    if b[:1] == "{" and '"MESSAGE"' in b:
        try:
            obj = json.loads(b)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            return _journal_json(obj, lineno, width, quote)
    if not _QUOTED_LEAD.search(body):
        return []
    st = ReaderState()
    out: list[Rec] = []
    for m in _JSON_STRING.finditer(body):
        try:
            value = json.loads('"' + m.group(1) + '"')
        except ValueError:
            continue
        if not isinstance(value, str) or not _QUOTED_LEAD.search(value):
            continue
        for piece in value.split("\n"):
            _kind, ts_ns, wall, host, text, rule, caller = split_kernel_prefix(piece.strip())
            if complete(text.strip(), st) is not None:
                out.append(Rec(lineno, width, quote, KERNEL_LINE, ts_ns, wall, host, text,
                               add_rule("json-quoted", rule), (lineno,), caller))
    return out


def _journal_json(obj: dict[str, Any], lineno: int, width: int, quote: str) -> list[Rec]:
    msg = obj.get("MESSAGE")
    if isinstance(msg, list) and all(isinstance(x, int) and 0 <= x < 256 for x in msg):
        msg = bytes(msg).decode("utf-8", "replace")
    if not isinstance(msg, str):
        return []
    ts_ns: int | None = None
    for key in ("_SOURCE_MONOTONIC_TIMESTAMP", "__MONOTONIC_TIMESTAMP"):
        value = obj.get(key)
        if isinstance(value, (str, int)) and str(value).isdigit():
            ts_ns = int(value) * 1000
            break
    wall = obj.get("SYSLOG_TIMESTAMP") or obj.get("__REALTIME_TIMESTAMP")
    wall = str(wall).strip() if wall is not None else None
    host = obj.get("_HOSTNAME")
    host = str(host) if host is not None else None
    ident = obj.get("SYSLOG_IDENTIFIER")
    kernel = obj.get("_TRANSPORT") == "kernel" or ident == "kernel"
    out: list[Rec] = []
    pieces = msg.split("\n")
    for i, piece in enumerate(pieces):
        if not piece.strip() and i:
            continue
        rule = "json" if len(pieces) == 1 else "json+split:json"
        if kernel:
            kind, ts2, wall2, _h, text, rule2, caller = split_kernel_prefix(piece)
            if kind != KERNEL_LINE:
                text, ts2, wall2, caller = piece, None, None, None
            out.append(Rec(lineno, width, quote, KERNEL_LINE, ts2 if ts2 is not None else ts_ns,
                           wall2 if wall2 is not None else wall, host, text, add_rule(rule, rule2), (lineno,), caller))
        else:
            out.append(Rec(lineno, width, quote, OTHER_PROGRAM, None, wall, host, f"{ident or '?'}: {piece}", rule,
                            (lineno,)))
    return out


# The common path: a plain dmesg, dmesg -T, syslog or journal short-iso line, matched whole
# (end of line included) so that nothing else needs looking at; _records() reads the rest
# (and test_lines checks both agree). The expressions are assembled from named pieces,
# which the gate's runs of skipped lines (_skip_run_re) share.
_KTS_STAMP = r"\[ *(\d{1,12})\.(\d{1,9})\](?: ?\[ *([TC]\d{1,9})\])?"
_NOT_MONOTONIC = r"(?! ?[^\s\[:<]{1,128} kernel(?:\[\d{1,9}\])?: )"  # not journalctl short-monotonic
_CTIME_HEAD = r"\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]"
_SYSLOG_WALL = r"([A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d{1,9})?)"
_ISO_WALL = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
_HOST = r" ([^\s:\[<]{1,128}) "
_KERNEL_TAG = r"kernel(?:\[\d{1,9}\])?:"
_KERNEL_KTS = r" ?(?:\[ *(\d{1,12})\.(\d{1,9})\](?: ?\[ *([TC]\d{1,9})\])? ?)?"
_PROG_TAG = r"([^\s:\[]{1,128}\[\d{1,9}\]): ?"
_TEXT_TO_END = r"(.*)(?<!\r)\n?\Z"
_FAST_KTS = re.compile(_KTS_STAMP + _NOT_MONOTONIC + " ?" + _TEXT_TO_END)
_FAST_CTIME = re.compile(_CTIME_HEAD + " ?" + _TEXT_TO_END)
_FAST_SYSLOG = re.compile(_SYSLOG_WALL + _HOST + "(?:" + _KERNEL_TAG + _KERNEL_KTS + "|" + _PROG_TAG + ")"
                          + _TEXT_TO_END)
_FAST_ISO = re.compile(_ISO_WALL + _HOST + "(?:" + _KERNEL_TAG + _KERNEL_KTS + "|" + _PROG_TAG + ")" + _TEXT_TO_END)


# After a prefix, a bracket that may open a dmesg -T time, a delta or a caller id (not a
# task row "[  478]", "[ pid ]" nor a stack frame "[<ffffffff81685fac>]").
_BRACKET_PREFIX = re.compile(r"\[(?: *[TC]\d| *[+-]|[^\d\s<\[])")

#: Besides a gate's ``contains``, what ends a run of skipped lines wherever it stands in
#: a line: a non-breaking space and a ``#`` (the common path leaves a line with an NBSP or
#: an rsyslog escape ``#0..`` to the general one; one character is found by ``memchr``,
#: two take ``str.find`` 20 times longer), a CR (a line ending in one is the general path's).
_RUN_STOPS = ("\xa0", "#", "\r")


@functools.lru_cache(maxsize=16)
def _skip_run_re(starts: tuple[str, ...]) -> re.Pattern[str]:
    """A run of whole lines (each ending with a newline) that a gate with these
    ``starts`` skips while active, whatever its ``contains``: it matches only lines the
    common path reads whole, with the prefix expressions of the common path, each
    followed by a text that starts with none of ``starts`` (nor with a space, a tab or a
    bracket: such a text is left to the line-by-line path); another program's line is
    skipped whatever its text. What a line holds further on (the gate's ``contains``,
    :data:`_RUN_STOPS`) is found apart, by :meth:`_TextBlock.skipped_run`.

    Each alternative reads its line as the common path does: the ISO and syslog forms
    begin with an ASCII digit and capital, as :func:`kernel_log_lines` dispatches them;
    another program's tag is taken only where no ``kernel:`` tag stands (the common
    path tries that one first); every other way through the optional parts of a prefix
    (an optional space, timestamp or caller id left out) leaves a text starting with a
    space or a bracket, which is refused, so the text matched is the common path's.
    The prefixes take ASCII digits, host names and tags only (:func:`_ascii`, 15% faster
    than Unicode classes): that refuses more lines, never another reading of one, by
    the same argument; the lookaheads that refuse keep the common path's classes."""
    alts = "|".join(re.escape(s) for s in starts)
    unwanted = r"(?![ \t\[" + ("]|" + alts + ")" if alts else "])") + r"[^\n]*\n"
    tail = (_ascii(_HOST) + "(?:" + _ascii(_KERNEL_TAG + _KERNEL_KTS) + unwanted
            + "|(?!" + _KERNEL_TAG + ")" + _ascii(_PROG_TAG) + r"[^\n]*\n)")
    line = ("(?:" + _ascii(_KTS_STAMP) + _NOT_MONOTONIC + " ?" + unwanted + "|" + _ascii(_CTIME_HEAD) + " ?" + unwanted
            + "|" + _ascii(_SYSLOG_WALL) + tail + "|" + _ascii(_ISO_WALL) + tail + ")")
    # No capturing group (none is read, and CPython 3.11 mistracks them in a possessive repeat).
    return re.compile(re.sub(r"(?<!\\)\((?!\?)", "(?:", line) + "*+")


def _ascii(pattern: str) -> str:
    """A piece of the common path's expressions taking ASCII only where it takes any
    Unicode digit (``\\d``) or any character but a space (the host and tag classes)."""
    return (pattern.replace(r"[^\s:\[<]", r"[!-9;=-Z\\\]-~]").replace(r"[^\s:\[]", r"[!-9;-Z\\\]-~]")
            .replace(r"[ \d]", "[ 0-9]").replace(r"\d", "[0-9]"))


class Gate:
    """A consumer's say in what :func:`kernel_log_lines` builds: while ``active``, a line
    read by the common path (one raw line with its own prefix, not rejoined) is built
    and yielded only if its text, stripped, starts with one of ``starts`` or holds one of
    ``contains`` (and it is a kernel line); the others are counted in ``skipped``. A
    consumer sets ``active`` when no line it could skip would change its state (the OOM
    parser: between reports), and so saves the cost of a LogLine per unrelated line.
    ``lines`` is the number of raw lines read, once the reader is done. ``run`` and
    ``stops`` find runs of lines to skip in a block of text (:func:`kernel_log_blocks`)."""

    __slots__ = ("active", "by_char", "contains", "lines", "reader", "run", "skipped", "stops")

    def __init__(self, starts: Iterable[str], contains: Iterable[str] = ()) -> None:
        self.active = False
        self.skipped = 0
        self.lines = 0
        self.contains = tuple(contains)
        starts = tuple(starts)
        by_char: dict[str, list[str]] = {}
        for start in starts:
            by_char.setdefault(start[:1], []).append(start)
        self.by_char = {c: tuple(group) for c, group in by_char.items()}
        self.run = _skip_run_re(starts)
        self.stops = self.contains + _RUN_STOPS
        self.reader: ReaderState | None = None  # the reader's state, once it reads through this gate

    def wanted(self, text: str) -> bool:
        """Whether a line of this ``text`` must be yielded while the gate is active."""
        t = text.lstrip() if text[:1] in (" ", "\t") else text
        starts = self.by_char.get(t[:1])
        if starts is not None and t.startswith(starts):
            return True
        return any(x in t for x in self.contains)


class _TextBlock:
    """A block of whole lines, read line by line or by runs (see :func:`kernel_log_blocks`)."""

    __slots__ = ("_stop_line", "_stops_at", "end", "pos", "text")

    def __init__(self, text: str) -> None:
        if text[-1:] != "\n":
            text += "\n"
        self.text = text
        self.pos = 0  # where the next line to read starts
        self.end = -1  # where the last run found ends (-1: none found yet)
        self._stops_at: list[int] = []  # where each stop is next found in ``text`` (its length: nowhere)
        self._stop_line = -1  # where the line holding the first of them starts

    def lines(self) -> Iterator[str]:
        """The lines from :attr:`pos` on, without their newlines (setting :attr:`pos`
        between two of them makes the next one start there)."""
        text = self.text
        find = text.find
        while True:
            start = self.pos
            nl = find("\n", start)
            if nl < 0:
                return
            self.pos = nl + 1
            yield text[start:nl]

    def skipped_run(self, pos: int, run: re.Pattern[str], stops: tuple[str, ...]) -> int:
        """How many lines from the one starting at ``pos`` on are matched by ``run`` and
        hold none of ``stops`` (:attr:`end` is where they end). ``pos`` is never before
        the last run found: a later call starts in it (when the reader could not take
        it: ``run`` matches line by line, so the answer is the rest of it) or after it."""
        text = self.text
        if pos <= self.end:
            return text.count("\n", pos, self.end)
        if pos > self._stop_line:  # the first stop is behind: find each one passed anew
            if not self._stops_at:
                self._stops_at = [-1] * len(stops)
            stops_at = self._stops_at
            for i, at in enumerate(stops_at):
                if at < pos:
                    at = text.find(stops[i], pos)
                    stops_at[i] = at if at >= 0 else len(text)
            self._stop_line = text.rfind("\n", 0, min(stops_at, default=len(text))) + 1
        end = pos
        if self._stop_line > pos:
            m = run.match(text, pos, self._stop_line)
            if m is not None:
                end = m.end()
        self.end = end
        return text.count("\n", pos, end)


def kernel_log_lines(lines: Iterable[str], gate: Gate | None = None) -> Iterator[LogLine]:
    """Every kernel message line of a raw log, prefixes stripped and wrapped pieces
    rejoined (see the module docstring); lines of other programs are passed through with
    their ``prog[pid]: `` tag, a /dev/kmsg dictionary line is dropped. Reads ``lines``
    once, holding at most :data:`MAX_PIECES` of them; never raises on content. With a
    ``gate``, lines its consumer does not want are counted instead of yielded (:class:`Gate`)."""
    return _read(((None, lines),), gate)


def kernel_log_blocks(blocks: Iterable[str], gate: Gate | None = None) -> Iterator[LogLine]:
    """:func:`kernel_log_lines` of the lines of ``blocks`` of text, each of whole lines
    (a line is what ``str.split("\\n")`` cuts; a block without a final newline is taken
    to end with one): the same LogLines, the same ``gate`` counts, faster.

    While the gate is active, most lines of a big log are skipped one by one: each
    matched by a common-path expression, its text tested against the gate, then counted
    when the next line shows a prefix of its own. Here, before a line is read, one
    expression over the block's text (:attr:`Gate.run`, see :func:`_skip_run_re`) takes
    the run of lines from it on that the line-by-line path would surely skip, up to the
    first line holding one of :attr:`Gate.stops` (found by ``str.find``). When the run
    holds a line or more, the line pending before it is settled (skipped, or yielded
    when the gate wanted it: then the run is used only if the gate is still active), all
    lines of the run but its last are counted as skipped at once, and its last becomes
    the pending line (matched by the common path only if the line after it may continue
    it), so the line-by-line path goes on with its one-line lookbehind intact.

    This is what the line-by-line path does, line for line: every line of the run is one
    it reads by the common path, so the line pending before each is settled then and
    there, as the gate says; the gate is active, and skipping yields nothing, so it stays
    so; and a skipped line touches no other state (the widest line, /dev/kmsg mode: the
    common path leaves both alone). tests/analysis/kernlog/test_lines.py checks that both
    paths give the same LogLines and counts on mixed logs."""
    return _read(((b, b.lines()) for b in map(_TextBlock, filter(None, blocks))), gate)


def _read(parts: Iterable[tuple[_TextBlock | None, Iterable[str]]], gate: Gate | None) -> Iterator[LogLine]:
    """The reader behind :func:`kernel_log_lines` and :func:`kernel_log_blocks`: the raw
    lines of each part, in turn (a part with a text block may skip runs of them)."""
    if gate is None:
        gate = Gate(())  # never active
    st = ReaderState()
    gate.reader = st
    buf: list[Rec] = []  # records that may still be continued by the next raw line
    # The previous raw line when it came by the common path: its match (its fields are
    # taken from it only when a LogLine is built: most lines of a big log are skipped),
    # which expression matched (_KTS, _CTIME, _SYSLOG or _ISO), whether it is another
    # program's, and whether it is to be skipped (the gate's say, sealed when the line
    # came: the gate changes only when a line is yielded, and none is before the next
    # line settles this one). It is yielded (or skipped) when the current line shows a
    # prefix of its own, or taken back into ``buf`` when the current line may continue it.
    p_m: re.Match[str] | None = None
    p_kind = 0
    p_lineno = 0
    p_other = False
    p_skip = False
    # Or the last line of a run (kernel_log_blocks): read by the common path and to be
    # skipped, matched only if the current line may continue it.
    p_run: str | None = None
    kmsg = False
    by_char, contains, run, stops = gate.by_char, gate.contains, gate.run, gate.stops
    lineno = 0
    for block, part in parts:
        for raw in part:
            lineno += 1
            if block is not None and gate.active and not buf and not kmsg:
                start = block.pos - len(raw) - 1
                n = block.skipped_run(start, run, stops) if start != block.end else 0  # 0: the last run stopped here
                if n:  # a run (see kernel_log_blocks): the pending line is settled
                    if p_m is not None:
                        if p_skip:
                            gate.skipped += 1
                        else:
                            yield _fast_line(st, p_m, p_kind, p_lineno)
                        p_m = None
                    elif p_run is not None:
                        gate.skipped += 1
                        p_run = None
                    if gate.active:  # still: the line yielded may have changed it
                        gate.skipped += n - 1
                        if n > 1:
                            text = block.text
                            end = block.pos = block.end
                            raw = text[text.rfind("\n", start, end - 1) + 1:end - 1]
                        p_run = raw
                        lineno += n - 1
                        p_lineno = lineno
                        continue
            m, kind, text, other = _common_path(raw)
            if m is not None and not kmsg:
                if p_m is not None:
                    if p_skip:
                        gate.skipped += 1
                    else:
                        yield _fast_line(st, p_m, p_kind, p_lineno)
                elif p_run is not None:
                    gate.skipped += 1
                    p_run = None
                elif buf:
                    yield from _drain(buf, st)
                skip = False
                if gate.active:
                    # Gate.wanted(), inlined: this is the path of almost every line of a big log.
                    skip = True
                    if not other:
                        t = text.lstrip() if text[:1] in (" ", "\t") else text
                        starts = by_char.get(t[:1])
                        if starts is not None and t.startswith(starts):
                            skip = False
                        else:
                            for x in contains:
                                if x in t:
                                    skip = False
                                    break
                p_m, p_kind, p_lineno, p_other, p_skip = m, kind, lineno, other, skip
                continue
            if p_run is not None:
                p_m, p_kind, _text, p_other = _common_path(p_run)
                p_run = None
            if p_m is not None:
                ts, wall, host, caller, rule, ptext = _fields(p_m, p_kind)
                buf.append(Rec(p_lineno, _width(p_m.string, st), "", OTHER_PROGRAM if p_other else KERNEL_LINE,
                               ts, wall, host, ptext, rule, (p_lineno,), caller))
                p_m = None
            for rec in _records(raw, lineno, st):
                if rec.kind != NO_PREFIX and buf:
                    yield from _drain(buf, st)
                buf.append(rec)
                if len(buf) > MAX_PIECES:
                    out, n = resolve(buf, st)
                    del buf[:n]
                    yield finish(out, st)
            kmsg = st.kmsg
    gate.lines = lineno
    if p_m is not None:
        if p_skip:
            gate.skipped += 1
        else:
            yield _fast_line(st, p_m, p_kind, p_lineno)
    elif p_run is not None:
        gate.skipped += 1
    yield from _drain(buf, st)


_kts_match, _ctime_match = _FAST_KTS.match, _FAST_CTIME.match
_syslog_match, _iso_match = _FAST_SYSLOG.match, _FAST_ISO.match
_bracket_prefix = _BRACKET_PREFIX.match


def _common_path(raw: str) -> tuple[re.Match[str] | None, int, str, bool]:
    """The common path's reading of a raw line: its match (None when the general path
    must read the line), which expression matched, the line's text and whether it is
    another program's."""
    c = raw[:1]
    other = False
    if c == "[":  # dmesg, dmesg -T
        m = _kts_match(raw)
        if m is not None:
            kind, text = _KTS_LINE, m.group(4)
        else:
            m = _ctime_match(raw)
            if m is None:
                return _GENERAL
            kind, text = _CTIME_LINE, m.group(2)
            if text[:1] == "[" and _bracket_prefix(text):  # a caller id
                return _GENERAL
    elif "A" <= c <= "Z" or "0" <= c <= "9":  # syslog, journalctl short-iso
        kind = _SYSLOG_LINE if c >= "A" else _ISO_LINE
        m = _syslog_match(raw) if kind == _SYSLOG_LINE else _iso_match(raw)
        if m is None:
            return _GENERAL
        prog, text = m.group(6, 7)
        if prog is not None:
            other = True
        elif text[:1] == "[" and m.group(3) is None and _bracket_prefix(text):
            return _GENERAL  # dmesg -T or a caller id after the prefix
    else:
        return _GENERAL
    if "\xa0" in text or "#0" in text:  # NBSP, rsyslog escapes
        return _GENERAL
    return m, kind, text, other


_GENERAL: tuple[None, int, str, bool] = (None, 0, "", False)


#: Which common-path expression read a line (see :func:`_fields`).
_KTS_LINE, _CTIME_LINE, _SYSLOG_LINE, _ISO_LINE = 0, 1, 2, 3


def _fields(m: re.Match[str], kind: int) -> tuple[int | None, str | None, str | None, str | None, str, str]:
    """``(ts_ns, wall, host, caller, rule, text)`` of a line the common path matched."""
    if kind == _KTS_LINE:
        sec, frac, caller, text = m.groups()
        return _ts(sec, frac), None, None, caller, "kts", text
    if kind == _CTIME_LINE:
        wall, text = m.groups()
        return None, wall, None, None, "ctime", text
    wall, host, sec, frac, caller, prog, text = m.groups()
    syslog = kind == _SYSLOG_LINE
    if prog is not None:
        return None, wall, host, None, "syslog-other" if syslog else "journal-other", prog + ": " + text
    if sec is not None:
        return _ts(sec, frac), wall, host, caller, "syslog+kts" if syslog else "journal+kts", text
    return None, wall, host, caller, "syslog" if syslog else "journal", text


def _ts(sec: str | None, frac: str) -> int | None:
    """ns of a kernel timestamp's seconds and fraction as printed."""
    if sec is None:
        return None
    if len(frac) == 6:
        return int(sec + frac) * 1000
    return int(sec) * 1_000_000_000 + int(frac) * TS_SCALE[len(frac)]


_new = object.__new__


def _fast_line(st: ReaderState, m: re.Match[str], kind: int, lineno: int) -> LogLine:
    """The LogLine of a line the common path read whole (see :func:`kernel_log_lines`)."""
    ts, wall, host, caller, rule, text = _fields(m, kind)
    other = rule.endswith("-other")
    if not other and ("oom" in text or "l process" in text or "d process" in text or "CPU:" in text
                      or "Pid:" in text or "Tasks in" in text):  # shapes.maybe_key(), inlined
        return finish(Rec(lineno, 0, "", KERNEL_LINE, ts, wall, host, text, rule, (lineno,), caller), st)
    # Only the fields that differ from the class defaults go to the instance dict:
    # attribute reads fall back to the defaults (wall, host, caller).
    line: LogLine = _new(LogLine)
    d = line.__dict__
    d["ts_ns"] = ts
    d["text"] = text
    d["lineno"] = lineno
    if wall is not None or other:
        d["wall"] = wall
        d["host"] = host
    d["linenos"] = (lineno,)
    d["rule"] = rule
    if caller is not None:
        d["caller"] = caller
    return line


def _width(raw: str, st: ReaderState) -> int:
    """The width of a raw line without its end of line; the widest so far is kept."""
    width = len(raw.rstrip("\r\n"))
    if width > st.widest[""]:
        st.widest[""] = width
    return width


def _drain(buf: list[Rec], st: ReaderState) -> Iterator[LogLine]:
    """Resolve and emit every buffered record (no later line can continue them)."""
    while buf:
        out, n = resolve(buf, st)
        del buf[:n]
        yield finish(out, st)
