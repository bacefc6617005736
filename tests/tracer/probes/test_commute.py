"""A tracer run over a trace file by commute class (``run_trace``) prints what
the run in ``seq`` order prints: every built-in tool and programs whose probes
share maps in every way (aggregations, reads, assignments, deletes, printf,
elapsed, comm) on the sample traces and a real recording imported from ``perf
script``; and the classes themselves, derived by hand for small programs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtrace.tracer.oneliner import compile_program
from memtrace.tracer.probes import run_batches, run_trace
from memtrace.tracer.tools import tools
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.craft import bomb_interleave

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = [ROOT / "sample_traces" / f"{name}.mtrace" for name in
           ("oom-leak", "fork-cow", "swap-pressure", "memcg-writer", "kswapd-reclaim", "madvise-freer")]

PROGRAMS = {
    "count by probe": "page_fault, rss_stat, lru_move, cow, exit { @[probe] = count(); }",
    "sums by comm": "page_fault { @f[comm] = count(); } rss_stat { @r[comm] = sum(size_bytes); }",
    "shared aggregation": "page_fault { @[pid] = count(); } rss_stat { @[mm_pid] = count(); }",
    "read across": "page_fault { @last[pid] = nsecs; } rss_stat /@last[mm_pid]/ { @gap = hist(nsecs - @last[mm_pid]); }",
    "delete across": "page_fault { @n[pid] = count(); } rss_stat { delete(@n[mm_pid]); @d = count(); }",
    "printf": ('rss_stat /member == "MM_ANONPAGES"/ { printf("%d %s %d\\n", elapsed, comm, size_bytes); } '
               'page_fault /pfn % 97 == 0/ { printf("fault %d\\n", pfn); }'),
    "max and min": "page_fault { @hi = max(address); } lru_move { @lo = min(pfn); } cow { @c = stats(old_pfn); }",
    "assign": "page_fault { @where = address; } rss_stat { @size = size_bytes; } END { print(@where); }",
}


def _outputs(program: str, path: Path, *, by_class: bool) -> list[Any]:
    reader = TraceReader(path)
    tracer = compile_program(program, registry=reader.registry)
    if by_class:
        run_trace(tracer, reader)
    else:
        run_batches(tracer, reader.ordered_batches())
    return [*tracer.outputs, *tracer.warnings]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_programs_print_the_same_by_commute_class(name: str, real_leak_import: Path) -> None:
    for path in (*SAMPLES, real_leak_import):
        assert _outputs(PROGRAMS[name], path, by_class=True) == _outputs(PROGRAMS[name], path, by_class=False), path


@pytest.mark.parametrize("tool", [t.name for t in tools()])
def test_tools_print_the_same_by_commute_class(tool: str, real_leak_import: Path) -> None:
    source = next(t.source for t in tools() if t.name == tool)
    for path in (*SAMPLES, real_leak_import):
        assert _outputs(source, path, by_class=True) == _outputs(source, path, by_class=False), path


def _classes(program: str) -> dict[str, int]:
    return compile_program(program).commute()


def test_classes_follow_the_maps_the_probes_share() -> None:
    # Aggregations commute: each tracepoint is its own class.
    c = _classes("page_fault { @[probe] = count(); } rss_stat { @[probe] = count(); } cow { @s = sum(old_pfn); }")
    assert len({c["page_fault"], c["rss_stat"], c["cow"]}) == 3
    # A map read by one and written by another links them; the third stays apart.
    c = _classes("page_fault { @t[pid] = nsecs; } rss_stat { @h = hist(nsecs - @t[mm_pid]); } "
                 "cow { @c = count(); }")
    assert c["page_fault"] == c["rss_stat"] != c["cow"]
    # Printing, exit() and clear() keep a tracepoint's place among all others.
    c = _classes('page_fault { printf("%d\\n", pid); } rss_stat { @r = count(); } cow { exit(); } '
                 "lru_move { clear(@r); }")
    assert set(c) == {"rss_stat"}
    # The task and path tables' tracepoints always keep their place, traced or not.
    c = _classes("exit, mmap, process_start, page_fault { @[probe] = count(); }")
    assert set(c) == {"page_fault"}
    # Interval probes need every event in time order.
    assert _classes("page_fault { @ = count(); } interval:s:1 { print(@); }") == {}


def test_interleave_bomb_runs_in_two_batches_per_group(tmp_path: Path) -> None:
    path = tmp_path / "bomb.mtrace"
    bomb_interleave(path, size_bytes=40_000)
    counts = TraceReader(path).scan().counts
    program = "page_fault, rss_stat { @[probe] = count(); }"
    outputs = _outputs(program, path, by_class=True)
    assert outputs == _outputs(program, path, by_class=False)
    tracer = compile_program(program)
    reader = TraceReader(path)
    batches = list(reader.ordered_batches(commute=tracer.commute()))
    assert len(batches) == reader.scan().chunks
    run_batches(tracer, batches)
    assert tracer.maps["@"]["page_fault"] == counts["page_fault"]
    assert tracer.maps["@"]["rss_stat"] == counts["rss_stat"]
