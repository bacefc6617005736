"""The trace file: a msgpack recording of event batches, and its reader.

A recorder (:class:`TraceWriter`) is a bus consumer that writes every batch it sees
to a ``.mtrace`` file; :class:`TraceReader` streams the batches back, in file order
or in global ``seq`` order, and reads a damaged or truncated file up to what survived.

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

import os
import struct
import zlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO

import msgpack
import numpy as np

from ..errors import TraceFormatError
from .batch import EventBatch, EventRecord, concat
from .schema import COMMON_FIELDS, Field, Registry, Tracepoint

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
_DELTA_WIDTHS = (1, 2, 4, 8)
#: Bytes read at a time while scanning for the next frame after damage, or while
#: checking a long payload's checksum before reading it whole.
_BLOCK_BYTES = 1 << 20


# --------------------------------------------------------------------------- writer


class TraceWriter:
    """Records event batches to a trace file: a bus consumer.

    Attach it with ``bus.attach(writer)``. Batches are buffered per tracepoint and
    written as chunks of at most ``chunk_events`` events, one flush group at a time
    (see the module docstring). Buffered data is copied, so an emitter may reuse its
    arrays after ``emit`` returns. Use it as a context manager, or call :meth:`close`,
    to write the last group and the footer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        registry: Registry,
        meta: dict[str, Any],
        *,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        memtrace_version: str = "0.1.0",
    ) -> None:
        if chunk_events < 1:
            raise ValueError(f"chunk_events must be at least 1, got {chunk_events}")
        if not isinstance(meta, dict):
            raise TypeError(f"trace meta must be a dict, got {type(meta).__name__}")
        self.path = os.fsdecode(path)
        self.registry = registry
        self.chunk_events = chunk_events
        self.events_written = 0
        self._ids: dict[str, tuple[int, Tracepoint]] = {
            tp.name: (i, tp) for i, tp in enumerate(registry)
        }
        self._enums: list[list[Field]] = [
            [f for f in tp.fields if f.type == "enum"] for tp in registry
        ]
        self._pending: dict[int, list[EventBatch]] = {}
        self._first_seq: dict[int, int] = {}
        self._buffered = 0
        self._group = 0
        self._chunks = 0
        self._counts = [0] * len(registry)
        self._last_seq: int | None = None
        self._first_ts_ns: int | None = None
        self._last_ts_ns: int | None = None
        self._bytes = 0
        header = {
            "format_version": list(FORMAT_VERSION),
            "memtrace_version": memtrace_version,
            "created_by": f"memtrace {memtrace_version}",
            "meta": _canonical(meta),
            "schemas": [tp.describe() for tp in registry],
        }
        head = MAGIC + _frame(FRAME_HEAD, _packb(header, "trace meta"))
        # open(path, "wb"), spelt out: the writer keeps the file for its lifetime
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._write(head)
        self._file.flush()

    @property
    def bytes_written(self) -> int:
        """Bytes written to the file so far (magic, header and written groups)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._file is None

    def on_batch(self, batch: EventBatch) -> None:
        """Buffer ``batch``; write a flush group whenever ``chunk_events`` are buffered.

        A batch larger than the room left in the group is split across groups, so
        no chunk exceeds ``chunk_events`` events.
        """
        if self._file is None:
            raise ValueError(f"{self.path}: trace writer is closed")
        tp_id = self._id_of(batch.tp)
        n = batch.n
        if self._enums[tp_id]:
            self._check_enums(batch, self._enums[tp_id])
        start = 0
        while start < n:
            take = min(self.chunk_events - self._buffered, n - start)
            end = start + take
            fills = self._buffered + take >= self.chunk_events
            # A piece that completes the group is encoded before we return, so it
            # needs no copy; a piece left in the buffer must not alias the caller's
            # arrays (kernel state may change after emit).
            piece = _slice(batch, start, end, copy=not fills)
            if tp_id not in self._pending:
                self._pending[tp_id] = []
                self._first_seq[tp_id] = int(piece.columns["seq"][0])
            self._pending[tp_id].append(piece)
            self._buffered += take
            if fills:
                self._write_group()
            start = end

    def flush(self) -> None:
        """Write everything buffered as one flush group and flush the file."""
        if self._file is not None:
            self._write_group()

    def close(self, extra: dict[str, Any] | None = None) -> None:
        """Write the buffered group and the footer (with ``extra``), close the file.

        Closing twice is harmless; the second call does nothing.
        """
        if self._file is None:
            return
        extra = _canonical(extra or {})
        _packb(extra, "footer extra")  # refuse bad input before touching the file
        try:
            self._write_group()
            counts = {
                tp.name: self._counts[i]
                for i, tp in enumerate(self.registry)
                if self._counts[i]
            }
            footer = {
                "counts": counts,
                "total_events": self.events_written,
                "last_seq": self._last_seq,
                "first_ts_ns": self._first_ts_ns,
                "last_ts_ns": self._last_ts_ns,
                "chunks": self._chunks,
                "groups": self._group,
                "extra": extra,
            }
            self._write(_frame(FRAME_FOOTER, _packb(footer, "footer extra")))
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Keep what was recorded even when the recording failed; say so in the footer.
        self.close({"aborted": exc_type.__name__} if exc_type is not None else None)

    # -- internals

    def _id_of(self, tp: Tracepoint) -> int:
        try:
            tp_id, known = self._ids[tp.name]
        except KeyError:
            raise ValueError(
                f"{self.path}: tracepoint {tp.name!r} is not in the writer's registry"
            ) from None
        if tp is not known and tp != known:
            raise ValueError(
                f"{self.path}: tracepoint {tp.name!r} differs from the registry's definition"
            )
        return tp_id

    def _check_enums(self, batch: EventBatch, enums: list[Field]) -> None:
        """ValueError naming the field when an enum code has no name (an emitter bug)."""
        for f in enums:
            col = batch.columns[f.name]
            if len(col):
                # max() of a list beats a numpy reduction on the common tiny batch.
                top = int(max(col.tolist()) if len(col) <= 16 else col.max())  # type: ignore[union-attr]
                if top >= len(f.values):
                    raise ValueError(
                        f"{self.path}: {batch.tp.name}.{f.name}: enum code {top} "
                        f"is not one of 0..{len(f.values) - 1}"
                    )

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._bytes += len(data)

    def _write_group(self) -> None:
        """Write all buffered tracepoints as chunks of one group, in first-seq order."""
        if not self._buffered:
            return
        frames = []
        for tp_id in sorted(self._pending, key=self._first_seq.__getitem__):
            batch = concat(self._pending[tp_id])
            frames.append(_frame(FRAME_CHUNK, self._encode_chunk(tp_id, batch)))
            self._account(tp_id, batch)
        self._write(b"".join(frames))
        assert self._file is not None
        self._file.flush()
        self._pending.clear()
        self._first_seq.clear()
        self._buffered = 0
        self._group += 1

    def _encode_chunk(self, tp_id: int, batch: EventBatch) -> bytes:
        cols = [_encode_column(f, batch.columns[f.name]) for f in batch.tp.all_fields]
        body = {"tp": tp_id, "n": batch.n, "group": self._group, "cols": cols}
        return zlib.compress(msgpack.packb(body, use_bin_type=True), CHUNK_ZLIB_LEVEL)

    def _account(self, tp_id: int, batch: EventBatch) -> None:
        """Update the footer's totals with a written chunk."""
        seq = np.asarray(batch.columns["seq"])
        ts = np.asarray(batch.columns["ts_ns"])
        last_seq = int(seq.max())
        lo_ts, hi_ts = int(ts.min()), int(ts.max())
        self._counts[tp_id] += batch.n
        self.events_written += batch.n
        self._chunks += 1
        self._last_seq = last_seq if self._last_seq is None else max(self._last_seq, last_seq)
        self._first_ts_ns = lo_ts if self._first_ts_ns is None else min(self._first_ts_ns, lo_ts)
        self._last_ts_ns = hi_ts if self._last_ts_ns is None else max(self._last_ts_ns, hi_ts)


