"""Damaged traces fed to replay, diff and free: warnings, never a traceback, and no
intact chunk before the damage is lost.

Ground truth comes from an independent walk of the frame layout
(docs/trace-format.md): which chunks lie wholly before a cut, and their event counts
read straight from the zlib/msgpack chunk bodies.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.api import record
from memtrace.cli import main
from memtrace.kernel.workload import MachineSpec, Mmap, ProcessSpec, Scenario, Snapshot, Touch
from memtrace.replay import diff_traces, replay_trace, summarize_trace

from .helpers import frames_of, write_trace
from .test_diff import pressure_run

FIXTURE_OK = [HealthCheck.function_scoped_fixture]

TINY = Scenario(
    name="tiny",
    machine=MachineSpec(ram_bytes=1 << 30),
    processes=(ProcessSpec("toucher", steps=(
        Snapshot("before"), Mmap("buf", 4 << 20), Touch("buf", write=True), Snapshot("after"))),),
)


def chunk_info(data: bytes) -> list[tuple[int, int, int, int]]:
    """(start, end, events, group) of every chunk frame, decoded by hand."""
    out = []
    for start, end, kind in frames_of(data):
        if kind == b"C":
            body = msgpack.unpackb(zlib.decompress(data[start + 13 : end]), raw=False)
            out.append((start, end, body["n"], body["group"]))
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real recording of a built-in scenario of a few dozen frames."""
    path = tmp_path_factory.mktemp("rec") / "posix-shm.mtrace"
    record("posix-shm", path)
    return path


@pytest.fixture(scope="module")
def many_chunks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 events in chunks of at most 2 (9 flush groups), with a replayable workload."""
    path = tmp_path_factory.mktemp("hand") / "many.mtrace"
    meta = {"scenario": "tiny", "workload": TINY.to_dict(), "sysctl_overrides": {}, "seed": 0,
            "machine": {"ram_bytes": 1 << 30, "swap_bytes": 0, "kernel_version": "6.13"}}
    return write_trace(path, pressure_run, chunk_events=2, meta=meta, extra={"errors": [], "oom_kills": []})


def cut_points(data: bytes, inside: tuple[float, ...] = (0.5,)) -> list[int]:
    """Every frame boundary after the header, and points inside every frame after it
    (``inside``: fractions of the frame; 0 cuts inside its 12-byte frame header)."""
    frames = frames_of(data)
    points = []
    for start, end, _kind in frames[1:]:
        points.append(start)
        points += [start + 5 if f == 0 else start + int((end - start) * f) for f in inside]
    return [*points, len(data)]


def check_cut(full: Path, cut: Path, chunks: list[tuple[int, int, int, int]], size: int, at: int) -> None:
    """Diff ``full`` with ``cut`` (its first ``at`` bytes; ``chunks`` from chunk_info)."""
    intact = [c for c in chunks if c[1] <= at]
    recovered = sum(c[2] for c in intact)
    d = diff_traces(full, cut)
    assert d.b.total_events == recovered  # every chunk wholly before the cut is read
    total = sum(c[2] for c in chunks)
    if recovered == total:
        assert d.divergence is None
    else:
        assert d.divergence is not None and d.divergence.index <= recovered
        groups = {c[3] for c in intact}
        if all(c[3] not in groups for c in chunks if c[1] > at):  # cut between two groups
            assert d.divergence.index == recovered and d.divergence.b is None
    if at < size:
        assert not d.b.complete and d.b.warnings
        assert os.path.basename(cut) in d.verdict


@pytest.mark.slow
def test_truncation_at_every_boundary_and_inside_frames_of_a_recording(recorded: Path, tmp_path: Path) -> None:
    data = recorded.read_bytes()
    reference = replay_trace(recorded, tmp_path / "ref.mtrace", memtrace_version="0.1.0")
    assert reference.byte_identical
    points = cut_points(data)
    chunks = chunk_info(data)
    for i, at in enumerate(points):
        cut = tmp_path / f"cut{at}.mtrace"
        cut.write_bytes(data[:at])
        check_cut(recorded, cut, chunks, len(data), at)
        if i in (0, len(points) // 2, len(points) - 2):
            # Only the header is needed to replay: the replay is the whole run.
            again = replay_trace(cut, tmp_path / f"re{at}.mtrace", memtrace_version="0.1.0")
            assert Path(again.trace).read_bytes() == data
            Path(again.trace).unlink()
        cut.unlink()


def test_truncation_of_a_trace_of_many_groups(many_chunks: Path, tmp_path: Path) -> None:
    data = many_chunks.read_bytes()
    assert len({c[3] for c in chunk_info(data)}) == 9
    chunks = chunk_info(data)
    for at in cut_points(data, (0, 0.3, 0.5, 0.9)):
        cut = tmp_path / f"cut{at}.mtrace"
        cut.write_bytes(data[:at])
        check_cut(many_chunks, cut, chunks, len(data), at)


def run_cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = 0
    try:
        main([os.fspath(a) for a in args])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(code: int, out: str, err: str) -> None:
    """Exit 0 (maybe with warnings) or one error line with exit 1; never a traceback."""
    assert "Traceback" not in out + err
    assert "internal error" not in err
    assert code in (0, 1)
    if code == 1:
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("memtrace: ")
    else:
        assert all(line.startswith("memtrace: warning: ") for line in err.splitlines())


def test_free_replay_and_diff_warn_on_a_cut_trace_and_go_on(recorded: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = recorded.read_bytes()
    cut = tmp_path / "cut.mtrace"
    cut.write_bytes(data[: frames_of(data)[2][0] + 7])  # inside the second chunk
    for args in (("free", cut), ("replay", cut, "-o", tmp_path / "r.mtrace"), ("diff", recorded, cut),
                 ("stat", cut)):
        code, out, err = run_cli(capsys, *args)
        assert_clean(code, out, err)
        assert code == 0, args
        assert "memtrace: warning: " in err and "cut.mtrace" in err, args
        assert out


def test_not_a_trace_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.mtrace"
    junk.write_bytes(b"this is not a trace\n")
    for args in (("replay", junk), ("diff", junk, junk), ("free", junk)):
        code, out, err = run_cli(capsys, *args)
        assert code == 1 and out == ""
        assert err == f"memtrace: {junk}: not a memtrace trace (bad magic)\n"


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.data())
def test_flipped_bytes_never_crash_diff_free_or_replay(many_chunks: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       data: st.DataObject) -> None:
    trace = many_chunks.read_bytes()
    header_end = frames_of(trace)[0][1]
    where = st.one_of(st.integers(0, len(trace) - 1), st.integers(header_end, len(trace) - 1))
    flips = data.draw(st.lists(st.tuples(where, st.integers(1, 255)), min_size=1, max_size=4), label="flips")
    damaged = bytearray(trace)
    for offset, xor in flips:
        damaged[offset] ^= xor
    path = tmp_path / "flipped.mtrace"
    path.write_bytes(bytes(damaged))
    if min(o for o, _ in flips) >= header_end:
        # Header intact: the library reads on, and never loses a chunk before the first flip.
        s = summarize_trace(path)
        before = sum(n for _s, end, n, _g in chunk_info(trace) if end <= min(o for o, _ in flips))
        assert s.total_events >= before
        diff_traces(many_chunks, path)
    for args in (("diff", many_chunks, path), ("free", path), ("replay", path, "-o", tmp_path / "r.mtrace")):
        assert_clean(*run_cli(capsys, *args))
