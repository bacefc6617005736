"""-v and -vv: each phase logged through structlog to stderr (what was read, how
many events, what was skipped and why, timings); nothing at the default level."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtrace.cli import app
from memtrace.logsetup import configure_logging
from memtrace.tracer.tracefile import TraceReader

SAMPLES = Path(__file__).parent.parent.parent / "sample_traces"
FORK_COW = SAMPLES / "fork-cow.mtrace"


@pytest.fixture(autouse=True)
def quiet_after() -> Iterator[None]:
    yield
    configure_logging(0)


def _stderr(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stderr


def test_default_logs_nothing() -> None:
    assert _stderr("explain", str(FORK_COW), "--by", "process") == ""


def test_v_logs_each_phase_with_counts_and_timings() -> None:
    err = _stderr("-v", "explain", str(FORK_COW), "--by", "process")
    events = TraceReader(FORK_COW).scan().total_events
    read = next(line for line in err.splitlines() if "trace read" in line)
    assert f"events={events}" in read and "chunks=" in read and re.search(r"seconds=\d", read)
    assert "complete=True" in read and "frames_skipped=0" in read
    assert "[info     ] fold the trace into memory state" in err and "reading=after-children" in err
    assert "[debug" not in err


def test_vv_adds_the_start_of_each_phase() -> None:
    err = _stderr("-vv", "report", str(SAMPLES / "oom-leak.mtrace"), "--no-what-if")
    assert "[debug    ] build the OOM report: start" in err
    assert "build the OOM report" in err and "kills=1" in err
    assert "what-if replays skipped: --no-what-if" in err


def test_v_says_what_was_skipped_and_why(tmp_path: Path) -> None:
    """A cut trace: the damage is logged with where and why; an import logs the
    tracepoints it had no counterpart for."""
    data = FORK_COW.read_bytes()
    cut = tmp_path / "cut.mtrace"
    cut.write_bytes(data[: len(data) * 2 // 3])
    err = CliRunner().invoke(app, ["-v", "stat", str(cut)]).stderr
    assert "damage skipped" in err and "reason=" in err
    src = tmp_path / "p.txt"
    src.write_text("# tracer: nop\n"
                   "  a-1    [000] .....  1.000000: sched_switch: prev_comm=a prev_pid=1 prev_prio=120 "
                   "prev_state=S ==> next_comm=b next_pid=2 next_prio=120\n"
                   "  a-1    [000] .....  1.000100: mm_vmscan_kswapd_wake: nid=0 order=0\n")
    err = CliRunner().invoke(app, ["-v", "import", str(src), "--format", "ftrace", "-o",
                                   str(tmp_path / "p.mtrace")]).stderr
    assert "[info     ] import" in err and "lines=" in err
    assert "skipped: no memtrace counterpart" in err and "tracepoint=sched_switch" in err
