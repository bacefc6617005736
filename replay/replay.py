"""Re-run the workload a trace recorded, on a fresh kernel, and record it again.

A trace's header holds everything a run depends on: the workload (the scenario as
data), the sysctl overrides given to the recorder, and the seed of the kernel's RNG.
:func:`replay_trace` rebuilds the scenario from it, applies the caller's changes
(:class:`~.overrides.Overrides`) and runs it with :class:`memtrace.kernel.runner.Runner`,
writing a new trace. The simulation is deterministic, so with no changes the new
file is byte-identical to the old one (when both come from the same memtrace).

Replay is closed-loop, as the runner is: a task's next step starts when its previous
step has finished in the *replayed* run, so a task stalled in reclaim or refused
memory is slowed, or takes its ENOMEM path, in the replay too. Nothing is replayed
open-loop from recorded timestamps.

Byte-identity needs the replay to record exactly as ``memtrace record`` does: both
go through :func:`memtrace.kernel.recorder.record_run`, the one definition of a
recording; replay passes the recorded header as the template, so only the run's
inputs (``workload``, ``sysctl_overrides``, ``sysctl``, ``seed``, the ``machine``
keys, ``scenario``) are replaced.
"""

from __future__ import annotations

import filecmp
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from memtrace.errors import TraceFormatError
from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload import Scenario
from memtrace.tracer.bus import Consumer
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.format import FRAME_FOOTER, FRAME_HEADER, FRAME_MARKER

from .assume import describe_assumption
from .overrides import Overrides, apply_overrides, merge_sysctls, replay_template

#: Records ``scenario`` to a path: ``recorder(scenario, output, sysctls, seed, consumers)``
#: runs it on a fresh kernel with the sysctl overrides and seed, every event going to
#: the trace and to each consumer. ``memtrace.api.record`` is one (by keyword).


@dataclass(frozen=True)
class ReplayResult:
    """What a replay produced: the new trace and how it relates to the old.

    ``events`` counts the events the replay emitted; ``byte_identical`` compares
    the two files whole; ``recorded_version`` is the memtrace that wrote the old one;
    ``assumptions`` says, for a trace imported with OOM kills, what the replay
    assumed each victim would have done after its kill (:mod:`.assume`).
    """

    baseline: str
    trace: str
    scenario: Scenario
    overrides: Overrides
    sysctl_overrides: dict[str, str]
    seed: int
    events: int
    trace_bytes: int
    byte_identical: bool
    recorded_version: str = ""
    assumptions: tuple[str, ...] = ()


class _Counter:
    """Counts the events a replay emits (a bus consumer)."""

    def __init__(self) -> None:
        self.n = 0

    def on_batch(self, batch: Any) -> None:
        self.n += batch.n


def default_output(trace: str | os.PathLike[str]) -> Path:
    """Where a replay of ``trace`` goes by default: beside it, ``STEM.replay.mtrace``."""
    p = Path(trace)
    return p.with_name(f"{p.stem}.replay.mtrace")


def recorded_workload(reader: TraceReader) -> Mapping[str, Any]:
    """The workload map of a trace header; TraceFormatError when there is none."""
    workload = reader.meta.get("workload")
    if not isinstance(workload, Mapping):
        raise TraceFormatError(f"{reader.path}: the trace records no workload to replay "
                               "(it was not written by 'memtrace record')")
    return workload


def replay_scenario(reader: TraceReader, overrides: Overrides = Overrides()) -> Scenario:
    """The scenario a trace recorded, with ``overrides.sets`` applied (and, for an
    imported trace with OOM kills, the after-kill assumption: see :mod:`.assume`)."""
    derived = reader.meta.get("derived")
    return apply_overrides(recorded_workload(reader), overrides, f"{reader.path} (recorded workload)",
                           derived=derived if isinstance(derived, Mapping) else None)


def recorded_total_events(path: str | os.PathLike[str]) -> int | None:
    """The footer's event count of a trace, read from the file's tail, or None.

    Cheap (reads at most the last 64 KiB) and best-effort: a missing or damaged
    footer gives None. For progress bars, never for results.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - (64 << 10))
            f.seek(start)
            tail = f.read()
    except OSError:
        return None
    at = tail.rfind(FRAME_MARKER)
    while at != -1:
        if at + FRAME_HEADER.size <= len(tail):
            _, length, crc = FRAME_HEADER.unpack_from(tail, at)
            payload = tail[at + FRAME_HEADER.size : at + FRAME_HEADER.size + length]
            if len(payload) == length and payload[:1] == FRAME_FOOTER and zlib.crc32(payload) == crc:
                try:
                    footer = msgpack.unpackb(payload[1:], raw=False, strict_map_key=False)
                except (ValueError, TypeError, msgpack.UnpackException):
                    return None
                total = footer.get("total_events") if isinstance(footer, dict) else None
                return total if isinstance(total, int) else None
        at = tail.rfind(FRAME_MARKER, 0, at)
    return None


def replay_trace(
    trace: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    overrides: Overrides = Overrides(),
    *,
    memtrace_version: str | None = None,
    consumers: Iterable[Consumer] = (),
) -> ReplayResult:
    """Replay the workload recorded in ``trace`` into ``output`` (default: beside it,
    see :func:`default_output`), with ``overrides``.

    The header says ``memtrace_version`` (by default the recorded one).
    ``consumers`` see the replayed events live (probes, progress bars). Raises
    TraceFormatError when ``trace`` cannot be read or records no workload, and
    ScenarioError/SysctlError naming a bad override. A damaged trace replays if its
    header is intact: only the header is needed.
    """
    reader = TraceReader(trace)
    out = Path(output) if output is not None else default_output(trace)
    if out.exists() and os.path.samefile(out, reader.path):
        raise TraceFormatError(f"{out}: the replay would overwrite the trace it replays; choose another -o")
    scenario = replay_scenario(reader, overrides)
    recorded = reader.meta.get("sysctl_overrides", {})
    sysctls = merge_sysctls(recorded if isinstance(recorded, Mapping) else {}, overrides)
    seed = reader.meta.get("seed", 0)
    if not isinstance(seed, int):
        seed = 0
    version = memtrace_version or str(reader.header.get("memtrace_version", "0.0.0"))
    counter = _Counter()
    try:
        record_run(scenario, out, meta_template=replay_template(reader.meta, overrides), sysctl_overrides=sysctls,
                   seed=seed,
                   memtrace_version=version, consumers=[counter, *consumers])
    except OSError as e:
        raise TraceFormatError(f"cannot write trace {out}: {e.strerror or e}") from None
    identical = filecmp.cmp(reader.path, out, shallow=False)
    return ReplayResult(
        baseline=reader.path,
        trace=str(out),
        scenario=scenario,
        overrides=overrides,
        sysctl_overrides=sysctls,
        seed=seed,
        events=counter.n,
        trace_bytes=out.stat().st_size,
        byte_identical=identical,
        recorded_version=str(reader.header.get("memtrace_version", "")),
        assumptions=tuple(describe_assumption(_derived(reader.meta), overrides.assumption)),
    )


def _derived(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    derived = meta.get("derived")
    return derived if isinstance(derived, Mapping) else None
