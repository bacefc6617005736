"""Reading back: events read equal events emitted (as a Collector saw them on the same
bus), in file order and in seq order, without the current tracepoint definitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memtrace.tracer import (
    Bus,
    EventBatch,
    Field,
    Registry,
    Tracepoint,
    default_registry,
)
from memtrace.tracer.tracefile import TraceReader, TraceWriter

from .helpers import (
    assert_same_events,
    chunk_bodies,
    mixed_workload,
    record,
)


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
