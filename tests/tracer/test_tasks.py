"""The one task table: what each task event says of a pid."""

from __future__ import annotations

from typing import Any

from memtrace.tracer import EventBatch, default_registry
from memtrace.tracer.tasks import UNKNOWN_COMM, TaskTable

REGISTRY = default_registry()


def batch(name: str, seq: int, ts_ns: int, pid: int, **fields: Any) -> EventBatch:
    tp = REGISTRY[name]
    values: dict[str, Any] = {"seq": seq, "ts_ns": ts_ns, "pid": pid}
    for f in tp.fields:
        values[f.name] = fields.get(f.name, "" if f.type == "str" else (f.values[0] if f.type == "enum" else 0))
    return EventBatch.build(tp, 1, values)


def test_a_fork_inherits_uid_adj_and_cgroup_and_an_exit_keeps_the_name() -> None:
    t = TaskTable()
    t.on_batch(batch("process_start", 0, 10, 100, comm="db", uid=1000, oom_score_adj=200))
    t.on_batch(batch("cgroup", 1, 11, 100, op="attach", path="/c", memcg_id=3, task_pid=100))
    t.on_batch(batch("fork", 2, 20, 100, child_pid=101, child_comm="db"))
    t.on_batch(batch("exit", 3, 30, 101, comm="db", code=0))
    child = t.get(101)
    assert child is not None
    assert (child.parent, child.uid, child.oom_score_adj, child.memcg_id) == (100, 1000, 200, 3)
    assert (child.start_ns, child.exit_ns, child.alive) == (20, 30, False)
    assert t.comm(101) == "db" and t.comm(999) == UNKNOWN_COMM
    assert [x.pid for x in t.alive()] == [100]


def test_a_restart_of_a_live_pid_renames_it_and_a_dead_pid_starts_anew() -> None:
    t = TaskTable()
    t.on_batch(batch("oom_score_adj_update", 0, 5, 7, comm="early", oom_score_adj=-500))
    t.on_batch(batch("process_start", 1, 10, 7, comm="web", uid=0, oom_score_adj=-500))
    first = t.get(7)
    assert first is not None and (first.comm, first.start_ns) == ("web", 10)
    t.on_batch(batch("exit", 2, 20, 7, comm="web", code=9))
    t.on_batch(batch("process_start", 3, 30, 7, comm="other", uid=5, oom_score_adj=0))
    second = t.get(7)
    assert second is not None and second is not first
    assert (second.comm, second.start_ns, second.alive, second.uid) == ("other", 30, True, 5)


def test_oom_kill_marks_the_victim() -> None:
    t = TaskTable()
    t.on_batch(batch("process_start", 0, 1, 9, comm="leaker", uid=0, oom_score_adj=0))
    t.on_batch(batch("oom_kill", 1, 2, 3, victim_pid=9, comm="leaker"))
    victim = t.get(9)
    assert victim is not None and victim.oom_victim and t.get(3) is None


def test_a_schema_without_the_fields_read_is_not_folded() -> None:
    """A trace written with another schema (a process_start without uid) is skipped,
    not a KeyError; ``started`` names the tasks a batch starts."""
    from memtrace.tracer import Field, Tracepoint

    old = Tracepoint("process_start", "", (Field("comm", "str", ""),))
    b = EventBatch.build(old, 1, {"seq": 0, "ts_ns": 1, "pid": 5, "comm": "x"})
    t = TaskTable()
    assert not t.folds(b)
    t.on_batch(b)
    assert len(t) == 0
    fork = batch("fork", 1, 2, 5, child_pid=6, child_comm="y")
    assert t.folds(fork) and t.started(fork) == [6] and t.started(batch("exit", 2, 3, 6, comm="y")) == []
