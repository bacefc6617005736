"""The OOM killer's arithmetic against a real memcg OOM (a 6.18 dmesg), the
reference's worked examples (kernel-mm-facts.md §1.3-§1.6, §2, §3.7) and values
derived by hand from the kernel source, era by era."""

from __future__ import annotations

import re
from fractions import Fraction
from math import trunc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace.linux.limits import LONG_MAX, ULONG_MAX
from memtrace.linux.oom_kill import (
    OomTask,
    legacy_badness,
    oom_badness,
    oom_totalpages,
    printed_score,
    proc_oom_score,
    select_bad_process,
)
from memtrace.linux.proc import c_div, check_oom_score_adj, oom_adj_to_score_adj, score_adj_to_oom_adj
from memtrace.linux.version import parse_kernel_version

REAL_DMESG = Path(__file__).resolve().parents[4] / "shared/real-traces/memcg-oom-two-victims.dmesg.txt"

V6 = (6, 13)
V5_4 = (5, 4, 286)
V5_8 = (5, 8)
V4_19 = (4, 19)
V4_9 = (4, 9)
V3_10 = (3, 10)
V3_4 = (3, 4)
V2_6_32 = (2, 6, 32)
MODERN = (V6, V5_4, V5_8, V4_19, V4_9, V3_10, V3_4)


def task(pid: int, rss: int = 0, adj: int = 0, pgtables_bytes: int = 0, **kw: Any) -> OomTask:
    """A process with ``rss`` anonymous pages and defaults for everything else."""
    fields: dict[str, Any] = {"pid": pid, "comm": f"t{pid}", "uid": 1000, "oom_score_adj": adj, "rss_anon": rss,
                                  "rss_file": 0, "rss_shmem": 0, "swapents": 0, "pgtables_bytes": pgtables_bytes,
                                  "total_vm": rss}
    fields.update(kw)
    return OomTask(**fields)


def pids(sel_candidates: tuple[tuple[OomTask, Any], ...]) -> list[int]:
    return [t.pid for t, _ in sel_candidates]


# --- the real memcg OOM ----------------------------------------------------------

ROW = re.compile(
    r"\[\s*(?P<pid>\d+)\]\s+(?P<uid>\d+)\s+(?P<tgid>\d+)\s+(?P<total_vm>\d+)\s+(?P<rss>\d+)\s+"
    r"(?P<anon>\d+)\s+(?P<file>\d+)\s+(?P<shmem>\d+)\s+(?P<pgtables>\d+)\s+(?P<swap>\d+)\s+"
    r"(?P<adj>-?\d+)\s+(?P<comm>\S+)$")


class RealOom:
    """One OOM report of the dmesg: its task table and the pid it killed."""

    def __init__(self) -> None:
        self.tasks: list[OomTask] = []
        self.killed_pid = 0
        self.summary_pid = 0


def _parse_real_dmesg() -> tuple[tuple[int, ...], int, int, list[RealOom]]:
    if not REAL_DMESG.exists():
        pytest.skip(f"real trace not found: {REAL_DMESG}")
    version: tuple[int, ...] = ()
    limit_kb = memsw_kb = 0
    reports: list[RealOom] = []
    for line in REAL_DMESG.read_text().splitlines():
        text = line.split("] ", 1)[1] if "] " in line else line
        if m := re.search(r"Not tainted (\S+)", text):
            version = parse_kernel_version(m.group(1))
        elif m := re.match(r"memory: usage \d+kB, limit (\d+)kB", text):
            limit_kb = int(m.group(1))
        elif m := re.match(r"memory\+swap: usage \d+kB, limit (\d+)kB", text):
            memsw_kb = int(m.group(1))
        elif text.startswith("Tasks state"):
            reports.append(RealOom())
        elif m := ROW.match(text):
            assert int(m["rss"]) == int(m["anon"]) + int(m["file"]) + int(m["shmem"])
            reports[-1].tasks.append(OomTask(
                pid=int(m["pid"]), comm=m["comm"], uid=int(m["uid"]), oom_score_adj=int(m["adj"]),
                rss_anon=int(m["anon"]), rss_file=int(m["file"]), rss_shmem=int(m["shmem"]),
                swapents=int(m["swap"]), pgtables_bytes=int(m["pgtables"]), total_vm=int(m["total_vm"])))
        elif m := re.match(r"oom-kill:.*,pid=(\d+),", text):
            reports[-1].summary_pid = int(m.group(1))
        elif m := re.match(r"Memory cgroup out of memory: Killed process (\d+) .* pgtables:(\d+)kB", text):
            reports[-1].killed_pid = int(m.group(1))
            victim = next(t for t in reports[-1].tasks if t.pid == reports[-1].killed_pid)
            assert victim.pgtables_bytes >> 10 == int(m.group(2))
    return version, limit_kb, memsw_kb, reports


