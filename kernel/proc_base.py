"""Writes to /proc/PID/oom_score_adj and the legacy /proc/PID/oom_adj: fs/proc/base.c.

``oom_score_adj_write()`` and ``oom_adj_write()`` both end in ``__set_oom_adj()``,
which stores the task's oom_score_adj (the legacy value converted as 2.6.36+ does,
see :func:`memtrace.linux.proc.oom_adj_to_score_adj`) and emits
``oom:oom_score_adj_update``. The value written to oom_adj is kept as written, for
the kernels whose OOM report and /proc/PID/oom_adj read it back.

Simplified: the write applies to the task alone (the kernel updates every process
sharing the mm); values are in range, as scenario validation checks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.proc import check_oom_score_adj, oom_adj_to_score_adj
from memtrace.tracer import tracepoints as tp

from . import costs
from .mm_types import Task

if TYPE_CHECKING:
    from .kernel import Kernel


def oom_score_adj_write(k: Kernel, task: Task, value: int) -> None:
    """Write ``value`` (-1000..1000) to /proc/PID/oom_score_adj of ``task``."""
    k.advance(costs.SYSCALL_NS)
    task.oom_score_adj = check_oom_score_adj(value)
    task.legacy_oom_adj = None
    k.emit(tp.OOM_SCORE_ADJ_UPDATE, comm=task.comm, oom_score_adj=task.oom_score_adj)


def oom_adj_write(k: Kernel, task: Task, value: int) -> None:
    """Write ``value`` (-17..15) to the legacy /proc/PID/oom_adj of ``task``."""
    k.advance(costs.SYSCALL_NS)
    task.oom_score_adj = oom_adj_to_score_adj(value)
    task.legacy_oom_adj = value
    k.emit(tp.OOM_SCORE_ADJ_UPDATE, comm=task.comm, oom_score_adj=task.oom_score_adj)
