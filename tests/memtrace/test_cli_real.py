"""``memtrace import`` and ``memtrace snapshot``, run in-process, and the commands
that read what they write (stat, trace, explain, report, replay)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from memtrace.cli import main
from tests.cli import invoke, ok

SHARED = Path(__file__).resolve().parents[3] / "shared" / "real-traces"
PERF = SHARED / "memcg-oom-two-victims.perf-script.txt.gz"
DMESG = SHARED / "memcg-oom-two-victims.dmesg.txt"
OWN = Path(__file__).resolve().parents[1] / "data" / "real"


def ok_json(*args: str | os.PathLike[str]) -> Any:
    return json.loads(ok(*args))


def narrow(text: str) -> None:
    assert not [line for line in text.splitlines() if len(line) >= 80]


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str], code: int = 1) -> str:
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == code, err
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "sample.mtrace"
    ok("import", PERF, "--dmesg", DMESG, "-o", out)
    return out


def test_import_text(tmp_path: Path) -> None:
    out = tmp_path / "s.mtrace"
    text = ok("import", PERF, "-o", out)
    narrow(text)
    assert "perf-script, 38,715 lines" in text.replace("\n    ", " ")
    assert "page_fault" in text and "18,629" in text
    assert "OOM kill 1: python3 (pid 4725)" in text and "OOM kill 2: python3 (pid 4847)" in text
    assert out.exists()


def test_import_json_and_default_output(tmp_path: Path) -> None:
    src = tmp_path / "run.perf-script.txt.gz"
    src.write_bytes(PERF.read_bytes())
    d = ok_json("import", src, "--dmesg", DMESG, "--json")
    assert d["trace"] == str(tmp_path / "run.mtrace")
    assert d["format"] == "perf-script" and d["lines"] == 38715 and d["unknown_lines"] == 0
    assert [k["victim_pid"] for k in d["oom_kills"]] == [4725, 4847]
    assert [k["constraint"] for k in d["oom_kills"]] == ["CONSTRAINT_MEMCG"] * 2
    assert d["events"]["oom_candidate"] == 5 and d["companion_log"] == str(DMESG)


def test_import_ftrace_format(tmp_path: Path) -> None:
    d = ok_json("import", OWN / "memcg-v1-ftrace.trace.txt.gz", "--format", "ftrace", "-o", tmp_path / "f.mtrace",
                "--json")
    assert d["format"] == "ftrace" and d["events"]["oom_kill"] == 2


def test_import_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert fails(capsys, "import", tmp_path / "nope.txt") == f"memtrace: cannot read {tmp_path / 'nope.txt'}: " \
                                                             "no such file"
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert "neither perf script nor ftrace" in fails(capsys, "import", other)
    result = invoke("import", PERF, "--format", "csv")
    assert result.exit_code == 2 and "is not one of" in result.stderr


def test_imported_trace_reads_like_any_trace(imported: Path) -> None:
    """stat, trace, explain and report work on the imported trace."""
    st = ok_json("stat", imported, "--json")
    assert st["events"]["oom_kill"] == 2 and st["complete"] is True
    out = ok("trace", imported, "-e", "oom_kill { printf(\"%d\\n\", victim_pid); }")
    assert "4725" in out and "4847" in out
    ex = ok_json("explain", imported, "--json")
    assert ex["parts"] is not None
    rep = ok_json("report", imported, "--json", "--no-what-if")
    assert [k["victim"]["pid"] for k in rep["kills"]] == [4725, 4847]


def test_report_of_the_log(tmp_path: Path) -> None:
    rep = ok_json("report", DMESG, "--json")
    assert [k["victim"]["pid"] for k in rep["kills"]] == [4725, 4847]
    assert any("4725's oom_score_adj of 300 outweighed 4847's larger RSS (points 14674 against 13383)" in e
               for e in rep["kills"][0]["explanation"])


def test_replay_of_the_imported_trace(imported: Path, tmp_path: Path) -> None:
    d = ok_json("replay", imported, "--sysctl", "vm.swappiness=10", "-o", tmp_path / "r.mtrace", "--json")
    kills = d["replay"]["oom_kills"]
    assert [k.get("pid", k.get("victim_pid")) for k in kills] == [4725, 4847]


def test_snapshot_and_explain(tmp_path: Path) -> None:
    out = tmp_path / "now.json.gz"
    text = ok("snapshot", "-o", out)
    narrow(text)
    assert "snapshot: " in text and "next: memtrace explain" in text
    d = ok_json("snapshot", "-o", out, "--json", "--top", "3")
    assert d["snapshot"] == str(out) and len(d["top_processes"]) <= 3 and d["free"]["total"] > 0
    ex = ok_json("explain", out, "--json")
    assert ex["source"] == "snapshot"
    ram = sum(p["bytes"] for p in ex["parts"] if p["kind"] in ("anon", "file", "shmem", "kernel", "free"))
    assert ram == ex["meminfo"]["MemTotal"]
    text = ok("explain", out)
    assert "ANON" in text or "anon" in text


def test_snapshot_default_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ok("snapshot", "--json")
    assert (tmp_path / "memtrace-snapshot.json").exists()


@pytest.mark.parametrize("command", ["import", "snapshot"])
def test_help_has_examples(command: str) -> None:
    text = ok(command, "--help")
    assert "Examples:" in text


def test_import_refuses_to_overwrite_its_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "x.perf"
    src.write_bytes(PERF.read_bytes())
    assert "would overwrite the input" in fails(capsys, "import", src, "-o", src)
    assert src.read_bytes() == PERF.read_bytes()


def test_an_imported_trace_does_not_claim_what_reclaim_dropped(imported: Path) -> None:
    """A real trace counts reclaimed pages (mm_vmscan_*_end nr_reclaimed) but not which
    pages they were: the report says the page cache dropped and the pages swapped out
    are unknown (null in JSON), never "0 B" beside a non-zero reclaimed figure."""
    rep = ok_json("report", imported, "--json", "--no-what-if")
    for k in rep["kills"]:
        assert k["reclaim"]["file_cache_reclaimed_bytes"] is None and k["reclaim"]["swapped_out_pages"] is None
    text = ok("report", imported, "--no-what-if")
    assert "page cache dropped" not in text.replace("page cache dropped and swapped out: unknown", "")
    assert text.count("page cache dropped and swapped out: unknown") == len(rep["kills"])


LEAK = OWN / "experiments" / "leak"


def test_import_with_a_snapshot_and_replay_with_an_assumption(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    """``import --snapshot``; ``replay --assume-after-kill``: the replay says what it
    assumed the leaker did after its kill. With stop (the allocation it was killed
    in, then nothing) the unchanged replay still kills it, and 192 MiB avoids the
    kill; the default (grow: on at its observed rate) keeps it at 192 MiB, as the
    real kernel did. A bad assumption is an error of one line."""
    out = tmp_path / "leak.mtrace"
    ok("import", LEAK / "leak-L128.perf-script.txt.gz", "--dmesg", LEAK / "leak-L128.dmesg.txt.gz",
       "--snapshot", LEAK / "leak-L128.snapshot.json.gz", "-o", out)
    st = ok_json("stat", out, "--json")
    assert st["events"]["oom_kill"] == 1
    text = ok("replay", out, "--set", "cgroup./memtrace_real_a.max=192MiB", "--assume-after-kill", "stop",
              "-o", tmp_path / "stop.mtrace")
    assert "after-kill assumption: leaker (pid 25239), killed at" in text
    assert "baseline reproduces the recording: kills 1/1 in order" in text
    assert "verdict: OOM kill of leaker (pid 25239) avoided" in text
    stop = ok_json("replay", out, "--set", "cgroup./memtrace_real_a.max=192MiB", "--assume-after-kill", "stop",
                   "-o", tmp_path / "stop.mtrace", "--json")
    assert "assumed to end there, after the allocation it was killed in (--assume-after-kill stop)" in \
        stop["diff"]["assumptions"][0]
    d = ok_json("replay", out, "--set", "cgroup./memtrace_real_a.max=192MiB", "-o", tmp_path / "grow.mtrace",
                "--json")
    assert [k["comm"] for k in d["replay"]["oom_kills"]] == ["leaker"]
    assert "keep growing at that rate" in d["diff"]["assumptions"][0]
    assert d["baseline_score"]["reproduces"] is True
    line = fails(capsys, "replay", out, "--assume-after-kill", "forever", "-o", tmp_path / "x.mtrace")
    assert "--assume-after-kill 'forever': expected stop, continue, grow or grow=SIZE" in line


def test_what_ifs_of_an_imported_trace_speak_the_recordings_clock(imported: Path) -> None:
    """One clock: an imported trace's replays run from 0, but the report prints their
    times on the recording's clock (meta.derived.clock_origin_ns, the first event): the
    after-kill assumption names each victim's kill at exactly the time the recording's
    oom_kill has, and every replayed kill lies inside the recording's span."""
    import re

    rep = ok_json("report", imported, "--json", "--no-what-if")
    recorded = {k["victim"]["pid"]: k["ts_ns"] for k in rep["kills"]}
    text = " ".join(ok("report", imported).split())
    assumed = dict(re.findall(r"assumed after the kill: \S+ \(pid (\d+)\), killed at (\d+\.\d+) s", text))
    assert assumed, text
    for pid, at in assumed.items():
        assert abs(float(at) * 1e9 - recorded[int(pid)]) <= 500_000, (pid, at)  # printed to the ms
    first_s = min(recorded.values()) / 1e9 - 60
    times = [float(t) for t in re.findall(r"killed (?:instead )?at (\d+\.\d+) s", text)]
    assert times and all(t > first_s for t in times), times
