"""Exports: Parquet/CSV round-trip every event; Perfetto and Chrome JSON carry the
tracks, counters, slices and instants of the trace with the trace's values."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memtrace.analysis.export import export_trace
from memtrace.analysis.export.chrome import write_chrome_json
from memtrace.analysis.export.perfetto import write_perfetto
from memtrace.analysis.export.tables import export_tables
from memtrace.analysis.export.timeline import MEMINFO_COUNTERS
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracepoints import MEMINFO_FIELDS

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "sample_traces").glob("*.mtrace"))
REAL = ROOT / "tests" / "data" / "real"


def _columns(trace: Path) -> dict[str, dict[str, list[Any]]]:
    """Every event of ``trace`` by tracepoint and field, enums as names."""
    out: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for b in TraceReader(trace).batches():
        for f in b.tp.all_fields:
            col = out[b.tp.name][f.name]
            if f.type == "enum":
                col.extend(b.enum_names(f.name))
            elif f.type == "str":
                col.extend(b.strs(f.name))
            else:
                col.extend(b.ints(f.name).tolist())
    return out


@pytest.mark.parametrize("trace", SAMPLES, ids=lambda p: p.stem)
def test_parquet_round_trips_every_event(trace: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    result = export_tables(trace, tmp_path / "t", "parquet")
    counts = TraceReader(trace).scan().counts
    assert result.rows == {name: n for name, n in counts.items() if n}
    want = _columns(trace)
    for name, path in result.files.items():
        table = pq.read_table(path)
        tp = TraceReader(trace).registry[name]
        assert table.column_names == list(tp.field_names)
        assert table.schema.metadata[b"tracepoint"] == name.encode()
        for f in tp.all_fields:
            got = table.column(f.name).to_pylist()
            if f.type == "bool":
                got = [int(v) for v in got]
            assert got == want[name][f.name], (name, f.name)


def test_tables_read_with_duckdb_and_pandas(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pd = pytest.importorskip("pandas")
    trace = ROOT / "sample_traces" / "oom-leak.mtrace"
    export_tables(trace, tmp_path, "parquet")
    kills = duckdb.sql(f"select victim_pid, comm, \"constraint\" from read_parquet('{tmp_path / 'oom_kill.parquet'}')")
    assert kills.fetchall() == [(102, "leaker", "CONSTRAINT_NONE")]
    faults = pd.read_parquet(tmp_path / "page_fault.parquet")
    assert len(faults) == TraceReader(trace).scan().counts["page_fault"]
    assert faults["seq"].is_monotonic_increasing
    (joined,), = duckdb.sql(f"select count(*) from read_parquet('{tmp_path / 'page_fault.parquet'}') f "
                            f"join read_parquet('{tmp_path / 'rss_stat.parquet'}') r on r.mm_pid = f.pid").fetchall()
    assert joined > 0


def test_csv_holds_the_same_values_with_enum_names(tmp_path: Path) -> None:
    trace = ROOT / "sample_traces" / "memcg-oom.mtrace"
    result = export_tables(trace, tmp_path, "csv")
    want = _columns(trace)
    for name, path in result.files.items():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == result.rows[name]
        for field, values in want[name].items():
            got = [r[field] for r in rows]
            assert got == [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values], (name, field)


def _perfetto(trace: Path) -> Any:
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    buf = io.BytesIO()
    write_perfetto(trace, buf)
    return pb.Trace.FromString(buf.getvalue()), pb


def test_perfetto_tracks_counters_slices_and_instants_carry_the_traces_values() -> None:
    trace = ROOT / "sample_traces" / "oom-leak.mtrace"
    parsed, pb = _perfetto(trace)
    tracks: dict[int, Any] = {}
    events: dict[int, list[Any]] = defaultdict(list)
    for p in parsed.packet:
        assert p.trusted_packet_sequence_id == 1
        if p.HasField("track_descriptor"):
            tracks[p.track_descriptor.uuid] = p.track_descriptor
        if p.HasField("track_event"):
            events[p.track_event.track_uuid].append((p.timestamp, p.track_event))
    want = _columns(trace)
    # one process track per task, named by comm
    procs = {d.process.pid: d.process.process_name for d in tracks.values() if d.HasField("process")}
    starts = dict(zip(want["process_start"]["pid"], want["process_start"]["comm"], strict=True))
    assert {pid: procs[pid] for pid in starts} == starts
    # the MemFree counter is every reading's mem_free, in order
    by_name = {d.name: uuid for uuid, d in tracks.items() if d.name and not d.HasField("process")}
    field_of = dict(MEMINFO_FIELDS)
    readings = sorted(zip(want["meminfo_sample"]["seq"] + want.get("snapshot", {}).get("seq", []),
                          want["meminfo_sample"][field_of["MemFree"]]
                          + want.get("snapshot", {}).get(field_of["MemFree"], []), strict=True))
    memfree = [e.counter_value for _, e in events[by_name["MemFree"]]]
    assert memfree == [v for _, v in readings]
    assert tracks[by_name["MemFree"]].counter.unit == pb.CounterDescriptor.UNIT_SIZE_BYTES
    assert set(MEMINFO_COUNTERS) <= set(by_name)
    # each process's anon RSS counter follows its rss_stat events
    leaker = next(pid for pid, comm in procs.items() if comm == "leaker")
    rss = [(s, v) for s, pid, m, v in zip(want["rss_stat"]["seq"], want["rss_stat"]["mm_pid"],
                                         want["rss_stat"]["member"], want["rss_stat"]["size_bytes"], strict=True)
           if pid == leaker and m == "MM_ANONPAGES"]
    anon = [u for u, d in tracks.items() if d.name == "RSS anon" and tracks[d.parent_uuid].process.pid == leaker]
    assert [e.counter_value for _, e in events[anon[0]]] == [v for _, v in sorted(rss)]
    # kswapd awake slices: as many as kswapd_wake -> kswapd_sleep runs, balanced
    ks = events[by_name["kswapd"]]
    begins = [e for _, e in ks if e.type == pb.TrackEvent.TYPE_SLICE_BEGIN]
    ends = [e for _, e in ks if e.type == pb.TrackEvent.TYPE_SLICE_END]
    assert len(begins) == len(ends) >= 1 and all(e.name == "kswapd awake" for e in begins)
    # the OOM kill: an instant with the victim, its points and the constraint
    (ts, kill), = events[by_name["OOM"]]
    args = {a.name: (a.string_value or a.int_value) for a in kill.debug_annotations}
    assert kill.type == pb.TrackEvent.TYPE_INSTANT and ts == want["oom_kill"]["ts_ns"][0]
    assert args["victim_pid"] == want["oom_kill"]["victim_pid"][0] == leaker
    assert args["points"] == want["oom_kill"]["points"][0]
    assert args["constraint"] == "CONSTRAINT_NONE"


def test_perfetto_reclaim_stalls_are_slices_on_the_stalled_task() -> None:
    trace = ROOT / "sample_traces" / "memcg-oom.mtrace"
    parsed, pb = _perfetto(trace)
    want = _columns(trace)
    tracks = {p.track_descriptor.uuid: p.track_descriptor for p in parsed.packet if p.HasField("track_descriptor")}
    begins: Counter[int] = Counter()
    for p in parsed.packet:
        if p.HasField("track_event") and p.track_event.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            d = tracks[p.track_event.track_uuid]
            if d.name == "reclaim":
                begins[tracks[d.parent_uuid].process.pid] += 1
                assert p.track_event.name == "memcg reclaim"
    assert begins == Counter(want["reclaim_begin"]["pid"])


def _chrome(trace: Path) -> list[dict[str, Any]]:
    buf = io.StringIO()
    write_chrome_json(trace, buf)
    doc = json.loads(buf.getvalue())
    assert doc["displayTimeUnit"] == "ns"
    events: list[dict[str, Any]] = doc["traceEvents"]
    return events


@pytest.mark.parametrize("name", ["oom-leak", "memcg-oom", "swap-pressure", "kswapd-reclaim"])
def test_chrome_json_follows_the_trace_event_format(name: str) -> None:
    """ph in the format's set; every non-metadata event has a numeric ts; pid/tid ints;
    args a map; B/E balanced and properly nested per thread, E not before its B; each
    counter series in time order; counters numeric. (Events are in seq order, which
    two tasks' clocks may leave a little out of ts order: the format allows that.)"""
    events = _chrome(ROOT / "sample_traces" / f"{name}.mtrace")
    stacks: dict[tuple[int, int], list[tuple[str, float]]] = defaultdict(list)
    series: dict[tuple[int, str], float] = {}
    for e in events:
        assert e["ph"] in {"M", "C", "B", "E", "i"}
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e.get("args", {}), dict)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        key = (e["pid"], e["tid"])
        if e["ph"] == "B":
            stacks[key].append((e["name"], e["ts"]))
        elif e["ph"] == "E":
            assert stacks[key], f"E without B on {key}"
            assert e["ts"] >= stacks[key].pop()[1]
        elif e["ph"] == "C":
            assert all(isinstance(v, (int, float)) for v in e["args"].values())
            assert e["ts"] >= series.get((e["pid"], e["name"]), 0)
            series[(e["pid"], e["name"])] = e["ts"]
        else:
            assert e["s"] in ("g", "p", "t")
    assert not any(stacks.values())


