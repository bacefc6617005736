"""The workload model: size and duration parsing, loading and validating
scenarios, and the TOML round trip of every built-in scenario."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from memtrace.api import record
from memtrace.errors import ScenarioError, SysctlError
from memtrace.kernel.sysctl import SYSCTL_DEFS, Sysctls, parse_proc_long
from memtrace.kernel.workload import (
    MAX_REPEAT_COUNT,
    MAX_REPEAT_DEPTH,
    STEP_TYPES,
    Brk,
    FileSpec,
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
    builtin_dir,
    builtin_names,
    load_scenario,
    resolve_scenario,
    scenario_from_dict,
    step_from_dict,
    step_to_dict,
    validate,
)
from memtrace.units import parse_duration, parse_size

from ..conftest import BUILTINS, run

MiB = 1 << 20
GiB = 1 << 30



def scenario(*processes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """TOML-shaped data of a scenario with ``processes``."""
    return {"name": "t", **top, "process": list(processes)}


def proc(name: str, *steps: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"name": name, **keys, "steps": list(steps)}


def error_of(data: dict[str, Any], source: str = "s.toml") -> str:
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data, source)
    return str(exc.value)


MMAP_BUF = {"op": "mmap", "handle": "buf", "length": "1MiB"}
SLEEP = {"op": "sleep", "duration": "1ms"}


# --------------------------------------------------------------------------- sizes, durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GiB", 1 << 30),
        ("4k", 4096),
        ("4K", 4096),
        ("4kB", 4096),
        ("1.5MiB", 1572864),
        ("64MiB", 64 * MiB),
        (" 2 GiB ", 2 * GiB),
        ("0.5k", 512),
        ("1TiB", 1 << 40),
        ("4096", 4096),
        ("0", 0),
        (4096, 4096),
        ("9007199254740993", 2**53 + 1),  # exact beyond float precision
        ("-4k", -4096),  # brk shrinks the heap; validate() refuses negative lengths
    ],
)
def test_parse_size(text: Any, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad", ["12 parsecs", "1.5", "0.1k", "", "k", "1e3", "4 k b", "GiB1", True, False, 1.5, None, [4096]]
)
def test_parse_size_rejects(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100ms", 100_000_000),
        ("2s", 2_000_000_000),
        ("1.5us", 1_500),
        ("10ns", 10),
        ("0.25s", 250_000_000),
        (1000, 1000),
        ("9007199254740993ns", 2**53 + 1),
    ],
)
def test_parse_duration(text: Any, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["fast", "1.5ns", "1h", "1m", "100MS", "", True, 0.5, None])
def test_parse_duration_rejects(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


# --------------------------------------------------------------------------- steps


def test_step_to_dict_leaves_defaults_out() -> None:
    assert step_to_dict(Mmap(handle="buf", length_bytes=4096)) == {"op": "mmap", "handle": "buf", "length": 4096}
    assert step_to_dict(Touch(handle="buf", write=True)) == {"op": "touch", "handle": "buf", "write": True}
    assert step_to_dict(Brk(increment_bytes=-4096)) == {"op": "brk", "increment": -4096}


def test_step_from_dict_converts_keys() -> None:
    step = step_from_dict({"op": "mmap", "handle": "m", "length": "2MiB", "prot": "wr", "shared": True,
                           "on_enomem": "continue"}, "here")
    assert step == Mmap(handle="m", length_bytes=2 * MiB, prot="rw", shared=True, on_enomem="continue")


@pytest.mark.parametrize("op", sorted(STEP_TYPES))
def test_every_op_is_named_by_its_class(op: str) -> None:
    assert STEP_TYPES[op].op == op


# --------------------------------------------------------------------------- error messages


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"op": "frob"}, "s.toml: process 'p' step 2: key 'op': unknown op 'frob' (known: "),
        ({"length": 1}, "s.toml: process 'p' step 2: missing key 'op'"),
        ({"op": "mmap", "length": "1MiB"}, "s.toml: process 'p' step 2: op 'mmap' needs key 'handle'"),
        ({"op": "mmap", "handle": "b", "length": "12 parsecs"},
         "s.toml: process 'p' step 2: key 'length': expected a size such as 4096 or \"64MiB\", got '12 parsecs'"),
        ({"op": "mmap", "handle": "b", "length": 4096, "prot": "rwz"},
         "s.toml: process 'p' step 2: key 'prot': expected a protection such as \"r\", \"rw\" or \"rx\", got 'rwz'"),
        ({"op": "mmap", "handle": "b", "length": 4096, "on_enomem": "panic"},
         "s.toml: process 'p' step 2: key 'on_enomem': expected \"exit\" or \"continue\", got 'panic'"),
        ({"op": "sync", "now": True}, "s.toml: process 'p' step 2: op 'sync' takes no key 'now' (keys: none)"),
        ({"op": "drop_caches", "value": 4},
         "s.toml: process 'p' step 2: key 'value': drop_caches takes 1, 2 or 3, not 4"),
        ({"op": "mmap", "handle": "b", "length": 0},
         "s.toml: process 'p' step 2: key 'length': mmap needs a length > 0"),
        ({"op": "read", "file": "/f", "offset": -4096},
         "s.toml: process 'p' step 2: key 'offset': -4096 is outside 0..256GiB"),
        ({"op": "sleep", "duration": "-1ms"},
         "s.toml: process 'p' step 2: key 'duration': -1000000 is outside 0..86400s"),
        ({"op": "fork", "child": "kid"}, "s.toml: process 'p' step 2: key 'child': no process named 'kid'"),
        ({"op": "snapshot", "label": 3}, "s.toml: process 'p' step 2: key 'label': expected a string, got 3"),
        ("sync", "s.toml: process 'p' step 2: a step must be a table"),
    ],
    ids=["unknown-op", "no-op", "missing-key", "bad-size", "bad-prot", "bad-on-enomem", "unknown-key",
         "drop-caches-value", "zero-length", "negative-offset", "negative-sleep", "undeclared-child",
         "label-type", "not-a-table"],
)
def test_step_errors_name_file_step_and_key(step: Any, message: str) -> None:
    """A bad step names the file, the process, the step number (from 1) and the key."""
    err = error_of(scenario(proc("p", {"op": "sync"}, step)))
    assert err.startswith(message), err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(proc("p", {"op": "sync"}, oom_score_adj=5000)),
         "s.toml: process 'p': key 'oom_score_adj': 5000 is outside -1000..1000"),
        (scenario(proc("p", {"op": "sync"}, oom_score_adj=-1001)),
         "s.toml: process 'p': key 'oom_score_adj': -1001 is outside -1000..1000"),
        (scenario(proc("p", {"op": "sync"}, start="-1ms")),
         "s.toml: process 'p': key 'start': -1000000 is outside 0..86400s"),
        (scenario(proc("p", {"op": "sync"}, nice=5)),
         "s.toml: process 1: unknown key 'nice' (keys: cgroup, comm, forked, name, oom_score_adj, pid, start, steps, uid)"),
        (scenario({"steps": []}), "s.toml: process 1: needs key 'name'"),
        (scenario(proc("p", {"op": "sync"}), proc("p", {"op": "sync"})), "s.toml: process name 'p' is used twice"),
        ({"name": "t"}, "s.toml: needs at least one [[process]]"),
        (scenario(proc("p"), processes=[]),
         "s.toml: unknown key 'processes' (keys: cgroup, description, file, machine, name, process, sysctl)"),
        (scenario(proc("p"), machine={"ram": "12 parsecs"}),
         "s.toml: [machine]: key 'ram': expected a size such as 4096 or \"64MiB\", got '12 parsecs'"),
        (scenario(proc("p"), machine={"ram": "32MiB"}),
         "s.toml: [machine]: key 'ram': 33554432 is outside 128MiB..256GiB"),
        (scenario(proc("p"), machine={"swap": "1000"}),
         "s.toml: [machine]: key 'swap': 1000 is not a multiple of the page size (4096)"),
        (scenario(proc("p"), file=[{"path": "/f"}]), "s.toml: file 1: needs keys 'path' and 'size'"),
        (scenario(proc("p"), file=[{"path": "/f", "size": "-4k"}]),
         "s.toml: file '/f': key 'size': -4096 is outside 0..256GiB"),
        (scenario(proc("p", {"op": "sync"}), proc("c", {"op": "sync"}, forked=True)),
         "s.toml: process 'c' says forked = true but no step forks it"),
        (scenario(proc("p", {"op": "fork", "child": "c"}), proc("c", {"op": "sync"})),
         "s.toml: process 'p' step 1: key 'child': process 'c' must say forked = true"),
        (scenario(proc("p", {"op": "fork", "child": "c"}, {"op": "fork", "child": "c"}),
                  proc("c", {"op": "sync"}, forked=True)),
         "s.toml: process 'p' step 2: key 'child': process 'c' is forked twice"),
    ],
    ids=["oom-high", "oom-low", "negative-start", "unknown-process-key", "nameless", "duplicate",
         "no-process", "unknown-top-key", "bad-ram", "small-ram", "odd-swap", "file-without-size",
         "negative-file", "never-forked", "fork-unforked", "forked-twice"],
)
def test_scenario_errors(data: dict[str, Any], message: str) -> None:
    assert error_of(data) == message


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


# --------------------------------------------------------------------------- files


def test_load_scenario_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = [\n")
    with pytest.raises(ScenarioError, match=r"^" + str(path) + ": malformed TOML: "):
        load_scenario(path)


def test_load_scenario_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ScenarioError, match=f"^cannot read scenario {path}: No such file or directory$"):
        load_scenario(path)


def test_load_scenario_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[[process]]\nname = "p"\nsteps = [ { op = "touch", handle = "buf" } ]\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value) == f"{path}: process 'p' step 1: key 'handle': no mapping 'buf' is created before this step"


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-run.toml"
    path.write_text('[[process]]\nname = "p"\nsteps = [ { op = "sync" } ]\n')
    sc = load_scenario(path)
    assert sc.name == "my-run"
    assert sc.source == str(path)
    assert sc.machine == MachineSpec()


def test_nested_sysctl_table() -> None:
    """[sysctl.vm] swappiness = 10 and "vm.swappiness" = 10 mean the same."""
    sc = scenario_from_dict(scenario(proc("p", {"op": "sync"}), sysctl={"vm": {"swappiness": 10}}))
    assert dict(sc.sysctls) == {"vm.swappiness": 10}


def test_resolve_unknown_scenario() -> None:
    with pytest.raises(ScenarioError) as exc:
        resolve_scenario("nosuch")
    assert str(exc.value).startswith("unknown scenario 'nosuch' (built-in: " + ", ".join(BUILTINS))


# --------------------------------------------------------------------------- built-ins


def test_builtin_names() -> None:
    assert builtin_names() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name: str) -> None:
    """Every built-in loads by name, is named after its file, says what it does and
    takes at least two snapshots to compare."""
    sc = resolve_scenario(name)
    assert sc.name == name
    assert sc.source == str(builtin_dir() / f"{name}.toml")
    assert sc.description.strip()
    labels = [s.label for p in sc.processes for s in p.steps if isinstance(s, Snapshot)]
    assert len(labels) >= 2
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_round_trip(name: str) -> None:
    """scenario_from_dict(sc.to_dict()) rebuilds the same scenario."""
    sc = load_scenario(builtin_dir() / f"{name}.toml")
    again = scenario_from_dict(sc.to_dict(), "<round-trip>")
    assert again.processes == sc.processes
    assert again.machine == sc.machine
    assert again.files == sc.files
    assert dict(again.sysctls) == dict(sc.sysctls)
    assert (again.name, again.description) == (sc.name, sc.description)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_to_dict_matches_its_toml(name: str) -> None:
    """to_dict() is the file's own data with sizes in bytes and defaults filled in:
    every step of the file converts to the step to_dict() wrote."""
    path = builtin_dir() / f"{name}.toml"
    raw = tomllib.loads(path.read_text())
    d = load_scenario(path).to_dict()
    assert [p["name"] for p in d["process"]] == [p["name"] for p in raw["process"]]
    for p_raw, p_out in zip(raw["process"], d["process"]):
        assert len(p_raw["steps"]) == len(p_out["steps"])
        for j, (s_raw, s_out) in enumerate(zip(p_raw["steps"], p_out["steps"]), 1):
            assert step_from_dict(s_raw, f"step {j}") == step_from_dict(s_out, f"step {j}")
            assert s_out["op"] == s_raw["op"]


def test_round_trip_keeps_everything() -> None:
    """A scenario using every process and machine key survives the round trip."""
    sc = Scenario(
        name="all",
        description="every key",
        machine=MachineSpec(ram_bytes=2 * GiB, swap_bytes=512 * MiB, kernel_version="6.1"),
        sysctls={"vm.swappiness": 10, "vm.overcommit_memory": 2},
        files=(FileSpec("/data/f", 8 * MiB),),
        processes=(
            ProcessSpec("p", steps=(Mmap(handle="m", length_bytes=4096, prot="r", shared=True, path="/data/f",
                                         offset_bytes=4096, noreserve=True, on_enomem="continue"),
                                    Fork(child="c"), Wait(child="c")),
                        uid=1000, oom_score_adj=-500, start_ns=5_000_000),
            ProcessSpec("c", steps=(Touch(handle="m"),), forked=True, oom_score_adj=1000),
        ),
    )
    validate(sc)
    again = scenario_from_dict(sc.to_dict())
    assert again.processes == sc.processes
    assert again.machine == sc.machine
    assert again.files == sc.files
    assert dict(again.sysctls) == dict(sc.sysctls)


# --------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'name = "t\xff\xfe"\n', "not a TOML file: byte 0xff at offset 9 is not UTF-8"),
        (bytes(range(256)), "not a TOML file: byte 0x80 at offset 128 is not UTF-8"),
        (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "malformed TOML: arrays or tables nest too deeply"),
        (b"a = " + b"{b=" * 5_000 + b"1" + b"}" * 5_000 + b"\n", "malformed TOML: arrays or tables nest too deeply"),
    ],
    ids=["latin-1", "binary", "deep-arrays", "deep-tables"],
)
def test_unreadable_toml_names_the_file(tmp_path: Path, raw: bytes, problem: str) -> None:
    """Bytes that are not UTF-8, or TOML nested deeper than the parser can follow,
    are a ScenarioError naming the file, not a UnicodeDecodeError or RecursionError."""
    path = tmp_path / "bad.toml"
    path.write_bytes(raw)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value) == f"{path}: {problem}"


def test_integers_too_long_to_read_or_print(tmp_path: Path) -> None:
    """TOML integers are arbitrary precision: one over 4300 digits is malformed TOML
    (Python will not convert it), a shorter one too large to print is named by size."""
    path = tmp_path / "big.toml"
    path.write_text("[machine]\nram = " + "9" * 5000 + "\n")
    with pytest.raises(ScenarioError, match=r"^" + str(path) + r": malformed TOML: .*4300"):
        load_scenario(path)
    assert error_of(scenario(proc("p", SLEEP), machine={"ram": 10**4000})) == (
        "s.toml: [machine]: key 'ram': a 13288-bit number is outside 128MiB..256GiB")


def test_devices_are_not_read_for_ever() -> None:
    with pytest.raises(ScenarioError, match=r"^/dev/zero: not a scenario file: larger than 16MiB$"):
        load_scenario("/dev/zero")


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


def test_a_file_name_that_is_no_scenario_name(tmp_path: Path) -> None:
    """Without a name key the name is the file's stem, which must be a name too."""
    path = tmp_path / "my run.toml"
    path.write_text('[[process]]\nname = "p"\nsteps = [ { op = "sync" } ]\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value) == (f"{path}: no key 'name', and the file name 'my run' is not a scenario name "
                              "(letters, digits, '.', '_', '-'): add name = \"...\"")


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


