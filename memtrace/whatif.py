"""What-if answers of an OOM report, from replays of the recorded workload.

An OOM report (:mod:`memtrace.analysis.report`) proposes, for each kill, the
changes worth trying (:func:`~memtrace.analysis.report.what_if_changes`: the
victim's and the top grower's oom_score_adj, strict overcommit, a bigger cgroup
limit or more RAM, more swap) and judges what a replay with one of them did
(:func:`~memtrace.analysis.report.judge_what_if`). Analysis cannot replay: it
imports only the tracer. This module does, in three steps a caller may also take
one by one::

    plan = plan_what_ifs(report, reader.meta)          # each distinct change once
    outcomes = run_what_ifs(reader, plan.changes, jobs=2)  # one replay per change
    report = answer_what_ifs(report, plan, outcomes)   # judged for every kill asking it

or in one: :func:`what_if_report`. A replay runs the recorded workload with the
change on a fresh simulated kernel, with the recorded sysctls and seed, into a
temporary trace (:func:`memtrace.kernel.recorder.record_run`, as ``memtrace
record`` does). The replays are independent, so up to ``jobs`` run at once in
worker processes (forked, where the platform can fork); every input of a replay
travels with it (:class:`RecordedRun`, a
:class:`~memtrace.analysis.report.WhatIfChange`), so the answers do not depend on
how many run at once, and nothing here keeps state between calls.

Simplified: a replay is closed-loop, as ``memtrace replay`` is (a task's next step
waits for its previous one); what a killed process would have done after its kill
is what the recorded workload says it does.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from memtrace import __version__
from memtrace.analysis.report import ReplayOutcome, WhatIfChange, judge_what_if, what_if_changes, with_what_if
from memtrace.analysis.report.model import OomReport, WhatIf
from memtrace.errors import MemtraceError, ScenarioError
from memtrace.interrupts import as_worker, end_children
from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload.cost import (
    SECONDS_PER_PAGE,
    SMALL_RUN_HOST_BYTES,
    SMALL_RUN_SECONDS,
    RunCost,
    estimate_cost,
)
from memtrace.logsetup import get_logger
from memtrace.replay import Overrides, apply_overrides, merge_sysctls
from memtrace.tracer.tracefile import TraceReader

__all__ = [
    "RecordedRun",
    "WhatIfPlan",
    "answer_what_ifs",
    "plan_what_ifs",
    "recorded_run",
    "replay_change",
    "run_what_ifs",
    "what_if_cost",
    "what_if_report",
]

#: Told the changes about to be replayed, before the first replay starts.
Announce = Callable[[Sequence[WhatIfChange]], None]


@dataclass(frozen=True)
class RecordedRun:
    """What a replay needs of a recording, read once from its header and footer.

    ``workload`` is the header's workload map (None when the trace records none),
    ``sysctls`` the sysctl overrides the recording ran with, ``seed`` its RNG seed,
    ``pids`` name -> pid of its processes (the footer's), to find the process an
    oom_score_adj change names by pid. Plain data: it crosses to worker processes.
    """

    source: str
    workload: Mapping[str, Any] | None
    sysctls: Mapping[str, Any]
    seed: int
    pids: Mapping[str, int]


@dataclass(frozen=True)
class WhatIfPlan:
    """The what-if questions of one report.

    ``changes`` holds each distinct change once, in the order first asked;
    ``asked`` holds (index into ``report.kills``, index of that kill among the
    recording's kills, index into ``changes``) in each kill's own order.
    """

    changes: tuple[WhatIfChange, ...] = ()
    asked: tuple[tuple[int, int, int], ...] = ()


def recorded_run(reader: TraceReader) -> RecordedRun:
    """The :class:`RecordedRun` of an open trace. Reads the whole file once when its
    footer (the pids) has not been read yet."""
    meta = reader.meta
    workload = meta.get("workload")
    sysctls = meta.get("sysctl_overrides", {})
    seed = meta.get("seed", 0)
    return RecordedRun(
        source=reader.path,
        workload=workload if isinstance(workload, Mapping) else None,
        sysctls=sysctls if isinstance(sysctls, Mapping) else {},
        seed=seed if isinstance(seed, int) else 0,
        pids=_recorded_pids(reader),
    )


def _recorded_pids(reader: TraceReader) -> dict[str, int]:
    """name -> pid of the recorded run (the footer's), for oom_score_adj changes."""
    footer = reader.footer
    if footer is None:
        reader.scan()
        footer = reader.footer
    extra = (footer or {}).get("extra", {})
    pids = extra.get("pids", {}) if isinstance(extra, Mapping) else {}
    return {str(k): int(v) for k, v in pids.items()} if isinstance(pids, Mapping) else {}


def _change_key(change: WhatIfChange) -> tuple[Any, ...]:
    return (change.sysctls, change.sets, change.oom_score_adj)


def plan_what_ifs(report: OomReport, meta: Mapping[str, Any]) -> WhatIfPlan:
    """The changes worth replaying for every OOM kill of ``report`` (not for an
    overcommit refusal, nor a kill without a victim pid), each distinct change
    once. Empty when the trace (``meta``: its header's) records no workload."""
    if not isinstance(meta.get("workload"), Mapping):
        return WhatIfPlan()
    index: dict[tuple[Any, ...], int] = {}
    changes: list[WhatIfChange] = []
    asked: list[tuple[int, int, int]] = []
    kill_index = 0
    for i, kill in enumerate(report.kills):
        if kill.constraint == "overcommit" or kill.victim.pid is None:
            continue
        for change in what_if_changes(kill, meta):
            key = _change_key(change)
            if key not in index:
                index[key] = len(changes)
                changes.append(change)
            asked.append((i, kill_index, index[key]))
        kill_index += 1
    return WhatIfPlan(tuple(changes), tuple(asked))


def answer_what_ifs(report: OomReport, plan: WhatIfPlan, outcomes: Sequence[ReplayOutcome]) -> OomReport:
    """``report`` with each kill's what-if answers: ``outcomes[j]`` is what the
    replay of ``plan.changes[j]`` did."""
    if len(outcomes) != len(plan.changes):
        raise ValueError(f"{len(outcomes)} outcome(s) for {len(plan.changes)} change(s)")
    answers: dict[int, list[WhatIf]] = {}
    for i, k, j in plan.asked:
        answers.setdefault(i, []).append(judge_what_if(plan.changes[j], report.kills[i], k, outcomes[j]))
    return with_what_if(report, answers)


def run_what_ifs(trace: str | os.PathLike[str] | TraceReader, changes: Sequence[WhatIfChange], *,
                 jobs: int = 1) -> tuple[ReplayOutcome, ...]:
    """Each change's :class:`~memtrace.analysis.report.ReplayOutcome`, in order.

    ``trace`` is a trace file or an open reader of one (a reader that has been read
    through already knows its footer: no second read). Up to ``jobs`` replays run
    at once in forked worker processes; with ``jobs`` 1, or where the platform
    cannot fork, they run one after the other in this process. A replay that
    cannot run is an outcome with ``error`` set, never an exception.
    """
    if not changes:
        return ()
    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    run = recorded_run(reader)
    log = get_logger()
    for change in changes:
        log.info("what-if replay", trace=run.source, change=change.label)
    workers = min(jobs, len(changes))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return tuple(replay_change(run, c) for c in changes)
    others = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=as_worker, initargs=(os.getpid(),))
    try:
        outcomes = tuple(pool.map(replay_change, [run] * len(changes), changes))
        pool.shutdown()
        return outcomes
    except BaseException as e:
        # Interrupted (or a worker died): the workers end with us, now, rather than
        # finish their replays (a what-if can run for minutes).
        pool.shutdown(wait=False, cancel_futures=True)
        end_children(spare=others)
        if not isinstance(e, BrokenProcessPool):
            raise
        log.warning("what-if workers failed; replaying one at a time")
        return tuple(replay_change(run, c) for c in changes)


def what_if_cost(reader: TraceReader, overrides: Overrides | None = None) -> RunCost:
    """The estimated cost of one replay of ``reader``'s recorded workload (with
    ``overrides``): the workload checked against the bounds of a scenario file
    first (a ScenarioError or LimitError names what is beyond them), then
    estimated by :func:`memtrace.kernel.workload.cost.estimate_cost`, taking at
    least as long as the recording's own events (2 us each)."""
    workload = reader.meta.get("workload")
    if not isinstance(workload, Mapping):
        raise ScenarioError(f"{reader.path}: the trace records no workload to replay")
    scenario = apply_overrides(workload, overrides or Overrides(), f"{reader.path} (recorded workload)")
    footer = reader.footer or {}
    events = footer.get("total_events", 0)
    return estimate_cost(scenario).at_least(SECONDS_PER_PAGE * (events if isinstance(events, int) else 0))


def what_if_report(trace: str | os.PathLike[str] | TraceReader, report: OomReport, *, jobs: int = 1,
                   announce: Announce | None = None, force: bool = True) -> OomReport:
    """``report`` (built from ``trace``) with its what-if answers: plan, replay and
    judge in one call. ``announce`` is told the changes before the replays start.

    Without ``force`` the replays run only when :func:`what_if_cost` finds them
    small (:data:`~memtrace.kernel.workload.cost.SMALL_RUN_SECONDS` and
    :data:`~memtrace.kernel.workload.cost.SMALL_RUN_HOST_BYTES` each): a trace is
    often someone else's file, and its workload could name a 256 GiB machine.
    Otherwise the report gets one warning saying why and how to ask for them."""
    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    plan = plan_what_ifs(report, reader.meta)
    if not plan.changes:
        return report
    if not force:
        try:
            cost = what_if_cost(reader)
        except MemtraceError as e:
            return replace(report, warnings=(*report.warnings, f"what-if replays not run: {e}"))
        if not cost.small:
            note = (f"what-if replays not run: each would take {cost.describe()} (more than "
                    f"{SMALL_RUN_SECONDS:.0f} s or {SMALL_RUN_HOST_BYTES >> 20} MiB); ask for them with --what-if")
            return replace(report, warnings=(*report.warnings, note))
    if announce is not None:
        announce(plan.changes)
    return answer_what_ifs(report, plan, run_what_ifs(reader, plan.changes, jobs=jobs))


def replay_change(run: RecordedRun, change: WhatIfChange) -> ReplayOutcome:
    """Replay the recorded workload of ``run`` with ``change`` on a fresh kernel
    (the recorded sysctls, then the change's; the recorded seed), recorded to a
    temporary trace that is removed afterwards."""
    if run.workload is None:
        return ReplayOutcome(error="the trace records no workload to replay")
    try:
        data = copy.deepcopy(dict(run.workload))
        for pid, adj in change.oom_score_adj:
            entry = _process_entry(data, pid, run.pids)
            if entry is None:
                return ReplayOutcome(error=f"pid {pid} is not a process of the recorded workload")
            entry["oom_score_adj"] = adj
        overrides = Overrides(sysctls=tuple(change.sysctls), sets=tuple(change.sets))
        scenario = apply_overrides(data, overrides, f"{run.source} (what-if: {change.label})")
        sysctls = merge_sysctls(run.sysctls, overrides)
        with tempfile.TemporaryDirectory(prefix="memtrace-what-if-") as tmp:
            result = record_run(scenario, Path(tmp) / "what-if.mtrace", sysctl_overrides=sysctls, seed=run.seed,
                                memtrace_version=__version__).result
    except MemtraceError as e:
        return ReplayOutcome(error=str(e))
    except OSError as e:
        return ReplayOutcome(error=f"cannot write the replay: {e.strerror or e}")
    kills = tuple((int(k["pid"]), str(k["comm"]), k.get("points"), int(k.get("ts_ns", 0)))
                  for k in result.oom_kills)
    errors = [e.as_dict() for e in result.errors]
    refusals = tuple((int(e.get("pid", 0)), str(e.get("comm", "")), str(e.get("op", "")))
                     for e in errors if e.get("errno") == "ENOMEM")
    return ReplayOutcome(kills=kills, refusals=refusals, panic=result.panic)


def _process_entry(workload: dict[str, Any], pid: int, pids: Mapping[str, int]) -> dict[str, Any] | None:
    """The workload's process entry of ``pid``: by its declared pid, else by the name
    the recording ran it under."""
    procs = workload.get("process") or []
    for entry in procs:
        if isinstance(entry, dict) and entry.get("pid") == pid:
            return entry
    names = [name for name, p in pids.items() if p == pid]
    for entry in procs:
        if isinstance(entry, dict) and entry.get("name") in names:
            return entry
    return None