def test_chrome_json_ts_is_the_exact_microsecond_of_the_kill() -> None:
    trace = ROOT / "sample_traces" / "oom-leak.mtrace"
    kill = next(e for e in _chrome(trace) if e.get("name", "").startswith("OOM kill") and e["pid"] == 0)
    ts_ns = _columns(trace)["oom_kill"]["ts_ns"][0]
    assert kill["ts"] == pytest.approx(ts_ns / 1000, abs=1e-6)
    assert kill["args"]["victim"] == "leaker"


def test_an_imported_real_trace_exports_with_its_processes_and_kills(tmp_path: Path) -> None:
    from memtrace.analysis.importers import import_trace

    perf = tmp_path / "perf.txt"
    perf.write_bytes(gzip.decompress((REAL / "memcg-v1-two-kills.perf-script.txt.gz").read_bytes()))
    dmesg = tmp_path / "dmesg.txt"
    dmesg.write_bytes(gzip.decompress((REAL / "memcg-v1-two-kills.dmesg.txt.gz").read_bytes()))
    trace = tmp_path / "real.mtrace"
    import_trace(perf, trace, dmesg=dmesg)
    parsed, _ = _perfetto(trace)
    names = {p.track_descriptor.process.process_name for p in parsed.packet
             if p.HasField("track_descriptor") and p.track_descriptor.HasField("process")}
    assert "memtrace-leaky" in names
    kills = [p for p in parsed.packet if p.HasField("track_event") and p.track_event.name.startswith("OOM kill")]
    assert len(kills) == 2 * 2  # on the OOM track and on each victim's events track
    result = export_trace(trace, "parquet", tmp_path / "tables")
    assert result.rows["oom_kill"] == 2 and result.rows["rss_stat"] > 0
    assert np.all(np.diff(np.asarray(_columns(trace)["rss_stat"]["seq"])) > 0)
