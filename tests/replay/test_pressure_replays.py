"""The issue's three must-show replays, on the memory-pressure scenarios.

- oom-leak with vm.overcommit_memory=2: no oom_kill; the leaker's mmap is refused
  with ENOMEM instead, and the diff says so.
- swap-pressure with vm.swappiness=10 and =100: more swap-outs at 100, and the
  diff's figures are the swap_out events each trace holds.
- memcg-oom with the cgroup limit raised enough: no kill.

Expected values come from the scenario files and the kernel's formulas, and the
diff's figures are checked against an independent count of each trace's events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.api import record
from memtrace.kernel.workload import builtin_names, resolve_scenario
from memtrace.replay import Overrides, diff_traces, replay_trace, summarize_trace
from memtrace.tracer import TraceReader
from memtrace.units import format_seconds

MiB = 1 << 20
PAGE_SIZE = 4096
VERSION = "0.1.0"


def needs(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if n not in builtin_names()]
    return pytest.mark.skipif(bool(missing), reason=f"built-in scenario(s) not there yet: {', '.join(missing)}")


def counts(path: str | Path) -> dict[str, int]:
    return TraceReader(path).scan().counts


def records(path: str | Path, name: str) -> list[dict]:
    return [r.fields for b in TraceReader(path).ordered_batches() if b.tp.name == name for r in b.records()]


@needs("oom-leak")
def test_oom_leak_under_strict_overcommit_refuses_instead_of_killing(tmp_path: Path) -> None:
    trace = tmp_path / "oom-leak.mtrace"
    record("oom-leak", trace)
    base_kills = records(trace, "oom_kill")
    assert [k["comm"] for k in base_kills] == ["leaker"]
    result = replay_trace(trace, tmp_path / "strict.mtrace", Overrides.parse(["vm.overcommit_memory=2"]),
                          memtrace_version=VERSION)
    assert "oom_kill" not in counts(result.trace)
    leaker = summarize_trace(result.trace).pids["leaker"]
    assert base_kills[0]["victim_pid"] == leaker
    # The refusal is the kernel's mode-2 check (mm/util.c __vm_enough_memory): the
    # 64 MiB request would take Committed_AS past what the policy allows.
    refusals = records(result.trace, "vm_enough_memory")
    assert refusals and all(r["pid"] == leaker and r["mode"] == 2 for r in refusals)
    first = refusals[0]
    assert first["nr_pages"] == 64 * MiB // PAGE_SIZE  # one leak step
    assert first["committed_bytes"] + first["nr_pages"] * PAGE_SIZE > first["limit_bytes"]

    d = diff_traces(trace, result.trace)
    [refusal] = d.b.refusals
    assert (refusal.pid, refusal.comm, refusal.op) == (leaker, "leaker", "mmap")
    assert refusal.ts_ns == first["ts_ns"]
    assert d.verdict == (f"OOM kill of leaker (pid {leaker}) avoided: its mmap was refused with ENOMEM "
                         f"at {format_seconds(refusal.ts_ns)}")
    out = d.as_dict()
    assert [k["comm"] for k in out["oom_kills"]["a"]] == ["leaker"] and out["oom_kills"]["b"] == []
    assert out["oom_kills"]["a"][0]["points"] == base_kills[0]["points"]
    assert out["enomem"]["a"] == [] and len(out["enomem"]["b"]) == 1
    assert out["changes"] == {"vm.overcommit_memory": {"a": 0, "b": 2}}
    # The streams part at boot (the sysctl write); behaviour parts at the refusal.
    assert d.divergence is not None and d.divergence.b.tracepoint == "sysctl_set"
    w = d.workload_divergence
    assert w is not None and w.b.tracepoint == "vm_enough_memory" and w.b.ts_ns == first["ts_ns"]
    assert w.a.tracepoint == "mmap" and w.a.ts_ns == first["ts_ns"]


@pytest.mark.slow
@needs("swap-pressure")
def test_swap_pressure_swaps_more_at_swappiness_100(tmp_path: Path) -> None:
    trace = tmp_path / "swap-pressure.mtrace"
    record("swap-pressure", trace)
    s10 = replay_trace(trace, tmp_path / "s10.mtrace", Overrides.parse(["vm.swappiness=10"]),
                       memtrace_version=VERSION)
    s100 = replay_trace(trace, tmp_path / "s100.mtrace", Overrides.parse(["vm.swappiness=100"]),
                        memtrace_version=VERSION)
    n10 = counts(s10.trace).get("swap_out", 0)
    n100 = counts(s100.trace).get("swap_out", 0)
    assert n100 > n10  # swappiness weighs anon reclaim up: more swap at 100
    d = diff_traces(s10.trace, s100.trace)
    out = d.as_dict()
    assert out["changes"] == {"vm.swappiness": {"a": 10, "b": 100}}
    assert out["swap_outs"] == {"a": n10, "b": n100}
    assert out["swap_ins"] == {"a": counts(s10.trace).get("swap_in", 0), "b": counts(s100.trace).get("swap_in", 0)}
    assert out["kswapd_wakes"] == {"a": counts(s10.trace).get("kswapd_wake", 0),
                                   "b": counts(s100.trace).get("kswapd_wake", 0)}
    kswapd = [sum(r["nr_reclaimed"] for r in records(p, "kswapd_sleep")) for p in (s10.trace, s100.trace)]
    assert out["reclaimed_kswapd_pages"] == {"a": kswapd[0], "b": kswapd[1]}
    # Swap in use peaks higher when more is swapped out; the machine has 2 GiB of it.
    assert out["memory_peak_bytes"]["b"]["swap"] > out["memory_peak_bytes"]["a"]["swap"]
    assert out["memory_peak_bytes"]["b"]["swap"] <= 2 << 30
    assert d.verdict.startswith(f"no OOM kill either way; swap-outs {n10:,} -> {n100:,} pages")


@needs("memcg-oom")
def test_memcg_oom_with_the_limit_raised_kills_nobody(tmp_path: Path) -> None:
    """The cgroup's three processes charge 27,918,336 + 23,724,032 bytes of heap and
    24 leaks of 8 MiB (libpython is page cache charged outside the cgroup): 241.25 MiB.
    Under 96 MiB two are killed; under 192 MiB the leaker still is; under 288 MiB
    (+200 %) nobody."""
    sc = resolve_scenario("memcg-oom").to_dict()
    [group] = sc["cgroup"]
    path = group["path"]
    trace = tmp_path / "memcg-oom.mtrace"
    record("memcg-oom", trace)
    base_kills = records(trace, "oom_kill")
    assert len(base_kills) == 2

    doubled = replay_trace(trace, tmp_path / "x2.mtrace", Overrides.parse(sets=[f"cgroup.{path}.max=+100%"]),
                           memtrace_version=VERSION)
    leaker = summarize_trace(doubled.trace).pids["leaker"]
    assert [k["victim_pid"] for k in records(doubled.trace, "oom_kill")] == [leaker]
    assert "still happens" in diff_traces(trace, doubled.trace).verdict

    raised = replay_trace(trace, tmp_path / "x3.mtrace", Overrides.parse(sets=[f"cgroup.{path}.max=+200%"]),
                          memtrace_version=VERSION)
    assert "oom_kill" not in counts(raised.trace)
    d = diff_traces(trace, raised.trace)
    limit = 96 * MiB
    assert d.changes[f"cgroup.{path}.max"] == (limit, 3 * limit)
    assert d.b.oom_kills == () and len(d.a.oom_kills) == 2
    assert d.verdict == (f"OOM kills of {d.a.oom_kills[0].comm} (pid {d.a.oom_kills[0].pid}) and "
                         f"{d.a.oom_kills[1].comm} (pid {d.a.oom_kills[1].pid}) avoided: "
                         f"the {path} limit is 288 MiB instead of 96 MiB")
    # With nobody killed, AnonPages peaks at exactly the cgroup's heap (the leaker
    # sleeps 10 ms after its last leak, long enough for a meminfo reading).
    assert d.b.memory_peak is not None and d.b.memory_peak.anon == 27_918_336 + 23_724_032 + 24 * 8 * MiB
