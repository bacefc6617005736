"""The process table (``memtrace ps``): RSS by kind, page tables and /proc/PID/oom_score.

Ground truth: the simulated kernel's own task counters at the moment each snapshot is
taken (kernel/oom.py ``oom_task`` and ``proc_oom_score``), the kernel formula worked by
hand for one process, and this machine's real ``/proc/PID/oom_score``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.procsnap import take_snapshot
from memtrace.analysis.ps import ps_snapshot, ps_trace
from memtrace.kernel.oom import oom_task
from memtrace.kernel.recorder import record_run
from memtrace.kernel.workload import resolve_scenario
from memtrace.linux.oom_kill import oom_badness, proc_oom_score
from memtrace.linux.version import parse_kernel_version
from memtrace.tracer import EventBatch, TraceReader

PAGE = 4096
MiB = 1 << 20


class KernelAtSnapshot:
    """A bus consumer that, when a ``snapshot`` event is emitted, reads every live
    task's OOM view straight from the simulated kernel."""

    def __init__(self) -> None:
        self.kernel: Any = None
        self.seen: dict[str, dict[int, tuple[int | None, int, int, int]]] = {}

    def on_batch(self, batch: EventBatch) -> None:
        if batch.tp.name != "snapshot" or self.kernel is None:
            return
        k = self.kernel
        version = parse_kernel_version(k.kernel_version)
        totalpages = k.alloc.totalram_pages + k.swap.nr_pages
        for r in batch.records():
            self.seen[str(r.fields["label"])] = {
                t.pid: (oom_badness(ot, totalpages, version).points, proc_oom_score(ot, totalpages, version),
                        ot.pgtables_bytes, ot.rss * PAGE)
                for t in k.tasks.values() if not t.kthread and not t.exited
                for ot in (oom_task(k, t),)
            }


