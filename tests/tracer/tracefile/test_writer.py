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


# --------------------------------------------------------------------------- aborted, bounds


def _three_exits(path: Path) -> tuple[TraceWriter, Bus]:
    reg = default_registry()
    bus = Bus(reg)
    writer = TraceWriter(path, reg, {})
    bus.attach(writer)
    bus.emit(reg["exit"], 1, 5, 3, comm="a", code=1)
    return writer, bus


@pytest.mark.parametrize(("aborted", "reason"), [(True, "aborted"), ("KeyboardInterrupt", "KeyboardInterrupt")])
def test_close_aborted_says_so_in_the_footer(tmp_path: Path, aborted: bool | str, reason: str) -> None:
    path = tmp_path / "a.mtrace"
    writer, _bus = _three_exits(path)
    writer.close({"end_ns": 1}, aborted=aborted)
    reader = TraceReader(path)
    stats = reader.scan()
    assert reader.footer is not None and reader.footer["aborted"] is True
    assert reader.footer["extra"] == {"aborted": reason, "end_ns": 1}
    assert stats.total_events == 3 and stats.aborted == reason and not stats.complete


def test_close_while_an_exception_propagates_is_an_aborted_close(tmp_path: Path) -> None:
    """record_run closes its writer in a finally: an interrupt then marks the footer
    without the recorder saying so; closing in an except block that handled the
    error and goes on is the caller's to say (aborted=False)."""
    path = tmp_path / "f.mtrace"
    writer, _bus = _three_exits(path)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            writer.close({"end_ns": 1})
    assert TraceReader(path).scan().aborted == "KeyboardInterrupt"
    path2 = tmp_path / "g.mtrace"
    writer, _bus = _three_exits(path2)
    try:
        raise ValueError("handled")
    except ValueError:
        writer.close(aborted=False)
    assert TraceReader(path2).scan().complete


def test_a_plain_close_is_not_aborted(tmp_path: Path) -> None:
    path = tmp_path / "p.mtrace"
    writer, _bus = _three_exits(path)
    writer.close()
    reader = TraceReader(path)
    assert reader.scan().complete and "aborted" not in (reader.footer or {})


def test_an_interrupt_while_a_group_is_written_does_not_write_it_twice(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The group is taken over before it is written: an exception in the middle
    loses it (the file says the recording was aborted) rather than doubling it."""
    path = tmp_path / "i.mtrace"
    writer, _bus = _three_exits(path)
    real = writer._write
    calls = []

    def interrupted(data: bytes) -> None:
        real(data)
        calls.append(len(data))
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writer.flush()
    monkeypatch.setattr(writer, "_write", real)
    writer.close(aborted="KeyboardInterrupt")
    reader = TraceReader(path)
    assert sum(b.n for b in reader.batches()) == 3


def test_chunks_are_split_to_stay_inside_the_readers_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group whose one tracepoint would make a chunk the reader refuses (here: a
    reader bound lowered to 1,000 events) is written as several chunks."""
    import memtrace.tracer.tracefile.reader as reader_mod
    import memtrace.tracer.tracefile.writer as writer_mod

    monkeypatch.setattr(writer_mod, "MAX_CHUNK_EVENTS", 1000)
    monkeypatch.setattr(reader_mod, "MAX_CHUNK_EVENTS", 1000)
    path = tmp_path / "s.mtrace"

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["page_cache_add"], np.arange(5000, dtype=np.uint64), 7, 5000,
                 ino=3, index=np.arange(5000), pfn=np.arange(5000), shmem=False)

    collector = record(path, script, chunk_events=65536)
    reader = TraceReader(path)
    read = list(reader.batches())
    assert all(b.n <= 1000 for b in read) and sum(b.n for b in read) == 5000
    assert reader.damage is None and reader.footer is not None and reader.footer["groups"] == 1
    assert concat(list(reader.ordered_batches())).equals(collector.batches[0])


def test_strings_count_towards_a_chunks_decoded_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct long strings make the writer split a chunk the reader would refuse."""
    import memtrace.tracer.tracefile.reader as reader_mod
    import memtrace.tracer.tracefile.writer as writer_mod

    monkeypatch.setattr(writer_mod, "MAX_CHUNK_DECODED_BYTES", 200_000)
    monkeypatch.setattr(reader_mod, "MAX_CHUNK_DECODED_BYTES", 200_000)
    path = tmp_path / "str.mtrace"
    paths = [f"/data/{i:05d}/" + "x" * 1000 for i in range(400)]

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["file_open"], np.arange(400, dtype=np.uint64), 7, 400, ino=np.arange(400), path=paths,
                 size_bytes=0, shmem=False, created=True)

    record(path, script)
    reader = TraceReader(path)
    read = list(reader.batches())
    assert len(read) > 1 and reader.damage is None
    assert [p for b in read for p in b.strs("path")] == paths


def test_a_header_beyond_the_bound_is_refused_before_the_file_is_touched(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import memtrace.tracer.tracefile.writer as writer_mod
    from memtrace.errors import LimitError

    monkeypatch.setattr(writer_mod, "MAX_HEADER_BYTES", 100_000)
    path = tmp_path / "h.mtrace"
    with pytest.raises(LimitError, match=r"h\.mtrace: a trace header of [\d,]+ bytes is larger than"):
        TraceWriter(path, default_registry(), {"workload": {"x": "y" * 100_000}})
    assert not path.exists()
