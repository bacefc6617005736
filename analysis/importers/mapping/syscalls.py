"""``syscalls:`` -> ``mmap``, ``munmap``, ``brk``, ``exec``; madvise, mremap, mprotect, clone, exit_group.

The enter event prints the arguments (perf ``0x%08lx``, ftrace ``%lx`` or ``0x%lx``),
the exit the return value; each call is handled when its exit is seen (the address
an mmap got is in its return), or, when the exit was not traced, when the thread's
next syscall or fault shows the call is over (an mmap then has the address of its
MAP_FIXED hint, or 0; an madvise, mremap or mprotect whose result is not known is
not taken). Calls are paired per thread (the tid of the line).

- mmap, munmap, brk: their memtrace events, and the derived workload's steps.
- madvise, mprotect: the workload's steps (no memtrace event: counted in the
  header's ``summarised``).
- mremap: the workload's steps, and the mapping's move as an ``munmap`` of the old
  range and an ``mmap`` of the new one (same handle), so that analyses find the
  faults at the new address in it.
- execve: an ``exec`` when it returns 0 and no ``sched_process_exec`` said so; a
  comm change inside it is the exec's, not a rename.
- clone: its flags tell a thread (CLONE_THREAD) from a process at the
  ``sched_process_fork`` that follows (clone3 passes them in memory: not printed).
- exit_group: the exit code of the ``exit`` that follows, and an ``exit`` step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from memtrace.linux.limits import LONG_MIN, ULONG_MAX
from memtrace.tracer.tracepoints import VMA_KINDS

from ..workload import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, _prot_text
from .fields import PARSE_ERRORS, UnreadableLine, c_ulong, in_range, number, page_align, to_signed64

if TYPE_CHECKING:
    from ..builder import Handler, TraceBuilder

__all__ = ["Syscalls"]


class _Entered(NamedTuple):
    """A syscall a task entered and has not left: its name, time and arguments."""

    call: str
    ts_ns: int
    args: dict[str, int]


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
    return to_signed64(in_range(number(words[0] if words else payload), LONG_MIN, ULONG_MAX, "return value"))


#: The calls whose enter is held until their exit (or the thread's next event).
_PAIRED = ("mmap", "munmap", "brk", "madvise", "mremap", "mprotect", "execve", "execveat", "clone", "clone3")


class Syscalls:
    """The ``syscalls`` system's memory, exec, clone and exit calls, enter and exit."""

    SYSTEM = "syscalls"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        #: tid -> the syscall it entered and has not left
        self.pending: dict[int, _Entered] = {}
        #: tids inside an execve that a sched_process_exec already reported
        self.execed: set[int] = set()

    def handlers(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {}
        for call in _PAIRED:
            table[f"sys_enter_{call}"] = self._enterer(call)
        table.update({
            "sys_exit_mmap": self._exit_mmap, "sys_exit_munmap": self._exit_munmap, "sys_exit_brk": self._exit_brk,
            "sys_exit_madvise": self._exit_madvise, "sys_exit_mremap": self._exit_mremap,
            "sys_exit_mprotect": self._exit_mprotect, "sys_exit_execve": self._exit_execve("execve"),
            "sys_exit_execveat": self._exit_execve("execveat"), "sys_exit_clone": self._exit_clone("clone"),
            "sys_exit_clone3": self._exit_clone("clone3"), "sys_enter_exit_group": self._exit_group,
            "sys_exit_exit_group": self._never_returns,
        })
        return table

    # -- what the other mappers ask

    def in_execve(self, tid: int) -> bool:
        """``tid`` is inside an execve (a comm change now is the exec's)."""
        entered = self.pending.get(tid)
        return entered is not None and entered.call in ("execve", "execveat")

    def exec_done(self, tid: int) -> None:
        """A sched_process_exec reported the exec of ``tid``'s execve."""
        if self.in_execve(tid):
            self.execed.add(tid)

    def clone_flags(self, tid: int) -> int | None:
        """The flags of the clone ``tid`` is in (None: not in one, or clone3)."""
        entered = self.pending.get(tid)
        if entered is None or entered.call != "clone":
            return None
        return entered.args.get("clone_flags")

    # -- enter

    def _enterer(self, call: str) -> Handler:
        def enter(comm: str, pid: int, ts: int, payload: str) -> bool:
            try:
                args = _syscall_args(payload)
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            tid = self.b.tid
            self.settle(tid, ts)
            self.pending[tid] = _Entered(call, ts, args)
            if call in ("execve", "execveat"):
                self.b.execs_traced = True
            return True
        return enter

    def _exit_group(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        try:
            args = _syscall_args(payload)
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.settle(self.b.tid, ts)
        code = args.get("error_code", 0) & 0xFF  # the status's low byte is what wait() sees
        p = self.work.proc(pid, self.b.comms.get(pid, comm), ts)
        self.work.tick(p, ts)
        self.work.exit_group(p, ts, code)
        return True

    def _never_returns(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        self.b.summary("sys_exit_exit_group")
        return True

    # -- exit

    def _left(self, call: str, pid: int) -> _Entered | None:
        """The ``call`` the event's thread entered, now left; None (counted) when its
        enter was not seen."""
        tid = self.b.tid
        entered = self.pending.get(tid)
        if entered is None or entered.call != call:
            self.b.summary(f"sys_exit_{call} (no enter)")
            return None
        del self.pending[tid]
        return entered

    def _ret(self, payload: str) -> int:
        try:
            return _syscall_ret(payload)
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e

    def _exit_madvise(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("madvise", pid)
        if entered is not None and self._ret(payload) == 0:
            self._madvise_done(pid, entered.ts_ns, entered.args)
        return True

    def _exit_mprotect(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("mprotect", pid)
        if entered is not None and self._ret(payload) == 0:
            self._mprotect_done(pid, entered.ts_ns, entered.args)
        return True

    def _exit_mremap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("mremap", pid)
        if entered is not None:
            ret = self._ret(payload)
            if not -4095 <= ret < 0:
                self._mremap_done(pid, ts, entered.args, ret & ULONG_MAX)
        return True

    def _exit_execve(self, call: str) -> Handler:
        def leave(comm: str, pid: int, ts: int, payload: str) -> bool:
            tid = self.b.tid
            entered = self._left(call, pid)
            reported = tid in self.execed
            self.execed.discard(tid)
            if entered is not None and self._ret(payload) == 0 and not reported:
                self.b.exec(pid, ts, self.b.comms.get(pid, comm) or comm, "", pid)
            return True
        return leave

    def _exit_clone(self, call: str) -> Handler:
        def leave(comm: str, pid: int, ts: int, payload: str) -> bool:
            tid = self.b.tid
            entered = self.pending.get(tid)
            if entered is not None and entered.call == call:
                del self.pending[tid]
            else:
                self.b.summary(f"sys_exit_{call} (no enter, or the child's return)")
            return True
        return leave

    def _exit_mmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("mmap", pid)
        if entered is not None:
            try:
                ret = _syscall_ret(payload)
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            self._mmap_done(pid, ts, entered.args, ret)
        return True

    def _exit_munmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("munmap", pid)
        if entered is not None:
            try:
                ret = _syscall_ret(payload)
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            if ret == 0:
                self._munmap_done(pid, entered.ts_ns, entered.args.get("addr", 0), entered.args.get("len", 0))
        return True

    def _exit_brk(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        entered = self._left("brk", pid)
        if entered is not None:
            try:
                result = c_ulong(number(payload.split()[0]), "brk return value")
            except PARSE_ERRORS as e:
                raise UnreadableLine(payload) from e
            self._brk_done(pid, ts, entered.args.get("brk", 0), result)
        return True

    def settle(self, tid: int, ts: int) -> None:
        """A syscall of thread ``tid`` whose exit was not traced is taken as done
        (an madvise, mremap or mprotect, whose result is not known, is not taken)."""
        entered = self.pending.pop(tid, None)
        if entered is None:
            return
        self.execed.discard(tid)
        pid = self.b.tgid.get(tid, tid)
        if entered.call not in ("mmap", "munmap", "brk"):
            self.b.summary(f"sys_enter_{entered.call} (no exit)")
        elif entered.call == "mmap":
            self._mmap_done(pid, entered.ts_ns, entered.args, None)
        elif entered.call == "munmap":
            self._munmap_done(pid, entered.ts_ns, entered.args.get("addr", 0), entered.args.get("len", 0))
        else:
            self._brk_done(pid, entered.ts_ns, entered.args.get("brk", 0), None)

    def finish(self, ts: int) -> None:
        """The end of the input: every syscall still in flight is taken as done."""
        for pid in list(self.pending):
            self.settle(pid, ts)

    # -- the calls

    def _mmap_done(self, pid: int, ts: int, args: dict[str, int], ret: int | None) -> None:
        length, prot, flags = args.get("len", 0), args.get("prot", 0), args.get("flags", 0)
        fd = args.get("fd", 0xFFFFFFFF)
        anonymous = bool(flags & MAP_ANONYMOUS) or fd in (0xFFFFFFFF, ULONG_MAX)
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
            addr, code = ret & ULONG_MAX, 0
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        handle = ""
        if code == 0:
            handle = self.work.mmap(p, ts, addr or None, length, prot, flags, anonymous, args.get("off", 0))
        self.out.emit("mmap", ts, pid, addr, page_align(length), prot & 0xFF, flags & 0xFFFFFFFF,
                      VMA_KINDS.index(kind), 0, "", handle, 0, code)

    def _munmap_done(self, pid: int, ts: int, addr: int, length: int) -> None:
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        v = p.find_vma(addr)
        handle = v.handle if v is not None and v.handle != "heap" else ""
        self.work.munmap(p, ts, addr, length)
        self.out.emit("munmap", ts, pid, addr, page_align(length), handle, 0)

    def _brk_done(self, pid: int, ts: int, requested: int, result: int | None) -> None:
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        known = p.brk
        self.work.brk(p, ts, requested, result)
        ret = result if result is not None else (requested or (known or 0))
        # The break before the call is unknown until one brk result (or request) is
        # seen: then it is written as the result, a call that moved nothing.
        old = known if known is not None else ret
        self.out.emit("brk", ts, pid, old, requested, ret, 0)

    def _madvise_done(self, pid: int, ts: int, args: dict[str, int]) -> None:
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        behavior = args.get("behavior", -1)
        self.work.madvise(p, ts, args.get("start", 0), args.get("len_in", args.get("len", 0)), behavior)
        self.b.summary(f"madvise ({MADV_NAMES.get(behavior, behavior)})")

    def _mprotect_done(self, pid: int, ts: int, args: dict[str, int]) -> None:
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        prot = args.get("prot", 0)
        self.work.mprotect(p, ts, args.get("start", 0), args.get("len", 0), prot)
        self.b.summary(f"mprotect ({_prot_text(prot) or 'none'})")

    def _mremap_done(self, pid: int, ts: int, args: dict[str, int], new_addr: int) -> None:
        p = self.work.proc(pid, self.b.comms.get(pid, ""), ts)
        self.work.tick(p, ts)
        addr, old_len, new_len = args.get("addr", 0), args.get("old_len", 0), args.get("new_len", 0)
        v = p.find_vma(addr)
        handle = v.handle if v is not None and v.handle != "heap" else ""
        moved = self.work.mremap(p, ts, addr, old_len, new_len, args.get("flags", 0), new_addr)
        self.b.summary("mremap (moved)" if new_addr != addr else "mremap (in place)")
        if moved and v is not None and handle:
            # The mapping as analyses see it: gone from the old range, at the new one.
            nv = p.find_vma(new_addr)
            self.out.emit("munmap", ts, pid, addr, page_align(old_len), handle, 0)
            self.out.emit("mmap", ts, pid, new_addr, page_align(new_len), _PROT_BITS.get(v.prot, 3),
                          v.flags & 0xFFFFFFFF, v.code, 0, "", nv.handle if nv is not None else handle, 0, 0)


#: madvise behaviours by number, for the header's counts (include/uapi/asm-generic/mman-common.h).
MADV_NAMES = {0: "normal", 1: "random", 2: "sequential", 3: "willneed", 4: "dontneed", 8: "free", 9: "remove",
              10: "dontfork", 11: "dofork", 12: "mergeable", 13: "unmergeable", 14: "hugepage",
              15: "nohugepage", 16: "dontdump", 17: "dodump", 18: "wipeonfork", 19: "keeponfork", 20: "cold",
              21: "pageout", 22: "populate_read", 23: "populate_write", 24: "dontneed_locked", 25: "collapse"}
#: A protection string -> PROT_* bits.
_PROT_BITS = {"".join(c for c, bit in (("r", 1), ("w", 2), ("x", 4)) if n & bit): n for n in range(8)}
