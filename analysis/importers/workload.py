"""The replay workload derived from a real trace: a scenario that does what the trace shows.

:class:`WorkloadBuilder` turns the mmaps, munmaps, brks, faults and RSS counters of
each process (fed by the tracepoint mappers of :mod:`.mapping`) into the steps of a
memtrace scenario (``Scenario.to_dict()`` shape), which the importer writes into the
trace header as ``meta["workload"]`` so that ``memtrace replay`` re-runs it on a
simulated machine.

Simplified, on purpose: a real trace names no file, so every file mapping maps one
synthetic file (:data:`SYNTHETIC_FILE`); mappings whose address the trace never shows
become anonymous or shared mappings sized from the RSS counters; threads are merged
into the process whose mm they share; a middle part of a mapping that is unmapped
stays mapped (the simulator does not split mappings).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from memtrace.linux.limits import LONG_MAX, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX_5LEVEL
from memtrace.tracer.tracepoints import VMA_KINDS

from ..kernlog.parse import TaskRow

__all__ = [
    "MAP_ANONYMOUS",
    "MAP_FIXED",
    "MAP_PRIVATE",
    "MAP_SHARED",
    "MIN_SLEEP_NS",
    "SHRINK_SLACK_PAGES",
    "SLICE_NS",
    "SYNTHETIC_FILE",
    "TAIL_NS",
    "KnownMapping",
    "WorkloadBuilder",
    "WorkloadProcess",
]

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


class KnownMapping:
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


class WorkloadProcess:
    """One process of the derived workload (a thread group, as far as the trace
    tells: threads are merged into the process whose mm they share)."""

    def __init__(self, pid: int, comm: str, ts_ns: int) -> None:
        self.pid = pid
        self.comm = comm
        self.first_ts = ts_ns
        self.last_ts = ts_ns
        self.clock = ts_ns  # real time of the last emitted step
        self.steps: list[dict[str, Any]] = []
        self.vmas: list[KnownMapping] = []  # sorted by start
        self.starts: list[int] = []
        self.handles = 0
        self.brk: int | None = None
        self.heap: KnownMapping | None = None
        # Residency (pages) as rss_stat reports it for the current mm, and at the
        # last slice boundary.
        self.has_rss = False
        self.rss = {"anon": 0, "file": 0, "shmem": 0}
        self.mm_id: int | None = None  # the rss_stat mm_id of its current mm
        self.slice_start = ts_ns
        self.slice_faults: list[tuple[list[int], int, bool]] = []  # faults outside known mappings
        self.dirty: list[KnownMapping] = []  # known mappings with faults in this slice
        self.last_vma: KnownMapping | None = None
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

    def find_vma(self, addr: int) -> KnownMapping | None:
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

    def add_vma(self, v: KnownMapping) -> None:
        i = bisect.bisect_left(self.starts, v.start)
        self.starts.insert(i, v.start)
        self.vmas.insert(i, v)

    def remove_range(self, start: int, end: int) -> list[tuple[KnownMapping, int, int]]:
        """Unmap [start, end) from the known mappings, as the simulator can: a whole
        mapping is forgotten, a head or tail is cut off (the mapping's start or end
        moves). Returns each cut as (mapping, byte offset, byte length). A range in
        the middle of a mapping is left mapped (the simulator does not split
        mappings), so its virtual size stays counted."""
        self.last_vma = None
        out: list[tuple[KnownMapping, int, int]] = []
        keep: list[KnownMapping] = []
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
        self.procs: dict[int, WorkloadProcess] = {}
        self.order: list[int] = []
        self.t0: int | None = None
        self.t_end = 0
        self.max_file_bytes = 0
        self.notes: list[str] = []

    def proc(self, pid: int, comm: str, ts_ns: int) -> WorkloadProcess:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = WorkloadProcess(pid, comm, ts_ns)
            self.order.append(pid)
        return p

    def tick(self, p: WorkloadProcess, ts_ns: int) -> None:
        """An event of ``p`` at ``ts_ns``: close the slice when it is over."""
        if self.t0 is None or ts_ns < self.t0:
            self.t0 = ts_ns
        if ts_ns > self.t_end:
            self.t_end = ts_ns
        p.last_ts = ts_ns
        if ts_ns - p.slice_start >= SLICE_NS:
            self.close_slice(p, p.last_ts)
            p.slice_start = ts_ns

    # -- address-space events

    def mmap(self, p: WorkloadProcess, ts_ns: int, addr: int | None, length: int, prot: int, flags: int,
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
            v = KnownMapping(addr, addr + length, handle, kind)
            v.step = step
            p.add_vma(v)
        return handle

    def munmap(self, p: WorkloadProcess, ts_ns: int, addr: int, length: int) -> int:
        """Steps for an munmap; returns how many known mappings it touched."""
        self.close_slice(p, ts_ns)
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        return self._unmap(p, ts_ns, addr, addr + length)

    def _unmap(self, p: WorkloadProcess, ts_ns: int, start: int, end: int) -> int:
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

    def brk(self, p: WorkloadProcess, ts_ns: int, requested: int, result: int | None) -> None:
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
            p.heap = KnownMapping(new, new, "heap", "heap")
            return
        inc = new - p.brk
        if inc:
            p.at(ts_ns)
            p.steps.append({"op": "brk", "increment": inc, "on_enomem": "continue"})
            if p.heap is None:
                p.heap = KnownMapping(p.brk, new, "heap", "heap")
            else:
                p.heap.end = max(p.heap.start, p.heap.end + inc)
            p.brk = new

    def exec_(self, p: WorkloadProcess, ts_ns: int, comm: str) -> None:
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

    def close_slice(self, p: WorkloadProcess, ts_ns: int) -> None:
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
        touches: list[tuple[KnownMapping, list[int], list[int]]] = []
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

    def _grow(self, p: WorkloadProcess, ts_ns: int, cls: str, pages: int) -> None:
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

    def _shrink(self, p: WorkloadProcess, ts_ns: int, cls: str, pages: int) -> None:
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

    def from_task_row(self, row: TaskRow, memcg: str | None, ts_ns: int | None) -> None:
        """A process the trace does not show, known from a companion log's task table."""
        p = WorkloadProcess(row.pid, row.name or f"pid{row.pid}", ts_ns or 0)
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

