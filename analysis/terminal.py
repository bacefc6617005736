"""Plain text for terminals: lines under 80 columns, wrapped words, aligned tables.

Shared by the text renderers of the report (:mod:`.report.text`), explain
(:mod:`.explain_text`) and ps (:mod:`.ps_text`). Pure functions of strings. Text
and cells pass through :func:`memtrace.escape.printable` first: a comm or path
from the input cannot put a terminal escape sequence or a carriage return on the
screen, and widths are measured on what is printed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Sequence

from memtrace.escape import printable

__all__ = ["WIDTH", "table", "wrap"]

#: The widest line a text renderer prints.
WIDTH = 79


def wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` wrapped to :data:`WIDTH`: the first line starts with ``first`` (default
    ``indent``), the others with ``indent``. Empty text is one line of ``first``."""
    return textwrap.wrap(printable(text), WIDTH, initial_indent=first if first is not None else indent,
                         subsequent_indent=indent, break_on_hyphens=False, break_long_words=True) or [first or ""]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = (), indent: str = "  ",
          last_wraps: bool = False) -> list[str]:
    """Columns two spaces apart, each as wide as its widest cell; columns in ``right``
    align right. With ``last_wraps``, the last column takes what is left of the line
    (at least 20 columns) and wraps under itself. Trailing spaces are cut."""
    headers = [printable(h) for h in headers]
    rows = [[printable(c) for c in r] for r in rows]
    n = len(headers)
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r[: n - 1] if last_wraps else r):
            widths[i] = max(widths[i], len(c))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            if last_wraps and i == n - 1:
                out.append(c)
            elif i in right:
                out.append(c.rjust(widths[i]))
            else:
                out.append(c.ljust(widths[i]))
        return (indent + "  ".join(out)).rstrip()

    lines = [line(headers)]
    for r in rows:
        if not last_wraps:
            lines.append(line(r))
            continue
        pad = len(indent) + sum(widths[: n - 1]) + 2 * (n - 1)
        lead = line([*r[:-1], ""]).ljust(pad)
        wrapped = textwrap.wrap(r[-1], max(WIDTH - pad, 20), break_on_hyphens=False) or [""]
        lines.append((lead + wrapped[0]).rstrip())
        lines.extend((" " * pad + w).rstrip() for w in wrapped[1:])
    return lines
