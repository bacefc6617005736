"""memtrace's public Python API: a twin of every command, returning data.

Each function returns the frozen data the command renders, and prints nothing::

    command            function                          returns
    record             record                            RecordResult
    record --live      record_live                       LiveRecordResult
    stat               stat_trace                        TraceStat
    free               free                              Warned[tuple[FreeSnapshot, ...]]
    explain            explain                           Explained (an ExplainResult)
    explain --by process explain_by_process              Warned[ProcessUsageTable]
    ps                 ps                                Warned[ProcTable]
    report             report                            Warned[OomReport]
    dmesg              dmesg                             Warned[tuple[OomReportText, ...]]
    replay             memtrace.replay.replay_trace      ReplayResult
    diff               memtrace.replay.diff_traces       TraceDiff
    import             import_trace                      ImportResult
    report's what-ifs  memtrace.whatif.run_what_ifs      tuple[ReplayOutcome, ...]
    sweep              sweep                             SweepResult
    sweep --plot       plot_sweep                        None (writes the figure)
    export             export                            ExportResult
    trace -t, tools    load_tool                         Tool
    trace --live       trace_live                        LiveTraceResult
    (any trace)        open_trace                        TraceReader

:class:`Warned` pairs a result with the warnings met reading its input (damage,
odd values): the lines a command prints on stderr, kept apart from the result as
the command keeps them apart from its output. Errors are the classes of
:mod:`memtrace.errors`. The functions are thin: the work is done by
:mod:`memtrace.analysis`, :mod:`memtrace.replay` and :mod:`memtrace.whatif`, which
are imported when a function first needs them (``import memtrace.api`` stays
cheap, and so does the command line's start).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat as stat_mod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from memtrace import __version__
from memtrace.errors import InputError, NotATraceError, NotFoundError, OutputError, TraceFormatError, UsageError
from memtrace.logsetup import phase
from memtrace.units import format_seconds

if TYPE_CHECKING:
    from memtrace.analysis.explain import ExplainResult, ProcessUsageTable
    from memtrace.analysis.export import ExportResult
    from memtrace.analysis.importers import ImportResult
    from memtrace.analysis.importers.live import LiveRecordResult, LiveTarget, LiveTraceResult
    from memtrace.analysis.kernlog import OomReportText
    from memtrace.analysis.ps import ProcTable
    from memtrace.analysis.report.model import OomReport, SweepTable
    from memtrace.kernel.workload import Scenario
    from memtrace.linux.proc import FreeColumns
    from memtrace.replay.sweep import SweepResult
    from memtrace.tracer.bus import Consumer
    from memtrace.tracer.probes import Tracer
    from memtrace.tracer.tools import Tool
    from memtrace.tracer.tracefile import TraceReader, TraceStats
    from memtrace.whatif import Announce

#: Each phase's log (see memtrace.logsetup: -v shows them).
_log = logging.getLogger("memtrace.api")

__all__ = [
    "Explained",
    "FreeSnapshot",
    "GraphFile",
    "RecordResult",
    "TraceStat",
    "Warned",
    "dmesg",
    "explain",
    "explain_by_process",
    "export",
    "free",
    "free_row",
    "import_trace",
    "live_target",
    "load_tool",
    "open_trace",
    "plot_sweep",
    "ps",
    "read_snapshots",
    "record",
    "record_live",
    "report",
    "stat_trace",
    "sweep",
    "trace_live",
]

T = TypeVar("T")
PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class Warned(Generic[T]):
    """A result, and the warnings met reading its input (a damaged trace, values no
    kernel writes): what a command prints on stderr beside its output."""

    result: T
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- record


@dataclass(frozen=True)
class RecordResult:
    """What ``record`` produced: the shape of ``memtrace record --json``."""

    scenario: str
    trace: str
    sysctl: dict[str, int]
    events: dict[str, int]
    snapshots: list[dict[str, Any]]
    oom_kills: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    trace_bytes: int
    duration_ns: int
    pids: dict[str, int] = field(default_factory=dict)
    panic: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "trace": self.trace,
            "sysctl": self.sysctl,
            "events": self.events,
            "snapshots": self.snapshots,
            "oom_kills": self.oom_kills,
            "errors": self.errors,
            "trace_bytes": self.trace_bytes,
            "duration_ns": self.duration_ns,
            "pids": self.pids,
            "panic": self.panic,
        }


def record(
    scenario: Scenario | str,
    output: PathArg,
    *,
    sysctls: Mapping[str, int | str] | None = None,
    seed: int = 0,
    consumers: Iterable[Consumer] = (),
) -> RecordResult:
    """Simulate ``scenario`` (an object, a built-in name or a TOML path) and record
    every event to ``output``. ``sysctls`` override the scenario's; extra
    ``consumers`` (probes) see the events live."""
    from memtrace.kernel.recorder import record_run
    from memtrace.kernel.workload import resolve_scenario

    if isinstance(scenario, str):
        scenario = resolve_scenario(scenario)
    with phase(_log, "simulate and record", scenario=scenario.name, trace=os.fspath(output)) as ph:
        rec = record_run(scenario, output, sysctl_overrides=sysctls or {}, seed=seed, memtrace_version=__version__,
                         consumers=consumers)
        ph.update(events=rec.events, oom_kills=len(rec.result.oom_kills), simulated_ns=rec.result.end_ns)
    result = rec.result
    return RecordResult(
        scenario=scenario.name,
        trace=str(output),
        sysctl=result.sysctls,
        events=rec.events,
        snapshots=[s.as_dict() for s in result.snapshots],
        oom_kills=result.oom_kills,
        errors=[e.as_dict() for e in result.errors],
        trace_bytes=Path(output).stat().st_size,
        duration_ns=result.end_ns,
        pids=result.pids,
        panic=result.panic,
    )


def live_target(*, pids: Sequence[int] = (), command: str | None = None, cgroup: str | None = None,
                all_tasks: bool = False) -> LiveTarget:
    """The target of a live capture: exactly one of ``pids``, ``command`` (run by
    ``/bin/sh -c``), ``cgroup`` or ``all_tasks``; UsageError otherwise."""
    from memtrace.analysis.importers.live import LiveTarget

    given = [bool(pids), command is not None, cgroup is not None, all_tasks]
    if sum(given) != 1:
        raise UsageError("a live capture needs one target: -a, -p PID..., -c 'CMD ARGS' or --cgroup PATH")
    if pids:
        return LiveTarget.processes(*pids)
    if command is not None:
        return LiveTarget.run(command)
    if cgroup is not None:
        return LiveTarget.of_cgroup(cgroup)
    return LiveTarget.everything()


def record_live(
    output: PathArg,
    *,
    pids: Sequence[int] = (),
    command: str | None = None,
    cgroup: str | None = None,
    all_tasks: bool = False,
    duration_s: float | None = None,
    buffer_kb: int = 4096,
    status: Callable[[str], None] | None = None,
) -> LiveRecordResult:
    """Record the running kernel's memory tracepoints for one target (see
    :func:`live_target`) into the trace ``output`` (``memtrace record --live``), until
    ``duration_s``, SIGINT/SIGTERM, or the command's or processes' exit. ``status``
    gets one-line progress messages. CaptureError says what is missing when tracefs
    cannot be used. See :mod:`memtrace.analysis.importers.live`."""
    from memtrace.analysis.importers.live import CaptureOptions
    from memtrace.analysis.importers.live import record_live as do_record

    target = live_target(pids=pids, command=command, cgroup=cgroup, all_tasks=all_tasks)
    return do_record(target, output, options=CaptureOptions(duration_s=duration_s, buffer_kb=buffer_kb),
                     status=status, memtrace_version=__version__)


def trace_live(
    tracer: Tracer,
    *,
    pids: Sequence[int] = (),
    command: str | None = None,
    cgroup: str | None = None,
    duration_s: float | None = None,
    buffer_kb: int = 4096,
    status: Callable[[str], None] | None = None,
) -> LiveTraceResult:
    """Run ``tracer`` (a compiled program) on the running kernel's events
    (``memtrace trace --live``): of ``pids``, a ``command``, a ``cgroup``, or every
    task when none is given; until ``duration_s``, SIGINT/SIGTERM, the target's exit
    or the program's ``exit()``. The tracer has printed its output when this returns."""
    from memtrace.analysis.importers.live import CaptureOptions
    from memtrace.analysis.importers.live import trace_live as do_trace

    target = live_target(pids=pids, command=command, cgroup=cgroup,
                         all_tasks=not (pids or command is not None or cgroup is not None))
    return do_trace(target, tracer, options=CaptureOptions(duration_s=duration_s, buffer_kb=buffer_kb,
                                                           snapshots=False), status=status)


