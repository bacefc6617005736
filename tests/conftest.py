"""Shared fixtures: a collecting probe, a small kernel running a scenario, and golden
files for command output (``--update-goldens`` rewrites them)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
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
    "madvise-freer",
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


@pytest.fixture(scope="session")
def real_leak_import(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real leak recording of tests/data/real/experiments (leak-L128: perf script
    and dmesg) imported once for the session: a trace whose page faults and
    rss_stat updates alternate as the real kernel emitted them."""
    from memtrace.analysis.importers import import_trace

    leak = Path(__file__).parent / "data" / "real" / "experiments" / "leak"
    out = tmp_path_factory.mktemp("real-leak") / "leak.mtrace"
    import_trace(leak / "leak-L128.perf-script.txt.gz", out, dmesg=leak / "leak-L128.dmesg.txt.gz")
    return out


@pytest.fixture
def collector() -> Collector:
    return Collector()


# --------------------------------------------------------------------------- golden files


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="Rewrite golden/NAME.txt beside each test from the actual output instead of comparing.")


#: ``golden(name, text)``: see :func:`golden`.
Golden = Callable[[str, str], None]


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """Compare ``text`` with ``golden/NAME.txt`` beside the test file.

    On a mismatch the actual text is saved as ``golden/NAME.actual.txt`` beside the
    expected one and the test fails with a unified diff; on a match a stale
    ``.actual.txt`` is removed. ``pytest --update-goldens`` writes the expected files
    instead (review the change with ``git diff``).
    """
    directory = request.path.parent / "golden"
    update = bool(request.config.getoption("--update-goldens"))

    def check(name: str, text: str) -> None:
        expected_path = directory / f"{name}.txt"
        actual_path = directory / f"{name}.actual.txt"
        if update:
            directory.mkdir(exist_ok=True)
            expected_path.write_text(text)
            actual_path.unlink(missing_ok=True)
            return
        expected = expected_path.read_text() if expected_path.exists() else None
        if text == expected:
            actual_path.unlink(missing_ok=True)
            return
        directory.mkdir(exist_ok=True)
        actual_path.write_text(text)
        if expected is None:
            pytest.fail(f"no golden file {expected_path}; the output is in {actual_path.name} "
                        "(pytest --update-goldens accepts it)", pytrace=False)
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), text.splitlines(keepends=True),
                                            f"golden/{expected_path.name}", f"golden/{actual_path.name}"))
        pytest.fail(f"output differs from golden/{expected_path.name}; the actual output is saved beside it "
                    f"(pytest --update-goldens accepts it):\n{diff}", pytrace=False)

    return check
