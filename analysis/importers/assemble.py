"""Writing an imported trace: flush groups of events, then the header, joined into one file.

The tracepoint mappers (:mod:`.mapping`) emit memtrace events into a
:class:`TraceOutput`, which buffers them as rows per tracepoint and writes one flush
group every :data:`GROUP_EVENTS` events to a temporary events file. The header
needs the whole input (the machine and cgroups from the companion log or the
start-of-trace snapshot, the derived workload and what it assumed, what each field
written with a placeholder means), so it is written last (:func:`import_meta`) and
:meth:`TraceOutput.join` puts it in front of the events.

``meta["derived"]`` says what the derived workload rests on: ``initial_memory``
(what each process that predates the trace held when it started, and which source
told), ``after_kill`` (each OOM victim's kill, observed growth and planned end: its
steps end at the kill, and ``memtrace.replay.assume`` adds what the replay assumes),
``end_ns`` (the derived workload's end), ``vma_steps`` and ``steps`` (how madvise,
mremap and mprotect were expressed).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.version import DEFAULT_KERNEL_VERSION
from memtrace.safewrite import safe_output
from memtrace.tracer import EventBatch, TraceWriter, default_registry
from memtrace.tracer.batch import Column
from memtrace.tracer.tracefile import trace_head

from .workload import CLASSES, SYNTHETIC_FILE, TAIL_NS

if TYPE_CHECKING:
    from .builder import TraceBuilder

__all__ = ["GROUP_EVENTS", "ImportResult", "TraceOutput", "import_meta"]

#: Events per flush group of the output trace.
GROUP_EVENTS = 1 << 16


@dataclass(frozen=True)
class ImportResult:
    """What an import produced: the shape of ``memtrace import --json``."""

    trace: str
    source: str
    format: str
    lines: int
    events: dict[str, int]
    unknown_lines: int
    unknown_events: dict[str, int]
    summarised: dict[str, dict[str, int]]
    processes: int
    oom_kills: list[dict[str, Any]]
    warnings: list[str]
    trace_bytes: int
    duration_ns: int
    companion_log: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace, "source": self.source, "format": self.format, "lines": self.lines,
            "events": self.events, "total_events": sum(self.events.values()),
            "unknown_lines": self.unknown_lines, "unknown_events": self.unknown_events,
            "summarised": self.summarised, "processes": self.processes, "oom_kills": self.oom_kills,
            "warnings": self.warnings, "trace_bytes": self.trace_bytes, "duration_ns": self.duration_ns,
            "companion_log": self.companion_log,
        }


class TraceOutput:
    """The events of an import on their way to the trace file.

    :meth:`emit` buffers one event as a row (``seq`` numbered here, in emission
    order). The two hot tracepoints, ``page_fault`` and ``rss_stat``, are buffered
    flat (:attr:`fault_flat`, :attr:`rss_flat`: values one after another, which numpy
    turns into columns far faster than rows) or as ready rows (:meth:`add_rows`).
    :meth:`flush` writes everything buffered as one flush group.
    """

    def __init__(self, output: str | os.PathLike[str], memtrace_version: str) -> None:
        self.output = Path(output)
        self.memtrace_version = memtrace_version
        self.registry = default_registry()
        self.tps = {tp.name: tp for tp in self.registry}
        self.seq = 0
        #: the seq at which the next flush group is due
        self.next_flush = GROUP_EVENTS
        self.rows: dict[str, list[list[Any]]] = {}
        self.fault_flat: list[int] = []
        self.rss_flat: list[int] = []
        self._bulk: dict[str, list[npt.NDArray[np.int64]]] = {"page_fault": [], "rss_stat": []}
        #: Called before a flush group is written (a bulk reader hands over its rows).
        self.before_flush: Callable[[], None] | None = None
        #: Called with each batch as it is written (a live consumer: ``memtrace trace --live``).
        self.on_batch: Callable[[EventBatch], None] | None = None
        #: events written, by tracepoint
        self.counts: dict[str, int] = {}
        if str(self.output.parent):
            self.output.parent.mkdir(parents=True, exist_ok=True)
        # The events go to a scratch trace beside the output, created exclusively
        # under an unpredictable name (memtrace.safewrite); join() copies them behind
        # the header into the output, written safely, and removes the scratch file.
        scratch = self.output.parent / f".{self.output.name}.{secrets.token_hex(6)}.events"
        self.writer = TraceWriter(scratch, self.registry, {"import": "events"},
                                  chunk_events=1 << 40, memtrace_version=memtrace_version)
        self._events_header_bytes = self.writer.bytes_written

    def emit(self, tp: str, ts_ns: int, pid: int, *values: Any) -> list[Any]:
        """One event of tracepoint ``tp`` (its fields after seq, ts_ns and pid, in
        schema order); returns its row."""
        row = [self.seq, ts_ns, pid, *values]
        self.seq += 1
        rows = self.rows.get(tp)
        if rows is None:
            rows = self.rows[tp] = []
        rows.append(row)
        return row

    def add_rows(self, name: str, rows: npt.NDArray[np.int64]) -> None:
        """Events of ``page_fault`` or ``rss_stat`` made in bulk: one row per event,
        the tracepoint's fields as columns (``seq`` first, numbered by the caller
        from :attr:`seq`), written with the next flush group."""
        self._bulk[name].append(rows)

    def flush(self) -> None:
        """Write everything buffered as one flush group."""
        if self.before_flush is not None:
            self.before_flush()
        self.next_flush = self.seq + GROUP_EVENTS
        for name, flat in (("page_fault", self.fault_flat), ("rss_stat", self.rss_flat)):
            bulk = self._bulk[name]
            if flat or bulk:
                tp = self.tps[name]
                if flat:
                    bulk.append(np.array(flat, dtype=np.int64).reshape(-1, len(tp.all_fields)))
                table = bulk[0] if len(bulk) == 1 else np.concatenate(bulk)
                if table.shape[0] > 1 and not bool(np.all(table[1:, 0] > table[:-1, 0])):
                    table = table[np.argsort(table[:, 0], kind="stable")]
                hot: dict[str, Column] = {f.name: table[:, j].astype(f.dtype) for j, f in enumerate(tp.all_fields)}
                self._write(EventBatch(tp, hot))
                self.counts[name] = self.counts.get(name, 0) + table.shape[0]
                flat.clear()
                bulk.clear()
        for name, rows in self.rows.items():
            if not rows:
                continue
            tp = self.tps[name]
            cols = list(zip(*rows))
            values: dict[str, Column] = {}
            for f, col in zip(tp.all_fields, cols):
                if f.type == "str":
                    values[f.name] = list(col)
                else:
                    values[f.name] = np.array(col, dtype=f.dtype)
            self._write(EventBatch(tp, values))
            self.counts[name] = self.counts.get(name, 0) + len(rows)
            rows.clear()
        self.writer.flush()

    def _write(self, batch: EventBatch) -> None:
        self.writer.on_batch(batch)
        if self.on_batch is not None:
            self.on_batch(batch)

    def close(self, extra: dict[str, Any]) -> None:
        """Close the events file, with its footer's ``extra``."""
        self.writer.close(extra=extra)

    def join(self, meta: dict[str, Any]) -> None:
        """Header (now that it is known) + the events file's frames -> the output,
        replaced at once (memtrace.safewrite); the scratch file is removed."""
        try:
            head = trace_head(self.registry, meta, self.memtrace_version, str(self.output))
            with safe_output(self.output) as out, open(self.writer.written_path, "rb") as f:
                out.write(head)
                f.seek(self._events_header_bytes)
                shutil.copyfileobj(f, out, 1 << 20)
        finally:
            self.writer.discard()

    def abort(self) -> None:
        """Drop the scratch file after a failure."""
        self.writer.discard()


