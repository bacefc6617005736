"""One live capture: a tracefs instance of its own, its per-CPU readers, the kernel log.

:class:`CaptureSession` does what ``perf record`` does with tracefs alone:

1. remove the instances of recorders that are gone (:func:`.tracefs.remove_stale`);
2. make ``instances/memtrace-<PID>``: tracing off, ``trace_clock`` perf (the kernel
   log's clock), its buffer size, ``overwrite`` 1 (a gap is then marked in the next
   page with its exact count), ``event-fork`` 1;
3. enable every event of :data:`EVENTS` this kernel has (the missing are named);
4. open ``/dev/kmsg`` at its end and each CPU's ``trace_pipe_raw`` (non-blocking);
5. list the targets in ``set_event_pid`` (:mod:`.targets`), ``tracing_on`` 1, write
   the clock-sync marker, read the machine (``memtrace snapshot``), continue ``-c``'s
   command;
6. loop: wait (``select``, 0.1 s) and drain every CPU until each read returns 0,
   handing the pages to a callback, until the duration, a signal (SIGINT, SIGTERM,
   SIGHUP: their handlers only ask to stop), the command's exit or the targets';
7. stop: end marker, ``tracing_on`` 0, drain to empty, read the loss counters
   (``per_cpu/cpuN/stats``), close every fd (``rmdir`` is EBUSY while one is open),
   read the machine again, switch the events off and remove the instance.

:meth:`CaptureSession.close` runs the parts of 7 still due whatever happened (an
exception, a second Ctrl-C), so the instance is removed in every case but SIGKILL,
whose leftover the next capture removes.

Timestamps are the ``perf`` trace clock: ``local_clock()``, in ns, the clock of the
kernel log's ``[  123.456789]`` stamps and of ``perf script``. ``trace_marker``
writes bracketed by ``clock_gettime`` calls map it onto CLOCK_MONOTONIC,
CLOCK_MONOTONIC_RAW and CLOCK_REALTIME (:class:`ClockSync`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

from memtrace.errors import CaptureError, MemtraceError

from . import targets as tg
from .kmsg import KmsgReader
from .tracefs import EventFormat, Instance, find_tracefs, instance_name, remove_stale

__all__ = [
    "EVENTS",
    "SYNC_PREFIX",
    "CaptureOptions",
    "CaptureSession",
    "ClockSync",
    "DrainVerdict",
    "LossCounts",
    "stop_on_signals",
]

_SYSCALLS = ("mmap", "munmap", "brk", "mremap", "mprotect", "madvise", "clone", "clone3", "execve", "exit_group")
#: The real tracepoints a capture enables (``system:*``: every event of the system
#: this kernel has): those the importer maps, and ``task:task_newtask``, whose
#: ``clone_flags`` tell a thread from a process (the events carry no tgid).
EVENTS: tuple[str, ...] = (
    *(f"syscalls:sys_{way}_{call}" for call in _SYSCALLS for way in ("enter", "exit")),
    "exceptions:page_fault_user",
    "kmem:rss_stat",
    "filemap:mm_filemap_add_to_page_cache",
    "filemap:mm_filemap_delete_from_page_cache",
    "vmscan:*",
    "oom:*",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "task:task_rename",
    "task:task_newtask",
)
#: The text of the clock-sync ``trace_marker`` writes.
SYNC_PREFIX = "memtrace-sync"
#: Pages read from one CPU per pass of a drain (then the next CPU's turn).
_PAGES_PER_PASS = 1024


@dataclass(frozen=True)
class CaptureOptions:
    """How a capture runs: how long (None: until the command or targets exit, or a
    signal), the ring buffer per CPU (KiB), the poll period, whether the kernel
    threads and the kernel log are captured, and whether the machine is read at the
    start and end (``memtrace snapshot``)."""

    duration_s: float | None = None
    buffer_kb: int = 4096
    poll_s: float = 0.1
    kthreads: bool = True
    kmsg: bool = True
    snapshots: bool = True

    def __post_init__(self) -> None:
        if self.duration_s is not None and not self.duration_s > 0:
            raise CaptureError(f"--duration {self.duration_s}: must be positive")
        if not 64 <= self.buffer_kb <= 1 << 22:
            raise CaptureError(f"--buffer-kb {self.buffer_kb}: must be 64 KiB to 4 GiB per CPU")


@dataclass(frozen=True)
class SyncMark:
    """A clock-sync marker as written: its tag and the clocks read around the write."""

    tag: str
    mono_ns: tuple[int, int]
    raw_ns: tuple[int, int]
    real_ns: int

    def text(self) -> str:
        return f"{SYNC_PREFIX} {self.tag} mono={self.mono_ns[0]}"


@dataclass(frozen=True)
class ClockSync:
    """The trace clock against user-space clocks, from a marker: trace time minus
    CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW and CLOCK_REALTIME (ns), within
    ``uncertainty_ns`` (half the time the marker's write took)."""

    trace_minus_monotonic_ns: int
    trace_minus_monotonic_raw_ns: int
    trace_minus_realtime_ns: int
    uncertainty_ns: int

    @classmethod
    def of(cls, mark: SyncMark, trace_ts_ns: int) -> ClockSync:
        m0, m1 = mark.mono_ns
        r0, r1 = mark.raw_ns
        return cls(trace_ts_ns - (m0 + m1) // 2, trace_ts_ns - (r0 + r1) // 2, trace_ts_ns - mark.real_ns,
                   (m1 - m0 + 1) // 2)

    def as_dict(self) -> dict[str, int]:
        return {"trace_minus_monotonic_ns": self.trace_minus_monotonic_ns,
                "trace_minus_monotonic_raw_ns": self.trace_minus_monotonic_raw_ns,
                "trace_minus_realtime_ns": self.trace_minus_realtime_ns,
                "uncertainty_ns": self.uncertainty_ns}


@dataclass
class LossCounts:
    """Events the kernel could not keep: per CPU, the ``stats`` counters at the end
    (``overrun``: overwritten, ``dropped events``: refused) and the gaps marked in
    the pages read (``in_band``: the counts the pages stored; ``gaps``: pages after a
    gap)."""

    overrun: dict[int, int] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    in_band: dict[int, int] = field(default_factory=dict)
    gaps: dict[int, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Events lost in all: per CPU the larger of what the stats and the pages say."""
        cpus = set(self.overrun) | set(self.dropped) | set(self.in_band)
        return sum(max(self.overrun.get(c, 0) + self.dropped.get(c, 0), self.in_band.get(c, 0)) for c in cpus)

    def mark(self, cpu: int, count: int) -> None:
        self.gaps[cpu] = self.gaps.get(cpu, 0) + 1
        if count > 0:
            self.in_band[cpu] = self.in_band.get(cpu, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "overrun": sum(self.overrun.values()),
                "dropped": sum(self.dropped.values()), "in_band": sum(self.in_band.values()),
                "gaps": sum(self.gaps.values()),
                "per_cpu": {str(c): {"overrun": self.overrun.get(c, 0), "dropped": self.dropped.get(c, 0),
                                     "in_band": self.in_band.get(c, 0), "gaps": self.gaps.get(c, 0)}
                            for c in sorted(set(self.overrun) | set(self.in_band) | set(self.dropped))}}


#: Called with each CPU's pages of a drain: (cpu, bytes of whole pages).
PagesCallback = Callable[[int, bytes], None]
#: What a consumer says after a drain (see :meth:`CaptureSession.run`).
DrainVerdict = Literal["idle", "busy", "stop"]


class CaptureSession:
    """A live capture of ``target`` (see the module docstring for the steps).

    ``status`` receives one-line progress messages (the CLI prints them on stderr).
    Use as ``start()``, ``run(on_pages)``, ``stop()``, with ``close()`` in a
    ``finally`` (or the session as a context manager).
    """

    def __init__(self, target: tg.LiveTarget, options: CaptureOptions | None = None,
                 status: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.options = options or CaptureOptions()
        self.status = status or (lambda _msg: None)
        self.root = find_tracefs()
        self.instance = Instance(self.root, instance_name())
        #: event id -> format, for every enabled event and ftrace:print
        self.formats: dict[int, EventFormat] = {}
        self.enabled: list[str] = []
        self.missing: list[str] = []
        self.removed_stale: list[str] = []
        self.page_size = 4096
        self.fds: dict[int, int] = {}
        self.kmsg: KmsgReader | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.cgroup: str | None = None
        #: the tasks known at the start: tid -> TaskInfo (comm and tgid for the
        #: events, which carry neither)
        self.tasks: dict[int, tg.TaskInfo] = {}
        self.marks: list[SyncMark] = []
        self.snapshot_start: dict[str, Any] | None = None
        self.snapshot_end: dict[str, Any] | None = None
        self.loss = LossCounts()
        self.stop_reason: str | None = None
        self.started_mono_ns = 0
        self.stopped_mono_ns = 0
        self.bytes_read = 0
        self.pages_read = 0
        self.warnings: list[str] = []
        self._tracing = False
        self._closed = False
        self._instance_made = False

    # -- life cycle

    def __enter__(self) -> CaptureSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Steps 1 to 5: after it, the targets are traced."""
        self.removed_stale = remove_stale(self.root, self.status)
        inst = self.instance
        inst.create()
        self._instance_made = True
        inst.write("trace_clock", "perf")
        inst.write("buffer_size_kb", str(self.options.buffer_kb))
        inst.write("options/overwrite", "1")
        inst.write("buffer_percent", "25")
        with contextlib.suppress(CaptureError, OSError):
            self.page_size = int(inst.read("buffer_subbuf_size_kb").split()[0]) * 1024  # 6.8+
        inst.write("options/event-fork", "0" if self.target.mode == "all" else "1")
        for spec in EVENTS:
            found = inst.events(spec)
            if not found:
                self.missing.append(spec)
            for system, name in found:
                fmt = inst.format_of(system, name)
                inst.enable(system, name)
                self.formats[fmt.id] = fmt
                self.enabled.append(fmt.full_name)
        for system, name in inst.events("ftrace:print"):  # trace_marker writes
            fmt = inst.format_of(system, name)
            self.formats[fmt.id] = fmt
        if not self.enabled:
            raise CaptureError(f"none of the memory tracepoints exists in {self.root}/events")
        if self.options.kmsg:
            self.kmsg = KmsgReader()
            if self.kmsg.error:
                self.warnings.append(f"{self.kmsg.error}: no kernel log (OOM reports) in the trace")
        for cpu in inst.cpus():
            try:
                self.fds[cpu] = os.open(inst.file(f"per_cpu/cpu{cpu}/trace_pipe_raw"), os.O_RDONLY | os.O_NONBLOCK)
            except OSError as e:
                raise CaptureError(f"cannot open {inst.file(f'per_cpu/cpu{cpu}/trace_pipe_raw')}: "
                                   f"{e.strerror or e}") from None
        self._set_targets()
        inst.write("tracing_on", "1")
        self._tracing = True
        self.marker("start")
        self.started_mono_ns = time.monotonic_ns()
        self._learn_tasks()
        if self.options.snapshots:
            self.snapshot_start = self._snapshot("start")
        if self.child is not None:
            os.kill(self.child.pid, signal.SIGCONT)

    def _set_targets(self) -> None:
        t, inst = self.target, self.instance
        kthreads = tg.kthread_pids() if self.options.kthreads and t.mode != "all" else []
        if t.mode == "all":
            inst.write("set_event_notrace_pid", " ".join(map(str, tg.tids_of(os.getpid()))))
        elif t.mode == "pids":
            tids = [tid for pid in t.pids for tid in tg.tids_of(pid)]
            gone = [pid for pid in t.pids if not tg.tids_of(pid)]
            if gone:
                raise CaptureError(f"-p {gone[0]}: no such process")
            inst.write("set_event_pid", " ".join(map(str, sorted(set(tids) | set(kthreads)))))
        elif t.mode == "cgroup":
            assert t.cgroup is not None
            self.cgroup = tg.cgroup_dir(t.cgroup)
            seen: set[int] = set()
            for _ in range(100):  # a fork storm: give up after 100 reads
                new = tg.cgroup_tasks(self.cgroup) - seen
                if not new:
                    break
                inst.write("set_event_pid", " ".join(map(str, sorted(new | (set(kthreads) if not seen else set())))),
                           append=bool(seen))
                seen |= new
            if not seen:
                inst.write("set_event_pid", " ".join(map(str, kthreads)) if kthreads else "0")
                self.status(f"cgroup {self.cgroup} has no task yet: a task moved into it later is not traced")
        else:
            assert t.command is not None
            self.child = tg.start_stopped(t.command)
            inst.write("set_event_pid", " ".join(map(str, [self.child.pid, *kthreads])))

    def _learn_tasks(self) -> None:
        """comm and tgid of every task that may show up already (read after tracing
        started: a task made later shows in the fork events)."""
        text = self.instance.read("set_event_pid") if self.target.mode != "all" else ""
        tids = {int(x) for x in text.split() if x.isdigit()}
        if self.target.mode == "all":
            for d in os.listdir("/proc"):
                if d.isdigit():
                    tids.update(tg.tids_of(int(d)))
        for tid in sorted(tids):
            info = tg.read_task(tid)
            if info is not None:
                self.tasks[tid] = info

    def _snapshot(self, label: str) -> dict[str, Any] | None:
        """``memtrace snapshot``'s reading of the machine, with the CLOCK_MONOTONIC
        time its /proc/meminfo was read at (``taken.monotonic_ns``)."""
        from ...procsnap import take_snapshot

        started = time.monotonic_ns()
        try:
            snap = take_snapshot()
        except (MemtraceError, OSError) as e:  # keep the capture without it
            self.warnings.append(f"snapshot at the {label}: {e}")
            return None
        snap["taken"]["monotonic_ns"] = started
        return snap

    def marker(self, tag: str) -> None:
        """A clock-sync ``trace_marker`` write, between two readings of each clock."""
        fd = os.open(self.instance.file("trace_marker"), os.O_WRONLY)
        try:
            m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            r0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
            real = time.time_ns()
            mark = SyncMark(tag, (m0, m0), (r0, r0), real)
            os.write(fd, mark.text().encode())
            r1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
            m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            self.marks.append(SyncMark(tag, (m0, m1), (r0, r1), real))
        finally:
            os.close(fd)

    # -- running

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop (the first reason is kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def run(self, on_pages: PagesCallback, after_drain: Callable[[], DrainVerdict] | None = None) -> None:
        """Step 6: drain into ``on_pages`` until a reason to stop. ``after_drain``,
        called after each drain, says ``stop`` (the consumer is done), ``busy`` (it
        has work left: the next wait does not block) or ``idle``."""
        deadline = None
        if self.options.duration_s:  # counted from tracing on
            deadline = (self.started_mono_ns or time.monotonic_ns()) / 1e9 + self.options.duration_s
        waits = [*self.fds.values()]
        if self.kmsg is not None and self.kmsg.fileno() >= 0:
            waits.append(self.kmsg.fileno())
        pids = self.target.pids
        busy = False
        while self.stop_reason is None:
            timeout = 0.0 if busy else self.options.poll_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.request_stop(f"duration {self.options.duration_s:g} s")
                    break
                timeout = min(timeout, left)
            with contextlib.suppress(InterruptedError):
                select.select(waits, [], [], timeout)
            self.drain(on_pages)
            if self.kmsg is not None:
                self.kmsg.read()
            if after_drain is not None:
                verdict = after_drain()
                if verdict == "stop":
                    self.request_stop("the program called exit()")
                busy = verdict == "busy"
            if self.child is not None and self.child.poll() is not None:
                self.request_stop(f"command exited ({_status(self.child.returncode)})")
            elif self.target.mode == "pids" and not any(os.path.exists(f"/proc/{p}") for p in pids):
                self.request_stop("the traced processes exited")

    def drain(self, on_pages: PagesCallback) -> int:
        """Read every CPU's buffer until it is empty; pages read."""
        got = 0
        busy = True
        while busy:
            busy = False
            for cpu, fd in self.fds.items():
                chunks: list[bytes] = []
                while len(chunks) < _PAGES_PER_PASS:
                    try:
                        page = os.read(fd, self.page_size)
                    except BlockingIOError:
                        break
                    if not page:  # an empty buffer reads 0 bytes (not EAGAIN)
                        break
                    if len(page) < self.page_size:  # tracefs reads whole pages; pad a short one
                        page = page + bytes(self.page_size - len(page))
                    chunks.append(page)
                if chunks:
                    data = b"".join(chunks)
                    self.bytes_read += len(data)
                    self.pages_read += len(chunks)
                    got += len(chunks)
                    on_pages(cpu, data)
                    busy = busy or len(chunks) == _PAGES_PER_PASS
        return got

    def stop(self, on_pages: PagesCallback) -> None:
        """Step 7: tracing off, every buffer drained, the losses read, the instance
        removed."""
        self.stopped_mono_ns = time.monotonic_ns()
        inst = self.instance
        if self._tracing:
            with contextlib.suppress(OSError):
                self.marker("end")
            inst.write("tracing_on", "0")
            self._tracing = False
            for _ in range(1000):
                if not self.drain(on_pages):
                    break
            for cpu in self.fds:
                stats = inst.cpu_stats(cpu)
                self.loss.overrun[cpu] = stats.get("overrun", 0)
                self.loss.dropped[cpu] = stats.get("dropped events", 0)
        if self.child is not None and self.child.poll() is None:
            tg.end_command(self.child)
            self.status(f"command pid {self.child.pid} was still running: terminated")
        self.close()
        if self.options.snapshots:
            self.snapshot_end = self._snapshot("end")

    def close(self) -> None:
        """Whatever happened: every fd closed, the command not left stopped, the
        instance removed. Safe to call again."""
        if self._closed:
            return
        self._closed = True
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = {}
        if self.kmsg is not None:
            self.kmsg.close()
        if self.child is not None and self.child.poll() is None and self.stop_reason is None:
            tg.end_command(self.child)  # an error before the loop: do not leave it stopped
        if self._instance_made:
            try:
                self.instance.remove()
            except CaptureError as e:
                self.warnings.append(str(e))

    # -- results

    def sync(self, marker_ts: dict[str, int]) -> dict[str, ClockSync]:
        """The clock sync of each marker whose event was read (``marker_ts``: tag ->
        its trace time)."""
        out: dict[str, ClockSync] = {}
        for mark in self.marks:
            ts = marker_ts.get(mark.text())
            if ts is not None:
                out[mark.tag] = ClockSync.of(mark, ts)
        return out

    def elapsed_ns(self) -> int:
        end = self.stopped_mono_ns or time.monotonic_ns()
        return max(0, end - self.started_mono_ns) if self.started_mono_ns else 0


def _status(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@contextlib.contextmanager
def stop_on_signals(session: CaptureSession) -> Iterator[None]:
    """While inside: SIGINT, SIGTERM and SIGHUP ask ``session`` to stop (the loop then
    ends cleanly and everything read is kept) instead of interrupting it. Only the
    main thread can install handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        session.request_stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
