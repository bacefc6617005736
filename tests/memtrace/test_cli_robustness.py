"""Bad input to the CLI: one line naming the problem, exit 1, nothing destroyed, no hang.

Each case is one a user can hit by accident: an output that is the input, a pipe or
a device where a file was expected, a file that is not what the command reads, a
trace whose chunks are doubled or missing.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtrace.cli import app, main
from memtrace.cli._io import input_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
SHARED = ROOT.parent / "shared" / "real-traces"
DMESG = SHARED / "memcg-oom-two-victims.dmesg.txt"
PERF = SHARED / "memcg-oom-two-victims.perf-script.txt.gz"


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == 1, err
    assert "Traceback" not in out + err and "internal error" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_an_output_that_is_the_input_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.mtrace"
    shutil.copy(SAMPLES / "memcg-oom.mtrace", trace)
    log = tmp_path / "k.log"
    shutil.copy(DMESG, log)
    toml = tmp_path / "s.toml"
    toml.write_text('name = "s"\n[machine]\nram = "256MiB"\n[[process]]\nname = "p"\n'
                    'steps = [{ op = "snapshot", label = "s" }]\n')
    before = {p: p.read_bytes() for p in (trace, log, toml)}
    for args in (["report", trace, "--no-what-if", "-o", trace], ["report", log, "-o", log],
                 ["explain", trace, "--graph", trace], ["record", toml, "-o", toml],
                 ["import", PERF, "--dmesg", log, "-o", log]):
        line = fails(capsys, *args)
        assert "would overwrite the input" in line, args
    assert {p: p.read_bytes() for p in before} == before


def test_import_never_replaces_a_special_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The import assembles its trace beside -o and renames it there: a FIFO (or a
    device such as /dev/full) at -o is refused rather than replaced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in fails(capsys, "import", PERF, "-o", fifo)
    assert fifo.is_fifo()


def test_devices_are_refused_not_read_for_ever(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["stat", "/dev/zero"], ["report", "/dev/zero"], ["explain", "/dev/zero"], ["ps", "/dev/zero"],
                 ["replay", "/dev/zero"], ["diff", "/dev/zero", "/dev/zero"], ["record", "/dev/zero"],
                 ["trace", "/dev/zero", "-e", "BEGIN { }"], ["import", "/dev/zero", "-o", "/tmp/never.mtrace"]):
        line = fails(capsys, *args)
        assert "/dev/zero" in line and "not a regular file" in line, args


def test_a_pipe_is_read_where_a_log_or_scenario_is_expected(tmp_path: Path) -> None:
    """A FIFO (what a shell makes of <(journalctl -k)) is copied once, then read as
    a file: the report of the real memcg log from a pipe finds its two kills."""
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    import threading

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(DMESG.read_bytes())

    t = threading.Thread(target=feed)
    t.start()
    copy = input_file(fifo)
    t.join()
    assert copy != fifo and copy.read_bytes() == DMESG.read_bytes()
    result = CliRunner().invoke(app, ["report", os.fspath(copy), "--json"])
    assert result.exit_code == 0 and '"pid": 4725' in result.stdout


def test_a_trace_from_a_pipe_says_to_copy_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    line = fails(capsys, "stat", fifo)
    assert "not a regular file" in line and "copy it to a file first" in line


def test_trace_target_that_is_neither_trace_nor_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mtrace"
    junk.write_bytes(b"\x00junk" * 20)
    zipped = tmp_path / "t.mtrace.gz"
    zipped.write_bytes(gzip.compress((SAMPLES / "fork-cow.mtrace").read_bytes()))
    for target in (junk, zipped, DMESG):
        line = fails(capsys, "trace", target, "-e", "BEGIN { }")
        assert "not a memtrace trace (bad magic)" in line and "unknown scenario" not in line
    assert "is a directory" in fails(capsys, "trace", tmp_path, "-e", "BEGIN { }")


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, type) of each frame (docs/trace-format.md: marker, u32 length,
    u32 crc32, payload whose first byte is the type)."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        _marker, length, _crc = struct.unpack_from("<4sII", data, pos)
        out.append((pos, pos + 12 + length, data[pos + 12 : pos + 13]))
        pos += 12 + length
    return out


def test_stat_tells_of_doubled_and_missing_chunks(tmp_path: Path) -> None:
    """Every checksum is valid, but the footer's count differs from the events read:
    stat warns and does not call the trace complete."""
    import json

    data = (SAMPLES / "fork-cow.mtrace").read_bytes()
    chunks = [f for f in _frames(data) if f[2] == b"C"]
    start, end, _ = chunks[1]
    doubled, missing = tmp_path / "doubled.mtrace", tmp_path / "missing.mtrace"
    doubled.write_bytes(data[:end] + data[start:end] + data[end:])
    missing.write_bytes(data[:start] + data[end:])
    for path in (doubled, missing):
        result = CliRunner().invoke(app, ["stat", os.fspath(path), "--json"])
        assert result.exit_code == 0
        d = json.loads(result.stdout)
        assert d["complete"] is False and any("the footer counts" in w for w in d["warnings"])
        assert "the footer counts" in result.stderr


def test_explain_pid_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    snap = tmp_path / "now.json"
    assert CliRunner().invoke(app, ["snapshot", "-o", os.fspath(snap)]).exit_code == 0
    assert "no process 999999999 in the snapshot" in fails(capsys, "explain", snap, "--pid", "999999999")
    line = fails(capsys, "explain", SAMPLES / "oom-leak.mtrace", "--at", "0.05s", "--pid", "102")
    assert "no process 102 at" in line and "it may start later" in line


@pytest.mark.parametrize("args", [["record", "fork-cow", "--seed", "-1"],
                                  ["record", "fork-cow", "--seed", str(1 << 64)],
                                  ["report", str(SAMPLES / "oom-leak.mtrace"), "--window", "nan"],
                                  ["report", str(SAMPLES / "oom-leak.mtrace"), "--window", "inf"],
                                  ["snapshot", "--top", "0"]])
def test_numbers_out_of_range_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_replay_of_an_imported_trace_does_not_claim_a_version_mismatch(tmp_path: Path) -> None:
    imported = tmp_path / "real.mtrace"
    assert CliRunner().invoke(app, ["import", os.fspath(PERF), "-o", os.fspath(imported)]).exit_code == 0
    result = CliRunner().invoke(app, ["replay", os.fspath(imported), "-o", os.fspath(tmp_path / "r.mtrace")])
    assert result.exit_code == 0 and "not byte-identical" not in result.stderr


def test_import_in_the_wrong_format_warns(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import", os.fspath(PERF), "--format", "ftrace",
                                      "-o", os.fspath(tmp_path / "x.mtrace")])
    assert result.exit_code == 0
    assert "none of its 38,715 lines is a ftrace event line" in result.stderr


def test_help_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay examples of --help work on the sample traces (one named a cgroup
    the sample does not have)."""
    monkeypatch.chdir(tmp_path)
    for name in ("memcg-oom", "tmpfs-file"):
        shutil.copy(SAMPLES / f"{name}.mtrace", tmp_path)
    text = CliRunner().invoke(app, ["replay", "--help"]).stdout
    examples = [line.split()[1:] for line in text.splitlines() if line.strip().startswith("memtrace replay ")]
    assert examples
    for args in examples:
        if args[0] not in ("memcg-oom.mtrace", "tmpfs-file.mtrace"):
            continue
        result = CliRunner().invoke(app, ["replay", *args])
        assert result.exit_code == 0, (args, result.output)


def test_import_checks_its_companions(tmp_path: Path) -> None:
    out = os.fspath(tmp_path / "x.mtrace")
    result = CliRunner().invoke(app, ["import", os.fspath(PERF), "-o", out, "--kernel-version", "banana"])
    assert result.exit_code == 2 and "'banana' is not a kernel version" in result.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    result = CliRunner().invoke(app, ["import", os.fspath(PERF), "-o", out, "--dmesg", os.fspath(junk)])
    assert result.exit_code == 0 and "does not read as a kernel log" in result.stderr
