"""Sweeps: one recorded workload replayed over a grid of sysctls, limits and seeds.

A sweep answers "what would this sysctl or limit do?" for many values at once. Its
input is a *target* (a trace, recorded or imported, or a scenario) and one or more
*axes*, each a key ``replay`` can change and the values it takes::

    vm.swappiness=0:200:20               a range with a step (both ends included)
    cgroup./leaker.max=96MiB:288MiB:32MiB   sizes take units
    machine.ram=4GiB,8GiB,16GiB           or a list

The grid is the cross product of the axes, each cell repeated with ``seeds`` seeds
(the recorded seed, then the next ones). Each cell is one replay
(:func:`run_cell`): the workload is rebuilt with the cell's overrides exactly as
``memtrace replay --sysctl/--set`` would, run on a fresh simulated kernel, and
summarised (:class:`~.summary.TraceSummary`) into a :class:`CellResult` (kills and
their victims in order, ENOMEM refusals, peak memory by kind, memcg peaks, swap and
reclaim). Replays are deterministic, so a cell's result does not depend on where or
when it ran, and results are kept in grid order whatever the order of completion.

The replays run on Dask (:mod:`dask.distributed`): a LocalCluster on this machine by
default, or an existing cluster given by its scheduler address. Workers receive the
target (its header's workload and meta: a few KiB, never a kernel object) and write
their replay to a temporary file they delete. :class:`SerialRunner` runs the same
cells one after another in this process, for comparison and for tests.

:func:`find_boundary` bisects one axis for the value where the outcome changes (the
kill is avoided, the victim changes, an ENOMEM appears), evaluating as many points
per round as there are workers, and says between which two grid values it lies.

Dask is imported only when a Dask runner is made.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from memtrace.errors import MemtraceError, ScenarioError, UsageError
from memtrace.interrupts import end_children
from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload import Scenario, resolve_scenario
from memtrace.safewrite import safe_output
from memtrace.tracer.tracefile import TraceReader
from memtrace.units import format_duration_exact, format_size_exact, parse_duration, parse_size

from .baseline import BaselineScore, score_baseline
from .overrides import Overrides, apply_overrides, merge_sysctls
from .summary import MEMORY_KINDS, TraceSummary, summarize_trace

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "FIGURES",
    "MAX_CELLS",
    "Axis",
    "Boundary",
    "Cell",
    "CellResult",
    "DaskRunner",
    "SerialRunner",
    "SweepResult",
    "SweepTarget",
    "baseline",
    "find_boundary",
    "grid",
    "parse_axis",
    "replay_summary",
    "run_cell",
    "run_sweep",
    "with_baseline",
    "write_results",
]

#: The most cells one sweep may have (axes x seeds): a bound on a typo such as
#: ``machine.ram=1:256GiB:1``.
MAX_CELLS = 100_000
#: Keys whose values are sizes (they take units and ``format_size_exact`` spellings).
_SIZE_KEYS = frozenset({"ram", "swap", "max", "swap_max"})
#: Keys whose values are durations.
_DURATION_KEYS = frozenset({"time_limit"})


# --------------------------------------------------------------------------- axes


@dataclass(frozen=True)
class Axis:
    """One key of a sweep and the values it takes, as ``replay`` spells them."""

    key: str
    values: tuple[str, ...]

    @property
    def is_sysctl(self) -> bool:
        """A sysctl (``vm.*``, ``kernel.*``): goes to ``--sysctl``; else ``--set``."""
        return not self.key.startswith(("machine.", "cgroup."))


def _value_kind(key: str) -> str:
    """``size``, ``duration`` or ``int``: how the values of ``key`` are read."""
    leaf = key.rsplit(".", 1)[-1]
    if key.startswith(("machine.", "cgroup.")) and leaf in _SIZE_KEYS:
        return "size"
    if key.startswith("machine.") and leaf in _DURATION_KEYS:
        return "duration"
    return "int"


def _read(kind: str, text: str) -> int:
    if kind == "size":
        return parse_size(text)
    if kind == "duration":
        return parse_duration(text)
    text = text.strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"expected an integer, got {text!r}")
    return int(text)


def _write(kind: str, value: int) -> str:
    if kind == "size":
        return format_size_exact(value)
    if kind == "duration":
        return format_duration_exact(value)
    return str(value)


def parse_axis(text: str) -> Axis:
    """An axis from ``KEY=SPEC``: SPEC is a list (``10,60,100``) or an inclusive
    range with a step (``0:200:20``, ``96MiB:288MiB:32MiB``). UsageError names the
    part that is wrong."""
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise UsageError(f"--vary {text!r}: expected KEY=SPEC, e.g. vm.swappiness=0:200:20")
    kind = _value_kind(key)
    try:
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                raise ValueError("a range is START:STOP:STEP")
            start, stop, step = (_read(kind, p) for p in parts)
            if step <= 0:
                raise ValueError(f"the step must be positive, not {parts[2]!r}")
            if stop < start:
                raise ValueError(f"the range ends ({parts[1]}) before it starts ({parts[0]})")
            count = (stop - start) // step + 1
            if count > MAX_CELLS:
                raise ValueError(f"{count:,} values is more than the {MAX_CELLS:,} a sweep may have")
            values = tuple(_write(kind, start + i * step) for i in range(count))
        else:
            values = tuple(_write(kind, _read(kind, p)) for p in spec.split(","))
    except ValueError as e:
        raise UsageError(f"--vary {key}={spec}: {e}") from None
    if len(set(values)) != len(values):
        raise UsageError(f"--vary {key}={spec}: a value is repeated")
    return Axis(key, values)


# --------------------------------------------------------------------------- target and cells


@dataclass(frozen=True)
class SweepTarget:
    """What every cell replays: a workload (the scenario as a map), the header meta
    it was recorded with (None for a scenario), its sysctl overrides and seed."""

    name: str
    workload: Mapping[str, Any]
    meta: Mapping[str, Any] | None
    sysctl_overrides: Mapping[str, str]
    seed: int
    memtrace_version: str
    #: the trace it came from (None: a scenario): what a baseline replay is scored against
    path: str | None = None

    @classmethod
    def from_trace(cls, path: str | os.PathLike[str]) -> SweepTarget:
        """The workload a trace recorded, checked against the bounds of a scenario;
        ScenarioError when it records none or one beyond them."""
        reader = TraceReader(path)
        workload = reader.meta.get("workload")
        if not isinstance(workload, Mapping):
            raise ScenarioError(f"{reader.path}: the trace records no workload to replay "
                                "(it was not written by 'memtrace record' or 'memtrace import')")
        # The workload is someone's file: checked against a scenario's bounds before
        # any cell runs (a ScenarioError names what is beyond them).
        apply_overrides(workload, Overrides(), f"{reader.path} (recorded workload)")
        recorded = reader.meta.get("sysctl_overrides", {})
        seed = reader.meta.get("seed", 0)
        return cls(name=Path(reader.path).name, workload=dict(workload), meta=dict(reader.meta),
                   sysctl_overrides={str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, Mapping)
                   else {}, seed=seed if isinstance(seed, int) else 0,
                   memtrace_version=str(reader.header.get("memtrace_version", "0.0.0")), path=reader.path)

    @classmethod
    def from_scenario(cls, scenario: Scenario, version: str) -> SweepTarget:
        return cls(name=scenario.name, workload=scenario.to_dict(), meta=None, sysctl_overrides={}, seed=0,
                   memtrace_version=version)

    @classmethod
    def load(cls, target: str, version: str) -> SweepTarget:
        """A trace file, else a scenario (file or built-in name)."""
        path = Path(target)
        if path.is_file() and path.suffix != ".toml":
            return cls.from_trace(path)
        return cls.from_scenario(resolve_scenario(target), version)


@dataclass(frozen=True)
class Cell:
    """One replay of a sweep: its place in the grid, its ``(key, value)`` settings and seed."""

    index: int
    settings: tuple[tuple[str, str], ...]
    seed: int

    def overrides(self) -> Overrides:
        sysctls = [f"{k}={v}" for k, v in self.settings if not k.startswith(("machine.", "cgroup."))]
        sets = [f"{k}={v}" for k, v in self.settings if k.startswith(("machine.", "cgroup."))]
        return Overrides.parse(sysctls, sets)


def grid(axes: Sequence[Axis], seeds: int, first_seed: int) -> list[Cell]:
    """The cells of ``axes`` (cross product, first axis slowest) times ``seeds``."""
    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: at least 1")
    n = seeds
    for a in axes:
        n *= len(a.values)
    if n > MAX_CELLS:
        raise UsageError(f"the sweep has {n:,} replays, more than the {MAX_CELLS:,} allowed")
    cells: list[Cell] = []
    for values in itertools.product(*(a.values for a in axes)):
        settings = tuple((a.key, v) for a, v in zip(axes, values, strict=True))
        for s in range(seeds):
            cells.append(Cell(len(cells), settings, first_seed + s))
    return cells


# --------------------------------------------------------------------------- one replay


@dataclass(frozen=True)
class CellResult:
    """The outcome of one cell's replay.

    ``kills`` are the OOM victims in order as ``(comm, pid)``; ``enomem`` counts the
    requests refused with ENOMEM; memory figures are bytes from the /proc/meminfo
    readings (peak and final, by kind, see :mod:`.summary`); ``memcg_peak_bytes`` is
    each memory cgroup's largest usage read at an OOM (``memcg_stat``); ``error``
    says why the cell could not run (an override the workload refuses).
    """

    cell: Cell
    kills: tuple[tuple[str, int], ...] = ()
    enomem: int = 0
    panic: str | None = None
    peak: Mapping[str, int] = field(default_factory=dict)
    final: Mapping[str, int] = field(default_factory=dict)
    memcg_peak_bytes: Mapping[str, int] = field(default_factory=dict)
    swap_outs: int = 0
    reclaimed_pages: int = 0
    events: int = 0
    end_ns: int = 0
    error: str | None = None

    @property
    def outcome(self) -> str:
        """The outcome in a few words: what bisection compares."""
        if self.error is not None:
            return "error"
        parts = []
        if self.panic:
            parts.append("panic")
        if self.kills:
            parts.append("kill " + ",".join(comm for comm, _ in self.kills))
        if self.enomem:
            parts.append("ENOMEM")
        return "; ".join(parts) or "no kill"

    def as_dict(self) -> dict[str, Any]:
        """One flat row: the settings, the seed and the figures (JSON, CSV, Parquet)."""
        row: dict[str, Any] = dict(self.cell.settings)
        row.update({
            "seed": self.cell.seed,
            "outcome": self.outcome,
            "kills": len(self.kills),
            "victims": ",".join(f"{comm}:{pid}" for comm, pid in self.kills),
            "enomem": self.enomem,
            "panic": self.panic or "",
        })
        for kind in MEMORY_KINDS:
            row[f"peak_{kind}_bytes"] = self.peak.get(kind)
        for kind in MEMORY_KINDS:
            row[f"final_{kind}_bytes"] = self.final.get(kind)
        row.update({
            "memcg_peak_bytes": max(self.memcg_peak_bytes.values(), default=None),
            "swap_outs": self.swap_outs,
            "reclaimed_pages": self.reclaimed_pages,
            "events": self.events,
            "end_ns": self.end_ns,
            "error": self.error or "",
        })
        return row


def _result(cell: Cell, s: TraceSummary) -> CellResult:
    return CellResult(
        cell=cell,
        kills=tuple((k.comm, k.pid) for k in s.oom_kills),
        enomem=len(s.refusals),
        panic=s.panic,
        peak=s.memory_peak.as_dict() if s.memory_peak is not None else {},
        final=s.memory_final.as_dict() if s.memory_final is not None else {},
        memcg_peak_bytes=dict(s.memcg_peak),
        swap_outs=s.swap_outs,
        reclaimed_pages=s.reclaimed_kswapd_pages + s.reclaimed_direct_pages + s.reclaimed_memcg_pages,
        events=s.total_events,
        end_ns=s.end_ns,
    )


def replay_summary(target: SweepTarget, cell: Cell, workdir: str | None = None) -> TraceSummary:
    """Replay ``target`` with ``cell``'s overrides and seed, and summarise the run.

    Exactly what ``memtrace replay --sysctl ... --set ...`` runs (the same override
    rules, bounds and recorder), written to a temporary file in ``workdir`` that is
    deleted afterwards. ScenarioError/SysctlError name an override the workload
    refuses."""
    overrides = cell.overrides()
    derived = (target.meta or {}).get("derived")
    scenario = apply_overrides(target.workload, overrides, f"{target.name} (sweep cell {cell.index})",
                               derived=derived if isinstance(derived, Mapping) else None)
    sysctls = merge_sysctls(target.sysctl_overrides, overrides)
    fd, tmp = tempfile.mkstemp(prefix=".memtrace-sweep-", suffix=".mtrace", dir=workdir)
    os.close(fd)
    try:
        record_run(scenario, tmp, sysctl_overrides=sysctls, seed=cell.seed,
                   memtrace_version=target.memtrace_version, meta_template=target.meta)
        return summarize_trace(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def run_cell(target: SweepTarget, cell: Cell, workdir: str | None = None) -> CellResult:
    """One cell's replay (:func:`replay_summary`) as a :class:`CellResult`. An
    override the workload refuses is a result with ``error`` set, not an exception:
    one bad cell does not end a sweep."""
    try:
        return _result(cell, replay_summary(target, cell, workdir))
    except MemtraceError as e:
        return CellResult(cell=cell, error=str(e))


def baseline(target: SweepTarget) -> BaselineScore | None:
    """How the unchanged replay of a trace target reproduces the recording (None for a
    scenario, which has no recording): a sweep's cells are answers only when it does."""
    if target.path is None:
        return None
    return score_baseline(summarize_trace(target.path), replay_summary(target, Cell(-1, (), target.seed)))


