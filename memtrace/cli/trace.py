"""``memtrace list``, ``memtrace trace`` and ``memtrace tools``: the tracepoints,
bpftrace-like programs over them, and the shipped programs.

``trace`` compiles a one-liner program (``-e``), a program file (``-f``) or a shipped
tool (``-t``) and runs it over a trace file, streamed, or live while a scenario is
simulated. Output is bpftrace's: "Attaching N probes...", printf lines as they
happen, maps at the end; with ``--json`` one object per line as ``bpftrace -f json``
prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from memtrace import api
from memtrace.errors import InputError, NotFoundError, UsageError
from memtrace.escape import raw_stdout
from memtrace.render import tracepoint_listing

from ._app import app
from ._io import SEED_MAX, emit_json, is_trace_file, parse_sysctls, warn

if TYPE_CHECKING:
    from memtrace.tracer.probes import Output

__all__ = ["list_tracepoints", "tools", "trace"]


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
        raise NotFoundError(f"no tracepoint matches {pattern!r} (try 'memtrace list')")
    if as_json:
        emit_json([t.describe() for t in tps])
        return
    typer.echo(tracepoint_listing(tps))


def _program_source(program: str | None, file: Path | None, tool: str | None) -> tuple[str, str]:
    """The program text and the name errors give it."""
    given = [x for x in (program, file, tool) if x is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of -e PROGRAM, -f FILE or -t TOOL")
    if program is not None:
        return program, "-e"
    if file is not None:
        try:
            return file.read_text(), str(file)
        except OSError as e:
            raise InputError(f"cannot read program {file}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise InputError(f"cannot read program {file}: not UTF-8 text") from None
    assert tool is not None
    t = api.load_tool(tool)
    return t.source, t.filename


def _writer(as_json: bool) -> Callable[[Output], None]:
    """Where the program's output goes: stdout, as text or JSON lines, printf lines
    flushed as they happen (also through a pipe)."""
    from memtrace.tracer.probes import PrintfOutput, render_json, render_text

    render = render_json if as_json else render_text
    out = raw_stdout()  # the program's own printf literals (\e) are kept; trace text is escaped by the renderer

    def write(record: Output) -> None:
        text = render(record)
        if text:
            out.write(text)
            if isinstance(record, PrintfOutput):
                out.flush()
    return write


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace trace pfm.mtrace -e 'page_fault { @[vma_kind] = count(); }'\n\n"
        "  memtrace trace fork-cow -e 'cow /comm != \"parent\"/ { @[pid] = count(); }'\n\n"
        "  memtrace trace run.mtrace -e 'page_fault { @us = hist(nsecs / 1000); }'\n\n"
        "  memtrace trace oom-leak -t oomkill\n\n"
        "  memtrace trace run.mtrace -f mytool.bt --json\n\n"
        "  memtrace trace tmpfs-file -e 'interval:ms:50 { printf(\"%d\\n\", nsecs); }'\n\n"
        "  sudo memtrace trace --live -e 'page_fault { @[comm] = count(); }'\n\n"
        "  sudo memtrace trace --live -c './leaker' -e 'rss_stat { @[comm, member] = max(size_bytes); }'\n\n"
        "  sudo memtrace trace --live -p 1234 -e 'interval:s:1 { print(@); clear(@); } mmap { @ = count(); }'"
    )
)
def trace(
    target: str | None = typer.Argument(None, help="A trace file, or a scenario to simulate live: a built-in name "
                                                   "(see 'memtrace scenarios') or a TOML file (none with --live)."),
    program: str | None = typer.Option(None, "-e", "--program", help="The program text."),
    file: Path | None = typer.Option(None, "-f", "--file", help="Read the program from FILE."),
    tool: str | None = typer.Option(None, "-t", "--tool", help="Run a shipped tool (see 'memtrace tools')."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per output, like bpftrace -f json."),
    sysctl: list[str] | None = typer.Option(None, "--sysctl", metavar="KEY=VALUE",
                                            help="Override a sysctl of a live scenario (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of a live scenario's kernel."),
    live: bool = typer.Option(False, "--live", help="Run on the running kernel's events (tracefs, root) as they "
                                                    "happen, until Ctrl-C."),
    pid: list[int] | None = typer.Option(None, "-p", "--pid", metavar="PID",
                                         help="--live: only this process and its descendants (repeatable)."),
    command: str | None = typer.Option(None, "-c", "--command", metavar="'CMD ARGS'",
                                       help="--live: run CMD (by /bin/sh -c); stop when it exits."),
    cgroup: str | None = typer.Option(None, "--cgroup", metavar="PATH", help="--live: only this cgroup's tasks."),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS", min=0.001,
                                          help="--live: stop after this long."),
    buffer_kb: int = typer.Option(4096, "--buffer-kb", metavar="KIB", min=64, max=1 << 22,
                                  help="--live: ring buffer per CPU (KiB)."),
) -> None:
    """Run a bpftrace-like program over a trace file or a live scenario.

    The language: probes on tracepoints (names or globs, see 'memtrace list'),
    BEGIN, END and interval:ms:N (simulated time); /predicates/; maps with
    count(), sum(), min(), max(), avg(), stats(), hist(), lhist(); printf(),
    print(), clear(), zero(), delete(), time(), exit(); fields by name, and the
    builtins pid, comm, nsecs, elapsed, probe; functions path(ino), comm(pid),
    strftime(fmt, ns).
    """
    from memtrace.tracer.oneliner import compile_program
    from memtrace.tracer.probes import AttachOutput, run_batches

    source, filename = _program_source(program, file, tool)
    write = _writer(as_json)
    if live or pid or command is not None or cgroup is not None or duration is not None:
        if not live:
            raise UsageError("-p, -c, --cgroup and --duration trace the running kernel: add --live")
        if target is not None:
            raise UsageError(f"--live traces the running kernel, not {target!r}: give -c 'CMD' to run a program")
        if sysctl:
            raise UsageError("--sysctl applies to simulated scenarios, not to --live")
        _trace_kernel(source, filename, write, pid or [], command, cgroup, duration, buffer_kb)
        return
    if target is None:
        raise UsageError("give a trace file or a scenario, or --live for the running kernel")
    if is_trace_file(target):
        if sysctl:
            raise InputError("--sysctl applies to live scenarios; to change a recorded run use "
                             "'memtrace replay TRACE --sysctl ...'")
        reader = api.open_trace(target)
        tracer = compile_program(source, filename=filename, registry=reader.registry, output=write)
        write(AttachOutput(tracer.nr_probes))
        run_batches(tracer, reader.ordered_batches())
        warn(reader.warnings)
        return
    _live(target, source, filename, write, parse_sysctls(sysctl), seed)


def _live(target: str, source: str, filename: str, write: Callable[[Output], None], overrides: dict[str, str],
          seed: int) -> None:
    """Run the program while the scenario ``target`` is simulated."""
    from memtrace.kernel.runner import run_scenario
    from memtrace.kernel.workload import resolve_scenario
    from memtrace.tracer.bus import Bus
    from memtrace.tracer.oneliner import compile_program
    from memtrace.tracer.probes import AttachOutput
    from memtrace.tracer.tracepoints import default_registry

    path = Path(target)
    if not path.exists() and ("/" in target or target.endswith((".mtrace", ".toml"))):
        raise InputError(f"cannot read {target}: no such file or directory")
    if path.is_dir():
        raise InputError(f"cannot read {target}: it is a directory")
    if path.exists() and path.suffix != ".toml":
        # Neither a trace (no magic) nor a scenario file: say what the trace reader
        # found wrong rather than "unknown scenario".
        try:
            api.open_trace(path)
        except InputError as e:
            raise type(e)(f"{e} (a scenario file must end in .toml)") from None
    scenario = resolve_scenario(target)
    registry = default_registry()
    tracer = compile_program(source, filename=filename, registry=registry, output=write)
    write(AttachOutput(tracer.nr_probes))
    bus = Bus(registry)
    tracer.attach(bus)
    tracer.start()
    run_scenario(scenario, bus, overrides, seed)
    tracer.finish()


def _trace_kernel(source: str, filename: str, write: Callable[[Output], None], pids: list[int], command: str | None,
                  cgroup: str | None, duration: float | None, buffer_kb: int) -> None:
    """``trace --live``: the program on the running kernel's events (the memtrace
    events the importer makes of them, as in a trace 'record --live' writes)."""
    from memtrace.tracer.oneliner import compile_program
    from memtrace.tracer.probes import AttachOutput
    from memtrace.tracer.tracepoints import default_registry

    tracer = compile_program(source, filename=filename, registry=default_registry(), output=write)
    write(AttachOutput(tracer.nr_probes))
    raw_stdout().flush()
    result = api.trace_live(tracer, pids=pids, command=command, cgroup=cgroup, duration_s=duration,
                            buffer_kb=buffer_kb, status=lambda m: typer.echo(f"memtrace: {m}", err=True))
    warn(result.warnings)


@app.command(
    epilog=("Examples:\n\n  memtrace tools\n\n  memtrace tools oomkill\n\n  memtrace tools --json\n\n"
            "  memtrace trace run.mtrace -t faults")
)
def tools(
    name: str | None = typer.Argument(None, help="Show this tool's doc, program and example output."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """List the shipped tools (ready-made programs for 'memtrace trace -t')."""
    from memtrace.tracer.tools import tools as all_tools

    if name is not None:
        t = api.load_tool(name)
        if as_json:
            emit_json({"name": t.name, "summary": t.summary, "doc": t.doc, "program": t.source,
                       "example": t.example})
            return
        typer.echo(t.source.rstrip("\n"))
        if t.example:
            typer.echo("\n" + t.example.rstrip("\n"))
        return
    items = all_tools()
    if as_json:
        emit_json([{"name": t.name, "summary": t.summary, "usage": f"memtrace trace TARGET -t {t.name}"}
                   for t in items])
        return
    width = max(len(t.name) for t in items)
    typer.echo(f"{'TOOL':<{width}}  DESCRIPTION")
    for t in items:
        typer.echo(f"{t.name:<{width}}  {t.summary}")
