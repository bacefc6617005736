"""Traces whose framing is sound but whose values are not: each analysis either
finishes (leaving out what cannot be true, and saying so in a warning) or stops with
one line naming the problem and where; never an internal error, never arrays sized
from an absurd value.

The traces are written by hand through a Bus and a TraceWriter, with the field
values each test is about; a schema with a renamed field is written from a
registry whose tracepoint differs from this memtrace's in that one field. What a
report must still show is derived by hand from the events written.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

import memtrace.analysis.state.vmas as vmas_mod
from memtrace.analysis.kernlog import render_dmesg
from memtrace.analysis.report import build_report
from memtrace.analysis.state import (
    MAX_TRACKED,
    StateFolder,
    fold_at,
    fold_trace,
)
from memtrace.api import read_snapshots
from memtrace.cli import app, main
from memtrace.errors import TraceFormatError
from memtrace.linux.limits import TASK_SIZE_MAX_4LEVEL as TASK_SIZE_MAX
from memtrace.tracer import (
    Bus,
    EventBatch,
    Field,
    Registry,
    Tracepoint,
    TraceReader,
    TraceWriter,
    default_registry,
)
from memtrace.tracer.meta import meta_int, meta_part
from memtrace.tracer.tracepoints import check_fields

from ..replay.helpers import GiB, MiB, meminfo

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
EiB = 1 << 60
U64_MAX = (1 << 64) - 1
INT32_MAX = (1 << 31) - 1


# --------------------------------------------------------------------------- writing


def write(path: Path, events: list[tuple[str, int, int, dict[str, Any]]], *,
          registry: Registry | None = None, meta: Any = None) -> Path:
    """Write ``events`` (tracepoint, ts_ns, pid, fields) to ``path``; fields not
    given are 0, '' or the enum's first value."""
    reg = registry or default_registry()
    bus = Bus(reg)
    writer = TraceWriter(path, reg, meta if meta is not None else {"scenario": "odd"})
    bus.attach(writer)
    for name, ts_ns, pid, given in events:
        tp = reg[name]
        fields = {f.name: "" if f.type == "str" else (f.values[0] if f.type == "enum" else 0) for f in tp.fields}
        fields.update(given)
        bus.emit(tp, ts_ns, pid, **fields)
    writer.close()
    return path


def renamed(tracepoint: str, field: str, new_name: str | None = None, new_type: str | None = None) -> Registry:
    """This memtrace's registry with one field of ``tracepoint`` renamed or retyped."""
    tps = []
    for tp in default_registry():
        if tp.name == tracepoint:
            fields = tuple(Field(new_name or f.name, new_type or f.type, f.doc, f.unit, f.values)
                           if f.name == field else f for f in tp.fields)
            tp = Tracepoint(tp.name, tp.doc, fields, tp.kernel)
        tps.append(tp)
    return Registry(tps)


def one_oom(pid: int = 10, adj: int = 0, zone: str = "Normal", zid: int = 2, ts_ns: int = 5_000_000,
            extra_zones: tuple[tuple[str, int], ...] = ()) -> list[tuple[str, int, int, dict[str, Any]]]:
    """The events of one global OOM kill of ``pid`` (the simulated kernel's order)."""
    zones = [("DMA32", 1), (zone, zid), *extra_zones]
    out: list[tuple[str, int, int, dict[str, Any]]] = [
        ("process_start", 1_000, pid, {"comm": "leaker", "uid": 1000, "oom_score_adj": adj}),
    ]
    out += [("zoneinfo", ts_ns, 0, {"zone": z, "zid": i, "present_pages": 262144, "managed_pages": 250000,
                                    "nr_free": 100, "wmark_min": 10, "wmark_low": 20, "wmark_high": 30,
                                    "reason": "oom"})
            for z, i in zones]
    out += [
        ("meminfo_sample", ts_ns, 0, meminfo(anon=900 * MiB)),
        ("oom_candidate", ts_ns, pid, {"oom_id": 1, "tgid": pid, "uid": 1000, "comm": "leaker", "rss_anon": 230000,
                                       "oom_score_adj": adj, "points": 230000, "total_vm": 240000}),
        ("oom_kill", ts_ns + 10, pid, {"oom_id": 1, "victim_pid": pid, "comm": "leaker", "uid": 1000,
                                       "oom_score_adj": adj, "points": 230000, "totalpages": 262144,
                                       "anon_rss_kb": 920000, "total_vm_kb": 960000, "gfp_mask": 0x100DCA}),
    ]
    return out


