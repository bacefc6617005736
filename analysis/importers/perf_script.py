"""``perf script`` text: one tracepoint event per line.

The default layout of ``perf script`` for tracepoints (tools/perf/builtin-script.c,
``../shared/reference/kernel-mm-facts.md`` §7.7)::

    "%16s " comm, "%7d " tid, "[%03d] " cpu, "%12s: " time (sec.usec, or sec.nsec
    with --ns), "%*s: " system:event (right-aligned), then the event's text as
    libtraceevent renders its print_fmt.

Also read: ``pid/tid`` instead of the tid (``-F comm,pid,tid,...``), no cpu column,
comms with spaces. Header comments (``#``) and blank lines are skipped; any other line
that does not have this shape (callchains, non-tracepoint samples) is counted as
unknown.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .common import _MEMBER_KEY as MEMBER_KEY
from .common import _MEMBER_KIND as MEMBER_KIND
from .common import SLICE_NS, TraceBuilder, feed_line

#: ns per unit of the last digit of a fraction of ``n`` digits.
_SCALE = tuple(10 ** (9 - n) if n <= 9 else 0 for n in range(16))


def parse_line(line: str) -> tuple[str, int, int | None, int, str, str] | None:
    """``(comm, tid, pid or None, ts_ns, event, payload)`` of one perf script line,
    or None when the line is not a tracepoint event line."""
    head, sep, rest = line.partition(": ")
    if not sep:
        return None
    name, sep, payload = rest.partition(": ")
    if not sep:
        name = rest.rstrip().rstrip(":")
        payload = ""
    name = name.strip()
    if ":" not in name or " " in name:
        return None
    toks = head.rsplit(None, 3)
    if len(toks) == 4 and toks[2][:1] == "[":
        comm, who, ts = toks[0], toks[1], toks[3]
    else:
        toks = head.rsplit(None, 2)
        if len(toks) != 3:
            return None
        comm, who, ts = toks
    sec, dot, frac = ts.partition(".")
    if not dot or not sec.isdigit() or not frac.isdigit():
        return None
    ts_ns = int(sec) * 1_000_000_000 + int(frac) * _SCALE[min(len(frac), 15)]
    pid: int | None = None
    if "/" in who:
        p, _, t = who.partition("/")
        pid, tid = int(p), int(t)
    else:
        tid = int(who)
    return comm.strip(), tid, pid, ts_ns, name, payload


class _Layout:
    """Column positions of perf script's fixed-width default layout, learnt from
    one line: comm ``[:comm_end]``, tid ``[comm_end:cpu_open]``, time
    ``[cpu_close + 1:colon]``, event name ``[colon + 2:name_end]`` (padded), text
    ``[name_end + 2:]``. Lines that do not fit take the general path."""

    __slots__ = ("comm_end", "cpu_open", "cpu_close", "colon", "name_end", "scale", "dot")

    def __init__(self, comm_end: int, cpu_open: int, cpu_close: int, colon: int, name_end: int,
                 scale: int, dot: int) -> None:
        self.dot = dot  # the '.' of the time
        self.comm_end = comm_end
        self.cpu_open = cpu_open
        self.cpu_close = cpu_close
        self.colon = colon
        self.name_end = name_end
        self.scale = scale

    @classmethod
    def learn(cls, line: str) -> "_Layout | None":
        colon = line.find(": ")
        name_end = line.find(": ", colon + 2)
        if colon < 0 or name_end < 0:
            return None
        head = line[:colon]
        cpu_close = head.rfind("]")
        cpu_open = head.rfind("[", 0, cpu_close)
        if cpu_open < 0 or head[cpu_close + 1:].strip().count(".") != 1:
            return None
        before = head[:cpu_open].rstrip()
        tid_start = before.rfind(" ") + 1
        if not before[tid_start:].isdigit():
            return None
        comm_end = len(before[:tid_start].rstrip())
        if comm_end <= 0 or line[comm_end] != " ":
            return None
        frac = head[cpu_close + 1:].strip().partition(".")[2]
        if not frac.isdigit() or len(frac) > 9:
            return None
        return cls(comm_end, cpu_open, cpu_close, colon, name_end, 10 ** (9 - len(frac)), colon - len(frac) - 1)


def feed(lines: Iterable[str], builder: TraceBuilder, *, vectorised: bool = True) -> None:
    """Parse every line into ``builder``.

    A :class:`~.textio.TextLines` input is read in blocks of bytes whose lines in the
    file's fixed-width layout are cut up with numpy (:func:`_parse_block`): the two
    tracepoints that make up nearly all of a memory trace, ``kmem:rss_stat`` and
    ``exceptions:page_fault_user``, are parsed there, every other line as text
    (:func:`feed_lines`' general path). ``vectorised=False`` reads every line as
    text; both give the same trace.
    """
    if vectorised and hasattr(lines, "raw_blocks"):
        _feed_blocks(lines, builder)  # type: ignore[arg-type]
    else:
        feed_lines(lines, builder)


def feed_lines(lines: Iterable[str], builder: TraceBuilder) -> None:
    """Parse every line into ``builder``, one line of text at a time.

    The loop inlines :func:`parse_line` and :meth:`TraceBuilder.event` for lines in
    the file's fixed-width layout (learnt from a line, see :class:`_Layout`) from a
    task whose comm is unchanged: nearly every line. Any other line takes the
    general path, which also learns the layout again.
    """
    blocks = lines.blocks() if hasattr(lines, "blocks") else [lines]  # type: ignore[attr-defined]
    handlers = builder.handlers
    comms = builder.comms
    tgid = builder.tgid
    errors = (ValueError, IndexError, KeyError, OverflowError)
    padded: dict[str, object] = {}  # event names as printed (right-aligned) -> handler
    raw_comm: dict[int, str] = {}  # pid -> its comm as printed, when it matches comms
    total = 0
    last_ts = builder.last_ts
    lay: _Layout | None = None
    # Positions of the learnt layout (-1: none yet; then the fast test always fails).
    ce = co = colon = ne = dot = ts0 = -1
    longer = 1 << 30
    scale = 1000
    for block in blocks:
        total += len(block)
        for line in block:
            # The fixed-width fast path: single-character tests, then slices.
            if len(line) > longer and line[colon] == ":" and line[ne] == ":" and line[dot] == ".":
                handler = padded.get(line[colon + 2:ne])
                if handler is not None:
                    try:
                        ts = int(line[ts0:dot]) * 1_000_000_000 + int(line[dot + 1:colon]) * scale
                        pid = int(line[ce:co])
                    except ValueError:
                        pass
                    else:
                        if tgid:
                            pid = tgid.get(pid, pid)
                        if raw_comm.get(pid) == line[:ce]:
                            if ts > last_ts:
                                last_ts = builder.last_ts = ts
                            try:
                                if not handler(comms[pid], pid, ts, line[ne + 2:]):  # type: ignore[operator]
                                    builder.unreadable(line[colon + 2:ne].strip())
                            except errors:
                                builder.unreadable(line[colon + 2:ne].strip())
                            if builder.seq >= builder._next_flush:
                                builder._flush()
                            continue
            # The general path.
            parsed = feed_line(builder, line, parse_line)
            if parsed is None:
                continue
            comm, tid, pid_, ts_ns, name, payload = parsed
            last_ts = builder.last_ts
            if pid_ is None:
                learnt = _Layout.learn(line)
                if learnt is not None:
                    lay = learnt
                    ce, co, colon, ne, scale = lay.comm_end, lay.cpu_open, lay.colon, lay.name_end, lay.scale
                    dot = lay.dot
                    ts0 = lay.cpu_close + 1
                    longer = ne + 1
                    name_text = line[colon + 2:ne]
                    h = handlers.get(name_text.strip())
                    if h is not None:
                        padded[name_text] = h
                tid = tgid.get(tid, tid)
                if comms.get(tid) == comm:
                    raw_comm[tid] = line[:ce] if ce > 0 else comm
                h = handlers.get(name)
                if h is not None and ne > 0:
                    padded.setdefault(line[colon + 2:ne], h)
    builder.lines += total


# --------------------------------------------------------------------------- vectorised

_DIGIT8 = np.full(256, -1, dtype=np.int8)
_DIGIT8[48:58] = np.arange(10)
_HEXDIGIT8 = _DIGIT8.copy()
_HEXDIGIT8[97:103] = np.arange(10, 16)
_HEXDIGIT8[65:71] = np.arange(10, 16)
#: rss_stat members by their first letter(s): (code, name length).
_MEMBERS = {(70, 0): (0, 9), (65, 0): (1, 9), (83, 87): (2, 8), (83, 72): (3, 10)}  # F, A, SW, SH
_FNV = np.uint64(1099511628211)


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


class _Buf:
    """A block of bytes, readable as bytes and, at any offset, as 8-byte words (an
    overlapping little-endian view, so that gathering a field costs one index per
    8 bytes instead of one per byte). 128 zero bytes pad the end."""

    __slots__ = ("u8", "u64", "top")

    def __init__(self, raw: bytes) -> None:
        padded = raw + bytes(128)
        self.u8 = np.frombuffer(padded, dtype=np.uint8)
        self.u64 = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
        self.top = len(raw) - 1

    def __len__(self) -> int:
        return self.top + 1

    def byte(self, at: np.ndarray) -> np.ndarray:
        return self.u8[np.clip(at, 0, self.top)]


def _gather(buf: _Buf, at: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each position, one row per position (positions are
    clipped to the block; rows past its end read padding)."""
    words = (width + 7) // 8
    at = np.clip(at, 0, len(buf.u64) - 8 * words)
    if words == 1:
        rows = buf.u64[at][:, None]
    else:
        rows = np.stack([buf.u64[at + 8 * j] for j in range(words)], axis=1)
    return rows.view(np.uint8).reshape(len(at), 8 * words)[:, :width]


def _matches(buf: _Buf, at: np.ndarray, text: str | bytes) -> np.ndarray:
    """Whether ``text`` is at each position: compared 8 bytes at a time."""
    data = text.encode() if isinstance(text, str) else text
    at = np.clip(at, 0, len(buf.u64) - 1 - len(data))
    ok = np.ones(len(at), dtype=bool)
    for j in range(0, len(data), 8):
        chunk = data[j:j + 8]
        mask = np.uint64((1 << (8 * len(chunk))) - 1)
        ok &= (buf.u64[at + j] & mask) == np.uint64(int.from_bytes(chunk, "little"))
    return ok


def _right_aligned(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and validity of right-aligned decimal fields (leading spaces, then
    digits to the end), column by column."""
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
    return value, ok & seen


def _leading_number(buf: _Buf, at: np.ndarray, width: int, table: np.ndarray,
                    base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


class _Block:
    """One block's lines cut up for the fast path (see :func:`_parse_block`)."""

    __slots__ = ("starts", "ends", "kind", "pid", "ts", "sig", "a", "b", "c", "d")

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self.starts = starts
        self.ends = ends


def _parse_block(raw: bytes, lay: _Layout, rss_name: np.ndarray, fault_name: np.ndarray) -> _Block:
    """Every line of ``buf`` (bytes ending in a newline) as numbers, for the lines in
    ``lay``'s layout whose event is ``rss_name`` or ``fault_name`` (as printed,
    padded): ``kind`` 1 (rss_stat: a=mm_id, b=curr, c=member, d=size) or 2 (page
    fault: a=address, b=write); 0 for any other line, which is read as text. ``sig``
    is a hash of the comm column, to notice a new comm without decoding it."""
    buf = _Buf(raw)
    ends = np.flatnonzero(buf.u8[: len(raw)] == 10)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    blk = _Block(starts, ends)
    n = len(ends)
    lens = ends - starts
    ce, co, cc, colon, ne = lay.comm_end, lay.cpu_open, lay.cpu_close, lay.colon, lay.name_end
    top = buf.top

    def at(off: int) -> np.ndarray:
        return buf.u8[np.minimum(starts + off, top)]

    ok = ((lens > ne + 2) & (at(colon) == 58) & (at(colon + 1) == 32) & (at(ne) == 58) & (at(ne + 1) == 32)
          & (at(co) == 91) & (at(cc) == 93) & (at(ce) == 32) & (at(lay.dot) == 46))
    kind = np.zeros(n, dtype=np.int8)
    kind[ok & _matches(buf, starts + colon + 2, rss_name.tobytes())] = 1
    kind[ok & _matches(buf, starts + colon + 2, fault_name.tobytes())] = 2
    pid, pid_ok = _right_aligned(_gather(buf, starts + ce, co - 1 - ce))
    sec, sec_ok = _right_aligned(_gather(buf, starts + cc + 1, lay.dot - cc - 1))
    frac_chars = _gather(buf, starts + lay.dot + 1, colon - lay.dot - 1)
    frac, frac_ok = _right_aligned(frac_chars)
    frac_ok &= _DIGIT8[frac_chars[:, 0]] >= 0  # no leading spaces in a fraction
    kind[~(pid_ok & sec_ok & frac_ok)] = 0
    blk.pid = pid
    blk.ts = sec * 1_000_000_000 + frac * lay.scale
    words = (ce + 7) // 8
    sig = np.full(n, np.uint64(14695981039346656037))
    cut = np.uint64((1 << (8 * (ce - 8 * (words - 1)))) - 1) if ce % 8 else np.uint64((1 << 64) - 1)
    for j in range(words):
        word = buf.u64[np.clip(starts + 8 * j, 0, len(buf.u64) - 1)]
        if j == words - 1:
            word = word & cut
        sig = (sig ^ word) * _FNV
    blk.sig = sig
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
        second = np.where(first == 83, buf.u8[np.minimum(q + 17, top)], 0)
        code = np.full(len(r), -1, dtype=np.int64)
        name_len = np.zeros(len(r), dtype=np.int64)
        for (c0, c1), (mcode, length) in _MEMBERS.items():
            hit = (first == c0) & (second == c1)
            code[hit] = mcode
            name_len[hit] = length
        good &= code >= 0
        z = q + 16 + name_len
        good &= _matches(buf, z, " size=")
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
    blk.kind, blk.a, blk.b, blk.c, blk.d = kind, a, b, c, d
    return blk


def _feed_blocks(text: Any, builder: TraceBuilder) -> None:
    """:func:`feed` over raw byte blocks (see :func:`_parse_block`)."""
    comms = builder.comms
    tgid = builder.tgid
    rss_event = builder.rss_event
    fault_event = builder.fault_event
    errors = (ValueError, IndexError, KeyError, OverflowError)
    sigs: dict[int, int] = {}  # pid -> comm-column hash of its current comm
    state: dict[str, Any] = {"layout": None}
    total = 0

    def slow(line: str, sig: int | None) -> None:
        parsed = feed_line(builder, line, parse_line)
        if parsed is None:
            return
        comm, tid, pid_, ts_ns, name, payload = parsed
        if pid_ is None:
            if state["layout"] is None:
                learnt = _Layout.learn(line)
                if learnt is not None:
                    state["layout"] = learnt
                    width = learnt.name_end - learnt.colon - 2
                    state["rss"] = _bytes(f"{'kmem:rss_stat':>{width}}"[-width:])
                    state["fault"] = _bytes(f"{'exceptions:page_fault_user':>{width}}"[-width:])
            p = tgid.get(tid, tid)
            if sig is not None and comms.get(p) == comm:
                sigs[p] = sig

    for raw in text.raw_blocks():
        lay: _Layout | None = state["layout"]
        if lay is None:
            lines = raw.decode("utf-8", errors="replace").split("\n")[:-1]
            total += len(lines)
            for line in lines:
                slow(line, None)
            continue
        blk = _parse_block(raw, lay, state["rss"], state["fault"])
        kinds = blk.kind.tolist()
        total += len(kinds)
        rows = zip(kinds, blk.pid.tolist(), blk.ts.tolist(), blk.sig.tolist(), blk.a.tolist(),
                   (blk.b == 1).tolist(), blk.c.tolist(), blk.d.tolist())
        starts, ends = blk.starts.tolist(), blk.ends.tolist()
        last_ts = builder.last_ts
        # The common cases of TraceBuilder.rss_event() and fault_event(), inlined (an
        # established mm, a known mapping or none at all, no slice boundary); any
        # other case calls them. Both paths give the same trace (tested).
        procs = builder._procs
        mm_owner = builder.mm_owner
        pending_fault = builder.pending_fault
        fault_flat = builder._fault_flat
        rss_flat = builder._rss_flat
        seq = builder.seq
        owned = from_vma = from_rss = 0
        for i, (kind, pid, ts, sig, a, b, c, d) in enumerate(rows):
            if kind:
                if tgid:
                    pid = tgid.get(pid, pid)
                if sigs.get(pid) == sig:  # (set only once an event was seen)
                    if ts > last_ts:
                        last_ts = builder.last_ts = ts
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
                        elif not builder.pending_sys:
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
                    builder.seq = seq
                    try:
                        if kind == 1:
                            rss_event(comms[pid], pid, ts, a, b, c, d)
                        else:
                            fault_event(comms[pid], pid, ts, a, b)
                    except errors:
                        builder.unreadable("kmem:rss_stat" if kind == 1 else "exceptions:page_fault_user")
                    seq = builder.seq
                    continue
            builder.seq = seq
            slow(raw[starts[i]:ends[i]].decode("utf-8", errors="replace"), sig)
            seq = builder.seq
            last_ts = builder.last_ts
        builder.seq = seq
        builder.mm_owned += owned
        builder.fault_from_vma += from_vma
        builder.fault_from_rss += from_rss
        if builder.seq >= builder._next_flush:  # a group per ~GROUP_EVENTS events
            builder._flush()
    builder.lines += total

