"""Bombs: small files that, read without bounds, cost gigabytes (issue 14, finding 2).

Each bomb is built here (:mod:`memtrace.tracer.tracefile.craft`) and read in a fresh
interpreter, which reports its peak resident memory (``VmHWM``); the reader's
documented bound is :data:`~memtrace.tracer.tracefile.limits.READER_PEAK_BYTES`.
Before the bounds, the 1 MB ``huge_chunks`` file made ``stat`` take 5.8 GB and the
1 MB ``one_group`` file made ``trace`` take 2.6 GB (here: 5.8 GB, then MemoryError).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memtrace.errors import LimitError
from memtrace.tracer import EventBatch
from memtrace.tracer.tracefile import TraceReader, TraceWriter
from memtrace.tracer.tracefile.craft import (
    bomb_deep_header,
    bomb_huge_chunks,
    bomb_interleave,
    bomb_meminfo,
    bomb_one_group,
    bomb_tasks,
    bomb_zip,
)
from memtrace.tracer.tracefile.limits import MAX_GROUP_EVENTS, READER_PEAK_BYTES
from memtrace.tracer.tracepoints import PAGE_FAULT, VMA_KINDS, default_registry

from .helpers import GiB, MiB, assert_clean, peak, run_cli

#: Read a trace every way a command does: stat's scan, the seq-ordered merge, a
#: one-liner over it; report what the reader said.
READ_ALL = """
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer import run_batches
from memtrace.tracer.oneliner import compile_program
reader = TraceReader(sys.argv[1])
stats = reader.scan()
out["events"] = stats.total_events
out["ordered"] = sum(b.n for b in reader.ordered_batches())
tracer = compile_program(sys.argv[2], registry=reader.registry, output=lambda o: None)
run_batches(tracer, reader.ordered_batches())
out["keys"] = {k: len(m) for k, m in tracer.maps.items()}
out["warnings"] = reader.warnings + tracer.warnings
out["damage"] = None if reader.damage is None else reader.damage.reason
"""
COUNT = "page_fault { @n = count(); }"


def test_huge_chunks_are_skipped_before_they_are_inflated(tmp_path: Path) -> None:
    """Chunks claiming 16 M events each (consistent, checksummed): each is refused
    from its first inflated bytes, as one damaged chunk."""
    path = tmp_path / "huge.mtrace"
    size = bomb_huge_chunks(path, size_bytes=200_000)  # 6 chunks; the bench builds 1 MB
    assert size <= 200_000
    got = peak(READ_ALL, str(path), COUNT)
    assert got["events"] == 0 and got["ordered"] == 0
    assert got["damage"] == "bad chunk: event count 16,777,216 is outside 0..1,048,576"
    assert got["peak_bytes"] < 150 * MiB  # the interpreter, numpy and memtrace take ~60 MiB


def test_a_zip_bomb_stops_at_what_its_events_need(tmp_path: Path) -> None:
    """A chunk of 10 events whose zlib stream inflates to 64 MiB: inflation stops at
    the 966 bytes ten page faults need."""
    path = tmp_path / "zip.mtrace"
    bomb_zip(path, inflated_bytes=64 << 20)
    got = peak(READ_ALL, str(path), COUNT)
    assert got["damage"] == "bad chunk: inflates to more than the 966 bytes its events need"
    assert got["peak_bytes"] < 150 * MiB


def test_one_flush_group_for_the_whole_file_is_merged_in_parts(tmp_path: Path) -> None:
    """Every chunk claims group 0: the merge holds at most MAX_GROUP_EVENTS events
    at a time, says so once, and still delivers every event once."""
    path = tmp_path / "group.mtrace"
    bomb_one_group(path, size_bytes=200_000)
    got = peak(READ_ALL, str(path), COUNT)
    assert got["events"] == got["ordered"] > 8 * MAX_GROUP_EVENTS
    assert got["keys"] == {"@n": 1}
    assert any("flush group 0 holds more than 1,048,576 events or 64 MiB: merged in parts" in w
               for w in got["warnings"])
    assert got["peak_bytes"] < READER_PEAK_BYTES


def test_millions_of_meminfo_samples_stream(tmp_path: Path) -> None:
    """3.5 M meminfo samples in 200 KB: the reader streams them in groups."""
    path = tmp_path / "meminfo.mtrace"
    assert bomb_meminfo(path) < 700_000
    got = peak(READ_ALL, str(path), "meminfo_sample { @free = max(mem_free); }")
    assert got["events"] == got["ordered"] == 3_500_000 and got["damage"] is None
    assert got["peak_bytes"] < READER_PEAK_BYTES


def test_a_header_nested_500_deep_reads_without_its_deep_part(tmp_path: Path) -> None:
    path = tmp_path / "deep.mtrace"
    bomb_deep_header(path)
    got = peak(READ_ALL, str(path), "exit { @n = count(); }")
    assert got["events"] == 1 and got["damage"] is None
    assert any(w.startswith("trace header: meta.workload.x.x.x") and w.endswith(
        "nests deeper than 64 levels: ignored") for w in got["warnings"])


def test_millions_of_task_starts_fill_the_task_table_to_its_bound(tmp_path: Path) -> None:
    """13 M process starts of new pids and no exit, in 160 KB: the one-liner's task
    table keeps MAX_TASKS rows, drops the rest without Python work per event, says so."""
    path = tmp_path / "tasks.mtrace"
    bomb_tasks(path, size_bytes=160_000)
    got = peak(READ_ALL, str(path), "process_start { @n = count(); }")
    assert got["events"] > 10_000_000
    assert any(w.startswith("more than 1,048,576 live tasks: ") for w in got["warnings"])
    assert got["peak_bytes"] < READER_PEAK_BYTES


@pytest.fixture(scope="module")
def distinct_addresses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 M page faults at 2 M distinct addresses (a real trace: 2 MB)."""
    path = tmp_path_factory.mktemp("keys") / "keys.mtrace"
    n = 1 << 16
    kind = VMA_KINDS.index("anon_private")
    with TraceWriter(path, default_registry(), {"seed": 0}) as writer:
        for i in range(32):
            idx = np.arange(i * n, (i + 1) * n, dtype=np.uint64)
            writer.on_batch(EventBatch(PAGE_FAULT, {
                "seq": idx, "ts_ns": idx * np.uint64(250), "pid": np.full(n, 100, np.int32),
                "address": idx * np.uint64(4096), "write": np.ones(n, np.bool_), "major": np.zeros(n, np.bool_),
                "vma_kind": np.full(n, kind, np.uint8), "pfn": idx}))
    return path


