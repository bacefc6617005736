"""Run a scenario on a fresh kernel: each process is a task executing its steps.

Closed loop: a task's next step starts when its previous one has finished, so a
slow step (I/O, a fault storm) delays everything after it. Range steps (touch, read,
write) give up the CPU every :data:`SLICE_PAGES` pages, so concurrent processes
interleave the way a time-sliced CPU would interleave them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from memtrace.errors import ScenarioError, SysctlError
from memtrace.tracer import tracepoints as tp
from memtrace.tracer.bus import Bus

from . import filemap, fork, memory, mmap, shmem
from .engine import Signal, Sleep, TaskGen
from .errors import StepFault
from .kernel import Kernel, OutOfMemory
from .meminfo import FreeColumns, free_columns, meminfo
from .mm_types import Task
from .page_alloc import PAGE_SIZE
from .sysctl import Sysctls
from .workload import (
    Brk,
    DropCaches,
    Exit,
    FileRead,
    FileWrite,
    Fork,
    Ftruncate,
    Mmap,
    Munmap,
    ProcessSpec,
    Scenario,
    Shmat,
    ShmctlRmid,
    Shmdt,
    Shmget,
    ShmOpen,
    ShmUnlink,
    Sleep as SleepStep,
    Snapshot,
    Step,
    Sync,
    Touch,
    Unlink,
    Wait,
)

#: Pages a range step handles before yielding the CPU (64 MiB).
SLICE_PAGES = 16384


@dataclass(frozen=True)
class SnapshotRecord:
    """A labelled /proc/meminfo reading and the free(1) row derived from it (bytes)."""

    label: str
    ts_ns: int
    meminfo: dict[str, int]
    free: FreeColumns

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "ts_ns": self.ts_ns, "free": self.free.as_dict(), "meminfo": dict(self.meminfo)}


@dataclass(frozen=True)
class StepError:
    """A step that failed: which process, which step, and the errno or signal."""

    pid: int
    comm: str
    op: str
    step: int
    errno: str
    message: str
    ts_ns: int

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "op": self.op, "step": self.step,
                "errno": self.errno, "message": self.message, "ts_ns": self.ts_ns}


@dataclass
class RunResult:
    """What a run produced besides its events."""

    scenario: str
    sysctls: dict[str, int]
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    errors: list[StepError] = field(default_factory=list)
    oom_kills: list[dict[str, Any]] = field(default_factory=list)
    end_ns: int = 0
    pids: dict[str, int] = field(default_factory=dict)


def build_sysctls(scenario: Scenario, overrides: Mapping[str, int | str]) -> tuple[Sysctls, dict[str, int]]:
    """The sysctls of a run: defaults, then the scenario's, then ``overrides``.

    Returns the table and the explicitly set values. SysctlError names the source.
    """
    sysctls = Sysctls()
    explicit: dict[str, int] = {}
    for source, values in ((scenario.source, scenario.sysctls), ("--sysctl", overrides)):
        for key, value in values.items():
            try:
                name, _, new = sysctls.set(key, value)
            except SysctlError as e:
                raise SysctlError(f"{source}: {e}") from None
            explicit[name] = new
    return sysctls, explicit


class Runner:
    """Executes one scenario on one kernel, collecting snapshots and errors."""

    def __init__(self, scenario: Scenario, bus: Bus, overrides: Mapping[str, int | str] | None = None,
                 seed: int = 0) -> None:
        self.scenario = scenario
        sysctls, self.explicit = build_sysctls(scenario, overrides or {})
        m = scenario.machine
        self.k = Kernel(m.ram_bytes, m.swap_bytes, bus, sysctls, seed=seed, kernel_version=m.kernel_version)
        self.result = RunResult(scenario=scenario.name, sysctls={})
        self.specs = {p.name: p for p in scenario.processes}
        self.by_name: dict[str, Task] = {}

    def run(self) -> RunResult:
        k = self.k
        for name, value in self.explicit.items():
            k.emit(tp.SYSCTL_SET, name=name, value=str(value), old="")
        for f in self.scenario.files:
            if filemap.is_tmpfs_path(f.path):
                raise ScenarioError(f"{self.scenario.source}: file {f.path!r}: tmpfs files are made by write steps")
            if f.path in k.namespace:
                raise ScenarioError(f"{self.scenario.source}: file {f.path!r} is declared twice")
            k.namespace[f.path] = k.new_inode(f.path, shmem=False, size_bytes=f.size_bytes)
        for spec in self.scenario.processes:
            if not spec.forked:
                k.engine.spawn(spec.name, self._task(spec, None), at_ns=spec.start_ns)
        k.engine.run()
        self.result.end_ns = k.now_ns
        self.result.sysctls = {n: v for n, v in k.sysctls.as_dict().items() if v is not None}
        return self.result

    # ------------------------------------------------------------------ tasks

    def _task(self, spec: ProcessSpec, task: Task | None) -> TaskGen:
        k = self.k
        if task is None:
            task = k.new_task(spec.name, spec.uid, spec.oom_score_adj, None)
            task.mm = k.new_mm(task.pid)
            k.current = task
            k.emit(tp.PROCESS_START, comm=task.comm, uid=task.uid, oom_score_adj=task.oom_score_adj)
        task.exit_signal = Signal()
        self.by_name[spec.name] = task
        self.result.pids[spec.name] = task.pid
        for number, step in enumerate(spec.steps, 1):
            if task.exited or k.engine.stopped:
                break
            k.current = task
            try:
                for what in self._step(task, step):
                    yield what
                    k.current = task
            except StepFault as e:
                self._error(task, step, number, e.errno, e.message)
                k.flush_rss()
                if e.fatal or getattr(step, "on_enomem", "continue") == "exit":
                    self._exit(task, 128 + 11 if e.fatal else 1)
                    break
            except OutOfMemory as e:
                self._error(task, step, number, "OOM", f"{e} (reclaim and the OOM killer are not modelled yet)")
                k.engine.stop()
                break
            k.flush_rss()
        if not task.exited:
            k.current = task
            self._exit(task, 0)

    def _exit(self, task: Task, code: int) -> None:
        k = self.k
        k.current = task
        fork.do_exit(k, task, code)
        if task.exit_signal is not None:
            k.engine.fire(task.exit_signal)

    def _error(self, task: Task, step: Step, number: int, errno: str, message: str) -> None:
        self.result.errors.append(StepError(task.pid, task.comm, step.op, number, errno, message, self.k.now_ns))

    def _vma(self, task: Task, handle: str):  # type: ignore[no-untyped-def]
        vma = self.k.vma_of(task, handle)
        if vma is None:
            raise StepFault("SIGSEGV", f"no mapping named {handle!r} (was its mmap refused?)", fatal=True)
        return vma

    def _step(self, task: Task, step: Step) -> Iterator[Any]:
        """Run one step; yields where the task gives up the CPU or blocks."""
        k = self.k
        if isinstance(step, Touch):
            vma = self._vma(task, step.handle)
            first = step.offset_bytes // PAGE_SIZE
            end = vma.nr_pages if step.length_bytes == 0 else -(-(step.offset_bytes + step.length_bytes) // PAGE_SIZE)
            if first >= vma.nr_pages or end > vma.nr_pages:
                raise StepFault("SIGSEGV", f"touch beyond the end of mapping {step.handle!r}", fatal=True)
            for start in range(first, end, SLICE_PAGES):
                memory.handle_mm_fault_range(k, task, vma, start, min(SLICE_PAGES, end - start), step.write)
                k.flush_rss()
                if start + SLICE_PAGES < end:
                    yield None
        elif isinstance(step, Mmap):
            mmap.do_mmap(k, task, step.handle, step.length_bytes, step.prot, step.shared, step.path,
                         step.offset_bytes, step.noreserve)
        elif isinstance(step, Munmap):
            mmap.do_munmap(k, task, step.handle, step.offset_bytes, step.length_bytes)
        elif isinstance(step, Brk):
            mmap.do_brk(k, task, step.increment_bytes)
        elif isinstance(step, (FileRead, FileWrite)):
            write = isinstance(step, FileWrite)
            inode = filemap.open_file(k, step.path, create=write)
            length = step.length_bytes
            if not write and length == 0:
                length = max(inode.size_bytes - step.offset_bytes, 0)
            slice_bytes = SLICE_PAGES * PAGE_SIZE
            for off in range(0, length, slice_bytes):
                n = min(slice_bytes, length - off)
                if write:
                    filemap.file_write(k, task, inode, step.offset_bytes + off, n)
                else:
                    filemap.file_read(k, task, inode, step.offset_bytes + off, n)
                if off + slice_bytes < length:
                    yield None
        elif isinstance(step, Unlink):
            filemap.unlink(k, step.path)
        elif isinstance(step, Sync):
            filemap.sync(k)
        elif isinstance(step, DropCaches):
            filemap.drop_caches(k, step.value)
        elif isinstance(step, Snapshot):
            self._snapshot(step.label)
        elif isinstance(step, Fork):
            child = fork.do_fork(k, task, step.child)
            k.engine.spawn(step.child, self._task(self.specs[step.child], child))
            yield None
        elif isinstance(step, Wait):
            child = self.by_name.get(step.child)
            if child is None:
                raise StepFault("ECHILD", f"no child named {step.child!r} was forked")
            if not child.exited and child.exit_signal is not None:
                yield child.exit_signal
        elif isinstance(step, Exit):
            self._exit(task, step.code)
        elif isinstance(step, SleepStep):
            yield Sleep(step.duration_ns)
        elif isinstance(step, ShmOpen):
            shmem.shm_open(k, task, step.name)
        elif isinstance(step, Ftruncate):
            shmem.ftruncate(k, task, step.path, step.size_bytes)
        elif isinstance(step, ShmUnlink):
            shmem.shm_unlink(k, task, step.name)
        elif isinstance(step, Shmget):
            shmem.shmget(k, task, step.segment, step.size_bytes, step.noreserve)
        elif isinstance(step, Shmat):
            shmem.shmat(k, task, step.segment, step.handle)
        elif isinstance(step, Shmdt):
            self._vma(task, step.handle)
            mmap.do_munmap(k, task, step.handle)
        elif isinstance(step, ShmctlRmid):
            shmem.shmctl_rmid(k, task, step.segment)
        else:  # pragma: no cover - STEP_TYPES and this dispatch are kept in step
            raise AssertionError(f"step {step.op!r} has no executor")

    def _snapshot(self, label: str) -> None:
        k = self.k
        mi = meminfo(k)
        fields = {f: mi[m] for m, f in tp.MEMINFO_FIELDS}
        k.emit(tp.SNAPSHOT, label=label, **fields)
        self.result.snapshots.append(SnapshotRecord(label, k.now_ns, mi, free_columns(mi)))


def run_scenario(scenario: Scenario, bus: Bus, overrides: Mapping[str, int | str] | None = None,
                 seed: int = 0) -> tuple[Kernel, RunResult]:
    """Boot a kernel for ``scenario``, run it to the end, return both."""
    runner = Runner(scenario, bus, overrides, seed)
    result = runner.run()
    return runner.k, result
