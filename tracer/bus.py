"""The event bus: the kernel emits batches, consumers receive them.

Models the role of the kernel's tracepoint call sites plus the perf/ftrace ring
buffer: the emitter assigns each event a global sequence number (a total order with
no ties) and hands the batch to every consumer attached to that tracepoint, in the
order they attached. Consumers that want one record per event wrap a callback in
:class:`RecordConsumer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from memtrace.errors import NotFoundError

from .batch import EventBatch, EventRecord
from .schema import Registry, Tracepoint


class Consumer(Protocol):
    """Anything that takes event batches: probes, the recorder, test collectors."""

    def on_batch(self, batch: EventBatch) -> None: ...


class RecordConsumer:
    """Adapts a per-event callback to the batch interface."""

    def __init__(self, callback: Callable[[EventRecord], None]) -> None:
        self.callback = callback

    def on_batch(self, batch: EventBatch) -> None:
        for record in batch.records():
            self.callback(record)


class Collector:
    """A consumer that keeps every batch it sees, for tests and small tools."""

    def __init__(self) -> None:
        self.batches: list[EventBatch] = []

    def on_batch(self, batch: EventBatch) -> None:
        self.batches.append(batch)

    def of(self, name: str) -> list[EventBatch]:
        return [b for b in self.batches if b.tp.name == name]

    def count(self, name: str) -> int:
        return sum(b.n for b in self.of(name))

    def records(self, name: str | None = None) -> list[EventRecord]:
        out: list[EventRecord] = []
        for b in self.batches:
            if name is None or b.tp.name == name:
                out.extend(b.records())
        return out


class Bus:
    """Delivers event batches from the emitter to attached consumers.

    ``seq`` is the next sequence number to assign. Every emitted event consumes a
    sequence number whether or not anyone listens, so a trace's numbering does not
    depend on which probes were attached.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.seq = 0
        self._all: list[Consumer] = []
        self._by_tp: dict[str, list[Consumer]] = {}

    def attach(self, consumer: Consumer, tracepoints: Iterable[str] | None = None) -> None:
        """Attach ``consumer`` to the named tracepoints (globs allowed), or to all;
        NotFoundError names a pattern that matches none."""
        if tracepoints is None:
            self._all.append(consumer)
            targets = [tp.name for tp in self.registry]
        else:
            targets = []
            for pattern in tracepoints:
                matched = self.registry.match(pattern)
                if not matched:
                    raise NotFoundError(f"no tracepoint matches {pattern!r}")
                targets.extend(tp.name for tp in matched)
        for name in dict.fromkeys(targets):
            self._by_tp.setdefault(name, []).append(consumer)

    def detach(self, consumer: Consumer) -> None:
        if consumer in self._all:
            self._all.remove(consumer)
        for consumers in self._by_tp.values():
            while consumer in consumers:
                consumers.remove(consumer)

    def wants(self, tp: Tracepoint) -> bool:
        """True when at least one consumer is attached to ``tp``."""
        return bool(self._by_tp.get(tp.name))

    def emit(self, tp: Tracepoint, ts_ns: Any, pid: Any, n: int = 1, **fields: Any) -> None:
        """Emit ``n`` events of ``tp`` at times ``ts_ns`` in task ``pid``'s context.

        ``ts_ns``, ``pid`` and each field take a scalar (same for all ``n`` events)
        or a column of length ``n``. Fields are checked against the schema.
        """
        if n <= 0:
            return
        first = self.seq
        self.seq += n
        consumers = self._by_tp.get(tp.name)
        if not consumers:
            return
        seq = np.arange(first, first + n, dtype=np.uint64)
        batch = EventBatch.build(tp, n, {"seq": seq, "ts_ns": ts_ns, "pid": pid, **fields})
        for consumer in consumers:
            consumer.on_batch(batch)