def _frame(kind: bytes, body: bytes) -> bytes:
    """One frame: marker, payload length, crc32, then ``kind`` + ``body``."""
    crc = zlib.crc32(body, zlib.crc32(kind))
    return FRAME_HEADER.pack(FRAME_MARKER, len(kind) + len(body), crc) + kind + body


def _packb(obj: Any, what: str) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{what} cannot be written as msgpack: {exc}") from exc


def _canonical(value: Any) -> Any:
    """``value`` with map keys sorted, tuples as lists and numpy scalars as Python's."""
    if isinstance(value, dict):
        items = [(k, _canonical(v)) for k, v in value.items()]
        items.sort(key=lambda kv: (type(kv[0]).__name__, kv[0]))
        return dict(items)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _slice(batch: EventBatch, start: int, end: int, *, copy: bool) -> EventBatch:
    """Events ``start:end`` of ``batch``; with ``copy`` the columns own their data."""
    if start == 0 and end == batch.n and not copy:
        return batch
    cols: dict[str, Any] = {}
    for name, col in batch.columns.items():
        if isinstance(col, np.ndarray):
            part = col[start:end]
            cols[name] = part.copy() if copy else part
        else:
            cols[name] = list(col[start:end])
    return EventBatch(batch.tp, cols)


def _encode_column(f: Field, col: Any) -> dict[str, Any]:
    """One column of a chunk, as the module docstring's ``cols`` entry describes."""
    if f.type == "str":
        values = list(dict.fromkeys(col))
        if len(values) <= 1:
            codes = np.zeros(len(col), dtype="<u4")
        else:
            index = {s: i for i, s in enumerate(values)}
            codes = np.fromiter(map(index.__getitem__, col), dtype="<u4", count=len(col))
        return {"enc": "dict", "values": values, "codes": codes.tobytes()}
    dtype = f.dtype
    assert dtype is not None
    arr = np.asarray(col, dtype=dtype)
    if f.type not in DELTA_TYPES or arr.size == 0:
        return {"enc": "raw", "data": arr.astype(dtype.newbyteorder("<"), copy=False).tobytes()}
    size = dtype.itemsize
    bits = arr.view(f"u{size}")
    # Differences modulo 2**(8*size), read as signed: exact for any values.
    diffs = np.subtract(bits[1:], bits[:-1]).view(f"i{size}")
    width = _narrowest_width(diffs, size)
    return {
        "enc": "delta",
        "first": int(bits[0]),
        "width": width,
        "data": diffs.astype(f"<i{width}", copy=False).tobytes(),
    }


