"""Interrupted recordings (issue 14, finding 4): the footer says ``aborted`` and every
reader reports the trace incomplete.

An interrupt (Ctrl-C's KeyboardInterrupt, or SIGTERM turned into an exception by
the CLI) arrives inside the simulation; kernel/recorder.py's ``record_run`` closes
the writer in a ``finally``, which writes what was recorded and a footer saying
``aborted: true`` with the exception's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload import resolve_scenario
from memtrace.replay import summarize_trace
from memtrace.tracer import EventBatch
from memtrace.tracer.tracefile import TraceReader

from .helpers import assert_clean, run_cli


class Interrupt:
    """A bus consumer that raises ``exc`` once ``after`` events went by."""

    def __init__(self, after: int, exc: type[BaseException] = KeyboardInterrupt) -> None:
        self.after = after
        self.seen = 0
        self.exc = exc

    def on_batch(self, batch: EventBatch) -> None:
        self.seen += batch.n
        if self.seen > self.after:
            raise self.exc()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """oom-leak interrupted by Ctrl-C after 200,000 events, before its OOM kill."""
    path = tmp_path_factory.mktemp("abort") / "oom-leak.mtrace"
    with pytest.raises(KeyboardInterrupt):
        record_run(resolve_scenario("oom-leak"), path, sysctl_overrides={}, seed=0, memtrace_version="0.1.0",
                   consumers=[Interrupt(200_000)])
    return path


def test_the_footer_says_aborted_with_what_was_recorded(interrupted: Path) -> None:
    reader = TraceReader(interrupted)
    stats = reader.scan()
    assert reader.footer is not None and reader.footer["aborted"] is True
    assert reader.footer["extra"]["aborted"] == "KeyboardInterrupt"
    assert reader.aborted == "KeyboardInterrupt"
    assert stats.aborted == "KeyboardInterrupt" and not stats.complete and not reader.complete
    assert 200_000 < stats.total_events == reader.footer["total_events"] < 300_000
    assert reader.damage is not None and reader.damage.reason == "recording aborted (KeyboardInterrupt)"
    assert reader.warnings == [f"{interrupted}: the recording was aborted (KeyboardInterrupt): the trace holds "
                               f"what it recorded until then, {stats.total_events} events"]


def test_a_finished_recording_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "done.mtrace"
    record_run(resolve_scenario("private-anon-mapping"), path, sysctl_overrides={}, seed=0,
               memtrace_version="0.1.0")
    reader = TraceReader(path)
    stats = reader.scan()
    assert stats.complete and reader.complete and stats.aborted is None and "aborted" not in (reader.footer or {})


def test_summaries_and_commands_see_it_incomplete(interrupted: Path) -> None:
    """The replay summary and diff's verdict name the damage, stat warns, and the
    JSON of stat and diff says it is not complete."""
    summary = summarize_trace(interrupted)
    assert summary.damage is not None and summary.damage.reason.startswith("recording aborted")
    assert summary.complete is False
    run = run_cli("stat", str(interrupted))
    assert_clean(run)
    assert "recording aborted (KeyboardInterrupt)" in run.stderr
    run = run_cli("stat", "--json", str(interrupted))
    assert_clean(run)
    assert json.loads(run.stdout)["complete"] is False
    run = run_cli("diff", "--json", str(interrupted), str(interrupted))
    assert_clean(run)
    assert json.loads(run.stdout)["complete"] == {"a": False, "b": False}
    for argv in (("report", "--no-what-if"), ("ps",), ("dmesg",)):
        run = run_cli(argv[0], str(interrupted), *argv[1:])
        assert_clean(run)
        assert "the recording was aborted (KeyboardInterrupt)" in run.stderr, argv


def test_any_exception_marks_the_recording_aborted(tmp_path: Path) -> None:
    """SystemExit (what a SIGTERM handler raises) and a bug alike: the file that was
    being written says why it stopped."""
    path = tmp_path / "x.mtrace"
    with pytest.raises(SystemExit):
        record_run(resolve_scenario("private-anon-mapping"), path, sysctl_overrides={}, seed=0,
                   memtrace_version="0.1.0", consumers=[Interrupt(1000, SystemExit)])
    assert TraceReader(path).scan().aborted == "SystemExit"
