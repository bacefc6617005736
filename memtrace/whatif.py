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

Before any answer, the unchanged workload is replayed and scored against the
recording (:func:`score_unchanged`, :mod:`memtrace.replay.baseline`): when it does
not reproduce the recording's kills, the what-ifs are kept but marked ``not an
answer``, with the reason (:func:`~memtrace.analysis.report.with_baseline`). A
simulated recording needs no such replay: an unchanged replay repeats it byte for
byte.

What a killed process would have done after its kill is, for an imported trace,
an assumption (:mod:`memtrace.replay.assume`; ``assume_after_kill``): every replay
makes it, the baseline says which, and each what-if is replayed once more under
the opposite assumption (``stop`` against ``grow``/``continue``) so that its
verdict says whether, and which way, the answer would flip.

Simplified: a replay is closed-loop, as ``memtrace replay`` is (a task's next step
waits for its previous one).
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from memtrace import __version__
from memtrace.analysis.report import (
    ReplayOutcome,
    WhatIfBaseline,
    WhatIfChange,
    judge_what_if,
    kill_scope,
    what_if_changes,
    with_baseline,
    with_what_if,
)
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
from memtrace.replay import (
    Overrides,
    apply_overrides,
    describe_assumption,
    merge_sysctls,
    parse_assumption,
    replay_trace,
    score_baseline,
    summarize_trace,
)
from memtrace.replay.assume import clock_origin_ns, victims
from memtrace.tracer.tracefile import TraceReader

__all__ = [
    "RecordedRun",
    "WhatIfPlan",
    "answer_what_ifs",
    "plan_what_ifs",
    "recorded_run",
    "replay_change",
    "run_what_ifs",
    "score_unchanged",
    "what_if_cost",
    "what_if_report",
]

#: Told the changes about to be replayed, before the first replay starts.
Announce = Callable[[Sequence[WhatIfChange]], None]
#: Told ``(done, total)`` replays as each ends.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RecordedRun:
    """What a replay needs of a recording, read once from its header and footer.

    ``workload`` is the header's workload map (None when the trace records none),
    ``sysctls`` the sysctl overrides the recording ran with, ``seed`` its RNG seed,
    ``pids`` name -> pid of its processes (the footer's), to find the process an
    oom_score_adj change names by pid. ``derived`` is the header's ``derived`` map
    of an imported trace (what its OOM victims were seen doing up to their kill) and
    ``assume_after_kill`` what every replay assumes they would have done after it
    (None: the default, see :mod:`memtrace.replay.assume`); ``imported`` says the
    recording came from a real kernel (``memtrace import``). Plain data: it crosses
    to worker processes.
    """

    source: str
    workload: Mapping[str, Any] | None
    sysctls: Mapping[str, Any]
    seed: int
    pids: Mapping[str, int]
    derived: Mapping[str, Any] | None = None
    assume_after_kill: str | None = None
    imported: bool = False


@dataclass(frozen=True)
class WhatIfPlan:
    """The what-if questions of one report.

    ``changes`` holds each distinct change once, in the order first asked;
    ``asked`` holds (index into ``report.kills``, index of that kill among the
    recording's kills, index into ``changes``) in each kill's own order.
    """

    changes: tuple[WhatIfChange, ...] = ()
    asked: tuple[tuple[int, int, int], ...] = ()


