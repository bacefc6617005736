"""The result of explain, as data: parts of memory by kind, owner and reason.

Frozen dataclasses that :mod:`.build` makes from a folded trace and
:mod:`memtrace.analysis.procsnap` from a live /proc snapshot; the renderers turn them
into text or JSON (:meth:`ExplainResult.as_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memtrace.linux.proc import free_columns

__all__ = [
    "FREED_BY",
    "KINDS",
    "OWNER_TYPES",
    "RAM_KINDS",
    "ExplainResult",
    "Owner",
    "Part",
    "free_dict",
    "kind_totals",
]

#: Part kinds, in display order.
KINDS = ("anon", "file", "shmem", "swap", "kernel", "free")
#: The kinds that are RAM: their totals sum to MemTotal.
RAM_KINDS = ("anon", "file", "shmem", "kernel", "free")

#: What can free memory, as ``freed_by`` names it.
FREED_BY: dict[str, str] = {
    "drop_caches": "echo 1 (page cache) or 2 (slab) > /proc/sys/vm/drop_caches",
    "sync": "writing the dirty pages back (sync, or the flusher) first",
    "reclaim": "kswapd or direct reclaim, under memory pressure",
    "swap-out": "reclaim writing the pages to swap",
    "munmap": "the process unmapping the memory",
    "exit": "the process exiting, or being killed",
    "unlink": "deleting the file (rm, shm_unlink)",
    "ipc_rmid": "shmctl(IPC_RMID) of the SysV segment, once nothing is attached",
    "nothing": "nothing: the kernel keeps it",
}

#: What an owner can be.
OWNER_TYPES = ("process", "mapping", "file", "shmem", "cgroup", "kernel", "none")


@dataclass(frozen=True)
class Owner:
    """Who holds a part: a process, one of its mappings, a file, a shmem object, a
    cgroup, the kernel, or nobody (``none``: free memory). ``name`` is how a person
    reads it; the other fields are set where they apply."""

    type: str
    name: str
    pid: int | None = None
    comm: str | None = None
    mapping: str | None = None
    path: str | None = None
    ino: int | None = None
    cgroup: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "pid": self.pid, "comm": self.comm,
                "mapping": self.mapping, "path": self.path, "ino": self.ino, "cgroup": self.cgroup}


@dataclass(frozen=True)
class Part:
    """Some memory of one kind, one owner and one reason, in bytes.

    ``freed_by`` lists what would free it (keys of :data:`FREED_BY`); ``mapped_by``
    the pids whose page tables map it; ``detail`` says more where useful.
    """

    kind: str
    bytes: int
    owner: Owner
    reason: str
    freed_by: tuple[str, ...] = ()
    detail: str = ""
    mapped_by: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "bytes": self.bytes, "owner": self.owner.as_dict(), "reason": self.reason,
                "freed_by": list(self.freed_by), "detail": self.detail, "mapped_by": list(self.mapped_by)}


@dataclass(frozen=True)
class ExplainResult:
    """Memory at one moment, broken down into parts that sum to ``totals``.

    ``at`` names the moment (a snapshot label, ``t=1.234s``, or the snapshot file);
    ``meminfo`` maps /proc/meminfo names to bytes and ``free`` holds free(1)'s
    columns; ``totals`` is what the parts of each kind add up to (from meminfo for
    the whole system, from the RSS counters for one process); ``unknown`` lists what
    the input cannot tell.
    """

    at: str
    ts_ns: int | None
    meminfo: dict[str, int]
    free: dict[str, int]
    parts: tuple[Part, ...]
    totals: dict[str, int]
    source: str = "trace"
    scope: str = "system"
    pid: int | None = None
    unknown: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def sums(self) -> dict[str, int]:
        """The parts added up by kind."""
        out = dict.fromkeys(KINDS, 0)
        for p in self.parts:
            out[p.kind] = out.get(p.kind, 0) + p.bytes
        return out

    def mismatches(self) -> list[str]:
        """Kinds whose parts do not add up to their total, as sentences (empty: exact)."""
        sums = self.sums()
        return [f"{k}: parts sum to {sums.get(k, 0)} bytes, the total is {v}"
                for k, v in self.totals.items() if sums.get(k, 0) != v]

    def parts_of(self, kind: str) -> list[Part]:
        return [p for p in self.parts if p.kind == kind]

    def free_breakdown(self) -> dict[str, dict[str, int]]:
        """What each free(1) column is made of, in bytes: ``free`` is the free part;
        ``shared`` the shmem parts; ``buff_cache`` the page cache (file), shmem and
        reclaimable slab; ``used`` is MemTotal - MemAvailable, an estimate the kernel
        makes (si_mem_available()), not a sum of pages. Empty for a process view."""
        if self.scope != "system" or not self.free:
            return {}
        sums = self.sums()
        slab = self.meminfo.get("SReclaimable", 0)
        return {
            "free": {"free": sums.get("free", 0)},
            "shared": {"shmem": sums.get("shmem", 0)},
            "buff_cache": {"file": sums.get("file", 0), "shmem": sums.get("shmem", 0), "reclaimable slab": slab},
            "used": {"total": self.free.get("total", 0), "minus available": -self.free.get("available", 0)},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "ts_ns": self.ts_ns, "source": self.source, "scope": self.scope, "pid": self.pid,
                "free": dict(self.free), "meminfo": dict(self.meminfo), "totals": dict(self.totals),
                "parts": [p.as_dict() for p in self.parts], "free_breakdown": self.free_breakdown(),
                "unknown": list(self.unknown), "warnings": list(self.warnings)}


def kind_totals(meminfo: Mapping[str, int]) -> dict[str, int]:
    """The bytes each kind breaks down, from /proc/meminfo (bytes): see the module
    docstring. The RAM kinds sum to MemTotal."""
    def g(name: str) -> int:
        return int(meminfo.get(name, 0))

    cached = g("Cached") + g("Buffers")
    return {
        "anon": g("AnonPages"),
        "file": cached - g("Shmem"),
        "shmem": g("Shmem"),
        "swap": g("SwapTotal") - g("SwapFree"),
        "kernel": g("MemTotal") - g("MemFree") - g("AnonPages") - cached,
        "free": g("MemFree"),
    }


def free_dict(meminfo: Mapping[str, int]) -> dict[str, int]:
    """free(1)'s Mem: row (procps-ng >= 4.0.1), or {} when meminfo lacks its inputs."""
    try:
        return free_columns(meminfo).as_dict()
    except KeyError:
        return {}