@pytest.fixture(scope="module")
def real() -> tuple[tuple[int, ...], int, list[RealOom]]:
    version, limit_kb, memsw_kb, reports = _parse_real_dmesg()
    assert version == (6, 18, 44) and len(reports) == 2
    # cgroup v1 with memsw: swap part = memsw.max - memory.max = 0 pages.
    totalpages = oom_totalpages(totalram_pages=4_000_000, total_swap_pages=0,
                                memcg_limit_pages=limit_kb // 4, memcg_swap_limit_pages=(memsw_kb - limit_kb) // 4)
    return version, totalpages, reports


def test_real_memcg_totalpages_is_the_96_mib_limit(real: tuple[tuple[int, ...], int, list[RealOom]]) -> None:
    """memory and memory+swap limits are both 98304 kB: 24576 pages, no swap part."""
    assert real[1] == 24576


def test_real_task_table_badness_by_hand(real: tuple[tuple[int, ...], int, list[RealOom]]) -> None:
    """totalpages 24576, so the adj unit is 24576/1000 = 24 pages:
    4725: 7449 + 102400/4096 (25) + 300*24 (7200) = 14674;
    4847: 13343 + 163840/4096 (40) = 13383;
    4724: 8453 + 114688/4096 (28) = 8481."""
    version, totalpages, reports = real
    scores = {t.pid: oom_badness(t, totalpages, version).points for t in reports[0].tasks}
    assert scores == {4724: 8481, 4725: 14674, 4847: 13383}
    b = oom_badness(next(t for t in reports[0].tasks if t.pid == 4725), totalpages, version)
    assert (b.rss_pages, b.swap_pages, b.pgtables_pages, b.adj_points, b.root_bonus) == (7449, 0, 25, 7200, 0)
    assert b.formula.startswith("5.9+")


def test_real_first_victim_is_the_one_the_kernel_killed(real: tuple[tuple[int, ...], int, list[RealOom]]) -> None:
    """The adj +300 task wins although it is the smallest: the kernel killed 4725."""
    version, totalpages, reports = real
    sel = select_bad_process(reports[0].tasks, totalpages, version, memcg_oom=True)
    assert sel.chosen is not None and not sel.aborted
    assert sel.chosen.pid == reports[0].killed_pid == reports[0].summary_pid == 4725
    assert sel.points == 14674
    assert pids(sel.candidates) == [4724, 4725, 4847]  # the dump_tasks rows, in order
    assert "pid 4725" in sel.reason and "14674" in sel.reason


def test_real_second_victim_after_the_first_is_gone(real: tuple[tuple[int, ...], int, list[RealOom]]) -> None:
    """Without 4725, 4847 (13383) beats 4724 (8481); with the second report's own
    table (4847 grew to 19231 pages) the kernel killed 4847 too."""
    version, totalpages, reports = real
    remaining = [t for t in reports[0].tasks if t.pid != 4725]
    sel = select_bad_process(remaining, totalpages, version, memcg_oom=True)
    assert sel.chosen is not None and (sel.chosen.pid, sel.points) == (4847, 13383)
    second = select_bad_process(reports[1].tasks, totalpages, version, memcg_oom=True)
    assert second.chosen is not None
    assert second.chosen.pid == reports[1].killed_pid == reports[1].summary_pid == 4847
    assert second.points == 19231 + 212992 // 4096


# --- the reference's worked examples -----------------------------------------------

LEAKY = task(1733, rss=1_903_551, pgtables_bytes=15_491_072)
PHP = task(1801, rss=4105, pgtables_bytes=69 * 4096, adj=300)
TOTAL = 2_029_000 + 524_287


def test_reference_oom_score_of_the_big_task() -> None:
    """§1.5: badness 1,907,333 (1,903,551 + 3782 pgtable pages); 1,907,333,000 /
    2,553,287 = 747; 5.9+ reads (1000 + 747)*2/3 = 1164, 3.10-5.8 read 747, and
    2.6.36-3.5 computed the same 747 inside oom_badness()."""
    assert oom_badness(LEAKY, TOTAL, V6).points == 1_907_333
    assert proc_oom_score(LEAKY, TOTAL, V6) == 1164
    assert proc_oom_score(LEAKY, TOTAL, V5_4) == 1164
    for version in (V5_8, V4_19, V3_10, V3_4):
        assert proc_oom_score(LEAKY, TOTAL, version) == 747


def test_reference_oom_score_with_adj_300() -> None:
    """§1.5: 4105 + 69 + 300*2553 = 770,074; 770,074,000/2,553,287 = 301; (1301)*2/3 = 867."""
    assert oom_badness(PHP, TOTAL, V6).points == 770_074
    assert proc_oom_score(PHP, TOTAL, V6) == 867


def test_reference_adj_term_divides_before_multiplying() -> None:
    """§1.3: adj -500 with totalpages 2,553,287 adds -500 * 2553 = -1,276,500."""
    b = oom_badness(task(1, adj=-500), TOTAL, V6)
    assert b.adj_points == -1_276_500 and b.points == -1_276_500


def test_reference_kill_line_score_of_old_kernels() -> None:
    """§3.7: "Kill process 1733 (leaky) score 747 or sacrifice child" on 4.x: the
    chosen points normalised by chosen_points*1000/totalpages."""
    assert printed_score(1_907_333, TOTAL, V4_19) == 747
    assert printed_score(1_907_333, TOTAL, V3_10) == 747


def test_unadjusted_small_task_reads_666() -> None:
    """§1.5: a task using a negligible share of memory reads (1000 + 0)*2/3 = 666."""
    assert proc_oom_score(task(1, rss=100), TOTAL, V6) == 666


@pytest.mark.parametrize(("oom_adj", "score_adj"),
                         [(-17, -1000), (-16, -941), (-1, -58), (0, 0), (1, 58), (14, 823), (15, 1000)])
def test_oom_adj_write_mapping(oom_adj: int, score_adj: int) -> None:
    """§1.6: 15 -> 1000, else oom_adj*1000/17 truncated toward zero (-16 -> -941, not -942)."""
    assert oom_adj_to_score_adj(oom_adj) == score_adj


@pytest.mark.parametrize(("score_adj", "oom_adj"), [(-1000, -17), (500, 8), (-941, -15), (0, 0), (1000, 15)])
def test_oom_adj_read_mapping(score_adj: int, oom_adj: int) -> None:
    """§1.6: 1000 -> 15, else score_adj*17/1000 truncated (-941 -> -15: lossy)."""
    assert score_adj_to_oom_adj(score_adj) == oom_adj


def test_oom_adj_read_cap_arrived_in_5_11() -> None:
    """942*17/1000 = 16: read as 16 until the cap at OOM_ADJUST_MAX (October 2020)."""
    assert score_adj_to_oom_adj(942, V4_19) == 16
    assert score_adj_to_oom_adj(999, (5, 11)) == 15
    assert score_adj_to_oom_adj(942) == 15


@pytest.mark.parametrize("bad", [-18, 16, -1000, 1000])
def test_oom_adj_write_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"oom_adj {bad} .*-16\.\.15.*-17"):
        oom_adj_to_score_adj(bad)


