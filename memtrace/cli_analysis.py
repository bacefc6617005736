"""The ``memtrace explain``, ``ps`` and ``report`` commands (registered on the main app).

They render what :mod:`memtrace.analysis` returns. ``explain`` reads a trace (or a
live snapshot written by ``memtrace snapshot``); ``report`` reads a trace (or a
kernel log: dmesg, ``journalctl -k``, syslog). The what-if answers of a report come
from replays of the trace's recorded workload (:mod:`memtrace.replay`), which the
analysis layer cannot run itself: this module runs them and hands the outcomes back.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import typer

from memtrace.cli import _check_output, _emit_json, _input_file, _open_trace, app
from memtrace.errors import MemtraceError, TraceFormatError
from memtrace.logsetup import get_logger
from memtrace.units import parse_duration

#: The longest --window of a report: a year, in seconds.
WINDOW_MAX_S = 365 * 24 * 3600
_TIME = re.compile(r"^\d+(?:\.\d+)?(?:ns|us|ms|s)?$")


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


def _is_bad_magic(e: TraceFormatError) -> bool:
    return "not a memtrace trace" in str(e)


def _open_or_none(path: Path) -> Any:
    """A TraceReader, or None when the file exists but is not a trace (bad magic)."""
    try:
        return _open_trace(path)
    except TraceFormatError as e:
        if _is_bad_magic(e):
            return None
        raise


def _warn(lines: Any) -> None:
    for w in lines:
        typer.echo(f"memtrace: warning: {w}", err=True)


# --------------------------------------------------------------------------- explain


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace explain private-file-mapping.mtrace --at after-write\n\n"
        "  memtrace explain oom-leak.mtrace --at 4.9s --pid 102\n\n"
        "  memtrace explain tmpfs-file.mtrace --json | jq '.parts[] | select(.kind==\"shmem\")'\n\n"
        "  memtrace explain fork-cow.mtrace --at children-wrote --graph mem.graphml\n\n"
        "  memtrace snapshot -o now.json && memtrace explain now.json"
    )
)
def explain(
    trace: Path = typer.Argument(..., help="Trace file (or a snapshot from 'memtrace snapshot')."),
    at: str | None = typer.Option(None, "--at", metavar="LABEL|TIME",
                                     help="A snapshot label, or a time since boot (2.5s, 2500ms) meaning the last "
                                          "/proc/meminfo reading at or before it [default: the last reading]."),
    pid: int | None = typer.Option(None, "--pid", "-p", help="Only this process's pages (they sum to its RSS)."),
    graph: Path | None = typer.Option(None, "--graph", metavar="FILE",
                                         help="Also write the process/VMA/page-run graph: FILE.graphml is GraphML, "
                                              "anything else node-link JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Where is the memory and why: every free(1) column and /proc/meminfo kind broken
    down by owner, with the reason and what would free it."""
    from memtrace.analysis.explain import explain_state
    from memtrace.analysis.explain_text import render_explain_text
    from memtrace.analysis.state import fold_at

    src = _input_file(trace)
    _check_output(graph, src, flag="--graph")
    reader = _open_or_none(src)
    if reader is None:
        res = _explain_snapshot(src, pid)
        if graph is not None:
            raise MemtraceError(f"{trace}: --graph needs a trace (a snapshot has no per-page state)")
    else:
        where = parse_at(at)
        try:
            folder, reading, warnings = fold_at(reader, where)
        except KeyError as e:
            raise MemtraceError(f"{trace}: {e.args[0]}") from None
        state = folder.state()
        name = f"t={where / 1e9:.3f}s" if isinstance(where, int) else None
        try:
            res = explain_state(state, reading, pid=pid, at=name)
        except KeyError as e:
            raise MemtraceError(f"{trace}: {e.args[0]}") from None
        _warn([*warnings, *reader.warnings])
        if graph is not None:
            from memtrace.analysis.graph import graph_summary, memory_graph, write_graph

            g = memory_graph(state)
            try:
                kind = write_graph(g, graph)
            except OSError as e:
                raise MemtraceError(f"cannot write graph {graph}: {e.strerror or e}") from None
            nodes = graph_summary(g)
            typer.echo(f"graph: wrote {graph} ({kind}, {g.number_of_nodes():,} nodes, "
                       f"{g.number_of_edges():,} edges, {nodes.get('nodes.page_run', 0):,} page runs)", err=True)
    if as_json:
        d = res.as_dict()
        d["trace"] = str(trace)
        _emit_json(d)
        return
    typer.echo(render_explain_text(res, str(trace)), nl=False)


