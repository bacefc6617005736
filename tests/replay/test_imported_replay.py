"""Replaying a trace imported from a real kernel: the diff compares inputs and times
only where they are comparable."""

from __future__ import annotations

from pathlib import Path

from memtrace.analysis.importers import import_trace
from memtrace.replay import Overrides, diff_traces, input_changes, replay_trace
from memtrace.tracer.tracefile import TraceReader

REAL = Path(__file__).parents[1] / "data" / "real"


def test_replay_of_an_imported_trace_reports_only_the_change(tmp_path: Path) -> None:
    imported = tmp_path / "real.mtrace"
    import_trace(REAL / "memcg-v1-two-kills.perf-script.txt.gz", imported,
                 dmesg=REAL / "memcg-v1-two-kills.dmesg.txt.gz")
    result = replay_trace(imported, tmp_path / "replay.mtrace", Overrides.parse(["vm.swappiness=10"], []))
    meta_a, meta_b = TraceReader(imported).meta, TraceReader(result.trace).meta
    # The replay is simulated: the import's provenance is kept, not claimed.
    assert "source" in meta_a and "source" not in meta_b and meta_b["derived_from"] == meta_a["source"]
    # The import records no sysctl table: only the explicit change is a change.
    assert list(input_changes(meta_a, meta_b)) == ["vm.swappiness"]
    diff = diff_traces(imported, result.trace)
    # Real uptime and simulated time are not compared.
    assert "instead of" not in diff.verdict