def test_check_oom_score_adj() -> None:
    assert check_oom_score_adj(-1000) == -1000 and check_oom_score_adj(1000) == 1000
    for bad in (-1001, 1001):
        with pytest.raises(ValueError, match=rf"oom_score_adj {bad} .*-1000\.\.1000"):
            check_oom_score_adj(bad)


# --- badness by era ----------------------------------------------------------------

def test_root_bonus_by_era() -> None:
    """rss 100,000 pages of a CAP_SYS_ADMIN task, totalpages 1,000,000:
    3.10 adj -= 30 -> 100,000 - 30*1000 = 70,000; 4.9 points*3/100 -> 97,000;
    4.19 and 6.x no bonus -> 100,000; 3.4 (100,000*1000/1,000,000 = 100) - 30 = 70."""
    root = task(1, rss=100_000, cap_sys_admin=True)
    got = {v: (oom_badness(root, 1_000_000, v).points, oom_badness(root, 1_000_000, v).root_bonus)
           for v in (V3_10, V4_9, V4_19, V6, V3_4)}
    assert got == {V3_10: (70_000, 30_000), V4_9: (97_000, 3000), V4_19: (100_000, 0),
                   V6: (100_000, 0), V3_4: (70, 30)}


def test_clamp_to_one_before_5_9_negative_after() -> None:
    """rss 500, adj -999, totalpages 1,000,000: 500 - 999*1000 = -998,500. 5.9+ and
    5.4.y keep it; 4.19 and mainline 5.8 return 1. oom_score on 6.x:
    -998,500,000/1,000,000 truncates to -998 (not -999), (1000-998)*2/3 = 1."""
    t = task(1, rss=500, adj=-999)
    assert oom_badness(t, 1_000_000, V6).points == -998_500
    assert oom_badness(t, 1_000_000, V5_4).points == -998_500
    assert oom_badness(t, 1_000_000, V5_8).points == 1
    assert oom_badness(t, 1_000_000, V4_19).points == 1
    assert proc_oom_score(t, 1_000_000, V6) == 1
    assert proc_oom_score(t, 1_000_000, V4_19) == 0  # 1*1000/1,000,000


