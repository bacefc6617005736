"""The cost of a run, estimated before it starts (kernel/workload/cost.py); counts
worked by hand from the scenarios' steps and the per-page costs."""

from __future__ import annotations

from memtrace.kernel.workload import resolve_scenario, scenario_from_dict
from memtrace.kernel.workload.cost import (
    SMALL_RUN_HOST_BYTES,
    SMALL_RUN_SECONDS,
    estimate_cost,
)

GiB = 1 << 30


def test_a_one_gib_touch() -> None:
    """private-anon-mapping: mmap 1 GiB and write it: 262,144 pages gone through and
    mapped; 80 + 5 bytes each of host memory; 2 us each of time."""
    c = estimate_cost(resolve_scenario("private-anon-mapping"))
    assert (c.range_pages, c.mapped_pages, c.simulated_ns) == (262_144, 262_144, 0)
    assert c.host_bytes == 85 * 262_144
    assert abs(c.seconds - 262_144 * 2e-6) < 1e-9 and c.small


def test_repeats_multiply_and_sleeps_add_samples() -> None:
    """oom-leak's leaker: 64 x (mmap 64 MiB, touch it, sleep 100 ms) from t = 1 s;
    the db maps and writes 1.5 GiB; the cache reads two 512 MiB files."""
    c = estimate_cost(resolve_scenario("oom-leak"))
    leaker = 64 * 16_384
    assert c.mapped_pages == leaker + 393_216
    assert c.range_pages == leaker + 393_216 + 262_144
    assert c.small


def test_a_huge_untouched_machine_is_not_small() -> None:
    """Issue 14's 209-byte scenario: 16 untouched 256 GiB noreserve mappings need 5 GiB
    of page tables (5 bytes x 64 Mi pages x 16)."""
    steps = [{"op": "mmap", "handle": f"m{i}", "length": "256GiB", "noreserve": True} for i in range(16)]
    s = scenario_from_dict({"name": "big", "machine": {"ram": "256GiB"},
                            "process": [{"name": "p", "steps": steps}]}, "big.toml")
    c = estimate_cost(s)
    assert c.mapped_pages == 16 * (256 * GiB // 4096) and c.range_pages == 0
    assert c.host_bytes == 5 * c.mapped_pages > SMALL_RUN_HOST_BYTES and not c.small


def test_an_endless_loop_runs_as_long_as_the_runner_lets_it() -> None:
    """A count = 0 repeat runs at most MAX_REPEAT_COUNT (1,000,000) times and at most
    the time limit over its sleeps (7200 s / 1 ms); one that maps memory, until RAM
    and swap are full (16 GiB / 64 MiB = 256 iterations)."""
    def loop(body: list[dict[str, object]]) -> dict[str, object]:
        return {"name": "loop", "machine": {"ram": "8GiB", "swap": "8GiB", "time_limit": "7200s"},
                "process": [{"name": "p", "steps": [{"op": "mmap", "handle": "b", "length": "1MiB"},
                                                    {"op": "repeat", "count": 0, "steps": body}]}]}

    c = estimate_cost(scenario_from_dict(loop([{"op": "touch", "handle": "b", "write": True},
                                               {"op": "sleep", "duration": "1ms"}]), "loop.toml"))
    assert c.range_pages == 256 * 1_000_000 and c.simulated_ns == 1_000 * 10**9
    assert c.seconds > SMALL_RUN_SECONDS and not c.small
    c = estimate_cost(scenario_from_dict(loop([{"op": "mmap", "handle": "x{i}", "length": "64MiB"},
                                               {"op": "touch", "handle": "x{i}", "write": True},
                                               {"op": "sleep", "duration": "100ms"}]), "leak.toml"))
    assert c.range_pages == 256 * 16_384 and c.mapped_pages == 256 + 256 * 16_384
    assert c.simulated_ns == 256 * 100_000_000
