"""printf() and time() of the probe language: C formats over whole columns.

A format is parsed once (:func:`parse_format`) into a Python ``%`` format and the
conversion of each argument; :func:`format_rows` then formats one line per event,
the only per-event Python work a probe does. Conversions are C's as bpftrace
accepts them: ``%d %i %u %x %X %o %c %s`` with flags, width and precision; length
modifiers (``%lu``) are read and ignored, since every integer is 64-bit.
"""

from __future__ import annotations

import functools
import re
import time as _time
from collections.abc import Sequence
from typing import Any, NamedTuple

from memtrace.escape import printable

from .columns import StrColumn, as_int64

__all__ = ["MAX_PRINTF_WIDTH", "MAX_TIME_FORMAT_CHARS", "FormatSpec", "cached_format", "format_rows", "parse_format",
           "sim_strftime", "time_format_problem"]

_CONV = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d+)?(?:\.(?P<prec>\d+))?"
                   r"(?P<len>hh|h|ll|l|z|j|t)?(?P<conv>[diouxXsc%])")


#: The widest printf field width or precision accepted: a wider one (``%999999999d``)
#: would write that many bytes per event.
MAX_PRINTF_WIDTH = 1000


#: Longest time()/strftime() format: 256 characters. Python's strftime gives up
#: (returns "") on output over 256 times the format's length, so a long format of
#: padded fields (``%_1000000Y``) is what makes its output large.
MAX_TIME_FORMAT_CHARS = 256


def time_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot be a time()/strftime() format, or None when it can."""
    if "\0" in fmt:
        return "a time format cannot hold a NUL character (\\0)"
    if len(fmt) > MAX_TIME_FORMAT_CHARS:
        return f"a time format of {len(fmt):,} characters is longer than {MAX_TIME_FORMAT_CHARS}"
    return None


class FormatSpec(NamedTuple):
    """A printf format parsed: Python format text and the conversion of each argument."""

    py_format: str
    convs: tuple[str, ...]


def parse_format(fmt: str) -> FormatSpec:
    """Parse a C printf format (``%d %i %u %x %X %o %c %s``, flags, width, precision,
    length modifiers ignored); ValueError names what is wrong, including a width or
    precision above :data:`MAX_PRINTF_WIDTH`."""
    out: list[str] = []
    convs: list[str] = []
    pos = 0
    for m in _CONV.finditer(fmt):
        lit = fmt[pos:m.start()]
        if "%" in lit:
            bad = lit[lit.index("%"):][:2]
            raise ValueError(f"unsupported printf conversion {bad!r}")
        for part, what in ((m["width"], "width"), (m["prec"], "precision")):
            if part is not None and (len(part) > 6 or int(part) > MAX_PRINTF_WIDTH):
                raise ValueError(f"printf field {what} {part} in {m.group()[:20]!r} is more than "
                                 f"{MAX_PRINTF_WIDTH}")
        out.append(lit.replace("%", "%%"))
        conv = m["conv"]
        if conv == "%":
            out.append("%%")
        else:
            py = {"i": "d", "u": "d"}.get(conv, conv)
            prec = f".{m['prec']}" if m["prec"] is not None else ""
            out.append(f"%{m['flags']}{m['width'] or ''}{prec}{py}")
            convs.append(conv)
        pos = m.end()
    rest = fmt[pos:]
    if "%" in rest:
        raise ValueError(f"unsupported printf conversion {rest[rest.index('%'):][:2]!r}")
    out.append(rest)
    return FormatSpec("".join(out), tuple(convs))


def _printf_column(conv: str, value: Any, n: int) -> list[Any]:
    # Text from the trace (a comm, a path) is printed printable(): no terminal escape
    # sequence of the input reaches the screen; the program's own literals are kept.
    if isinstance(value, StrColumn):
        return [printable(s) for s in value.tolist()]
    if isinstance(value, list):
        return [printable(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, str):
        return [value] * n
    ints: list[int] = as_int64(value, n).tolist()
    if conv in "uxXo":
        return [v + (1 << 64) if v < 0 else v for v in ints]
    if conv == "c":
        return [chr(v & 0xFF) for v in ints]
    return ints


def format_rows(spec: FormatSpec, args: Sequence[Any], n: int) -> list[str]:
    """One formatted string per row."""
    if len(args) != len(spec.convs):
        raise ValueError(f"printf format takes {len(spec.convs)} argument(s), got {len(args)}")
    if not args:
        return [spec.py_format % ()] * n
    cols = [_printf_column(c, a, n) for c, a in zip(spec.convs, args)]
    fmt = spec.py_format
    return [fmt % row for row in zip(*cols)]


@functools.lru_cache(maxsize=256)
def cached_format(fmt: str) -> FormatSpec:
    """:func:`parse_format` of ``fmt``, remembered: a probe's printf runs once per
    batch, always with the same format."""
    return parse_format(fmt)


def sim_strftime(fmt: str, ts_ns: int) -> str:
    """strftime of simulated time: ``ts_ns`` since boot on a clock that reads
    00:00:00 at boot (day 1970-01-01); ``%f`` is the microseconds."""
    problem = time_format_problem(fmt)
    if problem is not None:
        raise ValueError(problem)
    secs, rem_ns = divmod(int(ts_ns), 1_000_000_000)
    fmt = fmt.replace("%f", f"{rem_ns // 1000:06d}")
    return _time.strftime(fmt, _time.gmtime(secs))
