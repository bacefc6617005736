"""free(1) as procps-ng computes it from /proc/meminfo (kernel-mm-facts.md §6.2).

Shared by the simulated kernel's snapshots and by analysis of real /proc readings,
so it belongs to no layer.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple


class FreeColumns(NamedTuple):
    """The Mem: row of free(1), in bytes (procps-ng >= 4.0.1)."""

    total: int
    used: int
    free: int
    shared: int
    buff_cache: int
    available: int

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


def free_columns(mi: Mapping[str, int]) -> FreeColumns:
    """free(1)'s Mem: row from meminfo (bytes), as procps-ng >= 4.0.1 computes it:
    used = MemTotal - MemAvailable (MemTotal - MemFree if that is negative);
    buff/cache = Buffers + Cached + SReclaimable."""
    total = mi["MemTotal"]
    available = mi["MemAvailable"]
    if available > total:
        available = mi["MemFree"]
    used = total - available
    if used < 0:
        used = total - mi["MemFree"]
    return FreeColumns(
        total=total,
        used=used,
        free=mi["MemFree"],
        shared=mi["Shmem"],
        buff_cache=mi["Buffers"] + mi["Cached"] + mi["SReclaimable"],
        available=available,
    )
