"""``memtrace list``, ``memtrace trace`` and ``memtrace tools``: the tracepoints,
bpftrace-like programs over them, and the shipped programs.

``trace`` compiles a one-liner program (``-e``), a program file (the first
argument, as bpftrace takes it) or a shipped tool (``-t``) and runs it over a trace
file, streamed, live while a scenario is simulated, or on the running kernel
(``--live``, ``-p``, ``-c``). Output is bpftrace's: "Attaching N probes...", printf
lines as they happen, maps at the end; with ``-f json`` one object per line as
``bpftrace -f json`` prints them; ``-o FILE`` writes it to a file. ``-l [PATTERN]``
lists the probes as ``bpftrace -l`` does (``-v``: with their fields).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from memtrace import api
from memtrace.errors import InputError, NotFoundError, UsageError
from memtrace.escape import raw_stdout
from memtrace.render import tracepoint_listing
from memtrace.safewrite import SafeOutput

from ._app import app
from ._io import SEED_MAX, check_output, emit_json, is_trace_file, parse_sysctls, warn

if TYPE_CHECKING:
    from memtrace.tracer.probes import Output

_log = logging.getLogger("memtrace.cli.trace")

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


def _program_source(program: str | None, file: str | None, tool: str | None) -> tuple[str, str, str]:
    """The program text, the name errors give it, and what a tool's output means on
    a simulated trace ("" when it says nothing)."""
    from memtrace.tracer.oneliner import read_program

    if program is not None:
        return program, "-e", ""
    if file is not None:
        return read_program(file), file, ""
    assert tool is not None
    t = api.load_tool(tool)
    return t.source, t.filename, t.simulated


def _simulated_note(tool: str | None, note: str) -> None:
    """A tool's note on what its output means when the trace is simulated."""
    if note:
        typer.echo(f"memtrace: note: {tool}: {note}", err=True)


def _split_arguments(args: list[str], program: str | None, tool: str | None,
                     file: str | None) -> tuple[str | None, str | None]:
    """The program file and the target among the positional arguments.

    A program comes from exactly one place: ``-e``, ``-t``, or the first positional
    argument (bpftrace's ``bpftrace PROGRAM.bt``). With ``-e`` or ``-t`` the one
    positional argument is the trace (or scenario); without, the first is the
    program file and the second the trace."""
    given = [flag for flag, v in (("-e", program), ("-t", tool), ("-f FILE", file)) if v is not None]
    if len(given) > 1:
        raise UsageError(f"give one program: {' and '.join(given)} both name one")
    if given:
        if len(args) > 1:
            raise UsageError(f"with {given[0]} the program is given: one TRACE (or scenario) follows, not "
                             f"{len(args)} arguments ({' '.join(args)})")
        return file, (args[0] if args else None)
    if not args:
        raise UsageError("no program: give a program file (memtrace trace PROGRAM.bt TRACE), -e 'PROGRAM' or "
                         "-t TOOL")
    if len(args) > 2:
        raise UsageError(f"too many arguments ({' '.join(args)}): memtrace trace [PROGRAM.bt] [TRACE]")
    if is_trace_file(args[0]):
        raise UsageError(f"{args[0]} is a trace, not a program: give the program first (memtrace trace "
                         f"PROGRAM.bt {args[0]}) or -e 'PROGRAM'")
    if not Path(args[0]).exists() and len(args) == 1 and "/" not in args[0] and not args[0].endswith(".bt"):
        raise UsageError(f"no program: {args[0]!r} is not a program file; give -e 'PROGRAM', -t TOOL or "
                         "PROGRAM.bt before the trace")
    return args[0], (args[1] if len(args) > 1 else None)


def _format(fmt: str | None, as_json: bool, file: str | None) -> tuple[bool, str | None]:
    """``-f text|json`` (``--json`` too); the old ``-f FILE`` spelling of the
    program file, kept with a deprecation note. Returns (json?, program file)."""
    if fmt is None or fmt in ("text", "json"):
        return as_json or fmt == "json", file
    if file is not None:
        raise UsageError(f"-f takes text or json (the output format), not {fmt!r}")
    warn([f"-f FILE is deprecated for the program file (-f now takes the output format, text or json): "
          f"write 'memtrace trace {fmt} TRACE'"])
    return as_json, fmt


