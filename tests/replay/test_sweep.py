"""Sweeps: grids of replays on Dask, equal cell by cell to the same replays run serially."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtrace.errors import UsageError
from memtrace.replay import Overrides, replay_trace, summarize_trace
from memtrace.replay.sweep import (
    Axis,
    DaskRunner,
    SerialRunner,
    SweepTarget,
    find_boundary,
    grid,
    parse_axis,
    run_cell,
    run_sweep,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MEMCG_OOM = SAMPLES / "memcg-oom.mtrace"
SWAP_PRESSURE = SAMPLES / "swap-pressure.mtrace"
LIMIT = "cgroup./oracle_oom.max"


def test_axes_take_lists_and_inclusive_ranges_with_units() -> None:
    assert parse_axis("vm.swappiness=0:200:20").values == tuple(str(v) for v in range(0, 201, 20))
    assert parse_axis(f"{LIMIT}=96MiB:288MiB:32MiB").values == (
        "96MiB", "128MiB", "160MiB", "192MiB", "224MiB", "256MiB", "288MiB")
    assert parse_axis("machine.ram=4GiB,6144MiB").values == ("4GiB", "6GiB")
    assert parse_axis("vm.overcommit_memory=0,1,2").values == ("0", "1", "2")
    assert parse_axis("machine.time_limit=1s:3s:500ms").values == ("1s", "1500ms", "2s", "2500ms", "3s")
    # a range whose step does not land on the end stops before it
    assert parse_axis("vm.swappiness=0:50:20").values == ("0", "20", "40")


@pytest.mark.parametrize(("text", "message"), [
    ("vm.swappiness", "expected KEY=SPEC"),
    ("vm.swappiness=0:10", "START:STOP:STEP"),
    ("vm.swappiness=0:100:0", "step must be positive"),
    ("vm.swappiness=100:0:10", "ends"),
    ("vm.swappiness=ten", "expected an integer"),
    (f"{LIMIT}=1.5B,2B", "expected a size"),
    ("vm.swappiness=10,10", "repeated"),
    ("machine.ram=1:1TiB:1", "more than"),
])
def test_bad_axes_are_one_line_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_axis(text)


def test_the_grid_is_the_cross_product_times_the_seeds() -> None:
    cells = grid([Axis("vm.swappiness", ("10", "60")), Axis("machine.ram", ("4GiB", "8GiB", "16GiB"))], 2, 7)
    assert len(cells) == 2 * 3 * 2
    assert [c.index for c in cells] == list(range(12))
    assert cells[0].settings == (("vm.swappiness", "10"), ("machine.ram", "4GiB")) and cells[0].seed == 7
    assert cells[1].seed == 8 and cells[-1].settings == (("vm.swappiness", "60"), ("machine.ram", "16GiB"))
    assert cells[0].overrides() == Overrides.parse(["vm.swappiness=10"], ["machine.ram=4GiB"])


def test_a_cell_is_what_memtrace_replay_gives_for_the_same_overrides(tmp_path: Path) -> None:
    """Ground truth for a cell: replay_trace (memtrace replay) with the same --set, summarised."""
    target = SweepTarget.from_trace(MEMCG_OOM)
    cell = grid([Axis(LIMIT, ("128MiB",))], 1, target.seed)[0]
    got = run_cell(target, cell)
    replayed = replay_trace(MEMCG_OOM, tmp_path / "r.mtrace", Overrides.parse(sets=[f"{LIMIT}=128MiB"]))
    want = summarize_trace(replayed.trace)
    assert got.kills == tuple((k.comm, k.pid) for k in want.oom_kills)
    assert got.enomem == len(want.refusals) and got.events == want.total_events and got.end_ns == want.end_ns
    assert got.peak == (want.memory_peak.as_dict() if want.memory_peak else {})
    assert got.error is None


def test_an_override_the_workload_refuses_is_a_cell_error_not_an_exception() -> None:
    target = SweepTarget.from_trace(MEMCG_OOM)
    result = run_cell(target, grid([Axis("cgroup./nosuch.max", ("1GiB",))], 1, 0)[0])
    assert result.outcome == "error" and "no cgroup '/nosuch'" in (result.error or "")


def test_find_min_finds_the_limit_where_the_kills_stop() -> None:
    """--find-min: the smallest memory.max with the outcome of the largest (no kill);
    the replay just below the boundary still kills."""
    target = SweepTarget.from_trace(MEMCG_OOM)
    axis = parse_axis(f"{LIMIT}=64MiB:512MiB:4MiB")
    b = find_boundary(target, axis, SerialRunner(), toward="high")
    assert b.outcome_above == "no kill" and b.outcome_below.startswith("kill")
    assert b.above is not None and b.below is not None
    assert axis.values.index(b.above) == axis.values.index(b.below) + 1
    assert b.replays <= 2 + (len(axis.values) - 2).bit_length()  # bisection, not a scan
    cells = grid([Axis(LIMIT, (b.below, b.above))], 1, target.seed)
    below, above = (run_cell(target, c) for c in cells)
    assert below.kills and not above.kills


def test_find_max_finds_where_the_first_victim_is_spared() -> None:
    target = SweepTarget.from_trace(MEMCG_OOM)
    axis = parse_axis(f"{LIMIT}=64MiB:512MiB:4MiB")
    b = find_boundary(target, axis, SerialRunner(), toward="low")
    first = run_cell(target, grid([Axis(LIMIT, (axis.values[0],))], 1, target.seed)[0])
    assert b.outcome_below == first.outcome and b.outcome_above != first.outcome
    assert b.below is not None and b.above is not None


def test_the_same_range_gives_no_boundary_when_the_ends_agree() -> None:
    target = SweepTarget.from_trace(MEMCG_OOM)
    b = find_boundary(target, parse_axis(f"{LIMIT}=300MiB:400MiB:50MiB"), SerialRunner())
    assert (b.below, b.above, b.outcome_below, b.outcome_above) == (None, None, "no kill", "no kill")


@pytest.mark.slow
def test_local_cluster_cells_equal_serial_replays() -> None:
    """memcg-oom over the limit and swap-pressure over swappiness, on a LocalCluster of 2."""
    memcg = SweepTarget.from_trace(MEMCG_OOM)
    swap = SweepTarget.from_trace(SWAP_PRESSURE)
    limits = [parse_axis(f"{LIMIT}=64MiB:320MiB:64MiB")]
    swappiness = [parse_axis("vm.swappiness=0:200:100")]
    with DaskRunner(workers=2) as runner:
        assert runner.workers == 2
        on_dask = (run_sweep(memcg, limits, runner), run_sweep(swap, swappiness, runner))
    serial = (run_sweep(memcg, limits, SerialRunner()), run_sweep(swap, swappiness, SerialRunner()))
    assert on_dask == serial
    outcomes = [r.outcome for r in serial[0].results]
    assert outcomes[0].startswith("kill") and outcomes[-1] == "no kill"


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[str]:
    """A Dask scheduler and two workers started as separate processes, as Dask documents."""
    bindir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        import json

        # The scheduler writes its file once it listens; the file may exist before its
        # content does: wait until it parses and names an address.
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.2)
        assert address is not None, "the Dask scheduler did not start within 60 s"
        for _ in range(2):
            procs.append(subprocess.Popen([str(bindir / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                                           "--nthreads", "1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        yield str(address)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_an_existing_cluster_by_address_gives_the_serial_answers(external_cluster: str) -> None:
    from distributed import Client

    with Client(external_cluster) as client:
        client.wait_for_workers(2, timeout=60)
    target = SweepTarget.from_trace(MEMCG_OOM)
    axes = [parse_axis(f"{LIMIT}=64MiB:320MiB:64MiB")]
    with DaskRunner(scheduler=external_cluster) as runner:
        assert runner.workers == 2
        remote = run_sweep(target, axes, runner, seeds=2)
    assert remote == run_sweep(target, axes, SerialRunner(), seeds=2)
    assert [r.cell.seed for r in remote.results[:2]] == [target.seed, target.seed + 1]


def test_an_unreachable_scheduler_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        DaskRunner(scheduler="tcp://127.0.0.1:9")


def test_results_write_as_parquet_and_csv_and_plot(tmp_path: Path) -> None:
    import csv

    import pyarrow.parquet as pq

    from memtrace.api import plot_sweep
    from memtrace.replay.sweep import write_results

    target = SweepTarget.from_trace(MEMCG_OOM)
    result = run_sweep(target, [parse_axis(f"{LIMIT}=64MiB:320MiB:128MiB"), parse_axis("vm.swappiness=0,60")],
                       SerialRunner())
    assert write_results(result, tmp_path / "r.parquet") == "parquet"
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert table == result.rows()
    assert write_results(result, tmp_path / "r.csv") == "csv"
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r[LIMIT] for r in rows] == ["64MiB", "64MiB", "192MiB", "192MiB", "320MiB", "320MiB"]
    assert [int(r["kills"]) for r in rows] == [len(c.kills) for c in result.results]
    plot_sweep(result, tmp_path / "heat.png", "kills")
    assert (tmp_path / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        write_results(result, tmp_path / "r.txt")
    with pytest.raises(ValueError, match="unknown figure"):
        plot_sweep(result, tmp_path / "x.png", "nosuch")
