"""The ``memtrace`` command line (typer).

Commands render what the API returns: human text under 80 columns, or one JSON
object with ``--json``. Every MemtraceError becomes one line on stderr,
``memtrace: <message>``, and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import atexit
import json
import os
import stat as stat_mod
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from memtrace import __version__
from memtrace.errors import MemtraceError, TraceFormatError
from memtrace.logsetup import configure_logging, get_logger
from memtrace.render import format_bytes, free_table, tracepoint_listing

app = typer.Typer(
    name="memtrace",
    help="Trace, replay and explain Linux memory management.",
    epilog=(
        "Examples:\n\n"
        "  memtrace record oom-leak                 # simulate a built-in scenario\n\n"
        "  memtrace report oom-leak.mtrace          # why was it OOM-killed, what if\n\n"
        "  memtrace replay oom-leak.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace explain oom-leak.mtrace --at 4.9s\n\n"
        "  memtrace report /var/log/kern.log        # a real kernel's OOM reports\n\n"
        "  memtrace ps                              # this machine's oom_score"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])
#: The largest --seed: the trace header stores it as a signed 64-bit integer.
SEED_MAX = (1 << 63) - 1


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _parse_sysctls(values: list[str] | None) -> dict[str, str]:
    from memtrace.kernel.sysctl import parse_sysctl_assignment

    out: dict[str, str] = {}
    for text in values or []:
        key, value = parse_sysctl_assignment(text)
        out[key] = value
    return out


def _check_output(output: Path | None, *inputs: Path | str | None, flag: str = "-o") -> None:
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
            raise MemtraceError(f"{output}: {flag} would overwrite the input {src}; choose another {flag}")


#: The most a pipe given as input is copied to a temporary file (bytes).
SPOOL_MAX_BYTES = 16 << 30


def _input_file(path: Path) -> Path:
    """``path`` ready to be read more than once: a regular file as it is; a pipe
    (``<(journalctl -k)``, ``/dev/stdin``) copied to a temporary file first, which
    is removed at exit. A device or socket is refused: /dev/zero would be read for
    ever. Missing files and directories are left to the reader's own error."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return path
    if stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode):
        return path
    if not stat_mod.S_ISFIFO(mode):
        raise MemtraceError(f"cannot read {path}: not a regular file (a device or socket)")
    fd, tmp = tempfile.mkstemp(prefix="memtrace-pipe-")
    atexit.register(lambda: os.path.exists(tmp) and os.unlink(tmp))
    copied = 0
    with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
        while block := src.read(1 << 20):
            copied += len(block)
            if copied > SPOOL_MAX_BYTES:
                raise MemtraceError(f"{path}: a pipe of more than {SPOOL_MAX_BYTES >> 30} GiB; write it to a file "
                                    "first")
            dst.write(block)
    return Path(tmp)


def _open_trace(trace: Path) -> Any:
    """A TraceReader of ``trace``; an unreadable file (missing, a directory, no
    permission, a device) is a TraceFormatError naming it, not an internal error.
    A trace is read by offset, so a pipe is refused: write it to a file first."""
    from memtrace.tracer.tracefile import TraceReader

    try:
        mode = trace.stat().st_mode
    except OSError:
        mode = stat_mod.S_IFREG
    if not (stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode)):
        raise TraceFormatError(f"cannot read trace {trace}: not a regular file (a pipe or device); "
                               "copy it to a file first")
    try:
        return TraceReader(trace)
    except OSError as e:
        raise TraceFormatError(f"cannot read trace {trace}: {e.strerror or e}") from None


