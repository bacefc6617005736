"""memtrace.whatif, called from Python: the changes a report proposes, replayed and
judged, with no command line in between.

Expected outcomes come from the scenarios: shmem-pressure's leaker (pid 101) fills
the /batch memcg and is killed; 50% more limit leaves room for its growth, and
oom_score_adj -1000 makes it unkillable, so its charge fails instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.report import ReplayOutcome, WhatIfChange, build_report
from memtrace.tracer import TraceReader
from memtrace.whatif import (
    RecordedRun,
    WhatIfPlan,
    answer_what_ifs,
    plan_what_ifs,
    recorded_run,
    replay_change,
    run_what_ifs,
    what_if_report,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def test_replay_change_really_replays() -> None:
    """shmem-pressure replayed: a 50% bigger /batch avoids the kill; protecting the
    leaker avoids the kill too, but its charge then fails with ENOMEM."""
    path = SAMPLES / "shmem-pressure.mtrace"
    run = recorded_run(TraceReader(path))
    pids = run.pids
    assert pids["leaker"] == 101
    bigger = replay_change(run, WhatIfChange("limit", "limit", sets=(("cgroup./batch.max", "+50%"),)))
    assert bigger.kills == () and bigger.error is None
    protected = replay_change(run, WhatIfChange("adj", "oom_score_adj", oom_score_adj=((101, -1000),)))
    assert protected.kills == () and protected.refusals[0][:2] == (101, "leaker")
    missing = replay_change(run, WhatIfChange("adj", "oom_score_adj", oom_score_adj=((999, 0),)))
    assert missing.error is not None and "999" in missing.error


def test_a_run_without_a_workload_is_not_replayable() -> None:
    run = RecordedRun("x.mtrace", None, {}, 0, {})
    assert replay_change(run, WhatIfChange("swap", "swap")).error == "the trace records no workload to replay"


def test_the_plan_asks_each_distinct_change_once_in_each_kills_order() -> None:
    """memcg-oom's two kills share changes (strict overcommit, the bigger limit,
    swap): the plan holds each once, and every kill still asks its own list, in
    the order the report proposes it."""
    from memtrace.analysis.report import what_if_changes

    reader = TraceReader(SAMPLES / "memcg-oom.mtrace")
    rep = build_report(reader)
    plan = plan_what_ifs(rep, reader.meta)
    assert len(plan.changes) == len({(c.sysctls, c.sets, c.oom_score_adj) for c in plan.changes}) == 6
    for i, kill in enumerate(rep.kills):
        asked = [plan.changes[j].label for k, _, j in plan.asked if k == i]
        assert asked == [c.label for c in what_if_changes(kill, reader.meta)]
    assert plan_what_ifs(rep, {}) == WhatIfPlan()  # no workload recorded: nothing to replay


def test_answers_need_one_outcome_per_change() -> None:
    reader = TraceReader(SAMPLES / "memcg-oom.mtrace")
    rep = build_report(reader)
    plan = plan_what_ifs(rep, reader.meta)
    with pytest.raises(ValueError, match="outcome"):
        answer_what_ifs(rep, plan, [ReplayOutcome()])
    answered = answer_what_ifs(rep, plan, [ReplayOutcome()] * len(plan.changes))
    assert all(w.outcome == "avoided" for k in answered.kills for w in k.what_if)


@pytest.mark.slow
def test_answers_do_not_depend_on_the_number_of_jobs() -> None:
    """Replays in this process (jobs 1) and in two forked workers (jobs 2) give the
    same frozen outcomes, in the order of the changes; the report answers every
    change it asked."""
    path = SAMPLES / "shmem-pressure.mtrace"
    reader = TraceReader(path)
    rep = build_report(reader)
    plan = plan_what_ifs(rep, reader.meta)
    one = run_what_ifs(path, plan.changes, jobs=1)
    two = run_what_ifs(reader, plan.changes, jobs=2)
    assert one == two and len(one) == len(plan.changes) >= 2
    announced: list[str] = []
    answered = what_if_report(reader, rep, jobs=2, announce=lambda cs: announced.extend(c.label for c in cs))
    assert announced == [c.label for c in plan.changes]
    expected = answer_what_ifs(rep, plan, one)
    assert [k.what_if for k in answered.kills] == [k.what_if for k in expected.kills]
    # A simulated recording: the baseline is exact without a replay, and said so.
    baselines = {k.what_if_baseline for k in answered.kills if k.what_if}
    assert [(b.reproduces, b.exact) for b in baselines if b is not None] == [(True, True)]
    assert all(w.outcome for k in answered.kills for w in k.what_if)


def _with_workload(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """oom-leak's sample with its header's workload changed by ``change`` (the events
    untouched: the report itself reads the same kill)."""
    import copy

    import msgpack

    from memtrace.tracer.tracefile.craft import write_trace
    from memtrace.tracer.tracefile.format import frame

    from ..robustness.helpers import frames_of

    frames = frames_of((SAMPLES / "oom-leak.mtrace").read_bytes())
    head = copy.deepcopy(msgpack.unpackb(frames[0][1], raw=False, strict_map_key=False))
    change(head["meta"]["workload"])
    path = tmp_path / "t.mtrace"
    write_trace(path, head, [frame(kind, body) for kind, body in frames[1:]])
    return path


def test_report_replays_a_small_workload_without_being_asked() -> None:
    import memtrace

    rep = memtrace.report(SAMPLES / "oom-leak.mtrace", jobs=1).result
    assert rep.kills[0].what_if and not any("what-if replays not run" in w for w in rep.warnings)


def test_report_does_not_replay_a_huge_workload_unless_asked(tmp_path: Path) -> None:
    """Issue 14, finding 3: a small trace whose workload is a 256 GiB machine with 16
    untouched 256 GiB mappings (5 GiB of page tables per replay): the report says
    how to ask instead of replaying it."""
    import memtrace

    def huge(w: dict[str, Any]) -> None:
        w["machine"]["ram"] = 256 << 30
        w["process"][0]["steps"][:0] = [{"op": "mmap", "handle": f"big{i}", "length": 256 << 30, "noreserve": True}
                                        for i in range(16)]

    rep = memtrace.report(_with_workload(tmp_path, huge)).result
    (note,) = [w for w in rep.warnings if w.startswith("what-if replays not run")]
    assert note.startswith("what-if replays not run: each would take about ")
    mib = int(note.split(" MiB")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert mib >= 16 * (256 << 30) // 4096 * 5 >> 20  # 5,120 MiB of page tables at least
    assert note.endswith("ask for them with --what-if")
    assert all(not k.what_if for k in rep.kills) and rep.kills


def test_report_names_a_workload_beyond_the_scenario_bounds(tmp_path: Path) -> None:
    import memtrace

    def beyond(w: dict[str, Any]) -> None:
        w["machine"]["ram"] = 1 << 40

    rep = memtrace.report(_with_workload(tmp_path, beyond)).result
    (note,) = [w for w in rep.warnings if w.startswith("what-if replays not run")]
    assert "key 'ram': 1099511627776 is outside 128MiB..256GiB" in note


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_counts_every_replay_once(jobs: int) -> None:
    """report's progress callback: (0, total) first, then one call per replay ended,
    up to (total, total), where total is the plan's changes plus the baseline; the
    answers are those of a run without a callback."""
    from memtrace.whatif import what_if_report

    reader = TraceReader(SAMPLES / "memcg-oom.mtrace")
    rep = build_report(reader)
    plan = plan_what_ifs(rep, reader.meta)
    calls: list[tuple[int, int]] = []
    with_progress = what_if_report(reader, rep, jobs=jobs, progress=lambda d, t: calls.append((d, t)))
    total = len(plan.changes) + 1  # a simulated recording: no second assumption to replay
    assert calls == [(i, total) for i in range(total + 1)]
    assert with_progress == what_if_report(TraceReader(SAMPLES / "memcg-oom.mtrace"), rep, jobs=jobs)
