"""Reading scenarios: sizes and durations, step and scenario tables, TOML files,
and the errors that name the file, process, step and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.workload import (
    FileSpec,
    Fork,
    MachineSpec,
    Mmap,
    ProcessSpec,
    Scenario,
    Touch,
    Wait,
    load_scenario,
    scenario_from_dict,
    step_from_dict,
    validate,
)
from memtrace.units import parse_duration, parse_size

from .helpers import SLEEP, GiB, MiB, error_of, proc, scenario

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


# --------------------------------------------------------------------------- steps and tables


def test_step_from_dict_converts_keys() -> None:
    step = step_from_dict({"op": "mmap", "handle": "m", "length": "2MiB", "prot": "wr", "shared": True,
                           "on_enomem": "continue"}, "here")
    assert step == Mmap(handle="m", length_bytes=2 * MiB, prot="rw", shared=True, on_enomem="continue")


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


def test_nested_sysctl_table() -> None:
    """[sysctl.vm] swappiness = 10 and "vm.swappiness" = 10 mean the same."""
    sc = scenario_from_dict(scenario(proc("p", {"op": "sync"}), sysctl={"vm": {"swappiness": 10}}))
    assert dict(sc.sysctls) == {"vm.swappiness": 10}


def test_odd_shapes_of_data_are_scenario_errors() -> None:
    assert error_of(scenario(proc("p", SLEEP), file=5)) == "s.toml: key 'file' must be an array of tables ([[file]])"
    assert error_of(scenario(proc("p", SLEEP), cgroup="x")) == (
        "s.toml: key 'cgroup' must be an array of tables ([[cgroup]])")
    assert error_of(scenario(proc("p", {"op": ["x"]}))).startswith(
        "s.toml: process 'p' step 1: key 'op': unknown op ['x'] (known: ")
    assert error_of(scenario(proc("p", SLEEP), description=["y" * 500])) == (
        "s.toml: key 'description': expected a string, got ['" + "y" * 55 + "...")


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


def test_a_file_name_that_is_no_scenario_name(tmp_path: Path) -> None:
    """Without a name key the name is the file's stem, which must be a name too."""
    path = tmp_path / "my run.toml"
    path.write_text('[[process]]\nname = "p"\nsteps = [ { op = "sync" } ]\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value) == (f"{path}: no key 'name', and the file name 'my run' is not a scenario name "
                              "(letters, digits, '.', '_', '-'): add name = \"...\"")


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
