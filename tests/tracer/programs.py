"""Helpers of the one-liner tests: a small recorded scenario (four processes and a
fork), independent views of a trace's events, and programs run over batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from memtrace.tracer import EventBatch
from memtrace.tracer.oneliner import compile_program
from memtrace.tracer.probes import MapOutput, PrintfOutput, run_batches
from memtrace.tracer.tools import load_tool
from memtrace.tracer.tracefile import TraceReader

ROOT = Path(__file__).resolve().parents[2]


#: Four processes: anonymous writes, a file read then mapped private and written
#: (major faults, COW), and a parent whose forked child writes shared pages (COW).
MIXED_TOML = """\
name = "mixed"
description = "three processes and a fork"

[machine]
ram = "2GiB"

[[file]]
path = "/data/a.bin"
size = "8MiB"

[[process]]
name = "anon"
steps = [
  { op = "mmap", handle = "buf", length = "6MiB", prot = "rw" },
  { op = "touch", handle = "buf", write = true },
  { op = "sleep", duration = "150ms" },
  { op = "touch", handle = "buf" },
  { op = "munmap", handle = "buf" },
]

[[process]]
name = "filer"
steps = [
  { op = "read", file = "/data/a.bin", length = "2MiB" },
  { op = "mmap", handle = "m", file = "/data/a.bin", length = "8MiB", prot = "rw" },
  { op = "touch", handle = "m" },
  { op = "touch", handle = "m", write = true, length = "3MiB" },
  { op = "write", file = "/data/out.log", length = "1MiB" },
]

[[process]]
name = "parent"
steps = [
  { op = "mmap", handle = "d", length = "4MiB", prot = "rw" },
  { op = "touch", handle = "d", write = true },
  { op = "fork", child = "kid" },
  { op = "wait", child = "kid" },
]

[[process]]
name = "kid"
forked = true
steps = [
  { op = "touch", handle = "d", write = true, length = "1MiB" },
  { op = "sleep", duration = "120ms" },
]
"""


class Trace:
    """A recorded trace's batches in seq order, and independent views of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        reader = TraceReader(path)
        self.registry = reader.registry
        self.batches: list[EventBatch] = list(reader.ordered_batches())

    def of(self, name: str) -> list[EventBatch]:
        return [b for b in self.batches if b.tp.name == name]

    def column(self, tp: str, field: str) -> np.ndarray:
        cols = [np.asarray(b.columns[field]) for b in self.of(tp)]
        return np.concatenate(cols) if cols else np.zeros(0)

    def records(self) -> Iterable[tuple[str, dict[str, Any], dict[int, str], dict[int, str]]]:
        """Each event with the pid->comm and ino->path tables as of that event,
        kept by hand (process_start/fork/exit; file_open/mmap)."""
        comms: dict[int, str] = {0: "swapper/0"}
        paths: dict[int, str] = {}
        for b in self.batches:
            for rec in b.records():
                f = rec.fields
                if rec.name in ("process_start", "exit"):
                    comms[f["pid"]] = f["comm"]
                elif rec.name == "fork":
                    comms[f["child_pid"]] = f["child_comm"]
                elif rec.name == "file_open" or (rec.name == "mmap" and f["ino"] and f["path"]):
                    paths[f["ino"]] = f["path"]
                yield rec.name, f, comms, paths


def run(program: str, batches: list[EventBatch], registry: Any = None) -> list[Any]:
    tracer = compile_program(program, registry=registry)
    run_batches(tracer, batches)
    return tracer.outputs


def maps_of(outputs: list[Any]) -> dict[str, dict[Any, Any]]:
    return {o.name: dict(o.entries) for o in outputs if isinstance(o, MapOutput)}


def printed(outputs: list[Any]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, PrintfOutput)]


def map_text(name: str, counts: dict[Any, int]) -> str:
    """bpftrace's text for an int map, sorted by value then key, typed out."""
    def key_text(k: Any) -> str:
        return ", ".join(str(p) for p in (k if isinstance(k, tuple) else (k,)))

    lines = [f"{name}[{key_text(k)}]: {v}\n" for k, v in sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))]
    return "".join(lines) + "\n"


def slot(v: int) -> int:
    return 0 if v < 0 else 1 if v == 0 else v.bit_length() + 1


def tool_outputs(name: str, batches: list[EventBatch], registry: Any = None) -> list[Any]:
    tool = load_tool(name)
    tracer = compile_program(tool.source, filename=tool.filename, registry=registry)
    run_batches(tracer, batches)
    return tracer.outputs
