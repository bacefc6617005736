"""The reader's bounds (tracefile/limits.py): each value a file claims is checked
before the reader allocates for it. Files are made with the real framing
(tracefile/craft.py), so every checksum passes and only the values are wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

import memtrace.tracer.tracefile.reader as reader_mod
from memtrace.errors import TraceFormatError
from memtrace.tracer import Field, Tracepoint, default_registry
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.columns import encode_column
from memtrace.tracer.tracefile.craft import (
    chunk_frame,
    delta_zeros,
    footer_frame,
    header,
    pack,
    raw_zeros,
    write_trace,
)
from memtrace.tracer.tracepoints import check_fields

REG = default_registry()
EXIT = REG["exit"]
EXIT_ID = REG.id_of(EXIT)


def exit_cols(n: int, seq0: int = 0) -> list[dict[str, Any]]:
    """Columns of ``n`` exit events (seq from ``seq0``, comm "a", code 0)."""
    return [encode_column(f, np.arange(seq0, seq0 + n, dtype=np.uint64) if f.name == "seq"
                          else ["a"] * n if f.type == "str" else np.zeros(n, dtype=f.dtype))
            for f in EXIT.all_fields]


def chunk(n: int = 2, group: int = 0, seq0: int = 0, **changes: Any) -> dict[str, Any]:
    return {"tp": EXIT_ID, "n": n, "group": group, "cols": exit_cols(n, seq0), **changes}


def read(path: Path, *chunks: dict[str, Any] | bytes) -> TraceReader:
    write_trace(path, header(REG), [chunk_frame(c) for c in chunks])
    reader = TraceReader(path)
    reader.scan()
    return reader


def reason(reader: TraceReader) -> str:
    assert reader.damage is not None
    return reader.damage.reason


def test_a_sound_crafted_chunk_reads(tmp_path: Path) -> None:
    reader = read(tmp_path / "ok.mtrace", chunk(3))
    assert [b.n for b in reader.batches()] == [3] and reason(reader) == "missing footer"


@pytest.mark.parametrize(("body", "says"), [
    ({**chunk(2), "n": 2_000_000}, "bad chunk: event count 2,000,000 is outside 0..1,048,576"),
    ({**chunk(2), "n": -1}, "bad chunk: event count -1 is outside 0..1,048,576"),
    (chunk(tp=999), "bad chunk: unknown tracepoint id 999"),
    ({"cols": exit_cols(2), "tp": EXIT_ID, "n": 2, "group": 0}, "bad chunk: cols come before tp and n"),
    (chunk(n=2, group="x"), "bad chunk: group is not an integer"),
    ({"tp": EXIT_ID, "n": 2, "cols": exit_cols(2)}, "bad chunk: no group"),
    ({**chunk(2), "n": 3}, "bad chunk: exit.seq: expected 2 values of 1 bytes"),
    ([1, 2, 3], "bad chunk: not a map"),
])
def test_bad_counts_and_shapes_are_a_damaged_chunk(tmp_path: Path, body: Any, says: str) -> None:
    reader = read(tmp_path / "c.mtrace", body, chunk(1, seq0=10))
    assert reason(reader).startswith(says), reason(reader)
    assert sum(b.n for b in reader.batches()) == 1  # the next chunk still reads


def test_a_dictionary_longer_than_the_events_is_refused_before_it_is_read(tmp_path: Path) -> None:
    cols = exit_cols(2)
    comm = [f.name for f in EXIT.all_fields].index("comm")
    cols[comm] = {"enc": "dict", "values": ["x"] * 100_000, "codes": bytes(8)}
    reader = read(tmp_path / "d.mtrace", chunk(2, cols=cols))
    assert reason(reader) == "bad chunk: exit.comm: dictionary of 100000 strings for 2 events"


def test_strings_beyond_the_decoded_bound_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "MAX_CHUNK_DECODED_BYTES", 10_000)
    cols = exit_cols(100)
    comm = [f.name for f in EXIT.all_fields].index("comm")
    cols[comm] = {"enc": "dict", "values": [f"{i:03d}" + "x" * 200 for i in range(100)],
                  "codes": np.arange(100, dtype="<u4").tobytes()}
    reader = read(tmp_path / "s.mtrace", chunk(100, cols=cols))
    assert reason(reader) == "bad chunk: exit.comm: strings beyond the 0 MiB a chunk may decode to"


def test_a_chunk_inflating_past_its_declared_events_is_stopped(tmp_path: Path) -> None:
    """page_fault has no str field: 2 events need at most 64 * 9 + 2 * 39 bytes."""
    pf = REG["page_fault"]
    cols = [delta_zeros(2) if f.type in ("u32", "u64", "i32", "i64") else raw_zeros(2, 1) for f in pf.all_fields]
    body = {"tp": REG.id_of(pf), "n": 2, "group": 0, "pad": bytes(10_000_000), "cols": cols}
    reader = read(tmp_path / "z.mtrace", body)
    assert reason(reader) == "bad chunk: inflates to more than the 654 bytes its events need"


def test_keys_a_newer_minor_adds_are_skipped(tmp_path: Path) -> None:
    reader = read(tmp_path / "k.mtrace", chunk(2, future={"anything": [1, [2, b"3"]]}))
    assert [b.n for b in reader.batches()] == [2] and reason(reader) == "missing footer"


def test_a_frame_longer_than_the_bound_is_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "MAX_FRAME_BYTES", 100)
    big = chunk(2, comm_pad="y" * 500)
    reader = read(tmp_path / "f.mtrace", chunk(1), big, chunk(1, seq0=5))
    assert reason(reader) == "frame too long"
    assert sum(b.n for b in reader.batches()) == 2


def test_a_header_beyond_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "MAX_HEADER_BYTES", 1000)
    path = tmp_path / "h.mtrace"
    write_trace(path, header(REG), [])
    with pytest.raises(TraceFormatError, match=r"h\.mtrace: header frame of [\d,]+ bytes is larger than the 0 MiB"):
        TraceReader(path)


def test_an_oversized_group_is_merged_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten chunks all in group 0, seq interleaved two by two: with groups bounded at
    4 events the merge holds two chunks at a time; every event comes once, in seq
    order within each part."""
    monkeypatch.setattr(reader_mod, "MAX_GROUP_EVENTS", 4)
    chunks = [chunk(2, seq0=s) for s in (2, 0, 6, 4, 10, 8, 14, 12, 18, 16)]
    reader = read(tmp_path / "g.mtrace", *chunks)
    seqs = [int(s) for b in reader.ordered_batches() for s in b.ints("seq")]
    assert sorted(seqs) == list(range(20))
    assert seqs == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert any("flush group 0 holds more than 4 events" in w for w in reader.warnings)
    assert not any("overlap" in w for w in reader.warnings)


