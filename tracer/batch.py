"""Event batches: many events of one tracepoint, fields held as columns.

A range operation in the kernel (touch 1 GiB, read a file, munmap) emits one
:class:`EventBatch` with one numpy array per field instead of one Python object per
event. Consumers that want per-event records iterate :meth:`EventBatch.records`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .schema import Tracepoint

Column = np.ndarray | list[str]


class EventRecord(NamedTuple):
    """One event as a record: tracepoint name and field values (enums decoded)."""

    name: str
    fields: dict[str, Any]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.fields[key]
        return tuple.__getitem__(self, key)


@dataclass(frozen=True)
class EventBatch:
    """``n`` events of tracepoint ``tp``; ``columns`` maps every field to a column.

    Numeric and enum columns are numpy arrays of the field's dtype and length ``n``;
    ``str`` columns are lists of ``n`` strings.
    """

    tp: Tracepoint
    columns: dict[str, Column]

    @property
    def n(self) -> int:
        return len(self.columns["seq"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]

    def ints(self, name: str) -> np.ndarray:
        """The numeric (or enum-code) column ``name``; TypeError if it holds strings."""
        col = self.columns[name]
        if not isinstance(col, np.ndarray):
            raise TypeError(f"field {name!r} of {self.tp.name!r} is a string column, not a number")
        return col

    def strs(self, name: str) -> list[str]:
        """The string column ``name``; TypeError if it holds numbers."""
        col = self.columns[name]
        if isinstance(col, np.ndarray):
            raise TypeError(f"field {name!r} of {self.tp.name!r} is a number column, not a string")
        return col

    def enum_names(self, name: str) -> list[str]:
        """The enum column ``name`` decoded to its values' names."""
        values = self.tp.field(name).values
        return [values[int(code)] for code in self.ints(name)]

    @classmethod
    def build(cls, tp: Tracepoint, n: int, values: Mapping[str, Any]) -> EventBatch:
        """Make a batch from ``values``: every field of ``tp`` must be given exactly.

        A scalar broadcasts to ``n`` events; an enum field also takes its value's
        name. Raises ValueError naming the tracepoint and field on any mismatch.
        """
        given = set(values)
        expected = set(tp.field_names)
        if given != expected:
            missing = sorted(expected - given)
            extra = sorted(given - expected)
            raise ValueError(
                f"tracepoint {tp.name!r}: missing fields {missing}, unknown fields {extra}"
            )
        columns: dict[str, Column] = {}
        for f in tp.all_fields:
            v = values[f.name]
            if f.type == "str":
                if isinstance(v, str):
                    col: Column = [v] * n
                else:
                    col = [str(x) for x in v]
            elif isinstance(v, (int, bool, np.integer, np.bool_)) or (f.type == "enum" and isinstance(v, str)):
                if f.type == "enum" and isinstance(v, str):
                    v = f.code(v)
                col = np.empty(n, dtype=f.dtype)
                col.fill(v)
            else:
                arr = np.asarray(v)
                if arr.ndim == 0:
                    col = np.full(n, arr, dtype=f.dtype)
                else:
                    col = arr.astype(f.dtype, copy=False)
            if len(col) != n:
                raise ValueError(
                    f"tracepoint {tp.name!r}: field {f.name!r} has {len(col)} values, want {n}"
                )
            columns[f.name] = col
        return cls(tp, columns)

    def records(self) -> Iterator[EventRecord]:
        """Yield one :class:`EventRecord` per event, enums decoded to names."""
        decoded: list[Sequence[Any]] = []
        names = self.tp.field_names
        for f in self.tp.all_fields:
            if f.type == "enum":
                decoded.append(self.enum_names(f.name))
            elif f.type == "str":
                decoded.append(self.strs(f.name))
            else:
                decoded.append(self.ints(f.name).tolist())
        for row in zip(*decoded):
            yield EventRecord(self.tp.name, dict(zip(names, row)))

    def slice(self, start: int, end: int, *, copy: bool = False) -> EventBatch:
        """Events ``start:end``; the whole batch itself when that is all of it and
        not ``copy``. With ``copy`` the columns own their data (an emitter may
        reuse its arrays after ``emit`` returns)."""
        if start == 0 and end == self.n and not copy:
            return self
        cols: dict[str, Column] = {}
        for name, col in self.columns.items():
            if isinstance(col, np.ndarray):
                part = col[start:end]
                cols[name] = part.copy() if copy else part
            else:
                cols[name] = list(col[start:end])
        return EventBatch(self.tp, cols)

    def take(self, idx: np.ndarray) -> EventBatch:
        """The events at positions ``idx`` (an integer array), in that order."""
        cols: dict[str, Column] = {}
        positions = idx.tolist()
        for name, col in self.columns.items():
            cols[name] = col[idx] if isinstance(col, np.ndarray) else [col[i] for i in positions]
        return EventBatch(self.tp, cols)

    def select(self, mask: np.ndarray) -> EventBatch:
        """The events where boolean ``mask`` is true, as a new batch."""
        idx = np.flatnonzero(mask)
        cols: dict[str, Column] = {}
        for name, col in self.columns.items():
            if isinstance(col, list):
                cols[name] = [col[i] for i in idx.tolist()]
            else:
                cols[name] = col[idx]
        return EventBatch(self.tp, cols)

    def equals(self, other: EventBatch) -> bool:
        """True when both batches hold the same tracepoint and identical columns."""
        if self.tp.name != other.tp.name or self.n != other.n:
            return False
        for name, col in self.columns.items():
            o = other.columns.get(name)
            if o is None:
                return False
            if isinstance(col, list):
                if list(o) != col:
                    return False
            elif not np.array_equal(col, o):
                return False
        return True


def concat(batches: Sequence[EventBatch]) -> EventBatch:
    """Join batches of one tracepoint in order into a single batch."""
    if not batches:
        raise ValueError("concat of no batches")
    tp = batches[0].tp
    if len(batches) == 1:
        return batches[0]
    cols: dict[str, Column] = {}
    for f in tp.all_fields:
        if f.type == "str":
            joined: list[str] = []
            for b in batches:
                joined.extend(b.columns[f.name])
            cols[f.name] = joined
        else:
            cols[f.name] = np.concatenate([b.ints(f.name) for b in batches])
    return EventBatch(tp, cols)
