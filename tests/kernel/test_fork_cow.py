"""fork(2) with copy-on-write, counted by hand."""

from __future__ import annotations

from memtrace.kernel.workload import (
    Exit,
    Fork,
    MachineSpec,
    Mmap,
    ProcessSpec,
    Scenario,
    Snapshot,
    Touch,
    Wait,
)

from ..conftest import GiB, MiB, run


def _scenario(child_write_bytes: int) -> Scenario:
    parent = ProcessSpec("parent", steps=(
        Mmap(handle="heap", length_bytes=256 * MiB),
        Touch(handle="heap", write=True),
        Snapshot(label="before-fork"),
        Fork(child="child"),
        Wait(child="child"),
        Snapshot(label="after-child"),
        Touch(handle="heap", write=True),
        Snapshot(label="parent-wrote"),
    ))
    child = ProcessSpec("child", forked=True, steps=(
        Snapshot(label="forked"),
        Touch(handle="heap", write=True, length_bytes=child_write_bytes),
        Snapshot(label="child-wrote"),
        Exit(),
    ))
    return Scenario(name="cow", machine=MachineSpec(ram_bytes=2 * GiB), processes=(parent, child))


def test_fork_shares_pages_and_writes_copy_them() -> None:
    _k, result, c = run(_scenario(64 * MiB))
    snaps = {s.label: s.meminfo for s in result.snapshots}
    # fork copies no page: AnonPages counts pages, not mappings.
    assert snaps["forked"]["AnonPages"] == snaps["before-fork"]["AnonPages"] == 256 * MiB
    # fork re-charges the VM_ACCOUNT mapping for the child (dup_mmap).
    assert snaps["forked"]["Committed_AS"] - snaps["before-fork"]["Committed_AS"] == 256 * MiB
    # The child's writes copy 64 MiB: 16384 COW breaks.
    assert snaps["child-wrote"]["AnonPages"] - snaps["forked"]["AnonPages"] == 64 * MiB
    cows = c.records("cow")
    child_pid = result.pids["child"]
    assert sum(1 for r in cows if r["pid"] == child_pid) == 16384
    # The child exits: its copies go, and the parent's pages are its own again.
    assert snaps["after-child"]["AnonPages"] == 256 * MiB
    # The parent's next writes take write-protect faults that reuse the pages
    # (wp_page_reuse): no copy, no new memory.
    parent_cows = [r for r in cows if r["pid"] == result.pids["parent"]]
    assert parent_cows == []
    assert snaps["parent-wrote"]["AnonPages"] == 256 * MiB
    parent_faults = [r for r in c.records("page_fault") if r["pid"] == result.pids["parent"]]
    assert len(parent_faults) == 2 * 65536  # first touch, then one write-protect fault a page


def test_rss_counters_follow_sharing() -> None:
    """Both processes count shared pages in their RSS (MM_ANONPAGES)."""
    _k, result, c = run(_scenario(64 * MiB))
    child = result.pids["child"]
    # The child's anon RSS after its writes: 256 MiB mapped (192 shared + 64 copied),
    # then 0 at exit.
    child_sizes = [r["size_bytes"] for r in c.records("rss_stat")
                   if r["mm_pid"] == child and r["member"] == "MM_ANONPAGES"]
    assert 256 * MiB in child_sizes and child_sizes[-1] == 0
    parent_sizes = [r["size_bytes"] for r in c.records("rss_stat")
                    if r["mm_pid"] == result.pids["parent"] and r["member"] == "MM_ANONPAGES"]
    assert parent_sizes[-2:] == [256 * MiB, 0]  # unchanged by the child, then its own exit
