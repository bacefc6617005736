"""The trace writer: a bus consumer recording every batch it sees to a file.

Batches are buffered per tracepoint and written in flush groups (see
:mod:`.format`): a killed recorder loses only the group it was buffering, and a
reader restores the global ``seq`` order by merging within one group.
"""

from __future__ import annotations

import os
import sys
import zlib
from types import TracebackType
from typing import Any, BinaryIO, cast

import msgpack

from memtrace.errors import LimitError, OutputError
from memtrace.safewrite import SafeOutput

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
    row_bytes,
)
from .limits import (
    MAX_CHUNK_DECODED_BYTES,
    MAX_CHUNK_EVENTS,
    MAX_CHUNK_INFLATED_BYTES,
    MAX_HEADER_BYTES,
    STR_VALUE_OVERHEAD_BYTES,
)

__all__ = ["TraceWriter", "trace_head"]


def trace_head(registry: Registry, meta: dict[str, Any], memtrace_version: str, path: str) -> bytes:
    """The magic and the header frame of a trace of ``registry``'s tracepoints with
    ``meta`` (what :class:`TraceWriter` writes first; the importer writes it last, in
    front of the events). A LimitError names ``path`` when the header is too large."""
    header = {
        "format_version": list(FORMAT_VERSION),
        "memtrace_version": memtrace_version,
        "created_by": f"memtrace {memtrace_version}",
        "meta": canonical(meta),
        "schemas": [tp.describe() for tp in registry],
    }
    packed = packb(header, "trace meta")
    if len(packed) + 1 > MAX_HEADER_BYTES:
        raise LimitError(f"{path}: a trace header of {len(packed) + 1:,} bytes is larger than the "
                         f"{MAX_HEADER_BYTES >> 20} MiB a trace may hold (the workload is too large to record)")
    return MAGIC + frame(FRAME_HEAD, packed)


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
        head = trace_head(registry, meta, memtrace_version, self.path)
        # memtrace.safewrite: a new file is written in place (created exclusively, so
        # a killed recorder leaves it readable up to its last group); a file already
        # there is replaced only when close() ends a run that was not aborted.
        self._out = SafeOutput(path, in_place_if_new=True, kind="trace")
        file = cast(BinaryIO, self._out.file)
        self._file: BinaryIO | None = file
        try:
            self._write(head)
            file.flush()
        except BaseException:
            self.discard()
            raise

    @property
    def bytes_written(self) -> int:
        """Bytes written to the file so far (magic, header and written groups)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._file is None

    @property
    def written_path(self) -> str:
        """Where the bytes go until :meth:`close`: the target when written in place,
        else a temporary file beside it (see :mod:`memtrace.safewrite`)."""
        return self._out.path

    def discard(self) -> None:
        """Remove what was written (a failed run's file; a file this writer was
        to replace is left as it was). Works before and after :meth:`close`."""
        self._file = None
        self._out.discard()

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

    def close(self, extra: dict[str, Any] | None = None, *, aborted: bool | str | None = None) -> None:
        """Write the buffered group and the footer (with ``extra``), close the file.

        ``aborted`` says the recording stopped early: True, or the reason (an
        exception's class name); the footer then says ``aborted: true``, with the
        reason in ``extra.aborted``, and every reader reports the trace incomplete.
        None (the default) means: aborted when ``close`` is called while an
        exception propagates (from a ``finally`` block, or an ``except`` block that
        re-raises), with that exception's class name: a recorder that closes the
        writer in a ``finally`` marks a run interrupted by Ctrl-C without saying so.
        Closing twice is harmless; the second call does nothing.

        The file is then fsynced and, when it replaces an existing file, renamed over
        it (:mod:`memtrace.safewrite`); an aborted file that was to replace another is
        removed instead, and one written in place is kept. An error while writing
        the last group or the footer removes the file.
        """
        if self._file is None:
            return
        if aborted is None:
            pending = sys.exc_info()[1]
            aborted = type(pending).__name__ if pending is not None else False
        extra = canonical(extra or {})
        if aborted:
            extra = {**extra, "aborted": aborted if isinstance(aborted, str) else "aborted"}
            extra = dict(sorted(extra.items()))
        packb(extra, "footer extra")  # refuse bad input before touching the file
        try:
            self._write_group()
            counts = {
                tp.name: self._counts[i]
                for i, tp in enumerate(self.registry)
                if self._counts[i]
            }
            footer: dict[str, Any] = {
                "counts": counts,
                "total_events": self.events_written,
                "last_seq": self._last_seq,
                "first_ts_ns": self._first_ts_ns,
                "last_ts_ns": self._last_ts_ns,
                "chunks": self._chunks,
                "groups": self._group,
                "extra": extra,
            }
            if aborted:
                footer["aborted"] = True
            self._write(frame(FRAME_FOOTER, packb(footer, "footer extra")))
        except BaseException:
            self.discard()
            raise
        self._file = None
        if aborted:
            # Interrupted: a file written in place keeps what was recorded (its footer
            # says aborted); a file that was to replace another is removed.
            self._out.abandon()
        else:
            self._out.commit()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Keep what was recorded even when the recording failed; say so in the footer.
        self.close(aborted=exc_type.__name__ if exc_type is not None else False)

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
        try:
            self._file.write(data)
        except OSError as e:
            raise OutputError(f"cannot write trace {self.path}: {e.strerror or e}") from None
        self._bytes += len(data)

    def _write_group(self) -> None:
        """Write all buffered tracepoints as chunks of one group, in first-seq order.

        The buffer is taken over before anything is written, so an exception in the
        middle (Ctrl-C) loses the group rather than writing it twice at ``close``.
        """
        if not self._buffered:
            return
        pending, self._pending = self._pending, {}
        first_seq, self._first_seq = self._first_seq, {}
        self._buffered = 0
        group = self._group
        self._group += 1
        frames = []
        written: list[tuple[int, EventBatch]] = []
        for tp_id in sorted(pending, key=first_seq.__getitem__):
            batch = concat(pending[tp_id])
            for body in self._encode_chunks(tp_id, batch, group):
                frames.append(frame(FRAME_CHUNK, body))
            written.append((tp_id, batch))
        self._write(b"".join(frames))
        for tp_id, batch in written:
            self._account(tp_id, batch)
        self._chunks += len(frames)
        assert self._file is not None
        try:
            self._file.flush()
        except OSError as e:
            raise OutputError(f"cannot write trace {self.path}: {e.strerror or e}") from None

    def _encode_chunks(self, tp_id: int, batch: EventBatch, group: int) -> list[bytes]:
        """Chunk bodies of ``batch``: one, or as many as keep each inside what a reader
        accepts (:mod:`.limits`: events, decoded and inflated bytes)."""
        cols = [encode_column(f, batch.columns[f.name]) for f in batch.tp.all_fields]
        n = batch.n
        raw = msgpack.packb({"tp": tp_id, "n": n, "group": group, "cols": cols}, use_bin_type=True)
        decoded = n * row_bytes(batch.tp) + sum(
            STR_VALUE_OVERHEAD_BYTES + 5 + len(v.encode()) for c in cols if c["enc"] == "dict" for v in c["values"])
        if n > 1 and (n > MAX_CHUNK_EVENTS or decoded > MAX_CHUNK_DECODED_BYTES
                      or len(raw) > MAX_CHUNK_INFLATED_BYTES):
            half = n // 2
            return (self._encode_chunks(tp_id, batch.slice(0, half), group)
                    + self._encode_chunks(tp_id, batch.slice(half, n), group))
        return [zlib.compress(raw, CHUNK_ZLIB_LEVEL)]

    def _account(self, tp_id: int, batch: EventBatch) -> None:
        """Update the footer's totals with a written chunk."""
        seq = batch.ints("seq")
        ts = batch.ints("ts_ns")
        last_seq = int(seq.max())
        lo_ts, hi_ts = int(ts.min()), int(ts.max())
        self._counts[tp_id] += batch.n
        self.events_written += batch.n
        self._last_seq = last_seq if self._last_seq is None else max(self._last_seq, last_seq)
        self._first_ts_ns = lo_ts if self._first_ts_ns is None else min(self._first_ts_ns, lo_ts)
        self._last_ts_ns = hi_ts if self._last_ts_ns is None else max(self._last_ts_ns, hi_ts)

