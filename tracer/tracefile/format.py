"""The trace file format: its framing, constants and header, byte by byte.

A recorder (:class:`~.writer.TraceWriter`) is a bus consumer that writes every
batch it sees to a ``.mtrace`` file; :class:`~.reader.TraceReader` streams the
batches back, in file order or in global ``seq`` order, and reads a damaged or
truncated file up to what survived. This module holds what both agree on; the
full specification is ``docs/trace-format.md``.

File layout, byte by byte
=========================

All integers in the framing are little-endian; ``u32`` is 4 bytes unsigned.

::

    offset 0   8 bytes   magic  b"\\x89MTRACE\\n"  (89 4d 54 52 41 43 45 0a)
    offset 8   frame     the header (type H), always the first frame
               frame     chunks (type C), zero or more
               frame     the footer (type F), written by close(); absent when the
                         recorder was killed (the file is then "truncated")

Every frame::

    4 bytes   marker  b"MTCK"
    4 bytes   u32     payload length in bytes (L)
    4 bytes   u32     zlib.crc32 of the L payload bytes
    L bytes   payload: byte 0 is the frame type (b"H", b"C" or b"F"), then the body

The marker and checksum let a reader find the next intact frame after damage.

Header body (type ``H``): a msgpack map, uncompressed, keys in this order:

- ``format_version``: ``[major, minor]``, now ``[1, 0]``. A reader refuses a newer
  major; a newer minor may add map keys and frame types, which readers ignore.
- ``memtrace_version``: str, the memtrace that wrote the file.
- ``created_by``: str, ``"memtrace <version>"``.
- ``meta``: the caller's map (machine, sysctls, workload, seed, scenario ...), with
  every map's keys sorted and tuples written as arrays, so equal input gives equal bytes.
- ``schemas``: an array, in registry id order, of ``Tracepoint.describe()`` maps
  (``name``, ``doc``, ``kernel``, ``fields``: every field including the common
  ``seq ts_ns pid``, each ``name type doc [unit] [values]``). The reader rebuilds
  its :class:`~.schema.Registry` from these, so a file reads without the current
  tracepoint definitions.

Chunk body (type ``C``): zlib-compressed (level :data:`CHUNK_ZLIB_LEVEL`) msgpack map
of one tracepoint's events as columns:

- ``tp``: int, registry id of the tracepoint (index into ``schemas``).
- ``n``: int, number of events.
- ``group``: int, flush group number (see below).
- ``cols``: array with one entry per field, in schema order (``seq ts_ns pid ...``).
  Each entry is a map whose ``enc`` says how the column is stored:

  - ``{"enc": "raw", "data": bin}``: ``n`` values as little-endian bytes of the
    field's dtype (u8 u16 u32 u64 i32 i64; ``bool`` one byte 0/1; ``enum`` a u8 code
    into the field's ``values``).
  - ``{"enc": "delta", "first": int, "width": w, "data": bin}``: an integer column
    as its first value (``first``, the value's bits read as unsigned of the field's
    width) and ``n - 1`` differences ``v[i] - v[i-1]``, computed modulo 2**bits of
    the field's width (so exactly reversible, whatever the values), read as signed
    and stored in ``w`` bytes (1, 2, 4 or 8: the narrowest that holds every
    difference) as little-endian signed integers. Decoding: prefix sum modulo
    2**bits. The writer delta-encodes u32, u64, i32 and i64 fields (so ``seq``,
    ``ts_ns`` and ``pid`` always); the reader honours whatever each entry says.
  - ``{"enc": "dict", "values": [str, ...], "codes": bin}``: a ``str`` column as its
    distinct strings in first-seen order and ``n`` little-endian u32 codes into them.

Footer body (type ``F``): a msgpack map, uncompressed: ``counts`` (events per
tracepoint name, in registry order, tracepoints with events only), ``total_events``,
``last_seq`` (greatest seq, or nil), ``first_ts_ns``/``last_ts_ns`` (earliest and
latest event time in ns, or nil), ``chunks``, ``groups``, and ``extra`` (the map
passed to :meth:`TraceWriter.close`, keys sorted).

Flush groups
============

The writer buffers batches per tracepoint. When the buffered events reach
``chunk_events`` (or on :meth:`TraceWriter.flush` / :meth:`TraceWriter.close`), it
writes every buffered tracepoint as one chunk, in order of each one's first ``seq``,
all with the same ``group`` number, then flushes the file and starts the next group.
The bus numbers events in emission order, so every event of group g has a smaller
``seq`` than every event of group g+1: a reader restores the global order by merging
within one group only, and a chunk holds at most ``chunk_events`` events. A killed
recorder loses only the group it was buffering.
"""
from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from memtrace.errors import TraceFormatError

from ..meta import value_desc
from ..schema import COMMON_FIELDS, FIELD_TYPES, Field, Registry, Tracepoint
from .limits import MAX_ENUM_VALUES, MAX_FIELDS, MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_TRACEPOINTS

__all__ = [
    "CHUNK_ZLIB_LEVEL",
    "DEFAULT_CHUNK_EVENTS",
    "DELTA_TYPES",
    "FORMAT_VERSION",
    "FRAME_CHUNK",
    "FRAME_FOOTER",
    "FRAME_HEAD",
    "FRAME_HEADER",
    "FRAME_MARKER",
    "MAGIC",
    "canonical",
    "frame",
    "packb",
    "registry_from_schemas",
    "row_bytes",
]