# --------------------------------------------------------------------------- opening a trace


def open_trace(path: PathArg) -> TraceReader:
    """A reader of the trace file ``path`` (its header read, nothing more).

    Raises :class:`~memtrace.errors.NotATraceError` when the file is not a memtrace
    trace at all (so a caller that also reads snapshots or kernel logs tries those)
    and :class:`~memtrace.errors.TraceFormatError` naming the file when it cannot be
    read as one: missing, a directory, no permission, a damaged header, or a pipe or
    device (a trace is read by offset: copy it to a file first).
    """
    from memtrace.tracer.tracefile import TraceReader

    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except OSError:
        mode = stat_mod.S_IFREG  # the reader names what is wrong
    if not (stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode)):
        raise TraceFormatError(f"cannot read trace {name}: not a regular file (a pipe or device); "
                               "copy it to a file first")
    try:
        reader = TraceReader(name)
    except OSError as e:
        raise TraceFormatError(f"cannot read trace {name}: {e.strerror or e}") from None
    _log.info("trace header read", extra={"trace": name, "tracepoints": len(reader.registry),
                                          "scenario": reader.meta.get("scenario"),
                                          "imported": bool(reader.meta.get("source")),
                                          "header_warnings": len(reader.warnings)})
    return reader


def _trace_or_none(path: PathArg) -> TraceReader | None:
    """A reader of ``path``, or None when the file is not a trace (a snapshot, a
    kernel log): see :func:`open_trace`."""
    try:
        return open_trace(path)
    except NotATraceError:
        _log.info("not a trace: read as a snapshot or a kernel log", extra={"input": os.fspath(path)})
        return None