# --------------------------------------------------------------------------- runners

#: Called with (cells done, cells in all) as results arrive.
Progress = Callable[[int, int], None]


class Runner(Protocol):
    """Runs cells of one target and returns their results in the cells' order."""

    workers: int

    def run(self, target: SweepTarget, cells: Sequence[Cell], progress: Progress | None = None) -> list[CellResult]:
        ...


class SerialRunner:
    """Runs the cells one after another in this process."""

    workers = 1

    def run(self, target: SweepTarget, cells: Sequence[Cell], progress: Progress | None = None) -> list[CellResult]:
        out = []
        for i, cell in enumerate(cells, start=1):
            out.append(run_cell(target, cell))
            if progress is not None:
                progress(i, len(cells))
        return out


def _worker_environ() -> dict[str, Any]:
    """The environment a LocalCluster's nanny gives its workers: Dask's default less
    ``MALLOC_TRIM_THRESHOLD_``. Dask sets it (65536) to return memory to the system
    sooner; but setting it at all turns off glibc's dynamic mmap threshold, so every
    allocation of 128 KiB or more (numpy's arrays of a replay) is a fresh mmap, faulted
    in page by page and unmapped when freed: a replay ran 1.6x slower in a worker than
    in this process (0.92 s against 0.57 s for an oom-leak replay, measured). A replay
    frees its memory when it ends, so the trim buys nothing here."""
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {k: v for k, v in dict(environ).items() if k != "MALLOC_TRIM_THRESHOLD_"}