def test_normalised_era_clamps_to_1_and_1000() -> None:
    """2.6.36-3.5: (rss*1000/totalpages) - 30[root] + adj, clamped to [1, 1000];
    totalpages 0 counts as 1."""
    assert oom_badness(task(1, rss=10, adj=-500), 1_000_000, V3_4).points == 1
    assert oom_badness(task(1, rss=10, cap_sys_admin=True), 1_000_000, V3_4).points == 1
    assert oom_badness(task(1, rss=600_000, adj=500), 1_000_000, V3_4).points == 1000
    assert oom_badness(task(1, rss=2), 0, V3_4).points == 1000
    assert oom_badness(task(1, rss=250_000, adj=100), 1_000_000, V3_4).points == 350


def test_pgtables_term_is_whole_pages() -> None:
    """mm_pgtables_bytes / PAGE_SIZE: 8191 bytes count as one page."""
    assert oom_badness(task(1, pgtables_bytes=8191), 1000, V6).points == 1


def test_swap_and_every_rss_counter_count() -> None:
    t = task(1, rss=10, rss_file=20, rss_shmem=30, swapents=40)
    assert t.rss == 60
    b = oom_badness(t, 1000, V6)
    assert (b.points, b.rss_pages, b.swap_pages) == (100, 60, 40)


# --- eligibility ---------------------------------------------------------------------

@pytest.mark.parametrize("version", MODERN)
@pytest.mark.parametrize("kw", [{"is_init": True}, {"is_kthread": True}, {"has_mm": False}])
def test_unkillable_and_mmless_tasks_are_never_scored_nor_listed(version: tuple[int, ...], kw: dict[str, bool]) -> None:
    bad = task(1, rss=900_000, **kw)
    assert oom_badness(bad, 1_000_000, version).points is None
    assert proc_oom_score(bad, 1_000_000, version) == 0
    sel = select_bad_process([bad, task(2, rss=10)], 1_000_000, version)
    assert sel.chosen is not None and sel.chosen.pid == 2
    assert pids(sel.candidates) == [2]


