"""The ``cli_startup`` benchmark: how long ``memtrace --version`` and ``memtrace --help`` take.

Each is run as a new process (the console script next to this Python, else
``python -m memtrace``), once untimed, then ``runs`` times; the medians of their
wall-clock times are reported:

- ``cli_startup_s``: ``memtrace --version`` (target <= 0.25 s);
- ``help_s``: ``memtrace --help`` (target <= 0.25 s);
- ``cli_startup_cpu_s``: the CPU time (user + system) of ``memtrace --version``,
  which the machine's load does not inflate as it does the wall-clock time.

Both answer before any command runs, so they import typer and memtrace's CLI
modules, and nothing of numpy, matplotlib, networkx, dask, pyarrow or structlog
(the CLI imports those inside the commands that use them).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TIMEOUT_S = 60.0


def _command() -> list[str]:
    script = Path(sys.executable).parent / "memtrace"
    return [str(script)] if script.exists() else [sys.executable, "-m", "memtrace"]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(args: list[str], runs: int) -> tuple[float | None, float | None, str | None]:
    """Median wall-clock and CPU seconds of ``args`` over ``runs`` runs after one."""
    times, cpu = [], []
    for i in range(runs + 1):
        c0 = _cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            return None, None, f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-200:]}"
        if i:
            times.append(elapsed)
            cpu.append(_cpu_s() - c0)
    return statistics.median(times), statistics.median(cpu), None


def cli_startup(runs: int) -> dict[str, Any]:
    cmd = _command()
    version_s, version_cpu_s, version_reason = _time([*cmd, "--version"], runs)
    help_s, _help_cpu_s, help_reason = _time([*cmd, "--help"], runs)
    entry: dict[str, Any] = {"cli_startup_s": version_s, "help_s": help_s, "cli_startup_cpu_s": version_cpu_s,
                             "runs": runs, "command": " ".join(Path(c).name for c in cmd)}
    problems = [r for r in (version_reason, help_reason) if r]
    if version_reason:
        entry["cli_startup_s_reason"] = version_reason
    if help_reason:
        entry["help_s_reason"] = help_reason
    if problems:
        entry["problems"] = problems
    return entry
