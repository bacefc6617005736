"""The built-in scenarios: each loads by name, says what it does, and survives the
round trip through its plain-data form."""

from __future__ import annotations

import tomllib

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.workload import (
    Snapshot,
    builtin_dir,
    builtin_names,
    load_scenario,
    resolve_scenario,
    scenario_from_dict,
    step_from_dict,
)

from ...conftest import BUILTINS


def test_builtin_names() -> None:
    assert builtin_names() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name: str) -> None:
    """Every built-in loads by name, is named after its file, says what it does and
    takes at least two snapshots to compare."""
    sc = resolve_scenario(name)
    assert sc.name == name
    assert sc.source == str(builtin_dir() / f"{name}.toml")
    assert sc.description.strip()
    labels = [s.label for p in sc.processes for s in p.steps if isinstance(s, Snapshot)]
    assert len(labels) >= 2
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_round_trip(name: str) -> None:
    """scenario_from_dict(sc.to_dict()) rebuilds the same scenario."""
    sc = load_scenario(builtin_dir() / f"{name}.toml")
    again = scenario_from_dict(sc.to_dict(), "<round-trip>")
    assert again.processes == sc.processes
    assert again.machine == sc.machine
    assert again.files == sc.files
    assert dict(again.sysctls) == dict(sc.sysctls)
    assert (again.name, again.description) == (sc.name, sc.description)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_to_dict_matches_its_toml(name: str) -> None:
    """to_dict() is the file's own data with sizes in bytes and defaults filled in:
    every step of the file converts to the step to_dict() wrote."""
    path = builtin_dir() / f"{name}.toml"
    raw = tomllib.loads(path.read_text())
    d = load_scenario(path).to_dict()
    assert [p["name"] for p in d["process"]] == [p["name"] for p in raw["process"]]
    for p_raw, p_out in zip(raw["process"], d["process"]):
        assert len(p_raw["steps"]) == len(p_out["steps"])
        for j, (s_raw, s_out) in enumerate(zip(p_raw["steps"], p_out["steps"]), 1):
            assert step_from_dict(s_raw, f"step {j}") == step_from_dict(s_out, f"step {j}")
            assert s_out["op"] == s_raw["op"]


def test_resolve_unknown_scenario() -> None:
    with pytest.raises(ScenarioError) as exc:
        resolve_scenario("nosuch")
    assert str(exc.value).startswith("unknown scenario 'nosuch' (built-in: " + ", ".join(BUILTINS))
