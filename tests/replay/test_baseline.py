"""The baseline score: how closely an unchanged replay reproduces its recording."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from memtrace.analysis.importers import import_trace
from memtrace.replay import Overrides, replay_trace, score_baseline, summarize_trace
from memtrace.replay.baseline import MIN_COMPARED_BYTES

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
REAL = ROOT / "tests" / "data" / "real"


@pytest.mark.parametrize("name", ["oom-leak", "memcg-oom", "shmem-pressure", "fork-cow"])
def test_an_unchanged_replay_of_a_simulated_trace_reproduces_it_exactly(name: str, tmp_path: Path) -> None:
    trace = SAMPLES / f"{name}.mtrace"
    recorded = summarize_trace(trace)
    score = score_baseline(recorded, summarize_trace(replay_trace(trace, tmp_path / "r.mtrace").trace))
    assert score.reproduces and score.reasons == ()
    assert score.kills_matched == len(recorded.oom_kills)
    assert score.worst_deviation == 0.0
    assert {m.pid for m in score.memory} == {p.pid for p in recorded.processes.values()
                                             if p.peak_rss >= MIN_COMPARED_BYTES}
    assert score.summary().startswith("baseline reproduces the recording: kills ")


def test_a_replay_that_kills_less_does_not_reproduce_and_says_who(tmp_path: Path) -> None:
    """memcg-oom killed two python3 processes (4725, then 4847); with 128 MiB only the first dies."""
    trace = SAMPLES / "memcg-oom.mtrace"
    replayed = replay_trace(trace, tmp_path / "r.mtrace", Overrides.parse(sets=["cgroup./oracle_oom.max=128MiB"]))
    score = score_baseline(summarize_trace(trace), summarize_trace(replayed.trace))
    assert not score.reproduces
    assert [c for c, _ in score.kills_recorded] == ["python3", "python3"]
    assert score.kills_matched == 1 and len(score.kills_replayed) == 1
    (reason,) = score.reasons
    assert reason.startswith("python3 (pid 4847) was killed at ") and "in the recording but not in the replay" in reason
    assert "kills 1/2 in order (1 in the replay)" in score.summary()


def test_the_per_process_memory_is_the_rss_stat_peak_and_last(tmp_path: Path) -> None:
    """fork-cow: the parent maps and writes 512 MiB (131,072 anon pages)."""
    summary = summarize_trace(SAMPLES / "fork-cow.mtrace")
    parent = next(p for p in summary.processes.values() if p.comm == "parent")
    assert parent.peak["anon"] == 512 << 20
    assert parent.peak_rss >= parent.peak["anon"]


def test_the_unchanged_replay_of_a_real_import_reproduces_its_two_kills(tmp_path: Path) -> None:
    perf, dmesg = tmp_path / "p.txt", tmp_path / "k.txt"
    perf.write_bytes(gzip.decompress((REAL / "memcg-v1-two-kills.perf-script.txt.gz").read_bytes()))
    dmesg.write_bytes(gzip.decompress((REAL / "memcg-v1-two-kills.dmesg.txt.gz").read_bytes()))
    trace = tmp_path / "real.mtrace"
    import_trace(perf, trace, dmesg=dmesg)
    score = score_baseline(summarize_trace(trace), summarize_trace(replay_trace(trace, tmp_path / "r.mtrace").trace))
    assert score.reproduces, score.reasons
    assert [c for c, _ in score.kills_replayed] == ["memtrace-leaky", "memtrace-leaky"]
    assert score.worst_deviation is not None and score.worst_deviation < 0.05
