"""The trace file: events read back equal events emitted, and damage never raises.

Ground truth here is independent of the module under test: the events a
:class:`Collector` saw on the same bus, chunk layouts and counts derived by hand, and a
small parser of the frame layout (marker, u32 length, u32 crc32) written from the
format description.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.errors import TraceFormatError
from memtrace.tracer import (
    Bus,
    Collector,
    EventBatch,
    Field,
    Registry,
    Tracepoint,
    concat,
    default_registry,
)
from memtrace.tracer.tracefile import Damage, TraceReader, TraceWriter
from memtrace.tracer.tracefile import reader as tracefile_reader

MAGIC = b"\x89MTRACE\n"
#: The damage tests share one small trace (a module fixture) across examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


# ----------------------------------------------------------------------------- helpers


def frames_of(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, type) of every frame after the magic: an independent parser."""
    out = []
    pos = len(MAGIC)
    while pos < len(data):
        marker, length, crc = struct.unpack_from("<4sII", data, pos)
        assert marker == b"MTCK"
        payload = data[pos + 12 : pos + 12 + length]
        assert zlib.crc32(payload) == crc
        out.append((pos, pos + 12 + length, payload[:1]))
        pos += 12 + length
    return out


def chunk_bodies(data: bytes) -> list[dict[str, Any]]:
    """Every chunk body decoded by hand (zlib, then msgpack)."""
    bodies = []
    for start, end, kind in frames_of(data):
        if kind == b"C":
            bodies.append(msgpack.unpackb(zlib.decompress(data[start + 13 : end]), raw=False))
    return bodies


def frame(kind: bytes, body: bytes) -> bytes:
    payload = kind + body
    return struct.pack("<4sII", b"MTCK", len(payload), zlib.crc32(payload)) + payload


def record(
    path: Path,
    script: Callable[[Bus, Registry], None],
    *,
    chunk_events: int = 65536,
    meta: dict[str, Any] | None = None,
    registry: Registry | None = None,
    extra: dict[str, Any] | None = None,
) -> Collector:
    """Run ``script`` on a bus with a writer and a collector attached; close the file."""
    reg = registry or default_registry()
    bus = Bus(reg)
    collector = Collector()
    writer = TraceWriter(path, reg, meta or {"seed": 1}, chunk_events=chunk_events)
    bus.attach(writer)
    bus.attach(collector)
    script(bus, reg)
    writer.close(extra)
    return collector


def mixed_workload(bus: Bus, reg: Registry) -> None:
    """Several tracepoints interleaved: str, enum, bool, scalar and array fields.

    Emits 1 process_start, 1 mmap, 40 page_faults, 3 rss_stat, 1 mmap (failed),
    250 page_faults, 2 sysctl_set, 5 page_cache_add: 303 events, seq 0..302.
    """
    bus.emit(
        reg["process_start"], 1_000, 42, comm="stress", uid=1000, oom_score_adj=-100
    )
    bus.emit(
        reg["mmap"], 2_000, 42, addr=0x7F0000000000, len_bytes=1 << 20, prot=3, flags=0x22,
        vma_kind="anon_private", ino=0, path="", handle="buf", charged_pages=256, ret=0,
    )
    bus.emit(
        reg["page_fault"], 3_000 + np.arange(40, dtype=np.uint64) * 10, 42, 40,
        address=0x7F0000000000 + np.arange(40, dtype=np.uint64) * 4096,
        write=np.arange(40) % 3 == 0, major=False, vma_kind="anon_private",
        pfn=np.arange(1000, 1040),
    )
    bus.emit(
        reg["rss_stat"], 4_000, 42, 3, mm_pid=42, curr=[True, True, False],
        member=np.array([1, 0, 3]), size_bytes=np.array([40 * 4096, 0, -4096]),
    )
    bus.emit(
        reg["mmap"], 5_000, 43, addr=0, len_bytes=1 << 40, prot=1, flags=0x1,
        vma_kind="file_shared", ino=77, path="/data/big.bin", handle="big",
        charged_pages=0, ret=-12,
    )
    bus.emit(
        reg["page_fault"], 6_000 + np.arange(250, dtype=np.uint64) * 3, 43, 250,
        address=(np.arange(250, dtype=np.uint64) * 4096)[::-1].copy(),
        write=False, major=np.arange(250) % 7 == 0, vma_kind="file_shared",
        pfn=(np.arange(250, dtype=np.uint64) * 7919) % 4099,
    )
    bus.emit(
        reg["sysctl_set"], 7_000, 1, 2, name=["vm.swappiness", "vm.overcommit_memory"],
        value=["10", "2"], old=["60", "0"],
    )
    bus.emit(
        reg["page_cache_add"], 8_000, 43, 5, ino=77, index=np.arange(5),
        pfn=np.array([5, 3, 9, 1, 2]), shmem=False,
    )


