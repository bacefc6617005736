"""The flusher: dirty data older than dirty_expire_centisecs is written back at the
next dirty_writeback_centisecs wake-up; dirty data above the background threshold
is written back at once (kernel-mm-facts.md §5.10)."""

from __future__ import annotations

from memtrace.kernel.page_writeback import dirty_thresholds
from memtrace.kernel.workload import FileWrite, Sleep, Snapshot

from ..conftest import GiB, MiB, run_steps


def test_expired_dirty_data_is_written_back_periodically() -> None:
    """Written at t~0; expires at 30 s; the flusher wakes every 5 s, so by 36 s the
    pages are clean, and at 20 s they are still dirty."""
    _, result, c = run_steps(FileWrite(path="/data/f", length_bytes=64 * MiB), Sleep(duration_ns=20 * 10**9),
                             Snapshot(label="20s"), Sleep(duration_ns=16 * 10**9), Snapshot(label="36s"))
    dirty = {s.label: s.meminfo["Dirty"] for s in result.snapshots}
    assert dirty == {"20s": 64 * MiB, "36s": 0}
    [wb] = c.records("writeback")
    assert (wb["reason"], wb["nr_pages"]) == ("periodic", 64 * MiB // 4096)
    assert 30 * 10**9 <= wb["ts_ns"] <= 36 * 10**9


def test_dirty_data_over_the_background_threshold_is_written_back() -> None:
    """On 1 GiB of RAM the background threshold is 10% of dirtyable memory (~90 MiB):
    writing 256 MiB kicks the flusher long before anything expires."""
    k, result, c = run_steps(FileWrite(path="/data/big", length_bytes=256 * MiB), Sleep(duration_ns=10**9),
                             Snapshot(label="after"), ram_bytes=GiB)
    bg, thresh = dirty_thresholds(k)
    assert bg < 256 * MiB // 4096 < 4 * bg and bg < thresh
    reasons = {r["reason"] for r in c.records("writeback")}
    assert reasons == {"background"}
    assert result.snapshots[0].meminfo["Dirty"] <= bg * 4096


def test_dirty_writeback_centisecs_zero_disables_periodic_writeback() -> None:
    _, result, c = run_steps(FileWrite(path="/data/f", length_bytes=16 * MiB), Sleep(duration_ns=40 * 10**9),
                             Snapshot(label="40s"), sysctls={"vm.dirty_writeback_centisecs": 0})
    assert result.snapshots[0].meminfo["Dirty"] == 16 * MiB
    assert c.count("writeback") == 0
