"""A deterministic discrete-event engine for tasks in simulated time.

In the manner of SimPy's core: one heap of ``(wake_ns, sequence, task)``, a counter
as tie-breaker, generator processes as tasks. A task generator yields one of:

- ``None``: give up the CPU; run again after every task already runnable now.
- :class:`Sleep`: sleep for ``duration_ns`` (the CPU is free meanwhile).
- :class:`Signal`: block until someone calls :meth:`Engine.fire` (waitpid, wakeups).
- :class:`WaitFor`: block until a signal fires or a timeout passes, whichever is first.

Time advances in two ways: kernel work done by a running task advances
:attr:`Engine.now_ns` directly (a CPU busy for that long), and when every task is
asleep the clock jumps to the next wake-up. Simplification: one CPU; tasks run one
at a time, so event timestamps never go backwards.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sleep:
    """Yielded by a task: sleep ``duration_ns`` of simulated time."""

    duration_ns: int

    def __post_init__(self) -> None:
        if self.duration_ns < 0:
            raise ValueError(f"negative sleep {self.duration_ns}")


@dataclass(eq=False)
class Signal:
    """A one-shot wake-up: tasks that yield it block until it fires."""

    fired: bool = False
    waiters: list[tuple[Proc, int]] = field(default_factory=list)


@dataclass(frozen=True)
class WaitFor:
    """Yielded by a task: wait for ``signal`` at most ``timeout_ns``."""

    signal: Signal
    timeout_ns: int


Yield = None | Sleep | Signal | WaitFor
TaskGen = Generator[Yield, None, None]


@dataclass(eq=False)
class Proc:
    """A running generator and its bookkeeping."""

    name: str
    gen: TaskGen
    daemon: bool
    done: bool = False
    token: int = 0  # bumped at every wake-up: heap entries with an old token are stale


class Engine:
    """Runs task generators in simulated nanoseconds, deterministically."""

    def __init__(self) -> None:
        self.now_ns = 0
        self._heap: list[tuple[int, int, Proc, int]] = []
        self._seq = 0
        self._live = 0  # non-daemon tasks not yet finished
        self.stopped = False
        self.timed_out = False

    def spawn(self, name: str, gen: TaskGen, at_ns: int | None = None, daemon: bool = False) -> Proc:
        """Start ``gen`` at ``at_ns`` (default: now). Daemons do not keep the run alive."""
        proc = Proc(name, gen, daemon)
        if not daemon:
            self._live += 1
        self._schedule(proc, self.now_ns if at_ns is None else at_ns)
        return proc

    def _schedule(self, proc: Proc, at_ns: int) -> None:
        heapq.heappush(self._heap, (at_ns, self._seq, proc, proc.token))
        self._seq += 1

    def kill(self, proc: Proc) -> None:
        """End a task that is not running now: its generator is closed."""
        if proc.done:
            return
        proc.done = True
        proc.token += 1
        if not proc.daemon:
            self._live -= 1
        proc.gen.close()

    def fire(self, signal: Signal) -> None:
        """Fire ``signal``: every waiting task becomes runnable now."""
        if signal.fired:
            return
        signal.fired = True
        waiters, signal.waiters = signal.waiters, []
        for proc, token in waiters:
            if token == proc.token and not proc.done:
                self._schedule(proc, self.now_ns)

    def stop(self) -> None:
        """End the run after the current step (a panic)."""
        self.stopped = True

    @property
    def live(self) -> int:
        """Non-daemon tasks not yet finished."""
        return self._live

    def run(self, until_ns: int | None = None) -> None:
        """Run until no non-daemon task is left, ``until_ns`` passes, or :meth:`stop`."""
        while self._heap and self._live > 0 and not self.stopped:
            at_ns, seq, proc, token = heapq.heappop(self._heap)
            if proc.done or token != proc.token:
                continue
            if until_ns is not None and at_ns > until_ns:
                heapq.heappush(self._heap, (at_ns, seq, proc, token))
                self.timed_out = True
                break
            if at_ns > self.now_ns:
                self.now_ns = at_ns
            proc.token += 1
            try:
                what = next(proc.gen)
            except StopIteration:
                proc.done = True
                if not proc.daemon:
                    self._live -= 1
                continue
            if what is None:
                self._schedule(proc, self.now_ns)
            elif isinstance(what, Sleep):
                self._schedule(proc, self.now_ns + what.duration_ns)
            elif isinstance(what, Signal):
                if what.fired:
                    self._schedule(proc, self.now_ns)
                else:
                    what.waiters.append((proc, proc.token))
            elif isinstance(what, WaitFor):
                if what.signal.fired:
                    self._schedule(proc, self.now_ns)
                else:
                    what.signal.waiters.append((proc, proc.token))
                    self._schedule(proc, self.now_ns + what.timeout_ns)
            else:
                raise TypeError(f"task {proc.name!r} yielded {what!r}")
