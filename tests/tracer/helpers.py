"""Helpers of the tracer tests: hand-built event streams emitted through a real Bus
with the real schemas, and expected values written out from their definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memtrace.tracer import Bus, Collector, EventBatch, default_registry
from memtrace.tracer.tracefile import TraceWriter

MS = 1_000_000


class Stream:
    """A hand-built event stream emitted through a real Bus with the real schemas.

    Unset fields take a neutral value (0, "", False, an enum's first value).
    """

    def __init__(self) -> None:
        self.registry = default_registry()
        self.bus = Bus(self.registry)
        self.collector = Collector()
        self.bus.attach(self.collector)

    def emit(self, name: str, ts_ns: Any, pid: Any, n: int = 1, **fields: Any) -> Stream:
        tp = self.registry[name]
        values: dict[str, Any] = {}
        for f in tp.fields:
            if f.name in fields:
                values[f.name] = fields.pop(f.name)
            elif f.type == "str":
                values[f.name] = ""
            elif f.type == "enum":
                values[f.name] = f.values[0]
            else:
                values[f.name] = 0
        assert not fields, f"unknown fields {sorted(fields)} for {name}"
        for f in tp.fields:  # enum columns given as lists of names
            v = values[f.name]
            if f.type == "enum" and isinstance(v, list):
                values[f.name] = [f.code(x) if isinstance(x, str) else x for x in v]
        self.bus.emit(tp, ts_ns, pid, n, **values)
        return self

    def start(self, pid: int, comm: str, ts_ns: int = 0) -> Stream:
        return self.emit("process_start", ts_ns, pid, comm=comm)

    @property
    def batches(self) -> list[EventBatch]:
        return self.collector.batches

    def records(self, name: str | None = None) -> list[Any]:
        return self.collector.records(name)

    def write(self, path: Path) -> Path:
        with TraceWriter(path, self.registry, {"scenario": "hand-built"}) as w:
            for b in self.batches:
                w.on_batch(b)
        return path


def pressure_stream() -> Stream:
    """Memory pressure as the kernel reports it: processes, kswapd wakes, direct and
    memcg reclaim (two pairs of one pid in one batch each), OOM kills."""
    s = Stream()
    s.start(100, "db").start(101, "leaker").emit("fork", 10, 101, child_pid=102, child_comm="worker")
    s.emit("kswapd_wake", 50 * MS, 0, nid=0, order=0)
    s.emit("kswapd_sleep", 60 * MS, 0, nr_reclaimed=300)
    s.emit("kswapd_wake", [120 * MS, 150 * MS, 199 * MS], 0, n=3)
    s.emit("kswapd_sleep", [130 * MS, 160 * MS, 205 * MS], 0, n=3, nr_reclaimed=[10, 20, 40])
    s.emit("reclaim_begin", 210 * MS, 101, kind="direct")
    s.emit("reclaim_end", 210 * MS + 3_000, 101, kind="direct", nr_reclaimed=32)
    s.emit("reclaim_begin", 220 * MS, 102, kind="memcg", memcg="/app")
    s.emit("reclaim_end", 220 * MS + 70_000, 102, kind="memcg", nr_reclaimed=5, memcg="/app")
    # Two tasks begin in one batch and end in the next, where task 101 ends twice:
    # its second end must find the start its first end deleted gone.
    s.emit("reclaim_begin", [300 * MS, 300 * MS + 500_000], [101, 102], n=2, kind="direct")
    s.emit("reclaim_end", [300 * MS + 100_000, 300 * MS + 200_000, 300 * MS + 900_000], [101, 101, 102], n=3,
           kind="direct", nr_reclaimed=[1, 2, 4])
    s.emit("oom_kill", 450 * MS, 101, oom_id=1, victim_pid=101, comm="leaker", anon_rss_kb=4_000_000,
           totalpages=1_019_648, constraint="CONSTRAINT_NONE")
    s.emit("oom_kill", 3_723_000 * MS, 102, oom_id=2, victim_pid=100, comm="db", anon_rss_kb=1024,
           totalpages=24_576, constraint="CONSTRAINT_MEMCG", memcg="/app")
    return s


def hist_slot(v: int) -> int:
    """bpftrace's hist() slot, from its definition: <0, 0, 1, then [2^k, 2^(k+1)) at k+2."""
    if v < 0:
        return 0
    if v == 0:
        return 1
    return v.bit_length() + 1
