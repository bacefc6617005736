"""The trace reader: batches streamed back from a file, damage recorded, not raised.

Opening reads the magic and the header; each iteration then reads the file frame
by frame, so memory stays bounded by one flush group whatever the file size. A
bad or missing frame after the header is skipped: the reader resynchronises on
the next intact frame (marker, fitting length, matching checksum), records what
was lost in :class:`Damage` and a warning, and goes on.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from memtrace.errors import LimitError, NotATraceError, TraceFormatError

from ..batch import EventBatch, EventRecord, concat
from ..meta import TraceFooter, TraceMeta, check_footer, check_meta
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
    row_bytes,
)
from .limits import (
    MAX_CHUNK_DECODED_BYTES,
    MAX_CHUNK_EVENTS,
    MAX_CHUNK_INFLATED_BYTES,
    MAX_FRAME_BYTES,
    MAX_GROUP_BYTES,
    MAX_GROUP_EVENTS,
    MAX_HEADER_BYTES,
    MAX_META_DEPTH,
    MAX_META_VALUES,
    MAX_RUNS,
    STR_VALUE_OVERHEAD_BYTES,
)
from .unpack import Cursor, UnpackError, decode_plain

#: What each pass read and what it skipped (the CLI shows it with -v).
_log = logging.getLogger(__name__)

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
    size; ``chunks`` counts intact chunks read. ``complete`` is true when the file
    holds the whole recording: a footer of a recording that finished, no damage,
    and as many events as the footer counts; ``aborted`` is the reason an
    interrupted recording gave (see :attr:`TraceReader.aborted`).
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
    complete: bool = False
    aborted: str | None = None


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
    footer_info: TraceFooter | None = None
    footer_offset: int = 0
    after_footer: bool = False
    size_bytes: int = 0
    counts: dict[int, int] = field(default_factory=dict)


#: Inflated bytes read first from a chunk, enough for the writer's ``tp``, ``n``
#: and ``group`` (about 40 bytes), to bound the rest by what ``n`` events need.
_CHUNK_PREFIX_BYTES = 64
#: Inflated bytes a chunk may take besides its columns' data: the map keys, the
#: encodings and the delta columns' first values and widths (about 45 per column).
_CHUNK_KEY_BYTES = 64
#: Problems of a header or footer named one by one in warnings; the rest are counted.
_PROBLEMS_SHOWN = 5


class TraceReader:
    """Reads a trace file written by :class:`TraceWriter`, streaming.

    Opening reads the magic and the header only (raising :class:`TraceFormatError`
    when the file is not a trace, its header is damaged, beyond a bound of
    :mod:`.limits` or its format is newer); each iteration then reads the file frame
    by frame, so memory stays bounded by a flush group whatever the file size.
    Damage after the header never raises: the reader records it in :attr:`damage`
    and :attr:`warnings`, skips to the next intact frame and goes on. :attr:`footer`,
    :attr:`aborted` and :attr:`complete` are set by a full pass through the file.

    The header is checked once, here: :attr:`meta` is its ``meta`` map as plain
    data with every value of a wrong kind removed (with a warning), and
    :attr:`trace_meta` the same as a typed :class:`~memtrace.tracer.meta.TraceMeta`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fsdecode(path)
        self.footer: dict[str, Any] | None = None
        #: the checked footer of the last full pass (None: no footer read)
        self.trace_footer: TraceFooter | None = None
        self.damage: Damage | None = None
        self.warnings: list[str] = []
        #: True after a full pass found the whole recording (see :class:`TraceStats`)
        self.complete = False
        try:
            with open(self.path, "rb") as f:
                header = self._read_header(f)
                self._data_offset = f.tell()
        except IsADirectoryError:
            raise TraceFormatError(f"cannot read trace {self.path}: it is a directory") from None
        except OSError as e:
            raise TraceFormatError(f"cannot read trace {self.path}: {e.strerror or e}") from None
        meta = header.get("meta", {})
        if not isinstance(meta, dict):
            self._warn("trace header: meta is not a map: ignored")
            meta = {}
        header_warnings: list[str] = []
        self.trace_meta: TraceMeta
        self.trace_meta, self.meta = check_meta(meta, header_warnings)
        for w in header_warnings:
            # As the analyses word theirs ("trace header: meta.machine is ..."), so
            # one problem reads the same whoever finds it.
            self._warn(w)
        self.registry: Registry = registry_from_schemas(self.path, header.get("schemas"))
        self._tps: list[Tracepoint] = list(self.registry)
        self._row_bytes = [row_bytes(tp) for tp in self._tps]
        self._has_str = [any(f.type == "str" for f in tp.all_fields) for tp in self._tps]
        self.header: dict[str, Any] = {
            **{k: v for k, v in header.items() if k not in ("meta", "schemas")},
            "meta": self.meta,
            "schemas": [tp.describe() for tp in self._tps],
        }
        major, minor = header["format_version"]
        if minor > FORMAT_VERSION[1]:
            self._warn(
                f"{self.path}: format {major}.{minor} is newer than this reader's "
                f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}; parts it does not know are ignored"
            )

    @property
    def aborted(self) -> str | None:
        """Why the recording stopped early, from its footer (the exception's class
        name, such as ``KeyboardInterrupt``, or ``aborted``); None when it finished
        or no footer was read. Set by a full pass."""
        return self.trace_footer.aborted if self.trace_footer is not None else None

    # -- public iteration

    def batches(self) -> Iterator[EventBatch]:
        """Every intact chunk as a batch, in file order."""
        for _group, batch, _nbytes in self._chunks(_Pass()):
            yield batch

    def ordered_batches(self, skip: Collection[str] = (),
                        skipped: Callable[[EventBatch], None] | None = None, *,
                        commute: Mapping[str, int] | None = None, until_ts: int | None = None,
                        max_runs: int = MAX_RUNS) -> Iterator[EventBatch]:
        """Batches in global ``seq`` order: maximal runs of one tracepoint's events.

        Chunks are merged within their flush group only (the writer guarantees that
        groups do not overlap in ``seq``), so memory stays bounded by one group. A
        group larger than :data:`~.limits.MAX_GROUP_EVENTS` events or
        :data:`~.limits.MAX_GROUP_BYTES` (a file whose chunks all claim one group) is
        merged in parts of that size, with a warning: each part is in ``seq``
        order, the parts follow the file's order. The events of the tracepoints
        named in ``skip`` are left out (the runs of the others are then as long as
        those events no longer cut them); each of their chunks goes to ``skipped``,
        if given, in file order, as it is read.

        ``commute`` lets a consumer say whose order it does not need: tracepoint ->
        class. Between two events of tracepoints outside it (ordered ones), the
        events of each class come together, the classes in the order of their first
        event there; within a class, and against every ordered event, ``seq`` order
        is kept. A consumer whose handlers of two classes touch disjoint state gets
        the same result with far fewer batches: two tracepoints alternating event by
        event come as two batches per group, not one per event.

        ``until_ts`` ends the pass at the first event, in ``seq`` order, later than
        that time (ns): it and every event after it are left out, so that a consumer
        that folds up to a time may take the others by ``commute`` class.

        :class:`~memtrace.errors.LimitError` once more than ``max_runs`` batches
        were delivered (:data:`~.limits.MAX_RUNS`): a consumer pays for each.
        """
        runs = _Runs(self.path, max_runs, until_ts)
        pending: list[EventBatch] = []
        pending_events = pending_bytes = 0
        current: int | None = None
        last_seq = -1
        split = False  # the current group is being merged in parts
        for group, batch, nbytes in self._chunks(_Pass()):
            if skip and batch.tp.name in skip:
                if skipped is not None:
                    skipped(batch)
                continue
            if pending and group != current:
                last_seq = yield from self._merge_group(pending, last_seq, runs, commute, check=not split)
                if runs.ended:
                    return
                pending, pending_events, pending_bytes, split = [], 0, 0, False
            elif pending and (pending_events + batch.n > MAX_GROUP_EVENTS
                              or pending_bytes + nbytes > MAX_GROUP_BYTES):
                self._warn(
                    f"{self.path}: flush group {group} holds more than {MAX_GROUP_EVENTS:,} events or "
                    f"{MAX_GROUP_BYTES >> 20} MiB: merged in parts, in seq order within each part only"
                )
                last_seq = yield from self._merge_group(pending, last_seq, runs, commute, check=not split)
                if runs.ended:
                    return
                pending, pending_events, pending_bytes, split = [], 0, 0, True
            current = group
            pending.append(batch)
            pending_events += batch.n
            pending_bytes += nbytes
        if pending:
            yield from self._merge_group(pending, last_seq, runs, commute, check=not split)

    def events(self) -> Iterator[EventRecord]:
        """Every event as a record, in ``seq`` order."""
        for batch in self.ordered_batches():
            yield from batch.records()

    def scan(self) -> TraceStats:
        """Read the whole file once and summarise it (sets footer, damage, warnings)."""
        state = _Pass()
        lo_ts: int | None = None
        hi_ts: int | None = None
        for _group, batch, _nbytes in self._chunks(state):
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
            complete=self.complete,
            aborted=self.aborted,
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
        if length > MAX_HEADER_BYTES:
            raise TraceFormatError(f"{self.path}: header frame of {length:,} bytes is larger than the "
                                   f"{MAX_HEADER_BYTES >> 20} MiB a trace header may hold")
        payload = f.read(length)
        if len(payload) < length:
            raise TraceFormatError(f"{self.path}: header frame truncated at byte {len(MAGIC)}")
        if zlib.crc32(payload) != crc:
            raise TraceFormatError(f"{self.path}: header frame damaged (checksum mismatch)")
        if payload[:1] != FRAME_HEAD:
            raise TraceFormatError(f"{self.path}: first frame is not a header")
        try:
            plain = decode_plain(memoryview(payload)[1:], max_values=MAX_META_VALUES, max_depth=MAX_META_DEPTH)
        except UnpackError as exc:
            raise TraceFormatError(f"{self.path}: header is not valid msgpack ({exc})") from None
        header = plain.value
        if not isinstance(header, dict):
            raise TraceFormatError(f"{self.path}: header is not a map")
        self._problems("trace header", plain.problems)
        version = header.get("format_version")
        if (
            not isinstance(version, list)
            or len(version) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32 for v in version)
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
        for key in ("memtrace_version", "created_by"):
            value = header.get(key)
            if value is not None and not (isinstance(value, str) and len(value) <= 256):
                self._warn(f"trace header: {key} is not text of at most 256 characters: ignored")
                del header[key]
        return header

    def _problems(self, where: str, problems: Sequence[str]) -> None:
        """Warn about values a header or footer decode left out (a few by name)."""
        for p in problems[:_PROBLEMS_SHOWN]:
            self._warn(f"{where}: {p}: ignored")
        if len(problems) > _PROBLEMS_SHOWN:
            self._warn(f"{where}: {len(problems) - _PROBLEMS_SHOWN:,} more values of a wrong kind ignored")

    # -- frames and chunks

    def _chunks(self, state: _Pass) -> Iterator[tuple[int, EventBatch, int]]:
        """(group, batch, decoded bytes) for every intact chunk, in file order;
        publishes the pass (and logs it: -v)."""
        t0 = time.perf_counter()
        with open(self.path, "rb") as f:
            state.size_bytes = os.fstat(f.fileno()).st_size
            for offset, kind, body in self._frames(f, state):
                if kind == FRAME_CHUNK:
                    try:
                        group, tp_id, batch, nbytes = self._decode_chunk(body)
                    except _BadChunk as exc:
                        self._damaged(state, offset, f"bad chunk: {exc}", 1, offset)
                        continue
                    if state.after_footer:
                        self._warn(f"{self.path}: chunk after the footer at byte {offset}")
                    state.events += batch.n
                    state.chunks += 1
                    state.counts[tp_id] = state.counts.get(tp_id, 0) + batch.n
                    yield group, batch, nbytes
                elif kind == FRAME_FOOTER:
                    self._read_footer(state, offset, body)
                elif kind == FRAME_HEAD:
                    self._warn(f"{self.path}: second header frame at byte {offset} ignored")
                else:
                    self._warn(
                        f"{self.path}: frame of unknown type {bytes(kind)!r} "
                        f"at byte {offset} ignored"
                    )
        info = state.footer_info
        if state.footer is None or info is None:
            self._damaged(state, state.size_bytes, "missing footer", 0, None)
        else:
            if info.total_events != state.events:
                self._warn(
                    f"{self.path}: the footer counts {info.total_events} events "
                    f"but {state.events} were read"
                )
            if info.aborted is not None:
                self._damaged(state, state.footer_offset, f"recording aborted ({info.aborted})", 0, None)
        self.footer = state.footer
        self.trace_footer = info
        if state.first_offset is not None:
            self.damage = Damage(state.first_offset, state.reason, state.skipped, state.events)
        self.complete = (state.first_offset is None and info is not None and info.aborted is None
                         and info.total_events == state.events)
        _log.info("trace read", extra={
            "trace": self.path, "events": state.events, "chunks": state.chunks, "size_bytes": state.size_bytes,
            "frames_skipped": state.skipped, "complete": self.complete,
            "seconds": round(time.perf_counter() - t0, 3)})

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
                elif length > MAX_FRAME_BYTES:
                    problem = "frame too long"
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
        """Record damage at ``offset``, warn about it and log it (-v)."""
        _log.info("damage skipped", extra={"trace": self.path, "offset": offset, "reason": reason,
                                            "frames_lost": lost, "resumed_at": resume})
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
        elif reason.startswith("recording aborted"):
            msg = (
                f"{self.path}: the recording was {reason.removeprefix('recording ')}: "
                f"the trace holds what it recorded until then, {state.events} events"
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
        """Decode and check a footer frame (bounded as the header is)."""
        try:
            plain = decode_plain(body, max_values=MAX_META_VALUES, max_depth=MAX_META_DEPTH)
        except UnpackError:
            plain = None
        if plain is None or not isinstance(plain.value, dict):
            self._warn(f"{self.path}: unreadable footer at byte {offset} ignored")
            return
        where = f"{self.path}: footer at byte {offset}"
        self._problems(where, plain.problems)
        checks: list[str] = []
        info, footer = check_footer(plain.value, checks, where)
        for w in checks:
            self._warn(w)
        state.footer = footer
        state.footer_info = info
        state.footer_offset = offset
        state.after_footer = True

    def _decode_chunk(self, body: memoryview) -> tuple[int, int, EventBatch, int]:
        """(group, tracepoint id, batch, decoded bytes) of a chunk body;
        :class:`_BadChunk` says what is wrong.

        Nothing is allocated before it is checked against :mod:`.limits`: the
        inflation stops at what the chunk's declared events need (or at
        :data:`~.limits.MAX_CHUNK_INFLATED_BYTES`), and the body is read value by
        value (:class:`~.unpack.Cursor`): ``tp`` and ``n`` come before ``cols`` (the
        writer's order), so every column is checked against them before it is read.
        """
        data = self._inflate(body)
        cur = Cursor(data)
        try:
            nkeys = cur.map_header()
            if nkeys is None:
                raise _BadChunk("not a map")
            found: dict[str, int] = {}
            entries: list[dict[str, Any]] | None = None
            nbytes = 0
            for _ in range(nkeys):
                key = cur.read_text()
                if key in ("tp", "n", "group"):
                    value = cur.read_int()
                    if value is None:
                        raise _BadChunk(f"{key} is not an integer")
                    found[key] = value
                elif key == "cols":
                    if "tp" not in found or "n" not in found:
                        raise _BadChunk("cols come before tp and n")
                    tp_id, n = self._check_counts(found["tp"], found["n"])
                    entries, nbytes = self._read_columns(cur, self._tps[tp_id], n)
                elif key is None:
                    raise _BadChunk("a map key is not text")
                else:
                    cur.skip()  # a key of a newer minor version
            if not cur.at_end:
                raise _BadChunk(f"{cur.end - cur.pos} bytes after the chunk's map")
        except UnpackError as exc:
            raise _BadChunk(f"does not decode ({exc})") from None
        if entries is None or "group" not in found:
            raise _BadChunk("no " + ("cols" if entries is None else "group"))
        # The inflated body is let go before the columns are made: holding both
        # doubles what each chunk costs (and costs page faults in malloc).
        del cur, data
        tp = self._tps[found["tp"]]
        n = found["n"]
        columns: dict[str, Any] = {}
        for f, entry in zip(tp.all_fields, entries, strict=True):
            try:
                columns[f.name] = decode_column(f, entry, n)
            except (KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
                raise _BadChunk(f"{tp.name}.{f.name}: {exc}") from None
        return found["group"], found["tp"], EventBatch(tp, columns), nbytes

    def _check_counts(self, tp_id: int, n: int) -> tuple[int, int]:
        """``tp_id`` and ``n`` when they index a tracepoint and fit the bounds."""
        if not 0 <= tp_id < len(self._tps):
            raise _BadChunk(f"unknown tracepoint id {tp_id!r}")
        if not 0 <= n <= MAX_CHUNK_EVENTS:
            raise _BadChunk(f"event count {n:,} is outside 0..{MAX_CHUNK_EVENTS:,}")
        if n * self._row_bytes[tp_id] > MAX_CHUNK_DECODED_BYTES:
            raise _BadChunk(f"{n:,} events of {self._tps[tp_id].name} would take more than the "
                            f"{MAX_CHUNK_DECODED_BYTES >> 20} MiB a chunk may decode to")
        return tp_id, n

    def _inflate(self, body: memoryview) -> bytes:
        """The chunk body inflated, at most what its declared events need.

        The first bytes give ``tp`` and ``n`` (the writer puts them first); a
        tracepoint without ``str`` fields then needs at most ``n`` times its field
        widths plus the keys, and inflation stops there. Otherwise (strings, or keys
        in another order) it stops at :data:`~.limits.MAX_CHUNK_INFLATED_BYTES`.
        """
        try:
            declared = _declared(zlib.decompressobj().decompress(body, _CHUNK_PREFIX_BYTES))
            cap = MAX_CHUNK_INFLATED_BYTES
            if declared is not None:
                tp_id, n = self._check_counts(*declared)
                if not self._has_str[tp_id]:
                    nfields = len(self._tps[tp_id].all_fields)
                    cap = min(cap, _CHUNK_KEY_BYTES * (nfields + 1) + n * self._row_bytes[tp_id])
            d = zlib.decompressobj()
            data = d.decompress(body, cap + 1)
        except zlib.error as exc:
            raise _BadChunk(f"does not decode ({exc})") from None
        if len(data) > cap or d.unconsumed_tail:
            raise _BadChunk(f"inflates to more than the {cap:,} bytes its events need")
        if not d.eof:
            raise _BadChunk("does not decode (incomplete zlib stream)")
        return data

    def _read_columns(self, cur: Cursor, tp: Tracepoint, n: int) -> tuple[list[dict[str, Any]], int]:
        """The entries of the ``cols`` array of a chunk of ``n`` events of ``tp``
        (``bin`` values copied out of the chunk), and the chunk's decoded bytes."""
        fields = tp.all_fields
        ncols = cur.array_header()
        if ncols != len(fields):
            raise _BadChunk(f"{tp.name}: {len(fields)} columns expected")
        budget = MAX_CHUNK_DECODED_BYTES - n * row_bytes(tp)
        entries: list[dict[str, Any]] = []
        for f in fields:
            entry: dict[str, Any] = {}
            nkeys = cur.map_header()
            if nkeys is None:
                raise _BadChunk(f"{tp.name}.{f.name}: column entry is not a map")
            for _ in range(nkeys):
                key = cur.read_text()
                if key in ("enc", "data", "codes", "first", "width"):
                    value: Any
                    if key == "enc":
                        value = cur.read_text()
                    elif key in ("data", "codes"):
                        # A copy: numpy reads an aligned buffer faster than a view
                        # at an odd offset of the chunk.
                        view = cur.read_bin()
                        value = bytes(view) if view is not None else None
                    else:
                        value = cur.read_int()
                    if value is None:
                        cur.skip()  # of the wrong kind: decode_column says so
                    entry[key] = value
                elif key == "values":
                    count = cur.array_header()
                    if count is None or count > n:
                        raise _BadChunk(f"{tp.name}.{f.name}: dictionary of {count} strings for {n} events")
                    values = []
                    for _ in range(count):
                        start = cur.pos
                        text = cur.read_text()
                        if text is None:
                            raise _BadChunk(f"{tp.name}.{f.name}: dictionary is not a list of strings")
                        budget -= STR_VALUE_OVERHEAD_BYTES + cur.pos - start
                        values.append(text)
                    if budget < 0:
                        raise _BadChunk(f"{tp.name}.{f.name}: strings beyond the "
                                        f"{MAX_CHUNK_DECODED_BYTES >> 20} MiB a chunk may decode to")
                    entry[key] = values
                elif key is None:
                    raise _BadChunk(f"{tp.name}.{f.name}: a column key is not text")
                else:
                    cur.skip()
            entries.append(entry)
        return entries, MAX_CHUNK_DECODED_BYTES - budget

    # -- merging

    def _merge_group(
        self, chunks: Sequence[EventBatch], last_seq: int, runs: _Runs, commute: Mapping[str, int] | None, *,
        check: bool = True
    ) -> Generator[EventBatch, None, int]:
        """Yield one group's events in seq order as maximal one-tracepoint runs
        (regrouped by ``commute``, see :meth:`ordered_batches`).

        Returns the greatest seq of the group, to check that groups do not overlap
        (unless ``check`` is off: the parts of an oversized group, already warned of).
        """
        by_tp: dict[str, list[EventBatch]] = {}
        for b in chunks:
            by_tp.setdefault(b.tp.name, []).append(b)
        merged = [concat(parts) for parts in by_tp.values()]
        seqs = [np.asarray(m.columns["seq"]) for m in merged]
        all_seq = np.concatenate(seqs)
        if runs.until_ts is not None:
            late = np.concatenate([m.ints("ts_ns") for m in merged]) > runs.until_ts
            if late.any():
                # The pass ends at the group's first late event in seq order.
                runs.ended = True
                cut = all_seq[late].min()
                merged = [m.select(s < cut) for m, s in zip(merged, seqs, strict=True)]
                merged = [m for m in merged if m.n]
                if not merged:
                    return last_seq
                seqs = [np.asarray(m.columns["seq"]) for m in merged]
                all_seq = np.concatenate(seqs)
        increasing = all(s.size < 2 or bool(np.all(s[1:] > s[:-1])) for s in seqs)
        group_min = int(all_seq.min())
        group_max = int(all_seq.max())
        if check and group_min <= last_seq:
            self._warn(
                f"{self.path}: flush groups overlap in seq (at seq {group_min}); "
                "events are in order within each group only"
            )
        if len(merged) == 1 and increasing:
            runs.count(1)
            yield merged[0]
            return max(last_seq, group_max)
        if commute and increasing:
            labels = [commute.get(m.tp.name, -1) for m in merged]
            if min(labels) >= 0 and len(set(labels)) == len(labels):
                # Every tracepoint commutes with every other here: a batch each, in
                # the order of their first events.
                runs.count(len(merged))
                for i in sorted(range(len(merged)), key=lambda i: int(seqs[i][0]) if len(seqs[i]) else -1):
                    yield merged[i]
                return max(last_seq, group_max)
        sizes = np.array([m.n for m in merged])
        owner = np.repeat(np.arange(len(merged)), sizes)
        starts_of = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        local = np.arange(all_seq.size) - starts_of[owner]
        order = np.argsort(all_seq, kind="stable")
        run_owner = owner[order]
        if commute and np.count_nonzero(run_owner[1:] != run_owner[:-1]) >= _REGROUP_RUNS:
            classes = np.array([commute.get(m.tp.name, -1) for m in merged], dtype=np.int64)
            if (classes >= 0).any():
                regroup = _regroup(run_owner, classes)
                order, run_owner = order[regroup], run_owner[regroup]
        bounds = np.flatnonzero(run_owner[1:] != run_owner[:-1]) + 1
        run_starts = np.concatenate(([0], bounds))
        run_ends = np.concatenate((bounds, [all_seq.size]))
        runs.count(len(run_starts))
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


#: Fewer runs than this in a group are delivered as they are, commute or not: the
#: regrouping costs more than it saves (a writer's group of a recording is a few
#: dozen runs; the consumer's result is the same either way).
_REGROUP_RUNS = 256


class _Runs:
    """The batches one ``ordered_batches`` pass delivered, against its bound, and
    where the pass ends (``until_ts``)."""

    def __init__(self, path: str, limit: int, until_ts: int | None = None) -> None:
        self.path = path
        self.limit = limit
        self.n = 0
        #: ``ordered_batches``' until_ts, and whether the pass reached it
        self.until_ts = until_ts
        self.ended = False

    def count(self, n: int) -> None:
        """Count ``n`` more batches; LimitError beyond the bound (before any is
        delivered: the consumer stops at a group's edge)."""
        self.n += n
        if self.n > self.limit:
            raise LimitError(
                f"{self.path}: its events change tracepoint more than {self.limit:,} times in seq order "
                f"(each run is a batch a command handles on its own, so this would take too long); "
                "read it with 'memtrace stat', or split the recording"
            )


def _regroup(run_owner: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The permutation of one group's events (given in ``seq`` order by the index of
    their tracepoint, ``run_owner``) that brings each commuting class's events
    together between two ordered events (``classes[tp]`` < 0: ordered).

    A segment is either a run of one ordered tracepoint or a stretch of commuting
    events between two ordered ones. A block is one class's events in one segment
    (an ordered segment is one block); blocks come in the order of their first
    event, and each block's events in ``seq`` order. So each tracepoint's events
    stay in ``seq`` order, and every run is still a slice of its tracepoint's batch.
    A counting sort, class by class: no comparison sort of the group.
    """
    n = len(run_owner)  # at most MAX_GROUP_EVENTS: int32 counts (numpy's int32 cumsum is the fast one)
    pos = np.arange(n, dtype=np.int32)
    cls = classes[run_owner]
    ordered = cls < 0
    if not ordered.any():
        # One segment: a block per class, in the order of their first events.
        blocks = [np.flatnonzero(cls == c) for c in np.flatnonzero(np.bincount(cls)).tolist()]
        blocks.sort(key=lambda b: int(b[0]))
        return np.concatenate(blocks)
    cut = np.ones(n, dtype=bool)
    cut[1:] = (ordered[1:] | ordered[:-1]) & ((run_owner[1:] != run_owner[:-1]) | (ordered[1:] != ordered[:-1]))
    segment = np.cumsum(cut, dtype=np.int32)  # 1-based
    first = np.empty(n, dtype=np.int32)  # the position of the first event of each event's block
    rank = np.empty(n, dtype=np.int32)  # each event's place in its block
    # Ordered blocks are contiguous: a block starts where its segment does.
    seg_start = np.flatnonzero(cut).astype(np.int32)[segment - 1]
    first[ordered] = seg_start[ordered]
    rank[ordered] = pos[ordered] - seg_start[ordered]
    for c in np.flatnonzero(np.bincount(cls[~ordered])).tolist():
        idx = np.flatnonzero(cls == c).astype(np.int32)
        seg = segment[idx]
        starts = np.ones(len(idx), dtype=bool)
        starts[1:] = seg[1:] != seg[:-1]
        block_start = np.flatnonzero(starts).astype(np.int32)[np.cumsum(starts, dtype=np.int32) - 1]
        first[idx] = idx[block_start]
        rank[idx] = np.arange(len(idx), dtype=np.int32) - block_start
    size = np.bincount(first, minlength=n).astype(np.int32)
    offset = np.cumsum(size, dtype=np.int32) - size
    regroup = np.empty(n, dtype=np.intp)
    regroup[offset[first] + rank] = pos
    return regroup


def _frame_ok_at(f: BinaryIO, offset: int, size: int) -> bool:
    """True when an intact frame (marker, fitting length, matching crc) is at ``offset``."""
    f.seek(offset)
    head = f.read(FRAME_HEADER.size)
    if len(head) < FRAME_HEADER.size:
        return False
    marker, length, crc = FRAME_HEADER.unpack(head)
    if (marker != FRAME_MARKER or length == 0 or length > size - offset - FRAME_HEADER.size
            or length > MAX_FRAME_BYTES):
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



def _declared(head: bytes) -> tuple[int, int] | None:
    """``(tp, n)`` from the first inflated bytes of a chunk, when they come before
    ``cols`` there (the writer's order); None otherwise."""
    cur = Cursor(head)
    found: dict[str, int] = {}
    try:
        nkeys = cur.map_header()
        for _ in range(min(nkeys or 0, 3)):
            key = cur.read_text()
            if key not in ("tp", "n", "group"):
                break
            value = cur.read_int()
            if value is None:
                break
            found[key] = value
    except UnpackError:
        pass
    if "tp" in found and "n" in found:
        return found["tp"], found["n"]
    return None