def assert_batches_equal(read: list[EventBatch], want: list[EventBatch]) -> None:
    assert [(b.tp.name, b.n) for b in read] == [(b.tp.name, b.n) for b in want]
    assert all(a.equals(b) for a, b in zip(read, want, strict=True))


def per_tracepoint(batches: list[EventBatch]) -> dict[str, EventBatch]:
    grouped: dict[str, list[EventBatch]] = {}
    for b in batches:
        grouped.setdefault(b.tp.name, []).append(b)
    return {name: concat(bs) for name, bs in grouped.items()}


def assert_same_events(read: list[EventBatch], emitted: list[EventBatch]) -> None:
    got, want = per_tracepoint(read), per_tracepoint(emitted)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].equals(want[name]), name


# ------------------------------------------------------------------------- round trip


def test_mixed_events_read_back_equal_emitted(tmp_path: Path) -> None:
    """Every field type, interleaved tracepoints and batches larger than a chunk."""
    path = tmp_path / "mixed.mtrace"
    collector = record(path, mixed_workload, chunk_events=100)
    reader = TraceReader(path)
    read = list(reader.batches())
    assert_same_events(read, collector.batches)
    assert sum(b.n for b in read) == 303
    assert all(b.n <= 100 for b in read)

    records = list(reader.events())
    assert [r["seq"] for r in records] == list(range(303))
    want = sorted(collector.records(), key=lambda r: r["seq"])
    assert records == want
    # seq 0 process_start, 1 mmap, 2-41 page_fault, 42-44 rss_stat, 45 mmap, ...
    assert records[1].name == "mmap"
    assert records[1]["path"] == "" and records[1]["vma_kind"] == "anon_private"
    assert records[45].name == "mmap"
    assert records[45]["ret"] == -12 and records[45]["path"] == "/data/big.bin"
    assert records[44]["size_bytes"] == -4096 and records[44]["member"] == "MM_SHMEMPAGES"
    assert records[44]["curr"] is False and records[2]["write"] is True
    assert reader.damage is None and reader.warnings == []


def test_ordered_batches_are_maximal_runs_in_seq_order(tmp_path: Path) -> None:
    """The chunk layout and the ordered runs of a small recording, derived by hand.

    chunk_events=8. seq 0 mmap; 1-5 page_fault; 6 rss_stat; 7-9 page_fault;
    10-29 page_fault; 30 mmap. Group 0 fills at seq 7 (8 events) and holds chunks
    mmap[0], page_fault[1-5,7], rss_stat[6] in first-seq order; group 1 is
    page_fault[8-15]; group 2 page_fault[16-23]; close() writes group 3:
    page_fault[24-29], mmap[30].
    """

    def script(bus: Bus, reg: Registry) -> None:
        pf = reg["page_fault"]
        fault = {"address": 0, "write": True, "major": False, "vma_kind": "heap", "pfn": 1}
        bus.emit(reg["mmap"], 0, 1, addr=4096, len_bytes=4096,
                 prot=3, flags=0x22, vma_kind="anon_private", ino=0, path="",
                 handle="a", charged_pages=1, ret=0)
        bus.emit(pf, 10, 1, 5, **fault)
        bus.emit(reg["rss_stat"], 20, 1, mm_pid=1, curr=True, member="MM_ANONPAGES",
                 size_bytes=4096)
        bus.emit(pf, 30, 1, 3, **fault)
        bus.emit(pf, np.arange(40, 60, dtype=np.uint64), 1, 20, **fault)
        bus.emit(reg["mmap"], 100, 1, addr=8192, len_bytes=4096, prot=3, flags=0x22,
                 vma_kind="anon_private", ino=0, path="", handle="b", charged_pages=1,
                 ret=0)

    path = tmp_path / "small.mtrace"
    record(path, script, chunk_events=8)
    reader = TraceReader(path)

    layout = [(b.tp.name, b["seq"].tolist()) for b in reader.batches()]
    assert layout == [
        ("mmap", [0]),
        ("page_fault", [1, 2, 3, 4, 5, 7]),
        ("rss_stat", [6]),
        ("page_fault", list(range(8, 16))),
        ("page_fault", list(range(16, 24))),
        ("page_fault", list(range(24, 30))),
        ("mmap", [30]),
    ]
    assert [b["group"] for b in chunk_bodies(path.read_bytes())] == [0, 0, 0, 1, 2, 3, 3]

    runs = [(b.tp.name, b["seq"].tolist()) for b in reader.ordered_batches()]
    assert runs == [
        ("mmap", [0]),
        ("page_fault", [1, 2, 3, 4, 5]),
        ("rss_stat", [6]),
        ("page_fault", [7]),
        ("page_fault", list(range(8, 16))),
        ("page_fault", list(range(16, 24))),
        ("page_fault", list(range(24, 30))),
        ("mmap", [30]),
    ]
    assert reader.footer == {
        "counts": {"mmap": 2, "page_fault": 28, "rss_stat": 1},
        "total_events": 31,
        "last_seq": 30,
        "first_ts_ns": 0,
        "last_ts_ns": 100,
        "chunks": 7,
        "groups": 4,
        "extra": {},
    }


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


