"""SIGINT and SIGTERM as exceptions that unwind the stack, and worker processes that
end with their parent.

The command line calls :func:`install` first, before it imports anything heavy
(see ``memtrace/__main__.py``, the console script). Then:

- SIGINT (Ctrl-C) raises :class:`KeyboardInterrupt` and SIGTERM raises
  :class:`Terminated` (a KeyboardInterrupt) wherever the main thread is, so every
  ``finally`` and context manager runs: a recording's footer says ``aborted``
  (tracer/tracefile/writer.py), a safe write's temporary file is removed
  (:mod:`memtrace.safewrite`), worker pools are ended. The CLI prints one line,
  ``memtrace: interrupted``, and exits 128 + the signal's number: 130 or 143.
- A second signal while the first unwinds is ignored, so the cleanup finishes.
- Inside :func:`deferred` a signal waits until the block ends: a short step that
  must not be cut in two (renaming a set of files into place) completes first.
- A signal that was ignored when memtrace started (``nohup``, a background job of
  a non-interactive shell) stays ignored, as Python itself does for SIGINT.

Worker processes (the report's what-if pool) call :func:`as_worker` first: they
ignore SIGINT (Ctrl-C reaches the whole process group; the parent ends them),
take SIGTERM's default action (the parent's :func:`end_children` sends it), and
ask the kernel for SIGKILL when their parent dies (prctl(PR_SET_PDEATHSIG),
kernel/sys.c, Linux 2.1.57+), so not even ``kill -9`` of the parent leaves them
running.

A leaf: it imports nothing of memtrace.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection, Iterator
from types import FrameType

__all__ = [
    "Terminated",
    "as_worker",
    "deferred",
    "end_children",
    "exit_code",
    "finish_interrupted",
    "ignore_late_signals",
    "install",
]

#: linux/prctl.h
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread once :func:`install` has run."""


class _State:
    """The signal seen first (the one the exit code reports); None before any.
    ``pending``: a signal that came inside :func:`deferred`."""

    received: int | None = None
    deferring = False
    pending: int | None = None


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _State.received is not None:
        return  # a second signal while the first unwinds: let the cleanup finish
    if _State.deferring:
        _State.pending = _State.pending or signum
        return
    _State.received = signum
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that come inside the block take effect when it ends (see
    the module docstring); nested blocks wait for the outermost."""
    if _State.deferring:
        yield
        return
    _State.deferring = True
    try:
        yield
    finally:
        _State.deferring = False
        pending, _State.pending = _State.pending, None
        if pending is not None:
            _handler(pending, None)


def install() -> None:
    """Make SIGINT and SIGTERM raise (see the module docstring). Call it from the
    main thread, before the heavy imports."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _handler)


def ignore_late_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: the command has ended (its exit code
    is decided) and the interpreter only has to shut down."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def finish_interrupted(exc: SystemExit) -> None:
    """End the process now with ``exc``'s code when a signal interrupted it: exit
    handlers run and the streams are flushed first, but not the interpreter's
    finalization. CPython remembers a KeyboardInterrupt raised while a module was
    being imported as unhandled, even once caught, and at exit kills itself with
    SIGINT (status -2 instead of 130). Does nothing when no signal came.

    An exit handler that fails is not reported, nor is what it logs: the signal may
    have cut short the work it cleans up after (Dask's ``close_clusters`` asserts on
    a LocalCluster whose workers were still starting, and asyncio logs the nanny's
    start that never finished), and the one line is all the user sees."""
    if _State.received is None:
        return
    import atexit
    import logging
    import sys

    code = exc.code if isinstance(exc.code, int) else 1
    sys.unraisablehook = lambda _unraisable: None  # (how atexit reports a handler's exception)
    logging.disable(logging.CRITICAL)
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended: 143
    for SIGTERM, 130 for SIGINT (and for a KeyboardInterrupt raised otherwise)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def as_worker(parent_pid: int) -> None:
    """A worker process's first call (a pool's ``initializer``): see the module
    docstring. Exits at once when the parent is already gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import ctypes  # here, not at the top: install() must be quick to import

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl(): nobody would end us
        os._exit(1)


def end_children(spare: Collection[int] = (), timeout_s: float = 5.0) -> None:
    """Terminate the worker processes this process started through multiprocessing,
    but those whose pid is in ``spare`` (SIGTERM, then SIGKILL after ``timeout_s``
    seconds), and reap them."""
    import multiprocessing

    children = [p for p in multiprocessing.active_children() if p.pid not in spare]
    for p in children:
        with contextlib.suppress(OSError):
            p.terminate()
    for p in children:
        p.join(timeout_s)
        if p.is_alive():
            with contextlib.suppress(OSError):
                p.kill()
            p.join()
