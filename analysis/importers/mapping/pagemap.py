"""``pagemap:`` LRU events: counted in the header, with no memtrace counterpart.

``mm_lru_insertion`` and ``mm_lru_activate`` name a page frame and its LRU; a real
trace's per-page LRU state is not rebuilt (analyses see processes, mappings and
counters only), so they are only summarised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Pagemap"]


class Pagemap:
    """The ``pagemap`` system, summarised."""

    SYSTEM = "pagemap"
    SUMMARISED = ("mm_lru_activate", "mm_lru_insertion")

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b

    def handlers(self) -> dict[str, Handler]:
        return {}
