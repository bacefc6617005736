"""Dirty pages, writeback I/O, dirty throttling and the flusher: mm/page-writeback.c,
fs/fs-writeback.c wb_workfn() and the folio writeback bits of mm/filemap.c, as of
6.18 (kernel-mm-facts.md §5.10).

Writeback goes to one disk, :class:`WritebackQueue`: a page submitted for writeback
(folio_start_writeback(): dirty becomes writeback, NR_WRITEBACK) is written after
the pages queued before it, at the disk's write speed (the machine's
``disk_write_bytes_per_s``). Its writeback ends (folio_end_writeback()) once the
simulated clock passes that time: the code that looks at writeback state ends
what is due first (:func:`writeback_end_io`). A page that reclaim marked for
immediate reclaim (PG_reclaim) then moves to the tail of its inactive list
(folio_rotate_reclaimable()), and pages written count towards waking a task
throttled in reclaim (__acct_reclaim_writeback()).

The flusher (wb_workfn) wakes every dirty_writeback_centisecs, or when kicked, and
submits: inodes dirty for longer than dirty_expire_centisecs, and every dirty inode
while dirty memory is above a background threshold (the global one, or on cgroup
v2 that of the memory cgroup whose writer kicked it). Reclaim that meets only
unqueued dirty pages wakes it to write everything (wakeup_flusher_threads()).

Writers are throttled by :func:`balance_dirty_pages` against the global dirty
domain and, on cgroup v2, the domain of their memory cgroup (dirtyable memory: its
file LRU pages plus the headroom under its limit, mem_cgroup_wb_stats()); cgroup v1
has no per-memcg dirty limit (no cgroup writeback), so a v1 memcg full of dirty
pages relies on reclaim waiting for writeback (vmscan.py).

Simplified: one disk, whose queue has no depth limit (the flusher submits every
dirty page it is asked for at once) and no writeback throttling (wbt); an inode's
dirty pages are written all at once; the flusher, when reclaim or sync wakes it,
submits at that instant, as if it ran on another CPU at once; balance_dirty_pages()
takes dirty_ratelimit to be the disk's write bandwidth (the value its feedback
loop converges to for one writer), no per-wb share of the domain (one disk), no
strictlimit, and pauses between the runner's write chunks instead of pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, filemap, vmscan
from .engine import TaskGen, WaitFor
from .page_alloc import PG_DIRTY, PG_RECLAIM, PG_WRITEBACK

if TYPE_CHECKING:
    from .kernel import Kernel
    from .memcontrol import MemCgroup
    from .mm_types import Task

CENTISEC_NS = 10_000_000
#: balance_dirty_pages() sleeps at most MAX_PAUSE = HZ/5 jiffies at a time.
MAX_PAUSE_NS = (costs.HZ // 5) * costs.JIFFY_NS


@dataclass
class WritebackQueue:
    """The disk's queue of pages under writeback, in submission order, each with
    the time its write completes (``page_ns`` per page, one after another).
    ``done_ns`` holds, per pfn, the completion time of its last submission (made
    at the first submission: a machine that never writes back pays nothing)."""

    page_ns: int
    nr_pfns: int
    busy_until_ns: int = 0
    chunks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    written: int = 0  # pages written since boot (NR_WRITTEN)
    done_ns: np.ndarray | None = None

    def submit(self, now_ns: int, pfns: np.ndarray) -> None:
        """Queue ``pfns``: each is written after everything queued before it."""
        if not len(pfns):
            return
        start = max(now_ns, self.busy_until_ns)
        done = start + (np.arange(1, len(pfns) + 1, dtype=np.int64) * self.page_ns)
        self.busy_until_ns = int(done[-1])
        self.chunks.append((pfns.astype(np.int64), done))
        if self.done_ns is None:
            self.done_ns = np.zeros(self.nr_pfns, dtype=np.int64)
        self.done_ns[pfns] = done

    def due(self, now_ns: int) -> np.ndarray:
        """Remove and return the pages whose write has completed by ``now_ns``."""
        out: list[np.ndarray] = []
        while self.chunks:
            pfns, done = self.chunks[0]
            n = int(np.searchsorted(done, now_ns, side="right"))
            if n == 0:
                break
            out.append(pfns[:n])
            if n == len(pfns):
                self.chunks.pop(0)
            else:
                self.chunks[0] = (pfns[n:], done[n:])
        if not out:
            return np.empty(0, dtype=np.int64)
        pfns_done = out[0] if len(out) == 1 else np.concatenate(out)
        self.written += len(pfns_done)
        return pfns_done

    def nth_done_ns(self, n: int) -> int | None:
        """When the ``n``-th page still queued (from 1) completes, or None."""
        for pfns, done in self.chunks:
            if n <= len(pfns):
                return int(done[n - 1])
            n -= len(pfns)
        return None

    def done_ns_of(self, pfns: np.ndarray) -> int | None:
        """When the last of ``pfns`` (pages under writeback) completes."""
        if self.done_ns is None or not len(pfns):
            return None
        return int(self.done_ns[pfns].max())

    def __len__(self) -> int:
        return sum(len(p) for p, _ in self.chunks)


# ---------------------------------------------------------------------- writeback


def folio_start_writeback(k: Kernel, pfns: np.ndarray) -> None:
    """Models folio_clear_dirty_for_io() + __folio_start_writeback() and the bio
    submission: dirty pages become pages under writeback, queued on the disk."""
    if not len(pfns):
        return
    flags = k.mem_map.flags
    flags[pfns] = (flags[pfns] & ~np.uint16(PG_DIRTY)) | PG_WRITEBACK
    n = len(pfns)
    k.stat.nr_file_dirty -= n
    k.stat.nr_writeback += n
    k.memcg_file_account(pfns, dirty=-1, writeback=+1)
    k.wb_queue.submit(k.now_ns, pfns)


def writeback_end_io(k: Kernel) -> int:
    """Models folio_end_writeback() for every page whose write has completed by now:
    PG_writeback clears, NR_WRITEBACK drops, pages marked PG_reclaim rotate to the
    tail of their inactive list. Returns pages ended."""
    pfns = k.wb_queue.due(k.now_ns)
    if not len(pfns):
        return 0
    mem = k.mem_map
    flags = mem.flags[pfns]
    pfns = pfns[(flags & PG_WRITEBACK) != 0]
    flags = mem.flags[pfns]
    mem.flags[pfns] = flags & ~np.uint16(PG_WRITEBACK | PG_RECLAIM)
    k.stat.nr_writeback -= len(pfns)
    k.memcg_file_account(pfns, dirty=0, writeback=-1)
    vmscan.folio_rotate_reclaimable(k, pfns[(flags & PG_RECLAIM) != 0])
    return len(pfns)


def folio_wait_writeback(k: Kernel, pfns: np.ndarray) -> int:
    """Models folio_wait_writeback() for each of ``pfns``: sleep until the last of
    them is written (the running task's clock advances), then end what is due.
    Returns the time waited in ns.

    Simplified: the sleep passes as if the task kept the CPU (other tasks run
    after it)."""
    done = k.wb_queue.done_ns_of(pfns)
    waited = 0
    if done is not None and done > k.now_ns:
        waited = done - k.now_ns
        k.sleep_in_kernel(waited)
    writeback_end_io(k)
    return waited


def write_dirty_pages(k: Kernel, pfns: np.ndarray) -> int:
    """Submit writeback of those of ``pfns`` that are dirty and not already under
    writeback (kswapd's pageout() of single pages), a writeback event (reason
    "reclaim") per file. Returns pages submitted."""
    flags = k.mem_map.flags[pfns]
    dirty = pfns[(flags & (PG_DIRTY | PG_WRITEBACK)) == PG_DIRTY]
    inos = k.mem_map.mapping[dirty]
    for ino in np.unique(inos).tolist():
        k.emit(tp.WRITEBACK, ino=ino, nr_pages=int(np.count_nonzero(inos == ino)), reason="reclaim")
    folio_start_writeback(k, dirty)
    return len(dirty)


def wakeup_flusher_threads(k: Kernel, reason: str) -> int:
    """Models wakeup_flusher_threads() with the flusher running at once: every
    dirty inode, oldest dirtied first, is submitted for writeback (in the flusher's
    context). Returns pages submitted."""
    saved = k.current
    k.current = k.flusher_task
    try:
        total = 0
        for inode in sorted(k.inodes.values(), key=lambda i: (i.dirtied_when_ns, i.ino)):
            if inode.dirtied_when_ns >= 0:
                total += filemap.writeback_inode(k, inode, reason)
        return total
    finally:
        k.current = saved


# ---------------------------------------------------------------------- dirty limits


@dataclass(frozen=True)
class DirtyDomain:
    """Models struct dirty_throttle_control for one domain: dirtyable memory
    (avail), dirty and writeback pages, and its thresholds, in pages. ``memcg`` is
    None for the global domain."""

    memcg: MemCgroup | None
    avail: int
    dirty: int
    writeback: int
    thresh: int
    bg_thresh: int

    @property
    def freerun(self) -> int:
        """dirty_freerun_ceiling(): below it writers are never throttled."""
        return (self.thresh + self.bg_thresh) // 2

    @property
    def setpoint(self) -> int:
        """The dirty level the throttle steers to (wb_position_ratio())."""
        return (self.freerun + self.thresh) // 2


def _domain_limits(k: Kernel, avail: int) -> tuple[int, int]:
    """Models domain_dirty_limits(): (thresh, bg_thresh) of ``avail`` dirtyable
    pages, from vm.dirty_ratio and vm.dirty_background_ratio (in per-PAGE_SIZE
    units, as the kernel computes them). The *_bytes forms are not modelled."""
    s = k.sysctls
    ratio = s["vm.dirty_ratio"] * PAGE_SIZE // 100
    bg_ratio = s["vm.dirty_background_ratio"] * PAGE_SIZE // 100
    thresh = ratio * avail // PAGE_SIZE
    bg = bg_ratio * avail // PAGE_SIZE
    if bg >= thresh:
        bg = thresh // 2
    return thresh, bg


def global_dirtyable_memory(k: Kernel) -> int:
    """Models global_dirtyable_memory(): free pages less the reserves, plus the
    file LRU, plus 1 (no highmem)."""
    free = k.alloc.nr_free_pages
    st = k.stat
    return free - min(free, k.alloc.totalreserve_pages) + st.nr_active_file + st.nr_inactive_file + 1


def global_domain(k: Kernel) -> DirtyDomain:
    """The global dirty domain (domain_dirty_avail() + domain_dirty_limits())."""
    avail = global_dirtyable_memory(k)
    thresh, bg = _domain_limits(k, avail)
    return DirtyDomain(None, avail, k.stat.nr_file_dirty, k.stat.nr_writeback, thresh, bg)


def memcg_domain(k: Kernel, memcg: MemCgroup, gdom: DirtyDomain) -> DirtyDomain:
    """A v2 memory cgroup's dirty domain: mem_cgroup_wb_stats() (its file LRU pages,
    dirty and writeback pages, and the headroom under the limits up the hierarchy)
    and mdtc_calc_avail() (headroom capped by the clean memory elsewhere)."""
    ids = memcg.subtree_ids()
    filepages = int(k.memcg_lru[ids, vmscan.INACTIVE_FILE].sum() + k.memcg_lru[ids, vmscan.ACTIVE_FILE].sum())
    dirty = int(k.memcg_dirty[ids].sum())
    writeback = int(k.memcg_writeback[ids].sum())
    headroom = min(max(m.max_pages - m.usage_pages, 0) for m in memcg.ancestors() if m.parent is not None)
    clean = filepages - min(filepages, dirty)
    global_clean = gdom.avail - min(gdom.avail, gdom.dirty)
    other_clean = global_clean - min(global_clean, clean)
    avail = filepages + min(headroom, other_clean)
    thresh, bg = _domain_limits(k, avail)
    return DirtyDomain(memcg, avail, dirty, writeback, thresh, bg)


def dirty_domains(k: Kernel, task: Task | None) -> list[DirtyDomain]:
    """The domains a writer is throttled against: global, and its memory cgroup's
    on cgroup v2 (mdtc_valid(): a non-root memcg with cgroup writeback)."""
    gdom = global_domain(k)
    out = [gdom]
    memcg = task.memcg if task is not None else None
    if memcg is not None and memcg.parent is not None and k.cgroup_version == 2:
        out.append(memcg_domain(k, memcg, gdom))
    return out


def dirty_thresholds(k: Kernel) -> tuple[int, int]:
    """(background, throttle) thresholds of the global domain, in pages."""
    g = global_domain(k)
    return g.bg_thresh, g.thresh


def dirty_poll_interval(dirty: int, thresh: int) -> int:
    """Models dirty_poll_interval(): pages a writer dirties before the next check,
    2^(log2(thresh - dirty) / 2)."""
    if thresh > dirty:
        return 1 << ((thresh - dirty).bit_length() - 1 >> 1)
    return 1


def write_chunk_pages(k: Kernel, task: Task) -> int | None:
    """Pages a writer may dirty before balance_dirty_pages() must look again: none
    while every domain is far below its freerun ceiling (the kernel looks often
    there but never pauses), else the pages up to it or the poll interval
    (current->nr_dirtied_pause)."""
    limit: int | None = None
    for d in dirty_domains(k, task):
        dirty = d.dirty + d.writeback
        room = d.freerun - dirty
        chunk = max(room, dirty_poll_interval(dirty, d.thresh))
        limit = chunk if limit is None else min(limit, chunk)
    return limit


def pos_ratio_polynom(setpoint: int, dirty: int, limit: int) -> float:
    """Models pos_ratio_polynom(): 1 + ((setpoint - dirty) / (limit - setpoint))^3,
    clamped to [0, 2]."""
    x = (setpoint - dirty) / ((limit - setpoint) | 1)
    return min(max(1.0 + x * x * x, 0.0), 2.0)


def balance_dirty_pages(k: Kernel, task: Task, nr_dirtied: int) -> int:
    """Models balance_dirty_pages() after ``nr_dirtied`` pages: start background
    writeback past a background threshold; below every freerun ceiling return 0;
    else the pause in ns, from the domain with the lowest position ratio:
    nr_dirtied / (write bandwidth x pos_ratio), at most MAX_PAUSE; at or above the
    limit the full MAX_PAUSE, and the caller calls again after it (with 0 pages
    dirtied) until the writer is below the limit. A pause emits
    balance_dirty_pages."""
    writeback_end_io(k)
    domains = dirty_domains(k, task)
    for d in domains:
        if d.dirty > d.bg_thresh:
            k.flusher_kick(d.memcg)
    if all(d.dirty + d.writeback <= d.freerun for d in domains):
        return 0
    chosen = domains[0]
    pos = 2.0
    for d in domains:
        dirty = d.dirty + d.writeback
        ratio = 0.0 if dirty >= d.thresh else pos_ratio_polynom(d.setpoint, dirty, d.thresh)
        if dirty > d.freerun and ratio < pos:
            chosen, pos = d, ratio
    write_bw = 1_000_000_000 / k.wb_queue.page_ns  # pages per second
    if pos <= 0.0:
        # At the limit: sleep MAX_PAUSE and look again (the caller loops).
        pause_ns = MAX_PAUSE_NS
        ratelimit = 0
    else:
        ratelimit = int(write_bw * pos)
        pause_ns = min(int(nr_dirtied * 1_000_000_000 / (write_bw * pos)), MAX_PAUSE_NS)
        if pause_ns <= 0:
            return 0
    k.emit(tp.BALANCE_DIRTY_PAGES, memcg=chosen.memcg.path if chosen.memcg is not None else "",
           limit_pages=chosen.thresh, setpoint_pages=chosen.setpoint, dirty_pages=chosen.dirty + chosen.writeback,
           task_ratelimit_pages=ratelimit, dirtied_pages=nr_dirtied, pause_ns=pause_ns)
    return pause_ns


# ---------------------------------------------------------------------- the flusher


def flusher(k: Kernel) -> TaskGen:
    """The flusher kthread (wb_workfn), a daemon in simulated time."""
    task = k.flusher_task
    while True:
        interval = k.sysctls["vm.dirty_writeback_centisecs"] * CENTISEC_NS
        yield WaitFor(k.flusher_wait, interval) if interval else k.flusher_wait
        k.flusher_wait = k.new_signal()
        k.current = task
        writeback_end_io(k)
        work: list[tuple[int, str]] = []
        expire_ns = k.sysctls["vm.dirty_expire_centisecs"] * CENTISEC_NS
        by_age = sorted(k.inodes.values(), key=lambda i: (i.dirtied_when_ns, i.ino))
        for inode in by_age:
            if inode.dirtied_when_ns >= 0 and inode.dirtied_when_ns + expire_ns <= k.now_ns:
                work.append((inode.ino, "periodic"))
        over_bg = _background_domains(k)
        if over_bg:
            for inode in by_age:
                if inode.dirtied_when_ns >= 0:
                    work.append((inode.ino, "background"))
        done: set[int] = set()
        for ino, reason in work:
            queued = k.inodes.get(ino)
            if queued is None or ino in done:
                continue
            if reason == "background" and not _background_domains(k):
                break
            done.add(ino)
            filemap.writeback_inode(k, queued, reason)


def _background_domains(k: Kernel) -> bool:
    """Whether the global domain, or a v2 memcg domain a writer kicked the flusher
    for, has more dirty pages than its background threshold (wb_over_bg_thresh())."""
    gdom = global_domain(k)
    if gdom.dirty > gdom.bg_thresh:
        return True
    for memcg in list(k.flusher_bg_memcgs):
        d = memcg_domain(k, memcg, gdom)
        if d.dirty > d.bg_thresh:
            return True
        k.flusher_bg_memcgs.discard(memcg)
    return False


__all__ = [
    "DirtyDomain",
    "WritebackQueue",
    "balance_dirty_pages",
    "dirty_domains",
    "dirty_thresholds",
    "flusher",
    "folio_start_writeback",
    "folio_wait_writeback",
    "global_domain",
    "wakeup_flusher_threads",
    "write_chunk_pages",
    "write_dirty_pages",
    "writeback_end_io",
]