class DaskRunner:
    """Runs cells on a Dask cluster: an existing one (``scheduler``, e.g.
    ``tcp://host:8786``) or a LocalCluster of ``workers`` single-threaded worker
    processes made here (the CPU count by default) and closed by :meth:`close`."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        import dask
        from distributed import Client, LocalCluster

        self._cluster: LocalCluster | None = None
        #: processes that are not ours to end (started before the cluster)
        self._spare = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=40)
            self.client: Client = Client(self._cluster)
        else:
            try:
                self.client = Client(scheduler, timeout="10s")
            except OSError as e:
                raise UsageError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({e})") from None
        self.workers = max(1, sum(self.client.nthreads().values()))
        #: each target's data on the workers, kept until close()
        self._scattered: dict[int, Any] = {}

    def run(self, target: SweepTarget, cells: Sequence[Cell], progress: Progress | None = None) -> list[CellResult]:
        from distributed import as_completed

        shared = self._scattered.get(id(target))
        if shared is None:  # once per target: bisection calls run() once per round
            shared = self._scattered[id(target)] = self.client.scatter(target, broadcast=True, hash=False)
        futures = [self.client.submit(run_cell, shared, cell, pure=False) for cell in cells]
        by_index: dict[int, CellResult] = {}
        for done, future in enumerate(as_completed(futures), start=1):
            result: CellResult = future.result()
            by_index[result.cell.index] = result
            if progress is not None:
                progress(done, len(cells))
        return [by_index[c.index] for c in cells]

    def close(self) -> None:
        """Close the client and the LocalCluster; whatever of the cluster's worker
        processes is still running then (an interrupted sweep) is terminated, so none
        outlives this process (memtrace.interrupts.end_children)."""
        try:
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close(timeout=5)
        finally:
            if self._cluster is not None:
                end_children(spare=self._spare)

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SweepResult:
    """Every cell's result, in grid order, and how the sweep ran."""

    target: str
    axes: tuple[Axis, ...]
    seeds: int
    results: tuple[CellResult, ...]
    #: with --find-min/--find-max: the boundary found for each cell of the other keys
    boundaries: tuple[Boundary, ...] = ()
    #: the unchanged replay against the recording (None: a scenario target)
    baseline: BaselineScore | None = None

    def rows(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.results]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "axes": [{"key": a.key, "values": list(a.values)} for a in self.axes],
            "seeds": self.seeds,
            "cells": self.rows(),
            "boundaries": [b.as_dict() for b in self.boundaries],
            "baseline": self.baseline.as_dict() if self.baseline is not None else None,
        }


