"""RSS counters: each mm's kmem:rss_stat values, the last one and over time.

Models include/trace/events/kmem.h rss_stat: MM_FILEPAGES, MM_ANONPAGES,
MM_SWAPENTS and MM_SHMEMPAGES of an mm, in bytes. Imported real traces, which name
no page frames, are explained from these counters alone.
"""

from __future__ import annotations

import numpy as np

from memtrace.tracer import EventBatch

from ._arrays import unique_in_order
from .core import FoldState
from .provider import StateProvider, folds

__all__ = ["RssProvider"]


class RssProvider(StateProvider):
    """Folds ``rss_stat`` into :attr:`~.model.Process.rss_bytes` and
    :attr:`~.model.History.rss`."""

    def __init__(self, state: FoldState) -> None:
        super().__init__(state)
        self._seen = 0  # rss_stat events folded so far
        self._stride = 1  # the history keeps every stride-th of them (and each counter's latest)
        #: (pid, member) -> the history row of its latest value, while there are at
        #: most MAX_RSS_ROWS / 2 counters (a crafted trace can name millions)
        self._latest: dict[tuple[int, str], int] | None = {}

    @folds("rss_stat", reads=("mm_pid", "member", "size_bytes"), touches="rss")
    def _rss_stat(self, batch: EventBatch) -> None:
        st = self.state
        n = batch.n
        pids = batch.ints("mm_pid").astype(np.int64, copy=False)
        codes = batch.ints("member").astype(np.int64, copy=False)
        sizes = batch.ints("size_bytes")
        names = batch.tp.field("member").values
        # Each counter's latest value in the batch: the last event of each (pid, member).
        pair = pids * len(names) + codes
        last = np.sort(n - 1 - np.unique(pair[::-1], return_index=True)[1])
        # Processes made on first sight, in the order the events name them.
        procs = {pid: st.proc(pid) for pid in unique_in_order(pids).tolist()}
        for i in last.tolist():
            procs[int(pids[i])].rss_bytes[names[int(codes[i])]] = int(sizes[i])
        keep = np.zeros(n, dtype=bool)
        keep[(-self._seen) % self._stride::self._stride] = True
        keep[last] = True
        self._seen += n
        rows = np.flatnonzero(keep)
        history = st.history.rss
        base = len(history)
        history.extend(zip(batch.ints("ts_ns")[rows].tolist(), pids[rows].tolist(),
                           [names[c] for c in codes[rows].tolist()], sizes[rows].tolist(), strict=True))
        latest = self._latest
        if latest is not None:
            at = base + np.searchsorted(rows, last)
            for i, row in zip(last.tolist(), at.tolist(), strict=True):
                latest[(int(pids[i]), names[int(codes[i])])] = row
            if len(latest) > MAX_RSS_ROWS // 2:
                self._latest = latest = None
        if len(history) > MAX_RSS_ROWS:
            _thin(history, latest)
            self._stride *= 2
            st.skip("rss", f"more than {MAX_RSS_ROWS:,} kmem:rss_stat values: the history keeps every other one "
                           "(and each counter's latest), so growth series are sampled")


#: The most kmem:rss_stat rows the history holds (about 150 bytes each) before it
#: keeps every other one, and from then on every other one of the new ones too.
MAX_RSS_ROWS = 1 << 21


def _thin(rows: list[tuple[int, int, str, int]], latest: dict[tuple[int, str], int] | None) -> None:
    """Every other row dropped, but each (pid, member)'s latest (``latest``: its
    row, renumbered here; None: too many counters to keep each one's): the values
    are absolute, so what a report reads at the end stays exact."""
    keep = np.zeros(len(rows), dtype=bool)
    keep[::2] = True
    if latest:
        keep[np.fromiter(latest.values(), dtype=np.int64, count=len(latest))] = True
    renumbered = np.cumsum(keep) - 1
    rows[:] = [rows[i] for i in np.flatnonzero(keep).tolist()]
    if latest:
        for key, row in list(latest.items()):
            latest[key] = int(renumbered[row])
