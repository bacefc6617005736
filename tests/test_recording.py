"""Recording is deterministic and lossless; sample traces stay byte-identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memtrace.api import record
from memtrace.kernel.workload import builtin_names
from memtrace.tracer import Collector, concat
from memtrace.tracer.tracefile import TraceReader

SAMPLES = Path(__file__).parent.parent / "sample_traces"


def test_recording_twice_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mtrace", tmp_path / "b.mtrace"
    record("shared-anon-mapping", a)
    record("shared-anon-mapping", b)
    assert a.read_bytes() == b.read_bytes()


def test_a_different_sysctl_gives_a_different_trace(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mtrace", tmp_path / "b.mtrace"
    record("page-cache-read", a)
    record("page-cache-read", b, sysctls={"vm.watermark_scale_factor": 100})
    assert a.read_bytes() != b.read_bytes()
    assert TraceReader(b).meta["sysctl_overrides"] == {"vm.watermark_scale_factor": "100"}


def test_events_read_back_equal_events_emitted(tmp_path: Path) -> None:
    """Every column of every tracepoint survives the file exactly, in seq order."""
    path = tmp_path / "t.mtrace"
    live = Collector()
    result = record("private-file-mapping", path, consumers=[live])
    reader = TraceReader(path)
    read = Collector()
    for batch in reader.ordered_batches():
        read.on_batch(batch)
    names = {b.tp.name for b in live.batches}
    assert names == {b.tp.name for b in read.batches}
    for name in names:
        assert concat(live.of(name)).equals(concat(read.of(name))), name
    seqs = np.concatenate([b["seq"] for b in read.batches])
    assert (np.diff(seqs.astype(np.int64)) == 1).all() and seqs[0] == 0
    assert sum(result.events.values()) == len(seqs)
    assert reader.damage is None


def test_header_records_the_run(tmp_path: Path) -> None:
    path = tmp_path / "t.mtrace"
    record("tmpfs-file", path, seed=7)
    meta = TraceReader(path).meta
    assert meta["scenario"] == "tmpfs-file"
    assert meta["seed"] == 7
    assert meta["machine"]["ram_bytes"] == 24 << 30
    assert meta["sysctl"]["vm.overcommit_memory"] == 0
    assert meta["workload"]["process"][0]["name"] == "tmpfs-writer"


@pytest.mark.slow
@pytest.mark.parametrize("name", builtin_names())
def test_sample_trace_is_what_a_fresh_recording_writes(name: str, tmp_path: Path) -> None:
    """A change to the format or the simulation must show up as a deliberate diff
    of sample_traces/ (regenerate with `make sample-traces`)."""
    sample = SAMPLES / f"{name}.mtrace"
    assert sample.exists(), f"{sample} is missing: run `make sample-traces`"
    fresh = tmp_path / f"{name}.mtrace"
    record(name, fresh)
    assert fresh.read_bytes() == sample.read_bytes(), f"{sample} is stale: run `make sample-traces`"


class _FailsAfter:
    """A consumer that raises once it has seen ``n`` batches: a run that fails midway."""

    def __init__(self, n: int) -> None:
        self.left = n

    def on_batch(self, batch: object) -> None:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("the run failed")


def test_a_failed_run_leaves_an_existing_file_as_it_was(tmp_path: Path) -> None:
    """Recording over an existing file writes beside it and renames only when the
    run finishes; a run that fails leaves the old file and nothing else."""
    out = tmp_path / "keep.mtrace"
    out.write_bytes(b"an earlier recording")
    with pytest.raises(RuntimeError):
        record("private-anon-mapping", out, consumers=[_FailsAfter(10)])
    assert out.read_bytes() == b"an earlier recording"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mtrace"]
    record("private-anon-mapping", out)
    assert out.read_bytes() == (SAMPLES / "private-anon-mapping.mtrace").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mtrace"]


def test_a_failed_run_into_a_new_file_keeps_what_it_recorded(tmp_path: Path) -> None:
    """With no earlier file, the trace is written in place: what was recorded before
    the failure stays readable."""
    out = tmp_path / "new.mtrace"
    with pytest.raises(RuntimeError):
        record("private-anon-mapping", out, consumers=[_FailsAfter(10)])
    reader = TraceReader(out)
    assert sum(b.n for b in reader.batches()) >= 10


def test_a_run_stopped_by_a_scenario_error_leaves_no_new_file(tmp_path: Path) -> None:
    """An error in the scenario found mid-run (a ScenarioError) is the user's to fix:
    the half trace of it is removed, as a scenario refused at load writes none."""
    from memtrace.errors import ScenarioError

    class Refuses(_FailsAfter):
        def on_batch(self, batch: object) -> None:
            self.left -= 1
            if self.left < 0:
                raise ScenarioError("s.toml: step 3: refused mid-run")

    out = tmp_path / "new.mtrace"
    with pytest.raises(ScenarioError):
        record("private-anon-mapping", out, consumers=[Refuses(10)])
    assert not out.exists()