def _narrowest_width(diffs: np.ndarray, size: int) -> int:
    """Fewest bytes (1, 2, 4 or ``size``) holding every signed difference."""
    if diffs.size == 0:
        return 1
    lo, hi = int(diffs.min()), int(diffs.max())
    for width in _DELTA_WIDTHS:
        if width >= size:
            break
        limit = 1 << (8 * width - 1)
        if -limit <= lo and hi < limit:
            return width
    return size


# --------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class Damage:
    """What a damaged or truncated file lost.

    ``offset`` is the byte offset of the first bad or incomplete frame (the file
    size when only the footer is missing); ``chunks_skipped`` counts frames passed
    over after resynchronising (0 when the file just ends); ``events_recovered`` is
    the number of events read in total.
    """

    offset: int
    reason: str
    chunks_skipped: int
    events_recovered: int


@dataclass(frozen=True)
class TraceStats:
    """One full read of a trace file: what :meth:`TraceReader.scan` returns.

    ``counts`` maps tracepoint name to events read (registry order, non-zero only);
    ``duration_ns`` is latest minus earliest event time; ``size_bytes`` is the file
    size; ``chunks`` counts intact chunks read.
    """

    counts: dict[str, int]
    total_events: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    duration_ns: int
    size_bytes: int
    chunks: int
    damage: Damage | None
    footer: dict[str, Any] | None


class _BadChunk(Exception):
    """A checksum-valid chunk whose content does not decode (internal)."""


