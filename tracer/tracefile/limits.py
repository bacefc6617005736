"""The trace reader's bounds: what a file may claim before the reader allocates for it.

A trace is often someone else's file, and its checksums only say that the bytes are
the ones that were written: a 1 MB file can claim chunks of a billion events, zlib
streams that inflate a thousandfold, one flush group holding the whole file, or a
header nested a thousand deep. The reader checks every such value against these
bounds *before* it allocates for it. A header beyond a bound makes the file
unreadable (one :class:`~memtrace.errors.TraceFormatError`); a chunk beyond one is a
damaged chunk, skipped with a warning like any other; a flush group beyond one is
read in file order, with a warning.

Every bound is far above what memtrace writes (the writer splits chunks to stay
inside them), and together they keep the reader's own memory under about
:data:`READER_PEAK_BYTES` whatever the file, measured by ``tests/robustness`` and
the ``guardrails`` benchmark. What a consumer keeps per event (an analysis, a
one-liner's maps) is its own bound.
"""

from __future__ import annotations

__all__ = [
    "MAX_CHUNK_DECODED_BYTES",
    "MAX_CHUNK_EVENTS",
    "MAX_CHUNK_INFLATED_BYTES",
    "MAX_ENUM_VALUES",
    "MAX_FIELDS",
    "MAX_FRAME_BYTES",
    "MAX_GROUP_BYTES",
    "MAX_GROUP_EVENTS",
    "MAX_HEADER_BYTES",
    "MAX_META_DEPTH",
    "MAX_META_VALUES",
    "MAX_NAME_CHARS",
    "MAX_RUNS",
    "MAX_TEXT_CHARS",
    "MAX_TRACEPOINTS",
    "READER_PEAK_BYTES",
    "STR_VALUE_OVERHEAD_BYTES",
]

MIB = 1 << 20

#: Largest frame payload (header, chunk or footer) the reader reads: 128 MiB. A
#: length field above it is damage (a corrupt or hostile length), skipped without
#: reading or checksumming that many bytes. Chunks inflate to at most
#: :data:`MAX_CHUNK_INFLATED_BYTES` and a header holds at most
#: :data:`MAX_HEADER_BYTES`, both well inside.
MAX_FRAME_BYTES = 128 * MIB

#: Largest header payload: 32 MiB, twice the largest scenario file memtrace reads
#: (``MAX_SCENARIO_FILE_BYTES``, 16 MiB), whose workload the header carries; the
#: schemas of the 37 built-in tracepoints take 30 KB. The writer refuses to write
#: a larger header, so every trace memtrace writes is one it reads.
MAX_HEADER_BYTES = 32 * MIB

#: Most values (maps, arrays, strings, numbers ... each counts one) a header or a
#: footer may hold: 4 million, about what the largest scenario file becomes. Each
#: decoded value costs 30-70 bytes of Python objects, so this bounds the decoded
#: header at about 300 MB even when every value is an empty map.
MAX_META_VALUES = 4_000_000

#: Deepest nesting of maps and arrays in a header or footer value: 64. The deepest
#: memtrace writes is a workload's repeats nested 16 deep (``MAX_REPEAT_DEPTH``),
#: 38 levels from the header's root; Python code that walks the header (copies,
#: canonical ordering, JSON) recurses once per level, so 500 levels would end in a
#: RecursionError. A deeper value is ignored with a warning.
MAX_META_DEPTH = 64

#: Most tracepoint schemas in a header: 4096 (memtrace defines 37); a chunk's
#: tracepoint id must index them.
MAX_TRACEPOINTS = 4096

#: Most fields of one tracepoint, the three common ones included: 256 (the widest
#: built-in, ``snapshot``, has 33).
MAX_FIELDS = 256

#: Most names of an enum field: 256, the values a u8 code can take.
MAX_ENUM_VALUES = 256

#: Longest tracepoint or field name, unit or enum value name: 128 characters.
MAX_NAME_CHARS = 128

#: Longest free text of a schema (``doc``, ``kernel``): 4096 characters.
MAX_TEXT_CHARS = 4096

#: Most events one chunk may hold: 1,048,576 (16 times the writer's default
#: ``chunk_events`` of 65,536). Together with :data:`MAX_CHUNK_DECODED_BYTES` it
#: bounds the columns one chunk becomes.
MAX_CHUNK_EVENTS = 1 << 20

#: Largest decoded chunk: 32 MiB of columns, counted as ``n`` times the width of a
#: row (8 bytes per ``str`` field, a list slot) plus what its strings cost. The
#: widest built-in row (``snapshot``, 260 bytes) fits 129,000 events in it, twice
#: the default chunk; the writer splits larger chunks.
MAX_CHUNK_DECODED_BYTES = 32 * MIB

#: Largest inflated chunk body: 32 MiB. A chunk without string fields is also
#: capped by what its declared events need (``n`` times the field widths, plus a
#: little for the keys): zlib stops there, so a 100 KB chunk claiming to inflate to
#: gigabytes costs at most this much.
MAX_CHUNK_INFLATED_BYTES = 32 * MIB

#: Bytes charged per distinct string of a ``dict`` column on top of its UTF-8
#: length: what a Python ``str`` object and its list slot cost (49 + 8, rounded up).
STR_VALUE_OVERHEAD_BYTES = 64

#: Most events of one flush group that ``ordered_batches`` merges in ``seq`` order:
#: 1,048,576 (the writer's groups hold 65,536). A group claiming more (a file whose
#: every chunk says group 0) is merged in parts of this size, each part in ``seq``
#: order, with a warning: memory stays bounded, the order is the file's between parts.
MAX_GROUP_EVENTS = 1 << 20

#: Most batches one ``ordered_batches`` pass delivers: 4,194,304. Each batch costs
#: its consumer a few microseconds of Python however few events it holds, so a
#: file whose tracepoints alternate event by event (60 M events in 1 MB of zeros)
#: would keep a command busy for many minutes; beyond the bound the pass stops with
#: a one-line error. Consumers that do not need two tracepoints' relative order say
#: so (``commute``) and get such events as a few large batches instead.
MAX_RUNS = 1 << 22

#: Most decoded bytes of one flush group held for merging: 64 MiB (a default group
#: of the widest tracepoint is 17 MB). Beyond it, as for :data:`MAX_GROUP_EVENTS`.
MAX_GROUP_BYTES = 64 * MIB

#: What these bounds allow the reader to hold at once, at most: one group being
#: merged, one chunk being decoded and inflated, and the merge's index arrays, plus
#: the interpreter, numpy and memtrace themselves (about 60 MiB): 512 MiB. Measured
#: peaks on the bombs of ``tests/robustness`` stay well under it.
READER_PEAK_BYTES = 512 * MIB
