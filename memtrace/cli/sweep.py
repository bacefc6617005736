"""``memtrace sweep`` and ``memtrace export``: many replays at once, and traces in
the formats other tools read.

``sweep`` renders what :func:`memtrace.api.sweep` returns (:mod:`memtrace.replay.sweep`:
the replays run on Dask): a table of the cells, or the boundary bisection found,
``--json``, a results file and a plot. ``export`` writes Perfetto, Chrome JSON,
Parquet or CSV (:mod:`memtrace.analysis.export`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from memtrace import api
from memtrace.errors import MemtraceError, OutputError, UsageError
from memtrace.render import WIDTH
from memtrace.safewrite import write_file
from memtrace.units import format_size_short

from ._app import app
from ._io import check_output, emit_json, event_count_progress, is_trace_file, replay_progress, warn

if TYPE_CHECKING:
    from memtrace.replay.sweep import Boundary, SweepResult

__all__ = ["export", "sweep"]

#: Result files by suffix.
_RESULT_SUFFIXES = (".parquet", ".csv", ".json")


def _table(result: SweepResult) -> str:
    """One row per cell: its settings, the outcome and the figures that tell runs apart."""
    keys = [a.key.rsplit(".", 1)[-1] if a.key.startswith("cgroup.") else a.key for a in result.axes]
    seeds = result.seeds > 1
    head = [*(k.upper() for k in keys), *(["SEED"] if seeds else []), "OUTCOME", "ENOMEM", "PEAK_ANON",
            "MEMCG_PEAK", "SWAP_OUTS", "RECLAIMED"]
    rows = []
    for r in result.results:
        memcg = max(r.memcg_peak_bytes.values(), default=None)
        rows.append([*(v for _, v in r.cell.settings), *([str(r.cell.seed)] if seeds else []),
                     r.outcome if r.error is None else f"error: {r.error}", str(r.enomem),
                     format_size_short(r.peak.get("anon")), format_size_short(memcg), f"{r.swap_outs:,}",
                     f"{r.reclaimed_pages:,}"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _boundary_text(b: Boundary, mode: str) -> str:
    where = ", ".join(f"{k}={v}" for k, v in b.settings)
    at = f" (with {where})" if where else ""
    if b.below is None or b.above is None:
        return (f"{b.key}{at}: the same outcome ({b.outcome_below}) at both ends of the range: no boundary "
                f"inside it ({b.replays} replays)")
    if mode == "min":
        return (f"{b.key}{at}: the smallest value with the outcome of the largest ({b.outcome_above}) is "
                f"{b.above}; {b.below} still gives {b.outcome_below} ({b.replays} replays)")
    return (f"{b.key}{at}: the largest value with the outcome of the smallest ({b.outcome_below}) is "
            f"{b.below}; {b.above} already gives {b.outcome_above} ({b.replays} replays)")


def _warn_of_cost(target: str) -> None:
    """Warn when one replay of a trace's recorded workload is estimated beyond a
    small run (memtrace.whatif.what_if_cost; its bounds are checked when the sweep
    loads it)."""
    from memtrace.whatif import what_if_cost

    if not is_trace_file(target):
        return

    try:
        cost = what_if_cost(api.open_trace(target))
    except MemtraceError:
        return  # the sweep itself says what is wrong, in one line
    if not cost.small:
        warn([f"each replay of this sweep is estimated at {cost.describe()} of host time and memory"])


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace sweep swap-pressure.mtrace --vary vm.swappiness=0:200:20\n\n"
        "  memtrace sweep memcg-oom.mtrace --vary cgroup./oracle_oom.max=64MiB:512MiB:4MiB "
        "--find-min cgroup./oracle_oom.max\n\n"
        "  memtrace sweep oom-leak --vary vm.overcommit_memory=0,1,2 --vary machine.ram=4GiB,8GiB --json\n\n"
        "  memtrace sweep memcg-oom.mtrace --vary cgroup./oracle_oom.max=64MiB:320MiB:32MiB -o r.parquet "
        "--plot kills.png\n\n"
        "  memtrace sweep t.mtrace --vary vm.swappiness=0:200:10 --scheduler tcp://10.0.0.5:8786"
    )
)
def sweep(
    target: str = typer.Argument(..., help="A trace (recorded or imported), or a scenario file or built-in name."),
    vary: list[str] = typer.Option(..., "--vary", metavar="KEY=SPEC",
                                   help="A key replay can change (vm.*, machine.*, cgroup.PATH.*) and its values: "
                                        "a list (10,60,100) or a range START:STOP:STEP (0:200:20, "
                                        "96MiB:288MiB:32MiB). Repeatable: the grid is the cross product."),
    seeds: int = typer.Option(1, "--seeds", min=1, max=1000, help="Replays per cell, each with the next seed."),
    find_min: str | None = typer.Option(None, "--find-min", metavar="KEY",
                                        help="Bisect KEY for the smallest value with the outcome of its largest."),
    find_max: str | None = typer.Option(None, "--find-max", metavar="KEY",
                                        help="Bisect KEY for the largest value with the outcome of its smallest."),
    scheduler: str | None = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                         help="A running Dask scheduler (tcp://HOST:8786) [default: a LocalCluster "
                                              "on this machine]."),
    workers: int | None = typer.Option(None, "--workers", min=1, max=512,
                                       help="Worker processes of the LocalCluster [default: the CPU count]."),
    serial: bool = typer.Option(False, "--serial", help="No Dask: replay one cell after another in this process."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                       help="Write the cells as a table: .parquet, .csv or .json."),
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE",
                                     help="Draw --figure over the sweep: a line (one key) or a heatmap (two)."),
    figure: str = typer.Option("kills", "--figure", help="What --plot draws: kills, enomem, peak_anon_bytes, "
                                                        "memcg_peak_bytes, swap_outs, reclaimed_pages, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print every cell (and the boundary) as one JSON object."),
) -> None:
    """Replay a workload over a grid of sysctls, limits and seeds, on Dask.

    Each cell is what 'memtrace replay --sysctl/--set' gives for its values; the
    results do not depend on the number of workers or the order they finish in.
    --find-min/--find-max bisect one varied key for where the outcome changes,
    in as few replays as bisection needs.
    """
    from memtrace.replay.sweep import FIGURES, write_results

    if find_min and find_max:
        raise UsageError("--find-min and --find-max: choose one")
    if figure not in FIGURES:
        raise typer.BadParameter(f"choose one of {', '.join(FIGURES)}", param_hint="--figure")
    if output is not None and output.suffix not in _RESULT_SUFFIXES:
        raise typer.BadParameter(f"{output}: results are written as {', '.join(_RESULT_SUFFIXES)}",
                                 param_hint="-o")
    check_output(output, target)
    check_output(plot, target, flag="--plot")
    find = ("min", find_min) if find_min else ("max", find_max) if find_max else None
    _warn_of_cost(target)
    with replay_progress(f"sweeping {Path(target).name}") as progress:
        result = api.sweep(target, vary, seeds=seeds, find=find, scheduler=scheduler, workers=workers,
                           serial=serial, progress=progress)
    if output is not None:
        try:
            if output.suffix == ".json":
                import json

                write_file(output, json.dumps(result.as_dict(), indent=1) + "\n")
            else:
                write_results(result, output)
        except OSError as e:
            raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
    if plot is not None:
        try:
            api.plot_sweep(result, plot, figure)
        except ValueError as e:
            raise UsageError(f"--plot: {e}") from None
        except OSError as e:
            raise OutputError(f"cannot write {plot}: {e.strerror or e}") from None
    if as_json:
        emit_json(result.as_dict())
        return
    if result.baseline is not None:
        typer.echo(textwrap.fill(result.baseline.summary(), WIDTH, subsequent_indent="  "))
        if not result.baseline.reproduces:
            typer.echo(textwrap.fill("so the cells below are not answers: " + "; ".join(result.baseline.reasons),
                                     WIDTH, subsequent_indent="  "))
        typer.echo("")
    if result.boundaries:
        for b in result.boundaries:
            typer.echo(textwrap.fill(_boundary_text(b, find[0] if find else "min"), WIDTH,
                                     subsequent_indent="  "))
        typer.echo("")
    typer.echo(_table(result))
    errors = [r for r in result.results if r.error is not None]
    if errors:
        warn([f"{len(errors)} cell(s) could not run: {errors[0].error}"])


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace export oom-leak.mtrace --format perfetto -o oom-leak.pftrace   # ui.perfetto.dev\n\n"
        "  memtrace export oom-leak.mtrace --format chrome-json -o oom-leak.json\n\n"
        "  memtrace export oom-leak.mtrace --format parquet -o tables/\n\n"
        "  duckdb -c \"select comm, count(*) from 'tables/page_fault.parquet' group by 1\""
    )
)
def export(
    trace: Path = typer.Argument(..., help="Trace file (recorded, replayed or imported)."),
    fmt: str = typer.Option(..., "--format", "-f", metavar="FORMAT", help="perfetto, chrome-json, parquet or csv."),
    output: Path = typer.Option(..., "-o", "--output",
                                help="A file (perfetto, chrome-json) or a directory of one table per "
                                     "tracepoint (parquet, csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a trace as Perfetto, Chrome JSON, Parquet or CSV.

    Perfetto and Chrome JSON show process tracks with RSS counters, /proc/meminfo
    counters, reclaim and kswapd slices and OOM kills; Parquet and CSV hold every
    event, one table per tracepoint, with the schema's field names and types.
    """
    check_output(output, trace)
    from memtrace.replay import recorded_total_events

    with event_count_progress(f"exporting {trace.name}", recorded_total_events(trace)) as progress:
        try:
            result = api.export(trace, fmt, output, progress=progress)
        except OSError as e:
            raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
    warn(result.warnings)
    if as_json:
        emit_json(result.as_dict())
        return
    if result.rows:
        typer.echo(f"{result.output}: {len(result.files)} tables, {result.items:,} events")
        for name, rows in sorted(result.rows.items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {Path(result.files[name]).name:<32} {rows:>12,} rows")
    else:
        typer.echo(f"{result.output}: {fmt}, {result.items:,} items")