@contextlib.contextmanager
def _output(output: Path | None, *inputs: str | None) -> Iterator[IO[str]]:
    """Where the program's output goes: stdout, or ``-o FILE`` (never an input),
    written through the safe writer: a new file in place as the program prints (as
    bpftrace -o writes it), an existing one replaced when the run ends. A run ended
    by Ctrl-C or SIGTERM keeps what it printed to a new file, as bpftrace does, but
    never puts a part of the output in place of an existing file: that one stays
    byte-identical, as after an error."""
    if output is None:
        yield raw_stdout()  # the program's own printf literals (\e) are kept; trace text is escaped by the renderer
        return
    check_output(output, *inputs)
    sink = SafeOutput(output, text=True, in_place_if_new=True)
    try:
        yield sink.file
    except KeyboardInterrupt:
        sink.abandon()
        raise
    except BaseException:
        sink.discard()
        raise
    sink.commit()


def _writer(as_json: bool, out: IO[str]) -> Callable[[Output], None]:
    """Where the program's output goes: ``out``, as text or JSON lines, printf
    lines flushed as they happen (also through a pipe)."""
    from memtrace.tracer.probes import PrintfOutput, render_json, render_text

    render = render_json if as_json else render_text

    def write(record: Output) -> None:
        text = render(record)
        if text:
            out.write(text)
            if isinstance(record, PrintfOutput):
                out.flush()
    return write


def _list_probes(pattern: str | None, fields: bool, as_json: bool) -> None:
    """``trace -l [PATTERN]`` (``-v``: with fields), as ``bpftrace -l``: the kernel
    tracepoints memtrace records, as bpftrace names them, then memtrace's own."""
    from memtrace.tracer.oneliner import probe_listing

    rows = probe_listing(pattern)
    if not rows:
        raise NotFoundError(f"no probe matches {pattern!r} (try 'memtrace trace -l')")
    if as_json:
        emit_json([{"probe": r.probe, "tracepoint": r.tracepoint,
                    "fields": [{"type": t, "name": n, "source": src} for t, n, src in r.fields]} for r in rows])
        return
    for r in rows:
        typer.echo(r.probe)
        if fields:
            width = max((len(f"{t} {n}") for t, n, _ in r.fields), default=0)
            for t, n, src in r.fields:
                typer.echo(f"    {f'{t} {n}':<{width}}  {src}".rstrip() if src else f"    {t} {n}")


