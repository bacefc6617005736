"""Replay re-runs a recorded workload: exact with no change, and the diff of a change
reports figures derived by hand from the scenario and the kernel's formulas."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.api import record
from memtrace.errors import ScenarioError, SysctlError, TraceFormatError
from memtrace.kernel.workload import builtin_names, resolve_scenario
from memtrace.replay import (
    Overrides,
    default_output,
    diff_traces,
    merge_sysctls,
    parse_set,
    recorded_total_events,
    replay_trace,
    set_in_workload,
    summarize_trace,
)
from memtrace.tracer import TraceReader

from .helpers import GiB, MiB, emit, naive_first_divergence, write_trace

PAGE_SIZE = 4096
VERSION = "0.1.0"


@pytest.mark.slow
@pytest.mark.parametrize("name", builtin_names())
def test_replay_without_changes_is_byte_identical(name: str, tmp_path: Path) -> None:
    """Every built-in scenario: the replay writes the very bytes the recording did."""
    trace = tmp_path / f"{name}.mtrace"
    record(name, trace)
    result = replay_trace(trace, memtrace_version=VERSION)
    assert result.trace == str(tmp_path / f"{name}.replay.mtrace")
    assert result.byte_identical
    assert Path(result.trace).read_bytes() == trace.read_bytes()
    assert result.events == recorded_total_events(trace)


def test_replay_keeps_recorded_sysctls_and_seed(tmp_path: Path) -> None:
    trace = tmp_path / "pcr.mtrace"
    record("page-cache-read", trace, sysctls={"watermark_scale_factor": 100}, seed=7)
    result = replay_trace(trace, tmp_path / "again.mtrace", memtrace_version=VERSION)
    assert result.byte_identical
    assert result.seed == 7
    assert result.sysctl_overrides == {"watermark_scale_factor": "100"}


def test_default_output_is_beside_the_trace() -> None:
    assert default_output("runs/oom-leak.mtrace") == Path("runs/oom-leak.replay.mtrace")
    assert default_output("x") == Path("x.replay.mtrace")


def test_private_anon_mapping_on_less_ram_is_refused(tmp_path: Path) -> None:
    """1 GiB private anon mmap on a 768 MiB machine without swap: overcommit mode 0
    refuses a single request larger than totalram + swap (mm/util.c
    __vm_enough_memory), so mmap fails with ENOMEM and the process exits (its
    on_enomem is "exit"): no page is touched."""
    trace = tmp_path / "pam.mtrace"
    record("private-anon-mapping", trace)
    result = replay_trace(trace, tmp_path / "small.mtrace", Overrides.parse(sets=["machine.ram=768MiB"]),
                          memtrace_version=VERSION)
    assert not result.byte_identical
    assert TraceReader(result.trace).meta["machine"]["ram_bytes"] == 768 * MiB
    d = diff_traces(trace, result.trace)
    out = d.as_dict()
    assert out["changes"]["machine.ram_bytes"] == {"a": 24 * GiB, "b": 768 * MiB}
    assert out["events"]["a"]["page_fault"] == GiB // PAGE_SIZE == 262144
    assert "page_fault" not in out["events"]["b"]
    assert out["memory_peak_bytes"]["a"]["anon"] == GiB
    assert out["memory_peak_bytes"]["b"]["anon"] == 0
    assert out["enomem"]["a"] == []
    [refusal] = out["enomem"]["b"]
    pid = d.b.pids["anon-writer"]
    # Steps: sync, drop_caches, snapshot "before", mmap: the mmap is step 4.
    assert (refusal["pid"], refusal["comm"], refusal["op"], refusal["step"]) == (pid, "anon-writer", "mmap", "4")
    assert d.verdict.startswith(f"mmap of anon-writer (pid {pid}) now refused with ENOMEM at ")
    assert out["oom_kills"] == {"a": [], "b": []}
    # The runs part at the first event that shows the machine's size.
    div = out["first_divergence"]
    assert (div["index"], div["tracepoint"], div["field"]) == naive_first_divergence(trace, Path(result.trace))


def test_strict_overcommit_sysctls_refuse_the_mapping(tmp_path: Path) -> None:
    """vm.overcommit_memory=2 with overcommit_ratio=1 on 24 GiB and no swap:
    CommitLimit is about 1% of RAM (~240 MiB), far below the 1 GiB asked for."""
    trace = tmp_path / "pam.mtrace"
    record("private-anon-mapping", trace)
    overrides = Overrides.parse(["vm.overcommit_memory=2", "overcommit_ratio=1"])
    result = replay_trace(trace, tmp_path / "strict.mtrace", overrides, memtrace_version=VERSION)
    meta = TraceReader(result.trace).meta
    assert meta["sysctl_overrides"] == {"vm.overcommit_memory": "2", "vm.overcommit_ratio": "1"}
    assert meta["sysctl"]["vm.overcommit_memory"] == 2
    s = summarize_trace(result.trace)
    assert s.events["sysctl_set"] == 2
    assert [r.op for r in s.refusals] == ["mmap"]
    assert s.memory_peak is not None and s.memory_peak.anon == 0
    d = diff_traces(trace, result.trace)
    assert d.changes["vm.overcommit_memory"] == (0, 2)
    assert d.changes["vm.overcommit_ratio"] == (50, 1)


def test_tmpfs_file_on_a_smaller_machine_keeps_its_shmem(tmp_path: Path) -> None:
    """A 1 GiB tmpfs file on 2 GiB instead of 24 GiB: Shmem still peaks at exactly
    1 GiB (262,144 pages, none of them file page cache) and is 0 after the unlink;
    the runs part at the first event that shows the machine's size."""
    trace = tmp_path / "tmpfs.mtrace"
    record("tmpfs-file", trace)
    result = replay_trace(trace, tmp_path / "2g.mtrace", Overrides.parse(sets=["machine.ram=2GiB"]),
                          memtrace_version=VERSION)
    d = diff_traces(trace, result.trace)
    for side in (d.a, d.b):
        assert side.memory_peak is not None and side.memory_final is not None
        assert side.memory_peak.shmem == GiB
        assert side.memory_final.shmem == 0
        assert side.events["page_cache_add"] == GiB // PAGE_SIZE
        assert side.oom_kills == () and side.refusals == ()
    assert d.changes["machine.ram_bytes"] == (24 * GiB, 2 * GiB)
    assert d.divergence is not None
    want = naive_first_divergence(trace, Path(result.trace))
    assert (d.divergence.index, d.divergence.tracepoint, d.divergence.field) == want


