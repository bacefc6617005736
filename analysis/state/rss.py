"""RSS counters: each mm's kmem:rss_stat values, the last one and over time.

Models include/trace/events/kmem.h rss_stat: MM_FILEPAGES, MM_ANONPAGES,
MM_SWAPENTS and MM_SHMEMPAGES of an mm, in bytes. Imported real traces, which name
no page frames, are explained from these counters alone.
"""

from __future__ import annotations

from memtrace.tracer import EventBatch

from .provider import StateProvider, folds

__all__ = ["RssProvider"]


class RssProvider(StateProvider):
    """Folds ``rss_stat`` into :attr:`~.model.Process.rss_bytes` and
    :attr:`~.model.History.rss`."""

    @folds("rss_stat", reads=("mm_pid", "member", "size_bytes"))
    def _rss_stat(self, batch: EventBatch) -> None:
        st = self.state
        rss = st.history.rss
        for ts, pid, member, size in zip(batch.ints("ts_ns").tolist(), batch.ints("mm_pid").tolist(),
                                         batch.enum_names("member"), batch.ints("size_bytes").tolist()):
            st.proc(pid).rss_bytes[member] = size
            rss.append((ts, pid, member, size))
        if len(rss) > MAX_RSS_ROWS:
            _thin(rss)
            st.skip("rss", f"more than {MAX_RSS_ROWS:,} kmem:rss_stat values: the history keeps every other one "
                           "(and each counter's latest), so growth series are sampled")


#: The most kmem:rss_stat rows the history holds (about 150 bytes each) before it
#: keeps every other one.
MAX_RSS_ROWS = 1 << 21


def _thin(rows: list[tuple[int, int, str, int]]) -> None:
    """Every other row dropped, but each (pid, member)'s latest: the values are
    absolute, so what a report reads at the end stays exact."""
    latest = {(pid, member): i for i, (_ts, pid, member, _size) in enumerate(rows)}
    keep = set(latest.values())
    rows[:] = [row for i, row in enumerate(rows) if i % 2 == 0 or i in keep]
