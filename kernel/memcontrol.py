"""Memory cgroups: a hierarchy of page counters with limits, mm/memcontrol.c and
mm/page_counter.c as of 6.18 (read in 6.18.19), with the version differences named.

Every user page (anonymous, page cache, shmem) and the kernel memory a task
allocates for itself (page tables, kernel stack: __GFP_ACCOUNT) is charged to the
memory cgroup of the task that caused the allocation, and to every ancestor; a
charge that would take any of them over its limit first reclaims from that cgroup
(try_charge_memcg(): up to MAX_RECLAIM_RETRIES rounds), then invokes the memcg OOM
killer (mem_cgroup_out_of_memory()); see Kernel.try_charge().

How a charge reaches the page counters (try_charge_memcg(), 6.x):

- the per-CPU stock (memcg_stock_pcp) is consumed first; a charge that finds none
  charges MEMCG_CHARGE_BATCH (64) pages at once and keeps what it did not need in
  the stock (refill_stock()), so usage runs up to 63 pages ahead of the pages in
  use; a failure drains the stock of the cgroup over its limit (drain_all_stock());
- on cgroup v1 the memory+swap counter (memsw) is charged first and the memory
  counter after it; when memsw is the one over its limit, reclaim may not swap;
- every page_counter_try_charge() that fails counts in the failing counter's
  failcnt: the batch attempt, then the attempt of the pages actually asked for.
  Since 6.15 (PAGE_COUNTER_TRACK_FAILCNT) only a cgroup v1 memory counter counts
  (memsw never does, so memory.failcnt stays 0 when memsw is the limit that is
  hit), and a v2 OOM report prints memory.events max instead.

Simplified: one CPU, so one stock (of one cgroup before 6.16, seven after, the
oldest drained first where the kernel drains a random slot); a charge of n pages
stands for n single-page charges (no large folios), and when it does not fit it is
retried whole after reclaim; the memory and kmem counters are one (kmem usage is a
part of usage, as v1 prints it); no soft limits, no memory.high throttling, no
memory.min/low protection; pages stay charged to the cgroup that first faulted
them (no recharging on task migration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memtrace.linux.version import (
    DEFAULT_KERNEL_VERSION,
    MEMCG_MULTI_STOCK,
    PAGE_COUNTER_TRACK_FAILCNT,
    KernelVersion,
    parse_kernel_version,
)

UNLIMITED = 1 << 62
#: include/linux/memcontrol.h: pages a charge takes from the page counter at once.
MEMCG_CHARGE_BATCH = 64
#: mm/memcontrol.c (6.16+): memory cgroups whose charge one CPU's stock caches.
NR_MEMCG_STOCK = 7


@dataclass(eq=False)
class MemCgroup:
    """Models struct mem_cgroup: its page counters (pages, hierarchical) and events.

    ``memsw_max_pages`` is v1 memory.memsw.limit_in_bytes (memory.max plus the
    scenario's swap_max; unlimited on v2 or without swap_max); ``usage_pages``
    includes the charge held in the stock; ``watermark_pages`` is the largest usage
    seen (v1 max_usage_in_bytes, v2 memory.peak); ``failcnt`` and ``memsw_failcnt``
    are the counters' failcnt; ``events_max`` is memory.events max (MEMCG_MAX: a
    charge over the limit that went to reclaim).
    """

    id: int
    path: str
    parent: MemCgroup | None
    max_pages: int = UNLIMITED
    swap_max_pages: int = UNLIMITED
    memsw_max_pages: int = UNLIMITED
    usage_pages: int = 0  # page_counter usage: this cgroup and its descendants
    kmem_pages: int = 0  # page tables and kernel stacks, within usage
    swap_pages: int = 0
    watermark_pages: int = 0
    failcnt: int = 0
    memsw_failcnt: int = 0
    events_max: int = 0
    oom_kills: int = 0
    pgfault: int = 0
    pgmajfault: int = 0
    pgpgin: int = 0  # pages charged here (v1 memory.stat pgpgin)
    pgpgout: int = 0  # pages uncharged here
    children: list[MemCgroup] = field(default_factory=list)

    def ancestors(self) -> list[MemCgroup]:
        """This cgroup and every ancestor up to the root, nearest first."""
        out: list[MemCgroup] = []
        node: MemCgroup | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def subtree_ids(self) -> list[int]:
        """Ids of this cgroup and all its descendants."""
        out = [self.id]
        for child in self.children:
            out.extend(child.subtree_ids())
        return out

    @property
    def memsw_usage_pages(self) -> int:
        """The v1 memory+swap counter: memory usage plus swap charged."""
        return self.usage_pages + self.swap_pages

    def own_margin(self) -> int:
        """Models mem_cgroup_margin(): pages this cgroup's own counters (memory, and
        memsw on v1) can still take."""
        return max(0, min(self.max_pages - self.usage_pages, self.memsw_max_pages - self.memsw_usage_pages))

    def margin(self) -> int:
        """Pages that can still be charged before some ancestor hits a limit (the
        stock aside: see MemcgTree.charge_room())."""
        return min(min(m.max_pages - m.usage_pages, m.memsw_max_pages - m.memsw_usage_pages)
                   for m in self.ancestors())

    def over_limit(self, nr_pages: int) -> MemCgroup | None:
        """The nearest cgroup (this or an ancestor) that charging would overflow."""
        for m in self.ancestors():
            if m.usage_pages + nr_pages > m.max_pages or m.memsw_usage_pages + nr_pages > m.memsw_max_pages:
                return m
        return None


@dataclass(frozen=True)
class ChargeFailure:
    """A charge that did not fit: the cgroup whose counter is over its limit
    (mem_over_limit) and whether that counter is memsw (then reclaim may not swap)."""

    memcg: MemCgroup
    memsw: bool


class MemcgTree:
    """All memory cgroups of the machine (id 1 is the root ``/``) and the one CPU's
    charge stock.

    ``cgroup_version`` and ``kernel_version`` decide memsw accounting (v1), which
    counters count failcnt, and how many cgroups the stock caches.
    """

    def __init__(self, cgroup_version: int = 2, kernel_version: str = DEFAULT_KERNEL_VERSION) -> None:
        self.root = MemCgroup(id=1, path="/", parent=None)
        self.by_id: dict[int, MemCgroup] = {1: self.root}
        self.by_path: dict[str, MemCgroup] = {"/": self.root}
        self.cgroup_version = cgroup_version
        version: KernelVersion = parse_kernel_version(kernel_version)
        #: do_memsw_account(): the memsw counter exists (cgroup v1).
        self.memsw_account = cgroup_version == 1
        self.track_failcnt_v1_only = version >= PAGE_COUNTER_TRACK_FAILCNT
        self.stock_slots = NR_MEMCG_STOCK if version >= MEMCG_MULTI_STOCK else 1
        #: memcg_stock_pcp of the one CPU: memcg id -> pages, oldest slot first.
        self.stock: dict[int, int] = {}

    def mkdir(self, path: str, max_pages: int = UNLIMITED, swap_max_pages: int = UNLIMITED) -> MemCgroup:
        """Create ``path`` (its parent must exist). On v1 the memsw limit is
        ``max_pages + swap_max_pages`` when both are limits."""
        if path in self.by_path:
            raise ValueError(f"cgroup {path!r} exists")
        parent_path = path.rsplit("/", 1)[0] or "/"
        parent = self.by_path.get(parent_path)
        if parent is None:
            raise ValueError(f"cgroup {path!r}: parent {parent_path!r} does not exist")
        memsw_max = UNLIMITED
        if self.memsw_account and max_pages < UNLIMITED and swap_max_pages < UNLIMITED:
            memsw_max = max_pages + swap_max_pages
        memcg = MemCgroup(id=len(self.by_id) + 1, path=path, parent=parent, max_pages=max_pages,
                          swap_max_pages=swap_max_pages, memsw_max_pages=memsw_max)
        parent.children.append(memcg)
        self.by_id[memcg.id] = memcg
        self.by_path[path] = memcg
        return memcg

    # ------------------------------------------------------------------ charging

    def charge_room(self, memcg: MemCgroup) -> int:
        """Pages ``memcg`` can charge before a page counter fails: its stock plus
        the room every ancestor's counters have left."""
        return self.stock.get(memcg.id, 0) + memcg.margin()

    def _fail_at(self, chain: list[MemCgroup], extra: int, size: int) -> ChargeFailure | None:
        """Which counter page_counter_try_charge() of ``size`` pages fails at, with
        ``extra`` pages already charged to every ancestor: memsw first (v1), then
        memory, each walked from the leaf up. None if both take it."""
        if self.memsw_account:
            for m in chain:
                if m.memsw_usage_pages + extra + size > m.memsw_max_pages:
                    return ChargeFailure(m, True)
        for m in chain:
            if m.usage_pages + extra + size > m.max_pages:
                return ChargeFailure(m, False)
        return None

    def count_failures(self, failure: ChargeFailure, times: int) -> None:
        """Count ``times`` more failed attempts at ``failure``'s counter."""
        self._count_failure(failure, times)

    def _count_failure(self, failure: ChargeFailure, times: int = 1) -> None:
        """failcnt of a failed page_counter_try_charge(): since 6.15 only a v1
        memory counter counts (track_failcnt is set on the memory counter of a
        non-root v1 cgroup, and read from the counter charged, a leaf)."""
        if times <= 0:
            return
        if self.track_failcnt_v1_only:
            if self.cgroup_version == 1 and not failure.memsw:
                failure.memcg.failcnt += times
        elif failure.memsw:
            failure.memcg.memsw_failcnt += times
        else:
            failure.memcg.failcnt += times

    def try_charge_pages(self, memcg: MemCgroup, nr_pages: int, kmem: bool = False,
                         first_attempt: bool = True) -> ChargeFailure | None:
        """Charge ``nr_pages`` as that many single-page try_charge_memcg() passes
        would, up to the first page that does not fit; returns None when every page
        was charged, else what failed (nothing is charged then).

        Each page takes the stock first; without stock it charges a batch of
        MEMCG_CHARGE_BATCH and stocks the rest; once the counters have less than a
        batch of room each page's batch attempt fails (one failcnt) and the page
        alone is charged. The page that does not fit fails its batch attempt (on a
        first attempt: a retry after reclaim charges the page alone) and its own.
        Simplified: the counter every batch attempt of one call fails at is the one
        it fails at first; a request that does not fit whole charges nothing, so
        the batch failures of its pages that did fit are counted when it is
        charged whole (after reclaim), or never if it is not.
        """
        chain = memcg.ancestors()
        if memcg.parent is None:  # the root has no limit; the kernel charges it nothing
            self._commit(chain, memcg, nr_pages, 0, nr_pages, kmem)
            return None
        batch = MEMCG_CHARGE_BATCH
        stocked = self.stock.get(memcg.id, 0)
        from_stock = min(stocked, nr_pages)
        left = nr_pages - from_stock
        room = memcg.margin()
        batches = min(-(-left // batch), max(room, 0) // batch)
        covered = min(batches * batch, left)
        singles = min(left - covered, max(room - batches * batch, 0))
        if left - covered - singles > 0:
            extra = batches * batch + singles
            failure = self._fail_at(chain, extra, 1)
            assert failure is not None
            if first_attempt:
                self._count_failure(self._fail_at(chain, extra, batch) or failure)
            self._count_failure(failure)
            return failure
        if singles:
            at = self._fail_at(chain, batches * batch, batch)
            if at is not None:
                self._count_failure(at, singles)
        if from_stock:
            self.stock[memcg.id] = stocked - from_stock
        self._commit(chain, memcg, batches * batch + singles, batches * batch - covered, nr_pages, kmem)
        return None

    def _commit(self, chain: list[MemCgroup], memcg: MemCgroup, counter_pages: int, to_stock: int,
                nr_pages: int, kmem: bool) -> None:
        """page_counter_charge() of ``counter_pages`` up the hierarchy, of which
        ``to_stock`` go to the stock; ``nr_pages`` are now in use."""
        memcg.pgpgin += nr_pages
        for m in chain:
            m.usage_pages += counter_pages
            if m.usage_pages > m.watermark_pages:
                m.watermark_pages = m.usage_pages
            if kmem:
                m.kmem_pages += nr_pages
        if to_stock:
            self.refill_stock(memcg, to_stock)

    def commit_charge(self, memcg: MemCgroup, nr_pages: int, kmem: bool = False) -> None:
        """page_counter_charge() of ``nr_pages`` in use, past any limit (a forced
        charge)."""
        self._commit(memcg.ancestors(), memcg, nr_pages, 0, nr_pages, kmem)

    def _page_counter_uncharge(self, memcg: MemCgroup, nr_pages: int) -> None:
        for m in memcg.ancestors():
            m.usage_pages -= nr_pages

    def cancel_charge(self, memcg: MemCgroup, nr_pages: int, kmem: bool = False) -> None:
        """Models cancel_charge(): a charge whose allocation then failed is returned."""
        memcg.pgpgin -= nr_pages
        for m in memcg.ancestors():
            m.usage_pages -= nr_pages
            if kmem:
                m.kmem_pages -= nr_pages

    def refill_stock(self, memcg: MemCgroup, nr_pages: int) -> None:
        """Models refill_stock(): charge already taken from the counters is kept for
        the next charges of ``memcg``; past MEMCG_CHARGE_BATCH the cgroup's stock
        goes back to the counters; a new cgroup takes a slot, the oldest one's
        stock drained when all are in use."""
        if memcg.parent is None or nr_pages > MEMCG_CHARGE_BATCH:
            self._page_counter_uncharge(memcg, nr_pages)
            return
        if memcg.id not in self.stock and len(self.stock) >= self.stock_slots:
            self.drain_stock(next(iter(self.stock)))
        stocked = self.stock.get(memcg.id, 0) + nr_pages
        self.stock[memcg.id] = stocked
        if stocked > MEMCG_CHARGE_BATCH:
            self.drain_stock(memcg.id)

    def drain_stock(self, memcg_id: int) -> None:
        """Models drain_stock(): one slot's stocked charge goes back to its counters."""
        pages = self.stock.pop(memcg_id, 0)
        if pages:
            self._page_counter_uncharge(self.by_id[memcg_id], pages)

    def drain_all_stock(self, root: MemCgroup) -> None:
        """Models drain_all_stock(): the stock of ``root`` and its descendants."""
        ids = set(root.subtree_ids())
        for memcg_id in [i for i in self.stock if i in ids]:
            self.drain_stock(memcg_id)

    def uncharge_pfns(self, memcg_ids: np.ndarray, kmem: bool = False) -> None:
        """Uncharge one page per entry of ``memcg_ids`` (0 = not charged): user pages
        straight from the counters (uncharge_batch()), kernel pages through the
        stock (obj_cgroup_uncharge_pages() -> refill_stock())."""
        if not len(memcg_ids):
            return
        counts = np.bincount(memcg_ids.astype(np.int64), minlength=2)
        for memcg_id in np.flatnonzero(counts[1:]) + 1:
            n = int(counts[memcg_id])
            memcg = self.by_id[int(memcg_id)]
            memcg.pgpgout += n
            if kmem:
                for m in memcg.ancestors():
                    m.kmem_pages -= n
                self.refill_stock(memcg, n)
            else:
                self._page_counter_uncharge(memcg, n)

    def charge_swap(self, memcg_ids: np.ndarray, sign: int) -> None:
        """Swap entries charged (+1) or uncharged (-1) to the pages' cgroups."""
        if not len(memcg_ids):
            return
        counts = np.bincount(memcg_ids.astype(np.int64), minlength=2)
        for memcg_id in np.flatnonzero(counts[1:]) + 1:
            for m in self.by_id[int(memcg_id)].ancestors():
                m.swap_pages += sign * int(counts[memcg_id])
