"""``writeback:`` page dirtying, for the derived workload's writes.

``writeback_dirty_folio`` (6.x; ``writeback_dirty_page`` before 5.18) prints ``bdi
%s: ino=%lu index=%lu``: a page-cache folio became dirty, in the context of the
task that dirtied it (a write(2), or a write fault on a shared file mapping). No
memtrace event is written for it (memtrace's ``writeback`` is a write-back, not a
dirtying): it makes the task's ``write`` steps in the derived workload
(:mod:`.filemap` knows how many pages the folio spans). The other writeback
events are counted in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .fields import PARSE_ERRORS, UnreadableLine, c_ulong, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Writeback"]


class Writeback:
    """The ``writeback`` system: dirtied folios."""

    SYSTEM = "writeback"
    SUMMARISED: tuple[str, ...] = ("balance_dirty_pages", "writeback_start", "writeback_written",
                                   "writeback_wait", "writeback_single_inode", "global_dirty_state",
                                   "bdi_dirty_ratelimit")

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b

    def handlers(self) -> dict[str, Handler]:
        return {"writeback_dirty_folio": self._dirty, "writeback_dirty_page": self._dirty}

    def _dirty(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        # "bdi 254:0: ino=1515522 index=3"
        try:
            f = kv_fields(payload)
            ino = c_ulong(int(f["ino"]), "ino")
            index = c_ulong(int(f["index"]), "index")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        words = payload.split()
        dev = words[1].rstrip(":") if len(words) > 1 and words[0] == "bdi" else "0:0"
        self.b.filemap.dirtied(comm, pid, ts, dev, ino, index)
        self.b.summary("writeback_dirty_folio")
        return True