def _fold(reader: TraceReader, at: str | int | None) -> tuple[Any, Any, list[str]]:
    """:func:`memtrace.analysis.state.fold_at`, logged as a phase."""
    from memtrace.analysis.state import fold_at

    with phase(_log, "fold the trace into memory state", trace=reader.path, at=at) as ph:
        folder, reading, warnings = fold_at(reader, at)
        ph.update(reading=None if reading is None else (reading.label or reading.ts_ns),
                  held_back_warnings=len(warnings))
    return folder, reading, warnings


# --------------------------------------------------------------------------- stat


@dataclass(frozen=True)
class TraceStat:
    """One full read of a trace: its events per tracepoint, size and damage, and
    whether it is complete (the reader's :attr:`TraceStats.complete`: no damage, a
    footer whose count matches the events read, and not an aborted recording's).
    The shape of ``memtrace stat --json`` (:meth:`as_dict`)."""

    trace: str
    scenario: str | None
    stats: TraceStats
    warnings: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.stats.complete

    def as_dict(self) -> dict[str, Any]:
        st = self.stats
        d = st.damage
        return {
            "trace": self.trace,
            "scenario": self.scenario,
            "events": st.counts,
            "total_events": st.total_events,
            "duration_ns": st.duration_ns,
            "bytes": st.size_bytes,
            "chunks": st.chunks,
            "complete": self.complete,
            "damage": None if d is None else {"offset": d.offset, "reason": d.reason,
                                               "chunks_skipped": d.chunks_skipped,
                                               "events_recovered": d.events_recovered},
            "warnings": list(self.warnings),
        }


def stat_trace(trace: PathArg) -> TraceStat:
    """Read ``trace`` once and count its events per tracepoint (``memtrace stat``)."""
    reader = open_trace(trace)
    stats = reader.scan()
    scenario = reader.meta.get("scenario")
    return TraceStat(os.fspath(trace), None if scenario is None else str(scenario), stats, tuple(reader.warnings))


# --------------------------------------------------------------------------- free


@dataclass(frozen=True)
class FreeSnapshot:
    """One ``snapshot`` event of a trace: its label, time (ns since boot), free(1)'s
    Mem: row and the /proc/meminfo values it read (bytes)."""

    label: str
    ts_ns: int
    free: FreeColumns
    meminfo: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "ts_ns": self.ts_ns, "free": self.free.as_dict(), "meminfo": dict(self.meminfo)}