def test_footer_values_of_a_wrong_kind_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "foot.mtrace"
    footer = {"counts": {"exit": 2, "x": "many"}, "total_events": 2, "last_seq": b"1", "chunks": 1, "groups": 1,
              "extra": {"pids": {"a": 1, "b": "two"}, "errors": [{"pid": "x"}, {"pid": 3, "comm": "c"}],
                        "end_ns": -5, "aborted": 7}}
    write_trace(path, header(REG), [chunk_frame(chunk(2)), footer_frame(footer)])
    reader = TraceReader(path)
    stats = reader.scan()
    assert reader.footer is not None
    assert reader.footer["counts"] == {"exit": 2} and "last_seq" not in reader.footer
    assert reader.footer["extra"] == {"pids": {"a": 1}, "errors": [{"pid": 3, "comm": "c"}]}
    assert stats.complete and stats.aborted is None
    assert len(reader.warnings) == 6 and all(w.startswith(f"{path}: footer at byte ") for w in reader.warnings)


def test_an_old_writers_aborted_footer_is_incomplete(tmp_path: Path) -> None:
    """memtrace 0.1.0's context manager wrote the reason in extra.aborted only."""
    path = tmp_path / "old.mtrace"
    footer = {"counts": {"exit": 2}, "total_events": 2, "chunks": 1, "groups": 1,
              "extra": {"aborted": "RuntimeError"}}
    write_trace(path, header(REG), [chunk_frame(chunk(2)), footer_frame(footer)])
    stats = TraceReader(path).scan()
    assert stats.aborted == "RuntimeError" and not stats.complete


