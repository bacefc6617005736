"""Text from an input, made safe for the format it is written in.

A comm, a file path, a cgroup name or a snapshot label comes from a trace, a log or
a scenario: often someone else's file. The kernel lets a comm hold any byte but NUL
(``prctl(PR_SET_NAME)``), a path anything but NUL, so such a name can carry a
terminal escape sequence (ESC ``[2J`` clears the screen; OSC 8 makes a link; OSC 52
writes the clipboard), a carriage return that overwrites the line it is on, a
Unicode bidi override that shows text reversed, or Markdown and HTML.

- :func:`printable`: for a terminal or a text file: every control character (C0
  but tab and newline, DEL, C1) and every bidi control is written as a visible
  escape (``\\x1b``, ``\\u202e``); all else is kept.
- :func:`markdown_text` / :func:`markdown_code`: for Markdown (CommonMark / GFM):
  every character that can start inline markup is backslash-escaped (raw HTML,
  links, emphasis, tables), and so is one that would start a block at the start
  of the text; newlines become spaces, control characters as :func:`printable`;
  a code span gets a backtick fence longer than any backtick run inside it.
- HTML is escaped by :func:`html.escape` in analysis/report/html.py.
- :class:`PrintableStdout`: the command line's stdout, through :func:`printable`
  (whatever a command prints; its JSON has no control characters to change).

A leaf: it imports nothing of memtrace.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

__all__ = ["PrintableStdout", "markdown_code", "markdown_text", "printable", "raw_stdout"]

#: Bidi controls (Unicode TR9): embeddings, overrides, isolates, marks.
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROLS = [c for c in (*range(0x20), *range(0x7F, 0xA0)) if c not in (0x09, 0x0A)]
_PRINTABLE = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}
#: In Markdown a newline would end the line a name is on (a new block could start).
_MARKDOWN_SPACE = {0x0A: " ", 0x09: " "}
#: ASCII punctuation that starts inline Markdown markup: code, emphasis, links and
#: images, raw HTML and autolinks, entities, table cells, strikethrough
#: (CommonMark: any ASCII punctuation may be backslash-escaped, and is then literal).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>&|~])")
#: An underscore starts emphasis only at a word's edge (CommonMark: intraword ``_``
#: is literal), so ``oom_score_adj`` stays as it is.
_MARKDOWN_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: What starts a block at the start of a line: a heading, a list item, a quote, a
#: setext underline, an ordered list item.
_MARKDOWN_BLOCK_START = re.compile(r"^(\s*\d*)([#+\-=>.)])")


def printable(text: str) -> str:
    """``text`` with control and bidi characters as visible escapes (``\\x1b``)."""
    return text.translate(_PRINTABLE)


def markdown_text(text: str, *, line_start: bool = False) -> str:
    """``text`` as literal Markdown: inline markup characters backslash-escaped,
    newlines as spaces, control characters as :func:`printable`; with
    ``line_start`` (text that begins a line or a list item) also a character that
    would start a block there (``#``, ``-``, ``>``, ``1.``)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text.translate(_MARKDOWN_SPACE).translate(_PRINTABLE))
    escaped = _MARKDOWN_UNDERSCORE.sub(r"\\_", escaped)
    if not line_start:
        return escaped
    return _MARKDOWN_BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)


def markdown_code(text: str) -> str:
    """``text`` as a Markdown code span (backslashes are literal inside one): fenced
    with one more backtick than its longest run of backticks, padded with spaces
    when it starts or ends with one."""
    body = text.translate(_MARKDOWN_SPACE).translate(_PRINTABLE)
    runs = [len(r) for r in re.findall(r"`+", body)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


class PrintableStdout:
    """stdout as the commands write it: every control and bidi character of the text
    written is shown as a visible escape (:func:`printable`), so a
    name from an input cannot drive the terminal. JSON has none (json.dumps escapes
    them). ``raw`` is the stream beneath, for a one-liner's own printf literals.

    It has no ``buffer``: click writes through it rather than around it."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw
        self.encoding = raw.encoding
        self.errors = raw.errors

    def write(self, s: str) -> int:
        self.raw.write(printable(s))
        return len(s)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def writable(self) -> bool:
        return True


def raw_stdout() -> TextIO:
    """The stream beneath :class:`PrintableStdout` (sys.stdout when not filtered)."""
    out: object = sys.stdout
    return out.raw if isinstance(out, PrintableStdout) else sys.stdout
