"""Fixtures of the tracer tests."""

from __future__ import annotations

import pytest

from .programs import MIXED_TOML, Trace


@pytest.fixture(scope="session")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    """The mixed scenario of :data:`~.programs.MIXED_TOML`, recorded once."""
    from memtrace.api import record

    d = tmp_path_factory.mktemp("mixed")
    (d / "mixed.toml").write_text(MIXED_TOML)
    record(str(d / "mixed.toml"), d / "mixed.mtrace")
    return Trace(d / "mixed.mtrace")
