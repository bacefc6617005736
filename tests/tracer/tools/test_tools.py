"""The shipped tools: each documented with an example, and each one's output checked
against what its program should print, computed by hand from the events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

from memtrace.errors import NotFoundError
from memtrace.tracer.oneliner import compile_program
from memtrace.tracer.probes import MapOutput, render_text
from memtrace.tracer.tools import load_tool, tool_names

from ..helpers import MS, pressure_stream
from ..programs import ROOT, Trace, map_text, maps_of, printed, slot, tool_outputs


def test_every_tool_has_a_doc_and_an_example() -> None:
    assert tool_names() == ["cacheadd", "cowstat", "faults", "kswapdwake", "oomkill", "reclaimlat"]
    for name in tool_names():
        tool = load_tool(name)
        assert tool.doc.startswith(f"{name} - ") and "USAGE: memtrace trace TARGET -t " + name in tool.doc
        assert tool.example.startswith(f"Demonstrations of {name}")
        assert f"-t {name}" in tool.example
        compile_program(tool.source, filename=tool.filename)


def test_tool_faults(mixed: Trace) -> None:
    expected: Counter[tuple[Any, ...]] = Counter()
    for name, f, comms, _ in mixed.records():
        if name == "page_fault":
            expected[(comms[f["pid"]], f["pid"], f["vma_kind"], "major" if f["major"] else "minor")] += 1
    out = tool_outputs("faults", mixed.batches)
    assert maps_of(out)["@faults"] == dict(expected)
    assert render_text(out[0]) == map_text("@faults", dict(expected))


def test_tool_cowstat(mixed: Trace) -> None:
    expected = Counter((comms[f["pid"]], f["pid"], f["vma_kind"]) for name, f, comms, _ in mixed.records()
                       if name == "cow")
    assert maps_of(tool_outputs("cowstat", mixed.batches))["@cow"] == dict(expected)
    assert {k[0] for k in expected} == {"kid", "filer"}


@pytest.mark.slow
@pytest.mark.parametrize("sample", ["posix-shm", "sysv-shm", "shared-anon-mapping", "page-cache-read"])
def test_tool_cacheadd_on_sample_traces(sample: str) -> None:
    trace = Trace(ROOT / "sample_traces" / f"{sample}.mtrace")
    pages: Counter[str] = Counter()
    shmem = 0
    for name, f, _, paths in trace.records():
        if name == "page_cache_add":
            pages[paths.get(f["ino"], f"[ino {f['ino']}]")] += 1
            shmem += bool(f["shmem"])
    got = maps_of(tool_outputs("cacheadd", trace.batches, trace.registry))
    assert got["@pages"] == dict(pages)
    assert got.get("@shmem_pages", {(): 0}) == {(): shmem}


def test_tool_reclaimlat_pairs_begin_and_end_per_pid() -> None:
    s = pressure_stream()
    # By hand: each end pairs with its pid's latest begin; latency in us.
    open_at: dict[int, int] = {}
    lat: dict[str, list[int]] = defaultdict(list)
    pages: Counter[str] = Counter()
    for rec in s.records():
        f = rec.fields
        if rec.name == "reclaim_begin":
            open_at[f["pid"]] = f["ts_ns"]
        elif rec.name == "reclaim_end" and open_at.get(f["pid"]):
            lat[f["kind"]].append((f["ts_ns"] - open_at.pop(f["pid"])) // 1000)
            pages[f["kind"]] += f["nr_reclaimed"]
    assert lat == {"direct": [3, 100, 400], "memcg": [70]}
    out = tool_outputs("reclaimlat", s.batches)
    got = maps_of(out)
    assert set(got) == {"@usecs", "@reclaimed_pages"}
    for kind, values in lat.items():
        slots = Counter(slot(v) for v in values)
        assert got["@usecs"][kind].counts == tuple(slots.get(i, 0) for i in range(65))
    assert got["@reclaimed_pages"] == dict(pages)
    text = "".join(render_text(o) for o in out)
    assert "@usecs[direct]:\n[2, 4)                 1 |" in text


def test_tool_kswapdwake_lines_per_100ms() -> None:
    s = pressure_stream()
    out = printed(tool_outputs("kswapdwake", s.batches))
    wakes: Counter[int] = Counter()
    reclaimed: Counter[int] = Counter()
    last = 0
    for rec in s.records():
        t = rec.fields["ts_ns"]
        last = max(last, t)
        if rec.name == "kswapd_wake":
            wakes[t // (100 * MS)] += 1
        elif rec.name == "kswapd_sleep":
            reclaimed[t // (100 * MS)] += rec.fields["nr_reclaimed"]
    nr = last // (100 * MS)
    expected = [f"{'TIME_MS':<10} {'WAKES':>8} {'RECLAIMED':>12}\n"]
    expected += [f"{(k + 1) * 100:<10d} {wakes[k]:>8d} {reclaimed[k]:>12d}\n" for k in range(nr)]
    expected.append(f"{last // MS:<10d} {wakes[nr]:>8d} {reclaimed[nr]:>12d}\n")
    assert out == expected
    assert out[1:4] == ["100               1          300\n", "200               3           30\n",
                        "300               0           40\n"]


def test_tool_oomkill_one_line_per_kill_like_bcc() -> None:
    s = pressure_stream()
    comms = {100: "db", 101: "leaker", 102: "worker"}
    expected = ["Tracing OOM kills...\n"]
    for rec in s.records("oom_kill"):
        f = rec.fields
        secs = f["ts_ns"] // 1_000_000_000
        hms = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        expected.append(f'{hms} Triggered by PID {f["pid"]} ("{comms[f["pid"]]}"), OOM kill of PID '
                        f'{f["victim_pid"]} ("{f["comm"]}"), {f["totalpages"]} pages\n')
    out = tool_outputs("oomkill", s.batches)
    assert printed(out) == expected
    assert expected[2] == '01:02:03 Triggered by PID 102 ("worker"), OOM kill of PID 100 ("db"), 24576 pages\n'
    assert not [o for o in out if isinstance(o, MapOutput)]


def test_an_unknown_tool_is_not_found_with_a_hint() -> None:
    with pytest.raises(NotFoundError, match="unknown tool 'oomkil' \\(did you mean 'oomkill'\\?\\); tools: "):
        load_tool("oomkil")
