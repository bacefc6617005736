"""Probes, maps and their output: the Python API under the one-liner language.

Expected values are computed independently of the vectorised engine: plain Python
loops over one event at a time (``collections.Counter``, ``int.bit_length``), the
bucket rules of bpftrace's ``hist()``/``lhist()`` written out by hand, and output
lines typed out from bpftrace's printing code (16-column label, 8-column count,
52-column bar).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.errors import MemtraceError
from memtrace.tracer import Bus, Collector, EventBatch, default_registry
from memtrace.tracer.probes import (
    Hist,
    LHist,
    Map,
    MapOutput,
    PrintfOutput,
    Stats,
    StrColumn,
    TimeOutput,
    Tracer,
    ValueOutput,
    cuts_isolate,
    cuts_unique,
    group_rows,
    log2_buckets,
    parse_format,
    render_json,
    render_text,
    run_batches,
    runtime,
    sim_strftime,
)
from memtrace.tracer.tracefile import TraceWriter

MS = 1_000_000


# ----------------------------------------------------------------------------- streams


class Stream:
    """A hand-built event stream emitted through a real Bus with the real schemas.

    Unset fields take a neutral value (0, "", False, an enum's first value).
    """

    def __init__(self) -> None:
        self.registry = default_registry()
        self.bus = Bus(self.registry)
        self.collector = Collector()
        self.bus.attach(self.collector)

    def emit(self, name: str, ts_ns: Any, pid: Any, n: int = 1, **fields: Any) -> Stream:
        tp = self.registry[name]
        values: dict[str, Any] = {}
        for f in tp.fields:
            if f.name in fields:
                values[f.name] = fields.pop(f.name)
            elif f.type == "str":
                values[f.name] = ""
            elif f.type == "enum":
                values[f.name] = f.values[0]
            else:
                values[f.name] = 0
        assert not fields, f"unknown fields {sorted(fields)} for {name}"
        for f in tp.fields:  # enum columns given as lists of names
            v = values[f.name]
            if f.type == "enum" and isinstance(v, list):
                values[f.name] = [f.code(x) if isinstance(x, str) else x for x in v]
        self.bus.emit(tp, ts_ns, pid, n, **values)
        return self

    def start(self, pid: int, comm: str, ts_ns: int = 0) -> Stream:
        return self.emit("process_start", ts_ns, pid, comm=comm)

    @property
    def batches(self) -> list[EventBatch]:
        return self.collector.batches

    def records(self, name: str | None = None) -> list[Any]:
        return self.collector.records(name)

    def write(self, path: Path) -> Path:
        with TraceWriter(path, self.registry, {"scenario": "hand-built"}) as w:
            for b in self.batches:
                w.on_batch(b)
        return path


def pressure_stream() -> Stream:
    """Memory pressure as the kernel reports it: processes, kswapd wakes, direct and
    memcg reclaim (two pairs of one pid in one batch each), OOM kills."""
    s = Stream()
    s.start(100, "db").start(101, "leaker").emit("fork", 10, 101, child_pid=102, child_comm="worker")
    s.emit("kswapd_wake", 50 * MS, 0, nid=0, order=0)
    s.emit("kswapd_sleep", 60 * MS, 0, nr_reclaimed=300)
    s.emit("kswapd_wake", [120 * MS, 150 * MS, 199 * MS], 0, n=3)
    s.emit("kswapd_sleep", [130 * MS, 160 * MS, 205 * MS], 0, n=3, nr_reclaimed=[10, 20, 40])
    s.emit("reclaim_begin", 210 * MS, 101, kind="direct")
    s.emit("reclaim_end", 210 * MS + 3_000, 101, kind="direct", nr_reclaimed=32)
    s.emit("reclaim_begin", 220 * MS, 102, kind="memcg", memcg="/app")
    s.emit("reclaim_end", 220 * MS + 70_000, 102, kind="memcg", nr_reclaimed=5, memcg="/app")
    # Two tasks begin in one batch and end in the next, where task 101 ends twice:
    # its second end must find the start its first end deleted gone.
    s.emit("reclaim_begin", [300 * MS, 300 * MS + 500_000], [101, 102], n=2, kind="direct")
    s.emit("reclaim_end", [300 * MS + 100_000, 300 * MS + 200_000, 300 * MS + 900_000], [101, 101, 102], n=3,
           kind="direct", nr_reclaimed=[1, 2, 4])
    s.emit("oom_kill", 450 * MS, 101, oom_id=1, victim_pid=101, comm="leaker", anon_rss_kb=4_000_000,
           totalpages=1_019_648, constraint="CONSTRAINT_NONE")
    s.emit("oom_kill", 3_723_000 * MS, 102, oom_id=2, victim_pid=100, comm="db", anon_rss_kb=1024,
           totalpages=24_576, constraint="CONSTRAINT_MEMCG", memcg="/app")
    return s


# ----------------------------------------------------------------------------- columns


def test_str_column_encodes_compares_and_unifies() -> None:
    words = ["a", "b", "a", "c", "b", "a"]
    col = StrColumn.from_list(words)
    assert col.tolist() == words
    assert (col == "a").tolist() == [w == "a" for w in words]
    assert (col != "b").tolist() == [w != "b" for w in words]
    other = StrColumn.from_list(["c", "b", "a", "c", "x", "a"])
    assert (col == other).tolist() == [x == y for x, y in zip(words, other.tolist())]
    assert StrColumn.from_list(["z"] * 5).values == ["z"]
    assert col[np.array([1, 3])].tolist() == ["b", "c"]


@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "z"]), st.integers(0, 2**40)),
                min_size=1, max_size=60))
def test_group_rows_matches_a_counter(rows: list[tuple[int, str, int]]) -> None:
    a = np.array([r[0] for r in rows], dtype=np.int64)
    s = [r[1] for r in rows]
    big = np.array([r[2] for r in rows], dtype=np.int64)
    g = group_rows((a, s, big), len(rows))
    got = dict(zip(g.keys, g.counts.tolist()))
    assert got == Counter(rows)
    inverse = g.inverse if g.inverse is not None else np.zeros(len(rows), np.intp)
    assert [g.keys[i] for i in inverse.tolist()] == rows
    single = group_rows(a, len(rows))
    assert dict(zip(single.keys, single.counts.tolist())) == Counter(r[0] for r in rows)


def _slot(v: int) -> int:
    """bpftrace's hist() slot, from its definition: <0, 0, 1, then [2^k, 2^(k+1)) at k+2."""
    if v < 0:
        return 0
    if v == 0:
        return 1
    return v.bit_length() + 1


def test_log2_buckets_at_every_power_of_two_edge() -> None:
    values = [-5, 0, 1, 2, 3, 4, 7, 8]
    for k in range(2, 63):
        values += [(1 << k) - 1, 1 << k, (1 << k) + 1]
    values.append((1 << 63) - 1)
    got = log2_buckets(np.array(values, dtype=np.int64)).tolist()
    assert got == [_slot(v) for v in values]


# ----------------------------------------------------------------------------- maps


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(-1000, 10**6)), min_size=1, max_size=80))
def test_aggregations_equal_a_loop_over_events(rows: list[tuple[int, int]]) -> None:
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    vals = np.array([v for _, v in rows], dtype=np.int64)
    maps = {name: Map(name) for name in ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist")}
    # Fed in two halves, to exercise merging into existing values.
    half = len(rows) // 2
    for sl in (slice(0, half), slice(half, None)):
        k, v = keys[sl], vals[sl]
        maps["count"].count(k, n=len(k))
        maps["sum"].sum(v, k)
        maps["min"].min(v, k)
        maps["max"].max(v, k)
        maps["avg"].avg(v, k)
        maps["stats"].stats(v, k)
        maps["hist"].hist(v, k)
        maps["lhist"].lhist(v, 0, 1000, 100, k)
    by: dict[int, list[int]] = defaultdict(list)
    for k, v in rows:
        by[k].append(v)

    def c_avg(xs: list[int]) -> int:
        q = abs(sum(xs)) // len(xs)
        return q if sum(xs) >= 0 else -q

    assert dict(maps["count"]) == {k: len(xs) for k, xs in by.items()}
    assert dict(maps["sum"]) == {k: sum(xs) for k, xs in by.items()}
    assert dict(maps["min"]) == {k: min(xs) for k, xs in by.items()}
    assert dict(maps["max"]) == {k: max(xs) for k, xs in by.items()}
    assert dict(maps["avg"]) == {k: c_avg(xs) for k, xs in by.items()}
    assert dict(maps["stats"]) == {k: Stats(len(xs), c_avg(xs), sum(xs)) for k, xs in by.items()}
    for k, xs in by.items():
        slots = Counter(_slot(x) for x in xs)
        assert maps["hist"][k].counts == tuple(slots.get(i, 0) for i in range(65))
        lin = Counter(0 if x < 0 else 11 if x >= 1000 else x // 100 + 1 for x in xs)
        assert maps["lhist"][k].counts == tuple(lin.get(i, 0) for i in range(12))


def test_map_behaves_like_a_dict() -> None:
    m = Map("faults")
    assert m.name == "@faults" and len(m) == 0 and m.value is None
    m.count(StrColumn.from_list(["a", "b", "a"]))
    assert dict(m) == {"a": 2, "b": 1}
    assert m["a"] == 2 and m.get("zz") is None and "b" in m
    m["c"] = 7
    del m["b"]
    assert sorted(m.items()) == [("a", 2), ("c", 7)]
    m.zero()
    assert dict(m) == {"a": 0, "c": 0}
    m.clear()
    assert len(m) == 0
    scalar = Map("@total")
    scalar.sum(np.array([1, 2, 3]))
    assert scalar.value == 6 and scalar[()] == 6
    with pytest.raises(TypeError, match="@total holds sum values; it cannot also take hist"):
        scalar.hist(np.array([1]))


def test_assign_keeps_the_last_value_per_key_and_delete_and_lookup() -> None:
    m = Map("@last")
    m.assign(np.array([10, 20, 30, 40]), np.array([1, 2, 1, 3]))
    assert dict(m) == {1: 30, 2: 20, 3: 40}
    assert m.lookup(np.array([3, 9, 1])).tolist() == [40, 0, 30]
    m.delete(np.array([1, 1]))
    assert dict(m) == {2: 20, 3: 40}
    names = Map("@name")
    names.assign(StrColumn.from_list(["x", "y", "z"]), np.array([5, 6, 5]))
    assert dict(names) == {5: "z", 6: "y"}
    assert names.lookup(np.array([6, 7])).tolist() == ["y", ""]


# ----------------------------------------------------------------------------- output


def test_hist_text_is_drawn_as_bpftrace_draws_it() -> None:
    m = Map("@bytes")
    m.hist(np.array([0, 1, 1, 5, 5, 5, 5, 1024 * 1024 + 1] + [3000] * 8))
    text = render_text(m.snapshot())
    bar = lambda c: "@" * int(c / 8 * 52)  # noqa: E731
    rows = [("[0]", 1), ("[1]", 2), ("[2, 4)", 0), ("[4, 8)", 4), ("[8, 16)", 0), ("[16, 32)", 0),
            ("[32, 64)", 0), ("[64, 128)", 0), ("[128, 256)", 0), ("[256, 512)", 0), ("[512, 1K)", 0),
            ("[1K, 2K)", 0), ("[2K, 4K)", 8), ("[4K, 8K)", 0), ("[8K, 16K)", 0), ("[16K, 32K)", 0),
            ("[32K, 64K)", 0), ("[64K, 128K)", 0), ("[128K, 256K)", 0), ("[256K, 512K)", 0),
            ("[512K, 1M)", 0), ("[1M, 2M)", 1)]
    expected = "@bytes:\n" + "".join(f"{label:<16}{c:>8} |{bar(c):<52}|\n" for label, c in rows) + "\n"
    assert text == expected
    assert all(len(line) <= 80 for line in text.splitlines())


def test_lhist_labels_and_json() -> None:
    m = Map("@l")
    m.lhist(np.array([-1, 0, 1023, 1024, 2047, 5000]), 0, 4096, 1024)
    out = m.snapshot()
    lines = render_text(out).splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["(...,", "[0,", "[1K,", "[2K,", "[3K,", "[4K,"]
    assert lines[1].startswith("(..., 0)") and lines[-2].startswith("[4K, ...)")
    data = json.loads(render_json(out))
    assert data == {"type": "hist", "data": {"@l": [
        {"max": -1, "count": 1}, {"min": 0, "max": 1023, "count": 2}, {"min": 1024, "max": 2047, "count": 2},
        {"min": 2048, "max": 3071, "count": 0}, {"min": 3072, "max": 4095, "count": 0},
        {"min": 4096, "count": 1}]}}


def test_maps_print_sorted_by_value_and_json_like_bpftrace() -> None:
    m = Map("@")
    m.count((StrColumn.from_list(["b", "a", "b", "c", "b", "a"]), np.array([1, 2, 1, 3, 1, 2])))
    out = m.snapshot()
    assert render_text(out) == "@[c, 3]: 1\n@[a, 2]: 2\n@[b, 1]: 3\n\n"
    assert render_json(out) == '{"type": "map", "data": {"@": {"c,3": 1, "a,2": 2, "b,1": 3}}}\n'
    assert render_text(m.snapshot(top=1)) == "@[b, 1]: 3\n\n"
    s = Map("@s")
    s.stats(np.array([1, 2, 6]))
    assert render_text(s.snapshot()) == "@s: count 3, average 3, total 9\n\n"
    assert json.loads(render_json(s.snapshot())) == {"type": "stats", "data": {"@s": {"count": 3, "average": 3,
                                                                                      "total": 9}}}
    assert render_json(PrintfOutput("hi\n")) == '{"type": "printf", "data": "hi\\n"}\n'
    assert render_text(Map("@empty").snapshot()) == ""


def test_printf_formats_like_c() -> None:
    spec = parse_format("%-6s|%5d|%x|%u|%c|%%|%03i\n")
    assert spec.convs == ("s", "d", "x", "u", "c", "i")
    from memtrace.tracer.probes import format_rows

    rows = format_rows(spec, [StrColumn.from_list(["ab", "c"]), np.array([7, -7]), np.array([255, -1]),
                              np.array([1, -1]), np.array([65, 97]), 5], 2)
    assert rows == ["ab    |    7|ff|1|A|%|005\n",
                    f"c     |   -7|{(1 << 64) - 1:x}|{(1 << 64) - 1}|a|%|005\n"]
    with pytest.raises(ValueError, match="unsupported printf conversion '%q'"):
        parse_format("%q")


def test_sim_strftime_reads_time_since_boot() -> None:
    assert sim_strftime("%H:%M:%S", 3_723_000_000_123) == "01:02:03"
    assert sim_strftime("%S.%f", 1_500_000_000) == "01.500000"


# ----------------------------------------------------------------------------- the tracer


def test_probe_with_predicate_counts_per_comm_from_the_process_table() -> None:
    s = Stream().start(100, "db").start(101, "web")
    s.emit("page_fault", [1, 2, 3, 4, 5], [100, 101, 101, 100, 101], n=5, major=[1, 0, 1, 1, 0],
           vma_kind=["anon_private", "file_shared", "anon_private", "heap", "anon_private"])
    s.emit("fork", 6, 101, child_pid=102, child_comm="web-child")
    s.emit("page_fault", 7, 102, vma_kind="heap")
    s.emit("page_fault", 8, 999)
    tracer = Tracer()
    m = tracer.map("@faults")
    tracer.probe("page_*", lambda ev: m.count((ev.comm, ev.vma_kind)), predicate=lambda ev: ev.major == 0)
    run_batches(tracer, s.batches)
    expected: Counter[tuple[str, str]] = Counter()
    comms = {0: "swapper/0"}
    for rec in s.records():
        f = rec.fields
        if rec.name == "process_start":
            comms[f["pid"]] = f["comm"]
        elif rec.name == "fork":
            comms[f["child_pid"]] = f["child_comm"]
        elif rec.name == "page_fault" and not f["major"]:
            expected[(comms.get(f["pid"], "[unknown]"), f["vma_kind"])] += 1
    assert dict(m) == dict(expected)
    assert ("[unknown]", "anon_private") in m and ("web-child", "heap") in m


def test_printf_of_two_probes_interleaves_in_event_order() -> None:
    s = Stream()
    s.emit("page_fault", [1, 2, 3], 100, n=3, address=[10, 20, 30], write=[1, 0, 1])
    tracer = Tracer()
    tracer.probe("page_fault", lambda ev: ev.printf("A %d\n", ev.address))
    tracer.probe("page_fault", lambda ev: ev.printf("B %d\n", ev.address), predicate=lambda ev: ev.write)
    run_batches(tracer, s.batches)
    assert [o.text for o in tracer.outputs if isinstance(o, PrintfOutput)] == \
        ["A 10\n", "B 10\n", "A 20\n", "A 30\n", "B 30\n"]


def test_segments_make_read_after_write_per_event() -> None:
    """A probe reading what it wrote for the same key earlier in the batch sees it,
    as it would one event at a time."""
    keys = [1, 2, 1, 1, 3, 2]
    s = Stream()
    s.emit("page_fault", list(range(1, 7)), 100, n=6, pfn=keys)
    tracer = Tracer()
    seen = tracer.map("@seen")

    def action(ev: Any) -> None:
        before = seen.lookup(ev.pfn, n=ev.n)
        ev.printf("%d:%d\n", ev.pfn, before)
        seen.count(ev.pfn, n=ev.n)

    tracer.probe("page_fault", action, segment=lambda ev: cuts_unique([ev.pfn.tolist()], ev.n))
    run_batches(tracer, s.batches)
    running: Counter[int] = Counter()
    expected = []
    for k in keys:
        expected.append(f"{k}:{running[k]}\n")
        running[k] += 1
    assert [o.text for o in tracer.outputs if isinstance(o, PrintfOutput)] == expected


def test_cuts() -> None:
    assert cuts_unique([[1, 2, 1, 3, 3]], 5).tolist() == [2, 4]
    assert cuts_unique([[1, 2, 3]], 3).tolist() == []
    assert cuts_isolate(np.array([False, True, False, False, True]), 5).tolist() == [1, 2, 4]


def test_interval_fires_on_simulated_time_and_at_end() -> None:
    s = Stream()
    s.emit("page_fault", [10 * MS, 90 * MS, 110 * MS, 120 * MS, 350 * MS], 100, n=5)
    s.emit("page_cache_add", 80 * MS, 100)  # an earlier timestamp after a later one
    s.emit("page_fault", 399 * MS, 100)
    tracer = Tracer()
    faults = tracer.map("@")
    tracer.probe("page_fault", lambda ev: faults.count(n=ev.n))

    def tick(ev: Any) -> None:
        ev.printf("%d %d\n", ev.nsecs // MS, faults.lookup(n=1))
        faults.clear()

    tracer.interval(100 * MS, tick)
    run_batches(tracer, s.batches)
    # Boundaries at 100, 200, 300 ms are crossed by the events at 110 and 350 ms;
    # the END firing carries the latest time seen.
    assert [o.text for o in tracer.outputs if isinstance(o, PrintfOutput)] == \
        ["100 2\n", "200 2\n", "300 0\n", "399 2\n"]


def test_interval_firings_are_bounded_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timestamp 2**62 ns ahead (146 years) would fire interval:s:1 4.6e9 times:
    the run stops with one MemtraceError naming the interval and the count before
    firing any of them; up to the bound (here 10) the firings all happen."""
    s = Stream()
    s.emit("page_fault", 1 * MS, 100)
    s.emit("page_fault", 1 << 62, 100)
    tracer = Tracer()
    fired = []
    tracer.interval(1_000_000_000, lambda ev: fired.append(ev.nsecs), "interval:s:1")
    with pytest.raises(MemtraceError, match=r"^interval:s:1 would fire 4,611,686,018 more times to reach "
                                            r"simulated time 4,611,686,018\.427 s, beyond the 1,000,000"):
        run_batches(tracer, s.batches)
    assert fired == []

    monkeypatch.setattr(runtime, "MAX_INTERVAL_FIRINGS", 10)
    s = Stream()
    s.emit("page_fault", [5 * MS, 10 * MS], 100, n=2)
    s.emit("page_fault", 11 * MS, 100)
    tracer = Tracer()
    tracer.interval(MS, lambda ev: fired.append(ev.nsecs), "interval:ms:1")
    with pytest.raises(MemtraceError, match="interval:ms:1 would fire 1 more times"):
        run_batches(tracer, s.batches)
    assert fired == [t * MS for t in range(1, 11)]


def test_printf_widths_and_precisions_are_bounded() -> None:
    """%999999999d would write a gigabyte per event: a width or precision over 1000
    is refused, naming the conversion; 1000 itself is accepted."""
    assert parse_format("%1000d|%.1000s").convs == ("d", "s")
    for fmt, what in (("%1001d", "width 1001 in '%1001d'"), ("%-5.99999999999s", "precision 99999999999"),
                      ("%0999999999x", "width 999999999")):
        with pytest.raises(ValueError, match=f"printf field {what}"):
            parse_format(fmt)


def test_exit_stops_at_the_event_and_end_still_runs() -> None:
    s = Stream()
    s.emit("page_fault", [1, 2, 3, 4], 100, n=4, address=[1, 2, 3, 4])
    s.emit("page_fault", 5, 100, address=5)
    tracer = Tracer()
    m = tracer.map("@")
    tracer.probe("page_fault", lambda ev: m.count(n=ev.n))
    tracer.probe("page_fault", lambda ev: ev.tracer.exit(), predicate=lambda ev: ev.address == 2,
                 segment=lambda ev: cuts_isolate(ev.address == 2, ev.n))
    tracer.end(lambda ev: ev.printf("end\n"))
    run_batches(tracer, s.batches)
    assert m.value == 2
    assert tracer.outputs[0] == PrintfOutput("end\n")


def test_live_on_a_bus_equals_replayed_batches() -> None:
    def program(tracer: Tracer) -> None:
        m = tracer.map("@")
        tracer.probe("*", lambda ev: m.count((ev.comm, ev.probe_name)))
        tracer.interval(100 * MS, lambda ev: ev.print(m))

    live = Tracer()
    program(live)
    s = Stream()
    live.attach(s.bus)
    pressure = pressure_stream()
    for b in pressure.batches:  # re-emit the same events on a bus the tracer is attached to
        s.bus.emit(b.tp, b.columns["ts_ns"], b.columns["pid"], b.n,
                   **{k: v for k, v in b.columns.items() if k not in ("seq", "ts_ns", "pid")})
    live.finish()
    replay = Tracer()
    program(replay)
    run_batches(replay, pressure.batches)
    assert live.outputs == replay.outputs
    assert isinstance(live.outputs[0], MapOutput)


def test_time_and_print_value_outputs() -> None:
    s = Stream().emit("page_fault", 61 * 1_000_000_000, 100)
    tracer = Tracer()
    tracer.probe("page_fault", lambda ev: (ev.time(), ev.print_value(ev.comm)))
    run_batches(tracer, s.batches)
    assert tracer.outputs == [TimeOutput("00:01:01\n"), ValueOutput("[unknown]")]
    assert Hist((0,) * 65).buckets() == [] and LHist(0, 10, 1, (0,) * 12).total == 0