# --------------------------------------------------------------------------- the header

#: What a real trace cannot tell, by memtrace tracepoint: the fields written with a
#: placeholder and why (``meta["source"]["unknown"]``, for the tracepoints written).
UNKNOWN_FIELDS: dict[str, dict[str, str]] = {
    "page_fault": {
        "pfn": "exceptions:page_fault_user carries no page frame: written as 0",
        "major": "whether the fault needed I/O is not traced: written as false",
        "vma_kind": "from the mapping when its address is known, else from the rss_stat counter the "
                    "fault raised right after it, else anon_private",
    },
    "mmap": {
        "ino": "the trace names no file: 0", "path": "the trace names no file: ''",
        "charged_pages": "Committed_AS charges are not traced: 0",
    },
    "munmap": {"uncharged_pages": "Committed_AS charges are not traced: 0"},
    "brk": {"charged_pages": "Committed_AS charges are not traced: 0"},
    "rss_stat": {"mm_pid": "the kernel prints a hash of the mm (mm_id): resolved to the pid that owns it "
                           "(curr=1), else to the task in whose context it fired; 0 when neither tells"},
    "process_start": {"uid": "not traced: from the companion log's task table when it lists the pid, else 0",
                      "oom_score_adj": "not traced: from oom_score_adj_update or the companion log, else 0"},
    "reclaim_end": {"nr_scanned": "the *_reclaim_end tracepoints print only nr_reclaimed: 0",
                    "memcg": "as for reclaim_begin"},
    "reclaim_begin": {"memcg": "mm_vmscan_memcg_reclaim_begin names no cgroup: the memcg of the companion log's "
                               "task table that lists the task, else ''"},
    "kswapd_sleep": {"nr_reclaimed": "mm_vmscan_kswapd_sleep prints only nid: 0"},
    "shrink_list": {"nr_mapped_kept": "not traced: 0", "nr_no_swap": "not traced: 0", "memcg": "not traced: ''"},
    "page_cache_add": {"shmem": "not traced: false"},
    "page_cache_delete": {"shmem": "not traced: false",
                          "reason": "not traced: reclaim when it happens in kswapd or inside a reclaim "
                                    "of the task, else truncate (drop_caches cannot be told apart)"},
    "oom_reap": {"anon_rss_kb": "not traced (finish_task_reaping prints only pid): 0",
                 "file_rss_kb": "not traced: 0", "shmem_rss_kb": "not traced: 0"},
    "fork": {"charged_pages": "not traced: 0"},
    "exit": {"code": "not traced: 0"},
}
#: The oom_kill fields mark_victim does not carry, when no companion log gave them.
UNKNOWN_OOM_KILL_NO_LOG = {
    "points": "mark_victim carries no badness: 0 (give the kernel log with --dmesg)",
    "totalpages": "not traced: 0 (give the kernel log with --dmesg)",
    "constraint": "not traced: CONSTRAINT_NONE written (give the kernel log with --dmesg)",
    "memcg": "not traced: '' (give the kernel log with --dmesg)",
    "task_memcg": "not traced: ''",
    "gfp_mask": "not traced: 0", "order": "not traced: 0",
    "message": "not traced: 'Out of memory' written",
}
#: ... and those a mark_victim before 6.10 (pid only) does not carry.
UNKNOWN_OOM_KILL_OLD = {
    "comm": "mark_victim before 6.10 prints only the pid: the comm last seen for it",
    "total_vm_kb": "mark_victim before 6.10 prints only the pid: 0", "anon_rss_kb": "0", "file_rss_kb": "0",
    "shmem_rss_kb": "0", "uid": "0", "pgtables_kb": "0", "oom_score_adj": "the last oom_score_adj_update, else 0",
}


