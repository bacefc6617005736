"""The ``trace_io`` benchmark: trace write and read rates, size, and reader memory.

A synthetic but realistic event stream is written through
:class:`memtrace.tracer.tracefile.TraceWriter`: what the simulated kernel emits
while tasks first-touch memory. Four processes take turns (one slice of
:data:`SLICE_PAGES` faults each, as the runner time-slices range steps), each
slice is one ``page_fault`` batch (address +4096 per fault, the simulated fault
cost plus a little jitter between timestamps, page frames in runs of a buddy
block with jumps between blocks, a major fault now and then) followed by one
``rss_stat`` event, as ``flush_rss`` emits it.

Measured:

- ``write_events_per_s``: events through ``TraceWriter.on_batch`` and ``close``,
  median of ``runs`` writes of the long trace (in this process).
- ``read_events_per_s``: events through ``TraceReader.ordered_batches`` (merged in
  global seq order: the slower of the reader's two paths), median of ``runs``
  reads, each in a fresh subprocess.
- ``write_ns_per_event`` and ``read_ns_per_event``: the same rates inverted, so that
  bench/run.py's "at most" targets express the issue's floors (200 ns = 5 M/s
  written, 100 ns = 10 M/s read).
- ``bytes_per_event``: file size over events.
- ``reader_peak_rss_mib``: the reading subprocess's peak RSS (``VmHWM``),
  Python and numpy included, for the long trace; ``reader_peak_rss_short_mib`` for a
  trace a quarter as long. Streaming means the two are about equal.

Run it alone: ``.venv/bin/python bench/run.py --only trace_io``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Events of the long trace (the issue asks for at least 10 million).
TRACE_IO_EVENTS = 10_000_000
#: The short trace, to show reader memory does not grow with the trace.
TRACE_IO_SHORT_EVENTS = TRACE_IO_EVENTS // 4
#: Faults per slice: kernel/runner.py's SLICE_PAGES.
SLICE_PAGES = 16384
#: Processes taking turns.
NR_TASKS = 4
#: Simulated cost of a first-touch fault (ns) and the jitter added to it.
FAULT_NS = 250
JITTER_NS = 16
#: Pages of a buddy block: page frames are consecutive within one.
BLOCK_PAGES = 512
#: Distinct slices generated up front (prime, so no period lines up with the tasks).
POOL_SLICES = 61
MIB = 1 << 20

READ_TIMEOUT_S = 600

#: Run in a fresh interpreter: read a trace in seq order, report time and peak RSS.
_READER = r"""
import json, resource, sys, time
from memtrace.tracer.tracefile import TraceReader
path = sys.argv[1]
start = time.perf_counter()
reader = TraceReader(path)
n = 0
for batch in reader.ordered_batches():
    n += batch.n
elapsed = time.perf_counter() - start
# VmHWM is this process's own high-water mark: ru_maxrss would also carry the
# parent's, inherited through fork and exec (signal->maxrss).
try:
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"events": n, "seconds": elapsed, "peak_rss_kib": peak_kib,
                  "damage": reader.damage is not None}))
