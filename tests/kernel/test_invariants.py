"""Invariants after random step sequences (hypothesis), checked at every snapshot:

- no page lost or counted twice: free + anon + page cache + slab + page tables +
  kernel stacks + other kernel memory == MemTotal;
- every node counter equals a recount from the struct page array;
- every RSS counter equals what the process's page tables map;
- every page's mapcount equals the page-table entries pointing at it;
- Committed_AS equals the sum of what is charged (VMAs and shmem objects).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.kernel.kernel import Kernel
from memtrace.kernel.mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS
from memtrace.kernel.page_alloc import (
    PG_ACTIVE,
    PG_ANON,
    PG_DIRTY,
    PG_KERNEL,
    PG_LRU,
    PG_PGTABLE,
    PG_SLAB,
    PG_SWAPBACKED,
    PG_WRITEBACK,
)
from memtrace.kernel.runner import Runner
from memtrace.kernel.swapfile import is_swap_entry, swp_offset
from memtrace.kernel.workload import (
    MADV_ADVICE,
    Brk,
    CgroupSpec,
    DropCaches,
    Exit,
    FileRead,
    FileSpec,
    FileWrite,
    Fork,
    MachineSpec,
    Madvise,
    Mmap,
    Mprotect,
    Mremap,
    Munmap,
    ProcessSpec,
    Scenario,
    Snapshot,
    Step,
    Sync,
    Touch,
    Unlink,
)
from memtrace.tracer import Bus, default_registry

PAGE = 4096


def check_invariants(k: Kernel) -> None:
    mem = k.mem_map
    st_ = k.stat
    flags = mem.flags
    # Pages held by page caches.
    cache_pfns = np.concatenate([i.cached_pfns() for i in k.inodes.values()] or [np.empty(0, np.int32)])
    assert len(np.unique(cache_pfns)) == len(cache_pfns), "a page is in two page caches"
    shmem_pages = sum(int(np.count_nonzero(i.pages >= 0)) for i in k.inodes.values() if i.shmem)
    assert st_.nr_file_pages == len(cache_pfns)
    assert st_.nr_shmem == shmem_pages
    anon = np.flatnonzero(flags & PG_ANON)
    assert (mem.mapcount[anon] > 0).all(), "an anon page no pte maps"
    assert st_.nr_anon_mapped == len(anon)
    assert st_.nr_file_mapped == int(np.count_nonzero(mem.mapcount[cache_pfns] > 0))
    assert st_.nr_file_dirty == int(np.count_nonzero((flags[cache_pfns] & (PG_DIRTY | PG_SWAPBACKED)) == PG_DIRTY))
    assert st_.nr_writeback == int(np.count_nonzero(flags[cache_pfns] & PG_WRITEBACK))
    # Dirty and writeback page cache per memory cgroup (the v2 dirty domains read these).
    file_cache = cache_pfns[(flags[cache_pfns] & PG_SWAPBACKED) == 0]
    for counter, bit in ((k.memcg_dirty, PG_DIRTY), (k.memcg_writeback, PG_WRITEBACK)):
        pages = file_cache[(flags[file_cache] & bit) != 0]
        recount = np.bincount(mem.memcg[pages].astype(np.int64), minlength=len(counter))
        assert (recount == counter).all(), "per-memcg dirty/writeback counts differ from the pages"
    # LRU lists.
    lru = flags & PG_LRU != 0
    active = flags & PG_ACTIVE != 0
    swapbacked = flags & PG_SWAPBACKED != 0
    assert st_.nr_active_anon == int(np.count_nonzero(lru & active & swapbacked))
    assert st_.nr_inactive_anon == int(np.count_nonzero(lru & ~active & swapbacked))
    assert st_.nr_active_file == int(np.count_nonzero(lru & active & ~swapbacked))
    assert st_.nr_inactive_file == int(np.count_nonzero(lru & ~active & ~swapbacked))
    assert int(np.count_nonzero(lru)) == len(anon) + len(cache_pfns)
    # Kernel memory.
    assert st_.nr_pagetable == int(np.count_nonzero(flags == PG_PGTABLE))
    assert st_.nr_slab_reclaimable + st_.nr_slab_unreclaimable == int(np.count_nonzero(flags == PG_SLAB))
    assert st_.nr_kernel_stack_pages + st_.nr_kernel_misc == int(np.count_nonzero(flags == PG_KERNEL))
    # Conservation: every managed page is free or counted exactly once.
    used = (len(anon) + len(cache_pfns) + st_.nr_pagetable + st_.nr_slab_reclaimable + st_.nr_slab_unreclaimable
            + st_.nr_kernel_stack_pages + st_.nr_kernel_misc)
    assert k.alloc.nr_free_pages + used == k.alloc.totalram_pages
    free_pfns = np.concatenate([z.free_stack[: z.nr_free] for z in k.alloc.zones])
    assert (flags[free_pfns] == 0).all(), "a free page has flags"
    assert len(np.unique(free_pfns)) == len(free_pfns), "a page is free twice"
    # Page tables, RSS and mapcounts.
    mapped = np.zeros(k.alloc.nr_pfns, dtype=np.int64)
    charged = 0
    for task in k.tasks.values():
        mm = task.mm
        if mm is None:
            continue
        rss = [0, 0, 0, 0]
        for vma in mm.vmas:
            charged += vma.charged_pages
            pfns = vma.ptes[vma.ptes >= 0]
            np.add.at(mapped, pfns, 1)
            is_anon = flags[pfns] & PG_ANON != 0
            is_shmem = ~is_anon & (flags[pfns] & PG_SWAPBACKED != 0)
            rss[MM_ANONPAGES] += int(np.count_nonzero(is_anon))
            rss[MM_SHMEMPAGES] += int(np.count_nonzero(is_shmem))
            rss[MM_FILEPAGES] += int(np.count_nonzero(~is_anon & ~is_shmem))
            rss[MM_SWAPENTS] += int(np.count_nonzero(is_swap_entry(vma.ptes)))
        assert mm.rss == rss, f"pid {task.pid}: rss {mm.rss} != page tables {rss}"
    assert (mapped == mem.mapcount).all(), "mapcount differs from the page tables"
    charged += sum(i.charged_pages for i in k.inodes.values())
    assert k.committed_pages == charged
    # Swap: every slot's count is the number of entries (ptes, shmem objects) naming it.
    refs = np.zeros(k.swap.nr_pages, dtype=np.int64)
    for task in k.tasks.values():
        if task.mm is not None:
            for vma in task.mm.vmas:
                np.add.at(refs, swp_offset(vma.ptes[is_swap_entry(vma.ptes)]), 1)
    for inode in k.inodes.values():
        np.add.at(refs, swp_offset(inode.pages[is_swap_entry(inode.pages)]), 1)
    assert (refs == k.swap.swap_map).all(), "swap_map differs from the swap entries"
    assert k.swap.nr_free == int(np.count_nonzero(k.swap.swap_map == 0))
    # Per-memcg LRU sizes equal a recount of the pages on each list.
    from memtrace.kernel.vmscan import lru_of

    on = np.flatnonzero(flags & PG_LRU)
    recount = np.zeros_like(k.memcg_lru)
    np.add.at(recount, (mem.memcg[on].astype(np.int64), lru_of(flags[on])), 1)
    assert (recount == k.memcg_lru).all(), "per-memcg LRU sizes differ from the pages"
    # Memory cgroups: usage is what their pages (and their descendants') are charged,
    # plus the charge the CPU's stock holds for them.
    per_id = np.bincount(mem.memcg.astype(np.int64), minlength=len(k.memcgs.by_id) + 1)
    for memcg in k.memcgs.by_id.values():
        ids = memcg.subtree_ids()
        stocked = sum(k.memcgs.stock.get(i, 0) for i in ids)
        assert memcg.usage_pages == sum(int(per_id[i]) for i in ids) + stocked, memcg.path
        assert memcg.usage_pages <= memcg.max_pages
        assert memcg.usage_pages <= memcg.watermark_pages


FILES = ("/data/a", "/dev/shm/b")


@st.composite
def step_lists(draw: st.DrawFn, scale: int = 1) -> tuple[list[Step], list[Step]]:
    """A valid random program for a parent (and a forked child sharing its mappings);
    ``scale`` multiplies the sizes."""
    steps: list[Step] = []
    live: list[str] = []
    next_handle = 0
    heap = False
    for _ in range(draw(st.integers(1, 14))):
        op = draw(st.sampled_from(["mmap", "touch", "touch", "munmap", "brk", "read", "write", "sync",
                                   "drop", "unlink", "madvise", "mremap", "mprotect", "munmap_part"]))
        if op == "mmap":
            handle = f"m{next_handle}"
            next_handle += 1
            kind = draw(st.sampled_from(["anon", "shared_anon", "file", "shared_file", "shm"]))
            pages = draw(st.integers(1, 96 * scale))
            path = {"file": "/data/disk", "shared_file": "/data/disk", "shm": "/dev/shm/b"}.get(kind, "")
            if kind == "shm":
                steps.append(FileWrite(path="/dev/shm/b", length_bytes=96 * scale * PAGE))
            steps.append(Mmap(handle=handle, length_bytes=pages * PAGE, prot=draw(st.sampled_from(["r", "rw"])),
                              shared=kind.startswith("shared") or kind == "shm", path=path))
            live.append(handle)
        elif op == "touch" and (live or heap):
            handle = draw(st.sampled_from(live + (["heap"] if heap else [])))
            steps.append(Touch(handle=handle, write=draw(st.booleans()), length_bytes=0))
        elif op == "munmap" and live:
            handle = draw(st.sampled_from(live))
            live.remove(handle)
            steps.append(Munmap(handle=handle))
        elif op == "brk":
            delta = draw(st.integers(-8, 32)) * PAGE
            steps.append(Brk(increment_bytes=delta))
            heap = heap or delta > 0
        elif op == "read":
            steps.append(FileRead(path="/data/disk", length_bytes=draw(st.integers(1, 64 * scale)) * PAGE))
        elif op == "write":
            steps.append(FileWrite(path=draw(st.sampled_from(FILES)),
                                   length_bytes=draw(st.integers(1, 64 * scale)) * PAGE,
                                   offset_bytes=draw(st.integers(0, 32)) * PAGE))
        elif op == "sync":
            steps.append(Sync())
        elif op == "drop":
            steps.append(DropCaches(value=draw(st.sampled_from([1, 2, 3]))))
        elif op == "unlink":
            steps.append(Unlink(path="/data/a"))
            steps.append(FileWrite(path="/data/a", length_bytes=PAGE))
        elif op == "madvise" and live:
            steps.append(Madvise(handle=draw(st.sampled_from(live)), advice=draw(st.sampled_from(MADV_ADVICE)),
                                 offset_bytes=draw(st.integers(0, 32 * scale)) * PAGE,
                                 length_bytes=draw(st.integers(0, 64 * scale)) * PAGE))
        elif op == "mremap" and live:
            steps.append(Mremap(handle=draw(st.sampled_from(live)), on_enomem="continue",
                                length_bytes=draw(st.integers(1, 128 * scale)) * PAGE,
                                maymove=draw(st.booleans())))
        elif op == "mprotect" and live:
            steps.append(Mprotect(handle=draw(st.sampled_from(live)), prot=draw(st.sampled_from(["", "r", "rw"])),
                                  offset_bytes=draw(st.integers(0, 32 * scale)) * PAGE, on_enomem="continue",
                                  length_bytes=draw(st.integers(0, 64 * scale)) * PAGE))
        elif op == "munmap_part" and live:
            steps.append(Munmap(handle=draw(st.sampled_from(live)),
                                offset_bytes=draw(st.integers(0, 32 * scale)) * PAGE,
                                length_bytes=draw(st.integers(1, 32 * scale)) * PAGE))
    child: list[Step] = []
    if live and draw(st.booleans()):
        for handle in live:
            child.append(Touch(handle=handle, write=draw(st.booleans())))
    return steps, child


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_lists())
def test_invariants_hold_after_every_step(program: tuple[list[Step], list[Step]]) -> None:
    _run_checked(program, MachineSpec(ram_bytes=256 << 20), (), "/", 96)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_lists(scale=256), st.booleans())
def test_invariants_hold_under_pressure(program: tuple[list[Step], list[Step]], in_cgroup: bool) -> None:
    """Small RAM, swap and (sometimes) a tight memory cgroup: reclaim, swap-out,
    swap-in and OOM kills happen, and the books still balance."""
    _run_checked(program, MachineSpec(ram_bytes=128 << 20, swap_bytes=32 << 20),
                 (CgroupSpec("/box", max_bytes=24 << 20),), "/box" if in_cgroup else "/", 96 * 256)


def _run_checked(program: tuple[list[Step], list[Step]], machine: MachineSpec, cgroups: tuple,
                 cgroup: str, disk_pages: int) -> None:
    parent_steps, child_steps = program
    with_snapshots: list[Step] = [FileWrite(path="/data/a", length_bytes=PAGE), Snapshot(label="x")]
    for s in parent_steps:
        with_snapshots += [s, Snapshot(label="x")]
    processes = [ProcessSpec("parent", cgroup=cgroup,
                             steps=tuple(with_snapshots + ([Fork(child="child"), Snapshot(label="x")]
                                                           if child_steps else [])))]
    if child_steps:
        body: list[Step] = []
        for s in child_steps:
            body += [s, Snapshot(label="x")]
        processes.append(ProcessSpec("child", forked=True, steps=(*body, Exit(), Snapshot(label="x"))))
    sc = Scenario(name="random", machine=machine, cgroups=cgroups,
                  files=(FileSpec("/data/disk", disk_pages * PAGE),), processes=tuple(processes))
    bus = Bus(default_registry())
    runner = Runner(sc, bus)
    checks = []

    class Check:
        def on_batch(self, batch) -> None:
            check_invariants(runner.k)
            checks.append(batch.n)

    bus.attach(Check(), ["snapshot"])
    result = runner.run()
    # Faults on unmapped handles, what memory pressure may do to a program, and the
    # errors madvise, mremap, mprotect and munmap give random ranges.
    allowed = ("SIGSEGV", "SIGBUS", "ENOMEM", "ENOSPC", "PANIC", "EINVAL", "EFAULT")
    assert not [e for e in result.errors if e.errno not in allowed], result.errors
    check_invariants(runner.k)
    assert checks, "no snapshot was checked"
    # Everything a process held is gone once all have exited.
    assert all(t.mm is None for t in runner.k.tasks.values())
    assert runner.k.stat.nr_anon_mapped == 0 and runner.k.stat.nr_file_mapped == 0
