"""Reading the trace header's ``meta`` map when it may be damaged or hand-written.

The header's parts (``machine``, ``sysctl``, ``source`` ...) are maps of plain values
in a trace memtrace wrote, but a file's checksums say nothing of its values: every
reader takes a part with :func:`meta_part` and a number with :func:`meta_int`, which
read a value of the wrong kind as absent and say so in a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["meta_int", "meta_part", "note", "value_desc"]


def value_desc(value: Any) -> str:
    """``'bogus' (str)``: a header value as a message shows it, at most 40 characters."""
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({type(value).__name__})"


def meta_part(meta: Mapping[str, Any], key: str, warnings: list[str] | None = None) -> Mapping[str, Any]:
    """``meta[key]`` (``machine``, ``sysctl`` ...) when it is a map. A part that is
    absent, or not a map (a damaged or hand-written header), reads as empty; the
    second adds a warning naming it to ``warnings``."""
    part = meta.get(key) if isinstance(meta, Mapping) else None
    if part is None or isinstance(part, Mapping):
        return part or {}
    note(warnings, f"trace header: meta.{key} is {value_desc(part)}, not a map: ignored")
    return {}


def meta_int(part: Mapping[str, Any], key: str, where: str, warnings: list[str] | None = None) -> int | None:
    """``part[key]`` as an integer, or None when absent; a value that is not one
    (``"lots"``, a list) reads as absent, with a warning naming ``where.key``."""
    value = part.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            pass
    note(warnings, f"trace header: meta.{where}.{key} is {value_desc(value)}, not an integer: ignored")
    return None


def note(warnings: list[str] | None, message: str) -> None:
    if warnings is not None and message not in warnings:
        warnings.append(message)


