"""Replay overrides are validated as the same keys of a scenario file are: the same
bounds, checked before the replay starts, and every error names the override.

(The parsing of ``--set`` and the cgroup table edits are tested in test_replay.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtrace.api import record
from memtrace.errors import ScenarioError, SysctlError
from memtrace.kernel.workload import MachineSpec, ProcessSpec, Scenario, Sleep, scenario_from_dict
from memtrace.replay import Overrides, apply_overrides, merge_sysctls, replay_trace

GiB = 1 << 30
SOURCE = "t.mtrace (recorded workload)"


def workload(**machine: Any) -> dict[str, Any]:
    """A recorded workload map (Scenario.to_dict()) of one sleeping process and one
    cgroup, on a 1 GiB machine unless ``machine`` says otherwise."""
    return scenario_from_dict({
        "name": "t",
        "machine": {"ram": "1GiB", **machine},
        "cgroup": [{"path": "/a", "max": "256MiB"}],
        "process": [{"name": "p", "cgroup": "/a", "steps": [{"op": "sleep", "duration": "1ms"}]}],
    }).to_dict()


def set_error(*sets: str, **machine: Any) -> str:
    with pytest.raises(ScenarioError) as exc:
        apply_overrides(workload(**machine), Overrides.parse(sets=sets), SOURCE)
    return str(exc.value)


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("machine.ram=1000000TiB", "[machine]: key 'ram': 1099511627776000000 is outside 128MiB..256GiB"),
        ("machine.ram=+1000000%", f"[machine]: key 'ram': {GiB * 10001} is outside 128MiB..256GiB"),
        ("machine.ram=64MiB", "[machine]: key 'ram': 67108864 is outside 128MiB..256GiB"),
        ("machine.swap=100TiB", "[machine]: key 'swap': 109951162777600 is outside 0..256GiB"),
        ("machine.swap=1000", "[machine]: key 'swap': 1000 is not a multiple of the page size (4096)"),
        ("machine.time_limit=-1", "[machine]: key 'time_limit': -1 is outside 1ns..86400s"),
        ("machine.time_limit=0", "[machine]: key 'time_limit': 0 is outside 1ns..86400s"),
        ("machine.time_limit=99999999999s", "[machine]: key 'time_limit': 99999999999000000000 is outside 1ns..86400s"),
        ("machine.time_limit=+2301%", "[machine]: key 'time_limit': 86436000000000 is outside 1ns..86400s"),
        ("machine.kernel_version=banana",
         "[machine]: key 'kernel_version': bad kernel version 'banana': expected MAJOR.MINOR[.PATCH], e.g. 6.13"),
        ("machine.kernel_version=99",
         "[machine]: key 'kernel_version': bad kernel version '99': expected MAJOR.MINOR[.PATCH], e.g. 6.13"),
        ("machine.cgroup_version=3", "[machine]: key 'cgroup_version': 3 is not 1 or 2"),
        ("cgroup./a.max=-4096", "cgroup '/a': key 'max': -4096 is outside 0..9223372036854771712"),
        ("cgroup./a.swap_max=1000", ("cgroup '/a': key 'swap_max': 1000 is not a multiple of the page size (4096) "
                                     "(leave swap_max out for no limit)")),
    ],
)
def test_bad_sets_name_the_option_the_key_and_the_bound(option: str, problem: str) -> None:
    """``--set`` values go through the scenario loader's bounds: no MemoryError for
    a huge machine, no negative time limit, no bad kernel version at the first OOM."""
    assert set_error(option) == f"--set {option}: {SOURCE}: {problem}"


def test_relative_values_apply_to_sizes_and_durations_only() -> None:
    assert set_error("machine.cgroup_version=+50%") == (
        "--set machine.cgroup_version=+50%: a relative value applies to a size or a duration "
        "(max, ram, swap, swap_max, time_limit), not to cgroup_version")
    assert set_error("cgroup./a.swap_max=+50%") == (
        "--set cgroup./a.swap_max=+50%: a relative value needs a recorded size, and swap_max is None")


@pytest.mark.parametrize(
    ("option", "machine"),
    [
        ("machine.ram=256GiB", MachineSpec(ram_bytes=256 * GiB)),
        ("machine.ram=128MiB", MachineSpec(ram_bytes=128 << 20)),
        ("machine.ram=+25500%", MachineSpec(ram_bytes=256 * GiB)),
        ("machine.swap=256GiB", MachineSpec(ram_bytes=GiB, swap_bytes=256 * GiB)),
        ("machine.time_limit=86400s", MachineSpec(ram_bytes=GiB, time_limit_ns=86_400 * 10**9)),
        ("machine.time_limit=1", MachineSpec(ram_bytes=GiB, time_limit_ns=1)),
        ("machine.time_limit=+100%", MachineSpec(ram_bytes=GiB, time_limit_ns=7_200 * 10**9)),
        ("machine.time_limit=+2300%", MachineSpec(ram_bytes=GiB, time_limit_ns=86_400 * 10**9)),
        ("machine.kernel_version=2.6.32", MachineSpec(ram_bytes=GiB, kernel_version="2.6.32")),
    ],
)
def test_sets_at_the_bounds_are_accepted(option: str, machine: MachineSpec) -> None:
    """The bounds themselves are accepted; a relative time limit starts from the
    default when the recording left it out."""
    assert apply_overrides(workload(), Overrides.parse(sets=[option]), SOURCE).machine == machine


def test_a_relative_duration_is_not_rounded_to_pages() -> None:
    sc = apply_overrides(workload(time_limit=1_000_000_001), Overrides.parse(sets=["machine.time_limit=+100%"]),
                         SOURCE)
    assert sc.machine.time_limit_ns == 2_000_000_002


def test_a_long_number_is_a_scenario_error() -> None:
    """No int() of thousands of digits: the value stays a string the loader refuses."""
    assert set_error("machine.ram=" + "9" * 5000).startswith(
        f"--set machine.ram={'9' * 5000}: {SOURCE}: [machine]: key 'ram': expected a size such as 4096 or \"64MiB\", "
        "got '9999")


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("vm.swappiness=1_0", "sysctl vm.swappiness: value '1_0' is not an integer (decimal, 0x hex or 0 octal)"),
        ("vm.swappiness=0b101", "sysctl vm.swappiness: value '0b101' is not an integer (decimal, 0x hex or 0 octal)"),
        ("vm.swappiness=\u0661\u0660", ("sysctl vm.swappiness: value '\u0661\u0660' is not an integer "
                                        "(decimal, 0x hex or 0 octal)")),
        ("vm.overcommit_kbytes=4611686018427387904",
         "sysctl vm.overcommit_kbytes: value 4611686018427387904 is outside 0..4503599627370496"),
        ("vm.min_free_kbytes=2147483648", "sysctl vm.min_free_kbytes: value 2147483648 is outside 0..2147483647"),
    ],
)
def test_bad_sysctls_name_the_option(option: str, problem: str) -> None:
    with pytest.raises(SysctlError) as exc:
        merge_sysctls({}, Overrides.parse([option]))
    assert str(exc.value) == f"--sysctl {option}: {problem}"


def test_sysctls_as_the_kernel_reads_them() -> None:
    """Hex and octal are what proc_dointvec() takes; the value is kept as written."""
    merged = merge_sysctls({}, Overrides.parse(["vm.swappiness=0x10", "vm.dirty_ratio=010",
                                                "vm.min_free_kbytes=2147483647"]))
    assert merged == {"vm.dirty_ratio": "010", "vm.min_free_kbytes": "2147483647", "vm.swappiness": "0x10"}


def test_a_refused_replay_touches_no_output(tmp_path: Path) -> None:
    """Overrides are checked before the replay opens its output."""
    trace = tmp_path / "t.mtrace"
    record(Scenario(name="t", machine=MachineSpec(ram_bytes=GiB),
                    processes=(ProcessSpec("p", steps=(Sleep(duration_ns=1000),)),)), trace)
    out = tmp_path / "o.mtrace"
    for sets, sysctls in ((["machine.ram=1000000TiB"], []), (["machine.kernel_version=banana"], []),
                          (["machine.time_limit=-1"], []), ([], ["vm.swappiness=1_0"])):
        with pytest.raises((ScenarioError, SysctlError)):
            replay_trace(trace, out, Overrides.parse(sysctls, sets))
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.mtrace"]
