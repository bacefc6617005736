"""``memtrace record --live``: the real kernel's memory tracepoints into a memtrace trace.

The capture (:class:`.session.CaptureSession`) copies each CPU's ring-buffer pages to
a spool file while the targets run: the least work a reader can do while events
come (no parsing: what the traced program pays is the kernel's tracing and one copy
of the pages). When it stops, the pages are decoded (:mod:`.ringbuf`), merged in time
order across CPUs and fed to the importer (:mod:`.feed`), with the kernel log's OOM
reports of the run as its companion log, as ``memtrace import --dmesg`` does: the
trace is the same kind ``import`` writes.

The header's ``live`` part keeps what the capture knows and the events do not say:
the target, why it stopped, the clock (``perf``) and its offsets to CLOCK_MONOTONIC
and CLOCK_REALTIME, the events read per real tracepoint, the events lost (never
hidden: also a warning), the tracepoints this kernel lacks, the kernel log lines,
and the machine read at the start and at the end (``memtrace snapshot``'s data).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ...kernlog.parse import parse_oom_lines
from ..assemble import ImportResult
from ..builder import TraceBuilder
from .feed import LiveFeeder, merge_cpus
from .ringbuf import EventChunk, RingDecoder, walk_pages
from .session import CaptureOptions, CaptureSession, stop_on_signals
from .targets import LiveTarget

__all__ = ["KEPT_LOG_LINES", "SPOOL_PREFIX", "LiveRecordResult", "live_meta", "machine_of", "record_live",
           "remove_stale_spools"]

#: Spool directories are ``<tmp>/memtrace-live-<PID>-*``.
SPOOL_PREFIX = "memtrace-live-"
#: Pages decoded at a time (the walk is fastest on arrays that fit the caches).
_CHUNK_PAGES = 256
#: Kernel log lines kept in the header (the OOM reports are always among them).
KEPT_LOG_LINES = 20_000


@dataclass(frozen=True)
class LiveRecordResult:
    """What ``record --live`` produced: the shape of ``memtrace record --live --json``."""

    imported: ImportResult
    target: str
    stop_reason: str
    elapsed_ns: int
    events_read: dict[str, int]
    lost_events: int
    missing_tracepoints: list[str]
    kernel_log_lines: int
    oom_reports: int
    removed_stale: list[str]
    warnings: list[str]

    @property
    def trace(self) -> str:
        return self.imported.trace

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace": self.imported.trace, "target": self.target, "stop_reason": self.stop_reason,
            "elapsed_ns": self.elapsed_ns, "events_read": self.events_read,
            "total_events_read": sum(self.events_read.values()), "lost_events": self.lost_events,
            "missing_tracepoints": self.missing_tracepoints, "kernel_log_lines": self.kernel_log_lines,
            "oom_reports": self.oom_reports, "removed_stale": self.removed_stale, "warnings": self.warnings,
            "import": self.imported.as_dict(),
        }


def remove_stale_spools(log: Callable[[str], None] | None = None, tmp: str | None = None) -> list[str]:
    """Remove the spool directories of recorders that are gone."""
    removed: list[str] = []
    base = tmp or tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(base)):
            m = re.fullmatch(re.escape(SPOOL_PREFIX) + r"(\d+)-\w+", name)
            if m is None or int(m.group(1)) == os.getpid() or os.path.exists(f"/proc/{m.group(1)}"):
                continue
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed.append(name)
            if log is not None:
                log(f"removed stale spool {os.path.join(base, name)}")
    return removed


def _cpu_chunks(path: str, decoder: RingDecoder, session: CaptureSession, cpu: int) -> Iterator[EventChunk]:
    """A spool file's events, a few hundred pages at a time; its gaps counted."""
    with open(path, "rb") as f:
        while True:
            buf = f.read(_CHUNK_PAGES * decoder.page_size)
            if not buf:
                return
            walk = walk_pages(buf, decoder.page_size)
            for mark in walk.lost:
                session.loss.mark(cpu, mark.events)
            yield decoder.decode(buf, walk)


def kernel_version() -> str:
    """This kernel's version as the importer takes it (``6.18.44``)."""
    return platform.release().split("-")[0]


def machine_of(snapshot: dict[str, Any] | None) -> dict[str, int]:
    """RAM and swap (bytes) and the cgroup version of the machine a snapshot read."""
    if not snapshot:
        return {}
    meminfo = snapshot.get("meminfo") or {}
    out: dict[str, int] = {}
    if isinstance(meminfo.get("MemTotal"), int):
        out["ram_bytes"] = meminfo["MemTotal"]
    if isinstance(meminfo.get("SwapTotal"), int):
        out["swap_bytes"] = meminfo["SwapTotal"]
    cgroups = snapshot.get("cgroups") or {}
    out["cgroup_version"] = 1 if cgroups.get("v1") else 2
    return out


