"""Finding tracefs, its errors, and which leftover instances are stale (on a fake tracefs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memtrace.analysis.importers.live import tracefs
from memtrace.analysis.importers.live.tracefs import Instance, find_tracefs, remove_stale, stale_instances
from memtrace.errors import CaptureError


def _fake_root(tmp_path: Path, *names: str) -> str:
    (tmp_path / "instances").mkdir(exist_ok=True)
    for name in names:
        (tmp_path / "instances" / name).mkdir()
    return str(tmp_path)


def test_no_tracefs_is_one_line_saying_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as e:
        find_tracefs((str(tmp_path / "none"), str(tmp_path / "nowhere")))
    msg = str(e.value)
    assert "\n" not in msg
    assert "root" in msg and "CAP_PERFMON" in msg and "/sys/kernel/tracing" in msg


def test_tracefs_is_the_mount_with_instances(tmp_path: Path) -> None:
    (tmp_path / "b" / "instances").mkdir(parents=True)
    assert find_tracefs((str(tmp_path / "a"), str(tmp_path / "b"))) == str(tmp_path / "b")


def test_an_instance_is_stale_when_its_pid_is_gone_or_was_reused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_root(tmp_path, "memtrace-10", "memtrace-11", "memtrace-12", "memtrace-other", "perf-stuff")
    made = os.stat(tmp_path / "instances" / "memtrace-10").st_ctime
    starts = {10: None, 11: made + 5.0, 12: made - 5.0}
    monkeypatch.setattr(tracefs, "_start_realtime_s", lambda pid, boot_s: starts.get(pid))
    assert stale_instances(root) == [
        ("memtrace-10", "pid 10 is gone"),
        ("memtrace-11", "pid 11 was reused by a process started after the instance"),
    ]
    assert remove_stale(root) == ["memtrace-10", "memtrace-11"]
    assert sorted(os.listdir(tmp_path / "instances")) == ["memtrace-12", "memtrace-other", "perf-stuff"]


def test_a_running_recorders_instance_is_not_stale(tmp_path: Path) -> None:
    """This process started before the instance named after it: a capture of its own."""
    root = _fake_root(tmp_path, f"memtrace-{os.getpid()}")
    assert stale_instances(root) == []


def test_removing_an_instance_that_is_gone_is_no_error(tmp_path: Path) -> None:
    inst = Instance(_fake_root(tmp_path), "memtrace-1")
    inst.remove()
    (tmp_path / "instances" / "memtrace-1").mkdir()
    inst.remove()
    assert not inst.exists()