def _record_watching(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> KernelAtSnapshot:
    """Record ``name`` to ``path`` with a :class:`KernelAtSnapshot` attached and
    handed the run's kernel as soon as the recorder makes it."""
    import memtrace.kernel.recorder as recorder

    probe = KernelAtSnapshot()
    real_runner = recorder.Runner

    def runner(*args: Any, **kwargs: Any) -> Any:
        r = real_runner(*args, **kwargs)
        probe.kernel = r.k
        return r

    monkeypatch.setattr(recorder, "Runner", runner)
    record_run(resolve_scenario(name), path, sysctl_overrides={}, seed=0, memtrace_version="test",
               consumers=[probe])
    return probe


@pytest.mark.parametrize("name", ["fork-cow", "swap-pressure", "shmem-pressure", "private-file-mapping",
                                  "sysv-shm"])
def test_trace_table_equals_the_kernels_own_view_at_every_snapshot(name: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """At each snapshot label, ps over the trace gives, for every live process, the
    points, oom_score, page-table bytes and RSS the kernel itself had then."""
    path = tmp_path / f"{name}.mtrace"
    probe = _record_watching(name, path, monkeypatch)
    assert probe.seen
    for label, want in probe.seen.items():
        table, warnings = ps_trace(TraceReader(path), label)
        got = {r.pid: (r.points, r.oom_score, r.pgtables_bytes, r.rss_bytes) for r in table.rows}
        assert got == want, label
        assert not warnings


def test_fork_cow_parent_by_hand(tmp_path: Path) -> None:
    """fork-cow's parent after its children: 512 MiB anon = 131,072 pages; page tables
    for 512 MiB in one PUD region: 256 PTE pages + 1 PMD + 1 PUD = 258 pages
    (mm_pgtables_bytes() leaves out the PGD); adj 0. totalpages = MemTotal/4096 (no swap).
    oom_score (5.9+) = (1000 + points * 1000 / totalpages) * 2 / 3."""
    reader = TraceReader(Path(__file__).parents[2] / "sample_traces" / "fork-cow.mtrace")
    table, _ = ps_trace(reader, "after-children")
    parent = next(r for r in table.rows if r.comm == "parent")
    assert parent.rss_anon_bytes == 512 * MiB and parent.rss_file_bytes == parent.rss_shmem_bytes == 0
    assert parent.pgtables_bytes == 258 * PAGE
    points = 131_072 + 258
    assert parent.points == points
    assert parent.oom_score == (1000 + points * 1000 // table.totalpages) * 2 // 3
    assert table.totalpages == 2_051_840 and parent.oom_score == 709


def test_memcg_oom_table_before_the_first_kill() -> None:
    """memcg-oom before the first kill: the adj 300 process ranks first by points
    with the global totalpages too (its adj term is 300 * totalpages / 1000)."""
    reader = TraceReader(Path(__file__).parents[2] / "sample_traces" / "memcg-oom.mtrace")
    table, _ = ps_trace(reader, 1_000_000_000)
    assert table.rows
    for r in table.rows:
        pages = (r.rss_bytes + r.swap_bytes + r.pgtables_bytes) // PAGE
        assert r.points == pages + r.oom_score_adj * (table.totalpages // 1000)
    assert [r.points for r in table.rows] == sorted((r.points for r in table.rows), reverse=True)


def test_this_machines_oom_score_is_recomputed_exactly() -> None:
    """Every process's /proc/PID/oom_score on this machine equals the kernel formula
    applied to its /proc/PID/status. A process whose memory moved between the two
    reads gets two more chances (a race, not a formula error)."""
    if not os.path.exists(f"/proc/{os.getpid()}/oom_score"):
        pytest.skip("no /proc/PID/oom_score here")
    pending: set[int] | None = None
    for _ in range(3):
        table = ps_snapshot(take_snapshot())
        assert table.totalpages and table.totalpages > 0
        rows = [r for r in table.rows if r.kernel_oom_score is not None]
        assert rows
        bad = {r.pid for r in rows if r.score_differs}
        pending = bad if pending is None else pending & bad
        if not pending:
            break
    assert not pending, [r for r in table.rows if r.pid in pending]


def test_snapshot_ineligible_and_cap_sys_admin() -> None:
    """Rows built by hand: pid 1 in the initial pid namespace is never chosen (global
    init, oom_score 0); a process with OOM_SCORE_ADJ_MIN neither; on 3.14..4.16 a
    CAP_SYS_ADMIN process loses 3% of its points."""
    def proc(pid: int, adj: int, rss_kb: int, cap: int, nspid: list[int]) -> dict[str, Any]:
        return {"pid": pid, "comm": f"p{pid}", "uid": 0, "kthread": False, "nspid": nspid, "cap_eff": cap,
                "oom_score_adj": adj, "oom_score": 0,
                "status": {"VmRSS": rss_kb * 1024, "RssAnon": rss_kb * 1024, "RssFile": 0, "RssShmem": 0,
                           "VmSwap": 0, "VmPTE": 0, "VmSize": rss_kb * 1024}}
    snap = {"taken": {"kernel_release": "4.14.0"}, "meminfo": {"MemTotal": 1_000_000 * PAGE, "SwapTotal": 0},
            "processes": [proc(1, 0, 4000, 0, [1]), proc(2, -1000, 4000, 0, [2]),
                          proc(3, 0, 400_000, 1 << 21, [3]), proc(4, 0, 400_000, 0, [4])]}
    table = ps_snapshot(snap)
    by = {r.pid: r for r in table.rows}
    assert by[1].points is None and by[1].oom_score == 0 and by[1].ineligible == "global init"
    assert by[2].points is None and "OOM_SCORE_ADJ_MIN" in (by[2].ineligible or "")
    assert by[4].points == 100_000 and by[3].points == 100_000 - 3_000
    # 3.6..5.8: oom_score = points * 1000 / totalpages
    assert by[4].oom_score == 100 and by[3].oom_score == 97
    assert [r.pid for r in table.rows] == [4, 3, 1, 2]
    # Inside a container pid 1 is the namespace's init, not the global one: the
    # snapshot says so, or pid 1's NSpid names an outer pid.
    snap["processes"] = [proc(1, 0, 4000, 0, [4321, 1])]
    assert ps_snapshot(snap).rows[0].points == 1_000
    snap["processes"] = [proc(1, 0, 4000, 0, [1])]
    snap["taken"] = {"kernel_release": "4.14.0", "initial_pid_ns": False}
    assert ps_snapshot(snap).rows[0].points == 1_000
    snap["taken"]["initial_pid_ns"] = True
    assert ps_snapshot(snap).rows[0].points is None


def test_pid_1_of_a_child_pid_namespace_is_not_global_init() -> None:
    """In a new pid namespace (unshare, as root) the first process is pid 1 but not
    the global init: the kernel gives it a real oom_score, and so must we."""
    import json
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1)")
    # pid 1 is this python: its memory may move between its status and oom_score
    # reads, so it gets three tries, as in the test above.
    code = ("import json\nfrom memtrace.analysis.procsnap import take_snapshot\n"
            "from memtrace.analysis.ps import ps_snapshot\nfor _ in range(3):\n"
            "    s = take_snapshot()\n    r = next(r for r in ps_snapshot(s).rows if r.pid == 1)\n"
            "    if not r.score_differs: break\n"
            "print(json.dumps([s['taken']['initial_pid_ns'], r.kernel_oom_score, r.oom_score, r.ineligible]))")
    run = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        pytest.skip(f"cannot make a pid namespace here: {run.stderr.strip()[:200]}")
    initial, kernel_score, score, ineligible = json.loads(run.stdout)
    assert initial is False and ineligible is None
    assert kernel_score > 0 and score == kernel_score


def test_imported_real_trace(tmp_path: Path) -> None:
    """The real perf trace of ../shared/real-traces: between the two kills only 4847
    is live and not a victim; its RSS is the last kmem:rss_stat of each counter
    before that moment (read here straight from the trace); totalpages falls back
    to the header's machine, and the importer's assumptions are passed on."""
    from memtrace.analysis.importers import import_trace

    perf = Path(__file__).resolve().parents[3] / "shared" / "real-traces" / "memcg-oom-two-victims.perf-script.txt.gz"
    out = tmp_path / "real.mtrace"
    import_trace(perf, out)
    at = 153_300_000_000  # after the first kill (153.243 s), before the second (153.417 s)
    last: dict[str, int] = {}
    for r in TraceReader(out).events():
        if r.name == "rss_stat" and r["mm_pid"] == 4847 and r["ts_ns"] <= at:
            last[str(r.fields["member"])] = int(r.fields["size_bytes"])
    table, _ = ps_trace(TraceReader(out), at)
    [row] = table.rows
    assert row.pid == 4847 and row.oom_score_adj == 0
    assert (row.rss_anon_bytes, row.rss_file_bytes) == (last["MM_ANONPAGES"], last["MM_FILEPAGES"])
    assert table.totalpages == (24 << 30) // PAGE
    assert any("4725" in n for n in table.notes) and any(n.startswith("kernel version") for n in table.notes)
    end, _ = ps_trace(TraceReader(out))
    assert end.rows == () and any("4725" in n and "4847" in n for n in end.notes)
