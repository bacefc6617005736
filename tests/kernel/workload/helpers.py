"""Scenario data for the workload tests: TOML-shaped tables and the error a bad one raises."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.workload import scenario_from_dict

MiB = 1 << 20
GiB = 1 << 30


def scenario(*processes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """TOML-shaped data of a scenario with ``processes``."""
    return {"name": "t", **top, "process": list(processes)}


def proc(name: str, *steps: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"name": name, **keys, "steps": list(steps)}


def error_of(data: dict[str, Any], source: str = "s.toml") -> str:
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data, source)
    return str(exc.value)


MMAP_BUF = {"op": "mmap", "handle": "buf", "length": "1MiB"}
SLEEP = {"op": "sleep", "duration": "1ms"}