def test_wrapping_deltas_are_exact(tmp_path: Path) -> None:
    """Deltas are taken modulo 2**bits: extreme u64, i64 and i32 values survive."""
    u64_max = 2**64 - 1
    values = np.array([u64_max, 0, 1, u64_max, 2**63, 5], dtype=np.uint64)
    signed = np.array([-(2**63), 2**63 - 1, -1, 0, -(2**63), 7], dtype=np.int64)
    pids = np.array([-(2**31), 2**31 - 1, 0, -1, 2**31 - 1, 3], dtype=np.int32)

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["brk"], values, pids, 6, old_brk=values, brk=values[::-1].copy(),
                 ret=0, charged_pages=signed)

    path = tmp_path / "wrap.mtrace"
    collector = record(path, script)
    (batch,) = TraceReader(path).batches()
    assert batch.equals(collector.batches[0])
    assert batch["ts_ns"].dtype == np.uint64 and batch["pid"].dtype == np.int32
    assert batch["charged_pages"].tolist() == signed.tolist()
    assert batch["old_brk"].flags.writeable


def test_chunk_layout_on_disk(tmp_path: Path) -> None:
    """The bytes follow the documented format: magic, frames, delta and dict columns."""

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["sysctl_set"], 5, 1, 3, name=["a", "b", "a"], value="1", old="0")

    path = tmp_path / "layout.mtrace"
    record(path, script)
    data = path.read_bytes()
    assert data[:8] == MAGIC
    assert [kind for _s, _e, kind in frames_of(data)] == [b"H", b"C", b"F"]
    (chunk,) = chunk_bodies(data)
    assert chunk["tp"] == 16 and chunk["n"] == 3 and chunk["group"] == 0
    seq, ts, pid, name, value, _old = chunk["cols"]
    assert seq == {"enc": "delta", "first": 0, "width": 1, "data": b"\x01\x01"}
    assert ts == {"enc": "delta", "first": 5, "width": 1, "data": b"\x00\x00"}
    assert pid == {"enc": "delta", "first": 1, "width": 1, "data": b"\x00\x00"}
    assert name == {"enc": "dict", "values": ["a", "b"],
                    "codes": struct.pack("<3I", 0, 1, 0)}
    assert value["values"] == ["1"]


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    """Determinism: same events and meta (in any key order) give the same file."""
    meta_a = {"seed": 7, "sysctls": {"vm.swappiness": 60, "vm.overcommit_memory": 0},
              "machine": {"ram_bytes": 1 << 30, "zones": ("DMA", "Normal")}}
    meta_b = {"machine": {"zones": ["DMA", "Normal"], "ram_bytes": 1 << 30},
              "sysctls": {"vm.overcommit_memory": 0, "vm.swappiness": 60}, "seed": 7}
    a, b = tmp_path / "a.mtrace", tmp_path / "b.mtrace"
    record(a, mixed_workload, chunk_events=50, meta=meta_a)
    record(b, mixed_workload, chunk_events=50, meta=meta_b)
    assert a.read_bytes() == b.read_bytes()


