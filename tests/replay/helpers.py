"""Hand-made traces for the replay and diff tests: every event chosen by the test."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memtrace.tracer import Bus, Registry, TraceWriter, default_registry

MiB = 1 << 20
GiB = 1 << 30


def write_trace(path: Path, script: Callable[[Bus, Registry], None], *, chunk_events: int = 65536,
                meta: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                close: bool = True) -> Path:
    """Run ``script`` on a bus recorded to ``path`` (seq numbers from 0, as the bus
    gives); with ``close=False`` the file ends without its footer."""
    reg = default_registry()
    bus = Bus(reg)
    writer = TraceWriter(path, reg, meta if meta is not None else {"scenario": "hand-made"},
                         chunk_events=chunk_events)
    bus.attach(writer)
    script(bus, reg)
    writer.close(extra)
    if not close:  # what a killed recorder leaves: every group flushed, no footer
        data = path.read_bytes()
        start, _end, kind = frames_of(data)[-1]
        assert kind == b"F"
        path.write_bytes(data[:start])
    return path


def frames_of(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, type) of every frame after the 8-byte magic, parsed from the
    layout in docs/trace-format.md (marker, u32 length, u32 crc32, payload)."""
    out = []
    pos = 8
    while pos + 12 <= len(data):
        marker, length, _crc = struct.unpack_from("<4sII", data, pos)
        assert marker == b"MTCK"
        out.append((pos, pos + 12 + length, data[pos + 12 : pos + 13]))
        pos += 12 + length
    return out


def meminfo(anon: int = 0, cached: int = 0, shmem: int = 0, swap_total: int = 0, swap_free: int = 0) -> dict[str, int]:
    """The fields of a snapshot / meminfo_sample event; the ones a diff reads are given."""
    from memtrace.tracer.tracepoints import MEMINFO_FIELDS

    out = {name: 0 for _m, name in MEMINFO_FIELDS}
    out.update(mem_total=8 * GiB, mem_free=4 * GiB, mem_available=4 * GiB, anon_pages=anon,
               cached=cached, shmem=shmem, swap_total=swap_total, swap_free=swap_free)
    return out


def emit(bus: Bus, reg: Registry, name: str, ts_ns: Any, pid: Any, n: int = 1, **given: Any) -> None:
    """Emit ``n`` events of tracepoint ``name`` with the ``given`` fields; every other
    field is zero ('' for strings, the first name for enums), so the tests name only
    the fields they are about and survive fields being added to a schema."""
    tp = reg[name]
    unknown = sorted(set(given) - set(tp.field_names))
    if unknown:
        raise KeyError(f"{name} has no field {unknown[0]!r}")
    fields: dict[str, Any] = {}
    for f in tp.fields:
        if f.name in given:
            fields[f.name] = given[f.name]
        elif f.type == "str":
            fields[f.name] = ""
        elif f.type == "enum":
            fields[f.name] = f.values[0]
        else:
            fields[f.name] = 0
    bus.emit(tp, ts_ns, pid, n, **fields)


def naive_first_divergence(a: Path, b: Path) -> tuple[int, str, str | None] | None:
    """(index, tracepoint of A, first differing field) of the first events that
    differ, comparing one record at a time: slow, simple ground truth for the diff's
    vectorised alignment. The field is None when the tracepoints differ."""
    from memtrace.tracer import TraceReader

    ea, eb = TraceReader(a).events(), TraceReader(b).events()
    i = 0
    while True:
        ra, rb = next(ea, None), next(eb, None)
        if ra is None or rb is None:
            return None if ra is rb else (i, (ra or rb).name, None)
        if ra.name != rb.name:
            return i, ra.name, None
        if ra.fields != rb.fields:
            field = next(k for k in ra.fields if ra.fields[k] != rb.fields[k])
            return i, ra.name, field
        i += 1
