"""Issue 12's real recordings imported and replayed: the derived workload against the real kernel.

Ground truth: tests/data/real/experiments (Linux 6.18, cgroup v1; re-made by its
make_real.sh): the perf script, dmesg and start-of-trace snapshot of each recording,
and the real kernel's outcomes (``outcomes.json.gz``: the victims, in order, of the
recording). Figures compared are each process's RSS as its own ``kmem:rss_stat``
shows it: its peak, and its final value (at its kill or exit, before the teardown).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.importers import import_trace
from memtrace.analysis.state import fold_trace
from memtrace.replay import Overrides, replay_trace
from memtrace.tracer import TraceReader
from memtrace.tracer.tasks import TaskTable

EXPERIMENTS = Path(__file__).resolve().parents[2] / "data" / "real" / "experiments"
MiB = 1 << 20

#: (recording, experiment key and mode in outcomes.json, limit in MiB)
RECORDINGS = {
    "leak-L128": ("leak", "A", None, 128),
    "madvise-dontneed-L96": ("madvise", "C", "dontneed", 96),
    "madvise-free-L96": ("madvise", "C", "free", 96),
    "madvise-munmap-L96": ("madvise", "C", "munmap", 96),
    "madvise-dontneed-L64": ("madvise", "C", "dontneed", 64),
    "writer-L256": ("writer", "B", None, 256),
}


def _files(name: str) -> tuple[Path, Path, Path]:
    folder = EXPERIMENTS / RECORDINGS[name][0]
    return (folder / f"{name}.perf-script.txt.gz", folder / f"{name}.dmesg.txt.gz",
            folder / f"{name}.snapshot.json.gz")


@cache
def _outcomes() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress((EXPERIMENTS / "outcomes.json.gz").read_bytes()))
    return data


def recorded_victims(name: str) -> list[str]:
    """The victims of the perf recording, in order, as the real kernel chose them."""
    _, exp, mode, limit = RECORDINGS[name]
    table = _outcomes()[exp]["modes"][mode] if mode else _outcomes()[exp]["limits"]
    victims: list[str] = table[str(limit)]["recording"]["victims"]
    return victims


@pytest.fixture(scope="module")
def imports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Each recording imported with its dmesg and snapshot, once (lazily)."""
    folder = tmp_path_factory.mktemp("real")
    made: dict[str, Path] = {}

    class Lazy(dict[str, Path]):
        def __missing__(self, name: str) -> Path:
            perf, dmesg, snap = _files(name)
            out = folder / f"{name}.mtrace"
            import_trace(perf, out, dmesg=dmesg, snapshot=snap)
            made[name] = out
            self[name] = out
            return out

    yield Lazy()


def records(path: Path, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in TraceReader(path).events() if r.name == name]


def rss_figures(path: Path) -> tuple[dict[int, tuple[int, int]], list[tuple[str, int]], TaskTable]:
    """pid -> (peak, final) RSS in bytes from each process's rss_stat (final: the
    last value before its kill or exit); the kills (comm, victim pid) in order."""
    tasks = TaskTable()
    counters: dict[int, dict[str, int]] = {}
    history: dict[int, list[tuple[int, int]]] = {}
    end: dict[int, int] = {}
    kills: list[tuple[str, int]] = []
    for batch in TraceReader(path).ordered_batches():
        tasks.on_batch(batch)
        name = batch.tp.name
        if name == "rss_stat":
            for r in batch.records():
                f = r.fields
                pid = int(f["mm_pid"])
                c = counters.setdefault(pid, {})
                c[f["member"]] = int(f["size_bytes"])
                total = c.get("MM_ANONPAGES", 0) + c.get("MM_FILEPAGES", 0) + c.get("MM_SHMEMPAGES", 0)
                history.setdefault(pid, []).append((int(f["ts_ns"]), total))
        elif name == "oom_kill":
            for r in batch.records():
                kills.append((str(r.fields["comm"]), int(r.fields["victim_pid"])))
                end.setdefault(int(r.fields["victim_pid"]), int(r.fields["ts_ns"]))
        elif name == "exit":
            for r in batch.records():
                end.setdefault(int(r.fields["pid"]), int(r.fields["ts_ns"]))
    out: dict[int, tuple[int, int]] = {}
    for pid, h in history.items():
        stop = end.get(pid)
        before = [t for ts, t in h if stop is None or ts < stop] or [h[-1][1]]
        upto = [t for ts, t in h if stop is None or ts <= stop] or [0]
        out[pid] = (max(upto), before[-1])
    return out, kills, tasks


