"""Memory cgroups: a hierarchy of page counters with limits, mm/memcontrol.c as of 6.13.

Every user page (anonymous, page cache, shmem) and the kernel memory a task
allocates for itself (page tables, kernel stack: __GFP_ACCOUNT) is charged to the
memory cgroup of the task that caused the allocation, and to every ancestor; a
charge that would take any of them over ``memory.max`` first reclaims from that
cgroup (try_charge_memcg(): up to MAX_RECLAIM_RETRIES rounds), then invokes the
memcg OOM killer (mem_cgroup_out_of_memory()).

Simplified: one page counter covers memory and kmem together (v2 semantics; a v1
machine prints the same figures as memory, memory+swap and kmem lines); no soft
limits, no memory.high throttling, no memory.min/low protection; pages stay charged
to the cgroup that first faulted them (no recharging on task migration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNLIMITED = 1 << 62


@dataclass(eq=False)
class MemCgroup:
    """Models struct mem_cgroup: its page counter (pages, hierarchical) and events."""

    id: int
    path: str
    parent: MemCgroup | None
    max_pages: int = UNLIMITED
    swap_max_pages: int = UNLIMITED
    usage_pages: int = 0  # page_counter usage: this cgroup and its descendants
    kmem_pages: int = 0  # page tables and kernel stacks, within usage
    swap_pages: int = 0
    failcnt: int = 0
    oom_kills: int = 0
    pgfault: int = 0
    pgmajfault: int = 0
    pgpgin: int = 0  # pages charged here (v1 memory.stat pgpgin)
    pgpgout: int = 0  # pages uncharged here
    children: list[MemCgroup] = field(default_factory=list)

    def ancestors(self) -> list[MemCgroup]:
        """This cgroup and every ancestor up to the root, nearest first."""
        out: list[MemCgroup] = []
        node: MemCgroup | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def subtree_ids(self) -> list[int]:
        """Ids of this cgroup and all its descendants."""
        out = [self.id]
        for child in self.children:
            out.extend(child.subtree_ids())
        return out

    def margin(self) -> int:
        """Pages that can still be charged before some ancestor hits its limit."""
        return min(m.max_pages - m.usage_pages for m in self.ancestors())

    def over_limit(self, nr_pages: int) -> MemCgroup | None:
        """The nearest cgroup (this or an ancestor) that charging would overflow."""
        for m in self.ancestors():
            if m.usage_pages + nr_pages > m.max_pages:
                return m
        return None


class MemcgTree:
    """All memory cgroups of the machine; id 1 is the root ``/``."""

    def __init__(self) -> None:
        self.root = MemCgroup(id=1, path="/", parent=None)
        self.by_id: dict[int, MemCgroup] = {1: self.root}
        self.by_path: dict[str, MemCgroup] = {"/": self.root}

    def mkdir(self, path: str, max_pages: int = UNLIMITED, swap_max_pages: int = UNLIMITED) -> MemCgroup:
        """Create ``path`` (its parent must exist)."""
        if path in self.by_path:
            raise ValueError(f"cgroup {path!r} exists")
        parent_path = path.rsplit("/", 1)[0] or "/"
        parent = self.by_path.get(parent_path)
        if parent is None:
            raise ValueError(f"cgroup {path!r}: parent {parent_path!r} does not exist")
        memcg = MemCgroup(id=len(self.by_id) + 1, path=path, parent=parent, max_pages=max_pages,
                          swap_max_pages=swap_max_pages)
        parent.children.append(memcg)
        self.by_id[memcg.id] = memcg
        self.by_path[path] = memcg
        return memcg

    def commit_charge(self, memcg: MemCgroup, nr_pages: int, kmem: bool = False) -> None:
        """page_counter_charge() up the hierarchy (the limit was checked already)."""
        memcg.pgpgin += nr_pages
        for m in memcg.ancestors():
            m.usage_pages += nr_pages
            if kmem:
                m.kmem_pages += nr_pages

    def uncharge_pfns(self, memcg_ids: np.ndarray, kmem: bool = False) -> None:
        """Uncharge one page per entry of ``memcg_ids`` (0 = not charged)."""
        if not len(memcg_ids):
            return
        counts = np.bincount(memcg_ids.astype(np.int64), minlength=2)
        for memcg_id in np.flatnonzero(counts[1:]) + 1:
            n = int(counts[memcg_id])
            self.by_id[int(memcg_id)].pgpgout += n
            for m in self.by_id[int(memcg_id)].ancestors():
                m.usage_pages -= n
                if kmem:
                    m.kmem_pages -= n

    def charge_swap(self, memcg_ids: np.ndarray, sign: int) -> None:
        """Swap entries charged (+1) or uncharged (-1) to the pages' cgroups."""
        if not len(memcg_ids):
            return
        counts = np.bincount(memcg_ids.astype(np.int64), minlength=2)
        for memcg_id in np.flatnonzero(counts[1:]) + 1:
            for m in self.by_id[int(memcg_id)].ancestors():
                m.swap_pages += sign * int(counts[memcg_id])