def test_relative_machine_sizes(tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    record("tmpfs-file", trace)
    result = replay_trace(trace, tmp_path / "half.mtrace", Overrides.parse(sets=["machine.ram=-50%"]),
                          memtrace_version=VERSION)
    assert result.scenario.machine.ram_bytes == 12 * GiB
    result = replay_trace(trace, tmp_path / "swap.mtrace", Overrides.parse(sets=["machine.swap=4GiB"]),
                          memtrace_version=VERSION)
    assert TraceReader(result.trace).meta["machine"]["swap_bytes"] == 4 * GiB


def test_cgroup_sets_edit_the_recorded_cgroup_table() -> None:
    workload = {"cgroup": [{"path": "/leaker", "max": "96MiB"}, {"path": "/other", "max": 1 << 30}]}
    out = set_in_workload(workload, "cgroup./leaker.max", "+100%")
    assert out["cgroup"][0]["max"] == 192 * MiB
    assert workload["cgroup"][0]["max"] == "96MiB"  # the input is not changed
    out = set_in_workload(out, "cgroup.other.max", "512MiB")  # the leading / may be left out
    assert out["cgroup"][1]["max"] == "512MiB"
    out = set_in_workload(out, "cgroup./leaker.swap_max", "0")
    assert out["cgroup"][0]["swap_max"] == 0
    with pytest.raises(ScenarioError, match=r"no cgroup '/nope' \(cgroups: /leaker, /other\)"):
        set_in_workload(workload, "cgroup./nope.max", "1GiB")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("machine.ram", "expected KEY=VALUE"),
        ("ram=8GiB", "must start with 'machine.' or 'cgroup.'"),
        ("vm.swappiness=10", "sysctls take --sysctl"),
        ("machine.=1", "expected machine.KEY=VALUE"),
        ("cgroup.max=1GiB", "expected cgroup.PATH.KEY=VALUE"),
    ],
)
def test_malformed_sets_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        parse_set(text)


