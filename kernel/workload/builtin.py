"""The built-in scenarios: TOML files shipped in ``kernel/scenarios/``.

Each file is a scenario a user can copy and edit; ``memtrace scenarios`` lists them
and ``memtrace record NAME`` runs one by name.
"""

from __future__ import annotations

from pathlib import Path

from memtrace.errors import ScenarioError

from .codec import load_scenario
from .model import Scenario


def builtin_dir() -> Path:
    """The folder of built-in scenario TOML files shipped with the package."""
    return Path(__file__).parent.parent / "scenarios"


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def resolve_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario TOML file by path."""
    candidate = builtin_dir() / f"{name_or_path}.toml"
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        if candidate.exists():
            return load_scenario(candidate)
        raise ScenarioError(
            f"unknown scenario {name_or_path!r} (built-in: {', '.join(builtin_names())}; or give a .toml path)"
        )
    return load_scenario(name_or_path)
