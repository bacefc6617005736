"""eBPF-style probes over event batches: maps, predicates, printf, BEGIN/END, intervals.

This is what a bpftrace or bcc program is made of on a real kernel, over memtrace's
batched events. A :class:`Tracer` is a bus consumer. Probes attach to tracepoints by
name or glob; each probe is a *vectorised* action: it is called once per batch (or
per segment of a batch, see below) with an :class:`Events` view whose fields are
numpy columns, never once per event. Maps (:class:`Map`) aggregate whole columns at a
time (``count``, ``sum``, ``min``, ``max``, ``avg``, ``stats``, ``hist``, ``lhist``)
and behave like dicts afterwards. ``printf`` formats one line per selected event (the
only per-event Python work), in event order.

Example::

    tracer = Tracer()
    faults = tracer.map("@faults")
    tracer.probe("page_fault",
                 lambda ev: faults.count(key=(ev.comm, ev.vma_kind)),
                 predicate=lambda ev: ev.major == 0)
    bus.attach(tracer, tracer.tracepoints())
    ... run the kernel ...
    tracer.finish()            # interval probes once more, END probes, maps printed
    faults["leaker", "anon_private"]   # -> 262144

Semantics that differ from one-event-at-a-time execution are avoided, not ignored:

- **Ordering of output.** ``printf`` and map prints queued while a batch runs are
  emitted sorted by event (then by the order the calls ran), exactly as if every
  probe had run event by event.
- **Read-after-write within a batch.** A probe that reads a map another (or the
  same) probe on the same tracepoint writes would see the whole batch's writes at
  once. A probe declares such keys with ``segment``; the tracer then cuts the batch
  into contiguous segments in which no key repeats, and runs every probe of the
  tracepoint segment by segment. The one-liner compiler does this analysis itself.
- **Simulated time.** ``interval`` probes fire on event time, not wall time: each time
  the events seen (in ``seq`` order) cross a multiple of the period since boot, the
  batch is split there and the interval probes run between the halves; once more at
  :meth:`Tracer.finish`. Time is the running maximum of ``ts_ns`` (the kernel emits
  some batches, e.g. page-cache additions after the faults that caused them, with
  earlier timestamps than the batch before). A run fires them at most
  :data:`MAX_INTERVAL_FIRINGS` times: a jump of simulated time that would fire them
  more (``interval:ns:1`` over seconds, a damaged ``ts_ns`` decades ahead) is a
  MemtraceError naming the interval, not a run that never ends.

``comm`` is resolved per event from ``pid`` through a table the tracer keeps from
the ``process_start`` (pid -> comm), ``fork`` (child_pid -> child_comm) and ``exit``
events seen so far; pid 0 (no task: boot, the kernel itself) is ``swapper/0`` as on
Linux, and a pid never introduced is ``[unknown]``, as perf prints it. ``path(ino)``
resolves an inode from the ``file_open`` and ``mmap`` events seen so far (an mmap of
SysV shm says ``SYSV00000001``, a shared anonymous one ``/dev/zero (deleted)``, as
/proc/PID/maps does); an inode never named is ``[ino N]``.
"""

from __future__ import annotations

import itertools
import json
import re
import time as _time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from memtrace.errors import MemtraceError

from .batch import EventBatch
from .schema import Registry, Tracepoint
from .tracepoints import default_registry

#: Tracepoints whose events the tracer folds into its pid->comm and ino->path tables.
TABLE_TRACEPOINTS = ("process_start", "fork", "exit", "file_open", "mmap")
#: comm of pid 0 (events in no task's context), as Linux names the idle task.
IDLE_COMM = "swapper/0"
#: comm of a pid the tracer has not seen start (perf's spelling).
UNKNOWN_COMM = "[unknown]"
#: The most times a run fires its interval probes (see the module docstring).
MAX_INTERVAL_FIRINGS = 1_000_000

INT64_MIN = -(1 << 63)
#: Slots of a log2 histogram, as bpftrace keeps them: <0, 0, 1, [2,4) ... [2^62, 2^63).
HIST_SLOTS = 65


# ----------------------------------------------------------------------------- columns


class StrColumn:
    """A column of strings, dictionary-encoded: row ``i`` is ``values[codes[i]]``.

    Enum fields are held this way with the field's ``values`` (their uint8 codes are
    already codes), so comparing with a string or grouping by one costs a numpy
    operation on the codes plus one Python comparison per distinct value.
    """

    __slots__ = ("codes", "values")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, codes: np.ndarray, values: Sequence[str]) -> None:
        self.codes = codes
        self.values = list(values)

    @classmethod
    def from_list(cls, strings: Sequence[str]) -> StrColumn:
        """Encode a list of strings (the batch's ``str`` columns)."""
        n = len(strings)
        if n == 0:
            return cls(np.zeros(0, dtype=np.intp), [])
        first = strings[0]
        if strings.count(first) == n:  # one string repeated: the common case, C speed
            return cls(np.zeros(n, dtype=np.intp), [first])
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(s, len(index)) for s in strings), dtype=np.intp, count=n)
        return cls(codes, list(index))

    @classmethod
    def full(cls, value: str, n: int) -> StrColumn:
        return cls(np.zeros(n, dtype=np.intp), [value])

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        shown = self.tolist()[:8]
        more = ", ..." if len(self) > 8 else ""
        return f"StrColumn({shown!r}{more})"

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, (int, np.integer)):
            return self.values[int(self.codes[idx])]
        return StrColumn(self.codes[idx], self.values)

    def canonical(self) -> StrColumn:
        """The same strings over a dictionary without repeats."""
        if len(set(self.values)) == len(self.values):
            return self
        index: dict[str, int] = {}
        lut = np.array([index.setdefault(v, len(index)) for v in self.values], dtype=np.intp)
        return StrColumn(lut[self.codes], list(index))

    def tolist(self) -> list[str]:
        values = self.values
        if len(values) == 1:
            return [values[0]] * len(self.codes)
        return [values[c] for c in self.codes.tolist()]

    def _value_mask(self, pred: Callable[[str], bool]) -> np.ndarray:
        return np.fromiter((pred(v) for v in self.values), dtype=np.bool_, count=len(self.values))

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        if isinstance(other, str):
            return self._value_mask(lambda v: v == other)[self.codes] if self.values else np.zeros(0, np.bool_)
        if isinstance(other, StrColumn):
            a, b = unify_strings(self, other)
            return a.codes == b.codes
        return NotImplemented

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        eq = self.__eq__(other)
        if eq is NotImplemented:
            return eq
        return ~eq

    def map(self, fn: Callable[[str], Any], dtype: Any = np.int64) -> np.ndarray:
        """``fn`` applied to each distinct value, broadcast to the rows."""
        table = np.array([fn(v) for v in self.values], dtype=dtype)
        return table[self.codes] if len(table) else np.zeros(0, dtype=dtype)


