"""numpy helpers of the state fold: distinct values, event-order segments, masks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from memtrace.linux.limits import PAGE_SIZE

__all__ = ["distinct", "no_repeat_segments", "one", "page_align", "unique_in_order"]


def one(n: int, i: int) -> np.ndarray:
    """A mask of ``n`` events selecting event ``i``."""
    m = np.zeros(n, dtype=bool)
    m[i] = True
    return m


def page_align(nr_bytes: int) -> int:
    """``nr_bytes`` rounded up to whole pages (PAGE_ALIGN())."""
    return (nr_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of ``a`` (sorted input, the common case, takes one pass)."""
    if len(a) < 2:
        return a
    step = a[1:] != a[:-1]
    if len(a) > 64 and not bool(np.all(a[1:] >= a[:-1])) and not bool(np.all(a[1:] <= a[:-1])):
        return np.unique(a)
    return a[np.concatenate(([True], step))]


def unique_in_order(a: np.ndarray) -> np.ndarray:
    """Distinct values of ``a`` in order of first appearance."""
    a = np.asarray(a)
    if len(a) == 0:
        return a
    if len(a) == 1 or (a[0] == a).all():
        return a[:1]
    vals, first = np.unique(a, return_index=True)
    return vals[np.argsort(first)]


def no_repeat_segments(keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive [a, b) ranges of ``keys`` in which no key appears twice, so that
    each can be applied as one vectorised step in event order."""
    n = len(keys)
    if n <= 1:
        yield 0, n
        return
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    if not len(dup):
        yield 0, n
        return
    prev = np.full(n, -1, dtype=np.int64)
    prev[order[dup + 1]] = order[dup]
    start = 0
    while start < n:
        bad = np.flatnonzero(prev[start:] >= start)
        end = start + int(bad[0]) if len(bad) else n
        yield start, end
        start = end
