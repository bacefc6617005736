"""What /proc shows of memory: free(1)'s columns and the oom_adj <-> oom_score_adj views.

- :func:`free_columns`: free(1) as procps-ng computes it from /proc/meminfo
  (kernel-mm-facts.md §6.2). Shared by the simulated kernel's snapshots and by
  analysis of real /proc readings.
- fs/proc/base.c's conversions between the legacy ``/proc/PID/oom_adj`` (-17..15)
  and ``oom_score_adj`` (-1000..1000), §1.6: what a write of either stores, what a
  read of ``oom_adj`` shows, and what 2.6.36..3.6 kept in ``signal->oom_adj``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from .version import OOM_ADJ_READ_CAP, KernelVersion

__all__ = [
    "OOM_ADJUST_MAX",
    "OOM_ADJUST_MIN",
    "OOM_DISABLE",
    "OOM_SCORE_ADJ_MAX",
    "OOM_SCORE_ADJ_MIN",
    "FreeColumns",
    "c_div",
    "check_oom_adj",
    "check_oom_score_adj",
    "free_columns",
    "oom_adj_to_score_adj",
    "score_adj_to_oom_adj",
    "stored_oom_adj",
]

# include/uapi/linux/oom.h (2.6.36+).
OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000
OOM_DISABLE = -17
OOM_ADJUST_MIN = -16
OOM_ADJUST_MAX = 15


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


def c_div(a: int, b: int) -> int:
    """C integer division: the quotient truncated toward zero (``-7 / 2 == -3``).

    Python's ``//`` floors (``-7 // 2 == -4``); every signed kernel division goes
    through this.
    """
    if b == 0:
        raise ZeroDivisionError(f"division of {a} by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def check_oom_score_adj(value: int) -> int:
    """``value`` if it is a valid ``oom_score_adj`` (-1000..1000), else ValueError
    (the kernel's -EINVAL from ``oom_score_adj_write``)."""
    if not OOM_SCORE_ADJ_MIN <= value <= OOM_SCORE_ADJ_MAX:
        raise ValueError(f"oom_score_adj {value} is out of range -1000..1000")
    return value


def check_oom_adj(value: int) -> int:
    """``value`` if it is a valid legacy ``oom_adj`` (-16..15, or -17 for
    OOM_DISABLE), else ValueError (the kernel's -EINVAL from ``oom_adj_write``)."""
    if not (OOM_ADJUST_MIN <= value <= OOM_ADJUST_MAX or value == OOM_DISABLE):
        raise ValueError(f"oom_adj {value} is out of range: valid are -16..15 and -17 (OOM_DISABLE)")
    return value


def oom_adj_to_score_adj(oom_adj: int) -> int:
    """The ``oom_score_adj`` a write of ``oom_adj`` stores (fs/proc/base.c
    ``oom_adj_write``, 2.6.36+): 15 -> 1000, else ``oom_adj * 1000 / 17`` truncated.

    ValueError (the kernel's -EINVAL) outside -16..15 and -17.
    """
    check_oom_adj(oom_adj)
    if oom_adj == OOM_ADJUST_MAX:
        return OOM_SCORE_ADJ_MAX
    return c_div(oom_adj * OOM_SCORE_ADJ_MAX, -OOM_DISABLE)


def score_adj_to_oom_adj(oom_score_adj: int, version: KernelVersion | None = None) -> int:
    """What a read of ``/proc/PID/oom_adj`` shows for ``oom_score_adj``
    (``oom_adj_read``): 1000 -> 15, else ``oom_score_adj * 17 / 1000`` truncated.

    From 5.11 (:data:`~.version.OOM_ADJ_READ_CAP`, and when ``version`` is None) the
    result is capped at 15; older kernels read 16 for 942..999.
    """
    check_oom_score_adj(oom_score_adj)
    if oom_score_adj == OOM_SCORE_ADJ_MAX:
        return OOM_ADJUST_MAX
    oom_adj = c_div(oom_score_adj * -OOM_DISABLE, OOM_SCORE_ADJ_MAX)
    if version is None or version >= OOM_ADJ_READ_CAP:
        oom_adj = min(oom_adj, OOM_ADJUST_MAX)
    return oom_adj


def stored_oom_adj(oom_score_adj: int) -> int:
    """``signal->oom_adj`` after a write of ``oom_score_adj`` in 2.6.36..3.6, which
    ``dump_tasks()`` and ``dump_header()`` printed in their ``oom_adj`` column
    (fs/proc/base.c ``oom_score_adj_write`` until 3.7,
    :data:`~.version.OOM_ADJ_FIELD_REMOVED`): OOM_DISABLE for -1000, else
    ``oom_score_adj * OOM_ADJUST_MAX / OOM_SCORE_ADJ_MAX`` truncated (15/1000, not
    the 17/1000 of a read from 3.7 on).

    Simplified: a task whose ``oom_adj`` was written directly kept the written value
    there; a trace carries only the resulting ``oom_score_adj``, so this is what the
    field would hold had that value been written to ``oom_score_adj``.
    """
    check_oom_score_adj(oom_score_adj)
    if oom_score_adj == OOM_SCORE_ADJ_MIN:
        return OOM_DISABLE
    return c_div(oom_score_adj * OOM_ADJUST_MAX, OOM_SCORE_ADJ_MAX)
