"""A trace as a Perfetto trace (``.pftrace``): ui.perfetto.dev and trace processor SQL.

Written with the official ``perfetto`` package's streaming trace builder and its
protos (``perfetto.protos.perfetto.trace.perfetto_trace_pb2``), from the items of
:func:`.timeline.timeline`:

- one process track per pid (``ProcessDescriptor``: pid and comm), under which go
  that process's RSS counters (``CounterDescriptor`` in bytes), its reclaim stalls
  (a child track ``reclaim``: slices ``direct reclaim``/``memcg reclaim``) and its
  instants (a child track ``events``: OOM kill, ENOMEM);
- machine-wide tracks: a counter per /proc/meminfo line and per memcg limit and
  usage, ``kswapd`` (slices ``kswapd awake``), ``OOM`` (an instant per kill, with
  the victim, its points and the constraint as debug annotations) and ``events``
  (drop_caches, snapshots).

Timestamps are the trace's nanoseconds on the default (boot-time) clock. Every
packet belongs to one writer sequence, written as the items come (flat memory).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO

from memtrace.tracer.tracefile import TraceReader

from .timeline import CounterTrack, CounterValue, Instant, ProcessSeen, SliceBegin, SliceEnd, Track, timeline

if TYPE_CHECKING:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TracePacket

__all__ = ["SEQUENCE_ID", "write_perfetto"]

#: The trusted_packet_sequence_id of every packet memtrace writes.
SEQUENCE_ID = 1
#: Track uuids are 64-bit; these high bits keep each kind in its own range.
_KIND_PROCESS, _KIND_CHILD, _KIND_COUNTER, _KIND_GLOBAL = 1 << 60, 2 << 60, 3 << 60, 4 << 60


class _Writer:
    def __init__(self, out: BinaryIO) -> None:
        from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
        from perfetto.trace_builder.proto_builder import StreamingTraceProtoBuilder

        self.pb = pb
        self.builder = StreamingTraceProtoBuilder(out)
        self.uuids: dict[Any, int] = {}
        self.first = True
        self.packets = 0

    def packet(self) -> TracePacket:
        p = self.builder.create_packet()
        p.trusted_packet_sequence_id = SEQUENCE_ID
        if self.first:
            p.first_packet_on_sequence = True
            p.sequence_flags = self.pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
            self.first = False
        return p

    def write(self, p: TracePacket) -> None:
        self.builder.write_packet(p)
        self.packets += 1

    def _uuid(self, key: Any, kind: int) -> int:
        uuid = self.uuids.get(key)
        if uuid is None:
            uuid = self.uuids[key] = kind | (len(self.uuids) + 1)
        return uuid

    def process(self, pid: int, comm: str) -> None:
        uuid = self._uuid(("process", pid), _KIND_PROCESS)
        p = self.packet()
        p.track_descriptor.uuid = uuid
        p.track_descriptor.process.pid = pid
        p.track_descriptor.process.process_name = comm
        self.write(p)

    def _process_uuid(self, pid: int) -> int:
        key = ("process", pid)
        if key not in self.uuids:
            self.process(pid, f"pid {pid}")
        return self.uuids[key]

    def track(self, track: Track) -> int:
        key = ("track", track)
        if key in self.uuids:
            return self.uuids[key]
        parent = self._process_uuid(track.pid) if track.pid is not None else None
        uuid = self._uuid(key, _KIND_CHILD if parent is not None else _KIND_GLOBAL)
        p = self.packet()
        p.track_descriptor.uuid = uuid
        p.track_descriptor.name = track.name
        if parent is not None:
            p.track_descriptor.parent_uuid = parent
        self.write(p)
        return uuid

    def counter_track(self, track: CounterTrack) -> int:
        key = ("counter", track)
        if key in self.uuids:
            return self.uuids[key]
        parent = self._process_uuid(track.pid) if track.pid is not None else None
        uuid = self._uuid(key, _KIND_COUNTER)
        p = self.packet()
        p.track_descriptor.uuid = uuid
        p.track_descriptor.name = track.name
        if parent is not None:
            p.track_descriptor.parent_uuid = parent
        if track.unit == "bytes":
            p.track_descriptor.counter.unit = self.pb.CounterDescriptor.UNIT_SIZE_BYTES
        self.write(p)
        return uuid

    def event(self, ts_ns: int, uuid: int, kind: int, name: str | None = None,
              args: dict[str, Any] | None = None, counter: int | None = None) -> None:
        p = self.packet()
        p.timestamp = ts_ns
        e = p.track_event
        e.type = kind
        e.track_uuid = uuid
        if name is not None:
            e.name = name
        if counter is not None:
            e.counter_value = counter
        for key, value in (args or {}).items():
            a = e.debug_annotations.add()
            a.name = key
            if isinstance(value, bool):
                a.bool_value = value
            elif isinstance(value, int):
                a.int_value = value
            else:
                a.string_value = str(value)
        self.write(p)


def write_perfetto(trace: str | os.PathLike[str] | TraceReader, output: BinaryIO) -> int:
    """Write ``trace`` as a Perfetto protobuf trace to ``output``; the number of
    packets written."""
    w = _Writer(output)
    kinds = w.pb.TrackEvent
    for item in timeline(trace):
        if isinstance(item, CounterValue):
            w.event(item.ts_ns, w.counter_track(item.track), kinds.TYPE_COUNTER, counter=item.value)
        elif isinstance(item, SliceBegin):
            w.event(item.ts_ns, w.track(item.track), kinds.TYPE_SLICE_BEGIN, item.name, item.args)
        elif isinstance(item, SliceEnd):
            w.event(item.ts_ns, w.track(item.track), kinds.TYPE_SLICE_END, args=item.args)
        elif isinstance(item, Instant):
            w.event(item.ts_ns, w.track(item.track), kinds.TYPE_INSTANT, item.name, item.args)
        elif isinstance(item, ProcessSeen):
            w.process(item.pid, item.comm)
    return w.packets
