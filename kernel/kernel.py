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

from memtrace.linux.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE
from memtrace.linux.version import DEFAULT_KERNEL_VERSION
from memtrace.tracer import tracepoints as tp
from memtrace.tracer.bus import Bus
from memtrace.tracer.schema import Tracepoint

from . import costs, oom, page_writeback, vmscan
from .engine import Engine, Signal
from .memcontrol import UNLIMITED, MemCgroup, MemcgTree
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
    PG_ACTIVE,
    PG_KERNEL,
    PG_LRU,
    PG_PGTABLE,
    PG_SLAB,
    PG_SWAPBACKED,
    PG_UNEVICTABLE,
    PageAllocator,
)
from .swapfile import SwapDevice
from .sysctl import Sysctls
from .vmstat import NodeStat

#: Reclaimable slab (dentries, inodes) present after boot, at most; drop_caches 2
#: frees it. Small machines get 1/64 of RAM.
BOOT_SLAB_RECLAIMABLE_BYTES = 64 << 20
#: Unreclaimable slab after boot, at most (1/48 of RAM on small machines).
BOOT_SLAB_UNRECLAIMABLE_BYTES = 96 << 20
#: percpu areas, vmalloc and other kernel allocations after boot, at most (1/128).
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
                 seed: int = 0, kernel_version: str = DEFAULT_KERNEL_VERSION, cgroup_version: int = 2,
                 disk_write_bytes_per_s: int = costs.DEFAULT_DISK_WRITE_BYTES_PER_S) -> None:
        self.bus = bus
        self.engine = Engine()
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.kernel_version = kernel_version
        self.sysctls = sysctls or Sysctls()
        self.alloc = PageAllocator(ram_bytes)
        self.mem_map = self.alloc.mem_map
        self.stat = NodeStat()
        self.swap = SwapDevice(swap_bytes >> PAGE_SHIFT)
        self.cgroup_version = cgroup_version
        self.memcgs = MemcgTree(cgroup_version, kernel_version)
        self.committed_pages = 0  # vm_committed_as
        # Reclaim state (struct lruvec / pglist_data of the one node).
        self.anon_cost = 0
        self.file_cost = 0
        self.nonresident_age = 0
        self.workingset_refault_file = 0
        self.workingset_refault_anon = 0
        self.last_refaults_file = 0
        self.last_refaults_anon = 0
        #: LRU orders kept between reclaim passes, per (memcg subtree or None, list).
        self.lru_order: dict[Any, Any] = {}
        #: pages on each LRU list (columns: inactive/active anon, inactive/active
        #: file, unevictable) per memcg id (rows); MemcgTree ids stay below 64.
        self.memcg_lru = np.zeros((64, 5), dtype=np.int64)
        self.kswapd_failures = 0
        self.kswapd_sleeping = False
        self.kswapd_wait = Signal()
        self.kswapd_task: Task | None = None
        self.reclaimed_kswapd = 0
        self.reclaimed_direct = 0
        self.reclaimed_memcg = 0
        self.swap_outs = 0
        self.swap_ins = 0
        # Writeback: the disk's queue, the flusher thread, the v2 memcgs whose
        # writers kicked it, dirty and writeback pages per memcg (rows as memcg_lru).
        self.wb_queue = page_writeback.WritebackQueue(max(1, round(PAGE_SIZE * 1e9 / disk_write_bytes_per_s)),
                                                      self.alloc.nr_pfns)
        self.flusher_wait = Signal()
        self.flusher_task: Task | None = None
        self.flusher_bg_memcgs: set[MemCgroup] = set()
        self.memcg_dirty = np.zeros(64, dtype=np.int64)
        self.memcg_writeback = np.zeros(64, dtype=np.int64)
        # Reclaim's view of writeback (pgdat->flags PGDAT_DIRTY / PGDAT_WRITEBACK,
        # LRUVEC_NODE_CONGESTED; LRUVEC_CGROUP_CONGESTED per memcg id), pages
        # rotated to the tail of an inactive list (folio_rotate_reclaimable()),
        # and tasks throttled waiting for writeback (nr_writeback_throttled).
        self.pgdat_dirty = False
        self.pgdat_writeback = False
        self.node_congested = False
        self.memcg_congested: set[int] = set()
        self.lru_rotated: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.nr_writeback_throttled = 0
        self.oom_id = 0
        self.oom_kills: list[dict[str, Any]] = []
        self.on_kill: Any = None  # set by the runner: ends a task's program
        self.mm_owner: dict[int, int] = {}
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

        ram = self.alloc.nr_pfns << PAGE_SHIFT
        self.boot_slab_reclaimable = take(min(BOOT_SLAB_RECLAIMABLE_BYTES, ram // 64), PG_SLAB)
        self.stat.nr_slab_reclaimable = len(self.boot_slab_reclaimable)
        self.stat.nr_slab_unreclaimable = len(take(min(BOOT_SLAB_UNRECLAIMABLE_BYTES, ram // 48), PG_SLAB))
        self.stat.nr_kernel_misc = len(take(min(BOOT_KERNEL_MISC_BYTES, ram // 128), PG_KERNEL))
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

    def emit_zoneinfo(self, reason: str) -> None:
        """One zoneinfo event per zone, as /proc/zoneinfo and the OOM report's
        per-zone lines show them: at ``"boot"`` and in an ``"oom"`` dump."""
        for z in self.alloc.zones:
            self.emit(tp.ZONEINFO, zone=z.name, zid=z.index, present_pages=z.present_pages,
                      managed_pages=z.managed_pages, nr_free=z.nr_free, wmark_min=z.wmark_min, wmark_low=z.wmark_low,
                      wmark_high=z.wmark_high, lowmem_reserve_max=max(z.lowmem_reserve, default=0), reason=reason)

    def event_times(self, costs_ns: np.ndarray) -> np.ndarray:
        """Timestamps for a run of events costing ``costs_ns`` each, advancing the clock:
        event i happens when the work before it is done."""
        ends = np.cumsum(costs_ns, dtype=np.int64)
        start = self.now_ns
        self.advance(int(ends[-1]) if len(ends) else 0)
        times: np.ndarray = start + ends - costs_ns
        return times

    # ------------------------------------------------------------------ allocation

    def new_signal(self) -> Signal:
        return Signal()

    def task_memcg(self) -> MemCgroup:
        """The memory cgroup charged for what the current task allocates."""
        task = self.current
        return task.memcg if task is not None and task.memcg is not None else self.memcgs.root

    def alloc_pages(self, nr_pages: int, where: str, gfp_mask: int = GFP_HIGHUSER_MOVABLE,
                    kmem: bool = False) -> np.ndarray:
        """Allocate ``nr_pages`` pages charged to the current task's memory cgroup.

        Models mem_cgroup_charge()/try_charge_memcg() followed by __alloc_pages():
        the fast path at the low watermark; below it kswapd is woken and the
        allocation may dip to the min watermark; below that the task reclaims
        directly (try_to_free_pages) and retries, and when reclaim makes no progress
        (should_reclaim_retry(): MAX_RECLAIM_RETRIES rounds, or nothing left that
        could be reclaimed) the OOM killer runs. Raises TaskKilled when the current
        task is the victim, KernelPanic, or OutOfMemory when a memcg has nothing to
        kill.
        """
        if nr_pages == 0:
            return np.empty(0, dtype=np.int32)
        memcg = self.task_memcg()
        self.try_charge(memcg, nr_pages, kmem)
        try:
            pfns = self._alloc_node(nr_pages, gfp_mask)
        except BaseException:
            self.memcgs.cancel_charge(memcg, nr_pages, kmem)
            raise
        self.mem_map.memcg[pfns] = memcg.id
        return pfns

    def try_charge(self, memcg: MemCgroup, nr_pages: int, kmem: bool = False) -> None:
        """Models try_charge_memcg() (6.18): charge the counters (memcontrol.py:
        stock, batch, memsw first on v1, failcnt); when a page does not fit, reclaim
        from the cgroup over its limit (without swapping when its memsw counter is
        the one over), retry, drain the stock once, retry while reclaim makes
        progress or MAX_RECLAIM_RETRIES more times, then invoke the memcg OOM
        killer and start over. Each round over the limit is a memory.events max
        event.

        Simplified: a task OOM-killed here leaves at once (TaskKilled), where the
        kernel's victim retries MAX_RECLAIM_RETRIES + 1 more times, fails again and
        returns -ENOMEM to its fault: those attempts are counted (failcnt, memory.
        events max), not run.
        """
        first = True
        retries = vmscan.MAX_RECLAIM_RETRIES
        drained = False
        memcgs = self.memcgs
        while (failure := memcgs.try_charge_pages(memcg, nr_pages, kmem, first)) is not None:
            first = False
            over = failure.memcg
            over.events_max += 1
            may_swap = not failure.memsw and over.swap_pages < over.swap_max_pages
            reclaimed = vmscan.try_to_free_mem_cgroup_pages(self, over, nr_pages, GFP_KERNEL, may_swap)
            if over.own_margin() >= nr_pages:
                continue
            if not drained:
                memcgs.drain_all_stock(over)
                drained = True
                continue
            if reclaimed:
                continue
            if retries > 0:
                retries -= 1
                continue
            try:
                killed = oom.out_of_memory(self, over, GFP_KERNEL)
            except oom.TaskKilled:
                # The victim is the charging task: in the kernel it retries once and
                # MAX_RECLAIM_RETRIES more times (passed_oom) before giving up as a
                # dying task; here it has left already, so those failed charges are
                # counted, not run.
                memcgs.count_failures(failure, vmscan.MAX_RECLAIM_RETRIES + 1)
                over.events_max += vmscan.MAX_RECLAIM_RETRIES + 1
                raise
            if not killed:
                raise OutOfMemory(nr_pages, f"memory cgroup {over.path} (no killable task)")
            retries = vmscan.MAX_RECLAIM_RETRIES

    def _reclaimable_pages(self) -> int:
        """Pages reclaim could still free: file LRU, and anon LRU while swap has room
        (zone_reclaimable_pages())."""
        st = self.stat
        n = st.nr_inactive_file + st.nr_active_file
        if self.swap.nr_free > 0:
            n += st.nr_inactive_anon + st.nr_active_anon
        return n

    def _alloc_node(self, nr_pages: int, gfp_mask: int) -> np.ndarray:
        pfns = self.alloc.alloc_pages(nr_pages, mark="low")
        if len(pfns) == nr_pages:
            return pfns
        parts = [pfns]
        got = len(pfns)
        vmscan.wakeup_kswapd(self)
        more = self.alloc.alloc_pages(nr_pages - got, mark="min")
        parts.append(more)
        got += len(more)
        no_progress = 0
        try:
            while got < nr_pages:
                want = nr_pages - got
                reclaimed = vmscan.try_to_free_pages(self, want, gfp_mask)
                more = self.alloc.alloc_pages(want, mark="min")
                parts.append(more)
                got += len(more)
                if got >= nr_pages:
                    break
                no_progress = 0 if reclaimed else no_progress + 1
                hopeless = self.alloc.nr_free_pages + self._reclaimable_pages() < (
                    sum(z.wmark_min for z in self.alloc.zones) + (nr_pages - got))
                if no_progress >= vmscan.MAX_RECLAIM_RETRIES or (hopeless and not reclaimed):
                    oom.out_of_memory(self, None, gfp_mask)
                    no_progress = 0
                    more = self.alloc.alloc_pages(nr_pages - got, mark="min")
                    parts.append(more)
                    got += len(more)
        except BaseException:
            taken = np.concatenate(parts)
            self.alloc.free_pages(taken)
            raise
        return np.concatenate(parts)

    def free_pages(self, pfns: np.ndarray) -> None:
        """Take pages off their LRU list, uncharge them from their memory cgroup and
        give them back to the allocator."""
        if len(pfns):
            self.lru_del(pfns)
            mem = self.mem_map
            charged = pfns[mem.memcg[pfns] != 0]
            if len(charged):
                kmem = (mem.flags[charged] & (PG_PGTABLE | PG_KERNEL)) != 0
                self.memcgs.uncharge_pfns(mem.memcg[charged[kmem]], kmem=True)
                self.memcgs.uncharge_pfns(mem.memcg[charged[~kmem]])
            self.alloc.free_pages(pfns)

    def kill_task(self, victim: Task) -> None:
        """SIGKILL ``victim``: it exits now (see oom.py)."""
        self.on_kill(victim)

    def flusher_kick(self, memcg: MemCgroup | None) -> None:
        """wb_start_background_writeback(): wake the flusher for a domain over its
        background threshold (``memcg`` for a v2 memcg domain, None for global)."""
        if memcg is not None:
            self.flusher_bg_memcgs.add(memcg)
        self.engine.fire(self.flusher_wait)

    def memcg_file_account(self, pfns: np.ndarray, dirty: int, writeback: int) -> None:
        """NR_FILE_DIRTY / NR_WRITEBACK of each page's memory cgroup
        (lruvec_stat_mod_folio()): add ``dirty`` and ``writeback`` per page."""
        if not len(pfns):
            return
        counts = np.bincount(self.mem_map.memcg[pfns].astype(np.int64), minlength=len(self.memcg_dirty))
        if dirty:
            self.memcg_dirty += dirty * counts
        if writeback:
            self.memcg_writeback += writeback * counts

    def sleep_in_kernel(self, duration_ns: int) -> None:
        """The current task sleeps ``duration_ns`` inside a kernel path it cannot
        leave (a reclaim or writeback wait).

        Simplified: the clock advances as if the task kept the CPU, so other tasks
        run after it; the time is not counted as the task's CPU time."""
        self.advance(duration_ns)
        if self.current is not None:
            self.current.cpu_ns -= duration_ns

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
        f = flags[pfns]
        unevictable = (f & PG_UNEVICTABLE) != 0
        nr_anon = int(np.count_nonzero(((f & PG_SWAPBACKED) != 0) & ~unevictable))
        nr_unevictable = int(np.count_nonzero(unevictable))
        self.stat.nr_unevictable += nr_unevictable
        self.stat.nr_inactive_anon += nr_anon
        self.stat.nr_inactive_file += len(pfns) - nr_anon - nr_unevictable
        self.memcg_lru_account(self.mem_map.memcg[pfns], f, +1)

    def lru_del(self, pfns: np.ndarray) -> None:
        """Models lruvec_del_folio() for every page in ``pfns`` that is on an LRU."""
        flags = self.mem_map.flags[pfns]
        on = flags[(flags & PG_LRU) != 0]
        if not len(on):
            return
        lru_pfns = pfns[(flags & PG_LRU) != 0]
        self.memcg_lru_account(self.mem_map.memcg[lru_pfns], on, -1)
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

    def memcg_lru_account(self, memcg_ids: np.ndarray, flags: np.ndarray, sign: int) -> None:
        """Per-memcg LRU sizes (lruvec_page_state of each memcg's lruvec): add or
        remove pages whose flags say which list they are on."""
        if not len(memcg_ids):
            return
        width = self.memcg_lru.shape[1]
        counts = np.bincount(memcg_ids.astype(np.int64) * width + vmscan.lru_of(flags), minlength=self.memcg_lru.size)
        self.memcg_lru += sign * counts.reshape(self.memcg_lru.shape)

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
                pfns = self.alloc_pages(len(missing), "page table", GFP_KERNEL, kmem=True)
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
            self.free_pages(np.array(freed, dtype=np.int32))
            self.stat.nr_pagetable -= len(freed)

    # ------------------------------------------------------------------ tasks

    def new_mm(self, owner_pid: int) -> MmStruct:
        """Models mm_alloc(): a fresh mm with its PGD page."""
        mm = MmStruct(id=self.next_mm_id, owner_pid=owner_pid)
        self.next_mm_id += 1
        self.mm_owner[mm.id] = owner_pid
        pgd = self.alloc_pages(1, "pgd_alloc", GFP_KERNEL, kmem=True)
        self.mem_map.flags[pgd] = PG_PGTABLE
        mm.pgd_pfn = int(pgd[0])
        self.stat.nr_pagetable += 1
        return mm

    def new_task(self, comm: str, uid: int, oom_score_adj: int, parent: Task | None,
                 memcg: MemCgroup | None = None, pid: int | None = None) -> Task:
        """Models copy_process() for the parts memory cares about: pid, memory cgroup
        (inherited from the parent unless given) and the kernel stack."""
        if pid is None:
            while self.next_pid in self.tasks:
                self.next_pid += 1
            pid = self.next_pid
            self.next_pid += 1
        if memcg is None:
            memcg = parent.memcg if parent is not None and parent.memcg is not None else self.memcgs.root
        task = Task(pid=pid, comm=comm[:15], uid=uid, oom_score_adj=oom_score_adj, mm=None, parent=parent,
                    memcg=memcg, start_ns=self.now_ns)
        saved, self.current = self.current, task
        try:
            task.kernel_stack_pfns = self.alloc_pages(THREAD_SIZE_PAGES, "alloc_thread_stack_node", GFP_KERNEL,
                                                      kmem=True)
        finally:
            self.current = saved
        self.mem_map.flags[task.kernel_stack_pfns] = PG_KERNEL
        self.stat.nr_kernel_stack_pages += THREAD_SIZE_PAGES
        self.tasks[pid] = task
        return task

    # ------------------------------------------------------------------ memory cgroups

    def cgroup_mkdir(self, path: str, max_bytes: int, swap_max_bytes: int) -> MemCgroup:
        """mkdir of a memory cgroup (mem_cgroup_css_alloc()) with memory.max and
        memory.swap.max written: ``max_bytes`` 0 and ``swap_max_bytes`` -1 mean no
        limit. Its LRU sizes get a row; a cgroup event records it."""
        max_pages = max_bytes >> PAGE_SHIFT if max_bytes else UNLIMITED
        swap_max = swap_max_bytes >> PAGE_SHIFT if swap_max_bytes >= 0 else UNLIMITED
        memcg = self.memcgs.mkdir(path, max_pages, swap_max)
        if memcg.id >= self.memcg_lru.shape[0]:
            self.memcg_lru = np.vstack([self.memcg_lru, np.zeros_like(self.memcg_lru)])
            self.memcg_dirty = np.concatenate([self.memcg_dirty, np.zeros_like(self.memcg_dirty)])
            self.memcg_writeback = np.concatenate([self.memcg_writeback, np.zeros_like(self.memcg_writeback)])
        self.emit(tp.CGROUP, op="mkdir", path=path, memcg_id=memcg.id, limit_bytes=max_bytes, task_pid=0)
        return memcg

    def cgroup_attach(self, task: Task, memcg: MemCgroup) -> None:
        """``task`` written to ``memcg``'s cgroup.procs (cgroup_attach_task()),
        recorded as a cgroup event. Simplified: the task's memcg was set when it
        was created (new_task()), so nothing was charged elsewhere before."""
        self.emit(tp.CGROUP, op="attach", path=memcg.path, memcg_id=memcg.id, limit_bytes=0, task_pid=task.pid)

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
        return allowed + self.swap.nr_pages

    def vm_enough_memory(self, mm: MmStruct | None, nr_pages: int, cap_sys_admin: bool, op: str = "") -> bool:
        """Models __vm_enough_memory() (5.4+): charge ``nr_pages`` to Committed_AS
        and check the overcommit policy; on refusal the charge is undone and a
        vm_enough_memory event says why."""
        committed_before = self.committed_pages
        self.committed_pages += nr_pages
        mode = self.sysctls["vm.overcommit_memory"]
        if mode == 1:
            return True
        if mode == 0:
            allowed = self.alloc.totalram_pages + self.swap.nr_pages
            if nr_pages <= allowed:
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
        self.emit(tp.VM_ENOUGH_MEMORY, nr_pages=nr_pages, committed_bytes=committed_before * PAGE_SIZE,
                  limit_bytes=max(allowed, 0) * PAGE_SIZE, mode=mode, op=op)
        return False

    def vm_unacct_memory(self, nr_pages: int) -> None:
        self.committed_pages -= nr_pages

    # ------------------------------------------------------------------ lookups

    def vma_of(self, task: Task, handle: str) -> VmArea | None:
        return task.mm.by_handle(handle) if task.mm else None
