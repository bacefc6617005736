"""msgpack read within bounds: the reader's decoder for values it does not trust.

``msgpack.unpackb`` builds whatever a buffer describes, and Python objects are far
larger than their msgpack bytes: an empty map is one byte and 64 bytes of Python, a
short string three bytes and fifty. A crafted header or chunk can therefore turn a
few megabytes into gigabytes before any check runs. This module reads msgpack one
value at a time from a :class:`Cursor`, so the caller sees every length before
anything is built for it:

- :func:`decode_plain` decodes a header or footer into plain data (maps with text
  keys, arrays, text, integers, booleans, nil, finite floats), counting every value
  against a budget and bounding the nesting; a value of another kind (bytes, an
  extension type, a timestamp, a map key that is not text, NaN) or nested too deep is
  left out and named in a *problem*, so the rest stays readable;
- :class:`Cursor` reads the fixed shape of a chunk body (see
  :mod:`.reader`): its typed reads return ``None`` when the next value is of
  another kind, and ``bin`` payloads come back as zero-copy views.

Malformed input (cut short, a reserved type byte, a budget exceeded) raises
:class:`UnpackError`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cursor", "Plain", "UnpackError", "decode_plain"]


class UnpackError(ValueError):
    """msgpack data that is malformed or beyond a bound."""


_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_INTS: dict[int, struct.Struct] = {
    0xCC: struct.Struct(">B"), 0xCD: struct.Struct(">H"), 0xCE: struct.Struct(">I"), 0xCF: struct.Struct(">Q"),
    0xD0: struct.Struct(">b"), 0xD1: struct.Struct(">h"), 0xD2: struct.Struct(">i"), 0xD3: struct.Struct(">q"),
}
#: fixext type bytes -> data length
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def kind_of(byte: int) -> str:
    """The kind of the msgpack value whose first byte is ``byte``: int, str, bin,
    map, array, nil, bool, float, ext or bad (0xc1, never used)."""
    if byte <= 0x7F or byte >= 0xE0 or 0xCC <= byte <= 0xD3:
        return "int"
    if byte <= 0x8F or byte in (0xDE, 0xDF):
        return "map"
    if byte <= 0x9F or byte in (0xDC, 0xDD):
        return "array"
    if byte <= 0xBF or 0xD9 <= byte <= 0xDB:
        return "str"
    if byte == 0xC0:
        return "nil"
    if byte in (0xC2, 0xC3):
        return "bool"
    if 0xC4 <= byte <= 0xC6:
        return "bin"
    if byte in (0xCA, 0xCB):
        return "float"
    if 0xC7 <= byte <= 0xC9 or 0xD4 <= byte <= 0xD8:
        return "ext"
    return "bad"


class Cursor:
    """Reads msgpack values from ``buf`` one at a time, from :attr:`pos`.

    A typed read (``read_int``, ``read_text``, ``read_bin``, ``map_header``, ``array_header``)
    consumes the value and returns it when the next value is of that kind, and
    returns None without moving otherwise. Lengths are checked against the bytes
    left before anything is sliced: :class:`UnpackError` when they run past the end.
    """

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, bytes) else memoryview(buf)
        self.pos = 0
        self.end = len(self.buf)

    @property
    def at_end(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> int:
        """The type byte of the next value."""
        if self.pos >= self.end:
            raise UnpackError("msgpack data ends early")
        return self.buf[self.pos]

    def kind(self) -> str:
        """The kind of the next value (see :func:`kind_of`)."""
        return kind_of(self.peek())

    def _take(self, size: int) -> memoryview:
        start = self.pos
        if size > self.end - start:
            raise UnpackError("msgpack data ends early")
        self.pos = start + size
        return self.buf[start:self.pos]

    def _length(self, width: int) -> int:
        if width == 1:
            return int(self._take(1)[0])
        return int((_U16 if width == 2 else _U32).unpack(self._take(width))[0])

    def read_int(self) -> int | None:
        b = self.peek()
        if b <= 0x7F:
            self.pos += 1
            return b
        if b >= 0xE0:
            self.pos += 1
            return b - 0x100
        fmt = _INTS.get(b)
        if fmt is None:
            return None
        self.pos += 1
        value: int = fmt.unpack(self._take(fmt.size))[0]
        return value

    def _str_length(self) -> int | None:
        b = self.peek()
        if 0xA0 <= b <= 0xBF:
            self.pos += 1
            return b & 0x1F
        if 0xD9 <= b <= 0xDB:
            self.pos += 1
            return self._length(1 << (b - 0xD9))
        return None

    def read_text(self) -> str | None:
        """The next value as text; UnpackError when it is not valid UTF-8."""
        size = self._str_length()
        if size is None:
            return None
        raw = self._take(size)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise UnpackError("text that is not UTF-8") from None

    def read_bin(self) -> memoryview | None:
        """The next value's bytes, as a view of the buffer (no copy)."""
        b = self.peek()
        if not 0xC4 <= b <= 0xC6:
            return None
        self.pos += 1
        return self._take(self._length(1 << (b - 0xC4)))

    def map_header(self) -> int | None:
        b = self.peek()
        if 0x80 <= b <= 0x8F:
            self.pos += 1
            return b & 0x0F
        if b in (0xDE, 0xDF):
            self.pos += 1
            return self._length(2 if b == 0xDE else 4)
        return None

    def array_header(self) -> int | None:
        b = self.peek()
        if 0x90 <= b <= 0x9F:
            self.pos += 1
            return b & 0x0F
        if b in (0xDC, 0xDD):
            self.pos += 1
            return self._length(2 if b == 0xDC else 4)
        return None

    def scalar(self) -> Any:
        """The next value when it is nil, a bool or a float; UnpackError otherwise."""
        b = self.peek()
        if b == 0xC0:
            self.pos += 1
            return None
        if b in (0xC2, 0xC3):
            self.pos += 1
            return b == 0xC3
        if b in (0xCA, 0xCB):
            self.pos += 1
            fmt = _F32 if b == 0xCA else _F64
            value: float = fmt.unpack(self._take(fmt.size))[0]
            return value
        raise UnpackError(f"unexpected msgpack type byte 0x{b:02x}")

    def read_ext(self) -> tuple[int, memoryview] | None:
        """The next value's extension type and data (a timestamp is type -1)."""
        b = self.peek()
        if b in _FIXEXT:
            self.pos += 1
            size = _FIXEXT[b]
        elif 0xC7 <= b <= 0xC9:
            self.pos += 1
            size = self._length(1 << (b - 0xC7))
        else:
            return None
        code = self._take(1)[0]
        return (code - 0x100 if code >= 0x80 else code), self._take(size)

    def skip(self) -> int:
        """Skip the next value whatever it holds, building nothing; returns how many
        values it held (itself included). Iterative: any nesting is fine."""
        pending = 1
        count = 0
        while pending:
            pending -= 1
            count += 1
            kind = self.kind()
            if kind == "map":
                n = self.map_header()
                assert n is not None
                pending += 2 * n
            elif kind == "array":
                n = self.array_header()
                assert n is not None
                pending += n
            elif kind == "int":
                self.read_int()
            elif kind == "str":
                size = self._str_length()
                assert size is not None
                self._take(size)
            elif kind == "bin":
                self.read_bin()
            elif kind == "ext":
                self.read_ext()
            else:
                self.scalar()
        return count