def run_sweep(target: SweepTarget, axes: Sequence[Axis], runner: Runner, *, seeds: int = 1,
              progress: Progress | None = None) -> SweepResult:
    """Every cell of ``axes`` x ``seeds`` replayed on ``runner``."""
    cells = grid(axes, seeds, target.seed)
    results = runner.run(target, cells, progress)
    return SweepResult(target.name, tuple(axes), seeds, tuple(results))


def with_baseline(result: SweepResult, target: SweepTarget) -> SweepResult:
    """``result`` with the baseline score of ``target`` (one more replay, here)."""
    import dataclasses

    return dataclasses.replace(result, baseline=baseline(target))


# --------------------------------------------------------------------------- bisection


@dataclass(frozen=True)
class Boundary:
    """Where the outcome changes along one axis: between ``below`` (a value with
    ``outcome_below``) and ``above`` (the next grid value, with ``outcome_above``),
    found in ``replays`` replays. ``below``/``above`` are None when the outcome is
    the same at both ends of the range (no boundary inside it); the outcomes are
    then those of the two ends."""

    key: str
    below: str | None
    above: str | None
    outcome_below: str
    outcome_above: str
    replays: int
    settings: tuple[tuple[str, str], ...] = ()
    evaluated: tuple[CellResult, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "below": self.below, "above": self.above, "outcome_below": self.outcome_below,
                "outcome_above": self.outcome_above, "replays": self.replays,
                "settings": dict(self.settings)}