def free_row(meminfo: Mapping[str, int]) -> dict[str, int]:
    """free(1)'s Mem: row (procps-ng >= 4.0.1) from /proc/meminfo values in bytes."""
    from memtrace.linux.proc import free_columns

    return free_columns(meminfo).as_dict()


def read_snapshots(reader: TraceReader) -> list[dict[str, Any]]:
    """Every snapshot event of a trace, in order, as ``{label, ts_ns, free, meminfo}``.

    Raises TraceFormatError naming the field when the trace's ``snapshot`` schema
    lacks ``label`` or holds a field of another kind (a numeric label, a string
    /proc/meminfo value); /proc/meminfo fields it lacks are left out of ``meminfo``.
    """
    from memtrace.tracer.tracepoints import MEMINFO_FIELDS, check_fields

    out: list[dict[str, Any]] = []
    checked = False
    for batch in reader.batches():
        if batch.tp.name != "snapshot":
            continue
        if not checked:
            check_fields(batch.tp, "memtrace free", ("label",), tuple(name for _m, name in MEMINFO_FIELDS))
            checked = True
        for rec in batch.records():
            f = rec.fields
            mi = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}
            out.append({"label": f["label"], "ts_ns": int(f["ts_ns"]), "seq": int(f["seq"]),
                        "free": free_row(mi), "meminfo": mi})
    out.sort(key=lambda s: s["seq"])
    for s in out:
        del s["seq"]
    return out


def free(trace: PathArg, *, at: str | None = None) -> Warned[tuple[FreeSnapshot, ...]]:
    """free(1) at each snapshot of ``trace``, or only at the one labelled ``at``
    (NotFoundError listing the labels there are otherwise)."""
    from memtrace.linux.proc import free_columns

    reader = open_trace(trace)
    snaps = tuple(FreeSnapshot(str(s["label"]), s["ts_ns"], free_columns(s["meminfo"]), s["meminfo"])
                  for s in read_snapshots(reader))
    if at is not None:
        chosen = tuple(s for s in snaps if s.label == at)
        if not chosen:
            labels = ", ".join(s.label if s.label.isprintable() else repr(s.label) for s in snaps) or "none"
            raise NotFoundError(f"{os.fspath(trace)}: no snapshot labelled {at!r} (labels: {labels}; for a moment "
                                "in time use 'memtrace explain --at TIME')")
        snaps = chosen
    return Warned(snaps, tuple(reader.warnings))


# --------------------------------------------------------------------------- explain


@dataclass(frozen=True)
class GraphFile:
    """A memory graph written beside an explanation (:mod:`memtrace.analysis.graph`):
    where, in which format, and its size."""

    path: str
    kind: str
    nodes: int
    edges: int
    page_runs: int


@dataclass(frozen=True)
class Explained(Warned["ExplainResult"]):
    """An explanation, its warnings, and the graph written with it (if asked)."""

    result: ExplainResult
    graph: GraphFile | None = None


def _moment(ts_ns: int) -> str:
    """A moment named as the analysis names a reading: ``t=4.500s``."""
    return "t=" + format_seconds(ts_ns).replace(" ", "")


