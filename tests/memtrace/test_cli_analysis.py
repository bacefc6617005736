"""``memtrace explain`` and ``memtrace report``, run in-process (typer's CliRunner;
errors through ``memtrace.cli.main``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from memtrace.cli import app, main
from memtrace.cli.explain import parse_at

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
GiB, MiB = 1 << 30, 1 << 20


def invoke(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(app, [os.fspath(a) for a in args])


def ok(*args: str | os.PathLike[str]) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def ok_json(*args: str | os.PathLike[str]) -> Any:
    return json.loads(ok(*args).stdout)


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == 1, err
    assert "Traceback" not in out + err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def narrow(text: str) -> None:
    assert not [line for line in text.splitlines() if len(line) >= 80]


def test_parse_at() -> None:
    assert parse_at(None) is None
    assert parse_at("after-write") == "after-write"
    assert parse_at("2.5") == 2_500_000_000
    assert parse_at("2.5s") == 2_500_000_000
    assert parse_at("1500ms") == 1_500_000_000
    assert parse_at("label:12s") == "12s"


def test_explain_text() -> None:
    out = ok("explain", SAMPLES / "private-file-mapping.mtrace", "--at", "after-write").stdout
    narrow(out)
    assert "memory at after-write" in out
    assert "ANON: 1 GiB" in out and "FILE: 1 GiB" in out
    assert "copy-on-write" in out and "freed by: drop_caches, reclaim" in out


def test_explain_json_parts_sum_to_totals() -> None:
    d = ok_json("explain", SAMPLES / "tmpfs-file.mtrace", "--at", "after-write", "--json")
    assert d["at"] == "after-write" and d["trace"].endswith("tmpfs-file.mtrace")
    for kind, total in d["totals"].items():
        assert sum(p["bytes"] for p in d["parts"] if p["kind"] == kind) == total
    assert d["totals"]["shmem"] == GiB == d["meminfo"]["Shmem"]


def test_explain_at_a_time_and_a_pid() -> None:
    d = ok_json("explain", SAMPLES / "oom-leak.mtrace", "--at", "4.5s", "--pid", "100", "--json")
    assert d["scope"] == "pid 100" and d["ts_ns"] <= 4_500_000_000
    assert d["totals"]["anon"] == 1536 * MiB and d["warnings"] == []


def test_explain_default_is_the_last_reading() -> None:
    d = ok_json("explain", SAMPLES / "shmem-pressure.mtrace", "--json")
    assert d["totals"]["shmem"] == 768 * MiB
    shm = [p for p in d["parts"] if p["kind"] == "shmem"]
    assert shm[0]["owner"]["cgroup"] == "/batch" and shm[0]["freed_by"] == ["unlink"]


def test_explain_graph_export(tmp_path: Path) -> None:
    res = ok("explain", SAMPLES / "fork-cow.mtrace", "--at", "children-wrote", "--graph", tmp_path / "g.graphml")
    assert "graph: wrote" in res.stderr and "8 page runs" in res.stderr
    assert (tmp_path / "g.graphml").read_text().startswith("<?xml")
    ok("explain", SAMPLES / "fork-cow.mtrace", "--at", "children-wrote", "--graph", tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["links"]


def test_explain_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "explain", SAMPLES / "tmpfs-file.mtrace", "--at", "nosuch")
    assert line.startswith("memtrace: ") and "no snapshot labelled 'nosuch'" in line and "after-write" in line
    line = fails(capsys, "explain", SAMPLES / "tmpfs-file.mtrace", "--pid", "4242")
    assert "no process 4242" in line
    line = fails(capsys, "explain", tmp_path / "missing.mtrace")
    assert "cannot read trace" in line


def test_explain_on_a_file_that_is_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a trace and not a snapshot\n" * 10)
    line = fails(capsys, "explain", junk)
    assert line.startswith("memtrace: ") and "junk.bin" in line


def test_report_text_no_what_if() -> None:
    out = ok("report", SAMPLES / "oom-leak.mtrace", "--no-what-if").stdout
    narrow(out)
    assert "OOM kill 1 at 4.929 s: leaker (pid 102) killed" in out
    assert "constraint  global (CONSTRAINT_NONE)" in out
    assert "What if" not in out


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_report_formats_to_a_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"r.{fmt}"
    res = ok("report", SAMPLES / "memcg-oom.mtrace", "--format", fmt, "-o", out, "--no-what-if")
    assert res.stdout == "" and f"report: wrote {out} ({fmt}, 2 OOM kill(s))" in res.stderr
    text = out.read_text()
    if fmt == "json":
        assert [k["victim"]["pid"] for k in json.loads(text)["kills"]] == [4725, 4847]
    elif fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    else:
        assert "## OOM kill 1" in text


def test_report_what_if_asks_each_change_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """memcg-oom's two kills share some candidate changes: each distinct change is
    replayed once and judged for every kill it applies to."""
    import memtrace.whatif
    from memtrace.analysis.report import ReplayOutcome

    asked: list[str] = []

    def fake(run: Any, change: Any) -> ReplayOutcome:
        asked.append(change.label)
        if change.kind == "limit":
            return ReplayOutcome()
        return ReplayOutcome(kills=((4847, "python3", 1, 5), (4724, "python3", 1, 6)))

    monkeypatch.setattr(memtrace.whatif, "replay_change", fake)
    d = ok_json("report", SAMPLES / "memcg-oom.mtrace", "--json", "--jobs", "1")
    assert len(asked) == len(set(asked)) == 6
    first, second = ({w["change"]: w["outcome"] for w in k["what_if"]} for k in d["kills"])
    assert first["memory.max of /oracle_oom +50%"] == second["memory.max of /oracle_oom +50%"] == "avoided"
    assert first["oom_score_adj of python3 (pid 4725) = 0"] == "victim changed"
    assert second["oom_score_adj of python3 (pid 4847) = -1000"] == "victim changed"  # 4724 dies second


@pytest.mark.slow
def test_what_if_answers_do_not_depend_on_the_number_of_jobs() -> None:
    """The replays run in forked workers with --jobs 2 and in this process with
    --jobs 1: the same report, byte for byte, with every change answered."""
    one = ok("report", SAMPLES / "shmem-pressure.mtrace", "--json", "--jobs", "1").stdout
    two = ok("report", SAMPLES / "shmem-pressure.mtrace", "--json", "--jobs", "2").stdout
    assert one == two
    what_if = [w for k in json.loads(one)["kills"] for w in k["what_if"]]
    assert len(what_if) >= 2 and all(w["outcome"] for w in what_if)


def test_report_without_a_kill(tmp_path: Path) -> None:
    out = ok("report", SAMPLES / "tmpfs-file.mtrace").stdout
    assert "0 OOM kill(s)" in out and "No OOM kill" in out


def test_report_bad_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", os.fspath(SAMPLES / "oom-leak.mtrace"), "--format", "pdf"])
    assert exc.value.code == 2


def test_report_of_a_kernel_log(tmp_path: Path) -> None:
    """A kernel log is not a trace: report hands it to the log parser (the OOM report
    text that 'memtrace dmesg' prints is one)."""
    log = tmp_path / "kern.log"
    log.write_text(ok("dmesg", SAMPLES / "memcg-oom.mtrace").stdout)
    d = ok_json("report", log, "--json")
    assert [k["victim"]["pid"] for k in d["kills"]] == [4725, 4847]


def test_ps_text_and_json(tmp_path: Path) -> None:
    """ps of fork-cow after the children: the parent's 512 MiB of anon and its
    oom_score (worked by hand in tests/analysis/test_ps.py); JSON rows carry the
    same numbers; a snapshot file shows the kernel's own score beside ours."""
    out = ok("ps", SAMPLES / "fork-cow.mtrace", "--at", "after-children").stdout
    narrow(out)
    assert "processes at after-children" in out
    row = next(line.split() for line in out.splitlines() if " parent " in line)
    assert row[2] == "512Mi" and row[-1] == "709" and row[-2] == "0"
    d = ok_json("ps", SAMPLES / "fork-cow.mtrace", "--at", "after-children", "--json")
    parent = next(p for p in d["processes"] if p["comm"] == "parent")
    assert parent["rss_anon_bytes"] == 512 * MiB and parent["oom_score"] == 709
    assert d["totalpages"] == 2_051_840 and d["kernel_version"] == "6.13"
    snap = tmp_path / "now.json"
    ok("snapshot", "-o", snap)
    d = ok_json("ps", snap, "--json", "--sort", "rss")
    assert d["processes"] and any(p["kernel_oom_score"] is not None for p in d["processes"])
    rss = [p["rss_bytes"] for p in d["processes"]]
    assert rss == sorted(rss, reverse=True)
    narrow(ok("ps", snap).stdout)


def test_ps_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "ps", SAMPLES / "fork-cow.mtrace", "--at", "nosuch")
    assert "no snapshot labelled 'nosuch'" in line
    snap = tmp_path / "now.json"
    ok("snapshot", "-o", snap)
    assert "--at needs a trace" in fails(capsys, "ps", snap, "--at", "1s")
    assert "cannot read" in fails(capsys, "ps", tmp_path / "missing.mtrace")
    result = invoke("ps", SAMPLES / "fork-cow.mtrace", "--sort", "colour")
    assert result.exit_code == 2 and "'colour' is not one of points" in result.output


@pytest.mark.parametrize("command", ["explain", "report", "ps"])
def test_help_has_examples(command: str) -> None:
    out = ok(command, "--help").stdout
    assert "Examples:" in out and f"memtrace {command}" in out