def test_bad_overrides_name_themselves(tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    record("tmpfs-file", trace)
    with pytest.raises(ScenarioError, match=r"--set machine.bogus=1: .*unknown key 'bogus'"):
        replay_trace(trace, tmp_path / "o.mtrace", Overrides.parse(sets=["machine.bogus=1"]))
    with pytest.raises(ScenarioError, match=r"--set machine.ram=lots: .*key 'ram'"):
        replay_trace(trace, tmp_path / "o.mtrace", Overrides.parse(sets=["machine.ram=lots"]))
    with pytest.raises(ScenarioError, match=r"no cgroup '/x' \(cgroups: none\)"):
        replay_trace(trace, tmp_path / "o.mtrace", Overrides.parse(sets=["cgroup./x.max=1GiB"]))
    with pytest.raises(SysctlError, match=r"vm\.nosuch"):
        replay_trace(trace, tmp_path / "o.mtrace", Overrides.parse(["vm.nosuch=1"]))
    with pytest.raises(SysctlError, match=r"outside 0\.\.200"):
        replay_trace(trace, tmp_path / "o.mtrace", Overrides.parse(["vm.swappiness=500"]))


def test_new_sysctls_replace_recorded_ones_however_spelled() -> None:
    assert merge_sysctls({"swappiness": "30", "vm.dirty_ratio": "5"}, Overrides()) == {
        "swappiness": "30", "vm.dirty_ratio": "5"}
    assert merge_sysctls({"swappiness": "30", "vm.dirty_ratio": "5"}, Overrides.parse(["vm.swappiness=10"])) == {
        "vm.dirty_ratio": "5", "vm.swappiness": "10"}


def test_a_trace_without_a_workload_cannot_be_replayed(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "hand.mtrace", lambda bus, reg: emit(bus, reg, "exit", 0, 1, comm="x"))
    with pytest.raises(TraceFormatError, match="records no workload to replay"):
        replay_trace(trace, tmp_path / "o.mtrace")


def test_a_replay_never_overwrites_its_input(tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    record("tmpfs-file", trace)
    before = trace.read_bytes()
    with pytest.raises(TraceFormatError, match="would overwrite the trace it replays"):
        replay_trace(trace, trace)
    assert trace.read_bytes() == before


def test_replay_consumers_see_every_event(tmp_path: Path) -> None:
    from memtrace.tracer import Collector

    trace = tmp_path / "t.mtrace"
    rec = record("tmpfs-file", trace)
    live = Collector()
    replay_trace(trace, tmp_path / "r.mtrace", consumers=[live], memtrace_version=VERSION)
    assert sum(b.n for b in live.batches) == sum(rec.events.values())


def test_recorded_total_events_reads_the_footer_or_says_none(tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    rec = record("tmpfs-file", trace)
    assert recorded_total_events(trace) == sum(rec.events.values())
    cut = tmp_path / "cut.mtrace"
    cut.write_bytes(trace.read_bytes()[:-3])
    assert recorded_total_events(cut) is None
    assert recorded_total_events(tmp_path / "missing.mtrace") is None


def test_scenario_is_rebuilt_from_the_header(tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    record("sysv-shm", trace)
    result = replay_trace(trace, tmp_path / "r.mtrace", memtrace_version=VERSION)
    assert result.scenario.to_dict() == resolve_scenario("sysv-shm").to_dict()
