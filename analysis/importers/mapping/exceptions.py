"""``exceptions:page_fault_user`` -> ``page_fault``.

The tracepoint prints the faulting address, the instruction pointer and the x86
error code (``address=%ps ip=%ps error_code=0x%lx``): the page frame and whether the
fault was major are not in it (written as 0 and false). The mapping's kind comes
from the known mapping at the address (an mmap whose address the trace showed), else
from the ``kmem:rss_stat`` counter the fault raised right after it (:mod:`.kmem`
resolves the pending row), else anon_private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.limits import PAGE_SHIFT, ULONG_MAX

from ..workload import SLICE_NS
from .fields import PARSE_ERRORS, UnreadableLine, kv_fields, to_signed64

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Exceptions"]

#: x86 page-fault error codes as printed -> the write bit (2).
_WRITE_BIT = {f"0x{code:x}": bool(code & 2) for code in range(0x80)}


class Exceptions:
    """The ``exceptions`` system's user page faults."""

    SYSTEM = "exceptions"
    SUMMARISED = ("page_fault_kernel",)

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        self.procs = b.work.procs
        self.syscalls = b.syscalls  # a fault shows its task's syscall is over
        #: pid -> its last fault's row, waiting for the rss_stat that tells its kind
        self.pending: dict[int, list[int]] = {}
        #: faults whose kind came from a known mapping, or from the rss_stat after them
        self.from_vma = 0
        self.from_rss = 0

    def handlers(self) -> dict[str, Handler]:
        return {"page_fault_user": self._page_fault_user}

    def _page_fault_user(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        # "address=0x7f24d3844270 ip=0x7f24d3844270 error_code=0x14" (the hot path:
        # a fault is half of most traces, so this is written out long-hand)
        try:
            a, _, rest = payload.partition(" ")
            if a[:8] == "address=":
                addr = int(a[8:], 16)
            else:
                addr = int(kv_fields(payload)["address"], 16)
            err = rest.rpartition("error_code=")[2]
            write = _WRITE_BIT.get(err)
            if write is None:
                write = int(err.split(None, 1)[0], 16) & 2 != 0
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        if not 0 <= addr <= ULONG_MAX:
            raise UnreadableLine(f"page fault address {addr:#x} is not a 64-bit address")
        return self.fault_event(comm, pid, ts, addr, write)

    def fault_event(self, comm: str, pid: int, ts: int, addr: int, write: bool) -> bool:
        """A user page fault of task ``pid`` at ``addr``, parsed (the perf reader's
        fast path calls this directly)."""
        page_addr = addr & ~0xFFF
        if page_addr >> 63:
            # A user-mode access to a kernel address (the vsyscall page): the rows
            # are int64, the field uint64, so it is kept as its two's complement.
            page_addr = to_signed64(page_addr)
        syscalls = self.syscalls
        if syscalls.pending:
            syscalls.settle(self.b.tid, ts)
        p = self.procs.get(pid)
        if p is None:
            p = self.work.proc(pid, comm, ts)
        if ts - p.slice_start >= SLICE_NS:
            self.work.tick(p, ts)
        p.last_ts = ts
        v = p.last_vma
        if v is None or not v.start <= addr < v.end:
            v = p.find_vma(addr) if (p.vmas or p.heap is not None) else None
            if v is not None and v.handle != "heap":
                p.last_vma = v
        out = self.out
        if v is not None:
            out.fault_flat += (out.seq, ts, pid, page_addr, write, 0, v.code, 0)
            out.seq += 1
            self.from_vma += 1
            if v.handle != "heap":
                (v.new_w if write else v.new_r).append(addr >> PAGE_SHIFT)
                if not v.dirty:
                    v.dirty = True
                    p.dirty.append(v)
            elif not p.has_rss:  # heap growth, as for an unknown address
                p.slice_faults.append(([0, 0, 0, 0, 0, 0, v.code, 0], addr >> PAGE_SHIFT, write))
            return True
        # anon_private until the rss_stat that follows says otherwise
        row = [out.seq, ts, pid, page_addr, write, 0, 0, 0]
        out.seq += 1
        older = self.pending.get(pid)
        if older is not None:
            out.fault_flat.extend(older)
        self.pending[pid] = row
        if not p.has_rss:
            p.slice_faults.append((row, addr >> PAGE_SHIFT, write))
        return True

    def flush_pending(self) -> None:
        """Before a flush group: the faults still waiting for their kind keep the
        default (anon_private)."""
        for row in self.pending.values():
            self.out.fault_flat.extend(row)
        self.pending.clear()
