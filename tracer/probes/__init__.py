"""eBPF-style probes over event batches: maps, predicates, printf, BEGIN/END, intervals.

This is what a bpftrace or bcc program is made of on a real kernel, over memtrace's
batched events. A :class:`Tracer` is a bus consumer. Probes attach to tracepoints by
name or glob; each probe is a *vectorised* action: it is called once per batch (or
per segment of a batch) with an :class:`Events` view whose fields are numpy
columns, never once per event. Maps (:class:`Map`) aggregate whole columns at a
time (``count``, ``sum``, ``min``, ``max``, ``avg``, ``stats``, ``hist``, ``lhist``)
and behave like dicts afterwards. ``printf`` formats one line per selected event (the
only per-event Python work), in event order.

Example::

    tracer = Tracer()
    faults = tracer.map("@faults")
    tracer.probe("page_fault",
                 lambda ev: faults.count(key=(ev.comm, ev.vma_kind)),
                 predicate=lambda ev: ev.major == 0)
    bus.attach(tracer, tracer.tracepoints())
    ... run the kernel ...
    tracer.finish()            # interval probes once more, END probes, maps printed
    faults["leaker", "anon_private"]   # -> 262144

The package, one concern per module:

==============  ==============================================================
:mod:`.columns`  string columns (dictionary-encoded) and dense integer codes
:mod:`.groups`   rows grouped by key; batches cut where event order matters
:mod:`.values`   map values beyond integers: stats(), hist(), lhist()
:mod:`.maps`     :class:`Map`, the BPF map, written a column at a time
:mod:`.printf`   C printf formats over columns, strftime of simulated time
:mod:`.output`   output records and their bpftrace text and JSON forms
:mod:`.events`   :class:`Events`, the view of a batch a probe action gets
:mod:`.runtime`  :class:`Tracer` and :class:`Probe`: running probes, intervals,
                 the task and path tables, output in event order
==============  ==============================================================

Semantics that differ from one-event-at-a-time execution are avoided, not ignored:
see :mod:`.runtime`.
"""

from .columns import StrColumn, as_int64, dense_codes, unify_strings
from .events import Events
from .groups import Groups, cuts_isolate, cuts_unique, group_rows
from .maps import DEFAULT_MAX_MAP_KEYS, MAX_MAP_KEYS_LIMIT, Map
from .output import (
    AttachOutput,
    MapOutput,
    Output,
    PrintfOutput,
    TimeOutput,
    ValueOutput,
    json_object,
    render_json,
    render_text,
)
from .printf import FormatSpec, format_rows, parse_format, sim_strftime
from .runtime import IDLE_COMM, MAX_INTERVAL_FIRINGS, Probe, Tracer, run_batches, run_trace
from .values import HIST_SLOTS, INT_KINDS, MAP_KINDS, Hist, HistBucket, LHist, Stats, linear_buckets, log2_buckets

__all__ = [
    "DEFAULT_MAX_MAP_KEYS",
    "HIST_SLOTS",
    "IDLE_COMM",
    "INT_KINDS",
    "MAP_KINDS",
    "MAX_INTERVAL_FIRINGS",
    "MAX_MAP_KEYS_LIMIT",
    "AttachOutput",
    "Events",
    "FormatSpec",
    "Groups",
    "Hist",
    "HistBucket",
    "LHist",
    "Map",
    "MapOutput",
    "Output",
    "PrintfOutput",
    "Probe",
    "Stats",
    "StrColumn",
    "TimeOutput",
    "Tracer",
    "ValueOutput",
    "as_int64",
    "cuts_isolate",
    "cuts_unique",
    "dense_codes",
    "format_rows",
    "group_rows",
    "json_object",
    "linear_buckets",
    "log2_buckets",
    "parse_format",
    "render_json",
    "render_text",
    "run_batches",
    "run_trace",
    "sim_strftime",
    "unify_strings",
]