@pytest.mark.parametrize("version", MODERN)
def test_oom_score_adj_min_is_listed_but_never_chosen(version: tuple[int, ...]) -> None:
    """dump_tasks prints the -1000 row; selection passes over it."""
    sel = select_bad_process([task(1, rss=900_000, adj=-1000), task(2, rss=10)], 1_000_000, version)
    assert sel.chosen is not None and sel.chosen.pid == 2
    assert [(t.pid, b.points is None) for t, b in sel.candidates] == [(1, True), (2, False)]
    assert "OOM_SCORE_ADJ_MIN" in (sel.candidates[0][1].ineligible or "")
    assert "ineligible: oom_score_adj == OOM_SCORE_ADJ_MIN" in sel.candidates[0][1].description


@pytest.mark.parametrize("flag", ["mmf_oom_skip", "in_vfork"])
def test_oom_skip_and_vfork_count_from_4_9(flag: str) -> None:
    t = task(1, rss=1000, **{flag: True})
    assert oom_badness(t, 1_000_000, V6).points is None
    assert oom_badness(t, 1_000_000, V4_9).points is None
    assert oom_badness(t, 1_000_000, V3_10).points == 1000


def test_cpuset_test_applies_to_memcg_ooms_only_before_5_4() -> None:
    """4.19 oom_unkillable_task() checks mems even for a memcg OOM; 5.4+ checks
    oom_cpuset_eligible() only for global OOMs."""
    tasks = [task(1, rss=900, cpuset_intersects=False), task(2, rss=10)]
    assert select_bad_process(tasks, 1_000_000, V6, memcg_oom=True).chosen == tasks[0]
    assert select_bad_process(tasks, 1_000_000, V6, memcg_oom=False).chosen == tasks[1]
    assert select_bad_process(tasks, 1_000_000, V4_19, memcg_oom=True).chosen == tasks[1]
    assert oom_badness(tasks[0], 1_000_000, V4_19).points is None


def test_existing_victim_aborts_the_scan() -> None:
    sel = select_bad_process([task(1, rss=900_000), task(2, rss=10, oom_victim=True)], 1_000_000, V6)
    assert sel.aborted and sel.chosen is None and sel.points is None
    assert "pid 2" in sel.reason and "abort" in sel.reason
    assert pids(sel.candidates) == [1, 2]


def test_reaped_victim_is_passed_over_from_4_9() -> None:
    """A victim whose mm has MMF_OOM_SKIP no longer blocks the next kill (4.9+);
    3.10 aborted on TIF_MEMDIE regardless."""
    tasks = [task(1, rss=900_000, oom_victim=True, mmf_oom_skip=True), task(2, rss=10)]
    for version in (V6, V4_19, V4_9):
        sel = select_bad_process(tasks, 1_000_000, version)
        assert not sel.aborted and sel.chosen == tasks[1]
    assert select_bad_process(tasks, 1_000_000, V3_10).aborted


def test_victim_without_mm_still_aborts() -> None:
    """The victim test comes before find_lock_task_mm(): an exiting victim blocks."""
    sel = select_bad_process([task(1, rss=10), task(2, has_mm=False, oom_victim=True)], 1_000_000, V6)
    assert sel.aborted


def test_oom_origin_wins_with_the_sentinel() -> None:
    tasks = [task(1, rss=900_000), task(2, rss=10, oom_origin=True), task(3, rss=800_000)]
    sel6 = select_bad_process(tasks, 1_000_000, V6)
    assert sel6.chosen == tasks[1] and sel6.points == LONG_MAX and "origin" in sel6.reason
    sel4 = select_bad_process(tasks, 1_000_000, V4_19)
    assert sel4.chosen == tasks[1] and sel4.points == ULONG_MAX
    sel2 = select_bad_process(tasks, 1_000_000, V2_6_32)
    assert sel2.chosen == tasks[1] and sel2.points == ULONG_MAX


