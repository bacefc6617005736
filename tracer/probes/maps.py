"""BPF maps: keys to values, aggregated a whole column at a time.

Models what bpftrace does with ``@name[key] = count()`` and friends over BPF hash
maps, on one CPU (no per-CPU values to merge). A write takes whole columns: the
rows are grouped by key once (:func:`~.groups.group_rows`) and each group updates
its entry once. Afterwards a :class:`Map` reads like a dict.

A map holds at most ``max_keys`` keys, as a BPF hash map holds at most its
``max_entries`` (bpftrace's ``max_map_keys``, default 4096): once it is full, an
update of a key it does not hold is dropped and counted in :attr:`Map.dropped`
(bpftrace warns "map full; can't update element"); keys it holds still update.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import numpy as np

from memtrace.errors import LimitError
from memtrace.linux.proc import c_div

from .columns import StrColumn, as_int64
from .groups import group_bucket_counts, group_last, group_reduce, group_rows, group_sum
from .output import MapOutput
from .values import HIST_SLOTS, INT_KINDS, Hist, LHist, Stats, linear_buckets, log2_buckets, stats_value

__all__ = ["DEFAULT_MAX_MAP_KEYS", "MAX_MAP_KEYS_LIMIT", "Map"]

#: Keys a map holds unless told otherwise: 4096, bpftrace's ``max_map_keys``
#: default. Each key costs a Python dict entry and its value (a hist() value is 65
#: counters): a map keyed by something unbounded (``@[address] = count()`` over
#: 10 million page faults) would otherwise take gigabytes; at 4096 keys even
#: histogram maps stay under 5 MB.
DEFAULT_MAX_MAP_KEYS = 4096
#: The most keys a program may ask a map to hold (``config = { max_map_keys = N }``):
#: 1,048,576, about 200 MB for integer values and 600 MB for histograms.
MAX_MAP_KEYS_LIMIT = 1 << 20


class Map(MutableMapping[Any, Any]):
    """A BPF map: keys (a scalar, a tuple, or ``()`` for a map without keys) to values.

    The first write fixes the map's kind: ``count``/``sum``/``int`` (plain integer
    values, freely mixed), ``str``, ``min``, ``max``, ``avg``, ``stats``, ``hist``,
    ``lhist``. Writes are vectorised: each takes columns (numpy arrays, StrColumns,
    lists of str) or scalars, with ``key`` None (the map's one value), a column, or
    a tuple of columns. Reads are dict reads: ``m[key]`` gives an int (avg: the
    integer average), a str, :class:`Stats`, :class:`Hist` or :class:`LHist`.
    """

    def __init__(self, name: str, max_keys: int = DEFAULT_MAX_MAP_KEYS) -> None:
        if not 1 <= max_keys <= MAX_MAP_KEYS_LIMIT:
            raise LimitError(f"max_map_keys {max_keys:,} is outside 1..{MAX_MAP_KEYS_LIMIT:,}")
        self.name = name if name.startswith("@") else f"@{name}"
        self.kind: str | None = None
        self.lhist_params: tuple[int, int, int] | None = None
        #: a map without keys (``@x = count()``): print(@x) of it empty prints a zero
        self.scalar = False
        #: the most keys the map holds (bpftrace's max_map_keys)
        self.max_keys = max_keys
        #: updates of a new key dropped because the map was full
        self.dropped = 0
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
        if key not in self._data and len(self._data) >= self.max_keys:
            raise LimitError(f"{self.name} is full: it holds {self.max_keys:,} keys (max_map_keys)")
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
            return c_div(raw[1], raw[0]) if raw[0] else 0
        if kind == "stats":
            return stats_value(raw[0], raw[1])
        if kind == "hist":
            return Hist(tuple(int(c) for c in raw))
        if kind == "lhist":
            assert self.lhist_params is not None, "an lhist map knows its parameters"
            lo, hi, step = self.lhist_params
            return LHist(lo, hi, step, tuple(int(c) for c in raw))
        return raw

    def _set_kind(self, kind: str) -> None:
        if self.kind == kind or (self.kind in INT_KINDS and kind in INT_KINDS):
            return
        if self.kind is None:
            self.kind = kind
            return
        raise TypeError(f"{self.name} holds {self.kind} values; it cannot also take {kind}")

    def warning(self) -> str | None:
        """The warning a run gives when updates were dropped (None when none were)."""
        if not self.dropped:
            return None
        return (f"{self.name} is full ({self.max_keys:,} keys): {self.dropped:,} updates of new keys were dropped; "
                f"raise the limit with 'config = {{ max_map_keys = N }}' at the start of the program")

    def _admitted(self, keys: list[Any]) -> list[bool] | None:
        """Which of a write's distinct ``keys`` the map takes: None when all fit (the
        usual case); otherwise a flag per key, the new keys beyond room counted in
        :attr:`dropped`."""
        data = self._data
        if len(data) + len(keys) <= self.max_keys:
            return None
        room = self.max_keys - len(data)
        flags = []
        for k in keys:
            if k in data:
                flags.append(True)
            elif room > 0:
                room -= 1
                flags.append(True)
            else:
                self.dropped += 1
                flags.append(False)
        return flags

    # -- vectorised writes

    def count(self, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = count()`` for each row."""
        n = _rows(key, None, n)
        self._set_kind("count")
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        ok = self._admitted(g.keys)
        for i, (k, c) in enumerate(zip(g.keys, g.counts.tolist())):
            if ok is None or ok[i]:
                data[k] = data.get(k, 0) + c

    def sum(self, value: Any, key: Any = None, *, n: int | None = None) -> None:
        """``@m[key] = sum(value)`` for each row."""
        n = _rows(key, value, n)
        self._set_kind("sum")
        if n == 0:
            return
        g = group_rows(key, n)
        data = self._data
        ok = self._admitted(g.keys)
        for i, (k, s) in enumerate(zip(g.keys, group_sum(g, as_int64(value, n)))):
            if ok is None or ok[i]:
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
        ok = self._admitted(g.keys)
        for i, (k, v) in enumerate(zip(g.keys, group_reduce(g, as_int64(value, n), ufunc))):
            if ok is None or ok[i]:
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
        ok = self._admitted(g.keys)
        for i, (k, c, s) in enumerate(zip(g.keys, g.counts.tolist(), group_sum(g, as_int64(value, n)))):
            if ok is not None and not ok[i]:
                continue
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
        ok = self._admitted(g.keys)
        for i, (k, row) in enumerate(zip(g.keys, table)):
            if ok is not None and not ok[i]:
                continue
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
        ok = self._admitted(g.keys)
        if isinstance(value, (str, int, np.integer)):
            v = value if isinstance(value, str) else int(value)
            for i, k in enumerate(g.keys):
                if ok is None or ok[i]:
                    data[k] = v
            return
        if isinstance(value, list):
            value = StrColumn.from_list(value)
        if isinstance(value, StrColumn):
            vals = [value.values[c] for c in value.codes[last].tolist()]
        else:
            vals = as_int64(value, n)[last].tolist()
        for i, (k, v) in enumerate(zip(g.keys, vals)):
            if ok is None or ok[i]:
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
        rank: Callable[[Any], Any]
        if kind in ("hist", "lhist"):
            rank = operator.attrgetter("total")
        elif kind == "stats":
            rank = operator.attrgetter("average")
        else:
            rank = _identity
        entries.sort(key=lambda kv: (rank(kv[1]), _key_order(kv[0])))
        if top and len(entries) > top:
            entries = entries[len(entries) - top:]
        if div and div != 1:
            entries = [(k, _divide(v, div)) for k, v in entries]
        keyed = any(k != () for k, _ in entries)
        return MapOutput(self.name, kind, tuple(entries), keyed)

    def printed(self, top: int = 0, div: int = 1) -> MapOutput:
        """print(@m): :meth:`snapshot`, as bpftrace's ``print_map`` shows it: a map
        without keys that holds nothing prints its zero (``@: 0``, bpftrace's
        ``emit_empty_scalar``), and no blank line follows a value that fits on its line."""
        snap = self.snapshot(top, div)
        kind = snap.kind
        if not snap.entries and self.scalar and kind not in ("hist", "lhist"):
            zero: Any = "" if kind == "str" else Stats(0, 0, 0) if kind == "stats" else 0
            snap = MapOutput(snap.name, kind, (((), zero),), False)
        return MapOutput(snap.name, snap.kind, snap.entries, snap.keyed, printed=True)


def _rows(key: Any, value: Any, n: int | None) -> int:
    """Number of rows of a vectorised write: from ``n`` or the first column found."""
    if n is not None:
        return n
    parts = list(key) if isinstance(key, tuple) else [key]
    for p in [value, *parts]:
        if isinstance(p, (np.ndarray, StrColumn, list)):
            return len(p)
    return 1


def _identity(value: Any) -> Any:
    return value


def _key_order(key: Any) -> tuple[Any, ...]:
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts)


def _divide(v: Any, div: int) -> Any:
    if isinstance(v, int):
        return c_div(v, div)
    if isinstance(v, Hist):
        return Hist(v.counts, v.div * div)
    return v


