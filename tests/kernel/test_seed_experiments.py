"""The built-in seed scenarios show what a real kernel shows.

Expected deltas are the rows of ../shared/reference/seed-real-kernel.md (Linux 6.18,
1 GiB each, MiB per step). The simulator is exact where the real kernel is noisy, so
the data columns are compared to the byte. The real table's ``free`` column hides,
under its noise, the page tables and kernel stacks the kernel allocates; here they
are accounted exactly: free + PageTables + KernelStack moves by the table's figure.
"""

from __future__ import annotations

import numpy as np
import pytest

from memtrace.kernel.workload import resolve_scenario
from memtrace.tracer.tracepoints import PAGE_CACHE_DELETE

from ..conftest import MiB, run

# (from label, to label): buff/cache, shared (Shmem), AnonPages, Mapped, Committed_AS, free
SEED_TABLE: dict[str, list[tuple[str, str, tuple[int, int, int, int, int, int]]]] = {
    "shared-file-mapping": [
        ("before", "after-read", (1024, 0, 0, 1024, 0, -1024)),
    ],
    "private-file-mapping": [
        ("before", "after-read", (1024, 0, 0, 1024, 1024, -1024)),
        ("after-read", "after-write", (0, 0, 1024, -1024, 0, -1024)),
        ("after-write", "after-unmap", (0, 0, -1024, 0, -1024, 1024)),
    ],
    "private-anon-mapping": [
        ("before", "after-mmap", (0, 0, 0, 0, 1024, 0)),
        ("after-mmap", "after-write", (0, 0, 1024, 0, 0, -1024)),
        ("after-write", "after-unmap", (0, 0, -1024, 0, -1024, 1024)),
    ],
    "shared-anon-mapping": [
        ("before", "after-child-write", (1024, 1024, 0, 1024, 1024, -1024)),
        ("after-child-write", "after-exit", (-1024, -1024, 0, -1024, -1024, 1024)),
    ],
    "tmpfs-file": [
        ("before", "after-write", (1024, 1024, 0, 0, 1024, -1024)),
        ("after-write", "after-drop-caches", (0, 0, 0, 0, 0, 0)),
        ("after-drop-caches", "after-unlink", (-1024, -1024, 0, 0, -1024, 1024)),
    ],
    "page-cache-read": [
        ("before", "after-read", (1024, 0, 0, 0, 0, -1024)),
        ("after-read", "after-drop-caches", (-1024, 0, 0, 0, 0, 1024)),
    ],
    "mapped-file-drop-caches": [
        ("before-drop", "after-drop", (0, 0, 0, 0, 0, 0)),
    ],
    # The table gives the middle row; the first and last follow from it and from the
    # read()/sync/drop_caches rows (write fills the cache like read; clean pages drop).
    "dirty-page-cache": [
        ("before", "after-write", (1024, 0, 0, 0, 0, -1024)),
        ("after-write", "after-drop-caches", (0, 0, 0, 0, 0, 0)),
        ("after-drop-caches", "after-sync-drop-caches", (-1024, 0, 0, 0, 0, 1024)),
    ],
    "posix-shm": [
        ("before", "after-create", (0, 0, 0, 0, 0, 0)),
        ("after-create", "after-write", (1024, 1024, 0, 1024, 1024, -1024)),
        ("after-write", "after-drop-caches", (0, 0, 0, 0, 0, 0)),
        ("after-drop-caches", "after-unmap", (0, 0, 0, -1024, 0, 0)),
        ("after-unmap", "after-remove", (-1024, -1024, 0, 0, -1024, 1024)),
    ],
    "sysv-shm": [
        ("before", "after-create", (0, 0, 0, 0, 1024, 0)),
        ("after-create", "after-write", (1024, 1024, 0, 1024, 0, -1024)),
        ("after-write", "after-drop-caches", (0, 0, 0, 0, 0, 0)),
        ("after-drop-caches", "after-unmap", (0, 0, 0, -1024, 0, 0)),
        ("after-unmap", "after-remove", (-1024, -1024, 0, 0, -1024, 1024)),
    ],
}


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple]:
    return {name: run(resolve_scenario(name)) for name in SEED_TABLE}


def _snap(result, label):
    matches = [s for s in result.snapshots if s.label == label]
    assert len(matches) == 1, f"snapshot {label!r}"
    return matches[0]


def test_the_ten_seed_scenarios_are_built_in() -> None:
    from memtrace.kernel.workload import builtin_names

    assert set(SEED_TABLE) <= set(builtin_names())
    assert len(SEED_TABLE) == 10


