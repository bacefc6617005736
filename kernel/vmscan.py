"""Page reclaim: LRU aging, get_scan_count, shrink lists, kswapd. mm/vmscan.c 6.13.

The classic two-list LRU (no MGLRU). A reclaim pass (:func:`shrink_node`) walks
priorities from DEF_PRIORITY (12) down; at each it asks :func:`get_scan_count` how
many pages of each list to look at (``size >> priority`` weighted by swappiness and
the recent reclaim cost of each type), ages the active lists when the inactive ones
are low (:func:`shrink_active_list`), and reclaims from the inactive lists
(:func:`shrink_inactive_list`): clean file pages are freed, dirty ones are handed to
the flusher first, anonymous and shmem pages go to swap or, without swap, stay.

Dirty and writeback page-cache pages are handled as 6.x does (shrink_folio_list()):
marked for immediate reclaim and activated, the flusher woken, reclaim throttled
waiting for writeback (cgroup v1, and kswapd) or when congested, only kswapd
writing pages itself; page_writeback.py ends their writeback and rotates them back.

Simplified, and named where it matters: no MGLRU; no lumpy/compaction; a reclaim
call may aim at more than SWAP_CLUSTER_MAX pages (the shortfall of the allocation
it serves) so a large allocation costs one pass, not thousands; executable
mappings get no special protection; refault distance uses one node-wide
nonresident age (mm/workingset.c without per-memcg ages); no NOPROGRESS or
ISOLATED throttling (one reclaimer at a time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memtrace.tracer import tracepoints as tp

from . import costs, filemap, page_writeback, rmap, swap
from .engine import TaskGen
from .page_alloc import (
    PG_ACTIVE,
    PG_ANON,
    PG_DIRTY,
    PG_LRU,
    PG_MLOCKED,
    PG_PINNED,
    PG_RECLAIM,
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
        rotated = self._take_rotated(n)
        if len(rotated):
            out.append(rotated)
            need -= len(rotated)
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
        if not out:
            return np.empty(0, dtype=np.int64)
        taken: np.ndarray = np.concatenate(out)
        if len(rotated) and len(out) > 1:
            # A rotated page has a fresh stamp: the sorted order may hold it too.
            _, first = np.unique(taken, return_index=True)
            taken = taken[np.sort(first)]
        return taken

    def _take_rotated(self, n: int) -> np.ndarray:
        """Up to ``n`` pages folio_rotate_reclaimable() put at the tail of this list
        (Kernel.lru_rotated), the last rotated first; entries whose page has moved
        on since are dropped."""
        rotated = self.k.lru_rotated.get(self.lru)
        if not rotated:
            return np.empty(0, dtype=np.int64)
        mem = self.k.mem_map
        pfns = np.concatenate([p for p, _ in rotated])
        gens = np.concatenate([g for _, g in rotated])
        valid = (mem.lru_gen[pfns] == gens) & ((mem.flags[pfns] & LRU_MASK) == LRU_BITS[self.lru])
        if self.ids is None:
            mine = valid
        else:
            member = np.zeros(max(self.ids) + 1, dtype=bool)
            member[self.ids] = True
            ids = mem.memcg[pfns].astype(np.int64)
            mine = valid & (ids < len(member)) & member[np.minimum(ids, len(member) - 1)]
        picked = np.flatnonzero(mine)[::-1][:n]
        valid[picked] = False
        self.k.lru_rotated[self.lru] = [(pfns[valid], gens[valid])] if valid.any() else []
        out: np.ndarray = pfns[picked]
        return out

    def put_head(self, pfns: np.ndarray) -> None:
        """Pages put back were restamped: they rejoin through the next refill."""


@dataclass
class ReclaimCounts:
    """The ``sc->nr`` counts of one shrink_node() pass: what shrink_folio_list()
    found about dirty and writeback pages (their sums decide PGDAT_DIRTY,
    PGDAT_WRITEBACK, the congested flags and throttling)."""

    dirty: int = 0
    unqueued_dirty: int = 0
    congested: int = 0
    writeback: int = 0
    immediate: int = 0
    taken: int = 0
    file_taken: int = 0


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
    nr: ReclaimCounts = field(default_factory=ReclaimCounts)
    memcg_id: int = 0  # the target memcg of cgroup reclaim


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


def move_pages(k: Kernel, pfns: np.ndarray, from_lru: int, to_lru: int, reason: str) -> None:
    """Move pages from one LRU list to another (their PG_swapbacked already says
    which kind of list they belong on): flags, counters, stamps, lru_move events."""
    _move(k, pfns, from_lru, to_lru, reason)


def deactivate_pages(k: Kernel, pfns: np.ndarray) -> None:
    """Models folio_deactivate() -> lru_deactivate(): active evictable pages move to
    their inactive list; inactive ones stay where they are."""
    lists = lru_of(k.mem_map.flags[pfns])
    for active in (ACTIVE_ANON, ACTIVE_FILE):
        _move(k, pfns[lists == active], active, active - 1, "deactivate")


def reclaim_pages(k: Kernel, pfns: np.ndarray) -> int:
    """Models reclaim_pages() -> shrink_folio_list() ignoring references (6.18), as
    MADV_PAGEOUT uses it on pages it isolated: clean page cache is dropped, lazily
    freed pages are discarded (or, written again, become anonymous and active),
    anonymous and shmem pages are swapped out while swap has room (else
    activated), page cache under writeback or dirty is marked for immediate
    reclaim and activated (this task does not write it). Returns pages freed.

    Simplified: a memory cgroup's swap limit is not checked here."""
    mem = k.mem_map
    flags = mem.flags[pfns]
    pfns = pfns[(flags & (PG_PINNED | PG_UNEVICTABLE)) == 0]
    flags = mem.flags[pfns]
    anon_page = (flags & PG_ANON) != 0
    swapbacked = (flags & PG_SWAPBACKED) != 0
    cache = ~anon_page & ~swapbacked
    busy = cache & ((flags & (PG_DIRTY | PG_WRITEBACK)) != 0)
    lazy = anon_page & ~swapbacked
    redirtied = lazy & ((flags & PG_DIRTY) != 0)
    to_swap = np.flatnonzero(swapbacked)
    no_swap = np.zeros(len(pfns), dtype=bool)
    no_swap[to_swap[k.swap.nr_free:]] = True
    mem.flags[pfns[busy]] |= PG_RECLAIM
    back = pfns[redirtied]
    mem.flags[back] = (mem.flags[back] | PG_SWAPBACKED) & ~_U16(PG_DIRTY)
    lists = lru_of(flags)
    for inactive in (INACTIVE_ANON, INACTIVE_FILE):
        sel = (busy | no_swap) & (lists == inactive)
        _move(k, pfns[sel], inactive, inactive + 1, "activate")
    for lru in (INACTIVE_FILE, ACTIVE_FILE):
        _move(k, pfns[redirtied & (lists == lru)], lru, ACTIVE_ANON, "activate")
    clean = cache & ~busy
    filemap.reclaim_file_pages(k, pfns[clean])
    discard_lazyfree_pages(k, pfns[lazy & ~redirtied])
    swapped = swap.swap_out_pages(k, pfns[swapbacked & ~no_swap])
    k.advance(len(pfns) * costs.SCAN_PAGE_NS)
    return int(np.count_nonzero(clean)) + int(np.count_nonzero(lazy & ~redirtied)) + swapped


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


