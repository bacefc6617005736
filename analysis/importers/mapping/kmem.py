"""``kmem:`` -> ``rss_stat``; the page allocator's events counted only.

``kmem:rss_stat`` (``mm_id=%u curr=%d type=%s size=%ldB``; 5.5 ``member=%d``)
names the mm by a hash, not by a task: the mm is the pid's that fired it with
``curr=1`` (its own mm), else that of the task in whose context it fired (a
kthread's or another task's counter update, ``curr=0``); kernel threads own none.
An rss_stat right after a page fault of the same task tells that fault's kind (the
counter it raised). ``mm_page_alloc``/``mm_page_free`` have no memtrace
counterpart: their events and pages are summarised in the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.limits import LONG_MAX, LONG_MIN, PAGE_SHIFT
from memtrace.tracer.tracepoints import RSS_MEMBERS, VMA_KINDS

from ..workload import SLICE_NS
from .fields import KTHREAD_PREFIXES, PARSE_ERRORS, UnreadableLine, in_range, kv_fields

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["MAX_ORDER_READ", "MEMBER_KEY", "MEMBER_KIND", "Kmem"]

#: The largest page order a real event is read with. MAX_PAGE_ORDER is 10 on x86
#: and at most in the teens elsewhere; bounding it keeps ``1 << order`` page counts
#: small numbers.
MAX_ORDER_READ = 31
#: ``type=MM_...`` and ``member=N`` tokens -> the RSS_MEMBERS index.
_MEMBER_TOKEN = {**{f"type={name}": i for i, name in enumerate(RSS_MEMBERS)},
                 **{f"member={i}": i for i in range(len(RSS_MEMBERS))}}
#: RSS_MEMBERS index -> the residency class it counts (MM_SWAPENTS, 2, is none).
MEMBER_KEY = {0: "file", 1: "anon", 3: "shmem"}
#: RSS_MEMBERS index -> the VMA kind of a fault that raised it.
MEMBER_KIND = {0: VMA_KINDS.index("file_private"), 1: VMA_KINDS.index("anon_private"),
               3: VMA_KINDS.index("anon_shared")}
_HEAP_KIND = VMA_KINDS.index("heap")
_KTHREAD_PREFIXES = KTHREAD_PREFIXES


class Kmem:
    """The ``kmem`` system: rss_stat, and the page allocator summarised."""

    SYSTEM = "kmem"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        self.procs = b.work.procs
        self.faults = b.exceptions  # an rss_stat right after a fault tells the fault's kind
        self.mm_owner: dict[int, int] = {}  # mm_id -> pid (curr=1)
        self.mm_guess: dict[int, int] = {}  # mm_id -> context pid (curr=0, not yet seen with curr=1)
        self.mm_owned = self.mm_guessed = self.mm_unknown = 0

    def handlers(self) -> dict[str, Handler]:
        return {"rss_stat": self._rss_stat, "mm_page_alloc": self._page_alloc, "mm_page_free": self._page_free,
                "mm_page_free_batched": self._page_free}

    def _rss_stat(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        # "mm_id=1872197239 curr=1 type=MM_FILEPAGES size=1298432B" (5.5: member=N)
        try:
            parts = payload.split()
            if parts[0][:6] != "mm_id=":
                raise UnreadableLine(f"rss_stat without mm_id: {payload!r}")
            mm_id = int(parts[0][6:])
            member_code = _MEMBER_TOKEN.get(parts[2])
            if member_code is None:
                member_code = int(parts[2].partition("=")[2])
                if not 0 <= member_code < len(RSS_MEMBERS):
                    raise UnreadableLine(f"rss_stat member {parts[2]!r}")
            size_text = parts[3]
            size = int(size_text[5:-1] if size_text[-1] == "B" else size_text[5:])
            curr = parts[1] == "curr=1"
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        if not LONG_MIN <= size <= LONG_MAX:  # "%ld"
            raise UnreadableLine(f"rss_stat size {size} is no long")
        return self.rss_event(comm, pid, ts, mm_id, curr, member_code, size)

    def rss_event(self, comm: str, pid: int, ts: int, mm_id: int, curr: bool, member_code: int,
                  size: int) -> bool:
        """A kmem:rss_stat event, parsed: ``member_code`` indexes RSS_MEMBERS, ``size``
        is in bytes (the perf reader's fast path calls this directly)."""
        out = self.out
        if curr:  # the mm is current's
            tid = pid
            owner = self.mm_owner.get(mm_id)
            if owner is None:
                self.mm_owner[mm_id] = pid
                self.mm_guess.pop(mm_id, None)
            elif owner != pid:
                o = self.procs.get(owner)
                if o is not None and o.mm_id == mm_id and not o.ended:
                    pid = owner  # the same mm: a thread, or a vfork child before its exec
                else:  # the owner moved on (exec, exit): the kernel reused the mm_struct
                    self.mm_owner[mm_id] = pid
            self.mm_owned += 1
            p = self.procs.get(pid)
            if p is None:
                p = self.work.proc(pid, comm, ts)
            if p.mm_id != mm_id:
                if p.mm_id is not None and not p.ended:
                    # A new mm: an exec (fs/exec.c exec_mmap(), before the binary is
                    # loaded and sched_process_exec fires): the old mappings go now.
                    b = self.b
                    if not b.execs_traced:  # no exec tracepoint in the input: this is it
                        b.exec(pid, ts, comm, "", pid, inferred=True)
                    else:
                        self.work.tick(p, ts)
                        self.work.exec_(p, ts, p.comm)
                        p.mm_switched = True
                    p.rss = {"anon": 0, "file": 0, "shmem": 0}
                p.mm_id = mm_id
                p.has_rss = True
            faults = self.faults
            pending = faults.pending.pop(tid, None)
            if pending is not None:  # the fault just before raised this counter: its kind
                if member_code != 2:  # not MM_SWAPENTS
                    heap = p.heap
                    pending[6] = _HEAP_KIND if (member_code == 1 and heap is not None
                                                and heap.start <= pending[3] < heap.end) else MEMBER_KIND[member_code]
                    faults.from_rss += 1
                out.fault_flat.extend(pending)
            if ts - p.slice_start >= SLICE_NS:
                self.work.tick(p, ts)
            p.last_ts = ts
            if member_code != 2:
                p.rss[MEMBER_KEY[member_code]] = size >> PAGE_SHIFT
            out.rss_flat += (out.seq, ts, pid, pid, 1, member_code, size)
            out.seq += 1
            return True
        owner = self.mm_owner.get(mm_id)
        if owner is not None:
            o = self.procs.get(owner)
            if o is not None and o.mm_id != mm_id:
                # Its owner moved on to another mm (an exec): the mm_struct was freed
                # and this is a new one at the same address (the id hashes the
                # pointer), an exec's being built, say.
                del self.mm_owner[mm_id]
                self.mm_guess.pop(mm_id, None)
                owner = None
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
        if owner == pid and member_code != 2:
            o = self.procs.get(owner)
            if o is not None and o.ended:  # its teardown (exit_mmap(), after sched_process_exit)
                self.work.other_rss(o, ts, MEMBER_KEY[member_code], size >> PAGE_SHIFT)
        out.rss_flat += (out.seq, ts, pid, owner, 0, member_code, size)
        out.seq += 1
        return True

    # -- the page allocator (summarised)

    def _order(self, payload: str) -> tuple[dict[str, str], int]:
        try:
            f = kv_fields(payload)
            return f, in_range(int(f.get("order", "0")), 0, MAX_ORDER_READ, "order")
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e

    def _page_alloc(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        f, order = self._order(payload)
        s = self.b.summarised.setdefault("mm_page_alloc", {"events": 0, "pages": 0, "failed": 0})
        s["events"] += 1
        if f.get("page") == "(null)" or f.get("pfn") in ("0", "0x0", "-1", "0xffffffffffffffff"):
            s["failed"] += 1
        else:
            s["pages"] += 1 << order
        return True

    def _page_free(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        _f, order = self._order(payload)
        s = self.b.summarised.setdefault("mm_page_free", {"events": 0, "pages": 0})
        s["events"] += 1
        s["pages"] += 1 << order
        return True
