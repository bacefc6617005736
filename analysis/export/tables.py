"""A trace as tables: one Parquet or CSV file per tracepoint, streamed.

Every tracepoint with events becomes one table, ``OUT/<tracepoint>.parquet`` (or
``.csv``), whose columns are the schema's fields with their names and types, the
common ``seq``, ``ts_ns`` and ``pid`` first:

========  ==========================  ====================================
schema    Parquet (Arrow) type        CSV
========  ==========================  ====================================
u8..u64   uint8 .. uint64             decimal
i32, i64  int32, int64                decimal
bool      bool                        true / false
enum      dictionary<uint8, string>   the value's name
str       string                      the string (quoted where needed)
========  ==========================  ====================================

Rows are in ``seq`` order within a table (the file's chunks of one tracepoint come
in that order). The tables read with ``pandas.read_parquet``, polars and DuckDB's
``read_parquet('OUT/page_fault.parquet')``; ``seq`` joins them back into one
timeline.

Streaming: chunks are read one at a time and written as Parquet row groups (or CSV
blocks) once a tracepoint has :data:`ROW_GROUP_EVENTS` buffered events, so memory
stays flat whatever the trace's length. pyarrow is imported here only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memtrace.interrupts import deferred
from memtrace.safewrite import SafeOutput
from memtrace.tracer.batch import EventBatch
from memtrace.tracer.schema import Field, Tracepoint
from memtrace.tracer.tracefile import TraceReader

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FORMATS", "ROW_GROUP_EVENTS", "TableExport", "export_tables"]

#: Table formats and their file suffixes.
FORMATS = {"parquet": ".parquet", "csv": ".csv"}
#: Events buffered per tracepoint before a row group is written.
ROW_GROUP_EVENTS = 1 << 18

_ARROW_TYPES = {
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
    "i32": "int32", "i64": "int64", "bool": "bool_",
}


@dataclass(frozen=True)
class TableExport:
    """What :func:`export_tables` wrote: a file and a row count per tracepoint."""

    directory: str
    format: str
    files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def as_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "format": self.format, "files": dict(self.files),
                "rows": dict(self.rows), "total_rows": self.total_rows, "warnings": list(self.warnings)}


def _arrow_type(f: Field) -> pa.DataType:
    import pyarrow as pa

    if f.type == "enum":
        return pa.dictionary(pa.uint8(), pa.string())
    if f.type == "str":
        return pa.string()
    factory: Callable[[], pa.DataType] = getattr(pa, _ARROW_TYPES[f.type])
    return factory()


def arrow_schema(tp: Tracepoint) -> pa.Schema:
    """The Arrow schema of one tracepoint's table (field docs and units as metadata)."""
    import pyarrow as pa

    fields = []
    for f in tp.all_fields:
        meta = {"doc": f.doc}
        if f.unit:
            meta["unit"] = f.unit
        fields.append(pa.field(f.name, _arrow_type(f), nullable=False, metadata=meta))
    return pa.schema(fields, metadata={"tracepoint": tp.name, "doc": tp.doc, "kernel": tp.kernel})


def _arrow_table(batch: EventBatch, schema: pa.Schema) -> pa.Table:
    """One batch as an Arrow table: numeric columns without a copy, enums as
    dictionary arrays over the schema's values, strings as string arrays."""
    import numpy as np
    import pyarrow as pa

    arrays: list[pa.Array] = []
    for f in batch.tp.all_fields:
        if f.type == "enum":
            dictionary = pa.array(list(f.values), type=pa.string())
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(batch.ints(f.name), type=pa.uint8()), dictionary))
        elif f.type == "str":
            arrays.append(pa.array(batch.strs(f.name), type=pa.string()))
        elif f.type == "bool":
            arrays.append(pa.array(np.asarray(batch.ints(f.name), dtype=bool)))
        else:
            arrays.append(pa.array(batch.ints(f.name), type=_arrow_type(f)))
    return pa.Table.from_arrays(arrays, schema=schema)


