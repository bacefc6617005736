"""Shared fixtures: a collecting probe and a small kernel running a scenario."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace.kernel.runner import RunResult, run_scenario
from memtrace.kernel.workload import MachineSpec, ProcessSpec, Scenario, Step
from memtrace.kernel.kernel import Kernel
from memtrace.tracer import Bus, Collector, default_registry

MiB = 1 << 20
GiB = 1 << 30

#: The built-in scenarios the issues name, sorted: the ten seed experiments and the
#: seven memory-pressure scenarios.
BUILTINS = [
    "dirty-page-cache",
    "fork-cow",
    "kswapd-reclaim",
    "mapped-file-drop-caches",
    "memcg-oom",
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
