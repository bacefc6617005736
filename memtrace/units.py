"""Sizes and times, read and written one way everywhere.

Reading is exact: ``"1.005s"`` is 1,005,000,000 ns and ``"1.5GiB"`` is
1,610,612,736 bytes, computed with :class:`fractions.Fraction`, never through a
float. A value that is not a whole number of the base unit (``"1.5B"``) is refused.

Writing has three forms:

- :func:`format_size` for sentences and reports: ``768 MiB``, ``1.5 GiB``,
  ``12 KiB``, ``0 B`` (binary units, one decimal below 100 of a unit);
- :func:`format_size_short` for table cells, as ``free -h`` prints them:
  ``23Gi``, ``1.2Gi``, ``512Mi``, ``0B``;
- :func:`format_size_exact` for values a user may type back (scenario files,
  ``--set``): the largest binary unit that divides it, ``256GiB``, else bytes;
- :func:`format_mib` for columns in whole MiB, as ``free -m`` prints them;

and the same for times: :func:`format_duration` (``4.9 s``, ``120 ms``, ``5 min``),
:func:`format_seconds` (``4.929 s``, seconds since boot as dmesg shows them) and
:func:`format_duration_exact` (``86400s``).

Every function is pure and imports nothing of memtrace: the module is a leaf that
every layer may use.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "DURATION_UNITS_NS",
    "SIZE_UNITS",
    "GiB",
    "KiB",
    "MiB",
    "TiB",
    "format_duration",
    "format_duration_exact",
    "format_mib",
    "format_seconds",
    "format_size",
    "format_size_exact",
    "format_size_short",
    "parse_duration",
    "parse_size",
]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

#: Size suffixes, case-insensitive, all binary (``kB`` is KiB, as /proc/meminfo means).
SIZE_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "k": KiB, "kb": KiB, "kib": KiB,
    "m": MiB, "mb": MiB, "mib": MiB,
    "g": GiB, "gb": GiB, "gib": GiB,
    "t": TiB, "tb": TiB, "tib": TiB,
}
#: Time suffixes, in nanoseconds.
DURATION_UNITS_NS: dict[str, int] = {
    "ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000,
}

_NUMBER_UNIT = re.compile(r"^\s*(-?\d{1,30}(?:\.\d{1,30})?)\s*([a-zA-Z]*)\s*$", re.ASCII)


def _brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exact(text: str, units: dict[str, int], fold_case: bool) -> int | None:
    """The whole number ``text`` names in ``units``' base unit, or None."""
    m = _NUMBER_UNIT.match(text)
    if m is None:
        return None
    unit = m.group(2).lower() if fold_case else m.group(2)
    factor = units.get(unit)
    if factor is None:
        return None
    value = Fraction(m.group(1)) * factor
    return int(value) if value.denominator == 1 else None


def parse_size(value: object) -> int:
    """Bytes from an int or a string such as ``"1GiB"``, ``"64k"``, ``"1.5MiB"``
    (binary units; ``kB`` is KiB). ValueError names the value otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        n = _exact(value, SIZE_UNITS, fold_case=True)
        if n is not None:
            return n
    raise ValueError(f"expected a size such as 4096 or \"64MiB\", got {_brief(value)}")


def parse_duration(value: object, *, default_unit: str = "ns") -> int:
    """Nanoseconds from an int or a string such as ``"100ms"`` or ``"1.005s"``.

    A bare number is in ``default_unit`` (``"ns"`` for scenario files; ``"s"`` where
    a user types seconds, as in ``--at 4.8``). ValueError names the value otherwise.
    """
    factor = DURATION_UNITS_NS[default_unit]
    if isinstance(value, int) and not isinstance(value, bool):
        return value * factor
    if isinstance(value, str):
        units = {**DURATION_UNITS_NS, "": factor}
        n = _exact(value, units, fold_case=False)
        if n is not None:
            return n
    example = "1000 or \"100ms\"" if default_unit == "ns" else "4.8 or \"100ms\""
    raise ValueError(f"expected a duration such as {example}, got {_brief(value)}")


def format_size(nr_bytes: int | None, unknown: str = "unknown") -> str:
    """A byte count for people: ``768 MiB``, ``1.5 GiB``, ``12 KiB``, ``0 B``,
    ``-3.2 MiB``; ``unknown`` for None."""
    if nr_bytes is None:
        return unknown
    n = abs(nr_bytes)
    sign = "-" if nr_bytes < 0 else ""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= factor:
            v = n / factor
            text = f"{v:.0f}" if v == int(v) or v >= 100 else f"{v:.1f}"
            return f"{sign}{text} {unit}"
    return f"{sign}{n} B"


def format_size_short(nr_bytes: int | None, unknown: str = "-") -> str:
    """A table cell as ``free -h`` (procps-ng ``scale_size``) prints it: the
    largest binary unit under which the value is below 1024, with one decimal below
    10 of it and none from 10 on: ``23Gi``, ``1.2Gi``, ``512Mi``, ``0B``."""
    if nr_bytes is None:
        return unknown
    n = abs(nr_bytes)
    sign = "-" if nr_bytes < 0 else ""
    if n < KiB:
        return f"{sign}{n}B"
    for unit, factor in (("Ki", KiB), ("Mi", MiB), ("Gi", GiB), ("Ti", TiB)):
        v = n / factor
        if v < 1024 or unit == "Ti":
            text = f"{v:.1f}" if v < 10 else f"{v:.0f}"
            return f"{sign}{text}{unit}"
    raise AssertionError("unreachable: Ti takes every value")


def format_mib(nr_bytes: int) -> str:
    """A column value in MiB as ``free -m`` prints it: the floor of bytes / MiB,
    with thousands separators (``24,143``)."""
    return f"{nr_bytes // MiB:,}"


def format_size_exact(nr_bytes: int) -> str:
    """``nr_bytes`` with the largest binary unit that divides it (``"256GiB"``,
    ``"96MiB"``), else plain bytes: a form :func:`parse_size` reads back exactly."""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if nr_bytes and nr_bytes % factor == 0:
            return f"{nr_bytes // factor}{unit}"
    return str(nr_bytes)


def format_duration(ns: int | None, unknown: str = "unknown") -> str:
    """A span of time for people: ``120 ms``, ``4.9 s``, ``5 min``."""
    if ns is None:
        return unknown
    s = ns / 1e9
    if s >= 120:
        return f"{s / 60:.0f} min"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.1f} s"


def format_seconds(ts_ns: int | None, digits: int = 3, unknown: str = "?") -> str:
    """A moment as seconds since the trace's (or the kernel's) start: ``4.929 s``.
    Rounded half up on the integer, never through a float."""
    if ts_ns is None:
        return unknown
    step = 10 ** (9 - max(0, min(9, digits)))
    q, r = divmod(abs(ts_ns), step)
    if 2 * r >= step:
        q += 1
    sign = "-" if ts_ns < 0 and q else ""
    if digits <= 0:
        return f"{sign}{q} s"
    whole, frac = divmod(q, 10 ** digits)
    return f"{sign}{whole}.{frac:0{digits}d} s"


def format_duration_exact(ns: int) -> str:
    """``ns`` with the largest unit that divides it (``"86400s"``, ``"30ms"``):
    a form :func:`parse_duration` reads back exactly."""
    for unit, factor in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if ns and ns % factor == 0:
            return f"{ns // factor}{unit}"
    return f"{ns}ns"
