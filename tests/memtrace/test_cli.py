"""The ``memtrace`` command line, run in-process.

Output is checked with ``typer.testing.CliRunner`` against ``memtrace.cli.app``;
the one-line error contract (``memtrace: ...`` on stderr, exit code 1, never a
traceback) is checked through ``memtrace.cli.main``, which is where the CLI
catches MemtraceError. Expected numbers come from the scenario itself (64 MiB of
4 KiB pages is 16384 faults) and from procps-ng's free(1) formulas.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from memtrace.cli import app, main
from memtrace.tracer.tracepoints import default_registry

from ..conftest import BUILTINS

MiB = 1 << 20
PAGE_SIZE = 4096

#: 64 MiB of private anonymous memory on a 1 GiB machine: mmap, write every page, unmap.
SMALL_TOML = """\
name = "small-anon"
description = "mmap 64 MiB private anon, write every page, unmap"

[machine]
ram = "1GiB"

[[process]]
name = "writer"
steps = [
  { op = "snapshot", label = "before" },
  { op = "mmap", handle = "buf", length = "64MiB", prot = "rw" },
  { op = "snapshot", label = "after-mmap" },
  { op = "touch", handle = "buf", write = true },
  { op = "snapshot", label = "after-write" },
  { op = "munmap", handle = "buf" },
  { op = "snapshot", label = "after-unmap" },
]
"""

LABELS = ["before", "after-mmap", "after-write", "after-unmap"]


MEMINFO_KEYS = [
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "AnonPages",
    "Mapped", "Shmem", "Dirty", "Writeback", "CommitLimit", "Committed_AS", "SwapTotal",
    "SwapFree",
]

FREE_KEYS = ["total", "used", "free", "shared", "buff_cache", "available"]


# --------------------------------------------------------------------------- helpers


def invoke(*args: str | os.PathLike[str]) -> Result:
    """Run the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [os.fspath(a) for a in args])


def ok_json(*args: str | os.PathLike[str]) -> Any:
    """Run a ``--json`` command that must succeed and parse its one JSON document."""
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str], code: int = 1) -> str:
    """Run ``memtrace.cli.main`` expecting exit ``code`` with exactly one line on
    stderr, nothing on stdout and no traceback; return that line."""
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == code, err
    assert "Traceback" not in out + err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_narrow(text: str) -> None:
    """Every line fits in 79 columns (bcc tools' rule: under 80)."""
    wide = [line for line in text.splitlines() if len(line) >= 80]
    assert not wide, wide


