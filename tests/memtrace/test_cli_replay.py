"""``memtrace replay`` and ``memtrace diff``, run in-process.

Expected figures come from the scenario: private-anon-mapping writes 1 GiB of
4 KiB pages (262,144 faults, AnonPages peaks at 1 GiB); on a 768 MiB machine
without swap its 1 GiB mmap is refused (overcommit mode 0 refuses a request larger
than RAM + swap), so it faults nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from memtrace.cli import main
from tests.cli import invoke

GiB = 1 << 30


def assert_narrow(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) >= 80]
    assert not wide, wide


@pytest.fixture(scope="module")
def pam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """private-anon-mapping recorded through the CLI, and what record --json said."""
    path = tmp_path_factory.mktemp("cli") / "pam.mtrace"
    result = invoke("record", "private-anon-mapping", "-o", path, "--json")
    assert result.exit_code == 0, result.stderr
    return path, json.loads(result.stdout)


def test_replay_without_changes_says_byte_identical(pam: tuple[Path, dict[str, Any]]) -> None:
    trace, doc = pam
    result = invoke("replay", trace)
    assert result.exit_code == 0, result.stderr
    out_path = trace.with_name("pam.replay.mtrace")
    assert out_path.read_bytes() == trace.read_bytes()
    first, second = result.stdout.splitlines()
    assert first == f"replayed {trace}"
    assert second.startswith(f"wrote {out_path}: {sum(doc['events'].values()):,} events, ")
    assert second.endswith(", byte-identical to the recording")
    assert result.stderr == ""


def test_replay_json_has_record_shaped_summaries(pam: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    trace, doc = pam
    result = invoke("replay", trace, "-o", tmp_path / "same.mtrace", "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert list(out) == ["baseline", "replay", "diff", "baseline_score"]
    for side in ("baseline", "replay"):
        assert list(out[side]) == list(doc)
        for key in ("scenario", "sysctl", "events", "oom_kills", "errors", "duration_ns", "pids"):
            assert out[side][key] == doc[key], (side, key)
        assert [(s["label"], s["ts_ns"], s["free"]) for s in out[side]["snapshots"]] == [
            (s["label"], s["ts_ns"], s["free"]) for s in doc["snapshots"]]
    assert out["baseline"]["trace_bytes"] == doc["trace_bytes"]
    assert out["diff"]["identical"] is True
    assert out["diff"]["byte_identical"] is True
    assert out["diff"]["verdict"] == "no difference: both traces hold the same events"
    assert out["diff"]["first_divergence"] is None


def test_replay_on_less_ram_prints_the_diff(pam: tuple[Path, dict[str, Any]], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    trace, doc = pam
    pid = doc["pids"]["anon-writer"]
    monkeypatch.chdir(trace.parent)  # short paths: lines stay under 80 columns
    trace = Path(trace.name)
    small = Path("small.mtrace")
    result = invoke("replay", trace, "--set", "machine.ram=768MiB", "-o", small)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert_narrow(text)
    lines = text.splitlines()
    assert lines[0] == f"replayed {trace} with machine.ram=768MiB"
    assert lines[1].startswith(f"wrote {small}: ")
    assert f"verdict: mmap of anon-writer (pid {pid}) now refused with ENOMEM at" in text
    assert "changed: machine.ram_bytes 24 GiB -> 768 MiB" in text
    rows = {line[:26].strip(): line[26:].split() for line in lines if line[:26].strip() and len(line) > 26}
    assert rows["OOM kills"] == ["0", "0", "0"]
    assert rows["ENOMEM refusals"] == ["0", "1", "+1"]
    assert rows["anon peak MiB"] == ["1,024", "0", "-1,024"]
    assert any(line.startswith("tracepoints: page_fault 262,144 -> 0") for line in lines)
    assert any(line.startswith("first divergence: seq ") for line in lines)
    assert f"ENOMEM REPLAY: anon-writer (pid {pid}) mmap step 4 at" in text
    json_out = json.loads(invoke("replay", trace, "--set", "machine.ram=768MiB", "-o", small, "--json").stdout)
    assert json_out["diff"]["overrides"] == ["machine.ram=768MiB"]
    assert json_out["replay"]["errors"][0]["errno"] == "ENOMEM"
    assert json_out["replay"]["events"].get("page_fault") is None
    assert json_out["diff"]["memory_peak_bytes"]["a"]["anon"] == GiB


def test_diff_of_a_trace_with_itself(pam: tuple[Path, dict[str, Any]]) -> None:
    trace, _doc = pam
    result = invoke("diff", trace, trace)
    assert result.exit_code == 0
    assert result.stdout == f"A: {trace}\nB: {trace}\nverdict: no difference: both traces hold the same events\n"


def test_diff_json_names_both_sides(pam: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    trace, _doc = pam
    strict = tmp_path / "strict.mtrace"
    assert invoke("replay", trace, "--sysctl", "vm.overcommit_memory=2", "--sysctl", "vm.overcommit_ratio=1",
                  "-o", strict).exit_code == 0
    out = json.loads(invoke("diff", trace, strict, "--json").stdout)
    assert out["a"] == str(trace) and out["b"] == str(strict)
    assert out["changes"]["vm.overcommit_memory"] == {"a": 0, "b": 2}
    assert out["events"]["b"]["sysctl_set"] == 2
    for key in ("oom_kills", "enomem", "memory_peak_bytes", "memory_final_bytes", "major_faults",
                "reclaimed_kswapd_pages", "reclaimed_direct_pages", "swap_outs", "kswapd_wakes", "events",
                "first_divergence", "verdict"):
        assert key in out
    assert out["first_divergence"]["seq"] == 0 or out["first_divergence"]["tracepoint"]


def test_bad_overrides_are_one_line(pam: tuple[Path, dict[str, Any]], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    trace, _doc = pam
    for args, problem in [
        (["--set", "ram=1GiB"], "must start with 'machine.' or 'cgroup.'"),
        (["--set", "machine.ram=lots"], "--set machine.ram=lots"),
        (["--sysctl", "vm.swappiness=500"], "outside 0..200"),
        (["--set", "cgroup./x.max=1GiB"], "no cgroup '/x'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["replay", os.fspath(trace), "-o", os.fspath(tmp_path / "o.mtrace"), *args])
        out, err = capsys.readouterr()
        assert exc.value.code == 1 and out == ""
        assert len(err.splitlines()) == 1 and err.startswith("memtrace: ") and problem in err, err


def test_missing_trace_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["diff", os.fspath(tmp_path / "nope.mtrace"), os.fspath(tmp_path / "nope.mtrace")])
    _out, err = capsys.readouterr()
    assert exc.value.code == 1
    assert err == f"memtrace: cannot read trace {tmp_path / 'nope.mtrace'}: No such file or directory\n"


@pytest.mark.parametrize("command", ["replay", "diff"])
def test_help_has_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"memtrace {command} " in result.stdout
    assert_narrow(result.stdout)


def test_replay_json_scores_the_baseline(tmp_path: Path) -> None:
    """A simulated recording's baseline is exact (its unchanged replay is byte-identical);
    an imported one's is measured by an unchanged replay."""
    import gzip
    import json as json_mod

    from memtrace.analysis.importers import import_trace

    samples = Path(__file__).resolve().parents[2] / "sample_traces"
    result = invoke("replay", samples / "memcg-oom.mtrace", "--set", "cgroup./oracle_oom.max=128MiB",
                    "-o", tmp_path / "r.mtrace", "--json")
    out = json_mod.loads(result.stdout)
    assert out["baseline_score"]["exact"] is True and out["baseline_score"]["reproduces"] is True
    real = Path(__file__).resolve().parents[1] / "data" / "real"
    perf, dmesg = tmp_path / "p.txt", tmp_path / "k.txt"
    perf.write_bytes(gzip.decompress((real / "memcg-v1-two-kills.perf-script.txt.gz").read_bytes()))
    dmesg.write_bytes(gzip.decompress((real / "memcg-v1-two-kills.dmesg.txt.gz").read_bytes()))
    import_trace(perf, tmp_path / "real.mtrace", dmesg=dmesg)
    result = invoke("replay", tmp_path / "real.mtrace", "--set", "cgroup./memtrace_test.max=+50%",
                    "-o", tmp_path / "r2.mtrace", "--json")
    assert result.exit_code == 0, result.stderr
    score = json_mod.loads(result.stdout)["baseline_score"]
    assert score["reproduces"] is True and score["kills_matched"] == 2
    assert json_mod.dumps(score)