# --------------------------------------------------------------------------- A: the leak


def test_web_worker_starts_with_its_memory_from_the_snapshot(imports: dict[str, Path]) -> None:
    """web (24 MiB, adj 200) predates perf and first shows in the trace at its
    rename: with the snapshot it starts the derived workload with its 24 MiB."""
    meta = TraceReader(imports["leak-L128"]).meta
    init = meta["derived"]["initial_memory"]["web-worker-25209"]
    assert init["source"]["anon"] == "snapshot"
    assert 24 * MiB <= init["pages"]["anon"] * 4096 <= 25 * MiB
    proc = next(p for p in meta["workload"]["process"] if p["name"] == "web-worker-25209")
    assert "start" not in proc and proc["oom_score_adj"] == 200 and proc["cgroup"] == "/memtrace_real_a"
    first = proc["steps"][0]
    assert first["op"] == "mmap" and first["length"] >= 24 * MiB
    assert any("web-worker (pid 25209) predates the trace: starts with anon 24.1 MiB" in n
               for n in meta["source"]["notes"])


@pytest.mark.parametrize("companion, source", [("dmesg", "task table"), (None, "rss_stat at its exit")])
def test_web_worker_without_the_snapshot(tmp_path: Path, companion: str | None, source: str) -> None:
    """Without the snapshot its memory comes from the earliest other source: the OOM
    report's task-table row (dmesg), else the counters its teardown printed."""
    perf, dmesg, _ = _files("leak-L128")
    out = tmp_path / "leak.mtrace"
    import_trace(perf, out, dmesg=dmesg if companion else None)
    init = TraceReader(out).meta["derived"]["initial_memory"]["web-worker-25209"]
    assert init["source"]["anon"] == source
    assert 23.9 * MiB <= init["pages"]["anon"] * 4096 <= 25 * MiB


def test_a_rename_is_no_exec(imports: dict[str, Path]) -> None:
    """web's prctl(PR_SET_NAME) is a task_rename (its mappings kept); the execs are
    the kernel's (sched_process_exec), with their file names."""
    path = imports["leak-L128"]
    renames = records(path, "task_rename")
    assert [(r["pid"], r["oldcomm"], r["newcomm"]) for r in renames] == [(25209, "web", "web-worker")]
    execs = {(r["pid"], r["comm"]): r["filename"] for r in records(path, "exec")}
    assert execs[(25239, "leaker")] == "/tmp/memtrace-real/bin/leaker"
    assert not [pid for pid, _ in execs if pid == 25209]
    tasks = TaskTable()
    for batch in TraceReader(path).ordered_batches():
        tasks.on_batch(batch)
    web = tasks.get(25209)
    assert web is not None and web.comm == "web-worker" and web.execs == 0
    proc = next(p for p in TraceReader(path).meta["workload"]["process"] if p["name"] == "web-worker-25209")
    assert not [s for s in proc["steps"] if s["op"] == "munmap"]


def test_no_page_table_warnings_on_fork_and_brk(imports: dict[str, Path]) -> None:
    """The state fold drops a process's mappings at its exec: a brk of the new image
    no longer stretches the old heap over hundreds of GiB (nor does a fork copy it)."""
    folder = fold_trace(TraceReader(imports["leak-L128"]))
    assert not [w for w in folder.warnings if "page-table entries" in w]