def _explain_snapshot(path: Path, pid: int | None) -> Any:
    """Explain a live /proc snapshot (memtrace.analysis.procsnap); ParseError when the
    file is neither a trace nor a snapshot."""
    from memtrace.analysis import procsnap

    try:
        return procsnap.explain_snapshot(path, pid=pid)
    except KeyError as e:
        raise MemtraceError(f"{path}: {e.args[0]}") from None


# --------------------------------------------------------------------------- ps


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
    at: str | None = typer.Option(None, "--at", metavar="LABEL|TIME",
                                     help="A snapshot label, or a time since boot (2.5s, 2500ms) meaning the last "
                                          "/proc/meminfo reading at or before it [default: the last reading]."),
    sort: str = typer.Option("points", "--sort", metavar="KEY",
                             help="points (the OOM killer's order), rss, anon, swap or pid."),
    show_all: bool = typer.Option(False, "--all", "-a", help="Every process (text shows the top 20 otherwise)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Processes with their RSS by kind, swap, page tables, oom_score_adj and
    /proc/PID/oom_score, in the order the OOM killer would pick them."""
    from memtrace.analysis import procsnap
    from memtrace.analysis.ps import SORT_KEYS, ps_snapshot, ps_trace
    from memtrace.analysis.ps_text import render_ps_text

    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"{sort!r} is not one of {', '.join(SORT_KEYS)}", param_hint="--sort")
    if target is None:
        if at is not None:
            raise MemtraceError("--at needs a trace (this machine is read now)")
        table = ps_snapshot(procsnap.take_snapshot(), "this machine", sort)
        title = "/proc (this machine)"
    else:
        src = _input_file(target)
        reader = _open_or_none(src)
        if reader is None:
            if at is not None:
                raise MemtraceError(f"{target}: --at needs a trace (a snapshot is one moment)")
            table = ps_snapshot(procsnap.load_snapshot(src), target.name, sort)
        else:
            try:
                table, warnings = ps_trace(reader, parse_at(at), sort)
            except KeyError as e:
                raise MemtraceError(f"{target}: {e.args[0]}") from None
            _warn([*warnings, *reader.warnings])
        title = str(target)
    if as_json:
        d = table.as_dict()
        d["trace"] = title
        _emit_json(d)
        return
    typer.echo(render_ps_text(table, title, None if show_all else 20), nl=False)


# --------------------------------------------------------------------------- report


@app.command(
    epilog=(
        "Examples:\n\n"
        "  memtrace report oom-leak.mtrace\n\n"
        "  memtrace report memcg-oom.mtrace --format html -o report.html\n\n"
        "  memtrace report shmem-pressure.mtrace --format md --no-what-if\n\n"
        "  memtrace report /var/log/kern.log --json | jq '.kills[].victim'\n\n"
        "  journalctl -k > k.txt && memtrace report k.txt"
    )
)
def report(
    trace: Path = typer.Argument(..., help="Trace file, or a kernel log (dmesg, journalctl -k, syslog)."),
    fmt: str = typer.Option("text", "--format", "-f", metavar="FORMAT", help="text, md, html or json."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write to FILE instead of stdout."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    what_if: bool = typer.Option(True, "--what-if/--no-what-if",
                                 help="Answer what-if questions by replaying the trace's workload with each "
                                      "change (simulated traces only)."),
    window: float = typer.Option(300.0, "--window", metavar="SECONDS",
                                 help="How far back before each kill to look for growth and reclaim."),
    jobs: int = typer.Option(os.cpu_count() or 1, "--jobs", "-j", min=1, metavar="N",
                             help="What-if replays run at once [default: the number of CPUs].",
                             show_default=False),
) -> None:
    """Why was a process OOM-killed, and what would have prevented it: the constraint,
    who grew, what reclaim could not free, every candidate's badness, the victim,
    and what-if answers from replays."""
    from memtrace.analysis.report import FORMATS, build_report, render_report

    if as_json:
        fmt = "json"
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    if not 0 < window <= WINDOW_MAX_S:
        raise typer.BadParameter(f"must be more than 0 and at most {WINDOW_MAX_S:,} s, got {window}",
                                 param_hint="--window")
    src = _input_file(trace)
    _check_output(output, src)
    reader = _open_or_none(src)
    if reader is None:
        rep = _report_from_log(src)
    else:
        rep = build_report(reader, window_ns=int(window * 1e9))
        _warn(reader.warnings)
        if what_if and reader.meta.get("workload") is not None and rep.kills:
            rep = run_what_if(src, reader, rep, jobs)
    text = render_report(rep, fmt, title=str(trace))
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as e:
        raise MemtraceError(f"cannot write report {output}: {e.strerror or e}") from None
    kills = sum(1 for k in rep.kills if k.constraint != "overcommit")
    typer.echo(f"report: wrote {output} ({fmt}, {kills} OOM kill(s))", err=True)


def _report_from_log(path: Path) -> Any:
    """The report of a kernel log (memtrace.analysis.kernlog)."""
    try:
        from memtrace.analysis.kernlog import report_from_log
    except ModuleNotFoundError as e:
        if e.name != "memtrace.analysis.kernlog":
            raise
        raise TraceFormatError(f"{path}: not a memtrace trace (bad magic), and kernel logs are not supported by "
                               "this memtrace") from None
    except ImportError as e:
        raise MemtraceError(f"{path}: not a trace, and the kernel-log parser does not load: {e}") from None
    return report_from_log(path)


# --------------------------------------------------------------------------- what if


def run_what_if(trace: Path, reader: Any, rep: Any, jobs: int = 1) -> Any:
    """``rep`` with what-if answers: each candidate change replayed once (the recorded
    workload and seed, on a fresh simulated kernel) and judged for every kill."""
    from memtrace.analysis.report import judge_what_if, what_if_changes, with_what_if

    pids = _recorded_pids(reader)
    asked: list[tuple[int, int, Any]] = []  # (report kill, kill index, change)
    distinct: dict[tuple[Any, ...], Any] = {}
    kill_index = 0
    for i, kill in enumerate(rep.kills):
        if kill.constraint == "overcommit" or kill.victim.pid is None:
            continue
        for change in what_if_changes(kill, reader.meta):
            distinct.setdefault(_change_key(change), change)
            asked.append((i, kill_index, change))
        kill_index += 1
    changes = list(distinct.values())
    outcomes = dict(zip(distinct, _replay_all(trace, reader, changes, pids, jobs), strict=True))
    answers: dict[int, list[Any]] = {}
    for i, k, change in asked:
        answers.setdefault(i, []).append(judge_what_if(change, rep.kills[i], k, outcomes[_change_key(change)]))
    return with_what_if(rep, answers)


def _change_key(change: Any) -> tuple[Any, ...]:
    return (change.sysctls, change.sets, change.oom_score_adj)


#: The replays of one report, for the forked workers of :func:`_replay_all`.
_JOBS: list[tuple[Path, Any, Any, Mapping[str, int]]] = []


def _replay_job(i: int) -> Any:
    return replay_change(*_JOBS[i])


def _replay_all(trace: Path, reader: Any, changes: list[Any], pids: Mapping[str, int], jobs: int) -> list[Any]:
    """Each change's ReplayOutcome, in order. The replays are independent (each on a
    fresh kernel with the recorded seed), so up to ``jobs`` run at once in forked
    workers; the answers do not depend on how many."""
    log = get_logger()
    for change in changes:
        log.info("what-if replay", trace=str(trace), change=change.label)
    if sys.stderr.isatty() and changes:
        typer.echo(f"memtrace: replaying {len(changes)} what-if change(s) "
                   f"({', '.join(c.label for c in changes)}) ...", err=True)
    workers = min(jobs, len(changes))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [replay_change(trace, reader, c, pids) for c in changes]
    _JOBS[:] = [(trace, reader, c, pids) for c in changes]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_replay_job, range(len(changes))))
    except BrokenProcessPool:
        log.warning("what-if workers failed; replaying one at a time")
        return [replay_change(trace, reader, c, pids) for c in changes]
    finally:
        _JOBS.clear()


def _recorded_pids(reader: Any) -> dict[str, int]:
    """name -> pid of the recorded run (the footer's), for oom_score_adj changes."""
    footer = reader.footer
    if footer is None:
        reader.scan()
        footer = reader.footer
    extra = (footer or {}).get("extra", {}) if isinstance(footer, Mapping) else {}
    pids = extra.get("pids", {}) if isinstance(extra, Mapping) else {}
    return {str(k): int(v) for k, v in pids.items()} if isinstance(pids, Mapping) else {}


def replay_change(trace: Path, reader: Any, change: Any, pids: Mapping[str, int]) -> Any:
    """Replay the recorded workload of ``reader`` with ``change`` (through the public
    record API, on a fresh kernel with the recorded seed); a ReplayOutcome."""
    from memtrace.analysis.report import ReplayOutcome
    from memtrace.api import record
    from memtrace.replay import Overrides, apply_overrides, merge_sysctls

    workload = reader.meta.get("workload")
    if not isinstance(workload, Mapping):
        return ReplayOutcome(error="the trace records no workload to replay")
    try:
        data = copy.deepcopy(dict(workload))
        for pid, adj in change.oom_score_adj:
            entry = _process_entry(data, pid, pids)
            if entry is None:
                return ReplayOutcome(error=f"pid {pid} is not a process of the recorded workload")
            entry["oom_score_adj"] = adj
        overrides = Overrides(sysctls=tuple(change.sysctls), sets=tuple(change.sets))
        scenario = apply_overrides(data, overrides, f"{trace} (what-if: {change.label})")
        recorded = reader.meta.get("sysctl_overrides", {})
        sysctls = merge_sysctls(recorded if isinstance(recorded, Mapping) else {}, overrides)
        seed = reader.meta.get("seed", 0)
        with tempfile.TemporaryDirectory(prefix="memtrace-what-if-") as tmp:
            result = record(scenario, Path(tmp) / "what-if.mtrace", sysctls=sysctls,
                            seed=seed if isinstance(seed, int) else 0)
    except MemtraceError as e:
        return ReplayOutcome(error=str(e))
    except OSError as e:
        return ReplayOutcome(error=f"cannot write the replay: {e.strerror or e}")
    kills = tuple((int(k["pid"]), str(k["comm"]), k.get("points"), int(k.get("ts_ns", 0)))
                  for k in result.oom_kills)
    refusals = tuple((int(e.get("pid", 0)), str(e.get("comm", "")), str(e.get("op", "")))
                     for e in result.errors if e.get("errno") == "ENOMEM")
    return ReplayOutcome(kills=kills, refusals=refusals, panic=result.panic)


def _process_entry(workload: dict[str, Any], pid: int, pids: Mapping[str, int]) -> dict[str, Any] | None:
    procs = workload.get("process") or []
    for entry in procs:
        if isinstance(entry, dict) and entry.get("pid") == pid:
            return entry
    names = [name for name, p in pids.items() if p == pid]
    for entry in procs:
        if isinstance(entry, dict) and entry.get("name") in names:
            return entry
    return None


__all__ = ["explain", "parse_at", "replay_change", "report", "run_what_if"]