def writeback_throttling_sane(k: Kernel, sc: ScanControl) -> bool:
    """Models writeback_throttling_sane(): global reclaim, and cgroup v2 reclaim
    (whose writers balance_dirty_pages() throttles per memcg); not cgroup v1
    reclaim, which has to wait for writeback itself."""
    return sc.kind != "memcg" or k.cgroup_version != 1


def shrink_inactive_list(k: Kernel, sc: ScanControl, lru: int, nr_to_scan: int) -> int:
    """Models shrink_inactive_list() + shrink_folio_list() (6.18): look at the
    oldest inactive pages, activate or keep referenced ones, free or swap out the
    rest. Returns pages reclaimed.

    Page-cache pages under writeback come first, whatever their references: kswapd
    seeing one marked for immediate reclaim while the node is flagged writeback
    counts it (nr_immediate) and activates it; cgroup v1 reclaim seeing one already
    marked waits for its write to finish (folio_wait_writeback()) and looks again;
    otherwise the page is marked (PG_reclaim, nr_writeback) and activated. A dirty
    page reclaim would free is written only by kswapd, once it meets it marked
    again with the node flagged dirty (pageout()); otherwise it is marked and
    activated, to be freed when its writeback ends (folio_rotate_reclaimable()).
    A lazily freed anonymous page (MADV_FREE, on the file list) is discarded,
    unless written again since: then it is anonymous again (swap-backed, active).
    When every page taken was dirty and not queued for writeback, the flusher is
    woken (wakeup_flusher_threads()) and cgroup v1 reclaim throttles
    (reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)).
    """
    if nr_to_scan <= 0:
        return 0
    page_writeback.writeback_end_io(k)
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
    anon_page = (flags & PG_ANON) != 0
    cache = ~pinned & ~anon_page & file
    # folio_check_dirty_writeback() and the three writeback cases.
    dirty = cache & ((flags & PG_DIRTY) != 0)
    writeback = cache & ((flags & PG_WRITEBACK) != 0)
    marked = (flags & PG_RECLAIM) != 0
    nr_dirty = int(np.count_nonzero(dirty | writeback))
    nr_unqueued_dirty = int(np.count_nonzero(dirty & ~writeback))
    nr_congested = int(np.count_nonzero(writeback & marked))
    kswapd = sc.kind == "kswapd"
    sane = writeback_throttling_sane(k, sc)
    immediate = writeback & marked & kswapd & k.pgdat_writeback
    wait = writeback & ~immediate & marked & (not sane)
    mark_wb = writeback & ~immediate & ~wait
    mem.flags[pfns[mark_wb]] |= PG_RECLAIM
    if wait.any():
        page_writeback.folio_wait_writeback(k, pfns[wait])
        flags[wait] = mem.flags[pfns[wait]]
    held = immediate | mark_wb | (wait & ((flags & PG_WRITEBACK) != 0))

    looked = ~pinned & ~held
    young = looked & ((flags & PG_YOUNG) != 0)
    referenced = (flags & PG_REFERENCED) != 0
    mem.flags[pfns[looked]] &= ~_U16(PG_YOUNG | PG_REFERENCED)
    # folio_check_references()
    activate = young & (referenced | (mem.mapcount[pfns] > 1))
    keep = young & ~activate
    mem.flags[pfns[keep]] |= PG_REFERENCED
    reclaim = looked & ~young
    # Dirty page-cache pages: only kswapd writes them, the second time round.
    dirty_reclaim = reclaim & cache & ((flags & PG_DIRTY) != 0)
    pageout = dirty_reclaim & kswapd & ((mem.flags[pfns] & PG_RECLAIM) != 0) & k.pgdat_dirty
    immediate_dirty = dirty_reclaim & ~pageout
    mem.flags[pfns[immediate_dirty]] |= PG_RECLAIM
    reclaim &= ~dirty_reclaim
    # A lazily freed page written since MADV_FREE cannot be discarded.
    redirtied = reclaim & file & anon_page & ((flags & PG_DIRTY) != 0)
    reclaim &= ~redirtied
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
    rotate = keep | pinned | pageout
    _restamp(k, pfns[rotate])
    queue.put_head(pfns[rotate])
    # Anon/shmem pages that cannot go to swap are activated, as shrink_folio_list
    # does when add_to_swap() fails; so are pages under or waiting for writeback.
    _move(k, pfns[no_swap | held | immediate_dirty], lru, lru + 1, "activate")
    sc.queues[lru + 1].put_head(pfns[no_swap | held | immediate_dirty])
    if redirtied.any():
        back = pfns[redirtied]
        mem.flags[back] = (mem.flags[back] | PG_SWAPBACKED) & ~_U16(PG_DIRTY)
        _move(k, back, lru, ACTIVE_ANON, "activate")

    victims = pfns[reclaim]
    nr_pageout = 0
    if file:
        if pageout.any():
            nr_pageout = page_writeback.write_dirty_pages(k, pfns[pageout])
        lazy = anon_page[reclaim]
        filemap.reclaim_file_pages(k, victims[~lazy])
        discard_lazyfree_pages(k, victims[lazy])
    else:
        nr_pageout = swap.swap_out_pages(k, victims)
    sc.nr_reclaimed += len(victims)
    lru_note_cost(k, file, nr_pageout, int(np.count_nonzero(activate | keep)))
    if nr_unqueued_dirty and nr_unqueued_dirty == len(pfns):
        page_writeback.wakeup_flusher_threads(k, "reclaim")
        if not sane:
            reclaim_throttle(k, sc, VMSCAN_THROTTLE_WRITEBACK)
    sc.nr.dirty += nr_dirty
    sc.nr.congested += nr_congested
    sc.nr.unqueued_dirty += nr_unqueued_dirty
    sc.nr.writeback += int(np.count_nonzero(mark_wb))
    sc.nr.immediate += int(np.count_nonzero(immediate))
    sc.nr.taken += len(pfns)
    if file:
        sc.nr.file_taken += len(pfns)
    mapped_kept = int(np.count_nonzero((activate | keep) & (mem.mapcount[pfns] > 0)))
    k.emit(tp.SHRINK_LIST, lru=lru, priority=sc.priority, nr_scanned=len(pfns), nr_reclaimed=len(victims),
           nr_dirty=nr_dirty, nr_activate=int(np.count_nonzero(activate | no_swap | held | immediate_dirty)),
           nr_mapped_kept=mapped_kept, nr_no_swap=int(np.count_nonzero(no_swap)), memcg=sc.memcg_path)
    return len(victims)


