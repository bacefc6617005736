"""Map values that are more than a number: stats(), hist() and lhist().

bpftrace keeps these in per-CPU BPF map values; memtrace has one CPU and keeps
them as Python values. The bucket rules are bpftrace's (``src/output.cpp`` and the
``hist``/``lhist`` map functions): a log2 histogram has 65 slots, ``< 0``, ``0``,
``1``, then ``[2^k, 2^(k+1))``; a linear one has a slot below ``min``, one per
``step`` and one at or above ``max``. Averages are C integer divisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memtrace.linux.proc import c_div

__all__ = [
    "HIST_SLOTS",
    "INT_KINDS",
    "MAP_KINDS",
    "Hist",
    "HistBucket",
    "LHist",
    "Stats",
    "linear_buckets",
    "log2_buckets",
    "stats_value",
]

#: Slots of a log2 histogram, as bpftrace keeps them: <0, 0, 1, [2,4) ... [2^62, 2^63).
HIST_SLOTS = 65
#: Map kinds, by what wrote them. The int family shares plain integer values.
INT_KINDS = frozenset({"count", "sum", "int"})
MAP_KINDS = ("count", "sum", "int", "str", "min", "max", "avg", "stats", "hist", "lhist")

@dataclass(frozen=True)
class Stats:
    """A stats() value: events, their integer average and total, as bpftrace shows."""

    count: int
    average: int
    total: int


@dataclass(frozen=True)
class HistBucket:
    """One printed histogram row: its label, bounds (None: open) and count."""

    label: str
    min: int | None
    max: int | None
    count: int


def stats_value(nr_events: int, total: int) -> Stats:
    """The stats() value of ``nr_events`` events summing to ``total``."""
    return Stats(nr_events, c_div(total, nr_events) if nr_events else 0, total)


def _hist_label(power: int) -> str:
    """bpftrace's ``hist_index_label`` (k = 0): 2^power with a K/M/G/T/P/E suffix
    for each 2^10."""
    for suffix, p in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if power >= p:
            return f"{1 << (power - p)}{suffix}"
    return str(1 << power)


def _lhist_label(number: int, step: int) -> str | int:
    """bpftrace's ``lhist_index_label``: a K or M suffix only when ``step`` is a
    multiple of 1024; otherwise the plain number (an int, which a single-value row
    prints as ``[n]``)."""
    if step % 1024 != 0:
        return number
    if number == 0:
        return "0"
    if number % (1 << 20) == 0:
        return f"{_c_quot(number, 1 << 20)}M"
    if number % 1024 == 0:
        return f"{_c_quot(number, 1024)}K"
    return str(number)


def _c_quot(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _rows(lower: str | int | None, labels: list[str | int], counts: list[int]) -> list[str]:
    """Row headers as bpftrace's text output draws a histogram (``src/output/text.cpp``):
    ``labels`` are the upper bounds of the rows (one fewer when the last row is the
    open-ended one), ``lower`` the lower bound of the first row (None: ``(..., x)``).
    Two adjacent integers make a single-value row ``[n]``; symbolic labels (with a
    suffix, or hist's above 2) never do."""
    def single(a: str | int | None, b: str | int) -> bool:
        return isinstance(a, int) and isinstance(b, int) and a + 1 == b

    out = []
    for i in range(len(counts)):
        if i == 0:
            if lower is None:
                out.append(f"(..., {labels[0]})")
            elif not labels:
                out.append(f"[{lower}, ...)")
            elif single(lower, labels[0]):
                out.append(f"[{lower}]")
            else:
                out.append(f"[{lower}, {labels[0]})")
        elif i >= len(labels):
            out.append(f"[{labels[i - 1]}, ...)")
        elif single(labels[i - 1], labels[i]):
            out.append(f"[{labels[i - 1]}]")
        else:
            out.append(f"[{labels[i - 1]}, {labels[i]})")
    return out


@dataclass(frozen=True)
class Hist:
    """A log2 histogram value (hist()): ``counts[slot]`` for bpftrace's 65 slots;
    ``div`` divides the counts printed (print(@m, top, div)), as bpftrace's
    ``build_histogram`` does: the rows shown are chosen on the undivided counts."""

    counts: tuple[int, ...]
    div: int = 1

    @property
    def total(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[HistBucket]:
        """The rows bpftrace prints: from the first to the last non-empty slot.

        Slot 0 holds values below 0, slot 1 the value 0, slot 2 the value 1 and slot
        i >= 3 [2^(i-2), 2^(i-1)); bpftrace labels slot i by its upper bound (i for
        i <= 2, 2^(i-1) above) and the first row by the slot before it."""
        nz = [i for i, c in enumerate(self.counts) if c]
        if not nz:
            return []
        lo, hi = nz[0], nz[-1]

        def label(i: int) -> str | int:
            return i if i <= 2 else _hist_label(i - 1)
        lower = None if lo == 0 else label(lo - 1)
        labels = [label(i) for i in range(lo, hi + 1)]
        counts = [self.counts[i] // self.div for i in range(lo, hi + 1)]
        heads = _rows(lower, labels, counts)
        out = []
        for i, head, c in zip(range(lo, hi + 1), heads, counts):
            if i == 0:
                out.append(HistBucket(head, None, -1, c))
            elif i <= 2:
                out.append(HistBucket(head, i - 1, i - 1, c))
            else:
                out.append(HistBucket(head, 1 << (i - 2), (1 << (i - 1)) - 1, c))
        return out


@dataclass(frozen=True)
class LHist:
    """A linear histogram value (lhist(v, min, max, step)): slot 0 below ``min``,
    slot i in [min + (i-1) step, min + i step), the last slot at or above
    ``min + nr step`` where nr = (max - min) / step (bpftrace's ``linear``)."""

    min: int
    max: int
    step: int
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[HistBucket]:
        """The rows bpftrace prints, labelled as its ``build_linear_histogram`` does."""
        nz = [i for i, c in enumerate(self.counts) if c]
        if not nz:
            return []
        lo, hi = nz[0], nz[-1]
        nr = len(self.counts) - 2
        lower = None if lo == 0 else _lhist_label(self.min + (lo - 1) * self.step, self.step)
        labels = [_lhist_label(self.min + i * self.step, self.step) for i in range(lo, hi + 1)
                  if self.min + i * self.step <= self.max]
        counts = [self.counts[i] for i in range(lo, hi + 1)]
        out = []
        for i, head, c in zip(range(lo, hi + 1), _rows(lower, labels, counts), counts):
            if i == 0:
                out.append(HistBucket(head, None, self.min - 1, c))
            elif i == nr + 1:
                out.append(HistBucket(head, self.min + nr * self.step, None, c))
            else:
                b = (i - 1) * self.step + self.min
                out.append(HistBucket(head, b, b + self.step - 1, c))
        return out


def log2_buckets(v: np.ndarray) -> np.ndarray:
    """bpftrace's hist() slot of each value: 0 for v < 0, 1 for 0, 2 for 1, and
    ``floor(log2(v)) + 2`` above (slot 3 is [2, 4))."""
    out = np.empty(len(v), dtype=np.intp)
    out[v < 0] = 0
    out[v == 0] = 1
    pos = v > 0
    if pos.any():
        vp = v[pos]
        e = np.floor(np.log2(vp.astype(np.float64))).astype(np.int64)
        np.clip(e, 0, 62, out=e)
        # float64 rounds values near 2**k above 2**53: correct by one either way.
        e -= np.left_shift(np.int64(1), e) > vp
        up = e < 62
        e[up] += np.left_shift(np.int64(1), e[up] + 1) <= vp[up]
        out[pos] = e + 2
    return out


def linear_buckets(v: np.ndarray, lo: int, hi: int, step: int) -> np.ndarray:
    """bpftrace's lhist() slot: 0 below ``lo``, then one per ``step``, last at >= ``hi``."""
    nr = (hi - lo) // step
    idx = np.empty(len(v), dtype=np.intp)
    below = v < lo
    above = v >= hi
    mid = ~(below | above)
    idx[below] = 0
    idx[above] = nr + 1
    idx[mid] = np.minimum((v[mid] - lo) // step + 1, nr + 1)
    return idx
