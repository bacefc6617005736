"""Diffs of two traces: figures, first divergence and verdict on hand-made traces.

Every expected value is set by the test itself: the traces are written event by
event, so the counts, sums, peaks and the position where two streams part are known
before the diff reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from memtrace.replay import diff_traces, first_divergence, input_changes, summarize_trace
from memtrace.tracer import Bus, Registry

from .helpers import GiB, MiB, emit, meminfo, write_trace


def pressure_run(bus: Bus, reg: Registry) -> None:
    """A small memory-pressure story, 18 events (seq 0..17):

    leaker (pid 103) starts, a meminfo sample, kswapd wakes twice and reclaims
    100 + 28 pages, direct reclaim 7 pages, memcg reclaim 5, three swap-outs, one
    swap-in, four page faults of which two major, an OOM kill of leaker (800 points)
    at 1.2 s, and a final snapshot.
    """
    emit(bus, reg, "process_start", 0, 103, comm="leaker", uid=1000, oom_score_adj=0)
    emit(bus, reg, "meminfo_sample", 100_000_000, 0, **meminfo(anon=300 * MiB, cached=200 * MiB, shmem=50 * MiB,
                                                                swap_total=GiB, swap_free=GiB - 8 * MiB))
    emit(bus, reg, "kswapd_wake", 200_000_000, 0, nid=0, zid=2, order=0)
    emit(bus, reg, "kswapd_sleep", 210_000_000, 0, nid=0, nr_reclaimed=100)
    emit(bus, reg, "kswapd_wake", 300_000_000, 0, nid=0, zid=2, order=0)
    emit(bus, reg, "kswapd_sleep", 310_000_000, 0, nid=0, nr_reclaimed=28)
    emit(bus, reg, "reclaim_end", 400_000_000, 103, 2, kind=np.array([0, 1], dtype=np.uint8),
             nr_scanned=[64, 32], nr_reclaimed=[7, 5])
    emit(bus, reg, "swap_out", 500_000_000, 103, 3, pfn=[1, 2, 3], slot=[0, 1, 2], owner=103)
    emit(bus, reg, "swap_in", 600_000_000, 103, address=0x1000, slot=0, pfn=9, ino=0)
    emit(bus, reg, "page_fault", 700_000_000, 103, 4, address=np.arange(4, dtype=np.uint64) * 4096,
             write=True, major=[True, False, True, False], vma_kind="anon_private", pfn=[5, 6, 7, 8])
    emit(bus, reg, "oom_kill", 1_200_000_000, 103, oom_id=1, victim_pid=103, comm="leaker", points=800,
             constraint="CONSTRAINT_NONE")
    emit(bus, reg, "snapshot", 1_300_000_000, 103, label="end", **meminfo(anon=100 * MiB, cached=250 * MiB,
                                                                           shmem=10 * MiB, swap_total=GiB,
                                                                           swap_free=GiB - 2 * MiB))


def refused_run(bus: Bus, reg: Registry) -> None:
    """leaker (pid 103) starts, its mmap is refused at 1.2 s, a snapshot: 4 events."""
    emit(bus, reg, "process_start", 0, 103, comm="leaker", uid=1000, oom_score_adj=0)
    emit(bus, reg, "vm_enough_memory", 1_200_000_000, 103, nr_pages=262144, committed_bytes=0,
             limit_bytes=GiB, mode=2, op="mmap")
    emit(bus, reg, "mmap", 1_200_000_000, 103, addr=0, len_bytes=GiB, prot=3, flags=0x22,
             vma_kind="anon_private", ino=0, path="", handle="buf", charged_pages=0, ret=-12)
    emit(bus, reg, "snapshot", 1_300_000_000, 103, label="end", **meminfo(anon=MiB))


REFUSED_FOOTER = {"errors": [{"pid": 103, "comm": "leaker", "op": "mmap", "step": 3, "errno": "ENOMEM",
                              "message": "mmap of 1073741824 bytes refused", "ts_ns": 1_200_000_000}],
                  "oom_kills": [], "end_ns": 1_300_000_000, "pids": {"leaker": 103}}


def test_summary_figures_are_the_events_folded(tmp_path: Path) -> None:
    s = summarize_trace(write_trace(tmp_path / "p.mtrace", pressure_run))
    assert s.total_events == 18
    assert s.events == {"page_fault": 4, "process_start": 1, "snapshot": 1, "kswapd_wake": 2,
                        "kswapd_sleep": 2, "reclaim_end": 2, "swap_out": 3, "swap_in": 1,
                        "oom_kill": 1, "meminfo_sample": 1}
    assert (s.major_faults, s.reclaimed_kswapd_pages, s.reclaimed_direct_pages, s.reclaimed_memcg_pages,
            s.swap_outs, s.swap_ins, s.kswapd_wakes) == (2, 128, 7, 5, 3, 1, 2)
    # Peak per kind over both readings; file = Cached - Shmem; swap = SwapTotal - SwapFree.
    assert s.memory_peak is not None and s.memory_final is not None
    assert s.memory_peak.as_dict() == {"anon": 300 * MiB, "file": 240 * MiB, "shmem": 50 * MiB, "swap": 8 * MiB}
    assert s.memory_final.as_dict() == {"anon": 100 * MiB, "file": 240 * MiB, "shmem": 10 * MiB, "swap": 2 * MiB}
    [kill] = s.oom_kills
    assert (kill.pid, kill.comm, kill.points, kill.ts_ns, kill.seq) == (103, "leaker", 800, 1_200_000_000, 16)
    assert s.refusals == ()
    assert s.end_ns == 1_300_000_000  # no footer extra: the last event's time
    assert [snap["label"] for snap in s.snapshots] == ["end"]
    assert s.snapshots[0]["free"]["shared"] == 10 * MiB


def test_refusals_come_from_the_footer_or_else_from_events(tmp_path: Path) -> None:
    with_footer = summarize_trace(write_trace(tmp_path / "f.mtrace", refused_run, extra=REFUSED_FOOTER))
    [r] = with_footer.refusals
    assert (r.pid, r.comm, r.op, r.step, r.ts_ns) == (103, "leaker", "mmap", "3", 1_200_000_000)
    killed = summarize_trace(write_trace(tmp_path / "k.mtrace", refused_run, close=False))
    assert not killed.complete
    [r] = killed.refusals  # from vm_enough_memory, comm from process_start
    assert (r.pid, r.comm, r.op, r.step) == (103, "leaker", "mmap", None)


def test_a_trace_against_itself_is_no_difference(tmp_path: Path) -> None:
    p = write_trace(tmp_path / "p.mtrace", pressure_run, extra={"errors": []})
    d = diff_traces(p, p)
    assert d.divergence is None and d.identical
    assert d.verdict == "no difference: both traces hold the same events"
    assert d.changes == {}
    assert all(a == b for _key, _label, a, b in d.metrics())


def test_the_issue_verdict_for_an_avoided_oom_kill(tmp_path: Path) -> None:
    a = write_trace(tmp_path / "a.mtrace", pressure_run, extra={"errors": [], "oom_kills": []})
    b = write_trace(tmp_path / "b.mtrace", refused_run, extra=REFUSED_FOOTER)
    d = diff_traces(a, b)
    assert d.verdict == "OOM kill of leaker (pid 103) avoided: its mmap was refused with ENOMEM at 1.200 s"
    out = d.as_dict()
    assert [k["pid"] for k in out["oom_kills"]["a"]] == [103] and out["oom_kills"]["b"] == []
    assert out["enomem"]["a"] == [] and out["enomem"]["b"][0]["op"] == "mmap"
    assert out["swap_outs"] == {"a": 3, "b": 0}
    assert out["reclaimed_kswapd_pages"] == {"a": 128, "b": 0}
    assert out["reclaimed_direct_pages"] == {"a": 7, "b": 0}
    assert out["kswapd_wakes"] == {"a": 2, "b": 0}
    assert out["major_faults"] == {"a": 2, "b": 0}
    assert out["memory_peak_bytes"]["b"] == {"anon": MiB, "file": 0, "shmem": 0, "swap": 0}
    # Both start with the same process_start; event 1 is meminfo_sample vs vm_enough_memory.
    assert out["first_divergence"]["index"] == 1
    assert out["first_divergence"]["seq"] == 1
    assert out["first_divergence"]["tracepoint"] == "meminfo_sample"
    assert out["first_divergence"]["b"]["tracepoint"] == "vm_enough_memory"
    assert out["first_divergence"]["field"] is None
    # The other way round, the kill is new.
    assert diff_traces(b, a).verdict.startswith("new OOM kill of leaker (pid 103) at 1.200 s")


def many_events(bus: Bus, reg: Registry, *, change_at: int | None = None, extra_at_end: bool = False,
                other_tp_at: int | None = None) -> None:
    """60 events alternating in runs: 7 page_faults, 3 rss_stat, ... Event ``change_at``
    gets pfn 999999; event ``other_tp_at`` is an exit instead."""
    i = 0
    while i < 60:
        for _ in range(7 if (i // 10) % 2 == 0 else 3):
            if i >= 60:
                break
            if i == other_tp_at:
                emit(bus, reg, "exit", 10 * i, 7, comm="x", code=0)
            elif (i // 10) % 2 == 0:
                emit(bus, reg, "page_fault", 10 * i, 7, address=4096 * i, write=False, major=False,
                         vma_kind="heap", pfn=999999 if i == change_at else i)
            else:
                emit(bus, reg, "rss_stat", 10 * i, 7, mm_pid=7, curr=True, member="MM_ANONPAGES",
                         size_bytes=999999 if i == change_at else i)
            i += 1
    if extra_at_end:
        emit(bus, reg, "exit", 10 * i, 7, comm="x", code=0)


@pytest.mark.parametrize("chunks", [(65536, 65536), (3, 4), (1, 7), (5, 64)])
@pytest.mark.parametrize("change_at", [0, 6, 7, 13, 33, 59])
def test_first_divergence_is_found_across_any_chunking(tmp_path: Path, chunks: tuple[int, int],
                                                       change_at: int) -> None:
    """The streams are read in batches that end in different places on each side;
    the divergence is the changed event, with the changed field and both values."""
    a = write_trace(tmp_path / "a.mtrace", many_events, chunk_events=chunks[0])
    b = write_trace(tmp_path / "b.mtrace", lambda bus, reg: many_events(bus, reg, change_at=change_at),
                    chunk_events=chunks[1])
    d = first_divergence(a, b)
    assert d is not None
    assert (d.index, d.seq, d.ts_ns) == (change_at, change_at, 10 * change_at)
    is_fault = (change_at // 10) % 2 == 0
    assert d.tracepoint == ("page_fault" if is_fault else "rss_stat")
    assert d.field == ("pfn" if is_fault else "size_bytes")
    assert d.a is not None and d.b is not None
    assert (d.a.value, d.b.value) == (change_at, 999999)
    assert first_divergence(a, a) is None


def test_divergence_when_tracepoints_differ_or_a_stream_ends(tmp_path: Path) -> None:
    a = write_trace(tmp_path / "a.mtrace", many_events, chunk_events=4)
    b = write_trace(tmp_path / "b.mtrace", lambda bus, reg: many_events(bus, reg, other_tp_at=21))
    d = first_divergence(a, b)
    assert d is not None and d.index == 21 and d.field is None
    assert d.a is not None and d.b is not None
    assert (d.a.tracepoint, d.b.tracepoint) == ("page_fault", "exit")
    longer = write_trace(tmp_path / "c.mtrace", lambda bus, reg: many_events(bus, reg, extra_at_end=True))
    d = first_divergence(a, longer)
    assert d is not None and d.index == 60 and d.a is None
    assert d.b is not None and (d.b.seq, d.b.tracepoint) == (60, "exit")
    d = first_divergence(longer, a)
    assert d is not None and d.index == 60 and d.b is None


def test_string_and_enum_fields_are_compared_and_decoded(tmp_path: Path) -> None:
    def run(comm: str, member: str) -> object:
        def script(bus: Bus, reg: Registry) -> None:
            emit(bus, reg, "process_start", 0, 1, 3, comm=["a", comm, "c"], uid=0, oom_score_adj=0)
            emit(bus, reg, "rss_stat", 5, 1, mm_pid=1, curr=True, member=member, size_bytes=4096)
        return script

    a = write_trace(tmp_path / "a.mtrace", run("b", "MM_ANONPAGES"))
    b = write_trace(tmp_path / "b.mtrace", run("z", "MM_ANONPAGES"))
    c = write_trace(tmp_path / "c.mtrace", run("b", "MM_FILEPAGES"))
    d = first_divergence(a, b)
    assert d is not None and (d.index, d.field, d.a.value, d.b.value) == (1, "comm", "b", "z")
    d = first_divergence(a, c)
    assert d is not None and (d.index, d.field, d.a.value, d.b.value) == (
        3, "member", "MM_ANONPAGES", "MM_FILEPAGES")


def test_input_changes_name_sysctls_machine_cgroups_and_seed() -> None:
    a = {"scenario": "s", "seed": 0, "sysctl": {"vm.swappiness": 60, "vm.min_free_kbytes": 100},
         "sysctl_overrides": {}, "machine": {"ram_bytes": 8 * GiB},
         "workload": {"process": [1], "cgroup": [{"path": "/leaker", "max": 96 * MiB}]}}
    b = {"scenario": "s", "seed": 1, "sysctl": {"vm.swappiness": 10, "vm.min_free_kbytes": 50},
         "sysctl_overrides": {"vm.swappiness": "10"}, "machine": {"ram_bytes": 4 * GiB},
         "workload": {"process": [1], "cgroup": [{"path": "/leaker", "max": 192 * MiB}]}}
    assert list(input_changes(a, b).items()) == [
        ("machine.ram_bytes", (8 * GiB, 4 * GiB)),
        ("cgroup./leaker.max", (96 * MiB, 192 * MiB)),
        ("seed", (0, 1)),
        ("vm.swappiness", (60, 10)),  # set explicitly: before the derived one
        ("vm.min_free_kbytes", (100, 50)),
    ]


def test_verdict_without_oom_names_the_swap_change(tmp_path: Path) -> None:
    def swaps(n: int) -> object:
        def script(bus: Bus, reg: Registry) -> None:
            emit(bus, reg, "process_start", 0, 5, comm="w", uid=0, oom_score_adj=0)
            emit(bus, reg, "swap_out", 10, 5, n, pfn=np.arange(n), slot=np.arange(n), owner=5)
        return script

    a = write_trace(tmp_path / "a.mtrace", swaps(40))
    b = write_trace(tmp_path / "b.mtrace", swaps(10))
    assert diff_traces(a, b).verdict == "no OOM kill either way; swap-outs 40 -> 10 pages (-75%)"


def _configured(sysctls: list[tuple[str, str]], refuse: bool) -> Callable[[Bus, Registry], None]:
    """A boot with ``sysctls`` written and a zoneinfo line, then leaker's story:
    its start, a fault at 1.0 s, then at 1.2 s an mmap that is refused when
    ``refuse``, else made and faulted."""
    def script(bus: Bus, reg: Registry) -> None:
        for name, value in sysctls:
            bus.emit(reg["sysctl_set"], 0, 0, name=name, value=value, old="0")  # emit() has its own 'name'
        emit(bus, reg, "zoneinfo", 0, 0, zone="Normal", zid=2)
        emit(bus, reg, "process_start", 0, 103, comm="leaker", uid=1000, oom_score_adj=0)
        emit(bus, reg, "page_fault", 1_000_000_000, 103, address=0x1000, write=True, vma_kind="anon_private",
             pfn=5)
        if refuse:
            emit(bus, reg, "vm_enough_memory", 1_200_000_000, 103, nr_pages=262144, mode=2, op="mmap")
        emit(bus, reg, "mmap", 1_200_000_000, 103, len_bytes=GiB, vma_kind="anon_private", handle="buf",
             ret=-12 if refuse else 0)
    return script


def test_workload_divergence_skips_the_configuration(tmp_path: Path) -> None:
    """B writes one more sysctl at boot, which shifts every later seq by one: the
    first divergence is event 0 (sysctl_set against zoneinfo), the workload
    divergence is the refusal at 1.2 s, after the 3 equal workload events
    (zoneinfo, process_start, page_fault)."""
    a = write_trace(tmp_path / "a.mtrace", _configured([], refuse=False))
    b = write_trace(tmp_path / "b.mtrace", _configured([("vm.overcommit_memory", "2")], refuse=True))
    d = diff_traces(a, b)
    assert d.divergence is not None and d.divergence.index == 0
    assert d.divergence.a.tracepoint == "zoneinfo" and d.divergence.b.tracepoint == "sysctl_set"
    w = d.workload_divergence
    assert w is not None and w.index == 2 and w.field is None
    assert (w.a.tracepoint, w.a.seq, w.a.ts_ns) == ("mmap", 3, 1_200_000_000)
    assert (w.b.tracepoint, w.b.seq, w.b.ts_ns) == ("vm_enough_memory", 4, 1_200_000_000)
    assert d.as_dict()["workload_divergence"]["b"]["tracepoint"] == "vm_enough_memory"
    assert first_divergence(a, b, workload=True) == w


def test_only_the_configuration_differs(tmp_path: Path) -> None:
    """Same workload, different sysctls: the streams part at boot, behaviour never."""
    a = write_trace(tmp_path / "a.mtrace", _configured([("vm.swappiness", "60")], refuse=False))
    b = write_trace(tmp_path / "b.mtrace", _configured([("vm.swappiness", "10")], refuse=False))
    d = diff_traces(a, b)
    assert d.divergence is not None and d.divergence.field == "value"
    assert d.workload_divergence is None and d.as_dict()["workload_divergence"] is None
    assert d.verdict == "no OOM kill either way; same behaviour: only the configuration differs"


def test_a_workload_divergence_is_the_first_when_configuration_agrees(tmp_path: Path) -> None:
    a = write_trace(tmp_path / "a.mtrace", _configured([], refuse=False))
    b = write_trace(tmp_path / "b.mtrace", _configured([], refuse=True))
    d = diff_traces(a, b)
    assert d.workload_divergence is d.divergence and d.divergence is not None
    assert d.divergence.b.tracepoint == "vm_enough_memory"
