"""The trace reader: batches streamed back from a file, damage recorded, not raised.

Opening reads the magic and the header; each iteration then reads the file frame
by frame, so memory stays bounded by one flush group whatever the file size. A
bad or missing frame after the header is skipped: the reader resynchronises on
the next intact frame (marker, fitting length, matching checksum), records what
was lost in :class:`Damage` and a warning, and goes on.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgpack
import numpy as np

from memtrace.errors import NotATraceError, TraceFormatError

from ..batch import EventBatch, EventRecord, concat
from ..schema import Registry, Tracepoint
from .columns import decode_column
from .format import (
    FORMAT_VERSION,
    FRAME_CHUNK,
    FRAME_FOOTER,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_MARKER,
    MAGIC,
    registry_from_schemas,
)

__all__ = ["Damage", "TraceReader", "TraceStats"]

#: Bytes read at a time while scanning for the next frame after damage, or while
#: checking a long payload's checksum before reading it whole.
_BLOCK_BYTES = 1 << 20


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
        self.registry: Registry = registry_from_schemas(self.path, self.header["schemas"])
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

    def ordered_batches(self, skip: Collection[str] = (),
                        skipped: Callable[[EventBatch], None] | None = None) -> Iterator[EventBatch]:
        """Batches in global ``seq`` order: maximal runs of one tracepoint's events.

        Chunks are merged within their flush group only (the writer guarantees that
        groups do not overlap in ``seq``), so memory stays bounded by one group.
        The events of the tracepoints named in ``skip`` are left out (the runs of
        the others are then as long as those events no longer cut them); each of
        their chunks goes to ``skipped``, if given, in file order, as it is read.
        """
        pending: list[EventBatch] = []
        current: int | None = None
        last_seq = -1
        for group, batch in self._chunks(_Pass()):
            if skip and batch.tp.name in skip:
                if skipped is not None:
                    skipped(batch)
                continue
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
            ts = batch.ints("ts_ns")
            lo, hi = int(ts.min()), int(ts.max())
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
            raise NotATraceError(f"{self.path}: not a memtrace trace (empty file)")
        if magic != MAGIC:
            raise NotATraceError(f"{self.path}: not a memtrace trace (bad magic)")
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
                columns[f.name] = decode_column(f, entry, n)
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
                yield m.slice(lo, lo + (b - a))
        else:
            for a, b in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
                m = merged[int(run_owner[a])]
                yield m.take(local[order[a:b]])
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