def unify_strings(a: StrColumn, b: StrColumn) -> tuple[StrColumn, StrColumn]:
    """The two columns re-encoded over one shared dictionary of distinct strings
    (a column's ``values`` may repeat a string: two pids with one comm)."""
    if a.values == b.values and len(set(a.values)) == len(a.values):
        return a, b
    index: dict[str, int] = {}
    lut_a = np.array([index.setdefault(v, len(index)) for v in a.values], dtype=np.intp)
    lut_b = np.array([index.setdefault(v, len(index)) for v in b.values], dtype=np.intp)
    values = list(index)
    return (StrColumn(lut_a[a.codes] if len(lut_a) else a.codes, values),
            StrColumn(lut_b[b.codes] if len(lut_b) else b.codes, values))


Column = np.ndarray | StrColumn | list[Any] | int | str


def as_int64(value: Any, n: int) -> np.ndarray:
    """An int64 column of length ``n`` from a column or a scalar (bools become 0/1;
    u64 values above 2**63 wrap, as in bpftrace's 64-bit arithmetic)."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.int64:
            return value
        if value.dtype == np.uint64:
            return value.view(np.int64)
        return value.astype(np.int64)
    return np.full(n, int(value), dtype=np.int64)


def _as_key_column(value: Any, n: int) -> Any:
    if isinstance(value, StrColumn):
        return value
    if isinstance(value, list):
        return StrColumn.from_list(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "b":
            return value.astype(np.int64)
        if value.dtype.kind not in "iu":
            raise TypeError(f"map keys must be integers or strings, not {value.dtype}")
        return value
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer, str)):
        return value.item() if isinstance(value, np.integer) else value
    raise TypeError(f"map keys must be integers or strings, not {type(value).__name__}")


# ----------------------------------------------------------------------------- grouping


class Groups(NamedTuple):
    """Rows grouped by key: ``keys[inverse[i]]`` is row i's key (``inverse`` None:
    every row in group 0); ``counts[g]`` rows have key ``keys[g]``."""

    keys: list[Any]
    inverse: np.ndarray | None
    counts: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.keys)


def dense_codes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Distinct values of integer array ``a`` (sorted), each row's index into them
    (None when there is one value), and how often each occurs.

    One value: two reductions. A narrow range: ``bincount``. Otherwise ``np.unique``.
    """
    n = len(a)
    lo = a.min()
    hi = a.max()
    if lo == hi:
        return a[:1].copy(), None, np.array([n], dtype=np.int64)
    span = int(hi) - int(lo)
    if span <= max(4 * n, 1 << 16):
        shifted = (a - lo).astype(np.intp)
        counts = np.bincount(shifted, minlength=span + 1)
        present = np.flatnonzero(counts)
        lut = np.zeros(span + 1, dtype=np.intp)
        lut[present] = np.arange(len(present), dtype=np.intp)
        return (present + lo).astype(a.dtype), lut[shifted], counts[present].astype(np.int64)
    uniq, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return uniq, inverse.astype(np.intp).reshape(-1), counts.astype(np.int64)


def group_rows(key: Any, n: int) -> Groups:
    """Group ``n`` rows by ``key``: None (one scalar key ``()``), one column or
    scalar, or a tuple of them (tuple keys). Columns are int arrays, StrColumns or
    lists of str."""
    if key is None:
        return Groups([()], None, np.array([n], dtype=np.int64))
    parts = key if isinstance(key, tuple) else (key,)
    comps: list[tuple[np.ndarray | None, list[Any]]] = []
    for part in parts:
        col = _as_key_column(part, n)
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
    if len(v) and int(np.abs(v).max()) * len(v) < (1 << 53):
        return np.bincount(g.inverse, weights=v, minlength=len(g.keys)).astype(np.int64).tolist()
    order, starts = _group_order(g)
    return np.add.reduceat(v[order], starts).tolist()


def group_reduce(g: Groups, v: np.ndarray, ufunc: np.ufunc) -> list[int]:
    """``ufunc.reduce`` (np.minimum, np.maximum) of ``v`` per group."""
    if g.inverse is None:
        return [int(ufunc.reduce(v))]
    order, starts = _group_order(g)
    return ufunc.reduceat(v[order], starts).tolist()


def group_last(g: Groups) -> np.ndarray:
    """Row index of the last row of each group."""
    if g.inverse is None:
        return np.array([int(g.counts[0]) - 1], dtype=np.intp)
    order, starts = _group_order(g)
    return order[starts + g.counts - 1]


def group_bucket_counts(g: Groups, buckets: np.ndarray, nr_buckets: int) -> np.ndarray:
    """Per group, how many rows fall in each bucket: shape (groups, nr_buckets)."""
    if g.inverse is None:
        return np.bincount(buckets, minlength=nr_buckets).reshape(1, nr_buckets)
    flat = g.inverse.astype(np.int64) * nr_buckets + buckets
    return np.bincount(flat, minlength=len(g.keys) * nr_buckets).reshape(len(g.keys), nr_buckets)


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


# ----------------------------------------------------------------------------- map values


class Stats(NamedTuple):
    """A stats() value: events, their integer average and total, as bpftrace shows."""

    count: int
    average: int
    total: int


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


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


class HistBucket(NamedTuple):
    """One printed histogram row: its label, bounds (None: open) and count."""

    label: str
    min: int | None
    max: int | None
    count: int


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


