"""The importer's dispatcher: handlers registered by real tracepoint, bad lines counted, bugs raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.analysis.importers import import_trace
from memtrace.analysis.importers.builder import TraceBuilder
from memtrace.analysis.importers.mapping import Sched
from memtrace.analysis.importers.mapping.fields import UnreadableLine, c_int, in_range

from .test_import_ftrace import ftrace_line, perf_line


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_handler_is_registered_by_its_real_name_bare_and_with_its_system(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.mtrace", source_format="perf-script", source_path="x")
    try:
        for mapper in (b.syscalls, b.exceptions, b.kmem, b.filemap, b.vmscan, b.oom, b.sched, b.pagemap):
            for name in [*mapper.handlers(), *mapper.SUMMARISED]:
                assert name in b.handlers and f"{mapper.SYSTEM}:{name}" in b.handlers, name
        assert b.handlers["kmem:rss_stat"] == b.handlers["rss_stat"]
        assert "vmscan:rss_stat" not in b.handlers  # a system that is not the event's own...
    finally:
        b.abort()


def test_an_event_under_another_system_still_maps(tmp_path: Path) -> None:
    """... is still read by its name (perf names the system; the name decides)."""
    src = _write(tmp_path / "in.txt", [perf_line("app", 100, 1_000_000, "vmscan:sched_process_fork",
                                                 "comm=app pid=100 child_comm=app child_pid=101")])
    result = import_trace(src, tmp_path / "out.mtrace", format="perf-script")
    assert result.unknown_lines == 0 and result.events["fork"] == 1


@pytest.mark.parametrize("fmt", ["perf-script", "ftrace"])
def test_a_damaged_line_of_a_known_event_is_counted_as_unreadable(tmp_path: Path, fmt: str) -> None:
    make = perf_line if fmt == "perf-script" else ftrace_line
    src = _write(tmp_path / "in.txt", [
        make("app", 100, 1_000_000, "sched:sched_process_fork", "comm=app pid=100 child_comm=app"),  # no child_pid
        make("app", 100, 1_000_001, "oom:mark_victim", "pid=99999999999"),  # no pid_t
        make("app", 100, 1_000_002, "kmem:rss_stat", "mm_id=1 curr=1"),  # cut short
        make("app", 100, 1_000_003, "sched:sched_process_fork", "comm=app pid=100 child_comm=app child_pid=101"),
    ])
    result = import_trace(src, tmp_path / "out.mtrace", format=fmt)
    unreadable = {k: v for k, v in result.unknown_events.items() if k.endswith("(unreadable)")}
    assert sorted(unreadable) == ["kmem:rss_stat (unreadable)", "oom:mark_victim (unreadable)",
                                  "sched:sched_process_fork (unreadable)"] if fmt == "perf-script" else \
        sorted(unreadable) == ["mark_victim (unreadable)", "rss_stat (unreadable)",
                               "sched_process_fork (unreadable)"]
    assert result.unknown_lines == 3 and result.events["fork"] == 1


@pytest.mark.parametrize("error", [KeyError("child_pid"), IndexError("list index"), ValueError("bug"),
                                   TypeError("bug")])
def test_a_bug_in_a_handler_is_not_counted_as_a_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         error: Exception) -> None:
    """Only UnreadableLine, raised where a handler reads its text, makes a line
    unreadable: any other exception out of a handler is a bug, and the import
    fails with it (and leaves no trace behind)."""
    def broken(self: Sched, comm: str, pid: int, ts: int, payload: str) -> bool:
        raise error

    monkeypatch.setattr(Sched, "_fork", broken)
    src = _write(tmp_path / "in.txt", [perf_line("app", 100, 1_000_000, "sched:sched_process_fork",
                                                 "comm=app pid=100 child_comm=app child_pid=101")])
    with pytest.raises(type(error)):
        import_trace(src, tmp_path / "out.mtrace", format="perf-script")
    assert not (tmp_path / "out.mtrace").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.txt"]


def test_field_readers_raise_unreadable_line_only() -> None:
    with pytest.raises(UnreadableLine, match="pid 2147483648 is outside"):
        c_int("2147483648", "pid")
    with pytest.raises(UnreadableLine):
        in_range(-1, 0, 10, "order")
    assert issubclass(UnreadableLine, ValueError) and c_int("-5", "nid") == -5
