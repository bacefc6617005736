"""Tracepoint schemas, event batches, the bus, and the trace file format.

This layer imports nothing else of memtrace: the kernel, replay and analysis layers
all build on it.
"""

from .batch import EventBatch, EventRecord, concat
from .bus import Bus, Collector, Consumer, RecordConsumer
from .schema import COMMON_FIELDS, Field, Registry, Tracepoint
from .tracefile import Damage, TraceReader, TraceStats, TraceWriter
from .tracepoints import MEMINFO_FIELDS, TRACEPOINTS, default_registry

__all__ = [
    "Bus",
    "COMMON_FIELDS",
    "Collector",
    "Consumer",
    "Damage",
    "EventBatch",
    "EventRecord",
    "Field",
    "MEMINFO_FIELDS",
    "RecordConsumer",
    "Registry",
    "TRACEPOINTS",
    "TraceReader",
    "TraceStats",
    "TraceWriter",
    "Tracepoint",
    "concat",
    "default_registry",
]
