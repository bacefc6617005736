"""Trace files made frame by frame: hostile inputs for tests, fuzzers and benchmarks.

A file's checksums only say its bytes are the ones written. To test what a reader
does with values it should not trust, this module writes frames with the real
framing (:func:`.format.frame`: marker, length, CRC-32), so every checksum passes
and what the reader meets is exactly the values chosen here: headers with bytes
where text belongs, chunks claiming millions of events, every chunk in one flush
group.

The *bombs* are the small files of issue 14's findings, rebuilt: each is about a
megabyte (or less) and, read without bounds, costs gigabytes. ``tests/robustness``
reads them under a memory limit; ``bench/bench_guardrails.py`` measures the
commands on them.

Nothing here is used when memtrace reads or writes a trace.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgpack
import numpy as np

from ..schema import Registry, Tracepoint
from ..tracepoints import MEMINFO_FIELDS, default_registry
from .columns import encode_column
from .format import FORMAT_VERSION, FRAME_CHUNK, FRAME_FOOTER, FRAME_HEAD, MAGIC, frame

__all__ = [
    "BOMBS",
    "bomb_deep_header",
    "bomb_huge_chunks",
    "bomb_interleave",
    "bomb_meminfo",
    "bomb_one_group",
    "bomb_tasks",
    "bomb_zip",
    "chunk_frame",
    "delta_zeros",
    "footer_frame",
    "header",
    "header_frame",
    "pack",
    "raw_zeros",
    "write_trace",
]


def pack(value: Any) -> bytes:
    """``value`` as msgpack, text as str and bytes as bin (as the writer packs)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def header(registry: Registry | None = None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The header map the writer would write for ``registry`` and ``meta``."""
    reg = registry if registry is not None else default_registry()
    return {
        "format_version": list(FORMAT_VERSION),
        "memtrace_version": "0.1.0",
        "created_by": "memtrace 0.1.0",
        "meta": dict(meta or {"seed": 0}),
        "schemas": [tp.describe() for tp in reg],
    }


def header_frame(head: Mapping[str, Any] | bytes) -> bytes:
    """A header frame of ``head`` (a map, or msgpack bytes as they are)."""
    return frame(FRAME_HEAD, head if isinstance(head, bytes) else pack(head))


def chunk_frame(body: Mapping[str, Any] | bytes, *, level: int = 1) -> bytes:
    """A chunk frame: ``body`` (a map, or msgpack bytes) zlib-compressed."""
    raw = body if isinstance(body, bytes) else pack(body)
    return frame(FRAME_CHUNK, zlib.compress(raw, level))


def footer_frame(footer: Mapping[str, Any] | bytes) -> bytes:
    return frame(FRAME_FOOTER, footer if isinstance(footer, bytes) else pack(footer))


def write_trace(path: str | os.PathLike[str], head: Mapping[str, Any] | bytes, frames: Iterable[bytes]) -> int:
    """Write magic, header and ``frames`` to ``path``; the file's size in bytes."""
    size = 0
    with open(path, "wb") as f:
        for part in (MAGIC, header_frame(head), *frames):
            f.write(part)
            size += len(part)
    return size


def delta_zeros(n: int, first: int = 0) -> dict[str, Any]:
    """A delta column of ``n`` values all equal to ``first`` (differences of 0)."""
    return {"enc": "delta", "first": first, "width": 1, "data": bytes(max(n - 1, 0))}


def raw_zeros(n: int, width: int) -> dict[str, Any]:
    """A raw column of ``n`` zero values of ``width`` bytes."""
    return {"enc": "raw", "data": bytes(n * width)}


def _zero_cols(tp: Tracepoint, n: int, seq0: int = 0, seq_step: int = 1) -> list[dict[str, Any]]:
    """Columns of ``n`` events of ``tp``: seq from ``seq0`` by ``seq_step``, every
    other value 0 (or the empty string); cheap to compress."""
    cols: list[dict[str, Any]] = []
    for f in tp.all_fields:
        if f.name == "seq":
            step = seq_step.to_bytes(1, "little") if n > 1 else b""
            cols.append({"enc": "delta", "first": seq0, "width": 1, "data": step * max(n - 1, 0)})
        elif f.type == "str":
            cols.append({"enc": "dict", "values": [""], "codes": bytes(4 * n)})
        elif f.type in ("u32", "u64", "i32", "i64"):
            cols.append(delta_zeros(n))
        else:
            cols.append(raw_zeros(n, f.dtype.itemsize if f.dtype is not None else 1))
    return cols


def _tp(registry: Registry, name: str) -> tuple[int, Tracepoint]:
    tp = registry[name]
    return registry.id_of(tp), tp


def _chunks_up_to(reg: Registry, size_bytes: int, chunk: Callable[[int], bytes]) -> list[bytes]:
    """Chunk frames ``chunk(0)``, ``chunk(1)`` ... as long as the file (magic and
    header included) stays within ``size_bytes``; at least one."""
    frames: list[bytes] = []
    total = len(MAGIC) + len(header_frame(header(reg)))
    while True:
        fr = chunk(len(frames))
        if total + len(fr) > size_bytes and frames:
            return frames
        frames.append(fr)
        total += len(fr)


def bomb_huge_chunks(path: str | os.PathLike[str], *, events_per_chunk: int = 16 << 20,
                     size_bytes: int = 1 << 20) -> int:
    """Chunks that claim ``events_per_chunk`` page faults each (16 M: 16 MB of
    columns per field), consistent and checksummed, up to ``size_bytes``: read
    without bounds, each chunk inflates to ~130 MB and decodes to ~650 MB. Returns
    the file size."""
    reg = default_registry()
    tp_id, tp = _tp(reg, "page_fault")

    def chunk(i: int) -> bytes:
        return chunk_frame({"tp": tp_id, "n": events_per_chunk, "group": i,
                            "cols": _zero_cols(tp, events_per_chunk, i * events_per_chunk)}, level=9)

    return write_trace(path, header(reg), _chunks_up_to(reg, size_bytes, chunk))


def bomb_zip(path: str | os.PathLike[str], *, inflated_bytes: int = 256 << 20) -> int:
    """One chunk that says it holds 10 events but whose zlib stream inflates to
    ``inflated_bytes`` (256 MiB of an unknown key, in a ~250 KB frame)."""
    reg = default_registry()
    tp_id, tp = _tp(reg, "page_fault")
    prefix = pack({"tp": tp_id, "n": 10, "group": 0})
    # The same map with one more key holding a long bin, then cols: rebuilt by hand
    # so the bin need not be in memory twice.
    cols = pack(_zero_cols(tp, 10))
    pad_header = b"\xc6" + inflated_bytes.to_bytes(4, "big")
    body_head = bytes([0x85]) + prefix[1:] + pack("pad") + pad_header
    comp = zlib.compressobj(9)
    parts = [comp.compress(body_head)]
    block = bytes(1 << 20)
    left = inflated_bytes
    while left:
        take = min(left, len(block))
        parts.append(comp.compress(block[:take]))
        left -= take
    parts.append(comp.compress(pack("cols") + cols))
    parts.append(comp.flush())
    return write_trace(path, header(reg), [frame(FRAME_CHUNK, b"".join(parts))])


def bomb_one_group(path: str | os.PathLike[str], *, events_per_chunk: int = 65536,
                   size_bytes: int = 1 << 20) -> int:
    """Chunks of the writer's size (65,536 page faults), every one in flush group 0,
    up to ``size_bytes``: about 200 M events that, merged as one group, would all be
    held at once (seq increasing through the file). Returns the file size."""
    reg = default_registry()
    tp_id, tp = _tp(reg, "page_fault")

    def chunk(i: int) -> bytes:
        return chunk_frame({"tp": tp_id, "n": events_per_chunk, "group": 0,
                            "cols": _zero_cols(tp, events_per_chunk, i * events_per_chunk)}, level=9)

    return write_trace(path, header(reg), _chunks_up_to(reg, size_bytes, chunk))


def bomb_meminfo(path: str | os.PathLike[str], *, samples: int = 3_500_000, events_per_chunk: int = 65536) -> int:
    """``samples`` meminfo_sample events (3.5 M: one a second for 40 days) in flush
    groups of the writer's size, every field the same value: about 700 KB. An
    analysis that keeps every sample as Python objects needs gigabytes."""
    reg = default_registry()
    tp_id, tp = _tp(reg, "meminfo_sample")
    frames: list[bytes] = []
    seq = 0
    group = 0
    values = {name: 1 << 30 for _m, name in MEMINFO_FIELDS}
    while seq < samples:
        n = min(events_per_chunk, samples - seq)
        cols = []
        for f in tp.all_fields:
            if f.name == "seq":
                cols.append({"enc": "delta", "first": seq, "width": 1, "data": b"\x01" * (n - 1)})
            elif f.name == "ts_ns":
                # one sample a second
                step = np.full(n - 1, 1_000_000_000, dtype="<i4").tobytes()
                cols.append({"enc": "delta", "first": seq * 1_000_000_000, "width": 4, "data": step})
            else:
                cols.append(delta_zeros(n, values.get(f.name, 0)))
        frames.append(chunk_frame({"tp": tp_id, "n": n, "group": group, "cols": cols}, level=9))
        seq += n
        group += 1
    footer = {"counts": {"meminfo_sample": samples}, "total_events": samples, "last_seq": samples - 1,
              "first_ts_ns": 0, "last_ts_ns": (samples - 1) * 1_000_000_000, "chunks": len(frames),
              "groups": group, "extra": {}}
    return write_trace(path, header(reg, {"seed": 0, "machine": {"ram_bytes": 16 << 30, "swap_bytes": 0}}),
                       [*frames, footer_frame(footer)])


def bomb_deep_header(path: str | os.PathLike[str], *, depth: int = 500) -> int:
    """A header whose ``meta.workload`` nests ``depth`` maps deep, with a valid
    file otherwise (one chunk, a footer)."""
    nested: dict[str, Any] = {}
    for _ in range(depth):
        nested = {"x": nested}
    reg = default_registry()
    tp_id, tp = _tp(reg, "exit")
    cols = [encode_column(f, np.zeros(1, dtype=f.dtype) if f.dtype is not None else [""])
            for f in tp.all_fields]
    chunk = chunk_frame({"tp": tp_id, "n": 1, "group": 0, "cols": cols})
    footer = {"counts": {"exit": 1}, "total_events": 1, "last_seq": 0, "first_ts_ns": 0, "last_ts_ns": 0,
              "chunks": 1, "groups": 1, "extra": {}}
    return write_trace(path, header(reg, {"seed": 0, "workload": nested}), [chunk, footer_frame(footer)])


def bomb_tasks(path: str | os.PathLike[str], *, events_per_chunk: int = 65536, size_bytes: int = 1 << 20) -> int:
    """process_start events of ever new pids (pid = seq + 2), never an exit, in
    writer-sized chunks up to ``size_bytes``: 80 M tasks in 1 MB. A task table that
    keeps a row per task (every analysis and the one-liners keep one) would need
    tens of gigabytes. Returns the file size."""
    reg = default_registry()
    tp_id, tp = _tp(reg, "process_start")
    pid = [f.name for f in tp.all_fields].index("pid")

    def chunk(i: int) -> bytes:
        seq = i * events_per_chunk
        cols = _zero_cols(tp, events_per_chunk, seq)
        cols[pid] = {"enc": "delta", "first": seq + 2, "width": 1, "data": b"\x01" * (events_per_chunk - 1)}
        return chunk_frame({"tp": tp_id, "n": events_per_chunk, "group": i, "cols": cols}, level=9)

    return write_trace(path, header(reg), _chunks_up_to(reg, size_bytes, chunk))


def bomb_interleave(path: str | os.PathLike[str], *, events_per_chunk: int = 32768,
                    size_bytes: int = 1 << 20) -> int:
    """Two tracepoints whose events alternate one by one (page faults take the even
    seqs, rss_stat the odd), in writer-sized groups, up to ``size_bytes``: about 60
    M events in 1 MB that a reader in ``seq`` order must deliver as 60 M batches of
    one event each. Memory stays bounded; the time is per event. Returns the file
    size."""
    reg = default_registry()
    frames: list[bytes] = []
    total = len(MAGIC) + len(header_frame(header(reg)))
    seq = 0
    group = 0
    while total < size_bytes or not frames:
        for name, offset in (("page_fault", 0), ("rss_stat", 1)):
            tp_id, tp = _tp(reg, name)
            fr = chunk_frame({"tp": tp_id, "n": events_per_chunk, "group": group,
                              "cols": _zero_cols(tp, events_per_chunk, seq + offset, 2)}, level=9)
            frames.append(fr)
            total += len(fr)
        seq += 2 * events_per_chunk
        group += 1
    return write_trace(path, header(reg), frames)


#: Every bomb by name: builder(path) -> file size.
BOMBS = {
    "huge_chunks": bomb_huge_chunks,
    "zip": bomb_zip,
    "one_group": bomb_one_group,
    "meminfo": bomb_meminfo,
    "deep_header": bomb_deep_header,
    "tasks": bomb_tasks,
    "interleave": bomb_interleave,
}