def _machine(b: TraceBuilder) -> dict[str, Any]:
    """The traced machine, as far as the companion log and --kernel-version tell;
    what they do not is assumed, with a note."""
    version = b.kernel_version
    cgroup_version = b.machine.get("cgroup_version", 2)
    ram: int | None = None
    swap: int | None = None
    snap = b.snapshot
    if snap:
        cgroup_version = snap.cgroup_version() or cgroup_version
    for r in b.companion.reports:
        if version is None and r.kernel_release:
            version = r.kernel_release.split("-")[0]
        if r.cgroup_version is not None:
            cgroup_version = r.cgroup_version
        if ram is None and r.ram_pages is not None:
            ram = (r.ram_pages - (r.reserved_pages or 0)) * PAGE_SIZE
        if swap is None and r.swap_total_kb is not None:
            swap = r.swap_total_kb * 1024
    if ram is None and b.machine.get("ram_bytes"):
        ram = b.machine["ram_bytes"]
    if swap is None and "swap_bytes" in b.machine:
        swap = b.machine["swap_bytes"]
    if version is None and snap.kernel_release:
        version = snap.kernel_release.split("-")[0]
    if ram is None and snap.meminfo("MemTotal"):
        ram = snap.meminfo("MemTotal")
        b.notes.append("RAM from the start-of-trace snapshot's MemTotal")
    if swap is None and snap.meminfo("SwapTotal") is not None:
        swap = snap.meminfo("SwapTotal")
    if version is None:
        version = DEFAULT_KERNEL_VERSION
        b.notes.append("kernel version unknown (no companion log, no --kernel-version): 6.13 assumed")
    if ram is None:
        ram = 24 << 30
        b.notes.append("RAM unknown (no global OOM report in a companion log, no snapshot): 24 GiB assumed "
                       "for replay")
    ram = max(64 << 20, ram // PAGE_SIZE * PAGE_SIZE)
    if swap is None:
        swap = 0
        b.notes.append("swap unknown: none assumed for replay")
    return {"ram_bytes": ram, "swap_bytes": swap // PAGE_SIZE * PAGE_SIZE, "kernel_version": version,
            "cgroup_version": cgroup_version}


def _cgroups(b: TraceBuilder) -> list[dict[str, Any]]:
    """Memory cgroups of the workload and their limits: those of the companion log's
    memcg OOMs (every task of a memcg OOM's table is in that memcg), and those the
    start-of-trace snapshot names for the traced processes (a child starts in its
    parent's). A cgroup is declared when a limit is known for it; a process in one
    with none runs in the root's."""
    out: dict[str, dict[str, Any]] = {}
    work = b.work
    procs = work.procs
    for r in b.companion.reports:
        path = r.memcg
        if not r.is_memcg or not path or path == "/" or not path.startswith("/"):
            continue
        mem = r.memcg_counters.get("memory")
        entry = out.setdefault(path, {"path": path})
        if mem is not None and mem[1] * 1024 < (1 << 62):
            entry["max"] = mem[1] * 1024 // PAGE_SIZE * PAGE_SIZE
        swap = r.memcg_counters.get("swap")
        memsw = r.memcg_counters.get("memory+swap")
        if swap is not None and swap[1] * 1024 < (1 << 62):
            entry["swap_max"] = swap[1] * 1024 // PAGE_SIZE * PAGE_SIZE
        elif memsw is not None and mem is not None and memsw[1] <= mem[1]:
            entry["swap_max"] = 0
        for row in r.tasks:
            p = procs.get(row.pid)
            if p is not None:
                p.memcg = path
        if r.victim_pid is not None and r.victim_pid in procs:
            procs[r.victim_pid].memcg = path
    snap = b.snapshot
    if snap:
        for pid, p in procs.items():
            snap_row = snap.rows.get(pid)
            if snap_row is None or snap_row.memcg is None or p.memcg is not None:
                continue
            if p.predates or snap.ts_ns is None or p.first_ts <= snap.ts_ns:
                p.memcg = snap_row.memcg  # the same process (not a later one with its pid)
        for path in sorted({work.memcg_of(pid) for pid in procs} - {"/"} - set(out)):
            g = snap.cgroup(path)
            if g is None or (g.max_bytes is None and g.swap_max_bytes is None):
                continue
            entry = out[path] = {"path": path}
            if g.max_bytes is not None:
                entry["max"] = g.max_bytes
            if g.swap_max_bytes is not None:
                entry["swap_max"] = g.swap_max_bytes
            b.notes.append(f"memory cgroup {path} and its limits from the start-of-trace snapshot")
    # Parents must be declared first.
    result: list[dict[str, Any]] = []
    declared: set[str] = set()
    for path in sorted(out, key=lambda s: s.count("/")):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent = "/" + "/".join(parts[:depth])
            if parent not in declared:
                declared.add(parent)
                result.append({"path": parent})
        if path not in declared:
            declared.add(path)
            result.append(out[path])
    return result


def _add_log_only_processes(b: TraceBuilder) -> None:
    """The processes of the companion log's task tables that the trace does not
    show: their memory from the table. (One the trace shows that predates it took
    its memory from the table already, if no earlier source told.)"""
    work = b.work
    for r in b.companion.reports:
        for row in r.tasks:
            p = work.procs.get(row.pid)
            if row.pid > 1 and (p is None or (not p.merged and not p.predates
                                              and not any(s["op"] != "sleep" for s in p.steps))):
                # Not in the trace, or seen there only doing nothing we can replay
                # (e.g. its teardown after the kill): its memory from the table.
                if p is not None:
                    work.order.remove(row.pid)
                work.from_task_row(row, r.memcg if r.is_memcg else None, work.t0)


def _add_snapshot_only_processes(b: TraceBuilder, cgroups: list[dict[str, Any]]) -> None:
    """The processes of the start-of-trace snapshot that the trace does not show,
    in a memory cgroup of the workload with a limit (or all of them, when there is
    none): they hold their memory there all along."""
    snap = b.snapshot
    if not snap:
        return
    work = b.work
    limited = {str(c["path"]) for c in cgroups if "max" in c or "swap_max" in c}
    added = 0
    for pid, row in sorted(snap.rows.items()):
        if pid <= 1 or pid in work.procs or pid in work.forked:
            continue
        if limited and row.memcg not in limited:
            continue
        if row.rss_anon_bytes + row.rss_file_bytes + row.rss_shmem_bytes == 0:
            continue
        work.from_snapshot_row(pid)
        p = work.procs[pid]
        p.uid, p.oom_score_adj = row.uid, row.oom_score_adj
        added += 1
    if added:
        where = "in its memory cgroups" if limited else "on the machine (no memory cgroup limit)"
        b.notes.append(f"{added} process(es) of the snapshot {where} do nothing the trace shows: "
                       "they hold their snapshot memory from the start")


def _initial_notes(b: TraceBuilder, names: dict[int, str]) -> dict[str, Any]:
    """``meta["derived"]["initial_memory"]`` and one note per process that predates
    the trace: what it held when the trace started, and which source told."""
    work = b.work
    t0 = work.t0 or 0
    out: dict[str, Any] = {}
    notes: list[str] = []
    for pid in work.order:
        p = work.procs[pid]
        if pid not in names or not p.predates:
            continue
        init = p.initial_memory
        if init is None:
            notes.append(f"{p.comm} (pid {pid}) predates the trace; nothing tells what it held then "
                         "(no snapshot, rss_stat or task-table row): it starts with nothing")
            continue
        entry: dict[str, Any] = {"pid": pid, "pages": dict(init.nr_pages), "source": dict(init.source),
                                 "ts_ns": {k: (v - t0 if v is not None else None) for k, v in init.ts_ns.items()}}
        out[names[pid]] = entry
        parts = []
        for cls in CLASSES:
            if cls in init.source and (init.nr_pages.get(cls, 0) or cls == "anon"):
                when = init.ts_ns.get(cls)
                at = f" at {(when - t0) / 1e9:.3f} s" if when is not None else ""
                parts.append(f"{cls} {init.nr_pages.get(cls, 0) * PAGE_SIZE / 2**20:.1f} MiB "
                             f"({init.source[cls]}{at})")
        notes.append(f"{p.comm} (pid {pid}) predates the trace: starts with " + ", ".join(parts))
    if len(notes) > 40:
        notes = [*notes[:40], f"... and {len(notes) - 40} more processes that predate the trace"]
    b.notes.extend(notes)
    return out


def import_meta(b: TraceBuilder) -> dict[str, Any]:
    """The header meta of the imported trace: the machine, the derived workload and
    ``source`` (the input, its counts, what each placeholder field means)."""
    machine = _machine(b)
    _add_log_only_processes(b)
    cgroups = _cgroups(b)
    _add_snapshot_only_processes(b, cgroups)
    base = os.path.basename(b.source_path)
    workload = b.work.scenario(
        name=f"imported-{Path(base).stem.split('.')[0] or 'trace'}",
        description=f"workload derived from {b.source_format} {base}: each process's mmap, munmap, brk "
                    "and faults (rss_stat where traced), timed as recorded",
        machine={"ram": machine["ram_bytes"], "swap": machine["swap_bytes"],
                 "kernel_version": machine["kernel_version"],
                 **({"cgroup_version": machine["cgroup_version"]} if machine["cgroup_version"] != 2 else {})},
        cgroups=cgroups)
    counts = b.out.counts
    unknown = {k: dict(v) for k, v in UNKNOWN_FIELDS.items() if k in counts}
    if "oom_kill" in counts:
        u: dict[str, str] = {}
        if any("constraint" not in k for k in b.oom.kills):
            u.update(UNKNOWN_OOM_KILL_NO_LOG)
        if b.oom.mark_victim_old:
            u.update(UNKNOWN_OOM_KILL_OLD)
        if u:
            unknown["oom_kill"] = u
    if "oom_candidate" in counts:
        unknown["oom_candidate"] = {"rss_file": "0 when the log's task table does not split RSS (before 6.8); "
                                                "rss_anon is then the whole rss"}
    if "memcg_stat" in counts or "meminfo_sample" in counts:
        unknown["meminfo_sample"] = {"*": "only what the log's Mem-Info prints; other fields 0"}
    work = b.work
    derived: dict[str, Any] = {
        "initial_memory": _initial_notes(b, work.names),
        "after_kill": work.after_kill(),
        "end_ns": work.end_ns,
        #: the trace time (ns since boot) the derived workload's time 0 stands for: a
        #: replay's times plus this are the recording's clock (one clock in reports)
        "clock_origin_ns": work.t0 or 0,
        "assumption": "grow",
        "vma_steps": work.vma_steps,
        "steps": dict(sorted(work.counts.items())),
    }
    if derived["after_kill"]:
        b.notes.append(f"each OOM victim's derived steps end at its kill; what it would have done after is "
                       f"unknowable: the replay assumes it (default: it keeps growing at its observed rate until "
                       f"its planned end, the trace's last event + {TAIL_NS // 10**9} s)")
    kmem, faults = b.kmem, b.exceptions
    source: dict[str, Any] = {
        "format": b.source_format, "path": b.source_path, "lines": b.lines,
        "events": sum(counts.values()), "unknown_lines": b.unknown_lines,
        "comment_lines": b.comment_lines,
        "unknown_events": dict(sorted(b.unknown_events.items(), key=lambda kv: -kv[1])[:50]),
        "summarised": b.summarised, "unknown": unknown,
        "rss_stat_owners": {"owner": kmem.mm_owned, "context_task": kmem.mm_guessed,
                            "unknown": kmem.mm_unknown},
        "page_fault_vma_kind": {"from_mapping": faults.from_vma, "from_rss_stat": faults.from_rss,
                                "default_anon_private": counts.get("page_fault", 0) - faults.from_vma
                                - faults.from_rss},
        "first_ts_ns": b.first_ts, "last_ts_ns": b.last_ts,
        "notes": [
            *b.notes,
            "per-page state (page frames, LRU position, dirty bits) is not in a real trace and is not "
            "invented: analyses see processes, mappings and counters only",
            f"file mappings map {SYNTHETIC_FILE} in the replay workload: the trace names no file",
            "rss_stat of an mm several tasks share (threads, a vfork child before its exec) counts for the "
            "task that first showed it as its own (curr=1); threads join their process when the input shows "
            "their tgid or the clone that made them (CLONE_THREAD)",
        ],
    }
    if b.companion:
        source["companion_log"] = {"path": b.companion.path, "reports": len(b.companion.reports),
                                   "matched_kills": len(b.companion.used)}
    if b.snapshot:
        source["snapshot"] = {"path": b.snapshot.path, "ts_ns": b.snapshot.ts_ns,
                              "processes": len(b.snapshot.rows)}
    return {
        "scenario": workload["name"],
        "source": source,
        "machine": machine,
        "sysctl": {},
        "sysctl_overrides": {},
        "seed": 0,
        "workload": workload,
        "derived": derived,
    }
