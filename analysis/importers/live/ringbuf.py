"""The ftrace ring buffer's binary pages, as ``per_cpu/cpuN/trace_pipe_raw`` gives them, decoded with numpy.

Models ``kernel/trace/ring_buffer.c``'s page and event layout (``header_page`` and
``header_event`` in tracefs; unchanged since 2.6.x, absolute time stamps since 5.10):

- a page (a sub-buffer, 4 KiB here) is a u64 time stamp, a u64 ``commit`` (bytes of
  data in its low 30 bits; bit 31 ``RB_MISSED_EVENTS``: events were lost before this
  page; bit 30 ``RB_MISSED_STORED``: their count is stored as a u64 right after the
  data), then the data;
- each record starts with a u32 ``type_len:5 | time_delta:27``. ``type_len`` 1..28:
  data of ``4 * type_len`` bytes follows; 0: a u32 length (+4), then data; 29:
  padding; 30: a time extend (the next u32 << 27 is added to the time); 31: an
  absolute time stamp. The time of a record is the page's plus every delta so far.

:func:`walk_pages` finds the data records of many pages at once: one numpy step
moves every page on by one record, so the loop runs as many times as the fullest
page has records (about 113 of the 36-byte memory events), whatever the number of
pages. :class:`RingDecoder` then reads the records' fields as columns: the two
events that make up nearly all of a memory trace (``kmem:rss_stat`` and
``exceptions:page_fault_user``) into four integer columns, the others into one
dict of fields per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from .tracefs import EventFormat, FormatField

__all__ = [
    "RB_MISSED_EVENTS",
    "RB_MISSED_STORED",
    "EventChunk",
    "LostMark",
    "PageWalk",
    "RingDecoder",
    "walk_pages",
]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: ``commit`` flags of a page (kernel/trace/ring_buffer.c).
RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
_COMMIT_LENGTH = (1 << 30) - 1
_TS_SHIFT = 27
_TYPE_PADDING, _TYPE_TIME_EXTEND, _TYPE_TIME_STAMP = 29, 30, 31
_DATA_MAX_TYPE_LEN = 28


class LostMark(NamedTuple):
    """A gap in one CPU's events: the first page read after it, and how many events
    the kernel overwrote there (-1: it did not store the count)."""

    page_ts_ns: int
    events: int


class PageWalk(NamedTuple):
    """The data records of a run of pages: each one's offset in the buffer, length
    and time (ns on the trace clock), in buffer order; and the gaps seen."""

    offset: I64
    length: I64
    ts_ns: I64
    pages: int
    lost: list[LostMark]


def _empty() -> I64:
    return np.zeros(0, dtype=np.int64)


def walk_pages(buf: bytes, page_size: int) -> PageWalk:
    """Every data record of the whole pages in ``buf`` (see the module docstring).

    A record header that would not advance (a damaged page) ends its page's walk.
    """
    n = len(buf) // page_size
    if n == 0:
        return PageWalk(_empty(), _empty(), _empty(), 0, [])
    words = np.frombuffer(buf, dtype="<u4", count=n * page_size // 4).astype(np.int64)
    base = np.arange(n, dtype=np.int64) * page_size
    page_ts = np.ndarray((n,), dtype="<u8", buffer=buf, offset=0, strides=(page_size,)).astype(np.int64)
    commit = np.ndarray((n,), dtype="<u8", buffer=buf, offset=8, strides=(page_size,)).astype(np.int64)
    length = np.minimum(commit & _COMMIT_LENGTH, page_size - 16)
    lost: list[LostMark] = []
    for i in np.flatnonzero(commit & RB_MISSED_EVENTS).tolist():
        count = -1
        at = int(base[i] + 16 + length[i])
        if commit[i] & RB_MISSED_STORED and at + 8 <= (i + 1) * page_size:
            count = int.from_bytes(buf[at:at + 8], "little")
        lost.append(LostMark(int(page_ts[i]), count))
    end = base + 16 + length
    cur = base + 16
    ts = page_ts.copy()
    last_word = words.size - 1
    offs: list[I64] = []
    lens: list[I64] = []
    times: list[I64] = []
    act = np.flatnonzero(cur < end)
    while act.size:
        c = cur[act]
        h = words[c >> 2]
        type_len = h & 31
        t = ts[act] + (h >> 5)  # a delta applies to data and padding records alike
        if bool(((type_len == 0) | (type_len > _DATA_MAX_TYPE_LEN)).any()):
            arg = words[np.minimum((c >> 2) + 1, last_word)]
            size = np.where(type_len == 0, 4 + arg,
                            np.where(type_len <= _DATA_MAX_TYPE_LEN, 4 + 4 * type_len,
                                     np.where(type_len == _TYPE_PADDING, 4 + arg, 8)))
            t = np.where(type_len == _TYPE_TIME_EXTEND, t + (arg << _TS_SHIFT), t)
            absolute = type_len == _TYPE_TIME_STAMP
            if bool(absolute.any()):  # 5.10+: the low 59 bits; the top bits from the page
                value = (arg << _TS_SHIFT) | (h >> 5)
                t = np.where(absolute, value | (ts[act] & np.int64(-(1 << 59))), t)
            data = type_len <= _DATA_MAX_TYPE_LEN
            big = type_len == 0
            offs.append((c + np.where(big, 8, 4))[data])
            lens.append(np.where(big, arg - 4, 4 * type_len)[data])
            times.append(t[data])
            size = np.where(size <= 0, end[act] - c, size)  # damaged: skip the page's rest
        else:  # small data records only: the common step
            size = 4 + 4 * type_len
            offs.append(c + 4)
            lens.append(4 * type_len)
            times.append(t)
        ts[act] = t
        nxt = c + size
        cur[act] = nxt
        act = act[nxt < end[act]]
    if not offs:
        return PageWalk(_empty(), _empty(), _empty(), n, lost)
    off = np.concatenate(offs)
    order = np.argsort(off, kind="stable")  # page order, then place in the page
    length_out = np.concatenate(lens)[order]
    keep = length_out >= 8  # a record too short for its common fields is damage
    return PageWalk(off[order][keep], length_out[keep], np.concatenate(times)[order][keep], n, lost)


# --------------------------------------------------------------------------- fields


def _ints(buf: U8, at: I64, size: int, signed: bool) -> I64:
    """The ``size``-byte little-endian integers at byte offsets ``at`` (which, as every
    record's data, are 4-byte aligned) as int64 (a u64 beyond 2**63 wraps)."""
    if at.size == 0:
        return _empty()
    if size in (4, 8) and not bool((at & 3).any()):
        u32 = buf[: buf.size // 4 * 4].view("<u4")
        w = at >> 2
        if size == 4:
            out: I64 = u32[w].view(f"<{'i' if signed else 'u'}4").astype(np.int64)
            return out
        lo = u32[w].astype(np.uint64)
        hi = u32[w + 1].astype(np.uint64)
        wide: I64 = (lo | (hi << np.uint64(32))).view(np.int64)
        return wide
    raw = buf[at[:, None] + np.arange(size, dtype=np.int64)]
    dtype = f"<{'i' if signed else 'u'}{size}"
    small: I64 = raw.copy().view(dtype).reshape(-1).astype(np.int64)
    return small


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


@dataclass
class EventChunk:
    """Decoded events, one row each: time (ns, trace clock), task (``common_pid``:
    the thread id), event id (``common_type``), and their fields.

    ``a``, ``b``, ``c``, ``d`` hold the fields of the two hot events: for
    ``kmem:rss_stat`` mm_id, curr, member and size (bytes); for
    ``exceptions:page_fault_user`` address, error_code and ip (``d`` 0). Every other
    event's fields are in ``fields`` under its row (names as in its format file;
    integers as ints, strings as str).
    """

    ts_ns: I64
    tid: I64
    event_id: I64
    a: I64
    b: I64
    c: I64
    d: I64
    fields: dict[int, dict[str, int | str]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> EventChunk:
        return cls(_empty(), _empty(), _empty(), _empty(), _empty(), _empty(), _empty())

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def take(self, rows: I64) -> EventChunk:
        """The events at ``rows`` (in that order)."""
        moved: dict[int, dict[str, int | str]] = {}
        if self.fields:
            where = np.full(len(self), -1, dtype=np.int64)
            where[rows] = np.arange(rows.size, dtype=np.int64)
            for row, values in self.fields.items():
                new = int(where[row])
                if new >= 0:
                    moved[new] = values
        return EventChunk(self.ts_ns[rows], self.tid[rows], self.event_id[rows], self.a[rows], self.b[rows],
                          self.c[rows], self.d[rows], moved)

    def slice(self, lo: int, hi: int) -> EventChunk:
        """Events ``lo`` to ``hi`` (views, not copies)."""
        fields = {row - lo: values for row, values in self.fields.items() if lo <= row < hi}
        return EventChunk(self.ts_ns[lo:hi], self.tid[lo:hi], self.event_id[lo:hi], self.a[lo:hi], self.b[lo:hi],
                          self.c[lo:hi], self.d[lo:hi], fields)

    @staticmethod
    def concat(chunks: list[EventChunk]) -> EventChunk:
        """The events of ``chunks`` one after another."""
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return EventChunk.empty()
        if len(chunks) == 1:
            return chunks[0]
        fields: dict[int, dict[str, int | str]] = {}
        at = 0
        for c in chunks:
            for row, values in c.fields.items():
                fields[at + row] = values
            at += len(c)
        def cat(name: str) -> I64:
            joined: I64 = np.concatenate([getattr(c, name) for c in chunks])
            return joined

        return EventChunk(cat("ts_ns"), cat("tid"), cat("event_id"), cat("a"), cat("b"), cat("c"), cat("d"), fields)


class _Hot(NamedTuple):
    """A hot event's id and the fields read into ``a``..``d`` (None: 0)."""

    id: int
    columns: tuple[FormatField | None, ...]


class RingDecoder:
    """Decodes ring-buffer pages of events whose formats it was given.

    ``formats`` maps event id to format (the enabled events, and ``ftrace:print`` for
    ``trace_marker`` writes). Records of an id it does not know are counted in
    :attr:`unknown_ids` and dropped.
    """

    HOT: ClassVar[dict[str, tuple[str, ...]]] = {
        "kmem:rss_stat": ("mm_id", "curr", "member", "size"),
        "exceptions:page_fault_user": ("address", "error_code", "ip"),
    }

    def __init__(self, formats: dict[int, EventFormat], page_size: int) -> None:
        self.formats = formats
        self.page_size = page_size
        self.hot: dict[int, _Hot] = {}
        for fmt in formats.values():
            names = self.HOT.get(fmt.full_name)
            if names is not None:
                self.hot[fmt.id] = _Hot(fmt.id, tuple(fmt.field(n) for n in names))
        self.unknown_ids: dict[int, int] = {}

    def decode(self, buf: bytes, walk: PageWalk | None = None) -> EventChunk:
        """The events of the whole pages in ``buf``, in buffer order."""
        w = walk if walk is not None else walk_pages(buf, self.page_size)
        if w.offset.size == 0:
            return EventChunk.empty()
        data = np.frombuffer(buf, dtype=np.uint8)
        rows = w.offset
        event_id = _ints(data, rows, 2, False)
        tid = _ints(data, rows + 4, 4, True)
        cols = [np.zeros(rows.size, dtype=np.int64) for _ in range(4)]
        fields: dict[int, dict[str, int | str]] = {}
        for eid in np.unique(event_id).tolist():
            sel = np.flatnonzero(event_id == eid)
            hot = self.hot.get(eid)
            if hot is not None:
                for col, f in zip(cols, hot.columns):
                    if f is not None:
                        col[sel] = _ints(data, rows[sel] + f.offset, f.size, f.signed)
                continue
            fmt = self.formats.get(eid)
            if fmt is None:
                self.unknown_ids[eid] = self.unknown_ids.get(eid, 0) + int(sel.size)
                continue
            for row, values in zip(sel.tolist(), self._fields(buf, data, rows[sel], w.length[sel], fmt)):
                fields[row] = values
        known = np.flatnonzero(np.isin(event_id, list(self.formats)))
        chunk = EventChunk(w.ts_ns, tid, event_id, cols[0], cols[1], cols[2], cols[3], fields)
        return chunk if known.size == rows.size else chunk.take(known)

    @staticmethod
    def _fields(buf: bytes, data: U8, rows: I64, lengths: I64, fmt: EventFormat) -> list[dict[str, int | str]]:
        """One dict of fields per record of an event that is not hot."""
        out: list[dict[str, int | str]] = [{} for _ in range(rows.size)]
        starts = rows.tolist()
        ends = (rows + lengths).tolist()
        for f in fmt.fields:
            if f.name.startswith("common_"):
                continue
            if f.kind == "int":
                for d, v in zip(out, _ints(data, rows + f.offset, f.size, f.signed).tolist()):
                    d[f.name] = v
            elif f.kind == "chars":
                for d, s in zip(out, starts):
                    d[f.name] = _text(buf[s + f.offset:s + f.offset + f.size])
            elif f.kind == "data_loc":
                locs = _ints(data, rows + f.offset, 4, False).tolist()
                for d, s, e, loc in zip(out, starts, ends, locs):
                    at = s + (loc & 0xFFFF)
                    d[f.name] = _text(buf[at:min(at + (loc >> 16), e)])
            elif f.kind == "dynamic":  # ftrace:print's buf[]: text to the record's end
                for d, s, e in zip(out, starts, ends):
                    d[f.name] = _text(buf[s + f.offset:e]).rstrip("\n")
        return out