def test_oom_origin_does_not_stop_the_scan() -> None:
    """"goto select" returns 0 and the iteration goes on: a later origin replaces
    the pick (2.6.32: ULONG_MAX is not > ULONG_MAX, the first stays), a later
    victim aborts."""
    two = [task(1, oom_origin=True), task(2, oom_origin=True)]
    assert select_bad_process(two, 1_000_000, V6).chosen == two[1]
    assert select_bad_process(two, 1_000_000, V3_10).chosen == two[1]
    assert select_bad_process(two, 1_000_000, V2_6_32).chosen == two[0]
    assert select_bad_process([task(1, oom_origin=True), task(2, oom_victim=True)], 1_000_000, V6).aborted


def test_no_killable_task() -> None:
    sel = select_bad_process([task(1, is_init=True), task(2, adj=-1000)], 1_000_000, V6)
    assert sel.chosen is None and not sel.aborted and sel.points is None
    assert "no killable task" in sel.reason


@pytest.mark.parametrize(("version", "winner"),
                         [(V6, 3), (V5_4, 3), (V5_8, 3), (V4_19, 2), (V3_10, 2), (V3_4, 2), (V2_6_32, 2)])
def test_tie_break(version: tuple[int, ...], winner: int) -> None:
    """Equal scores: 5.4+ skip only a *lower* score, so the last wins; 4.19 and
    3.10 need a strictly higher one, so the first wins; 2.6.32 likewise."""
    tasks = [task(1, rss=10), task(2, rss=500), task(3, rss=500)]
    sel = select_bad_process(tasks, 10_000, version)
    assert sel.chosen is not None and sel.chosen.pid == winner
    other = 5 - winner
    assert f"ties with pid {other}" in sel.reason


# --- printed score ---------------------------------------------------------------------

def test_printed_score_by_era() -> None:
    """14674 chosen points on totalpages 24576 print 14674000/24576 = 597 on 3.x/4.x;
    2.6.32 prints the raw badness with %li (ULONG_MAX as -1); 2.6.36-3.5 the score
    as is; 5.4+ print no score."""
    assert printed_score(14674, 24576, V4_19) == 597
    assert printed_score(14674, 24576, V3_10) == 597
    assert printed_score(604, 24576, V3_4) == 604
    assert printed_score(245_118, 1, V2_6_32) == 245_118
    assert printed_score(ULONG_MAX, 1, V2_6_32) == -1
    with pytest.raises(ValueError, match="no 'score'"):
        printed_score(14674, 24576, V5_4)


# --- 2.6.32 badness() ------------------------------------------------------------------

def legacy_task(**kw: Any) -> OomTask:
    fields: dict[str, Any] = {"total_vm": 100_000, "children_total_vm": (20_000,), "cpu_time_jiffies": 10_000,
                                  "start_time_s": 3616, "nice": 5, "cap_sys_admin": True, "cap_sys_rawio": True,
                                  "cpuset_intersects": False, "oom_adj": 3}
    fields.update(kw)
    return task(7, rss=50_000, **fields)