def test_a_map_keyed_by_an_unbounded_value_stops_at_max_map_keys(distinct_addresses: Path) -> None:
    """@[address] over 2 M distinct addresses: 4096 keys, a warning, bounded memory."""
    got = peak(READ_ALL, str(distinct_addresses), "page_fault { @[address] = count(); }")
    assert got["keys"] == {"@": 4096}
    assert any(w.startswith("@ is full (4,096 keys): 2,093,056 updates of new keys were dropped") for w in
               got["warnings"])
    assert got["peak_bytes"] < 200 * MiB


def test_max_map_keys_can_be_raised_by_the_program(distinct_addresses: Path) -> None:
    got = peak(READ_ALL, str(distinct_addresses),
               "config = { max_map_keys = 100000 } page_fault { @[address] = count(); }")
    assert got["keys"] == {"@": 100_000}


def test_ps_on_a_one_group_bomb_stays_under_a_gigabyte(tmp_path: Path) -> None:
    """memtrace ps (the state fold) over the one-group bomb: bounded by the reader's
    merge (issue 14: "1 MB with every chunk in group 0")."""
    path = tmp_path / "group.mtrace"
    bomb_one_group(path, size_bytes=200_000)
    got = peak("""
from memtrace.tracer.tracefile import TraceReader
from memtrace.analysis.ps import ps_trace
table, warnings = ps_trace(TraceReader(sys.argv[1]))
out["rows"] = len(table.rows)
""", str(path))
    assert got["peak_bytes"] < GiB


PS = """
from memtrace.tracer.tracefile import TraceReader
from memtrace.analysis.ps import ps_trace
table, warnings = ps_trace(TraceReader(sys.argv[1]))
out["rows"] = len(table.rows)
out["warnings"] = list(warnings)
"""


