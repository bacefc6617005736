"""The tracer: predicates, comm from the task table, output in event order, segments,
intervals on simulated time, exit(), live and replayed runs alike.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from memtrace.errors import MemtraceError, NotFoundError
from memtrace.tracer.probes import (
    Hist,
    LHist,
    MapOutput,
    PrintfOutput,
    TimeOutput,
    Tracer,
    ValueOutput,
    cuts_isolate,
    cuts_unique,
    run_batches,
    runtime,
)

from ..helpers import MS, Stream, pressure_stream


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


def test_comm_follows_the_task_table_and_pid_0_is_the_idle_task() -> None:
    """comm is the task table's: a pid only an oom_score_adj_update named has that
    event's comm, an exit keeps the last name, pid 0 is swapper/0 and a pid no
    event named is [unknown]."""
    s = Stream().start(100, "db")
    s.emit("oom_score_adj_update", 2, 300, comm="sshd", oom_score_adj=-1000)
    s.emit("exit", 3, 100, comm="db", code=0)
    s.emit("page_fault", [4, 5, 6, 7], [100, 300, 0, 999], n=4)
    tracer = Tracer()
    tracer.probe("page_fault", lambda ev: ev.printf("%d %s\n", ev.pid, ev.comm))
    run_batches(tracer, s.batches)
    assert [o.text for o in tracer.outputs if isinstance(o, PrintfOutput)] == [
        "100 db\n", "300 sshd\n", "0 swapper/0\n", "999 [unknown]\n"]


def test_task_only_events_name_tasks_without_moving_the_clock() -> None:
    """An OOM kill the probes do not trace renames nothing it should not and does
    not move the tracer's clock: elapsed counts from the first traced event and END
    runs at the latest traced one."""
    s = Stream().start(100, "db", ts_ns=10 * MS)
    s.emit("page_fault", 20 * MS, 100)
    s.emit("oom_kill", 90 * MS, 100, victim_pid=100, comm="db")
    tracer = Tracer()
    tracer.probe("page_fault", lambda ev: ev.printf("%d\n", ev.elapsed))
    tracer.end(lambda ev: ev.printf("end %d\n", ev.nsecs))
    assert "oom_kill" in tracer.tracepoints() and "oom_kill" not in tracer.traced()
    run_batches(tracer, s.batches)
    assert [o.text for o in tracer.outputs if isinstance(o, PrintfOutput)] == [f"{10 * MS}\n", f"end {20 * MS}\n"]
    victim = tracer.tasks.get(100)
    assert victim is not None and victim.oom_victim


def test_an_unknown_tracepoint_pattern_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no tracepoint matches 'nosuch_\\*'"):
        Tracer().probe("nosuch_*", lambda ev: None)
