"""Dirty thresholds and the flusher thread: mm/page-writeback.c and fs/fs-writeback.c
wb_workfn() as of 6.13 (kernel-mm-facts.md §5.10).

The flusher wakes every dirty_writeback_centisecs, or when kicked (reclaim found
dirty pages, or dirty memory passed the background threshold), and writes back:
inodes reclaim asked for, inodes dirty for longer than dirty_expire_centisecs, and
the oldest dirty inodes while dirty memory is above the background threshold.

Simplified: writers are never throttled (no balance_dirty_pages()); an inode's
pages are clean as soon as its writeback is issued, the flusher then sleeps for the
I/O time; one flusher for the one disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import costs, filemap
from .engine import Sleep, TaskGen, WaitFor

if TYPE_CHECKING:
    from .kernel import Kernel

CENTISEC_NS = 10_000_000


def dirty_thresholds(k: Kernel) -> tuple[int, int]:
    """Models domain_dirty_limits(): (background, throttle) thresholds in pages, as
    percentages of dirtyable memory (free less reserves, plus the file LRU)."""
    free = k.alloc.nr_free_pages
    st = k.stat
    dirtyable = free - min(free, k.alloc.totalreserve_pages) + st.nr_active_file + st.nr_inactive_file + 1
    thresh = dirtyable * k.sysctls["vm.dirty_ratio"] // 100
    bg = dirtyable * k.sysctls["vm.dirty_background_ratio"] // 100
    if bg >= thresh:
        bg = thresh // 2
    return bg, thresh


def balance_dirty_pages(k: Kernel) -> None:
    """Kick the flusher when dirty memory passes the background threshold (the
    throttling half of balance_dirty_pages() is not modelled)."""
    bg, _ = dirty_thresholds(k)
    if k.stat.nr_file_dirty > bg:
        k.engine.fire(k.flusher_wait)


def flusher(k: Kernel) -> TaskGen:
    """The flusher kthread (wb_workfn), a daemon in simulated time."""
    task = k.flusher_task
    while True:
        interval = k.sysctls["vm.dirty_writeback_centisecs"] * CENTISEC_NS
        yield WaitFor(k.flusher_wait, interval) if interval else k.flusher_wait
        k.flusher_wait = k.new_signal()
        k.current = task
        queue, k.flusher_queue = k.flusher_queue, {}
        work: list[tuple[int, str]] = [(ino, reason) for ino, reason in sorted(queue.items())]
        expire_ns = k.sysctls["vm.dirty_expire_centisecs"] * CENTISEC_NS
        for inode in sorted(k.inodes.values(), key=lambda i: (i.dirtied_when_ns, i.ino)):
            if inode.dirtied_when_ns >= 0 and inode.dirtied_when_ns + expire_ns <= k.now_ns:
                work.append((inode.ino, "periodic"))
        bg, _ = dirty_thresholds(k)
        if k.stat.nr_file_dirty > bg:
            for inode in sorted(k.inodes.values(), key=lambda i: (i.dirtied_when_ns, i.ino)):
                if inode.dirtied_when_ns >= 0:
                    work.append((inode.ino, "background"))
        done: set[int] = set()
        for ino, reason in work:
            queued = k.inodes.get(ino)
            if queued is None or ino in done:
                continue
            if reason == "background" and k.stat.nr_file_dirty <= dirty_thresholds(k)[0]:
                break
            done.add(ino)
            written = filemap.writeback_inode(k, queued, reason, advance=False)
            if written:
                yield Sleep(written * costs.DISK_WRITE_PAGE_NS)
                k.current = task
