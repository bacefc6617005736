"""What-if changes proposed for a kill, and the verdicts on their replays."""

from __future__ import annotations

from pathlib import Path

from memtrace.analysis.report import (
    OomKillReport,
    OomReport,
    ReplayOutcome,
    WhatIfChange,
    judge_what_if,
    what_if_changes,
    with_what_if,
)
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"


def _kills(r: OomReport) -> list[OomKillReport]:
    return [k for k in r.kills if k.constraint != "overcommit"]


def test_what_if_changes(reports: dict[str, OomReport]) -> None:
    meta = TraceReader(SAMPLES / "memcg-oom.mtrace").meta
    first = _kills(reports["memcg-oom"])[0]
    labels = [c.label for c in what_if_changes(first, meta)]
    assert labels == ["oom_score_adj of python3 (pid 4725) = 0", "oom_score_adj of python3 (pid 4847) = 1000",
                      "vm.overcommit_memory=2", "memory.max of /oracle_oom +50%", "swap 12 GiB"]
    leak = _kills(reports["oom-leak"])[0]
    changes = what_if_changes(leak, TraceReader(SAMPLES / "oom-leak.mtrace").meta)
    assert [c.kind for c in changes] == ["oom_score_adj", "overcommit", "ram", "swap"]
    assert changes[0].oom_score_adj == ((102, -1000),)


def test_judge_what_if(reports: dict[str, OomReport]) -> None:
    k = _kills(reports["memcg-oom"])[0]
    ch = WhatIfChange("x", "swap")
    assert judge_what_if(ch, k, 0, ReplayOutcome()).outcome == "avoided"
    assert judge_what_if(ch, k, 0, ReplayOutcome(kills=((4725, "python3", 1, 5),))).outcome == "same victim"
    changed = judge_what_if(ch, k, 0, ReplayOutcome(kills=((4847, "python3", 13581, 5),)))
    assert changed.outcome == "victim changed" and changed.victim is not None and changed.victim.pid == 4847
    assert judge_what_if(ch, k, 1, ReplayOutcome(kills=((4725, "python3", 1, 5),))).outcome == "avoided"
    refused = judge_what_if(ch, k, 0, ReplayOutcome(refusals=((4847, "python3", "mmap"),)))
    assert refused.outcome == "avoided" and "ENOMEM" in refused.detail
    assert judge_what_if(ch, k, 0, ReplayOutcome(panic="boom")).outcome == "kernel panic"
    assert judge_what_if(ch, k, 0, ReplayOutcome(error="no")).outcome == "not replayable"
    r = with_what_if(reports["memcg-oom"], {0: [changed]})
    assert r.kills[0].what_if == (changed,) and reports["memcg-oom"].kills[0].what_if == ()
