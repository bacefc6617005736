"""The ``memtrace replay`` and ``memtrace diff`` commands (registered on the main app).

They render what :mod:`memtrace.replay` returns: a short table a person reads in ten
seconds, with a one-line verdict first, or one JSON object with ``--json``. Damage
in a trace is a warning on stderr, never an error: the diff covers what was read.
A progress bar (rich, on stderr) shows long replays when stderr is a terminal.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from memtrace import __version__
from memtrace.cli import _emit_json, _open_trace, app
from memtrace.render import format_bytes

MiB = 1 << 20
WIDTH = 79
#: Progress-bar updates are batched to one per this many events.
_PROGRESS_STEP_EVENTS = 1 << 16


# --------------------------------------------------------------------------- progress


class _ProgressSink:
    """Counts events into a rich progress bar, updating it every few thousand events."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress = progress
        self.task = task
        self.pending = 0

    def __call__(self, batch: Any) -> None:
        self.pending += batch.n
        if self.pending >= _PROGRESS_STEP_EVENTS:
            self.progress.advance(self.task, self.pending)
            self.pending = 0

    def on_batch(self, batch: Any) -> None:
        self(batch)


@contextmanager
def _progress(description: str, total: int | None) -> Iterator[_ProgressSink | None]:
    """A progress bar on stderr while the block runs, or None when stderr is not a
    terminal (pipes, tests, CI)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield _ProgressSink(progress, task)


# --------------------------------------------------------------------------- rendering


def _mib(value: int) -> str:
    return f"{value // MiB:,}" if value % MiB == 0 else f"{value / MiB:,.1f}"


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, int) and (key.endswith(("_bytes", ".max", ".high"))):
        return format_bytes(value)
    return str(value)


def _change(a: int | None, b: int | None, render: Callable[[int], str]) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if d == 0:
        return "0"
    return ("+" if d > 0 else "-") + render(abs(d))


def _divergence_text(d: Any, label_a: str, label_b: str, seq: bool = True) -> str:
    """``seq 12 at 1.67 s: mmap -> vm_enough_memory``: where two streams part and how."""
    from memtrace.units import format_seconds

    if seq:
        where = f"seq {d.seq:,} at {format_seconds(d.ts_ns)}"
    elif d.a is not None and d.b is not None and format_seconds(d.a.ts_ns) != format_seconds(d.b.ts_ns):
        where = f"at {format_seconds(d.a.ts_ns)} ({label_a}) / {format_seconds(d.b.ts_ns)} ({label_b})"
    else:
        where = f"at {format_seconds(d.ts_ns)}"
    if d.field is not None and d.a is not None and d.b is not None:
        what = f"{d.tracepoint}.{d.field} {d.a.value!r} -> {d.b.value!r}"
    elif d.a is None:
        what = f"{label_a} ends; {label_b} goes on with {d.b.tracepoint if d.b else '?'}"
    elif d.b is None:
        what = f"{label_b} ends; {label_a} goes on with {d.a.tracepoint}"
    else:
        what = f"{d.a.tracepoint} -> {d.b.tracepoint}"
    return f"{where}: {what}"


def render_diff(diff: Any, label_a: str = "A", label_b: str = "B") -> str:
    """The text form of a :class:`~memtrace.replay.TraceDiff`, every line under 80 columns."""
    from memtrace.units import format_seconds

    lines = [f"{label_a}: {diff.a.trace}", f"{label_b}: {diff.b.trace}"]
    if diff.changes:
        parts = [f"{k} {_value(k, va)} -> {_value(k, vb)}" for k, (va, vb) in diff.changes.items()]
        lines.append(textwrap.fill("changed: " + "; ".join(parts), WIDTH, subsequent_indent="    "))
    lines.append(textwrap.fill("verdict: " + diff.verdict, WIDTH, subsequent_indent="    "))
    if diff.identical:
        return "\n".join(lines)
    lines.append("")
    lines.append(f"{'':<26}{label_a:>17}{label_b:>17}{'CHANGE':>17}")
    for key, label, a, b in diff.metrics():
        always = key in ("oom_kills", "enomem_refusals", "events")
        if not always and not a and not b:
            continue
        if key.endswith("_bytes"):
            label, render = f"{label} MiB", _mib
        else:
            render = "{:,}".format
        cells = [render(v) if v is not None else "-" for v in (a, b)]
        lines.append(f"{label:<26}{cells[0]:>17}{cells[1]:>17}{_change(a, b, render):>17}")
    ev_a, ev_b = diff.a.events, diff.b.events
    moved = [n for n in dict.fromkeys([*ev_a, *ev_b]) if ev_a.get(n, 0) != ev_b.get(n, 0)]
    moved.sort(key=lambda n: -abs(ev_b.get(n, 0) - ev_a.get(n, 0)))
    if moved:
        shown = [f"{n} {ev_a.get(n, 0):,} -> {ev_b.get(n, 0):,}" for n in moved[:6]]
        more = f" (+{len(moved) - 6} more)" if len(moved) > 6 else ""
        lines.append(textwrap.fill("tracepoints: " + ", ".join(shown) + more, WIDTH, subsequent_indent="    "))
    d, w = diff.divergence, diff.workload_divergence
    if d is not None:
        lines.append(textwrap.fill(f"first divergence: {_divergence_text(d, label_a, label_b)}"
                                   + (" (configuration)" if w is not d else ""),
                                   WIDTH, subsequent_indent="    "))
    if w is not None and w is not d:
        lines.append(textwrap.fill(f"behaviour first differs: {_divergence_text(w, label_a, label_b, seq=False)}",
                                   WIDTH, subsequent_indent="    "))
    elif d is not None and w is None:
        lines.append("behaviour: the same events apart from the configuration")
    for label, side in ((label_a, diff.a), (label_b, diff.b)):
        for k in side.oom_kills:
            lines.append(textwrap.fill(
                f"OOM kill {label}: {k.comm} (pid {k.pid}), {k.points:,} points, at {format_seconds(k.ts_ns)}"
                + (f", memcg {k.memcg}" if k.memcg else ""), WIDTH, subsequent_indent="    "))
    for label, side in ((label_a, diff.a), (label_b, diff.b)):
        for r in side.refusals:
            step = f" step {r.step}" if r.step is not None else ""
            lines.append(textwrap.fill(
                f"ENOMEM {label}: {r.comm or '?'} (pid {r.pid}) {r.op}{step} at {format_seconds(r.ts_ns)}",
                WIDTH, subsequent_indent="    "))
    return "\n".join(lines)


def _warn_damage(summary: Any) -> None:
    for w in summary.warnings:
        typer.echo(f"memtrace: warning: {w}", err=True)


# --------------------------------------------------------------------------- commands


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace replay oom-leak.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace replay swap-pressure.mtrace --sysctl vm.swappiness=10 -o s10.mtrace\n\n"
        "  memtrace replay memcg-oom.mtrace --set cgroup./oracle_oom.max=+50%\n\n"
        "  memtrace replay tmpfs-file.mtrace --set machine.ram=8GiB --json\n\n"
        "  memtrace replay tmpfs-file.mtrace"
    )
)
def replay(
    trace: Path = typer.Argument(..., help="Trace to replay (written by 'memtrace record')."),
    sysctl: list[str] | None = typer.Option(None, "--sysctl", metavar="KEY=VALUE",
                                               help="Set a sysctl for the replay (repeatable)."),
    set_: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE",
        help="Change the machine (machine.ram=8GiB, machine.swap=2GiB) or a cgroup "
             "(cgroup./leaker.max=192MiB); a size may be relative (+20%). Repeatable."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                          help="Trace file to write [default: TRACE's stem + .replay.mtrace]."),
    as_json: bool = typer.Option(False, "--json", help="Print {baseline, replay, diff} as one JSON object."),
) -> None:
    """Re-run the workload of a trace on a fresh kernel, with changes, and diff.

    With no change the new trace is byte-identical to the old. Replay is closed
    loop: a task's next step starts when its previous one has finished.
    """
    from memtrace.replay import Overrides, diff_traces, recorded_total_events, replay_trace

    overrides = Overrides.parse(sysctl or [], set_ or [])
    _open_trace(trace)  # a one-line error for what is not a readable trace file
    with _progress(f"replaying {trace.name}", recorded_total_events(trace)) as sink:
        result = replay_trace(trace, output, overrides, consumers=[sink] if sink is not None else [])
    with _progress("comparing", recorded_total_events(trace)) as sink:
        diff = diff_traces(result.baseline, result.trace, consumers_a=(sink,) if sink is not None else ())
    _warn_damage(diff.a)
    imported = "source" in diff.a.meta
    if overrides.empty and not result.byte_identical and not imported:
        if diff.a.damage is not None or not diff.a.complete:
            why = "the recording is damaged or incomplete"
        else:
            why = f"the recording was written by memtrace {result.recorded_version}, this is {__version__}"
        typer.echo(f"memtrace: warning: the replay of {trace} is not byte-identical to it ({why})", err=True)
    if as_json:
        d = diff.as_dict()
        d["byte_identical"] = result.byte_identical
        d["overrides"] = overrides.describe()
        _emit_json({"baseline": diff.a.as_record_dict(), "replay": diff.b.as_record_dict(), "diff": d})
        return
    what = " with " + ", ".join(overrides.describe()) if not overrides.empty else ""
    typer.echo(textwrap.fill(f"replayed {trace}{what}", WIDTH, subsequent_indent="    "))
    typer.echo(f"wrote {result.trace}: {result.events:,} events, {format_bytes(result.trace_bytes)}"
               + (", byte-identical to the recording" if result.byte_identical else ""))
    if result.byte_identical:
        return
    typer.echo("")
    typer.echo(render_diff(diff, "RECORDED", "REPLAY"))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace diff oom-leak.mtrace oom-leak.replay.mtrace\n\n"
        "  memtrace diff s10.mtrace s100.mtrace --json | jq .swap_outs"
    )
)
def diff(
    a: Path = typer.Argument(..., help="The baseline trace."),
    b: Path = typer.Argument(..., help="The trace to compare with it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Compare two traces: OOM kills, ENOMEM, memory, reclaim, swap, first divergence."""
    from memtrace.replay import diff_traces, recorded_total_events

    for path in (a, b):
        _open_trace(path)  # a one-line error for what is not a readable trace file
    with _progress(f"reading {a.name}", recorded_total_events(a)) as sink:
        result = diff_traces(a, b, consumers_a=(sink,) if sink is not None else ())
    _warn_damage(result.a)
    _warn_damage(result.b)
    if as_json:
        _emit_json(result.as_dict())
        return
    typer.echo(render_diff(result))


__all__ = ["diff", "render_diff", "replay"]