#: Map kinds, by what wrote them. The int family shares plain integer values.
INT_KINDS = frozenset({"count", "sum", "int"})
MAP_KINDS = ("count", "sum", "int", "str", "min", "max", "avg", "stats", "hist", "lhist")


# ----------------------------------------------------------------------------- Map


class Map(MutableMapping):  # type: ignore[type-arg]
    """A BPF map: keys (a scalar, a tuple, or ``()`` for a map without keys) to values.

    The first write fixes the map's kind: ``count``/``sum``/``int`` (plain integer
    values, freely mixed), ``str``, ``min``, ``max``, ``avg``, ``stats``, ``hist``,
    ``lhist``. Writes are vectorised: each takes columns (numpy arrays, StrColumns,
    lists of str) or scalars, with ``key`` None (the map's one value), a column, or
    a tuple of columns. Reads are dict reads: ``m[key]`` gives an int (avg: the
    integer average), a str, :class:`Stats`, :class:`Hist` or :class:`LHist`.
    """

    def __init__(self, name: str) -> None:
        self.name = name if name.startswith("@") else f"@{name}"
        self.kind: str | None = None
        self.lhist_params: tuple[int, int, int] | None = None
        self._data: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"Map({self.name!r}, kind={self.kind!r}, {len(self._data)} keys)"

    # -- dict interface

    def __getitem__(self, key: Any) -> Any:
        return self._public(self._data[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, str):
            self._set_kind("str")
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            self._set_kind("int")
            value = int(value)
        else:
            raise TypeError(f"{self.name}: only int and str values can be assigned, not {type(value).__name__}")
        self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def value(self) -> Any:
        """The value of a map without keys (``@x = count()``), or None if unset."""
        raw = self._data.get(())
        return None if raw is None else self._public(raw)

    def _public(self, raw: Any) -> Any:
        kind = self.kind
        if kind == "avg":
            return _c_div(raw[1], raw[0]) if raw[0] else 0
        if kind == "stats":
            return Stats(raw[0], _c_div(raw[1], raw[0]) if raw[0] else 0, raw[1])
        if kind == "hist":
            return Hist(tuple(int(c) for c in raw))
        if kind == "lhist":
            lo, hi, step = self.lhist_params  # type: ignore[misc]
            return LHist(lo, hi, step, tuple(int(c) for c in raw))
        return raw

    def _set_kind(self, kind: str) -> None:
        if self.kind == kind or (self.kind in INT_KINDS and kind in INT_KINDS):
            return
        if self.kind is None:
            self.kind = kind
            return
        raise TypeError(f"{self.name} holds {self.kind} values; it cannot also take {kind}")

    # -- vectorised writes

    def count(self, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = count()`` for each row."""
        n = _rows(key, None, n)
        self._set_kind("count")
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        for k, c in zip(g.keys, g.counts.tolist()):
            data[k] = data.get(k, 0) + c

    def sum(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = sum(value)`` for each row."""
        n = _rows(key, value, n)
        self._set_kind("sum")
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        for k, s in zip(g.keys, group_sum(g, as_int64(value, n))):
            data[k] = data.get(k, 0) + s

    def min(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = min(value)``."""
        self._extreme(value, key, n, "min", np.minimum, min)

    def max(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = max(value)``."""
        self._extreme(value, key, n, "max", np.maximum, max)

    def _extreme(self, value: Any, key: Any, n: int | None, kind: str, ufunc: np.ufunc,
                 pick: Callable[[int, int], int]) -> None:
        n = _rows(key, value, n)
        self._set_kind(kind)
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        for k, v in zip(g.keys, group_reduce(g, as_int64(value, n), ufunc)):
            data[k] = pick(data[k], v) if k in data else v

    def avg(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = avg(value)`` (integer average, as bpftrace)."""
        self._count_total(value, key, n, "avg")

    def stats(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = stats(value)``: count, average and total."""
        self._count_total(value, key, n, "stats")

    def _count_total(self, value: Any, key: Any, n: int | None, kind: str) -> None:
        n = _rows(key, value, n)
        self._set_kind(kind)
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        for k, c, s in zip(g.keys, g.counts.tolist(), group_sum(g, as_int64(value, n))):
            cur = data.get(k)
            if cur is None:
                data[k] = [c, s]
            else:
                cur[0] += c
                cur[1] += s

    def hist(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = hist(value)``: power-of-2 histogram."""
        n = _rows(key, value, n)
        self._set_kind("hist")
        if n == 0:
            return
        self._add_buckets(key, n, log2_buckets(as_int64(value, n)), HIST_SLOTS)

    def lhist(self, value: Any, lo: int, hi: int, step: int, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = lhist(value, lo, hi, step)``: linear histogram."""
        if step <= 0 or hi <= lo:
            raise ValueError(f"{self.name}: lhist needs min < max and step > 0, got {lo}, {hi}, {step}")
        params = (int(lo), int(hi), int(step))
        if self.lhist_params not in (None, params):
            raise ValueError(f"{self.name}: lhist{self.lhist_params} cannot also be lhist{params}")
        n = _rows(key, value, n)
        self._set_kind("lhist")
        self.lhist_params = params
        if n == 0:
            return
        nr = (params[1] - params[0]) // params[2] + 2
        self._add_buckets(key, n, linear_buckets(as_int64(value, n), *params), nr)

    def _add_buckets(self, key: Any, n: int, buckets: np.ndarray, nr: int) -> None:
        g = group_rows(key, n)
        table = group_bucket_counts(g, buckets, nr)
        data = self._data
        for k, row in zip(g.keys, table):
            cur = data.get(k)
            if cur is None:
                data[k] = row.astype(np.int64)
            else:
                cur += row

    def assign(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = value`` for each row in order: the last row of a key wins."""
        n = _rows(key, value, n)
        is_str = isinstance(value, (str, StrColumn, list))
        self._set_kind("str" if is_str else "int")
        if n == 0:
            return
        g = group_rows(key, n)
        last = group_last(g).tolist()
        data = self._data
        if isinstance(value, (str, int, np.integer)):
            v = value if isinstance(value, str) else int(value)
            for k in g.keys:
                data[k] = v
            return
        if isinstance(value, list):
            value = StrColumn.from_list(value)
        if isinstance(value, StrColumn):
            vals = [value.values[c] for c in value.codes[last].tolist()]
        else:
            vals = as_int64(value, n)[last].tolist()
        for k, v in zip(g.keys, vals):
            data[k] = v

    def add(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] += value`` (also ``++``/``--``): an integer sum."""
        self.sum(value, key, n=n)

    def delete(self, key: Any = None, *, n: int | None = None) -> None:
        """``delete(@m[key])`` for each row's key."""
        n = _rows(key, None, n)
        if n == 0:
            return
        for k in group_rows(key, n).keys:
            self._data.pop(k, None)

    def lookup(self, key: Any = None, *, n: int | None = None) -> np.ndarray | StrColumn:
        """The value of each row's key: int64 column (0 where absent; avg: the
        average), or a StrColumn ('' where absent) for a str map. Hist and stats
        maps have no single value to read."""
        n = _rows(key, None, n)
        if self.kind in ("hist", "lhist", "stats"):
            raise TypeError(f"{self.name} holds {self.kind} values, which have no value to read")
        if n == 0:
            return StrColumn(np.zeros(0, np.intp), []) if self.kind == "str" else np.zeros(0, np.int64)
        g = group_rows(key, n)
        data = self._data
        if self.kind == "str":
            vals = [data.get(k, "") for k in g.keys]
            codes = np.zeros(n, np.intp) if g.inverse is None else g.inverse
            return StrColumn(codes, vals)
        if self.kind == "avg":
            per = [self._public(data[k]) if k in data else 0 for k in g.keys]
        else:
            per = [data.get(k, 0) for k in g.keys]
        table = np.array(per, dtype=np.int64)
        return np.full(n, table[0], np.int64) if g.inverse is None else table[g.inverse]

    def zero(self) -> None:
        """Set every value to zero, keeping the keys (bpftrace's zero())."""
        for k, v in self._data.items():
            if isinstance(v, np.ndarray):
                v[:] = 0
            elif isinstance(v, list):
                v[0] = v[1] = 0
            elif isinstance(v, str):
                self._data[k] = ""
            else:
                self._data[k] = 0

    def clear(self) -> None:
        """Delete every key (bpftrace's clear())."""
        self._data.clear()

    # -- printing

    def snapshot(self, top: int = 0, div: int = 1) -> MapOutput:
        """The map as bpftrace prints it: entries sorted by value, ascending (hists by
        total count, avg/stats by average), ties by key; ``top`` keeps the largest N;
        ``div`` divides integer values (and hist counts)."""
        kind = self.kind or "int"
        entries: list[tuple[Any, Any]] = [(k, self._public(v)) for k, v in self._data.items()]
        if kind in ("hist", "lhist"):
            rank: Callable[[Any], Any] = lambda v: v.total  # noqa: E731
        elif kind == "stats":
            rank = lambda v: v.average  # noqa: E731
        elif kind == "str":
            rank = lambda v: v  # noqa: E731
        else:
            rank = lambda v: v  # noqa: E731
        entries.sort(key=lambda kv: (rank(kv[1]), _key_order(kv[0])))
        if top and len(entries) > top:
            entries = entries[len(entries) - top:]
        if div and div != 1:
            entries = [(k, _divide(v, div)) for k, v in entries]
        keyed = any(k != () for k, _ in entries)
        return MapOutput(self.name, kind, tuple(entries), keyed)


def _rows(key: Any, value: Any, n: int | None) -> int:
    """Number of rows of a vectorised write: from ``n`` or the first column found."""
    if n is not None:
        return n
    parts = list(key) if isinstance(key, tuple) else [key]
    for p in [value, *parts]:
        if isinstance(p, (np.ndarray, StrColumn, list)):
            return len(p)
    return 1


def _key_order(key: Any) -> tuple[Any, ...]:
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts)


def _divide(v: Any, div: int) -> Any:
    if isinstance(v, int):
        return _c_div(v, div)
    if isinstance(v, Hist):
        return Hist(tuple(c // div for c in v.counts))
    return v


# ----------------------------------------------------------------------------- output


@dataclass(frozen=True)
class PrintfOutput:
    """One printf() line (the text as formatted, newline included if asked for)."""

    text: str


@dataclass(frozen=True)
class TimeOutput:
    """A time() call: simulated time formatted with strftime."""

    text: str


@dataclass(frozen=True)
class ValueOutput:
    """print(expression): one value."""

    value: int | str


@dataclass(frozen=True)
class MapOutput:
    """A map printed (print(@m), or at END): entries in print order."""

    name: str
    kind: str
    entries: tuple[tuple[Any, Any], ...]
    keyed: bool


@dataclass(frozen=True)
class AttachOutput:
    """bpftrace's "Attaching N probes..." line."""

    probes: int


Output = PrintfOutput | TimeOutput | ValueOutput | MapOutput | AttachOutput


def _key_text(key: Any, sep: str) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return sep.join(str(p) for p in parts)


def _hist_lines(value: Hist | LHist) -> list[str]:
    buckets = value.buckets()
    top = max((b.count for b in buckets), default=0)
    lines = []
    for b in buckets:
        bar = "@" * int(b.count / top * 52) if top else ""
        lines.append(f"{b.label:<16}{b.count:>8} |{bar:<52}|")
    return lines


def render_text(out: Output) -> str:
    """bpftrace's text output of one output record (newlines included)."""
    if isinstance(out, (PrintfOutput, TimeOutput)):
        return out.text
    if isinstance(out, ValueOutput):
        return f"{out.value}\n"
    if isinstance(out, AttachOutput):
        return f"Attaching {out.probes} probe{'s' if out.probes != 1 else ''}...\n"
    if not out.entries:
        return ""
    parts: list[str] = []
    for key, value in out.entries:
        head = out.name + (f"[{_key_text(key, ', ')}]" if out.keyed else "")
        if isinstance(value, (Hist, LHist)):
            parts.append(f"{head}:\n" + "\n".join(_hist_lines(value)) + "\n\n")
        elif isinstance(value, Stats):
            parts.append(f"{head}: count {value.count}, average {value.average}, total {value.total}\n")
        else:
            parts.append(f"{head}: {value}\n")
    text = "".join(parts)
    return text if text.endswith("\n\n") else text + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, Stats):
        return {"count": value.count, "average": value.average, "total": value.total}
    if isinstance(value, (Hist, LHist)):
        rows = []
        for b in value.buckets():
            row: dict[str, int] = {}
            if b.min is not None:
                row["min"] = b.min
            if b.max is not None:
                row["max"] = b.max
            row["count"] = b.count
            rows.append(row)
        return rows
    return value


def json_object(out: Output) -> dict[str, Any] | None:
    """bpftrace ``-f json``'s object for one output record (None: prints nothing)."""
    if isinstance(out, PrintfOutput):
        return {"type": "printf", "data": out.text}
    if isinstance(out, TimeOutput):
        return {"type": "time", "data": out.text}
    if isinstance(out, ValueOutput):
        return {"type": "value", "data": out.value}
    if isinstance(out, AttachOutput):
        return {"type": "attached_probes", "data": {"probes": out.probes}}
    if not out.entries:
        return None
    kind = {"hist": "hist", "lhist": "hist", "stats": "stats", "avg": "stats"}.get(out.kind, "map")
    if out.keyed:
        data: Any = {_key_text(k, ","): _json_value(v) for k, v in out.entries}
    else:
        data = _json_value(out.entries[0][1])
    return {"type": kind, "data": {out.name: data}}


def render_json(out: Output) -> str:
    """One line of bpftrace ``-f json`` output (newline included), or ''."""
    obj = json_object(out)
    return "" if obj is None else json.dumps(obj) + "\n"


# ----------------------------------------------------------------------------- printf

_CONV = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d+)?(?:\.(?P<prec>\d+))?"
                   r"(?P<len>hh|h|ll|l|z|j|t)?(?P<conv>[diouxXsc%])")


#: The widest printf field width or precision accepted: a wider one (``%999999999d``)
#: would write that many bytes per event.
MAX_PRINTF_WIDTH = 1000


class FormatSpec(NamedTuple):
    """A printf format parsed: Python format text and the conversion of each argument."""

    py_format: str
    convs: tuple[str, ...]


def parse_format(fmt: str) -> FormatSpec:
    """Parse a C printf format (``%d %i %u %x %X %o %c %s``, flags, width, precision,
    length modifiers ignored); ValueError names what is wrong, including a width or
    precision above :data:`MAX_PRINTF_WIDTH`."""
    out: list[str] = []
    convs: list[str] = []
    pos = 0
    for m in _CONV.finditer(fmt):
        lit = fmt[pos:m.start()]
        if "%" in lit:
            bad = lit[lit.index("%"):][:2]
            raise ValueError(f"unsupported printf conversion {bad!r}")
        for part, what in ((m["width"], "width"), (m["prec"], "precision")):
            if part is not None and (len(part) > 6 or int(part) > MAX_PRINTF_WIDTH):
                raise ValueError(f"printf field {what} {part} in {m.group()[:20]!r} is more than "
                                 f"{MAX_PRINTF_WIDTH}")
        out.append(lit.replace("%", "%%"))
        conv = m["conv"]
        if conv == "%":
            out.append("%%")
        else:
            py = {"i": "d", "u": "d"}.get(conv, conv)
            prec = f".{m['prec']}" if m["prec"] is not None else ""
            out.append(f"%{m['flags']}{m['width'] or ''}{prec}{py}")
            convs.append(conv)
        pos = m.end()
    rest = fmt[pos:]
    if "%" in rest:
        raise ValueError(f"unsupported printf conversion {rest[rest.index('%'):][:2]!r}")
    out.append(rest)
    return FormatSpec("".join(out), tuple(convs))


def _printf_column(conv: str, value: Any, n: int) -> list[Any]:
    if isinstance(value, StrColumn):
        return value.tolist()
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value] * n
    ints = as_int64(value, n).tolist()
    if conv in "uxXo":
        return [v + (1 << 64) if v < 0 else v for v in ints]
    if conv == "c":
        return [chr(v & 0xFF) for v in ints]
    return ints


def format_rows(spec: FormatSpec, args: Sequence[Any], n: int) -> list[str]:
    """One formatted string per row."""
    if len(args) != len(spec.convs):
        raise ValueError(f"printf format takes {len(spec.convs)} argument(s), got {len(args)}")
    if not args:
        return [spec.py_format % ()] * n
    cols = [_printf_column(c, a, n) for c, a in zip(spec.convs, args)]
    fmt = spec.py_format
    return [fmt % row for row in zip(*cols)]


_FORMATS: dict[str, FormatSpec] = {}


def sim_strftime(fmt: str, ts_ns: int) -> str:
    """strftime of simulated time: ``ts_ns`` since boot on a clock that reads
    00:00:00 at boot (day 1970-01-01); ``%f`` is the microseconds."""
    secs, rem_ns = divmod(int(ts_ns), 1_000_000_000)
    fmt = fmt.replace("%f", f"{rem_ns // 1000:06d}")
    return _time.strftime(fmt, _time.gmtime(secs))


# ----------------------------------------------------------------------------- events


class _Base:
    """One batch as a probe sees it: columns converted once, shared by every view."""

    __slots__ = ("batch", "cache", "n", "tracer")

    def __init__(self, tracer: Tracer, batch: EventBatch | None) -> None:
        self.tracer = tracer
        self.batch = batch
        self.cache: dict[str, Any] = {}
        self.n = batch.n if batch is not None else 1

    def column(self, name: str) -> Any:
        col = self.cache.get(name)
        if col is None:
            assert self.batch is not None
            f = self.batch.tp.field(name)
            raw = self.batch.columns[name]
            if f.type == "str":
                col = StrColumn.from_list(raw)  # type: ignore[arg-type]
            elif f.type == "enum":
                col = StrColumn(raw.astype(np.intp), f.values)  # type: ignore[union-attr]
            else:
                col = raw
            self.cache[name] = col
        return col


class Events:
    """The events a probe action sees: a vectorised view of (part of) one batch.

    ``ev["field"]`` or ``ev.field`` is a column: a numpy array for numeric and bool
    fields (the schema's dtype), a :class:`StrColumn` for ``str`` and ``enum``
    fields. Builtins: ``pid``, ``tid`` (= pid), ``nsecs`` (= ts_ns), ``comm``,
    ``elapsed`` (ns since the first event traced), ``cpu`` (0). A field whose name is
    also an attribute here (``comm`` of exit events, ``path`` of mmap events) is
    read with ``ev["comm"]``. BEGIN, END and interval probes see one synthetic event
    without fields (pid 0).
    """

    __slots__ = ("_base", "_sel", "_synthetic_ns", "probe_name")

    def __init__(self, base: _Base, sel: slice | np.ndarray, probe_name: str = "",
                 synthetic_ns: int | None = None) -> None:
        self._base = base
        self._sel = sel
        self.probe_name = probe_name
        self._synthetic_ns = synthetic_ns

    @property
    def tracer(self) -> Tracer:
        return self._base.tracer

    @property
    def tracepoint(self) -> Tracepoint | None:
        b = self._base.batch
        return b.tp if b is not None else None

    @property
    def n(self) -> int:
        sel = self._sel
        if isinstance(sel, slice):
            return sel.stop - sel.start
        return len(sel)

    def __len__(self) -> int:
        return self.n

    @property
    def rows(self) -> np.ndarray:
        """Each event's row in its batch (orders output)."""
        sel = self._sel
        if isinstance(sel, slice):
            return np.arange(sel.start, sel.stop, dtype=np.intp)
        return sel

    def _take(self, col: Any) -> Any:
        return col[self._sel]

    def field(self, name: str) -> Any:
        if self._base.batch is None:
            raise KeyError(f"{self.probe_name or 'this probe'} has no fields (no tracepoint)")
        return self._take(self._base.column(name))

    def __getitem__(self, name: str) -> Any:
        return self.field(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.field(name)
        except KeyError as e:
            raise AttributeError(str(e)) from None

    # -- builtins

    @property
    def pid(self) -> np.ndarray:
        if self._base.batch is None:
            return np.zeros(1, dtype=np.int64)
        return self._take(self._int_column("pid"))

    tid = pid

    @property
    def nsecs(self) -> np.ndarray:
        if self._base.batch is None:
            return np.full(1, self._synthetic_ns or 0, dtype=np.int64)
        return self._take(self._int_column("ts_ns"))

    @property
    def elapsed(self) -> np.ndarray:
        return self.nsecs - (self.tracer.first_ts_ns or 0)

    @property
    def cpu(self) -> np.ndarray:
        return np.zeros(self.n, dtype=np.int64)

    @property
    def comm(self) -> StrColumn:
        base = self._base
        col = base.cache.get("@comm")
        if col is None:
            col = base.tracer.comms_of(self._int_column("pid") if base.batch is not None
                                       else np.zeros(1, np.int64))
            base.cache["@comm"] = col
        return self._take(col)

    def _int_column(self, name: str) -> np.ndarray:
        key = "@i64:" + name
        col = self._base.cache.get(key)
        if col is None:
            col = as_int64(self._base.column(name), self._base.n)
            self._base.cache[key] = col
        return col

    def int_field(self, name: str) -> np.ndarray:
        """Field ``name`` as int64 (bools 0/1), the one-liner language's integers."""
        return self._take(self._int_column(name))

    def comm_of(self, pid: Any) -> StrColumn:
        """comm of each pid in ``pid`` (a column or scalar), from the tracer's table."""
        return self.tracer.comms_of(as_int64(pid, self.n))

    def path(self, ino: Any) -> StrColumn:
        """Path of each inode in ``ino`` (see the module docstring)."""
        return self.tracer.paths_of(as_int64(ino, self.n))

    # -- selection

    def select(self, mask: Any) -> Events:
        """The events where boolean ``mask`` is true."""
        mask = np.asarray(mask)
        if mask.ndim == 0:
            return self if bool(mask) else self.slice(0, 0)
        sel = self._sel
        if isinstance(sel, slice):
            idx = np.flatnonzero(mask) + sel.start
        else:
            idx = sel[mask]
        return Events(self._base, idx, self.probe_name, self._synthetic_ns)

    def slice(self, start: int, stop: int) -> Events:
        """Events ``start:stop`` of this view."""
        sel = self._sel
        if isinstance(sel, slice):
            new: slice | np.ndarray = slice(sel.start + start, sel.start + stop)
        else:
            new = sel[start:stop]
        return Events(self._base, new, self.probe_name, self._synthetic_ns)

    # -- output

    def printf(self, fmt: str, *args: Any) -> None:
        """One formatted line per event (C printf conversions)."""
        spec = _FORMATS.get(fmt)
        if spec is None:
            spec = _FORMATS[fmt] = parse_format(fmt)
        texts = format_rows(spec, args, self.n)
        self.tracer._queue(self.rows, [PrintfOutput(t) for t in texts])

    def print_value(self, value: Any) -> None:
        """print(expression): one value per event."""
        if isinstance(value, StrColumn):
            vals: list[Any] = value.tolist()
        elif isinstance(value, (str, int)):
            vals = [value] * self.n
        else:
            vals = as_int64(value, self.n).tolist()
        self.tracer._queue(self.rows, [ValueOutput(v) for v in vals])

    def time(self, fmt: str = "%H:%M:%S\n") -> None:
        """time(): the simulated time of each event, formatted."""
        texts = [sim_strftime(fmt, t) for t in self.nsecs.tolist()]
        self.tracer._queue(self.rows, [TimeOutput(t) for t in texts])

    def print(self, m: Map, top: int = 0, div: int = 1) -> None:
        """print(@m): the map as it is now, once (at this view's first event)."""
        self.tracer._queue(self.rows[:1], [m.snapshot(top, div)])


# ----------------------------------------------------------------------------- probes

Action = Callable[[Events], None]
Predicate = Callable[[Events], Any]
Segmenter = Callable[[Events], np.ndarray | None]


@dataclass
class Probe:
    """A vectorised action attached to tracepoints.

    ``predicate(ev)`` returns a boolean mask (or a bool); ``action(ev)`` runs on the
    selected events. ``segment(ev)``, called on a whole batch, returns the offsets
    where the batch must be cut so that the action sees events in the order it
    needs (see :func:`cuts_unique` and :func:`cuts_isolate`); None: no cuts.
    """

    tracepoints: tuple[str, ...]
    action: Action
    predicate: Predicate | None = None
    segment: Segmenter | None = None
    name: str = ""


@dataclass
class _Interval:
    period_ns: int
    action: Action
    name: str
    next_ns: int


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


class Tracer:
    """A bus consumer running probes, BEGIN/END and interval actions, holding maps.

    ``output`` receives each output record (:class:`PrintfOutput`, :class:`MapOutput`
    ...) as it happens; by default they collect in :attr:`outputs`. Attach it with
    ``bus.attach(tracer, tracer.tracepoints())``, or feed it batches (a trace file's
    ``ordered_batches()``); call :meth:`finish` at the end. Batches of tracepoints
    outside :meth:`tracepoints` are ignored, so a live run and a trace file give the
    same output.
    """

    def __init__(self, registry: Registry | None = None, output: Callable[[Output], None] | None = None,
                 *, auto_print: bool = True) -> None:
        self.registry = registry or default_registry()
        self.outputs: list[Output] = []
        self.output = output or self.outputs.append
        self.auto_print = auto_print
        self.maps: dict[str, Map] = {}
        self.probes: list[Probe] = []
        self._by_tp: dict[str, list[Probe]] = {}
        self._begin: list[tuple[Action, str]] = []
        self._end: list[tuple[Action, str]] = []
        self._intervals: list[_Interval] = []
        self._fired = 0  # interval firings so far (MAX_INTERVAL_FIRINGS)
        self.comms: dict[int, str] = {0: IDLE_COMM}
        self.paths: dict[int, str] = {}
        self.first_ts_ns: int | None = None
        self.now_ns = 0
        self.last_ts_ns = 0
        self.started = False
        self.finished = False
        self.exited = False
        self._pending: list[tuple[np.ndarray, list[Output]]] = []
        self._subscribed: frozenset[str] | None = None

    # -- building

    def map(self, name: str) -> Map:
        """The map called ``name`` (``@`` prefix optional), made on first use."""
        key = name if name.startswith("@") else f"@{name}"
        m = self.maps.get(key)
        if m is None:
            m = self.maps[key] = Map(key)
        return m

    def probe(self, tracepoints: str | Sequence[str], action: Action, *, predicate: Predicate | None = None,
              segment: Segmenter | None = None, name: str = "") -> Probe:
        """Attach ``action`` to tracepoints given by name or glob (``"page_*"``)."""
        patterns = [tracepoints] if isinstance(tracepoints, str) else list(tracepoints)
        names: list[str] = []
        for pattern in patterns:
            matched = self.registry.match(pattern)
            if not matched:
                raise KeyError(f"no tracepoint matches {pattern!r}")
            names.extend(tp.name for tp in matched)
        p = Probe(tuple(dict.fromkeys(names)), action, predicate, segment, name)
        self.probes.append(p)
        for tp_name in p.tracepoints:
            self._by_tp.setdefault(tp_name, []).append(p)
        self._subscribed = None
        return p

    def begin(self, action: Action) -> None:
        """Run ``action`` once before the first event."""
        self._begin.append((action, "BEGIN"))

    def end(self, action: Action) -> None:
        """Run ``action`` once at :meth:`finish`, before the maps are printed."""
        self._end.append((action, "END"))

    def interval(self, period_ns: int, action: Action, name: str = "") -> None:
        """Run ``action`` each time simulated time crosses a multiple of
        ``period_ns``, and once more at :meth:`finish`."""
        if period_ns <= 0:
            raise ValueError(f"interval period must be positive, got {period_ns} ns")
        self._intervals.append(_Interval(period_ns, action, name or f"interval:ns:{period_ns}", period_ns))
        self._subscribed = None

    def tracepoints(self) -> list[str]:
        """Tracepoints this tracer consumes: its probes', the ones feeding the comm
        and path tables, and every tracepoint when an interval probe needs to see
        time pass."""
        if self._intervals:
            return [tp.name for tp in self.registry]
        wanted = set(self._by_tp) | set(TABLE_TRACEPOINTS)
        return [tp.name for tp in self.registry if tp.name in wanted]

    def attach(self, bus: Any) -> None:
        """Attach to ``bus`` for :meth:`tracepoints`."""
        bus.attach(self, self.tracepoints())

    @property
    def nr_probes(self) -> int:
        """Attach points, as bpftrace counts them for "Attaching N probes..."."""
        return sum(len(p.tracepoints) for p in self.probes) + len(self._begin) + len(self._end) + len(self._intervals)

    # -- tables

    def comms_of(self, pids: np.ndarray) -> StrColumn:
        """comm of each pid (int64 column) from the table."""
        n = len(pids)
        if n == 0:
            return StrColumn(np.zeros(0, np.intp), [])
        uniq, inv, _ = dense_codes(pids)
        comms = self.comms
        values = [comms.get(p, UNKNOWN_COMM) for p in uniq.tolist()]
        return StrColumn(np.zeros(n, np.intp) if inv is None else inv, values)

    def paths_of(self, inos: np.ndarray) -> StrColumn:
        n = len(inos)
        if n == 0:
            return StrColumn(np.zeros(0, np.intp), [])
        uniq, inv, _ = dense_codes(inos)
        paths = self.paths
        values = [paths.get(i, f"[ino {i}]") for i in uniq.tolist()]
        return StrColumn(np.zeros(n, np.intp) if inv is None else inv, values)

    def _update_tables(self, batch: EventBatch) -> None:
        name = batch.tp.name
        c = batch.columns
        if name == "process_start" or name == "exit":
            self.comms.update(zip(c["pid"].tolist(), c["comm"]))  # type: ignore[union-attr]
        elif name == "fork":
            self.comms.update(zip(c["child_pid"].tolist(), c["child_comm"]))  # type: ignore[union-attr]
        elif name == "file_open":
            self.paths.update(zip(c["ino"].tolist(), c["path"]))  # type: ignore[union-attr]
        elif name == "mmap":
            for ino, path in zip(c["ino"].tolist(), c["path"]):  # type: ignore[union-attr]
                if ino and path:
                    self.paths[ino] = path

    # -- running

    def start(self) -> None:
        """Run BEGIN actions (done by the first batch or :meth:`finish` if not called)."""
        if self.started:
            return
        self.started = True
        for action, name in self._begin:
            self._run_synthetic(action, name, 0)

    def on_batch(self, batch: EventBatch) -> None:
        if self.finished or self.exited or batch.n == 0:
            return
        if self._subscribed is None:
            self._subscribed = frozenset(self.tracepoints())
        if batch.tp.name not in self._subscribed:
            return
        if not self.started:
            self.start()
        ts = batch.columns["ts_ns"]
        if self.first_ts_ns is None:
            self.first_ts_ns = int(ts[0])  # type: ignore[index]
        self._update_tables(batch)
        base = _Base(self, batch)
        n = batch.n
        start = 0
        if self._intervals:
            # Simulated time is the running maximum of event time: split the batch
            # where it crosses the next interval boundary.
            clock = np.maximum.accumulate(np.maximum(ts.astype(np.int64), self.now_ns))  # type: ignore[union-attr]
            self._check_firings(int(clock[-1]))
            while True:
                due = min(iv.next_ns for iv in self._intervals)
                if clock[-1] < due:
                    break
                cut = int(np.searchsorted(clock, due, side="left"))
                if cut > start:
                    self._run_rows(base, start, cut)
                    if self.exited:
                        return
                start = cut
                self.now_ns = due
                for iv in self._intervals:
                    if iv.next_ns == due:
                        iv.next_ns += iv.period_ns
                        self._fired += 1
                        self._run_synthetic(iv.action, iv.name, due)
                        if self.exited:
                            return
            self.now_ns = max(self.now_ns, int(clock[-1]))
        else:
            self.now_ns = max(self.now_ns, int(ts.max()))  # type: ignore[union-attr]
        self.last_ts_ns = int(ts[-1])  # type: ignore[index]
        if start < n:
            self._run_rows(base, start, n)

    def _check_firings(self, now_ns: int) -> None:
        """MemtraceError when reaching simulated time ``now_ns`` would fire the
        interval probes more than MAX_INTERVAL_FIRINGS times in the run."""
        due = [((now_ns - iv.next_ns) // iv.period_ns + 1 if now_ns >= iv.next_ns else 0, iv)
               for iv in self._intervals]
        if self._fired + sum(n for n, _ in due) <= MAX_INTERVAL_FIRINGS:
            return
        n, iv = max(due, key=lambda x: x[0])
        raise MemtraceError(f"{iv.name} would fire {n:,} more times to reach simulated time {now_ns / 1e9:,.3f} s, "
                            f"beyond the {MAX_INTERVAL_FIRINGS:,} interval firings a run allows: use a longer "
                            "interval (or the trace's timestamps are damaged)")

    def _run_rows(self, base: _Base, start: int, stop: int) -> None:
        assert base.batch is not None
        probes = self._by_tp.get(base.batch.tp.name)
        if not probes:
            return
        tp_name = base.batch.tp.name
        whole = Events(base, slice(start, stop), tp_name)
        cut_sets = [p.segment(whole) for p in probes if p.segment is not None]
        cuts = [c for c in cut_sets if c is not None and len(c)]
        if cuts:
            bounds = np.unique(np.concatenate(cuts)).tolist()
            edges = [0, *bounds, stop - start]
            segments = [whole.slice(a, b) for a, b in itertools.pairwise(edges) if b > a]
        else:
            segments = [whole]
        for seg in segments:
            for p in probes:
                ev = seg
                if p.predicate is not None:
                    mask = p.predicate(ev)
                    ev = ev.select(mask)
                if ev.n:
                    p.action(ev)
                if self.exited:
                    break
            self._flush()
            if self.exited:
                return

    def _run_synthetic(self, action: Action, name: str, ts_ns: int) -> None:
        ev = Events(_Base(self, None), slice(0, 1), name, synthetic_ns=ts_ns)
        action(ev)
        self._flush()

    def finish(self) -> None:
        """End of the events: interval actions once more, END actions, then every
        non-empty map printed (unless ``auto_print`` is off)."""
        if self.finished:
            return
        if not self.started:
            self.start()
        if not self.exited:
            for iv in self._intervals:
                self._run_synthetic(iv.action, iv.name, self.now_ns)
        self.exited = False  # END runs after exit(), as in bpftrace
        for action, name in self._end:
            self._run_synthetic(action, name, self.now_ns)
        self.finished = True
        if self.auto_print:
            for m in self.maps.values():
                if len(m):
                    self.output(m.snapshot())

    def exit(self) -> None:
        """exit(): stop at the current event; END still runs at :meth:`finish`."""
        self.exited = True

    # -- output queue

    def _queue(self, rows: np.ndarray, outs: list[Output]) -> None:
        if outs:
            self._pending.append((rows, outs))

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if len(pending) == 1:
            for out in pending[0][1]:
                self.output(out)
            return
        rows = np.concatenate([r for r, _ in pending])
        outs = [o for _, os in pending for o in os]
        for i in np.argsort(rows, kind="stable").tolist():
            self.output(outs[i])


def run_batches(tracer: Tracer, batches: Iterable[EventBatch]) -> Tracer:
    """Feed ``batches`` (in seq order) to ``tracer`` and finish it; stops early on
    exit()."""
    tracer.start()
    for batch in batches:
        if tracer.exited:
            break
        tracer.on_batch(batch)
    tracer.finish()
    return tracer


__all__ = [
    "AttachOutput",
    "Events",
    "Groups",
    "Hist",
    "HistBucket",
    "LHist",
    "Map",
    "MapOutput",
    "Output",
    "PrintfOutput",
    "Probe",
    "Stats",
    "StrColumn",
    "TimeOutput",
    "Tracer",
    "ValueOutput",
    "cuts_isolate",
    "cuts_unique",
    "format_rows",
    "group_rows",
    "json_object",
    "log2_buckets",
    "parse_format",
    "render_json",
    "render_text",
    "run_batches",
    "sim_strftime",
]
