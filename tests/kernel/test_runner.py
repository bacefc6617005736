"""Running steps: repeats whose iterations take no simulated time, repeats past the
time limit, and the cap on count = 0 repeats."""

from __future__ import annotations

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.workload import scenario_from_dict

from ..conftest import run
from .workload.helpers import proc, scenario


def test_a_count_zero_iteration_that_takes_no_time_stops_the_run() -> None:
    """Touching resident pages takes no simulated time: a count = 0 repeat of it
    would spin for ever inside one step of the engine; the runner stops with a
    ScenarioError naming the step."""
    sc = scenario_from_dict(scenario(proc(
        "p", {"op": "mmap", "handle": "m", "length": "64k"}, {"op": "touch", "handle": "m", "write": True},
        {"op": "repeat", "steps": [{"op": "touch", "handle": "m"}]})), "s.toml")
    with pytest.raises(ScenarioError) as exc:
        run(sc)
    assert str(exc.value) == (
        "s.toml: process 'p' step 3: key 'count': iteration 0 of this count = 0 repeat took no simulated time, "
        "so it would never end: give it a count or a step that takes time (sleep)")


def test_a_repeat_that_never_yields_stops_at_the_time_limit() -> None:
    """Reads of a cached file take time but never give up the CPU; the repeat
    yields once past the time limit so that the run ends there."""
    sc = scenario_from_dict(scenario(
        proc("p", {"op": "write", "file": "/tmp/x", "length": "64k"},
             {"op": "repeat", "steps": [{"op": "read", "file": "/tmp/x"}]}),
        machine={"time_limit": "1ms"}))
    k, result, _ = run(sc)
    assert [e.errno for e in result.errors] == ["ETIME"]
    assert 1_000_000 < k.now_ns < 2_000_000


def test_count_zero_stops_after_max_repeat_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """count = 0 is 'until the process ends', and at most MAX_REPEAT_COUNT times."""
    monkeypatch.setattr("memtrace.kernel.runner.MAX_REPEAT_COUNT", 5)
    sc = scenario_from_dict(scenario(proc("p", {"op": "repeat", "steps": [{"op": "sleep", "duration": "1ms"}]})))
    k, result, _ = run(sc)
    assert result.errors == []
    assert k.now_ns == 5_000_000
