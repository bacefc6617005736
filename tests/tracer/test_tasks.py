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


def starts(pids: list[int], seq0: int = 0, comm: str = "p") -> EventBatch:
    n = len(pids)
    return EventBatch.build(REGISTRY["process_start"], n, {
        "seq": list(range(seq0, seq0 + n)), "ts_ns": list(range(seq0, seq0 + n)), "pid": pids,
        "comm": [comm] * n, "uid": [0] * n, "oom_score_adj": [0] * n})


def test_a_full_table_forgets_the_longest_exited_first() -> None:
    """MAX_TASKS rows (here 3): an exited task's name stays until room is needed."""
    t = TaskTable(max_tasks=3)
    t.on_batch(starts([10, 11, 12]))
    t.on_batch(batch("exit", 3, 3, 11, comm="p"))
    t.on_batch(batch("exit", 4, 4, 10, comm="p"))
    assert t.comm(11) == "p" and t.comm(10) == "p"
    t.on_batch(starts([13], 5))
    assert t.get(11) is None and t.comm(10) == "p" and t.get(13) is not None  # 11 exited first
    t.on_batch(starts([14], 6))
    assert t.get(10) is None and len(t) == 3 and t.dropped == 0 and t.warning() is None


def test_a_table_full_of_live_tasks_keeps_its_rows_and_counts_the_rest() -> None:
    """Past the bound with every row live, new pids are dropped (named [unknown]);
    known pids still update, in the vectorised path too."""
    t = TaskTable(max_tasks=4)
    t.on_batch(starts([1, 2, 3, 4]))
    t.on_batch(starts([5, 2, 6, 7, 3], 4, comm="again"))
    assert [x.pid for x in t] == [1, 2, 3, 4] and t.dropped == 3
    assert t.comm(2) == "again" and t.comm(3) == "again" and t.comm(5) == UNKNOWN_COMM
    t.on_batch(batch("fork", 9, 9, 1, child_pid=8, child_comm="kid"))
    assert t.get(8) is None and t.dropped == 4
    assert t.warning() == "more than 4 live tasks: 4 were not kept and their events name [unknown]"
    t.on_batch(batch("exit", 10, 10, 4, comm="p"))
    t.on_batch(starts([9], 11))
    assert t.get(4) is None and t.comm(9) == "p"


def test_the_tracer_bounds_its_path_table(monkeypatch: Any) -> None:
    import memtrace.tracer.probes.runtime as runtime
    from memtrace.tracer import Tracer

    monkeypatch.setattr(runtime, "MAX_PATHS", 2)
    tracer = Tracer()
    tp = REGISTRY["file_open"]
    tracer.probe("file_open", lambda ev: None)
    tracer.on_batch(EventBatch.build(tp, 3, {"seq": [0, 1, 2], "ts_ns": [0, 1, 2], "pid": [1, 1, 1],
                                             "path": ["/a", "/b", "/c"], "ino": [1, 2, 3], "size_bytes": [0] * 3,
                                             "shmem": [False] * 3, "created": [False] * 3}))
    tracer.finish()
    assert tracer.paths == {1: "/a", 2: "/b"}
    assert tracer.warnings == ["more than 2 files or 64 Mi characters of paths: 1 were not kept (path() names "
                               "them [ino N])"]


def test_one_pid_started_and_ended_many_times_keeps_the_exit_queue_bounded() -> None:
    """5000 lives of pid 7 (start, exit): one row, and the queue of exited rows is
    compacted (at most twice the rows, or 2048) instead of holding 5000 tasks."""
    t = TaskTable(max_tasks=8)
    for i in range(5000):
        t.on_batch(starts([7], 2 * i))
        t.on_batch(batch("exit", 2 * i + 1, 2 * i + 1, 7, comm="p"))
    task = t.get(7)
    assert len(t) == 1 and task is not None and task.exit_ns == 9999
    assert len(t._exited) <= 2048
