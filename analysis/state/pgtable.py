"""Page-table pages of an mm, as the simulated kernel allocates them.

Models the x86-64 4-level layout: one PTE table page per 2 MiB, one PMD table per
1 GiB, one PUD table per 512 GiB region that a fault (or fork's copy) touches, plus
the PGD (counted by :attr:`~.model.Process.pgtables_pages`). A region is kept in
:attr:`~.model.Process.tables` as ``(shift << 48) | region``. Simplified: no huge
pages, no 5-level paging.
"""

from __future__ import annotations

import numpy as np

from ._arrays import distinct
from .model import Process

__all__ = ["TABLE_SHIFTS", "alloc_page_tables", "free_pgtables", "free_pte_tables"]

#: Page-table regions on x86-64 with 4-level paging: one PTE table per 2 MiB, one PMD
#: table per 1 GiB, one PUD table per 512 GiB (the PGD is per mm).
TABLE_SHIFTS = (21, 30, 39)
_REGION_MASK = (1 << 48) - 1


def alloc_page_tables(proc: Process, addrs: np.ndarray) -> None:
    """__pte_alloc(), __pmd_alloc(), __pud_alloc(): the table pages that mapping
    ``addrs`` (user addresses, bytes) needs."""
    if not len(addrs):
        return
    a = addrs.astype(np.uint64)
    for shift in TABLE_SHIFTS:
        regions = distinct(a >> np.uint64(shift))
        base = shift << 48
        proc.tables.update((base | r) for r in regions.tolist())


def free_pgtables(proc: Process, start: int, end: int) -> None:
    """free_pgtables(): the table pages in [start, end) that no remaining VMA of
    ``proc`` overlaps."""
    if end <= start or not proc.tables:
        return
    for shift in TABLE_SHIFTS:
        lo_r, hi_r = start >> shift, (end - 1) >> shift
        base = shift << 48
        if hi_r - lo_r < 4096:
            have = [r for r in range(lo_r, hi_r + 1) if (base | r) in proc.tables]
        else:
            have = [t & _REGION_MASK for t in proc.tables if t >> 48 == shift and lo_r <= (t & _REGION_MASK) <= hi_r]
        for r in have:
            lo, hi = r << shift, (r + 1) << shift
            if any(v.start < hi and v.end > lo for v in proc.vmas):
                continue
            proc.tables.discard(base | r)


def free_pte_tables(proc: Process, start: int, end: int) -> None:
    """CONFIG_PT_RECLAIM (6.14+): the PTE table pages of the 2 MiB regions wholly
    inside [start, end), emptied by MADV_DONTNEED, go; PMD and PUD tables stay."""
    shift = TABLE_SHIFTS[0]
    base = shift << 48
    first, last = -(-start >> shift), end >> shift  # regions [first, last) lie inside
    for r in range(first, min(last, first + (1 << 20))):
        proc.tables.discard(base | r)
