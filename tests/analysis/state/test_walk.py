"""Folding a trace up to a moment: fold_at by label, by time, and by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.analysis.state import fold_at, fold_trace
from memtrace.errors import NotFoundError
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"
P = 4096


def test_fold_at_time_stops_at_the_last_reading_before_it() -> None:
    """--at TIME means the last /proc/meminfo reading at or before TIME; the state is
    that reading's, not later."""
    path = SAMPLES / "oom-leak.mtrace"
    folder, reading, warnings = fold_at(TraceReader(path), 2_000_000_000)
    assert reading is not None and reading.ts_ns <= 2_000_000_000
    later = [r for r in fold_trace(TraceReader(path)).history.readings if r.ts_ns > reading.ts_ns]
    assert later and later[0].ts_ns > 2_000_000_000
    assert folder.state().page_counts()["anon"] == reading.meminfo["AnonPages"] // P
    assert warnings == []


def test_fold_at_unknown_label_names_the_labels() -> None:
    with pytest.raises(NotFoundError, match="after-write"):
        fold_at(TraceReader(SAMPLES / "private-file-mapping.mtrace"), "nosuch")


def test_default_is_the_last_reading() -> None:
    path = SAMPLES / "fork-cow.mtrace"
    _, reading, _ = fold_at(TraceReader(path))
    assert reading is not None
    assert reading.ts_ns == max(r.ts_ns for r in fold_trace(TraceReader(path)).history.readings)
