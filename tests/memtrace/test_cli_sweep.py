"""memtrace sweep and memtrace export from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtrace.cli import app, main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MEMCG_OOM = SAMPLES / "memcg-oom.mtrace"
LIMIT = "cgroup./oracle_oom.max"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_sweep_table_json_results_and_plot(tmp_path: Path) -> None:
    code, out = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB:320MiB:128MiB", "--serial",
                    "-o", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "k.png"))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "baseline reproduces the recording: kills 2/2 in order, RSS within 0%"
    lines = lines[2:]
    assert lines[0].split()[:2] == ["MAX", "OUTCOME"]
    assert [ln.split()[0] for ln in lines[1:]] == ["64MiB", "192MiB", "320MiB"]
    assert "kill python3,python3" in lines[1] and "no kill" in lines[3]
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith(f"{LIMIT},seed,outcome")
    assert (tmp_path / "k.png").read_bytes()[:4] == b"\x89PNG"
    code, out = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB,320MiB", "--serial", "--json")
    doc = json.loads(out)
    cells = doc["cells"]
    assert [c["kills"] for c in cells] == [2, 0] and cells[0][LIMIT] == "64MiB"
    assert doc["baseline"]["reproduces"] is True and doc["baseline"]["kills_matched"] == 2


def test_find_min_says_between_which_values(tmp_path: Path) -> None:
    code, out = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB:512MiB:4MiB", "--find-min", LIMIT,
                    "--serial", "--json")
    assert code == 0, out
    (b,) = json.loads(out)["boundaries"]
    assert b["outcome_above"] == "no kill" and b["below"] is not None
    code, text = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB:512MiB:4MiB", "--find-min", LIMIT,
                     "--serial")
    assert f"is {b['above']}; {b['below']} still gives kill" in " ".join(text.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--vary", "vm.swappiness=0:10"], "START:STOP:STEP"),
    (["--vary", "vm.swappiness=0,10", "--find-min", "vm.nosuch"], "vary it too"),
    (["--vary", "vm.swappiness=0,10", "--vary", "vm.swappiness=5"], "names a key twice"),
    (["--vary", "vm.swappiness=0,10", "--find-min", "vm.swappiness", "--find-max", "vm.swappiness"], "choose one"),
])
def test_bad_sweeps_are_one_line_usage_errors(args: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(MEMCG_OOM), "--serial", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_export_formats(tmp_path: Path) -> None:
    code, out = run("export", str(MEMCG_OOM), "-f", "parquet", "-o", str(tmp_path / "t"), "--json")
    assert code == 0, out
    written = json.loads(out)
    assert written["rows"]["oom_kill"] == 2 and (tmp_path / "t" / "oom_kill.parquet").exists()
    code, out = run("export", str(MEMCG_OOM), "-f", "chrome-json", "-o", str(tmp_path / "c.json"))
    assert code == 0 and json.loads((tmp_path / "c.json").read_text())["traceEvents"]
    code, out = run("export", str(MEMCG_OOM), "-f", "perfetto", "-o", str(tmp_path / "p.pftrace"))
    assert code == 0 and (tmp_path / "p.pftrace").stat().st_size > 0


def test_export_refuses_an_unknown_format_and_a_non_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(MEMCG_OOM), "-f", "xml", "-o", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "choose one of perfetto" in capsys.readouterr().err
    junk = tmp_path / "junk.mtrace"
    junk.write_text("hello")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(junk), "-f", "csv", "-o", str(tmp_path / "y")])
    assert exit_info.value.code == 1 and "not a memtrace trace" in capsys.readouterr().err
