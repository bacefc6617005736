"""Recording a run: simulate a scenario with every event written to a trace file.

The one place that decides what a recording's header and footer hold, used by
``memtrace record`` (a fresh header) and by replay (the recorded header with its
inputs replaced, so that a replay without changes is byte-identical).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from memtrace.errors import MemtraceError
from memtrace.tracer.batch import EventBatch
from memtrace.tracer.bus import Bus, Consumer
from memtrace.tracer.tracefile import TraceWriter
from memtrace.tracer.tracepoints import default_registry

from .kernel import Kernel
from .runner import Runner, RunResult
from .workload import Scenario

#: Machine keys of a fresh header, as MachineSpec attributes.
MACHINE_KEYS = ("ram_bytes", "swap_bytes", "kernel_version", "cgroup_version")


class EventCounter:
    """A bus consumer counting events per tracepoint."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_batch(self, batch: EventBatch) -> None:
        self.counts[batch.tp.name] += batch.n


def record_meta(scenario: Scenario, sysctl_overrides: Mapping[str, Any], effective_sysctls: Mapping[str, int | None],
                seed: int, template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The header map of a recording.

    With a ``template`` (the header of a recorded trace, for replay) every key of
    it is kept and only the run's inputs are replaced; machine keys are refreshed
    by the template's own key list, so an older trace replays into the same header.
    """
    meta: dict[str, Any] = copy.deepcopy(dict(template)) if template is not None else {}
    if "source" in meta:
        # Replaying a trace imported from a real kernel: this run is simulated, so
        # the import's provenance moves to ``derived_from``.
        meta["derived_from"] = meta.pop("source")
    meta["scenario"] = scenario.name
    meta["workload"] = scenario.to_dict()
    meta["sysctl_overrides"] = {k: str(v) for k, v in sorted(sysctl_overrides.items())}
    meta["sysctl"] = {k: v for k, v in effective_sysctls.items() if v is not None}
    meta["seed"] = seed
    machine = template.get("machine") if template is not None else None
    keys = list(machine) if isinstance(machine, Mapping) and machine else list(MACHINE_KEYS)
    meta["machine"] = {k: getattr(scenario.machine, k) for k in keys if hasattr(scenario.machine, k)}
    return meta


@dataclass(frozen=True)
class Recording:
    """What a recorded run produced besides the file."""

    result: RunResult
    kernel: Kernel
    events: dict[str, int]  # per tracepoint, in registry order, non-zero only
    events_written: int


def record_run(scenario: Scenario, output: str | os.PathLike[str], *, sysctl_overrides: Mapping[str, Any],
               seed: int, memtrace_version: str, consumers: Iterable[Consumer] = (),
               meta_template: Mapping[str, Any] | None = None) -> Recording:
    """Run ``scenario`` on a fresh kernel, recording every event to ``output``.

    The footer's ``extra`` holds the run's errors, OOM kills, end time, pids and
    panic. The file is closed (and readable) even when the run raises.
    """
    registry = default_registry()
    bus = Bus(registry)
    runner = Runner(scenario, bus, dict(sysctl_overrides), seed)
    meta = record_meta(scenario, sysctl_overrides, runner.k.sysctls.as_dict(), seed, meta_template)
    # memtrace.safewrite: a file already at ``output`` is replaced only by a run that
    # finishes (the new trace is written beside it and renamed over it at the end).
    # A new file is written in place, so a recorder killed with kill -9 leaves it
    # readable up to its last flushed group, and an interrupted one (Ctrl-C,
    # SIGTERM, or a bug) leaves it with a footer that says aborted. A run that
    # fails on its input or output (a scenario error found mid-run, a full disk: a
    # MemtraceError) leaves no file.
    writer = TraceWriter(output, registry, meta, memtrace_version=memtrace_version)
    counter = EventCounter()
    bus.attach(writer)
    bus.attach(counter)
    for consumer in consumers:
        bus.attach(consumer)
    try:
        result = runner.run()
    except MemtraceError:
        with contextlib.suppress(MemtraceError):
            _close(writer, runner)
        writer.discard()
        raise
    finally:
        _close(writer, runner)  # after an interrupt: the footer says aborted
    events = {tp.name: counter.counts[tp.name] for tp in registry if counter.counts[tp.name]}
    return Recording(result=result, kernel=runner.k, events=events, events_written=writer.events_written)


def _close(writer: TraceWriter, runner: Runner) -> None:
    """Close ``writer`` with the footer's ``extra``: the run's errors, OOM kills, end
    time, pids and panic (once; a second call does nothing)."""
    if writer.closed:
        return
    errors = [e.as_dict() for e in runner.errors]
    writer.close(extra={"errors": errors, "oom_kills": runner.k.oom_kills, "end_ns": runner.k.now_ns,
                        "pids": runner.pids, "panic": runner.panic})
