"""``vmscan:`` -> ``kswapd_wake``, ``kswapd_sleep``, ``reclaim_begin``/``_end``, ``shrink_list``.

Direct, memcg and memcg soft-limit reclaim are paired by task (a ``*_reclaim_end``
closes the reclaim its task began); ``mm_vmscan_memcg_reclaim_begin`` names no
cgroup, so the memcg is the one whose OOM task table in the companion log lists the
task. The end events print only ``nr_reclaimed`` and kswapd's sleep only its node
(the rest written as 0). The other vmscan tracepoints are counted in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.gfp import gfp_from_names

from .fields import PARSE_ERRORS, UnreadableLine, c_int, c_ulong, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Vmscan"]

#: The reclaim kinds, as reclaim_begin/reclaim_end code them.
_KINDS = ("direct", "memcg")
#: shrink_list's LRU codes (inactive_anon, inactive_file).
_INACTIVE_ANON, _INACTIVE_FILE = 0, 2


class Vmscan:
    """The ``vmscan`` system: kswapd and the reclaims of tasks."""

    SYSTEM = "vmscan"
    SUMMARISED = ("mm_vmscan_wakeup_kswapd", "mm_vmscan_lru_isolate", "mm_vmscan_lru_shrink_active",
                  "mm_vmscan_node_reclaim_begin", "mm_vmscan_node_reclaim_end", "mm_vmscan_write_folio",
                  "mm_vmscan_writepage", "mm_shrink_slab_start", "mm_shrink_slab_end")

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.reclaim: dict[int, str] = {}  # pid -> kind of the reclaim it is in

    def handlers(self) -> dict[str, Handler]:
        return {
            "mm_vmscan_kswapd_wake": self._kswapd_wake, "mm_vmscan_kswapd_sleep": self._kswapd_sleep,
            "mm_vmscan_direct_reclaim_begin": self._reclaim_begin("direct"),
            "mm_vmscan_memcg_reclaim_begin": self._reclaim_begin("memcg"),
            "mm_vmscan_memcg_softlimit_reclaim_begin": self._reclaim_begin("memcg"),
            "mm_vmscan_direct_reclaim_end": self._reclaim_end,
            "mm_vmscan_memcg_reclaim_end": self._reclaim_end,
            "mm_vmscan_memcg_softlimit_reclaim_end": self._reclaim_end,
            "mm_vmscan_lru_shrink_inactive": self._shrink_inactive,
        }

    def in_reclaim(self, pid: int) -> bool:
        """Whether task ``pid`` is inside a reclaim it began."""
        return pid in self.reclaim

    def _memcg(self, pid: int, kind: str) -> str:
        return self.b.companion.task_memcg.get(pid, "") if kind == "memcg" else ""

    def _kswapd_wake(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            values = (c_int(f.get("nid", "0"), "nid"), c_int(f.get("zid", "0"), "zid"),
                      c_int(f.get("order", "0"), "order"))
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.out.emit("kswapd_wake", ts, pid, *values)
        return True

    def _kswapd_sleep(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            nid = c_int(kv_fields(payload).get("nid", "0"), "nid")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.out.emit("kswapd_sleep", ts, pid, nid, 0)
        return True

    def _reclaim_begin(self, kind: str) -> Handler:
        code = _KINDS.index(kind)

        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            try:
                f = kv_fields(payload)
                order = c_int(f.get("order", "0"), "order")
                gfp = c_ulong(gfp_from_names(f.get("gfp_flags", "")), "gfp_flags")
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            self.reclaim[pid] = kind
            self.out.emit("reclaim_begin", ts, pid, code, order, gfp, self._memcg(pid, kind))
            return True
        return handler

    def _reclaim_end(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            nr_reclaimed = c_ulong(int(kv_fields(payload).get("nr_reclaimed", "0")), "nr_reclaimed")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        kind = self.reclaim.pop(pid, "direct")
        self.out.emit("reclaim_end", ts, pid, _KINDS.index(kind), 0, nr_reclaimed, self._memcg(pid, kind))
        return True

    def _shrink_inactive(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            f = kv_fields(payload)
            lru = _INACTIVE_FILE if "FILE" in f.get("flags", "") else _INACTIVE_ANON
            counts = [c_ulong(int(f.get(key, "0")), key) for key in ("nr_scanned", "nr_reclaimed", "nr_dirty",
                                                                       "nr_activate", "nr_activate_anon",
                                                                       "nr_activate_file")]
            activate = c_ulong(sum(counts[3:]), "nr_activate")
            priority = c_int(f.get("priority", "0"), "priority")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.out.emit("shrink_list", ts, pid, lru, priority, *counts[:3], activate, 0, 0, "")
        return True

