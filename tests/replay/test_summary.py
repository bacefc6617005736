"""The summary's names and counters, on hand-made traces whose answers are set by
the events themselves."""

from __future__ import annotations

from pathlib import Path

from memtrace.replay import COUNTERS, summarize_trace
from memtrace.tracer import Bus, Registry

from .helpers import emit, write_trace


def _refusals(bus: Bus, reg: Registry) -> None:
    """db (pid 10) forks worker (pid 11); a second db (pid 12) starts; refusals of
    worker's and of pid 99's mmap (99 was never named)."""
    emit(bus, reg, "process_start", 0, 10, comm="db", uid=0, oom_score_adj=0)
    emit(bus, reg, "fork", 1, 10, child_pid=11, child_comm="worker")
    emit(bus, reg, "process_start", 2, 12, comm="db", uid=0, oom_score_adj=0)
    for pid in (11, 99):
        emit(bus, reg, "vm_enough_memory", 3, pid, nr_pages=1, mode=2, op="mmap")
    emit(bus, reg, "swap_out", 4, 10, 2, pfn=[1, 2], slot=[0, 1], owner=10)


def test_names_come_from_the_task_events(tmp_path: Path) -> None:
    """Without a footer the refusals come from events: a pid's comm is what the
    task events said of it ("" for a pid none named); each comm maps to the first
    pid started with it."""
    s = summarize_trace(write_trace(tmp_path / "r.mtrace", _refusals, close=False))
    assert [(r.pid, r.comm, r.op) for r in s.refusals] == [(11, "worker", "mmap"), (99, "", "mmap")]
    assert s.pids == {"db": 10, "worker": 11}


def test_every_counter_is_a_figure_of_the_summary(tmp_path: Path) -> None:
    s = summarize_trace(write_trace(tmp_path / "r.mtrace", _refusals))
    assert list(s.counters()) == [c.key for c in COUNTERS]
    assert all(getattr(s, c.key) == s.counters()[c.key] for c in COUNTERS)
    assert s.swap_outs == 2 and s.major_faults == 0
