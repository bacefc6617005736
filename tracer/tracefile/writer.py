"""The trace writer: a bus consumer recording every batch it sees to a file.

Batches are buffered per tracepoint and written in flush groups (see
:mod:`.format`): a killed recorder loses only the group it was buffering, and a
reader restores the global ``seq`` order by merging within one group.
"""

from __future__ import annotations

import os
import zlib
from types import TracebackType
from typing import Any, BinaryIO

import msgpack

from ..batch import EventBatch, concat
from ..schema import Field, Registry, Tracepoint
from .columns import encode_column
from .format import (
    CHUNK_ZLIB_LEVEL,
    DEFAULT_CHUNK_EVENTS,
    FORMAT_VERSION,
    FRAME_CHUNK,
    FRAME_FOOTER,
    FRAME_HEAD,
    MAGIC,
    canonical,
    frame,
    packb,
)

__all__ = ["TraceWriter"]


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
            "meta": canonical(meta),
            "schemas": [tp.describe() for tp in registry],
        }
        head = MAGIC + frame(FRAME_HEAD, packb(header, "trace meta"))
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
            piece = batch.slice(start, end, copy=not fills)
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
        extra = canonical(extra or {})
        packb(extra, "footer extra")  # refuse bad input before touching the file
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
            self._write(frame(FRAME_FOOTER, packb(footer, "footer extra")))
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
            col = batch.ints(f.name)
            if len(col):
                # max() of a list beats a numpy reduction on the common tiny batch.
                top = int(max(col.tolist()) if len(col) <= 16 else col.max())
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
            frames.append(frame(FRAME_CHUNK, self._encode_chunk(tp_id, batch)))
            self._account(tp_id, batch)
        self._write(b"".join(frames))
        assert self._file is not None
        self._file.flush()
        self._pending.clear()
        self._first_seq.clear()
        self._buffered = 0
        self._group += 1

    def _encode_chunk(self, tp_id: int, batch: EventBatch) -> bytes:
        cols = [encode_column(f, batch.columns[f.name]) for f in batch.tp.all_fields]
        body = {"tp": tp_id, "n": batch.n, "group": self._group, "cols": cols}
        return zlib.compress(msgpack.packb(body, use_bin_type=True), CHUNK_ZLIB_LEVEL)

    def _account(self, tp_id: int, batch: EventBatch) -> None:
        """Update the footer's totals with a written chunk."""
        seq = batch.ints("seq")
        ts = batch.ints("ts_ns")
        last_seq = int(seq.max())
        lo_ts, hi_ts = int(ts.min()), int(ts.max())
        self._counts[tp_id] += batch.n
        self.events_written += batch.n
        self._chunks += 1
        self._last_seq = last_seq if self._last_seq is None else max(self._last_seq, last_seq)
        self._first_ts_ns = lo_ts if self._first_ts_ns is None else min(self._first_ts_ns, lo_ts)
        self._last_ts_ns = hi_ts if self._last_ts_ns is None else max(self._last_ts_ns, hi_ts)

