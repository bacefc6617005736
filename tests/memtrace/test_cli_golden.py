"""Golden files: the text output of ``report``, ``explain``, ``dmesg``, ``stat``,
``diff`` and ``ps`` on sample traces and on real kernel samples.

Each case runs one command in-process (typer's CliRunner, 80 columns) from the
folder of its input, so every path it prints is relative and the output does not
depend on where the repository is checked out. The ``golden`` fixture
(tests/conftest.py) compares the output with ``golden/NAME.txt`` beside this file;
on a mismatch the actual output is saved as ``golden/NAME.actual.txt`` and the test
fails with a diff. After a deliberate change: ``pytest --update-goldens``, then
review ``git diff tests/memtrace/golden``.

The sample traces: three with OOM kills (``oom-leak``: a global kill;
``memcg-oom``: two memcg kills; ``shmem-pressure``: a memcg kill that leaves tmpfs
behind) and two without (``tmpfs-file``, ``fork-cow``). The real samples: the perf
script and ftrace runs of ``tests/data/real`` imported with their kernel logs, and
the kernel log of ``../shared/real-traces`` given to ``report`` as it is. The real
samples (each folds a whole imported trace) and the what-if replays are marked
slow: ``pytest -m "not slow"`` leaves them to ``make test``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtrace.cli import app

from ..conftest import Golden

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
REAL = ROOT / "tests" / "data" / "real"
# CI checks out shared/ beside the repository (as the other real-trace tests find it).
SHARED = ROOT.parent / "shared" / "real-traces"

KILLS = ["oom-leak", "memcg-oom", "shmem-pressure"]
QUIET = ["tmpfs-file", "fork-cow"]


def run(directory: Path, *args: str) -> str:
    """The command's stdout, then its stderr (if any) after a marker line; run from
    ``directory`` at 80 columns. The command must succeed."""
    with contextlib.chdir(directory):
        result = CliRunner(env={"COLUMNS": "80", "LINES": "24"}).invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    text = result.stdout
    if result.stderr:
        text += "--- stderr ---\n" + result.stderr
    return text


# --------------------------------------------------------------------------- sample traces

SAMPLE_CASES = [
    *[(f"stat.{n}", ["stat", f"{n}.mtrace"]) for n in KILLS + QUIET],
    *[(f"dmesg.{n}", ["dmesg", f"{n}.mtrace"]) for n in KILLS + QUIET],
    *[(f"report.{n}", ["report", f"{n}.mtrace", "--no-what-if"]) for n in KILLS + QUIET],
    *[(f"explain.{n}", ["explain", f"{n}.mtrace"]) for n in KILLS + QUIET],
    ("explain.fork-cow.children-wrote", ["explain", "fork-cow.mtrace", "--at", "children-wrote"]),
    ("explain.oom-leak.4.5s.pid100", ["explain", "oom-leak.mtrace", "--at", "4.5s", "--pid", "100"]),
    ("explain.tmpfs-file.after-write", ["explain", "tmpfs-file.mtrace", "--at", "after-write"]),
    *[(f"ps.{n}", ["ps", f"{n}.mtrace"]) for n in KILLS + QUIET],
    ("ps.oom-leak.4.8s", ["ps", "oom-leak.mtrace", "--at", "4.8s", "--all"]),
    ("ps.fork-cow.after-children", ["ps", "fork-cow.mtrace", "--at", "after-children", "--sort", "rss"]),
    ("diff.oom-leak.overcommit-strict", ["diff", "oom-leak.mtrace", "overcommit-strict.mtrace"]),
    ("diff.memcg-oom.shmem-pressure", ["diff", "memcg-oom.mtrace", "shmem-pressure.mtrace"]),
    ("diff.fork-cow.fork-cow", ["diff", "fork-cow.mtrace", "fork-cow.mtrace"]),
    ("diff.tmpfs-file.fork-cow", ["diff", "tmpfs-file.mtrace", "fork-cow.mtrace"]),
]


@pytest.mark.parametrize(("name", "args"), SAMPLE_CASES, ids=[name for name, _ in SAMPLE_CASES])
def test_sample_trace_output(golden: Golden, name: str, args: list[str]) -> None:
    golden(name, run(SAMPLES, *args))


@pytest.mark.slow
def test_report_with_what_if_replays(golden: Golden) -> None:
    """The what-if answers of a report come from replays of the recorded workload."""
    golden("report.oom-leak.what-if", run(SAMPLES, "report", "oom-leak.mtrace", "--jobs", "1"))


# --------------------------------------------------------------------------- real samples

#: (imported trace name, source, format, kernel log) of tests/data/real.
REAL_IMPORTS = [
    ("memcg-v1-two-kills", "memcg-v1-two-kills.perf-script.txt.gz", "perf-script", "memcg-v1-two-kills.dmesg.txt.gz"),
    ("memcg-v1-ftrace", "memcg-v1-ftrace.trace.txt.gz", "ftrace", "memcg-v1-ftrace.dmesg.txt.gz"),
]


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A folder holding the real samples, each imported beside its source with its
    kernel log; and the text ``memtrace import`` printed for each."""
    directory = tmp_path_factory.mktemp("real")
    for name in os.listdir(REAL):
        if name.endswith(".gz"):
            shutil.copy(REAL / name, directory / name)
    shutil.copy(SHARED / "memcg-oom-two-victims.dmesg.txt", directory / "memcg-oom-two-victims.dmesg.txt")
    printed = {}
    for name, source, fmt, log in REAL_IMPORTS:
        printed[name] = run(directory, "import", source, "--format", fmt, "--dmesg", log, "-o", f"{name}.mtrace")
    return directory, printed


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, *_ in REAL_IMPORTS])
def test_real_import_output(golden: Golden, real_dir: tuple[Path, dict[str, str]], name: str) -> None:
    golden(f"import.{name}", real_dir[1][name])


REAL_CASES = [
    *[(f"{cmd}.{name}", [cmd, f"{name}.mtrace"]) for cmd in ("stat", "dmesg", "explain", "ps")
      for name, *_ in REAL_IMPORTS],
    *[(f"report.{name}", ["report", f"{name}.mtrace", "--no-what-if"]) for name, *_ in REAL_IMPORTS],
    ("diff.memcg-v1-two-kills.memcg-v1-ftrace", ["diff", "memcg-v1-two-kills.mtrace", "memcg-v1-ftrace.mtrace"]),
    ("report.memcg-oom-two-victims.dmesg", ["report", "memcg-oom-two-victims.dmesg.txt"]),
    ("report.memcg-v1-two-kills.dmesg", ["report", "memcg-v1-two-kills.dmesg.txt.gz"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "args"), REAL_CASES, ids=[name for name, _ in REAL_CASES])
def test_real_sample_output(golden: Golden, real_dir: tuple[Path, dict[str, str]], name: str,
                            args: list[str]) -> None:
    golden(name, run(real_dir[0], *args))