#: First 8 bytes of every trace file. The 0x89 byte and the newline catch text-mode
#: and 7-bit transfers, as PNG's signature does.
MAGIC = b"\x89MTRACE\n"
#: Start of every frame.
FRAME_MARKER = b"MTCK"
#: Format version this module writes, ``(major, minor)``.
FORMAT_VERSION = (1, 0)
#: zlib level for chunk bodies. Level 1 (deflate's fast path): chunk bodies are
#: mostly narrow, near-constant deltas, where higher levels shrink the output only a
#: little (they find the same long runs) but cost several times the CPU; a recorder
#: must keep up with the simulated kernel.
CHUNK_ZLIB_LEVEL = 1
#: Events buffered before a flush group is written, unless the caller says otherwise.
DEFAULT_CHUNK_EVENTS = 65536

FRAME_HEADER = struct.Struct("<4sII")  # marker, payload length, crc32
FRAME_HEAD = b"H"
FRAME_CHUNK = b"C"
FRAME_FOOTER = b"F"

#: Field types the writer stores as deltas; the others are stored raw.
DELTA_TYPES = frozenset({"u32", "u64", "i32", "i64"})


def frame(kind: bytes, body: bytes) -> bytes:
    """One frame: marker, payload length, crc32, then ``kind`` + ``body``."""
    crc = zlib.crc32(body, zlib.crc32(kind))
    return FRAME_HEADER.pack(FRAME_MARKER, len(kind) + len(body), crc) + kind + body


def packb(obj: Any, what: str) -> bytes:
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
        return packed
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{what} cannot be written as msgpack: {exc}") from exc


def canonical(value: Any) -> Any:
    """``value`` with map keys sorted, tuples as lists and numpy scalars as Python's."""
    if isinstance(value, dict):
        items = [(k, canonical(v)) for k, v in value.items()]
        items.sort(key=lambda kv: (type(kv[0]).__name__, kv[0]))
        return dict(items)
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def row_bytes(tp: Tracepoint) -> int:
    """Bytes one event of ``tp`` takes decoded: each field's width, 8 for a ``str``
    field (a list slot; its distinct strings are counted apart)."""
    return sum(f.dtype.itemsize if f.dtype is not None else 8 for f in tp.all_fields)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text(d: Mapping[str, Any], key: str, max_chars: int, required: bool = False) -> str:
    """``d[key]`` as checked text ('' when absent and not required); ValueError says why."""
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} is {value_desc(value)}, not text")
    if len(value) > max_chars:
        raise ValueError(f"{key} is {len(value):,} characters long, more than {max_chars:,}")
    return value


def _name(d: Mapping[str, Any], what: str) -> str:
    name = _text(d, "name", MAX_NAME_CHARS, required=True)
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} name {name!r} is not a name (letters, digits and _)")
    return name


def _field(fd: Any, i: int) -> Field:
    """The :class:`Field` a schema's field entry describes; ValueError says why not."""
    if not isinstance(fd, Mapping):
        raise ValueError(f"field #{i} is {value_desc(fd)}, not a map")
    name = _name(fd, "field")
    try:
        ftype = _text(fd, "type", MAX_NAME_CHARS, required=True)
        if ftype not in FIELD_TYPES:
            raise ValueError(f"type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
        values = fd.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) and len(v) <= MAX_NAME_CHARS for v in values):
            raise ValueError("values is not a list of names")
        if len(values) > MAX_ENUM_VALUES:
            raise ValueError(f"{len(values):,} enum values, more than the {MAX_ENUM_VALUES} a u8 code names")
        return Field(name, ftype, _text(fd, "doc", MAX_TEXT_CHARS), unit=_text(fd, "unit", MAX_NAME_CHARS),
                     values=tuple(values))
    except ValueError as exc:
        raise ValueError(f"field {name!r}: {exc}") from None


def _tracepoint(d: Any) -> Tracepoint:
    if not isinstance(d, Mapping):
        raise ValueError(f"{value_desc(d)}, not a map")
    name = _name(d, "tracepoint")
    try:
        fds = d.get("fields")
        if not isinstance(fds, list):
            raise ValueError("fields is not a list")
        if len(fds) > MAX_FIELDS:
            raise ValueError(f"{len(fds):,} fields, more than {MAX_FIELDS}")
        fields = tuple(_field(fd, i) for i, fd in enumerate(fds))
        common = [(f.name, f.type) for f in COMMON_FIELDS]
        if [(f.name, f.type) for f in fields[: len(common)]] != common:
            raise ValueError("its fields do not start with the common fields seq (u64), ts_ns (u64), pid (i32)")
        return Tracepoint(name, _text(d, "doc", MAX_TEXT_CHARS), fields[len(common):],
                          kernel=_text(d, "kernel", MAX_TEXT_CHARS))
    except ValueError as exc:
        raise ValueError(f"({name}): {exc}") from None


def registry_from_schemas(path: str, schemas: Any) -> Registry:
    """The registry a file's header describes, every value checked (names are names,
    types are known types, enum values are names, bounded counts and lengths);
    TraceFormatError names the schema and what is wrong otherwise."""
    if not isinstance(schemas, list):
        raise TraceFormatError(f"{path}: header has no tracepoint schemas")
    if len(schemas) > MAX_TRACEPOINTS:
        raise TraceFormatError(f"{path}: header has {len(schemas):,} tracepoint schemas, more than the "
                               f"{MAX_TRACEPOINTS:,} a trace may hold")
    tps = []
    for i, d in enumerate(schemas):
        try:
            tps.append(_tracepoint(d))
        except ValueError as exc:
            raise TraceFormatError(f"{path}: bad tracepoint schema #{i} in header: {exc}") from None
    try:
        return Registry(tps)
    except ValueError as exc:
        raise TraceFormatError(f"{path}: bad tracepoint schemas in header: {exc}") from None
