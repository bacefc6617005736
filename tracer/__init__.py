"""Tracepoint schemas, event batches, the bus, the trace file format, and probes:
maps, the Tracer and the one-liner language compiled onto it.

This layer imports nothing else of memtrace: the kernel, replay and analysis layers
all build on it.
"""

from .batch import EventBatch, EventRecord, concat
from .bus import Bus, Collector, Consumer, RecordConsumer
from .oneliner import ProgramError, compile_program
from .probes import Events, Map, Tracer, run_batches, run_trace
from .schema import COMMON_FIELDS, Field, Registry, Tracepoint
from .tracefile import Damage, TraceReader, TraceStats, TraceWriter
from .tracepoints import MEMINFO_FIELDS, TRACEPOINTS, default_registry

__all__ = [
    "COMMON_FIELDS",
    "MEMINFO_FIELDS",
    "TRACEPOINTS",
    "Bus",
    "Collector",
    "Consumer",
    "Damage",
    "EventBatch",
    "EventRecord",
    "Events",
    "Field",
    "Map",
    "ProgramError",
    "RecordConsumer",
    "Registry",
    "TraceReader",
    "TraceStats",
    "TraceWriter",
    "Tracepoint",
    "Tracer",
    "compile_program",
    "concat",
    "default_registry",
    "run_batches",
    "run_trace",
]
