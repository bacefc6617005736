"""OOM policy sysctls, legacy oom_adj, unevictable memory and the slab shrinker."""

from __future__ import annotations

import dataclasses

import numpy as np

from memtrace.kernel import fork, mmap
from memtrace.kernel.kernel import Kernel
from memtrace.kernel.oom import children_mms, oom_task
from memtrace.kernel.vmscan import ScanControl, shrink_slab
from memtrace.kernel.workload import (
    MachineSpec,
    Mlock,
    Mmap,
    ProcessSpec,
    Repeat,
    Scenario,
    SetOomAdj,
    Shmat,
    Shmget,
    ShmLock,
    ShmUnlock,
    Sleep,
    Snapshot,
    Touch,
    resolve_scenario,
)
from memtrace.tracer import Bus, default_registry

from ..conftest import GiB, MiB, run, run_steps


def _big_and_small(big_steps: tuple = ()) -> Scenario:
    """A big idle process (1.5 GiB) and a small one that allocates until OOM."""
    big = ProcessSpec("big", steps=(*big_steps, Mmap(handle="m", length_bytes=1536 * MiB), Touch(handle="m", write=True), Sleep(duration_ns=5 * 10 ** 9)))
    small = ProcessSpec("small", start_ns=10**9, steps=(
        Repeat(count=40, steps=(Mmap(handle="s{i}", length_bytes=32 * MiB),
                                Touch(handle="s{i}", write=True))),))
    return Scenario(name="bs", machine=MachineSpec(ram_bytes=2 * GiB), processes=(big, small))


def test_default_kills_the_biggest_and_allocating_task_mode_kills_the_allocator() -> None:
    _, _, c = run(_big_and_small())
    [kill] = c.records("oom_kill")
    assert (kill["comm"], kill["message"]) == ("big", "Out of memory")
    _, result, c = run(_big_and_small(), {"vm.oom_kill_allocating_task": 1})
    [kill] = c.records("oom_kill")
    assert (kill["comm"], kill["message"]) == ("small", "Out of memory (oom_kill_allocating_task)")
    assert kill["victim_pid"] == kill["pid"] == result.pids["small"]


def test_legacy_oom_adj_converts_and_minus_17_protects() -> None:
    """oom_adj -17 is oom_score_adj -1000 (OOM_DISABLE): the big process can no
    longer be chosen; oom_adj 15 maps to 1000 (fs/proc/base.c)."""
    _, _, c = run(_big_and_small(big_steps=(SetOomAdj(value=-17),)))
    [update] = c.records("oom_score_adj_update")
    assert update["oom_score_adj"] == -1000
    [kill] = c.records("oom_kill")
    assert kill["comm"] == "small"
    big = next(r for r in c.records("oom_candidate") if r["comm"] == "big")
    assert big["points"] == -(1 << 63)  # LONG_MIN: listed, never chosen
    _, _, c = run(_big_and_small(big_steps=(SetOomAdj(value=15),)))
    assert [r["oom_score_adj"] for r in c.records("oom_score_adj_update")] == [1000]
    assert [r["comm"] for r in c.records("oom_kill")] == ["big"]


def test_panic_on_oom() -> None:
    """1 panics on a global OOM but not a memcg one; 2 panics on both."""
    _, result, c = run(resolve_scenario("oom-leak"), {"vm.panic_on_oom": 1})
    assert result.panic == "Out of memory: system-wide panic_on_oom is enabled"
    assert c.count("oom_kill") == 0 and c.count("oom_panic") == 1
    assert c.count("oom_candidate") == 3  # dump_header() lists the tasks first
    assert "end" not in [s.label for s in result.snapshots]  # the machine stopped
    _, result, c = run(resolve_scenario("memcg-oom"), {"vm.panic_on_oom": 1})
    assert result.panic is None and c.count("oom_kill") == 2
    _, result, c = run(resolve_scenario("memcg-oom"), {"vm.panic_on_oom": 2})
    assert result.panic == "Out of memory: compulsory panic_on_oom is enabled"
    [p] = c.records("oom_panic")
    assert p["constraint"] == "CONSTRAINT_MEMCG"


