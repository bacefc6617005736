"""Where memory is and why: free(1) and /proc/meminfo broken down by owner.

The result is data (:class:`ExplainResult`, frozen dataclasses); renderers in
:mod:`memtrace.analysis.render_report` turn it into text or JSON, and the same objects
are built from a live /proc snapshot by :mod:`memtrace.analysis.procsnap`. Its JSON::

    {"at": "after-write", "ts_ns": 1234, "source": "trace", "scope": "system",
     "free": {"total", "used", "free", "shared", "buff_cache", "available"},
     "meminfo": {"MemTotal": bytes, ...},
     "totals": {"anon": bytes, "file": ..., "shmem": ..., "swap": ..., "kernel": ..., "free": ...},
     "parts": [{"kind", "bytes", "owner": {"type", "name", "pid", "comm", "mapping", "path",
                                          "ino", "cgroup"},
                "reason", "freed_by": [...], "detail", "mapped_by": [pid, ...]}],
     "unknown": ["what the input cannot tell"], "warnings": [...]}

Kinds (:data:`KINDS`) and the /proc/meminfo lines each breaks down
(:func:`kind_totals`; the five RAM kinds sum to MemTotal, swap is apart):

- ``anon``: AnonPages, by the mapping that holds each page (a page shared
  copy-on-write after fork is counted once, for the first process mapping it);
- ``file``: page cache that is not shmem (Buffers + Cached - Shmem), by file, mapped
  (and by whom) or not, dirty or clean;
- ``shmem``: Shmem (tmpfs files, POSIX and SysV shared memory, shared anonymous
  mappings), by object, mapped or owned by no process;
- ``swap``: swap in use (SwapTotal - SwapFree), by the mapping or shmem object whose
  pages it holds;
- ``kernel``: the rest of used memory (MemTotal - MemFree - AnonPages - Buffers -
  Cached): slab, kernel stacks, page tables (per process when the trace's faults
  account for all of them) and what the trace does not break down;
- ``free``: MemFree.

Each part says what would free it (:data:`FREED_BY`). With ``pid``, the view is one
process's: every page it maps (shared ones too), summing to its RSS counters.
:mod:`.by_process` gives the other cut, one row per process as smem shows it
(swap, USS, PSS, RSS).
"""
from __future__ import annotations

from .build import explain_state, explain_trace
from .by_process import ProcessUsage, ProcessUsageTable, usage_from_snapshot, usage_from_state
from .result import FREED_BY, KINDS, OWNER_TYPES, RAM_KINDS, ExplainResult, Owner, Part, free_dict, kind_totals

__all__ = [
    "FREED_BY",
    "KINDS",
    "OWNER_TYPES",
    "RAM_KINDS",
    "ExplainResult",
    "Owner",
    "Part",
    "ProcessUsage",
    "ProcessUsageTable",
    "explain_state",
    "explain_trace",
    "free_dict",
    "kind_totals",
    "usage_from_snapshot",
    "usage_from_state",
]
