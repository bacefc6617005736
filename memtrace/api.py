"""memtrace's public Python API: record scenarios, read traces back.

The CLI is a thin layer over these functions; everything here returns data and
prints nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from memtrace import __version__
from memtrace.kernel.runner import Runner
from memtrace.procps import free_columns
from memtrace.kernel.workload import Scenario, resolve_scenario
from memtrace.tracer.batch import EventBatch
from memtrace.tracer.bus import Bus, Consumer
from memtrace.tracer.tracefile import TraceReader, TraceWriter
from memtrace.tracer.tracepoints import MEMINFO_FIELDS, default_registry


class EventCounter:
    """A bus consumer counting events per tracepoint."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_batch(self, batch: EventBatch) -> None:
        self.counts[batch.tp.name] += batch.n


@dataclass(frozen=True)
class RecordResult:
    """What ``record`` produced: the shape of ``memtrace record --json``."""

    scenario: str
    trace: str
    sysctl: dict[str, int]
    events: dict[str, int]
    snapshots: list[dict[str, Any]]
    oom_kills: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    trace_bytes: int
    duration_ns: int
    pids: dict[str, int] = field(default_factory=dict)
    panic: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "trace": self.trace,
            "sysctl": self.sysctl,
            "events": self.events,
            "snapshots": self.snapshots,
            "oom_kills": self.oom_kills,
            "errors": self.errors,
            "trace_bytes": self.trace_bytes,
            "duration_ns": self.duration_ns,
            "pids": self.pids,
            "panic": self.panic,
        }


def record(
    scenario: Scenario | str,
    output: str | os.PathLike[str],
    *,
    sysctls: Mapping[str, int | str] | None = None,
    seed: int = 0,
    consumers: Iterable[Consumer] = (),
) -> RecordResult:
    """Simulate ``scenario`` (an object, a built-in name or a TOML path) and record
    every event to ``output``. ``sysctls`` override the scenario's; extra
    ``consumers`` (probes) see the events live."""
    if isinstance(scenario, str):
        scenario = resolve_scenario(scenario)
    registry = default_registry()
    bus = Bus(registry)
    runner = Runner(scenario, bus, sysctls or {}, seed)
    meta = {
        "scenario": scenario.name,
        "workload": scenario.to_dict(),
        "sysctl_overrides": {k: str(v) for k, v in sorted((sysctls or {}).items())},
        "sysctl": {k: v for k, v in runner.k.sysctls.as_dict().items() if v is not None},
        "seed": seed,
        "machine": {
            "ram_bytes": scenario.machine.ram_bytes,
            "swap_bytes": scenario.machine.swap_bytes,
            "kernel_version": scenario.machine.kernel_version,
            "cgroup_version": scenario.machine.cgroup_version,
        },
    }
    counter = EventCounter()
    writer = TraceWriter(output, registry, meta, memtrace_version=__version__)
    bus.attach(writer)
    bus.attach(counter)
    for consumer in consumers:
        bus.attach(consumer)
    try:
        result = runner.run()
    finally:
        errors = [e.as_dict() for e in runner.result.errors]
        writer.close(extra={"errors": errors, "oom_kills": runner.k.oom_kills,
                            "end_ns": runner.k.now_ns, "pids": runner.result.pids,
                            "panic": runner.result.panic})
    return RecordResult(
        scenario=scenario.name,
        trace=str(output),
        sysctl=result.sysctls,
        events={tp.name: counter.counts[tp.name] for tp in registry if counter.counts[tp.name]},
        snapshots=[s.as_dict() for s in result.snapshots],
        oom_kills=result.oom_kills,
        errors=errors,
        trace_bytes=Path(output).stat().st_size,
        duration_ns=result.end_ns,
        pids=result.pids,
        panic=result.panic,
    )


def free_row(meminfo: Mapping[str, int]) -> dict[str, int]:
    """free(1)'s Mem: row (procps-ng >= 4.0.1) from /proc/meminfo values in bytes."""
    return free_columns(meminfo).as_dict()


def read_snapshots(reader: TraceReader) -> list[dict[str, Any]]:
    """Every snapshot event of a trace, in order, as ``{label, ts_ns, free, meminfo}``."""
    out: list[dict[str, Any]] = []
    for batch in reader.batches():
        if batch.tp.name != "snapshot":
            continue
        for rec in batch.records():
            f = rec.fields
            mi = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}
            out.append({"label": f["label"], "ts_ns": int(f["ts_ns"]), "seq": int(f["seq"]),
                        "free": free_row(mi), "meminfo": mi})
    out.sort(key=lambda s: s["seq"])
    for s in out:
        del s["seq"]
    return out
