"""Page reclaim: LRU aging, get_scan_count, shrink lists, kswapd. mm/vmscan.c 6.13.

The classic two-list LRU (no MGLRU). A reclaim pass (:func:`shrink_node`) walks
priorities from DEF_PRIORITY (12) down; at each it asks :func:`get_scan_count` how
many pages of each list to look at (``size >> priority`` weighted by swappiness and
the recent reclaim cost of each type), ages the active lists when the inactive ones
are low (:func:`shrink_active_list`), and reclaims from the inactive lists
(:func:`shrink_inactive_list`): clean file pages are freed, dirty ones are handed to
the flusher first, anonymous and shmem pages go to swap or, without swap, stay.

Simplified, and named where it matters: no MGLRU; no lumpy/compaction; a reclaim
call may aim at more than SWAP_CLUSTER_MAX pages (the shortfall of the allocation
it serves) so a large allocation costs one pass, not thousands; dirty pages found
by reclaim are written by the flusher, never by kswapd's own pageout(); executable
mappings get no special protection; refault distance uses one node-wide
nonresident age (mm/workingset.c without per-memcg ages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memtrace.tracer import tracepoints as tp

from . import costs, filemap, swap
from .engine import TaskGen
from .page_alloc import (
    PG_ACTIVE,
    PG_DIRTY,
    PG_LRU,
    PG_MLOCKED,
    PG_PINNED,
    PG_REFERENCED,
    PG_SWAPBACKED,
    PG_UNEVICTABLE,
    PG_WRITEBACK,
    PG_YOUNG,
)

if TYPE_CHECKING:
    from .kernel import Kernel
    from .memcontrol import MemCgroup

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_RECLAIM_RETRIES = 16
#: Pages isolated per shrink_inactive_list() call at least (the kernel takes
#: SWAP_CLUSTER_MAX = 32 at a time; larger batches cost fewer passes, and may free
#: up to a batch more than asked).
RECLAIM_BATCH = 256

INACTIVE_ANON, ACTIVE_ANON, INACTIVE_FILE, ACTIVE_FILE, UNEVICTABLE = range(5)
LRU_MASK = PG_LRU | PG_ACTIVE | PG_SWAPBACKED | PG_UNEVICTABLE
LRU_BITS = {
    INACTIVE_ANON: PG_LRU | PG_SWAPBACKED,
    ACTIVE_ANON: PG_LRU | PG_SWAPBACKED | PG_ACTIVE,
    INACTIVE_FILE: PG_LRU,
    ACTIVE_FILE: PG_LRU | PG_ACTIVE,
}
_U16 = np.uint16


def lru_of(flags: np.ndarray) -> np.ndarray:
    """The LRU list index of each page (pages must be on an LRU)."""
    out = np.where((flags & PG_SWAPBACKED) != 0, INACTIVE_ANON, INACTIVE_FILE)
    out = out + ((flags & PG_ACTIVE) != 0)
    return np.where((flags & PG_UNEVICTABLE) != 0, UNEVICTABLE, out)


class NodeLru:
    """The node-wide order of one LRU list, kept between reclaim passes.

    ``pfns`` holds, oldest first, the pages that were on the list when it was last
    sorted, with the lru_gen stamp each had then. Every move between lists and
    every putback restamps a page, so an entry whose page now has another stamp (or
    is on another list) is stale and skipped; pages stamped after the sort are
    younger than every entry and are sorted in when the entries run out.
    """

    def __init__(self, lru: int, memcg_ids: tuple[int, ...] | None = None) -> None:
        self.lru = lru
        self.memcg_ids = memcg_ids
        self.pfns = np.empty(0, dtype=np.int64)
        self.gens = np.empty(0, dtype=np.int64)
        self.pos = 0
        self.horizon = 0  # pages stamped before this are in pfns (if on the list)

    def refill(self, k: Kernel) -> None:
        mem = k.mem_map
        cand = np.flatnonzero(mem.lru_gen >= self.horizon)
        cand = cand[(mem.flags[cand] & LRU_MASK) == LRU_BITS[self.lru]]
        if self.memcg_ids is not None:
            cand = cand[np.isin(mem.memcg[cand], self.memcg_ids)]
        gens = mem.lru_gen[cand]
        order = np.argsort(gens, kind="stable")
        rest = slice(self.pos, None)
        self.pfns = np.concatenate([self.pfns[rest], cand[order]])
        self.gens = np.concatenate([self.gens[rest], gens[order]])
        self.pos = 0
        self.horizon = k.lru_clock


class NodeQueue:
    """A reclaim pass's view of one LRU list of the node, or of a memcg subtree's
    lruvecs (see :class:`NodeLru`)."""

    def __init__(self, k: Kernel, lru: int, memcg_ids: list[int] | None = None) -> None:
        self.k = k
        self.lru = lru
        key = tuple(sorted(memcg_ids)) if memcg_ids is not None else None
        cache = k.lru_order.get((key, lru))
        if cache is None:
            cache = k.lru_order[(key, lru)] = NodeLru(lru, key)
        self.cache: NodeLru = cache
        self.ids = list(key) if key is not None else None

    def __len__(self) -> int:
        if self.ids is None:
            return int(getattr(self.k.stat, "nr_" + tp.LRU_LISTS[self.lru]))
        return int(self.k.memcg_lru[self.ids, self.lru].sum())

    def take(self, n: int) -> np.ndarray:
        mem = self.k.mem_map
        c = self.cache
        out: list[np.ndarray] = []
        need = n
        refilled = False
        while need > 0:
            if c.pos >= len(c.pfns):
                if refilled:
                    break
                c.refill(self.k)
                refilled = True
                continue
            end = min(len(c.pfns), c.pos + max(2 * need, 1024))
            chunk, gens = c.pfns[c.pos:end], c.gens[c.pos:end]
            valid = (mem.lru_gen[chunk] == gens) & ((mem.flags[chunk] & LRU_MASK) == LRU_BITS[self.lru])
            idx = np.flatnonzero(valid)
            if len(idx) > need:
                # Consume up to the need-th valid entry; the rest stays queued.
                cut = idx[need - 1] + 1
                out.append(chunk[idx[:need]])
                c.pos += int(cut)
                need = 0
            else:
                out.append(chunk[idx])
                need -= len(idx)
                c.pos = end
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def put_head(self, pfns: np.ndarray) -> None:
        """Pages put back were restamped: they rejoin through the next refill."""


@dataclass
class ScanControl:
    """Models struct scan_control: what one reclaim call wants and what it did."""

    kind: str  # "kswapd", "direct" or "memcg"
    nr_to_reclaim: int
    may_swap: bool = True
    memcg_ids: list[int] | None = None
    memcg_path: str = ""
    priority: int = DEF_PRIORITY
    nr_scanned: int = 0
    nr_reclaimed: int = 0
    may_deactivate_anon: bool = False
    may_deactivate_file: bool = False
    cache_trim_mode: bool = False
    queues: dict[int, NodeQueue] = field(default_factory=dict)


# ---------------------------------------------------------------------- lists


def lru_size(sc: ScanControl, lru: int) -> int:
    return len(sc.queues[lru])


def inactive_is_low(sc: ScanControl, file: bool) -> bool:
    """Models inactive_is_low(): inactive * ratio < active, ratio = sqrt(10 * GB)."""
    inactive = lru_size(sc, INACTIVE_FILE if file else INACTIVE_ANON)
    active = lru_size(sc, ACTIVE_FILE if file else ACTIVE_ANON)
    gb = (inactive + active) >> (30 - 12)
    ratio = int(np.sqrt(10 * gb)) if gb else 1
    return inactive * ratio < active


def _move(k: Kernel, pfns: np.ndarray, from_lru: int, to_lru: int, reason: str) -> None:
    """Move pages between LRU lists: flags, counters, stamps and lru_move events."""
    if not len(pfns):
        return
    mem = k.mem_map
    names = tp.LRU_LISTS
    st = k.stat
    setattr(st, "nr_" + names[from_lru], getattr(st, "nr_" + names[from_lru]) - len(pfns))
    setattr(st, "nr_" + names[to_lru], getattr(st, "nr_" + names[to_lru]) + len(pfns))
    if to_lru in (ACTIVE_ANON, ACTIVE_FILE):
        mem.flags[pfns] |= PG_ACTIVE
    else:
        mem.flags[pfns] &= ~_U16(PG_ACTIVE)
    if to_lru == UNEVICTABLE:
        mem.flags[pfns] |= PG_UNEVICTABLE
    elif from_lru == UNEVICTABLE:
        mem.flags[pfns] &= ~_U16(PG_UNEVICTABLE)
    mem.lru_gen[pfns] = np.arange(k.lru_clock, k.lru_clock + len(pfns))
    k.lru_clock += len(pfns)
    ids = mem.memcg[pfns].astype(np.int64)
    moved = np.bincount(ids, minlength=k.memcg_lru.shape[0])
    k.memcg_lru[:, from_lru] -= moved
    k.memcg_lru[:, to_lru] += moved
    k.emit(tp.LRU_MOVE, len(pfns), pfn=pfns, from_lru=from_lru, to_lru=to_lru, reason=reason,
           memcg_id=mem.memcg[pfns])


def _restamp(k: Kernel, pfns: np.ndarray) -> None:
    """Put pages back at the head (young end) of the list they are on."""
    if len(pfns):
        k.mem_map.lru_gen[pfns] = np.arange(k.lru_clock, k.lru_clock + len(pfns))
        k.lru_clock += len(pfns)


def activate_pages(k: Kernel, pfns: np.ndarray, reason: str) -> None:
    """Move inactive evictable pages of any type to their active list."""
    flags = k.mem_map.flags[pfns]
    for inactive, active in ((INACTIVE_ANON, ACTIVE_ANON), (INACTIVE_FILE, ACTIVE_FILE)):
        sel = pfns[(flags & LRU_MASK) == LRU_BITS[inactive]]
        _move(k, sel, inactive, active, reason)


def mlock_pages(k: Kernel, pfns: np.ndarray) -> None:
    """Models mlock_folio(): pages of a VM_LOCKED mapping go to the unevictable
    list and count in Mlocked."""
    mem = k.mem_map
    sel = pfns[((mem.flags[pfns] & (PG_MLOCKED | PG_LRU)) == PG_LRU)]
    if not len(sel):
        return
    sel = np.unique(sel)
    lists = lru_of(mem.flags[sel])
    for lru in (INACTIVE_ANON, ACTIVE_ANON, INACTIVE_FILE, ACTIVE_FILE):
        _move(k, sel[lists == lru], lru, UNEVICTABLE, "mlock")
    mem.flags[sel] |= PG_MLOCKED | PG_UNEVICTABLE
    k.stat.nr_mlock += len(sel)


def munlock_pages(k: Kernel, pfns: np.ndarray) -> None:
    """Models munlock_folio(): mlocked pages go back to their inactive list
    (simplified: a page locked through two mappings is unlocked by either)."""
    mem = k.mem_map
    sel = pfns[(mem.flags[pfns] & PG_MLOCKED) != 0]
    if not len(sel):
        return
    sel = np.unique(sel)
    mem.flags[sel] &= ~_U16(PG_MLOCKED | PG_UNEVICTABLE)
    k.stat.nr_mlock -= len(sel)
    anon = (mem.flags[sel] & PG_SWAPBACKED) != 0
    _move(k, sel[anon], UNEVICTABLE, INACTIVE_ANON, "munlock")
    _move(k, sel[~anon], UNEVICTABLE, INACTIVE_FILE, "munlock")


def mapping_set_unevictable(k: Kernel, pfns: np.ndarray, unevictable: bool) -> None:
    """SHM_LOCK / SHM_UNLOCK (shmem_lock() + check_move_unevictable_folios()): the
    pages of a locked shmem object move to the unevictable list and back."""
    mem = k.mem_map
    flags = mem.flags[pfns]
    on_lru = pfns[((flags & PG_LRU) != 0) & ((flags & PG_MLOCKED) == 0)]
    if unevictable:
        lists = lru_of(mem.flags[on_lru])
        for lru in (INACTIVE_ANON, ACTIVE_ANON, INACTIVE_FILE, ACTIVE_FILE):
            _move(k, on_lru[lists == lru], lru, UNEVICTABLE, "mlock")
    else:
        sel = on_lru[(mem.flags[on_lru] & PG_UNEVICTABLE) != 0]
        _move(k, sel, UNEVICTABLE, INACTIVE_ANON, "munlock")


# ---------------------------------------------------------------------- scan balance


def lru_note_cost(k: Kernel, file: bool, nr_io: int, nr_rotated: int) -> None:
    """Models lru_note_cost(): I/O and rotations make a type costlier to reclaim;
    both costs halve when they outgrow a quarter of the LRU."""
    cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
    if file:
        k.file_cost += cost
    else:
        k.anon_cost += cost
    st = k.stat
    lrusize = st.nr_inactive_anon + st.nr_active_anon + st.nr_inactive_file + st.nr_active_file
    if k.file_cost + k.anon_cost > lrusize // 4:
        k.file_cost //= 2
        k.anon_cost //= 2


def get_scan_count(k: Kernel, sc: ScanControl) -> dict[int, int]:
    """Models get_scan_count() (6.13): pages to scan on each evictable list."""
    swappiness = k.sysctls["vm.swappiness"]
    sizes = {lru: lru_size(sc, lru) for lru in LRU_BITS}
    balance = "fract"
    if not sc.may_swap or k.swap.nr_free <= 0 or (sc.kind == "memcg" and swappiness == 0):
        balance = "file"
    elif sc.priority == 0 and swappiness:
        balance = "equal"
    elif sc.kind != "memcg" and _file_is_tiny(k, sc):
        balance = "anon"
    elif sc.cache_trim_mode:
        balance = "file"
    nr: dict[int, int] = {}
    if balance == "fract":
        total = k.anon_cost + k.file_cost
        anon_cost = total + k.anon_cost
        file_cost = total + k.file_cost
        total = anon_cost + file_cost
        ap = swappiness * (total + 1) // (anon_cost + 1)
        fp = (200 - swappiness) * (total + 1) // (file_cost + 1)
        denominator = ap + fp
    for lru, size in sizes.items():
        scan = size >> sc.priority
        file = lru in (INACTIVE_FILE, ACTIVE_FILE)
        if balance == "file":
            scan = scan if file else 0
        elif balance == "anon":
            scan = 0 if file else scan
        elif balance == "fract":
            scan = scan * (fp if file else ap) // denominator if denominator else 0
        nr[lru] = scan
    return nr


def _file_is_tiny(k: Kernel, sc: ScanControl) -> bool:
    """Global reclaim: file LRU + free pages below the sum of high watermarks."""
    file = lru_size(sc, INACTIVE_FILE) + lru_size(sc, ACTIVE_FILE)
    high = sum(z.wmark_high for z in k.alloc.zones)
    return file + k.alloc.nr_free_pages <= high and (lru_size(sc, INACTIVE_ANON) >> sc.priority) > 0


# ---------------------------------------------------------------------- shrinking


def shrink_active_list(k: Kernel, sc: ScanControl, lru: int, nr_to_scan: int) -> None:
    """Models shrink_active_list(): the oldest active pages move to the inactive list
    (their pte young bits are cleared on the way; no executable-page rotation)."""
    if nr_to_scan <= 0:
        return
    queue = sc.queues[lru]
    pfns = queue.take(nr_to_scan)
    if not len(pfns):
        return
    mem = k.mem_map
    pinned = (mem.flags[pfns] & PG_PINNED) != 0
    _restamp(k, pfns[pinned])
    queue.put_head(pfns[pinned])
    pfns = pfns[~pinned]
    mem.flags[pfns] &= ~_U16(PG_YOUNG | PG_REFERENCED)
    target = lru - 1  # ACTIVE_x -> INACTIVE_x
    _move(k, pfns, lru, target, "deactivate")
    sc.queues[target].put_head(pfns)
    k.advance(len(pfns) * costs.SCAN_PAGE_NS)


def shrink_inactive_list(k: Kernel, sc: ScanControl, lru: int, nr_to_scan: int) -> int:
    """Models shrink_inactive_list() + shrink_folio_list(): look at the oldest
    inactive pages, activate or keep referenced ones, free or swap out the rest.
    Returns pages reclaimed."""
    if nr_to_scan <= 0:
        return 0
    queue = sc.queues[lru]
    pfns = queue.take(nr_to_scan)
    if not len(pfns):
        return 0
    mem = k.mem_map
    file = lru == INACTIVE_FILE
    flags = mem.flags[pfns].copy()
    sc.nr_scanned += len(pfns)
    k.advance(len(pfns) * costs.SCAN_PAGE_NS)

    pinned = (flags & PG_PINNED) != 0
    young = (flags & PG_YOUNG) != 0
    referenced = (flags & PG_REFERENCED) != 0
    mem.flags[pfns] &= ~_U16(PG_YOUNG | PG_REFERENCED)
    # folio_check_references()
    activate = ~pinned & young & (referenced | (mem.mapcount[pfns] > 1))
    keep = ~pinned & young & ~activate
    mem.flags[pfns[keep]] |= PG_REFERENCED
    reclaim = ~pinned & ~young
    dirty = reclaim & ((flags & (PG_DIRTY | PG_WRITEBACK)) != 0) & file
    reclaim &= ~dirty
    no_swap = np.zeros(len(pfns), dtype=bool)
    if not file:
        if not sc.may_swap or k.swap.nr_free == 0:
            no_swap = reclaim.copy()
            reclaim[:] = False
        else:
            room = k.swap.nr_free
            idx = np.flatnonzero(reclaim)
            if len(idx) > room:
                no_swap[idx[room:]] = True
                reclaim[idx[room:]] = False

    # Referenced pages go to the active list; kept ones to the head of this one.
    _move(k, pfns[activate], lru, lru + 1, "activate")
    sc.queues[lru + 1].put_head(pfns[activate])
    rotate = keep | pinned | dirty
    _restamp(k, pfns[rotate])
    queue.put_head(pfns[rotate])
    # Anon/shmem pages that cannot go to swap are activated, as shrink_folio_list
    # does when add_to_swap() fails.
    _move(k, pfns[no_swap], lru, lru + 1, "activate")
    sc.queues[lru + 1].put_head(pfns[no_swap])

    victims = pfns[reclaim]
    nr_pageout = 0
    if file:
        dirty_pfns = pfns[dirty]
        if len(dirty_pfns):
            k.flusher_wakeup(mem.mapping[dirty_pfns], "reclaim")
        filemap.reclaim_file_pages(k, victims)
    else:
        nr_pageout = swap.swap_out_pages(k, victims)
    sc.nr_reclaimed += len(victims)
    lru_note_cost(k, file, nr_pageout, int(np.count_nonzero(activate | keep)))
    mapped_kept = int(np.count_nonzero((activate | keep) & (mem.mapcount[pfns] > 0)))
    k.emit(tp.SHRINK_LIST, lru=lru, priority=sc.priority, nr_scanned=len(pfns), nr_reclaimed=len(victims),
           nr_dirty=int(np.count_nonzero(dirty)), nr_activate=int(np.count_nonzero(activate | no_swap)),
           nr_mapped_kept=mapped_kept, nr_no_swap=int(np.count_nonzero(no_swap)), memcg=sc.memcg_path)
    return len(victims)


DEFAULT_SEEKS = 2


def shrink_slab(k: Kernel, sc: ScanControl) -> int:
    """Models shrink_slab() -> do_shrink_slab() for the superblock shrinker of the
    dentry and inode caches (kernel-mm-facts.md §5.7): super_cache_count() reports
    the freeable objects scaled by vm.vfs_cache_pressure / 100; the shrinker scans
    (freeable >> priority) * 4 / DEFAULT_SEEKS of them, at most twice the freeable.

    Simplified: the caches are the reclaimable slab allocated at boot, counted in
    pages rather than objects, every object unused and freeable. Memcg reclaim does
    not shrink them (the boot slab is charged to no cgroup). Returns pages freed.
    """
    if sc.memcg_ids is not None:
        return 0
    nr = len(k.boot_slab_reclaimable)
    if nr == 0:
        return 0
    freeable = nr * k.sysctls["vm.vfs_cache_pressure"] // 100
    if freeable == 0:
        return 0
    delta = min((freeable >> sc.priority) * 4 // DEFAULT_SEEKS, 2 * freeable)
    freed = min(delta, nr)
    if freed:
        pfns = k.boot_slab_reclaimable[nr - freed:]
        k.boot_slab_reclaimable = k.boot_slab_reclaimable[: nr - freed]
        k.alloc.free_pages(pfns)
        k.stat.nr_slab_reclaimable -= freed
    k.emit(tp.SHRINK_SLAB, shrinker="super_cache_scan", nr_objects=freeable, nr_to_scan=delta, freed=freed,
           priority=sc.priority)
    return freed


def shrink_node(k: Kernel, sc: ScanControl) -> int:
    """Models shrink_node() over the priority loop of do_try_to_free_pages() /
    balance_pgdat(): scan harder until ``nr_to_reclaim`` pages are freed or
    priority 0 has been tried. Returns pages reclaimed."""
    sc.queues = {lru: NodeQueue(k, lru, sc.memcg_ids) for lru in LRU_BITS}
    refaults = k.workingset_refault_file
    sc.may_deactivate_file = refaults != k.last_refaults_file or inactive_is_low(sc, file=True)
    sc.may_deactivate_anon = k.workingset_refault_anon != k.last_refaults_anon or inactive_is_low(sc, file=False)
    k.last_refaults_file = refaults
    k.last_refaults_anon = k.workingset_refault_anon
    for priority in range(DEF_PRIORITY, -1, -1):
        sc.priority = priority
        sc.cache_trim_mode = (lru_size(sc, INACTIVE_FILE) >> priority) > 0 and not sc.may_deactivate_file
        nr = get_scan_count(k, sc)
        for active, file in ((ACTIVE_ANON, False), (ACTIVE_FILE, True)):
            if (sc.may_deactivate_file if file else sc.may_deactivate_anon) or inactive_is_low(sc, file):
                shrink_active_list(k, sc, active, nr[active])
        for inactive in (INACTIVE_ANON, INACTIVE_FILE):
            # As shrink_lruvec(): scan this priority's quota in batches, stopping
            # early only once enough has been reclaimed. (Batches are sized by what
            # is still wanted, at least RECLAIM_BATCH, instead of SWAP_CLUSTER_MAX.)
            want = nr[inactive]
            while want > 0 and sc.nr_reclaimed < sc.nr_to_reclaim:
                batch = min(want, max(2 * (sc.nr_to_reclaim - sc.nr_reclaimed), RECLAIM_BATCH))
                if shrink_inactive_list(k, sc, inactive, batch) == 0 and not len(sc.queues[inactive]):
                    break
                want -= batch
        # shrink_node() shrinks slab after the LRUs, at the same priority.
        sc.nr_reclaimed += shrink_slab(k, sc)
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    k.flush_rss()
    return sc.nr_reclaimed


def try_to_free_pages(k: Kernel, nr_pages: int, gfp_flags: int, order: int = 0) -> int:
    """Models try_to_free_pages(): direct reclaim in the allocating task."""
    k.emit(tp.RECLAIM_BEGIN, kind="direct", order=order, gfp_flags=gfp_flags, memcg="")
    sc = ScanControl("direct", max(nr_pages, SWAP_CLUSTER_MAX))
    shrink_node(k, sc)
    k.emit(tp.RECLAIM_END, kind="direct", nr_scanned=sc.nr_scanned, nr_reclaimed=sc.nr_reclaimed, memcg="")
    k.reclaimed_direct += sc.nr_reclaimed
    return sc.nr_reclaimed


def try_to_free_mem_cgroup_pages(k: Kernel, memcg: MemCgroup, nr_pages: int, gfp_flags: int,
                                 may_swap: bool = True) -> int:
    """Models try_to_free_mem_cgroup_pages(): reclaim from one cgroup's subtree,
    swapping only when ``may_swap`` (MEMCG_RECLAIM_MAY_SWAP: the memsw counter is
    not the one over its limit, and v2 memory.swap.max has room)."""
    k.emit(tp.RECLAIM_BEGIN, kind="memcg", order=0, gfp_flags=gfp_flags, memcg=memcg.path)
    sc = ScanControl("memcg", max(nr_pages, SWAP_CLUSTER_MAX), memcg_ids=memcg.subtree_ids(),
                     memcg_path=memcg.path)
    sc.may_swap = may_swap
    shrink_node(k, sc)
    k.emit(tp.RECLAIM_END, kind="memcg", nr_scanned=sc.nr_scanned, nr_reclaimed=sc.nr_reclaimed, memcg=memcg.path)
    k.reclaimed_memcg += sc.nr_reclaimed
    return sc.nr_reclaimed


# ---------------------------------------------------------------------- kswapd


def pgdat_balanced(k: Kernel) -> bool:
    """Models pgdat_balanced(): some eligible zone is above its high watermark."""
    hz = k.alloc.highest_zoneidx
    return any(z.watermark_ok(z.wmark_high, hz, 0) for z in k.alloc.zones)


def kswapd(k: Kernel) -> TaskGen:
    """Models kswapd(): sleep until woken, then balance_pgdat() until the node is
    balanced at the high watermark (or hopeless after 16 failed runs), one
    reclaim pass per turn on the CPU."""
    task = k.kswapd_task
    while True:
        k.kswapd_sleeping = True
        yield k.kswapd_wait
        k.kswapd_sleeping = False
        k.current = task
        hz = k.alloc.highest_zoneidx
        k.emit(tp.KSWAPD_WAKE, nid=0, zid=hz, order=0)
        reclaimed = 0
        while not pgdat_balanced(k) and k.kswapd_failures < 16:
            # kswapd_shrink_node(): aim at the high watermarks of the eligible zones.
            target = sum(max(z.wmark_high, SWAP_CLUSTER_MAX) for z in k.alloc.zones)
            sc = ScanControl("kswapd", target)
            got = shrink_node(k, sc)
            reclaimed += got
            k.reclaimed_kswapd += got
            if got == 0:
                k.kswapd_failures += 1
            else:
                k.kswapd_failures = 0
            yield None
            k.current = task
        k.emit(tp.KSWAPD_SLEEP, nid=0, nr_reclaimed=reclaimed)
        k.kswapd_wait = k.new_signal()


def wakeup_kswapd(k: Kernel) -> None:
    """Models wakeup_kswapd(): wake a sleeping kswapd unless the node is hopeless or
    already balanced."""
    if k.kswapd_sleeping and k.kswapd_failures < 16 and not pgdat_balanced(k):
        k.engine.fire(k.kswapd_wait)