def test_after_kill_is_recorded_not_invented(imports: dict[str, Path]) -> None:
    """The leaker's derived steps end at its kill; the header says what was seen of
    it: its kill, its growth (~4 MiB per 30 ms) and its planned end."""
    meta = TraceReader(imports["leak-L128"]).meta
    derived = meta["derived"]
    (entry,) = derived["after_kill"]
    assert entry["process"] == "leaker-25239" and entry["allocating"] is True
    assert 1.25e9 < entry["kill_ns"] < 1.32e9
    assert 100 * MiB < entry["bytes_per_s"]["anon"] < 140 * MiB
    assert entry["planned_end_ns"] == derived["end_ns"] and derived["assumption"] == "grow"
    proc = next(p for p in meta["workload"]["process"] if p["name"] == "leaker-25239")
    assert len(proc["steps"]) == entry["steps_at_kill"]
    assert not [s for s in proc["steps"] if s["op"] == "repeat"]


@pytest.mark.slow
def test_unchanged_replay_reproduces_the_leak_kills(imports: dict[str, Path], tmp_path: Path) -> None:
    """The unchanged replay kills what the real kernel killed, in order, and every
    process's peak and final RSS are within 10% of the recording's."""
    path = imports["leak-L128"]
    result = replay_trace(path, tmp_path / "replay.mtrace", Overrides())
    assert any("leaker (pid 25239)" in a and "keep growing" in a for a in result.assumptions)
    _compare(path, Path(result.trace), recorded_victims("leak-L128"))


@pytest.mark.slow
@pytest.mark.parametrize("assume, victims", [(None, ["leaker"]), ("stop", [])])
def test_the_assumption_decides_a_bigger_limit(imports: dict[str, Path], tmp_path: Path, assume: str | None,
                                               victims: list[str]) -> None:
    """At 192 MiB the real kernel still killed the leaker (it grows to 160 MiB): the
    default assumption (it keeps growing) says so; ``stop`` would say the limit
    avoided the kill, and the replay's header says which was assumed."""
    result = replay_trace(imports["leak-L128"], tmp_path / "r.mtrace",
                          Overrides.parse([], ["cgroup./memtrace_real_a.max=192MiB"], assume_after_kill=assume))
    assert [k for k, _ in rss_figures(Path(result.trace))[1]] == victims
    assert TraceReader(result.trace).meta["derived"]["assumption"] == (assume or "grow")


# --------------------------------------------------------------------------- C: madvise


def test_mremap_move_is_followed(imports: dict[str, Path]) -> None:
    """The freer's mremap(MREMAP_MAYMOVE) moves its 8 MiB mapping to a new address
    and grows it to 12 MiB: the trace maps it there, and the faults at the new
    address hit it (the recording's faults outside every traced mapping are those
    of mappings made before the trace or by exec, ~200, not ~1,250)."""
    path = imports["madvise-dontneed-L96"]
    perf, _, _ = _files("madvise-dontneed-L96")
    moved = [line for line in gzip.decompress(perf.read_bytes()).decode().splitlines()
             if "sys_exit_mremap" in line and " freer " in line]
    (line,) = moved
    new_addr = int(line.rsplit(None, 1)[1], 16)
    maps = [r for r in records(path, "mmap") if r["addr"] == new_addr]
    assert [(r["len_bytes"], r["vma_kind"]) for r in maps] == [(12 * MiB, "anon_private")]
    assert fold_trace(TraceReader(path)).unattributed_faults < 300


@pytest.mark.slow
@pytest.mark.parametrize("name", ["madvise-dontneed-L96", "madvise-free-L96", "madvise-munmap-L96",
                                  "madvise-dontneed-L64"])
def test_unchanged_replay_of_the_madvise_recordings(imports: dict[str, Path], tmp_path: Path, name: str) -> None:
    """The replay frees as the recording shows (MADV_DONTNEED, MADV_FREE, partial
    munmap): the same victims in the same order, each process's peak and final RSS
    within 10% of the recording's."""
    path = imports[name]
    result = replay_trace(path, tmp_path / "replay.mtrace", Overrides())
    _compare(path, Path(result.trace), recorded_victims(name))


