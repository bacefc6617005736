"""``sched:`` -> ``fork``, ``exit``, ``exec``.

``sched_process_fork`` (``comm=%s pid=%d child_comm=%s child_pid=%d``) fires for
every new task, threads too: a child cloned with CLONE_THREAD (the flags of the
parent's ``sys_enter_clone``, when traced) joins its process and is no ``fork``.
``sched_process_exit`` (``comm=%s pid=%d prio=%d``) prints no exit code: the
``exit_group`` the process entered gives it (else 0); its mm is torn down after it
(the counters that fall then are no steps of the workload). ``sched_process_exec``
(``filename=%s pid=%d old_pid=%d``) is an exec: the process's old mappings go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .fields import PARSE_ERRORS, UnreadableLine, c_int, kv_fields
from .task import CLONE_THREAD

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
        b = self.b
        flags = b.syscalls.clone_flags(b.tid)
        if flags is not None and flags & CLONE_THREAD:
            b.thread(child, pid)
            b.summary("sched_process_fork (a thread)")
            return True
        parent = b.tgid.get(parent, parent)
        ccomm = f.get("child_comm", comm)
        self.out.emit("fork", ts, parent, child, ccomm, 0)
        b.comms.setdefault(child, ccomm)
        self.work.fork(parent, child)
        return True

    def _exit(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            who = c_int(f.get("pid", pid), "pid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        b = self.b
        if who != pid and b.tgid.get(who) == pid:
            # A thread exits; its process goes on (group_dead=false).
            b.summary("sched_process_exit (a thread)")
            return True
        p = self.work.procs.get(who)
        if f.get("group_dead") == "false" and p is not None:
            b.summary("sched_process_exit (a thread)")
            return True
        self.out.emit("exit", ts, who, f.get("comm", comm), p.exit_code if p is not None else 0)
        if p is not None:
            self.work.tick(p, ts)
            self.work.exit(p, ts)
        return True

    def _exec(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            old_pid = c_int(f.get("old_pid", pid), "old_pid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        b = self.b
        b.execs_traced = True
        filename = payload.partition("filename=")[2].rpartition(" pid=")[0] if "filename=" in payload else ""
        b.syscalls.exec_done(b.tid)
        b.exec(pid, ts, comm, filename, old_pid)
        return True
