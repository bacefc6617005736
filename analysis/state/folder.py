"""The state folder: one provider per subsystem, fed every batch in a fixed order.

:class:`StateFolder` is a bus consumer (:meth:`StateFolder.on_batch`). At its
creation it collects what each provider declares (:mod:`.provider`) into one
dispatch table: for each tracepoint, the fields to check in a trace's schema,
whether History keeps its events, the page-frame and swap-slot fields to check,
and the handlers to call, in :data:`PROVIDERS` order. A batch then costs one dict
lookup before its handlers run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from memtrace.tracer import EventBatch
from memtrace.tracer.tasks import TaskTable
from memtrace.tracer.tracepoints import check_fields

from .cgroups import CgroupProvider
from .core import FoldState
from .history import HistoryProvider
from .model import History, Inode, PageArrays, Process, VmArea
from .pagecache import PageCacheProvider
from .pages import PageProvider
from .provider import Fold, Handler, StateProvider
from .readings import ReadingProvider
from .rss import RssProvider
from .swap import SwapProvider
from .tasks import TaskProvider
from .view import MemoryState
from .vmas import VmaProvider

__all__ = ["FOLD_READS", "FOLD_READS_IF_PRESENT", "HISTORY_TRACEPOINTS", "MAX_KEPT_EVENTS", "PROVIDERS", "StateFolder",
           "commute_classes"]

#: The providers, in the order each batch is offered to them. Where two fold one
#: tracepoint the order is the kernel's: cgroups before the tasks attached to them;
#: a task (its row, with fork's parent and child) before its address space is copied
#: or torn down (vmas); faults waiting for a page forgotten once the VMAs are gone
#: (pages after vmas on exit).
PROVIDERS: tuple[type[StateProvider], ...] = (
    CgroupProvider,
    TaskProvider,
    VmaProvider,
    PageProvider,
    PageCacheProvider,
    SwapProvider,
    RssProvider,
    ReadingProvider,
    HistoryProvider,
)


def _merge(*parts: Iterable[str]) -> tuple[str, ...]:
    """The names of ``parts`` in order, each once."""
    return tuple(dict.fromkeys(name for part in parts for name in part))


def _declarations() -> dict[str, list[Fold]]:
    """Every provider's declarations, by tracepoint, in provider order."""
    out: dict[str, list[Fold]] = {}
    for provider in PROVIDERS:
        for spec, _name in provider.declarations():
            out.setdefault(spec.tracepoint, []).append(spec)
    return out


_DECLARED = _declarations()
#: The fields the fold reads, by tracepoint (the common seq, ts_ns and pid are in
#: every schema): a trace whose schema lacks one cannot be folded. Derived from the
#: providers' declarations.
FOLD_READS: dict[str, tuple[str, ...]] = {
    name: reads for name, specs in _DECLARED.items() if (reads := _merge(*(s.reads for s in specs)))
}
#: Fields read when the schema has them (the /proc/meminfo readings).
FOLD_READS_IF_PRESENT: dict[str, tuple[str, ...]] = {
    name: reads for name, specs in _DECLARED.items() if (reads := _merge(*(s.reads_if_present for s in specs)))
}
#: Tracepoints whose every event History keeps (few per run).
HISTORY_TRACEPOINTS = frozenset(name for name, specs in _DECLARED.items() if any(s.keep for s in specs))
#: Tracepoint -> the one part of the state all its folds touch (Fold.touches).
_PARTS: dict[str, str] = {
    name: parts.pop() for name, specs in _DECLARED.items()
    if len(parts := {s.touches for s in specs}) == 1 and "" not in parts and not any(s.keep for s in specs)
}


def commute_classes(names: Iterable[str], ordered: Iterable[str] = ()) -> dict[str, int]:
    """Of the tracepoints ``names``, those the fold may take out of ``seq`` order
    against one another, as ``TraceReader.ordered_batches(commute=...)`` wants them:
    tracepoints whose every fold touches one part of the state (``Fold.touches``:
    the page frames, the rss_stat counters) get that part's class, and tracepoints
    the fold only counts (no handler, not kept in the history) a class each. Every
    other tracepoint, and those in ``ordered``, keeps its place.

    The result is the state of a fold in ``seq`` order, with two exceptions no
    report shows: the order in which processes first seen in different parts enter
    the process table (every reader sorts them by pid), and which counted warnings
    come first.
    """
    keep = frozenset(ordered)
    out: dict[str, int] = {}
    parts: dict[str, int] = {}
    for name in names:
        if name in keep:
            continue
        part = _PARTS.get(name)
        if part is not None:
            out[name] = parts.setdefault(part, len(parts))
        elif name not in _DECLARED:
            out[name] = -1  # numbered below, after the parts
    counted = [name for name, cls in out.items() if cls < 0]
    for i, name in enumerate(counted):
        out[name] = len(parts) + i
    return out