"""


def _synthetic_writer(path: Path, nr_events: int) -> tuple[int, float]:
    """Write ``nr_events`` synthetic events to ``path``; (events written, seconds)."""
    from memtrace.tracer.batch import EventBatch
    from memtrace.tracer.tracefile import TraceWriter
    from memtrace.tracer.tracepoints import PAGE_FAULT, RSS_STAT, VMA_KINDS, default_registry

    registry = default_registry()
    rng = np.random.default_rng(0)
    # Column templates for one slice, shifted per slice: one vector add per column.
    # A pool of distinct slices (a prime number of them), so that zlib never sees a
    # slice repeat within its 32 KiB window: the rates are not flattered by repeats.
    idx = np.arange(SLICE_PAGES, dtype=np.uint64)
    ts_steps = [np.cumsum(FAULT_NS + rng.integers(0, JITTER_NS, SLICE_PAGES, dtype=np.uint64), dtype=np.uint64)
                for _ in range(POOL_SLICES)]
    pfns = [(idx % BLOCK_PAGES)
            + np.repeat(rng.integers(0, 1 << 20, SLICE_PAGES // BLOCK_PAGES, dtype=np.uint64), BLOCK_PAGES)
            * np.uint64(BLOCK_PAGES) for _ in range(POOL_SLICES)]
    majors = [rng.random(SLICE_PAGES) < 0.001 for _ in range(POOL_SLICES)]
    write = np.ones(SLICE_PAGES, dtype=np.bool_)
    kind = np.full(SLICE_PAGES, VMA_KINDS.index("anon_private"), dtype=np.uint8)
    anon = RSS_STAT.field("member").code("MM_ANONPAGES")
    meta = {"scenario": "bench-trace-io", "events": nr_events}

    start = time.perf_counter()
    seq = 0
    ts_ns = 0
    touched = [0] * NR_TASKS
    with TraceWriter(path, registry, meta) as writer:
        slice_no = 0
        while seq < nr_events:
            n = min(SLICE_PAGES, nr_events - seq)
            task = slice_no % NR_TASKS
            pool = slice_no % POOL_SLICES
            ts_step = ts_steps[pool]
            base_addr = (0x7F00_0000_0000 + (task << 36)) + touched[task] * 4096
            faults = EventBatch(PAGE_FAULT, {
                "seq": idx[:n] + np.uint64(seq),
                "ts_ns": ts_step[:n] + np.uint64(ts_ns),
                "pid": np.full(n, 100 + task, dtype=np.int32),
                "address": idx[:n] * np.uint64(4096) + np.uint64(base_addr),
                "write": write[:n],
                "major": majors[pool][:n],
                "vma_kind": kind[:n],
                "pfn": pfns[pool][:n],
            })
            writer.on_batch(faults)
            seq += n
            ts_ns += int(ts_step[n - 1])
            touched[task] += n
            if seq < nr_events:
                rss = EventBatch(RSS_STAT, {
                    "seq": np.array([seq], dtype=np.uint64),
                    "ts_ns": np.array([ts_ns], dtype=np.uint64),
                    "pid": np.array([100 + task], dtype=np.int32),
                    "mm_pid": np.array([100 + task], dtype=np.int32),
                    "curr": np.array([True]),
                    "member": np.array([anon], dtype=np.uint8),
                    "size_bytes": np.array([touched[task] * 4096], dtype=np.int64),
                })
                writer.on_batch(rss)
                seq += 1
            slice_no += 1
    elapsed = time.perf_counter() - start
    return writer.events_written, elapsed


def chunk_bodies(path: Path) -> list[bytes]:
    """The uncompressed msgpack body of every chunk of a trace (an independent walk
    of the frame layout, docs/trace-format.md)."""
    import struct
    import zlib

    data = path.read_bytes()
    out = []
    pos = 8
    while pos + 12 <= len(data):
        _marker, length, _crc = struct.unpack_from("<4sII", data, pos)
        payload = data[pos + 12 : pos + 12 + length]
        if payload[:1] == b"C":
            out.append(zlib.decompress(payload[1:]))
        pos += 12 + length
    return out


def zlib_levels(paths: list[Path], levels: tuple[int, ...] = (1, 6, 9)) -> dict[str, dict[str, float]]:
    """Compress the chunk bodies of ``paths`` at each zlib level: MB/s of input and
    the ratio of compressed to raw size, so the choice of level is a measurement."""
    import zlib

    bodies = [b for p in paths for b in chunk_bodies(p)]
    raw = sum(len(b) for b in bodies)
    out: dict[str, dict[str, float]] = {}
    for level in levels:
        best = float("inf")
        size = 0
        for _ in range(3):
            start = time.perf_counter()
            size = sum(len(zlib.compress(b, level)) for b in bodies)
            best = min(best, time.perf_counter() - start)
        out[str(level)] = {"compress_mb_per_s": round(raw / best / 1e6, 1), "compressed_bytes": size,
                           "ratio": round(size / raw, 4), "seconds": round(best, 4)}
    out["raw_bytes"] = {"bytes": raw}
    return out


def _read_in_subprocess(path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _READER, str(path)], capture_output=True, text=True,
                          check=False, timeout=READ_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"reader exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def trace_io(runs: int, nr_events: int = TRACE_IO_EVENTS, short_events: int = TRACE_IO_SHORT_EVENTS) -> dict[str, Any]:
    """Write and read synthetic traces; see the module docstring for each figure."""
    problems: list[str] = []
    write_s: list[float] = []
    read_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-io-") as tmp:
        long_path = Path(tmp) / "long.mtrace"
        short_path = Path(tmp) / "short.mtrace"
        try:
            # The short trace doubles as the warm-up run.
            written_short, _ = _synthetic_writer(short_path, short_events)
            written = 0
            for _ in range(runs):
                written, elapsed = _synthetic_writer(long_path, nr_events)
                write_s.append(elapsed)
            size_bytes = long_path.stat().st_size
            short_read = _read_in_subprocess(short_path)
            long_reads = [_read_in_subprocess(long_path) for _ in range(runs)]
        except Exception as exc:  # keep the benchmark object whole
            reason = f"trace_io failed: {type(exc).__name__}: {exc}"
            return {"events": None, "write_events_per_s": None, "read_events_per_s": None,
                    "bytes_per_event": None, "reader_peak_rss_mib": None, "runs": runs,
                    "reason": reason, "problems": [reason]}
    if written != nr_events or written_short != short_events:
        problems.append(f"wrote {written} and {written_short} events, expected {nr_events} and {short_events}")
    for r in [short_read, *long_reads]:
        if r["damage"]:
            problems.append("the reader reported damage in a freshly written trace")
    if any(r["events"] != nr_events for r in long_reads) or short_read["events"] != short_events:
        problems.append("the reader read back a different number of events than were written")
    read_s = [r["seconds"] for r in long_reads]
    rss_long = max(r["peak_rss_kib"] for r in long_reads) / 1024
    rss_short = short_read["peak_rss_kib"] / 1024
    write_med = statistics.median(write_s)
    read_med = statistics.median(read_s)
    return {
        "events": nr_events,
        "write_events_per_s": round(nr_events / write_med),
        "read_events_per_s": round(nr_events / read_med),
        "bytes_per_event": round(size_bytes / nr_events, 3),
        "write_ns_per_event": round(write_med * 1e9 / nr_events, 1),
        "read_ns_per_event": round(read_med * 1e9 / nr_events, 1),
        "reader_peak_rss_mib": round(rss_long, 1),
        "short_events": short_events,
        "reader_peak_rss_short_mib": round(rss_short, 1),
        "reader_rss_growth_mib": round(rss_long - rss_short, 1),
        "trace_bytes": size_bytes,
        "write_s": round(write_med, 4),
        "read_s": round(read_med, 4),
        "runs": runs,
        "write_runs_s": [round(s, 4) for s in write_s],
        "read_runs_s": [round(s, 4) for s in read_s],
        "problems": problems,
    }


def main() -> None:
    """``python bench/bench_trace_io.py [EVENTS]``: one run, JSON on stdout.

    ``python bench/bench_trace_io.py --zlib-levels [TRACE ...]``: compression rate
    and ratio of chunk bodies at zlib levels 1, 6 and 9, for the given traces (by
    default a synthetic trace of 2.5 M events and sample_traces/*.mtrace).
    """
    args = sys.argv[1:]
    if args[:1] == ["--zlib-levels"]:
        paths = [Path(a) for a in args[1:]]
        with tempfile.TemporaryDirectory(prefix="memtrace-bench-io-") as tmp:
            if not paths:
                synthetic = Path(tmp) / "synthetic.mtrace"
                _synthetic_writer(synthetic, TRACE_IO_SHORT_EVENTS)
                samples = sorted((Path(__file__).parent.parent / "sample_traces").glob("*.mtrace"))
                result = {"synthetic": zlib_levels([synthetic]), "sample_traces": zlib_levels(samples)}
            else:
                result = {"traces": zlib_levels(paths)}
        print(json.dumps(result, indent=2))
        return
    n = int(args[0]) if args else TRACE_IO_EVENTS
    print(json.dumps(trace_io(1, n, max(n // 4, 1)), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
