"""Shared fixtures: a collecting probe and a small kernel running a scenario."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from memtrace.kernel.kernel import Kernel
from memtrace.kernel.runner import RunResult, run_scenario
from memtrace.kernel.workload import MachineSpec, ProcessSpec, Scenario, Step
from memtrace.tracer import Bus, Collector, default_registry

# Property tests: no per-example deadline (a loaded CI machine is slow, not wrong).
# In CI (CI set) the examples are derandomized, so a run of main is reproducible;
# locally each run draws new ones.
settings.register_profile("memtrace", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("memtrace-ci", settings.get_profile("memtrace"), derandomize=True, print_blob=True)
settings.load_profile("memtrace-ci" if os.environ.get("CI") else "memtrace")

MiB = 1 << 20
GiB = 1 << 30

#: The built-in scenarios the issues name, sorted: the ten seed experiments, the
#: seven memory-pressure scenarios, and experiment B of the real-kernel ground truth
#: (memcg-writer).
BUILTINS = [
    "dirty-page-cache",
    "fork-cow",
    "kswapd-reclaim",
    "mapped-file-drop-caches",
    "memcg-oom",
    "memcg-writer",
    "oom-leak",
    "overcommit-strict",
    "page-cache-read",
    "posix-shm",
    "private-anon-mapping",
    "private-file-mapping",
    "shared-anon-mapping",
    "shared-file-mapping",
    "shmem-pressure",
    "swap-pressure",
    "sysv-shm",
    "tmpfs-file",
]


def run_steps(*steps: Step, ram_bytes: int = GiB, sysctls: dict[str, Any] | None = None,
              files: tuple = ()) -> tuple[Kernel, RunResult, Collector]:
    """Run one process doing ``steps`` on a small machine; return kernel, result and
    every event collected."""
    sc = Scenario(name="t", machine=MachineSpec(ram_bytes=ram_bytes), sysctls=sysctls or {},
                  files=files, processes=(ProcessSpec("t", steps=tuple(steps)),))
    return run(sc)


def run(sc: Scenario, overrides: dict[str, Any] | None = None, seed: int = 0) -> tuple[Kernel, RunResult, Collector]:
    bus = Bus(default_registry())
    collector = Collector()
    bus.attach(collector)
    k, result = run_scenario(sc, bus, overrides, seed)
    return k, result, collector


@pytest.fixture
def collector() -> Collector:
    return Collector()