def explain(target: PathArg, *, at: str | int | None = None, pid: int | None = None,
            graph: PathArg | None = None) -> Explained:
    """Where the memory is and why (``memtrace explain``): every free(1) column and
    /proc/meminfo kind broken down by owner, with the reason and what would free it.

    ``target`` is a trace or a snapshot file (``memtrace snapshot``). ``at`` is a
    snapshot label (str) or a time in ns since boot (int: the last /proc/meminfo
    reading at or before it); default: the last reading. ``pid`` narrows the view
    to that process's pages. ``graph`` also writes the process/VMA/page-run graph
    there (``.graphml``: GraphML, else node-link JSON); a snapshot has none.
    """
    reader = _trace_or_none(target)
    if reader is None:
        from memtrace.analysis.procsnap import explain_snapshot

        res = explain_snapshot(target, pid=pid)
        if graph is not None:
            raise InputError(f"{os.fspath(target)}: --graph needs a trace (a snapshot has no per-page state)")
        return Explained(res)
    from memtrace.analysis.explain import explain_state

    folder, reading, warnings = _fold(reader, at)
    state = folder.state()
    try:
        with phase(_log, "explain", pid=pid) as ph:
            res = explain_state(state, reading, pid=pid, at=_moment(at) if isinstance(at, int) else None)
            ph.update(parts=len(res.parts), processes=len(state.procs))
    except NotFoundError as e:  # a pid the trace does not hold: say which trace
        raise NotFoundError(f"{os.fspath(target)}: {e}") from None
    written = None
    if graph is not None:
        from memtrace.analysis.graph import graph_summary, memory_graph, write_graph

        g = memory_graph(state)
        try:
            kind = write_graph(g, graph)
        except OSError as e:
            raise OutputError(f"cannot write graph {os.fspath(graph)}: {e.strerror or e}") from None
        written = GraphFile(os.fspath(graph), kind, g.number_of_nodes(), g.number_of_edges(),
                            graph_summary(g).get("nodes.page_run", 0))
    return Explained(res, (*warnings, *reader.warnings), written)


def explain_by_process(target: PathArg, *, at: str | int | None = None) -> Warned[ProcessUsageTable]:
    """Memory by process as smem shows it (``memtrace explain --by process``): swap,
    USS, PSS and RSS of each process, smaller PSS first, from a trace's page tables
    at ``at`` (as :func:`explain`) or a snapshot's smaps_rollup."""
    from memtrace.analysis.explain import usage_from_snapshot, usage_from_state

    reader = _trace_or_none(target)
    if reader is None:
        from memtrace.analysis.procsnap import load_snapshot

        if at is not None:
            raise InputError(f"{os.fspath(target)}: --at needs a trace (a snapshot is one moment)")
        return Warned(usage_from_snapshot(load_snapshot(target), os.fspath(target)))
    folder, reading, warnings = _fold(reader, at)
    state = folder.state()
    label = reading.label if reading is not None and reading.label else None
    ts_ns = reading.ts_ns if reading is not None else state.ts_ns
    moment = label or (f"t={format_seconds(ts_ns)}" if ts_ns is not None else "end of trace")
    return Warned(usage_from_state(state, moment, ts_ns), (*warnings, *reader.warnings))


# --------------------------------------------------------------------------- ps


def ps(target: PathArg | None = None, *, at: str | int | None = None, sort: str = "points") -> Warned[ProcTable]:
    """Processes with their RSS by kind, swap, page tables, oom_score_adj and
    /proc/PID/oom_score, in ``sort`` order (``memtrace ps``).

    ``target`` is a trace, a snapshot file, or None for this machine now (/proc);
    ``at`` as for :func:`explain` (a trace only). ``sort``: ``points`` (the OOM
    killer's order), ``rss``, ``anon``, ``swap`` or ``pid``.
    """
    from memtrace.analysis import procsnap
    from memtrace.analysis.ps import SORT_KEYS, ps_snapshot, ps_trace

    if sort not in SORT_KEYS:
        raise UsageError(f"--sort: {sort!r} is not one of {', '.join(SORT_KEYS)}")
    if target is None:
        if at is not None:
            raise InputError("--at needs a trace (this machine is read now)")
        return Warned(ps_snapshot(procsnap.take_snapshot(), "this machine", sort))
    reader = _trace_or_none(target)
    if reader is None:
        if at is not None:
            raise InputError(f"{os.fspath(target)}: --at needs a trace (a snapshot is one moment)")
        return Warned(ps_snapshot(procsnap.load_snapshot(target), Path(target).name, sort))
    table, warnings = ps_trace(reader, at, sort)
    return Warned(table, (*warnings, *reader.warnings))


# --------------------------------------------------------------------------- report, dmesg