def find_boundary(target: SweepTarget, axis: Axis, runner: Runner, *, toward: str = "high",
                  settings: tuple[tuple[str, str], ...] = (), seed: int | None = None,
                  progress: Progress | None = None) -> Boundary:
    """Bisect ``axis`` for where the outcome of one of its ends stops holding, with
    the other keys held at ``settings``.

    ``toward="high"`` (``--find-min``) finds the SMALLEST value with the outcome of
    the largest one (the smallest memory.max that avoids the kill, when the largest
    avoids it); ``toward="low"`` (``--find-max``) the LARGEST value with the outcome
    of the smallest one. Between the two ends the outcome is assumed to change
    monotonically (more memory never brings a kill back); when it changes more than
    once (two kills, then one, then none), ``high`` finds the last change and
    ``low`` the first.

    Each round evaluates up to ``runner.workers`` points that split the open
    interval evenly, so a round costs one replay time and
    ``ceil(log_{w+1}(n))`` rounds find the boundary among ``n`` values.
    """
    if toward not in ("high", "low"):
        raise ValueError(f"toward must be 'high' or 'low', not {toward!r}")
    values = axis.values
    seed = target.seed if seed is None else seed
    evaluated: dict[int, CellResult] = {}
    counter = itertools.count()

    def evaluate(indices: Iterable[int]) -> None:
        todo = [i for i in indices if i not in evaluated]
        cells = [Cell(next(counter), (*settings, (axis.key, values[i])), seed) for i in todo]
        for i, result in zip(todo, runner.run(target, cells), strict=True):
            evaluated[i] = result
        if progress is not None:
            progress(len(evaluated), len(values))

    def done(below: int | None, above: int | None) -> Boundary:
        lo_i, hi_i = (0, len(values) - 1) if below is None or above is None else (below, above)
        return Boundary(axis.key, None if below is None else values[below], None if above is None else values[above],
                        evaluated[lo_i].outcome, evaluated[hi_i].outcome, len(evaluated), settings,
                        tuple(evaluated[i] for i in sorted(evaluated)))

    lo, hi = 0, len(values) - 1
    evaluate(sorted({lo, hi}))
    ref = evaluated[hi if toward == "high" else lo].outcome
    if evaluated[lo].outcome == evaluated[hi].outcome:
        return done(None, None)
    while hi - lo > 1:
        k = min(runner.workers, hi - lo - 1)
        points = sorted({lo + (hi - lo) * (j + 1) // (k + 1) for j in range(k)} - {lo, hi})
        evaluate(points)
        if toward == "high":  # keep outcome(hi) == ref != outcome(lo)
            for p in reversed(points):
                if evaluated[p].outcome == ref:
                    hi = p
                else:
                    lo = p
                    break
        else:  # keep outcome(lo) == ref != outcome(hi)
            for p in points:
                if evaluated[p].outcome == ref:
                    lo = p
                else:
                    hi = p
                    break
    return done(lo, hi)


def boundaries(target: SweepTarget, axis: Axis, others: Sequence[Axis], runner: Runner, *, toward: str = "high",
               seeds: int = 1, progress: Progress | None = None) -> Iterator[Boundary]:
    """:func:`find_boundary` along ``axis`` for every cell of the ``others`` grid."""
    for cell in grid(others, seeds, target.seed):
        yield find_boundary(target, axis, runner, toward=toward, settings=cell.settings, seed=cell.seed,
                            progress=progress)


# --------------------------------------------------------------------------- results as data

#: Figures a sweep can plot, with their unit (the columns of :meth:`CellResult.as_dict`).
FIGURES: dict[str, str] = {
    "kills": "OOM kills",
    "enomem": "ENOMEM refusals",
    **{f"peak_{k}_bytes": "bytes" for k in MEMORY_KINDS},
    **{f"final_{k}_bytes": "bytes" for k in MEMORY_KINDS},
    "memcg_peak_bytes": "bytes",
    "swap_outs": "pages",
    "reclaimed_pages": "pages",
    "end_ns": "ns",
}


def write_results(result: SweepResult, path: str | os.PathLike[str]) -> str:
    """Write the cells as a table: ``.parquet`` (pyarrow) or ``.csv``, by suffix.
    Returns the format written; ValueError for another suffix."""
    out = Path(path)
    rows = result.rows()
    if out.suffix == ".csv":
        import csv

        columns = list(rows[0]) if rows else []
        with safe_output(out, text=True, newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for row in rows:
                w.writerow({k: "" if v is None else v for k, v in row.items()})
        return "csv"
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with safe_output(out) as b:
            pq.write_table(pa.Table.from_pylist(rows), b)
        return "parquet"
    raise ValueError(f"{out}: results are written as .parquet or .csv, not {out.suffix or 'no suffix'!r}")
