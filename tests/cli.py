"""The CLI run in-process for tests: typer's CliRunner on ``memtrace.cli.app``, stdout
and stderr kept apart."""

from __future__ import annotations

import os

from typer.testing import CliRunner, Result

from memtrace.cli import app


def invoke(*args: str | os.PathLike[str]) -> Result:
    """``memtrace ARGS``, whatever its exit code."""
    return CliRunner().invoke(app, [os.fspath(a) for a in args])


def ok(*args: str | os.PathLike[str]) -> str:
    """``memtrace ARGS``, which must exit 0: its stdout."""
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout
