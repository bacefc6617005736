"""The writer: flush groups and chunk sizes, copies of buffered columns, refusals, and
what a killed or failed recording leaves behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memtrace.tracer import (
    Bus,
    EventBatch,
    Registry,
    concat,
    default_registry,
)
from memtrace.tracer.tracefile import Damage, TraceReader, TraceWriter

from .helpers import (
    MAGIC,
    record,
)


def test_large_batch_is_split_at_chunk_events(tmp_path: Path) -> None:
    """2.5 chunks' worth of events in one batch become chunks of 64, 64 and 32."""
    path = tmp_path / "big.mtrace"

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["page_cache_add"], np.arange(160, dtype=np.uint64), 7, 160,
                 ino=3, index=np.arange(160), pfn=np.arange(160)[::-1].copy(), shmem=True)

    collector = record(path, script, chunk_events=64)
    read = list(TraceReader(path).batches())
    assert [b.n for b in read] == [64, 64, 32]
    assert concat(read).equals(collector.batches[0])


def test_writer_copies_buffered_columns(tmp_path: Path) -> None:
    """An emitter may reuse its arrays after emit: the file holds what was emitted."""
    path = tmp_path / "alias.mtrace"
    pfns = np.arange(10, dtype=np.uint64)

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["page_fault"], 0, 1, 10, address=0, write=False, major=False,
                 vma_kind="heap", pfn=pfns)
        pfns[:] = 999

    record(path, script)
    (batch,) = TraceReader(path).batches()
    assert batch["pfn"].tolist() == list(range(10))


def test_writer_refuses_foreign_tracepoints_and_use_after_close(tmp_path: Path) -> None:
    reg = default_registry()
    writer = TraceWriter(tmp_path / "w.mtrace", Registry([reg["mmap"]]), {})
    stranger = EventBatch.build(reg["exit"], 1, {"seq": 0, "ts_ns": 0, "pid": 1,
                                                 "comm": "x", "code": 0})
    with pytest.raises(ValueError, match="'exit' is not in the writer's registry"):
        writer.on_batch(stranger)
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.on_batch(stranger)
    with pytest.raises(ValueError, match="chunk_events"):
        TraceWriter(tmp_path / "x.mtrace", reg, {}, chunk_events=0)


def test_writer_refuses_enum_codes_without_a_name(tmp_path: Path) -> None:
    reg = default_registry()
    bus = Bus(reg)
    writer = TraceWriter(tmp_path / "enum.mtrace", reg, {})
    bus.attach(writer)
    with pytest.raises(ValueError, match=r"page_fault\.vma_kind: enum code 6 is not one of 0\.\.5"):
        bus.emit(reg["page_fault"], 0, 1, 2, address=0, write=False, major=False,
                 vma_kind=np.array([0, 6]), pfn=0)
    writer.close()


def test_writer_counts_bytes_and_events(tmp_path: Path) -> None:
    path = tmp_path / "count.mtrace"
    reg = default_registry()
    bus = Bus(reg)
    writer = TraceWriter(path, reg, {}, chunk_events=10)
    bus.attach(writer)
    head_bytes = writer.bytes_written
    assert head_bytes == path.stat().st_size > len(MAGIC)
    bus.emit(reg["exit"], 1, 5, 25, comm="a", code=0)
    assert writer.events_written == 20  # two full groups; 5 still buffered
    assert writer.bytes_written == path.stat().st_size > head_bytes
    writer.close()
    assert writer.events_written == 25
    assert writer.bytes_written == path.stat().st_size


def test_context_manager_keeps_data_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "boom.mtrace"
    reg = default_registry()
    bus = Bus(reg)
    with pytest.raises(RuntimeError), TraceWriter(path, reg, {}) as writer:
        bus.attach(writer)
        bus.emit(reg["exit"], 1, 5, 3, comm="a", code=1)
        raise RuntimeError("simulation failed")
    reader = TraceReader(path)
    assert sum(b.n for b in reader.batches()) == 3
    assert reader.footer is not None and reader.footer["extra"] == {"aborted": "RuntimeError"}


def test_killed_recorder_leaves_a_readable_file(tmp_path: Path) -> None:
    """A recorder that flushed and was never closed: the flushed groups read back."""
    path = tmp_path / "killed.mtrace"
    reg = default_registry()
    bus = Bus(reg)
    writer = TraceWriter(path, reg, {}, chunk_events=4)
    bus.attach(writer)
    bus.emit(reg["exit"], 1, 5, 10, comm="a", code=0)  # groups of 4, 4; 2 buffered
    reader = TraceReader(path)
    assert [b.n for b in reader.batches()] == [4, 4]
    assert reader.footer is None
    assert reader.damage == Damage(offset=path.stat().st_size, reason="missing footer",
                                   chunks_skipped=0, events_recovered=8)
    assert reader.warnings == [
        f"{path}: no footer: the recording did not finish (recorder killed?); "
        "read 8 events from 2 chunks"
    ]
    writer.close()
