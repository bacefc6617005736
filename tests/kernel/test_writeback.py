"""The flusher: dirty data older than dirty_expire_centisecs is written back at the
next dirty_writeback_centisecs wake-up; dirty data above the background threshold
is written back at once (kernel-mm-facts.md §5.10)."""

from __future__ import annotations

import pytest

from memtrace.kernel.kernel import Kernel
from memtrace.kernel.page_writeback import dirty_thresholds
from memtrace.kernel.runner import RunResult
from memtrace.kernel.workload import (
    CgroupSpec,
    FileWrite,
    MachineSpec,
    ProcessSpec,
    Scenario,
    Sleep,
    Snapshot,
    Step,
    Sync,
)
from memtrace.tracer import Collector

from ..conftest import GiB, MiB, run, run_steps


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


# ---------------------------------------------------------------------- the disk


def _on(machine: MachineSpec, *steps: Step, cgroups: tuple[CgroupSpec, ...] = (), cgroup: str = "/") \
        -> tuple[Kernel, RunResult, Collector]:
    return run(Scenario(name="t", machine=machine, cgroups=cgroups,
                        processes=(ProcessSpec("t", cgroup=cgroup, steps=steps),)))


def test_sync_waits_for_the_disk_at_its_write_rate() -> None:
    """10 MiB written back at disk_write_rate = 100 MiB/s: sync returns 0.1 s later,
    with nothing dirty or under writeback left."""
    _, result, c = _on(MachineSpec(ram_bytes=GiB, disk_write_bytes_per_s=100 * MiB),
                       FileWrite(path="/data/f", length_bytes=10 * MiB), Snapshot(label="written"), Sync(),
                       Snapshot(label="synced"))
    written, synced = result.snapshots
    assert synced.ts_ns - written.ts_ns == pytest.approx(0.1e9, rel=0.01)
    assert (synced.meminfo["Dirty"], synced.meminfo["Writeback"]) == (0, 0)
    [wb] = c.records("writeback")
    assert (wb["reason"], wb["nr_pages"]) == ("sync", 2560)


def test_pages_stay_under_writeback_until_the_disk_has_written_them() -> None:
    """Background writeback of 200 MiB on a 1 GiB machine with a 100 MiB/s disk:
    just after the flusher submits it, the pages are under writeback (Writeback
    in /proc/meminfo); two seconds later they are written and clean, and what is
    still dirty is below the background threshold (it waits for its expiry)."""
    k, result, c = _on(MachineSpec(ram_bytes=GiB, disk_write_bytes_per_s=100 * MiB),
                       FileWrite(path="/data/f", length_bytes=200 * MiB), Sleep(duration_ns=1_000_000),
                       Snapshot(label="soon"), Sleep(duration_ns=2 * 10**9), Snapshot(label="later"))
    soon, later = result.snapshots
    assert soon.meminfo["Writeback"] > 50 * MiB
    assert later.meminfo["Writeback"] == 0
    assert 0 < later.meminfo["Dirty"] <= dirty_thresholds(k)[0] * 4096
    assert {r["reason"] for r in c.records("writeback")} == {"background"}


def test_balance_dirty_pages_throttles_a_writer_to_the_disk() -> None:
    """1 GiB written on a 1 GiB machine with a 200 MiB/s disk: past the freerun
    ceiling the writer pauses (balance_dirty_pages), so dirty and writeback pages
    never pass the global dirty threshold by more than a chunk, and writing takes
    about as long as the disk needs for what it cannot cache."""
    _k, result, c = _on(MachineSpec(ram_bytes=GiB, disk_write_bytes_per_s=200 * MiB),
                       FileWrite(path="/data/f", length_bytes=GiB), Snapshot(label="written"))
    pauses = c.records("balance_dirty_pages")
    assert pauses and all(0 < p["pause_ns"] <= 200_000_000 for p in pauses)
    assert all(p["memcg"] == "" for p in pauses)
    over = [p["dirty_pages"] - p["limit_pages"] for p in pauses]
    assert max(over) <= 256
    assert result.oom_kills == []
    assert result.snapshots[0].ts_ns > 3 * 10**9  # most of 1 GiB went through the disk at 200 MiB/s


def test_dirty_pages_met_by_reclaim_are_freed_once_written() -> None:
    """A v1 memcg of 32 MiB filled with dirty page cache: reclaim marks the pages,
    wakes the flusher (writeback reason "reclaim") and waits for writeback
    (reclaim_throttled, reason writeback, at most HZ/10), then frees them: no OOM."""
    _, result, c = _on(MachineSpec(ram_bytes=GiB, cgroup_version=1, kernel_version="6.18"),
                       FileWrite(path="/data/f", length_bytes=128 * MiB),
                       cgroups=(CgroupSpec("/g", 32 * MiB, swap_max_bytes=0),), cgroup="/g")
    assert result.oom_kills == []
    assert "reclaim" in {r["reason"] for r in c.records("writeback")}
    throttles = c.records("reclaim_throttled")
    assert throttles and {t["reason"] for t in throttles} == {"writeback"}
    assert all(t["timeout_us"] == 100_000 and 0 <= t["delayed_us"] <= 100_000 for t in throttles)
    assert all(t["memcg"] == "/g" for t in throttles)
