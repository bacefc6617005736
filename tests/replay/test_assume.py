"""What a process killed in the recording would have done: the assumptions of replay.assume."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace.errors import ScenarioError
from memtrace.replay import Overrides, apply_assumption, apply_overrides, describe_assumption, parse_assumption
from memtrace.replay.assume import AfterKill

MiB = 1 << 20

#: A derived workload of two processes; "leaker" was killed after its 3 steps,
#: growing 100 MiB/s (1 MiB every 10 ms), 500 ms before its planned end.
DERIVED: dict[str, Any] = {
    "after_kill": [{"process": "leaker-7", "pid": 7, "comm": "leaker", "kill_ns": 1_000_000_000,
                    "planned_end_ns": 1_500_000_000, "planned_end": "the end of the derived workload",
                    "steps_at_kill": 3, "window_ns": 1_000_000_000, "allocating": True,
                    "bytes_per_s": {"anon": 100 * MiB, "file": 0, "shmem": 0}, "chunk_bytes": MiB,
                    "every_ns": 10_000_000, "held_bytes": {"anon": 100 * MiB, "file": 0, "shmem": 0}}],
    "end_ns": 1_500_000_000, "assumption": "grow",
}


def workload() -> dict[str, Any]:
    leak = [{"op": "mmap", "handle": "a", "length": MiB, "prot": "rw"}, {"op": "touch", "handle": "a", "write": True},
            {"op": "sleep", "duration": 1_000_000_000}]
    return {"name": "w", "description": "", "machine": {"ram": 1 << 30, "swap": 0, "kernel_version": "6.18"},
            "sysctl": {}, "file": [],
            "process": [{"name": "leaker-7", "steps": leak},
                        {"name": "db-8", "steps": [{"op": "sleep", "duration": 5}]}]}


@pytest.mark.parametrize("text, expect", [
    ("stop", AfterKill("stop")), ("continue", AfterKill("continue")), ("grow", AfterKill("grow")),
    ("grow=64MiB", AfterKill("grow", 64 * MiB)), (" grow = 1GiB ", AfterKill("grow", 1 << 30)),
])
def test_parse(text: str, expect: AfterKill) -> None:
    assert parse_assumption(text) == expect
    assert parse_assumption(str(expect)) == expect


@pytest.mark.parametrize("text", ["", "grow=", "grow=lots", "halt", "stop=1MiB", "grow=-1MiB"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ScenarioError, match="--assume-after-kill"):
        parse_assumption(text)


def test_grow_keeps_the_observed_rate_until_the_planned_end() -> None:
    """grow: 1 MiB every 10 ms for the 500 ms left: 50 chunks, then nothing left to wait."""
    out = apply_assumption(workload(), DERIVED)
    steps = out["process"][0]["steps"]
    assert steps[:3] == workload()["process"][0]["steps"]
    (repeat,) = steps[3:]
    assert repeat["op"] == "repeat" and repeat["count"] == 50
    assert [s["op"] for s in repeat["steps"]] == ["sleep", "mmap", "touch"]
    assert repeat["steps"][0]["duration"] == 10_000_000 and repeat["steps"][1]["length"] == MiB
    assert out["process"][1] == workload()["process"][1]


def test_grow_by_a_size_then_holds() -> None:
    """grow=8MiB: 8 chunks (80 ms), then it holds its memory the 420 ms left."""
    steps = apply_assumption(workload(), DERIVED, parse_assumption("grow=8MiB"))["process"][0]["steps"][3:]
    assert steps[0]["count"] == 8 and steps[1] == {"op": "sleep", "duration": 420_000_000}


def test_continue_and_stop() -> None:
    cont = apply_assumption(workload(), DERIVED, parse_assumption("continue"))["process"][0]["steps"]
    assert cont[3:] == [{"op": "sleep", "duration": 500_000_000}]
    stop = apply_assumption(workload(), DERIVED, parse_assumption("stop"))["process"][0]["steps"]
    # The allocation it was killed in (one 1 MiB chunk of its growth), then nothing.
    assert stop == [*workload()["process"][0]["steps"],
                    {"op": "mmap", "handle": "after-kill", "length": MiB, "prot": "rw", "on_enomem": "continue"},
                    {"op": "touch", "handle": "after-kill", "write": True}]
    idle = {**DERIVED, "after_kill": [{**DERIVED["after_kill"][0], "allocating": False}]}
    stop_idle = apply_assumption(workload(), idle, parse_assumption("stop"))["process"][0]["steps"]
    assert stop_idle == workload()["process"][0]["steps"]


def test_applied_twice_is_applied_once() -> None:
    """The steps after the kill are replaced, not appended to (a replay of a replay)."""
    once = apply_assumption(workload(), DERIVED)
    assert apply_assumption(once, DERIVED) == once
    assert apply_assumption(once, DERIVED, parse_assumption("stop"))["process"][0]["steps"][:3] == \
        workload()["process"][0]["steps"]


def test_nothing_to_assume_without_kills() -> None:
    assert apply_assumption(workload(), None) == workload()
    assert apply_assumption(workload(), {"after_kill": []}) == workload()
    assert describe_assumption(None) == []


def test_describe_says_what_was_assumed() -> None:
    (grow,) = describe_assumption(DERIVED)
    assert grow.startswith("leaker (pid 7), killed at 1.000 s while growing 100 MiB/s anon: assumed to keep "
                           "growing at that rate until 1.500 s")
    (stop,) = describe_assumption(DERIVED, parse_assumption("stop"))
    assert "assumed to end there, after the allocation it was killed in" in stop
    (cont,) = describe_assumption(DERIVED, parse_assumption("continue"))
    assert "hold its memory, alive, until 1.500 s" in cont


def test_overrides_take_and_describe_it() -> None:
    o = Overrides.parse(["vm.swappiness=10"], [], assume_after_kill="grow=64MiB")
    assert o.assumption == AfterKill("grow", 64 * MiB)
    assert o.describe() == ["vm.swappiness=10", "assume-after-kill=grow=64MiB"]
    assert Overrides(assume_after_kill="grow=100000000").assume_after_kill == "grow=100000000"
    assert not o.empty and Overrides().empty and Overrides().assumption == AfterKill("grow")
    with pytest.raises(ScenarioError):
        Overrides(assume_after_kill="sometimes")


def test_apply_overrides_runs_the_assumption() -> None:
    scenario = apply_overrides(workload(), Overrides(assume_after_kill="continue"), "test", derived=DERIVED)
    leaker = scenario.process("leaker-7")
    assert len(leaker.steps) == 4 and leaker.steps[-1].op == "sleep"
    plain = apply_overrides(workload(), Overrides(), "test")  # no derived map: nothing assumed
    assert len(plain.process("leaker-7").steps) == 3


def test_a_victim_killed_for_another_tasks_allocation_is_not_grown() -> None:
    """grow extends only a victim that was allocating when killed (the OOM was in
    its own allocation): one killed for another task's holds its memory, alive,
    until its planned end, and the sentence says why."""
    idle = {**DERIVED, "after_kill": [{**DERIVED["after_kill"][0], "allocating": False}]}
    steps = apply_assumption(workload(), idle)["process"][0]["steps"]
    assert steps[3:] == [{"op": "sleep", "duration": 500_000_000}]
    (said,) = describe_assumption(idle)
    assert "while not allocating (the OOM was another task's): assumed to hold its memory, alive" in said