@app.callback()
def _main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="Log more to stderr (-vv for debug)."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    configure_logging(verbose)
    if version:
        typer.echo(f"memtrace {__version__}")
        raise typer.Exit(0)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace record private-file-mapping\n\n"
        "  memtrace record oom.toml -o oom.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace record tmpfs-file --json | jq .snapshots[].free"
    )
)
def record(
    scenario: str = typer.Argument(..., help="A built-in scenario name (see 'memtrace scenarios') or a TOML file."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Trace file to write [default: SCENARIO.mtrace]."),
    sysctl: list[str] | None = typer.Option(None, "--sysctl", metavar="KEY=VALUE",
                                            help="Override a sysctl (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the kernel's random number generator."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Simulate a scenario and record every event to a trace file."""
    from memtrace.api import record as do_record
    from memtrace.kernel.workload import resolve_scenario

    overrides = _parse_sysctls(sysctl)
    is_path = "/" in scenario or scenario.endswith(".toml")  # as resolve_scenario() tells them apart
    src = str(_input_file(Path(scenario))) if is_path and Path(scenario).exists() else scenario  # pipes copied
    sc = resolve_scenario(src)
    out = output or Path(f"{sc.name}.mtrace")
    _check_output(out, src)
    get_logger().info("recording", scenario=sc.name, trace=str(out))
    try:
        result = do_record(sc, out, sysctls=overrides, seed=seed)
    except OSError as e:
        raise MemtraceError(f"cannot write trace {out}: {e.strerror or e}") from None
    if as_json:
        d = result.as_dict()
        _emit_json({k: d[k] for k in ("scenario", "trace", "sysctl", "events", "snapshots", "oom_kills", "errors",
                                      "trace_bytes", "duration_ns", "pids", "panic")})
        return
    import textwrap

    total = sum(result.events.values())
    typer.echo(f"{sc.name}: {total:,} events in {result.duration_ns / 1e9:.3f} s simulated")
    typer.echo(f"trace: {result.trace} ({format_bytes(result.trace_bytes)})")
    if overrides:
        typer.echo(textwrap.fill("sysctl: " + ", ".join(f"{k}={v}" for k, v in overrides.items()), 79,
                                 subsequent_indent="    "))
    typer.echo(free_table(result.snapshots))
    if result.panic:
        typer.echo(f"kernel panic: {result.panic}")
    for k in result.oom_kills:
        typer.echo(f"oom-kill: {k['comm']} (pid {k['pid']}, points {k['points']}, {k['constraint']}) "
                   f"at {k['ts_ns'] / 1e9:.3f} s")
    for err in result.errors:
        typer.echo(textwrap.fill(f"error: {err['comm']} (pid {err['pid']}) step {err['step']} {err['op']}: "
                                 f"{err['errno']}: {err['message']}", 79, subsequent_indent="    "))


@app.command(
    epilog="Examples:\n\n  memtrace stat private-file-mapping.mtrace\n\n  memtrace stat run.mtrace --json"
)
def stat(
    trace: Path = typer.Argument(..., help="Trace file to read."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Count the events of a trace per tracepoint; report damage if any."""
    reader = _open_trace(trace)
    st = reader.scan()
    damage = None
    if st.damage is not None:
        d = st.damage
        damage = {"offset": d.offset, "reason": d.reason, "chunks_skipped": d.chunks_skipped,
                  "events_recovered": d.events_recovered}
        typer.echo(f"memtrace: warning: {trace}: damaged at byte {d.offset} ({d.reason}); "
                   f"{d.chunks_skipped} chunk(s) skipped, {d.events_recovered:,} events recovered", err=True)
    # What the reader noticed besides (chunks missing or doubled: the footer's count
    # differs; frames it ignored), which a valid checksum does not show.
    noticed = [w for w in reader.warnings if st.damage is None or "the footer counts" in w or w.endswith("ignored")]
    for w in noticed:
        typer.echo(f"memtrace: warning: {w}", err=True)
    counts_agree = st.footer is not None and st.footer.get("total_events") == st.total_events
    if as_json:
        _emit_json({
            "trace": str(trace),
            "scenario": reader.meta.get("scenario"),
            "events": st.counts,
            "total_events": st.total_events,
            "duration_ns": st.duration_ns,
            "bytes": st.size_bytes,
            "chunks": st.chunks,
            "complete": st.footer is not None and counts_agree,
            "damage": damage,
            "warnings": reader.warnings,
        })
        return
    typer.echo(f"{trace}: scenario {reader.meta.get('scenario')}")
    typer.echo(f"{st.total_events:,} events, {st.duration_ns / 1e9:.3f} s, "
               f"{format_bytes(st.size_bytes)} in {st.chunks} chunks")
    width = max((len(n) for n in st.counts), default=10)
    typer.echo(f"{'TRACEPOINT':<{width}}  {'EVENTS':>12}")
    for name, count in st.counts.items():
        typer.echo(f"{name:<{width}}  {count:>12,}")


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
    from memtrace.api import read_snapshots

    reader = _open_trace(trace)
    snaps = read_snapshots(reader)
    for w in reader.warnings:
        typer.echo(f"memtrace: warning: {w}", err=True)
    if at is not None:
        snaps = [s for s in snaps if s["label"] == at]
        if not snaps:
            labels = ", ".join(s["label"] if s["label"].isprintable() else repr(s["label"])
                               for s in read_snapshots(_open_trace(trace))) or "none"
            raise MemtraceError(f"{trace}: no snapshot labelled {at!r} (labels: {labels}; for a moment in time "
                                "use 'memtrace explain --at TIME')")
    if as_json:
        _emit_json({"trace": str(trace), "snapshots": snaps})
        return
    typer.echo(free_table(snaps, deltas=at is None))


@app.command(
    "list",
    epilog="Examples:\n\n  memtrace list\n\n  memtrace list 'page_*'\n\n  memtrace list rss_stat --json",
)
def list_tracepoints(
    pattern: str | None = typer.Argument(None, help="Glob of tracepoint names (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """List tracepoints and their fields, like bpftrace -lv."""
    from memtrace.tracer.tracepoints import default_registry

    reg = default_registry()
    tps = reg.match(pattern) if pattern else list(reg)
    if not tps:
        raise MemtraceError(f"no tracepoint matches {pattern!r} (try 'memtrace list')")
    if as_json:
        _emit_json([t.describe() for t in tps])
        return
    typer.echo(tracepoint_listing(tps))


@app.command(epilog="Examples:\n\n  memtrace scenarios\n\n  memtrace scenarios --names")
def scenarios(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    names: bool = typer.Option(False, "--names", help="Print only the names, one per line."),
) -> None:
    """List the built-in scenarios (TOML files you can copy and edit)."""
    from memtrace.kernel.workload import builtin_dir, builtin_names, load_scenario

    items = []
    for name in builtin_names():
        sc = load_scenario(builtin_dir() / f"{name}.toml")
        items.append({"name": name, "description": sc.description, "path": str(builtin_dir() / f"{name}.toml"),
                      "snapshots": [s.label for p in sc.processes for s in p.steps if s.op == "snapshot"]})
    if names:
        typer.echo("\n".join(i["name"] for i in items))
    elif as_json:
        _emit_json(items)
    else:
        import textwrap

        for i in items:
            typer.echo(i["name"])
            typer.echo(textwrap.fill(i["description"], 78, initial_indent="    ", subsequent_indent="    "))


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
    from memtrace.analysis.kernlog import render_dmesg

    reader = _open_trace(trace)
    reports = render_dmesg(reader)
    for w in reader.warnings:
        typer.echo(f"memtrace: warning: {w}", err=True)
    if as_json:
        _emit_json([{"oom_id": r.oom_id, "ts_ns": r.ts_ns, "lines": list(r.lines)} for r in reports])
        return
    if not reports:
        typer.echo(f"{trace}: no OOM kill")
        return
    for r in reports:
        typer.echo("\n".join(r.lines))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Typer handles usage errors (exit 2); a
    MemtraceError becomes one line on stderr and exit 1; any other failure is a bug
    and is reported in one line too (the traceback only with -v)."""
    try:
        app(args=argv, prog_name="memtrace")
    except MemtraceError as e:
        typer.echo(f"memtrace: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("memtrace: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:
        args = sys.argv if argv is None else argv
        if any(a in ("-v", "-vv", "--verbose") for a in args):
            raise
        typer.echo(f"memtrace: internal error: {type(e).__name__}: {e} (run with -v for the traceback)", err=True)
        sys.exit(1)


__all__ = ["app", "main"]
import memtrace.cli_analysis  # noqa: E402  (registers explain and report)
import memtrace.cli_real  # noqa: E402  (registers import and snapshot)
import memtrace.cli_replay  # noqa: E402  (registers replay and diff)
import memtrace.cli_trace  # noqa: E402,F401  (registers trace and tools)
