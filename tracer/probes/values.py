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
    for suffix, p in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if power >= p:
            return f"{1 << (power - p)}{suffix}"
    return str(1 << power)


def _lhist_label(number: int) -> str:
    if number == 0:
        return "0"
    if number % (1 << 20) == 0:
        return f"{number // (1 << 20)}M"
    if number % 1024 == 0:
        return f"{number // 1024}K"
    return str(number)


@dataclass(frozen=True)
class Hist:
    """A log2 histogram value (hist()): ``counts[slot]`` for bpftrace's 65 slots."""

    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[HistBucket]:
        """The rows bpftrace prints: from the first to the last non-empty slot."""
        nz = [i for i, c in enumerate(self.counts) if c]
        if not nz:
            return []
        out = []
        for i in range(nz[0], nz[-1] + 1):
            c = self.counts[i]
            if i == 0:
                out.append(HistBucket("(..., 0)", None, -1, c))
            elif i == 1:
                out.append(HistBucket("[0]", 0, 0, c))
            elif i == 2:
                out.append(HistBucket("[1]", 1, 1, c))
            else:
                p = i - 2
                out.append(HistBucket(f"[{_hist_label(p)}, {_hist_label(p + 1)})", 1 << p, (1 << (p + 1)) - 1, c))
        return out


@dataclass(frozen=True)
class LHist:
    """A linear histogram value (lhist(v, min, max, step))."""

    min: int
    max: int
    step: int
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[HistBucket]:
        nz = [i for i, c in enumerate(self.counts) if c]
        if not nz:
            return []
        nr = len(self.counts) - 2
        out = []
        for i in range(nz[0], nz[-1] + 1):
            c = self.counts[i]
            if i == 0:
                out.append(HistBucket(f"(..., {_lhist_label(self.min)})", None, self.min - 1, c))
            elif i == nr + 1:
                out.append(HistBucket(f"[{_lhist_label(self.max)}, ...)", self.max, None, c))
            else:
                lo = (i - 1) * self.step + self.min
                out.append(HistBucket(f"[{_lhist_label(lo)}, {_lhist_label(lo + self.step)})",
                                      lo, lo + self.step - 1, c))
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
