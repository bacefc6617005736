"""Memory by process as smem shows it: swap, USS, PSS and RSS per process.

``memtrace explain --by process``. From a trace, each live process's page-table
entries are read as the kernel's ``/proc/PID/smaps`` reads them
(fs/proc/task_mmu.c: smaps_account(), as of 6.x):

- RSS: every present pte, ``PAGE_SIZE`` each;
- USS: the ptes whose page is mapped once (``page_mapcount() == 1``: smaps'
  Private_Clean + Private_Dirty, what smem calls USS);
- PSS: ``PAGE_SIZE / mapcount`` per pte, summed in the kernel's fixed point
  (``PSS_SHIFT`` = 12 fractional bits) and truncated once at the end;
- SWAP: the mm's swap entries (``MM_SWAPENTS`` of ``mm->rss_stat``, smaps' Swap).

From a snapshot, the same columns come from ``/proc/PID/smaps_rollup`` (Rss, Pss,
Private_Clean + Private_Dirty, Swap). Simplified: no huge pages (a THP counts as
its 4 KiB pages, which the kernel's PSS also splits evenly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtrace.linux.limits import PAGE_SIZE

__all__ = ["PSS_SHIFT", "ProcessUsage", "ProcessUsageTable", "usage_from_snapshot", "usage_from_state"]

#: fs/proc/task_mmu.c: PSS is summed with this many fractional bits.
PSS_SHIFT = 12


@dataclass(frozen=True)
class ProcessUsage:
    """One process's row, in bytes."""

    pid: int
    uid: int
    comm: str
    swap_bytes: int
    uss_bytes: int
    pss_bytes: int
    rss_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "uid": self.uid, "comm": self.comm, "swap_bytes": self.swap_bytes,
                "uss_bytes": self.uss_bytes, "pss_bytes": self.pss_bytes, "rss_bytes": self.rss_bytes}


@dataclass(frozen=True)
class ProcessUsageTable:
    """Every process of one moment, sorted by PSS (smaller first, as smem sorts)."""

    at: str
    ts_ns: int | None
    source: str
    rows: tuple[ProcessUsage, ...]
    notes: tuple[str, ...] = ()

    def totals(self) -> dict[str, int]:
        """The columns summed, with the number of processes and of distinct users."""
        return {"processes": len(self.rows), "users": len({r.uid for r in self.rows}),
                "swap_bytes": sum(r.swap_bytes for r in self.rows), "uss_bytes": sum(r.uss_bytes for r in self.rows),
                "pss_bytes": sum(r.pss_bytes for r in self.rows), "rss_bytes": sum(r.rss_bytes for r in self.rows)}

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "ts_ns": self.ts_ns, "source": self.source,
                "processes": [r.as_dict() for r in self.rows], "totals": self.totals(), "notes": list(self.notes)}


def _sorted(rows: list[ProcessUsage]) -> tuple[ProcessUsage, ...]:
    return tuple(sorted(rows, key=lambda r: (r.pss_bytes, r.pid)))


def pte_usage(ptes: np.ndarray, mapcount: np.ndarray) -> tuple[int, int, int]:
    """(RSS, USS, PSS) in bytes of the present ptes ``ptes`` (page frame numbers),
    ``mapcount`` indexed by pfn (see the module docstring)."""
    if not len(ptes):
        return 0, 0, 0
    counts = np.maximum(mapcount[ptes].astype(np.int64), 1)
    rss = len(ptes) * PAGE_SIZE
    uss = int((counts == 1).sum()) * PAGE_SIZE
    pss = int(((PAGE_SIZE << PSS_SHIFT) // counts).sum()) >> PSS_SHIFT
    return rss, uss, pss


def usage_from_state(state: Any, at: str, ts_ns: int | None) -> ProcessUsageTable:
    """Every live process of a folded trace (:class:`~memtrace.analysis.state.MemoryState`)."""
    mapcount = state.pages.mapcount
    rows = []
    for pid in sorted(state.procs):
        p = state.procs[pid]
        if not p.alive:
            continue
        ptes = [v.ptes[v.ptes >= 0].astype(np.int64) for v in p.vmas]
        present = np.concatenate(ptes) if ptes else np.empty(0, dtype=np.int64)
        present = present[state.pages.kind[present] != 0]  # a pte the fold left without a page
        rss, uss, pss = pte_usage(present, mapcount)
        uid = p.uid if isinstance(p.uid, int) else 0
        rows.append(ProcessUsage(pid, uid, p.comm, int(p.rss_bytes.get("MM_SWAPENTS", 0)), uss, pss, rss))
    return ProcessUsageTable(at, ts_ns, state.source, _sorted(rows))


def usage_from_snapshot(snap: Mapping[str, Any], name: str) -> ProcessUsageTable:
    """Every user process of a snapshot (``memtrace snapshot``), from its smaps_rollup."""
    def g(d: Any, key: str) -> int:
        v = d.get(key, 0) if isinstance(d, Mapping) else 0
        return int(v) if isinstance(v, (int, float)) else 0

    rows = []
    missing = []
    for p in snap.get("processes", []):
        if not isinstance(p, Mapping) or "pid" not in p or p.get("kthread"):
            continue
        roll = p.get("smaps_rollup")
        if not isinstance(roll, Mapping):
            missing.append(int(p["pid"]))
            continue
        rows.append(ProcessUsage(int(p["pid"]), int(p.get("uid") or 0), str(p.get("comm") or "?"),
                                 g(roll, "Swap") or g(p.get("status"), "VmSwap"),
                                 g(roll, "Private_Clean") + g(roll, "Private_Dirty"), g(roll, "Pss"), g(roll, "Rss")))
    notes = (f"{len(missing)} process(es) without a readable /proc/PID/smaps_rollup left out (read as root to "
             "see every process)",) if missing else ()
    taken = snap.get("taken") or {}
    uptime = taken.get("uptime_s") if isinstance(taken, Mapping) else None
    at = f"{name} ({taken.get('wall_time', '?') if isinstance(taken, Mapping) else '?'})"
    ts_ns = int(uptime * 1e9) if isinstance(uptime, (int, float)) else None
    return ProcessUsageTable(at, ts_ns, "snapshot", _sorted(rows), notes)
