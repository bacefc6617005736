"""Helpers of the trace file tests: a small parser of the frame layout (marker, u32
length, u32 crc32) written from the format description, a mixed workload recorded
through a real Bus, and comparisons with what a Collector saw on the same bus.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from hypothesis import HealthCheck

from memtrace.tracer import (
    Bus,
    Collector,
    EventBatch,
    Registry,
    concat,
    default_registry,
)
from memtrace.tracer.tracefile import TraceWriter

MAGIC = b"\x89MTRACE\n"


#: The damage tests share one small trace (a module fixture) across examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def frames_of(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, type) of every frame after the magic: an independent parser."""
    out = []
    pos = len(MAGIC)
    while pos < len(data):
        marker, length, crc = struct.unpack_from("<4sII", data, pos)
        assert marker == b"MTCK"
        payload = data[pos + 12 : pos + 12 + length]
        assert zlib.crc32(payload) == crc
        out.append((pos, pos + 12 + length, payload[:1]))
        pos += 12 + length
    return out


def chunk_bodies(data: bytes) -> list[dict[str, Any]]:
    """Every chunk body decoded by hand (zlib, then msgpack)."""
    bodies = []
    for start, end, kind in frames_of(data):
        if kind == b"C":
            bodies.append(msgpack.unpackb(zlib.decompress(data[start + 13 : end]), raw=False))
    return bodies


def frame(kind: bytes, body: bytes) -> bytes:
    payload = kind + body
    return struct.pack("<4sII", b"MTCK", len(payload), zlib.crc32(payload)) + payload


def record(
    path: Path,
    script: Callable[[Bus, Registry], None],
    *,
    chunk_events: int = 65536,
    meta: dict[str, Any] | None = None,
    registry: Registry | None = None,
    extra: dict[str, Any] | None = None,
) -> Collector:
    """Run ``script`` on a bus with a writer and a collector attached; close the file."""
    reg = registry or default_registry()
    bus = Bus(reg)
    collector = Collector()
    writer = TraceWriter(path, reg, meta or {"seed": 1}, chunk_events=chunk_events)
    bus.attach(writer)
    bus.attach(collector)
    script(bus, reg)
    writer.close(extra)
    return collector


def mixed_workload(bus: Bus, reg: Registry) -> None:
    """Several tracepoints interleaved: str, enum, bool, scalar and array fields.

    Emits 1 process_start, 1 mmap, 40 page_faults, 3 rss_stat, 1 mmap (failed),
    250 page_faults, 2 sysctl_set, 5 page_cache_add: 303 events, seq 0..302.
    """
    bus.emit(
        reg["process_start"], 1_000, 42, comm="stress", uid=1000, oom_score_adj=-100
    )
    bus.emit(
        reg["mmap"], 2_000, 42, addr=0x7F0000000000, len_bytes=1 << 20, prot=3, flags=0x22,
        vma_kind="anon_private", ino=0, path="", handle="buf", charged_pages=256, ret=0,
    )
    bus.emit(
        reg["page_fault"], 3_000 + np.arange(40, dtype=np.uint64) * 10, 42, 40,
        address=0x7F0000000000 + np.arange(40, dtype=np.uint64) * 4096,
        write=np.arange(40) % 3 == 0, major=False, vma_kind="anon_private",
        pfn=np.arange(1000, 1040),
    )
    bus.emit(
        reg["rss_stat"], 4_000, 42, 3, mm_pid=42, curr=[True, True, False],
        member=np.array([1, 0, 3]), size_bytes=np.array([40 * 4096, 0, -4096]),
    )
    bus.emit(
        reg["mmap"], 5_000, 43, addr=0, len_bytes=1 << 40, prot=1, flags=0x1,
        vma_kind="file_shared", ino=77, path="/data/big.bin", handle="big",
        charged_pages=0, ret=-12,
    )
    bus.emit(
        reg["page_fault"], 6_000 + np.arange(250, dtype=np.uint64) * 3, 43, 250,
        address=(np.arange(250, dtype=np.uint64) * 4096)[::-1].copy(),
        write=False, major=np.arange(250) % 7 == 0, vma_kind="file_shared",
        pfn=(np.arange(250, dtype=np.uint64) * 7919) % 4099,
    )
    bus.emit(
        reg["sysctl_set"], 7_000, 1, 2, name=["vm.swappiness", "vm.overcommit_memory"],
        value=["10", "2"], old=["60", "0"],
    )
    bus.emit(
        reg["page_cache_add"], 8_000, 43, 5, ino=77, index=np.arange(5),
        pfn=np.array([5, 3, 9, 1, 2]), shmem=False,
    )


def assert_batches_equal(read: list[EventBatch], want: list[EventBatch]) -> None:
    assert [(b.tp.name, b.n) for b in read] == [(b.tp.name, b.n) for b in want]
    assert all(a.equals(b) for a, b in zip(read, want, strict=True))


def per_tracepoint(batches: list[EventBatch]) -> dict[str, EventBatch]:
    grouped: dict[str, list[EventBatch]] = {}
    for b in batches:
        grouped.setdefault(b.tp.name, []).append(b)
    return {name: concat(bs) for name, bs in grouped.items()}


def assert_same_events(read: list[EventBatch], emitted: list[EventBatch]) -> None:
    got, want = per_tracepoint(read), per_tracepoint(emitted)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].equals(want[name]), name
