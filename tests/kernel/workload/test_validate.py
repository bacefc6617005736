"""Validating scenarios: bounds, names, paths, repeats, forks, waits and handles,
for scenarios from TOML and from Python alike, before anything runs."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from memtrace.api import record
from memtrace.errors import ScenarioError
from memtrace.kernel.workload import (
    MAX_REPEAT_COUNT,
    MAX_REPEAT_DEPTH,
    Fork,
    MachineSpec,
    Mmap,
    ProcessSpec,
    Repeat,
    Scenario,
    Sleep,
    Snapshot,
    Touch,
    Wait,
    scenario_from_dict,
    validate,
)

from ...conftest import BUILTINS, run
from .helpers import MMAP_BUF, SLEEP, GiB, MiB, error_of, proc, scenario

# --------------------------------------------------------------------------- handles and waits


def test_touch_before_mmap_is_refused() -> None:
    err = error_of(scenario(proc("p", {"op": "snapshot", "label": "a"}, {"op": "sync"},
                                 {"op": "touch", "handle": "buf"}, MMAP_BUF)))
    assert err == "s.toml: process 'p' step 3: key 'handle': no mapping 'buf' is created before this step"


@pytest.mark.parametrize("op", ["touch", "munmap", "shmdt"])
def test_handle_typo_is_refused(op: str) -> None:
    err = error_of(scenario(proc("p", MMAP_BUF, {"op": op, "handle": "bfu"})))
    assert err == "s.toml: process 'p' step 2: key 'handle': no mapping 'bfu' is created before this step"


def test_handles_of_mmap_shmat_and_brk() -> None:
    """mmap and shmat create their handle; brk creates ``heap``."""
    sc = scenario_from_dict(scenario(proc(
        "p",
        MMAP_BUF,
        {"op": "touch", "handle": "buf", "write": True},
        {"op": "shmget", "segment": "seg", "size": "1MiB"},
        {"op": "shmat", "segment": "seg", "handle": "shm"},
        {"op": "touch", "handle": "shm"},
        {"op": "shmdt", "handle": "shm"},
        {"op": "brk", "increment": "64k"},
        {"op": "touch", "handle": "heap"},
        {"op": "munmap", "handle": "buf"},
        {"op": "touch", "handle": "buf"},  # after munmap: a SIGSEGV at run time, statically fine
    )))
    assert len(sc.process("p").steps) == 10


def test_forked_child_inherits_handles_created_before_the_fork() -> None:
    ok = scenario(
        proc("parent", MMAP_BUF, {"op": "fork", "child": "child"}, {"op": "wait", "child": "child"}),
        proc("child", {"op": "touch", "handle": "buf", "write": True}, forked=True),
    )
    assert scenario_from_dict(ok).process("child").forked
    late = scenario(
        proc("parent", {"op": "fork", "child": "child"}, MMAP_BUF),
        proc("child", {"op": "touch", "handle": "buf"}, forked=True),
    )
    assert error_of(late) == ("s.toml: process 'child' step 1: key 'handle': "
                              "no mapping 'buf' is created before this step")


def test_grandchild_inherits_through_its_parent() -> None:
    """Handles pass down a chain of forks, each at its own fork point; the child's
    own mappings count too."""
    data = scenario(
        proc("a", MMAP_BUF, {"op": "fork", "child": "b"}),
        proc("b", {"op": "mmap", "handle": "own", "length": 4096}, {"op": "fork", "child": "c"}, forked=True),
        proc("c", {"op": "touch", "handle": "buf"}, {"op": "touch", "handle": "own"}, forked=True),
    )
    scenario_from_dict(data)
    data["process"][2]["steps"].append({"op": "touch", "handle": "later"})
    data["process"][1]["steps"].append({"op": "mmap", "handle": "later", "length": 4096})
    assert error_of(data) == ("s.toml: process 'c' step 3: key 'handle': "
                              "no mapping 'later' is created before this step")


def test_forked_processes_that_never_start() -> None:
    """Two forked processes forking each other: neither ever runs."""
    data = scenario(
        proc("p", {"op": "sync"}),
        proc("x", {"op": "fork", "child": "y"}, forked=True),
        proc("y", {"op": "fork", "child": "x"}, forked=True),
    )
    assert error_of(data) == "s.toml: process 'x' never starts: process 'y', which forks it, never starts"


def test_wait_needs_a_child_forked_earlier() -> None:
    before = scenario(
        proc("p", {"op": "wait", "child": "c"}, {"op": "fork", "child": "c"}),
        proc("c", {"op": "sync"}, forked=True),
    )
    assert error_of(before) == ("s.toml: process 'p' step 1: key 'child': "
                                "process 'c' is not forked by 'p' before this step")


def test_wait_needs_its_own_child() -> None:
    other = scenario(
        proc("p", {"op": "fork", "child": "c"}),
        proc("q", {"op": "sleep", "duration": "1ms"}, {"op": "wait", "child": "c"}),
        proc("c", {"op": "sync"}, forked=True),
    )
    assert error_of(other) == ("s.toml: process 'q' step 2: key 'child': "
                               "process 'c' is not forked by 'q' before this step")
    not_forked = scenario(proc("p", {"op": "wait", "child": "q"}), proc("q", {"op": "sync"}))
    assert error_of(not_forked) == ("s.toml: process 'p' step 1: key 'child': "
                                    "process 'q' is not forked by 'p' before this step")
    unknown = scenario(proc("p", {"op": "wait", "child": "z"}))
    assert error_of(unknown) == "s.toml: process 'p' step 1: key 'child': no process named 'z'"


def test_validate_checks_python_built_scenarios() -> None:
    """Scenarios built in Python get the same cross-checks through validate()."""
    sc = Scenario(name="py", processes=(ProcessSpec("p", steps=(Touch(handle="buf"),)),))
    with pytest.raises(ScenarioError, match=r"^<python>: process 'p' step 1: key 'handle': no mapping 'buf'"):
        validate(sc)
    sc = Scenario(name="py", processes=(
        ProcessSpec("p", steps=(Mmap(handle="buf", length_bytes=4096), Fork(child="c"), Wait(child="c"))),
        ProcessSpec("c", steps=(Touch(handle="buf", write=True), Snapshot(label="x")), forked=True),
    ))
    validate(sc)


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(proc("p", SLEEP), machine={"ram": "257GiB"}),
         "s.toml: [machine]: key 'ram': 275951648768 is outside 128MiB..256GiB"),
        (scenario(proc("p", SLEEP), machine={"ram": "64TiB"}),
         "s.toml: [machine]: key 'ram': 70368744177664 is outside 128MiB..256GiB"),
        (scenario(proc("p", SLEEP), machine={"ram": "64MiB"}),
         "s.toml: [machine]: key 'ram': 67108864 is outside 128MiB..256GiB"),
        (scenario(proc("p", SLEEP), machine={"ram": 134221824 + 1}),
         "s.toml: [machine]: key 'ram': 134221825 is not a multiple of the page size (4096)"),
        (scenario(proc("p", SLEEP), machine={"swap": "100TiB"}),
         "s.toml: [machine]: key 'swap': 109951162777600 is outside 0..256GiB"),
        (scenario(proc("p", SLEEP), machine={"swap": "-4k"}),
         "s.toml: [machine]: key 'swap': -4096 is outside 0..256GiB"),
        (scenario(proc("p", SLEEP), machine={"time_limit": "-1s"}),
         "s.toml: [machine]: key 'time_limit': -1000000000 is outside 1ns..86400s"),
        (scenario(proc("p", SLEEP), machine={"time_limit": 0}),
         "s.toml: [machine]: key 'time_limit': 0 is outside 1ns..86400s"),
        (scenario(proc("p", SLEEP), machine={"time_limit": "86401s"}),
         "s.toml: [machine]: key 'time_limit': 86401000000000 is outside 1ns..86400s"),
        (scenario(proc("p", SLEEP, start="99999999999s")),
         "s.toml: process 'p': key 'start': 99999999999000000000 is outside 0..86400s"),
        (scenario(proc("p", SLEEP, uid=-5)), "s.toml: process 'p': key 'uid': -5 is outside 0..4294967294"),
        (scenario(proc("p", SLEEP, uid=2**32 - 1)),
         "s.toml: process 'p': key 'uid': 4294967295 is outside 0..4294967294"),
        (scenario(proc("p", {"op": "exit", "code": 99999999999})),
         "s.toml: process 'p' step 1: key 'code': 99999999999 is outside 0..255"),
        (scenario(proc("p", {"op": "exit", "code": 256})),
         "s.toml: process 'p' step 1: key 'code': 256 is outside 0..255"),
        (scenario(proc("p", {"op": "exit", "code": -1})),
         "s.toml: process 'p' step 1: key 'code': -1 is outside 0..255"),
        (scenario(proc("p", {"op": "sleep", "duration": "86400001ms"})),
         "s.toml: process 'p' step 1: key 'duration': 86400001000000 is outside 0..86400s"),
        (scenario(proc("p", {"op": "mmap", "handle": "b", "length": 2**64})),
         "s.toml: process 'p' step 1: key 'length': 18446744073709551616 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "mmap", "handle": "b", "length": "256GiB", "file": "/f", "offset": "4k"}),
                  file=[{"path": "/f", "size": "4k"}]),
         "s.toml: process 'p' step 1: key 'length': offset + length = 274877911040 is beyond 256GiB"),
        (scenario(proc("p", {"op": "write", "file": "/tmp/f", "offset": "1000TiB", "length": 4096})),
         "s.toml: process 'p' step 1: key 'offset': 1099511627776000 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "write", "file": "/tmp/f", "offset": "255GiB", "length": "2GiB"})),
         "s.toml: process 'p' step 1: key 'length': offset + length = 275951648768 is beyond 256GiB"),
        (scenario(proc("p", {"op": "read", "file": "/f", "length": "257GiB"}), file=[{"path": "/f", "size": "4k"}]),
         "s.toml: process 'p' step 1: key 'length': 275951648768 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "ftruncate", "file": "/dev/shm/x", "size": "1TiB"})),
         "s.toml: process 'p' step 1: key 'size': 1099511627776 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "shmget", "segment": "s", "size": "1TiB"})),
         "s.toml: process 'p' step 1: key 'size': 1099511627776 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "brk", "increment": "257GiB"})),
         "s.toml: process 'p' step 1: key 'increment': 275951648768 is outside -256GiB..256GiB"),
        (scenario(proc("p", SLEEP), file=[{"path": "/f", "size": "1000TiB"}]),
         "s.toml: file '/f': key 'size': 1099511627776000 is outside 0..256GiB"),
        (scenario(proc("p", SLEEP), cgroup=[{"path": "/a", "max": 2**63}]),
         "s.toml: cgroup '/a': key 'max': 9223372036854775808 is outside 0..9223372036854771712"),
        (scenario(proc("p", SLEEP), cgroup=[{"path": "/a", "swap_max": "-4k"}]),
         ("s.toml: cgroup '/a': key 'swap_max': -4096 is outside 0..9223372036854771712 "
          "(leave swap_max out for no limit)")),
        (scenario(proc("p", SLEEP), cgroup=[{"path": "/a", "swap_max": 1000}]),
         ("s.toml: cgroup '/a': key 'swap_max': 1000 is not a multiple of the page size (4096) "
          "(leave swap_max out for no limit)")),
    ],
    ids=["ram-257GiB", "ram-64TiB", "ram-64MiB", "ram-odd", "swap-100TiB", "swap-negative", "time-limit-negative",
         "time-limit-zero", "time-limit-day", "start", "uid-negative", "uid-minus-one", "exit-huge", "exit-256",
         "exit-negative", "sleep", "length-2**64", "mmap-file-end", "write-offset", "write-end", "read-length",
         "ftruncate", "shmget", "brk", "file-size", "cgroup-max", "swap-max-negative", "swap-max-odd"],
)
def test_values_beyond_their_bounds(data: dict[str, Any], message: str) -> None:
    """Every number is bounded at load: by the kernel's own limit (uid_t, the 8-bit
    exit status) or by what the simulator holds (RAM, swap, sizes, times), and the
    message names the key and the bound."""
    assert error_of(data) == message


def test_values_at_their_bounds_load() -> None:
    """The bounds themselves are accepted."""
    end = 256 * GiB - 4096
    sc = scenario_from_dict(scenario(
        proc("p",
             {"op": "mmap", "handle": "b", "length": "256GiB", "noreserve": True},
             {"op": "mmap", "handle": "f", "length": "4k", "file": "/f", "offset": end},
             {"op": "write", "file": "/tmp/w", "offset": end, "length": 4096},
             {"op": "read", "file": "/f", "offset": "255GiB", "length": "1GiB"},
             {"op": "ftruncate", "file": "/dev/shm/x", "size": "256GiB"},
             {"op": "shmget", "segment": "s", "size": "256GiB"},
             {"op": "brk", "increment": "256GiB"},
             {"op": "brk", "increment": "-256GiB"},
             {"op": "sleep", "duration": "86400s"},
             {"op": "exit", "code": 255},
             uid=2**32 - 2, start="86400s"),
        proc("q", {"op": "exit", "code": 0}, uid=0, start=0),
        machine={"ram": "256GiB", "swap": "256GiB", "time_limit": "86400s"},
        file=[{"path": "/f", "size": "256GiB"}],
        cgroup=[{"path": "/a", "max": 2**63 - 4096, "swap_max": 2**63 - 4096}, {"path": "/b", "swap_max": 0},
                {"path": "/c", "swap_max": -1}],
    ))
    assert sc.machine == MachineSpec(ram_bytes=256 * GiB, swap_bytes=256 * GiB, time_limit_ns=86_400 * 10**9)
    assert [c.swap_max_bytes for c in sc.cgroups] == [2**63 - 4096, 0, -1]
    assert scenario_from_dict(scenario(proc("p", SLEEP), machine={"ram": "128MiB", "time_limit": 1})).machine == (
        MachineSpec(ram_bytes=128 * MiB, time_limit_ns=1))


@pytest.mark.parametrize(("ram", "swap"), [("128MiB", 0), ("256GiB", 0), ("128MiB", "256GiB")])
def test_machines_at_the_bounds_run(ram: str, swap: Any) -> None:
    """The smallest and largest machines boot and run (the kernel takes 48 MiB, so
    at 64 MiB nothing would be left to manage)."""
    sc = scenario_from_dict(scenario(proc("p", {"op": "snapshot", "label": "boot"}, {"op": "exit", "code": 255},
                                          uid=2**32 - 2),
                                     machine={"ram": ram, "swap": swap, "time_limit": "1s"}))
    _k, result, events = run(sc)
    assert result.errors == []
    assert result.snapshots[0].meminfo["SwapTotal"] == sc.machine.swap_bytes
    assert [int(r.fields["uid"]) for r in events.records("process_start")] == [2**32 - 2]
    assert [int(r.fields["code"]) for r in events.records("exit")] == [255]


def test_too_many_cgroups() -> None:
    """memcg ids are int16 in the simulator: the root and 32766 more."""
    many = [{"path": f"/c{i}"} for i in range(32767)]
    assert error_of(scenario(proc("p", SLEEP), cgroup=many)) == "s.toml: 32767 cgroups, more than 32766"
    assert len(scenario_from_dict(scenario(proc("p", SLEEP), cgroup=many[:-1])).cgroups) == 32766


# --------------------------------------------------------------------------- kernel version


@pytest.mark.parametrize("bad", ["banana", "99", "", "v6.13", ".13"])
def test_kernel_version_is_checked_at_load(bad: str) -> None:
    """The OOM killer parses kernel_version at the first OOM; a bad one is refused
    when the scenario loads instead."""
    assert error_of(scenario(proc("p", SLEEP), machine={"kernel_version": bad})) == (
        f"s.toml: [machine]: key 'kernel_version': bad kernel version {bad!r}: "
        "expected MAJOR.MINOR[.PATCH], e.g. 6.13")


@pytest.mark.parametrize("good", ["2.6.32", "6.13", "6.18.44-fc-v669", "4.19.0"])
def test_kernel_versions_that_load(good: str) -> None:
    sc = scenario_from_dict(scenario(proc("p", SLEEP), machine={"kernel_version": good}))
    assert sc.machine.kernel_version == good


# --------------------------------------------------------------------------- names and paths


@pytest.mark.parametrize("bad", ["../escaped", "", ".hidden", "-rf", "a/b", "a b", "x" * 129, "naïve"])
def test_scenario_names_are_file_names(bad: str) -> None:
    """The name is the default trace file (NAME.mtrace): no slash, no dot or dash
    first, a safe charset."""
    shown = repr(bad) if len(bad) < 50 else repr(bad)[:57] + "..."
    assert error_of(scenario(proc("p", SLEEP), name=bad)) == (
        f"s.toml: key 'name': {shown} is not a scenario name: 1 to 128 letters, digits, '.', '_' or '-', "
        "not starting with '.' or '-'")


@pytest.mark.parametrize("good", ["oom-leak", "a", "v1.2_x", "_x", "9", "x" * 128, *BUILTINS])
def test_scenario_names_that_load(good: str) -> None:
    assert scenario_from_dict(scenario(proc("p", SLEEP), name=good)).name == good


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(proc("p", SLEEP), file=[{"path": "", "size": 4096}]),
         "s.toml: file '': key 'path': '' is not an absolute file path such as /data/f"),
        (scenario(proc("p", SLEEP), file=[{"path": "rel/x", "size": 4096}]),
         "s.toml: file 'rel/x': key 'path': 'rel/x' is not an absolute file path such as /data/f"),
        (scenario(proc("p", SLEEP), file=[{"path": "/data/", "size": 4096}]),
         "s.toml: file '/data/': key 'path': '/data/' is not an absolute file path such as /data/f"),
        (scenario(proc("p", SLEEP), file=[{"path": "/tmp/x", "size": 4096}]),
         "s.toml: file '/tmp/x': key 'path': tmpfs files are made by write steps"),
        (scenario(proc("p", SLEEP), file=[{"path": "/d/x", "size": 4096}, {"path": "/d/x", "size": 0}]),
         "s.toml: file '/d/x': key 'path': declared twice"),
        (scenario(proc("p", {"op": "read", "file": "data/x"})),
         "s.toml: process 'p' step 1: key 'file': 'data/x' is not an absolute file path such as /data/f"),
        (scenario(proc("p", {"op": "unlink", "file": ""})),
         "s.toml: process 'p' step 1: key 'file': '' is not an absolute file path such as /data/f"),
        (scenario(proc("p", {"op": "mmap", "handle": "m", "length": 4096, "file": "x"})),
         "s.toml: process 'p' step 1: key 'file': 'x' is not an absolute file path such as /data/f"),
    ],
    ids=["empty", "relative", "directory", "tmpfs", "twice", "read-relative", "unlink-empty", "mmap-relative"],
)
def test_file_paths(data: dict[str, Any], message: str) -> None:
    """File paths are absolute; boot-time files are on disk and declared once (checked
    at load, not when the run has started)."""
    assert error_of(data) == message


# --------------------------------------------------------------------------- repeats


def repeats(depth: int) -> dict[str, Any]:
    """``depth`` repeats nested in one another around a 1 ns sleep."""
    step: dict[str, Any] = {"op": "sleep", "duration": 1}
    for _ in range(depth):
        step = {"op": "repeat", "count": 1, "steps": [step]}
    return step


def test_repeats_nest_at_most_max_depth() -> None:
    scenario_from_dict(scenario(proc("p", repeats(MAX_REPEAT_DEPTH))))
    number = "1" + ".1" * MAX_REPEAT_DEPTH
    assert error_of(scenario(proc("p", repeats(MAX_REPEAT_DEPTH + 1)))) == (
        f"s.toml: process 'p' step {number}: key 'steps': repeats nest more than 16 deep")
    deep: Any = Sleep(duration_ns=1)
    for _ in range(MAX_REPEAT_DEPTH + 1):
        deep = Repeat(steps=(deep,), count=1)
    with pytest.raises(ScenarioError, match=r"^<python>: process 'p' step 1(\.1){16}: key 'steps': repeats nest"):
        validate(Scenario(name="py", processes=(ProcessSpec("p", steps=(deep,)),)))


def test_repeat_counts_are_bounded() -> None:
    """At most MAX_REPEAT_COUNT iterations, nested counts multiplied."""
    def rep(count: int, *steps: dict[str, Any]) -> dict[str, Any]:
        return {"op": "repeat", "count": count, "steps": list(steps)}

    assert MAX_REPEAT_COUNT == 1_000_000
    assert error_of(scenario(proc("p", rep(1_000_000_000, {"op": "snapshot", "label": "s{i}"})))) == (
        "s.toml: process 'p' step 1: key 'count': 1000000000 is outside 0..1000000")
    assert error_of(scenario(proc("p", rep(-1, SLEEP)))) == (
        "s.toml: process 'p' step 1: key 'count': -1 is outside 0..1000000")
    assert error_of(scenario(proc("p", SLEEP, rep(1000, rep(1001, SLEEP))))) == (
        "s.toml: process 'p' step 2.1: key 'count': 1001 iterations inside repeats of 1000 make 1001000, "
        "more than 1000000")
    scenario_from_dict(scenario(proc("p", rep(1_000_000, SLEEP), rep(1000, rep(1000, SLEEP)),
                                     rep(0, rep(1_000_000, SLEEP)))))


@pytest.mark.parametrize(
    "body",
    [
        [{"op": "sleep", "duration": 0}],
        [{"op": "snapshot", "label": "s{i}"}],
        [{"op": "sync"}, {"op": "drop_caches", "value": 3}],
        [{"op": "repeat", "count": 3, "steps": [{"op": "snapshot", "label": "a{i}"}]}, {"op": "sleep", "duration": 0}],
    ],
    ids=["sleep-0", "snapshot", "sync-drop-caches", "nested"],
)
def test_count_zero_needs_a_step_that_takes_time(body: list[dict[str, Any]]) -> None:
    """count = 0 repeats until the process ends; steps that take no simulated time
    would repeat for ever at the same instant."""
    assert error_of(scenario(proc("p", {"op": "repeat", "count": 0, "steps": body}))) == (
        "s.toml: process 'p' step 1: key 'count': a count = 0 repeat runs until the process ends, but its steps "
        "(snapshot, sync, drop_caches or sleep 0 only) take no simulated time: give a count of 1..1000000 or add "
        "a sleep")
    scenario_from_dict(scenario(proc("p", {"op": "repeat", "count": 0, "steps": [*body, SLEEP]})))
    scenario_from_dict(scenario(proc("p", {"op": "repeat", "count": 5, "steps": body})))


# --------------------------------------------------------------------------- before the run


def test_python_scenarios_are_validated_before_they_run() -> None:
    """run_scenario() validates a scenario built in Python, so bounds hold for the
    API too (64 TiB of RAM would be a MemoryError)."""
    sc = Scenario(name="py", machine=MachineSpec(ram_bytes=64 << 40), processes=(ProcessSpec("p", steps=()),))
    with pytest.raises(ScenarioError, match=r"^<python>: \[machine\]: key 'ram': 70368744177664 is outside"):
        run(sc)


def test_a_refused_scenario_touches_no_trace(tmp_path: Path) -> None:
    """Errors come at load, before the trace file is opened: a new file is not
    created and an old one keeps its bytes."""
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[machine]\nkernel_version = "banana"\n'
                    '[[process]]\nname = "p"\nsteps = [ { op = "sync" } ]\n')
    new = tmp_path / "new.mtrace"
    with pytest.raises(ScenarioError, match="kernel_version"):
        record(str(path), new)
    assert not new.exists()
    old = tmp_path / "old.mtrace"
    old.write_bytes(b"keep me")
    with pytest.raises(ScenarioError, match="kernel_version"):
        record(str(path), old)
    assert old.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "old.mtrace"]


# --------------------------------------------------------------------------- size


def test_of_several_unknown_handles_the_first_process_to_start_is_named() -> None:
    """Processes start in breadth-first order (those at boot in order, then the
    children they fork): 'c' starts before 'b', which 'a' forks, so 'c' is named."""
    data = scenario(
        proc("a", {"op": "fork", "child": "b"}, {"op": "touch", "handle": "late"}, MMAP_BUF),
        proc("b", {"op": "touch", "handle": "x"}, forked=True),
        proc("c", SLEEP, {"op": "touch", "handle": "y"}),
    )
    assert error_of(data) == "s.toml: process 'a' step 2: key 'handle': no mapping 'late' is created before this step"
    data["process"][0]["steps"].pop(1)
    assert error_of(data) == "s.toml: process 'c' step 2: key 'handle': no mapping 'y' is created before this step"
    data["process"][2]["steps"].pop()
    assert error_of(data) == "s.toml: process 'b' step 1: key 'handle': no mapping 'x' is created before this step"


def counted_names() -> tuple[type[str], list[int]]:
    """A str type whose hashes and comparisons are counted in the returned list:
    process names, children and handles made of it show how often validation
    looks a name up."""
    ops = [0]

    class Name(str):
        __slots__ = ()

        def __hash__(self) -> int:
            ops[0] += 1
            return str.__hash__(self)

        def __eq__(self, other: object) -> bool:
            ops[0] += 1
            return str.__eq__(self, other)

        def __ne__(self, other: object) -> bool:
            ops[0] += 1
            return str.__ne__(self, other)

    return Name, ops


def family(n: int, name: type[str] = str) -> Scenario:
    """``n`` parents at boot, each mapping ``buf`` and forking, waiting for and
    exiting after a child that touches ``buf``: 2n processes, 6n steps."""
    processes: list[ProcessSpec] = []
    for i in range(n):
        child = name(f"child-{i}")
        processes.append(ProcessSpec(name(f"parent-{i}"), steps=(
            Mmap(handle=name("buf"), length_bytes=4096), Fork(child=child), Wait(child=child), Snapshot(label="x"))))
        processes.append(ProcessSpec(child, steps=(Touch(handle=name("buf")), Sleep(duration_ns=1)), forked=True))
    return Scenario(name="family", processes=tuple(processes))


def test_validation_looks_each_name_up_a_bounded_number_of_times() -> None:
    """No work per pair of processes: every name is hashed or compared a bounded
    number of times per process and step, however many processes there are
    (comparing each name with every other would take (2n)^2 / 2 operations)."""
    Name, ops = counted_names()
    for n in (500, 2000):
        ops[0] = 0
        validate(family(n, Name))
        assert ops[0] <= 8 * 8 * n  # at most 8 per process and step; 2n processes + 6n steps
        assert ops[0] >= 8 * n  # the names were counted: a check that counts nothing proves nothing


def test_handles_are_not_copied_per_fork() -> None:
    """A parent with n mappings forking n children: the handles the children
    inherit are kept once on the walk of the fork tree, not copied per fork, so
    the memory validation takes grows with n, not n^2."""
    def peak_bytes(n: int) -> int:
        parent = ProcessSpec("parent", steps=(*(Mmap(handle=f"m{i}", length_bytes=4096) for i in range(n)),
                                               *(Fork(child=f"c{i}") for i in range(n))))
        children = tuple(ProcessSpec(f"c{i}", steps=(Touch(handle=f"m{i}"),), forked=True) for i in range(n))
        sc = Scenario(name="wide", processes=(parent, *children))
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            validate(sc)
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            if started:
                tracemalloc.stop()

    small, large = peak_bytes(500), peak_bytes(2000)
    assert large < 8 * small  # 4 times the processes: about 4 times the memory (16 for a copy per fork)


@pytest.mark.slow
def test_forty_thousand_processes_validate() -> None:
    """The scenario of issue 14: 40,000 processes, a chain of forks each child
    inheriting its parent's mapping, the last naming a mapping nobody created.
    Quadratic lookups took 106 s to reach that error; it comes after one pass."""
    n = 40_000
    processes = [ProcessSpec("p0", steps=(Mmap(handle="buf", length_bytes=4096), Fork(child="p1")))]
    for i in range(1, n - 1):
        processes.append(ProcessSpec(f"p{i}", steps=(Touch(handle="buf"), Fork(child=f"p{i + 1}"), Wait(child=f"p{i + 1}")),
                                     forked=True))
    processes.append(ProcessSpec(f"p{n - 1}", steps=(Touch(handle="buf"), Touch(handle="nobuf")), forked=True))
    sc = Scenario(name="many", processes=tuple(processes))
    with pytest.raises(ScenarioError) as exc:
        validate(sc)
    assert str(exc.value) == ("<python>: process 'p39999' step 2: key 'handle': "
                              "no mapping 'nobuf' is created before this step")
    validate(dataclasses.replace(sc, processes=(*processes[:-1], ProcessSpec(f"p{n - 1}", steps=(Touch(handle="buf"),),
                                                                              forked=True))))
