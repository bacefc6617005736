"""What-ifs on real imported traces: the baseline first, the after-kill assumption
stated with the way the answer would flip, answers kept to the kill's cgroup.

Recordings: tests/data/real/experiments (Linux 6.18, cgroup v1; see
tests/replay/test_real_limits.py for the real kernel's outcomes at every limit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace import api
from memtrace.analysis.importers import import_trace
from memtrace.analysis.report import OomKillReport, ReplayOutcome, TaskRef, WhatIfChange, judge_what_if, render_report

EXPERIMENTS = Path(__file__).resolve().parents[1] / "data" / "real" / "experiments"


def imported(tmp_path: Path, folder: str, name: str) -> Path:
    sub = EXPERIMENTS / folder
    out = tmp_path / f"{name}.mtrace"
    import_trace(sub / f"{name}.perf-script.txt.gz", out, dmesg=sub / f"{name}.dmesg.txt.gz",
                 snapshot=sub / f"{name}.snapshot.json.gz")
    return out


@pytest.mark.slow
def test_the_leak_report_rests_on_its_baseline_and_states_the_assumption(tmp_path: Path) -> None:
    """leak-L128: the unchanged replay kills the leaker as the real kernel did, and
    the report says so before any what-if; it says what the leaker was assumed to
    do after its kill; "memory.max +50%" (192 MiB) keeps the kill, as the real
    kernel did at 192 MiB, and says that with --assume-after-kill stop the answer
    would be AVOIDED: it depends on the assumption."""
    rep = api.report(imported(tmp_path, "leak", "leak-L128"), jobs=2).result
    (kill,) = rep.kills
    b = kill.what_if_baseline
    assert b is not None and b.reproduces and not b.exact
    assert b.summary.startswith("baseline reproduces the recording: kills 1/1 in order")
    (assumed,) = b.assumptions
    assert assumed.startswith("leaker (pid 25239), killed at 1.286 s while growing")
    limit = next(w for w in kill.what_if if w.change == "memory.max of /memtrace_real_a +50%")
    assert limit.outcome == "same victim"
    assert "it depends on the after-kill assumption: with --assume-after-kill stop, AVOIDED" in limit.detail
    text = render_report(rep, "text")
    section = text[text.index("What if (replays of the workload)"):]
    assert section.index("baseline reproduces") < section.index("memory.max of /memtrace_real_a +50%")
    assert "assumed after the kill: leaker (pid 25239)" in section


@pytest.mark.slow
def test_a_report_whose_baseline_does_not_reproduce_declines_to_answer(tmp_path: Path) -> None:
    """madvise-dontneed-L64, assuming each victim stopped at its kill: the bystander
    was killed first on the real kernel while it was not allocating, and nothing
    then makes the unchanged replay kill it (only the freer dies). The what-ifs are
    not presented as answers: each says the baseline does not reproduce the
    recording, naming the bystander and what the replay gave it."""
    rep = api.report(imported(tmp_path, "madvise", "madvise-dontneed-L64"), jobs=2, assume_after_kill="stop").result
    assert [k.victim.comm for k in rep.kills] == ["bystander", "freer"]
    for kill in rep.kills:
        b = kill.what_if_baseline
        assert b is not None and not b.reproduces
        assert any(r.startswith("bystander (pid 30434) was killed at") and "in the recording but not in the replay"
                   in r for r in b.reasons)
        assert kill.what_if and {w.outcome for w in kill.what_if} == {"not an answer"}
        assert all(w.detail.startswith("the unchanged replay does not reproduce the recording (bystander (pid 30434)")
                   for w in kill.what_if)
    text = render_report(rep, "text")
    assert "baseline does NOT reproduce the recording" in text
    assert "so the replays below are not answers: bystander (pid 30434)" in " ".join(text.split())
    verdicts = [line for line in text.splitlines() if line.strip().startswith("* ") and
                line.rstrip().endswith((": AVOIDED", ": SAME VICTIM", ": VICTIM CHANGED"))]
    assert verdicts == []
    assert text.count(": NOT AN ANSWER") == sum(len(k.what_if) for k in rep.kills)


def _kill(memcg: str | None, constraint: str) -> OomKillReport:
    return OomKillReport(ts_ns=10, trigger=None, constraint=constraint, memcg=memcg, victim=TaskRef(7, "leaker"),
                         victim_points=100)


def test_a_memcg_kill_is_judged_by_the_replays_kills_in_its_cgroup() -> None:
    """A replay that first kills a task of another cgroup, then the victim in the
    kill's own: for the memcg OOM of /a the answer is "same victim" (the other
    cgroup's kill is not this kill's); for a global OOM, the replay's global kills
    only."""
    change = WhatIfChange("vm.overcommit_memory=2", "overcommit")
    outcome = ReplayOutcome(kills=((5, "other", 50, 5), (7, "leaker", 100, 20)), kill_memcgs=("/b", "/a"))
    w = judge_what_if(change, _kill("/a", "CONSTRAINT_MEMCG"), 0, outcome)
    assert (w.outcome, w.victim) == ("same victim", TaskRef(7, "leaker"))
    # A child cgroup of /a is in its scope.
    nested = ReplayOutcome(kills=((8, "child", 60, 5),), kill_memcgs=("/a/x",))
    assert judge_what_if(change, _kill("/a", "CONSTRAINT_MEMCG"), 0, nested).outcome == "victim changed"
    glob = judge_what_if(change, _kill(None, "CONSTRAINT_NONE"), 0, outcome)
    assert glob.outcome == "avoided" and glob.detail == "no OOM kill"