def test_header_carries_meta_and_schemas(tmp_path: Path) -> None:
    path = tmp_path / "meta.mtrace"
    meta = {"seed": 3, "scenario": "oom-basic", "sysctls": {"vm.swappiness": 10},
            "machine": {"zones": ("DMA32", "Normal")}}
    record(path, mixed_workload, meta=meta)
    reader = TraceReader(path)
    assert reader.header["format_version"] == [1, 0]
    assert reader.header["memtrace_version"] == "0.1.0"
    assert reader.header["created_by"] == "memtrace 0.1.0"
    assert reader.meta == {"machine": {"zones": ["DMA32", "Normal"]}, "scenario": "oom-basic",
                           "seed": 3, "sysctls": {"vm.swappiness": 10}}
    assert list(reader.meta) == ["machine", "scenario", "seed", "sysctls"]
    current = default_registry()
    assert [tp.name for tp in reader.registry] == [tp.name for tp in current]
    assert list(reader.registry) == list(current)


def test_file_reads_without_current_definitions(tmp_path: Path) -> None:
    """The schemas in the header are enough: a tracepoint unknown today still reads."""
    legacy = Tracepoint(
        "legacy_thing", "a tracepoint this memtrace no longer has",
        (Field("kind", "enum", "which", values=("x", "y")), Field("note", "str", "text"),
         Field("nr_pages", "u16", "pages", unit="pages")),
    )
    reg = Registry([legacy])
    path = tmp_path / "legacy.mtrace"

    def script(bus: Bus, r: Registry) -> None:
        bus.emit(legacy, 9, 2, 2, kind=np.array([1, 0]), note=["p", "q"], nr_pages=65535)

    record(path, script, registry=reg)
    reader = TraceReader(path)
    assert "legacy_thing" in reader.registry and "page_fault" not in reader.registry
    assert reader.registry["legacy_thing"] == legacy
    records = list(reader.events())
    assert [r.fields for r in records] == [
        {"seq": 0, "ts_ns": 9, "pid": 2, "kind": "y", "note": "p", "nr_pages": 65535},
        {"seq": 1, "ts_ns": 9, "pid": 2, "kind": "x", "note": "q", "nr_pages": 65535},
    ]


def test_scan_summarises_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.mtrace"
    record(path, mixed_workload, chunk_events=100, extra={"oom_kills": 0})
    stats = TraceReader(path).scan()
    assert stats.counts == {"mmap": 2, "page_fault": 290, "process_start": 1,
                            "page_cache_add": 5, "rss_stat": 3, "sysctl_set": 2}
    assert list(stats.counts) == ["mmap", "page_fault", "process_start",
                                  "page_cache_add", "rss_stat", "sysctl_set"]
    assert stats.total_events == 303
    assert (stats.first_ts_ns, stats.last_ts_ns, stats.duration_ns) == (1_000, 8_000, 7_000)
    assert stats.size_bytes == path.stat().st_size
    assert stats.chunks == len(chunk_bodies(path.read_bytes()))
    assert stats.damage is None
    assert stats.footer is not None and stats.footer["total_events"] == 303
    assert stats.footer["counts"] == stats.counts
    assert stats.footer["last_seq"] == 302
    assert stats.footer["extra"] == {"oom_kills": 0}


def test_page_faults_of_one_gib_are_small(tmp_path: Path) -> None:
    """262,144 first-touch faults with regular addresses, times and pfns: far under 4 MiB."""
    n = 262_144
    path = tmp_path / "gib.mtrace"

    def script(bus: Bus, reg: Registry) -> None:
        idx = np.arange(n, dtype=np.uint64)
        bus.emit(reg["page_fault"], 1_000 + idx * 250, 100, n,
                 address=0x7F0000000000 + idx * 4096, write=True, major=False,
                 vma_kind="anon_private", pfn=0x10000 + idx)

    collector = record(path, script)
    assert path.stat().st_size < 256 * 1024
    read = list(TraceReader(path).batches())
    assert [b.n for b in read] == [65536] * 4
    assert concat(read).equals(collector.batches[0])


# ---------------------------------------------------------------------------- writer


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