def write_scenario(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_process(steps: str, process_keys: str = "", extra: str = "") -> str:
    """A scenario TOML with one process ``p`` doing ``steps`` (TOML array items)."""
    return (f'name = "bad"\n{extra}\n[[process]]\nname = "p"\n{process_keys}\n'
            f"steps = [\n{steps}\n]\n")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The small scenario recorded once: the trace path and ``record --json``."""
    tmp = tmp_path_factory.mktemp("rec")
    toml = write_scenario(tmp, SMALL_TOML, "small-anon.toml")
    trace = tmp / "small.mtrace"
    return trace, ok_json("record", toml, "-o", trace, "--json")


def snap(doc: dict[str, Any], label: str) -> dict[str, Any]:
    (s,) = [s for s in doc["snapshots"] if s["label"] == label]
    return s


# --------------------------------------------------------------------------- record


def test_record_json_has_the_documented_keys(recorded: tuple[Path, dict[str, Any]]) -> None:
    """record --json is one object with the documented top-level keys, the
    snapshots in step order, each with free(1) columns and meminfo in bytes."""
    trace, doc = recorded
    assert {"scenario", "trace", "sysctl", "events", "snapshots", "oom_kills", "errors"} <= set(doc)
    assert doc["scenario"] == "small-anon"
    assert doc["trace"] == str(trace)
    assert doc["oom_kills"] == []
    assert doc["errors"] == []
    assert [s["label"] for s in doc["snapshots"]] == LABELS
    for s in doc["snapshots"]:
        assert set(s) >= {"label", "ts_ns", "free", "meminfo"}
        assert isinstance(s["ts_ns"], int)
        assert list(s["free"]) == FREE_KEYS
        assert set(MEMINFO_KEYS) <= set(s["meminfo"])
        for value in [*s["free"].values(), *s["meminfo"].values()]:
            assert isinstance(value, int) and value % 1024 == 0  # bytes, from kB values
    ts = [s["ts_ns"] for s in doc["snapshots"]]
    assert ts == sorted(ts)


def test_record_counts_derived_by_hand(recorded: tuple[Path, dict[str, Any]]) -> None:
    """Writing 64 MiB of fresh private anon memory is 64 MiB / 4 KiB = 16384 page
    faults, one mmap, one munmap, four snapshots, one process started and exited."""
    _, doc = recorded
    ev = doc["events"]
    assert ev["page_fault"] == 64 * MiB // PAGE_SIZE == 16384
    assert (ev["mmap"], ev["munmap"], ev["snapshot"]) == (1, 1, 4)
    assert (ev["process_start"], ev["exit"]) == (1, 1)
    assert "cow" not in ev and "fork" not in ev and "page_cache_add" not in ev


def test_record_meminfo_deltas(recorded: tuple[Path, dict[str, Any]]) -> None:
    """mmap charges Committed_AS with the whole 64 MiB at once and allocates nothing;
    writing makes exactly 64 MiB AnonPages (page tables aside, taken from MemFree);
    munmap gives both back."""
    _, doc = recorded
    before, mapped, written, unmapped = (snap(doc, label)["meminfo"] for label in LABELS)
    assert mapped["Committed_AS"] - before["Committed_AS"] == 64 * MiB
    assert mapped["AnonPages"] == before["AnonPages"]
    assert mapped["MemFree"] == before["MemFree"]
    assert written["AnonPages"] - mapped["AnonPages"] == 64 * MiB
    assert written["Committed_AS"] == mapped["Committed_AS"]
    page_tables = written["PageTables"] - mapped["PageTables"]
    assert mapped["MemFree"] - written["MemFree"] == 64 * MiB + page_tables
    for key in ("Cached", "Mapped", "Shmem", "Dirty", "Writeback", "SwapTotal", "SwapFree"):
        assert written[key] == before[key], key
    assert unmapped["AnonPages"] == before["AnonPages"]
    assert unmapped["Committed_AS"] == before["Committed_AS"]
    assert unmapped["MemFree"] == before["MemFree"]


def test_record_free_columns_follow_procps(recorded: tuple[Path, dict[str, Any]]) -> None:
    """free(1) as procps-ng >= 4.0.1: used = MemTotal - MemAvailable, buff/cache =
    Buffers + Cached + SReclaimable, shared = Shmem."""
    _, doc = recorded
    for s in doc["snapshots"]:
        mi, fr = s["meminfo"], s["free"]
        assert fr["total"] == mi["MemTotal"]
        assert fr["used"] == mi["MemTotal"] - mi["MemAvailable"]
        assert fr["free"] == mi["MemFree"]
        assert fr["shared"] == mi["Shmem"]
        assert fr["buff_cache"] == mi["Buffers"] + mi["Cached"] + mi["SReclaimable"]
        assert fr["available"] == mi["MemAvailable"]
    used = [snap(doc, label)["free"]["used"] for label in LABELS]
    assert used[2] - used[1] == 64 * MiB + (snap(doc, "after-write")["meminfo"]["PageTables"]
                                            - snap(doc, "after-mmap")["meminfo"]["PageTables"])
    assert used[3] == used[0]


def test_record_default_output_is_scenario_name_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -o the trace is SCENARIO.mtrace in the current directory."""
    write_scenario(tmp_path, SMALL_TOML, "small-anon.toml")
    monkeypatch.chdir(tmp_path)
    doc = ok_json("record", "small-anon.toml", "--json")
    assert doc["trace"] == "small-anon.mtrace"
    assert (tmp_path / "small-anon.mtrace").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small-anon.mtrace", "small-anon.toml"]


def test_record_human_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The text form names the scenario, event total and trace, then a free table
    per snapshot, every line under 80 columns (paths are short here: a long path
    the user gives is the user's)."""
    write_scenario(tmp_path, SMALL_TOML, "small.toml")
    monkeypatch.chdir(tmp_path)
    result = invoke("record", "small.toml", "-o", "t.mtrace", "--sysctl", "vm.swappiness=10")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("small-anon: ")
    assert lines[1].startswith("trace: t.mtrace (")
    assert "sysctl: vm.swappiness=10" in result.stdout
    for label in LABELS:
        assert any(line.startswith(f"{label}  (t=") for line in lines)
    assert sum(line.startswith("Mem:") for line in lines) == 4
    assert_narrow(result.stdout)


# --------------------------------------------------------------------------- sysctl


def test_record_sysctl_default_and_override(tmp_path: Path) -> None:
    """The JSON sysctl map holds the values in force: the kernel default of
    vm.swappiness is 60; --sysctl vm.swappiness=10 makes it 10."""
    toml = write_scenario(tmp_path, SMALL_TOML)
    default = ok_json("record", toml, "-o", tmp_path / "a.mtrace", "--json")
    assert default["sysctl"]["vm.swappiness"] == 60
    doc = ok_json("record", toml, "-o", tmp_path / "b.mtrace", "--sysctl", "vm.swappiness=10", "--json")
    assert doc["sysctl"]["vm.swappiness"] == 10
    assert doc["events"]["sysctl_set"] == 1
    assert {k: v for k, v in doc["sysctl"].items() if k != "vm.swappiness"} == \
        {k: v for k, v in default["sysctl"].items() if k != "vm.swappiness"}


def test_record_unknown_sysctl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown sysctl is one line naming it; no trace file is left behind."""
    toml = write_scenario(tmp_path, SMALL_TOML)
    line = fails(capsys, "record", toml, "-o", tmp_path / "x.mtrace", "--sysctl", "vm.nosuch=1")
    assert line.startswith("memtrace: ")
    assert "vm.nosuch" in line
    assert not (tmp_path / "x.mtrace").exists()


def test_record_sysctl_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """vm.swappiness takes 0..200 (mm/vmscan.c, since 5.8); 500 is refused naming the range."""
    toml = write_scenario(tmp_path, SMALL_TOML)
    line = fails(capsys, "record", toml, "-o", tmp_path / "x.mtrace", "--sysctl", "vm.swappiness=500")
    assert line.startswith("memtrace: ")
    assert "vm.swappiness" in line and "500" in line and "0..200" in line


@pytest.mark.parametrize(
    ("bad", "quoted"),
    [("garbage", "'garbage'"), ("vm.swappiness=", "'vm.swappiness='"), ("=10", "'=10'"),
     ("vm.swappiness=ten", "'ten'")],
)
def test_record_malformed_sysctl(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str,
                                 quoted: str) -> None:
    """A --sysctl that is not KEY=INTEGER is one line quoting the bad part."""
    toml = write_scenario(tmp_path, SMALL_TOML)
    line = fails(capsys, "record", toml, "-o", tmp_path / "x.mtrace", "--sysctl", bad)
    assert line.startswith("memtrace: ")
    assert quoted in line


# --------------------------------------------------------------------------- scenario errors


def test_record_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown name is one line naming it and listing every built-in."""
    line = fails(capsys, "record", "no-such-scenario")
    assert line.startswith("memtrace: ")
    assert "'no-such-scenario'" in line
    for name in BUILTINS:
        assert name in line


def test_record_missing_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    line = fails(capsys, "record", missing)
    assert line.startswith("memtrace: ") and str(missing) in line


def test_record_malformed_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A TOML syntax error is one line with the file path."""
    path = write_scenario(tmp_path, 'name = "x"\n[[process]\nname = \n')
    line = fails(capsys, "record", path)
    assert line.startswith(f"memtrace: {path}: malformed TOML")


@pytest.mark.parametrize(
    ("toml", "where", "key", "value"),
    [
        ('{ op = "frob" }', "process 'p' step 1", "key 'op'", "'frob'"),
        ('{ op = "snapshot", label = "a" },\n{ op = "mmap", length = "1MiB" }',
         "process 'p' step 2", "key 'handle'", "'mmap'"),
        ('{ op = "mmap", handle = "b", length = "12 parsecs" }', "process 'p' step 1", "key 'length'",
         "'12 parsecs'"),
        ('{ op = "sync" },\n{ op = "fork", child = "kid" }', "process 'p' step 2", "key 'child'", "'kid'"),
        ('{ op = "touch", handle = "buf" }', "process 'p' step 1", "key 'handle'", "'buf'"),
    ],
    ids=["unknown-op", "missing-key", "bad-size", "undeclared-child", "undeclared-handle"],
)
def test_record_bad_step(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         toml: str, where: str, key: str, value: str) -> None:
    """A bad step is one line naming the file, the process and step, the key and
    the bad value."""
    path = write_scenario(tmp_path, one_process(toml))
    line = fails(capsys, "record", path, "-o", tmp_path / "x.mtrace")
    assert line.startswith(f"memtrace: {path}: {where}: ")
    assert key in line
    assert value in line
    assert not (tmp_path / "x.mtrace").exists()


def test_record_bad_oom_score_adj(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """oom_score_adj is -1000..1000 (OOM_SCORE_ADJ_MIN..MAX)."""
    path = write_scenario(tmp_path, one_process('{ op = "sync" }', "oom_score_adj = 5000"))
    line = fails(capsys, "record", path)
    assert line == (f"memtrace: {path}: process 'p': key 'oom_score_adj': "
                    "5000 is outside -1000..1000")


def test_record_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output path in a missing directory is one line naming it."""
    toml = write_scenario(tmp_path, SMALL_TOML)
    out = tmp_path / "no" / "such" / "dir.mtrace"
    line = fails(capsys, "record", toml, "-o", out)
    assert line.startswith("memtrace: cannot write") and str(out) in line and "No such file or directory" in line


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing argument is a usage error: exit 2, no traceback."""
    with pytest.raises(SystemExit) as exc:
        main(["report"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert "Traceback" not in out + err
    assert "Missing argument" in err
    with pytest.raises(SystemExit) as exc:  # record takes a scenario or --live: it says so
        main(["record"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in out + err
    assert "give a scenario" in err and "--live" in err


# --------------------------------------------------------------------------- stat, free


def test_stat_counts_equal_record(recorded: tuple[Path, dict[str, Any]]) -> None:
    """Reading the trace back counts exactly the events record saw."""
    trace, doc = recorded
    st = ok_json("stat", trace, "--json")
    assert st["events"] == doc["events"]
    assert st["total_events"] == sum(doc["events"].values())
    assert st["scenario"] == "small-anon"
    assert st["complete"] is True
    assert st["damage"] is None
    assert st["bytes"] == trace.stat().st_size


def test_stat_human_output(recorded: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    trace, doc = recorded
    monkeypatch.chdir(trace.parent)
    result = invoke("stat", trace.name)
    assert result.exit_code == 0, result.stderr
    assert f"{sum(doc['events'].values()):,} events" in result.stdout
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[3:]}
    assert rows["page_fault"] == "16,384"
    assert result.stdout.splitlines()[2].split() == ["TRACEPOINT", "EVENTS"]
    assert_narrow(result.stdout)


def test_free_at_label_matches_record(recorded: tuple[Path, dict[str, Any]]) -> None:
    """free --at LABEL --json is that snapshot, with record's free(1) values."""
    trace, doc = recorded
    for label in LABELS:
        out = ok_json("free", trace, "--at", label, "--json")
        (s,) = out["snapshots"]
        want = snap(doc, label)
        assert s["label"] == label
        assert s["ts_ns"] == want["ts_ns"]
        assert s["free"] == want["free"]
        for key in MEMINFO_KEYS:
            assert s["meminfo"][key] == want["meminfo"][key], key


def test_free_all_snapshots(recorded: tuple[Path, dict[str, Any]]) -> None:
    trace, doc = recorded
    out = ok_json("free", trace, "--json")
    assert [s["label"] for s in out["snapshots"]] == LABELS
    assert [s["free"] for s in out["snapshots"]] == [s["free"] for s in doc["snapshots"]]
    result = invoke("free", trace)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert sum(line.startswith("Mem:") for line in lines) == 4
    assert sum(line.startswith("change:") for line in lines) == 3
    (write_change,) = [lines[i + 3] for i, line in enumerate(lines) if line.startswith("after-write")]
    assert write_change.split()[1:3] == ["+64", "-64"]  # used, free in MiB
    assert_narrow(result.stdout)


def test_free_unknown_label(recorded: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    """--at a missing label is one line listing the labels there are."""
    trace, _ = recorded
    line = fails(capsys, "free", trace, "--at", "nosuch")
    assert line == (f"memtrace: {trace}: no snapshot labelled 'nosuch' "
                    f"(labels: {', '.join(LABELS)}; for a moment in time use 'memtrace explain --at TIME')")


@pytest.mark.parametrize("command", ["stat", "free"])
@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"", b"name = \"not a trace\"\n"],
    ids=["random-bytes", "empty", "text"],
)
def test_not_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: bytes) -> None:
    """A file that is not a trace is one line naming it."""
    path = tmp_path / "bogus.mtrace"
    path.write_bytes(content)
    line = fails(capsys, command, path)
    assert line.startswith(f"memtrace: {path}: not a memtrace trace")


