"""``explain --by process``: smem's columns, worked out by hand for fork-cow.

At ``children-wrote`` the parent's 512 MiB are mapped by the parent and, where
they did not write, by its three children, which wrote the first 64, 128 and
256 MiB (copy-on-write gave each a private copy of exactly that). So the parent's
pages are mapped once in [0, 64) MiB, twice in [64, 128) (parent, child-64),
three times in [128, 256) and four times in [256, 512); each child's copies once.
PSS in kB = (sum of PAGE_SIZE << 12 // mapcount) >> 12 >> 10, as smaps prints it.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import memtrace
from memtrace.analysis.explain.by_process import PSS_SHIFT
from memtrace.cli import app

FORK_COW = Path(__file__).parent.parent.parent.parent / "sample_traces" / "fork-cow.mtrace"
MIB_PAGES = 256  # 4 KiB pages in a MiB


def _pss_kb(runs: list[tuple[int, int]]) -> int:
    """PSS of (MiB, mapcount) runs, in kB, in the kernel's fixed point."""
    total = sum(mib * MIB_PAGES * ((4096 << PSS_SHIFT) // count) for mib, count in runs)
    return (total >> PSS_SHIFT) // 1024


WANT = {  # pid: (comm, uss kB, pss kB, rss kB)
    100: ("parent", 64 * 1024, _pss_kb([(64, 1), (64, 2), (128, 3), (256, 4)]), 512 * 1024),
    101: ("child-64", 64 * 1024, _pss_kb([(64, 1), (64, 2), (128, 3), (256, 4)]), 512 * 1024),
    102: ("child-128", 128 * 1024, _pss_kb([(128, 1), (128, 3), (256, 4)]), 512 * 1024),
    103: ("child-256", 256 * 1024, _pss_kb([(256, 1), (256, 4)]), 512 * 1024),
}


def test_fork_cow_uss_pss_rss_by_hand() -> None:
    table = memtrace.explain_by_process(FORK_COW, at="children-wrote").result
    got = {r.pid: (r.comm, r.uss_bytes // 1024, r.pss_bytes // 1024, r.rss_bytes // 1024) for r in table.rows}
    assert got == WANT
    assert WANT[100][2] == 207_530 and WANT[103][2] == 327_680
    assert [r.pid for r in table.rows] == [100, 101, 102, 103]  # smaller PSS first, ties by pid
    # The unique pages of the four: the parent's 512 MiB and the children's 448 MiB of copies.
    assert sum(r.uss_bytes for r in table.rows) + 448 * (1 << 20) == 960 * (1 << 20)


def test_smem_text_with_totals() -> None:
    result = CliRunner().invoke(app, ["explain", str(FORK_COW), "--at", "children-wrote", "--by", "process"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2] == "  PID User     Command                         Swap      USS      PSS      RSS"
    assert lines[3] == f"  100 root     parent                             0    65536 {WANT[100][2]:>8}   524288"
    assert lines[6].split() == ["103", "root", "child-256", "0", "262144", "327680", "524288"]
    assert lines[7] == "-" * len(lines[2])
    pss = sum(w[2] for w in WANT.values())
    assert lines[8].split() == ["4", "1", "0", str(512 * 1024), str(pss), str(4 * 512 * 1024)]
    assert all(len(line) < 80 for line in lines)


def test_by_process_refuses_pid_and_bad_values() -> None:
    result = CliRunner().invoke(app, ["explain", str(FORK_COW), "--by", "process", "--pid", "100"])
    assert result.exit_code != 0 and "--pid and --graph go with --by kind" in str(result.exception)
    result = CliRunner().invoke(app, ["explain", str(FORK_COW), "--by", "user"])
    assert result.exit_code != 0 and "--by takes kind or process" in str(result.exception)


def test_snapshot_columns_come_from_smaps_rollup(tmp_path: Path) -> None:
    from memtrace.analysis.explain import usage_from_snapshot

    kib = 1024
    snap = {"taken": {"wall_time": "2026-12-07T07:00:00", "uptime_s": 12.5}, "processes": [
        {"pid": 7, "comm": "a", "uid": 1000, "status": {"VmSwap": 8 * kib},
         "smaps_rollup": {"Rss": 100 * kib, "Pss": 60 * kib, "Private_Clean": 10 * kib, "Private_Dirty": 30 * kib,
                          "Swap": 8 * kib}},
        {"pid": 2, "comm": "kthreadd", "kthread": True},
        {"pid": 9, "comm": "b", "uid": 0, "status": {}},
    ]}
    table = usage_from_snapshot(snap, "now.json")
    assert [(r.pid, r.uid, r.swap_bytes, r.uss_bytes, r.pss_bytes, r.rss_bytes) for r in table.rows] == \
        [(7, 1000, 8 * kib, 40 * kib, 60 * kib, 100 * kib)]
    assert table.notes and "1 process(es) without a readable /proc/PID/smaps_rollup" in table.notes[0]


def test_explain_text_says_a_reason_once_for_every_process_it_applies_to() -> None:
    """The three children's copy-on-write copies and the four page tables read alike
    but for the process: one paragraph each ("each: ..."), under the parts it
    explains, not one per process."""
    result = CliRunner().invoke(app, ["explain", str(FORK_COW), "--at", "children-wrote"])
    text = result.stdout
    assert text.count("copy-on-write after fork") == 1
    assert text.count("page tables of") == 1
    assert "each: private copies made by copy-on-write after fork: the process" in " ".join(text.split())
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if "each: private copies" in line)
    assert [line.split()[2] for line in lines[i - 3:i]] == ["child-256", "child-128", "child-64"]