def _compare(recording: Path, replay: Path, victims: list[str]) -> None:
    rec, rec_kills, tasks = rss_figures(recording)
    rep, rep_kills, _ = rss_figures(replay)
    assert [c for c, _ in rec_kills] == victims
    assert rep_kills == rec_kills
    for pid, (peak, final) in rec.items():
        if peak < 4 * MiB:
            continue
        r_peak, r_final = rep[pid]
        assert abs(r_peak - peak) <= 0.1 * peak, (tasks.comm(pid), pid, "peak", peak, r_peak)
        assert abs(r_final - final) <= 0.1 * max(final, MiB), (tasks.comm(pid), pid, "final", final, r_final)


def test_madvise_steps_when_the_scenario_has_them(tmp_path: Path) -> None:
    """With the scenario's madvise/mremap/mprotect steps (``vma_steps``): the freer's
    second halves are ``madvise dontneed`` of its mapping, its move one ``mremap``
    (maymove) of the same handle, whose new part is then touched."""
    perf, dmesg, snap = _files("madvise-dontneed-L96")
    out = tmp_path / "steps.mtrace"
    import_trace(perf, out, dmesg=dmesg, snapshot=snap, vma_steps=True)
    meta = TraceReader(out).meta
    freer = next(p for p in meta["workload"]["process"] if p["comm"] == "freer")
    steps = freer["steps"]
    madvise = [s for s in steps if s["op"] == "madvise"]
    assert len(madvise) >= 10
    assert {(s["offset"], s["length"], s["advice"]) for s in madvise} == {(4 * MiB, 4 * MiB, "dontneed")}
    (mremap,) = [s for s in steps if s["op"] == "mremap"]
    assert mremap["length"] == 12 * MiB and mremap["maymove"] is True
    after = steps[steps.index(mremap):]
    grown = [s for s in after if s["op"] == "touch" and s["handle"] == mremap["handle"]]
    assert sum(s["length"] for s in grown) == 4 * MiB and min(s["offset"] for s in grown) == 8 * MiB
    others = [s for p in meta["workload"]["process"] for s in p["steps"] if s["op"] == "mprotect"]
    assert others and {s["prot"] for s in others} <= {"r", "", "rw", "rx"}
    assert meta["derived"]["vma_steps"] is True


def test_without_vma_steps_the_workload_uses_known_steps(tmp_path: Path) -> None:
    """Without those steps (``vma_steps=False``) the workload says the same with
    mmap, munmap and touch, and loads."""
    from memtrace.kernel.workload import STEP_TYPES, scenario_from_dict

    perf, dmesg, snap = _files("madvise-dontneed-L96")
    out = tmp_path / "no-steps.mtrace"
    import_trace(perf, out, dmesg=dmesg, snapshot=snap, vma_steps=False)
    meta = TraceReader(out).meta
    ops = {s["op"] for p in meta["workload"]["process"] for s in p["steps"]}
    assert ops <= set(STEP_TYPES) - {"madvise", "mremap", "mprotect"}
    scenario_from_dict(meta["workload"], "imported")
    assert meta["derived"]["vma_steps"] is False
    assert meta["derived"]["steps"]["madvise_dontneed_as_munmap"] >= 10
    assert meta["derived"]["steps"]["mremap_as_mmap"] == 1


# --------------------------------------------------------------------------- B: the writer


def test_writer_cgroup_from_the_snapshot(imports: dict[str, Path]) -> None:
    """No OOM, so no report names the cgroup: the snapshot gives it and its limits
    (256 MiB, memsw = memory: no swap), and the writer runs in it."""
    meta = TraceReader(imports["writer-L256"]).meta
    w = meta["workload"]
    assert w["cgroup"] == [{"path": "/memtrace_real_b", "max": 256 * MiB, "swap_max": 0}]
    procs = {p["comm"]: p for p in w["process"]}
    assert procs["writer"]["cgroup"] == "/memtrace_real_b"
    assert procs["rm"]["cgroup"] == "/memtrace_real_b"  # born in the trace: its parent's cgroup
    assert w["machine"]["ram"] == 25276182528 // 4096 * 4096
