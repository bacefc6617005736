"""A trace in Chrome's Trace Event Format (JSON): chrome://tracing, older viewers.

The same content as :mod:`.perfetto`, from :func:`.timeline.timeline`, as the
format's events: ``M`` metadata (``process_name``, ``thread_name``), ``C`` counters
(one series per counter, value in bytes in ``args``), ``B``/``E`` slices and ``i``
instants with their ``args``. ``ts`` is in microseconds (the format's unit), printed
exactly from the trace's integer nanoseconds with three decimals;
``displayTimeUnit`` is ``ns``.

Tracks map onto the format's ``pid``/``tid``: a process's events go to its pid,
the slices and instants of one of its tracks to a thread of that pid (tid =
pid for ``reclaim``, a named thread for ``events``); machine-wide tracks go to a
pseudo-process ``pid 0`` named ``memtrace: machine``. The JSON is written as it is
made: memory stays flat.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from memtrace.tracer.tracefile import TraceReader

from .timeline import CounterValue, Instant, ProcessSeen, SliceBegin, SliceEnd, Track, timeline

__all__ = ["MACHINE_PID", "write_chrome_json"]

#: The pseudo-process of machine-wide tracks.
MACHINE_PID = 0
#: Thread ids of named tracks inside a process: ``reclaim`` is the task itself.
_TRACK_TIDS = {"events": 1 << 22, "kswapd": 2, "OOM": 3}


def _us(ts_ns: int) -> str:
    """Microseconds with three decimals, exact (``4929342.780``)."""
    return f"{ts_ns // 1000}.{ts_ns % 1000:03d}"


class _Out:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.first = True
        self.events = 0
        self.threads: set[tuple[int, int]] = set()

    def emit(self, event: dict[str, Any], ts_ns: int | None = None) -> None:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if ts_ns is not None:  # an exact ts, not a float: spliced in as a JSON number
            text = text[:-1] + f',"ts":{_us(ts_ns)}}}'
        self.out.write(("\n" if self.first else ",\n") + text)
        self.first = False
        self.events += 1

    def thread_of(self, track: Track) -> tuple[int, int]:
        pid = MACHINE_PID if track.pid is None else track.pid
        tid = pid if track.name == "reclaim" and track.pid is not None else _TRACK_TIDS.get(track.name, 1)
        if (pid, tid) not in self.threads:
            self.threads.add((pid, tid))
            self.emit({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": track.name}})
        return pid, tid


def write_chrome_json(trace: str | os.PathLike[str] | TraceReader, output: IO[str]) -> int:
    """Write ``trace`` as Trace Event Format JSON to ``output``; the events written."""
    o = _Out(output)
    output.write('{"displayTimeUnit":"ns","otherData":{"source":"memtrace"},"traceEvents":[')
    o.emit({"name": "process_name", "ph": "M", "pid": MACHINE_PID, "tid": 0, "args": {"name": "memtrace: machine"}})
    for item in timeline(trace):
        if isinstance(item, ProcessSeen):
            o.emit({"name": "process_name", "ph": "M", "pid": item.pid, "tid": item.pid, "args": {"name": item.comm}})
        elif isinstance(item, CounterValue):
            pid = MACHINE_PID if item.track.pid is None else item.track.pid
            o.emit({"name": item.track.name, "ph": "C", "pid": pid, "tid": pid, "args": {"bytes": item.value}},
                   item.ts_ns)
        elif isinstance(item, SliceBegin):
            pid, tid = o.thread_of(item.track)
            o.emit({"name": item.name, "ph": "B", "pid": pid, "tid": tid, "args": item.args}, item.ts_ns)
        elif isinstance(item, SliceEnd):
            pid, tid = o.thread_of(item.track)
            o.emit({"ph": "E", "pid": pid, "tid": tid, "args": item.args}, item.ts_ns)
        elif isinstance(item, Instant):
            pid, tid = o.thread_of(item.track)
            scope = "g" if item.track.pid is None else "t"
            o.emit({"name": item.name, "ph": "i", "s": scope, "pid": pid, "tid": tid, "args": item.args}, item.ts_ns)
    output.write("\n]}\n")
    return o.events