def report(target: PathArg, *, window_ns: int | None = None, what_if: bool | None = None, jobs: int = 1,
           announce: Announce | None = None, sweeps: Sequence[PathArg] = (),
           assume_after_kill: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> Warned[OomReport]:
    """Why each process was OOM-killed, and what would have prevented it
    (``memtrace report``).

    ``target`` is a trace or a kernel log (dmesg, ``journalctl -k``, syslog; plain
    or gzip). ``window_ns``: how far back before each kill to look for growth and
    reclaim (default: :data:`memtrace.analysis.report.DEFAULT_WINDOW_NS`). With
    ``what_if`` the changes the report proposes are replayed (:mod:`memtrace.whatif`;
    a trace that records a workload only), up to ``jobs`` at once; ``announce`` is
    told the changes before the replays start and ``progress`` ``(done, total)``
    as each replay ends. With ``what_if`` None (the default) they are replayed only
    when the estimate of one replay is small (:func:`memtrace.whatif.what_if_cost`),
    else a report warning says how to ask. ``sweeps`` are results files of
    ``memtrace sweep -o R.json`` (:func:`sweep`) embedded as chapters of their own.
    ``assume_after_kill`` (``stop``, ``continue``, ``grow``, ``grow=SIZE``; default
    ``grow``) is what the what-if replays assume an imported trace's OOM victims
    would have done after their kill (:mod:`memtrace.replay.assume`).
    """
    embedded = _read_sweeps(sweeps)
    reader = _trace_or_none(target)
    if reader is None:
        from memtrace.analysis.kernlog import report_from_log

        with phase(_log, "read the kernel log", log=os.fspath(target)) as ph:
            log_report = report_from_log(target)
            ph.update(oom_reports=len(log_report.kills), warnings=len(log_report.warnings))
        return Warned(dataclasses.replace(log_report, sweeps=embedded))
    from memtrace.analysis.report import build_report

    with phase(_log, "build the OOM report", trace=reader.path) as ph:
        rep = build_report(reader) if window_ns is None else build_report(reader, window_ns=window_ns)
        ph.update(kills=len(rep.kills), warnings=len(rep.warnings))
    warnings = tuple(reader.warnings)
    if what_if is not False and rep.kills:
        from memtrace.whatif import what_if_report

        with phase(_log, "what-if replays", jobs=jobs):
            rep = what_if_report(reader, rep, jobs=jobs, announce=announce,
                                 assume_after_kill=assume_after_kill, progress=progress, force=what_if is True)
    elif what_if is False:
        _log.info("what-if replays skipped: --no-what-if")
    else:
        _log.info("what-if replays skipped: no OOM kill to avoid")
    return Warned(dataclasses.replace(rep, sweeps=embedded), warnings)


def _read_sweeps(paths: Sequence[PathArg]) -> tuple[SweepTable, ...]:
    if not paths:
        return ()
    from memtrace.analysis.report.sweep import read_sweep

    return tuple(read_sweep(p) for p in paths)


def dmesg(trace: PathArg) -> Warned[tuple[OomReportText, ...]]:
    """Each OOM kill of ``trace`` as the kernel logs it, in the layout of the
    trace's kernel version (``memtrace dmesg``)."""
    from memtrace.analysis.kernlog import render_dmesg

    reader = open_trace(trace)
    reports = render_dmesg(reader)
    return Warned(tuple(reports), tuple(reader.warnings))


# --------------------------------------------------------------------------- import, tools


def import_trace(source: PathArg, output: PathArg, *, format: str = "auto", dmesg: PathArg | None = None,
                 kernel_version: str | None = None, progress: Callable[[int], None] | None = None,
                 snapshot: PathArg | None = None, names: Mapping[str, str] | None = None) -> ImportResult:
    """Import what a real kernel wrote (``perf script`` or ftrace text, plain or
    gzip) as the memtrace trace ``output`` (``memtrace import``); ``dmesg`` is the
    kernel log of the same run, ``snapshot`` a ``memtrace snapshot`` taken when the
    trace started (the memory of the processes that predate it). ``progress``, if
    given, is called with the bytes read so far; ``names`` the names the trace records
    for inputs read from a copy (a pipe). See
    :func:`memtrace.analysis.importers.import_trace`."""
    from memtrace.analysis.importers import import_trace as do_import

    with phase(_log, "import", source=os.fspath(source), trace=os.fspath(output), format=format) as ph:
        result = do_import(source, output, format=format, dmesg=dmesg, kernel_version=kernel_version,
                           memtrace_version=__version__, progress=progress, snapshot=snapshot, names=names)
        ph.update(lines=result.lines, events=sum(result.events.values()), unknown_lines=result.unknown_lines,
                  detected_format=result.format, processes=result.processes, oom_kills=len(result.oom_kills))
    for name, count in sorted(result.unknown_events.items()):
        _log.info("skipped: no memtrace counterpart", extra={"tracepoint": name, "events": count})
    for system, counts in sorted(result.summarised.items()):
        _log.debug("counted only (summarised in the header)", extra={"system": system, **counts})
    return result


def load_tool(name: str) -> Tool:
    """The shipped tool ``name`` (``memtrace tools NAME``); NotFoundError naming the
    tools there are."""
    from memtrace.tracer.tools import load_tool as load

    return load(name)


# --------------------------------------------------------------------------- sweep, export


def sweep(target: PathArg, vary: Sequence[str], *, seeds: int = 1, find: tuple[str, str] | None = None,
          scheduler: str | None = None, workers: int | None = None, serial: bool = False,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """``memtrace sweep``: replay ``target`` (a trace, or a scenario file or name) over
    the grid of ``vary`` (``KEY=SPEC`` each), ``seeds`` seeds per cell, on Dask (a
    LocalCluster of ``workers``, or the cluster at ``scheduler``) or, with
    ``serial``, one after another here. ``find`` = ``("min"|"max", KEY)`` bisects
    KEY (which must be varied) for the boundary instead, for every cell of the other
    keys. A trace target's unchanged replay is scored against the recording
    (:attr:`SweepResult.baseline`)."""
    from memtrace.replay.sweep import (
        DaskRunner,
        Runner,
        SerialRunner,
        SweepResult,
        SweepTarget,
        boundaries,
        parse_axis,
        run_sweep,
        with_baseline,
    )

    axes = [parse_axis(v) for v in vary]
    if not axes:
        raise UsageError("a sweep needs at least one --vary KEY=SPEC")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise UsageError(f"--vary names a key twice: {', '.join(sorted(k for k in keys if keys.count(k) > 1))}")
    if find is not None and find[1] not in keys:
        raise UsageError(f"--find-{find[0]} {find[1]}: vary it too (--vary {find[1]}=SPEC gives the range to bisect)")
    swept = SweepTarget.load(os.fspath(target), __version__)
    runner: Runner = SerialRunner() if serial else DaskRunner(scheduler=scheduler, workers=workers)
    try:
        if find is None:
            result = run_sweep(swept, axes, runner, seeds=seeds, progress=progress)
        else:
            axis = next(a for a in axes if a.key == find[1])
            others = [a for a in axes if a.key != find[1]]
            found = tuple(boundaries(swept, axis, others, runner, toward="high" if find[0] == "min" else "low",
                                     seeds=seeds, progress=progress))
            result = SweepResult(swept.name, tuple(axes), seeds, tuple(r for b in found for r in b.evaluated), found)
        return with_baseline(result, swept)
    finally:
        if isinstance(runner, DaskRunner):
            runner.close()


def plot_sweep(result: SweepResult, path: PathArg, figure: str = "kills") -> None:
    """Draw ``figure`` (a column of :data:`memtrace.replay.sweep.FIGURES`) over the sweep
    into ``path`` (``memtrace sweep --plot``): a line for one varied key, a heatmap for
    two, the mean over seeds per cell; the same figure the HTML report embeds
    (``report --sweep``). ValueError for another number of keys or an unknown figure."""
    from memtrace.analysis.report.plots import sweep_figure
    from memtrace.analysis.report.sweep import sweep_from_dict
    from memtrace.replay.sweep import FIGURES
    from memtrace.safewrite import safe_output

    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}: choose one of {', '.join(FIGURES)}")
    fig = sweep_figure(sweep_from_dict(result.as_dict()), figure, FIGURES[figure])
    with safe_output(path) as f:
        fig.savefig(f, format=Path(path).suffix[1:] or None)


def export(trace: PathArg, fmt: str, output: PathArg, *,
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """``memtrace export``: ``trace`` as Perfetto, Chrome JSON (a file) or Parquet,
    CSV (a directory of one table per tracepoint)."""
    from memtrace.analysis.export import EXPORT_FORMATS, export_trace

    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(EXPORT_FORMATS)}")
    open_trace(trace)  # one line for what is not a readable trace
    return export_trace(trace, fmt, output, progress=progress)
