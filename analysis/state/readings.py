"""Readings: the /proc/meminfo values a trace carries (snapshot, meminfo_sample).

A labelled ``snapshot`` (a scenario step) or a periodic ``meminfo_sample`` marks a
moment whose /proc/meminfo the folded state can be checked against; the fields the
trace's schema has are read, in bytes.
"""

from __future__ import annotations

from memtrace.tracer import MEMINFO_FIELDS, EventBatch

from .model import Reading
from .provider import StateProvider, folds

__all__ = ["MEMINFO_FIELD_OF", "MEMINFO_NAME_OF", "READING_TRACEPOINTS", "ReadingProvider"]

#: meminfo name -> reading field name, and back.
MEMINFO_FIELD_OF = dict(MEMINFO_FIELDS)
MEMINFO_NAME_OF = {f: m for m, f in MEMINFO_FIELDS}
#: Tracepoints whose events mark a moment (a /proc/meminfo reading).
READING_TRACEPOINTS = ("snapshot", "meminfo_sample")
_MEMINFO_READS = tuple(f for _m, f in MEMINFO_FIELDS)


class ReadingProvider(StateProvider):
    """Folds readings into :attr:`~.model.History.readings`."""

    @folds("snapshot", reads=("label",), reads_if_present=_MEMINFO_READS)
    @folds("meminfo_sample", reads_if_present=_MEMINFO_READS)
    def _reading(self, batch: EventBatch) -> None:
        snapshot = batch.tp.name == "snapshot"
        readings = self.state.history.readings
        for r in batch.records():
            f = r.fields
            mi = {MEMINFO_NAME_OF[k]: int(v) for k, v in f.items() if k in MEMINFO_NAME_OF}
            readings.append(Reading(int(f["seq"]), int(f["ts_ns"]), f["label"] if snapshot else None, mi))