@dataclass
class _Pass:
    """Bookkeeping of one read through the file."""

    first_offset: int | None = None
    reason: str = ""
    skipped: int = 0
    events: int = 0
    chunks: int = 0
    footer: dict[str, Any] | None = None
    after_footer: bool = False
    size_bytes: int = 0
    counts: dict[int, int] = field(default_factory=dict)


class TraceReader:
    """Reads a trace file written by :class:`TraceWriter`, streaming.

    Opening reads the magic and the header only (raising :class:`TraceFormatError`
    when the file is not a trace, its header is damaged or its format is newer);
    each iteration then reads the file frame by frame, so memory stays bounded by a
    flush group whatever the file size. Damage after the header never raises: the
    reader records it in :attr:`damage` and :attr:`warnings`, skips to the next
    intact frame and goes on. :attr:`footer` is set by a full pass through the file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fsdecode(path)
        self.footer: dict[str, Any] | None = None
        self.damage: Damage | None = None
        self.warnings: list[str] = []
        try:
            with open(self.path, "rb") as f:
                self.header = self._read_header(f)
                self._data_offset = f.tell()
        except IsADirectoryError:
            raise TraceFormatError(f"cannot read trace {self.path}: it is a directory") from None
        except OSError as e:
            raise TraceFormatError(f"cannot read trace {self.path}: {e.strerror or e}") from None
        meta = self.header.get("meta", {})
        if not isinstance(meta, dict):
            raise TraceFormatError(f"{self.path}: header 'meta' is not a map")
        self.meta: dict[str, Any] = meta
        self.registry: Registry = _registry_from_schemas(self.path, self.header["schemas"])
        self._tps: list[Tracepoint] = list(self.registry)
        major, minor = self.header["format_version"]
        if minor > FORMAT_VERSION[1]:
            self._warn(
                f"{self.path}: format {major}.{minor} is newer than this reader's "
                f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}; parts it does not know are ignored"
            )

    # -- public iteration

    def batches(self) -> Iterator[EventBatch]:
        """Every intact chunk as a batch, in file order."""
        for _group, batch in self._chunks(_Pass()):
            yield batch

    def ordered_batches(self) -> Iterator[EventBatch]:
        """Batches in global ``seq`` order: maximal runs of one tracepoint's events.

        Chunks are merged within their flush group only (the writer guarantees that
        groups do not overlap in ``seq``), so memory stays bounded by one group.
        """
        pending: list[EventBatch] = []
        current: int | None = None
        last_seq = -1
        for group, batch in self._chunks(_Pass()):
            if pending and group != current:
                last_seq = yield from self._merge_group(pending, last_seq)
                pending = []
            current = group
            pending.append(batch)
        if pending:
            yield from self._merge_group(pending, last_seq)

    def events(self) -> Iterator[EventRecord]:
        """Every event as a record, in ``seq`` order."""
        for batch in self.ordered_batches():
            yield from batch.records()

    def scan(self) -> TraceStats:
        """Read the whole file once and summarise it (sets footer, damage, warnings)."""
        state = _Pass()
        lo_ts: int | None = None
        hi_ts: int | None = None
        for _group, batch in self._chunks(state):
            ts = batch.columns["ts_ns"]
            lo, hi = int(ts.min()), int(ts.max())  # type: ignore[union-attr]
            lo_ts = lo if lo_ts is None else min(lo_ts, lo)
            hi_ts = hi if hi_ts is None else max(hi_ts, hi)
        counts = {self._tps[i].name: state.counts[i] for i in sorted(state.counts)}
        return TraceStats(
            counts=counts,
            total_events=state.events,
            first_ts_ns=lo_ts,
            last_ts_ns=hi_ts,
            duration_ns=(hi_ts - lo_ts) if lo_ts is not None and hi_ts is not None else 0,
            size_bytes=state.size_bytes,
            chunks=state.chunks,
            damage=self.damage,
            footer=self.footer,
        )

    # -- header

    def _read_header(self, f: BinaryIO) -> dict[str, Any]:
        magic = f.read(len(MAGIC))
        if not magic:
            raise TraceFormatError(f"{self.path}: not a memtrace trace (empty file)")
        if magic != MAGIC:
            raise TraceFormatError(f"{self.path}: not a memtrace trace (bad magic)")
        head = f.read(FRAME_HEADER.size)
        if len(head) < FRAME_HEADER.size:
            raise TraceFormatError(f"{self.path}: header frame truncated at byte {len(MAGIC)}")
        marker, length, crc = FRAME_HEADER.unpack(head)
        if marker != FRAME_MARKER:
            raise TraceFormatError(f"{self.path}: header frame damaged (bad marker)")
        size = os.fstat(f.fileno()).st_size
        if length > size - len(MAGIC) - FRAME_HEADER.size:
            raise TraceFormatError(f"{self.path}: header frame truncated at byte {len(MAGIC)}")
        payload = f.read(length)
        if len(payload) < length:
            raise TraceFormatError(f"{self.path}: header frame truncated at byte {len(MAGIC)}")
        if zlib.crc32(payload) != crc:
            raise TraceFormatError(f"{self.path}: header frame damaged (checksum mismatch)")
        if payload[:1] != FRAME_HEAD:
            raise TraceFormatError(f"{self.path}: first frame is not a header")
        try:
            header = msgpack.unpackb(payload[1:], raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise TraceFormatError(f"{self.path}: header is not valid msgpack ({exc})") from None
        if not isinstance(header, dict):
            raise TraceFormatError(f"{self.path}: header is not a map")
        version = header.get("format_version")
        if (
            not isinstance(version, list)
            or len(version) != 2
            or not all(isinstance(v, int) for v in version)
        ):
            raise TraceFormatError(f"{self.path}: header has no valid format_version")
        major, minor = version
        if major > FORMAT_VERSION[0]:
            raise TraceFormatError(
                f"{self.path}: trace format {major}.{minor} is newer than this memtrace "
                f"reads ({FORMAT_VERSION[0]}.x); upgrade memtrace to read it"
            )
        if major < 1:
            raise TraceFormatError(f"{self.path}: unknown trace format version {major}.{minor}")
        if not isinstance(header.get("schemas"), list):
            raise TraceFormatError(f"{self.path}: header has no tracepoint schemas")
        return header

    # -- frames and chunks

    def _chunks(self, state: _Pass) -> Iterator[tuple[int, EventBatch]]:
        """(group, batch) for every intact chunk, in file order; publishes the pass."""
        with open(self.path, "rb") as f:
            state.size_bytes = os.fstat(f.fileno()).st_size
            for offset, kind, body in self._frames(f, state):
                if kind == FRAME_CHUNK:
                    try:
                        group, tp_id, batch = self._decode_chunk(body)
                    except _BadChunk as exc:
                        self._damaged(state, offset, f"bad chunk: {exc}", 1, offset)
                        continue
                    if state.after_footer:
                        self._warn(f"{self.path}: chunk after the footer at byte {offset}")
                    state.events += batch.n
                    state.chunks += 1
                    state.counts[tp_id] = state.counts.get(tp_id, 0) + batch.n
                    yield group, batch
                elif kind == FRAME_FOOTER:
                    self._read_footer(state, offset, body)
                elif kind == FRAME_HEAD:
                    self._warn(f"{self.path}: second header frame at byte {offset} ignored")
                else:
                    self._warn(
                        f"{self.path}: frame of unknown type {bytes(kind)!r} "
                        f"at byte {offset} ignored"
                    )
        if state.footer is None:
            self._damaged(state, state.size_bytes, "missing footer", 0, None)
        elif state.footer.get("total_events") != state.events:
            self._warn(
                f"{self.path}: the footer counts {state.footer.get('total_events')} events "
                f"but {state.events} were read"
            )
        self.footer = state.footer
        if state.first_offset is not None:
            self.damage = Damage(state.first_offset, state.reason, state.skipped, state.events)

    def _frames(self, f: BinaryIO, state: _Pass) -> Iterator[tuple[int, bytes, memoryview]]:
        """(offset, type, body) of every intact frame after the header."""
        size = state.size_bytes
        pos = self._data_offset
        f.seek(pos)
        while True:
            head = f.read(FRAME_HEADER.size)
            if not head:
                return
            problem = None
            payload = b""
            if len(head) < FRAME_HEADER.size:
                problem = "truncated frame"
            else:
                marker, length, crc = FRAME_HEADER.unpack(head)
                if marker != FRAME_MARKER:
                    problem = "bad marker"
                elif length > size - pos - FRAME_HEADER.size:
                    problem = "truncated frame"
                elif length == 0:
                    problem = "empty frame"
                else:
                    checked = _read_checked(f, length, crc)
                    if checked is None:
                        problem = "checksum mismatch"
                    else:
                        payload = checked
            if problem is None:
                view = memoryview(payload)
                yield pos, payload[:1], view[1:]
                pos += FRAME_HEADER.size + len(payload)
                continue
            resume, invalid = self._resync(f, pos + 1, size)
            if resume is None:
                # Nothing intact follows: a cut file skipped nothing; a damaged last
                # frame is one frame lost.
                lost = 0 if problem == "truncated frame" else 1
            else:
                lost = 1 + invalid
                if problem == "truncated frame":
                    problem = "bad frame length"
            self._damaged(state, pos, problem, lost, resume)
            if resume is None:
                return
            pos = resume
            f.seek(pos)

    def _resync(self, f: BinaryIO, start: int, size: int) -> tuple[int | None, int]:
        """Offset of the next intact frame at or after ``start``, and bad markers seen.

        Scans in blocks of :data:`_BLOCK_BYTES`; a candidate is a marker whose
        frame fits in the file and whose checksum matches.
        """
        # Each block overlaps the next by 3 bytes: a marker starting in this block is
        # found whole here, and one starting in the overlap is found in the next block.
        overlap = len(FRAME_MARKER) - 1
        invalid = 0
        pos = start
        while pos < size:
            f.seek(pos)
            block = f.read(_BLOCK_BYTES + overlap)
            i = block.find(FRAME_MARKER)
            while i != -1:
                if _frame_ok_at(f, pos + i, size):
                    return pos + i, invalid
                invalid += 1
                i = block.find(FRAME_MARKER, i + 1)
            if len(block) <= _BLOCK_BYTES:
                break
            pos += _BLOCK_BYTES
        return None, invalid

    def _damaged(
        self, state: _Pass, offset: int, reason: str, lost: int, resume: int | None
    ) -> None:
        """Record damage at ``offset`` and warn about it."""
        if state.first_offset is None:
            state.first_offset = offset
            state.reason = reason
        state.skipped += lost
        self.damage = Damage(state.first_offset, state.reason, state.skipped, state.events)
        if reason == "missing footer":
            msg = (
                f"{self.path}: no footer: the recording did not finish (recorder killed?); "
                f"read {state.events} events from {state.chunks} chunks"
            )
        elif resume is None:
            msg = f"{self.path}: {reason} at byte {offset}; the rest of the file is unreadable"
        elif resume == offset:
            msg = f"{self.path}: {reason} at byte {offset}; chunk skipped"
        else:
            msg = (
                f"{self.path}: {reason} at byte {offset}; resumed at byte {resume} "
                f"({lost} frame(s) skipped)"
            )
        self._warn(msg)

    def _warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def _read_footer(self, state: _Pass, offset: int, body: memoryview) -> None:
        try:
            footer = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            footer = None
        if not isinstance(footer, dict):
            self._warn(f"{self.path}: unreadable footer at byte {offset} ignored")
            return
        state.footer = footer
        state.after_footer = True

    def _decode_chunk(self, body: memoryview) -> tuple[int, int, EventBatch]:
        """(group, tracepoint id, batch) of a chunk body; :class:`_BadChunk` says what is wrong."""
        try:
            chunk = msgpack.unpackb(zlib.decompress(body), raw=False)
        except (zlib.error, ValueError, TypeError, msgpack.UnpackException) as exc:
            raise _BadChunk(f"does not decode ({exc})") from None
        if not isinstance(chunk, dict):
            raise _BadChunk("not a map")
        tp_id, n, group, cols = (chunk.get(k) for k in ("tp", "n", "group", "cols"))
        if not isinstance(tp_id, int) or not 0 <= tp_id < len(self._tps):
            raise _BadChunk(f"unknown tracepoint id {tp_id!r}")
        if not isinstance(n, int) or n < 0 or not isinstance(group, int):
            raise _BadChunk("bad event count or group")
        tp = self._tps[tp_id]
        fields = tp.all_fields
        if not isinstance(cols, list) or len(cols) != len(fields):
            raise _BadChunk(f"{tp.name}: {len(fields)} columns expected")
        columns: dict[str, Any] = {}
        for f, entry in zip(fields, cols, strict=True):
            try:
                columns[f.name] = _decode_column(f, entry, n)
            except (KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
                raise _BadChunk(f"{tp.name}.{f.name}: {exc}") from None
        return group, tp_id, EventBatch(tp, columns)

    # -- merging

    def _merge_group(
        self, chunks: Sequence[EventBatch], last_seq: int
    ) -> Generator[EventBatch, None, int]:
        """Yield one group's events in seq order as maximal one-tracepoint runs.

        Returns the greatest seq of the group, to check that groups do not overlap.
        """
        by_tp: dict[str, list[EventBatch]] = {}
        for b in chunks:
            by_tp.setdefault(b.tp.name, []).append(b)
        merged = [concat(parts) for parts in by_tp.values()]
        seqs = [np.asarray(m.columns["seq"]) for m in merged]
        increasing = all(s.size < 2 or bool(np.all(s[1:] > s[:-1])) for s in seqs)
        all_seq = np.concatenate(seqs)
        group_min = int(all_seq.min())
        group_max = int(all_seq.max())
        if group_min <= last_seq:
            self._warn(
                f"{self.path}: flush groups overlap in seq (at seq {group_min}); "
                "events are in order within each group only"
            )
        if len(merged) == 1 and increasing:
            yield merged[0]
            return max(last_seq, group_max)
        sizes = np.array([m.n for m in merged])
        owner = np.repeat(np.arange(len(merged)), sizes)
        starts_of = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        local = np.arange(all_seq.size) - starts_of[owner]
        order = np.argsort(all_seq, kind="stable")
        run_owner = owner[order]
        bounds = np.flatnonzero(run_owner[1:] != run_owner[:-1]) + 1
        run_starts = np.concatenate(([0], bounds))
        run_ends = np.concatenate((bounds, [all_seq.size]))
        if increasing:
            # Each tracepoint's events appear in local order, so a run is a slice.
            firsts = local[order[run_starts]]
            for who, lo, a, b in zip(
                run_owner[run_starts].tolist(),
                firsts.tolist(),
                run_starts.tolist(),
                run_ends.tolist(),
                strict=True,
            ):
                m = merged[who]
                yield m if b - a == m.n else _slice(m, lo, lo + (b - a), copy=False)
        else:
            for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
                m = merged[int(run_owner[a])]
                yield _take(m, local[order[a:b]])
        return max(last_seq, group_max)


def _frame_ok_at(f: BinaryIO, offset: int, size: int) -> bool:
    """True when an intact frame (marker, fitting length, matching crc) is at ``offset``."""
    f.seek(offset)
    head = f.read(FRAME_HEADER.size)
    if len(head) < FRAME_HEADER.size:
        return False
    marker, length, crc = FRAME_HEADER.unpack(head)
    if marker != FRAME_MARKER or length == 0 or length > size - offset - FRAME_HEADER.size:
        return False
    return _read_checked(f, length, crc) is not None


def _read_checked(f: BinaryIO, length: int, crc: int) -> bytes | None:
    """The next ``length`` bytes of ``f`` if their crc32 is ``crc``, else None.

    A payload longer than one block is checked block by block before it is read
    whole, so a damaged length field cannot make the reader load the rest of the file.
    """
    if length <= _BLOCK_BYTES:
        payload = f.read(length)
        return payload if len(payload) == length and zlib.crc32(payload) == crc else None
    start = f.tell()
    running = 0
    left = length
    while left:
        block = f.read(min(left, _BLOCK_BYTES))
        if not block:
            return None
        running = zlib.crc32(block, running)
        left -= len(block)
    if running != crc:
        return None
    f.seek(start)
    payload = f.read(length)
    return payload if len(payload) == length else None


def _decode_column(f: Field, entry: Any, n: int) -> Any:
    """A column of ``n`` values from its ``cols`` entry; ValueError when malformed."""
    if not isinstance(entry, dict):
        raise ValueError("column entry is not a map")
    enc = entry["enc"]
    if f.type == "str":
        if enc != "dict":
            raise ValueError(f"str column stored as {enc!r}")
        values = entry["values"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("dictionary is not a list of strings")
        codes = _frombuffer(entry["codes"], np.dtype("<u4"), n)
        if n == 0:
            return []
        if int(codes.max()) >= len(values):
            raise ValueError("string code out of range")
        table = np.empty(len(values), dtype=object)
        table[:] = values
        return table[codes].tolist()
    dtype = f.dtype
    assert dtype is not None
    size = dtype.itemsize
    if enc == "raw":
        col = _frombuffer(entry["data"], dtype.newbyteorder("<"), n).astype(dtype)
    elif enc == "delta":
        width = entry["width"]
        if width not in _DELTA_WIDTHS or width > size or f.type in ("bool", "enum"):
            raise ValueError(f"bad delta width {width!r}")
        if n == 0:
            return np.empty(0, dtype=dtype)
        diffs = _frombuffer(entry["data"], np.dtype(f"<i{width}"), n - 1)
        unsigned = np.dtype(f"u{size}")
        out = np.empty(n, dtype=unsigned)
        out[0] = entry["first"]
        out[1:] = diffs.astype(f"i{size}").view(unsigned)
        np.cumsum(out, dtype=unsigned, out=out)
        col = out.view(dtype)
    else:
        raise ValueError(f"unknown column encoding {enc!r}")
    if f.type == "enum" and n and int(col.max()) >= len(f.values):
        raise ValueError("enum code out of range")
    if f.type == "bool" and n and int(col.view(np.uint8).max()) > 1:
        raise ValueError("bool value not 0 or 1")
    return col


def _frombuffer(data: Any, dtype: np.dtype, count: int) -> np.ndarray:
    if not isinstance(data, bytes) or len(data) != count * dtype.itemsize:
        raise ValueError(f"expected {count} values of {dtype.itemsize} bytes")
    return np.frombuffer(data, dtype=dtype)


def _take(batch: EventBatch, idx: np.ndarray) -> EventBatch:
    """The events at positions ``idx`` of ``batch``, as a new batch."""
    cols: dict[str, Any] = {}
    positions = idx.tolist()
    for name, col in batch.columns.items():
        cols[name] = col[idx] if isinstance(col, np.ndarray) else [col[i] for i in positions]
    return EventBatch(batch.tp, cols)


def _registry_from_schemas(path: str, schemas: list[Any]) -> Registry:
    """The registry a file's header describes; TraceFormatError when malformed."""
    common = [(f.name, f.type) for f in COMMON_FIELDS]
    tps = []
    for i, d in enumerate(schemas):
        try:
            fields = tuple(
                Field(
                    fd["name"],
                    fd["type"],
                    fd.get("doc", ""),
                    unit=fd.get("unit", ""),
                    values=tuple(fd.get("values", ())),
                )
                for fd in d["fields"]
            )
            if [(f.name, f.type) for f in fields[: len(common)]] != common:
                raise ValueError("does not start with the common fields seq, ts_ns, pid")
            own = fields[len(common) :]
            tps.append(Tracepoint(d["name"], d.get("doc", ""), own, kernel=d.get("kernel", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TraceFormatError(f"{path}: bad tracepoint schema #{i} in header: {exc}") from None
    try:
        return Registry(tps)
    except ValueError as exc:
        raise TraceFormatError(f"{path}: bad tracepoint schemas in header: {exc}") from None
