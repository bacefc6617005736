"""Real kernel tracepoints mapped onto memtrace's, streamed into a trace file.

The text parsers (:mod:`.perf_script`, :mod:`.ftrace`) cut each line into the task
(comm, pid), the time and the event's name and text; :class:`TraceBuilder` takes
those and turns each real event into memtrace events with the schemas of
:mod:`memtrace.tracer.tracepoints` (``../shared/reference/kernel-mm-facts.md`` §7):

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
sched:sched_process_fork / exit / exec    ``fork`` / ``exit`` / ``process_start``
========================================  ==========================================

``kmem:mm_page_alloc``/``mm_page_free``, ``vmscan:mm_vmscan_wakeup_kswapd``,
``mm_vmscan_lru_isolate``, ``mm_vmscan_lru_shrink_active``, the ``pagemap`` LRU
events and ``oom:wake_reaper``/``start_task_reaping`` have no memtrace counterpart:
they are counted and summarised in the header (``meta["source"]["summarised"]``).
Any other line is counted as unknown and skipped, never fatal.

What a real trace cannot tell is never invented: each field written with a
placeholder is listed with the reason under ``meta["source"]["unknown"]`` (the
page frame of a fault, whether it was major, Committed_AS charges, a victim's
badness without the kernel log, ...). A process is named when first seen
(``process_start``, whose uid and oom_score_adj come from the companion log's task
table when it has the pid) and again at each exec (a comm change).

The header also carries ``meta["workload"]``: a scenario derived from the trace (see
:class:`WorkloadBuilder`), so ``memtrace replay`` re-runs it on a simulated machine.

Streaming: events are buffered as rows per tracepoint and written as one flush group
every :data:`GROUP_EVENTS` events; the header, which needs the whole input, is
written last (the events go to a temporary file first, then both are joined).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memtrace.linux.gfp import gfp_from_names
from memtrace.linux.limits import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    PAGE_SHIFT,
    PAGE_SIZE,
    TASK_SIZE_MAX_5LEVEL,
    UINT_MAX,
    ULONG_MAX,
)
from memtrace.linux.version import DEFAULT_KERNEL_VERSION
from memtrace.tracer import EventBatch, TraceWriter, default_registry
from memtrace.tracer.tracepoints import RSS_MEMBERS, VMA_KINDS

from ..kernlog.analyse import oom_report_from_parsed
from ..kernlog.parse import OomLog, ParsedOom

#: The largest page order a real event is read with. MAX_PAGE_ORDER is 10 on x86
#: and at most in the teens elsewhere; bounding it keeps ``1 << order`` page counts
#: small numbers.
MAX_ORDER_READ = 31
#: Events per flush group of the output trace.
GROUP_EVENTS = 1 << 16
#: The workload is cut into slices of this much real time per process.
SLICE_NS = 10_000_000
#: Shorter gaps than this are not turned into sleep steps.
MIN_SLEEP_NS = 1_000_000
#: How long a process that was alive at the end of the trace keeps its memory in
#: the replayed workload after the trace's last event.
TAIL_NS = 1_000_000_000
#: Synthetic mappings shrink only when rss_stat falls by more than this (pages).
SHRINK_SLACK_PAGES = 16
#: The one file standing in for every mapped file (a real trace names none).
SYNTHETIC_FILE = "/memtrace-import/mapped-files"

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
_U64 = ULONG_MAX

def to_signed64(value: int) -> int:
    """An unsigned 64-bit value read as the C ``long`` it was."""
    value &= _U64
    return value - (1 << 64) if value >= 1 << 63 else value


def kv_fields(text: str) -> dict[str, str]:
    """``key=value`` (and ``key:value``) tokens of a trace line's payload."""
    out: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            key, sep, value = token.partition(":")
        if sep and key:
            out[key] = value
    return out


