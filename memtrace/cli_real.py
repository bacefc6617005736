"""The ``memtrace import`` and ``memtrace snapshot`` commands (registered on the main app).

``import`` turns what a real kernel wrote (``perf script`` text, an ftrace buffer,
plain or gzipped; optionally with the kernel log of the same run) into a memtrace
trace that ``stat``, ``trace``, ``explain``, ``report`` and ``replay`` read.
``snapshot`` reads this machine's /proc and memory cgroups into a file that
``explain`` breaks down. Both render what :mod:`memtrace.analysis` returns: a short
summary under 80 columns, or one JSON object with ``--json``.
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
from memtrace.cli import _check_output, _emit_json, _input_file, app
from memtrace.errors import MemtraceError
from memtrace.render import format_bytes

WIDTH = 79


@contextmanager
def _progress(description: str, total_bytes: int) -> Iterator[Callable[[int], None] | None]:
    """A byte-count progress bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total_bytes or None)
        yield lambda done: progress.update(task, completed=done)


def _default_output(source: Path) -> Path:
    """``run.perf-script.txt.gz`` -> ``run.mtrace`` beside it."""
    name = source.name
    for suffix in (".gz", ".txt", ".perf-script", ".perf", ".trace", ".ftrace", ".script", ".log"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return source.with_name(f"{name}.mtrace")


def _wrap(text: str, indent: str = "    ") -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


@app.command(
    "import",
    epilog=(
        "Examples:\n\n"
        "  perf record -e 'kmem:rss_stat,exceptions:page_fault_user,oom:*' -a -- ./app\n\n"
        "  perf script | gzip > app.perf.gz && memtrace import app.perf.gz\n\n"
        "  memtrace import app.perf.gz --dmesg kern.log -o app.mtrace && memtrace report app.mtrace\n\n"
        "  memtrace import /sys/kernel/tracing/trace --format ftrace -o ftrace.mtrace\n\n"
        "  memtrace replay app.mtrace --sysctl vm.swappiness=10"
    ),
)
def import_(
    source: Path = typer.Argument(..., metavar="INPUT", help="perf script or ftrace text (plain or gzip)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Trace file to write [default: INPUT.mtrace]."),
    fmt: str = typer.Option("auto", "--format", "-f", metavar="FORMAT", help="perf-script, ftrace or auto."),
    dmesg: Path | None = typer.Option(None, "--dmesg", metavar="LOG",
                                         help="The kernel log of the same run (dmesg, journalctl -k): its OOM "
                                              "reports add badness, task tables, the memcg and its limit."),
    kernel_version: str | None = typer.Option(None, "--kernel-version", metavar="X.Y",
                                                 help="The traced kernel's version, when no log names it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Import a real kernel's trace (perf script or ftrace text) as a memtrace trace."""
    from memtrace.analysis.importers import FORMATS, import_trace

    if fmt != "auto" and fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}, auto", param_hint="--format")
    if kernel_version is not None:
        from memtrace.linux.version import parse_kernel_version

        try:
            parse_kernel_version(kernel_version)
        except ValueError:
            raise typer.BadParameter(f"{kernel_version!r} is not a kernel version such as 6.8 or 5.15.0-91",
                                     param_hint="--kernel-version") from None
    if not source.exists():
        raise MemtraceError(f"cannot read {source}: no such file")
    if source.is_dir():
        raise MemtraceError(f"cannot read {source}: it is a directory")
    given = source
    source = _input_file(source)
    if output is None and source != given:
        raise MemtraceError(f"{given} is a pipe: name the trace to write with -o")
    out = output or _default_output(source)
    _check_output(out, source)
    _check_output(out, dmesg)
    dmesg = _input_file(dmesg) if dmesg is not None else None
    if dmesg is not None:
        from memtrace.analysis.kernlog import looks_like_kernel_log

        if not looks_like_kernel_log(dmesg):
            typer.echo(f"memtrace: warning: {dmesg}: does not read as a kernel log (no OOM report, no dmesg, "
                       "syslog or journal lines); nothing is taken from it", err=True)
    if dmesg is not None and not dmesg.is_file():
        raise MemtraceError(f"cannot read kernel log {dmesg}: " + ("no such file" if not dmesg.exists() else
                                                                   "not a regular file"))
    if out.parent.exists() and not out.parent.is_dir():
        raise MemtraceError(f"cannot write trace {out}: {out.parent} is not a directory")
    if out.exists() and not out.is_file():
        # The trace is assembled beside OUT and renamed onto it: a device or a
        # directory there would be replaced, not written to.
        raise MemtraceError(f"cannot write trace {out}: not a regular file")
    try:
        size = source.stat().st_size
    except OSError:
        size = 0
    try:
        with _progress(f"importing {given.name}", size) as progress:
            result = import_trace(source, out, format=fmt, dmesg=dmesg, kernel_version=kernel_version,
                                  memtrace_version=__version__, progress=progress)
    except OSError as e:
        raise MemtraceError(f"cannot write trace {out}: {e.strerror or e}") from None
    for w in result.warnings:
        typer.echo(f"memtrace: warning: {w}", err=True)
    if result.lines and not sum(result.events.values()):
        typer.echo(f"memtrace: warning: {given}: none of its {result.lines:,} lines is a {result.format} event "
                   "line; is it in another format? (--format auto detects it)", err=True)
    if as_json:
        _emit_json(result.as_dict())
        return
    total = sum(result.events.values())
    typer.echo(_wrap(f"{given.name}: {result.format}, {result.lines:,} lines -> {total:,} events "
                     f"({result.duration_ns / 1e9:.3f} s traced)"))
    typer.echo(_wrap(f"trace: {result.trace} ({format_bytes(result.trace_bytes)})"))
    if result.companion_log:
        typer.echo(_wrap(f"kernel log: {result.companion_log}"))
    width = max((len(n) for n in result.events), default=10)
    typer.echo(f"{'TRACEPOINT':<{width}}  {'EVENTS':>12}")
    for name, count in result.events.items():
        typer.echo(f"{name:<{width}}  {count:>12,}")
    if result.unknown_lines:
        top = sorted(result.unknown_events.items(), key=lambda kv: -kv[1])[:5]
        named = ", ".join(f"{k} ({v:,})" for k, v in top)
        typer.echo(_wrap(f"not imported: {result.unknown_lines:,} lines" + (f"; events: {named}" if named else "")))
    if result.summarised:
        typer.echo(_wrap("summarised (no memtrace tracepoint): " + ", ".join(
            f"{k} ({v.get('events', 0):,})" for k, v in result.summarised.items())))
    for kill in result.oom_kills:
        typer.echo(_wrap(f"OOM kill {kill['oom_id']}: {kill.get('comm') or '?'} (pid {kill['victim_pid']}) "
                         f"at {kill['ts_ns'] / 1e9:.6f} s, triggered by pid {kill['trigger_pid']}"
                         + (f", {kill['constraint']} {kill.get('memcg') or ''}".rstrip() if 'constraint' in kill
                            else "")))
    typer.echo(f"workload: {result.processes} process(es) derived for 'memtrace replay'")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  sudo memtrace snapshot -o now.json && memtrace explain now.json\n\n"
        "  memtrace snapshot -o host.json.gz --json | jq .top_processes\n\n"
        "  memtrace snapshot"
    )
)
def snapshot(
    output: Path | None = typer.Option(None, "-o", "--output",
                                          help="Snapshot file to write (.gz: gzipped) [default: "
                                               "memtrace-snapshot.json]."),
    top: int = typer.Option(10, "--top", min=1, help="How many processes and cgroups to list."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Read this machine's memory now: /proc/meminfo, every process's smaps_rollup
    and status, memory cgroups (v1 and v2); 'memtrace explain FILE' breaks it down."""
    from memtrace.analysis.procsnap import summary, take_snapshot, write_snapshot

    out = output or Path("memtrace-snapshot.json")
    snap = take_snapshot()
    try:
        nbytes = write_snapshot(snap, out)
    except OSError as e:
        raise MemtraceError(f"cannot write snapshot {out}: {e.strerror or e}") from None
    s = summary(snap, top=top)
    if as_json:
        _emit_json({"snapshot": str(out), "bytes": nbytes, **s})
        return
    _print_summary(s, out, nbytes)


def _print_summary(s: dict[str, Any], out: Path, nbytes: int) -> None:
    from memtrace.render import free_table

    taken = s.get("taken", {})
    typer.echo(_wrap(f"snapshot: {out} ({format_bytes(nbytes)}), {s['processes']} processes, "
                     f"kernel {taken.get('kernel_release', '?')}"))
    if s["free"]:
        typer.echo(free_table([{"label": "now", "ts_ns": int((taken.get("uptime_s") or 0) * 1e9),
                                "free": s["free"]}], deltas=False))
    if s["top_processes"]:
        typer.echo(f"{'PID':>7} {'COMM':<16} {'RSS_MB':>9} {'PSS_MB':>9} {'SWAP_MB':>8} {'ADJ':>5}")
        for p in s["top_processes"]:
            adj = p["oom_score_adj"] if p["oom_score_adj"] is not None else "-"
            typer.echo(f"{p['pid']:>7} {str(p['comm'])[:16]:<16} {p['rss_bytes'] / (1 << 20):>9.1f} "
                       f"{p['pss_bytes'] / (1 << 20):>9.1f} {p['swap_bytes'] / (1 << 20):>8.1f} {adj:>5}")
    if s["cgroups"]:
        typer.echo(f"{'CGROUP':<44} {'V':>2} {'USAGE_MB':>10} {'LIMIT_MB':>10}")
        for c in s["cgroups"]:
            path = c["path"] if len(c["path"]) <= 44 else "..." + c["path"][-41:]
            limit = f"{c['limit_bytes'] / (1 << 20):.1f}" if c["limit_bytes"] is not None else "max"
            typer.echo(f"{path:<44} {c['version']:>2} {c['usage_bytes'] / (1 << 20):>10.1f} {limit:>10}")
    if s["errors"]:
        typer.echo(f"{s['errors']} process(es) could not be read (they exited, or permission)")
    typer.echo(_wrap(f"next: memtrace explain {out}"))
