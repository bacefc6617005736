"""Memory cgroups: their paths and limits (cgroup mkdir and memory.max writes).

Models the memory controller's view of cgroupfs as the simulated kernel (or an
importer) reports it: a memcg id names a path, and a path has a memory.max. Which
cgroup a task is in is the task table's (:mod:`.tasks`).
"""

from __future__ import annotations

from memtrace.tracer import EventBatch

from .provider import StateProvider, folds

__all__ = ["CgroupProvider"]


class CgroupProvider(StateProvider):
    """Folds ``cgroup`` events into the memcg id -> path map and the limits."""

    @folds("cgroup", reads=("op", "path", "memcg_id", "limit_bytes"), keep=True)
    def _cgroup(self, batch: EventBatch) -> None:
        st = self.state
        for op, path, memcg_id, limit in zip(batch.enum_names("op"), batch.strs("path"),
                                             batch.ints("memcg_id").tolist(), batch.ints("limit_bytes").tolist()):
            st.cgroups[memcg_id] = path
            if op in ("mkdir", "set_max"):
                st.cgroup_limits[path] = limit
