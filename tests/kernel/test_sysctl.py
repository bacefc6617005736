"""The vm.* sysctls: each one's kernel range, values read as proc_dointvec() reads
them, scenario sysctls checked at load, CommitLimit at the largest settings, and a
new sysctl picked up everywhere from its one definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.api import record
from memtrace.errors import SysctlError
from memtrace.kernel.sysctl import SYSCTL_DEFS, SysctlDef, Sysctls, parse_proc_long
from memtrace.kernel.workload import scenario_from_dict
from memtrace.replay import Overrides, merge_sysctls
from memtrace.tracer.tracefile import TraceReader

from ..conftest import GiB, run
from .workload.helpers import SLEEP, proc, scenario

#: Each sysctl's range: the kernel's extra1/extra2 or its C type (mm/*.c, 6.13),
#: and overcommit_kbytes capped at 2^52 kB so that CommitLimit in bytes fits int64.
KERNEL_RANGES = {
    "vm.overcommit_memory": (0, 2),
    "vm.overcommit_ratio": (0, 2**31 - 1),
    "vm.overcommit_kbytes": (0, 2**52),
    "vm.admin_reserve_kbytes": (0, 2**64 - 1),
    "vm.user_reserve_kbytes": (0, 2**64 - 1),
    "vm.min_free_kbytes": (0, 2**31 - 1),
    "vm.watermark_scale_factor": (1, 3000),
    "vm.swappiness": (0, 200),
    "vm.vfs_cache_pressure": (0, 2**31 - 1),
    "vm.dirty_ratio": (0, 100),
    "vm.dirty_background_ratio": (0, 100),
    "vm.dirty_expire_centisecs": (0, 2**31 - 1),
    "vm.dirty_writeback_centisecs": (0, 2**31 - 1),
    "vm.panic_on_oom": (0, 2),
    "vm.oom_kill_allocating_task": (0, 1),
    "vm.oom_dump_tasks": (0, 1),
}


def test_every_sysctl_has_its_range() -> None:
    assert sorted(SYSCTL_DEFS) == sorted(KERNEL_RANGES)


@pytest.mark.parametrize("name", sorted(KERNEL_RANGES))
def test_sysctl_ranges(name: str) -> None:
    low, high = KERNEL_RANGES[name]
    assert Sysctls().check(name, low) == (name, low)
    assert Sysctls().check(name, str(high)) == (name, high)
    for bad in (low - 1, high + 1):
        with pytest.raises(SysctlError) as exc:
            Sysctls().check(name, bad)
        assert str(exc.value) == f"sysctl {name}: value {bad} is outside {low}..{high}"


@pytest.mark.parametrize(
    ("text", "value"),
    [("10", 10), ("-1", -1), ("0", 0), ("-0", 0), ("0x1f", 31), ("0X1F", 31), ("010", 8), (" 7\n", 7),
     ("18446744073709551615", 2**64 - 1), ("-9223372036854775808", -(2**63))],
)
def test_sysctl_values_read_as_the_kernel_reads_them(text: str, value: int) -> None:
    """proc_get_long(): an optional '-', then strtoul() with base 0 (0x hex, 0 octal)."""
    assert parse_proc_long(text) == value


@pytest.mark.parametrize("text", ["1_0", "\u0663", "\uff11", "0b101", "+1", "1e3", "0x", "08", "", "-", "--1", "1.0",
                                  "0x1g"])
def test_sysctl_values_the_kernel_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not an integer \(decimal, 0x hex or 0 octal\)$"):
        parse_proc_long(text)


def test_sysctl_values_longer_than_the_kernel_reads() -> None:
    """TMPBUFLEN is 22: 21 characters of digits are refused whatever they say."""
    with pytest.raises(ValueError, match="is longer than the 20 characters the kernel reads"):
        parse_proc_long("000000000000000000001")


def test_scenario_sysctls_are_checked_at_load() -> None:
    with pytest.raises(SysctlError) as exc:
        scenario_from_dict(scenario(proc("p", SLEEP), sysctl={"vm.swappiness": "1_0"}), "s.toml")
    assert str(exc.value) == ("s.toml: [sysctl]: sysctl vm.swappiness: value '1_0' is not an integer "
                              "(decimal, 0x hex or 0 octal)")
    with pytest.raises(SysctlError) as exc:
        scenario_from_dict(scenario(proc("p", SLEEP), sysctl={"vm": {"overcommit_kbytes": 2**62}}), "s.toml")
    assert str(exc.value) == ("s.toml: [sysctl]: sysctl vm.overcommit_kbytes: value 4611686018427387904 "
                              "is outside 0..4503599627370496")
    sc = scenario_from_dict(scenario(proc("p", SLEEP), sysctl={"vm.swappiness": "0x10", "vm.dirty_ratio": "010"}))
    assert dict(sc.sysctls) == {"vm.swappiness": "0x10", "vm.dirty_ratio": "010"}


def test_commit_limit_at_the_largest_overcommit_settings() -> None:
    """CommitLimit = overcommit_kbytes / 4 pages, or totalram * ratio / 100 pages,
    plus swap (mm/util.c vm_commit_limit()); at the largest values it still fits the
    trace's 64-bit columns."""
    kbytes = scenario_from_dict(scenario(proc("p", {"op": "snapshot", "label": "a"}),
                                         sysctl={"vm.overcommit_kbytes": 2**52, "vm.overcommit_memory": 2}))
    _, result, _ = run(kbytes)
    assert result.snapshots[0].meminfo["CommitLimit"] == 2**52 * 1024
    ratio = scenario_from_dict(scenario(proc("p", {"op": "snapshot", "label": "a"}),
                                        machine={"ram": "256GiB", "swap": "256GiB", "time_limit": "1s"},
                                        sysctl={"vm.overcommit_ratio": 2**31 - 1, "vm.overcommit_memory": 2}))
    k, result, _ = run(ratio)
    expected = (k.alloc.totalram_pages * (2**31 - 1) // 100 + 256 * GiB // 4096) * 4096
    assert result.snapshots[0].meminfo["CommitLimit"] == expected < 2**63


def test_a_new_sysctl_needs_only_its_definition(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A sysctl added to the one table is checked by scenario validation, taken by
    ``record --sysctl`` and ``replay --sysctl``, set at boot and recorded in the
    trace header, with no other edit (the kernel code that reads it aside)."""
    knob = SysctlDef("vm.test_knob", 7, 0, 9, "a sysctl that exists only in this test")
    monkeypatch.setitem(SYSCTL_DEFS, knob.name, knob)
    assert Sysctls()["test_knob"] == 7
    sc = scenario_from_dict(scenario(proc("p", SLEEP), sysctl={"vm.test_knob": 3}), "s.toml")
    with pytest.raises(SysctlError) as exc:
        scenario_from_dict(scenario(proc("p", SLEEP), sysctl={"vm": {"test_knob": 10}}), "s.toml")
    assert str(exc.value) == "s.toml: [sysctl]: sysctl vm.test_knob: value 10 is outside 0..9"
    _, result, events = run(sc, overrides={"test_knob": "5"})
    assert result.sysctls["vm.test_knob"] == 5
    assert [(r.fields["name"], r.fields["value"]) for r in events.records("sysctl_set")] == [("vm.test_knob", "5")]
    trace = tmp_path / "knob.mtrace"
    record(sc, trace, sysctls={"vm.test_knob": 4})
    meta = TraceReader(trace).meta
    assert (meta["sysctl"]["vm.test_knob"], meta["sysctl_overrides"]) == (4, {"vm.test_knob": "4"})
    assert merge_sysctls(meta["sysctl_overrides"], Overrides.parse(["test_knob=0x9"])) == {"vm.test_knob": "0x9"}
    with pytest.raises(SysctlError) as exc:
        merge_sysctls({}, Overrides.parse(["vm.test_knob=12"]))
    assert str(exc.value) == "--sysctl vm.test_knob=12: sysctl vm.test_knob: value 12 is outside 0..9"
