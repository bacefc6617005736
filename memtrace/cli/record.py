"""``memtrace record`` and ``memtrace scenarios``: simulate a scenario into a trace, or
record the running kernel (``--live``); list the built-in scenarios."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from memtrace import api
from memtrace.errors import OutputError, UsageError
from memtrace.logsetup import get_logger
from memtrace.render import WIDTH, event_table, free_table, wrap
from memtrace.units import format_seconds, format_size

from ._app import app
from ._io import SEED_MAX, check_output, emit_json, input_file, parse_sysctls, warn

if TYPE_CHECKING:
    from memtrace.analysis.importers.live import LiveRecordResult

#: The trace ``record --live`` writes when no -o is given.
LIVE_DEFAULT_OUTPUT = "live.mtrace"


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace record private-file-mapping\n\n"
        "  memtrace record oom.toml -o oom.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace record tmpfs-file --json | jq .snapshots[].free\n\n"
        "  sudo memtrace record --live -c './leaker 1024' -o leak.mtrace\n\n"
        "  sudo memtrace record --live -p 1234 --duration 10\n\n"
        "  sudo memtrace record --live --cgroup /sys/fs/cgroup/memory/app -o app.mtrace && memtrace report app.mtrace"
    )
)
def record(
    scenario: str | None = typer.Argument(None, help="A built-in scenario name (see 'memtrace scenarios') or a TOML "
                                                     "file (none with --live)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Trace file to write [default: SCENARIO.mtrace; "
                                                                   f"{LIVE_DEFAULT_OUTPUT} with --live]."),
    sysctl: list[str] | None = typer.Option(None, "--sysctl", metavar="KEY=VALUE",
                                            help="Override a sysctl (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the kernel's random number generator."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    live: bool = typer.Option(False, "--live", help="Record the running kernel's memory tracepoints from tracefs "
                                                    "(root), not a simulation."),
    all_tasks: bool = typer.Option(False, "-a", "--all", help="--live: every task of the machine."),
    pid: list[int] | None = typer.Option(None, "-p", "--pid", metavar="PID",
                                         help="--live: this process and its descendants (repeatable)."),
    command: str | None = typer.Option(None, "-c", "--command", metavar="'CMD ARGS'",
                                       help="--live: run CMD (by /bin/sh -c) and record it until it exits."),
    cgroup: str | None = typer.Option(None, "--cgroup", metavar="PATH",
                                      help="--live: the tasks of this cgroup (its directory, or its path in the "
                                           "memory hierarchy) and their children."),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS", min=0.001,
                                          help="--live: stop after this long [default: when the command or "
                                               "processes exit, or Ctrl-C]."),
    buffer_kb: int = typer.Option(4096, "--buffer-kb", metavar="KIB", min=64, max=1 << 22,
                                  help="--live: ring buffer per CPU (KiB)."),
) -> None:
    """Simulate a scenario and record every event to a trace file; or, with --live,
    record the running kernel's memory tracepoints (tracefs, no perf needed) and the
    kernel log's OOM reports into the same kind of trace 'memtrace import' writes.

    A live recording stops at --duration, when the command (-c) or the
    processes (-p) exit, or at Ctrl-C or SIGTERM, and keeps what it read; lost
    events are counted and reported. It needs root (or CAP_PERFMON with a
    writable tracefs).
    """
    if live or any((all_tasks, pid, command is not None, cgroup is not None, duration is not None)):
        if not live:
            raise UsageError("-a, -p, -c, --cgroup and --duration record the running kernel: add --live")
        if scenario is not None:
            raise UsageError(f"--live records the running kernel, not a scenario ({scenario!r}): give -c 'CMD' to "
                             "run a program under the trace")
        if sysctl:
            raise UsageError("--sysctl applies to simulated scenarios, not to --live")
        _record_live(output or Path(LIVE_DEFAULT_OUTPUT), pid or [], command, cgroup, all_tasks, duration, buffer_kb,
                     as_json)
        return
    if scenario is None:
        raise UsageError("give a scenario (see 'memtrace scenarios'), or --live to record the running kernel")
    from memtrace.kernel.workload import resolve_scenario

    overrides = parse_sysctls(sysctl)
    is_path = "/" in scenario or scenario.endswith(".toml")  # as resolve_scenario() tells them apart
    src = str(input_file(Path(scenario))) if is_path and Path(scenario).exists() else scenario  # pipes copied
    sc = resolve_scenario(src)
    out = output or Path(f"{sc.name}.mtrace")
    check_output(out, src)
    get_logger().info("recording", scenario=sc.name, trace=str(out))
    try:
        result = api.record(sc, out, sysctls=overrides, seed=seed)
    except OSError as e:
        raise OutputError(f"cannot write trace {out}: {e.strerror or e}") from None
    if as_json:
        emit_json(result.as_dict())
        return
    total = sum(result.events.values())
    typer.echo(f"{sc.name}: {total:,} events in {format_seconds(result.duration_ns)} simulated")
    typer.echo(f"trace: {result.trace} ({format_size(result.trace_bytes)})")
    if overrides:
        typer.echo(textwrap.fill("sysctl: " + ", ".join(f"{k}={v}" for k, v in overrides.items()), WIDTH,
                                 subsequent_indent="    "))
    typer.echo(free_table(result.snapshots))
    if result.panic:
        typer.echo(f"kernel panic: {result.panic}")
    for k in result.oom_kills:
        typer.echo(f"oom-kill: {k['comm']} (pid {k['pid']}, points {k['points']}, {k['constraint']}) "
                   f"at {format_seconds(k['ts_ns'])}")
    for err in result.errors:
        typer.echo(textwrap.fill(f"error: {err['comm']} (pid {err['pid']}) step {err['step']} {err['op']}: "
                                 f"{err['errno']}: {err['message']}", WIDTH, subsequent_indent="    "))


@app.command(epilog="Examples:\n\n  memtrace scenarios\n\n  memtrace scenarios --names")
def scenarios(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    names: bool = typer.Option(False, "--names", help="Print only the names, one per line."),
) -> None:
    """List the built-in scenarios (TOML files you can copy and edit)."""
    from memtrace.kernel.workload import Snapshot, builtin_dir, builtin_names, load_scenario

    items: list[dict[str, Any]] = []
    for name in builtin_names():
        path = builtin_dir() / f"{name}.toml"
        sc = load_scenario(path)
        items.append({"name": name, "description": sc.description, "path": str(path),
                      "snapshots": [s.label for p in sc.processes for s in p.steps if isinstance(s, Snapshot)]})
    if names:
        typer.echo("\n".join(i["name"] for i in items))
    elif as_json:
        emit_json(items)
    else:
        for i in items:
            typer.echo(i["name"])
            typer.echo(textwrap.fill(i["description"], 78, initial_indent="    ", subsequent_indent="    "))


def _status(message: str) -> None:
    typer.echo(f"memtrace: {message}", err=True)


def _check_writable(output: Path) -> None:
    """OutputError now, not after a recording, when ``output`` cannot be written
    (missing directories are made, as import makes them)."""
    try:
        if output.exists() and not output.is_file():
            raise OutputError(f"cannot write trace {output}: not a regular file")
        parent = output.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise OutputError(f"cannot write trace {output}: {parent} is not a directory")
    except OSError as e:
        raise OutputError(f"cannot write trace {output}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write trace {output}: {parent} is not writable")


def _record_live(output: Path, pids: list[int], command: str | None, cgroup: str | None, all_tasks: bool,
                 duration: float | None, buffer_kb: int, as_json: bool) -> None:
    """``record --live``: capture, import, summary."""
    _check_writable(output)
    get_logger().info("recording live", trace=str(output))
    try:
        result = api.record_live(output, pids=pids, command=command, cgroup=cgroup, all_tasks=all_tasks,
                                 duration_s=duration, buffer_kb=buffer_kb, status=_status)
    except OSError as e:
        raise OutputError(f"cannot write trace {output}: {e.strerror or e}") from None
    warn(result.warnings)
    if as_json:
        emit_json(result.as_dict())
        return
    typer.echo(live_summary(result))


def live_summary(result: LiveRecordResult) -> str:
    """The text of ``record --live``: what was recorded, read and lost, the trace,
    its events, the OOM kills."""
    imp = result.imported
    read = sum(result.events_read.values())
    lines = [
        wrap(f"live: {result.target} for {format_seconds(result.elapsed_ns)} ({result.stop_reason})"),
        wrap(f"read: {read:,} events from tracefs, {result.lost_events:,} lost"
             + (f"; {len(result.missing_tracepoints)} tracepoints not on this kernel" if result.missing_tracepoints
                else "")),
        wrap(f"trace: {imp.trace} ({format_size(imp.trace_bytes)})"),
        event_table(imp.events),
    ]
    if imp.unknown_lines:
        top = sorted(imp.unknown_events.items(), key=lambda kv: -kv[1])[:4]
        lines.append(wrap(f"not imported: {imp.unknown_lines:,} events (no memtrace tracepoint yet): "
                          + ", ".join(f"{k} ({v:,})" for k, v in top)))
    for kill in imp.oom_kills:
        lines.append(wrap(f"OOM kill {kill['oom_id']}: {kill.get('comm') or '?'} (pid {kill['victim_pid']}) at "
                          f"{format_seconds(kill['ts_ns'], 6)}, triggered by pid {kill['trigger_pid']}"
                          + (f", {kill['constraint']} {kill.get('memcg') or ''}".rstrip() if "constraint" in kill
                             else "")))
    if result.kernel_log_lines:
        lines.append(wrap(f"kernel log: {result.kernel_log_lines:,} lines, {result.oom_reports} OOM report(s) "
                          "(the trace's companion log)"))
    lines.append(f"workload: {imp.processes} process(es) derived for 'memtrace replay'")
    return "\n".join(lines)
