"""Committed_AS and the overcommit policy (kernel-mm-facts.md §4)."""

from __future__ import annotations

import pytest

from memtrace.kernel.workload import Brk, FileSpec, Mmap, Snapshot, Touch

from ..conftest import GiB, MiB, run_steps


def _committed(result, label):
    return next(s.meminfo["Committed_AS"] for s in result.snapshots if s.label == label)


@pytest.mark.parametrize(
    "mmap,charged_mib",
    [
        (Mmap(handle="m", length_bytes=64 * MiB, prot="rw"), 64),  # private writable anon
        (Mmap(handle="m", length_bytes=64 * MiB, prot="r"), 0),  # read-only private
        (Mmap(handle="m", length_bytes=64 * MiB, prot="rw", noreserve=True), 0),  # MAP_NORESERVE
        (Mmap(handle="m", length_bytes=64 * MiB, prot="rw", shared=True), 64),  # shared anon (shmem)
        (Mmap(handle="m", length_bytes=64 * MiB, prot="rw", path="/f"), 64),  # private writable file
        (Mmap(handle="m", length_bytes=64 * MiB, prot="rw", shared=True, path="/f"), 0),  # shared file
    ],
)
def test_what_mmap_charges(mmap, charged_mib) -> None:
    """accountable_mapping(): private writable mappings are charged in full; shared
    anonymous memory through its shmem object; nothing else."""
    _, result, _ = run_steps(Snapshot(label="a"), mmap, Snapshot(label="b"), files=(FileSpec("/f", 64 * MiB),))
    assert _committed(result, "b") - _committed(result, "a") == charged_mib * MiB


def test_noreserve_is_ignored_in_strict_mode() -> None:
    _, result, _ = run_steps(Snapshot(label="a"), Mmap(handle="m", length_bytes=64 * MiB, noreserve=True),
                             Snapshot(label="b"), sysctls={"vm.overcommit_memory": 2})
    assert _committed(result, "b") - _committed(result, "a") == 64 * MiB


def test_commit_limit_formula() -> None:
    """CommitLimit = totalram * overcommit_ratio / 100 + swap (no hugetlb)."""
    k, result, _ = run_steps(Snapshot(label="a"), sysctls={"vm.overcommit_ratio": 80})
    assert result.snapshots[0].meminfo["CommitLimit"] == k.alloc.totalram_pages * 80 // 100 * 4096
    k, result, _ = run_steps(Snapshot(label="a"), sysctls={"vm.overcommit_kbytes": 100 * 1024})
    assert result.snapshots[0].meminfo["CommitLimit"] == 100 * MiB


def test_strict_mode_refuses_an_mmap_over_the_limit() -> None:
    """Mode 2: Committed_AS (with the request) must stay below CommitLimit less the
    reserves; the refused mmap is ENOMEM and charges nothing."""
    steps = (Snapshot(label="a"), Mmap(handle="big", length_bytes=900 * MiB, on_enomem="continue"),
             Snapshot(label="b"))
    _, result, c = run_steps(*steps, sysctls={"vm.overcommit_memory": 2})
    assert [(e.op, e.errno) for e in result.errors] == [("mmap", "ENOMEM")]
    assert _committed(result, "b") == _committed(result, "a")
    assert c.records("mmap")[0]["ret"] == -12
    # The same request passes in the default heuristic mode.
    _, result, _ = run_steps(*steps)
    assert result.errors == []


def test_mode_0_refuses_only_a_request_larger_than_ram_plus_swap() -> None:
    _, result, _ = run_steps(Mmap(handle="huge", length_bytes=2 * GiB, on_enomem="continue"),
                             Mmap(handle="ok", length_bytes=900 * MiB))
    assert [(e.op, e.errno) for e in result.errors] == [("mmap", "ENOMEM")]


def test_brk_charges_and_a_refused_brk_keeps_the_old_break() -> None:
    _, result, c = run_steps(Snapshot(label="a"), Brk(increment_bytes=8 * MiB), Touch(handle="heap", write=True),
                             Snapshot(label="b"), Brk(increment_bytes=4 * GiB, on_enomem="continue"),
                             Snapshot(label="c"), sysctls={"vm.overcommit_memory": 2})
    assert _committed(result, "b") - _committed(result, "a") == 8 * MiB
    assert _committed(result, "c") == _committed(result, "b")
    grow, refused = c.records("brk")
    assert grow["ret"] == grow["brk"] == grow["old_brk"] + 8 * MiB
    assert refused["ret"] == refused["old_brk"] == grow["ret"]
    assert [(e.op, e.errno) for e in result.errors] == [("brk", "ENOMEM")]
