"""The workload model: size and duration parsing, loading and validating
scenarios, and the TOML round trip of every built-in scenario."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.workload import (
    STEP_TYPES,
    Brk,
    FileSpec,
    Fork,
    MachineSpec,
    Mmap,
    ProcessSpec,
    Scenario,
    Snapshot,
    Touch,
    Wait,
    builtin_dir,
    builtin_names,
    load_scenario,
    parse_duration,
    parse_size,
    resolve_scenario,
    scenario_from_dict,
    step_from_dict,
    step_to_dict,
    validate,
)

from ..conftest import BUILTINS

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
        ({"op": "read", "file": "/f", "offset": -4096}, "s.toml: process 'p' step 2: key 'offset': -4096 is negative"),
        ({"op": "sleep", "duration": "-1ms"}, "s.toml: process 'p' step 2: key 'duration': -1000000 is negative"),
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
        (scenario(proc("p", {"op": "sync"}, start="-1ms")), "s.toml: process 'p': key 'start': -1000000 is negative"),
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
         "s.toml: [machine]: key 'ram': 33554432 is not a page multiple of at least 64MiB"),
        (scenario(proc("p"), machine={"swap": "1000"}),
         "s.toml: [machine]: key 'swap': 1000 is not a page multiple >= 0"),
        (scenario(proc("p"), file=[{"path": "/f"}]), "s.toml: file 1: needs keys 'path' and 'size'"),
        (scenario(proc("p"), file=[{"path": "/f", "size": "-4k"}]), "s.toml: file '/f': key 'size': -4096 is negative"),
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
