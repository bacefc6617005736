"""Folding a trace file: all of it (:func:`fold_trace`), up to one /proc/meminfo
reading (:func:`fold_at`), or watching chosen events go by (:func:`walk`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from memtrace.errors import NotFoundError
from memtrace.tracer import EventBatch, TraceReader

from ._arrays import one
from .folder import StateFolder, commute_classes
from .model import Reading
from .readings import READING_TRACEPOINTS

__all__ = ["Observer", "Stop", "fold_at", "fold_trace", "walk"]

#: Called after each watched event: (tracepoint, the event's fields, the folder).
Observer = Callable[[str, dict[str, Any], StateFolder], None]


class Stop(Exception):
    """Raised by an observer to end a walk early."""


def walk(reader: TraceReader, folder: StateFolder, *, observe: Observer | None = None,
         observe_tracepoints: Iterable[str] = (), skip: Iterable[str] = ()) -> StateFolder:
    """Feed every batch of ``reader``, in seq order, to ``folder``.

    Events of ``observe_tracepoints`` are fed one at a time and, after each,
    ``observe(name, fields, folder)`` is called: the folder's state is then the state
    right after that event. ``observe`` may raise :class:`Stop` to end the walk.
    Events of the tracepoints in ``skip`` are not fed at all (a caller that reads
    nothing they fold).
    """
    watched = frozenset(observe_tracepoints)
    commute = commute_classes((tp.name for tp in reader.registry), ordered=watched)
    try:
        for batch in reader.ordered_batches(frozenset(skip), commute=commute):
            if observe is None or batch.tp.name not in watched:
                folder.on_batch(batch)
                continue
            for i, rec in enumerate(batch.records()):
                folder.on_batch(batch.select(one(batch.n, i)))
                observe(batch.tp.name, rec.fields, folder)
    except Stop:
        pass
    return folder


#: The most batches fold_at holds back (a batch costs about 1 KB however few events
#: it has): a crafted trace whose tracepoints alternate event by event made 8 M
#: held events cost 10 GB.
MAX_HELD_BATCHES = 1 << 16


def fold_at(reader: TraceReader, at: str | int | None = None, *,
            max_buffered_events: int = 1 << 23) -> tuple[StateFolder, Reading | None, list[str]]:
    """Fold ``reader`` up to one /proc/meminfo reading, so that the state and the
    reading describe the same moment.

    ``at`` is a snapshot label (str), a time in ns since boot (int: the last reading
    at or before it), or None (the last reading of the trace). A trace with no
    reading (imported ones) is folded to that time, or to its end. Events after the
    chosen reading are not folded: in the time and default modes they are held back
    until the next reading shows they come before it (at most
    ``max_buffered_events`` in at most MAX_HELD_BATCHES batches; beyond that they are
    folded and a warning says the state
    is later than the reading). Returns the folder, the reading (None when there is
    none) and warnings. :class:`~memtrace.errors.NotFoundError` names the label, and
    the labels there are, when no snapshot has it.
    """
    folder = StateFolder(reader.meta)
    warnings: list[str] = []
    held: list[EventBatch] = []
    held_n = 0
    chosen: Reading | None = None
    labels: list[str] = []
    stale = False
    by_label = isinstance(at, str)
    until_ns = at if isinstance(at, int) and not isinstance(at, bool) else None
    # The readings keep their place, the rest may come by commute class; up to a
    # time, the pass ends at the first event (in seq order) later than it.
    commute = commute_classes(tp.name for tp in reader.registry)
    for batch in reader.ordered_batches(commute=commute, until_ts=until_ns):
        name = batch.tp.name
        if name in READING_TRACEPOINTS:
            # A run of readings, folded as one batch (millions of meminfo samples
            # cost no Python work each): up to ``at``'s label (the reader ends the
            # pass at ``at``'s time).
            end = batch.n
            hit = None
            if name == "snapshot" and not batch.tp.has_field("label"):
                folder.on_batch(batch)  # raises: the trace's schema lacks a field the fold reads
            if name == "snapshot":
                names = [str(x) for x in batch.strs("label")[:end]]
                labels.extend(names)
                if by_label and at in names:
                    hit = names.index(at)
                    end = hit + 1
            if end:
                for h in held:
                    folder.on_batch(h)
                held, held_n = [], 0
                folder.on_batch(batch if end == batch.n else batch.slice(0, end))
                reading = folder.history.readings[-1]  # the run's last: always kept
                if hit is not None:
                    return _done(folder, reading, warnings, False)
                if not by_label:
                    chosen, stale = reading, False
            if end < batch.n:
                return _done(folder, chosen, warnings, stale, held)
            continue
        if by_label:
            folder.on_batch(batch)
            continue
        held.append(batch)
        held_n += batch.n
        if held_n > max_buffered_events or len(held) > MAX_HELD_BATCHES:
            for h in held:
                folder.on_batch(h)
            held, held_n = [], 0
            stale = True
    if by_label:
        known = ", ".join(labels) or "none"
        raise NotFoundError(f"{reader.path}: no snapshot labelled {at!r} (labels: {known})")
    if chosen is None:
        # No reading at all (an imported trace): the state at the end of the trace.
        for h in held:
            folder.on_batch(h)
    return _done(folder, chosen, warnings, stale)


def _done(folder: StateFolder, reading: Reading | None, warnings: list[str], stale: bool,
          held: list[EventBatch] | None = None) -> tuple[StateFolder, Reading | None, list[str]]:
    if reading is None and held:
        # No reading before the time asked for: the state at that time.
        for h in held:
            folder.on_batch(h)
    warnings.extend(w for w in folder.warnings if w not in warnings)
    if stale and reading is not None:
        warnings.append(f"events after the reading at {reading.name} were folded (too many to hold back): "
                        "the breakdown may not match its /proc/meminfo")
    return folder, reading, warnings


def fold_trace(reader: TraceReader) -> StateFolder:
    """Fold a whole trace: the state at its end."""
    return walk(reader, StateFolder(reader.meta))
