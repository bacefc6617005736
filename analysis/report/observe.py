"""What a report watches while the trace is folded: pictures of the state at the
moments it needs (each OOM, each victim's exit).

The report folds the trace with :func:`memtrace.analysis.state.walk`, which feeds
the :data:`OBSERVED` events to the folder one at a time and calls the
:class:`Observer` after each, so that it sees the state right after that event; the
folder's own task table (:attr:`~memtrace.analysis.state.StateFolder.tasks`) names
the processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from memtrace.linux.limits import PAGE_SIZE

from ..explain import ExplainResult, explain_state
from ..state import K_SHMEM, LRU_UNEVICTABLE, StateFolder

__all__ = ["OBSERVED", "AtOom", "Observer", "scope_ids", "unowned_shmem"]

#: Events after which :class:`Observer` looks at the state (they are folded one by one).
OBSERVED = frozenset({"oom_candidate", "oom_kill", "exit"})


@dataclass
class AtOom:
    """What the fold showed at one OOM: the breakdown at its reading, and the bytes
    mlocked (unevictable LRU) and dirty."""

    explain: ExplainResult | None
    mlocked_bytes: int = 0
    dirty_bytes: int = 0


class Observer:
    """Takes pictures of the state at each OOM and right after each victim's exit."""

    def __init__(self) -> None:
        self.at_oom: dict[int, AtOom] = {}
        self.victims: dict[int, int] = {}  # victim pid -> oom_id, until it exits
        self.scope: dict[int, str | None] = {}  # oom_id -> memcg path (None: global)
        self.outlived: dict[int, list[tuple[int, int, int]]] = {}  # oom_id -> (ino, memcg, bytes)

    def __call__(self, name: str, f: dict[str, Any], folder: StateFolder) -> None:
        if name == "oom_candidate":
            self._picture(int(f["oom_id"]), folder)
        elif name == "oom_kill":
            oom_id = int(f["oom_id"])
            memcg = f["memcg"] or None
            self.scope[oom_id] = memcg
            self._picture(oom_id, folder)
            self.victims[int(f["victim_pid"])] = oom_id
        elif name == "exit":
            killed_by = self.victims.pop(int(f["pid"]), None)
            if killed_by is not None:
                self.outlived[killed_by] = unowned_shmem(folder, self.scope.get(killed_by))

    def _picture(self, oom_id: int, folder: StateFolder) -> None:
        if oom_id in self.at_oom:
            return
        state = folder.state()
        reading = folder.history.readings[-1] if folder.history.readings else None
        res = explain_state(state, reading) if state.has_pages or reading is not None else None
        pg = state.pages
        used = pg.kind != 0
        self.at_oom[oom_id] = AtOom(
            res,
            mlocked_bytes=int(np.count_nonzero(used & (pg.lru == LRU_UNEVICTABLE))) * PAGE_SIZE,
            dirty_bytes=int(np.count_nonzero(used & pg.dirty)) * PAGE_SIZE,
        )


def scope_ids(folder: StateFolder, memcg: str) -> set[int]:
    """The ids of the memory cgroup ``memcg`` and of the cgroups below it."""
    return {i for i, p in folder.cgroups.items() if p == memcg or p.startswith(memcg.rstrip("/") + "/")}


def unowned_shmem(folder: StateFolder, memcg: str | None) -> list[tuple[int, int, int]]:
    """Shmem pages no process maps, by inode and memcg, in the OOM's scope (a memcg
    and its children, or all): (ino, memcg id, bytes)."""
    pg = folder.pages
    sel = (pg.kind == K_SHMEM) & (pg.mapcount <= 0)
    if memcg is not None:
        sel &= np.isin(pg.memcg, np.array(sorted(scope_ids(folder, memcg)), dtype=np.int64))
    p = np.flatnonzero(sel)
    if not len(p):
        return []
    key = pg.ino[p].astype(np.int64) * 65536 + pg.memcg[p]
    vals, counts = np.unique(key, return_counts=True)
    return [(int(k // 65536), int(k % 65536), int(n) * PAGE_SIZE) for k, n in zip(vals.tolist(), counts.tolist())]
