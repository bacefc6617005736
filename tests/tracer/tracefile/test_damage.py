"""Damage: a truncated, flipped or garbled file is read up to what survived, and
never raises after the header.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.errors import TraceFormatError
from memtrace.tracer import EventBatch
from memtrace.tracer.tracefile import Damage, TraceReader
from memtrace.tracer.tracefile import reader as tracefile_reader

from .helpers import (
    FIXTURE_OK,
    assert_batches_equal,
    frame,
    frames_of,
    mixed_workload,
    record,
)


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[EventBatch]]:
    """A few-kilobyte trace of many small chunks, and its chunks read intact."""
    path = tmp_path_factory.mktemp("small") / "small.mtrace"
    record(path, mixed_workload, chunk_events=32)
    return path.read_bytes(), list(TraceReader(path).batches())


def test_small_trace_has_many_chunks(small_trace: tuple[bytes, list[EventBatch]]) -> None:
    data, chunks = small_trace
    kinds = [kind for _s, _e, kind in frames_of(data)]
    assert kinds == [b"H"] + [b"C"] * len(chunks) + [b"F"]
    assert len(chunks) >= 10 and sum(b.n for b in chunks) == 303


def check_cut(trace: bytes, chunks: list[EventBatch], cut: int, path: Path) -> None:
    """Read ``trace`` cut to ``cut`` bytes: exactly the chunks ending before the cut."""
    frames = frames_of(trace)
    path.write_bytes(trace[:cut])
    if cut < frames[0][1]:
        with pytest.raises(TraceFormatError) as info:
            TraceReader(path)
        assert str(info.value).startswith(f"{path}: "), cut
        return
    reader = TraceReader(path)
    read = list(reader.batches())
    intact = [c for c, (_s, end, _k) in zip(chunks, frames[1:-1], strict=True) if end <= cut]
    assert_batches_equal(read, intact)
    want = sorted((r for b in intact for r in b.records()), key=lambda r: r["seq"])
    assert list(reader.events()) == want, cut
    n_events = sum(b.n for b in intact)
    if cut == len(trace):
        assert reader.damage is None and reader.footer is not None
        return
    assert reader.footer is None
    starts = [s for s, _e, _k in frames]
    if cut in starts:
        assert reader.damage == Damage(cut, "missing footer", 0, n_events), cut
    else:
        start = max(s for s in starts if s < cut)
        assert reader.damage == Damage(start, "truncated frame", 0, n_events), cut


def test_truncation_at_boundaries_and_inside_frames(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path
) -> None:
    """Cut at every frame boundary, every byte of each frame's head, mid-frame, last byte.

    Cuts inside the header raise TraceFormatError; later cuts never raise and give
    back every chunk that ends before the cut.
    """
    data, chunks = small_trace
    cuts = {0, 1, 7, len(data)}
    for start, end, _kind in frames_of(data):
        cuts.update(range(start, start + 14))
        cuts.update({(start + end) // 2, end - 1, end})
    for cut in sorted(cuts):
        check_cut(data, chunks, cut, tmp_path / "cut.mtrace")


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.data())
def test_truncation_anywhere_never_raises_after_the_header(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path, data: st.DataObject
) -> None:
    trace, chunks = small_trace
    cut = data.draw(st.integers(frames_of(trace)[0][1], len(trace)), label="cut")
    check_cut(trace, chunks, cut, tmp_path / "cut.mtrace")


def test_checksum_damage_skips_one_chunk_and_resynchronises(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path
) -> None:
    data, chunks = small_trace
    frames = frames_of(data)
    start, end, _kind = frames[3]  # the third chunk
    damaged = bytearray(data)
    damaged[(start + end) // 2] ^= 0xFF
    path = tmp_path / "flip.mtrace"
    path.write_bytes(bytes(damaged))
    reader = TraceReader(path)
    read = list(reader.batches())
    want = chunks[:2] + chunks[3:]
    assert_batches_equal(read, want)
    lost = chunks[2].n
    assert reader.damage == Damage(start, "checksum mismatch", 1, 303 - lost)
    assert reader.warnings == [
        f"{path}: checksum mismatch at byte {start}; resumed at byte {end} (1 frame(s) skipped)",
        f"{path}: the footer counts 303 events but {303 - lost} were read",
    ]
    assert reader.footer is not None and reader.footer["total_events"] == 303
    stats = reader.scan()
    assert stats.total_events == 303 - lost and stats.damage == reader.damage


def test_garbage_between_frames_is_skipped(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path
) -> None:
    """Bytes inserted between two chunks: one bad region, then every chunk is read."""
    data, chunks = small_trace
    frames = frames_of(data)
    cut = frames[2][1]
    path = tmp_path / "garbage.mtrace"
    path.write_bytes(data[:cut] + b"junk!" * 10 + data[cut:])
    reader = TraceReader(path)
    read = list(reader.batches())
    assert_batches_equal(read, chunks)
    assert reader.damage == Damage(cut, "bad marker", 1, 303)
    assert reader.warnings == [
        f"{path}: bad marker at byte {cut}; resumed at byte {cut + 50} (1 frame(s) skipped)"
    ]


def test_bad_markers_inside_a_damaged_region_count_as_skipped_frames(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path
) -> None:
    """Every marker passed over while resynchronising counts as one more lost frame."""
    data, chunks = small_trace
    cut = frames_of(data)[2][1]
    path = tmp_path / "markers.mtrace"
    path.write_bytes(data[:cut] + b"junk MTCK" * 3 + data[cut:])
    reader = TraceReader(path)
    assert len(list(reader.batches())) == len(chunks)
    assert reader.damage == Damage(cut, "bad marker", 4, 303)


@pytest.mark.parametrize("block_bytes", [5, 16, 100])
def test_block_boundaries_do_not_change_what_is_recovered(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, block_bytes: int,
) -> None:
    """With tiny scan blocks, markers straddle blocks and checksums are read in pieces."""
    monkeypatch.setattr(tracefile_reader, "_BLOCK_BYTES", block_bytes)
    data, chunks = small_trace
    frames = frames_of(data)
    path = tmp_path / "blocks.mtrace"
    path.write_bytes(data)
    assert_batches_equal(list(TraceReader(path).batches()), chunks)
    start, end, _ = frames[4]  # frames[0] is the header: this is chunks[3]
    for at, reason in [(start + 4, "checksum mismatch"), (start + 7, "bad frame length")]:
        # The length field's low byte (64 bytes more, still inside the file), then its
        # high byte (past the end of the file).
        damaged = bytearray(data)
        damaged[at] ^= 0x40
        path.write_bytes(bytes(damaged))
        reader = TraceReader(path)
        assert_batches_equal(list(reader.batches()), chunks[:3] + chunks[4:])
        assert reader.damage == Damage(start, reason, 1, 303 - chunks[3].n)
    path.write_bytes(data[:end] + b"junk MTCK" * 3 + data[end:])
    reader = TraceReader(path)
    assert_batches_equal(list(reader.batches()), chunks)
    assert reader.damage == Damage(end, "bad marker", 4, 303)


def test_ordered_batches_survive_a_lost_chunk(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path
) -> None:
    data, chunks = small_trace
    start, end, _ = frames_of(data)[1]
    path = tmp_path / "first-lost.mtrace"
    path.write_bytes(data[:start + 20] + bytes(end - start - 20) + data[end:])
    seqs = [s for b in TraceReader(path).ordered_batches() for s in b["seq"].tolist()]
    want = sorted(s for b in chunks[1:] for s in b["seq"].tolist())
    assert seqs == want


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.data())
def test_a_flipped_byte_never_raises_after_the_header(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path, data: st.DataObject
) -> None:
    """Flip any byte after the header: exactly the frame holding it is lost."""
    trace, chunks = small_trace
    frames = frames_of(trace)
    offset = data.draw(st.integers(frames[0][1], len(trace) - 1), label="offset")
    xor = data.draw(st.integers(1, 255), label="xor")
    damaged = bytearray(trace)
    damaged[offset] ^= xor
    path = tmp_path / "flipped.mtrace"
    path.write_bytes(bytes(damaged))
    reader = TraceReader(path)
    read = list(reader.batches())
    hit = next(i for i, (s, e, _k) in enumerate(frames) if s <= offset < e)
    want = [c for i, c in enumerate(chunks) if i != hit - 1]
    assert_batches_equal(read, want)
    assert reader.damage is not None
    assert reader.damage.offset == frames[hit][0]
    assert reader.damage.events_recovered == sum(b.n for b in want)
    if hit == len(frames) - 1:  # the footer
        assert reader.footer is None
    else:
        assert reader.damage.chunks_skipped == 1
        assert reader.footer is not None
    list(reader.events())


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.data())
def test_flipped_bytes_anywhere_raise_only_trace_format_error(
    small_trace: tuple[bytes, list[EventBatch]], tmp_path: Path, data: st.DataObject
) -> None:
    """Several flips anywhere, header included: TraceFormatError or a clean read."""
    trace, _chunks = small_trace
    damaged = bytearray(trace)
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(trace) - 1), st.integers(1, 255)),
                               min_size=1, max_size=8))
    for offset, xor in flips:
        damaged[offset] ^= xor
    path = tmp_path / "multi.mtrace"
    path.write_bytes(bytes(damaged))
    try:
        reader = TraceReader(path)
    except TraceFormatError as exc:
        assert str(path) in str(exc)
        assert min(o for o, _x in flips) < frames_of(trace)[0][1]
        return
    n = sum(b.n for b in reader.ordered_batches())
    assert n <= 303
    assert reader.scan().total_events == n


def test_bad_chunk_content_with_valid_checksum_is_skipped(tmp_path: Path) -> None:
    """A well-framed chunk whose columns do not fit its schema is damage, not a crash."""
    source = tmp_path / "src.mtrace"
    record(source, mixed_workload)
    data = source.read_bytes()
    frames = frames_of(data)
    bogus = zlib.compress(msgpack.packb({"tp": 3, "n": 2, "group": 0, "cols": []}))
    at = frames[1][0]
    path = tmp_path / "bogus.mtrace"
    path.write_bytes(data[:at] + frame(b"C", bogus) + data[at:])
    reader = TraceReader(path)
    assert sum(b.n for b in reader.batches()) == 303
    assert reader.damage == Damage(at, "bad chunk: page_fault: 8 columns expected", 1, 303)
