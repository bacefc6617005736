"""What a trace header says of where the trace came from."""

from __future__ import annotations

from memtrace.analysis.state import is_imported, source_name, untraced_fields


def test_imported_traces_are_recognised_by_their_header() -> None:
    assert not is_imported({"scenario": "x"})
    assert not is_imported({"source": "memtrace"})
    assert is_imported({"source": "perf-script"})
    assert is_imported({"imported": True})
    # the importer's header: a map with the format and what the input does not carry
    meta = {"source": {"format": "ftrace", "unknown": {"oom_kill": {"points": "not traced"}}}}
    assert is_imported(meta) and source_name(meta) == "ftrace"
    assert untraced_fields(meta, "oom_kill") == {"points": "not traced"}
    assert untraced_fields({"source": "perf-script"}, "oom_kill") == {}