def recorded_run(reader: TraceReader, assume_after_kill: str | None = None) -> RecordedRun:
    """The :class:`RecordedRun` of an open trace. Reads the whole file once when its
    footer (the pids) has not been read yet."""
    meta = reader.meta
    workload = meta.get("workload")
    sysctls = meta.get("sysctl_overrides", {})
    seed = meta.get("seed", 0)
    derived = meta.get("derived")
    return RecordedRun(
        source=reader.path,
        workload=workload if isinstance(workload, Mapping) else None,
        sysctls=sysctls if isinstance(sysctls, Mapping) else {},
        seed=seed if isinstance(seed, int) else 0,
        pids=_recorded_pids(reader),
        derived=derived if isinstance(derived, Mapping) else None,
        assume_after_kill=assume_after_kill,
        imported="source" in meta,
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
    # The k-th kill of its scope (the same memcg, or global): a replay's kills are
    # matched in that scope (analysis.report.judge_what_if).
    seen: dict[str | None, int] = {}
    for i, kill in enumerate(report.kills):
        if kill.constraint == "overcommit" or kill.victim.pid is None:
            continue
        scope = kill_scope(kill)
        kill_index = seen.get(scope, 0)
        for change in what_if_changes(kill, meta):
            key = _change_key(change)
            if key not in index:
                index[key] = len(changes)
                changes.append(change)
            asked.append((i, kill_index, index[key]))
        seen[scope] = kill_index + 1
    return WhatIfPlan(tuple(changes), tuple(asked))


def answer_what_ifs(report: OomReport, plan: WhatIfPlan, outcomes: Sequence[ReplayOutcome], *,
                    alternative: tuple[str, Sequence[ReplayOutcome]] | None = None) -> OomReport:
    """``report`` with each kill's what-if answers: ``outcomes[j]`` is what the
    replay of ``plan.changes[j]`` did. ``alternative`` is (the other after-kill
    assumption, what each replay did under it): each verdict then says whether it
    would flip."""
    if len(outcomes) != len(plan.changes):
        raise ValueError(f"{len(outcomes)} outcome(s) for {len(plan.changes)} change(s)")
    answers: dict[int, list[WhatIf]] = {}
    for i, k, j in plan.asked:
        w = judge_what_if(plan.changes[j], report.kills[i], k, outcomes[j])
        if alternative is not None and w.outcome not in ("not replayable",):
            other, alt_outcomes = alternative
            a = judge_what_if(plan.changes[j], report.kills[i], k, alt_outcomes[j])
            if a.outcome == w.outcome:
                w = replace(w, detail=f"{w.detail} (the same with --assume-after-kill {other})")
            else:
                w = replace(w, detail=f"{w.detail}; it depends on the after-kill assumption: with "
                                      f"--assume-after-kill {other}, {a.outcome.upper()} ({a.detail})")
        answers.setdefault(i, []).append(w)
    return with_what_if(report, answers)


def run_what_ifs(trace: str | os.PathLike[str] | TraceReader, changes: Sequence[WhatIfChange], *,
                 jobs: int = 1, assume_after_kill: str | None = None) -> tuple[ReplayOutcome, ...]:
    """Each change's :class:`~memtrace.analysis.report.ReplayOutcome`, in order.

    ``trace`` is a trace file or an open reader of one (a reader that has been read
    through already knows its footer: no second read). Up to ``jobs`` replays run
    at once in forked worker processes; with ``jobs`` 1, or where the platform
    cannot fork, they run one after the other in this process. A replay that
    cannot run is an outcome with ``error`` set, never an exception.
    ``assume_after_kill`` is what every replay assumes the recording's OOM victims
    would have done after their kill (an imported trace; None: the default).
    """
    if not changes:
        return ()
    reader = trace if isinstance(trace, TraceReader) else TraceReader(trace)
    run = recorded_run(reader, assume_after_kill)
    _, outcomes = _replay_all([(run, c) for c in changes], None, jobs)
    return outcomes


def _replay_all(work: Sequence[tuple[RecordedRun, WhatIfChange]], baseline: RecordedRun | None,
                jobs: int, progress: Progress | None = None,
                ) -> tuple[WhatIfBaseline | None, tuple[ReplayOutcome, ...]]:
    """The baseline of ``baseline`` (:func:`score_unchanged`, if given) and each
    (run, change)'s outcome, up to ``jobs`` at once (forked workers); ``progress``
    is told ``(done, total)`` as each ends."""
    log = get_logger()
    for run, change in work:
        log.info("what-if replay", trace=run.source, change=change.label, assume_after_kill=run.assume_after_kill)
    workers = min(jobs, len(work) + (baseline is not None))
    total = len(work) + (baseline is not None)
    if progress is not None:
        progress(0, total)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return _replay_here(work, baseline, progress)
    others = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
    # The workers' temporary traces go under a directory of ours: a worker ended by
    # SIGTERM (the default action: see as_worker) runs no cleanup, so we remove it.
    scratch = tempfile.mkdtemp(prefix="memtrace-what-if-")
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_worker_start, initargs=(os.getpid(), scratch))
        return _replay_in(pool, work, baseline, total, others, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _worker_start(parent_pid: int, scratch: str) -> None:
    """A what-if worker's first call: :func:`~memtrace.interrupts.as_worker`, and
    its temporary files under the parent's ``scratch`` directory."""
    as_worker(parent_pid)
    tempfile.tempdir = scratch


def _replay_in(pool: ProcessPoolExecutor, work: Sequence[tuple[RecordedRun, WhatIfChange]],
               baseline: RecordedRun | None, total: int, others: list[int], progress: Progress | None,
               ) -> tuple[WhatIfBaseline | None, tuple[ReplayOutcome, ...]]:
    """:func:`_replay_all` on ``pool``; on any exception its workers (not those of
    ``others``) are ended before it returns."""
    log = get_logger()
    try:
        scored = pool.submit(score_unchanged, baseline) if baseline is not None else None
        futures = [pool.submit(replay_change, r, c) for r, c in work]
        pending: list[Future[Any]] = [*futures, *([scored] if scored is not None else [])]
        for done, _ in enumerate(as_completed(pending), 1):
            if progress is not None:
                progress(done, total)
        outcomes = tuple(f.result() for f in futures)
        score = scored.result() if scored is not None else None
        pool.shutdown()
        return score, outcomes
    except BaseException as e:
        # Interrupted (or a worker died): the workers end with us, now, rather than
        # finish their replays (a what-if can run for minutes).
        pool.shutdown(wait=False, cancel_futures=True)
        end_children(spare=others)
        if not isinstance(e, BrokenProcessPool):
            raise
        log.warning("what-if workers failed; replaying one at a time")
        return _replay_here(work, baseline, progress)


def _replay_here(work: Sequence[tuple[RecordedRun, WhatIfChange]], baseline: RecordedRun | None,
                 progress: Progress | None = None) -> tuple[WhatIfBaseline | None, tuple[ReplayOutcome, ...]]:
    """:func:`_replay_all` one replay after the other, in this process."""
    total = len(work) + (baseline is not None)
    score = score_unchanged(baseline) if baseline is not None else None
    if progress is not None and baseline is not None:
        progress(1, total)
    outcomes = []
    for r, c in work:
        outcomes.append(replay_change(r, c))
        if progress is not None:
            progress(len(outcomes) + (baseline is not None), total)
    return score, tuple(outcomes)


#: The baseline of a simulated recording: replays are exact (tests/replay/test_replay.py).
_EXACT = WhatIfBaseline(True, "baseline: a simulated recording, which an unchanged replay repeats byte for byte",
                        exact=True)


def score_unchanged(run: RecordedRun) -> WhatIfBaseline:
    """The unchanged replay of ``run`` scored against the recording
    (:func:`memtrace.replay.score_baseline`), under the run's after-kill assumption;
    a simulated recording is exact without a replay. A replay that cannot run is a
    baseline that does not reproduce, saying why."""
    if not run.imported:
        return _EXACT
    overrides = Overrides(assume_after_kill=run.assume_after_kill)
    assumed = tuple(describe_assumption(run.derived, overrides.assumption))
    try:
        with tempfile.TemporaryDirectory(prefix="memtrace-baseline-") as tmp:
            out = replay_trace(run.source, Path(tmp) / "baseline.mtrace", overrides,
                               memtrace_version=__version__)
            score = score_baseline(summarize_trace(run.source), summarize_trace(out.trace))
    except MemtraceError as e:
        return WhatIfBaseline(False, f"baseline: the unchanged workload cannot be replayed ({e})", (str(e),), assumed)
    except OSError as e:
        reason = f"cannot write the replay: {e.strerror or e}"
        return WhatIfBaseline(False, f"baseline: {reason}", (reason,), assumed)
    return WhatIfBaseline(score.reproduces, score.summary(), score.reasons, assumed)


def _other_assumption(run: RecordedRun) -> str | None:
    """The assumption a verdict is checked against: ``stop`` for ``grow`` or
    ``continue``, ``grow`` for ``stop``; None when the recording has no OOM victim
    whose future is assumed (a simulated trace, an import without kills)."""
    if not run.imported or not victims(run.derived):
        return None
    chosen = parse_assumption(run.assume_after_kill) if run.assume_after_kill else None
    return "grow" if chosen is not None and chosen.kind == "stop" else "stop"


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
                   announce: Announce | None = None, assume_after_kill: str | None = None,
                   progress: Progress | None = None, force: bool = True) -> OomReport:
    """``report`` (built from ``trace``) with its what-if answers: the unchanged
    replay's baseline, then each change replayed and judged, in one call.
    ``announce`` is told the changes before the replays start, ``progress``
    ``(done, total)`` as each replay ends;
    ``assume_after_kill`` is passed to every replay (see :func:`run_what_ifs`); for
    an imported trace with kills, each change is replayed once more under the other
    assumption, and its verdict says whether it would flip.

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
    run = recorded_run(reader, assume_after_kill)
    other = _other_assumption(run)
    work = [(run, c) for c in plan.changes]
    if other is not None:
        alt = replace(run, assume_after_kill=other)
        work += [(alt, c) for c in plan.changes]
    baseline, outcomes = _replay_all(work, run, jobs, progress)
    n = len(plan.changes)
    answered = answer_what_ifs(report, plan, outcomes[:n],
                               alternative=(other, outcomes[n:]) if other is not None else None)
    return with_baseline(answered, baseline if baseline is not None else _EXACT)


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
        overrides = Overrides(sysctls=tuple(change.sysctls), sets=tuple(change.sets),
                              assume_after_kill=run.assume_after_kill)
        scenario = apply_overrides(data, overrides, f"{run.source} (what-if: {change.label})", derived=run.derived)
        sysctls = merge_sysctls(run.sysctls, overrides)
        with tempfile.TemporaryDirectory(prefix="memtrace-what-if-") as tmp:
            result = record_run(scenario, Path(tmp) / "what-if.mtrace", sysctl_overrides=sysctls, seed=run.seed,
                                memtrace_version=__version__).result
    except MemtraceError as e:
        return ReplayOutcome(error=str(e))
    except OSError as e:
        return ReplayOutcome(error=f"cannot write the replay: {e.strerror or e}")
    origin = clock_origin_ns(run.derived)  # the replay's times on the recording's clock
    kills = tuple((int(k["pid"]), str(k["comm"]), k.get("points"), origin + int(k.get("ts_ns", 0)))
                  for k in result.oom_kills)
    memcgs = tuple(str(k.get("memcg", "")) for k in result.oom_kills)
    errors = [e.as_dict() for e in result.errors]
    refusals = tuple((int(e.get("pid", 0)), str(e.get("comm", "")), str(e.get("op", "")))
                     for e in errors if e.get("errno") == "ENOMEM")
    return ReplayOutcome(kills=kills, kill_memcgs=memcgs, refusals=refusals, panic=result.panic)


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
