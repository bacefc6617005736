"""Run a scenario on a fresh kernel: each process is a task executing its steps.

Closed loop: a task's next step starts when its previous one has finished, so a
slow step (I/O, a fault storm) delays everything after it. Range steps (touch, read,
write) give up the CPU every :data:`SLICE_PAGES` pages, so concurrent processes
interleave the way a time-sliced CPU would interleave them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memtrace.errors import ScenarioError, SysctlError
from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE
from memtrace.tracer import tracepoints as tp
from memtrace.tracer.bus import Bus

from . import filemap, fork, madvise, memory, mmap, mprotect, mremap, page_writeback, proc_base, shmem, vmscan
from .engine import Proc, Signal, Sleep, TaskGen
from .errors import StepFault
from .kernel import Kernel, OutOfMemory
from .memcontrol import UNLIMITED
from .meminfo import FreeColumns, emit_meminfo_sample, free_columns, meminfo, meminfo_fields
from .mm_types import Task, VmArea
from .oom import KernelPanic, TaskKilled
from .sysctl import Sysctls
from .workload import (
    MAX_REPEAT_COUNT,
    Brk,
    DropCaches,
    Exit,
    FileRead,
    FileWrite,
    Fork,
    Ftruncate,
    Madvise,
    Mlock,
    Mmap,
    Mprotect,
    Mremap,
    Munlock,
    Munmap,
    ProcessSpec,
    Repeat,
    Scenario,
    SetOomAdj,
    SetOomScoreAdj,
    Shmat,
    ShmctlRmid,
    Shmdt,
    Shmget,
    ShmLock,
    ShmOpen,
    ShmUnlink,
    ShmUnlock,
    Snapshot,
    Step,
    Sync,
    Touch,
    Unlink,
    Wait,
    validate,
)
from .workload import (
    Sleep as SleepStep,
)

#: Pages a range step handles before yielding the CPU (64 MiB).
SLICE_PAGES = 16384
#: Smallest slice once memory is short (2 MiB).
MIN_SLICE_PAGES = 512
#: Pages of page cache write(2) charges at once near a memory cgroup limit: a
#: 1 MiB folio, as ext4 on 6.x allocates for large writes (the real traces of
#: ../staging/real show order-8 folios for 1 MiB writes).
WRITE_FOLIO_PAGES = 256
#: How often the meminfo sampler reads /proc/meminfo (simulated).
SAMPLE_INTERVAL_NS = 100_000_000
#: Pids of the kernel threads memtrace runs (arbitrary, below the user pids).
KSWAPD_PID, FLUSHER_PID = 60, 61
#: Exit code of a task killed by SIGKILL (128 + 9).
SIGKILL_EXIT = 137


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
    step: str | int
    errno: str
    message: str
    ts_ns: int

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "op": self.op, "step": self.step,
                "errno": self.errno, "message": self.message, "ts_ns": self.ts_ns}


@dataclass(frozen=True)
class RunResult:
    """What a run produced besides its events: the snapshots taken, the steps that
    failed, the OOM kills, when the run ended (ns), each process's pid, and the
    panic that stopped it, if any."""

    scenario: str
    sysctls: dict[str, int]
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    errors: list[StepError] = field(default_factory=list)
    oom_kills: list[dict[str, Any]] = field(default_factory=list)
    end_ns: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    panic: str | None = None


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
    """Executes one scenario on one kernel, collecting snapshots and errors.

    The scenario is validated first (:func:`validate`), so a scenario built in
    Python gets the same bounds as one loaded from TOML before anything runs.
    """

    def __init__(self, scenario: Scenario, bus: Bus, overrides: Mapping[str, int | str] | None = None,
                 seed: int = 0) -> None:
        validate(scenario)
        self.scenario = scenario
        sysctls, self.explicit = build_sysctls(scenario, overrides or {})
        m = scenario.machine
        self.k = Kernel(m.ram_bytes, m.swap_bytes, bus, sysctls, seed=seed, kernel_version=m.kernel_version,
                        cgroup_version=m.cgroup_version, disk_write_bytes_per_s=m.disk_write_bytes_per_s)
        # What the run has produced so far (the recorder reads it even when the
        # run stops on an error); run() returns it as a RunResult.
        self.snapshots: list[SnapshotRecord] = []
        self.errors: list[StepError] = []
        self.pids: dict[str, int] = {}
        self.panic: str | None = None
        self.specs = {p.name: p for p in scenario.processes}
        self.by_name: dict[str, Task] = {}
        self.procs: dict[int, Proc] = {}
        self.proc_by_name: dict[str, Proc] = {}
        self._failed: dict[int, bool] = {}
        self.k.on_kill = self._kill

    def run(self) -> RunResult:
        k = self.k
        for name, value in self.explicit.items():
            k.emit(tp.SYSCTL_SET, name=name, value=str(value), old="")
        k.emit_zoneinfo("boot")
        for c in self.scenario.cgroups:
            k.cgroup_mkdir(c.path, c.max_bytes, c.swap_max_bytes)
        self._start_kthreads()
        for f in self.scenario.files:  # validate() refused tmpfs paths and duplicates
            k.namespace[f.path] = k.new_inode(f.path, shmem=False, size_bytes=f.size_bytes)
        for spec in self.scenario.processes:
            if not spec.forked:
                self.proc_by_name[spec.name] = k.engine.spawn(spec.name, self._task(spec, None), at_ns=spec.start_ns)
        k.engine.run(until_ns=self.scenario.machine.time_limit_ns)
        if k.engine.timed_out and k.engine.live:
            still = sorted(t.comm for t in k.tasks.values() if not t.exited and not t.kthread)
            self.errors.append(StepError(0, "", "run", 0, "ETIME",
                                         f"stopped at the time limit with {', '.join(still)} still running", k.now_ns))
        return RunResult(
            scenario=self.scenario.name,
            sysctls={n: v for n, v in k.sysctls.as_dict().items() if v is not None},
            snapshots=self.snapshots,
            errors=self.errors,
            oom_kills=list(k.oom_kills),
            end_ns=k.now_ns,
            pids=self.pids,
            panic=self.panic,
        )

    # ------------------------------------------------------------------ kernel threads

    def _kthread(self, pid: int, comm: str) -> Task:
        task = Task(pid=pid, comm=comm, uid=0, oom_score_adj=0, mm=None, kthread=True)
        self.k.tasks[pid] = task
        return task

    def _start_kthreads(self) -> None:
        k = self.k
        k.kswapd_task = self._kthread(KSWAPD_PID, "kswapd0")
        k.flusher_task = self._kthread(FLUSHER_PID, "kworker/u4:flush")
        k.engine.spawn("kswapd0", vmscan.kswapd(k), daemon=True)
        k.engine.spawn("flusher", page_writeback.flusher(k), daemon=True)
        k.engine.spawn("meminfo-sampler", self._sampler(), daemon=True)

    def _sampler(self) -> TaskGen:
        """Reads /proc/meminfo every SAMPLE_INTERVAL_NS, for timelines and diffs."""
        k = self.k
        while True:
            yield Sleep(SAMPLE_INTERVAL_NS)
            k.current = None
            emit_meminfo_sample(k)

    # ------------------------------------------------------------------ tasks

    def _task(self, spec: ProcessSpec, task: Task | None) -> TaskGen:
        k = self.k
        if task is None:
            memcg = k.memcgs.by_path[spec.cgroup]
            k.current = None
            try:
                task = k.new_task(spec.comm or spec.name, spec.uid, spec.oom_score_adj, None, memcg=memcg,
                                  pid=spec.pid)
                task.mm = k.new_mm(task.pid)
            except (OutOfMemory, TaskKilled, KernelPanic) as e:
                self.errors.append(StepError(0, spec.name, "start", 0, "ENOMEM", str(e), k.now_ns))
                return
            k.current = task
            k.emit(tp.PROCESS_START, comm=task.comm, uid=task.uid, oom_score_adj=task.oom_score_adj)
            if memcg is not k.memcgs.root:
                k.cgroup_attach(task, memcg)
        task.exit_signal = Signal()
        self.procs[task.pid] = self.proc_by_name[spec.name]
        self.by_name[spec.name] = task
        self.pids[spec.name] = task.pid
        yield from self._run_steps(task, spec, spec.steps, "")
        if not task.exited:
            k.current = task
            self._exit(task, 0)

    def _run_steps(self, task: Task, spec: ProcessSpec, steps: tuple[Step, ...], prefix: str) -> TaskGen:
        """Run ``steps`` of process ``spec`` for ``task``; returns early when the task ends.

        A repeat with count 0 runs at most MAX_REPEAT_COUNT iterations; one whose
        iteration passed no simulated time would repeat it identically, at the same
        instant, every time: ScenarioError. A repeat past the time limit gives up
        the CPU after its iteration, so that the engine can end the run.
        """
        k = self.k
        for number, step in enumerate(steps, 1):
            if self._ended(task):
                return
            label = f"{prefix}{number}"
            if isinstance(step, Repeat):
                count = step.count or MAX_REPEAT_COUNT
                for i in range(count):
                    started_ns = k.now_ns
                    yield from self._run_steps(task, spec, tuple(_instantiate(s, i) for s in step.steps),
                                               f"{label}.")
                    if self._ended(task) or self._failed.pop(task.pid, False):
                        return
                    if step.count == 0 and k.now_ns == started_ns:
                        raise ScenarioError(
                            f"{self.scenario.source}: process {spec.name!r} step {label}: key 'count': "
                            f"iteration {i} of this count = 0 repeat took no simulated time, so it would "
                            "never end: give it a count or a step that takes time (sleep)"
                        )
                    if k.now_ns > self.scenario.machine.time_limit_ns:
                        yield None
                continue
            k.current = task
            started = k.now_ns
            try:
                for what in self._step(task, step):
                    task.cpu_ns += k.now_ns - started
                    yield what
                    if task.exited:
                        return
                    k.current = task
                    started = k.now_ns
                task.cpu_ns += k.now_ns - started
            except StepFault as e:
                self._error(task, step, label, e.errno, e.message)
                k.flush_rss()
                self._failed[task.pid] = True
                if e.fatal or getattr(step, "on_enomem", "continue") == "exit":
                    self._exit(task, 128 + 11 if e.fatal else 1)
                    return
            except TaskKilled:
                k.flush_rss()
                return
            except KernelPanic as e:
                self.panic = e.reason
                self._error(task, step, label, "PANIC", e.reason)
                k.engine.stop()
                return
            except OutOfMemory as e:
                # A memcg with nobody left to kill: the charge fails and the faulting
                # task dies (simplified: the kernel would retry the fault).
                self._error(task, step, label, "ENOMEM", str(e))
                k.flush_rss()
                self._exit(task, SIGKILL_EXIT)
                return
            k.flush_rss()

    def _ended(self, task: Task) -> bool:
        """Whether ``task`` has exited or the run has stopped (a panic)."""
        return task.exited or self.k.engine.stopped

    def _exit(self, task: Task, code: int) -> None:
        k = self.k
        saved = k.current
        k.current = task
        fork.do_exit(k, task, code)
        if task.exit_signal is not None:
            k.engine.fire(task.exit_signal)
        k.current = saved if saved is not task else None

    def _kill(self, victim: Task) -> None:
        """SIGKILL from the OOM killer: the victim exits now; a task other than the
        current one stops where it is."""
        k = self.k
        current = k.current
        self._exit(victim, SIGKILL_EXIT)
        k.current = current if current is not victim else victim
        proc = self.procs.get(victim.pid)
        if proc is not None and victim is not current:
            k.engine.kill(proc)

    def _error(self, task: Task, step: Step, number: str, errno: str, message: str) -> None:
        self.errors.append(StepError(task.pid, task.comm, step.op, number, errno, message, self.k.now_ns))

    def _vma(self, task: Task, handle: str) -> VmArea:
        vma = self.k.vma_of(task, handle)
        if vma is None:
            raise StepFault("SIGSEGV", f"no mapping named {handle!r} (was its mmap refused?)", fatal=True)
        return vma

    def _step(self, task: Task, step: Step) -> TaskGen:
        """Run one step; yields where the task gives up the CPU or blocks."""
        k = self.k
        if isinstance(step, Touch):
            yield from self._touch(task, step)
        elif isinstance(step, Mmap):
            mmap.do_mmap(k, task, step.handle, step.length_bytes, step.prot, step.shared, step.path,
                         step.offset_bytes, step.noreserve)
        elif isinstance(step, Munmap):
            mmap.do_munmap(k, task, step.handle, step.offset_bytes, step.length_bytes)
        elif isinstance(step, Madvise):
            madvise.do_madvise(k, task, step.handle, step.offset_bytes, step.length_bytes, step.advice)
        elif isinstance(step, Mremap):
            mremap.do_mremap(k, task, step.handle, step.length_bytes, step.maymove)
        elif isinstance(step, Mprotect):
            mprotect.do_mprotect(k, task, step.handle, step.offset_bytes, step.length_bytes, step.prot)
        elif isinstance(step, Brk):
            mmap.do_brk(k, task, step.increment_bytes)
        elif isinstance(step, (FileRead, FileWrite)):
            write = isinstance(step, FileWrite)
            inode = filemap.open_file(k, step.path, create=write)
            length = step.length_bytes
            if not write and length == 0:
                length = max(inode.size_bytes - step.offset_bytes, 0)
            off = 0
            while off < length:
                n = min(self._slice_pages(task, page_tables=False, at_least=WRITE_FOLIO_PAGES if write else 1)
                        * PAGE_SIZE, length - off)
                if write and not inode.shmem:
                    chunk = page_writeback.write_chunk_pages(k, task)
                    if chunk is not None:
                        # Dirtied a folio at a time, looked at once per folio.
                        n = min(n, max(chunk, WRITE_FOLIO_PAGES) * PAGE_SIZE)
                if write:
                    filemap.file_write(k, task, inode, step.offset_bytes + off, n)
                else:
                    filemap.file_read(k, task, inode, step.offset_bytes + off, n)
                off += n
                if write and not inode.shmem:
                    # balance_dirty_pages_ratelimited(): pause while over the limits.
                    dirtied = -(-n // PAGE_SIZE)
                    while (pause := page_writeback.balance_dirty_pages(k, task, dirtied)) > 0:
                        yield Sleep(pause)
                        k.current = task
                        if task.exited:
                            return
                        dirtied = 0
                if off < length:
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
            child = fork.do_fork(k, task, self.specs[step.child].comm or step.child)
            self.proc_by_name[step.child] = k.engine.spawn(step.child, self._task(self.specs[step.child], child))
            yield None
        elif isinstance(step, Wait):
            waited = self.by_name.get(step.child)
            if waited is None:
                raise StepFault("ECHILD", f"no child named {step.child!r} was forked")
            if not waited.exited and waited.exit_signal is not None:
                yield waited.exit_signal
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
        elif isinstance(step, SetOomScoreAdj):
            proc_base.oom_score_adj_write(k, task, step.value)
        elif isinstance(step, SetOomAdj):
            proc_base.oom_adj_write(k, task, step.value)
        elif isinstance(step, (Mlock, Munlock)):
            mmap.do_mlock(k, task, step.handle, isinstance(step, Mlock))
        elif isinstance(step, (ShmLock, ShmUnlock)):
            shmem.shm_lock(k, task, step.segment, isinstance(step, ShmLock))
        else:  # pragma: no cover - STEP_TYPES and this dispatch are kept in step
            raise AssertionError(f"step {step.op!r} has no executor")

    def _touch(self, task: Task, step: Touch) -> TaskGen:
        """Access a range of a mapping page by page, in slices. The range is in
        pages from the mapping's lowest address; a mapping split by a partial
        munmap or mprotect is walked VMA by VMA, and a hole in it (or the end)
        is SIGSEGV when the access reaches it."""
        k = self.k
        self._vma(task, step.handle)
        assert task.mm is not None
        frags = task.mm.fragments(step.handle)
        base = frags[0].start >> PAGE_SHIFT
        total = (frags[-1].end >> PAGE_SHIFT) - base
        first = step.offset_bytes // PAGE_SIZE
        end = total if step.length_bytes == 0 else -(-(step.offset_bytes + step.length_bytes) // PAGE_SIZE)
        if first >= total or end > total:
            raise StepFault("SIGSEGV", f"touch beyond the end of mapping {step.handle!r}", fatal=True)
        pos = first
        while pos < end:
            vma = next((v for v in task.mm.fragments(step.handle)
                        if (v.start >> PAGE_SHIFT) - base <= pos < (v.end >> PAGE_SHIFT) - base), None)
            if vma is None:
                raise StepFault("SIGSEGV", f"touch of an unmapped part of mapping {step.handle!r}", fatal=True)
            vstart = (vma.start >> PAGE_SHIFT) - base
            stop = min(end, vstart + vma.nr_pages)
            start = pos - vstart
            while pos < stop:
                n = min(self._slice_pages(task), stop - pos)
                memory.handle_mm_fault_range(k, task, vma, start, n, step.write)
                k.flush_rss()
                start += n
                pos += n
                if pos < end:
                    yield None

    def _slice_pages(self, task: Task, page_tables: bool = True, at_least: int = 1) -> int:
        """Pages a range step takes before yielding the CPU.

        SLICE_PAGES normally. Once free memory nears the low watermark, only what is
        left above it (at least MIN_SLICE_PAGES): kswapd, woken there, then gets the
        CPU between slices, as it would run beside the task on another CPU. Near a
        memory cgroup limit, only what still fits (less room for the page tables a
        mapping's pages may need, unless ``page_tables`` is false: read and write
        map nothing), so that the charge that hits the limit is a single page's, as
        the kernel charges page by page, or ``at_least`` pages (a write's folio).
        """
        k = self.k
        n = SLICE_PAGES
        above_low = k.alloc.available_above("low")
        if above_low < n:
            n = max(MIN_SLICE_PAGES, above_low)
        memcg = task.memcg
        if memcg is not None and not (memcg.parent is None and memcg.max_pages >= UNLIMITED):
            margin = k.memcgs.charge_room(memcg)
            if page_tables:
                # Keep room for the page-table pages the slice may need (one per 512).
                margin -= margin // 512 + 3
            n = max(min(at_least, n), min(n, margin))
        return n

    def _snapshot(self, label: str) -> None:
        k = self.k
        mi = meminfo(k)
        k.emit(tp.SNAPSHOT, label=label, **meminfo_fields(mi))
        self.snapshots.append(SnapshotRecord(label, k.now_ns, mi, free_columns(mi)))


def run_scenario(scenario: Scenario, bus: Bus, overrides: Mapping[str, int | str] | None = None,
                 seed: int = 0) -> tuple[Kernel, RunResult]:
    """Boot a kernel for ``scenario``, run it to the end, return both."""
    runner = Runner(scenario, bus, overrides, seed)
    result = runner.run()
    return runner.k, result


_TEMPLATE_FIELDS = ("handle", "label", "path", "segment", "name")


def _instantiate(step: Step, i: int) -> Step:
    """A repeated step with ``{i}`` replaced by the iteration number."""
    changes = {}
    for name in _TEMPLATE_FIELDS:
        value = getattr(step, name, None)
        if isinstance(value, str) and "{i}" in value:
            changes[name] = value.replace("{i}", str(i))
    return dataclasses.replace(step, **changes) if changes else step
