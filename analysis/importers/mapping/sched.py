"""``sched:`` -> ``fork``, ``exit``; an exec shows as the next line's new comm.

``sched_process_fork`` (``comm=%s pid=%d child_comm=%s child_pid=%d``) and
``sched_process_exit`` (``comm=%s pid=%d prio=%d``) print no charge and no exit code
(written as 0). ``sched_process_exec`` is counted: the comm of the task's next line
names the new image, and the builder then starts the process anew
(``process_start``, its old mappings unmapped in the workload).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .fields import PARSE_ERRORS, UnreadableLine, c_int, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Sched"]


class Sched:
    """The ``sched`` system's process lifetime events."""

    SYSTEM = "sched"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work

    def handlers(self) -> dict[str, Handler]:
        return {"sched_process_fork": self._fork, "sched_process_exit": self._exit,
                "sched_process_exec": self._exec}

    def _fork(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            parent = c_int(f.get("pid", pid), "pid")
            child = c_int(f["child_pid"], "child_pid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        ccomm = f.get("child_comm", comm)
        self.out.emit("fork", ts, parent, child, ccomm, 0)
        self.b.comms.setdefault(child, ccomm)
        return True

    def _exit(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            who = c_int(f.get("pid", pid), "pid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.out.emit("exit", ts, who, f.get("comm", comm), 0)
        p = self.work.procs.get(who)
        if p is not None:
            self.work.close_slice(p, ts)
            p.ended = True
            p.exited = not p.killed_allocating and who not in self.b.oom.killed
        return True

    def _exec(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        self.b.summary("sched_process_exec")
        return True  # the comm change of the next line names the new image
