"""The ``perf script`` reader's bulk path: blocks of bytes cut into columns with numpy.

A memory trace is nearly all ``kmem:rss_stat`` and ``exceptions:page_fault_user``
lines in one fixed-width layout (:class:`.perf_line.PerfLayout`). Each block of whole
lines is cut into columns by position (:func:`_parse_block`): tid, time, a hash of
the comm column, and the two events' numbers; :class:`BlockFeeder` then hands runs of
lines whose task is in a steady state to the mappers in bulk, and every other line
to the text path. Both paths give the same trace, line for line (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from memtrace.tracer.tracepoints import RSS_MEMBERS

from .builder import TraceBuilder, feed_line
from .mapping.kmem import MEMBER_KEY, MEMBER_KIND
from .perf_line import PerfLayout, parse_line
from .workload import SLICE_NS, KnownMapping, WorkloadProcess

__all__ = ["BlockFeeder", "RawBlocks"]

#: Column types of the block reader.
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
Index = npt.NDArray[np.intp]


@runtime_checkable
class RawBlocks(Protocol):
    """Text read as raw blocks of whole lines (:meth:`.textio.TextLines.raw_blocks`)."""

    def raw_blocks(self) -> Iterator[bytes]: ...


_DIGIT8 = np.full(256, -1, dtype=np.int8)
_DIGIT8[48:58] = np.arange(10)
_HEXDIGIT8 = _DIGIT8.copy()
_HEXDIGIT8[97:103] = np.arange(10, 16)
_HEXDIGIT8[65:71] = np.arange(10, 16)
#: The largest second count whose time in ns fits int64 (with any fraction).
_SEC_MAX = ((1 << 63) - 1 - 999_999_999) // 1_000_000_000
_FNV = np.uint64(1099511628211)


def _bytes(text: str) -> U8:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _padded(name: str, width: int) -> U8:
    """``name`` right-aligned in the event column of ``width`` bytes; when it does
    not fit, newlines (which no line holds: it never matches)."""
    if len(name) > width:
        return np.full(width, 10, dtype=np.uint8)
    return _bytes(f"{name:>{width}}")


class _Buf:
    """A block of bytes, readable as bytes and, at any offset, as 8-byte words (an
    overlapping little-endian view, so that gathering a field costs one index per
    8 bytes instead of one per byte). Zero bytes pad the end: 128, and more when
    the block is shorter than ``reach`` (the widest field read from it, which a
    layout learnt from a long line can make longer than a short block)."""

    __slots__ = ("top", "u8", "u64")

    def __init__(self, raw: bytes, reach: int = 0) -> None:
        padded = raw + bytes(128 + max(0, reach - len(raw)))
        self.u8 = np.frombuffer(padded, dtype=np.uint8)
        self.u64 = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
        self.top = len(raw) - 1

    def __len__(self) -> int:
        return self.top + 1

    def byte(self, at: Index) -> U8:
        return self.u8[np.clip(at, 0, self.top)]


def _gather(buf: _Buf, at: Index, width: int) -> U8:
    """The ``width`` bytes at each position, one row per position (positions are
    clipped to the block; rows past its end read padding)."""
    words = (width + 7) // 8
    at = np.clip(at, 0, len(buf.u64) - 8 * words)
    if words == 1:
        rows = buf.u64[at][:, None]
    else:
        rows = np.stack([buf.u64[at + 8 * j] for j in range(words)], axis=1)
    return rows.view(np.uint8).reshape(len(at), 8 * words)[:, :width]


def _matches(buf: _Buf, at: Index, text: str | bytes) -> Bools:
    """Whether ``text`` is at each position: compared 8 bytes at a time."""
    data = text.encode() if isinstance(text, str) else text
    at = np.clip(at, 0, len(buf.u64) - 1 - len(data))
    ok = np.ones(len(at), dtype=bool)
    for j in range(0, len(data), 8):
        chunk = data[j:j + 8]
        mask = np.uint64((1 << (8 * len(chunk))) - 1)
        ok &= (buf.u64[at + j] & mask) == np.uint64(int.from_bytes(chunk, "little"))
    return ok


def _right_aligned(chars: U8) -> tuple[I64, Bools]:
    """Values and validity of right-aligned decimal fields (leading spaces, then
    1 to 18 digits to the end: int64 holds them), column by column."""
    n, width = chars.shape
    value = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    seen = np.zeros(n, dtype=bool)
    for j in range(width):
        col = chars[:, j]
        dig = _DIGIT8[col]
        isdig = dig >= 0
        ok &= isdig | ((col == 32) & ~seen)
        seen |= isdig
        value = value * 10 + np.where(isdig, dig, 0)
    if width > 18:
        ok &= (chars[:, :width - 18] == 32).all(axis=1)
    return value, ok & seen


def _leading_number(buf: _Buf, at: Index, width: int, table: npt.NDArray[np.int8],
                    base: int) -> tuple[I64, I64, Bools]:
    """The number starting at each position (decimal or hex by ``table``): value,
    its length in characters, and validity (1..width-1 digits)."""
    chars = _gather(buf, at, width)
    n = len(at)
    value = np.zeros(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    live = np.ones(n, dtype=bool)
    for j in range(width):  # Horner over the digits before the first non-digit
        dig = table[chars[:, j]]
        live &= dig >= 0
        if not live.any():
            break
        value = np.where(live, value * base + dig, value)
        length += live
    return value, length, (length >= 1) & ~live


class _Block(NamedTuple):
    """One block's lines cut up for the fast path (see :func:`_parse_block`): each
    line's start and end (its newline), ``kind`` (0: read as text, 1: rss_stat, 2:
    page fault), tid, time (ns), comm-column hash ``sig`` and the event's numbers
    ``a``..``d``."""

    starts: Index
    ends: Index
    kind: npt.NDArray[np.int8]
    pid: I64
    ts: I64
    sig: U64
    a: I64
    b: I64
    c: I64
    d: I64

    @classmethod
    def empty(cls) -> _Block:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int8), none, none,
                   np.zeros(0, dtype=np.uint64), none, none, none, none)


def _parse_block(raw: bytes, lay: PerfLayout, rss_name: U8, fault_name: U8) -> _Block:
    """Every line of ``buf`` (bytes ending in a newline) as numbers, for the lines in
    ``lay``'s layout whose event is ``rss_name`` or ``fault_name`` (as printed,
    padded): ``kind`` 1 (rss_stat: a=mm_id, b=curr, c=member, d=size) or 2 (page
    fault: a=address, b=write); 0 for any other line, which is read as text. ``sig``
    is a hash of the comm column, to notice a new comm without decoding it."""
    buf = _Buf(raw, lay.name_end)
    ends = np.flatnonzero(buf.u8[: len(raw)] == 10)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    n = len(ends)
    lens = ends - starts
    ce, co, cc, colon, ne = lay.comm_end, lay.cpu_open, lay.cpu_close, lay.colon, lay.name_end
    top = buf.top

    def at(off: int) -> U8:
        return buf.u8[np.minimum(starts + off, top)]

    # The separators parse_line() splits at (whitespace before and after "[cpu]"),
    # so that a line read here is one parse_line() reads the same way.
    ok = ((lens > ne + 2) & (at(colon) == 58) & (at(colon + 1) == 32) & (at(ne) == 58) & (at(ne + 1) == 32)
          & (at(co) == 91) & (at(cc) == 93) & (at(ce) == 32) & (at(lay.dot) == 46)
          & (at(co - 1) == 32) & (at(cc + 1) == 32))
    if cc - co > 1:
        ok &= (_DIGIT8[_gather(buf, starts + co + 1, cc - co - 1)] >= 0).all(axis=1)
    kind = np.zeros(n, dtype=np.int8)
    kind[ok & _matches(buf, starts + colon + 2, rss_name.tobytes())] = 1
    kind[ok & _matches(buf, starts + colon + 2, fault_name.tobytes())] = 2
    pid, pid_ok = _right_aligned(_gather(buf, starts + ce, co - 1 - ce))
    sec, sec_ok = _right_aligned(_gather(buf, starts + cc + 1, lay.dot - cc - 1))
    frac_chars = _gather(buf, starts + lay.dot + 1, colon - lay.dot - 1)
    frac, frac_ok = _right_aligned(frac_chars)
    frac_ok &= _DIGIT8[frac_chars[:, 0]] >= 0  # no leading spaces in a fraction
    sec_ok &= sec <= _SEC_MAX
    kind[~(pid_ok & sec_ok & frac_ok)] = 0
    ts = sec * 1_000_000_000 + frac * lay.scale
    words = (ce + 7) // 8
    sig = np.full(n, np.uint64(14695981039346656037))
    cut = np.uint64((1 << (8 * (ce - 8 * (words - 1)))) - 1) if ce % 8 else np.uint64((1 << 64) - 1)
    for j in range(words):
        word = buf.u64[np.clip(starts + 8 * j, 0, len(buf.u64) - 1)]
        if j == words - 1:
            word = word & cut
        sig = (sig ^ word) * _FNV
    a = np.zeros(n, dtype=np.int64)
    b = np.zeros(n, dtype=np.int64)
    c = np.zeros(n, dtype=np.int64)
    d = np.zeros(n, dtype=np.int64)
    payload = starts + ne + 2
    # kmem:rss_stat: "mm_id=%u curr=%d type=%s size=%ldB"
    r = np.flatnonzero(kind == 1)
    if len(r):
        p = payload[r]
        good = _matches(buf, p, "mm_id=")
        mm, mm_len, mm_ok = _leading_number(buf, p + 6, 12, _DIGIT8, 10)
        q = p + 6 + mm_len
        good &= mm_ok & _matches(buf, q, " curr=") & _matches(buf, q + 7, " type=MM_")
        curr = buf.u8[np.minimum(q + 6, top)]
        good &= (curr == 48) | (curr == 49)
        first = buf.u8[np.minimum(q + 16, top)]
        code = np.full(len(r), -1, dtype=np.int64)
        name_len = np.zeros(len(r), dtype=np.int64)
        for mcode, member in enumerate(RSS_MEMBERS):  # "MM_" is matched above
            hit = np.flatnonzero(first == ord(member[3]))
            if len(hit):
                hit = hit[_matches(buf, q[hit] + 16, f"{member[3:]} size=")]
                code[hit] = mcode
                name_len[hit] = len(member) - 3
        good &= code >= 0
        z = q + 16 + name_len
        size, size_len, size_ok = _leading_number(buf, z + 6, 19, _DIGIT8, 10)
        good &= size_ok & (buf.u8[np.minimum(z + 6 + size_len, top)] == 66) & (z + 7 + size_len == ends[r])
        a[r], b[r], c[r], d[r] = mm, curr == 49, code, size
        kind[r[~good]] = 0
    # exceptions:page_fault_user: "address=%ps ip=%ps error_code=0x%lx"
    f = np.flatnonzero(kind == 2)
    if len(f):
        p = payload[f]
        good = _matches(buf, p, "address=0x")
        addr, addr_len, addr_ok = _leading_number(buf, p + 10, 17, _HEXDIGIT8, 16)
        good &= addr_ok & (addr_len <= 15) & (buf.u8[np.minimum(p + 10 + addr_len, top)] == 32)
        e = ends[f]
        found = np.zeros(len(f), dtype=bool)
        hexes = np.ones(len(f), dtype=bool)
        for width in (1, 2, 3, 4):
            hexes &= _HEXDIGIT8[buf.byte(e - width)] >= 0
            found |= hexes & _matches(buf, e - width - 13, "error_code=0x") & (e - width - 13 > p + 10 + addr_len)
        good &= found
        last = _HEXDIGIT8[buf.u8[e - 1]].astype(np.int64)
        a[f], b[f] = addr, (last & 2) != 0
        kind[f[~good]] = 0
    return _Block(starts, ends, kind, pid, ts, sig, a, b, c, d)


#: What the steady test reads of one tid's process: pid, comm-column hash, the
#: process, its slice start, its mm and that mm's owner, the mapping it last
#: faulted in and that mapping's bounds.
_TidState = tuple[int, "int | None", WorkloadProcess, int, "int | None", "int | None", "KnownMapping | None",
                  "int | None", "int | None"]
#: Whether a syscall is in flight, and each tid's state (None: not steady).
_State = tuple[bool, "list[_TidState | None]"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_PID_LIMIT = 1 << 31  # the pid columns are int32
#: Lines the steady test looks ahead at a time.
_WINDOW = 2048


def _newest(tid_pid: list[int], last: np.ndarray, per_tid: int) -> dict[Any, int]:
    """The latest of ``last`` (line positions, -1 for none; ``per_tid`` slots per tid)
    for each process: tids of one process (threads) count as one. Keys are pids, or
    (pid, slot) when ``per_tid`` > 1."""
    out: dict[Any, int] = {}
    for k in np.flatnonzero(last >= 0).tolist():
        tid, slot = divmod(k, per_tid)
        key = tid_pid[tid] if per_tid == 1 else (tid_pid[tid], slot)
        at = int(last[k])
        if out.get(key, -1) < at:
            out[key] = at
    return out


class BlockFeeder:
    """:func:`.perf_script.feed` over raw byte blocks, nearly every line handled in bulk.

    Each block is cut up by :func:`_parse_block`. An rss_stat or page-fault line is
    *steady* when the state of its task says the common case applies: its comm is
    the one last seen (same comm-column hash), it falls inside the task's current
    workload slice, none of its faults waits for the rss_stat that tells its kind,
    and

    - for ``kmem:rss_stat``: the counter is of the task's own established mm
      (``curr=1``, the mm the task owns);
    - for ``exceptions:page_fault_user``: no syscall is in flight and the address
      is inside the mapping the task last faulted in.

    Handling a steady line changes nothing this test reads, so a run of them is
    handled at once with numpy (:meth:`_run`): each emits one row, numbered in line
    order, and only each task's last time, its rss counters and its faulted pages
    are carried over. Every other line takes the one-line path (:meth:`_lines`,
    which inlines the same common cases of :meth:`.mapping.kmem.Kmem.rss_event` and
    :meth:`.mapping.exceptions.Exceptions.fault_event` and calls them, or the text path, for the
    rest), after which the test is done again if the state it reads changed. This
    reader, :func:`feed_lines` and the general path alone (every line through
    :func:`parse_line` and :meth:`TraceBuilder.event`) give the same trace (tested):
    a line is read in the columns only if parse_line() would read it the same way.

    The bulk rows reach the output (:meth:`.assemble.TraceOutput.add_rows`) at the end of
    each block, and before any flush group is written in between.
    """

    def __init__(self, builder: TraceBuilder) -> None:
        self.builder = builder
        self.sigs: dict[int, int] = {}  # pid -> comm-column hash of its current comm
        self.layout: PerfLayout | None = None
        self.rss_name: U8 = np.zeros(0, dtype=np.uint8)
        self.fault_name: U8 = np.zeros(0, dtype=np.uint8)
        self.lines = 0
        # The block being read.
        self.raw = b""
        self.blk = _Block.empty()
        self.pids: list[int] = []  # the tids of the block's event lines, ...
        self.inv: Index = np.zeros(0, dtype=np.intp)  # ... and each line's index into them
        # Per tid of the block, in the state the steady test last read: the process
        # its events count for, and the kind of the mapping it last faulted in.
        self.tid_pid: I64 = np.zeros(0, dtype=np.int64)
        self.tid_code: I64 = np.zeros(0, dtype=np.int64)
        # Bulk rows not yet handed to the output: lines [pending_lo, pending_hi)
        # with emit_seq >= 0.
        self.emit_seq: I64 = np.zeros(0, dtype=np.int64)
        self.emit_pid: I64 = np.zeros(0, dtype=np.int64)
        self.emit_code: I64 = np.zeros(0, dtype=np.int64)
        self.pending_lo = self.pending_hi = 0

    def feed(self, text: RawBlocks) -> None:
        builder = self.builder
        out = builder.out
        out.before_flush = self._add_rows
        try:
            for raw in text.raw_blocks():
                if self.layout is None:
                    raw = self._learn(raw)
                    if not raw:
                        continue
                self._block(raw)
                if out.seq >= out.next_flush:  # a group per ~GROUP_EVENTS events
                    builder.flush()
        finally:
            out.before_flush = None
        builder.lines += self.lines

    def _learn(self, raw: bytes) -> bytes:
        """Lines of ``raw`` as text until one teaches the layout; returns the rest."""
        at = 0
        while at < len(raw):
            nl = raw.index(b"\n", at)
            self.lines += 1
            self._slow(raw[at:nl].decode("utf-8", errors="replace"), None)
            at = nl + 1
            if self.layout is not None:
                return raw[at:]
        return b""

    def _slow(self, line: str, sig: int | None, column: bytes = b"") -> None:
        """The text path for one line; learns the layout, and the hash ``sig`` of
        the comm column (the bytes ``column``) as its task's when the comm read
        from the line is that column's (not when it spills out of it)."""
        builder = self.builder
        parsed = feed_line(builder, line, parse_line)
        if parsed is None:
            return
        comm, tid, pid_, _ts_ns, _name, _payload = parsed
        if pid_ is None and self.layout is None:
            learnt = PerfLayout.learn(line)
            if learnt is not None:
                self.layout = learnt
                width = learnt.name_end - learnt.colon - 2
                self.rss_name = _padded("kmem:rss_stat", width)
                self.fault_name = _padded("exceptions:page_fault_user", width)
        p = builder.tgid.get(tid, tid)
        if (pid_ is None and sig is not None and builder.comms.get(p) == comm
                and column.decode("utf-8", errors="replace").strip() == comm):
            self.sigs[p] = sig
        else:  # the comm may have changed without the column telling
            self.sigs.pop(p, None)

    # -- one block

    def _block(self, raw: bytes) -> None:
        assert self.layout is not None
        blk = _parse_block(raw, self.layout, self.rss_name, self.fault_name)
        n = len(blk.kind)
        self.lines += n
        self.raw, self.blk = raw, blk
        pids, inv = np.unique(np.where(blk.kind != 0, blk.pid, -1), return_inverse=True)
        self.pids, self.inv = pids.tolist(), inv
        self.emit_seq = np.full(n, -1, dtype=np.int64)
        self.emit_pid = np.zeros(n, dtype=np.int64)
        self.emit_code = np.zeros(n, dtype=np.int64)
        self.pending_lo = self.pending_hi = 0
        i = 0
        state = self._state()
        end = min(n, _WINDOW)
        unsteady = self._unsteady(0, end, state)
        at = 0  # index into unsteady
        alone = 0  # lines read one at a time since the last long run
        while i < n:
            while unsteady[at] < i:
                at += 1
            j = unsteady[at]
            if j > i:
                self._run(i, j)
                if j - i >= len(self.pids):  # worth the state checks it took
                    alone = 0
                i = j
            if i < end:
                # Line i is not steady: read it, and more lines with it while runs
                # are rare (each check of the state costs a few runs' worth).
                stop = min(end, i + 1 + alone)
                self._lines(i, stop)
                alone = min(2 * alone + 1, _WINDOW)
                i = stop
                now = self._state()
                if now == state and i < end:
                    continue
                state = now
            if i < n:
                end = min(n, i + _WINDOW)
                unsteady = self._unsteady(i, end, state)
                at = 0
        self._add_rows()

    def _state(self) -> _State:
        """What the steady test reads: whether a syscall is in flight, and per tid
        of the block its process's state (None: not steady)."""
        builder = self.builder
        tgid, sigs, procs, pending, owners = (builder.tgid, self.sigs, builder.work.procs,
                                              builder.exceptions.pending, builder.kmem.mm_owner)
        out: list[_TidState | None] = []
        for tid in self.pids:
            pid = tgid.get(tid, tid) if tgid else tid
            p = procs.get(pid)
            if p is None or pid in pending:
                out.append(None)
                continue
            v = p.last_vma
            out.append((pid, sigs.get(pid), p, p.slice_start, p.mm_id,
                        owners.get(p.mm_id) if p.mm_id is not None else None, v,
                        None if v is None else v.start, None if v is None else v.end))
        return bool(builder.syscalls.pending), out

    def _unsteady(self, start: int, end: int, state: _State) -> list[int]:
        """The lines of [start, end) that are not steady in ``state``, then ``end``.
        Sets the per-tid arrays :meth:`_run` reads."""
        u = len(self.pids)
        ok = np.zeros(u, dtype=bool)
        pid = np.zeros(u, dtype=np.int64)
        sig = np.zeros(u, dtype=np.uint64)
        slice_last = np.zeros(u, dtype=np.int64)  # the last time inside the current slice
        mm_id = np.full(u, -1, dtype=np.int64)  # its own mm's id, -1 when not established
        vma_start = np.ones(u, dtype=np.int64)  # the last faulted mapping (empty: 1, 0)
        vma_end = np.zeros(u, dtype=np.int64)
        code = np.zeros(u, dtype=np.int64)
        in_flight, entries = state
        for k, entry in enumerate(entries):
            if entry is None:
                continue
            p_pid, p_sig, _p, slice_start, p_mm, owner, v, v_start, v_end = entry
            if p_sig is None or not 0 <= p_pid < _PID_LIMIT:
                continue
            lim = slice_start + SLICE_NS - 1
            if lim < _INT64_MIN:
                continue
            ok[k], pid[k], sig[k], slice_last[k] = True, p_pid, p_sig, min(lim, _INT64_MAX)
            if p_mm is not None and owner == p_pid and 0 <= p_mm <= _INT64_MAX:
                mm_id[k] = p_mm
            if v is not None and v_start is not None and v_end is not None and v_start <= _INT64_MAX and v_end > 0:
                # Fault addresses are below 2**60: clamping keeps the test exact.
                vma_start[k], vma_end[k], code[k] = max(v_start, 0), min(v_end, _INT64_MAX), v.code
        self.tid_pid, self.tid_code = pid, code
        blk, inv = self.blk, self.inv[start:end]
        kind, a = blk.kind[start:end], blk.a[start:end]
        steady = ok[inv] & (blk.sig[start:end] == sig[inv]) & (blk.ts[start:end] <= slice_last[inv])
        event = (kind == 1) & (blk.b[start:end] == 1) & (a == mm_id[inv])
        if not in_flight:
            event |= (kind == 2) & (vma_start[inv] <= a) & (a < vma_end[inv])
        steady &= event
        out = np.flatnonzero(~steady)
        out += start
        return [*out.tolist(), end]

    def _run(self, i: int, j: int) -> None:
        """Lines [i, j), all steady: their rows, and what they change."""
        builder, blk = self.builder, self.blk
        n = j - i
        inv = self.inv[i:j]
        kind = blk.kind[i:j]
        ts = blk.ts[i:j]
        pid = self.tid_pid[inv]
        out = builder.out
        seq = out.seq
        out.seq = seq + n
        self.emit_seq[i:j] = np.arange(seq, seq + n)
        self.emit_pid[i:j] = pid
        self.emit_code[i:j] = self.tid_code[inv]
        if self.pending_hi <= self.pending_lo:
            self.pending_lo = i
        self.pending_hi = j
        if builder.first_ts is None:  # as TraceBuilder.event() sets it
            later = np.flatnonzero(ts > builder.last_ts)
            if len(later):
                builder.first_ts = int(ts[later[0]])
        builder.last_ts = max(builder.last_ts, int(ts.max()))
        procs = builder.work.procs
        tid_pid: list[int] = self.tid_pid.tolist()
        positions = np.arange(n)
        # Each task's time is its last line's.
        last = np.full(len(tid_pid), -1, dtype=np.intp)
        np.maximum.at(last, inv, positions)
        for p_pid, at in _newest(tid_pid, last, 1).items():
            procs[p_pid].last_ts = int(ts[at])
        rss = np.flatnonzero(kind == 1)
        builder.kmem.mm_owned += len(rss)
        builder.exceptions.from_vma += n - len(rss)
        if len(rss):
            # Each counter's size is its last line's (MM_SWAPENTS is no residency).
            last = np.full(4 * len(tid_pid), -1, dtype=np.intp)
            np.maximum.at(last, inv[rss] * 4 + blk.c[i:j][rss], rss)
            size = blk.d[i:j]
            for (p_pid, member), at in _newest(tid_pid, last, 4).items():
                if member != 2:
                    procs[p_pid].rss[MEMBER_KEY[member]] = int(size[at]) >> 12
        if len(rss) < n:
            # The pages faulted in each mapping, written or read.
            fault = np.flatnonzero(kind == 2)
            key = inv[fault] * 2 + blk.b[i:j][fault]
            order = np.argsort(key, kind="stable")
            pages = (blk.a[i:j][fault][order] >> 12).tolist()
            counts = np.bincount(key, minlength=2 * len(tid_pid))
            ends = np.cumsum(counts).tolist()
            sizes = counts.tolist()
            for k in np.flatnonzero(counts).tolist():  # k: a tid's index * 2 + write
                p = procs[tid_pid[k >> 1]]
                v = p.last_vma
                assert v is not None
                (v.new_w if k & 1 else v.new_r).extend(pages[ends[k] - sizes[k]:ends[k]])
                if not v.dirty:
                    v.dirty = True
                    p.dirty.append(v)

    def _add_rows(self) -> None:
        """Hand the bulk rows made so far to the builder."""
        lo, hi = self.pending_lo, self.pending_hi
        if hi <= lo:
            return
        self.pending_lo = self.pending_hi = hi
        blk = self.blk
        at = np.flatnonzero(self.emit_seq[lo:hi] >= 0)
        at += lo
        kind = blk.kind[at]
        rss = at[kind == 1]
        if len(rss):
            rows = np.empty((len(rss), 7), dtype=np.int64)  # rss_stat's columns
            rows[:, 0] = self.emit_seq[rss]
            rows[:, 1] = blk.ts[rss]
            rows[:, 2] = rows[:, 3] = self.emit_pid[rss]
            rows[:, 4] = 1
            rows[:, 5] = blk.c[rss]
            rows[:, 6] = blk.d[rss]
            self.builder.out.add_rows("rss_stat", rows)
        fault = at[kind == 2]
        if len(fault):
            rows = np.zeros((len(fault), 8), dtype=np.int64)  # page_fault's columns
            rows[:, 0] = self.emit_seq[fault]
            rows[:, 1] = blk.ts[fault]
            rows[:, 2] = self.emit_pid[fault]
            rows[:, 3] = blk.a[fault] & ~np.int64(0xFFF)
            rows[:, 4] = blk.b[fault]
            rows[:, 6] = self.emit_code[fault]
            self.builder.out.add_rows("page_fault", rows)

    def _lines(self, lo: int, hi: int) -> None:
        """Lines [lo, hi) one at a time: the common cases of rss_stat and page
        faults inlined, the builder's methods for the other cases, text for the rest."""
        builder, blk = self.builder, self.blk
        comms, tgid, sigs = builder.comms, builder.tgid, self.sigs
        out, syscalls = builder.out, builder.syscalls
        rss_event, fault_event = builder.kmem.rss_event, builder.exceptions.fault_event
        procs = builder.work.procs
        mm_owner = builder.kmem.mm_owner
        pending_fault = builder.exceptions.pending
        fault_flat = out.fault_flat
        rss_flat = out.rss_flat
        seq = out.seq
        last_ts = builder.last_ts
        owned = from_vma = from_rss = 0
        assert self.layout is not None
        comm_end = self.layout.comm_end
        rows = zip(range(lo, hi), blk.kind[lo:hi].tolist(), blk.pid[lo:hi].tolist(), blk.ts[lo:hi].tolist(),
                   blk.sig[lo:hi].tolist(), blk.a[lo:hi].tolist(), (blk.b[lo:hi] == 1).tolist(),
                   blk.c[lo:hi].tolist(), blk.d[lo:hi].tolist())
        for i, kind, pid, ts, sig, a, b, c, d in rows:
            if kind:
                builder.tid = pid
                if tgid:
                    pid = tgid.get(pid, pid)
                if sigs.get(pid) == sig:  # (set only once an event was seen)
                    if ts > last_ts:
                        last_ts = builder.last_ts = ts
                        if builder.first_ts is None:
                            builder.first_ts = ts
                    p = procs.get(pid)
                    if p is not None and ts - p.slice_start < SLICE_NS:
                        if kind == 1:
                            mm = a
                            member = c
                            if b and mm_owner.get(mm) == pid and p.mm_id == mm:
                                pend = pending_fault.pop(pid, None)
                                if pend is not None:
                                    if member != 2:
                                        heap = p.heap
                                        pend[6] = 5 if (member == 1 and heap is not None
                                                        and heap.start <= pend[3] < heap.end) else MEMBER_KIND[member]
                                        from_rss += 1
                                    fault_flat.extend(pend)
                                p.last_ts = ts
                                if member != 2:
                                    p.rss[MEMBER_KEY[member]] = d >> 12
                                rss_flat += (seq, ts, pid, pid, 1, member, d)
                                seq += 1
                                owned += 1
                                continue
                        elif not syscalls.pending:
                            addr = a
                            write = b
                            v = p.last_vma
                            if v is not None and v.start <= addr < v.end:
                                p.last_ts = ts
                                fault_flat += (seq, ts, pid, addr & ~0xFFF, write, 0, v.code, 0)
                                seq += 1
                                from_vma += 1
                                (v.new_w if write else v.new_r).append(addr >> 12)
                                if not v.dirty:
                                    v.dirty = True
                                    p.dirty.append(v)
                                continue
                            if not p.vmas and p.heap is None:
                                p.last_ts = ts
                                row = [seq, ts, pid, addr & ~0xFFF, write, 0, 0, 0]
                                seq += 1
                                older = pending_fault.get(pid)
                                if older is not None:
                                    fault_flat.extend(older)
                                pending_fault[pid] = row
                                if not p.has_rss:
                                    p.slice_faults.append((row, addr >> 12, write))
                                continue
                    # The numbers were read and bounded by _parse_block(): these
                    # take them as they are (no text left that could be unreadable).
                    out.seq = seq
                    if kind == 1:
                        rss_event(comms[pid], pid, ts, a, b, c, d)
                    else:
                        fault_event(comms[pid], pid, ts, a, b)
                    seq = out.seq
                    continue
            out.seq = seq
            start, end = int(blk.starts[i]), int(blk.ends[i])
            self._slow(self.raw[start:end].decode("utf-8", errors="replace"), sig,
                       self.raw[start:min(start + comm_end, end)])
            seq = out.seq
            last_ts = builder.last_ts
        out.seq = seq
        builder.kmem.mm_owned += owned
        builder.exceptions.from_vma += from_vma
        builder.exceptions.from_rss += from_rss
