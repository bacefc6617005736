"""The ``cli_startup`` benchmark: how long ``memtrace --version`` and ``memtrace --help`` take.

Each is run as a new process (the console script next to this Python, else
``python -m memtrace``), once untimed, then ``runs`` times; the medians of their
wall-clock times are reported:

- ``cli_startup_s``: ``memtrace --version`` (target <= 0.25 s);
- ``help_s``: ``memtrace --help`` (target <= 0.25 s).

Both answer before any command runs, so they import typer and memtrace's CLI
modules, and nothing of numpy, matplotlib, networkx, dask, pyarrow or structlog
(the CLI imports those inside the commands that use them).
"""

from __future__ import annotations

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


def _time(args: list[str], runs: int) -> tuple[float | None, str | None]:
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            return None, f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-200:]}"
        if i:
            times.append(elapsed)
    return statistics.median(times), None


def cli_startup(runs: int) -> dict[str, Any]:
    cmd = _command()
    version_s, version_reason = _time([*cmd, "--version"], runs)
    help_s, help_reason = _time([*cmd, "--help"], runs)
    entry: dict[str, Any] = {"cli_startup_s": version_s, "help_s": help_s, "runs": runs,
                             "command": " ".join(Path(c).name for c in cmd)}
    problems = [r for r in (version_reason, help_reason) if r]
    if version_reason:
        entry["cli_startup_s_reason"] = version_reason
    if help_reason:
        entry["help_s_reason"] = help_reason
    if problems:
        entry["problems"] = problems
    return entry