def test_out_of_order_seq_is_merged_and_overlapping_groups_warned(tmp_path: Path) -> None:
    """Batches fed to the writer by hand, not by a bus, may break its assumptions.

    Group 0 holds exit seq [0, 4, 2] and unlink seq [1, 3]; group 1 holds exit seq
    [3]: the reader merges group 0 into runs 0 | 1 | 2 | 3 | 4 and warns that
    group 1 overlaps it.
    """
    reg = default_registry()
    path = tmp_path / "order.mtrace"

    def exits(seq: list[int]) -> EventBatch:
        return EventBatch.build(reg["exit"], len(seq), {
            "seq": np.array(seq, dtype=np.uint64), "ts_ns": 0, "pid": 1,
            "comm": [f"c{s}" for s in seq], "code": 0})

    with TraceWriter(path, reg, {}) as writer:
        writer.on_batch(exits([0, 4, 2]))
        writer.on_batch(EventBatch.build(reg["unlink"], 2, {
            "seq": np.array([1, 3], dtype=np.uint64), "ts_ns": 0, "pid": 1,
            "path": ["/a", "/b"], "ino": 9}))
        writer.flush()
        writer.on_batch(exits([3]))
    reader = TraceReader(path)
    runs = [(b.tp.name, b["seq"].tolist()) for b in reader.ordered_batches()]
    assert runs == [("exit", [0]), ("unlink", [1]), ("exit", [2]), ("unlink", [3]),
                    ("exit", [4]), ("exit", [3])]
    assert [r["comm"] for r in reader.events() if r.name == "exit"] == ["c0", "c2", "c4", "c3"]
    assert reader.warnings == [
        f"{path}: flush groups overlap in seq (at seq 3); "
        "events are in order within each group only"
    ]


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


# ---------------------------------------------------------------------------- damage


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


# ------------------------------------------------------------------------ not a trace


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not a memtrace trace (empty file)"),
        (b"hello, this is a text file\n" * 20, "not a memtrace trace (bad magic)"),
        (bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8)),
         "not a memtrace trace (bad magic)"),
        (MAGIC, "header frame truncated at byte 8"),
        (MAGIC + b"MTCK\x05\x00\x00\x00\x00\x00\x00\x00Hab", "header frame truncated"),
        (MAGIC + frame(b"H", b"\xc1"), "header is not valid msgpack"),
        (MAGIC + frame(b"C", b"x"), "first frame is not a header"),
        (MAGIC + frame(b"H", msgpack.packb({"schemas": []})), "no valid format_version"),
    ],
)
def test_not_a_trace_raises_trace_format_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "x.mtrace"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError) as info:
        TraceReader(path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


def test_damaged_header_names_file_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "h.mtrace"
    record(path, mixed_workload)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    problem = r"h\.mtrace: header frame damaged \(checksum mismatch\)"
    with pytest.raises(TraceFormatError, match=problem):
        TraceReader(path)


def test_newer_major_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.mtrace"
    header = {"format_version": [2, 0], "memtrace_version": "9.0", "created_by": "x",
              "meta": {}, "schemas": []}
    path.write_bytes(MAGIC + frame(b"H", msgpack.packb(header)))
    with pytest.raises(TraceFormatError) as info:
        TraceReader(path)
    assert str(info.value) == (
        f"{path}: trace format 2.0 is newer than this memtrace reads (1.x); "
        "upgrade memtrace to read it"
    )


def test_newer_minor_version_reads_and_skips_unknown_frames(tmp_path: Path) -> None:
    """A 1.1 file with a frame type this reader does not know: read, with warnings."""
    source = tmp_path / "src.mtrace"
    record(source, mixed_workload)
    data = source.read_bytes()
    frames = frames_of(data)
    header = msgpack.unpackb(data[frames[0][0] + 13 : frames[0][1]], raw=False)
    header["format_version"] = [1, 1]
    header["new_key"] = "ignored"
    unknown = frame(b"X", b"future index")
    path = tmp_path / "minor.mtrace"
    path.write_bytes(MAGIC + frame(b"H", msgpack.packb(header)) + unknown
                     + data[frames[0][1]:])
    reader = TraceReader(path)
    assert sum(b.n for b in reader.batches()) == 303
    assert reader.damage is None
    first_frame = len(MAGIC) + 12 + 1 + len(msgpack.packb(header))
    assert reader.warnings == [
        f"{path}: format 1.1 is newer than this reader's 1.0; parts it does not know are ignored",
        f"{path}: frame of unknown type b'X' at byte {first_frame} ignored",
    ]


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