def discard_lazyfree_pages(k: Kernel, pfns: np.ndarray) -> None:
    """Models the MADV_FREE branch of shrink_folio_list(): a clean lazily freed
    anonymous page is unmapped (try_to_unmap_one() drops the pte and MM_ANONPAGES)
    and freed without any I/O; the next touch faults in a zeroed page. Emits
    lazyfree_discard per page."""
    if not len(pfns):
        return
    mem = k.mem_map
    owners = np.array([k.mm_owner.get(int(m), 0) for m in mem.mapping[pfns].tolist()], dtype=np.int32)
    k.emit(tp.LAZYFREE_DISCARD, len(pfns), pfn=pfns, owner=owners, index=mem.index[pfns], memcg_id=mem.memcg[pfns])
    rmap.try_to_unmap(k, pfns)
    k.free_pages(pfns)


#: enum vmscan_throttle_state, and how long reclaim_throttle() waits for each (jiffies).
VMSCAN_THROTTLE_WRITEBACK, VMSCAN_THROTTLE_ISOLATED, VMSCAN_THROTTLE_NOPROGRESS, VMSCAN_THROTTLE_CONGESTED = range(4)
_THROTTLE_TIMEOUT_JIFFIES = {
    VMSCAN_THROTTLE_WRITEBACK: costs.HZ // 10,
    VMSCAN_THROTTLE_ISOLATED: costs.HZ // 50,
    VMSCAN_THROTTLE_NOPROGRESS: 1,
    VMSCAN_THROTTLE_CONGESTED: 1,
}


