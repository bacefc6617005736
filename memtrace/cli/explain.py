"""``memtrace stat``, ``free``, ``explain`` and ``ps``: what a trace (or a snapshot
of this machine) holds, and where its memory is at one moment.

They render what :mod:`memtrace.api` returns; warnings go to stderr.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from memtrace import api
from memtrace.errors import UsageError
from memtrace.render import free_table, render_stat
from memtrace.units import parse_duration

from ._app import app
from ._io import check_output, emit_json, input_file, warn

__all__ = ["explain", "free", "parse_at", "ps", "stat"]

_TIME = re.compile(r"^\d+(?:\.\d+)?(?:ns|us|ms|s)?$")
_AT_HELP = ("A snapshot label, or a time since boot (2.5s, 2500ms) meaning the last /proc/meminfo reading at or "
            "before it [default: the last reading].")


def parse_at(text: str | None) -> str | int | None:
    """``--at``: a time (``1.5``, ``1500ms``, ``2s``: seconds by default) as ns since
    boot, else a snapshot label. ``label:NAME`` forces a label."""
    if text is None:
        return None
    if text.startswith("label:"):
        return text[len("label:"):]
    if _TIME.match(text.strip()) is None:
        return text
    try:
        return parse_duration(text.strip(), default_unit="s")  # exact: 1.005s is 1,005,000,000 ns
    except ValueError:
        return text  # a fraction of a nanosecond: not a time, so a label


@app.command(
    epilog="Examples:\n\n  memtrace stat private-file-mapping.mtrace\n\n  memtrace stat run.mtrace --json"
)
def stat(
    trace: Path = typer.Argument(..., help="Trace file to read."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Count the events of a trace per tracepoint; report damage if any."""
    st = api.stat_trace(trace)
    d = st.stats.damage
    if d is not None:
        typer.echo(f"memtrace: warning: {trace}: damaged at byte {d.offset} ({d.reason}); "
                   f"{d.chunks_skipped} chunk(s) skipped, {d.events_recovered:,} events recovered", err=True)
    # Each warning of the reader, including what a valid checksum does not show:
    # chunks missing or doubled (the footer's count differs), frames it ignored.
    warn(st.warnings)
    if as_json:
        emit_json(st.as_dict())
        return
    typer.echo(render_stat(st))


@app.command(
    epilog=("Examples:\n\n  memtrace free tmpfs-file.mtrace\n\n"
            "  memtrace free tmpfs-file.mtrace --at after-write --json")
)
def free(
    trace: Path = typer.Argument(..., help="Trace file to read."),
    at: str | None = typer.Option(None, "--at", help="Only the snapshot with this label."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show free(1) for each snapshot recorded in a trace."""
    snaps = api.free(trace, at=at)
    warn(snaps.warnings)
    rows = [s.as_dict() for s in snaps.result]
    if as_json:
        emit_json({"trace": str(trace), "snapshots": rows})
        return
    typer.echo(free_table(rows, deltas=at is None))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace explain private-file-mapping.mtrace --at after-write\n\n"
        "  memtrace explain oom-leak.mtrace --at 4.9s --pid 102\n\n"
        "  memtrace explain tmpfs-file.mtrace --json | jq '.parts[] | select(.kind==\"shmem\")'\n\n"
        "  memtrace explain fork-cow.mtrace --at children-wrote --graph mem.graphml\n\n"
        "  memtrace explain fork-cow.mtrace --at children-wrote --by process\n\n"
        "  memtrace snapshot -o now.json && memtrace explain now.json"
    )
)
def explain(
    trace: Path = typer.Argument(..., help="Trace file (or a snapshot from 'memtrace snapshot')."),
    at: str | None = typer.Option(None, "--at", metavar="LABEL|TIME", help=_AT_HELP),
    pid: int | None = typer.Option(None, "--pid", "-p", help="Only this process's pages (they sum to its RSS)."),
    graph: Path | None = typer.Option(None, "--graph", metavar="FILE",
                                      help="Also write the process/VMA/page-run graph: FILE.graphml is GraphML, "
                                           "anything else node-link JSON."),
    by: str = typer.Option("kind", "--by", metavar="kind|process",
                           help="kind: each kind broken down by owner (default); process: one line per process as "
                                "smem prints it (Swap, USS, PSS, RSS in kB) with totals."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Where is the memory and why: every free(1) column and /proc/meminfo kind broken
    down by owner, with the reason and what would free it."""
    from memtrace.analysis.explain_text import render_explain_text, render_process_usage_text

    if by not in ("kind", "process"):
        raise UsageError(f"--by takes kind or process, not {by!r}")
    src = input_file(trace)
    if by == "process":
        if pid is not None or graph is not None:
            raise UsageError("--by process lists every process: --pid and --graph go with --by kind")
        table = api.explain_by_process(src, at=parse_at(at))
        warn(table.warnings)
        if as_json:
            d = table.result.as_dict()
            d["trace"] = str(trace)
            emit_json(d)
        else:
            typer.echo(render_process_usage_text(table.result), nl=False)
        return
    check_output(graph, src, flag="--graph")
    done = api.explain(src, at=parse_at(at), pid=pid, graph=graph)
    warn(done.warnings)
    g = done.graph
    if g is not None:
        typer.echo(f"graph: wrote {g.path} ({g.kind}, {g.nodes:,} nodes, {g.edges:,} edges, "
                   f"{g.page_runs:,} page runs)", err=True)
    if as_json:
        d = done.result.as_dict()
        d["trace"] = str(trace)
        emit_json(d)
        return
    typer.echo(render_explain_text(done.result, str(trace)), nl=False)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace ps oom-leak.mtrace --at 4.9s\n\n"
        "  memtrace ps memcg-oom.mtrace --sort rss --json | jq '.processes[0]'\n\n"
        "  memtrace snapshot -o now.json && memtrace ps now.json\n\n"
        "  memtrace ps            # this machine, now (reads /proc)"
    )
)
def ps(
    target: Path | None = typer.Argument(None, help="Trace file or snapshot; none reads this machine's /proc now."),
    at: str | None = typer.Option(None, "--at", metavar="LABEL|TIME", help=_AT_HELP),
    sort: str = typer.Option("points", "--sort", metavar="KEY",
                             help="points (the OOM killer's order), rss, anon, swap or pid."),
    show_all: bool = typer.Option(False, "--all", "-a", help="Every process (text shows the top 20 otherwise)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Processes with their RSS by kind, swap, page tables, oom_score_adj and
    /proc/PID/oom_score, in the order the OOM killer would pick them."""
    from memtrace.analysis.ps import SORT_KEYS
    from memtrace.analysis.ps_text import render_ps_text

    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"{sort!r} is not one of {', '.join(SORT_KEYS)}", param_hint="--sort")
    table = api.ps(None if target is None else input_file(target), at=parse_at(at), sort=sort)
    warn(table.warnings)
    title = "/proc (this machine)" if target is None else str(target)
    if as_json:
        d = table.result.as_dict()
        d["trace"] = title
        emit_json(d)
        return
    typer.echo(render_ps_text(table.result, title, None if show_all else 20), nl=False)