def test_odd_shapes_of_data_are_scenario_errors() -> None:
    assert error_of(scenario(proc("p", SLEEP), file=5)) == "s.toml: key 'file' must be an array of tables ([[file]])"
    assert error_of(scenario(proc("p", SLEEP), cgroup="x")) == (
        "s.toml: key 'cgroup' must be an array of tables ([[cgroup]])")
    assert error_of(scenario(proc("p", {"op": ["x"]}))).startswith(
        "s.toml: process 'p' step 1: key 'op': unknown op ['x'] (known: ")
    assert error_of(scenario(proc("p", SLEEP), description=["y" * 500])) == (
        "s.toml: key 'description': expected a string, got ['" + "y" * 55 + "...")


# --------------------------------------------------------------------------- repeats


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


def test_a_count_zero_iteration_that_takes_no_time_stops_the_run() -> None:
    """Touching resident pages takes no simulated time: a count = 0 repeat of it
    would spin for ever inside one step of the engine; the runner stops with a
    ScenarioError naming the step."""
    sc = scenario_from_dict(scenario(proc(
        "p", {"op": "mmap", "handle": "m", "length": "64k"}, {"op": "touch", "handle": "m", "write": True},
        {"op": "repeat", "steps": [{"op": "touch", "handle": "m"}]})), "s.toml")
    with pytest.raises(ScenarioError) as exc:
        run(sc)
    assert str(exc.value) == (
        "s.toml: process 'p' step 3: key 'count': iteration 0 of this count = 0 repeat took no simulated time, "
        "so it would never end: give it a count or a step that takes time (sleep)")


def test_a_repeat_that_never_yields_stops_at_the_time_limit() -> None:
    """Reads of a cached file take time but never give up the CPU; the repeat
    yields once past the time limit so that the run ends there."""
    sc = scenario_from_dict(scenario(
        proc("p", {"op": "write", "file": "/tmp/x", "length": "64k"},
             {"op": "repeat", "steps": [{"op": "read", "file": "/tmp/x"}]}),
        machine={"time_limit": "1ms"}))
    k, result, _ = run(sc)
    assert [e.errno for e in result.errors] == ["ETIME"]
    assert 1_000_000 < k.now_ns < 2_000_000


def test_count_zero_stops_after_max_repeat_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """count = 0 is 'until the process ends', and at most MAX_REPEAT_COUNT times."""
    monkeypatch.setattr("memtrace.kernel.runner.MAX_REPEAT_COUNT", 5)
    sc = scenario_from_dict(scenario(proc("p", {"op": "repeat", "steps": [{"op": "sleep", "duration": "1ms"}]})))
    k, result, _ = run(sc)
    assert result.errors == []
    assert k.now_ns == 5_000_000


# --------------------------------------------------------------------------- sysctls


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
