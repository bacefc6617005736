"""``ordered_batches(commute=...)``: the events of commuting tracepoints regrouped
between ordered ones, checked against a per-event reference; and the bound on the
batches one pass delivers (``max_runs``).
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.errors import LimitError
from memtrace.tracer import EventBatch, default_registry
from memtrace.tracer.tracefile import TraceReader, TraceWriter
from memtrace.tracer.tracefile import reader as reader_module
from memtrace.tracer.tracefile.craft import bomb_interleave

#: Four tracepoints with a few integer fields each.
NAMES = ("kswapd_wake", "kswapd_sleep", "drop_caches", "writeback")


def _write(path: Path, choices: list[int], flush_every: int) -> None:
    """Event ``seq`` = i of tracepoint NAMES[choices[i]], emitted in seq order in
    one-event batches (the writer gathers them into chunks), flushed every
    ``flush_every`` events (0: once, at the end)."""
    reg = default_registry()
    with TraceWriter(path, reg, {}) as writer:
        for seq, which in enumerate(choices):
            tp = reg[NAMES[which]]
            values = {f.name: (f.values[0] if f.values else 0) for f in tp.fields}
            values.update(seq=np.array([seq], dtype=np.uint64), ts_ns=seq * 10, pid=1)
            writer.on_batch(EventBatch.build(tp, 1, values))
            if flush_every and (seq + 1) % flush_every == 0:
                writer.flush()


def _reference(choices: list[int], classes: dict[str, int], flush_every: int) -> list[tuple[str, list[int]]]:
    """What ``ordered_batches(commute=classes)`` must deliver, event by event: in
    each flush group, between two ordered events, the commuting events grouped by
    class in the order of each class's first event, seq order within a class; then
    maximal runs of one tracepoint (a run never spans two groups)."""
    events = [(NAMES[c], seq) for seq, c in enumerate(choices)]
    size = flush_every or len(events)
    runs: list[tuple[str, list[int]]] = []
    for start in range(0, len(events), size):
        out: list[tuple[str, int]] = []
        pending: dict[int, list[tuple[str, int]]] = {}
        for name, seq in events[start:start + size]:
            cls = classes.get(name)
            if cls is None:
                for block in pending.values():
                    out.extend(block)
                pending = {}
                out.append((name, seq))
            else:
                pending.setdefault(cls, []).append((name, seq))
        for block in pending.values():
            out.extend(block)
        runs += [(name, [seq for _n, seq in run]) for name, run in groupby(out, key=lambda e: e[0])]
    return runs


def _regrouped(reader: TraceReader, classes: dict[str, int], **kw: int) -> list[tuple[str, list[int]]]:
    """The runs ``ordered_batches(commute=classes)`` delivers, every group
    regrouped however few its runs (by default a group of fewer than
    _REGROUP_RUNS runs comes as it is: the consumer's result is the same)."""
    saved = reader_module._REGROUP_RUNS
    reader_module._REGROUP_RUNS = 1
    try:
        return [(b.tp.name, [int(s) for s in b.ints("seq")]) for b in reader.ordered_batches(commute=classes, **kw)]
    finally:
        reader_module._REGROUP_RUNS = saved


@settings(max_examples=60, deadline=None)
@given(choices=st.lists(st.integers(0, 3), min_size=1, max_size=120),
       kinds=st.lists(st.sampled_from([None, 0, 1, 2, 3]), min_size=4, max_size=4),
       flush_every=st.sampled_from([0, 7, 50]))
def test_commuting_events_are_regrouped_as_the_reference_says(
        tmp_path_factory: pytest.TempPathFactory, choices: list[int], kinds: list[int | None],
        flush_every: int) -> None:
    path = tmp_path_factory.mktemp("commute") / "t.mtrace"
    _write(path, choices, flush_every)
    classes = {name: k for name, k in zip(NAMES, kinds, strict=True) if k is not None}
    reader = TraceReader(path)
    got = _regrouped(reader, classes)
    assert got == _reference(choices, classes, flush_every)
    # Without commuting classes: plain seq order, as before.
    plain = [(b.tp.name, [int(s) for s in b.ints("seq")]) for b in reader.ordered_batches()]
    assert plain == _reference(choices, {}, flush_every)


def test_two_alternating_tracepoints_come_as_two_batches_per_group(tmp_path: Path) -> None:
    """The interleave bomb: page_fault takes the even seqs and rss_stat the odd, in
    groups of 2 x 32,768 events; commuting, each group is two batches."""
    path = tmp_path / "interleave.mtrace"
    bomb_interleave(path, size_bytes=40_000)
    reader = TraceReader(path)
    stats = reader.scan()
    groups = stats.chunks // 2
    batches = list(reader.ordered_batches(commute={"page_fault": 0, "rss_stat": 1}))
    assert [b.tp.name for b in batches] == ["page_fault", "rss_stat"] * groups
    assert all(b.n == 32_768 for b in batches)
    assert [int(b.ints("seq")[0]) for b in batches[:4]] == [0, 1, 65_536, 65_537]


def test_a_pass_stops_once_it_has_delivered_max_runs_batches(tmp_path: Path) -> None:
    path = tmp_path / "t.mtrace"
    _write(path, [0, 1] * 20, 0)
    reader = TraceReader(path)
    assert len(list(reader.ordered_batches(max_runs=40))) == 40
    with pytest.raises(LimitError, match=r"t\.mtrace: its events change tracepoint more than 39 times"):
        list(reader.ordered_batches(max_runs=39))
    # Commuting, the same file is two batches.
    assert len(_regrouped(reader, {NAMES[0]: 0, NAMES[1]: 1}, max_runs=2)) == 2


def test_until_ts_ends_the_pass_at_the_first_later_event_in_seq_order(tmp_path: Path) -> None:
    """seq 0-5 alternate two tracepoints at times 0, 10, 5, 20, 8, 30: up to time
    12 the pass ends at seq 3 (time 20); seq 4 (time 8) comes after it, so it is
    left out too. By commute class or not, the same events."""
    reg = default_registry()
    path = tmp_path / "t.mtrace"
    times = [0, 10, 5, 20, 8, 30]
    with TraceWriter(path, reg, {}) as writer:
        for seq, ts in enumerate(times):
            tp = reg[NAMES[seq % 2]]
            values = {f.name: 0 for f in tp.fields}
            values.update(seq=np.array([seq], dtype=np.uint64), ts_ns=ts, pid=1)
            writer.on_batch(EventBatch.build(tp, 1, values))
    reader = TraceReader(path)
    plain = [int(s) for b in reader.ordered_batches(until_ts=12) for s in b.ints("seq")]
    assert plain == [0, 1, 2]
    regrouped = _regrouped(reader, {NAMES[0]: 0, NAMES[1]: 1}, until_ts=12)
    assert regrouped == [(NAMES[0], [0, 2]), (NAMES[1], [1])]
    assert [int(s) for b in reader.ordered_batches(until_ts=30) for s in b.ints("seq")] == list(range(6))
