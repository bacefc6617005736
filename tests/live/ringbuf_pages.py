"""Ring-buffer pages made by hand, as the kernel writes them (for the decoder's tests).

:func:`record` packs an event's fields at the offsets of its format file (strings of
``__data_loc`` fields and a trailing ``buf[]`` after the fixed part); :func:`page`
lays records out in a 4 KiB page behind their ``type_len | time_delta << 5``
headers (a time extend when a delta needs more than 27 bits), with the
``commit`` flags of a gap when asked.
"""

from __future__ import annotations

import struct
from pathlib import Path

from memtrace.analysis.importers.live.ringbuf import RB_MISSED_EVENTS, RB_MISSED_STORED
from memtrace.analysis.importers.live.tracefs import EventFormat, parse_format

DATA = Path(__file__).parent / "data"
PAGE_SIZE = 4096


def formats() -> dict[str, EventFormat]:
    """The format files of tests/live/data, by ``system:name``."""
    out: dict[str, EventFormat] = {}
    for path in sorted(DATA.glob("*.format")):
        fmt = parse_format(path.name.split(".")[0], path.read_text())
        out[fmt.full_name] = fmt
    return out


def record(fmt: EventFormat, tid: int, **values: int | str) -> bytes:
    """One event's record (common fields, then its own), padded to 4 bytes."""
    fixed = max((f.offset + f.size for f in fmt.fields), default=8)
    data = bytearray(fixed)
    struct.pack_into("<HBBi", data, 0, fmt.id, 0, 0, tid)
    tail = bytearray()
    for f in fmt.fields:
        if f.name.startswith("common_") or f.name not in values:
            continue
        v = values[f.name]
        if f.kind == "int":
            assert isinstance(v, int)
            data[f.offset:f.offset + f.size] = (v & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")
        elif f.kind == "chars":
            assert isinstance(v, str)
            data[f.offset:f.offset + f.size] = v.encode()[:f.size - 1].ljust(f.size, b"\0")
        elif f.kind == "data_loc":
            assert isinstance(v, str)
            text = v.encode() + b"\0"
            struct.pack_into("<I", data, f.offset, (len(text) << 16) | (fixed + len(tail)))
            tail += text
        elif f.kind == "dynamic":
            assert isinstance(v, str)
            tail += v.encode() + b"\0"
    out = bytes(data + tail)
    return out + bytes(-len(out) % 4)


def page(ts_ns: int, records: list[tuple[int, bytes]], *, lost: int | None = None, padding: int = 0) -> bytes:
    """A page starting at ``ts_ns`` holding ``records`` ((delta ns, record) each;
    a delta beyond 27 bits is a time extend first); ``lost`` marks a gap before it
    (-1: the count not stored); ``padding`` adds a padding record of that many
    bytes at the end."""
    body = bytearray()
    for delta, rec in records:
        if delta >= 1 << 27:
            body += struct.pack("<II", 30 | ((delta & ((1 << 27) - 1)) << 5), delta >> 27)
            delta = 0
        words = len(rec) // 4
        if words <= 28:
            body += struct.pack("<I", words | (delta << 5)) + rec
        else:  # type_len 0: the length (+4) in the next word
            body += struct.pack("<II", delta << 5, len(rec) + 4) + rec
    if padding:
        body += struct.pack("<II", 29, padding - 4) + bytes(padding - 8)
    commit = len(body)
    extra = b""
    if lost is not None:
        commit |= RB_MISSED_EVENTS
        if lost >= 0:
            commit |= RB_MISSED_STORED
            extra = struct.pack("<Q", lost)
    out = struct.pack("<QQ", ts_ns, commit) + body + extra
    assert len(out) <= PAGE_SIZE
    return out + bytes(PAGE_SIZE - len(out))