@pytest.mark.parametrize("command", ["stat", "free"])
def test_missing_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    missing = tmp_path / "missing.mtrace"
    line = fails(capsys, command, missing)
    assert line == f"memtrace: cannot read trace {missing}: No such file or directory"


def test_trace_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "stat", tmp_path)
    assert line.startswith(f"memtrace: cannot read trace {tmp_path}: ")


# --------------------------------------------------------------------------- list


def test_list_has_the_memory_tracepoints() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    names = {line.split()[0] for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    assert {"mmap", "brk", "munmap", "page_fault", "cow", "fork", "exit", "page_cache_add",
            "page_cache_delete", "writeback", "drop_caches", "rss_stat", "snapshot"} <= names
    assert_narrow(result.stdout)


def test_list_glob_json() -> None:
    """list 'page_*' --json is exactly the page_* tracepoints, with typed fields."""
    doc = ok_json("list", "page_*", "--json")
    assert sorted(t["name"] for t in doc) == ["page_cache_add", "page_cache_delete", "page_fault"]
    want = [t.describe() for t in default_registry() if fnmatch.fnmatchcase(t.name, "page_*")]
    assert doc == want
    for t in doc:
        fields = [f["name"] for f in t["fields"]]
        assert fields[:3] == ["seq", "ts_ns", "pid"]
        assert all(f["type"] for f in t["fields"])


def test_list_no_match(capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "list", "nosuch")
    assert line.startswith("memtrace: ") and "'nosuch'" in line


# --------------------------------------------------------------------------- scenarios


def test_scenarios_names() -> None:
    result = invoke("scenarios", "--names")
    assert result.exit_code == 0
    assert result.stdout == "\n".join(BUILTINS) + "\n"


def test_scenarios_json() -> None:
    doc = ok_json("scenarios", "--json")
    assert [s["name"] for s in doc] == BUILTINS
    for s in doc:
        assert isinstance(s["description"], str) and s["description"].strip()
        assert Path(s["path"]).name == f"{s['name']}.toml"
        assert s["snapshots"]


def test_scenarios_human_output() -> None:
    result = invoke("scenarios")
    assert result.exit_code == 0
    assert [line for line in result.stdout.splitlines() if not line.startswith(" ")] == BUILTINS
    assert_narrow(result.stdout)


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["record", "stat", "free", "list", "scenarios"])
def test_help_has_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"memtrace {command}" in result.stdout.split("Examples:")[1]
    assert_narrow(result.stdout)


def test_version_alone_prints_the_version() -> None:
    import memtrace

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"memtrace {memtrace.__version__}\n"