def test_mlocked_memory_is_unevictable_and_never_swapped() -> None:
    locked = ProcessSpec("locked", steps=(
        Mmap(handle="m", length_bytes=256 * MiB), Mlock(handle="m"), Snapshot(label="locked"),
        Sleep(duration_ns=3 * 10**9)))
    hog = ProcessSpec("hog", start_ns=10**8, steps=(
        Mmap(handle="h", length_bytes=1792 * MiB), Touch(handle="h", write=True), Touch(handle="h")))
    sc = Scenario(name="ml", machine=MachineSpec(ram_bytes=2 * GiB, swap_bytes=2 * GiB), processes=(locked, hog))
    _k, result, c = run(sc)
    snap = result.snapshots[0].meminfo
    assert snap["Mlocked"] == snap["Unevictable"] == 256 * MiB
    assert c.count("swap_out") > 0  # there was pressure
    locked_pid = result.pids["locked"]
    owners = np.concatenate([b["owner"] for b in c.of("swap_out")])
    assert not (owners == locked_pid).any()
    moves = [r for r in c.records("lru_move") if r["reason"] == "mlock"]
    assert len(moves) == 256 * MiB // 4096 and {r["to_lru"] for r in moves} == {"unevictable"}


def test_shm_lock_moves_a_segment_to_the_unevictable_list() -> None:
    _, result, _ = run_steps(
        Shmget(segment="s", size_bytes=64 * MiB), Shmat(segment="s", handle="m"), Touch(handle="m", write=True),
        Snapshot(label="written"), ShmLock(segment="s"), Snapshot(label="locked"), ShmUnlock(segment="s"),
        Snapshot(label="unlocked"))
    mi = {s.label: s.meminfo for s in result.snapshots}
    assert mi["written"]["Unevictable"] == 0
    assert mi["locked"]["Unevictable"] == 64 * MiB
    assert mi["locked"]["Mlocked"] == 0  # SHM_LOCK is AS_UNEVICTABLE, not mlock
    assert mi["unlocked"]["Unevictable"] == 0
    assert mi["unlocked"]["Inactive(anon)"] == mi["written"]["Inactive(anon)"]


def test_vfs_cache_pressure_scales_the_superblock_shrinker() -> None:
    """do_shrink_slab(): scan (freeable >> priority) * 4 / DEFAULT_SEEKS, freeable
    being count * vfs_cache_pressure / 100 (§5.7); 0 never shrinks."""
    def freed(pressure: int, priority: int) -> int:
        k = Kernel(4 * GiB, 0, Bus(default_registry()))
        k.sysctls.set("vm.vfs_cache_pressure", pressure)
        count = len(k.boot_slab_reclaimable)
        assert count == (64 * MiB) // 4096
        sc = ScanControl("kswapd", 32, priority=priority)
        got = shrink_slab(k, sc)
        assert k.stat.nr_slab_reclaimable == count - got
        return got

    assert freed(100, 12) == (16384 >> 12) * 4 // 2 == 8
    assert freed(1000, 12) == (163840 >> 12) * 4 // 2 == 80
    assert freed(0, 0) == 0
    assert freed(100, 0) == 16384  # capped by what there is (2x freeable allowed)


def test_vfs_cache_pressure_zero_keeps_dentries_through_an_oom() -> None:
    sc = resolve_scenario("oom-leak")
    k0, _, _ = run(sc, {"vm.vfs_cache_pressure": 0})
    k1, _, _ = run(dataclasses.replace(sc))
    assert k0.stat.nr_slab_reclaimable == (64 * MiB) // 4096
    assert k1.stat.nr_slab_reclaimable == 0


def test_children_total_vm_counts_each_child_with_its_own_mm() -> None:
    """The 2.6.32 badness() adds half of each child's total_vm: oom_task() lists
    the children's total_vm in fork order, from one pass over the tasks (the
    precomputed map) or a scan of its own, alike; the children's own children and
    tasks without an mm are not the parent's."""
    k = Kernel(1 * GiB, 0, Bus(default_registry()))
    parent = k.new_task("parent", 0, 0, None)
    parent.mm = k.new_mm(parent.pid)
    k.current = parent
    mmap.do_mmap(k, parent, "a", 8 * MiB, "rw", False, "", 0, False)
    first = fork.do_fork(k, parent, "first")
    mmap.do_mmap(k, first, "b", 4 * MiB, "rw", False, "", 0, False)
    second = fork.do_fork(k, parent, "second")
    grandchild = fork.do_fork(k, first, "grandchild")
    k.new_task("no-mm", 0, 0, parent)
    expected = ((8 + 4) * MiB // 4096, 8 * MiB // 4096)
    assert oom_task(k, parent).children_total_vm == expected
    assert oom_task(k, parent, children_mms(k)).children_total_vm == expected
    assert oom_task(k, first, children_mms(k)).children_total_vm == (12 * MiB // 4096,)
    assert oom_task(k, second).children_total_vm == oom_task(k, grandchild).children_total_vm == ()