class _Sink:
    """One tracepoint's output file, opened at its first rows. Rows are buffered
    until :data:`ROW_GROUP_EVENTS`, then handed to the writer thread as one table."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema, writer: _WriterThread) -> None:
        self.path, self.fmt, self.schema = path, fmt, schema
        self._thread = writer
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self._writer: Any = None
        self._out: SafeOutput | None = None

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP_EVENTS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        import pyarrow as pa

        table = pa.concat_tables(self.pending)
        self.pending, self.pending_rows = [], 0
        self.rows += table.num_rows
        self._thread.put(self, table)

    # -- on the writer thread

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = self._open()
        if self.fmt == "csv":
            table = table.cast(_plain(table.schema))
        self._writer.write_table(table)

    def _open(self) -> Any:
        # memtrace.safewrite: written beside the target, renamed over it by close().
        self._out = out = SafeOutput(self.path)
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            # Strings and enums are dictionary-coded; integers delta-coded (seq, ts_ns,
            # addresses and pfns rise steadily: 37 KB for a million page faults).
            coded = [f.name for f in self.schema if _is_text(f.type)]
            delta = {f.name: "DELTA_BINARY_PACKED" for f in self.schema
                     if not _is_text(f.type) and str(f.type) != "bool"}
            return pq.ParquetWriter(out.file, self.schema, compression="zstd", use_dictionary=coded,
                                    column_encoding=delta)
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(out.file, _plain(self.schema))

    def close(self, keep: bool) -> None:
        """Close the file: renamed over the target when ``keep``, else removed."""
        writer, self._writer = self._writer, None
        out, self._out = self._out, None
        try:
            if writer is not None:
                writer.close()
        except BaseException:
            keep = False
            raise
        finally:
            if out is not None:
                if keep:
                    out.commit()
                else:
                    out.discard()


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_dictionary(t) or pa.types.is_string(t))


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` with enums as plain strings (CSV prints names)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in schema])


class _WriterThread:
    """Encodes and writes tables on a thread of its own (pyarrow releases the GIL
    while it encodes), so reading the trace and writing the tables overlap. The queue
    is bounded: memory stays flat when writing is the slower side."""

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: queue.Queue[tuple[_Sink, pa.Table] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="memtrace-export", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    item[0].write(item[1])
                except BaseException as e:  # handed to the caller's thread by finish()
                    self._error = e

    def put(self, sink: _Sink, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((sink, table))

    def finish(self, sinks: list[_Sink], keep: bool) -> None:
        """Write what is pending, close every file (kept when ``keep`` and no write
        failed, else removed), and re-raise a writer error. Ctrl-C or SIGTERM while
        the files are kept waits until all are (memtrace.interrupts.deferred): the
        directory gets every table or none of the new ones."""
        self._queue.put(None)
        self._thread.join()
        keep = keep and self._error is None
        try:
            with deferred() if keep else contextlib.nullcontext():
                for sink in sinks:
                    sink.close(keep)
        except BaseException:
            for sink in sinks:
                sink.close(False)
            raise
        if self._error is not None:
            raise self._error


def export_tables(trace: str | os.PathLike[str], directory: str | os.PathLike[str], fmt: str = "parquet",
                  *, progress: Callable[[int], None] | None = None) -> TableExport:
    """Write one ``fmt`` table per tracepoint of ``trace`` into ``directory``
    (created if missing). ``progress`` is called with the events written so far.

    A damaged trace exports what its reader recovers, with the reader's warnings.
    An export that fails or is interrupted removes every table it was writing (the
    old ones stay as they were) and the directory, when it made it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"table format {fmt!r} is not one of {', '.join(FORMATS)}")
    reader = TraceReader(trace)
    out = Path(directory)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    sinks: dict[str, _Sink] = {}
    schemas: dict[str, pa.Schema] = {}
    thread = _WriterThread()
    done = 0
    ok = False
    try:
        for batch in reader.batches():
            if batch.n == 0:
                continue
            name = batch.tp.name
            sink = sinks.get(name)
            if sink is None:
                schemas[name] = arrow_schema(batch.tp)
                sink = sinks[name] = _Sink(out / f"{name}{FORMATS[fmt]}", fmt, schemas[name], thread)
            sink.add(_arrow_table(batch, schemas[name]))
            done += batch.n
            if progress is not None:
                progress(done)
        for sink in sinks.values():
            sink.flush()
        ok = True
    finally:
        try:
            thread.finish(list(sinks.values()), ok)
        finally:
            if made and not ok:
                with contextlib.suppress(OSError):
                    out.rmdir()  # (only when empty: nothing of anyone else's is removed)
    return TableExport(str(out), fmt, {n: str(s.path) for n, s in sinks.items()},
                       {n: s.rows for n, s in sinks.items()}, tuple(reader.warnings))