def invoke(*args: str | os.PathLike[str]) -> Result:
    result = CliRunner().invoke(app, [os.fspath(a) for a in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> str:
    """The one line a failing command prints (exit 1, no traceback, nothing on stdout)."""
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == 1, err
    assert "Traceback" not in err and "internal error" not in err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("memtrace: warning: ")]


# --------------------------------------------------------------------------- 1. fuzzed values


@pytest.mark.parametrize("zid", [-7, 7, INT32_MAX, -(1 << 31)])
def test_dmesg_prints_a_zone_of_any_zid_with_no_lowmem_reserve(tmp_path: Path, zid: int) -> None:
    """A zone named nothing the layout knows, with a zid outside the zone types,
    prints with an all-zero lowmem_reserve; the known zones keep theirs (DMA32, ratio
    256, reserves Normal's managed pages / 256 = 976 against Normal and above)."""
    trace = write(tmp_path / "t.mtrace", one_oom(extra_zones=(("Weird", zid),)))
    out = invoke("dmesg", trace).stdout
    lines = out.splitlines()
    weird = next(i for i, line in enumerate(lines) if "Node 0 Weird free:" in line)
    assert lines[weird + 1].endswith("lowmem_reserve[]: 0 0 0 0 0")
    dma32 = next(i for i, line in enumerate(lines) if "Node 0 DMA32 free:" in line)
    assert lines[dma32 + 1].endswith("lowmem_reserve[]: 0 0 976 976 976")
    assert "Killed process 10 (leaker)" in out


BOUNDS = {"u8": (0, 255), "u16": (0, 65535), "u32": (0, (1 << 32) - 1), "u64": (0, U64_MAX),
          "i32": (-(1 << 31), INT32_MAX), "i64": (-(1 << 63), (1 << 63) - 1)}


def fuzzed(src: Path, dst: Path, seed: int, nr_changes: int) -> Path:
    """``src`` with about ``nr_changes`` integer fields set to boundary or random
    values of their type; the framing (and checksums) stay valid."""
    rng = random.Random(seed)
    reader = TraceReader(src)
    batches = list(reader.batches())
    total = sum(b.n for b in batches)
    writer = TraceWriter(dst, reader.registry, reader.meta)
    for b in batches:
        cols = {k: v.copy() if isinstance(v, np.ndarray) else list(v) for k, v in b.columns.items()}
        ints = [f for f in b.tp.fields if f.type in BOUNDS]
        for _ in range(sum(rng.random() < nr_changes / total for _ in range(b.n)) if ints else 0):
            f = rng.choice(ints)
            lo, hi = BOUNDS[f.type]
            cols[f.name][rng.randrange(b.n)] = rng.choice([lo, hi, hi // 2, 0, 1, min(hi, 1 << 40),
                                                           rng.randint(lo, hi)])
        writer.on_batch(EventBatch(b.tp, cols))
    writer.close()
    return dst


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_values_give_output_or_one_line_never_an_internal_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    """Sample traces with integer fields set to boundary values (seeded): every
    analysis ends with exit 0, or 1 and one line; none fails inside."""
    src = sorted(SAMPLES.glob("*.mtrace"))[seed * 3 % 17]
    trace = fuzzed(src, tmp_path / "f.mtrace", seed, nr_changes=[5, 50, 500][seed % 3])
    for command in ("dmesg", "report", "explain", "free"):
        with pytest.raises(SystemExit) as exc:
            main([command, os.fspath(trace)])
        _out, err = capsys.readouterr()
        code = exc.value.code or 0
        assert "internal error" not in err and "Traceback" not in err, (command, err)
        assert code == 0 or (code == 1 and len(err.splitlines()) == 1), (command, code, err)


# --------------------------------------------------------------------------- 2. oom_score_adj


def test_report_clamps_an_impossible_oom_score_adj_and_warns(tmp_path: Path) -> None:
    """oom_score_adj INT32_MAX (the kernel refuses writes outside -1000..1000): the
    row is read as 1000, the report is built and its warnings say so. Badness with
    1000 (5.9+: adj * (totalpages / 1000), C division): 230000 + 1000 * 262 = 492000."""
    trace = write(tmp_path / "t.mtrace", one_oom(adj=INT32_MAX))
    rep = build_report(TraceReader(trace))
    assert any("oom_candidate (seq 4, pid 10): oom_score_adj 2147483647 is outside -1000..1000" in w
               and "read as 1000" in w for w in rep.warnings)
    (kill,) = rep.kills
    (cand,) = kill.candidates
    assert cand.oom_score_adj == 1000 and cand.formula_points == 230000 + 1000 * (262144 // 1000)
    assert "oom_score_adj 2147483647 recorded, read as 1000" in cand.note
    text = invoke("report", trace).stdout
    assert "oom_score_adj 2147483647 is outside" in text and "leaker (pid 10)" in text
    doc = json.loads(invoke("report", trace, "--json").stdout)
    assert any("2147483647" in w for w in doc["warnings"])


def test_dmesg_prints_the_row_of_an_impossible_oom_score_adj(tmp_path: Path) -> None:
    trace = write(tmp_path / "t.mtrace", one_oom(adj=INT32_MAX))
    assert "Killed process 10 (leaker)" in invoke("dmesg", trace).stdout


# --------------------------------------------------------------------------- 3. huge mappings


def huge_mapping_then_oom(length: int, addr: int = 0x7F0000000000) -> list[tuple[str, int, int, dict[str, Any]]]:
    return [
        ("process_start", 100, 10, {"comm": "leaker"}),
        ("mmap", 200, 10, {"addr": addr, "len_bytes": length, "prot": 3, "flags": 0x22, "handle": "big"}),
        ("mmap", 300, 10, {"addr": 0x10000000, "len_bytes": 2 * MiB, "prot": 3, "flags": 0x22, "handle": "small"}),
        ("page_fault", 400, 10, {"address": 0x10000000, "write": True, "pfn": 1234}),
        ("snapshot", 500, 10, {"label": "after", **meminfo(anon=4096)}),
        *one_oom()[1:],
    ]


@pytest.mark.parametrize("command", ["explain", "report"])
def test_an_8_eib_mapping_is_left_out_with_a_warning_naming_it(tmp_path: Path, command: str) -> None:
    """mmap of 8 EiB (past the 128 TiB user address space): the fold leaves that
    mapping out, says which event and range, and the rest is folded (the 2 MiB
    mapping's one faulted page is the anonymous page explain finds)."""
    trace = write(tmp_path / "t.mtrace", huge_mapping_then_oom(8 * EiB))
    if command == "report":  # the report's own warnings, and the kill after the mapping
        doc = json.loads(invoke(command, trace, "--json").stdout)
        warnings, kills = doc["warnings"], doc["kills"]
        assert [k["victim"]["pid"] for k in kills] == [10]
    else:
        warnings = [w.removeprefix("memtrace: warning: ") for w in warnings_of(invoke(command, trace))]
    (w,) = [w for w in warnings if "mmap" in w]
    assert w == ("mmap (seq 1, pid 10): a mapping of 9,223,372,036,854,775,808 bytes, [0x7f0000000000, "
                 "0x80007f0000000000), is outside the x86-64 user address space (which ends at 0x7ffffffff000): "
                 "left out")
    folder, _reading, warnings = fold_at(TraceReader(trace), "after")
    assert [v.handle for v in folder.procs[10].vmas] == ["small"]
    assert folder.state().page_counts()["anon"] == 1
    assert folder.pages.nr_pfns <= folder.pfn_limit


def test_a_mapping_beyond_the_page_table_budget_is_left_out(tmp_path: Path) -> None:
    """1 TiB fits the address space but not MAX_PTE_ENTRIES (512 GiB of live
    mappings): it is refused before any array is made."""
    trace = write(tmp_path / "t.mtrace", huge_mapping_then_oom(1 << 40, addr=0x100000000000))
    folder = fold_trace(TraceReader(trace))
    assert [v.handle for v in folder.procs[10].vmas] == ["small"]
    (w,) = folder.warnings
    assert w.startswith("mmap (seq 1, pid 10): 268,435,456 more pages would take the live mappings past")


def test_the_page_table_budget_counts_live_mappings_fork_and_brk(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With a budget of 1000 entries: 512 + 256 pages fit; a fork's copy (768 more)
    does not and the child gets none of them; munmap frees entries for a later
    mapping; brk growth past the budget is refused while the heap keeps its size."""
    monkeypatch.setattr(vmas_mod, "MAX_PTE_ENTRIES", 1000)
    trace = write(tmp_path / "t.mtrace", [
        ("mmap", 1, 10, {"addr": 0x10000000, "len_bytes": 512 * 4096, "handle": "a"}),
        ("mmap", 2, 10, {"addr": 0x20000000, "len_bytes": 256 * 4096, "handle": "b"}),
        ("fork", 3, 10, {"child_pid": 11, "child_comm": "child"}),
        ("munmap", 4, 10, {"addr": 0x10000000, "len_bytes": 512 * 4096, "handle": "a"}),
        ("mmap", 5, 10, {"addr": 0x30000000, "len_bytes": 700 * 4096, "handle": "c"}),
        ("brk", 6, 10, {"old_brk": 0x1000000, "brk": 0x1000000 + 8 * 4096, "ret": 0x1000000 + 8 * 4096}),
        ("brk", 7, 10, {"old_brk": 0x1008000, "brk": 0x1008000 + 100 * 4096, "ret": 0x1008000 + 100 * 4096}),
    ])
    folder = fold_trace(TraceReader(trace))
    assert sorted(v.handle for v in folder.procs[10].vmas) == ["b", "c", "heap"]
    assert folder.procs[11].vmas == []
    heap = folder.procs[10].vma_by_handle("heap")
    assert heap is not None and heap.nr_pages == len(heap.ptes) == 8
    assert sum(len(v.ptes) for p in folder.procs.values() for v in p.vmas) == 256 + 700 + 8
    assert len(folder.warnings) == 2
    assert folder.warnings[0].startswith("fork (seq 2, pid 10): ") and "(and 1 more like it)" in folder.warnings[0]
    assert folder.warnings[1].startswith("brk (seq 6, pid 10): 100 more pages")


def test_unaligned_and_out_of_range_mappings_are_left_out(tmp_path: Path) -> None:
    """mmap never returns an unaligned address and munmap refuses one (EINVAL); a
    break past TASK_SIZE_MAX cannot be; a length is rounded up to whole pages, as
    do_mmap() does."""
    trace = write(tmp_path / "t.mtrace", [
        ("mmap", 1, 10, {"addr": 0x10000123, "len_bytes": 4096, "handle": "odd"}),
        ("mmap", 2, 10, {"addr": 0x20000000, "len_bytes": 100, "handle": "tiny"}),
        ("munmap", 3, 10, {"addr": 0x20000001, "len_bytes": 4096, "handle": ""}),
        ("brk", 4, 10, {"old_brk": TASK_SIZE_MAX, "brk": U64_MAX, "ret": U64_MAX}),
        ("page_fault", 5, 10, {"address": 0x20000000, "write": True, "pfn": 7}),
    ])
    folder = fold_trace(TraceReader(trace))
    (tiny,) = folder.procs[10].vmas
    assert tiny.handle == "tiny" and tiny.nr_pages == 1 and tiny.ptes.tolist() == [7]
    text = "\n".join(folder.warnings)
    assert "mmap (seq 0, pid 10): address 0x10000123 is not page aligned" in text
    assert "munmap (seq 2, pid 10): address 0x20000001 is not page aligned" in text
    assert "brk (seq 3, pid 10): a break at" in text


def test_page_frames_and_swap_slots_beyond_the_machine_are_left_out(tmp_path: Path) -> None:
    """A header of 1 GiB RAM and 1 GiB swap: the fold tracks 2**24 frames and slots
    (at least DEFAULT_TRACKED). A fault naming pfn 2**40, a swap-out naming slot
    2**63 are left out (counted in one warning each); the good fault is folded; the
    page arrays were sized from the header, not from the bad values."""
    meta = {"machine": {"ram_bytes": GiB, "swap_bytes": GiB}}
    trace = write(tmp_path / "t.mtrace", [
        ("mmap", 1, 10, {"addr": 0x10000000, "len_bytes": 4 * 4096, "handle": "a"}),
        ("page_fault", 2, 10, {"address": 0x10000000, "write": True, "pfn": 1 << 40}),
        ("page_fault", 3, 10, {"address": 0x10001000, "write": True, "pfn": U64_MAX}),
        ("page_fault", 4, 10, {"address": 0x10002000, "write": True, "pfn": 99}),
        ("swap_out", 5, 10, {"pfn": 99, "slot": 1 << 63, "index": 0x10002}),
        ("lru_move", 6, 10, {"pfn": 1 << 50}),
    ], meta=meta)
    folder = fold_trace(TraceReader(trace))
    assert folder.pfn_limit == folder.slot_limit == 1 << 24
    assert folder.pages.nr_pfns == GiB // 4096 and folder.nr_swap == 0
    assert folder.procs[10].vmas[0].ptes.tolist() == [-1, -1, 99, -1]
    assert folder.warnings == [
        ("page_fault (seq 1): pfn 1,099,511,627,776 is not a page frame the fold tracks (below 16,777,216, from "
         "machine.ram_bytes): event left out (and 1 more like it)"),
        ("swap_out (seq 4): slot 9,223,372,036,854,775,808 is not a swap slot the fold tracks (below 16,777,216, "
         "from machine.swap_bytes): event left out"),
        ("lru_move (seq 5): pfn 1,125,899,906,842,624 is not a page frame the fold tracks (below 16,777,216, from "
         "machine.ram_bytes): event left out"),
    ]


@pytest.mark.parametrize(("ram", "says"), [
    (8 * EiB, "machine.ram_bytes 9,223,372,036,854,775,808 is outside 0.."),
    (-4096, "machine.ram_bytes -4,096 is outside 0.."),
    ("lots", "meta.machine.ram_bytes is 'lots' (str), not an integer: ignored"),
    ([1, 2], "meta.machine.ram_bytes is [1, 2] (list), not an integer: ignored"),
])
def test_a_header_ram_size_that_cannot_be_is_ignored(ram: Any, says: str) -> None:
    """No array is sized from the header before events name a page; an absurd RAM
    size is ignored (the default of 2**24 frames tracked) with a warning."""
    folder = StateFolder({"machine": {"ram_bytes": ram}})
    assert folder.pages.nr_pfns == 0 and folder.pfn_limit == 1 << 24 <= MAX_TRACKED
    (w,) = folder.warnings
    assert says in w


# --------------------------------------------------------------------------- 4. renamed fields


def test_free_names_the_missing_label_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = renamed("snapshot", "label", "name")
    trace = write(tmp_path / "t.mtrace", [("snapshot", 1, 1, {"name": "x", **meminfo()})], registry=reg)
    line = fails(capsys, "free", trace)
    assert line == ("memtrace: trace schema: tracepoint 'snapshot' has no field 'label', which memtrace free "
                    "reads (the trace was written with another schema)")
    with pytest.raises(TraceFormatError):
        read_snapshots(TraceReader(trace))


def test_free_names_a_field_of_another_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = renamed("snapshot", "mem_free", new_type="str")
    trace = write(tmp_path / "t.mtrace", [("snapshot", 1, 1, {"label": "x", **meminfo(), "mem_free": "4G"})],
                  registry=reg)
    assert fails(capsys, "free", trace) == ("memtrace: trace schema: field 'mem_free' of tracepoint 'snapshot' is "
                                            "str, but memtrace free reads it as a number (u64)")


@pytest.mark.parametrize(("command", "tracepoint", "field", "reader"), [
    ("dmesg", "oom_kill", "victim_pid", "memtrace dmesg"),
    ("dmesg", "zoneinfo", "zid", "memtrace dmesg"),
    ("report", "oom_kill", "victim_pid", "memtrace report"),
    ("report", "oom_candidate", "points", "memtrace report"),
    ("report", "mmap", "len_bytes", "memtrace report"),
    ("explain", "mmap", "len_bytes", "the state fold (memtrace explain, ps, report)"),
    ("explain", "snapshot", "label", "the state fold (memtrace explain, ps, report)"),
])
def test_analyses_name_a_renamed_field(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                       tracepoint: str, field: str, reader: str) -> None:
    events = [("mmap", 1, 10, {"addr": 0x10000000, "len_bytes": 4096, "handle": "a"}),
              ("snapshot", 2, 10, {"label": "x", **meminfo()}), *one_oom()]
    events = [(n, t, p, {(f + "_v0" if (n, f) == (tracepoint, field) else f): v for f, v in given.items()})
              for n, t, p, given in events]
    trace = write(tmp_path / "t.mtrace", events, registry=renamed(tracepoint, field, field + "_v0"))
    assert fails(capsys, command, trace) == (
        f"memtrace: trace schema: tracepoint {tracepoint!r} has no field {field!r}, which {reader} reads "
        "(the trace was written with another schema)")


def test_dmesg_records_api_names_a_missing_field() -> None:
    """oom_reports_from_events() reads records: a record without a field the report
    reads is named, before any report is written."""
    from memtrace.analysis.kernlog import oom_reports_from_events
    from memtrace.tracer import EventRecord

    rec = EventRecord("oom_reap", {"seq": 1, "ts_ns": 1, "pid": 1, "victim_pid": 3, "comm": "x"})
    with pytest.raises(TraceFormatError, match="tracepoint 'oom_reap' has no field 'success'"):
        oom_reports_from_events([rec], {})


def test_check_fields_accepts_this_memtraces_schemas_for_what_each_analysis_reads() -> None:
    """Every field the fold, dmesg and report list as read exists in this
    memtrace's schema with the kind they read it as (the tables are not stale)."""
    from memtrace.analysis.kernlog.dmesg import DMESG_READS, DMESG_READS_IF_PRESENT
    from memtrace.analysis.report import REPORT_READS
    from memtrace.analysis.state import FOLD_READS, FOLD_READS_IF_PRESENT

    reg = default_registry()
    for table in (FOLD_READS, DMESG_READS, REPORT_READS):
        for name, fields in table.items():
            check_fields(reg[name], "test", fields)
            assert all(reg[name].has_field(f) for f in fields), name
    for table in (FOLD_READS_IF_PRESENT, DMESG_READS_IF_PRESENT):
        for name, fields in table.items():
            check_fields(reg[name], "test", (), fields)


# --------------------------------------------------------------------------- 5. header parts


@pytest.mark.parametrize("machine", ["bogus", 42, ["6.13"]])
def test_dmesg_reads_a_machine_that_is_not_a_map_as_absent(tmp_path: Path, machine: Any) -> None:
    """meta.machine of another type: a warning, then the reports in the default
    kernel's (6.13) layout."""
    trace = write(tmp_path / "t.mtrace", one_oom(), meta={"scenario": "odd", "machine": machine, "sysctl": 5})
    result = invoke("dmesg", trace)
    assert f"memtrace: warning: trace header: meta.machine is {machine!r} ({type(machine).__name__}), not a map: " \
           "ignored" in warnings_of(result)
    assert "memtrace: warning: trace header: meta.sysctl is 5 (int), not a map: ignored" in warnings_of(result)
    assert "leaker invoked oom-killer: gfp_mask=0x100dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), order=0, " \
           "oom_score_adj=0" in result.stdout
    assert "Tasks state (memory values in pages):" in result.stdout  # oom_dump_tasks keeps its default


@pytest.mark.parametrize("command", ["report", "explain"])
def test_report_and_explain_read_a_machine_that_is_not_a_map_as_absent(tmp_path: Path, command: str) -> None:
    events = [("snapshot", 2, 10, {"label": "x", **meminfo()}), *one_oom()]
    trace = write(tmp_path / "t.mtrace", events, meta={"scenario": "odd", "machine": "bogus"})
    says = "trace header: meta.machine is 'bogus' (str), not a map: ignored"
    if command == "report":
        doc = json.loads(invoke(command, trace, "--json").stdout)
        assert says in doc["warnings"] and [k["victim"]["pid"] for k in doc["kills"]] == [10]
    else:
        assert f"memtrace: warning: {says}" in warnings_of(invoke(command, trace))


def test_render_dmesg_adds_its_header_warnings_to_the_readers(tmp_path: Path) -> None:
    trace = write(tmp_path / "t.mtrace", one_oom(), meta={"machine": "bogus"})
    reader = TraceReader(trace)
    (report,) = render_dmesg(reader)
    assert reader.warnings == ["trace header: meta.machine is 'bogus' (str), not a map: ignored"]
    assert report.oom_id == 1


def test_meta_part_and_meta_int() -> None:
    warnings: list[str] = []
    assert meta_part({"machine": {"a": 1}}, "machine", warnings) == {"a": 1}
    assert meta_part({}, "machine", warnings) == {} and warnings == []
    assert meta_part({"machine": "x" * 100}, "machine", warnings) == {}
    assert warnings == [f"trace header: meta.machine is '{'x' * 36}... (str), not a map: ignored"]
    assert meta_int({"ram_bytes": "4096"}, "ram_bytes", "machine") == 4096
    assert meta_int({"ram_bytes": True}, "ram_bytes", "machine", warnings) is None
    assert meta_int({}, "ram_bytes", "machine") is None


def test_a_candidate_the_formula_leaves_out_says_why(tmp_path: Path) -> None:
    """oom_score_adj -1000 with 230000 points recorded: oom_badness() leaves such a
    task out (OOM_SCORE_ADJ_MIN), so the points cannot be recomputed; the FORMULA
    cell says 'adj -1000' (not '?') and a line under the table says it in full."""
    trace = write(tmp_path / "t.mtrace", one_oom(adj=-1000))
    (kill,) = build_report(TraceReader(trace)).kills
    (cand,) = kill.candidates
    assert cand.formula_points is None and cand.points == 230000
    assert cand.formula_why == "oom_score_adj == OOM_SCORE_ADJ_MIN"
    text = invoke("report", trace, "--no-what-if").stdout
    row = next(line for line in text.splitlines() if line.lstrip().startswith("*10"))
    assert row.split()[-1] == "-1000" and row.split()[-2] == "adj" and "?" not in row
    assert ("leaker (pid 10): the kernel recorded 230,000 points, but oom_badness() of kernel"
            in " ".join(text.split()))
    assert "leaves it out (oom_score_adj == OOM_SCORE_ADJ_MIN); FORMULA shows 'adj -1000'" in " ".join(text.split())
