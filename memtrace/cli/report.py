"""``memtrace report`` and ``memtrace dmesg``: why a process was OOM-killed (from a
trace or a kernel log), and each kill as the kernel logs it.

The what-if answers of a report come from replays (:mod:`memtrace.whatif`, through
:func:`memtrace.api.report`); this module renders what comes back.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from memtrace import api
from memtrace.safewrite import write_file
from memtrace.units import parse_duration

from ._app import app
from ._io import check_output, emit_json, input_file, replay_progress, user_text, warn

if TYPE_CHECKING:
    from memtrace.analysis.report import WhatIfChange

__all__ = ["dmesg", "report"]

#: The longest --window of a report: a year, in seconds.
WINDOW_MAX_S = 365 * 24 * 3600


def _window_ns(text: str) -> int:
    """``--window``: a time (seconds by default: ``300``, ``90s``, ``5min``) in ns, exactly."""
    try:
        ns = parse_duration(text.strip(), default_unit="s")
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--window") from None
    if not 0 < ns <= WINDOW_MAX_S * 1_000_000_000:
        raise typer.BadParameter(f"must be more than 0 and at most {WINDOW_MAX_S:,} s, got {text}",
                                 param_hint="--window")
    return ns


def _announce(changes: Sequence[WhatIfChange]) -> None:
    """On a terminal, say which what-if replays are about to run (they take a while)."""
    if sys.stderr.isatty():
        typer.echo(f"memtrace: replaying {len(changes)} what-if change(s) "
                   f"({', '.join(c.label for c in changes)}) ...", err=True)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace report oom-leak.mtrace\n\n"
        "  memtrace report memcg-oom.mtrace --format html -o report.html\n\n"
        "  memtrace report shmem-pressure.mtrace --format md --no-what-if\n\n"
        "  memtrace report /var/log/kern.log --json | jq '.kills[].victim'\n\n"
        "  journalctl -k > k.txt && memtrace report k.txt\n\n"
        "  memtrace sweep memcg-oom.mtrace --vary cgroup./oracle_oom.max=64MiB:320MiB:32MiB -o s.json && "
        "memtrace report memcg-oom.mtrace --sweep s.json -f html -o r.html"
    )
)
def report(
    trace: Path = typer.Argument(..., help="Trace file, or a kernel log (dmesg, journalctl -k, syslog)."),
    fmt: str = typer.Option("text", "--format", "-f", metavar="FORMAT", help="text, md, html or json."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write to FILE instead of stdout."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    what_if: bool | None = typer.Option(None, "--what-if/--no-what-if", show_default=False,
                                        help="Answer what-if questions by replaying the trace's workload with "
                                             "each change (simulated traces only) [default: when one replay is "
                                             "estimated at 15 s and 512 MiB or less]."),
    window: str = typer.Option("300", "--window", metavar="SECONDS",
                               help="How far back before each kill to look for growth and reclaim (300, 90s, "
                                    "5min)."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", "-j", min=1, metavar="N",
                             help="What-if replays run at once [default: the number of CPUs].",
                             show_default=False),
    assume_after_kill: str | None = typer.Option(
        None, "--assume-after-kill", metavar="stop|continue|grow[=SIZE]",
        help="What an imported trace's OOM victims would have done after their kill, in every what-if replay "
             "[default: grow, on at their observed rate]."),
    sweeps: list[Path] = typer.Option([], "--sweep", metavar="RESULTS.json",
                                      help="Embed a sweep's results (memtrace sweep ... -o RESULTS.json) as a "
                                           "chapter: its boundaries, cells and, in HTML, a plot. Repeatable."),
) -> None:
    """Why was a process OOM-killed, and what would have prevented it: the constraint,
    who grew, what reclaim could not free, every candidate's badness, the victim,
    and what-if answers from replays."""
    from memtrace.analysis.report import FORMATS, render_report

    if as_json:
        fmt = "json"
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    window_ns = _window_ns(window)
    src = input_file(trace)
    check_output(output, src)
    if assume_after_kill is not None:
        from memtrace.replay import parse_assumption

        parse_assumption(assume_after_kill)  # a one-line error before any work
    with replay_progress(f"what-ifs of {trace.name}") as progress:
        rep = api.report(src, window_ns=window_ns, what_if=what_if, jobs=jobs, announce=_announce,
                         sweeps=[input_file(p) for p in sweeps], assume_after_kill=assume_after_kill,
                         progress=progress)
    warn(rep.warnings)
    result = dataclasses.replace(rep.result, warnings=tuple(user_text(w) for w in rep.result.warnings))
    text = render_report(result, fmt, title=str(trace))
    if output is None:
        sys.stdout.write(text)
        return
    write_file(output, text)
    kills = sum(1 for k in result.kills if k.constraint != "overcommit")
    typer.echo(f"report: wrote {output} ({fmt}, {kills} OOM kill(s))", err=True)


@app.command(
    epilog=("Examples:\n\n  memtrace record oom-leak && memtrace dmesg oom-leak.mtrace\n\n"
            "  memtrace dmesg memcg-oom.mtrace --json")
)
def dmesg(
    trace: Path = typer.Argument(..., help="Trace file to read."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per kill) instead of text."),
) -> None:
    """Print each OOM kill of a trace as the kernel logs it (dmesg), in the format
    of the trace's kernel version."""
    reports = api.dmesg(trace)
    warn(reports.warnings)
    if as_json:
        emit_json([{"oom_id": r.oom_id, "ts_ns": r.ts_ns, "lines": list(r.lines)} for r in reports.result])
        return
    if not reports.result:
        typer.echo(f"{trace}: no OOM kill")
        return
    for r in reports.result:
        typer.echo("\n".join(r.lines))
