"""History: tracepoints kept whole for reports that no other provider folds.

Each provider declares the tracepoints it folds and also keeps (``keep=True``);
these are the rest, kept in :attr:`~.model.History.events` as they are: the
moments of reclaim, the OOM killer's rows and aftermath, refusals and
configuration. A report reads them from there (``history.of("oom_candidate")``).
"""

from __future__ import annotations

from .provider import StateProvider, keeps

__all__ = ["HistoryProvider"]


class HistoryProvider(StateProvider):
    """Keeps the events of reclaim, the OOM killer and configuration whole."""

    declared = keeps(
        "sysctl_set",  # configuration at boot and by scenario steps
        "zoneinfo",
        "drop_caches",
        "kswapd_wake",  # reclaim: kswapd and direct
        "kswapd_sleep",
        "reclaim_begin",
        "reclaim_end",
        "shrink_list",
        "shrink_slab",
        "memcg_stat",
        "oom_candidate",  # the OOM killer: its rows, the reaper, a panic
        "oom_reap",
        "oom_panic",
        "reclaim_throttled",  # writeback waits of reclaim and of dirtying writers
        "balance_dirty_pages",
    )
