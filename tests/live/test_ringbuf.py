"""The ring-buffer decoder against pages laid out by hand as the kernel lays them out."""

from __future__ import annotations

import numpy as np

from memtrace.analysis.importers.live.ringbuf import EventChunk, LostMark, RingDecoder, walk_pages
from memtrace.analysis.importers.live.tracefs import parse_format

from .ringbuf_pages import DATA, PAGE_SIZE, formats, page, record

FMT = formats()
RSS = FMT["kmem:rss_stat"]
FAULT = FMT["exceptions:page_fault_user"]
PRINT = FMT["ftrace:print"]
FORK = FMT["sched:sched_process_fork"]


def decoder() -> RingDecoder:
    return RingDecoder({f.id: f for f in FMT.values()}, PAGE_SIZE)


def test_format_files_are_read_with_offsets_sizes_and_kinds() -> None:
    rss = parse_format("kmem", (DATA / "kmem.rss_stat.format").read_text())
    assert (rss.full_name, rss.id) == ("kmem:rss_stat", 646)
    assert [(f.name, f.offset, f.size, f.signed, f.kind) for f in rss.fields[4:]] == [
        ("mm_id", 8, 4, False, "int"), ("curr", 12, 4, False, "int"), ("member", 16, 4, True, "int"),
        ("size", 24, 8, True, "int")]
    kinds = {(fmt.full_name, f.name): f.kind for fmt in FMT.values() for f in fmt.fields}
    assert kinds["sched:sched_process_fork", "parent_comm"] == "data_loc"
    assert kinds["ftrace:print", "buf"] == "dynamic"
    assert kinds["task:task_rename", "newcomm"] == "chars"


def test_times_are_the_page_stamp_plus_every_delta_so_far() -> None:
    recs = [(100, record(RSS, 7, mm_id=11, curr=1, member=1, size=4096)),
            (250, record(FAULT, 7, address=0x7F0000001000, ip=0x401000, error_code=6)),
            (5, record(RSS, 7, mm_id=11, curr=1, member=1, size=8192))]
    w = walk_pages(page(1_000_000, recs), PAGE_SIZE)
    assert w.ts_ns.tolist() == [1_000_100, 1_000_350, 1_000_355]
    assert w.pages == 1 and w.lost == []


def test_a_delta_beyond_27_bits_comes_as_a_time_extend() -> None:
    big = (3 << 27) + 12345
    w = walk_pages(page(10, [(1, record(RSS, 1, size=1)), (big, record(RSS, 1, size=2))]), PAGE_SIZE)
    assert w.ts_ns.tolist() == [11, 11 + big]


def test_hot_events_decode_into_columns_and_others_into_fields() -> None:
    recs = [(1, record(RSS, 42, mm_id=0xDEADBEEF, curr=1, member=3, size=-4096)),
            (1, record(FAULT, 42, address=(1 << 64) - 4096, ip=0x401000, error_code=0x14)),
            (1, record(FORK, 42, parent_comm="bash", parent_pid=42, child_comm="bash", child_pid=43))]
    c = decoder().decode(page(0, recs))
    assert c.tid.tolist() == [42, 42, 42]
    assert c.event_id.tolist() == [RSS.id, FAULT.id, FORK.id]
    assert (c.a[0], c.b[0], c.c[0], c.d[0]) == (0xDEADBEEF, 1, 3, -4096)
    assert c.a[1] == -4096  # a u64 beyond 2**63 wraps in int64; the feeder unwraps it
    assert (c.b[1], c.c[1]) == (0x14, 0x401000)
    assert c.fields == {2: {"parent_comm": "bash", "parent_pid": 42, "child_comm": "bash", "child_pid": 43}}


def test_a_record_of_more_than_112_bytes_and_padding() -> None:
    text = "memtrace-sync start mono=123 " + "x" * 150
    recs = [(3, record(PRINT, 9, ip=0, buf=text)), (4, record(RSS, 9, size=7))]
    c = decoder().decode(page(100, recs, padding=64))
    assert len(c) == 2
    assert c.fields[0]["buf"] == text
    assert c.ts_ns.tolist() == [103, 107] and int(c.d[1]) == 7


def test_gaps_are_marked_with_the_count_the_page_stored() -> None:
    buf = page(5, [(1, record(RSS, 1))], lost=1234) + page(9, [(1, record(RSS, 1))], lost=-1)
    w = walk_pages(buf, PAGE_SIZE)
    assert w.lost == [LostMark(5, 1234), LostMark(9, -1)]
    assert w.ts_ns.tolist() == [6, 10]


def test_many_pages_walk_in_buffer_order() -> None:
    pages = [page(10_000 * p, [(i + 1, record(RSS, p, size=i)) for i in range(100)]) for p in range(5)]
    c = decoder().decode(b"".join(pages))
    assert len(c) == 500
    assert c.tid.tolist() == [p for p in range(5) for _ in range(100)]
    assert c.d.tolist() == list(range(100)) * 5
    assert bool(np.all(np.diff(c.ts_ns) > 0))


def test_records_of_an_unknown_id_are_counted_and_dropped() -> None:
    d = RingDecoder({RSS.id: RSS}, PAGE_SIZE)
    c = d.decode(page(0, [(1, record(RSS, 1)), (1, record(FAULT, 1)), (1, record(RSS, 2))]))
    assert c.tid.tolist() == [1, 2]
    assert d.unknown_ids == {FAULT.id: 1}


def test_chunks_take_slice_and_concat_keep_the_fields_with_their_rows() -> None:
    recs = [(1, record(RSS, 1)), (1, record(FORK, 1, parent_comm="a", child_pid=2)), (1, record(RSS, 3))]
    c = decoder().decode(page(0, recs))
    assert c.take(np.array([1, 0])).fields == {0: c.fields[1]}
    assert c.slice(1, 3).fields == {0: c.fields[1]}
    both = EventChunk.concat([c, c])
    assert sorted(both.fields) == [1, 4] and len(both) == 6
