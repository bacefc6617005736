"""``memtrace record`` and ``memtrace scenarios``: simulate a scenario into a trace;
list the built-in scenarios."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import typer

from memtrace import api
from memtrace.errors import OutputError
from memtrace.logsetup import get_logger
from memtrace.render import WIDTH, free_table
from memtrace.units import format_seconds, format_size

from ._app import app
from ._io import SEED_MAX, check_output, emit_json, input_file, parse_sysctls


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
