"""Errors of the one-liner language: a message, and the program with a caret under
the problem, as bpftrace shows them::

    -e:1:16: unknown field 'foo' of page_fault (did you mean 'pfn'?)
    page_fault { @[foo] = count(); }
                   ^~~
"""

from __future__ import annotations

from memtrace.errors import ParseError

#: A source line longer than this is shown as a window around the caret, each cut
#: end marked ``...`` (a generated program can be one line of megabytes).
MAX_SHOWN = 160


class ProgramError(ParseError):
    """A one-liner program cannot be parsed or does not type-check.

    ``message`` is the bare reason; ``str()`` gives ``FILE:LINE:COL: message``, the
    offending source line (at most :data:`MAX_SHOWN` characters of it around the
    problem) and a caret line under ``start..end``.
    """

    def __init__(self, message: str, source: str, start: int, end: int | None = None,
                 filename: str = "-e") -> None:
        start = max(0, min(start, len(source)))
        end = start + 1 if end is None or end <= start else end
        line_start = source.rfind("\n", 0, start) + 1
        line_end = source.find("\n", start)
        if line_end < 0:
            line_end = len(source)
        self.message = message
        self.filename = filename
        self.line = source.count("\n", 0, start) + 1
        self.col = start - line_start + 1
        text = source[line_start:line_end]
        col0, end0 = start - line_start, min(end, line_end) - line_start
        if len(text) > MAX_SHOWN:
            lo = max(0, min(col0 - MAX_SHOWN // 2, len(text) - MAX_SHOWN))
            hi = lo + MAX_SHOWN
            shift = (3 if lo else 0) - lo
            text = ("..." if lo else "") + text[lo:hi] + ("..." if hi < len(text) else "")
            col0, end0 = col0 + shift, min(end0, hi) + shift
        self.source_line = text
        width = max(1, end0 - col0) if col0 < len(text) else 1
        pad = "".join("\t" if ch == "\t" else " " for ch in text[:col0])
        self.caret = pad + "^" + "~" * (width - 1)
        super().__init__(f"{filename}:{self.line}:{self.col}: {message}\n{self.source_line}\n{self.caret}")

    @property
    def headline(self) -> str:
        """The first line only: ``FILE:LINE:COL: message``."""
        return f"{self.filename}:{self.line}:{self.col}: {self.message}"