@app.command(
    epilog=(
        "A program comes from -e 'PROGRAM', -t TOOL, or a program file given first (as "
        "bpftrace takes it); the trace follows. Without -e or -t, the first argument is the "
        "program file and the second the trace; with them, the one argument is the trace.\n\n"
        "Examples:\n\n"
        "  memtrace trace pfm.mtrace -e 'page_fault { @[vma_kind] = count(); }'\n\n"
        "  memtrace trace mytool.bt run.mtrace -f json -o out.json\n\n"
        "  memtrace trace oom.mtrace -e 'tracepoint:oom:mark_victim { printf(\"%s %d kB\\n\", args.comm, "
        "args.anon_rss); }'\n\n"
        "  memtrace trace run.mtrace -e 't:kmem:rss_stat { @[comm, args->member] = max(args->size); }'\n\n"
        "  memtrace trace run.mtrace -e 'page_fault { @us = hist(nsecs / 1000); }'\n\n"
        "  memtrace trace oom-leak -t oomkill\n\n"
        "  memtrace trace tmpfs-file -e 'interval:s:1 { printf(\"%d\\n\", nsecs); }'\n\n"
        "  memtrace trace -l 'tracepoint:vmscan:*' -v\n\n"
        "  sudo memtrace trace -e 'page_fault { @[comm] = count(); }' --live\n\n"
        "  sudo memtrace trace -c './leaker' -e 't:kmem:rss_stat { @[comm] = max(args.size); }'\n\n"
        "  sudo memtrace trace -p 1234 -e 'interval:s:1 { print(@); clear(@); } mmap { @ = count(); }'"
    )
)
def trace(
    args: list[str] | None = typer.Argument(None, metavar="[PROGRAM.bt] [TRACE]",
                                            help="The program file (unless -e or -t gives the program), then a "
                                                 "trace file or a scenario to simulate live: a built-in name "
                                                 "(see 'memtrace scenarios') or a TOML file (none with --live). "
                                                 "With -l: a pattern of probes."),
    program: str | None = typer.Option(None, "-e", "--program", help="The program text."),
    tool: str | None = typer.Option(None, "-t", "--tool", help="Run a shipped tool (see 'memtrace tools')."),
    listing: bool = typer.Option(False, "-l", "--list", help="List the probes (matching the pattern argument), "
                                                             "as bpftrace -l; with -v their fields."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="With -l: the fields; else log more."),
    fmt: str | None = typer.Option(None, "-f", "--format", metavar="text|json",
                                   help="Output format: text (default) or json, one object per line as bpftrace "
                                        "-f json. (-f FILE, the old spelling of the program file, still works.)"),
    file: str | None = typer.Option(None, "--file", hidden=True, help="Deprecated: the program file."),
    as_json: bool = typer.Option(False, "--json", help="Same as -f json."),
    output: Path | None = typer.Option(None, "-o", "--output", metavar="FILE", help="Write the output to FILE."),
    sysctl: list[str] | None = typer.Option(None, "--sysctl", metavar="KEY=VALUE",
                                            help="Override a sysctl of a live scenario (repeatable)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of a live scenario's kernel."),
    live: bool = typer.Option(False, "--live", help="Run on the running kernel's events (tracefs, root) as they "
                                                    "happen, until Ctrl-C (-p and -c imply it)."),
    pid: list[int] | None = typer.Option(None, "-p", "--pid", metavar="PID",
                                         help="The running kernel: only this process and its descendants "
                                              "(repeatable)."),
    command: str | None = typer.Option(None, "-c", "--command", metavar="'CMD ARGS'",
                                       help="The running kernel: run CMD (by /bin/sh -c); stop when it exits."),
    cgroup: str | None = typer.Option(None, "--cgroup", metavar="PATH", help="--live: only this cgroup's tasks."),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS", min=0.001,
                                          help="--live: stop after this long."),
    buffer_kb: int = typer.Option(4096, "--buffer-kb", metavar="KIB", min=64, max=1 << 22,
                                  help="--live: ring buffer per CPU (KiB)."),
) -> None:
    """Run a bpftrace-like program over a trace file, a live scenario or the kernel.

    The language: probes on tracepoints, by memtrace's names or globs (see
    'memtrace list') or as bpftrace names the kernel's (tracepoint:oom:mark_victim,
    t:kmem:rss_stat; see -l), BEGIN, END and interval:s:N (simulated time);
    /predicates/; maps with count(), sum(), min(), max(), avg(), stats(), hist(),
    lhist(); printf(), print(), clear(), zero(), delete(), time(), exit(); fields by
    name or as args.NAME / args->NAME, and the builtins pid, comm, nsecs, elapsed,
    probe; functions str(s), path(ino), comm(pid), strftime(fmt, ns). What bpftrace
    has and memtrace cannot run (kprobes, stacks, casts ...) is an error naming it.
    """
    from memtrace.tracer.oneliner import compile_program
    from memtrace.tracer.probes import AttachOutput, run_trace

    positional = list(args or [])
    use_json, file = _format(fmt, as_json, file)
    if listing:
        if program is not None or tool is not None or file is not None or len(positional) > 1:
            raise UsageError("-l lists probes: give at most a PATTERN, no program")
        _list_probes(positional[0] if positional else None, verbose > 0, use_json)
        return
    if verbose:
        from memtrace.logsetup import configure_logging

        configure_logging(verbose)
    file, target = _split_arguments(positional, program, tool, file)
    source, filename, simulated = _program_source(program, file, tool)
    if live or pid or command is not None or cgroup is not None or duration is not None:
        if target is not None:
            raise UsageError(f"-p, -c, --cgroup, --duration and --live trace the running kernel, not {target!r}: "
                             "give -c 'CMD' to run a program (to select a pid in a trace: /pid == N/)")
        if sysctl:
            raise UsageError("--sysctl applies to simulated scenarios, not to the running kernel")
        with _output(output) as out:
            _trace_kernel(source, filename, _writer(use_json, out), pid or [], command, cgroup, duration, buffer_kb)
        return
    if target is None:
        raise UsageError("give a trace file or a scenario after the program, or --live for the running kernel")
    with _output(output, target, file) as out:
        write = _writer(use_json, out)
        if is_trace_file(target):
            if sysctl:
                raise InputError("--sysctl applies to live scenarios; to change a recorded run use "
                                 "'memtrace replay TRACE --sysctl ...'")
            from memtrace.analysis.state.view import is_imported

            reader = api.open_trace(target)
            tracer = compile_program(source, filename=filename, registry=reader.registry, output=write)
            _log.info("program compiled", extra={"program": filename, "probes": tracer.nr_probes,
                                                 "maps": len(tracer.maps)})
            write(AttachOutput(tracer.nr_probes))
            run_trace(tracer, reader)
            warn([*reader.warnings, *tracer.warnings])
            if not is_imported(reader.meta):
                _simulated_note(tool, simulated)
            return
        _live(target, source, filename, write, parse_sysctls(sysctl), seed)
        _simulated_note(tool, simulated)


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
    warn(tracer.warnings)


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
