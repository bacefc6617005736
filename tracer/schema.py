"""Tracepoint schemas: the one definition of every event's shape.

A :class:`Tracepoint` is what a tracefs ``format`` file describes on a real kernel:
a name, typed fields with units, and the real tracepoint it corresponds to. The bus,
the trace file, the one-liner language and ``memtrace list`` all read these objects;
nothing else defines an event's fields.

Every event carries the common fields ``seq`` (global sequence number, the total
order), ``ts_ns`` (simulated time in integer nanoseconds) and ``pid`` (the task in
whose context the event fired, like ``common_pid``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from memtrace.errors import NotFoundError

#: Field types and the numpy dtype each is held in. ``str`` columns are Python lists;
#: ``enum`` columns hold uint8 codes into the field's ``values``.
FIELD_DTYPES: dict[str, np.dtype] = {
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
    "enum": np.dtype(np.uint8),
}
FIELD_TYPES = (*FIELD_DTYPES, "str")


@dataclass(frozen=True)
class Field:
    """One field of a tracepoint: name, type, unit and meaning.

    ``type`` is one of ``u8 u16 u32 u64 i32 i64 bool enum str``. An ``enum`` field
    stores a uint8 code; ``values`` names each code in order.
    """

    name: str
    type: str
    doc: str
    unit: str = ""
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}")
        if (self.type == "enum") != bool(self.values):
            raise ValueError(f"field {self.name!r}: enum fields and only they take values")

    @property
    def dtype(self) -> np.dtype | None:
        """The numpy dtype of this field's column, or None for ``str``."""
        return FIELD_DTYPES.get(self.type)

    def code(self, value: str) -> int:
        """The uint8 code of enum ``value``; ValueError names the field if unknown."""
        try:
            return self.values.index(value)
        except ValueError:
            raise ValueError(
                f"field {self.name!r}: {value!r} is not one of {', '.join(self.values)}"
            ) from None

    def describe(self) -> dict[str, object]:
        """JSON-ready description, as ``memtrace list --json`` prints it."""
        out: dict[str, object] = {"name": self.name, "type": self.type, "doc": self.doc}
        if self.unit:
            out["unit"] = self.unit
        if self.values:
            out["values"] = list(self.values)
        return out


COMMON_FIELDS: tuple[Field, ...] = (
    Field("seq", "u64", "global sequence number: the total order of events"),
    Field("ts_ns", "u64", "simulated time since boot", unit="ns"),
    Field("pid", "i32", "task in whose context the event fired (common_pid)"),
)


@dataclass(frozen=True)
class Tracepoint:
    """Schema of one tracepoint: its name, fields and real-kernel counterpart.

    ``fields`` lists the event-specific fields; :attr:`all_fields` prepends the
    common ones. ``kernel`` names the real tracepoint(s) it corresponds to, in
    ``system:event`` form, or is empty where the kernel has none.
    """

    name: str
    doc: str
    fields: tuple[Field, ...]
    kernel: str = ""
    _index: dict[str, Field] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        all_fields = COMMON_FIELDS + self.fields
        names = [f.name for f in all_fields]
        if len(set(names)) != len(names):
            raise ValueError(f"tracepoint {self.name!r}: duplicate field names")
        object.__setattr__(self, "_index", {f.name: f for f in all_fields})

    @property
    def all_fields(self) -> tuple[Field, ...]:
        """Common fields followed by this tracepoint's own, in column order."""
        return COMMON_FIELDS + self.fields

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.all_fields)

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError names the tracepoint if absent."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"tracepoint {self.name!r} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self._index

    def describe(self) -> dict[str, object]:
        """JSON-ready description: name, doc, kernel counterpart and fields."""
        return {
            "name": self.name,
            "doc": self.doc,
            "kernel": self.kernel,
            "fields": [f.describe() for f in self.all_fields],
        }


class Registry:
    """An ordered set of tracepoints, looked up by name or glob.

    Each tracepoint gets a small integer id (its position), which the trace file
    uses to name the tracepoint of each chunk.
    """

    def __init__(self, tracepoints: Iterable[Tracepoint] = ()) -> None:
        self._by_name: dict[str, Tracepoint] = {}
        self._order: list[Tracepoint] = []
        for tp in tracepoints:
            self.add(tp)

    def add(self, tp: Tracepoint) -> Tracepoint:
        if tp.name in self._by_name:
            raise ValueError(f"tracepoint {tp.name!r} registered twice")
        self._by_name[tp.name] = tp
        self._order.append(tp)
        return tp

    def __getitem__(self, name: str) -> Tracepoint:
        """The tracepoint called ``name``; NotFoundError names it if there is none
        (a name a user typed, or a trace written with another schema)."""
        tp = self._by_name.get(name)
        if tp is None:
            raise NotFoundError(f"unknown tracepoint {name!r}")
        return tp

    def get(self, name: str) -> Tracepoint | None:
        """The tracepoint called ``name``, or None."""
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Tracepoint]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def id_of(self, tp: Tracepoint) -> int:
        return self._order.index(self._by_name[tp.name])

    def by_id(self, tp_id: int) -> Tracepoint:
        return self._order[tp_id]

    def match(self, pattern: str) -> list[Tracepoint]:
        """Tracepoints whose name matches a glob (``page_*``) or equals ``pattern``."""
        return [tp for tp in self._order if fnmatch.fnmatchcase(tp.name, pattern)]