def _num(text: str) -> int:
    """An integer printed as ``0x..`` (hex) or decimal, with an optional kB/B suffix."""
    text = text.strip().rstrip(",")
    for suffix in ("kB", "KB", "B"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


def in_range(value: int, lo: int, hi: int, what: str) -> int:
    """``value`` when ``lo <= value <= hi``; else ValueError naming it.

    The bounds are those of the C type the kernel prints the field as: a number
    outside them is no value the kernel could have printed there (a damaged line),
    and would not fit the field's column, so the line's event is counted as
    unreadable, as one with any other bad text is.
    """
    if lo <= value <= hi:
        return value
    raise ValueError(f"{what} {value} is outside [{lo}, {hi}]")


def c_int(text: str | int, what: str) -> int:
    """A C ``int`` (or ``pid_t``) printed with ``%d``, read."""
    return in_range(int(text), INT_MIN, INT_MAX, what)


def c_ulong(value: int, what: str) -> int:
    """A C ``unsigned long`` of a 64-bit kernel (``%lu``, ``%lx``), read."""
    return in_range(value, 0, ULONG_MAX, what)


def page_align(length_bytes: int) -> int:
    """``length_bytes`` rounded up to a page as the kernel's ``PAGE_ALIGN()`` does in
    an ``unsigned long``: a length within a page of 2**64 wraps to 0 (which mmap and
    munmap then refuse)."""
    return (length_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ULONG_MAX


# --------------------------------------------------------------------------- results


@dataclass
class ImportResult:
    """What an import produced: the shape of ``memtrace import --json``."""

    trace: str
    source: str
    format: str
    lines: int
    events: dict[str, int]
    unknown_lines: int
    unknown_events: dict[str, int]
    summarised: dict[str, dict[str, int]]
    processes: int
    oom_kills: list[dict[str, Any]]
    warnings: list[str]
    trace_bytes: int
    duration_ns: int
    companion_log: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace, "source": self.source, "format": self.format, "lines": self.lines,
            "events": self.events, "total_events": sum(self.events.values()),
            "unknown_lines": self.unknown_lines, "unknown_events": self.unknown_events,
            "summarised": self.summarised, "processes": self.processes, "oom_kills": self.oom_kills,
            "warnings": self.warnings, "trace_bytes": self.trace_bytes, "duration_ns": self.duration_ns,
            "companion_log": self.companion_log,
        }


# --------------------------------------------------------------------------- workload


class _Vma:
    """A mapping of the derived workload whose address range the trace shows."""

    __slots__ = ("code", "dirty", "end", "handle", "kind", "new_r", "new_w", "start", "step", "touched")

    def __init__(self, start: int, end: int, handle: str, kind: str) -> None:
        self.start = start
        self.end = end
        self.handle = handle
        self.kind = kind  # a VMA_KINDS value
        self.code = VMA_KINDS.index(kind)
        self.touched: set[int] = set()  # page numbers (absolute) touched so far
        self.new_w: list[int] = []  # page numbers write-faulted in the current slice
        self.new_r: list[int] = []  # ... read-faulted
        self.dirty = False
        self.step: dict[str, Any] | None = None  # its mmap step in the workload


class _Proc:
    """One process of the derived workload (a thread group, as far as the trace
    tells: threads are merged into the process whose mm they share)."""

    def __init__(self, pid: int, comm: str, ts_ns: int) -> None:
        self.pid = pid
        self.comm = comm
        self.first_ts = ts_ns
        self.last_ts = ts_ns
        self.clock = ts_ns  # real time of the last emitted step
        self.steps: list[dict[str, Any]] = []
        self.vmas: list[_Vma] = []  # sorted by start
        self.starts: list[int] = []
        self.handles = 0
        self.brk: int | None = None
        self.heap: _Vma | None = None
        # Residency (pages) as rss_stat reports it for the current mm, and at the
        # last slice boundary.
        self.has_rss = False
        self.rss = {"anon": 0, "file": 0, "shmem": 0}
        self.mm_id: int | None = None  # the rss_stat mm_id of its current mm
        self.slice_start: int | None = ts_ns
        self.slice_faults: list[tuple[list[Any], int, bool]] = []  # faults outside known mappings
        self.dirty: list[_Vma] = []  # known mappings with faults in this slice
        self.last_vma: _Vma | None = None
        self.unknown_pages: set[int] = set()
        self.synth: list[tuple[str, int, str]] = []  # (handle, pages, class) LIFO
        self.file_handle: str | None = None
        self.file_pages = 0  # pages of the synthetic file mapping touched so far
        self.ended = False  # exited or was killed: its events stop
        self.exited = False  # exited (sched_process_exit): it ends in the replay too
        self.from_log = False  # known only from a companion log's task table
        self.merged = False  # a thread found to share another process's mm
        self.killed_allocating = False  # OOM-killed while it was the allocating task
        self.last_growth: tuple[int, int] | None = None  # (anon pages, ns since the one before)
        self.last_growth_ts: int | None = None
        self.peak_anon = 0
        self.known_total = {"anon": 0, "file": 0, "shmem": 0}  # first touches of known mappings
        self.synth_total = {"anon": 0, "file": 0, "shmem": 0}  # pages in synthetic mappings
        self.uid = 0
        self.oom_score_adj = 0
        self.memcg = "/"

    # -- steps

    def at(self, ts_ns: int) -> None:
        """Time passes to ``ts_ns`` before the next step: a sleep step if long enough."""
        gap = ts_ns - self.clock
        if gap >= MIN_SLEEP_NS:
            self.steps.append({"op": "sleep", "duration": gap})
            self.clock = ts_ns

    def new_handle(self, prefix: str = "m") -> str:
        self.handles += 1
        return f"{prefix}{self.handles}"

    def find_vma(self, addr: int) -> _Vma | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0:
            v = self.vmas[i]
            if addr < v.end:
                return v
            if i > 0 and addr < self.vmas[i - 1].end:  # inside an outer mapping around v
                return self.vmas[i - 1]
        heap = self.heap
        if heap is not None and heap.start <= addr < heap.end:
            return heap
        return None

    def add_vma(self, v: _Vma) -> None:
        i = bisect.bisect_left(self.starts, v.start)
        self.starts.insert(i, v.start)
        self.vmas.insert(i, v)

    def remove_range(self, start: int, end: int) -> list[tuple[_Vma, int, int]]:
        """Unmap [start, end) from the known mappings, as the simulator can: a whole
        mapping is forgotten, a head or tail is cut off (the mapping's start or end
        moves). Returns each cut as (mapping, byte offset, byte length). A range in
        the middle of a mapping is left mapped (the simulator does not split
        mappings), so its virtual size stays counted."""
        self.last_vma = None
        out: list[tuple[_Vma, int, int]] = []
        keep: list[_Vma] = []
        for v in self.vmas:
            lo, hi = max(v.start, start), min(v.end, end)
            if lo < hi:
                if lo == v.start and hi == v.end:
                    out.append((v, 0, hi - lo))
                    continue
                if lo == v.start:
                    out.append((v, 0, hi - lo))
                    v.start = hi
                elif hi == v.end:
                    out.append((v, lo - v.start, hi - lo))
                    v.end = lo
            keep.append(v)
        keep.sort(key=lambda v: v.start)
        self.vmas = keep
        self.starts = [v.start for v in keep]
        return out


class WorkloadBuilder:
    """Derives a scenario (``Scenario.to_dict()`` shape) from the events of a trace.

    Per process, in real time order and cut into :data:`SLICE_NS` slices:

    - each mmap/munmap/brk the trace shows becomes an ``mmap``/``munmap``/``brk``
      step (anonymous or file, private or shared, with its protection and length);
      a file mapping maps :data:`SYNTHETIC_FILE` (the trace names no file);
    - faults inside a mapping whose address is known (from ``sys_exit_mmap`` or a
      MAP_FIXED hint) become ``touch`` steps of that mapping's pages (write faults
      as writes);
    - resident memory the trace shows growing by other means (rss_stat counters, or
      faults at addresses outside any known mapping when there is no rss_stat)
      becomes a new anonymous mapping touched in full, or more pages of a shared
      mapping of the synthetic file; rss_stat falling unmaps those again;
    - gaps of real time become ``sleep`` steps; an exec (a new comm) unmaps
      everything; a process still alive at the end sleeps :data:`TAIL_NS` more.

    A companion kernel log adds the memory cgroup of a memcg OOM (its limit becomes
    ``[[cgroup]] max`` and every task of its table a member) and the processes of its
    task tables the trace does not show (their RSS mapped and touched at start).
    """

    def __init__(self) -> None:
        self.procs: dict[int, _Proc] = {}
        self.order: list[int] = []
        self.t0: int | None = None
        self.t_end = 0
        self.max_file_bytes = 0
        self.notes: list[str] = []

    def proc(self, pid: int, comm: str, ts_ns: int) -> _Proc:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = _Proc(pid, comm, ts_ns)
            self.order.append(pid)
        return p

    def tick(self, p: _Proc, ts_ns: int) -> None:
        """An event of ``p`` at ``ts_ns``: close the slice when it is over."""
        if self.t0 is None or ts_ns < self.t0:
            self.t0 = ts_ns
        if ts_ns > self.t_end:
            self.t_end = ts_ns
        p.last_ts = ts_ns
        if p.slice_start is None:
            p.slice_start = ts_ns
        elif ts_ns - p.slice_start >= SLICE_NS:
            self.close_slice(p, p.last_ts)
            p.slice_start = ts_ns

    # -- address-space events

    def mmap(self, p: _Proc, ts_ns: int, addr: int | None, length: int, prot: int, flags: int,
             anonymous: bool, offset: int) -> str:
        """Steps for an mmap; returns the new mapping's handle ('' for none: also for
        a mapping the kernel refuses whatever the trace says, one longer than any
        user address space or a file range past MAX_LFS_FILESIZE, as
        mm/mmap.c:do_mmap() and file_mmap_ok() do)."""
        self.close_slice(p, ts_ns)
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        if length <= 0 or length > TASK_SIZE_MAX_5LEVEL or (not anonymous and offset + length > LONG_MAX):
            return ""
        shared = bool(flags & MAP_SHARED) and not flags & MAP_PRIVATE
        kind = ("anon_shared" if shared else "anon_private") if anonymous else (
            "file_shared" if shared else "file_private")
        if addr is not None and flags & MAP_FIXED:
            self._unmap(p, ts_ns, addr, addr + length)
        handle = p.new_handle()
        p.at(ts_ns)
        step: dict[str, Any] = {"op": "mmap", "handle": handle, "length": length,
                                "prot": "".join(c for c, bit in (("r", PROT_READ), ("w", PROT_WRITE),
                                                                 ("x", PROT_EXEC)) if prot & bit)}
        if shared:
            step["shared"] = True
        if not anonymous:
            offset = offset // PAGE_SIZE * PAGE_SIZE
            step["file"] = SYNTHETIC_FILE
            if offset:
                step["offset"] = offset
            self.max_file_bytes = max(self.max_file_bytes, offset + length)
        step["on_enomem"] = "continue"
        p.steps.append(step)
        if addr is not None:
            v = _Vma(addr, addr + length, handle, kind)
            v.step = step
            p.add_vma(v)
        return handle

    def munmap(self, p: _Proc, ts_ns: int, addr: int, length: int) -> int:
        """Steps for an munmap; returns how many known mappings it touched."""
        self.close_slice(p, ts_ns)
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        return self._unmap(p, ts_ns, addr, addr + length)

    def _unmap(self, p: _Proc, ts_ns: int, start: int, end: int) -> int:
        sizes = {id(v): v.end - v.start for v in p.vmas}
        hit = p.remove_range(start, end)
        for v, off, length in hit:
            p.at(ts_ns)
            step: dict[str, Any] = {"op": "munmap", "handle": v.handle}
            if length != sizes[id(v)]:
                step["offset"] = off
                step["length"] = length
            p.steps.append(step)
        return len(hit)

    def brk(self, p: _Proc, ts_ns: int, requested: int, result: int | None) -> None:
        """A brk call: the break moves from the last known one to ``result`` (or
        ``requested`` when the return is not traced). A break past any user address
        space (:data:`TASK_SIZE_MAX_5LEVEL`) is one the kernel refuses: nothing moves."""
        new = result if result is not None else requested
        if requested == 0 or new == 0 or new > TASK_SIZE_MAX_5LEVEL:
            if result is not None and p.brk is None and result <= TASK_SIZE_MAX_5LEVEL:
                p.brk = result
            return
        self.close_slice(p, ts_ns)
        if p.brk is None:
            p.brk = new  # the first break seen: the heap starts here as far as we know
            p.heap = _Vma(new, new, "heap", "heap")
            return
        inc = new - p.brk
        if inc:
            p.at(ts_ns)
            p.steps.append({"op": "brk", "increment": inc, "on_enomem": "continue"})
            if p.heap is None:
                p.heap = _Vma(p.brk, new, "heap", "heap")
            else:
                p.heap.end = max(p.heap.start, p.heap.end + inc)
            p.brk = new

    def exec_(self, p: _Proc, ts_ns: int, comm: str) -> None:
        """An exec: the old address space goes (every mapping unmapped)."""
        self.close_slice(p, ts_ns)
        handles = [v.handle for v in p.vmas] + [h for h, _, _ in p.synth]
        if p.file_handle is not None:
            handles.append(p.file_handle)
        for h in dict.fromkeys(handles):
            p.at(ts_ns)
            p.steps.append({"op": "munmap", "handle": h})
        p.vmas, p.starts, p.synth = [], [], []
        p.last_vma, p.dirty = None, []
        p.file_handle, p.file_pages = None, 0
        p.heap, p.brk = None, None
        p.unknown_pages = set()
        p.rss = {"anon": 0, "file": 0, "shmem": 0}
        p.known_total = {"anon": 0, "file": 0, "shmem": 0}
        p.synth_total = {"anon": 0, "file": 0, "shmem": 0}
        p.mm_id = None
        p.comm = comm

    # -- residency

    def close_slice(self, p: _Proc, ts_ns: int) -> None:
        """Turn the slice's faults and counter changes into steps.

        Residency is kept cumulative: the synthetic mappings hold what rss_stat
        shows beyond the first touches of known mappings; they shrink only by more
        than :data:`SHRINK_SLACK_PAGES` (a fault and its counter update may fall on
        either side of a slice boundary).
        """
        if p.merged:
            p.slice_faults = []
            p.dirty = []
            return
        unknown_new = {"anon": 0, "file": 0, "shmem": 0}
        touches: list[tuple[_Vma, list[int], list[int]]] = []
        for v in p.dirty:
            base = v.start >> PAGE_SHIFT
            writes = set(v.new_w) - v.touched
            reads = set(v.new_r) - v.touched - writes
            v.touched |= writes
            v.touched |= reads
            v.new_w, v.new_r, v.dirty = [], [], False
            if not writes and not reads:
                continue
            cls = _KIND_CLASS[v.kind]
            if v.kind == "file_private":  # a write to a private file page is a COW copy
                p.known_total["anon"] += len(writes)
                p.known_total["file"] += len(reads)
            else:
                p.known_total[cls] += len(writes) + len(reads)
            touches.append((v, sorted(pg - base for pg in writes), sorted(pg - base for pg in reads)))
            if writes and v.step is not None and "w" not in v.step["prot"]:
                # Written, so made writable later (mprotect is not traced).
                v.step["prot"] = "".join(c for c in "rwx" if c in v.step["prot"] + "w")
        p.dirty = []
        for row, page, _write in p.slice_faults:
            if page not in p.unknown_pages:
                p.unknown_pages.add(page)
                unknown_new[_KIND_CLASS[VMA_KINDS[row[6]]]] += 1
        p.slice_faults = []
        if touches:
            p.at(ts_ns)
            for v, writes_l, reads_l in touches:
                for write, pages in ((True, writes_l), (False, reads_l)):
                    for start, n in _runs(pages):
                        p.steps.append({"op": "touch", "handle": v.handle, "offset": start * PAGE_SIZE,
                                        "length": n * PAGE_SIZE, **({"write": True} if write else {})})
        for cls in ("anon", "file", "shmem"):
            if p.has_rss:
                delta = max(0, p.rss[cls] - p.known_total[cls]) - p.synth_total[cls]
                if -SHRINK_SLACK_PAGES <= delta < 0:
                    continue
            else:
                delta = unknown_new[cls]
            if delta > 0:
                self._grow(p, ts_ns, cls, delta)
            elif delta < 0:
                self._shrink(p, ts_ns, cls, -delta)

    def _grow(self, p: _Proc, ts_ns: int, cls: str, pages: int) -> None:
        p.at(ts_ns)
        if cls == "file":
            if p.file_handle is None:
                p.file_handle = p.new_handle("files")
                p.steps.append({"op": "mmap", "handle": p.file_handle, "length": "@FILE", "prot": "r",
                                "shared": True, "file": SYNTHETIC_FILE, "on_enomem": "continue"})
            start = p.file_pages
            p.file_pages += pages
            self.max_file_bytes = max(self.max_file_bytes, p.file_pages * PAGE_SIZE)
            p.steps.append({"op": "touch", "handle": p.file_handle, "offset": start * PAGE_SIZE,
                            "length": pages * PAGE_SIZE})
            p.synth_total["file"] += pages
            return
        if cls == "anon":
            since = ts_ns - p.last_growth_ts if p.last_growth_ts is not None else 0
            p.last_growth, p.last_growth_ts = (pages, since), ts_ns
            p.peak_anon = max(p.peak_anon, p.synth_total["anon"] + pages)
        handle = p.new_handle("anon" if cls == "anon" else "shm")
        step: dict[str, Any] = {"op": "mmap", "handle": handle, "length": pages * PAGE_SIZE, "prot": "rw",
                                "on_enomem": "continue"}
        if cls == "shmem":
            step["shared"] = True
        p.steps.append(step)
        p.steps.append({"op": "touch", "handle": handle, "write": True})
        p.synth.append((handle, pages, cls))
        p.synth_total[cls] += pages

    def _shrink(self, p: _Proc, ts_ns: int, cls: str, pages: int) -> None:
        if cls == "file":
            # File pages leave the RSS but stay in the page cache; the shared mapping
            # of the synthetic file keeps them mapped (simplified: no partial unmap).
            return
        pages = min(pages, p.synth_total[cls])
        p.synth_total[cls] -= pages
        while pages > 0:
            for i in range(len(p.synth) - 1, -1, -1):
                if p.synth[i][2] == cls:
                    break
            else:
                return
            handle, n, _ = p.synth[i]
            p.at(ts_ns)
            if n <= pages:
                p.steps.append({"op": "munmap", "handle": handle})
                del p.synth[i]
                pages -= n
            else:
                keep = n - pages
                p.steps.append({"op": "munmap", "handle": handle, "offset": keep * PAGE_SIZE,
                                "length": pages * PAGE_SIZE})
                p.synth[i] = (handle, keep, cls)
                pages = 0

    # -- the scenario

    def from_task_row(self, row: Any, memcg: str | None, ts_ns: int | None) -> None:
        """A process the trace does not show, known from a companion log's task table."""
        p = _Proc(row.pid, row.name or f"pid{row.pid}", ts_ns or 0)
        p.uid = row.uid or 0
        p.oom_score_adj = max(-1000, min(1000, row.oom_score_adj or 0))
        if memcg:
            p.memcg = memcg
        anon = row.rss_anon if row.rss_anon is not None else (row.rss or 0)
        file = row.rss_file or 0
        shmem = row.rss_shmem or 0
        p.clock = p.first_ts
        if anon:
            self._grow(p, p.first_ts, "anon", anon)
        if shmem:
            self._grow(p, p.first_ts, "shmem", shmem)
        if file:
            self._grow(p, p.first_ts, "file", file)
        p.from_log = True
        self.procs[row.pid] = p
        self.order.append(row.pid)

    def finish(self) -> None:
        for pid in self.order:
            p = self.procs[pid]
            if not p.from_log:
                self.close_slice(p, p.last_ts)

    def scenario(self, name: str, description: str, machine: dict[str, Any],
                 cgroups: list[dict[str, Any]]) -> dict[str, Any]:
        t0 = self.t0 if self.t0 is not None else 0
        end = self.t_end + TAIL_NS
        file_bytes = max(PAGE_SIZE, -(-self.max_file_bytes // PAGE_SIZE) * PAGE_SIZE)
        processes: list[dict[str, Any]] = []
        uses_file = False
        taken: set[str] = set()
        for pid in self.order:
            p = self.procs[pid]
            if p.merged or pid < 2 or not any(s["op"] != "sleep" for s in p.steps):
                continue
            steps = [dict(s) for s in p.steps]
            for s in steps:
                if s.get("length") == "@FILE":
                    s["length"] = file_bytes
                if s.get("file") == SYNTHETIC_FILE:
                    uses_file = True
            if p.killed_allocating and p.last_growth is not None:
                # It was still allocating when the OOM killer took it: in the replay it
                # keeps growing at its last rate (up to a quarter of its peak more).
                pages, every_ns = p.last_growth
                count = max(1, -(-max(1, p.peak_anon // 4) // max(1, pages)))
                body: list[dict[str, Any]] = [
                    {"op": "mmap", "handle": "more{i}", "length": pages * PAGE_SIZE, "prot": "rw",
                     "on_enomem": "continue"},
                    {"op": "touch", "handle": "more{i}", "write": True}]
                if every_ns >= MIN_SLEEP_NS:
                    body.insert(0, {"op": "sleep", "duration": every_ns})
                steps.append({"op": "repeat", "count": count, "steps": body})
            if not p.exited:
                # Alive at the end of the trace, or OOM-killed: in the replay it stays
                # until the end (or until the replay's own OOM killer takes it).
                tail = end - (t0 if p.from_log else p.clock)
                if tail > 0:
                    steps.append({"op": "sleep", "duration": tail})
            name_ = f"{p.comm}-{pid}"
            while name_ in taken:
                name_ += "'"
            taken.add(name_)
            proc: dict[str, Any] = {"name": name_, "comm": p.comm[:15] or "task", "steps": steps}
            if 2 <= pid <= 4_194_304:
                proc["pid"] = pid
            if p.uid:
                proc["uid"] = p.uid
            if p.oom_score_adj:
                proc["oom_score_adj"] = p.oom_score_adj
            start = 0 if p.from_log else max(0, p.first_ts - t0)
            if start:
                proc["start"] = start
            if p.memcg != "/":
                proc["cgroup"] = p.memcg
            processes.append(proc)
        files: list[dict[str, Any]] = []
        if uses_file:
            files.append({"path": SYNTHETIC_FILE, "size": file_bytes})
            # The page cache of mapped files is there before the trace starts, outside
            # any memory cgroup (as shared libraries usually are).
            processes.insert(0, {"name": "page-cache-loader", "comm": "loader",
                                 "steps": [{"op": "read", "file": SYNTHETIC_FILE}]})
        if not processes:
            processes.append({"name": "idle", "steps": [{"op": "sleep", "duration": 1}]})
        out: dict[str, Any] = {"name": name, "description": description, "machine": machine, "sysctl": {},
                               "file": files}
        if cgroups:
            out["cgroup"] = cgroups
        out["process"] = processes
        return out


_KIND_CLASS = {"anon_private": "anon", "heap": "anon", "file_private": "file", "file_shared": "file",
               "anon_shared": "shmem", "shm": "shmem"}


def _runs(pages: list[int]) -> Iterable[tuple[int, int]]:
    """Sorted page numbers as (first, count) runs."""
    if not pages:
        return
    start = prev = pages[0]
    for pg in pages[1:]:
        if pg != prev + 1:
            yield start, prev - start + 1
            start = pg
        prev = pg
    yield start, prev - start + 1


# --------------------------------------------------------------------------- builder


_UNKNOWN_ALWAYS: dict[str, dict[str, str]] = {
    "page_fault": {
        "pfn": "exceptions:page_fault_user carries no page frame: written as 0",
        "major": "whether the fault needed I/O is not traced: written as false",
        "vma_kind": "from the mapping when its address is known, else from the rss_stat counter the "
                    "fault raised right after it, else anon_private",
    },
    "mmap": {
        "ino": "the trace names no file: 0", "path": "the trace names no file: ''",
        "charged_pages": "Committed_AS charges are not traced: 0",
    },
    "munmap": {"uncharged_pages": "Committed_AS charges are not traced: 0"},
    "brk": {"charged_pages": "Committed_AS charges are not traced: 0"},
    "rss_stat": {"mm_pid": "the kernel prints a hash of the mm (mm_id): resolved to the pid that owns it "
                           "(curr=1), else to the task in whose context it fired; 0 when neither tells"},
    "process_start": {"uid": "not traced: from the companion log's task table when it lists the pid, else 0",
                      "oom_score_adj": "not traced: from oom_score_adj_update or the companion log, else 0"},
    "reclaim_end": {"nr_scanned": "the *_reclaim_end tracepoints print only nr_reclaimed: 0",
                    "memcg": "as for reclaim_begin"},
    "reclaim_begin": {"memcg": "mm_vmscan_memcg_reclaim_begin names no cgroup: the memcg of the companion log's "
                               "task table that lists the task, else ''"},
    "kswapd_sleep": {"nr_reclaimed": "mm_vmscan_kswapd_sleep prints only nid: 0"},
    "shrink_list": {"nr_mapped_kept": "not traced: 0", "nr_no_swap": "not traced: 0", "memcg": "not traced: ''"},
    "page_cache_add": {"shmem": "not traced: false"},
    "page_cache_delete": {"shmem": "not traced: false",
                          "reason": "not traced: reclaim when it happens in kswapd or inside a reclaim "
                                    "of the task, else truncate (drop_caches cannot be told apart)"},
    "oom_reap": {"anon_rss_kb": "not traced (finish_task_reaping prints only pid): 0",
                 "file_rss_kb": "not traced: 0", "shmem_rss_kb": "not traced: 0"},
    "fork": {"charged_pages": "not traced: 0"},
    "exit": {"code": "not traced: 0"},
}

_UNKNOWN_OOM_KILL_NO_LOG = {
    "points": "mark_victim carries no badness: 0 (give the kernel log with --dmesg)",
    "totalpages": "not traced: 0 (give the kernel log with --dmesg)",
    "constraint": "not traced: CONSTRAINT_NONE written (give the kernel log with --dmesg)",
    "memcg": "not traced: '' (give the kernel log with --dmesg)",
    "task_memcg": "not traced: ''",
    "gfp_mask": "not traced: 0", "order": "not traced: 0",
    "message": "not traced: 'Out of memory' written",
}
_UNKNOWN_OOM_KILL_OLD = {
    "comm": "mark_victim before 6.10 prints only the pid: the comm last seen for it",
    "total_vm_kb": "mark_victim before 6.10 prints only the pid: 0", "anon_rss_kb": "0", "file_rss_kb": "0",
    "shmem_rss_kb": "0", "uid": "0", "pgtables_kb": "0", "oom_score_adj": "the last oom_score_adj_update, else 0",
}

_KTHREAD_PREFIXES = ("kswapd", "oom_reaper", "kworker", "kcompactd", "khugepaged", "ksoftirqd", "migration",
                     "rcu_", "swapper", "kthreadd")


class TraceBuilder:
    """Maps real events onto memtrace tracepoints and writes the trace.

    Call :meth:`event` once per parsed line (``name`` is the tracepoint name with or
    without its system, ``payload`` the text after it), :meth:`unknown_line` for
    lines the parser could not read, then :meth:`finish`.
    """

    def __init__(self, output: str | os.PathLike[str], *, source_format: str, source_path: str,
                 companion: OomLog | None = None, kernel_version: str | None = None,
                 memtrace_version: str = "0.1.0") -> None:
        self.output = Path(output)
        self.source_format = source_format
        self.source_path = source_path
        self.companion = companion
        self.kernel_version = kernel_version
        self.memtrace_version = memtrace_version
        self.registry = default_registry()
        self.tps = {tp.name: tp for tp in self.registry}
        self.rows: dict[str, list[list[Any]]] = {}
        # The two hot tracepoints are buffered flat (values one after another), which
        # numpy turns into columns far faster than rows.
        self._fault_flat: list[int] = []
        self._rss_flat: list[int] = []
        # ... or as ready rows (see add_rows).
        self._bulk: dict[str, list[np.ndarray]] = {"page_fault": [], "rss_stat": []}
        #: Called before a flush group is written (a bulk reader hands over its rows).
        self.before_flush: Callable[[], None] | None = None
        self.seq = 0
        self._next_flush = GROUP_EVENTS
        self.lines = 0
        self.comment_lines = 0
        self.unknown_lines = 0
        self.unknown_events: dict[str, int] = {}
        self.summarised: dict[str, dict[str, int]] = {}
        self.counts: dict[str, int] = {}
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.work = WorkloadBuilder()
        self._procs = self.work.procs
        self.comms: dict[int, str] = {}
        self.tgid: dict[int, int] = {}  # thread id -> process id (learned from shared mms)
        self.mm_owner: dict[int, int] = {}  # mm_id -> pid (curr=1)
        self.mm_guess: dict[int, int] = {}  # mm_id -> context pid (curr=0, not yet seen with curr=1)
        self.mm_owned = self.mm_guessed = self.mm_unknown = 0
        self.fault_from_vma = 0
        self.fault_from_rss = 0
        self.pending_fault: dict[int, list[Any]] = {}  # pid -> fault row waiting for its kind
        # pid -> the syscall it entered and has not left: ("mmap", ts, args),
        # ("munmap", ts, addr, len) or ("brk", ts, requested)
        self.pending_sys: dict[int, tuple[Any, ...]] = {}
        self.reclaim: dict[int, str] = {}  # pid -> kind of the reclaim it is in
        self.adj: dict[int, int] = {}
        self.oom_id = 0
        self.kills: list[dict[str, Any]] = []
        self._killed: set[int] = set()
        self.mark_victim_old = False
        self.first_ts: int | None = None
        self.last_ts = 0
        self._companion_used: set[int] = set()
        self._companion_report = (oom_report_from_parsed(companion.reports) if companion is not None
                                  and companion.reports else None)
        self._companion_rows: dict[int, tuple[Any, ParsedOom]] = {}
        self._task_memcg: dict[int, str] = {}  # pid -> the memcg whose OOM task table lists it
        if companion is not None:
            for r in companion.reports:
                for row in r.tasks:
                    self._companion_rows.setdefault(row.pid, (row, r))
                    if r.is_memcg and r.memcg:
                        self._task_memcg.setdefault(row.pid, r.memcg)
        self.output.parent.mkdir(parents=True, exist_ok=True) if str(self.output.parent) else None
        fd, self._events_path = tempfile.mkstemp(prefix=".import-", suffix=".events", dir=self.output.parent or ".")
        os.close(fd)
        self.writer = TraceWriter(self._events_path, self.registry, {"import": "events"},
                                  chunk_events=1 << 40, memtrace_version=memtrace_version)
        self._events_header_bytes = self.writer.bytes_written
        self.handlers: dict[str, Callable[[str, int, int, str], bool]] = {
            "sys_enter_mmap": self._enter_mmap, "sys_exit_mmap": self._exit_mmap,
            "sys_enter_munmap": self._enter_munmap, "sys_exit_munmap": self._exit_munmap,
            "sys_enter_brk": self._enter_brk, "sys_exit_brk": self._exit_brk,
            "page_fault_user": self._page_fault, "rss_stat": self._rss_stat,
            "mm_page_alloc": self._page_alloc, "mm_page_free": self._page_free,
            "mm_page_free_batched": self._page_free,
            "mm_filemap_add_to_page_cache": self._cache_add, "mm_filemap_delete_from_page_cache": self._cache_del,
            "mm_vmscan_kswapd_wake": self._kswapd_wake, "mm_vmscan_kswapd_sleep": self._kswapd_sleep,
            "mm_vmscan_direct_reclaim_begin": self._reclaim_begin("direct"),
            "mm_vmscan_memcg_reclaim_begin": self._reclaim_begin("memcg"),
            "mm_vmscan_memcg_softlimit_reclaim_begin": self._reclaim_begin("memcg"),
            "mm_vmscan_direct_reclaim_end": self._reclaim_end,
            "mm_vmscan_memcg_reclaim_end": self._reclaim_end,
            "mm_vmscan_memcg_softlimit_reclaim_end": self._reclaim_end,
            "mm_vmscan_lru_shrink_inactive": self._shrink_inactive,
            "mark_victim": self._mark_victim, "oom_score_adj_update": self._adj_update,
            "finish_task_reaping": self._reaped(True), "skip_task_reaping": self._reaped(False),
            "sched_process_fork": self._fork, "sched_process_exit": self._exit,
            "sched_process_exec": self._exec,
        }
        for name in _SUMMARISED:
            self.handlers[name] = self._summarise(name)
        for name in list(self.handlers):
            for system in _SYSTEMS:
                self.handlers[f"{system}:{name}"] = self.handlers[name]

    def unreadable(self, name: str) -> None:
        """A known event whose text could not be read: counted as unknown."""
        self.unknown_lines += 1
        key = f"{name} (unreadable)"
        self.unknown_events[key] = self.unknown_events.get(key, 0) + 1

    # -- input

    def event(self, comm: str, pid: int, ts_ns: int, name: str, payload: str) -> bool:
        """One real event; False (and counted) when its tracepoint is unknown. The
        feeder counts lines (:attr:`lines`)."""
        handler = self.handlers.get(name)
        if handler is None:
            if ":" in name:
                handler = self.handlers.get(name.rpartition(":")[2])
            if handler is None:
                self.unknown_lines += 1
                key = name if len(name) <= 64 else name[:64]
                if len(self.unknown_events) < 1000 or key in self.unknown_events:
                    self.unknown_events[key] = self.unknown_events.get(key, 0) + 1
                return False
        if ts_ns > self.last_ts:
            self.last_ts = ts_ns
            if self.first_ts is None:
                self.first_ts = ts_ns
        if self.tgid:
            pid = self.tgid.get(pid, pid)
        if self.comms.get(pid) != comm and comm and comm != "<...>":
            self._seen(comm, pid, ts_ns)
        try:
            known = handler(comm, pid, ts_ns, payload)
        except (ValueError, IndexError, KeyError, OverflowError):
            known = False
        if self.seq >= self._next_flush:
            self._flush()
        if known:
            return True
        self.unreadable(name)
        return False

    def thread(self, tid: int, pid: int) -> None:
        """The input says ``tid`` is a thread of process ``pid``."""
        if tid != pid and self.tgid.get(tid) != pid:
            self.tgid[tid] = pid
            thread = self.work.procs.get(tid)
            if thread is not None:
                thread.merged = True

    def unknown_line(self) -> None:
        self.unknown_lines += 1

    def comment_line(self) -> None:
        self.comment_lines += 1

    # -- emitting

    def _emit(self, tp: str, ts_ns: int, pid: int, *values: Any) -> list[Any]:
        row = [self.seq, ts_ns, pid, *values]
        self.seq += 1
        rows = self.rows.get(tp)
        if rows is None:
            rows = self.rows[tp] = []
        rows.append(row)
        return row

    def add_rows(self, name: str, rows: np.ndarray) -> None:
        """Events of ``page_fault`` or ``rss_stat`` made in bulk: one row per event,
        the tracepoint's fields as columns (``seq`` first, numbered by the caller
        from :attr:`seq`), written with the next flush group."""
        self._bulk[name].append(rows)

    def _flush(self) -> None:
        """Write everything buffered as one flush group."""
        if self.before_flush is not None:
            self.before_flush()
        self._next_flush = self.seq + GROUP_EVENTS
        for row in self.pending_fault.values():  # their kind stays the default
            self._fault_flat.extend(row)
        self.pending_fault.clear()
        for name, flat in (("page_fault", self._fault_flat), ("rss_stat", self._rss_flat)):
            bulk = self._bulk[name]
            if flat or bulk:
                tp = self.tps[name]
                if flat:
                    bulk.append(np.array(flat, dtype=np.int64).reshape(-1, len(tp.all_fields)))
                table = bulk[0] if len(bulk) == 1 else np.concatenate(bulk)
                if table.shape[0] > 1 and not bool(np.all(table[1:, 0] > table[:-1, 0])):
                    table = table[np.argsort(table[:, 0], kind="stable")]
                values = {f.name: table[:, j].astype(f.dtype) for j, f in enumerate(tp.all_fields)}
                self.writer.on_batch(EventBatch(tp, values))
                self.counts[name] = self.counts.get(name, 0) + table.shape[0]
                flat.clear()
                bulk.clear()
        for name, rows in self.rows.items():
            if not rows:
                continue
            tp = self.tps[name]
            cols = list(zip(*rows))
            values: dict[str, Any] = {}
            for f, col in zip(tp.all_fields, cols):
                if f.type == "str":
                    values[f.name] = list(col)
                else:
                    values[f.name] = np.array(col, dtype=f.dtype)
            self.writer.on_batch(EventBatch(tp, values))
            self.counts[name] = self.counts.get(name, 0) + len(rows)
            rows.clear()
        self.writer.flush()

    def _seen(self, comm: str, pid: int, ts_ns: int) -> None:
        """A task seen for the first time, or under a new comm (an exec)."""
        old = self.comms.get(pid)
        self.comms[pid] = comm
        p = self.work.proc(pid, comm, ts_ns)
        uid, adj = 0, self.adj.get(pid, 0)
        known = self._companion_rows.get(pid)
        if known is not None:
            uid = known[0].uid or 0
            if pid not in self.adj and known[0].oom_score_adj is not None:
                adj = known[0].oom_score_adj
            p.uid, p.oom_score_adj = uid, max(-1000, min(1000, adj))
        if old is not None:
            self.work.exec_(p, ts_ns, comm)
        self._emit("process_start", ts_ns, pid, comm, uid, max(-1000, min(1000, adj)))

    # -- syscalls

    def _enter_mmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        args = _syscall_args(payload)
        self._settle_syscalls(pid, ts)
        self.pending_sys[pid] = ("mmap", ts, args)
        return True

    def _exit_mmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        pending = self.pending_sys.get(pid)
        if pending is None or pending[0] != "mmap":
            self._summary("sys_exit_mmap (no enter)")
            return True
        del self.pending_sys[pid]
        self._mmap_done(pid, ts, pending[2], _syscall_ret(payload))
        return True

    def _mmap_done(self, pid: int, ts: int, args: dict[str, int], ret: int | None) -> None:
        length, prot, flags = args.get("len", 0), args.get("prot", 0), args.get("flags", 0)
        fd = args.get("fd", 0xFFFFFFFF)
        anonymous = bool(flags & MAP_ANONYMOUS) or fd in (0xFFFFFFFF, _U64)
        shared = bool(flags & MAP_SHARED) and not flags & MAP_PRIVATE
        kind = ("anon_shared" if shared else "anon_private") if anonymous else (
            "file_shared" if shared else "file_private")
        hint = args.get("addr", 0)
        if ret is None:
            addr = hint if flags & MAP_FIXED else 0
            code = 0
        elif -4095 <= ret < 0:
            addr, code = 0, ret
        else:
            addr, code = ret & _U64, 0
        p = self.work.proc(pid, self.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        handle = ""
        if code == 0:
            handle = self.work.mmap(p, ts, addr or None, length, prot, flags, anonymous, args.get("off", 0))
        self._emit("mmap", ts, pid, addr, page_align(length), prot & 0xFF, flags & 0xFFFFFFFF,
                   VMA_KINDS.index(kind), 0, "", handle, 0, code)

    def _enter_munmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        args = _syscall_args(payload)
        self._settle_syscalls(pid, ts)
        self.pending_sys[pid] = ("munmap", ts, args.get("addr", 0), args.get("len", 0))
        return True

    def _exit_munmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        pending = self.pending_sys.get(pid)
        if pending is None or pending[0] != "munmap":
            self._summary("sys_exit_munmap (no enter)")
            return True
        del self.pending_sys[pid]
        ret = _syscall_ret(payload)
        if ret == 0:
            self._munmap_done(pid, *pending[1:])
        return True

    def _munmap_done(self, pid: int, ts: int, addr: int, length: int) -> None:
        p = self.work.proc(pid, self.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        v = p.find_vma(addr)
        handle = v.handle if v is not None and v.handle != "heap" else ""
        self.work.munmap(p, ts, addr, length)
        self._emit("munmap", ts, pid, addr, page_align(length), handle, 0)

    def _enter_brk(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        args = _syscall_args(payload)
        self._settle_syscalls(pid, ts)
        self.pending_sys[pid] = ("brk", ts, args.get("brk", 0))
        return True

    def _exit_brk(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        pending = self.pending_sys.get(pid)
        if pending is None or pending[0] != "brk":
            self._summary("sys_exit_brk (no enter)")
            return True
        del self.pending_sys[pid]
        self._brk_done(pid, ts, pending[2], c_ulong(_num(payload.split()[0]), "brk return value"))
        return True

    def _brk_done(self, pid: int, ts: int, requested: int, result: int | None) -> None:
        p = self.work.proc(pid, self.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        known = p.brk
        self.work.brk(p, ts, requested, result)
        ret = result if result is not None else (requested or (known or 0))
        # The break before the call is unknown until one brk result (or request) is
        # seen: then it is written as the result, a call that moved nothing.
        old = known if known is not None else ret
        self._emit("brk", ts, pid, old, requested, ret, 0)

    def _settle_syscalls(self, pid: int, ts: int) -> None:
        """A syscall of ``pid`` whose exit was not traced is taken as done."""
        pending = self.pending_sys.pop(pid, None)
        if pending is None:
            return
        if pending[0] == "mmap":
            self._mmap_done(pid, pending[1], pending[2], None)
        elif pending[0] == "munmap":
            self._munmap_done(pid, pending[1], pending[2], pending[3])
        else:
            self._brk_done(pid, pending[1], pending[2], None)

    # -- faults and counters

    def _page_fault(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        # "address=0x7f24d3844270 ip=0x7f24d3844270 error_code=0x14" (the hot path:
        # a fault is half of most traces, so this is written out long-hand)
        a, _, rest = payload.partition(" ")
        if a[:8] == "address=":
            addr = int(a[8:], 16)
        else:
            addr = int(kv_fields(payload)["address"], 16)
        if not 0 <= addr <= _U64:
            raise ValueError(f"page fault address {addr:#x} is not a 64-bit address")
        err = rest.rpartition("error_code=")[2]
        write = _WRITE_BIT.get(err)
        if write is None:
            write = int(err.split(None, 1)[0], 16) & 2 != 0
        return self.fault_event(comm, pid, ts, addr, write)

    def fault_event(self, comm: str, pid: int, ts: int, addr: int, write: bool) -> bool:
        """A user page fault of task ``pid`` at ``addr``, parsed (the perf reader's
        fast path calls this directly)."""
        page_addr = addr & ~0xFFF
        if page_addr >> 63:
            # A user-mode access to a kernel address (the vsyscall page): the rows
            # are int64, the field uint64, so it is kept as its two's complement.
            page_addr = to_signed64(page_addr)
        if self.pending_sys:
            self._settle_syscalls(pid, ts)
        p = self._procs.get(pid)
        if p is None:
            p = self.work.proc(pid, comm, ts)
        if ts - p.slice_start >= SLICE_NS:  # type: ignore[operator]
            self.work.tick(p, ts)
        p.last_ts = ts
        v = p.last_vma
        if v is None or not v.start <= addr < v.end:
            v = p.find_vma(addr) if (p.vmas or p.heap is not None) else None
            if v is not None and v.handle != "heap":
                p.last_vma = v
        if v is not None:
            self._fault_flat += (self.seq, ts, pid, page_addr, write, 0, v.code, 0)
            self.seq += 1
            self.fault_from_vma += 1
            if v.handle != "heap":
                (v.new_w if write else v.new_r).append(addr >> PAGE_SHIFT)
                if not v.dirty:
                    v.dirty = True
                    p.dirty.append(v)
            elif not p.has_rss:  # heap growth, as for an unknown address
                p.slice_faults.append(([0, 0, 0, 0, 0, 0, v.code, 0], addr >> PAGE_SHIFT, write))
            return True
        # anon_private until the rss_stat that follows says otherwise
        row = [self.seq, ts, pid, page_addr, write, 0, 0, 0]
        self.seq += 1
        older = self.pending_fault.get(pid)
        if older is not None:
            self._fault_flat.extend(older)
        self.pending_fault[pid] = row
        if not p.has_rss:
            p.slice_faults.append((row, addr >> PAGE_SHIFT, write))
        return True

    def _rss_stat(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        # "mm_id=1872197239 curr=1 type=MM_FILEPAGES size=1298432B" (5.5: member=N)
        parts = payload.split()
        if parts[0][:6] != "mm_id=":
            raise ValueError(f"rss_stat without mm_id: {payload!r}")
        mm_id = int(parts[0][6:])
        member_code = _MEMBER_TOKEN.get(parts[2])
        if member_code is None:
            member_code = int(parts[2].partition("=")[2])
            if not 0 <= member_code < len(RSS_MEMBERS):
                raise ValueError(f"rss_stat member {parts[2]!r}")
        size_text = parts[3]
        size = int(size_text[5:-1] if size_text[-1] == "B" else size_text[5:])
        if not LONG_MIN <= size <= LONG_MAX:  # "%ld"
            raise ValueError(f"rss_stat size {size} is no long")
        return self.rss_event(comm, pid, ts, mm_id, parts[1] == "curr=1", member_code, size)

    def rss_event(self, comm: str, pid: int, ts: int, mm_id: int, curr: bool, member_code: int,
                  size: int) -> bool:
        """A kmem:rss_stat event, parsed: ``member_code`` indexes RSS_MEMBERS, ``size``
        is in bytes (the perf reader's fast path calls this directly)."""
        if curr:  # the mm is current's
            tid = pid
            owner = self.mm_owner.get(mm_id)
            if owner is None:
                self.mm_owner[mm_id] = pid
                self.mm_guess.pop(mm_id, None)
            elif owner != pid:
                o = self._procs.get(owner)
                if o is not None and o.mm_id == mm_id and not o.ended:
                    pid = owner  # the same mm: a thread, or a vfork child before its exec
                else:  # the owner moved on (exec, exit): the kernel reused the mm_struct
                    self.mm_owner[mm_id] = pid
            self.mm_owned += 1
            p = self._procs.get(pid)
            if p is None:
                p = self.work.proc(pid, comm, ts)
            if p.mm_id != mm_id:
                if p.mm_id is not None:  # a new mm (exec): its counters start afresh
                    p.rss = {"anon": 0, "file": 0, "shmem": 0}
                p.mm_id = mm_id
                p.has_rss = True
            pending = self.pending_fault.pop(tid, None)
            if pending is not None:
                if member_code != 2:  # not MM_SWAPENTS
                    heap = p.heap
                    pending[6] = 5 if (member_code == 1 and heap is not None
                                       and heap.start <= pending[3] < heap.end) else _MEMBER_KIND[member_code]
                    self.fault_from_rss += 1
                self._fault_flat.extend(pending)
            if ts - p.slice_start >= SLICE_NS:  # type: ignore[operator]
                self.work.tick(p, ts)
            p.last_ts = ts
            if member_code != 2:
                p.rss[_MEMBER_KEY[member_code]] = size >> PAGE_SHIFT
            self._rss_flat += (self.seq, ts, pid, pid, 1, member_code, size)
            self.seq += 1
            return True
        owner = self.mm_owner.get(mm_id)
        if owner is None:
            owner = self.mm_guess.get(mm_id)
            if owner is None and not comm.startswith(_KTHREAD_PREFIXES):
                owner = self.mm_guess[mm_id] = pid
            if owner is None:
                self.mm_unknown += 1
                owner = 0
            else:
                self.mm_guessed += 1
        else:
            self.mm_owned += 1
        self._rss_flat += (self.seq, ts, pid, owner, 0, member_code, size)
        self.seq += 1
        return True

    # -- page allocator (summarised)

    def _page_alloc(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        order = in_range(int(f.get("order", "0")), 0, MAX_ORDER_READ, "order")
        s = self.summarised.setdefault("mm_page_alloc", {"events": 0, "pages": 0, "failed": 0})
        s["events"] += 1
        if f.get("page") == "(null)" or f.get("pfn") in ("0", "0x0", "-1", "0xffffffffffffffff"):
            s["failed"] += 1
        else:
            s["pages"] += 1 << order
        return True

    def _page_free(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        order = in_range(int(f.get("order", "0")), 0, MAX_ORDER_READ, "order")
        s = self.summarised.setdefault("mm_page_free", {"events": 0, "pages": 0})
        s["events"] += 1
        s["pages"] += 1 << order
        return True

    # -- page cache

    def _cache_fields(self, payload: str) -> tuple[int, int, int, int]:
        # "dev 8:1 ino 1a2b pfn=0x1234 ofs=4096 order=0"; 4.19 "page=... pfn=%lu"
        words = payload.split()
        ino = c_ulong(int(words[words.index("ino") + 1], 16), "ino")
        f = kv_fields(payload)
        pfn_text = f.get("pfn", "0")
        pfn = c_ulong(int(pfn_text, 16) if pfn_text[:2] == "0x" else int(pfn_text), "pfn")
        index = c_ulong(int(f.get("ofs", "0")), "ofs") >> PAGE_SHIFT
        order = int(f.get("order", "0"))
        c_ulong(pfn + (1 << min(order, 10)) - 1, "pfn")  # of the last page, which is written too
        return ino, index, pfn, order

    def _cache_add(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        ino, index, pfn, order = self._cache_fields(payload)
        for i in range(1 << min(order, 10)):
            self._emit("page_cache_add", ts, pid, ino, index + i, pfn + i, False)
        return True

    def _cache_del(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        ino, index, pfn, order = self._cache_fields(payload)
        reason = 2 if comm.startswith("kswapd") or pid in self.reclaim else 0  # reclaim / truncate
        for i in range(1 << min(order, 10)):
            self._emit("page_cache_delete", ts, pid, ino, index + i, pfn + i, False, reason)
        return True

    # -- vmscan

    def _kswapd_wake(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        self._emit("kswapd_wake", ts, pid, c_int(f.get("nid", "0"), "nid"), c_int(f.get("zid", "0"), "zid"),
                   c_int(f.get("order", "0"), "order"))
        return True

    def _kswapd_sleep(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        self._emit("kswapd_sleep", ts, pid, c_int(f.get("nid", "0"), "nid"), 0)
        return True

    def _reclaim_begin(self, kind: str) -> Callable[[str, int, int, str], bool]:
        code = ("direct", "memcg").index(kind)

        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            f = kv_fields(payload)
            order = c_int(f.get("order", "0"), "order")
            gfp = c_ulong(gfp_from_names(f.get("gfp_flags", "")), "gfp_flags")
            self.reclaim[pid] = kind
            memcg = self._task_memcg.get(pid, "") if kind == "memcg" else ""
            self._emit("reclaim_begin", ts, pid, code, order, gfp, memcg)
            return True
        return handler

    def _reclaim_end(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        nr_reclaimed = c_ulong(int(f.get("nr_reclaimed", "0")), "nr_reclaimed")
        kind = self.reclaim.pop(pid, "direct")
        memcg = self._task_memcg.get(pid, "") if kind == "memcg" else ""
        self._emit("reclaim_end", ts, pid, ("direct", "memcg").index(kind), 0, nr_reclaimed, memcg)
        return True

    def _shrink_inactive(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        flags = f.get("flags", "")
        lru = 2 if "FILE" in flags else 0  # inactive_file / inactive_anon
        counts = [c_ulong(int(f.get(key, "0")), key) for key in ("nr_scanned", "nr_reclaimed", "nr_dirty",
                                                                   "nr_activate", "nr_activate_anon",
                                                                   "nr_activate_file")]
        activate = c_ulong(sum(counts[3:]), "nr_activate")
        self._emit("shrink_list", ts, pid, lru, c_int(f.get("priority", "0"), "priority"), *counts[:3], activate,
                   0, 0, "")
        return True

    # -- oom

    def _mark_victim(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        victim = c_int(f["pid"], "pid")
        kb = {k: c_ulong(_num(f[k]), k) if k in f else 0 for k in ("total-vm", "anon-rss", "file-rss", "shmem-rss",
                                                                    "pgtables")}
        uid = in_range(int(f.get("uid", "0")), 0, UINT_MAX, "uid")
        self.oom_id += 1
        if "total-vm" not in f:
            self.mark_victim_old = True
        vcomm = f.get("comm", self.comms.get(victim, ""))
        adj = int(f["oom_score_adj"]) if "oom_score_adj" in f else self.adj.get(victim, 0)
        kill: dict[str, Any] = {"oom_id": self.oom_id, "ts_ns": ts, "trigger_pid": pid, "victim_pid": victim,
                                "comm": vcomm}
        constraint, memcg, task_memcg, gfp, order, message, points, totalpages = (
            "CONSTRAINT_NONE", "", "", 0, 0, "Out of memory", 0, 0)
        match = self._companion_match(victim, ts)
        if match is not None:
            r, k = match
            constraint = r.constraint or "CONSTRAINT_NONE"
            memcg = r.memcg or ""
            task_memcg = r.summary.get("task_memcg") or r.task_in or memcg
            gfp = gfp_from_names(r.gfp_flags) if r.gfp_flags else (r.gfp_mask or 0)
            order = max(0, r.order or 0)
            message = r.kill_message if r.kill_message in _MESSAGES else (
                "Memory cgroup out of memory" if r.is_memcg else "Out of memory")
            totalpages = k.totalpages or 0
            points = k.victim_points if k.victim_points is not None else 0
            self._emit_oom_context(ts, pid, r, k)
            kill["companion_line"] = r.lineno
            kill["constraint"], kill["memcg"] = constraint, memcg
        self._emit("oom_kill", ts, pid, self.oom_id, victim, vcomm, kb["total-vm"], kb["anon-rss"], kb["file-rss"],
                   kb["shmem-rss"], uid, kb["pgtables"], max(-1000, min(1000, adj)), points, totalpages,
                   _CONSTRAINTS.index(constraint) if constraint in _CONSTRAINTS else 0, memcg, task_memcg, gfp,
                   order, _MESSAGES.index(message))
        self.kills.append(kill)
        self._killed.add(victim)
        p = self.work.procs.get(victim)
        if p is not None:
            self.work.close_slice(p, ts)
            p.ended = True
            p.killed_allocating = victim == pid
        return True

    def _companion_match(self, victim: int, ts: int) -> tuple[ParsedOom, Any] | None:
        """The companion log's report of this kill: the first unused one with this
        victim (within 2 s when both have times)."""
        if self.companion is None or self._companion_report is None:
            return None
        for i, r in enumerate(self.companion.reports):
            if i in self._companion_used or r.victim_pid != victim:
                continue
            t = r.killed_ts_ns or r.ts_ns
            if t is not None and abs(t - ts) > 2_000_000_000:
                continue
            self._companion_used.add(i)
            return r, self._companion_report.kills[i]
        return None

    def _emit_oom_context(self, ts: int, pid: int, r: ParsedOom, k: Any) -> None:
        """The events the simulated kernel emits before an oom_kill, from the log:
        ``meminfo_sample`` (global), ``memcg_stat`` (memcg) and the task table."""
        if r.is_memcg:
            st = r.memcg_stats
            mem = r.memcg_counters.get("memory", (0, 0, 0))
            swap = r.memcg_counters.get("swap")
            memsw = r.memcg_counters.get("memory+swap")

            def g(*keys: str) -> int:
                for key in keys:
                    if key in st:
                        return max(0, st[key])
                return 0
            swap_bytes = g("swap") or (swap[0] * 1024 if swap else max(0, (memsw[0] - mem[0]) * 1024) if memsw else 0)
            kernel = g("kernel") or (r.memcg_counters.get("kmem", (0, 0, 0))[0] * 1024)
            self._emit("memcg_stat", ts, pid, r.memcg or "", mem[0] * 1024, mem[1] * 1024, mem[2], swap_bytes,
                       g("anon", "total_rss", "rss"), g("file", "total_cache", "cache"), g("shmem", "total_shmem"),
                       g("file_mapped", "mapped_file", "total_mapped_file"), g("file_dirty", "dirty", "total_dirty"),
                       kernel, g("inactive_anon", "total_inactive_anon"), g("active_anon", "total_active_anon"),
                       g("inactive_file", "total_inactive_file"), g("active_file", "total_active_file"),
                       g("unevictable", "total_unevictable"), g("pgfault", "total_pgfault"),
                       g("pgmajfault", "total_pgmajfault"), g("pgpgin", "total_pgpgin"),
                       g("pgpgout", "total_pgpgout"))
        elif r.meminfo_pages:
            self._emit("meminfo_sample", ts, pid, *_meminfo_values(r))
        points = {c.pid: c.points for c in k.candidates}
        for row in r.tasks:
            anon = row.rss_anon if row.rss_anon is not None else (row.rss or 0)
            pgt = row.pgtables_bytes if row.pgtables_bytes is not None else (
                ((row.nr_ptes or 0) + (row.nr_pmds or 0)) * PAGE_SIZE)
            adj = row.oom_score_adj if row.oom_score_adj is not None else 0
            pts = points.get(row.pid)
            self._emit("oom_candidate", ts, pid, self.oom_id, row.tgid if row.tgid is not None else row.pid,
                       max(0, row.uid or 0), row.name, max(0, row.total_vm or 0), max(0, anon),
                       max(0, row.rss_file or 0), max(0, row.rss_shmem or 0), max(0, row.swapents or 0),
                       max(0, pgt), max(-1000, min(1000, adj)), LONG_MIN if pts is None else pts)

    def _adj_update(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        target = c_int(f["pid"], "pid")
        adj = max(-1000, min(1000, int(f["oom_score_adj"])))
        self.adj[target] = adj
        p = self.work.procs.get(target)
        if p is not None:
            p.oom_score_adj = adj
        self._emit("oom_score_adj_update", ts, target, f.get("comm", comm), adj)
        return True

    def _reaped(self, success: bool) -> Callable[[str, int, int, str], bool]:
        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            victim = c_int(kv_fields(payload)["pid"], "pid")
            self._emit("oom_reap", ts, pid, victim, self.comms.get(victim, ""), success, 0, 0, 0)
            return True
        return handler

    # -- sched

    def _fork(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        parent = c_int(f.get("pid", pid), "pid")
        child = c_int(f["child_pid"], "child_pid")
        ccomm = f.get("child_comm", comm)
        self._emit("fork", ts, parent, child, ccomm, 0)
        self.comms.setdefault(child, ccomm)
        return True

    def _exit(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f = kv_fields(payload)
        who = c_int(f.get("pid", pid), "pid")
        self._emit("exit", ts, who, f.get("comm", comm), 0)
        p = self.work.procs.get(who)
        if p is not None:
            self.work.close_slice(p, ts)
            p.ended = True
            p.exited = not p.killed_allocating and who not in self._killed
        return True

    def _exec(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        self._summary("sched_process_exec")
        return True  # the comm change of the next line names the new image

    def _summary(self, name: str) -> None:
        s = self.summarised.setdefault(name, {"events": 0})
        s["events"] += 1

    def _summarise(self, name: str) -> Callable[[str, int, int, str], bool]:
        def handler(comm: str, pid: int, ts: int, payload: str) -> bool:
            self._summary(name)
            return True
        return handler

    # -- the end

    def finish(self, *, extra_warnings: Iterable[str] = ()) -> ImportResult:
        for pid in list(self.pending_sys):
            self._settle_syscalls(pid, self.last_ts)
        self._flush()
        self.warnings.extend(extra_warnings)
        if self.first_ts is not None:
            self.work.t0 = self.first_ts if self.work.t0 is None else min(self.work.t0, self.first_ts)
            self.work.t_end = max(self.work.t_end, self.last_ts)
        self.work.finish()
        meta = self._meta()
        self.writer.close(extra={"import": {"lines": self.lines, "unknown_lines": self.unknown_lines},
                                 "oom_kills": self.kills, "end_ns": self.last_ts})
        self._assemble(meta)
        return ImportResult(
            trace=str(self.output), source=self.source_path, format=self.source_format, lines=self.lines,
            events=dict(sorted(self.counts.items(), key=lambda kv: self.registry.id_of(self.tps[kv[0]]))),
            unknown_lines=self.unknown_lines, unknown_events=dict(self.unknown_events),
            summarised=self.summarised, processes=len(meta["workload"]["process"]), oom_kills=self.kills,
            warnings=self.warnings, trace_bytes=self.output.stat().st_size,
            duration_ns=(self.last_ts - self.first_ts) if self.first_ts is not None else 0,
            companion_log=self.companion.path if self.companion is not None else None,
        )

    def abort(self) -> None:
        """Drop the temporary files after a failure."""
        try:
            self.writer.close()
        finally:
            for path in (self._events_path,):
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _machine(self) -> dict[str, Any]:
        version = self.kernel_version
        cgroup_version = 2
        ram: int | None = None
        swap: int | None = None
        if self.companion is not None:
            for r in self.companion.reports:
                if version is None and r.kernel_release:
                    version = r.kernel_release.split("-")[0]
                if r.cgroup_version is not None:
                    cgroup_version = r.cgroup_version
                if ram is None and r.ram_pages is not None:
                    ram = (r.ram_pages - (r.reserved_pages or 0)) * PAGE_SIZE
                if swap is None and r.swap_total_kb is not None:
                    swap = r.swap_total_kb * 1024
        if version is None:
            version = DEFAULT_KERNEL_VERSION
            self.notes.append("kernel version unknown (no companion log, no --kernel-version): 6.13 assumed")
        if ram is None:
            ram = 24 << 30
            self.notes.append("RAM unknown (no global OOM report in a companion log): 24 GiB assumed for replay")
        ram = max(64 << 20, ram // PAGE_SIZE * PAGE_SIZE)
        if swap is None:
            swap = 0
            self.notes.append("swap unknown: none assumed for replay")
        return {"ram_bytes": ram, "swap_bytes": swap // PAGE_SIZE * PAGE_SIZE, "kernel_version": version,
                "cgroup_version": cgroup_version}

    def _cgroups(self) -> list[dict[str, Any]]:
        """Memory cgroups of the companion log's memcg OOMs, their limits, and
        their tasks (every task-table row of a memcg OOM is in that memcg)."""
        out: dict[str, dict[str, Any]] = {}
        if self.companion is None:
            return []
        for r in self.companion.reports:
            path = r.memcg
            if not r.is_memcg or not path or path == "/" or not path.startswith("/"):
                continue
            mem = r.memcg_counters.get("memory")
            entry = out.setdefault(path, {"path": path})
            if mem is not None and mem[1] * 1024 < (1 << 62):
                entry["max"] = mem[1] * 1024 // PAGE_SIZE * PAGE_SIZE
            swap = r.memcg_counters.get("swap")
            memsw = r.memcg_counters.get("memory+swap")
            if swap is not None and swap[1] * 1024 < (1 << 62):
                entry["swap_max"] = swap[1] * 1024 // PAGE_SIZE * PAGE_SIZE
            elif memsw is not None and mem is not None and memsw[1] <= mem[1]:
                entry["swap_max"] = 0
            for row in r.tasks:
                p = self.work.procs.get(row.pid)
                if p is not None:
                    p.memcg = path
            if r.victim_pid is not None and r.victim_pid in self.work.procs:
                self.work.procs[r.victim_pid].memcg = path
        # Parents must be declared first.
        result: list[dict[str, Any]] = []
        declared: set[str] = set()
        for path in sorted(out, key=lambda s: s.count("/")):
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                parent = "/" + "/".join(parts[:depth])
                if parent not in declared:
                    declared.add(parent)
                    result.append({"path": parent})
            if path not in declared:
                declared.add(path)
                result.append(out[path])
        return result

    def _add_log_only_processes(self) -> None:
        if self.companion is None:
            return
        for r in self.companion.reports:
            for row in r.tasks:
                p = self.work.procs.get(row.pid)
                if row.pid > 1 and (p is None or (not p.merged and not any(s["op"] != "sleep" for s in p.steps))):
                    # Not in the trace, or seen there only doing nothing we can replay
                    # (e.g. its teardown after the kill): its memory from the table.
                    if p is not None:
                        self.work.order.remove(row.pid)
                    self.work.from_task_row(row, r.memcg if r.is_memcg else None, self.work.t0)

    def _meta(self) -> dict[str, Any]:
        machine = self._machine()
        self._add_log_only_processes()
        cgroups = self._cgroups()
        base = os.path.basename(self.source_path)
        workload = self.work.scenario(
            name=f"imported-{Path(base).stem.split('.')[0] or 'trace'}",
            description=f"workload derived from {self.source_format} {base}: each process's mmap, munmap, brk "
                        "and faults (rss_stat where traced), timed as recorded",
            machine={"ram": machine["ram_bytes"], "swap": machine["swap_bytes"],
                     "kernel_version": machine["kernel_version"],
                     **({"cgroup_version": machine["cgroup_version"]} if machine["cgroup_version"] != 2 else {})},
            cgroups=cgroups)
        unknown = {k: dict(v) for k, v in _UNKNOWN_ALWAYS.items() if k in self.counts}
        if "oom_kill" in self.counts:
            u: dict[str, str] = {}
            if any("constraint" not in k for k in self.kills):
                u.update(_UNKNOWN_OOM_KILL_NO_LOG)
            if self.mark_victim_old:
                u.update(_UNKNOWN_OOM_KILL_OLD)
            if u:
                unknown["oom_kill"] = u
        if "oom_candidate" in self.counts:
            unknown["oom_candidate"] = {"rss_file": "0 when the log's task table does not split RSS (before 6.8); "
                                                    "rss_anon is then the whole rss"}
        if "memcg_stat" in self.counts or "meminfo_sample" in self.counts:
            unknown["meminfo_sample"] = {"*": "only what the log's Mem-Info prints; other fields 0"}
        source: dict[str, Any] = {
            "format": self.source_format, "path": self.source_path, "lines": self.lines,
            "events": sum(self.counts.values()), "unknown_lines": self.unknown_lines,
            "comment_lines": self.comment_lines,
            "unknown_events": dict(sorted(self.unknown_events.items(), key=lambda kv: -kv[1])[:50]),
            "summarised": self.summarised, "unknown": unknown,
            "rss_stat_owners": {"owner": self.mm_owned, "context_task": self.mm_guessed,
                                "unknown": self.mm_unknown},
            "page_fault_vma_kind": {"from_mapping": self.fault_from_vma, "from_rss_stat": self.fault_from_rss,
                                    "default_anon_private": self.counts.get("page_fault", 0) - self.fault_from_vma
                                    - self.fault_from_rss},
            "first_ts_ns": self.first_ts, "last_ts_ns": self.last_ts,
            "notes": [
                *self.notes,
                "per-page state (page frames, LRU position, dirty bits) is not in a real trace and is not "
                "invented: analyses see processes, mappings and counters only",
                f"file mappings map {SYNTHETIC_FILE} in the replay workload: the trace names no file",
                "rss_stat of an mm several tasks share (threads, a vfork child before its exec) counts for the "
                "task that first showed it as its own (curr=1); other events stay with the task that fired them: "
                "without a tgid in the input, threads appear as processes",
            ],
        }
        if self.companion is not None:
            source["companion_log"] = {"path": self.companion.path, "reports": len(self.companion.reports),
                                       "matched_kills": len(self._companion_used)}
        return {
            "scenario": workload["name"],
            "source": source,
            "machine": machine,
            "sysctl": {},
            "sysctl_overrides": {},
            "seed": 0,
            "workload": workload,
        }

    def _assemble(self, meta: dict[str, Any]) -> None:
        """Header (now that it is known) + the events file's frames -> output."""
        fd, head_path = tempfile.mkstemp(prefix=".import-", suffix=".head", dir=self.output.parent or ".")
        os.close(fd)
        tmp_out = f"{self.output}.importing"
        try:
            head = TraceWriter(head_path, self.registry, meta, memtrace_version=self.memtrace_version)
            head_len = head.bytes_written
            head.close()
            with open(tmp_out, "wb") as out:
                with open(head_path, "rb") as f:
                    out.write(f.read(head_len))
                with open(self._events_path, "rb") as f:
                    f.seek(self._events_header_bytes)
                    shutil.copyfileobj(f, out, 1 << 20)
            os.replace(tmp_out, self.output)
        finally:
            for path in (head_path, self._events_path, tmp_out):
                with contextlib.suppress(OSError):
                    os.unlink(path)


#: Real tracepoints counted and summarised in the header, with no memtrace counterpart.
_SUMMARISED = ("mm_vmscan_wakeup_kswapd", "mm_vmscan_lru_isolate", "mm_vmscan_lru_shrink_active",
               "mm_lru_activate", "mm_lru_insertion", "wake_reaper", "start_task_reaping",
               "mm_vmscan_node_reclaim_begin", "mm_vmscan_node_reclaim_end", "mm_vmscan_write_folio",
               "mm_vmscan_writepage", "reclaim_retry_zone", "compact_retry", "page_fault_kernel",
               "mm_shrink_slab_start", "mm_shrink_slab_end")
#: Systems whose ``system:event`` names ``perf script`` prints for the events above.
_SYSTEMS = ("syscalls", "exceptions", "kmem", "filemap", "vmscan", "oom", "sched", "pagemap")
#: x86 page-fault error codes as printed -> the write bit (2).
_WRITE_BIT = {f"0x{code:x}": bool(code & 2) for code in range(0x80)}
_MEMBER_TOKEN = {**{f"type={name}": i for i, name in enumerate(RSS_MEMBERS)},
                 **{f"member={i}": i for i in range(len(RSS_MEMBERS))}}
_MEMBER_KEY = {0: "file", 1: "anon", 3: "shmem"}
_KIND_CODE = {name: i for i, name in enumerate(VMA_KINDS)}
_MEMBER_KIND = {0: VMA_KINDS.index("file_private"), 1: VMA_KINDS.index("anon_private"),
                3: VMA_KINDS.index("anon_shared")}
_CONSTRAINTS = ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY", "CONSTRAINT_MEMCG")
_MESSAGES = ("Out of memory", "Memory cgroup out of memory", "Out of memory (oom_kill_allocating_task)")


def _meminfo_values(r: ParsedOom) -> list[int]:
    """meminfo_sample fields (bytes, MEMINFO_FIELDS order) from a Mem-Info block."""
    from memtrace.tracer import MEMINFO_FIELDS

    mi = r.meminfo_pages
    pc = (r.pagecache_pages or 0) - (r.swapcache_pages or 0)
    anon = mi.get("active_anon", 0) + mi.get("inactive_anon", 0)
    values = {
        "mem_total": ((r.ram_pages or 0) - (r.reserved_pages or 0)), "mem_free": mi.get("free", 0),
        "cached": max(0, pc), "swap_cached": r.swapcache_pages or 0,
        "active": mi.get("active_anon", 0) + mi.get("active_file", 0),
        "inactive": mi.get("inactive_anon", 0) + mi.get("inactive_file", 0),
        "active_anon": mi.get("active_anon", 0), "inactive_anon": mi.get("inactive_anon", 0),
        "active_file": mi.get("active_file", 0), "inactive_file": mi.get("inactive_file", 0),
        "unevictable": mi.get("unevictable", 0), "dirty": mi.get("dirty", 0), "writeback": mi.get("writeback", 0),
        "anon_pages": max(0, anon - mi.get("shmem", 0)), "mapped": mi.get("mapped", 0), "shmem": mi.get("shmem", 0),
        "sreclaimable": mi.get("slab_reclaimable", 0), "sunreclaim": mi.get("slab_unreclaimable", 0),
        "slab": mi.get("slab_reclaimable", 0) + mi.get("slab_unreclaimable", 0),
        "kreclaimable": mi.get("slab_reclaimable", 0), "page_tables": mi.get("pagetables", 0),
    }
    out = [max(0, values.get(name, 0)) * PAGE_SIZE for _, name in MEMINFO_FIELDS]
    names = [name for _, name in MEMINFO_FIELDS]
    if r.swap_total_kb is not None:
        out[names.index("swap_total")] = r.swap_total_kb * 1024
    if r.swap_free_kb is not None:
        out[names.index("swap_free")] = max(0, r.swap_free_kb) * 1024
    return out


def _syscall_args(payload: str) -> dict[str, int]:
    """``name: value`` pairs of a syscall enter event (perf ``0x%08lx``, ftrace
    ``%lx`` or ``0x%lx``), values read as hex."""
    out: dict[str, int] = {}
    for part in payload.strip().rstrip(")").split(", "):
        key, sep, value = part.partition(": ")
        if sep:
            key = key.strip()
            out[key] = c_ulong(int(value.strip(), 16), key)
    return out


def _syscall_ret(payload: str) -> int:
    """The return value of a syscall exit event as the C ``long`` it is: printed as
    an unsigned ``0x%lx`` (errors as their two's complement) or a negative decimal."""
    words = payload.split()
    return to_signed64(in_range(_num(words[0] if words else payload), LONG_MIN, ULONG_MAX, "return value"))


def feed_line(builder: TraceBuilder, line: str, parse_line: Callable[[str], Any],
              on_unknown: Callable[[str], None] | None = None) -> Any:
    """The general path of a text importer for one line: blank and ``#`` lines count
    as comments, a line ``parse_line`` cannot read counts as unknown (after
    ``on_unknown`` had a look at it), and a parsed line becomes an event, learning
    the thread's group on the way. Returns the parsed tuple
    ``(comm, tid, tgid, ts_ns, name, payload)``, or None."""
    stripped = line.strip()
    if not stripped or stripped[0] == "#":
        builder.comment_line()
        return None
    try:
        parsed = parse_line(line)
    except ValueError:
        parsed = None
    if parsed is None:
        if on_unknown is not None:
            on_unknown(line)
        builder.unknown_line()
        return None
    comm, tid, tgid, ts_ns, name, payload = parsed
    if tgid is not None and tgid != tid:
        builder.thread(tid, tgid)
    builder.event(comm, tid, ts_ns, name, payload)
    return parsed
