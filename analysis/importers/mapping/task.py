"""``task:`` -> ``task_rename``; ``task_newtask`` tells a thread from a process.

``task:task_rename`` (``pid=%d oldcomm=%s newcomm=%s oom_score_adj=%hd``) fires on
every comm change: prctl(PR_SET_NAME), a write to /proc/PID/comm, and each exec
(fs/exec.c begin_new_exec() sets the comm). One inside an execve is the exec's (the
exec handlers follow, :mod:`.sched` and :mod:`.syscalls`); any other is a rename:
the process keeps its mappings. ``task:task_newtask`` (``pid=%d comm=%s
clone_flags=%lx oom_score_adj=%hd``, in the parent's context) names a thread
(CLONE_THREAD), which joins its process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .fields import PARSE_ERRORS, UnreadableLine, c_int, c_ulong, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["CLONE_THREAD", "Task"]

#: include/uapi/linux/sched.h
CLONE_THREAD = 0x00010000


class Task:
    """The ``task`` system: comm changes and new tasks."""

    SYSTEM = "task"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b

    def handlers(self) -> dict[str, Handler]:
        return {"task_rename": self._rename, "task_newtask": self._newtask}

    def _rename(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            new = f["newcomm"]
            c_int(f.get("pid", pid), "pid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        b = self.b
        if b.syscalls.in_execve(b.tid):
            b.summary("task_rename (of an exec)")
            return True
        b.rename(pid, ts, new)
        return True

    def _newtask(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            child = c_int(f["pid"], "pid")
            flags = c_ulong(int(f.get("clone_flags", "0"), 16), "clone_flags")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        if flags & CLONE_THREAD:
            self.b.thread(child, pid)
        self.b.summary("task_newtask")
        return True
