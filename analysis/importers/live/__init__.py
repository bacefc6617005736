"""Live capture from the running kernel: tracefs, straight into the importer.

``memtrace record --live`` and ``memtrace trace --live`` read the real kernel's
memory tracepoints from a tracefs instance of their own, with no ``perf``: the
binary ring buffers (``per_cpu/cpuN/trace_pipe_raw``) decoded with numpy, the events
fed to the importer's mappers (:mod:`..mapping`) as ``perf script`` text would be,
the kernel log's OOM reports (``/dev/kmsg``) as its companion log. The trace
``record --live`` writes is the kind ``memtrace import`` writes; ``trace --live``
runs a one-liner program on the same events as they come.

==============  ==============================================================
:mod:`.tracefs`  finding tracefs, ``format`` files, our instances and the
                 removal of those a killed recorder left
:mod:`.targets`  ``-a``, ``-p``, ``-c``, ``--cgroup``: ``set_event_pid`` and
                 the command started stopped
:mod:`.session`  one capture: setup, the read loop, signals, clean stop, clocks
                 and loss counters
:mod:`.ringbuf`  ring-buffer pages walked and decoded into columns
:mod:`.kmsg`     the kernel log read from ``/dev/kmsg``
:mod:`.payload`  a decoded event as the text its ``TP_printk`` prints
:mod:`.feed`     CPUs merged in time order, comm and tgid kept, events fed to
                 the importer's :class:`~..builder.TraceBuilder`
:mod:`.record`   ``record --live``: pages spooled, then imported
:mod:`.stream`   ``trace --live``: pages decoded and fed as they come
==============  ==============================================================
"""

from __future__ import annotations

from .record import LiveRecordResult, record_live
from .session import EVENTS, CaptureOptions
from .stream import LiveTraceResult, trace_live
from .targets import LiveTarget
from .tracefs import find_tracefs, remove_stale

__all__ = [
    "EVENTS",
    "CaptureOptions",
    "LiveRecordResult",
    "LiveTarget",
    "LiveTraceResult",
    "find_tracefs",
    "record_live",
    "remove_stale",
    "trace_live",
]
