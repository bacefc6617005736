"""Real kernel tracepoints mapped onto memtrace's, one module per real tracepoint system.

Each module holds one class that maps its system's events (``../shared/reference/
kernel-mm-facts.md`` §7): :meth:`handlers` names the real tracepoints it reads, each
with the handler that reads a line's text (raising
:class:`.fields.UnreadableLine`, and only that, on text the kernel could not have
printed) and emits memtrace events; ``SUMMARISED`` names those it only counts.
Adding a real tracepoint is a handler in its system's module (and, for a new
memtrace event, its schema in :mod:`memtrace.tracer.tracepoints`).

========================================  ==========================================
real tracepoint                           memtrace tracepoint
========================================  ==========================================
syscalls:sys_enter/exit_mmap              ``mmap`` (address from the exit's return)
syscalls:sys_enter(/exit)_munmap          ``munmap``
syscalls:sys_enter/exit_brk               ``brk``
exceptions:page_fault_user                ``page_fault`` (pfn 0, major false)
kmem:rss_stat                             ``rss_stat`` (mm_id resolved to a pid)
filemap:mm_filemap_add_to_page_cache      ``page_cache_add`` (one per page)
filemap:mm_filemap_delete_from_page_cache ``page_cache_delete``
vmscan:mm_vmscan_kswapd_wake / _sleep     ``kswapd_wake`` / ``kswapd_sleep``
vmscan:*_reclaim_begin / _end             ``reclaim_begin`` / ``reclaim_end``
  (direct, memcg, memcg soft limit)
vmscan:mm_vmscan_lru_shrink_inactive      ``shrink_list``
oom:mark_victim                           ``oom_kill`` (+ ``memcg_stat``,
                                          ``oom_candidate`` from a companion log)
oom:oom_score_adj_update                  ``oom_score_adj_update``
oom:finish/skip_task_reaping              ``oom_reap``
sched:sched_process_fork / exit           ``fork`` / ``exit`` (a thread's clone: none)
sched:sched_process_exec                  ``exec``
syscalls:sys_enter/exit_execve            ``exec`` (when sched_process_exec is not traced)
task:task_rename                          ``task_rename`` (outside an execve)
syscalls:sys_enter_exit_group             ``exit``'s code
syscalls:sys_enter/exit_madvise, mremap,  the derived workload's steps (mremap: ``munmap``
  mprotect, clone, clone3                 + ``mmap`` at the new address)
writeback:writeback_dirty_folio           the derived workload's writes (no event)
========================================  ==========================================

``kmem:mm_page_alloc``/``mm_page_free``, ``vmscan:mm_vmscan_wakeup_kswapd``,
``mm_vmscan_lru_isolate``, ``mm_vmscan_lru_shrink_active``, the ``pagemap`` LRU
events and ``oom:wake_reaper``/``start_task_reaping`` have no memtrace counterpart:
they are counted and summarised in the header (``meta["source"]["summarised"]``).
"""

from __future__ import annotations

from .exceptions import Exceptions
from .filemap import Filemap
from .kmem import Kmem
from .oom import Oom
from .pagemap import Pagemap
from .sched import Sched
from .syscalls import Syscalls
from .task import Task
from .vmscan import Vmscan
from .writeback import Writeback

__all__ = ["Exceptions", "Filemap", "Kmem", "Oom", "Pagemap", "Sched", "Syscalls", "Task", "Vmscan", "Writeback"]
