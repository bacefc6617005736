"""A start-of-trace snapshot (``memtrace snapshot``) beside an import: what was there before.

A trace shows what happened while it ran; a process that was already there shows
only what it did then, and a process that did nothing not at all. A snapshot of
/proc taken when the trace started (``memtrace import --snapshot FILE``, the JSON of
:func:`memtrace.analysis.procsnap.take_snapshot`, plain or gzip) gives every
process's resident memory by kind (``RssAnon``, ``RssFile``, ``RssShmem`` of
/proc/PID/status), its memory cgroup, uid and oom_score_adj, and the cgroups'
limits and the machine's RAM: :class:`StartSnapshot` hands them to the derived
workload (:class:`.workload.WorkloadBuilder`) and the trace header.

The snapshot's time is its ``uptime_s`` (CLOCK_BOOTTIME), taken as the trace's
clock (perf and ftrace default to the local clock, which counts from boot too;
they differ by the time the machine was suspended).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE

from .workload import SeenMemory

if TYPE_CHECKING:
    from .workload import WorkloadBuilder

__all__ = ["NO_LIMIT_BYTES", "SnapshotCgroup", "SnapshotRow", "StartSnapshot"]

#: A memory limit at or above this is none (v1 prints PAGE_COUNTER_MAX pages, v2 "max").
NO_LIMIT_BYTES = 1 << 62


@dataclass(frozen=True)
class SnapshotRow:
    """One process of the snapshot: sizes in bytes, as /proc/PID/status prints them."""

    pid: int
    comm: str
    uid: int
    oom_score_adj: int
    memcg: str | None
    rss_anon_bytes: int
    rss_file_bytes: int
    rss_shmem_bytes: int


@dataclass(frozen=True)
class SnapshotCgroup:
    """A memory cgroup of the snapshot: its limits in bytes (None: no limit)."""

    path: str
    version: int
    max_bytes: int | None
    swap_max_bytes: int | None  # swap alone (v2 memory.swap.max; v1 memsw limit less the memory limit)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class StartSnapshot:
    """The snapshot given with an import (or none: every lookup then finds nothing)."""

    def __init__(self, data: Mapping[str, Any] | None, path: str | None = None) -> None:
        self.data = data
        self.path = path
        #: pid -> its row (user processes only: kernel threads hold no mm)
        self.rows: dict[int, SnapshotRow] = {}
        self.ts_ns: int | None = None
        self.kernel_release: str | None = None
        if data is None:
            return
        taken = data.get("taken")
        if isinstance(taken, Mapping):
            up = taken.get("uptime_s")
            if isinstance(up, (int, float)) and not isinstance(up, bool) and 0 <= up < 1e10:
                self.ts_ns = round(up * 1_000_000_000)
            release = taken.get("kernel_release")
            if isinstance(release, str) and release:
                self.kernel_release = release
        for proc in data.get("processes") or []:
            row = self._row(proc)
            if row is not None:
                self.rows[row.pid] = row

    def __bool__(self) -> bool:
        return self.data is not None

    @staticmethod
    def _row(proc: Any) -> SnapshotRow | None:
        if not isinstance(proc, Mapping) or proc.get("kthread") is True:
            return None
        pid = _int(proc.get("pid"))
        status = proc.get("status")
        if pid is None or pid < 1 or not isinstance(status, Mapping) or "VmRSS" not in status:
            return None
        tgid = _int(proc.get("tgid"))
        if tgid is not None and tgid != pid:
            return None  # a thread: its process has the row
        memcg = proc.get("memcg")
        adj = _int(proc.get("oom_score_adj"))
        return SnapshotRow(
            pid=pid, comm=str(proc.get("comm") or f"pid{pid}")[:64], uid=max(0, _int(proc.get("uid")) or 0),
            oom_score_adj=max(-1000, min(1000, adj if adj is not None else 0)),
            memcg=memcg if isinstance(memcg, str) and memcg.startswith("/") else None,
            rss_anon_bytes=max(0, _int(status.get("RssAnon")) or 0),
            rss_file_bytes=max(0, _int(status.get("RssFile")) or 0),
            rss_shmem_bytes=max(0, _int(status.get("RssShmem")) or 0))

    def feed(self, work: WorkloadBuilder) -> None:
        """Give the derived workload each process's memory at the snapshot (pages)."""
        for pid, r in self.rows.items():
            work.snapshot_rows[pid] = SeenMemory(self.ts_ns, r.rss_anon_bytes >> PAGE_SHIFT,
                                                 r.rss_file_bytes >> PAGE_SHIFT, r.rss_shmem_bytes >> PAGE_SHIFT,
                                                 r.comm, r.memcg)

    # -- the machine and the cgroups

    def meminfo(self, key: str) -> int | None:
        """A /proc/meminfo value of the snapshot, in bytes."""
        mi = self.data.get("meminfo") if self.data is not None else None
        return _int(mi.get(key)) if isinstance(mi, Mapping) else None

    def cgroups(self) -> Iterator[SnapshotCgroup]:
        """Every memory cgroup the snapshot read, with its limits."""
        groups = self.data.get("cgroups") if self.data is not None else None
        if not isinstance(groups, Mapping):
            return
        v1 = groups.get("v1")
        if isinstance(v1, Mapping):
            for path, g in v1.items():
                if not isinstance(g, Mapping) or not isinstance(path, str):
                    continue
                mem = _int(g.get("memory.limit_in_bytes"))
                memsw = _int(g.get("memory.memsw.limit_in_bytes"))
                mem_b = mem if mem is not None and mem < NO_LIMIT_BYTES else None
                swap_b: int | None = None
                if memsw is not None and memsw < NO_LIMIT_BYTES:
                    swap_b = max(0, memsw - (mem_b if mem_b is not None else memsw))
                yield SnapshotCgroup(path, 1, _page(mem_b), _page(swap_b))
        v2 = groups.get("v2")
        if isinstance(v2, Mapping):
            for path, g in v2.items():
                if not isinstance(g, Mapping) or not isinstance(path, str):
                    continue
                mem = _int(g.get("memory.max"))
                swap = _int(g.get("memory.swap.max"))
                yield SnapshotCgroup(path, 2, _page(mem if mem is not None and mem < NO_LIMIT_BYTES else None),
                                     _page(swap if swap is not None and swap < NO_LIMIT_BYTES else None))

    def cgroup(self, path: str) -> SnapshotCgroup | None:
        """The cgroup ``path`` (a v1 memory cgroup first, as the processes name it)."""
        found = [g for g in self.cgroups() if g.path == path]
        return min(found, key=lambda g: g.version) if found else None

    def cgroup_version(self) -> int | None:
        """1 or 2, as the processes' memory cgroups say (None when none does)."""
        procs = self.data.get("processes") if self.data is not None else None
        for proc in procs or []:
            if isinstance(proc, Mapping) and proc.get("memcg_version") in (1, 2):
                return int(proc["memcg_version"])
        return None


def _page(n: int | None) -> int | None:
    return None if n is None else n // PAGE_SIZE * PAGE_SIZE