def test_legacy_badness_worked_by_hand() -> None:
    """2.6.32 badness() at HZ 250 (SHIFT_HZ 8), uptime 20,000 s, every step of §2:

    2. points = total_vm = 100,000
    4. one child with its own mm: += 20,000/2 + 1 -> 110,001
    5. cpu_time = 10,000 jiffies >> (8 + 3) = 4
    6. run_time = (20,000 - 3616) >> 10 = 16,384 >> 10 = 16
    7. points /= isqrt(4) = 2 -> 55,000 (55,000.5 truncated)
    8. points /= isqrt(isqrt(16)) = 2 -> 27,500
    9. nice 5 > 0: *= 2 -> 55,000
    10. CAP_SYS_ADMIN: /= 4 -> 13,750 (bonus 41,250)
    11. CAP_SYS_RAWIO: /= 4 -> 3437
    12. no cpuset overlap: /= 8 -> 429
    13. oom_adj 3: <<= 3 -> 3432 (adj term +3003)
    """
    b = legacy_badness(legacy_task(), uptime_s=20_000, hz=250)
    assert (b.points, b.root_bonus, b.adj_points) == (3432, 41_250, 3003)
    assert b.formula.startswith("2.6.32 badness()")
    assert legacy_badness(legacy_task(children_total_vm=()), 0).points == (100_000 // 2 * 2 // 4 // 4 // 8) << 3
    assert legacy_badness(legacy_task(oom_adj=-2), 20_000).points == 429 >> 2


def test_legacy_badness_edge_rules() -> None:
    """-17 and no mm are ineligible; 0 points with a positive oom_adj become 1
    before the shift; PF_OOM_ORIGIN returns ULONG_MAX; SHIFT_HZ follows HZ."""
    assert legacy_badness(legacy_task(oom_adj=-17), 0).points is None
    assert legacy_badness(legacy_task(has_mm=False), 0).points is None
    zero = task(1, total_vm=0, oom_adj=4)
    assert legacy_badness(zero, 0).points == 16
    assert legacy_badness(task(1, total_vm=5, oom_origin=True), 0).points == ULONG_MAX
    # 800 CPU-seconds: HZ 100 -> 80,000 >> 10 = 78; HZ 1000 -> 800,000 >> 13 = 97.
    assert legacy_badness(task(1, total_vm=90, cpu_time_jiffies=80_000), 0, hz=100).points == 90 // 8
    assert legacy_badness(task(1, total_vm=90, cpu_time_jiffies=800_000), 0, hz=1000).points == 90 // 9
    with pytest.raises(ValueError, match="HZ 5 "):
        legacy_badness(task(1), 0, hz=5)


def test_legacy_oom_adj_derived_from_oom_score_adj() -> None:
    """Without a stored oom_adj, 2.6.32 sees score_adj*17/1000: 300 -> 5."""
    assert legacy_badness(task(1, total_vm=100, adj=300), 0).points == 100 << 5
    assert legacy_badness(task(1, total_vm=100, adj=-1000), 0).points is None


def test_legacy_selection_rules() -> None:
    """`points > best || !chosen`: the first eligible task is taken even at 0;
    init is listed by dump_tasks but never chosen; TIF_MEMDIE aborts."""
    init = task(1, total_vm=10**6, is_init=True)
    zero = task(2, total_vm=0)
    sel = select_bad_process([init, zero], 1, V2_6_32)
    assert sel.chosen == zero and sel.points == 0
    assert pids(sel.candidates) == [1, 2]
    assert select_bad_process([init, zero, task(3, oom_victim=True)], 1, V2_6_32).aborted
    disabled = task(4, total_vm=10**6, oom_adj=-17)
    assert select_bad_process([disabled, zero], 1, V2_6_32).chosen == zero
    assert proc_oom_score(task(5, total_vm=1234), 10, V2_6_32) == 1234


# --- totalpages and versions -----------------------------------------------------------

def test_oom_totalpages() -> None:
    """§1.4: global RAM + swap; memcg limit + min(swap part, total swap) unless
    swappiness is 0; never 0."""
    assert oom_totalpages(2_029_000, 524_287, None) == TOTAL
    assert oom_totalpages(1000, 500, 100) == 600  # swap.max unlimited
    assert oom_totalpages(1000, 500, 100, memcg_swap_limit_pages=50) == 150
    assert oom_totalpages(1000, 500, 100, swappiness=0) == 100
    assert oom_totalpages(1000, 0, 0) == 1


def test_parse_kernel_version() -> None:
    assert parse_kernel_version("6.13") == (6, 13)
    assert parse_kernel_version("2.6.32") == (2, 6, 32)
    assert parse_kernel_version("5.4.286") >= (5, 4)
    assert parse_kernel_version("2.6.32.69") < (2, 6, 36)
    assert parse_kernel_version("6.18.44-fc-v669 #1") == (6, 18, 44)
    for bad in ("6", "linux-6.1", ""):
        with pytest.raises(ValueError, match="bad kernel version"):
            parse_kernel_version(bad)


def test_oom_task_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="oom_score_adj 1001"):
        task(1, adj=1001)
    with pytest.raises(ValueError, match="rss_anon -1 is negative"):
        task(1, rss=-1)
    with pytest.raises(ValueError, match="oom_adj 16"):
        task(1, oom_adj=16)


