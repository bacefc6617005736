"""The one-liner language's lexer: characters to tokens, on demand.

The parser pulls tokens one at a time (:meth:`Lexer.next`), because one construct
is lexed differently: a probe's attach point (``interval:ms:100``, ``page_*``) is
read raw, up to a space, ``,``, ``/`` or ``{`` (:meth:`Lexer.attach_point`).

Tokens: integers (``42``, ``0x1f``, ``1_000``, ``1e6``), strings (``"..."`` with
``\\n \\t \\r \\0 \\\\ \\" \\xNN`` escapes), identifiers, maps (``@name`` or ``@``),
variables (``$name``) and operators. ``//`` and ``/* */`` comments, a first
``#!`` line and C preprocessor lines ``#include``, ``#if...``/``#endif`` (bpftrace
programs bring kernel headers with them; memtrace has no casts to use them) are
skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ProgramError

#: Operators, longest first so that ``<<=`` wins over ``<<`` over ``<``.
OPERATORS = (
    "<<=", ">>=",
    "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "++", "--", "->",
    "{", "}", "(", ")", "[", "]", ",", ";", ":", "?", "/", "+", "-", "*", "%", "<", ">", "=", "!",
    "~", "&", "|", "^", ".",
)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:[eE][0-9]+)?")
_ATTACH = re.compile(r"[^\s,/{}();]+")
#: Preprocessor directives skipped as comments (see :meth:`Lexer._directive`).
PREPROCESSOR_SKIPPED = ("include", "if", "ifdef", "ifndef", "else", "elif", "endif")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "e": "\x1b"}


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is int, str, ident, map, var, op or eof; ``value`` the
    int, the decoded string, or the text; ``pos``/``end`` offsets in the source."""

    kind: str
    value: Any
    pos: int
    end: int

    @property
    def text(self) -> str:
        return str(self.value) if self.kind != "str" else repr(self.value)

    def describe(self) -> str:
        """How an error message names the token."""
        if self.kind == "eof":
            return "end of program"
        if self.kind == "str":
            return f'string "{self.value}"'
        return f"'{self.value}'"


class Lexer:
    """Scans ``source`` from :attr:`pos`."""

    def __init__(self, source: str, filename: str = "-e") -> None:
        self.source = source
        self.filename = filename
        self.pos = 0
        if source.startswith("#!"):
            nl = source.find("\n")
            self.pos = len(source) if nl < 0 else nl

    def error(self, message: str, start: int, end: int | None = None) -> ProgramError:
        return ProgramError(message, self.source, start, end, self.filename)

    def skip_space(self) -> None:
        src = self.source
        n = len(src)
        i = self.pos
        while i < n:
            c = src[i]
            if c.isspace():
                i += 1
            elif src.startswith("//", i):
                nl = src.find("\n", i)
                i = n if nl < 0 else nl
            elif src.startswith("/*", i):
                close = src.find("*/", i + 2)
                if close < 0:
                    raise self.error("unterminated comment", i, i + 2)
                i = close + 2
            elif c == "#" and src[src.rfind("\n", 0, i) + 1:i].strip() == "":
                i = self._directive(i)
            else:
                break
        self.pos = i

    def _directive(self, i: int) -> int:
        """A C preprocessor line at ``i``: ``#include`` and conditionals, which only
        bring kernel types for casts, are skipped (their lines as comments); a
        ``#define`` is refused by name. Returns the end of the line."""
        nl = self.source.find("\n", i)
        end = len(self.source) if nl < 0 else nl
        word = _IDENT.match(self.source, i + 1)
        name = word.group() if word else ""
        if name not in PREPROCESSOR_SKIPPED:
            raise self.error(f"the C preprocessor's #{name or '...'} is a bpftrace feature memtrace cannot run "
                             f"(memtrace skips #include and #if/#ifdef/#ifndef/#else/#endif lines)", i, end)
        return end

    def next(self) -> Token:
        """The next token (an ``eof`` token at the end)."""
        self.skip_space()
        src = self.source
        i = self.pos
        if i >= len(src):
            return Token("eof", "", i, i)
        c = src[i]
        # Only ASCII starts a number or a name: str.isdigit() and isalpha() also
        # take '²' or 'é', which the ASCII patterns below would not match.
        if "0" <= c <= "9":
            m = _NUMBER.match(src, i)
            assert m
            end = m.end()
            if end < len(src) and (src[end].isalnum() or src[end] == "_"):
                bad = _IDENT.match(src, end)
                raise self.error("malformed number", i, bad.end() if bad else end + 1)
            text = m.group().replace("_", "").lower()
            # Digits past what 64 bits hold are refused before int() sees them: a
            # 5000-digit literal or 1e999999999 would take seconds and gigabytes.
            if text[:2] == "0x":
                too_long = len(text[2:].lstrip("0")) > 16
            else:
                mant, _, exp = text.partition("e")
                mant = mant.lstrip("0")
                too_long = len(mant) > 20 or bool(mant and len(exp.lstrip("0")) > 2)
            if too_long:
                raise self.error("integer too large for 64 bits", i, end)
            if text[:2] == "0x":
                value = int(text, 16)
            elif "e" in text:
                mant, _, exp = text.partition("e")
                value = int(mant) * 10 ** int(exp)
            else:
                value = int(text)
            if value >= 1 << 64:
                raise self.error("integer too large for 64 bits", i, end)
            self.pos = end
            return Token("int", value, i, end)
        if c == '"':
            return self._string(i)
        if c.isascii() and (c.isalpha() or c == "_"):
            m = _IDENT.match(src, i)
            assert m
            self.pos = m.end()
            return Token("ident", m.group(), i, m.end())
        if c == "@":
            m = _IDENT.match(src, i + 1)
            end = m.end() if m else i + 1
            self.pos = end
            return Token("map", src[i:end], i, end)
        if c == "$":
            m = _IDENT.match(src, i + 1)
            if not m:
                raise self.error("expected a variable name after '$'", i)
            self.pos = m.end()
            return Token("var", src[i:m.end()], i, m.end())
        for op in OPERATORS:
            if src.startswith(op, i):
                self.pos = i + len(op)
                return Token("op", op, i, self.pos)
        if not c.isascii():
            raise self.error(f"unexpected character {c!r} (U+{ord(c):04X}): names and operators are ASCII; "
                             "other characters belong in strings", i)
        raise self.error(f"unexpected character {c!r}", i)

    def _string(self, start: int) -> Token:
        src = self.source
        i = start + 1
        out: list[str] = []
        while True:
            if i >= len(src) or src[i] == "\n":
                raise self.error("unterminated string", start, i)
            c = src[i]
            if c == '"':
                break
            if c == "\\":
                if i + 1 >= len(src):
                    raise self.error("unterminated string", start, i)
                e = src[i + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    i += 2
                    continue
                if e == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", src[i + 2:i + 4]):
                    out.append(chr(int(src[i + 2:i + 4], 16)))
                    i += 4
                    continue
                raise self.error(f"unknown escape '\\{e}'", i, i + 2)
            out.append(c)
            i += 1
        self.pos = i + 1
        return Token("str", "".join(out), start, i + 1)

    def attach_point(self) -> Token:
        """An attach point read raw (``page_*``, ``interval:ms:100``, ``BEGIN``)."""
        self.skip_space()
        m = _ATTACH.match(self.source, self.pos)
        if not m:
            tok = self.next()
            raise self.error(f"expected a probe (a tracepoint, BEGIN, END or interval:...) but found "
                             f"{tok.describe()}", tok.pos, tok.end)
        self.pos = m.end()
        return Token("attach", m.group(), m.start(), m.end())
