"""``syscalls:`` -> ``mmap``, ``munmap``, ``brk``: each call's enter and exit paired.

The enter event prints the arguments (perf ``0x%08lx``, ftrace ``%lx`` or ``0x%lx``),
the exit the return value; one memtrace event is written per call when its exit is
seen (the address an mmap got is in its return), or, when the exit was not traced,
when the task's next syscall or fault shows the call is over (an mmap then has the
address of its MAP_FIXED hint, or 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from memtrace.linux.limits import LONG_MIN, ULONG_MAX
from memtrace.tracer.tracepoints import VMA_KINDS

from ..workload import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED
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


class Syscalls:
    """The ``syscalls`` system's mmap, munmap and brk, enter and exit."""

    SYSTEM = "syscalls"
    SUMMARISED: tuple[str, ...] = ()

    def __init__(self, b: TraceBuilder) -> None:
        self.b = b
        self.out = b.out
        self.work = b.work
        #: pid -> the syscall it entered and has not left
        self.pending: dict[int, _Entered] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "sys_enter_mmap": self._enter_mmap, "sys_exit_mmap": self._exit_mmap,
            "sys_enter_munmap": self._enter_munmap, "sys_exit_munmap": self._exit_munmap,
            "sys_enter_brk": self._enter_brk, "sys_exit_brk": self._exit_brk,
        }

    # -- enter

    def _enter(self, call: str, pid: int, ts: int, payload: str) -> bool:
        try:
            args = _syscall_args(payload)
        except PARSE_ERRORS as e:
            raise UnreadableLine(payload) from e
        self.settle(pid, ts)
        self.pending[pid] = _Entered(call, ts, args)
        return True

    def _enter_mmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        return self._enter("mmap", pid, ts, payload)

    def _enter_munmap(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        return self._enter("munmap", pid, ts, payload)

    def _enter_brk(self, comm: str, pid: int, ts: int, payload: str) -> bool:
        return self._enter("brk", pid, ts, payload)

    # -- exit

    def _left(self, call: str, pid: int) -> _Entered | None:
        """The ``call`` ``pid`` entered, now left; None (counted) when its enter was
        not seen."""
        entered = self.pending.get(pid)
        if entered is None or entered.call != call:
            self.b.summary(f"sys_exit_{call} (no enter)")
            return None
        del self.pending[pid]
        return entered

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

    def settle(self, pid: int, ts: int) -> None:
        """A syscall of ``pid`` whose exit was not traced is taken as done."""
        entered = self.pending.pop(pid, None)
        if entered is None:
            return
        if entered.call == "mmap":
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
