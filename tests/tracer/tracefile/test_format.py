"""The format on disk: frames, chunk layout, header, versions, and files that are not
traces, checked with a parser written from the format description.
"""

from __future__ import annotations

import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest

from memtrace.errors import TraceFormatError
from memtrace.tracer import (
    Bus,
    Registry,
    default_registry,
)
from memtrace.tracer.tracefile import TraceReader

from .helpers import (
    MAGIC,
    chunk_bodies,
    frame,
    frames_of,
    mixed_workload,
    record,
)


def test_chunk_layout_on_disk(tmp_path: Path) -> None:
    """The bytes follow the documented format: magic, frames, delta and dict columns."""

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["sysctl_set"], 5, 1, 3, name=["a", "b", "a"], value="1", old="0")

    path = tmp_path / "layout.mtrace"
    record(path, script)
    data = path.read_bytes()
    assert data[:8] == MAGIC
    assert [kind for _s, _e, kind in frames_of(data)] == [b"H", b"C", b"F"]
    (chunk,) = chunk_bodies(data)
    assert chunk["tp"] == 16 and chunk["n"] == 3 and chunk["group"] == 0
    seq, ts, pid, name, value, _old = chunk["cols"]
    assert seq == {"enc": "delta", "first": 0, "width": 1, "data": b"\x01\x01"}
    assert ts == {"enc": "delta", "first": 5, "width": 1, "data": b"\x00\x00"}
    assert pid == {"enc": "delta", "first": 1, "width": 1, "data": b"\x00\x00"}
    assert name == {"enc": "dict", "values": ["a", "b"],
                    "codes": struct.pack("<3I", 0, 1, 0)}
    assert value["values"] == ["1"]


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    """Determinism: same events and meta (in any key order) give the same file."""
    meta_a = {"seed": 7, "sysctls": {"vm.swappiness": 60, "vm.overcommit_memory": 0},
              "machine": {"ram_bytes": 1 << 30, "zones": ("DMA", "Normal")}}
    meta_b = {"machine": {"zones": ["DMA", "Normal"], "ram_bytes": 1 << 30},
              "sysctls": {"vm.overcommit_memory": 0, "vm.swappiness": 60}, "seed": 7}
    a, b = tmp_path / "a.mtrace", tmp_path / "b.mtrace"
    record(a, mixed_workload, chunk_events=50, meta=meta_a)
    record(b, mixed_workload, chunk_events=50, meta=meta_b)
    assert a.read_bytes() == b.read_bytes()


def test_header_carries_meta_and_schemas(tmp_path: Path) -> None:
    path = tmp_path / "meta.mtrace"
    meta = {"seed": 3, "scenario": "oom-basic", "sysctls": {"vm.swappiness": 10},
            "machine": {"zones": ("DMA32", "Normal")}}
    record(path, mixed_workload, meta=meta)
    reader = TraceReader(path)
    assert reader.header["format_version"] == [1, 0]
    assert reader.header["memtrace_version"] == "0.1.0"
    assert reader.header["created_by"] == "memtrace 0.1.0"
    assert reader.meta == {"machine": {"zones": ["DMA32", "Normal"]}, "scenario": "oom-basic",
                           "seed": 3, "sysctls": {"vm.swappiness": 10}}
    assert list(reader.meta) == ["machine", "scenario", "seed", "sysctls"]
    current = default_registry()
    assert [tp.name for tp in reader.registry] == [tp.name for tp in current]
    assert list(reader.registry) == list(current)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not a memtrace trace (empty file)"),
        (b"hello, this is a text file\n" * 20, "not a memtrace trace (bad magic)"),
        (bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8)),
         "not a memtrace trace (bad magic)"),
        (MAGIC, "header frame truncated at byte 8"),
        (MAGIC + b"MTCK\x05\x00\x00\x00\x00\x00\x00\x00Hab", "header frame truncated"),
        (MAGIC + frame(b"H", b"\xc1"), "header is not valid msgpack"),
        (MAGIC + frame(b"C", b"x"), "first frame is not a header"),
        (MAGIC + frame(b"H", msgpack.packb({"schemas": []})), "no valid format_version"),
    ],
)
def test_not_a_trace_raises_trace_format_error(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "x.mtrace"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError) as info:
        TraceReader(path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


def test_damaged_header_names_file_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "h.mtrace"
    record(path, mixed_workload)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    problem = r"h\.mtrace: header frame damaged \(checksum mismatch\)"
    with pytest.raises(TraceFormatError, match=problem):
        TraceReader(path)


def test_newer_major_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.mtrace"
    header = {"format_version": [2, 0], "memtrace_version": "9.0", "created_by": "x",
              "meta": {}, "schemas": []}
    path.write_bytes(MAGIC + frame(b"H", msgpack.packb(header)))
    with pytest.raises(TraceFormatError) as info:
        TraceReader(path)
    assert str(info.value) == (
        f"{path}: trace format 2.0 is newer than this memtrace reads (1.x); "
        "upgrade memtrace to read it"
    )


def test_newer_minor_version_reads_and_skips_unknown_frames(tmp_path: Path) -> None:
    """A 1.1 file with a frame type this reader does not know: read, with warnings."""
    source = tmp_path / "src.mtrace"
    record(source, mixed_workload)
    data = source.read_bytes()
    frames = frames_of(data)
    header = msgpack.unpackb(data[frames[0][0] + 13 : frames[0][1]], raw=False)
    header["format_version"] = [1, 1]
    header["new_key"] = "ignored"
    unknown = frame(b"X", b"future index")
    path = tmp_path / "minor.mtrace"
    path.write_bytes(MAGIC + frame(b"H", msgpack.packb(header)) + unknown
                     + data[frames[0][1]:])
    reader = TraceReader(path)
    assert sum(b.n for b in reader.batches()) == 303
    assert reader.damage is None
    first_frame = len(MAGIC) + 12 + 1 + len(msgpack.packb(header))
    assert reader.warnings == [
        f"{path}: format 1.1 is newer than this reader's 1.0; parts it does not know are ignored",
        f"{path}: frame of unknown type b'X' at byte {first_frame} ignored",
    ]
