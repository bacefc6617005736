"""Tasks: who each pid is, folded once by the trace's task table.

The comm, uid, oom_score_adj, parent, memory cgroup, start, exit and OOM-victim mark
of a process are :class:`memtrace.tracer.tasks.TaskTable`'s (the one table every
analysis reads); this provider hands it the task events and makes the
:class:`~.model.Process` of each pid they name, so that the mm side (VMAs, page
tables, RSS) has a home. A pid an mm event names first reads as comm ``?`` until a
task event names it.
"""

from __future__ import annotations

import numpy as np

from memtrace.tracer import EventBatch

from .provider import StateProvider, folds

__all__ = ["TaskProvider"]


class TaskProvider(StateProvider):
    """process_start, fork, exec, task_rename, exit, oom_score_adj_update, cgroup
    attach and oom_kill into the task table (kernel/fork.c copy_process(),
    fs/exec.c begin_new_exec(), kernel/exit.c do_exit(),
    /proc/PID/oom_score_adj, cgroup.procs, mm/oom_kill.c mark_oom_victim())."""

    def _table(self, batch: EventBatch) -> None:
        self.state.tasks.on_batch(batch)

    def _known(self, batch: EventBatch, field: str) -> EventBatch:
        """``batch`` without the events of pids the state cannot keep (past
        MAX_TASKS processes: see State.proc)."""
        mask = self.state.known_pids(batch.ints(field).astype(np.int64))
        return batch if mask is None else batch.take(np.flatnonzero(mask))

    @folds("process_start", reads=("comm", "uid", "oom_score_adj"), keep=True)
    def _process_start(self, batch: EventBatch) -> None:
        batch = self._known(batch, "pid")
        for pid, comm in zip(batch.ints("pid").tolist(), batch.strs("comm")):
            self.state.proc(pid, comm)
        self._table(batch)

    @folds("fork", reads=("child_pid", "child_comm"), keep=True)
    def _fork(self, batch: EventBatch) -> None:
        batch = self._known(batch, "child_pid")
        for pid, child_pid, child_comm in zip(batch.ints("pid").tolist(), batch.ints("child_pid").tolist(),
                                              batch.strs("child_comm")):
            self.state.proc(pid)
            self.state.proc(child_pid, child_comm)
        self._table(batch)

    @folds("exec", reads=("comm",), keep=True)
    @folds("task_rename", reads=("newcomm",), keep=True)
    def _comm(self, batch: EventBatch) -> None:
        """fs/exec.c begin_new_exec() and __set_task_comm(): a new comm (and, for an
        exec, a new image: the table counts it)."""
        for pid in batch.ints("pid").tolist():
            self.state.proc(pid)
        self._table(batch)

    @folds("exit", reads=("comm", "code"), keep=True)
    def _exit(self, batch: EventBatch) -> None:
        pids: list[int] = batch.ints("pid").tolist()
        for pid, comm in zip(pids, batch.strs("comm")):
            self.state.proc(pid, comm)
        self._table(batch)
        for pid in pids:
            self.state.exited(pid)

    @folds("oom_score_adj_update", reads=("comm", "oom_score_adj"), keep=True)
    def _oom_score_adj_update(self, batch: EventBatch) -> None:
        for pid, comm in zip(batch.ints("pid").tolist(), batch.strs("comm")):
            self.state.proc(pid, comm)
        self._table(batch)

    @folds("cgroup", reads=("op", "task_pid", "memcg_id"), keep=True)
    def _cgroup(self, batch: EventBatch) -> None:
        for op, task_pid in zip(batch.enum_names("op"), batch.ints("task_pid").tolist()):
            if op == "attach":
                self.state.proc(task_pid)
        self._table(batch)

    @folds("oom_kill", reads=("victim_pid", "comm"), keep=True)
    def _oom_kill(self, batch: EventBatch) -> None:
        for victim, comm in zip(batch.ints("victim_pid").tolist(), batch.strs("comm")):
            self.state.proc(victim, comm)
        self._table(batch)
