"""The text of a diff: the verdict and the table, spelt by memtrace.units.

Expected lines are typed out from the hand-made traces of :mod:`.test_diff`: their
times (1.2 s), sizes (300 MiB of anon) and counts are set by the traces themselves.
"""

from __future__ import annotations

from pathlib import Path

from memtrace.replay import diff_traces, render_diff
from memtrace.tracer import Bus, Registry

from .helpers import MiB, emit, meminfo, write_trace
from .test_diff import REFUSED_FOOTER, pressure_run, refused_run


def test_the_table_in_whole_mib_and_times_in_seconds(tmp_path: Path) -> None:
    a = write_trace(tmp_path / "a.mtrace", pressure_run, extra={"errors": [], "oom_kills": []})
    b = write_trace(tmp_path / "b.mtrace", refused_run, extra=REFUSED_FOOTER)
    text = render_diff(diff_traces(a, b), "A", "B")
    lines = text.splitlines()
    assert all(len(line) < 80 for line in lines)
    assert lines[3].startswith("    ")  # the verdict wraps under 80 columns
    assert f"{lines[2]} {lines[3].strip()}" == ("verdict: OOM kill of leaker (pid 103) avoided: its mmap was "
                                               "refused with ENOMEM at 1.200 s")
    rows = {line[:26].strip(): line[26:].split() for line in lines if line[:26].strip().endswith("MiB")}
    # A's peaks over its two readings: anon max(300, 100) MiB, file (Cached less Shmem)
    # max(200 - 50, 250 - 10) MiB, swap max(8, 2) MiB; B's one reading: 1 MiB of anon.
    assert rows["anon peak MiB"] == ["300", "1", "-299"]
    assert rows["file peak MiB"] == ["240", "0", "-240"]
    assert rows["swap peak MiB"] == ["8", "0", "-8"]
    assert "OOM kill A: leaker (pid 103), 800 points, at 1.200 s" in lines
    assert "ENOMEM B: leaker (pid 103) mmap step 3 at 1.200 s" in lines


def _memcg_kill(bus: Bus, reg: Registry) -> None:
    emit(bus, reg, "process_start", 0, 7, comm="worker", uid=0, oom_score_adj=0)
    emit(bus, reg, "oom_kill", 250_000_000, 7, oom_id=1, victim_pid=7, comm="worker", points=10,
         constraint="CONSTRAINT_MEMCG", memcg="/c")
    emit(bus, reg, "snapshot", 300_000_000, 7, label="end", **meminfo(anon=MiB))


def _no_kill(bus: Bus, reg: Registry) -> None:
    emit(bus, reg, "process_start", 0, 7, comm="worker", uid=0, oom_score_adj=0)
    emit(bus, reg, "snapshot", 300_000_000, 7, label="end", **meminfo(anon=MiB))


def test_a_raised_limit_and_sizes_are_format_size(tmp_path: Path) -> None:
    def meta(limit: int) -> dict[str, object]:
        return {"scenario": "s", "machine": {"ram_bytes": 24 << 30},
                "workload": {"cgroup": [{"path": "/c", "max": limit}]}}

    a = write_trace(tmp_path / "a.mtrace", _memcg_kill, meta=meta(96 * MiB))
    b = write_trace(tmp_path / "b.mtrace", _no_kill, meta=meta(192 * MiB))
    d = diff_traces(a, b)
    assert d.changes["cgroup./c.max"] == (96 * MiB, 192 * MiB)
    assert d.verdict == "OOM kill of worker (pid 7) avoided: the /c limit is 192 MiB instead of 96 MiB"
    assert "changed: cgroup./c.max 96 MiB -> 192 MiB" in render_diff(d)
