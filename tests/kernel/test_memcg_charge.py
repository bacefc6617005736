"""try_charge_memcg() as 6.18 charges and counts (mm/memcontrol.c, mm/page_counter.c):
the per-CPU stock and MEMCG_CHARGE_BATCH, memsw charged first on cgroup v1, and
failcnt per failed page_counter_try_charge() of a tracked counter."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace.kernel.memcontrol import MEMCG_CHARGE_BATCH, MemcgTree
from memtrace.kernel.workload import CgroupSpec, MachineSpec, Mmap, ProcessSpec, Scenario, Touch

from ..conftest import GiB, MiB, run


def _leak(version: int, kernel: str, swap_max: int) -> tuple[Any, Any, Any]:
    """A process writing 48 MiB in a 32 MiB memcg: one OOM kill."""
    sc = Scenario(name="t", machine=MachineSpec(ram_bytes=GiB, cgroup_version=version, kernel_version=kernel),
                  cgroups=(CgroupSpec("/g", 32 * MiB, swap_max_bytes=swap_max),),
                  processes=(ProcessSpec("leak", cgroup="/g", steps=(
                      Mmap(handle="b", length_bytes=48 * MiB), Touch(handle="b", write=True))),))
    return run(sc)


def test_v1_memsw_equal_to_the_limit_leaves_memory_failcnt_at_zero() -> None:
    """memsw is charged first and fails first; memory.failcnt is not touched, as
    on the real kernel (experiment F, and the memcg-oom report: failcnt 0)."""
    k, result, c = _leak(1, "6.18", swap_max=0)
    assert len(result.oom_kills) == 1
    memcg = k.memcgs.by_path["/g"]
    assert (memcg.failcnt, memcg.memsw_failcnt) == (0, 0)
    [stat] = c.records("memcg_stat")
    assert stat["failcnt"] == 0


def test_v1_without_memsw_limit_counts_memory_failures() -> None:
    """With no memsw limit the memory counter fails: its failcnt counts every
    failed attempt, 2 for the first page over the limit, 1 per retry (drained stock
    and MAX_RECLAIM_RETRIES), the victim's own 17 after its kill, plus up to 63
    batch failures on the way to the limit."""
    k, _, c = _leak(1, "6.18", swap_max=-1)
    failcnt = k.memcgs.by_path["/g"].failcnt
    assert 36 <= failcnt <= 36 + 63
    [stat] = c.records("memcg_stat")
    assert 19 <= stat["failcnt"] <= 19 + 63  # printed at the OOM, before the victim's own retries


def test_v2_reports_print_memory_events_max_since_6_15() -> None:
    """6.15+ tracks failcnt only on v1; a v2 OOM report prints memory.events max
    (one per charge round over the limit: 18 before the kill). On 6.13 the memory
    counter still counted, and the report printed it."""
    k18, _, c18 = _leak(2, "6.18", swap_max=-1)
    _k13, _, c13 = _leak(2, "6.13", swap_max=-1)
    assert k18.memcgs.by_path["/g"].failcnt == 0
    assert c18.records("memcg_stat")[0]["failcnt"] == 18
    assert c13.records("memcg_stat")[0]["failcnt"] >= 19


def test_the_stock_runs_usage_at_most_a_batch_ahead() -> None:
    """A first charge of one page takes MEMCG_CHARGE_BATCH from the counter and
    stocks the rest; the next 63 pages cost the counter nothing; a batch that does
    not fit fails (one failcnt on v1) and the page alone is charged."""
    tree = MemcgTree(cgroup_version=1, kernel_version="6.18")
    g = tree.mkdir("/g", max_pages=100)
    assert tree.try_charge_pages(g, 1) is None
    assert (g.usage_pages, tree.stock[g.id]) == (MEMCG_CHARGE_BATCH, MEMCG_CHARGE_BATCH - 1)
    assert tree.try_charge_pages(g, 63) is None
    assert g.usage_pages == MEMCG_CHARGE_BATCH and tree.stock[g.id] == 0
    assert tree.try_charge_pages(g, 1) is None  # room 36 < 64: batch fails, the page is charged alone
    assert (g.usage_pages, g.failcnt) == (65, 1)
    # 36 pages with room for 35: nothing is charged; the page that does not fit
    # fails its batch and itself (the 35 before it count when the request is
    # charged whole, after reclaim).
    failure = tree.try_charge_pages(g, 36)
    assert failure is not None and failure.memcg is g and not failure.memsw
    assert g.usage_pages == 65 and g.failcnt == 1 + 2


@pytest.mark.parametrize(("memsw_pages", "memsw_failed"), [(100, True), (10**6, False)])
def test_memsw_is_tried_before_memory(memsw_pages: int, memsw_failed: bool) -> None:
    tree = MemcgTree(cgroup_version=1, kernel_version="6.18")
    g = tree.mkdir("/g", max_pages=100, swap_max_pages=memsw_pages - 100)
    tree.commit_charge(g, 100)
    failure = tree.try_charge_pages(g, 1)
    assert failure is not None and failure.memsw == memsw_failed