def reclaim_throttle(k: Kernel, sc: ScanControl, reason: int) -> None:
    """Models reclaim_throttle() (6.x): the reclaiming task sleeps until woken or
    its timeout passes (HZ/10 waiting for writeback, one jiffy when congested).
    Throttled for writeback it is woken once more than SWAP_CLUSTER_MAX pages per
    throttled task have been written since (__acct_reclaim_writeback()). Kernel
    threads other than kswapd are never throttled. Emits reclaim_throttled with the
    timeout and the delay in microseconds, counted in jiffies as the kernel does.

    Simplified: the sleep passes as if the task kept the CPU (other tasks run after
    it)."""
    task = k.current
    if task is not None and task.kthread and task is not k.kswapd_task:
        return
    timeout_jiffies = _THROTTLE_TIMEOUT_JIFFIES[reason]
    start = k.now_ns
    wake = start + timeout_jiffies * costs.JIFFY_NS
    if reason == VMSCAN_THROTTLE_WRITEBACK:
        k.nr_writeback_throttled += 1
        written = k.wb_queue.nth_done_ns(SWAP_CLUSTER_MAX * k.nr_writeback_throttled + 1)
        if written is not None:
            wake = min(wake, written)
    k.sleep_in_kernel(wake - start)
    if reason == VMSCAN_THROTTLE_WRITEBACK:
        k.nr_writeback_throttled -= 1
    page_writeback.writeback_end_io(k)
    delayed = min(wake // costs.JIFFY_NS - start // costs.JIFFY_NS, timeout_jiffies)
    usec = 1_000_000 // costs.HZ
    k.emit(tp.RECLAIM_THROTTLED, nid=0, timeout_us=timeout_jiffies * usec, delayed_us=delayed * usec,
           reason=reason, memcg=sc.memcg_path)


def folio_rotate_reclaimable(k: Kernel, pfns: np.ndarray) -> None:
    """Models folio_rotate_reclaimable() -> lru_move_tail(): a page marked for
    immediate reclaim whose writeback has ended moves to the tail of its inactive
    list (the end reclaim takes next), unless it is dirty again, unevictable, off
    the LRU or locked."""
    if not len(pfns):
        return
    mem = k.mem_map
    flags = mem.flags[pfns]
    ok = ((flags & PG_LRU) != 0) & ((flags & (PG_DIRTY | PG_UNEVICTABLE | PG_PINNED)) == 0)
    pfns = pfns[ok]
    lists = lru_of(flags[ok])
    for active, inactive in ((ACTIVE_ANON, INACTIVE_ANON), (ACTIVE_FILE, INACTIVE_FILE)):
        sel = pfns[(lists == active) | (lists == inactive)]
        if not len(sel):
            continue
        was_active = lru_of(mem.flags[sel]) == active
        _move(k, sel[was_active], active, inactive, "rotate")
        _move(k, sel[~was_active], inactive, inactive, "rotate")
        k.lru_rotated.setdefault(inactive, []).append((sel.astype(np.int64), mem.lru_gen[sel].copy()))


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
        sc.nr = ReclaimCounts()
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
        _writeback_congestion(k, sc)
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    k.flush_rss()
    return sc.nr_reclaimed


def _writeback_congestion(k: Kernel, sc: ScanControl) -> None:
    """The end of shrink_node() (6.18): kswapd flags the node writeback (every page
    taken was under writeback) or dirty (every file page taken was dirty and not
    queued: kswapd may then write pages itself) and throttles when it met pages
    marked for immediate reclaim still under writeback; a node (kswapd) or v2
    cgroup whose dirty pages were all marked and under writeback is congested, and
    direct or cgroup reclaim of a congested target throttles one jiffy."""
    nr = sc.nr
    kswapd = sc.kind == "kswapd"
    if kswapd:
        if nr.writeback and nr.writeback == nr.taken:
            k.pgdat_writeback = True
        if nr.unqueued_dirty and nr.unqueued_dirty == nr.file_taken:
            k.pgdat_dirty = True
        if nr.immediate:
            reclaim_throttle(k, sc, VMSCAN_THROTTLE_WRITEBACK)
    if nr.dirty and nr.dirty == nr.congested:
        if sc.kind == "memcg" and writeback_throttling_sane(k, sc):
            k.memcg_congested.add(sc.memcg_id)
        if kswapd:
            k.node_congested = True
    if not kswapd:
        congested = sc.memcg_id in k.memcg_congested if sc.kind == "memcg" else k.node_congested
        if congested:
            reclaim_throttle(k, sc, VMSCAN_THROTTLE_CONGESTED)


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
                     memcg_path=memcg.path, memcg_id=memcg.id)
    sc.may_swap = may_swap
    shrink_node(k, sc)
    k.memcg_congested.discard(memcg.id)  # do_try_to_free_pages() clears LRUVEC_CGROUP_CONGESTED
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
        # clear_pgdat_congested(): a balanced node is no longer dirty, under
        # writeback or congested.
        k.pgdat_dirty = k.pgdat_writeback = k.node_congested = False
        k.emit(tp.KSWAPD_SLEEP, nid=0, nr_reclaimed=reclaimed)
        k.kswapd_wait = k.new_signal()


def wakeup_kswapd(k: Kernel) -> None:
    """Models wakeup_kswapd(): wake a sleeping kswapd unless the node is hopeless or
    already balanced."""
    if k.kswapd_sleeping and k.kswapd_failures < 16 and not pgdat_balanced(k):
        k.engine.fire(k.kswapd_wait)

