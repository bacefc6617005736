"""``memtrace import`` and ``memtrace snapshot``: what a real kernel wrote, and this
machine now.

``import`` turns ``perf script`` text or an ftrace buffer (plain or gzipped;
optionally with the kernel log of the same run) into a memtrace trace that
``stat``, ``trace``, ``explain``, ``report`` and ``replay`` read. ``snapshot``
reads this machine's /proc and memory cgroups into a file that ``explain`` and
``ps`` break down. Both print a short summary under 80 columns, or one JSON object
with ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memtrace import api
from memtrace.errors import InputError, OutputError
from memtrace.render import event_table, free_table, wrap
from memtrace.units import format_seconds, format_size, format_size_short

from ._app import app
from ._io import byte_progress, check_output, emit_json, input_file, warn

__all__ = ["import_", "snapshot"]


def _default_output(source: Path) -> Path:
    """``run.perf-script.txt.gz`` -> ``run.mtrace`` beside it."""
    name = source.name
    for suffix in (".gz", ".txt", ".perf-script", ".perf", ".trace", ".ftrace", ".script", ".log"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return source.with_name(f"{name}.mtrace")


@app.command(
    "import",
    epilog=(
        "Examples:\n\n"
        "  perf record -e 'kmem:rss_stat,exceptions:page_fault_user,oom:*' -a -- ./app\n\n"
        "  perf script | gzip > app.perf.gz && memtrace import app.perf.gz\n\n"
        "  memtrace import app.perf.gz --dmesg kern.log -o app.mtrace && memtrace report app.mtrace\n\n"
        "  memtrace import app.perf.gz --snapshot start.json.gz  (memtrace snapshot, taken as perf started)\n\n"
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
    snapshot: Path | None = typer.Option(None, "--snapshot", metavar="JSON",
                                         help="A 'memtrace snapshot' taken when the trace started: the memory of "
                                              "the processes that predate it, the memory cgroups and their "
                                              "limits."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Import a real kernel's trace (perf script or ftrace text) as a memtrace trace."""
    from memtrace.analysis.importers import FORMATS
    from memtrace.analysis.kernlog import looks_like_kernel_log
    from memtrace.linux.version import parse_kernel_version

    if fmt != "auto" and fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}, auto", param_hint="--format")
    if kernel_version is not None:
        try:
            parse_kernel_version(kernel_version)
        except ValueError:
            raise typer.BadParameter(f"{kernel_version!r} is not a kernel version such as 6.8 or 5.15.0-91",
                                     param_hint="--kernel-version") from None
    if not source.exists():
        raise InputError(f"cannot read {source}: no such file")
    if source.is_dir():
        raise InputError(f"cannot read {source}: it is a directory")
    given = source
    source = input_file(source)
    if output is None and source != given:
        raise InputError(f"{given} is a pipe: name the trace to write with -o")
    out = output or _default_output(source)
    check_output(out, source)
    check_output(out, dmesg)
    names = {"input": str(given)} if source != given else {}
    if dmesg is not None:
        given_dmesg, dmesg = dmesg, input_file(dmesg)
        if dmesg != given_dmesg:
            names["dmesg"] = str(given_dmesg)
    if dmesg is not None and not looks_like_kernel_log(dmesg):
        warn([f"{dmesg}: does not read as a kernel log (no OOM report, no dmesg, syslog or journal lines); "
              "nothing is taken from it"])
    if dmesg is not None and not dmesg.is_file():
        raise InputError(f"cannot read kernel log {dmesg}: " + ("no such file" if not dmesg.exists() else
                                                                "not a regular file"))
    if snapshot is not None:
        check_output(out, snapshot)
        given_snapshot, snapshot = snapshot, input_file(snapshot)
        if snapshot != given_snapshot:
            names["snapshot"] = str(given_snapshot)
        if not snapshot.is_file():
            raise InputError(f"cannot read snapshot {snapshot}: " + ("no such file" if not snapshot.exists() else
                                                                      "not a regular file"))
    if out.parent.exists() and not out.parent.is_dir():
        raise OutputError(f"cannot write trace {out}: {out.parent} is not a directory")
    if out.exists() and not out.is_file():
        # The trace is assembled beside OUT and renamed onto it: a device or a
        # directory there would be replaced, not written to.
        raise OutputError(f"cannot write trace {out}: not a regular file")
    try:
        size = source.stat().st_size
    except OSError:
        size = 0
    try:
        with byte_progress(f"importing {given.name}", size) as progress:
            result = api.import_trace(source, out, format=fmt, dmesg=dmesg, kernel_version=kernel_version,
                                      progress=progress, snapshot=snapshot, names=names)
    except OSError as e:
        raise OutputError(f"cannot write trace {out}: {e.strerror or e}") from None
    warn(result.warnings)
    if result.lines and not sum(result.events.values()):
        warn([f"{given}: none of its {result.lines:,} lines is a {result.format} event line; is it in another "
              "format? (--format auto detects it)"])
    if as_json:
        emit_json(result.as_dict())
        return
    total = sum(result.events.values())
    typer.echo(wrap(f"{given.name}: {result.format}, {result.lines:,} lines -> {total:,} events "
                    f"({format_seconds(result.duration_ns)} traced)"))
    typer.echo(wrap(f"trace: {result.trace} ({format_size(result.trace_bytes)})"))
    if result.companion_log:
        typer.echo(wrap(f"kernel log: {result.companion_log}"))
    typer.echo(event_table(result.events))
    if result.unknown_lines:
        top = sorted(result.unknown_events.items(), key=lambda kv: -kv[1])[:5]
        named = ", ".join(f"{k} ({v:,})" for k, v in top)
        typer.echo(wrap(f"not imported: {result.unknown_lines:,} lines" + (f"; events: {named}" if named else "")))
    if result.summarised:
        typer.echo(wrap("summarised (no memtrace tracepoint): " + ", ".join(
            f"{k} ({v.get('events', 0):,})" for k, v in result.summarised.items())))
    for kill in result.oom_kills:
        typer.echo(wrap(f"OOM kill {kill['oom_id']}: {kill.get('comm') or '?'} (pid {kill['victim_pid']}) "
                        f"at {format_seconds(kill['ts_ns'], 6)}, triggered by pid {kill['trigger_pid']}"
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
        raise OutputError(f"cannot write snapshot {out}: {e.strerror or e}") from None
    s = summary(snap, top=top)
    if as_json:
        emit_json({"snapshot": str(out), "bytes": nbytes, **s})
        return
    typer.echo(_snapshot_summary(s, out, nbytes))


def _snapshot_summary(s: dict[str, Any], out: Path, nbytes: int) -> str:
    """The text of ``memtrace snapshot``: what was read, free(1), the largest
    processes and memory cgroups (sizes as ``free -h`` prints them)."""
    taken = s.get("taken", {})
    lines = [wrap(f"snapshot: {out} ({format_size(nbytes)}), {s['processes']} processes, "
                  f"kernel {taken.get('kernel_release', '?')}")]
    if s["free"]:
        uptime_ns = int((taken.get("uptime_s") or 0) * 1_000_000_000)
        lines.append(free_table([{"label": "now", "ts_ns": uptime_ns, "free": s["free"]}], deltas=False))
    if s["top_processes"]:
        lines.append(f"{'PID':>7} {'COMM':<16} {'RSS':>9} {'PSS':>9} {'SWAP':>8} {'ADJ':>5}")
        for p in s["top_processes"]:
            adj = p["oom_score_adj"] if p["oom_score_adj"] is not None else "-"
            lines.append(f"{p['pid']:>7} {str(p['comm'])[:16]:<16} {format_size_short(p['rss_bytes']):>9} "
                         f"{format_size_short(p['pss_bytes']):>9} {format_size_short(p['swap_bytes']):>8} {adj:>5}")
    if s["cgroups"]:
        lines.append(f"{'CGROUP':<44} {'V':>2} {'USAGE':>10} {'LIMIT':>10}")
        for c in s["cgroups"]:
            path = c["path"] if len(c["path"]) <= 44 else "..." + c["path"][-41:]
            limit = format_size_short(c["limit_bytes"], unknown="max")
            lines.append(f"{path:<44} {c['version']:>2} {format_size_short(c['usage_bytes']):>10} {limit:>10}")
    if s["errors"]:
        lines.append(f"{s['errors']} process(es) could not be read (they exited, or permission)")
    lines.append(wrap(f"next: memtrace explain {out}"))
    return "\n".join(lines)
