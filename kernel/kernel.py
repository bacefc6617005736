"""The simulated kernel: machine state and the helpers every mm path shares.

:class:`Kernel` owns the page allocator and struct page array, node counters,
Committed_AS, tasks, inodes, the clock and the tracepoint bus. The mm paths live in
modules named after the kernel files they model (memory.py for faults, mmap.py,
filemap.py, shmem.py, fork.py, meminfo.py) and take the kernel as first argument.

Kernel memory at boot (slab, percpu, kernel-thread stacks) is a fixed allocation;
see :data:`BOOT_SLAB_RECLAIMABLE_BYTES` and friends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memtrace.tracer.bus import Bus
from memtrace.tracer.schema import Tracepoint
from memtrace.tracer import tracepoints as tp

from .engine import Engine
from .mm_types import (
    PMD_SHIFT,
    PTE_SHIFT,
    PUD_SHIFT,
    THREAD_SIZE_PAGES,
    Inode,
    MmStruct,
    Task,
    VmArea,
)
from .page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PG_ACTIVE,
    PG_KERNEL,
    PG_LRU,
    PG_PGTABLE,
    PG_SLAB,
    PG_SWAPBACKED,
    PG_UNEVICTABLE,
    PageAllocator,
)
from .sysctl import Sysctls
from .vmstat import NodeStat

#: Reclaimable slab (dentries, inodes) present after boot; drop_caches 2 frees it.
BOOT_SLAB_RECLAIMABLE_BYTES = 64 << 20
#: Unreclaimable slab after boot.
BOOT_SLAB_UNRECLAIMABLE_BYTES = 96 << 20
#: percpu areas, vmalloc and other kernel allocations after boot.
BOOT_KERNEL_MISC_BYTES = 32 << 20
#: Kernel threads (and their 16 KiB stacks) of an idle machine.
BOOT_KERNEL_THREADS = 160

#: First pid given to a scenario process; lower pids are init and kernel threads.
FIRST_USER_PID = 100


class OutOfMemory(Exception):
    """An allocation found no free page even below the min watermark.

    Raised where the kernel would enter direct reclaim and the OOM killer; the
    runner reports it. (Reclaim and the OOM killer come with the memory-pressure
    work; until then this ends the run with a clear error.)
    """

    def __init__(self, nr_pages: int, where: str) -> None:
        super().__init__(f"out of memory: {nr_pages} pages wanted by {where}")
        self.nr_pages = nr_pages
        self.where = where


class Kernel:
    """The whole simulated machine.

    ``ram_bytes`` and ``swap_bytes`` size it; ``sysctls`` are applied before the
    watermarks and reserves are computed, as a boot command line would.
    """

    def __init__(self, ram_bytes: int, swap_bytes: int, bus: Bus, sysctls: Sysctls | None = None,
                 seed: int = 0, kernel_version: str = "6.13") -> None:
        self.bus = bus
        self.engine = Engine()
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.kernel_version = kernel_version
        self.sysctls = sysctls or Sysctls()
        self.alloc = PageAllocator(ram_bytes)
        self.mem_map = self.alloc.mem_map
        self.stat = NodeStat()
        self.swap_total_pages = swap_bytes >> PAGE_SHIFT
        self.swap_free_pages = self.swap_total_pages
        self.committed_pages = 0  # vm_committed_as
        self.tasks: dict[int, Task] = {}
        self.inodes: dict[int, Inode] = {}
        self.namespace: dict[str, Inode] = {}
        self.sysv: dict[str, Inode] = {}
        self.sysv_removed: set[str] = set()
        self.next_pid = FIRST_USER_PID
        self.next_ino = 1000
        self.next_mm_id = 1
        self.lru_clock = 0
        self.current: Task | None = None
        self._rss_touched: dict[int, tuple[MmStruct, list[int]]] = {}
        self._boot()

    # ------------------------------------------------------------------ boot

    def _boot(self) -> None:
        s = self.sysctls
        if not s.is_set("vm.min_free_kbytes"):
            s.set("vm.min_free_kbytes", self.alloc.calculate_min_free_kbytes())
        self.alloc.setup_per_zone_wmarks(s["vm.min_free_kbytes"], s["vm.watermark_scale_factor"])
        self._boot_kernel_memory()
        free_kb = self.alloc.nr_free_pages * (PAGE_SIZE // 1024)
        # mm/util.c init_user_reserve()/init_admin_reserve(): min(free/32, 128 MiB / 8 MiB)
        if not s.is_set("vm.user_reserve_kbytes"):
            s.set("vm.user_reserve_kbytes", min(free_kb // 32, 1 << 17))
        if not s.is_set("vm.admin_reserve_kbytes"):
            s.set("vm.admin_reserve_kbytes", min(free_kb // 32, 1 << 13))

    def _boot_kernel_memory(self) -> None:
        def take(nr_bytes: int, flag: int) -> np.ndarray:
            pfns = self.alloc.alloc_pages(nr_bytes >> PAGE_SHIFT, mark="none")
            self.mem_map.flags[pfns] = flag
            return pfns

        self.boot_slab_reclaimable = take(BOOT_SLAB_RECLAIMABLE_BYTES, PG_SLAB)
        self.stat.nr_slab_reclaimable = len(self.boot_slab_reclaimable)
        self.stat.nr_slab_unreclaimable = len(take(BOOT_SLAB_UNRECLAIMABLE_BYTES, PG_SLAB))
        self.stat.nr_kernel_misc = len(take(BOOT_KERNEL_MISC_BYTES, PG_KERNEL))
        self.stat.nr_kernel_stack_pages = len(
            take(BOOT_KERNEL_THREADS * THREAD_SIZE_PAGES * PAGE_SIZE, PG_KERNEL)
        )

    # ------------------------------------------------------------------ time, events

    @property
    def now_ns(self) -> int:
        return self.engine.now_ns

    def advance(self, duration_ns: int) -> None:
        """The running task spends ``duration_ns`` in the kernel."""
        self.engine.now_ns += int(duration_ns)

    @property
    def pid(self) -> int:
        return self.current.pid if self.current else 0

    def emit(self, point: Tracepoint, n: int = 1, ts_ns: Any = None, **fields: Any) -> None:
        """Emit ``n`` events of ``point`` in the current task's context (now by default)."""
        self.bus.emit(point, self.now_ns if ts_ns is None else ts_ns, self.pid, n, **fields)

    def event_times(self, costs_ns: np.ndarray) -> np.ndarray:
        """Timestamps for a run of events costing ``costs_ns`` each, advancing the clock:
        event i happens when the work before it is done."""
        ends = np.cumsum(costs_ns, dtype=np.int64)
        start = self.now_ns
        self.advance(int(ends[-1]) if len(ends) else 0)
        return start + ends - costs_ns

    # ------------------------------------------------------------------ allocation

    def alloc_pages(self, nr_pages: int, where: str) -> np.ndarray:
        """Allocate ``nr_pages`` user pages or raise OutOfMemory.

        Models the allocator fast path at the low watermark falling back to the min
        watermark; no kswapd, direct reclaim or OOM kill yet.
        """
        if nr_pages == 0:
            return np.empty(0, dtype=np.int32)
        pfns = self.alloc.alloc_pages(nr_pages, mark="low")
        if len(pfns) < nr_pages:
            more = self.alloc.alloc_pages(nr_pages - len(pfns), mark="min")
            pfns = np.concatenate([pfns, more])
        if len(pfns) < nr_pages:
            self.alloc.free_pages(pfns)
            raise OutOfMemory(nr_pages, where)
        return pfns

    def free_pages(self, pfns: np.ndarray) -> None:
        """Take pages off their LRU list and give them back to the allocator."""
        if len(pfns):
            self.lru_del(pfns)
            self.alloc.free_pages(pfns)

    # ------------------------------------------------------------------ LRU

    def lru_add(self, pfns: np.ndarray) -> None:
        """Models folio_add_lru(): new pages join the inactive anon or file list.

        The list follows PG_swapbacked (shmem and anon on the anon lists). New
        anonymous pages go inactive too (6.x lru_cache_add_inactive_or_unevictable).
        """
        if not len(pfns):
            return
        flags = self.mem_map.flags
        flags[pfns] |= PG_LRU
        self.mem_map.lru_gen[pfns] = np.arange(self.lru_clock, self.lru_clock + len(pfns))
        self.lru_clock += len(pfns)
        nr_anon = int(np.count_nonzero(flags[pfns] & PG_SWAPBACKED))
        self.stat.nr_inactive_anon += nr_anon
        self.stat.nr_inactive_file += len(pfns) - nr_anon

    def lru_del(self, pfns: np.ndarray) -> None:
        """Models lruvec_del_folio() for every page in ``pfns`` that is on an LRU."""
        flags = self.mem_map.flags[pfns]
        on = flags[(flags & PG_LRU) != 0]
        if not len(on):
            return
        unevictable = (on & PG_UNEVICTABLE) != 0
        active = (on & PG_ACTIVE) != 0
        anon = (on & PG_SWAPBACKED) != 0
        ev = ~unevictable
        st = self.stat
        st.nr_unevictable -= int(np.count_nonzero(unevictable))
        st.nr_active_anon -= int(np.count_nonzero(ev & active & anon))
        st.nr_inactive_anon -= int(np.count_nonzero(ev & ~active & anon))
        st.nr_active_file -= int(np.count_nonzero(ev & active & ~anon))
        st.nr_inactive_file -= int(np.count_nonzero(ev & ~active & ~anon))
        self.mem_map.flags[pfns] &= ~np.uint16(PG_LRU | PG_ACTIVE)

    # ------------------------------------------------------------------ RSS

    def add_rss(self, mm: MmStruct, member: int, delta: int) -> None:
        """Change an RSS counter (add_mm_counter()); rss_stat fires at flush_rss()."""
        if delta == 0:
            return
        if mm.id not in self._rss_touched:
            self._rss_touched[mm.id] = (mm, list(mm.rss))
        mm.rss[member] += delta

    def flush_rss(self) -> None:
        """Emit kmem:rss_stat for every counter changed since the last flush.

        Simplification: one event per counter per operation, as the 5.x
        SPLIT_RSS_COUNTING batching did, not one per page as 6.2+ does.
        """
        touched, self._rss_touched = self._rss_touched, {}
        for mm, before in touched.values():
            for member in range(4):
                if mm.rss[member] != before[member]:
                    self.emit(
                        tp.RSS_STAT,
                        mm_pid=mm.owner_pid,
                        curr=mm.owner_pid == self.pid,
                        member=member,
                        size_bytes=mm.rss[member] * PAGE_SIZE,
                    )

    # ------------------------------------------------------------------ page tables

    def alloc_page_tables(self, mm: MmStruct, addrs: np.ndarray) -> None:
        """Allocate the PUD, PMD and PTE table pages that mapping ``addrs`` needs
        (__pud_alloc/__pmd_alloc/__pte_alloc), counted in PageTables."""
        if not len(addrs):
            return
        for shift in (PUD_SHIFT, PMD_SHIFT, PTE_SHIFT):
            regions = np.unique(addrs >> shift).tolist()
            missing = [r for r in regions if (shift, r) not in mm.tables]
            if missing:
                pfns = self.alloc_pages(len(missing), "page table")
                self.mem_map.flags[pfns] = PG_PGTABLE
                for r, pfn in zip(missing, pfns.tolist()):
                    mm.tables[(shift, r)] = pfn
                self.stat.nr_pagetable += len(missing)

    def free_page_tables(self, mm: MmStruct, start: int, end: int) -> None:
        """Models free_pgtables(): table pages covering [start, end) that no
        remaining VMA overlaps are freed."""
        freed: list[int] = []
        for shift in (PTE_SHIFT, PMD_SHIFT, PUD_SHIFT):
            for r in range(start >> shift, ((end - 1) >> shift) + 1):
                pfn = mm.tables.get((shift, r))
                if pfn is None:
                    continue
                lo, hi = r << shift, (r + 1) << shift
                if any(v.start < hi and v.end > lo for v in mm.vmas):
                    continue
                del mm.tables[(shift, r)]
                freed.append(pfn)
        if freed:
            self.alloc.free_pages(np.array(freed, dtype=np.int32))
            self.stat.nr_pagetable -= len(freed)

    # ------------------------------------------------------------------ tasks

    def new_mm(self, owner_pid: int) -> MmStruct:
        """Models mm_alloc(): a fresh mm with its PGD page."""
        mm = MmStruct(id=self.next_mm_id, owner_pid=owner_pid)
        self.next_mm_id += 1
        pgd = self.alloc_pages(1, "pgd_alloc")
        self.mem_map.flags[pgd] = PG_PGTABLE
        mm.pgd_pfn = int(pgd[0])
        self.stat.nr_pagetable += 1
        return mm

    def new_task(self, comm: str, uid: int, oom_score_adj: int, parent: Task | None) -> Task:
        """Models copy_process() for the parts memory cares about: pid and kernel stack."""
        pid = self.next_pid
        self.next_pid += 1
        task = Task(pid=pid, comm=comm[:15], uid=uid, oom_score_adj=oom_score_adj, mm=None, parent=parent)
        task.kernel_stack_pfns = self.alloc_pages(THREAD_SIZE_PAGES, "alloc_thread_stack_node")
        self.mem_map.flags[task.kernel_stack_pfns] = PG_KERNEL
        self.stat.nr_kernel_stack_pages += THREAD_SIZE_PAGES
        self.tasks[pid] = task
        return task

    # ------------------------------------------------------------------ inodes

    def new_inode(self, path: str, shmem: bool, size_bytes: int = 0, acct: str = "") -> Inode:
        inode = Inode(ino=self.next_ino, path=path, shmem=shmem, size_bytes=size_bytes, acct=acct)
        self.next_ino += 1
        self.inodes[inode.ino] = inode
        return inode

    # ------------------------------------------------------------------ overcommit

    def commit_limit_pages(self) -> int:
        """Models vm_commit_limit(): CommitLimit in pages (no hugetlb pages)."""
        s = self.sysctls
        if s["vm.overcommit_kbytes"]:
            allowed = s["vm.overcommit_kbytes"] >> (PAGE_SHIFT - 10)
        else:
            allowed = self.alloc.totalram_pages * s["vm.overcommit_ratio"] // 100
        return allowed + self.swap_total_pages

    def vm_enough_memory(self, mm: MmStruct | None, nr_pages: int, cap_sys_admin: bool) -> bool:
        """Models __vm_enough_memory() (5.4+): charge ``nr_pages`` to Committed_AS
        and check the overcommit policy; on refusal the charge is undone."""
        self.committed_pages += nr_pages
        mode = self.sysctls["vm.overcommit_memory"]
        if mode == 1:
            return True
        if mode == 0:
            if nr_pages <= self.alloc.totalram_pages + self.swap_total_pages:
                return True
        else:
            allowed = self.commit_limit_pages()
            if not cap_sys_admin:
                allowed -= self.sysctls["vm.admin_reserve_kbytes"] >> (PAGE_SHIFT - 10)
            if mm is not None:
                reserve = self.sysctls["vm.user_reserve_kbytes"] >> (PAGE_SHIFT - 10)
                allowed -= min(mm.total_vm // 32, reserve)
            if self.committed_pages < allowed:
                return True
        self.committed_pages -= nr_pages
        return False

    def vm_unacct_memory(self, nr_pages: int) -> None:
        self.committed_pages -= nr_pages

    # ------------------------------------------------------------------ lookups

    def vma_of(self, task: Task, handle: str) -> VmArea | None:
        return task.mm.by_handle(handle) if task.mm else None
