"""Input and output helpers of the commands: pipes and devices as inputs, outputs
that would overwrite an input, JSON on stdout, warnings and progress bars on
stderr, ``--sysctl`` lists, telling a trace file from a scenario.

A leaf of the CLI package: it imports no command module and not the app.
"""

from __future__ import annotations

import json
import os
import stat as stat_mod
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from memtrace.errors import InputError, OutputError
from memtrace.escape import printable
from memtrace.pipes import SPOOL_MAX_BYTES, spool, user_text, user_values

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from memtrace.tracer.batch import EventBatch

__all__ = [
    "SEED_MAX",
    "SPOOL_MAX_BYTES",
    "EventProgress",
    "byte_progress",
    "check_output",
    "emit_json",
    "event_count_progress",
    "event_progress",
    "input_file",
    "is_trace_file",
    "parse_sysctls",
    "replay_progress",
    "user_text",
    "warn",
]

#: The largest --seed: the trace header stores it as a signed 64-bit integer.
SEED_MAX = (1 << 63) - 1
#: Progress-bar updates are batched to one per this many events.
_PROGRESS_STEP_EVENTS = 1 << 16


def emit_json(obj: Any) -> None:
    """``obj`` as one indented JSON document on stdout (piped inputs named as the user
    gave them: :func:`memtrace.pipes.user_values`)."""
    sys.stdout.write(json.dumps(user_values(obj), indent=2, sort_keys=False) + "\n")


def warn(lines: Iterable[str]) -> None:
    """Each line on stderr as ``memtrace: warning: LINE`` (piped inputs named as the
    user gave them: :func:`memtrace.pipes.user_text`)."""
    for w in lines:
        typer.echo(f"memtrace: warning: {printable(user_text(w))}", err=True)


def parse_sysctls(values: list[str] | None) -> dict[str, str]:
    """``--sysctl KEY=VALUE`` options as a map (the last of a key wins); SysctlError
    quotes a malformed one."""
    from memtrace.kernel.sysctl import parse_sysctl_assignment

    out: dict[str, str] = {}
    for text in values or []:
        key, value = parse_sysctl_assignment(text)
        out[key] = value
    return out


def check_output(output: Path | None, *inputs: Path | str | None, flag: str = "-o") -> None:
    """Refuse an output that is one of the command's inputs: writing it would
    destroy what is being read."""
    if output is None:
        return
    for src in inputs:
        if src is None:
            continue
        try:
            same = os.path.samefile(output, src)
        except (OSError, ValueError):
            continue
        if same:
            raise OutputError(f"{output}: {flag} would overwrite the input {src}; choose another {flag}")


def input_file(path: Path) -> Path:
    """``path`` ready to be read more than once: a regular file as it is; a pipe
    (``<(journalctl -k)``, ``/dev/stdin``) copied to a temporary file first
    (:func:`memtrace.pipes.spool`: removed at exit, named as ``path`` in messages).
    A device or socket is refused: /dev/zero would be read for ever. Missing files
    and directories are left to the reader's own error."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return path
    if stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode):
        return path
    if not stat_mod.S_ISFIFO(mode):
        raise InputError(f"cannot read {path}: not a regular file (a device or socket)")
    return spool(path)


def is_trace_file(target: str) -> bool:
    """True when ``target`` is a regular file that starts with the trace magic."""
    from memtrace.tracer.tracefile import MAGIC

    path = Path(target)
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


# --------------------------------------------------------------------------- progress


class EventProgress:
    """A bus consumer counting events into a rich progress bar, updating it every
    :data:`_PROGRESS_STEP_EVENTS` events."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task
        self.pending = 0

    def __call__(self, batch: EventBatch) -> None:
        self.pending += batch.n
        if self.pending >= _PROGRESS_STEP_EVENTS:
            self.progress.advance(self.task, self.pending)
            self.pending = 0

    def on_batch(self, batch: EventBatch) -> None:
        self(batch)


@contextmanager
def _count_bar(description: str, unit: str, total: int | None) -> Iterator[tuple[Progress, TaskID] | None]:
    """A rich bar counting ``unit`` (done of total, elapsed time) on stderr, as
    ``(progress, task)``; None when stderr is not a terminal (pipes, tests, CI).
    rich is imported only when a bar is drawn."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        yield progress, progress.add_task(description, total=total)


@contextmanager
def event_progress(description: str, total: int | None) -> Iterator[EventProgress | None]:
    """An event-count progress bar on stderr while the block runs, or None when
    stderr is not a terminal (pipes, tests, CI)."""
    with _count_bar(description, "events", total) as bar:
        yield EventProgress(*bar) if bar is not None else None


@contextmanager
def byte_progress(description: str, total_bytes: int) -> Iterator[Callable[[int], None] | None]:
    """A byte-count progress bar on stderr, as a function of the bytes done so far;
    None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total_bytes or None)

        def update(done: int) -> None:
            progress.update(task, completed=done)

        yield update


@contextmanager
def event_count_progress(description: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """An event-count progress bar on stderr, as a function of the events done so
    far; None when stderr is not a terminal."""
    with _count_bar(description, "events", total) as bar:
        if bar is None:
            yield None
            return
        progress, task = bar

        def update(done: int) -> None:
            progress.update(task, completed=done)

        yield update


@contextmanager
def replay_progress(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A replays-done progress bar on a terminal (sweep, report's what-ifs), as a
    ``(done, total)`` callback; None (nothing drawn) when stderr is not a terminal."""
    with _count_bar(description, "replays", None) as bar:
        if bar is None:
            yield None
            return
        progress, task = bar

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