# --- properties --------------------------------------------------------------------------

@given(a=st.integers(-10**12, 10**12), b=st.integers(-10**6, 10**6).filter(bool))
def test_c_div_truncates_toward_zero(a: int, b: int) -> None:
    assert c_div(a, b) == trunc(Fraction(a, b))


@given(rss=st.integers(0, 10**7), swap=st.integers(0, 10**6), pgtables=st.integers(0, 10**9),
       adj=st.integers(-999, 1000), totalpages=st.integers(1, 10**8), root=st.booleans())
def test_badness_grows_with_rss_on_5_9(rss: int, swap: int, pgtables: int, adj: int, totalpages: int,
                                       root: bool) -> None:
    """One more resident page is exactly one more badness point on 5.9+, and
    never fewer in any later-than-2.6.36 era."""
    t = task(1, rss=rss, adj=adj, swapents=swap, pgtables_bytes=pgtables, cap_sys_admin=root)
    bigger = task(1, rss=rss + 1, adj=adj, swapents=swap, pgtables_bytes=pgtables, cap_sys_admin=root)
    low, high = oom_badness(t, totalpages, V6).points, oom_badness(bigger, totalpages, V6).points
    assert low is not None and high == low + 1
    for version in (V5_8, V4_19, V4_9, V3_10, V3_4):
        lo, hi = oom_badness(t, totalpages, version).points, oom_badness(bigger, totalpages, version).points
        assert lo is not None and hi is not None and hi >= lo


@given(rss=st.integers(0, 10**6), adj=st.integers(-999, 1000), spare=st.integers(0, 10**6))
def test_oom_score_stays_in_0_2000_on_5_9(rss: int, adj: int, spare: int) -> None:
    """With usage within totalpages, 5.9+ oom_score lies in [0, 2000] (§1.5)."""
    assert 0 <= proc_oom_score(task(1, rss=rss, adj=adj), rss + spare + 1, V6) <= 2000


def test_oom_score_formula_follows_the_eras_of_proc_oom_score() -> None:
    """The text memtrace ps prints names the era proc_oom_score() computes in, the
    5.4.y backport of the 5.9 change included."""
    from memtrace.linux.oom_kill import oom_score_formula, oom_score_needs_cpu_times

    assert "2 / 3" in oom_score_formula(parse_kernel_version("6.13"))
    assert "2 / 3" in oom_score_formula(parse_kernel_version("5.4.286"))
    assert "points * 1000 / totalpages (3.6..5.8)" in oom_score_formula(parse_kernel_version("4.19"))
    assert "0..1000" in oom_score_formula(parse_kernel_version("3.2"))
    assert oom_score_needs_cpu_times(parse_kernel_version("2.6.32"))
    assert not oom_score_needs_cpu_times(parse_kernel_version("2.6.36"))


def test_a_tie_is_said_by_the_selection_not_only_in_its_text() -> None:
    """Two tasks with equal badness: 5.4+ keeps the last scanned, older trees the
    first; Selection.ties names the other one either way."""
    a = OomTask(pid=10, comm="tie-breaker", uid=0, oom_score_adj=0, rss_anon=100, rss_file=0, rss_shmem=0,
                swapents=0, pgtables_bytes=0, total_vm=200)
    b = OomTask(pid=11, comm="b", uid=0, oom_score_adj=0, rss_anon=100, rss_file=0, rss_shmem=0,
                swapents=0, pgtables_bytes=0, total_vm=200)
    new = select_bad_process([a, b], 1000, (6, 13))
    old = select_bad_process([a, b], 1000, (4, 19))
    assert (new.chosen, new.ties) == (b, (a,))
    assert (old.chosen, old.ties) == (a, (b,))
    alone = select_bad_process([OomTask(pid=12, comm="tied-to-nothing", uid=0, oom_score_adj=0, rss_anon=5,
                                        rss_file=0, rss_shmem=0, swapents=0, pgtables_bytes=0, total_vm=5)],
                               1000, (6, 13))
    assert alone.ties == () and "tie" in alone.reason  # the comm's "tie" is no tie
