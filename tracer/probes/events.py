"""The events a probe action sees: a vectorised view of (part of) one batch.

A probe action is called with an :class:`Events` object, never once per event:
its fields are whole columns (numpy arrays, or :class:`~.columns.StrColumn` for
strings and enums), its builtins (``pid``, ``comm``, ``nsecs``, ``elapsed`` ...)
are columns too, and its output calls (``printf``, ``time``, ``print``) queue one
record per selected event on the tracer, which emits them in event order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch import EventBatch
from ..schema import Tracepoint
from .columns import StrColumn, as_int64
from .maps import Map
from .output import PrintfOutput, TimeOutput, ValueOutput
from .printf import cached_format, format_rows, sim_strftime

if TYPE_CHECKING:
    from .runtime import Tracer

__all__ = ["Events", "EventsBase"]


class EventsBase:
    """One batch as a probe sees it: columns converted once, shared by every view
    (every probe, segment and selection of the batch). ``batch`` is None for the
    one synthetic event of a BEGIN, END or interval probe."""

    __slots__ = ("batch", "cache", "n", "tracer")

    def __init__(self, tracer: Tracer, batch: EventBatch | None) -> None:
        self.tracer = tracer
        self.batch = batch
        self.cache: dict[str, Any] = {}
        self.n = batch.n if batch is not None else 1

    def column(self, name: str) -> Any:
        """Field ``name`` of the batch: its numpy column, or a StrColumn for a
        ``str`` or ``enum`` field."""
        col = self.cache.get(name)
        if col is None:
            assert self.batch is not None
            f = self.batch.tp.field(name)
            if f.type == "str":
                col = StrColumn.from_list(self.batch.strs(name))
            elif f.type == "enum":
                col = StrColumn(self.batch.ints(name).astype(np.intp), f.values)
            else:
                col = self.batch.ints(name)
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

    def __init__(self, base: EventsBase, sel: slice | np.ndarray, probe_name: str = "",
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
            return int(sel.stop - sel.start)
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

    def _take_ints(self, col: np.ndarray) -> np.ndarray:
        taken: np.ndarray = col[self._sel]
        return taken

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
        return self._take_ints(self._int_column("pid"))

    tid = pid

    @property
    def nsecs(self) -> np.ndarray:
        if self._base.batch is None:
            return np.full(1, self._synthetic_ns or 0, dtype=np.int64)
        return self._take_ints(self._int_column("ts_ns"))

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
        taken: StrColumn = self._take(col)
        return taken

    def _int_column(self, name: str) -> np.ndarray:
        key = "@i64:" + name
        col: np.ndarray | None = self._base.cache.get(key)
        if col is None:
            col = as_int64(self._base.column(name), self._base.n)
            self._base.cache[key] = col
        return col

    def int_field(self, name: str) -> np.ndarray:
        """Field ``name`` as int64 (bools 0/1), the one-liner language's integers."""
        return self._take_ints(self._int_column(name))

    def enum_code(self, name: str) -> np.ndarray:
        """Enum field ``name`` as its codes (int64): the kernel's integer where the
        field's values follow the kernel's order (``rss_stat.member``)."""
        col: StrColumn = self.field(name)
        codes: np.ndarray = col.codes.astype(np.int64)
        return codes

    def comm_of(self, pid: Any) -> StrColumn:
        """comm of each pid in ``pid`` (a column or scalar), from the tracer's task table."""
        return self.tracer.comms_of(as_int64(pid, self.n))

    def path(self, ino: Any) -> StrColumn:
        """Path of each inode in ``ino``, from the tracer's table (see :class:`~.runtime.Tracer`)."""
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
        texts = format_rows(cached_format(fmt), args, self.n)
        self.tracer.queue(self.rows, [PrintfOutput(t) for t in texts])

    def print_value(self, value: Any) -> None:
        """print(expression): one value per event."""
        if isinstance(value, StrColumn):
            vals: list[Any] = value.tolist()
        elif isinstance(value, (str, int)):
            vals = [value] * self.n
        else:
            vals = as_int64(value, self.n).tolist()
        self.tracer.queue(self.rows, [ValueOutput(v) for v in vals])

    def time(self, fmt: str = "%H:%M:%S\n") -> None:
        """time(): the simulated time of each event, formatted."""
        texts = [sim_strftime(fmt, t) for t in self.nsecs.tolist()]
        self.tracer.queue(self.rows, [TimeOutput(t) for t in texts])

    def print(self, m: Map, top: int = 0, div: int = 1) -> None:
        """print(@m): the map as it is now, once (at this view's first event)."""
        self.tracer.queue(self.rows[:1], [m.printed(top, div)])