def _describe(kind: str, data: bytes | memoryview | None = None, code: int = 0) -> str:
    """How a problem names a value left out: ``b'abc' (bytes)``."""
    if kind == "bin" and data is not None:
        text = repr(bytes(data[:24]))
        return f"{text}{'...' if len(data) > 24 else ''} (bytes, not text)"
    if kind == "ext":
        return "a msgpack timestamp" if code == -1 else f"a msgpack extension value (type {code})"
    return {"map": "a map", "array": "an array"}.get(kind, kind)


@dataclass
class Plain:
    """What :func:`decode_plain` found: the value, and what it left out (``problems``,
    each ``"PATH is WHAT"``), in the order met."""

    value: Any
    problems: list[str] = field(default_factory=list)


#: Longest path a problem names in full; a longer one keeps its two ends.
_PATH_SHOWN = 60


def _shown(path: str) -> str:
    """``path`` as a problem names it: at most about :data:`_PATH_SHOWN` characters."""
    if len(path) <= _PATH_SHOWN:
        return path
    half = _PATH_SHOWN // 2
    return f"{path[:half]}...{path[-half:]}"


class _PlainDecoder:
    def __init__(self, cursor: Cursor, max_values: int, max_depth: int) -> None:
        self.cur = cursor
        self.left = max_values
        self.max_values = max_values
        self.max_depth = max_depth
        self.problems: list[str] = []

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise UnpackError(f"more than {self.max_values:,} values")

    def value(self, path: str, depth: int) -> tuple[bool, Any]:
        """(kept, value) of the next value; a value left out is skipped and named."""
        cur = self.cur
        kind = cur.kind()
        if kind in ("map", "array") and depth >= self.max_depth:
            self.spend(cur.skip())
            self.problems.append(f"{_shown(path)} nests deeper than {self.max_depth} levels")
            return False, None
        self.spend(1)
        if kind == "map":
            n = cur.map_header()
            assert n is not None
            out: dict[str, Any] = {}
            for _ in range(n):
                key_kind = cur.kind()
                key = cur.read_text() if key_kind == "str" else None
                if key is None:
                    self.spend(cur.skip() + cur.skip())
                    self.problems.append(f"{_shown(path)} has a key that is {_describe(key_kind)}, not text")
                    continue
                self.spend(1)
                kept, item = self.value(f"{path}.{key}" if path else key, depth + 1)
                if kept:
                    out[key] = item
            return True, out
        if kind == "array":
            n = cur.array_header()
            assert n is not None
            items: list[Any] = []
            for i in range(n):
                kept, item = self.value(f"{path}[{i}]", depth + 1)
                if kept:
                    items.append(item)
            return True, items
        if kind == "int":
            return True, cur.read_int()
        if kind == "str":
            return True, cur.read_text()
        if kind == "bin":
            data = cur.read_bin()
            self.problems.append(f"{_shown(path)} is {_describe('bin', data)}")
            return False, None
        if kind == "ext":
            ext = cur.read_ext()
            assert ext is not None
            self.problems.append(f"{_shown(path)} is {_describe('ext', code=ext[0])}")
            return False, None
        scalar = cur.scalar()
        if isinstance(scalar, float) and not math.isfinite(scalar):
            self.problems.append(f"{_shown(path)} is {scalar!r}, not a finite number")
            return False, None
        return True, scalar


def decode_plain(data: bytes | memoryview, *, max_values: int, max_depth: int, path: str = "") -> Plain:
    """Decode one msgpack value, the whole of ``data``, into plain data.

    At most ``max_values`` values are decoded (UnpackError beyond), maps and arrays
    at most ``max_depth`` deep (deeper ones are left out); what is left out is named
    in :attr:`Plain.problems` by its path from ``path`` (``meta.machine.ram_bytes``).
    """
    cur = Cursor(data)
    dec = _PlainDecoder(cur, max_values, max_depth)
    kept, value = dec.value(path, 0)
    if not cur.at_end:
        raise UnpackError(f"{cur.end - cur.pos} bytes after the value")
    return Plain(value if kept else None, dec.problems)
