"""Rows grouped by key, and batches cut where event order matters.

A map write is one grouping of a batch's rows by the key columns
(:func:`group_rows`) followed by one reduction per group (:func:`group_sum`,
:func:`group_reduce`, :func:`group_last`, :func:`group_bucket_counts`).

Running a probe over a whole batch at once differs from running it event by event
when it reads what it (or another probe of the tracepoint) writes. The tracer then
cuts the batch into contiguous segments: :func:`cuts_unique` so that no key repeats
within a segment, :func:`cuts_isolate` to give some rows a segment of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .columns import StrColumn, as_key_column, dense_codes

__all__ = [
    "Groups",
    "cuts_isolate",
    "cuts_unique",
    "group_bucket_counts",
    "group_last",
    "group_reduce",
    "group_rows",
    "group_sum",
]


class Groups(NamedTuple):
    """Rows grouped by key: ``keys[inverse[i]]`` is row i's key (``inverse`` None:
    every row in group 0); ``counts[g]`` rows have key ``keys[g]``."""

    keys: list[Any]
    inverse: np.ndarray | None
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def group_rows(key: Any, n: int) -> Groups:
    """Group ``n`` rows by ``key``: None (one scalar key ``()``), one column or
    scalar, or a tuple of them (tuple keys). Columns are int arrays, StrColumns or
    lists of str."""
    if key is None:
        return Groups([()], None, np.array([n], dtype=np.int64))
    parts = key if isinstance(key, tuple) else (key,)
    comps: list[tuple[np.ndarray | None, list[Any]]] = []
    for part in parts:
        col = as_key_column(part, n)
        if isinstance(col, StrColumn):
            col = col.canonical()
            uniq, inv, _ = dense_codes(col.codes) if n else (np.zeros(0, np.intp), None, None)
            comps.append((inv, [col.values[c] for c in uniq.tolist()]))
        elif isinstance(col, np.ndarray):
            if n == 0:
                comps.append((None, []))
                continue
            uniq, inv, _ = dense_codes(col)
            comps.append((inv, uniq.tolist()))
        else:
            comps.append((None, [col]))
    if n == 0:
        return Groups([], None, np.zeros(0, dtype=np.int64))
    if len(comps) == 1 and not isinstance(key, tuple):
        inv, labels = comps[0]
        if inv is None:
            return Groups(labels, None, np.array([n], dtype=np.int64))
        return Groups(labels, inv, np.bincount(inv, minlength=len(labels)).astype(np.int64))
    # Tuple key: mixed-radix code of the per-component group indices.
    sizes = [len(labels) for _, labels in comps]
    total = 1
    for s in sizes:
        total *= s
    if total < (1 << 62):
        combined = np.zeros(n, dtype=np.int64)
        for (inv, _), size in zip(comps, sizes):
            combined *= size
            if inv is not None:
                combined += inv
        uniq, inverse, counts = dense_codes(combined)
        keys = []
        for code in uniq.tolist():
            labels_rev = []
            for (_, labels), size in zip(reversed(comps), reversed(sizes)):
                code, rem = divmod(code, size)
                labels_rev.append(labels[rem])
            keys.append(tuple(reversed(labels_rev)))
        return Groups(keys, inverse, counts)
    stacked = np.stack([inv if inv is not None else np.zeros(n, np.intp) for inv, _ in comps], axis=1)
    uniq2, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    keys = [tuple(labels[i] for (_, labels), i in zip(comps, row)) for row in uniq2.tolist()]
    return Groups(keys, inverse.reshape(-1).astype(np.intp), counts.astype(np.int64))


def _group_order(g: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorting rows by group (stable), and where each group starts in it."""
    assert g.inverse is not None
    order = np.argsort(g.inverse, kind="stable")
    starts = np.zeros(len(g.counts), dtype=np.intp)
    np.cumsum(g.counts[:-1], out=starts[1:])
    return order, starts


def group_sum(g: Groups, v: np.ndarray) -> list[int]:
    """Exact int64 sum of ``v`` per group."""
    if g.inverse is None:
        return [int(v.sum())]
    sums: list[int]
    if len(v) and int(np.abs(v).max()) * len(v) < (1 << 53):
        sums = np.bincount(g.inverse, weights=v, minlength=len(g.keys)).astype(np.int64).tolist()
        return sums
    order, starts = _group_order(g)
    sums = np.add.reduceat(v[order], starts).tolist()
    return sums


def group_reduce(g: Groups, v: np.ndarray, ufunc: np.ufunc) -> list[int]:
    """``ufunc.reduce`` (np.minimum, np.maximum) of ``v`` per group."""
    if g.inverse is None:
        return [int(ufunc.reduce(v))]
    order, starts = _group_order(g)
    reduced: list[int] = ufunc.reduceat(v[order], starts).tolist()
    return reduced


def group_last(g: Groups) -> np.ndarray:
    """Row index of the last row of each group."""
    if g.inverse is None:
        return np.array([int(g.counts[0]) - 1], dtype=np.intp)
    order, starts = _group_order(g)
    last: np.ndarray = order[starts + g.counts - 1]
    return last


def group_bucket_counts(g: Groups, buckets: np.ndarray, nr_buckets: int) -> np.ndarray:
    """Per group, how many rows fall in each bucket: shape (groups, nr_buckets)."""
    if g.inverse is None:
        return np.bincount(buckets, minlength=nr_buckets).reshape(1, nr_buckets)
    flat = g.inverse.astype(np.int64) * nr_buckets + buckets
    return np.bincount(flat, minlength=len(g.keys) * nr_buckets).reshape(len(g.keys), nr_buckets)


def cuts_unique(keys: Sequence[Sequence[Any]], n: int) -> np.ndarray:
    """Offsets cutting ``n`` rows into contiguous segments in which no key repeats.

    ``keys[j][i]`` is row i's key at access site j (hashables; one value may be
    shared by sites). Greedy: a segment ends just before the first row touching a
    key already touched in it.
    """
    if n <= 1 or not keys:
        return np.zeros(0, dtype=np.intp)
    if len(keys) == 1:
        col = keys[0]
        if len(set(col)) == n:
            return np.zeros(0, dtype=np.intp)
        cuts = []
        seen: set[Any] = set()
        for i, k in enumerate(col):
            if k in seen:
                cuts.append(i)
                seen = set()
            seen.add(k)
        return np.array(cuts, dtype=np.intp)
    cuts = []
    seen = set()
    for i, row in enumerate(zip(*keys)):
        if any(k in seen for k in row):
            cuts.append(i)
            seen = set()
        seen.update(row)
    return np.array(cuts, dtype=np.intp)


def cuts_isolate(mask: Any, n: int) -> np.ndarray:
    """Offsets putting every row where ``mask`` holds into a segment of its own."""
    if isinstance(mask, (bool, np.bool_)) or np.ndim(mask) == 0:
        return np.arange(1, n, dtype=np.intp) if mask else np.zeros(0, dtype=np.intp)
    rows = np.flatnonzero(mask)
    cuts = np.concatenate([rows, rows + 1])
    return np.unique(cuts[(cuts > 0) & (cuts < n)])