def test_ps_on_millions_of_task_starts_keeps_131072_processes(tmp_path: Path) -> None:
    """13 M process starts of new pids in 160 KB: the state fold keeps MAX_PROCS
    processes and the history MAX_KEPT_EVENTS events (they took 4.8 GB and 115 s);
    both are said."""
    from memtrace.analysis.state.core import MAX_PROCS
    from memtrace.analysis.state.folder import MAX_KEPT_EVENTS

    path = tmp_path / "tasks.mtrace"
    bomb_tasks(path, size_bytes=160_000)
    got = peak(PS, str(path))
    assert got["rows"] == MAX_PROCS == 131_072 and got["peak_bytes"] < GiB
    assert any(w.startswith("more than 131,072 live processes: ") for w in got["warnings"])
    assert any(w.startswith(f"more than {MAX_KEPT_EVENTS:,} events of the tracepoints the history keeps")
               for w in got["warnings"])


def test_ps_on_millions_of_meminfo_samples_thins_the_readings(tmp_path: Path) -> None:
    """3.5 M meminfo samples in 200 KB: ps keeps at most about MAX_READINGS of them
    (it took 3 GB and more than 2 minutes)."""
    path = tmp_path / "meminfo.mtrace"
    bomb_meminfo(path)
    got = peak(PS, str(path))
    assert got["peak_bytes"] < GiB // 2
    assert any(w.startswith("more than 65,536 /proc/meminfo readings: ") for w in got["warnings"])


def test_a_pid_started_and_ended_many_times_is_one_process() -> None:
    """The fold's queue of exited pids is compacted: 5000 lives of one pid, one row."""
    from memtrace.analysis.state.core import FoldState

    st = FoldState({})
    for _ in range(5000):
        st.proc(7)
        st.exited(7)
    assert list(st.procs) == [7] and len(st._exited) <= 1025


def test_alternating_tracepoints_fold_and_trace_by_commute_class(tmp_path: Path) -> None:
    """The interleave bomb (page faults and rss_stat alternating event by event,
    11 M events in 200 KB): ps and a one-liner over both tracepoints read it as two
    batches a group, count every event, and stay under a gigabyte (before, 11 M
    one-event batches: ps 3 minutes, trace 69 s)."""
    path = tmp_path / "interleave.mtrace"
    bomb_interleave(path, size_bytes=200_000)
    got = peak("""
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer import run_trace
from memtrace.tracer.oneliner import compile_program
from memtrace.analysis.ps import ps_trace
from memtrace.analysis.state import fold_trace
reader = TraceReader(sys.argv[1])
out["counts"] = reader.scan().counts
out["folded"] = fold_trace(reader).history.counts
table, warnings = ps_trace(reader)
out["rows"] = [row.pid for row in table.rows]
tracer = run_trace(compile_program("page_fault, rss_stat { @[probe] = count(); }", registry=reader.registry,
                                   output=lambda o: None), reader)
out["maps"] = dict(tracer.maps["@"].items())
""", str(path))
    counts = got["counts"]
    assert counts["page_fault"] == counts["rss_stat"] > 5_000_000
    assert got["folded"] == counts == got["maps"]
    assert got["rows"] == [0]  # every event of the bomb is pid 0's
    assert got["peak_bytes"] < GiB


def test_a_pass_in_seq_order_stops_at_max_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in plain seq order (what dmesg, diff and the timeline exports need),
    the same file is a batch per event: the pass stops with one line at the bound
    (diff's bound lowered here to keep the test short)."""
    import memtrace.replay.diff as diff

    path = tmp_path / "interleave.mtrace"
    bomb_interleave(path, size_bytes=40_000)
    reader = TraceReader(path)
    with pytest.raises(LimitError, match="change tracepoint more than 100,000 times in seq order"):
        sum(b.n for b in reader.ordered_batches(max_runs=100_000))
    monkeypatch.setattr(diff, "DIFF_MAX_RUNS", 1000)
    run = run_cli("diff", str(path), str(path))
    assert run.code == 1 and "change tracepoint more than 1,000 times in seq order" in run.stderr
    assert_clean(run)
