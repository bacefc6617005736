"""``memtrace replay`` and ``memtrace diff``: re-run a recorded workload with
changes; compare two traces.

They render what :mod:`memtrace.replay` returns: a one-line verdict first, then a
short table (:func:`memtrace.replay.render_diff`), or one JSON object with
``--json``. Damage in a trace is a warning on stderr, never an error: the diff
covers what was read. A progress bar shows long replays on a terminal.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from memtrace import __version__, api
from memtrace.render import WIDTH
from memtrace.units import format_size

from ._app import app
from ._io import emit_json, event_progress, warn

if TYPE_CHECKING:
    from memtrace.replay import BaselineScore, Overrides, TraceDiff
    from memtrace.tracer.tracefile import TraceReader

__all__ = ["diff", "replay"]


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace replay oom-leak.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace replay swap-pressure.mtrace --sysctl vm.swappiness=10 -o s10.mtrace\n\n"
        "  memtrace replay memcg-oom.mtrace --set cgroup./oracle_oom.max=+50%\n\n"
        "  memtrace replay imported.mtrace --set cgroup./app.max=192MiB --assume-after-kill grow=64MiB\n\n"
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
    assume_after_kill: str | None = typer.Option(
        None, "--assume-after-kill", metavar="stop|continue|grow[=SIZE]",
        help="What an imported trace's OOM victims would have done after their kill: stop, hold their memory "
             "(continue), or keep growing at their observed rate (grow, the default; grow=SIZE: that much more)."),
    as_json: bool = typer.Option(False, "--json", help="Print {baseline, replay, diff} as one JSON object."),
) -> None:
    """Re-run the workload of a trace on a fresh kernel, with changes, and diff.

    With no change the new trace is byte-identical to the old. Replay is closed
    loop: a task's next step starts when its previous one has finished.
    """
    from memtrace.replay import Overrides, diff_traces, recorded_total_events, render_diff, replay_trace

    overrides = Overrides.parse(sysctl or [], set_ or [], assume_after_kill)
    reader = api.open_trace(trace)  # a one-line error for what is not a readable trace file
    _warn_of_cost(reader, overrides)
    with event_progress(f"replaying {trace.name}", recorded_total_events(trace)) as sink:
        result = replay_trace(trace, output, overrides, consumers=[sink] if sink is not None else [])
    with event_progress("comparing", recorded_total_events(trace)) as sink:
        diff = diff_traces(result.baseline, result.trace, consumers_a=(sink,) if sink is not None else ())
    warn(diff.a.warnings)
    imported = "source" in diff.a.meta
    baseline = _baseline(trace, diff, overrides, imported)
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
        d["assumptions"] = list(result.assumptions)
        emit_json({"baseline": diff.a.as_record_dict(), "replay": diff.b.as_record_dict(), "diff": d,
                   "baseline_score": baseline.as_dict() if baseline is not None else _EXACT})
        return
    what = " with " + ", ".join(overrides.describe()) if not overrides.empty else ""
    typer.echo(textwrap.fill(f"replayed {trace}{what}", WIDTH, subsequent_indent="    "))
    typer.echo(f"wrote {result.trace}: {result.events:,} events, {format_size(result.trace_bytes)}"
               + (", byte-identical to the recording" if result.byte_identical else ""))
    if baseline is not None:
        typer.echo(textwrap.fill(baseline.summary(), WIDTH, subsequent_indent="    "))
        if not baseline.reproduces and not overrides.empty:
            typer.echo(textwrap.fill("so the difference below is not an answer to the change: "
                                     + "; ".join(baseline.reasons), WIDTH, subsequent_indent="    "))
    for said in result.assumptions:
        typer.echo(textwrap.fill(f"after-kill assumption: {said}", WIDTH, subsequent_indent="    "))
    if result.byte_identical:
        return
    typer.echo("")
    typer.echo(render_diff(diff, "RECORDED", "REPLAY"))


def _warn_of_cost(reader: TraceReader, overrides: Overrides) -> None:
    """Check the workload against a scenario's bounds before anything runs (a
    one-line error names what is beyond them) and warn when the replay is
    estimated beyond a small run (memtrace.whatif.what_if_cost)."""
    from memtrace.whatif import what_if_cost

    if not isinstance(reader.meta.get("workload"), dict):
        return  # replay_trace says so itself
    cost = what_if_cost(reader, overrides)
    if not cost.small:
        warn([f"this replay is estimated at {cost.describe()} of host time and memory"])


#: The baseline of a simulated recording: the unchanged replay is byte-identical to
#: it (tests/replay/test_replay.py checks every built-in scenario), so no replay runs.
_EXACT = {"reproduces": True, "exact": True,
          "summary": "baseline: a simulated recording, which an unchanged replay repeats byte for byte"}


def _baseline(trace: Path, diff: TraceDiff, overrides: Overrides, imported: bool) -> BaselineScore | None:
    """The score of the unchanged replay of an imported ``trace`` against the
    recording: ``diff`` itself when there were no changes, else one more replay,
    without them (a what-if is an answer only when this reproduces the recording).
    None for a simulated recording (see :data:`_EXACT`)."""
    import tempfile

    from memtrace.replay import Overrides, recorded_total_events, replay_trace, score_baseline, summarize_trace

    if not imported:
        return None
    if not overrides.sysctls and not overrides.sets:
        return diff.reproduction
    # The unchanged workload, under the same after-kill assumption as the replay.
    unchanged_overrides = Overrides(assume_after_kill=overrides.assume_after_kill)
    with tempfile.TemporaryDirectory(prefix="memtrace-baseline-") as tmp:
        with event_progress("replaying the baseline", recorded_total_events(trace)) as sink:
            unchanged = replay_trace(trace, Path(tmp) / "baseline.mtrace", unchanged_overrides,
                                     consumers=[sink] if sink is not None else [])
        return score_baseline(diff.a, summarize_trace(unchanged.trace))


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
    from memtrace.replay import diff_traces, recorded_total_events, render_diff

    for path in (a, b):
        api.open_trace(path)  # a one-line error for what is not a readable trace file
    with event_progress(f"reading {a.name}", recorded_total_events(a)) as sink:
        result = diff_traces(a, b, consumers_a=(sink,) if sink is not None else ())
    warn(result.a.warnings)
    warn(result.b.warnings)
    if as_json:
        emit_json(result.as_dict())
        return
    typer.echo(render_diff(result))
