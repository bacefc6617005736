"""Readings: the /proc/meminfo values a trace carries (snapshot, meminfo_sample).

A labelled ``snapshot`` (a scenario step) or a periodic ``meminfo_sample`` marks a
moment whose /proc/meminfo the folded state can be checked against; the fields the
trace's schema has are read, in bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.tracer import MEMINFO_FIELDS, EventBatch

from .model import Reading
from .provider import StateProvider, folds

if TYPE_CHECKING:
    from .core import FoldState

__all__ = ["MEMINFO_FIELD_OF", "MEMINFO_NAME_OF", "READING_TRACEPOINTS", "ReadingProvider"]

#: meminfo name -> reading field name, and back.
MEMINFO_FIELD_OF = dict(MEMINFO_FIELDS)
MEMINFO_NAME_OF = {f: m for m, f in MEMINFO_FIELDS}
#: Tracepoints whose events mark a moment (a /proc/meminfo reading).
READING_TRACEPOINTS = ("snapshot", "meminfo_sample")
#: The most readings the history holds (about 1 KB each) before it keeps every
#: other one (see ReadingProvider._thin).
MAX_READINGS = 1 << 16
_MEMINFO_READS = tuple(f for _m, f in MEMINFO_FIELDS)


class ReadingProvider(StateProvider):
    """Folds readings into :attr:`~.model.History.readings`."""

    def __init__(self, state: FoldState) -> None:
        super().__init__(state)
        #: meminfo samples are kept one in ``_stride`` (doubled each time the
        #: history fills: see _thin); ``_seen`` counts the samples so far
        self._stride = 1
        self._seen = 0

    @folds("snapshot", reads=("label",), reads_if_present=_MEMINFO_READS)
    @folds("meminfo_sample", reads_if_present=_MEMINFO_READS)
    def _reading(self, batch: EventBatch) -> None:
        snapshot = batch.tp.name == "snapshot"
        readings = self.state.history.readings
        if not snapshot and self._stride > 1:
            # Only the samples the history will keep become Reading objects (and the
            # batch's last, the reading a fold stops at).
            first = (-self._seen) % self._stride
            self._seen += batch.n
            keep = np.zeros(batch.n, dtype=bool)
            keep[first::self._stride] = True
            keep[-1] = True
            batch = batch.select(keep)
        elif not snapshot:
            self._seen += batch.n
        for r in batch.records():
            f = r.fields
            mi = {MEMINFO_NAME_OF[k]: int(v) for k, v in f.items() if k in MEMINFO_NAME_OF}
            readings.append(Reading(int(f["seq"]), int(f["ts_ns"]), f["label"] if snapshot else None, mi))
        if len(readings) > MAX_READINGS:
            self._thin(readings)

    def _thin(self, readings: list[Reading]) -> None:
        """Every other unlabelled reading dropped, the snapshots and the latest kept:
        the history holds at most about MAX_READINGS readings whatever the trace (a
        crafted one held 3.5 M meminfo samples in 200 KB; a simulated day holds
        864,000), at half the time resolution each time it fills."""
        last = len(readings) - 1
        readings[:] = [r for i, r in enumerate(readings) if r.label is not None or i % 2 == 0 or i == last]
        self._stride *= 2
        self.state.skip("readings", f"more than {MAX_READINGS:,} /proc/meminfo readings: the history keeps "
                                    "every other one (snapshots and the latest always)")
