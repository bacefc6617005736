"""The replay workload derived from a real trace: a scenario that does what the trace shows.

:class:`WorkloadBuilder` turns the mmaps, munmaps, brks, madvises, mremaps,
mprotects, faults and RSS counters of each process (fed by the tracepoint mappers
of :mod:`.mapping`) into the steps of a memtrace scenario (``Scenario.to_dict()``
shape), which the importer writes into the trace header as ``meta["workload"]`` so
that ``memtrace replay`` re-runs it on a simulated machine. What the trace cannot
tell about the future of a killed process is not invented: its steps end at the
kill and :meth:`WorkloadBuilder.after_kill` records what was observed of it
(``meta["derived"]["after_kill"]``), from which ``memtrace.replay.assume`` makes the
steps of the assumption the user chose (``grow`` by default).

Simplified, on purpose: a real trace names no file, so every file mapping maps one
synthetic file (:data:`SYNTHETIC_FILE`); mappings whose address the trace never shows
become anonymous or shared mappings sized from the RSS counters; threads are merged
into their process; a hole punched in the middle of a mapping (munmap, or the
madvise fallback) splits it into two mappings of the workload, the upper part's
pages touched again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from memtrace.linux.limits import LONG_MAX, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX_5LEVEL
from memtrace.tracer.tracepoints import VMA_KINDS

from ..kernlog.parse import TaskRow

__all__ = [
    "CLASSES",
    "GROWTH_WINDOW_NS",
    "IO_FILE_DIR",
    "MADV_ADVICE",
    "MAP_ANONYMOUS",
    "MAP_FIXED",
    "MAP_PRIVATE",
    "MAP_SHARED",
    "MIN_SLEEP_NS",
    "MREMAP_FIXED",
    "MREMAP_MAYMOVE",
    "SHRINK_SLACK_PAGES",
    "SLICE_NS",
    "SYNTHETIC_FILE",
    "TAIL_NS",
    "VMA_STEPS",
    "InitialMemory",
    "KnownMapping",
    "SeenMemory",
    "WorkloadBuilder",
    "WorkloadProcess",
]

#: The workload is cut into slices of this much real time per process.
SLICE_NS = 10_000_000
#: Shorter gaps than this are not turned into sleep steps.
MIN_SLEEP_NS = 1_000_000
#: How long a process that was alive at the end of the trace keeps its memory in
#: the replayed workload after the trace's last event: the derived workload's end
#: (``meta["derived"]["end_ns"]``) is the last event plus this.
TAIL_NS = 1_000_000_000
#: Synthetic mappings shrink only when rss_stat falls by more than this (pages).
SHRINK_SLACK_PAGES = 16
#: The one file standing in for every mapped file (a real trace names none).
SYNTHETIC_FILE = "/memtrace-import/mapped-files"
#: The files read and written with read(2)/write(2) are named by their inode:
#: this, then ``DEV-INO`` (the trace names no path).
IO_FILE_DIR = "/memtrace-import/files"
#: A killed process's growth is measured over at most this much real time before
#: its kill (``meta["derived"]["after_kill"][i]["window_ns"]``).
GROWTH_WINDOW_NS = 1_000_000_000
#: Whether the derived workload uses the scenario steps ``madvise``, ``mremap`` and
#: ``mprotect`` (kernel/madvise.py, mremap.py, mprotect.py). Off (``import_trace(...,
#: vma_steps=False)``), the importer expresses what it can with mmap, munmap and
#: touch: MADV_DONTNEED/MADV_FREE drop the range's pages (a fresh mapping takes
#: its place), an mremap becomes a second mapping for the new part (the moved
#: pages keep their handle), an mprotect only widens the mmap's protection when a
#: write shows it was writable.
VMA_STEPS = True

#: The residency classes of the RSS counters (MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES).
CLASSES = ("anon", "file", "shmem")

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
#: include/uapi/linux/mman.h
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
#: madvise(2) behaviours (include/uapi/asm-generic/mman-common.h) the scenario's
#: ``madvise`` step takes, by number; MADV_DONTNEED_LOCKED (24) is a DONTNEED.
MADV_ADVICE = {3: "willneed", 4: "dontneed", 8: "free", 20: "cold", 21: "pageout", 24: "dontneed"}
MADV_POPULATE_READ, MADV_POPULATE_WRITE = 22, 23


def _prot_text(prot: int) -> str:
    return "".join(c for c, bit in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC)) if prot & bit)


def _zero() -> dict[str, int]:
    return {"anon": 0, "file": 0, "shmem": 0}


class SeenMemory(NamedTuple):
    """What a source beside the trace (a snapshot, a log's task table) saw of a
    process: when (trace clock; None: unknown), its resident pages by class, and,
    from a snapshot, its comm and memory cgroup."""

    ts_ns: int | None
    anon: int
    file: int
    shmem: int
    comm: str = ""
    memcg: str | None = None

    def pages(self, cls: str) -> int:
        return max(0, self.anon if cls == "anon" else self.file if cls == "file" else self.shmem)


@dataclass(frozen=True)
class InitialMemory:
    """What a process that predates the trace held when the trace started, and
    where that came from: a start-of-trace ``snapshot``, its first ``rss_stat``
    (the counter's value is the absolute size), or a companion log's ``task
    table`` row. Sizes in pages; ``ts_ns`` is when the source saw it (trace clock,
    None when unknown)."""

    nr_pages: Mapping[str, int]
    source: Mapping[str, str]
    ts_ns: Mapping[str, int | None]


class KnownMapping:
    """A mapping of the derived workload whose address range the trace shows.

    Page sets hold absolute page numbers: ``touched`` (faulted so far), of which
    ``written`` were written, and ``lazy`` (given back with MADV_FREE, still
    resident until reclaim takes them: a fault there touches them again).
    """

    __slots__ = ("code", "dirty", "end", "flags", "handle", "kind", "lazy", "new_r", "new_w", "offset",
                 "prot", "start", "step", "template", "touched", "written")

    def __init__(self, start: int, end: int, handle: str, kind: str) -> None:
        self.start = start
        self.end = end
        self.handle = handle
        self.kind = kind  # a VMA_KINDS value
        self.code = VMA_KINDS.index(kind)
        self.touched: set[int] = set()
        self.written: set[int] = set()
        self.lazy: set[int] = set()
        self.new_w: list[int] = []  # page numbers write-faulted in the current slice
        self.new_r: list[int] = []  # ... read-faulted
        self.dirty = False
        self.step: dict[str, Any] | None = None  # its mmap step in the workload
        self.template: dict[str, Any] = {}  # the mmap step's keys a part of it keeps (prot, shared, file)
        self.offset = 0  # file offset of ``start``, bytes (file mappings)
        self.prot = ""  # its protection now, as far as the trace tells
        self.flags = 0  # the mmap flags


class WorkloadProcess:
    """One process of the derived workload (a thread group, as far as the trace
    tells: threads are merged into their process)."""

    def __init__(self, pid: int, comm: str, ts_ns: int) -> None:
        self.pid = pid
        self.comm = comm
        self.first_ts = ts_ns
        self.last_ts = ts_ns
        self.clock = ts_ns  # real time of the last emitted step
        self.steps: list[dict[str, Any]] = []
        #: steps run before its first event: the memory it held when the trace
        #: started (a process that predates the trace)
        self.initial: list[dict[str, Any]] = []
        self.vmas: list[KnownMapping] = []  # sorted by start
        self.starts: list[int] = []
        self.handles = 0
        self.brk: int | None = None
        self.heap: KnownMapping | None = None
        # Residency (pages) as rss_stat reports it for the current mm; -1 for a
        # counter no rss_stat of the mm showed yet.
        self.has_rss = False
        self.rss = {"anon": -1, "file": -1, "shmem": -1}
        self.mm_id: int | None = None  # the rss_stat mm_id of its current mm
        self.mm_switched = False  # a new mm was seen: the exec under way already unmapped the old
        self.slice_start = ts_ns
        self.slice_faults: list[tuple[list[int], int, bool]] = []  # faults outside known mappings
        self.dirty: list[KnownMapping] = []  # known mappings with faults in this slice
        self.last_vma: KnownMapping | None = None
        self.unknown_pages: set[int] = set()
        self.synth: list[tuple[str, int, str]] = []  # (handle, pages, class) LIFO
        self.file_handle: str | None = None
        self.init_file_handle: str | None = None  # the synthetic file mapping of its initial memory
        self.file_pages = 0  # pages of the synthetic file mapping touched so far
        self.ended = False  # exited or was killed: its events stop counting
        self.from_log = False  # known only from a companion log's task table
        self.from_snapshot = False  # known only from a start-of-trace snapshot
        self.merged = False  # a thread found to share another process's mm
        self.born = False  # its fork (or clone) is in the trace
        self.parent: int | None = None
        self.kill_ts: int | None = None  # chosen as an OOM victim at
        self.killed_allocating = False  # ... while it was the allocating task
        self.exit_ts: int | None = None  # sched_process_exit
        self.exit_group_ts: int | None = None  # exit_group(2) entered: it ends on its own
        self.exit_code = 0
        self.known_total = _zero()  # resident pages of known mappings
        self.lazy_total = _zero()  # pages given back with MADV_FREE the RSS may count still
        self.synth_total = _zero()  # pages in synthetic mappings
        #: classes whose initial size is settled (seeded, or the first rss_stat seen)
        self.settled: set[str] = set()
        #: the memory it held when the trace started (pages, where from, when)
        self.init_pages = _zero()
        self.init_source: dict[str, str] = {}
        self.init_ts: dict[str, int | None] = {}
        #: the first value of each counter an rss_stat of its mm showed in another
        #: task's context (curr=0: at its teardown, say): (ts, pages)
        self.rss_other: dict[str, tuple[int, int]] = {}
        #: (ts, anon, file, shmem): the pages it held, at each slice that changed them
        self.history: list[tuple[int, int, int, int]] = []
        #: (ts, anon pages added): each slice that grew its anonymous memory
        self.growths: list[tuple[int, int]] = []
        #: file pages of read(2)/write(2) in this slice: inode -> (added, dirtied) page indices
        self.io: dict[int, tuple[set[int], set[int]]] = {}
        #: pages added in the last slice and not dirtied (yet): reads, unless dirtied now
        self.io_held: dict[int, set[int]] = {}
        self.uid = 0
        self.oom_score_adj = 0
        self.memcg: str | None = None  # None: not known (inherited from its parent)

    @property
    def predates(self) -> bool:
        """It was there before the trace started: no fork of it in the trace."""
        return not self.born

    @property
    def initial_memory(self) -> InitialMemory | None:
        """What it held when the trace started, if it predates the trace and any
        source told (None otherwise)."""
        if not self.init_source:
            return None
        return InitialMemory(dict(self.init_pages), dict(self.init_source), dict(self.init_ts))

    def held(self, cls: str) -> int:
        """Pages of class ``cls`` the derived workload holds for it now."""
        return self.known_total[cls] + self.synth_total[cls]

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

    def resort(self) -> None:
        self.vmas = [v for v in self.vmas if v.start < v.end]
        self.vmas.sort(key=lambda v: v.start)
        self.starts = [v.start for v in self.vmas]
        self.last_vma = None

    def overlapping(self, start: int, end: int) -> list[KnownMapping]:
        """The known mappings with a page in [start, end), by address."""
        return [v for v in self.vmas if v.start < end and start < v.end]


class WorkloadBuilder:
    """Derives a scenario (``Scenario.to_dict()`` shape) from the events of a trace.

    Per process, in real time order and cut into :data:`SLICE_NS` slices:

    - each mmap/munmap/brk the trace shows becomes an ``mmap``/``munmap``/``brk``
      step (anonymous or file, private or shared, with its protection and length);
      a file mapping maps :data:`SYNTHETIC_FILE` (the trace names no file); an
      munmap of the middle of a mapping splits it;
    - madvise, mremap and mprotect of a known mapping become ``madvise``,
      ``mremap`` and ``mprotect`` steps (with :data:`VMA_STEPS`; else what mmap,
      munmap and touch can say of them, see there); MADV_POPULATE_* are touches;
    - faults inside a mapping whose address is known (from ``sys_exit_mmap``, a
      MAP_FIXED hint or an mremap's result) become ``touch`` steps of that mapping's
      pages (write faults as writes);
    - resident memory the trace shows growing by other means (rss_stat counters, or
      faults at addresses outside any known mapping when there is no rss_stat)
      becomes a new anonymous mapping touched in full, or more pages of a shared
      mapping of the synthetic file; rss_stat falling unmaps those again;
    - a process that predates the trace starts with the memory it held then
      (:class:`InitialMemory`: a start-of-trace snapshot, else for each counter the
      earliest of its first rss_stat and a companion log's task-table row);
    - gaps of real time become ``sleep`` steps; an exec unmaps everything (a
      rename keeps every mapping); an exit_group is an ``exit`` step; a process
      alive at the end (or ended by a signal after an OOM kill: the end of the
      experiment, not its own plan) sleeps until :data:`TAIL_NS` after the trace's
      last event; an OOM victim's steps end at its kill (:meth:`after_kill`).

    A companion kernel log adds the memory cgroup of a memcg OOM (its limit becomes
    ``[[cgroup]] max`` and every task of its table a member) and the processes of its
    task tables the trace does not show (their RSS mapped and touched at start); a
    start-of-trace snapshot adds the memory cgroups and limits of the processes and
    the processes of those cgroups the trace does not show.
    """

    def __init__(self, *, vma_steps: bool = VMA_STEPS) -> None:
        self.procs: dict[int, WorkloadProcess] = {}
        self.order: list[int] = []
        self.t0: int | None = None
        self.t_end = 0
        self.max_file_bytes = 0
        self.notes: list[str] = []
        self.vma_steps = vma_steps
        #: pids whose fork the trace showed, and their parent
        self.forked: dict[int, int] = {}
        #: an exit_group was seen (the input traces it: an exit without one is a signal's)
        self.exit_group_traced = False
        #: what the start-of-trace snapshot, and the companion log's first task table
        #: listing it, saw of each pid
        self.snapshot_rows: dict[int, SeenMemory] = {}
        self.log_rows: dict[int, SeenMemory] = {}
        #: pid -> the scenario name it was given (by :meth:`scenario`), and the
        #: number of steps up to its kill (OOM victims)
        self.names: dict[int, str] = {}
        self.steps_at_kill: dict[int, int] = {}
        #: counts of what was derived (``meta["derived"]["steps"]``)
        self.counts: dict[str, int] = {}
        #: the files of read(2)/write(2): inode -> [path, size read before any write
        #: (bytes: it was on disk at boot), written in the trace, unlinked]
        self.io_files: dict[int, list[Any]] = {}

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def proc(self, pid: int, comm: str, ts_ns: int) -> WorkloadProcess:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = WorkloadProcess(pid, comm, ts_ns)
            self.order.append(pid)
            parent = self.forked.get(pid)
            if parent is not None:
                p.born, p.parent = True, parent
            else:
                self._seed_from_snapshot(p)
        return p

    def fork(self, parent: int, child: int) -> None:
        """The trace shows ``parent`` forking ``child`` (a process, not a thread)."""
        self.forked[child] = parent
        p = self.procs.get(child)
        if p is not None and not p.steps and not p.initial:
            p.born, p.parent = True, parent

    def tick(self, p: WorkloadProcess, ts_ns: int) -> None:
        """An event of ``p`` at ``ts_ns``: close the slice when it is over (its steps
        at the slice's last event, not at this one)."""
        if self.t0 is None or ts_ns < self.t0:
            self.t0 = ts_ns
        if ts_ns > self.t_end:
            self.t_end = ts_ns
        if ts_ns - p.slice_start >= SLICE_NS:
            self.close_slice(p, max(p.last_ts, p.clock))
            p.slice_start = ts_ns
        p.last_ts = ts_ns

    # -- address-space events

    def mmap(self, p: WorkloadProcess, ts_ns: int, addr: int | None, length: int, prot: int, flags: int,
             anonymous: bool, offset: int) -> str:
        """Steps for an mmap; returns the new mapping's handle ('' for none: also for
        a mapping the kernel refuses whatever the trace says, one longer than any
        user address space or a file range past MAX_LFS_FILESIZE, as
        mm/mmap.c:do_mmap() and file_mmap_ok() do)."""
        if p.ended:
            return ""
        self.close_slice(p, ts_ns)
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        if length <= 0 or length > TASK_SIZE_MAX_5LEVEL or (not anonymous and offset + length > LONG_MAX):
            return ""
        shared = bool(flags & MAP_SHARED) and not flags & MAP_PRIVATE
        kind = ("anon_shared" if shared else "anon_private") if anonymous else (
            "file_shared" if shared else "file_private")
        if addr is not None and flags & MAP_FIXED:
            self._unmap(p, ts_ns, addr, addr + length)
        template: dict[str, Any] = {"prot": _prot_text(prot)}
        if shared:
            template["shared"] = True
        if not anonymous:
            template["file"] = SYNTHETIC_FILE
        offset = offset // PAGE_SIZE * PAGE_SIZE if not anonymous else 0
        step = self._map(p, ts_ns, template, length, offset)
        if addr is not None:
            v = KnownMapping(addr, addr + length, step["handle"], kind)
            v.step, v.template, v.offset, v.prot, v.flags = step, template, offset, template["prot"], flags
            p.add_vma(v)
        return str(step["handle"])

    def _map(self, p: WorkloadProcess, ts_ns: int, template: Mapping[str, Any], length: int,
             offset: int) -> dict[str, Any]:
        """An mmap step of ``length`` bytes as ``template`` says (at file ``offset``)."""
        p.at(ts_ns)
        step: dict[str, Any] = {"op": "mmap", "handle": p.new_handle(), "length": length,
                                "prot": template["prot"]}
        if template.get("shared"):
            step["shared"] = True
        if "file" in template:
            step["file"] = template["file"]
            if offset:
                step["offset"] = offset
            self.max_file_bytes = max(self.max_file_bytes, offset + length)
        step["on_enomem"] = "continue"
        p.steps.append(step)
        return step

    def munmap(self, p: WorkloadProcess, ts_ns: int, addr: int, length: int) -> int:
        """Steps for an munmap; returns how many known mappings it touched."""
        if p.ended:
            return 0
        self.close_slice(p, ts_ns)
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        return self._unmap(p, ts_ns, addr, addr + length)

    @staticmethod
    def _by_class(v: KnownMapping, pages: set[int]) -> dict[str, int]:
        """How many of ``pages`` (resident pages of ``v``) each RSS counter counts."""
        out = _zero()
        if v.kind == "file_private":  # a written private file page is an anonymous copy
            written = len(pages & v.written)
            out["anon"], out["file"] = written, len(pages) - written
        else:
            out[_KIND_CLASS[v.kind]] = len(pages)
        return out

    def _drop_pages(self, p: WorkloadProcess, v: KnownMapping, lo: int, hi: int) -> None:
        """Pages [lo, hi) (page numbers) of ``v`` are no longer resident: they leave
        its page sets and the process's known (or lazily freed) residency."""
        gone = {pg for pg in v.touched if lo <= pg < hi}
        if gone:
            lazy = gone & v.lazy
            for cls, n in self._by_class(v, gone - lazy).items():
                p.known_total[cls] -= n
            for cls, n in self._by_class(v, lazy).items():
                p.lazy_total[cls] = max(0, p.lazy_total[cls] - n)
            v.touched -= gone
            v.written -= gone
        v.lazy = {pg for pg in v.lazy if not lo <= pg < hi}

    def _lazy_free(self, p: WorkloadProcess, v: KnownMapping, lo: int, hi: int) -> dict[str, int]:
        """MADV_FREE of pages [lo, hi) of ``v``: they stay counted by the RSS until
        reclaim frees them (mm/vmscan.c: a clean lazyfree anon page is discarded),
        so they move from the known residency to the lazily freed one."""
        pages = {pg for pg in v.touched if lo <= pg < hi} - v.lazy
        counts = self._by_class(v, pages)
        for cls, n in counts.items():
            p.known_total[cls] -= n
            p.lazy_total[cls] += n
        v.lazy |= pages
        return counts

    def _unmap(self, p: WorkloadProcess, ts_ns: int, start: int, end: int) -> int:
        """Unmap [start, end) of the known mappings: a whole mapping goes, a head or
        tail is cut off, and a hole in the middle splits the mapping (the simulator
        unmaps only ends): its tail goes and the part above the hole becomes a new
        mapping whose resident pages are touched again."""
        hit = p.overlapping(start, end)
        for v in hit:
            lo, hi = max(v.start, start), min(v.end, end)
            self._drop_pages(p, v, lo >> PAGE_SHIFT, hi >> PAGE_SHIFT)
            p.at(ts_ns)
            if lo == v.start and hi == v.end:
                p.steps.append({"op": "munmap", "handle": v.handle})
                v.end = v.start  # dropped by resort()
                continue
            if lo == v.start:
                p.steps.append({"op": "munmap", "handle": v.handle, "offset": 0, "length": hi - lo})
                v.offset += hi - v.start
                v.start = hi
                continue
            old_end = v.end
            p.steps.append({"op": "munmap", "handle": v.handle, "offset": lo - v.start, "length": old_end - lo})
            v.end = lo
            if hi < old_end:  # a hole in the middle: the part above it is mapped anew
                self.count("munmap_split")
                upper = self._piece(p, ts_ns, v, hi, old_end)
                self._retouch(p, v, upper)
        p.resort()
        return len(hit)

    def _piece(self, p: WorkloadProcess, ts_ns: int, like: KnownMapping, start: int, end: int) -> KnownMapping:
        """A new known mapping [start, end) of the same kind and protection as
        ``like`` (at the matching file offset), mapped by a new mmap step."""
        offset = like.offset + (start - like.start) if "file" in like.template else 0
        template = dict(like.template, prot=like.prot or like.template.get("prot", "rw"))
        step = self._map(p, ts_ns, template, end - start, offset)
        v = KnownMapping(start, end, step["handle"], like.kind)
        v.step, v.template, v.offset, v.prot, v.flags = step, template, offset, template["prot"], like.flags
        p.add_vma(v)
        return v

    def _retouch(self, p: WorkloadProcess, old: KnownMapping, new: KnownMapping) -> None:
        """The pages of ``old`` inside ``new``'s range move to ``new`` and are touched
        there again (as written or read)."""
        lo, hi = new.start >> PAGE_SHIFT, new.end >> PAGE_SHIFT
        pages = {pg for pg in old.touched if lo <= pg < hi}
        written = pages & old.written
        new.touched, new.written, new.lazy = pages, written, {pg for pg in old.lazy if lo <= pg < hi}
        old.touched -= pages
        old.written -= written
        old.lazy -= new.lazy
        for write, group in ((True, written), (False, pages - written)):
            for first, n in _runs(sorted(pg - lo for pg in group)):
                p.steps.append({"op": "touch", "handle": new.handle, "offset": first * PAGE_SIZE,
                                "length": n * PAGE_SIZE, **({"write": True} if write else {})})

    def brk(self, p: WorkloadProcess, ts_ns: int, requested: int, result: int | None) -> None:
        """A brk call: the break moves from the last known one to ``result`` (or
        ``requested`` when the return is not traced). A break past any user address
        space (:data:`TASK_SIZE_MAX_5LEVEL`) is one the kernel refuses: nothing moves."""
        if p.ended:
            return
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

    def madvise(self, p: WorkloadProcess, ts_ns: int, start: int, length: int, behavior: int) -> int:
        """Steps for a successful madvise(2) of [start, start+length); returns how
        many known mappings it concerned. DONTNEED, FREE and PAGEOUT forget the
        range's pages (a later fault there touches them again; FREE keeps them
        counted as resident, as the kernel does until reclaim frees them)."""
        if p.ended:
            return 0
        self.close_slice(p, ts_ns)
        end = start + (-(-length // PAGE_SIZE) * PAGE_SIZE)
        advice = MADV_ADVICE.get(behavior)
        hit = p.overlapping(start, end)
        heap = p.heap
        if heap is not None and heap.start < end and start < heap.end:
            hit.append(heap)
        for v in hit:
            lo, hi = max(v.start, start), min(v.end, end)
            if behavior in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
                # mm/madvise.c madvise_populate(): faults the range in, in the kernel.
                first, last = lo >> PAGE_SHIFT, hi >> PAGE_SHIFT
                write = behavior == MADV_POPULATE_WRITE
                (v.new_w if write else v.new_r).extend(range(first, last))
                if not v.dirty:
                    v.dirty = True
                    p.dirty.append(v)
                self.count("madvise_populate")
                continue
            if advice is None:
                self.count(f"madvise_{behavior}_ignored")
                continue
            first, last = lo >> PAGE_SHIFT, hi >> PAGE_SHIFT
            if self.vma_steps:
                p.at(ts_ns)
                p.steps.append({"op": "madvise", "handle": v.handle, "offset": lo - v.start, "length": hi - lo,
                                "advice": advice})
                self.count(f"madvise_{advice}")
            elif advice in ("dontneed", "free") and v is not heap:
                # Without a madvise step: the range's pages go at once (for FREE the
                # kernel frees them only when reclaim needs them: the RSS still
                # counts them until then), by a fresh mapping in its place.
                self.count(f"madvise_{advice}_as_munmap")
                lazy = self._by_class(v, {pg for pg in v.touched if first <= pg < last} - v.lazy)
                self._unmap(p, ts_ns, lo, hi)
                self._piece(p, ts_ns, v, lo, hi)
                p.resort()
                if advice == "free":
                    for cls, n in lazy.items():
                        p.lazy_total[cls] += n
                continue
            else:
                self.count(f"madvise_{advice}_not_replayed")
            if advice == "free":
                self._lazy_free(p, v, first, last)
            elif advice in ("dontneed", "pageout"):
                self._drop_pages(p, v, first, last)
        return len(hit)

    def mprotect(self, p: WorkloadProcess, ts_ns: int, start: int, length: int, prot: int) -> int:
        """Steps for a successful mprotect(2); returns how many known mappings it concerned."""
        if p.ended:
            return 0
        self.close_slice(p, ts_ns)
        end = start + (-(-length // PAGE_SIZE) * PAGE_SIZE)
        text = _prot_text(prot)
        hit = p.overlapping(start, end)
        for v in hit:
            lo, hi = max(v.start, start), min(v.end, end)
            if self.vma_steps:
                p.at(ts_ns)
                p.steps.append({"op": "mprotect", "handle": v.handle, "offset": lo - v.start, "length": hi - lo,
                                "prot": text})
                self.count("mprotect")
            # Part of a mapping keeps one protection here: the widest.
            v.prot = text if (lo == v.start and hi == v.end) else "".join(c for c in "rwx" if c in v.prot + text)
        return len(hit)

    def mremap(self, p: WorkloadProcess, ts_ns: int, addr: int, old_len: int, new_len: int, flags: int,
               new_addr: int) -> int:
        """Steps for a successful mremap(2) that returned ``new_addr``; returns how
        many known mappings it concerned. The pages move with the mapping: faults
        at the new address land in it."""
        if p.ended:
            return 0
        self.close_slice(p, ts_ns)
        old_len = -(-old_len // PAGE_SIZE) * PAGE_SIZE
        new_len = -(-new_len // PAGE_SIZE) * PAGE_SIZE
        old_end = addr + old_len
        if not p.overlapping(addr, old_end) or new_len <= 0:
            return 0
        # Only what is in the old range moves or changes size: mappings that reach
        # beyond it are split at its ends first.
        self._split_at(p, ts_ns, addr)
        self._split_at(p, ts_ns, old_end)
        hit = p.overlapping(addr, old_end)
        if flags & MREMAP_FIXED and new_addr != addr:
            for v in p.overlapping(new_addr, new_addr + new_len):
                if v not in hit:  # MREMAP_FIXED replaces what was there
                    self._unmap(p, ts_ns, max(v.start, new_addr), min(v.end, new_addr + new_len))
        if self.vma_steps and len(hit) == 1:
            v = hit[0]
            p.at(ts_ns)
            step: dict[str, Any] = {"op": "mremap", "handle": v.handle, "length": new_len}
            if flags & MREMAP_MAYMOVE:
                step["maymove"] = True
            p.steps.append(step)
            self.count("mremap")
            if new_len < old_len:
                self._drop_pages(p, v, (addr + new_len) >> PAGE_SHIFT, old_end >> PAGE_SHIFT)
            self._move(v, new_addr - addr)
            v.end = v.start + new_len
            p.resort()
            return 1
        # Without an mremap step: the pages keep their handles wherever they move
        # (addresses are the importer's bookkeeping), a smaller size unmaps the
        # tail, a larger one adds a mapping for the new part.
        self.count("mremap_as_mmap")
        last = max(hit, key=lambda v: v.end)
        delta = new_addr - addr
        for v in hit:
            self._move(v, delta)
        p.resort()
        if new_len < old_len:
            self._unmap(p, ts_ns, new_addr + new_len, new_addr + old_len)
        elif new_len > old_len:
            self._piece(p, ts_ns, last, new_addr + old_len, new_addr + new_len)
            p.resort()
        return len(hit)

    def _split_at(self, p: WorkloadProcess, ts_ns: int, at: int) -> None:
        """The known mapping around address ``at`` (not at its start) becomes two:
        its part above ``at`` is unmapped and mapped anew, its pages touched again."""
        for v in p.vmas:
            if v.start < at < v.end:
                old_end = v.end
                p.at(ts_ns)
                p.steps.append({"op": "munmap", "handle": v.handle, "offset": at - v.start, "length": old_end - at})
                v.end = at
                upper = self._piece(p, ts_ns, v, at, old_end)
                self._retouch(p, v, upper)
                self.count("split")
                p.resort()
                return

    @staticmethod
    def _move(v: KnownMapping, delta: int) -> None:
        """``v`` moved by ``delta`` bytes (a page multiple), its pages with it."""
        if not delta:
            return
        shift = delta >> PAGE_SHIFT
        v.start += delta
        v.end += delta
        v.touched = {pg + shift for pg in v.touched}
        v.written = {pg + shift for pg in v.written}
        v.lazy = {pg + shift for pg in v.lazy}
        v.new_w = [pg + shift for pg in v.new_w]
        v.new_r = [pg + shift for pg in v.new_r]

    def exec_(self, p: WorkloadProcess, ts_ns: int, comm: str) -> None:
        """An exec: the old address space goes (every mapping unmapped), and the
        new image's counters start at zero."""
        self.close_slice(p, ts_ns)
        handles = [v.handle for v in p.vmas] + [h for h, _, _ in p.synth]
        handles += [h for h in (p.init_file_handle, p.file_handle) if h is not None]
        for h in dict.fromkeys(handles):
            p.at(ts_ns)
            p.steps.append({"op": "munmap", "handle": h})
        p.vmas, p.starts, p.synth = [], [], []
        p.last_vma, p.dirty = None, []
        p.file_handle, p.init_file_handle, p.file_pages = None, None, 0
        p.heap, p.brk = None, None
        p.unknown_pages = set()
        p.rss = _zero()
        p.known_total = _zero()
        p.lazy_total = _zero()
        p.synth_total = _zero()
        p.settled = set(CLASSES)
        p.mm_id = None
        p.comm = comm

    def rename(self, p: WorkloadProcess, comm: str) -> None:
        """A comm change without an exec: the mappings stay."""
        p.comm = comm

    def exit_group(self, p: WorkloadProcess, ts_ns: int, code: int) -> None:
        """exit_group(2) entered: the process ends on its own (an ``exit`` step)."""
        self.exit_group_traced = True
        if p.ended or p.exit_group_ts is not None:
            return
        self.close_slice(p, ts_ns)
        p.exit_group_ts = ts_ns
        p.exit_code = code
        p.at(ts_ns)
        p.steps.append({"op": "exit", **({"code": code} if code else {})})

    def exit(self, p: WorkloadProcess, ts_ns: int) -> None:
        """sched_process_exit: its events stop (the teardown's counters are not steps)."""
        self.close_slice(p, ts_ns)
        if not p.ended and not p.merged and (p.io or p.io_held):
            self._io_steps(p, ts_ns, final=True)
        p.exit_ts = ts_ns
        p.ended = True

    def kill(self, p: WorkloadProcess, ts_ns: int, allocating: bool) -> None:
        """Chosen as an OOM victim: its derived steps end here."""
        if p.kill_ts is not None:
            return
        self.close_slice(p, ts_ns)
        if not p.ended and not p.merged and (p.io or p.io_held):
            self._io_steps(p, ts_ns, final=True)
        p.kill_ts = ts_ns
        p.killed_allocating = allocating
        p.ended = True

    # -- file I/O

    def file_pages(self, p: WorkloadProcess, dev: str, ino: int, index: int, nr_pages: int, *,
                   dirtied: bool) -> None:
        """``nr_pages`` page-cache pages of inode ``ino`` from ``index`` entered the
        page cache in ``p``'s context (a read(2), or readahead of a mapped file), or
        (``dirtied``) were dirtied there (a write(2), or a write to a shared mapping)."""
        if p.ended or p.merged:
            return
        if (index + nr_pages) * PAGE_SIZE > LONG_MAX:
            # Past MAX_LFS_FILESIZE (include/linux/fs.h: LLONG_MAX on 64-bit): no
            # file offset a read or write step can name (an unreadable index).
            self.count("file_pages_past_max_lfs_filesize")
            return
        if ino not in self.io_files:
            self.io_files[ino] = [f"{IO_FILE_DIR}/{dev.replace(':', '-')}-{ino:x}", 0, False, False]
        added, dirty = p.io.setdefault(ino, (set(), set()))
        (dirty if dirtied else added).update(range(index, index + nr_pages))

    def file_gone(self, p: WorkloadProcess, ts_ns: int, ino: int) -> None:
        """Page cache of ``ino`` dropped in ``p``'s context outside reclaim: a file the
        trace wrote is taken as unlinked (an ``unlink`` step, once)."""
        f = self.io_files.get(ino)
        if p.ended or p.merged or f is None or not f[2] or f[3]:
            return
        self.close_slice(p, ts_ns)
        f[3] = True
        p.at(ts_ns)
        p.steps.append({"op": "unlink", "file": f[0]})
        self.count("unlink")

    def _io_steps(self, p: WorkloadProcess, ts_ns: int, *, final: bool = False) -> None:
        """The slice's file pages as read and write steps: runs of dirtied pages are
        writes; pages added and not dirtied are reads, once the next slice has not
        dirtied them either (a write(2) adds a folio, then dirties it: the two may
        fall on either side of a slice's end)."""
        io, p.io = p.io, {}
        held, p.io_held = p.io_held, {}
        for ino in sorted(set(io) | set(held)):
            added, dirty = io.get(ino, (set(), set()))
            reads = held.get(ino, set()) - dirty
            later = added - dirty
            if final:
                reads |= later
            elif later:
                p.io_held[ino] = later
            f = self.io_files[ino]
            for op, pages in (("write", dirty), ("read", reads)):
                for first, n in _runs(sorted(pages)):
                    if op == "read" and not f[2]:
                        f[1] = max(f[1], (first + n) * PAGE_SIZE)  # on disk before the trace
                    p.at(ts_ns)
                    p.steps.append({"op": op, "file": f[0], "offset": first * PAGE_SIZE, "length": n * PAGE_SIZE})
                    self.count(f"file_{op}")
                if op == "write" and pages:
                    f[2] = True

    def boot_files(self) -> list[dict[str, Any]]:
        """The files read before the trace wrote them: on disk at boot, as large as
        what was read of them."""
        return [{"path": f[0], "size": f[1]} for _, f in sorted(self.io_files.items()) if f[1] > 0]

    # -- residency

    def close_slice(self, p: WorkloadProcess, ts_ns: int) -> None:
        """Turn the slice's faults and counter changes into steps.

        Residency is kept cumulative: the synthetic mappings hold what rss_stat
        shows beyond the resident pages of known mappings; they shrink only by more
        than :data:`SHRINK_SLACK_PAGES` (a fault and its counter update may fall on
        either side of a slice boundary).
        """
        if p.merged or p.ended:
            p.slice_faults = []
            for v in p.dirty:
                v.new_w, v.new_r, v.dirty = [], [], False
            p.dirty = []
            p.io, p.io_held = {}, {}
            return
        if p.io or p.io_held:
            self._io_steps(p, ts_ns)
        unknown_new = _zero()
        anon_before = p.held("anon")
        touches: list[tuple[KnownMapping, list[int], list[int]]] = []
        for v in p.dirty:
            base = v.start >> PAGE_SHIFT
            resident = v.touched - v.lazy
            writes = set(v.new_w) - resident
            reads = set(v.new_r) - resident - writes
            v.lazy -= writes | reads  # a fault on a lazily freed page: reclaim had taken it
            v.touched |= writes | reads
            v.written |= writes
            v.new_w, v.new_r, v.dirty = [], [], False
            if not writes and not reads:
                continue
            for cls, n in self._by_class(v, writes | reads).items():
                p.known_total[cls] += n
            touches.append((v, sorted(pg - base for pg in writes), sorted(pg - base for pg in reads)))
            if writes and v.step is not None:
                prot = v.prot if self.vma_steps else v.step["prot"]
                if "w" not in prot:
                    # Written, so it was made writable by an mprotect the trace does not show.
                    v.step["prot"] = "".join(c for c in "rwx" if c in v.step["prot"] + "w")
                    v.prot = "".join(c for c in "rwx" if c in v.prot + "w")
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
        for cls in CLASSES:
            first = cls not in p.settled
            if first and p.predates and p.rss[cls] >= 0:
                # What it held when the trace started: the snapshot's, when that was
                # taken before this first counter; else this counter (below).
                snap = self._snapshot_pages(p, cls, ts_ns)
                if snap is not None:
                    self._grow(p, snap[1] if snap[1] is not None else p.first_ts, cls, snap[0], initial="snapshot")
                    first = False
            if p.rss[cls] >= 0:
                # Lazily freed pages leave the counter first when it falls (reclaim).
                p.lazy_total[cls] = min(p.lazy_total[cls], max(0, p.rss[cls] - p.known_total[cls]))
                delta = max(0, p.rss[cls] - p.known_total[cls] - p.lazy_total[cls]) - p.synth_total[cls]
                p.settled.add(cls)
                if -SHRINK_SLACK_PAGES <= delta < 0:
                    continue
            elif not p.has_rss:
                delta = unknown_new[cls]
            else:
                continue
            if delta > 0:
                # The first counter of a process that predates the trace is what it
                # held when the trace started (the counter is an absolute size).
                self._grow(p, ts_ns, cls, delta,
                           initial="first rss_stat" if first and p.predates and p.rss[cls] >= 0 else "")
            elif delta < 0:
                self._shrink(p, ts_ns, cls, -delta)
        held = (p.held("anon"), p.held("file"), p.held("shmem"))
        if not p.history or p.history[-1][1:] != held:
            p.history.append((ts_ns, *held))
        if held[0] > anon_before:
            p.growths.append((ts_ns, held[0] - anon_before))

    def _grow(self, p: WorkloadProcess, ts_ns: int, cls: str, pages: int, *, initial: str = "") -> None:
        """``pages`` more of class ``cls`` in synthetic mappings; with ``initial``
        (the source that told), in ``p.initial``: what it held when the trace started."""
        steps = p.initial if initial else p.steps
        if initial:
            p.init_source[cls] = initial
            p.init_ts[cls] = ts_ns
        if pages <= 0:
            return
        if not initial:
            p.at(ts_ns)
        else:
            p.init_pages[cls] += pages
            p.init_source[cls] = initial
            p.init_ts[cls] = ts_ns
        if cls == "file":
            handle = p.init_file_handle if initial else p.file_handle
            if handle is None:
                # (its initial memory maps the file by a handle of its own: those
                # steps run before any other)
                handle = p.new_handle("files")
                if initial:
                    p.init_file_handle = handle
                else:
                    p.file_handle = handle
                steps.append({"op": "mmap", "handle": handle, "length": "@FILE", "prot": "r",
                              "shared": True, "file": SYNTHETIC_FILE, "on_enomem": "continue"})
            start = p.file_pages
            p.file_pages += pages
            self.max_file_bytes = max(self.max_file_bytes, p.file_pages * PAGE_SIZE)
            steps.append({"op": "touch", "handle": handle, "offset": start * PAGE_SIZE,
                          "length": pages * PAGE_SIZE})
            p.synth_total["file"] += pages
            return
        handle = p.new_handle("anon" if cls == "anon" else "shm")
        step: dict[str, Any] = {"op": "mmap", "handle": handle, "length": pages * PAGE_SIZE, "prot": "rw",
                                "on_enomem": "continue"}
        if cls == "shmem":
            step["shared"] = True
        steps.append(step)
        steps.append({"op": "touch", "handle": handle, "write": True})
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

    # -- what a process held before the trace

    def other_rss(self, p: WorkloadProcess, ts_ns: int, cls: str, pages: int) -> None:
        """An rss_stat of ``p``'s mm in another task's context (curr=0): its first
        value per counter is a source of the process's initial memory."""
        if cls not in p.rss_other:
            p.rss_other[cls] = (ts_ns, pages)

    def _seed_from_snapshot(self, p: WorkloadProcess) -> None:
        """A process first seen in the trace, whose fork the trace has not shown,
        that a start-of-trace snapshot lists: its memory cgroup (its memory is
        settled counter by counter, see :meth:`_snapshot_pages`)."""
        row = self.snapshot_rows.get(p.pid)
        if row is not None and row.memcg is not None and p.memcg is None:
            p.memcg = row.memcg

    def _snapshot_pages(self, p: WorkloadProcess, cls: str, ts_ns: int) -> tuple[int, int | None] | None:
        """The snapshot's size of counter ``cls`` of ``p`` (pages, and the snapshot's
        time), when the snapshot lists it and was taken by ``ts_ns`` (a snapshot
        taken without a time counts as taken at the start)."""
        row = self.snapshot_rows.get(p.pid)
        if row is None or p.born:
            return None
        if row.ts_ns is not None and row.ts_ns > ts_ns:
            return None
        return row.pages(cls), row.ts_ns

    def _settle_initial(self, p: WorkloadProcess) -> None:
        """At the end: the counters of a process that predates the trace that no
        rss_stat of its own showed take the earliest other source: a task-table row
        of the companion log, or an rss_stat in another task's context (its
        teardown, say)."""
        if not p.predates or p.from_log or p.from_snapshot:
            return
        row = self.log_rows.get(p.pid)
        for cls in CLASSES:
            if cls in p.settled:
                continue
            options: list[tuple[int, int, str, int | None, int]] = []  # (order, rank, source, ts, pages)
            snap = self._snapshot_pages(p, cls, LONG_MAX)
            if snap is not None:
                options.append((snap[1] if snap[1] is not None else -1, -1, "snapshot", snap[1], snap[0]))
            if row is not None:
                options.append((row.ts_ns if row.ts_ns is not None else LONG_MAX, 0, "task table", row.ts_ns,
                                row.pages(cls)))
            other = p.rss_other.get(cls)
            if other is not None:
                options.append((other[0], 1, "rss_stat at its exit", other[0], other[1]))
            if not options:
                continue
            _, _, source, ts, pages = min(options)
            # What the source saw less what the trace showed it making by then.
            made = self._held_at(p, cls, ts if ts is not None else LONG_MAX)
            self._grow(p, ts if ts is not None else p.first_ts, cls, max(0, pages - made), initial=source)
            p.init_ts[cls] = ts
            p.settled.add(cls)

    @staticmethod
    def _held_at(p: WorkloadProcess, cls: str, ts_ns: int) -> int:
        """Pages of class ``cls`` the derived workload held for ``p`` at ``ts_ns``."""
        held = 0
        i = CLASSES.index(cls)
        for entry in p.history:
            if entry[0] > ts_ns:
                break
            held = entry[1 + i]
        return held

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
        sizes = {"anon": max(0, anon), "file": max(0, file), "shmem": max(0, shmem)}
        for cls in ("anon", "shmem", "file"):
            self._grow(p, p.first_ts, cls, sizes[cls], initial="task table")
        p.from_log = True
        self.procs[row.pid] = p
        self.order.append(row.pid)

    def from_snapshot_row(self, pid: int) -> None:
        """A process the trace does not show, listed by the start-of-trace snapshot."""
        row = self.snapshot_rows[pid]
        p = WorkloadProcess(pid, row.comm or f"pid{pid}", row.ts_ns or 0)
        p.memcg = row.memcg
        p.from_snapshot = True
        for cls in ("anon", "shmem", "file"):
            self._grow(p, p.first_ts, cls, row.pages(cls), initial="snapshot")
        self.procs[pid] = p
        self.order.append(pid)

    def finish(self) -> None:
        for pid in self.order:
            p = self.procs[pid]
            if not p.from_log and not p.from_snapshot:
                self.close_slice(p, p.last_ts)
                if not p.ended and not p.merged and (p.io or p.io_held):
                    self._io_steps(p, p.last_ts, final=True)
                self._settle_initial(p)

    def memcg_of(self, pid: int) -> str:
        """The memory cgroup of ``pid``: its own, else its parent's (a child starts
        in its parent's cgroup), else the root."""
        seen: set[int] = set()
        p = self.procs.get(pid)
        while p is not None and pid not in seen:
            if p.memcg is not None:
                return p.memcg
            seen.add(pid)
            parent = p.parent if p.parent is not None else self.forked.get(pid)
            if parent is None:
                break
            pid, p = parent, self.procs.get(parent)
        return "/"

    def _ended_on_its_own(self, p: WorkloadProcess, first_kill: int | None) -> bool:
        """Whether the process's end in the trace is its own: an exit_group, or (when
        the input does not trace exit_group) any exit that was no OOM kill. An end
        by a signal after an OOM kill is taken as the end of the experiment (a
        supervisor cleaning up), not as the process's plan."""
        if p.kill_ts is not None or p.exit_ts is None:
            return False
        if p.exit_group_ts is not None or not self.exit_group_traced:
            return True
        return first_kill is None or p.exit_ts < first_kill

    @property
    def end_ns(self) -> int:
        """The derived workload's end, in ns since the trace's first event."""
        return self.t_end - (self.t0 or 0) + TAIL_NS

    def scenario(self, name: str, description: str, machine: dict[str, Any],
                 cgroups: list[dict[str, Any]]) -> dict[str, Any]:
        t0 = self.t0 if self.t0 is not None else 0
        end = self.t_end + TAIL_NS
        kills = [p.kill_ts for p in self.procs.values() if p.kill_ts is not None]
        first_kill = min(kills) if kills else None
        file_bytes = max(PAGE_SIZE, -(-self.max_file_bytes // PAGE_SIZE) * PAGE_SIZE)
        declared = {str(c["path"]) for c in cgroups}
        processes: list[dict[str, Any]] = []
        uses_file = False
        taken: set[str] = set()
        self.names = {}
        self.steps_at_kill = {}
        for pid in self.order:
            p = self.procs[pid]
            if p.merged or pid < 2 or not any(s["op"] != "sleep" for s in (*p.initial, *p.steps)):
                continue
            start = max(0, p.first_ts - t0)
            steps = [dict(s) for s in p.initial]
            if steps:
                # There from the start: its memory then, and its first event later.
                if start >= MIN_SLEEP_NS and p.steps:
                    steps.append({"op": "sleep", "duration": start})
                start = 0
            steps += [dict(s) for s in p.steps]
            for s in steps:
                if s.get("length") == "@FILE":
                    s["length"] = file_bytes
                if s.get("file") == SYNTHETIC_FILE:
                    uses_file = True
            if p.kill_ts is not None:
                self.steps_at_kill[pid] = len(steps)  # the assumption's steps follow (replay time)
            elif not self._ended_on_its_own(p, first_kill):
                # Alive at the end of the trace (or ended by the experiment's end): in
                # the replay it stays until the end (or the replay's own OOM killer).
                if steps and steps[-1]["op"] == "exit":
                    steps.pop()
                tail = end - max(p.clock, t0)
                if tail > 0:
                    steps.append({"op": "sleep", "duration": tail})
            elif p.exit_ts is not None and (not steps or steps[-1]["op"] != "exit"):
                # Ended on its own without an exit_group the trace shows (a signal, or
                # exit_group not traced): alive, holding its memory, until its exit.
                tail = p.exit_ts - max(p.clock, t0)
                if tail >= MIN_SLEEP_NS:
                    steps.append({"op": "sleep", "duration": tail})
            name_ = f"{p.comm}-{pid}"
            while name_ in taken:
                name_ += "'"
            taken.add(name_)
            self.names[pid] = name_
            proc: dict[str, Any] = {"name": name_, "comm": p.comm[:15] or "task", "steps": steps}
            if 2 <= pid <= 4_194_304:
                proc["pid"] = pid
            if p.uid:
                proc["uid"] = p.uid
            if p.oom_score_adj:
                proc["oom_score_adj"] = p.oom_score_adj
            if start:
                proc["start"] = start
            memcg = self.memcg_of(pid)
            if memcg != "/" and memcg in declared:
                proc["cgroup"] = memcg
            processes.append(proc)
        files: list[dict[str, Any]] = self.boot_files()
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

    # -- after a kill

    def growth(self, p: WorkloadProcess, until_ns: int) -> dict[str, Any]:
        """The growth observed of ``p`` over the :data:`GROWTH_WINDOW_NS` (or since
        its first event, if shorter) before ``until_ns``: bytes per second by class,
        and how anonymous memory grew (the chunk added per growing slice, and the
        period between them)."""
        history = p.history
        start_ns = max(p.first_ts, until_ns - GROWTH_WINDOW_NS)
        window = max(1, until_ns - start_ns)
        before = (p.init_pages["anon"], p.init_pages["file"], p.init_pages["shmem"])
        for ts, *held in history:
            if ts <= start_ns:
                before = (held[0], held[1], held[2])
        now = (p.held("anon"), p.held("file"), p.held("shmem"))
        rate = {cls: min(LONG_MAX, max(0, (now[i] - before[i]) * PAGE_SIZE) * 1_000_000_000 // window)
                for i, cls in enumerate(CLASSES)}
        grew = [(ts, n) for ts, n in p.growths if start_ns < ts <= until_ns]
        out: dict[str, Any] = {"window_ns": window, "bytes_per_s": rate,
                               "held_bytes": {cls: min(LONG_MAX, now[i] * PAGE_SIZE) for i, cls in enumerate(CLASSES)}}
        if grew and rate["anon"] > 0:
            chunk_pages = max(1, sum(n for _, n in grew) // len(grew))
            chunk = chunk_pages * PAGE_SIZE
            out["chunk_bytes"] = chunk
            out["every_ns"] = max(MIN_SLEEP_NS, chunk * 1_000_000_000 // rate["anon"])
        return out

    def after_kill(self) -> list[dict[str, Any]]:
        """What the trace shows of each OOM victim up to its kill, for an assumption
        about what it would have done (``meta["derived"]["after_kill"]``); call after
        :meth:`scenario`. Times in ns since the trace's first event."""
        t0 = self.t0 if self.t0 is not None else 0
        out: list[dict[str, Any]] = []
        for pid in self.order:
            p = self.procs[pid]
            if p.kill_ts is None or pid not in self.names:
                continue
            if p.exit_group_ts is not None:
                planned, why = p.exit_group_ts - t0, "its exit_group"
            else:
                planned, why = self.end_ns, "the end of the derived workload (the trace's last event + 1 s)"
            entry: dict[str, Any] = {
                "process": self.names[pid], "pid": pid, "comm": p.comm, "kill_ns": p.kill_ts - t0,
                "allocating": p.killed_allocating, "planned_end_ns": max(planned, p.kill_ts - t0),
                "planned_end": why, "steps_at_kill": self.steps_at_kill.get(pid, 0),
            }
            entry.update(self.growth(p, p.kill_ts))
            out.append(entry)
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
