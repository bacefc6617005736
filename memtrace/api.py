"""memtrace's public Python API: record scenarios, read traces back.

The CLI is a thin layer over these functions; everything here returns data and
prints nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtrace import __version__
from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload import Scenario, resolve_scenario
from memtrace.linux.proc import free_columns
from memtrace.tracer.bus import Consumer
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracepoints import MEMINFO_FIELDS, check_fields


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
    rec = record_run(scenario, output, sysctl_overrides=sysctls or {}, seed=seed, memtrace_version=__version__,
                     consumers=consumers)
    result = rec.result
    return RecordResult(
        scenario=scenario.name,
        trace=str(output),
        sysctl=result.sysctls,
        events=rec.events,
        snapshots=[s.as_dict() for s in result.snapshots],
        oom_kills=result.oom_kills,
        errors=[e.as_dict() for e in result.errors],
        trace_bytes=Path(output).stat().st_size,
        duration_ns=result.end_ns,
        pids=result.pids,
        panic=result.panic,
    )


def free_row(meminfo: Mapping[str, int]) -> dict[str, int]:
    """free(1)'s Mem: row (procps-ng >= 4.0.1) from /proc/meminfo values in bytes."""
    return free_columns(meminfo).as_dict()


def read_snapshots(reader: TraceReader) -> list[dict[str, Any]]:
    """Every snapshot event of a trace, in order, as ``{label, ts_ns, free, meminfo}``.

    Raises TraceFormatError naming the field when the trace's ``snapshot`` schema
    lacks ``label`` or holds a field of another kind (a numeric label, a string
    /proc/meminfo value); /proc/meminfo fields it lacks are left out of ``meminfo``.
    """
    out: list[dict[str, Any]] = []
    checked = False
    for batch in reader.batches():
        if batch.tp.name != "snapshot":
            continue
        if not checked:
            check_fields(batch.tp, "memtrace free", ("label",), tuple(name for _m, name in MEMINFO_FIELDS))
            checked = True
        for rec in batch.records():
            f = rec.fields
            mi = {m: int(f[name]) for m, name in MEMINFO_FIELDS if name in f}
            out.append({"label": f["label"], "ts_ns": int(f["ts_ns"]), "seq": int(f["seq"]),
                        "free": free_row(mi), "meminfo": mi})
    out.sort(key=lambda s: s["seq"])
    for s in out:
        del s["seq"]
    return out
