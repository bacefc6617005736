"""Issue 14's header findings: values of a wrong kind in a checksum-valid header.

Each case rewrites the header of a recorded trace (``memcg-oom``: an OOM kill, a
replayable workload) and runs the commands that read it. Before the reader checked
its header once, each of these ended in an internal error somewhere (bytes where
text was expected, a RecursionError, "expected non-negative integer" from numpy's
seed, an AttributeError on an int key); now every command either finishes with a
warning naming the value it ignored, or stops with one line naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from memtrace.errors import TraceFormatError
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.craft import write_trace

from .helpers import SAMPLES, assert_clean, run_cli, sample_parts

Edit = Callable[[dict[str, Any]], None]


def _deep(h: dict[str, Any]) -> None:
    nested: dict[str, Any] = {}
    for _ in range(500):
        nested = {"x": nested}
    h["meta"]["deep"] = nested


def _all_fields(h: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    for schema in h["schemas"]:
        for f in schema["fields"]:
            edit(f)


def _signed(f: dict[str, Any]) -> None:
    if f["type"] == "u64" and f["name"] not in ("seq", "ts_ns"):
        f["type"] = "i64"


def _enum_ints(f: dict[str, Any]) -> None:
    if f["type"] == "enum":
        f["values"] = list(range(len(f["values"])))


#: name -> (header edit, what the reader says: a warning fragment, or the error)
CASES: dict[str, tuple[Edit, str]] = {
    "scenario as bin": (lambda h: h["meta"].__setitem__("scenario", b"memcg-oom"),
                        "warning: trace header: meta.scenario is b'memcg-oom' (bytes, not text): ignored"),
    "version as bin": (lambda h: h.__setitem__("memtrace_version", b"0.1.0"),
                       "warning: trace header: memtrace_version is b'0.1.0' (bytes, not text): ignored"),
    "workload name as timestamp": (lambda h: h["meta"]["workload"].__setitem__("name", msgpack.Timestamp(5)),
                                   "meta.workload.name is a msgpack timestamp: ignored"),
    "override as ext": (lambda h: h["meta"].__setitem__("sysctl_overrides",
                                                        {"vm.swappiness": msgpack.ExtType(3, b"10")}),
                        "meta.sysctl_overrides.vm.swappiness is a msgpack extension value (type 3): ignored"),
    "override key an int": (lambda h: h["meta"].__setitem__("sysctl_overrides", {1: "x"}),
                            "meta.sysctl_overrides has a key that is int, not text: ignored"),
    "negative seed": (lambda h: h["meta"].__setitem__("seed", -5),
                      "meta.seed is -5 (int), not an integer in 0..9223372036854775807: ignored"),
    "meta nested 500 deep": (_deep, "nests deeper than 64 levels: ignored"),
    "kernel version as bin": (lambda h: h["meta"]["machine"].__setitem__("kernel_version", b"6.13"),
                              "meta.machine.kernel_version is b'6.13' (bytes, not text): ignored"),
    "sysctl value text": (lambda h: h["meta"]["sysctl"].__setitem__("vm.overcommit_memory", "two"),
                          "meta.sysctl.vm.overcommit_memory is 'two' (str), not an integer: ignored"),
    "ram as float": (lambda h: h["meta"]["machine"].__setitem__("ram_bytes", 1.5e9),
                     "meta.machine.ram_bytes is 1500000000.0 (float), not an integer in"),
    "schema name an int": (lambda h: h["schemas"][3].__setitem__("name", 12),
                           "error: bad tracepoint schema #3 in header: name is 12 (int), not text"),
    "enum values ints": (lambda h: _all_fields(h, _enum_ints),
                         "error: bad tracepoint schema #0 in header: (mmap): field 'vma_kind': values is not "
                         "a list of names"),
    "field type unknown": (lambda h: h["schemas"][0]["fields"][3].__setitem__("type", "f64"),
                           "error: bad tracepoint schema #0 in header: (mmap): field 'addr': type 'f64' is not one"),
}


def _write(path: Path, edit: Edit) -> Path:
    head, frames = sample_parts("memcg-oom")
    head = copy.deepcopy(head)
    edit(head)
    write_trace(path, head, frames)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_reader_names_the_bad_value(tmp_path: Path, case: str) -> None:
    """The reader warns and ignores the value, or refuses the file in one line."""
    edit, says = CASES[case]
    path = _write(tmp_path / "t.mtrace", edit)
    if says.startswith("error: "):
        with pytest.raises(TraceFormatError) as info:
            TraceReader(path)
        assert str(info.value) == f"{path}: {says.removeprefix('error: ')}" or \
            str(info.value).startswith(f"{path}: {says.removeprefix('error: ')}")
        assert "\n" not in str(info.value)
        return
    reader = TraceReader(path)
    assert any(says.removeprefix("warning: ") in w for w in reader.warnings), reader.warnings
    # What is left is plain data of the kinds the header promises.
    meta = reader.trace_meta
    assert meta.seed is None or meta.seed >= 0
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.sysctl_overrides.items())
    assert all(isinstance(k, str) and type(v) is int for k, v in meta.sysctl.items())
    assert meta.scenario is None or isinstance(meta.scenario, str)
    assert meta.machine.kernel_version is None or isinstance(meta.machine.kernel_version, str)


COMMANDS = [("stat", "--json"), ("ps",), ("dmesg",), ("explain",), ("report", "--json", "--no-what-if"),
            ("trace", "-e", "oom_kill { @[comm] = count(); }")]
#: The cases whose header values a replay uses (workload, overrides, seed).
REPLAYED = ["negative seed", "override as ext", "override key an int", "meta nested 500 deep",
            "workload name as timestamp", "sysctl value text"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_commands_end_cleanly(tmp_path: Path, case: str) -> None:
    """Every reading command finishes or stops in one line: no internal error."""
    path = _write(tmp_path / "t.mtrace", CASES[case][0])
    for argv in COMMANDS:
        assert_clean(run_cli(argv[0], str(path), *argv[1:]))


@pytest.mark.parametrize("case", REPLAYED)
def test_replay_and_diff_end_cleanly(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path / "t.mtrace", CASES[case][0])
    out = tmp_path / "r.mtrace"
    assert_clean(run_cli("replay", str(path), "-o", str(out)))
    assert_clean(run_cli("diff", str(path), str(SAMPLES / "memcg-oom.mtrace")))


def test_a_retyped_field_is_refused_by_the_analyses_that_read_it(tmp_path: Path) -> None:
    """u64 fields retyped i64 could carry negative page counts (issue 14: ps said
    "totalpages is negative" as an internal error): an analysis that reads them as
    u64 refuses the trace in one line naming the field."""
    path = _write(tmp_path / "t.mtrace", lambda h: _all_fields(h, _signed))
    run = run_cli("ps", str(path))
    assert_clean(run)
    assert run.code == 1
    assert "is i64, but the state fold" in run.stderr and "cannot hold every i64 value" in run.stderr