def live_meta(session: CaptureSession, feeder: LiveFeeder, log_lines: list[str]) -> dict[str, Any]:
    """The header's ``live`` part (see the module docstring)."""
    kmsg = session.kmsg
    return {
        "tracefs": session.root, "instance": session.instance.name, "target": session.target.describe(),
        "mode": session.target.mode, "cgroup": session.cgroup, "stop_reason": session.stop_reason,
        "elapsed_ns": session.elapsed_ns(), "trace_clock": "perf",
        "clock_sync": {tag: s.as_dict() for tag, s in session.sync(feeder.markers).items()},
        "buffer_kb_per_cpu": session.options.buffer_kb, "page_size": session.page_size,
        "cpus": len(session.loss.overrun),
        "enabled": session.enabled, "missing": session.missing,
        "events_read": dict(sorted(feeder.counts.items())), "events_total": sum(feeder.counts.values()),
        "first_ts_ns": feeder.first_ts_ns, "last_ts_ns": feeder.last_ts_ns,
        "pages_read": session.pages_read, "bytes_read": session.bytes_read,
        "lost": session.loss.as_dict(),
        "kernel_log": {"source": "/dev/kmsg", "records": len(kmsg.records) if kmsg else 0,
                       "dropped": kmsg.dropped if kmsg else 0, "overruns": kmsg.overruns if kmsg else 0,
                       "error": kmsg.error if kmsg else "not read", "lines": log_lines[:KEPT_LOG_LINES]},
        "snapshots": {"start": session.snapshot_start, "end": session.snapshot_end},
        "removed_stale": session.removed_stale,
    }


def record_live(target: LiveTarget, output: str | os.PathLike[str], *, options: CaptureOptions | None = None,
                status: Callable[[str], None] | None = None, memtrace_version: str = "0.1.0") -> LiveRecordResult:
    """Record ``target`` from the running kernel into the trace ``output`` (see the
    module docstring). ``status`` gets one-line progress messages. Raises
    CaptureError when the capture cannot run here (it says what is needed)."""
    say = status or (lambda _msg: None)
    session = CaptureSession(target, options, say)
    remove_stale_spools(say)
    spool = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-")
    files: dict[int, int] = {}  # cpu -> the file descriptor of its spool file

    def on_pages(cpu: int, data: bytes) -> None:
        fd = files.get(cpu)
        if fd is None:
            fd = files[cpu] = os.open(os.path.join(spool, f"cpu{cpu}.raw"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                      0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    try:
        with stop_on_signals(session):
            try:
                session.start()
                say(f"recording {target.describe()}: {len(session.enabled)} tracepoints"
                    + (f" ({len(session.missing)} missing here)" if session.missing else "")
                    + (f", for {session.options.duration_s:g} s" if session.options.duration_s else "")
                    + "; Ctrl-C to stop")
                session.run(on_pages)
                session.stop(on_pages)
            finally:
                session.close()
                for fd in files.values():
                    os.close(fd)
        say(f"stopped: {session.stop_reason}; {session.pages_read:,} pages read, importing")
        return _import(session, spool, sorted(files), output, memtrace_version)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _import(session: CaptureSession, spool: str, cpus: list[int], output: str | os.PathLike[str],
            memtrace_version: str) -> LiveRecordResult:
    """The spooled pages into the trace ``output``."""
    log_lines = session.kmsg.dmesg_lines() if session.kmsg is not None else []
    companion = parse_oom_lines(log_lines, "/dev/kmsg") if log_lines else None
    builder = TraceBuilder(output, source_format="tracefs", source_path=session.instance.path, companion=companion,
                           kernel_version=kernel_version(), memtrace_version=memtrace_version)
    builder.machine = machine_of(session.snapshot_start)
    try:
        decoder = RingDecoder(session.formats, session.page_size)
        feeder = LiveFeeder(builder, session.formats, session.tasks.values())
        streams = [_cpu_chunks(os.path.join(spool, f"cpu{cpu}.raw"), decoder, session, cpu) for cpu in cpus]
        for chunk in merge_cpus(streams):
            feeder.feed(chunk)
        feeder.finish()
        warnings = list(session.warnings)
        lost = session.loss.events
        if lost:
            worst = max(session.loss.overrun.items() or session.loss.in_band.items(), key=lambda kv: kv[1])
            warnings.append(f"lost {lost:,} events (the ring buffer of cpu {worst[0]} overran): the trace has gaps "
                            "there; a bigger --buffer-kb may help")
            builder.notes.append(f"{lost:,} events were lost in the kernel (ring buffer overruns): the trace has "
                                 "gaps (see live.lost)")
        if session.missing:
            warnings.append(f"not on this kernel: {', '.join(session.missing)}")
        if decoder.unknown_ids:
            warnings.append(f"{sum(decoder.unknown_ids.values()):,} records of unknown event ids skipped")
        builder.extra_meta["live"] = live_meta(session, feeder, log_lines)
        imported = builder.finish(extra_warnings=warnings)
    except BaseException:
        builder.abort()
        raise
    return LiveRecordResult(
        imported=imported, target=session.target.describe(), stop_reason=session.stop_reason or "",
        elapsed_ns=session.elapsed_ns(), events_read=dict(sorted(feeder.counts.items())), lost_events=lost,
        missing_tracepoints=list(session.missing), kernel_log_lines=len(log_lines),
        oom_reports=len(companion.reports) if companion is not None else 0, removed_stale=session.removed_stale,
        warnings=imported.warnings)