@pytest.mark.parametrize(
    "scenario,before,after,expected",
    [(n, a, b, e) for n, rows in SEED_TABLE.items() for a, b, e in rows],
)
def test_snapshot_deltas_match_the_real_kernel(runs, scenario, before, after, expected) -> None:
    """Each step moves buff/cache, Shmem, AnonPages, Mapped and Committed_AS by
    exactly the real kernel's figure, and free by it once the kernel's own page
    tables and stacks are counted."""
    _, result, _ = runs[scenario]
    assert result.errors == []
    a, b = _snap(result, before), _snap(result, after)
    bc, shared, anon, mapped, committed, free = expected

    def d(key: str) -> int:
        return b.meminfo[key] - a.meminfo[key]

    assert b.free.buff_cache - a.free.buff_cache == bc * MiB
    assert b.free.shared - a.free.shared == shared * MiB
    assert d("AnonPages") == anon * MiB
    assert d("Mapped") == mapped * MiB
    assert d("Committed_AS") == committed * MiB
    assert d("MemFree") + d("PageTables") + d("KernelStack") == free * MiB


def test_dirty_pages_survive_drop_caches_until_sync(runs) -> None:
    _, result, _ = runs["dirty-page-cache"]
    dirty = {s.label: s.meminfo["Dirty"] for s in result.snapshots}
    assert dirty == {"before": 0, "after-write": 1024 * MiB, "after-drop-caches": 1024 * MiB,
                     "after-sync-drop-caches": 0}


def test_available_barely_moves_for_page_cache_but_fully_for_shmem(runs) -> None:
    """si_mem_available(): page cache counts as available less the low watermarks;
    shmem (tmpfs) does not count at all."""
    k, result, _ = runs["page-cache-read"]
    a, b = _snap(result, "before"), _snap(result, "after-read")
    wmark_low_bytes = sum(z.wmark_low for z in k.alloc.zones) * 4096
    assert b.free.available - a.free.available == (b.meminfo["MemFree"] - a.meminfo["MemFree"]) + 1024 * MiB - wmark_low_bytes
    assert -100 * MiB < b.free.available - a.free.available < 0
    _, result, _ = runs["tmpfs-file"]
    a, b = _snap(result, "before"), _snap(result, "after-write")
    assert b.free.available - a.free.available == b.meminfo["MemFree"] - a.meminfo["MemFree"]
    assert b.free.used - a.free.used == a.free.available - b.free.available


NR_1G = 262144


def test_event_counts_per_scenario(runs) -> None:
    """Counts derived by hand: one fault per 4 KiB page, one page-cache event per page."""
    expect = {
        "shared-file-mapping": {"page_fault": NR_1G, "cow": 0, "page_cache_add": NR_1G},
        "private-file-mapping": {"page_fault": 2 * NR_1G, "cow": NR_1G, "page_cache_add": NR_1G},
        "private-anon-mapping": {"page_fault": NR_1G, "cow": 0, "page_cache_add": 0},
        "shared-anon-mapping": {"page_fault": NR_1G, "cow": 0, "page_cache_add": NR_1G, "fork": 1},
        "tmpfs-file": {"page_fault": 0, "page_cache_add": NR_1G, "page_cache_delete": NR_1G},
        "page-cache-read": {"page_fault": 0, "page_cache_add": NR_1G, "page_cache_delete": NR_1G},
        "posix-shm": {"page_fault": NR_1G, "page_cache_add": NR_1G, "page_cache_delete": NR_1G},
        "sysv-shm": {"page_fault": NR_1G, "page_cache_add": NR_1G, "page_cache_delete": NR_1G},
    }
    for name, counts in expect.items():
        _, _, c = runs[name]
        for tp_name, n in counts.items():
            assert c.count(tp_name) == n, (name, tp_name)


def test_major_faults_only_where_io_happens(runs) -> None:
    """A cold shared file mapping faults every page in from disk (major); private
    anonymous and shmem faults never do I/O (minor)."""
    for name, want_major in (("shared-file-mapping", NR_1G), ("private-anon-mapping", 0), ("sysv-shm", 0)):
        _, _, c = runs[name]
        major = sum(int(np.count_nonzero(b["major"])) for b in c.of("page_fault"))
        assert major == want_major, name


def test_page_cache_leaves_for_the_right_reason(runs) -> None:
    code = {v: i for i, v in enumerate(PAGE_CACHE_DELETE.field("reason").values)}
    for name, reason in (("page-cache-read", "drop_caches"), ("tmpfs-file", "truncate"), ("sysv-shm", "truncate")):
        _, _, c = runs[name]
        reasons = np.concatenate([b["reason"] for b in c.of("page_cache_delete")])
        assert (reasons == code[reason]).all(), name
