"""The swap device: slots and their reference counts, mm/swapfile.c as of 6.13.

One swap area of ``swap_bytes``. A slot's ``swap_map`` count is the number of page
tables (and shmem objects) holding its swap entry; the slot is free at zero.

Simplified: no swap cache. A page is written to its slot and freed at once
(SwapCached stays 0); a swap-in gives the faulting process a fresh page and drops
its reference to the slot. No clusters, no readahead, no zswap.
"""

from __future__ import annotations

import numpy as np

#: pte / page-cache values at or below this encode a swap entry: -(slot + 3).
SWP_BASE = -3


def swp_entry(slots: np.ndarray) -> np.ndarray:
    """The pte value of swap ``slots``."""
    return (SWP_BASE - slots).astype(np.int32)


def swp_offset(entries: np.ndarray) -> np.ndarray:
    """The slots of swap pte values."""
    return (SWP_BASE - entries.astype(np.int64))


def is_swap_entry(values: np.ndarray) -> np.ndarray:
    """Boolean mask: which pte or page-cache values are swap entries."""
    return values <= SWP_BASE


class SwapDevice:
    """Models struct swap_info_struct of one swap area."""

    def __init__(self, nr_pages: int) -> None:
        self.nr_pages = nr_pages
        self.swap_map = np.zeros(nr_pages, dtype=np.int32)
        self.swap_memcg = np.zeros(nr_pages, dtype=np.int16)  # swap_cgroup: who is charged
        # LIFO stack of free slots, lowest slot on top.
        self.free_stack = np.arange(nr_pages - 1, -1, -1, dtype=np.int64)
        self.nr_free = nr_pages

    @property
    def nr_used(self) -> int:
        return self.nr_pages - self.nr_free

    def get_swap_pages(self, n: int) -> np.ndarray:
        """Models folio_alloc_swap(): up to ``n`` free slots, each with count 1."""
        take = min(n, self.nr_free)
        slots = self.free_stack[self.nr_free - take: self.nr_free][::-1].copy()
        self.nr_free -= take
        self.swap_map[slots] = 1
        return slots

    def duplicate(self, slots: np.ndarray) -> None:
        """swap_duplicate(): another page table now holds these entries (fork)."""
        np.add.at(self.swap_map, slots, 1)

    def free(self, slots: np.ndarray) -> np.ndarray:
        """swap_free(): drop one reference per entry; returns the slots that became free."""
        if not len(slots):
            return np.empty(0, dtype=np.int64)
        np.subtract.at(self.swap_map, slots, 1)
        uniq = np.unique(slots)
        freed: np.ndarray = uniq[self.swap_map[uniq] == 0]
        self.free_stack[self.nr_free: self.nr_free + len(freed)] = freed[::-1]
        self.nr_free += len(freed)
        return freed
