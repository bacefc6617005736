"""The trace file: a msgpack recording of event batches, and its reader.

==============  ==============================================================
:mod:`.format`   the framing (magic, frames, checksums), the header and the
                 constants both sides agree on: the byte-by-byte layout
:mod:`.columns`  how a chunk stores one field's values (raw, delta, dict)
:mod:`.writer`   :class:`TraceWriter`, the recorder: batches buffered per
                 tracepoint, written in flush groups
:mod:`.reader`   :class:`TraceReader`: batches streamed back in file or ``seq``
                 order; damage recorded as :class:`Damage` and warnings
==============  ==============================================================

``docs/trace-format.md`` is the specification.
"""

from .format import (
    CHUNK_ZLIB_LEVEL,
    DEFAULT_CHUNK_EVENTS,
    DELTA_TYPES,
    FORMAT_VERSION,
    FRAME_CHUNK,
    FRAME_FOOTER,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_MARKER,
    MAGIC,
)
from .reader import Damage, TraceReader, TraceStats
from .writer import TraceWriter, trace_head

__all__ = [
    "CHUNK_ZLIB_LEVEL",
    "DEFAULT_CHUNK_EVENTS",
    "DELTA_TYPES",
    "FORMAT_VERSION",
    "FRAME_CHUNK",
    "FRAME_FOOTER",
    "FRAME_HEAD",
    "FRAME_HEADER",
    "FRAME_MARKER",
    "MAGIC",
    "Damage",
    "TraceReader",
    "TraceStats",
    "TraceWriter",
    "trace_head",
]
