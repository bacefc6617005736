"""The probe runtime: :class:`Tracer` runs probes over batches as a bus consumer.

A :class:`Probe` attaches a vectorised action (and a predicate) to tracepoints;
BEGIN and END actions run once, interval actions on simulated time. The tracer
keeps the maps, the tables a probe resolves names through, and the queue that
emits output in event order.

- **Ordering of output.** ``printf`` and map prints queued while a batch runs are
  emitted sorted by event (then by the order the calls ran), exactly as if every
  probe had run event by event.
- **Read-after-write within a batch.** A probe that reads a map another (or the
  same) probe on the same tracepoint writes would see the whole batch's writes at
  once. A probe declares such keys with ``segment``; the tracer then cuts the batch
  into contiguous segments in which no key repeats (:mod:`.groups`), and runs every
  probe of the tracepoint segment by segment. The one-liner compiler does this
  analysis itself.
- **Simulated time.** ``interval`` probes fire on event time, not wall time: each time
  the events seen (in ``seq`` order) cross a multiple of the period since boot, the
  batch is split there and the interval probes run between the halves; once more at
  :meth:`Tracer.finish`. Time is the running maximum of ``ts_ns`` (the kernel emits
  some batches, e.g. page-cache additions after the faults that caused them, with
  earlier timestamps than the batch before). A run fires them at most
  :data:`MAX_INTERVAL_FIRINGS` times: a jump of simulated time that would fire them
  more (``interval:ns:1`` over seconds, a damaged ``ts_ns`` decades ahead) is a
  MemtraceError naming the interval, not a run that never ends. A live run (the
  real kernel's events as they happen) starts its clock at its start
  (:meth:`Tracer.start_clock`: intervals fire a period after it, as bpftrace's do)
  and moves it on between batches (:meth:`Tracer.advance`), so that intervals fire
  while no event comes.
- **Names.** ``comm`` is resolved per event from ``pid`` through the tracer's
  :class:`~memtrace.tracer.tasks.TaskTable`, fed every task event seen so far
  (``process_start``, ``fork``, ``exit``; renames, oom_score_adj updates, cgroup
  moves and OOM kills update it without moving the clock, see
  :data:`TRACED_ALWAYS`); pid 0 (no task: boot, the kernel
  itself) is ``swapper/0`` as on Linux, and a pid no event named is ``[unknown]``,
  as perf prints it. ``path(ino)`` resolves an inode from the ``file_open`` and
  ``mmap`` events seen so far (an mmap of SysV shm says ``SYSV00000001``, a shared
  anonymous one ``/dev/zero (deleted)``, as /proc/PID/maps does); an inode never
  named is ``[ino N]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtrace.errors import MemtraceError, NotFoundError

from ..batch import EventBatch
from ..bus import Bus
from ..schema import Registry
from ..tasks import TASK_TRACEPOINTS, UNKNOWN_COMM, TaskTable
from ..tracefile import TraceReader
from ..tracepoints import default_registry
from .columns import StrColumn, dense_codes
from .events import Events, EventsBase
from .maps import DEFAULT_MAX_MAP_KEYS, Map
from .output import Output

__all__ = [
    "IDLE_COMM",
    "MAX_INTERVAL_FIRINGS",
    "MAX_PATHS",
    "MAX_PATH_CHARS",
    "TRACED_ALWAYS",
    "Action",
    "Predicate",
    "Probe",
    "Segmenter",
    "Tracer",
    "run_batches",
    "run_trace",
]

#: Tracepoints a tracer traces whatever its probes: they start and end tasks and
#: name files (``file_open`` and ``mmap`` feed the ino -> path table). Like the
#: probes' tracepoints, their events move the tracer's clock (``elapsed`` counts
#: from the first event traced; END runs at the latest). The other task events
#: (renames, oom_score_adj updates, cgroup moves, OOM kills) only update the task
#: table.
TRACED_ALWAYS = ("process_start", "fork", "exit", "file_open", "mmap")
#: Tracepoints that change what a probe reads through the tracer's tables (comm,
#: path): their events always keep their place (see :meth:`Tracer.commute`).
_TABLE_TRACEPOINTS = TASK_TRACEPOINTS | {"file_open", "mmap"}
#: comm of pid 0 (events in no task's context), as Linux names the idle task.
IDLE_COMM = "swapper/0"
#: The most times a run fires its interval probes (see the module docstring).
MAX_INTERVAL_FIRINGS = 1_000_000
#: Most inodes the ino -> path table names, and most characters of path it holds:
#: 1,048,576 and 64 Mi (about 150 MB at most). A trace names a file per file_open
#: and mmap; a crafted one can name millions of long paths. Beyond either bound a new
#: inode is not named (``path()`` gives ``[ino N]``), counted in :attr:`Tracer.warnings`.
MAX_PATHS = 1 << 20
MAX_PATH_CHARS = 64 << 20

Action = Callable[[Events], None]
Predicate = Callable[[Events], Any]
Segmenter = Callable[[Events], np.ndarray | None]


@dataclass
class Probe:
    """A vectorised action attached to tracepoints.

    ``predicate(ev)`` returns a boolean mask (or a bool); ``action(ev)`` runs on the
    selected events. ``segment(ev)``, called on a whole batch, returns the offsets
    where the batch must be cut so that the action sees events in the order it
    needs (see :func:`~.groups.cuts_unique` and :func:`~.groups.cuts_isolate`);
    None: no cuts. ``maps`` says what the probe does besides computing: each map it
    reads (``"read"``) or writes (``"agg"``: an aggregation, which commutes with
    other aggregations; ``"set"``, ``"delete"``), and nothing else (no output, no
    exit()); None, the default: unknown, so its tracepoint's events keep their place
    among all others (see :meth:`Tracer.commute`).
    """

    tracepoints: tuple[str, ...]
    action: Action
    predicate: Predicate | None = None
    segment: Segmenter | None = None
    name: str = ""
    maps: tuple[tuple[str, str], ...] | None = None


@dataclass
class _Interval:
    period_ns: int
    action: Action
    name: str
    next_ns: int


class Tracer:
    """A bus consumer running probes, BEGIN/END and interval actions, holding maps.

    ``output`` receives each output record (:class:`PrintfOutput`, :class:`MapOutput`
    ...) as it happens; by default they collect in :attr:`outputs`. Attach it with
    ``bus.attach(tracer, tracer.tracepoints())``, or feed it batches (a trace file's
    ``ordered_batches()``); call :meth:`finish` at the end. Batches of tracepoints
    outside :meth:`tracepoints` are ignored, so a live run and a trace file give the
    same output.
    """

    def __init__(self, registry: Registry | None = None, output: Callable[[Output], None] | None = None,
                 *, auto_print: bool = True, max_map_keys: int = DEFAULT_MAX_MAP_KEYS) -> None:
        self.registry = registry or default_registry()
        #: the most keys each map made from now on holds (bpftrace's max_map_keys)
        self.max_map_keys = max_map_keys
        #: what the run could not do as asked (a full map), one line each, set by
        #: :meth:`finish`; a CLI prints them on stderr
        self.warnings: list[str] = []
        self.outputs: list[Output] = []
        self.output = output or self.outputs.append
        self.auto_print = auto_print
        self.maps: dict[str, Map] = {}
        self.probes: list[Probe] = []
        self._by_tp: dict[str, list[Probe]] = {}
        self._begin: list[tuple[Action, str]] = []
        self._end: list[tuple[Action, str]] = []
        self._intervals: list[_Interval] = []
        self._fired = 0  # interval firings so far (MAX_INTERVAL_FIRINGS)
        #: pid -> comm (and more) of the task events seen so far
        self.tasks = TaskTable()
        #: ino -> path of the file_open and mmap events seen so far (MAX_PATHS)
        self.paths: dict[int, str] = {}
        self._path_chars = 0
        self._paths_dropped = 0
        self.first_ts_ns: int | None = None
        self.now_ns = 0
        self.last_ts_ns = 0
        self.started = False
        self.finished = False
        self.exited = False
        self._pending: list[tuple[np.ndarray, list[Output]]] = []
        self._traced: frozenset[str] | None = None

    # -- building

    def map(self, name: str) -> Map:
        """The map called ``name`` (``@`` prefix optional), made on first use."""
        key = name if name.startswith("@") else f"@{name}"
        m = self.maps.get(key)
        if m is None:
            m = self.maps[key] = Map(key, self.max_map_keys)
        return m

    def probe(self, tracepoints: str | Sequence[str], action: Action, *, predicate: Predicate | None = None,
              segment: Segmenter | None = None, name: str = "",
              maps: Sequence[tuple[str, str]] | None = None) -> Probe:
        """Attach ``action`` to tracepoints given by name or glob (``"page_*"``);
        ``maps`` as :class:`Probe` says."""
        patterns = [tracepoints] if isinstance(tracepoints, str) else list(tracepoints)
        names: list[str] = []
        for pattern in patterns:
            matched = self.registry.match(pattern)
            if not matched:
                raise NotFoundError(f"no tracepoint matches {pattern!r}")
            names.extend(tp.name for tp in matched)
        p = Probe(tuple(dict.fromkeys(names)), action, predicate, segment, name,
                  None if maps is None else tuple(maps))
        self.probes.append(p)
        for tp_name in p.tracepoints:
            self._by_tp.setdefault(tp_name, []).append(p)
        self._traced = None
        return p

    def begin(self, action: Action) -> None:
        """Run ``action`` once before the first event."""
        self._begin.append((action, "BEGIN"))

    def end(self, action: Action) -> None:
        """Run ``action`` once at :meth:`finish`, before the maps are printed."""
        self._end.append((action, "END"))

    def interval(self, period_ns: int, action: Action, name: str = "") -> None:
        """Run ``action`` each time simulated time crosses a multiple of
        ``period_ns``, and once more at :meth:`finish`."""
        if period_ns <= 0:
            raise ValueError(f"interval period must be positive, got {period_ns} ns")
        self._intervals.append(_Interval(period_ns, action, name or f"interval:ns:{period_ns}", period_ns))
        self._traced = None

    def tracepoints(self) -> list[str]:
        """Tracepoints this tracer consumes: the ones it traces (see
        :meth:`traced`) and the ones feeding its task table."""
        traced = set(self.traced())
        return [tp.name for tp in self.registry if tp.name in traced or tp.name in TASK_TRACEPOINTS]

    def traced(self) -> list[str]:
        """Tracepoints whose events run probes and move the clock: the probes',
        :data:`TRACED_ALWAYS`, and every tracepoint when an interval probe needs to
        see time pass."""
        if self._intervals:
            return [tp.name for tp in self.registry]
        wanted = set(self._by_tp) | set(TRACED_ALWAYS)
        return [tp.name for tp in self.registry if tp.name in wanted]

    def commute(self) -> dict[str, int]:
        """Tracepoints whose events this tracer may take out of ``seq`` order against
        one another, as ``TraceReader.ordered_batches(commute=...)`` wants them: each
        class is a set of tracepoints linked by maps touched in an order-dependent
        way (a map read, assigned or deleted from), and its events keep their order
        against every other class's only where an ordered event stands between them.
        Ordered (in no class): the tracepoints of the task and path tables, those
        with a probe whose effects are unknown or that prints or exits
        (``Probe.maps`` None), and every tracepoint when an interval probe runs.

        The output is that of a run in ``seq`` order, with one exception: when a
        map shared by two classes is full (``max_map_keys``), which new keys were
        dropped follows the order the batches came in.
        """
        if self._intervals:
            return {}
        traced = [name for name in self.traced() if name not in _TABLE_TRACEPOINTS]
        how: dict[str, set[tuple[str, str]]] = {}
        for name in traced:
            probes = self._by_tp.get(name, [])
            if any(p.maps is None for p in probes):
                continue
            how[name] = {m for p in probes for m in p.maps or ()}
        ordered_maps = {m for touched in how.values() for m, op in touched if op != "agg"}
        # Tracepoints sharing an order-dependent map are one class (union-find).
        parent = {name: name for name in how}

        def root(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        owner: dict[str, str] = {}
        for name, touched in how.items():
            for m, _op in sorted(touched):
                if m in ordered_maps:
                    first = owner.setdefault(m, name)
                    parent[root(name)] = root(first)
        classes: dict[str, int] = {}
        out: dict[str, int] = {}
        for name in how:
            out[name] = classes.setdefault(root(name), len(classes))
        return out

    def attach(self, bus: Bus) -> None:
        """Attach to ``bus`` for :meth:`tracepoints`."""
        bus.attach(self, self.tracepoints())

    @property
    def nr_probes(self) -> int:
        """Attach points, as bpftrace counts them for "Attaching N probes..."."""
        return sum(len(p.tracepoints) for p in self.probes) + len(self._begin) + len(self._end) + len(self._intervals)

    # -- tables

    def comm(self, pid: int) -> str:
        """comm of ``pid`` from the task table: ``swapper/0`` for pid 0 unless a
        task event named it, ``[unknown]`` for a pid no event named."""
        comm = self.tasks.comm(pid)
        return IDLE_COMM if pid == 0 and comm == UNKNOWN_COMM else comm

    def comms_of(self, pids: np.ndarray) -> StrColumn:
        """comm of each pid (int64 column), as :meth:`comm` gives it."""
        n = len(pids)
        if n == 0:
            return StrColumn(np.zeros(0, np.intp), [])
        uniq, inv, _ = dense_codes(pids)
        values = [self.comm(p) for p in uniq.tolist()]
        return StrColumn(np.zeros(n, np.intp) if inv is None else inv, values)

    def paths_of(self, inos: np.ndarray) -> StrColumn:
        """Path of each inode (int64 column), ``[ino N]`` for one never named."""
        n = len(inos)
        if n == 0:
            return StrColumn(np.zeros(0, np.intp), [])
        uniq, inv, _ = dense_codes(inos)
        paths = self.paths
        values = [paths.get(i, f"[ino {i}]") for i in uniq.tolist()]
        return StrColumn(np.zeros(n, np.intp) if inv is None else inv, values)

    def _update_tables(self, batch: EventBatch) -> None:
        name = batch.tp.name
        if name in TASK_TRACEPOINTS:
            self.tasks.on_batch(batch)
        elif name in ("file_open", "mmap"):
            for ino, path in zip(batch.ints("ino").tolist(), batch.strs("path")):
                if name == "file_open" or (ino and path):
                    self._name_path(ino, path)

    def _name_path(self, ino: int, path: str) -> None:
        """``paths[ino] = path``, within MAX_PATHS and MAX_PATH_CHARS."""
        old = self.paths.get(ino)
        grow = len(path) - (len(old) if old is not None else 0)
        if (old is None and len(self.paths) >= MAX_PATHS) or self._path_chars + grow > MAX_PATH_CHARS:
            self._paths_dropped += 1
            return
        self.paths[ino] = path
        self._path_chars += grow

    # -- running

    def start(self) -> None:
        """Run BEGIN actions (done by the first batch or :meth:`finish` if not called)."""
        if self.started:
            return
        self.started = True
        for action, name in self._begin:
            self._run_synthetic(action, name, 0)

    def on_batch(self, batch: EventBatch) -> None:
        """Run the probes of ``batch``'s tracepoint on it (and the interval probes
        whose time it crosses); nothing once :meth:`exit` or :meth:`finish` ran."""
        if self._stopped() or batch.n == 0:
            return
        if self._traced is None:
            self._traced = frozenset(self.traced())
        if batch.tp.name not in self._traced:
            self.tasks.on_batch(batch)  # a task event only: names change, time does not move
            return
        if not self.started:
            self.start()
        ts = batch.ints("ts_ns")
        if self.first_ts_ns is None:
            self.first_ts_ns = int(ts[0])
        self._update_tables(batch)
        base = EventsBase(self, batch)
        n = batch.n
        start = 0
        if self._intervals:
            # Simulated time is the running maximum of event time: split the batch
            # where it crosses the next interval boundary.
            clock = np.maximum.accumulate(np.maximum(ts.astype(np.int64), self.now_ns))
            self._check_firings(int(clock[-1]))
            while True:
                due = min(iv.next_ns for iv in self._intervals)
                if clock[-1] < due:
                    break
                cut = int(np.searchsorted(clock, due, side="left"))
                if cut > start:
                    self._run_rows(base, start, cut)
                    if self.exited:
                        return
                start = cut
                if not self._fire(due):
                    return
            self.now_ns = max(self.now_ns, int(clock[-1]))
        else:
            self.now_ns = max(self.now_ns, int(ts.max()))
        self.last_ts_ns = max(self.last_ts_ns, int(ts[-1]))  # batches may come by commute class
        if start < n:
            self._run_rows(base, start, n)

    def start_clock(self, now_ns: int) -> None:
        """A live run starts at ``now_ns``: its interval probes fire a period after
        it (as bpftrace's do), not at the multiples of their period since boot."""
        self.now_ns = max(self.now_ns, now_ns)
        for iv in self._intervals:
            iv.next_ns = now_ns + iv.period_ns

    def advance(self, now_ns: int) -> None:
        """Time passes with no event (a live run between two batches): the interval
        probes due by ``now_ns`` fire. Events later than it may still come."""
        if self._stopped() or not self._intervals or now_ns <= self.now_ns:
            return
        if not self.started:
            self.start()
        self._check_firings(now_ns)
        while True:
            due = min(iv.next_ns for iv in self._intervals)
            if now_ns < due:
                break
            if not self._fire(due):
                return
        self.now_ns = now_ns

    def _fire(self, due: int) -> bool:
        """Simulated time reaches ``due``: the interval probes due then run, each
        moved on a period. False once one of them called exit()."""
        self.now_ns = due
        for iv in self._intervals:
            if iv.next_ns == due:
                iv.next_ns += iv.period_ns
                self._fired += 1
                self._run_synthetic(iv.action, iv.name, due)
                if self.exited:
                    return False
        return True

    def _stopped(self) -> bool:
        """True once :meth:`finish` ran or :meth:`exit` stopped the run."""
        return self.finished or self.exited

    def _check_firings(self, now_ns: int) -> None:
        """MemtraceError when reaching simulated time ``now_ns`` would fire the
        interval probes more than MAX_INTERVAL_FIRINGS times in the run."""
        due = [((now_ns - iv.next_ns) // iv.period_ns + 1 if now_ns >= iv.next_ns else 0, iv)
               for iv in self._intervals]
        if self._fired + sum(n for n, _ in due) <= MAX_INTERVAL_FIRINGS:
            return
        n, iv = max(due, key=lambda x: x[0])
        raise MemtraceError(f"{iv.name} would fire {n:,} more times to reach simulated time {now_ns / 1e9:,.3f} s, "
                            f"beyond the {MAX_INTERVAL_FIRINGS:,} interval firings a run allows: use a longer "
                            "interval (or the trace's timestamps are damaged)")

    def _run_rows(self, base: EventsBase, start: int, stop: int) -> None:
        assert base.batch is not None
        probes = self._by_tp.get(base.batch.tp.name)
        if not probes:
            return
        tp_name = base.batch.tp.name
        whole = Events(base, slice(start, stop), tp_name)
        cut_sets = [p.segment(whole) for p in probes if p.segment is not None]
        cuts = [c for c in cut_sets if c is not None and len(c)]
        if cuts:
            bounds = np.unique(np.concatenate(cuts)).tolist()
            edges = [0, *bounds, stop - start]
            segments = [whole.slice(a, b) for a, b in itertools.pairwise(edges) if b > a]
        else:
            segments = [whole]
        for seg in segments:
            for p in probes:
                ev = seg
                if p.predicate is not None:
                    mask = p.predicate(ev)
                    ev = ev.select(mask)
                if ev.n:
                    p.action(ev)
                if self.exited:
                    break
            self._flush()
            if self.exited:
                return

    def _run_synthetic(self, action: Action, name: str, ts_ns: int) -> None:
        ev = Events(EventsBase(self, None), slice(0, 1), name, synthetic_ns=ts_ns)
        action(ev)
        self._flush()

    def finish(self) -> None:
        """End of the events: interval actions once more, END actions, then every
        non-empty map printed (unless ``auto_print`` is off)."""
        if self.finished:
            return
        if not self.started:
            self.start()
        if not self.exited:
            for iv in self._intervals:
                self._run_synthetic(iv.action, iv.name, self.now_ns)
        self.exited = False  # END runs after exit(), as in bpftrace
        for action, name in self._end:
            self._run_synthetic(action, name, self.now_ns)
        self.finished = True
        if self.auto_print:
            for m in self.maps.values():
                if len(m):
                    self.output(m.snapshot())
        self.warnings.extend(w for m in self.maps.values() if (w := m.warning()) is not None)
        if (w := self.tasks.warning()) is not None:
            self.warnings.append(w)
        if self._paths_dropped:
            self.warnings.append(f"more than {MAX_PATHS:,} files or {MAX_PATH_CHARS >> 20} Mi characters of paths: "
                                 f"{self._paths_dropped:,} were not kept (path() names them [ino N])")

    def exit(self) -> None:
        """exit(): stop at the current event; END still runs at :meth:`finish`."""
        self.exited = True

    # -- output queue

    def queue(self, rows: np.ndarray, outs: list[Output]) -> None:
        """Queue output records, one per event at batch rows ``rows``: they are
        emitted in row order once every probe has run on the segment."""
        if outs:
            self._pending.append((rows, outs))

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if len(pending) == 1:
            for out in pending[0][1]:
                self.output(out)
            return
        rows = np.concatenate([r for r, _ in pending])
        outs = [o for _, os in pending for o in os]
        for i in np.argsort(rows, kind="stable").tolist():
            self.output(outs[i])


def run_trace(tracer: Tracer, reader: TraceReader) -> Tracer:
    """Run ``tracer`` over a trace file: the tracepoints it consumes, in the order
    it needs (:meth:`Tracer.commute`), then finish it."""
    wanted = set(tracer.tracepoints())
    skip = frozenset(tp.name for tp in reader.registry if tp.name not in wanted)
    return run_batches(tracer, reader.ordered_batches(skip, commute=tracer.commute()))


def run_batches(tracer: Tracer, batches: Iterable[EventBatch]) -> Tracer:
    """Feed ``batches`` (in seq order) to ``tracer`` and finish it; stops early on
    exit()."""
    tracer.start()
    for batch in batches:
        if tracer.exited:
            break
        tracer.on_batch(batch)
    tracer.finish()
    return tracer