def _schema_edit(path: Path, edit: Any) -> None:
    head = header(REG)
    edit(head["schemas"])
    write_trace(path, pack(head), [])


@pytest.mark.parametrize(("edit", "says"), [
    (lambda s: s[0].__setitem__("name", "a b"), "bad tracepoint schema #0 in header: tracepoint name 'a b' is not"),
    (lambda s: s[0].__setitem__("fields", s[0]["fields"][1:]), "do not start with the common fields"),
    (lambda s: s[0]["fields"][3].__setitem__("doc", "x" * 5000), "doc is 5,000 characters long, more than 4,096"),
    (lambda s: s[0]["fields"][3].__setitem__("type", "u128"), "type 'u128' is not one of"),
    (lambda s: s[0]["fields"][6].__setitem__("values", [f"v{i}" for i in range(300)]),
     "300 enum values, more than the 256 a u8 code names"),
    (lambda s: s.append(s[0]), "bad tracepoint schemas in header: tracepoint 'mmap' registered twice"),
    (lambda s: s.__setitem__(slice(None), (s * 4097)[:4097]), "header has 4,097 tracepoint schemas, more than the 4,096"),
])
def test_schemas_are_checked_strictly(tmp_path: Path, edit: Any, says: str) -> None:
    path = tmp_path / "s.mtrace"
    _schema_edit(path, edit)
    with pytest.raises(TraceFormatError) as info:
        TraceReader(path)
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("have", "want", "ok"), [
    ("u32", "u64", True), ("u8", "i32", True), ("bool", "u64", True), ("i32", "i64", True),
    ("i64", "u64", False), ("u64", "i64", False), ("u64", "u32", False), ("i64", "i32", False),
])
def test_check_fields_refuses_a_number_field_that_holds_more(have: str, want: str, ok: bool) -> None:
    """A trace's field may be narrower than this memtrace's, never wider or signed
    where this memtrace's is not (issue 14: u64 fields retyped i64 made ps say
    "totalpages is negative" as an internal error)."""
    ref, name = next((tp, f.name) for tp in REG for f in tp.fields if f.type == want)
    mine = Tracepoint(ref.name, "", (Field(name, have, ""),))
    if ok:
        check_fields(mine, "test", (name,))
    else:
        with pytest.raises(TraceFormatError, match=f"is {have}, but test reads it as {want}, which cannot hold"):
            check_fields(mine, "test", (name,))


def test_header_values_are_plain_text_after_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "m.mtrace"
    head = header(REG, {"scenario": b"bin", "seed": -1, "sysctl": {"vm.x": 1, "vm.y": "2"},
                        "extra": {"t": msgpack.Timestamp(1), "ok": [1, "a"]}})
    write_trace(path, head, [])
    reader = TraceReader(path)
    assert reader.meta == {"sysctl": {"vm.x": 1}, "extra": {"ok": [1, "a"]}}
    assert reader.trace_meta.scenario is None and reader.trace_meta.seed is None
    assert dict(reader.trace_meta.sysctl) == {"vm.x": 1}
    assert sorted(reader.warnings) == sorted([
        "trace header: meta.scenario is b'bin' (bytes, not text): ignored",
        "trace header: meta.extra.t is a msgpack timestamp: ignored",
        "trace header: meta.seed is -1 (int), not an integer in 0..9223372036854775807: ignored",
        "trace header: meta.sysctl.vm.y is '2' (str), not an integer: ignored",
    ])
