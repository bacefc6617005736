"""What a live capture traces, and how the kernel is told: ``set_event_pid``.

tracefs filters events by task in the kernel with ``set_event_pid`` (a list of task
ids) and, with ``options/event-fork`` on, adds each child a listed task forks (and
drops it when it is freed): so ``-p PID`` traces PID's threads and every descendant
from then on. There is no cgroup filter for tracepoint events (perf's ``-G`` and BPF
have one; the ``filter`` files reject ``cgroup``), so ``--cgroup`` lists the cgroup's
tasks (v1 ``tasks``, v2 ``cgroup.threads``), read again until a read adds none,
and lets event-fork follow their children; a task moved into the cgroup later is not
followed. ``-c`` starts the command stopped (its shell stops itself before it
``exec``\\s the command, which keeps the pid), lists it, and continues it once tracing
is on. ``-a`` traces every task but the capture's own (``set_event_notrace_pid``:
reading the buffers makes events).

With a pid filter the kernel threads that act on a target's memory would be missed:
``oom_reaper`` (reaping a victim) and ``kswapd`` (reclaim). They are listed too; they
never fork, so event-fork does not spread from them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from typing import Literal

from memtrace.errors import CaptureError

__all__ = [
    "CGROUP_ROOTS",
    "KTHREADS",
    "LiveTarget",
    "TaskInfo",
    "cgroup_dir",
    "cgroup_tasks",
    "kthread_pids",
    "read_task",
    "start_stopped",
    "tids_of",
]

#: Kernel threads whose events matter to a pid-filtered capture.
KTHREADS = re.compile(r"(oom_reaper|kswapd\d+)")
#: Where a cgroup named by its path inside a hierarchy is looked for (v1 memory, v2).
CGROUP_ROOTS = ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")

TargetMode = Literal["all", "pids", "command", "cgroup"]


@dataclass(frozen=True)
class LiveTarget:
    """What a live capture traces: every task (``-a``), processes and their
    descendants (``-p``), a command it starts (``-c``, run by ``/bin/sh -c``), or the
    tasks of a cgroup (``--cgroup``, a directory or a path in the memory hierarchy)."""

    mode: TargetMode
    pids: tuple[int, ...] = ()
    command: str | None = None
    cgroup: str | None = None

    def __post_init__(self) -> None:
        if self.mode == "pids" and not self.pids:
            raise CaptureError("-p needs at least one pid")
        if self.mode == "command" and not (self.command or "").strip():
            raise CaptureError("-c needs a command")
        if self.mode == "cgroup" and not self.cgroup:
            raise CaptureError("--cgroup needs a path")
        bad = [p for p in self.pids if p <= 0]
        if bad:
            raise CaptureError(f"-p {bad[0]}: not a process id")

    @classmethod
    def everything(cls) -> LiveTarget:
        return cls("all")

    @classmethod
    def processes(cls, *pids: int) -> LiveTarget:
        return cls("pids", pids=tuple(pids))

    @classmethod
    def run(cls, command: str) -> LiveTarget:
        return cls("command", command=command)

    @classmethod
    def of_cgroup(cls, path: str) -> LiveTarget:
        return cls("cgroup", cgroup=path)

    def describe(self) -> str:
        """One phrase: ``every task``, ``pid 12 34``, ``command 'x'``, ``cgroup /a``."""
        if self.mode == "all":
            return "every task"
        if self.mode == "pids":
            return f"pid{'s' if len(self.pids) > 1 else ''} {' '.join(map(str, self.pids))}"
        if self.mode == "command":
            return f"command {self.command!r}"
        return f"cgroup {self.cgroup}"


@dataclass(frozen=True)
class TaskInfo:
    """A task as /proc shows it: thread id, its process (tgid) and comm."""

    tid: int
    tgid: int
    comm: str


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_task(tid: int) -> TaskInfo | None:
    """Task ``tid`` from ``/proc/TID/status`` (Tgid) and ``comm``; None when gone."""
    status = _read(f"/proc/{tid}/status")
    comm = _read(f"/proc/{tid}/comm")
    if status is None or comm is None:
        return None
    m = re.search(r"^Tgid:\s*(\d+)", status, re.M)
    return TaskInfo(tid, int(m.group(1)) if m else tid, comm.rstrip("\n"))


def tids_of(pid: int) -> list[int]:
    """The thread ids of process ``pid`` (empty when it is gone)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit())
    except OSError:
        return []


def kthread_pids() -> list[int]:
    """The pids of ``oom_reaper`` and ``kswapdN``."""
    out: list[int] = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            comm = _read(f"/proc/{d}/comm")
            if comm is not None and KTHREADS.fullmatch(comm.strip()):
                out.append(int(d))
    return sorted(out)


def cgroup_dir(path: str) -> str:
    """The directory of cgroup ``path``: itself when it is one, else ``path`` inside
    the memory hierarchy (v1) or the unified one (v2); CaptureError when none."""
    candidates = [path] if os.path.isabs(path) else []
    candidates += [os.path.join(root, path.lstrip("/")) for root in CGROUP_ROOTS]
    for d in candidates:
        if any(os.path.exists(os.path.join(d, name)) for name in ("tasks", "cgroup.threads", "cgroup.procs")):
            return d
    raise CaptureError(f"--cgroup {path}: no such cgroup (give its directory, e.g. /sys/fs/cgroup/memory/NAME)")


def cgroup_tasks(directory: str) -> set[int]:
    """Every task (thread) of the cgroup at ``directory``: v1 ``tasks``, v2
    ``cgroup.threads`` (``cgroup.procs`` where that is missing)."""
    for name in ("tasks", "cgroup.threads", "cgroup.procs"):
        text = _read(os.path.join(directory, name))
        if text is not None:
            return {int(x) for x in text.split()}
    raise CaptureError(f"cannot read the tasks of cgroup {directory}")


def _ends_with_parent() -> list[str]:
    """The argv prefix that asks for SIGTERM when the capture dies: util-linux's
    ``setpriv --pdeathsig`` (kernel/sys.c prctl(PR_SET_PDEATHSIG); kept across exec
    but a set-user-ID one's), so a capture killed with ``kill -9`` does not leave its
    command running untraced. Empty where there is no setpriv. (Not a ``preexec_fn``:
    that makes subprocess fork() the whole capture instead of spawning, and the
    command's first rss_stat values then differed from its VmRSS by 16 pages.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def start_stopped(command: str) -> subprocess.Popen[bytes]:
    """``/bin/sh -c 'kill -STOP $$; exec COMMAND'``, waited for until it has stopped
    itself: its pid is the command's once continued (exec keeps the pid). It gets
    SIGTERM if the capture dies (:func:`_ends_with_parent`), as it does when the
    capture stops first (:func:`end_command`)."""
    child = subprocess.Popen([*_ends_with_parent(), "/bin/sh", "-c", f"kill -STOP $$; exec {command}"])
    _pid, status = os.waitpid(child.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        with contextlib.suppress(OSError):
            child.wait(timeout=1)
        raise CaptureError(f"-c {command!r}: the command's shell did not start (status {status:#x})")
    return child


def end_command(child: subprocess.Popen[bytes], *, grace_s: float = 2.0) -> None:
    """A command still running when its capture ends gets SIGTERM (as ``perf record
    -- CMD`` does), SIGKILL after ``grace_s``; a stopped one is continued first."""
    if child.poll() is not None:
        return
    with contextlib.suppress(OSError):
        child.send_signal(signal.SIGTERM)
        os.kill(child.pid, signal.SIGCONT)
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace_s)
