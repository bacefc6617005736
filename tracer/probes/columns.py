"""Columns as probes see them: dictionary-encoded strings and dense integer codes.

A probe never loops over events in Python: string and enum fields become a
:class:`StrColumn` (one code per row into a short list of distinct strings), and
integer columns are grouped through :func:`dense_codes`. Both turn "compare with a
string" or "group by a key" into numpy operations on codes plus one Python step per
distinct value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Column", "StrColumn", "as_int64", "as_key_column", "dense_codes", "unify_strings"]


class StrColumn:
    """A column of strings, dictionary-encoded: row ``i`` is ``values[codes[i]]``.

    Enum fields are held this way with the field's ``values`` (their uint8 codes are
    already codes), so comparing with a string or grouping by one costs a numpy
    operation on the codes plus one Python comparison per distinct value. Like a
    numpy array, a StrColumn compares row by row (``col == "x"`` is a boolean mask)
    and so is not hashable.
    """

    __slots__ = ("codes", "values")

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

    def __eq__(self, other: object) -> Any:
        if isinstance(other, str):
            return self._value_mask(lambda v: v == other)[self.codes] if self.values else np.zeros(0, np.bool_)
        if isinstance(other, StrColumn):
            a, b = unify_strings(self, other)
            return a.codes == b.codes
        return NotImplemented

    def __ne__(self, other: object) -> Any:
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


#: What a probe's expressions produce: a numeric column, a string column (or a
#: list of str, as batches hold them), or a scalar broadcast to every row.
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


def as_key_column(value: Any, n: int) -> StrColumn | np.ndarray | int | str:
    """One component of a map key as :func:`~.groups.group_rows` groups it: a
    StrColumn, an integer array (bools as 0/1), or a scalar int or str.
    TypeError for anything else (a float column, a float)."""
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
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (int, str)):
        return value
    raise TypeError(f"map keys must be integers or strings, not {type(value).__name__}")


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