#: The most events the history keeps whole, all tracepoints together: 1,048,576
#: (about 350 MB). A simulated run keeps thousands (oom-leak: reclaim, OOM, tasks).
MAX_KEPT_EVENTS = 1 << 20


class _Check(NamedTuple):
    """A field naming a page frame or swap slot, and the bound the fold tracks."""

    field: str
    limit: int
    what: str
    header: str


class _Plan(NamedTuple):
    """How the folder handles one tracepoint."""

    handlers: tuple[Handler, ...]
    keep: bool
    checks: tuple[_Check, ...]


class StateFolder:
    """Folds event batches, fed in ``seq`` order, into a :class:`~.view.MemoryState`.

    A bus consumer (:meth:`on_batch`). ``meta`` is the trace header's meta map; its
    RAM and swap sizes size the page and swap-slot arrays when the first event naming
    a pfn or slot comes (they grow if events show more, up to :attr:`pfn_limit` and
    :attr:`slot_limit`). ``reads`` adds, by tracepoint, fields a caller will read
    from :attr:`history` (checked with the fold's own, see
    :func:`~memtrace.tracer.tracepoints.check_fields`); ``reader`` names the caller in
    the error. What the fold left out of an odd trace is in :attr:`warnings`.
    """

    def __init__(self, meta: Mapping[str, Any] | None = None, *,
                 reads: Mapping[str, Iterable[str]] | None = None,
                 reader: str = "the state fold (memtrace explain, ps, report)") -> None:
        self._state = st = FoldState(meta)
        self._reader = reader
        self._reads: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (reads or {}).items()}
        handlers: dict[str, list[Handler]] = {}
        for provider in PROVIDERS:
            for spec, handler in provider(st).handlers():
                if handler is not None:
                    handlers.setdefault(spec.tracepoint, []).append(handler)
        self._handlers = {name: tuple(hs) for name, hs in handlers.items()}
        self._plans: dict[str, _Plan] = {}
        self._kept = 0  # events kept whole in the history (MAX_KEPT_EVENTS)

    def _plan(self, batch: EventBatch) -> _Plan:
        """The plan of ``batch``'s tracepoint, made (after its schema is checked) on
        its first batch."""
        name = batch.tp.name
        specs = _DECLARED.get(name, [])
        check_fields(batch.tp, self._reader, (*FOLD_READS.get(name, ()), *self._reads.get(name, ())),
                     FOLD_READS_IF_PRESENT.get(name, ()))
        st = self._state
        checks = [_Check(f, st.pfn_limit, "page frame", "ram_bytes") for f in _merge(*(s.pfns for s in specs))]
        checks += [_Check(f, st.slot_limit, "swap slot", "swap_bytes") for f in _merge(*(s.slots for s in specs))]
        plan = _Plan(self._handlers.get(name, ()), name in HISTORY_TRACEPOINTS, tuple(checks))
        self._plans[name] = plan
        return plan

    # -- feeding

    def on_batch(self, batch: EventBatch) -> None:
        """Fold one batch (events of one tracepoint, in seq order).

        TraceFormatError when the trace's schema of the tracepoint lacks a field the
        fold (or the caller's ``reads``) needs; events with impossible page frame
        numbers or swap slots are left out of the per-page state (see
        :attr:`warnings`)."""
        if batch.n == 0:
            return
        name = batch.tp.name
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plan(batch)
        st = self._state
        h = st.history
        h.counts[name] = h.counts.get(name, 0) + batch.n
        if plan.keep:
            self._keep(name, batch)
        if plan.handlers:
            folded = self._plausible(batch, plan.checks) if plan.checks else batch
            if folded.n:
                for handler in plan.handlers:
                    handler(folded)
        ts = batch.ints("ts_ns")
        if st.first_ts_ns is None:
            st.first_ts_ns = int(ts[0])
        # max(): batches of tracepoints in different commute classes come out of
        # seq order (see commute_classes).
        st.last_seq = max(st.last_seq, int(batch.ints("seq")[-1]))
        st.last_ts_ns = max(st.last_ts_ns, int(ts[-1]))

    def _keep(self, name: str, batch: EventBatch) -> None:
        """Keep ``batch``'s events whole in the history (as dicts, about 350 bytes
        each), up to MAX_KEPT_EVENTS in all; the later ones are counted in a warning
        (a crafted trace of 80 million process starts in 1 MB made the history 3.5 GB)."""
        h = self._state.history
        room = MAX_KEPT_EVENTS - self._kept
        take = min(room, batch.n)
        if take > 0:
            part = batch if take == batch.n else batch.slice(0, take)
            h.events.setdefault(name, []).extend(r.fields for r in part.records())
            self._kept += take
        if take < batch.n:
            self._state.skip("kept", f"more than {MAX_KEPT_EVENTS:,} events of the tracepoints the history keeps "
                                     f"whole (first: {name}): the later ones are not in the history (timelines, "
                                     "reclaim and OOM details stop there)", batch.n - max(take, 0))

    def _plausible(self, batch: EventBatch, checks: tuple[_Check, ...]) -> EventBatch:
        """``batch`` without the events naming a page frame or swap slot beyond what
        the fold tracks (:attr:`pfn_limit`, :attr:`slot_limit`): such a value cannot
        come from the trace's machine, and would size the arrays from it."""
        name = batch.tp.name
        bad: np.ndarray | None = None
        for fname, limit, what, header in checks:
            col = batch.ints(fname)
            out = col >= limit
            if col.dtype.kind == "i":
                out |= col < 0
            if out.any():
                i = int(np.flatnonzero(out)[0])
                self._state.skip(f"{name}.{fname}",
                                 f"{name} (seq {int(batch.ints('seq')[i])}): {fname} {int(col[i]):,} is not a "
                                 f"{what} the fold tracks (below {limit:,}, from machine.{header}): event left out",
                                 int(np.count_nonzero(out)))
                bad = out if bad is None else bad | out
        return batch if bad is None else batch.select(~bad)

    def state(self) -> MemoryState:
        """The folded picture now (shares the folder's arrays: read, do not keep
        across more batches)."""
        return MemoryState(self._state)

    # -- the folded picture (see FoldState)

    @property
    def meta(self) -> dict[str, Any]:
        return self._state.meta

    @property
    def warnings(self) -> list[str]:
        """What the fold ignored or left out: header parts it could not read, and
        events with impossible values (one line per kind, with how many more)."""
        return self._state.warnings

    @property
    def pages(self) -> PageArrays:
        return self._state.pages

    @property
    def tasks(self) -> TaskTable:
        """The trace's task table, as far as it is folded."""
        return self._state.tasks

    @property
    def procs(self) -> dict[int, Process]:
        return self._state.procs

    @property
    def vmas(self) -> dict[int, VmArea]:
        """The live VMAs, by vid."""
        return self._state.vmas

    @property
    def pte_entries(self) -> int:
        """Page-table entries of the live VMAs (counted against MAX_PTE_ENTRIES)."""
        return self._state.pte_entries

    @property
    def inodes(self) -> dict[int, Inode]:
        return self._state.inodes

    @property
    def cgroups(self) -> dict[int, str]:
        """memcg id -> cgroup path."""
        return self._state.cgroups

    @property
    def cgroup_limits(self) -> dict[str, int]:
        """cgroup path -> memory.max, bytes (0: unlimited)."""
        return self._state.cgroup_limits

    @property
    def history(self) -> History:
        return self._state.history

    @property
    def nr_swap(self) -> int:
        """Swap slots tracked."""
        return self._state.swap.nr_slots

    @property
    def slot_shmem(self) -> np.ndarray:
        """Per swap slot: holds a shmem page."""
        return self._state.swap.shmem

    @property
    def slot_ino(self) -> np.ndarray:
        return self._state.swap.ino

    @property
    def slot_index(self) -> np.ndarray:
        return self._state.swap.index

    @property
    def pfn_limit(self) -> int:
        """Page frames at or above this are not tracked."""
        return self._state.pfn_limit

    @property
    def slot_limit(self) -> int:
        """Swap slots at or above this are not tracked."""
        return self._state.slot_limit

    @property
    def last_seq(self) -> int:
        return self._state.last_seq

    @property
    def first_ts_ns(self) -> int | None:
        return self._state.first_ts_ns

    @property
    def last_ts_ns(self) -> int:
        return self._state.last_ts_ns

    @property
    def nr_page_events(self) -> int:
        """Events that name a page frame."""
        return self._state.nr_page_events

    @property
    def unattributed_faults(self) -> int:
        """Page faults at an address no VMA of the process covers."""
        return self._state.unattributed_faults
