"""The one table of tasks: pid -> comm, tgid, uid, oom_score_adj, parent, cgroup, life.

Every analysis names processes; they all read this table instead of folding the
task events themselves (the state fold, the dmesg writer, the replay summary, the
one-liner probes and the OOM report). :class:`TaskTable` is a bus consumer: feed it
every batch, in ``seq`` order, and it keeps what these tracepoints say of a task:

=======================  ===================================================
``process_start``        a process appears: comm, uid, oom_score_adj (the
                         simulator's scenario processes; an import's first
                         sight of a process that predates the trace)
``fork``                 a child: comm, parent, uid, oom_score_adj and memcg
                         inherited (kernel/fork.c copy_process()), alive
``exec``                 execve(2) replaced the image: new comm (when the
                         schema has the tracepoint)
``task_rename``          the comm changed without an exec (prctl(PR_SET_NAME),
                         /proc/PID/comm): only the comm (when present)
``exit``                 the task is gone: comm, exit code, exit time; its
                         row stays, so later events still resolve its name
``oom_score_adj_update`` a new oom_score_adj (and the comm the event carries)
``cgroup`` (attach)      the task moved to a memory cgroup
``oom_kill``             the task was chosen as an OOM victim
=======================  ===================================================

Models the fields of struct task_struct (``pid``, ``tgid``, ``comm``,
``real_parent``), struct signal_struct (``oom_score_adj``) and struct cred
(``uid``) that those events show. Threads share their tgid's row: the simulator
has one task per process, and importers fold threads into their tgid.

pid reuse: a ``process_start`` of a pid that exited, or a ``fork`` of any pid,
starts a new row (the old one is forgotten, as the kernel forgets it); a
``process_start`` of a live pid changes its comm and keeps the row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .batch import EventBatch

__all__ = ["MAX_TASKS", "ROOT_MEMCG_ID", "TASK_FIELDS", "TASK_TRACEPOINTS", "UNKNOWN_COMM", "Task", "TaskTable"]

#: The memcg id of the root cgroup (``/``), as the ``cgroup`` tracepoint numbers them.
ROOT_MEMCG_ID = 1
#: The name a pid resolves to before any event named it (bpftrace prints the same).
UNKNOWN_COMM = "[unknown]"
#: Most rows the table keeps: 1,048,576 tasks, about 250 MB. The kernel forgets an
#: exited task; the table keeps its row so later events still resolve its name, up
#: to this many rows, then forgets the longest-exited first. A trace holds no more
#: live tasks than a kernel runs at once (PID_MAX_LIMIT is 4,194,304; real machines
#: run thousands); beyond the bound a new task is not kept (its pid reads
#: ``[unknown]``) and is counted in :attr:`TaskTable.dropped`. Without the bound a
#: 1 MB trace of 80 million process starts filled the machine's memory.
MAX_TASKS = 1 << 20
#: The fields the table reads of each tracepoint it folds (``exit.code`` too, when
#: the schema has it). A reader that must refuse a trace whose schema lacks them
#: checks it with ``check_fields(tp, reader, TASK_FIELDS[tp.name])``.
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "process_start": ("comm", "uid", "oom_score_adj"),
    "fork": ("child_pid", "child_comm"),
    "exec": ("comm",),
    "task_rename": ("newcomm",),
    "exit": ("comm",),
    "oom_score_adj_update": ("comm", "oom_score_adj"),
    "cgroup": ("op", "task_pid", "memcg_id"),
    "oom_kill": ("victim_pid", "comm"),
}
#: The tracepoints the table folds; batches of others are ignored.
TASK_TRACEPOINTS = frozenset(TASK_FIELDS)


@dataclass(slots=True)
class Task:
    """One process as its events show it: struct task_struct's ``pid``, ``tgid``,
    ``comm`` and ``real_parent``, signal_struct's ``oom_score_adj`` and the
    cred's ``uid``. Times are ns since the trace's clock origin; ``None`` is
    unknown (a process that predates the trace has no ``start_ns``)."""

    pid: int
    comm: str
    tgid: int
    uid: int | None = None
    oom_score_adj: int | None = None
    parent: int | None = None
    memcg_id: int = ROOT_MEMCG_ID
    start_ns: int | None = None
    exit_ns: int | None = None
    exit_code: int | None = None
    #: how many times execve(2) replaced its image (a rename is not an exec)
    execs: int = 0
    #: chosen by the OOM killer (``oom_kill``)
    oom_victim: bool = False

    @property
    def alive(self) -> bool:
        """Not yet seen to exit."""
        return self.exit_ns is None

    @property
    def name(self) -> str:
        """``comm (pid N)``, as reports name a task."""
        return f"{self.comm} (pid {self.pid})"


class TaskTable:
    """Folds task events into :class:`Task` rows, keyed by pid (a bus consumer)."""

    def __init__(self, max_tasks: int = MAX_TASKS) -> None:
        self._tasks: dict[int, Task] = {}
        #: exited tasks in exit order: the first to forget when the table is full
        self._exited: deque[Task] = deque()
        self.max_tasks = max_tasks
        #: tasks not kept because every row was a live task (see MAX_TASKS)
        self.dropped = 0
        #: the pids of the rows, sorted, while the table is full (see _known_rows)
        self._known: np.ndarray | None = None

    # -- reading

    def __contains__(self, pid: object) -> bool:
        return pid in self._tasks

    def __iter__(self) -> Iterator[Task]:
        """Every task seen, in the order they first appeared."""
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, pid: int) -> Task | None:
        """The task ``pid``, or None if no event named it."""
        return self._tasks.get(pid)

    def comm(self, pid: int, default: str = UNKNOWN_COMM) -> str:
        """The last comm of ``pid`` (kept after it exits), else ``default``."""
        task = self._tasks.get(pid)
        return task.comm if task is not None else default

    def alive(self) -> list[Task]:
        """The tasks not yet seen to exit, in the order they first appeared."""
        return [t for t in self._tasks.values() if t.alive]

    def warning(self) -> str | None:
        """What the table could not keep, as a warning (None when it kept everything)."""
        if not self.dropped:
            return None
        return (f"more than {self.max_tasks:,} live tasks: {self.dropped:,} were not kept and their events name "
                f"{UNKNOWN_COMM}")

    def _room(self) -> bool:
        """True when a row can be added: the longest-exited rows are forgotten to make
        room; False (counted) when every row is a live task."""
        tasks = self._tasks
        exited = self._exited
        while len(tasks) >= self.max_tasks and exited:
            old = exited.popleft()
            if tasks.get(old.pid) is old:
                del tasks[old.pid]
        if len(tasks) < self.max_tasks:
            self._known = None
            return True
        self.dropped += 1
        return False

    def _remember_exit(self, task: Task) -> None:
        """Queue ``task`` (a row that just exited) to be forgotten first. Rows
        replaced by a reused pid leave stale entries behind; the queue is compacted
        when it holds twice as many entries as the table has rows, so a trace that
        starts and ends one pid millions of times keeps it bounded."""
        exited = self._exited
        exited.append(task)
        if len(exited) > 2 * max(len(self._tasks), 1024):
            tasks = self._tasks
            self._exited = deque(t for t in exited if tasks.get(t.pid) is t)

    def _known_rows(self, pids: np.ndarray) -> np.ndarray | None:
        """While every row is a live task and none can be forgotten: which of
        ``pids`` have a row (the others would be dropped, and are counted); None
        when there is room. Vectorised, so that a trace of millions of task starts
        past the bound costs no Python work per event."""
        if len(self._tasks) < self.max_tasks or self._exited:
            return None
        if self._known is None:
            self._known = np.sort(np.fromiter(self._tasks, dtype=np.int64, count=len(self._tasks)))
        known = self._known
        at = np.minimum(np.searchsorted(known, pids), len(known) - 1)
        mask: np.ndarray = known[at] == pids
        self.dropped += int(len(mask) - np.count_nonzero(mask))
        return mask

    # -- folding

    def task(self, pid: int, comm: str = UNKNOWN_COMM) -> Task:
        """The row of ``pid``, created (with ``comm``) if no event named it yet: an
        event of a task whose start the trace did not see."""
        task = self._tasks.get(pid)
        if task is None:
            task = Task(pid=pid, comm=comm, tgid=pid)
            if self._room():
                self._tasks[pid] = task
        return task

    def _new(self, pid: int, comm: str, ts_ns: int) -> Task:
        task = Task(pid=pid, comm=comm, tgid=pid, start_ns=ts_ns)
        self._tasks.pop(pid, None)  # pid reuse: the new task goes to the end
        if self._room():
            self._tasks[pid] = task
        return task

    @staticmethod
    def folds(batch: EventBatch) -> bool:
        """True when :meth:`on_batch` folds ``batch``: a tracepoint of
        :data:`TASK_TRACEPOINTS` whose schema has the :data:`TASK_FIELDS` it reads
        (a trace written with another schema may lack them)."""
        fields = TASK_FIELDS.get(batch.tp.name)
        return fields is not None and all(batch.tp.has_field(f) for f in fields)

    @staticmethod
    def started(batch: EventBatch) -> list[int]:
        """The pids of the tasks ``batch`` starts (``process_start``, a ``fork``'s
        children), in event order; [] for other batches."""
        name = batch.tp.name
        if name == "process_start":
            pids: list[int] = batch.ints("pid").tolist()
            return pids
        if name == "fork":
            children: list[int] = batch.ints("child_pid").tolist()
            return children
        return []

    def on_batch(self, batch: EventBatch) -> None:
        """Fold one batch; other batches (see :meth:`folds`) are ignored."""
        name = batch.tp.name
        if batch.n == 0 or not self.folds(batch):
            return
        if name in ("process_start", "fork"):
            # Past MAX_TASKS with every row live, only rows of known pids update:
            # the others are dropped before any Python work per event.
            mask = self._known_rows(batch.ints("pid" if name == "process_start" else "child_pid").astype(np.int64))
            if mask is not None:
                batch = batch.take(np.flatnonzero(mask))
                if batch.n == 0:
                    return
        pids: list[int] = batch.ints("pid").tolist()
        ts: list[int] = batch.ints("ts_ns").tolist()
        if name == "process_start":
            uids, adjs = batch.ints("uid").tolist(), batch.ints("oom_score_adj").tolist()
            for pid, t, comm, uid, adj in zip(pids, ts, batch.strs("comm"), uids, adjs):
                task = self._tasks.get(pid)
                if task is None or not task.alive:
                    task = self._new(pid, comm, t)
                elif task.start_ns is None:
                    task.start_ns = t  # named by earlier events, started now
                task.comm, task.uid, task.oom_score_adj = comm, uid, adj
        elif name == "fork":
            for pid, t, child_pid, child_comm in zip(pids, ts, batch.ints("child_pid").tolist(),
                                                     batch.strs("child_comm")):
                parent = self.task(pid)
                child = self._new(child_pid, child_comm, t)
                child.parent, child.uid, child.oom_score_adj = pid, parent.uid, parent.oom_score_adj
                child.memcg_id = parent.memcg_id
        elif name == "exec":
            for pid, comm in zip(pids, batch.strs("comm")):
                task = self.task(pid)
                task.comm = comm
                task.execs += 1
        elif name == "task_rename":
            for pid, comm in zip(pids, batch.strs("newcomm")):
                self.task(pid).comm = comm
        elif name == "exit":
            codes: list[int | None] = (batch.ints("code").tolist() if batch.tp.has_field("code")
                                       else [None] * batch.n)
            for pid, t, comm, code in zip(pids, ts, batch.strs("comm"), codes):
                task = self.task(pid, comm)
                if task.exit_ns is None and self._tasks.get(pid) is task:
                    self._remember_exit(task)
                task.comm, task.exit_ns, task.exit_code = comm, t, code
        elif name == "oom_score_adj_update":
            for pid, comm, adj in zip(pids, batch.strs("comm"), batch.ints("oom_score_adj").tolist()):
                self.task(pid, comm).oom_score_adj = adj
        elif name == "cgroup":
            for op, task_pid, memcg_id in zip(batch.enum_names("op"), batch.ints("task_pid").tolist(),
                                              batch.ints("memcg_id").tolist()):
                if op == "attach":
                    self.task(task_pid).memcg_id = memcg_id
        elif name == "oom_kill":
            for victim, comm in zip(batch.ints("victim_pid").tolist(), batch.strs("comm")):
                self.task(victim, comm).oom_victim = True
