"""OOM reports read back from kernel logs of every era, and the real 6.18 sample.

Ground truth: the real memcg OOM log in ../shared/real-traces/ (its numbers checked by
hand below), and synthetic logs written here with the printf formats of
../shared/reference/kernel-mm-facts.md §3, copied verbatim (C length modifiers
dropped for Python's %), whose expected badness is worked out by hand from §1-§2.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from memtrace.analysis.kernlog import (
    looks_like_kernel_log,
    parse_oom_lines,
    parse_oom_log,
    report_from_log,
    split_prefix,
)
from memtrace.analysis.report.model import OomReport
from memtrace.errors import ParseError

SHARED = Path(__file__).resolve().parents[4] / "shared" / "real-traces"
REAL_LOG = SHARED / "memcg-oom-two-victims.dmesg.txt"
OWN = Path(__file__).resolve().parents[2] / "data" / "real"


def stamp(lines: list[str], t0: float = 1000.0) -> list[str]:
    """dmesg's ``[%5lu.%06lu]`` prefix, one microsecond apart."""
    out = []
    for i, line in enumerate(lines):
        us = round(t0 * 1e6) + i
        out.append("[%5d.%06d] %s" % (us // 1_000_000, us % 1_000_000, line))
    return out


def kills_of(lines: list[str]) -> OomReport:
    from memtrace.analysis.kernlog import oom_report_from_parsed

    return oom_report_from_parsed(parse_oom_lines(lines).reports)


# --------------------------------------------------------------------------- real sample


def test_real_sample_two_memcg_kills() -> None:
    """The real 6.18 log: two memcg kills in /oracle_oom, victims 4725 then 4847."""
    rep = report_from_log(REAL_LOG)
    assert [k.victim.pid for k in rep.kills] == [4725, 4847]
    for k in rep.kills:
        assert k.constraint == "CONSTRAINT_MEMCG"
        assert k.memcg == "/oracle_oom"
        assert k.trigger is not None and k.trigger.pid == 4847 and k.trigger.comm == "python3"
        assert k.gfp_mask == 0xCC0 and k.order == 0
        assert k.kernel_version == "6.18.44"
        assert k.totalpages == 24576  # 98304 kB limit, memory+swap limit equal: no swap
        assert k.victim_ranked_first is True
        assert k.memory is not None and k.memory["memcg_limit_bytes"] == 96 << 20
    assert rep.kills[0].ts_ns == 153_241_486_000


def test_real_sample_badness_recomputed() -> None:
    """rss + pgtables/4096 + adj * (24576 // 1000): 4725 = 7449 + 25 + 300 * 24 = 14674,
    4847 = 13343 + 40 = 13383, 4724 = 8453 + 28 = 8481."""
    first = report_from_log(REAL_LOG).kills[0]
    points = {c.pid: c.points for c in first.candidates}
    assert points == {4724: 8481, 4725: 14674, 4847: 13383}
    adj = {c.pid: c.adj_points for c in first.candidates}
    assert adj == {4724: 0, 4725: 7200, 4847: 0}
    assert first.victim_points == 14674
    assert first.formula is not None and first.formula.startswith("5.9+")
    c4847 = next(c for c in first.candidates if c.pid == 4847)
    assert (c4847.rss_anon_pages, c4847.rss_file_pages, c4847.pgtables_pages) == (11680, 1663, 40)


def test_real_sample_explains_adj_and_grower() -> None:
    rep = report_from_log(REAL_LOG)
    text = "\n".join(rep.kills[0].explanation)
    assert "4725's oom_score_adj of 300 outweighed 4847's larger RSS (points 14674 against 13383)" in text
    for k in rep.kills:
        assert k.extra["grower"]["pid"] == 4847
        assert k.extra["grower"]["from_pages"] == 13343 and k.extra["grower"]["to_pages"] == 19231
        assert any("4847) is the grower" in line for line in k.explanation)
    kinds = {u.kind for u in rep.kills[0].unreclaimable}
    assert "anon_no_swap" in kinds
    second = "\n".join(rep.kills[1].explanation)
    assert "4847 held the most memory" in second


def test_real_sample_as_json_shape() -> None:
    d = report_from_log(REAL_LOG).as_dict()
    assert d["source"] == "dmesg"
    kill = d["kills"][0]
    assert kill["victim"] == {"pid": 4725, "comm": "python3", "points": 14674}
    assert {"pid", "comm", "points", "rss_pages", "swap_pages", "pgtables_pages", "oom_score_adj",
            "adj_points"} <= set(kill["candidates"][0])


# --------------------------------------------------------------------------- eras


def test_era_2_6_32_global_legacy_badness() -> None:
    """2.6.32: header with oom_adj, 'Pid:' dump_stack line, the cpu/oom_adj table and
    'kill process ... or a child'. badness() from the row: total_vm, oom_adj shift
    (php-fpm: 55120 << 3 = 440960); init is listed but never chosen; -17 disables."""
    row = "[%5d] %5d %5d %8d %8d %3d     %3d %s"
    lines = stamp([
        "%s invoked oom-killer: gfp_mask=0x%x, order=%d, oom_adj=%d" % ("leaky", 0x280DA, 0, 0),
        "Pid: 1733, comm: leaky Not tainted 2.6.32-754.el6.x86_64 #1",
        "Call Trace:",
        " [<ffffffff810c7b41>] ? cpuset_print_task_mems_allowed+0x91/0xb0",
        "Mem-Info:",
        "Node 0 DMA per-cpu:",
        "CPU    0: hi:    0, btch:   1 usd:   0",
        "active_anon:1900000 inactive_anon:3000 isolated_anon:0",
        " active_file:120 inactive_file:80 isolated_file:0",
        " unevictable:0 dirty:0 writeback:0 unstable:0",
        " free:12000 slab_reclaimable:3000 slab_unreclaimable:5000",
        " mapped:100 shmem:20 pagetables:4000 bounce:0",
        "Node 0 DMA free:15908kB min:20kB low:24kB high:28kB active_anon:0kB inactive_anon:0kB "
        "present:15324kB pages_scanned:0 all_unreclaimable? yes",
        "lowmem_reserve[]: 0 3000 8000 8000",
        "Node 0 DMA: 1*4kB 2*8kB 1*16kB 0*32kB 2*64kB 1*128kB 1*256kB 0*512kB 1*1024kB 1*2048kB 3*4096kB = 15908kB",
        "220 total pagecache pages",
        "0 pages in swap cache",
        "Swap cache stats: add 0, delete 0, find 0/0",
        "Free swap  = 0kB",
        "Total swap = 0kB",
        "2097151 pages RAM",
        "68123 pages reserved",
        "400 pages shared",
        "2010000 pages non-shared",
        "[ pid ]   uid  tgid total_vm      rss cpu oom_adj name",
        row % (1, 0, 1, 4850, 90, 0, 0, "init"),
        row % (412, 0, 412, 2709, 120, 1, -17, "udevd"),
        row % (1733, 1000, 1733, 3154022, 1903551, 2, 0, "leaky"),
        row % (1801, 33, 1801, 55120, 4105, 0, 3, "php-fpm"),
        "Out of memory: kill process 1733 (leaky) score 3154022 or a child",
        "Killed process 1733 (leaky)",
    ])
    k = kills_of(lines).kills[0]
    assert k.kernel_version == "2.6.32"
    assert k.constraint == "CONSTRAINT_NONE" and k.memcg is None
    assert k.victim.pid == 1733 and k.victim.comm == "leaky"
    pts = {c.pid: c.points for c in k.candidates}
    assert pts[1733] == 3154022 and pts[1801] == 440960 and pts[412] is None
    assert k.victim_points == 3154022 and k.victim_ranked_first is True
    assert k.extra["printed_score"] == 3154022
    assert k.totalpages == 2097151 - 68123
    assert all("2.6.32 badness() also uses" in c.note for c in k.candidates)
    assert {u.kind for u in k.unreclaimable} >= {"anon_no_swap"}
    assert k.memory is not None and k.memory["free_bytes"] == 12000 * 4096


def test_era_2_6_32_child_sacrificed() -> None:
    lines = stamp([
        "%s invoked oom-killer: gfp_mask=0x%x, order=%d, oom_adj=%d" % ("leaky", 0x280DA, 0, 0),
        "Out of memory: kill process 1733 (leaky) score 245118 or a child",
        "Killed process 1740 (helper)",
    ])
    k = kills_of(lines).kills[0]
    assert k.victim.pid == 1740
    assert k.extra["printed_score"] == 245118


def test_era_3_4_normalised_badness() -> None:
    """3.4: oom_adj and oom_score_adj in the header, the 2.6.36-3.5 formula, normalised
    to 0..1000: (rss + ptes + swap) * 1000 / totalpages + adj; the row has no ptes
    or swap entries. totalpages = 1048576 - 20000 + 262144 = 1290720: leaky
    900000000 / 1290720 = 697, php-fpm 4105000 / 1290720 + 500 = 503."""
    row = "[%5d] %5d %5d %8d %8d %3d     %3d         %5d %s"
    lines = stamp([
        "%s invoked oom-killer: gfp_mask=0x%x, order=%d, oom_adj=%d, oom_score_adj=%d" % ("leaky", 0x200DA, 0, 0, 0),
        "leaky cpuset=/ mems_allowed=0",
        "Pid: 1733, comm: leaky Not tainted 3.4.108 #1",
        "Mem-Info:",
        "Free swap  = 0kB",
        "Total swap = 1048576kB",
        "1048576 pages RAM",
        "20000 pages reserved",
        "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
        row % (1733, 1000, 1733, 1200000, 900000, 1, 0, 0, "leaky"),
        row % (1801, 33, 1801, 55120, 4105, 0, 8, 500, "php-fpm"),
        "Out of memory: Kill process 1733 (leaky) score 697 or sacrifice child",
        "Killed process 1733 (leaky) total-vm:4800000kB, anon-rss:3599000kB, file-rss:1000kB",
    ])
    k = kills_of(lines).kills[0]
    assert k.kernel_version == "3.4.108"
    assert k.totalpages == 1290720
    assert {c.pid: c.points for c in k.candidates} == {1733: 697, 1801: 503}
    assert k.victim_points == 697 == k.extra["printed_score"]
    assert "nr_ptes" in k.candidates[0].note and "swap entries" in k.candidates[0].note
    assert k.extra["killed"]["anon_rss_kb"] == 3599000


def test_era_3_10_pages_and_printed_score() -> None:
    """3.10 (§1.5's worked example): totalpages 2029000 + 524287 = 2553287; leaky
    1903551 + 3782 = 1907333, printed 1907333 * 1000 / 2553287 = 747; php-fpm
    4105 + 69 + 300 * 2553 = 770074; udevd at -1000 is ineligible."""
    row = "[%5d] %5d %5d %8d %8d %7d %8d         %5d %s"
    lines = stamp([
        "leaky invoked oom-killer: gfp_mask=0x200da, order=0, oom_score_adj=0",
        "leaky cpuset=/ mems_allowed=0",
        "CPU: 3 PID: 1733 Comm: leaky Not tainted 3.10.0-1160.el7.x86_64 #1",
        "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
        "Mem-Info:",
        "Free swap  = 2097148kB",
        "Total swap = 2097148kB",
        "2097152 pages RAM",
        "68152 pages reserved",
        "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",
        row % (412, 0, 412, 10851, 2817, 20, 0, -1000, "systemd-udevd"),
        row % (1733, 1000, 1733, 3154022, 1903551, 3782, 0, 0, "leaky"),
        row % (1801, 33, 1801, 55120, 4105, 69, 0, 300, "php-fpm"),
        "Out of memory: Kill process 1733 (leaky) score 747 or sacrifice child",
        "Killed process 1733 (leaky) total-vm:12616088kB, anon-rss:7604080kB, file-rss:10124kB",
    ])
    k = kills_of(lines).kills[0]
    assert k.totalpages == 2553287
    assert {c.pid: c.points for c in k.candidates} == {412: None, 1733: 1907333, 1801: 770074}
    assert k.victim_ranked_first is True and k.extra["printed_score"] == 747
    assert 1907333 * 1000 // 2553287 == 747
    assert k.formula is not None and k.formula.startswith("3.6-3.13")


def test_era_4_9_memcg_v1_one_line_stats() -> None:
    """4.9 memcg v1: 'Task in ... killed as a result of limit of', the one-line
    ``cache:0KB rss:...KB`` stats, the nr_pmds column. totalpages = 65536 (the
    memory+swap limit is unlimited but the log has no machine swap: none counted);
    leaky 60000 + 130 + 3 = 60133, printed 60133 * 1000 / 65536 = 917."""
    row = "[%5d] %5d %5d %8d %8d %7d %7d %8d         %5d %s"
    lines = stamp([
        "leaky invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=0, order=0, "
        "oom_score_adj=0",
        "leaky cpuset=/ mems_allowed=0",
        "CPU: 0 PID: 2001 Comm: leaky Not tainted 4.9.229 #1",
        "Task in /app killed as a result of limit of /app",
        "memory: usage 262144kB, limit 262144kB, failcnt 123",
        "memory+swap: usage 262144kB, limit 9007199254740988kB, failcnt 0",
        "kmem: usage 2048kB, limit 9007199254740988kB, failcnt 0",
        "Memory cgroup stats for /app: cache:0KB rss:260096KB rss_huge:0KB mapped_file:0KB dirty:0KB "
        "writeback:0KB swap:0KB inactive_anon:0KB active_anon:260096KB inactive_file:0KB active_file:0KB "
        "unevictable:0KB",
        "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
        row % (2001, 1000, 2001, 300000, 60000, 130, 3, 0, 0, "leaky"),
        row % (2002, 1000, 2002, 20000, 4000, 12, 3, 0, 0, "worker"),
        "Memory cgroup out of memory: Kill process 2001 (leaky) score 917 or sacrifice child",
        "Killed process 2001 (leaky) total-vm:1200000kB, anon-rss:240000kB, file-rss:0kB, shmem-rss:0kB",
    ])
    k = kills_of(lines).kills[0]
    assert k.constraint == "CONSTRAINT_MEMCG" and k.memcg == "/app"
    assert k.extra["cgroup_version"] == 1 and k.extra["task_memcg"] == "/app"
    assert k.gfp_mask == 0x24280CA and k.order == 0
    assert k.totalpages == 65536
    assert {c.pid: c.points for c in k.candidates} == {2001: 60133, 2002: 4015}
    assert 60133 * 1000 // 65536 == 917 == k.extra["printed_score"]
    assert k.memory is not None and k.memory["rss_bytes"] == 260096 * 1024


def test_era_4_19_tasks_state_and_reaper() -> None:
    """4.19: 'Tasks state' header, pgtables_bytes, no oom-kill: line, the reaper line."""
    row = "[%7d] %5d %5d %8d %8d %8d %8d         %5d %s"
    lines = stamp([
        "leaky invoked oom-killer: gfp_mask=0x6280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=(null), "
        "order=0, oom_score_adj=0",
        "leaky cpuset=/ mems_allowed=0",
        "CPU: 2 PID: 1733 Comm: leaky Not tainted 4.19.0-21-amd64 #1 Debian 4.19.249-2",
        "Mem-Info:",
        "active_anon:1900000 inactive_anon:1500 isolated_anon:0",
        " active_file:100 inactive_file:50 isolated_file:0",
        " unevictable:0 dirty:0 writeback:0 unstable:0",
        " slab_reclaimable:3000 slab_unreclaimable:5000",
        " mapped:100 shmem:200 pagetables:4000 bounce:0",
        " free:12000 free_pcp:100 free_cma:0",
        "Node 0 active_anon:7600000kB inactive_anon:6000kB active_file:400kB inactive_file:200kB "
        "unevictable:0kB isolated(anon):0kB isolated(file):0kB mapped:400kB dirty:0kB writeback:0kB "
        "shmem:800kB writeback_tmp:0kB unstable:0kB all_unreclaimable? yes",
        "Node 0 Normal free:44000kB min:44000kB low:55000kB high:66000kB active_anon:7600000kB "
        "inactive_anon:6000kB present:8388608kB managed:8116000kB mlocked:0kB",
        "lowmem_reserve[]: 0 0 0 0 0",
        "Node 0 Normal: 100*4kB 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB "
        "10*4096kB = 41360kB",
        "350 total pagecache pages",
        "0 pages in swap cache",
        "Free swap  = 0kB",
        "Total swap = 2097148kB",
        "2097152 pages RAM",
        "0 pages HighMem/MovableOnly",
        "68152 pages reserved",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        row % (412, 0, 412, 10851, 2817, 90112, 0, -1000, "systemd-udevd"),
        row % (1733, 1000, 1733, 3154022, 1903551, 15491072, 0, 0, "leaky"),
        row % (1801, 33, 1801, 55120, 4105, 282624, 0, 300, "php-fpm"),
        "Out of memory: Kill process 1733 (leaky) score 747 or sacrifice child",
        "Killed process 1733 (leaky) total-vm:12616088kB, anon-rss:7604080kB, file-rss:10124kB, shmem-rss:0kB",
        "oom_reaper: reaped process 1733 (leaky), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    ])
    k = kills_of(lines).kills[0]
    assert k.kernel_version == "4.19.0"
    assert {c.pid: c.points for c in k.candidates} == {412: None, 1733: 1907333, 1801: 770074}
    assert k.extra["printed_score"] == 747
    assert k.extra["reaped"]["success"] is True and k.extra["reaped"]["anon"] == 0
    assert k.formula is not None and k.formula.startswith("4.17-5.8")
    kinds = {u.kind for u in k.unreclaimable}
    assert {"swap_full", "file_cache_gone", "kernel"} <= kinds


def test_era_5_4_memcg_v2_adj_outweighs_rss() -> None:
    """5.4 memcg v2: 'swap:' usage line, multi-line memory.stat, oom-kill: summary,
    the 5.x kill line. totalpages 131072 (swap limit 0): node 100000 + 100 = 100100,
    php-fpm 4105 + 69 + 1000 * 131 = 135174."""
    row = "[%7d] %5d %5d %8d %8d %8d %8d         %5d %s"
    stats = ["anon 530579456", "file 1048576", "kernel_stack 147456", "slab 2097152", "sock 0", "shmem 0",
             "file_mapped 0", "file_dirty 0", "file_writeback 0", "inactive_anon 530579456", "active_anon 0",
             "inactive_file 1048576", "active_file 0", "unevictable 0"]
    lines = stamp([
        "node invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        "CPU: 1 PID: 900 Comm: node Not tainted 5.4.0-150-generic #167-Ubuntu",
        "memory: usage 524288kB, limit 524288kB, failcnt 40",
        "swap: usage 0kB, limit 0kB, failcnt 0",
        "Memory cgroup stats for /system.slice/web.service:",
        *stats,
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        row % (900, 1000, 900, 300000, 100000, 409600, 0, 0, "node"),
        row % (1801, 33, 1801, 55120, 4105, 282624, 0, 1000, "php-fpm"),
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/system.slice/web.service,task_memcg=/system.slice/web.service,task=php-fpm,pid=1801,uid=33",
        "Memory cgroup out of memory: Killed process 1801 (php-fpm) total-vm:220480kB, anon-rss:12040kB, "
        "file-rss:4380kB, shmem-rss:0kB, UID:33 pgtables:276kB oom_score_adj:1000",
    ])
    k = kills_of(lines).kills[0]
    assert k.memcg == "/system.slice/web.service" and k.extra["cgroup_version"] == 2
    assert k.totalpages == 131072
    assert {c.pid: c.points for c in k.candidates} == {900: 100100, 1801: 135174}
    assert k.victim.pid == 1801 and k.victim_ranked_first is True
    assert "1801's oom_score_adj of 1000 outweighed 900's larger RSS (points 135174 against 100100)" in "\n".join(
        k.explanation)
    assert any(u.kind == "anon_no_swap" for u in k.unreclaimable)
    assert k.extra["killed"]["pgtables_kb"] == 276 and k.extra["killed"]["oom_score_adj"] == 1000


def test_era_5_15_tie_goes_to_the_last_task() -> None:
    """5.4+: an equal score replaces the pick, so the last task scanned wins a tie
    (a: 5000 + 100 + 10 = 5110, b: 5010 + 90 + 10 = 5110)."""
    row = "[%7d] %5d %5d %8d %8d %8d %8d         %5d %s"
    lines = stamp([
        "b invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
        "CPU: 0 PID: 101 Comm: b Tainted: G        W  O      5.15.0-91-generic #101-Ubuntu",
        "Mem-Info:",
        "Free swap  = 0kB",
        "Total swap = 1048572kB",
        "262144 pages RAM",
        "0 pages HighMem/MovableOnly",
        "10000 pages reserved",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        row % (100, 0, 100, 9000, 5000, 40960, 100, 0, "a"),
        row % (101, 0, 101, 9000, 5010, 40960, 90, 0, "b"),
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        "task_memcg=/user.slice,task=b,pid=101,uid=0",
        "Out of memory: Killed process 101 (b) total-vm:36000kB, anon-rss:20040kB, file-rss:0kB, shmem-rss:0kB, "
        "UID:0 pgtables:40kB oom_score_adj:0",
    ])
    k = kills_of(lines).kills[0]
    assert k.kernel_version == "5.15.0"
    assert k.trigger is not None and k.trigger.pid == 101
    assert {c.pid: c.points for c in k.candidates} == {100: 5110, 101: 5110}
    assert k.victim_ranked_first is True
    assert any("last task scanned wins a tie" in line for line in k.explanation)


def test_era_6_6_journalctl_negative_adj_protects() -> None:
    """6.6 through journalctl -k (no kernel timestamps): signed badness, so db's
    -500 adj takes it below zero: 800000 + 400 - 500 * 2047 = -223100."""
    row = "[%7d] %5d %5d %8d %8d %8d %8d         %5d %s"
    body = [
        "leaky invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, "
        "oom_score_adj=0",
        "CPU: 1 PID: 301 Comm: leaky Not tainted 6.6.9 #1",
        "Mem-Info:",
        "Free swap  = 0kB",
        "Total swap = 0kB",
        "2097152 pages RAM",
        "0 pages HighMem/MovableOnly",
        "50000 pages reserved",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        row % (300, 999, 300, 900000, 800000, 1638400, 0, -500, "db"),
        row % (301, 1000, 301, 600000, 500000, 1024000, 0, 0, "leaky"),
        row % (302, 0, 302, 4000, 1000, 40960, 0, -1000, "sshd"),
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        "task_memcg=/user.slice/user-1000.slice/session-4.scope,task=leaky,pid=301,uid=1000",
        "Out of memory: Killed process 301 (leaky) total-vm:2400000kB, anon-rss:2000000kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:1000kB oom_score_adj:0",
    ]
    lines = [f"Nov 26 22:48:{i % 60:02d} web-7 kernel: {text}" for i, text in enumerate(body)]
    k = kills_of(lines).kills[0]
    assert k.ts_ns is None and k.extra["wall_clock"] == "Nov 26 22:48:00"
    assert k.totalpages == 2047152
    assert {c.pid: c.points for c in k.candidates} == {300: -223100, 301: 500250, 302: None}
    assert "300's oom_score_adj of -500 protected it despite its larger RSS" in "\n".join(k.explanation)
    assert k.extra["task_memcg"] == "/user.slice/user-1000.slice/session-4.scope"


def test_era_6_8_memcg_v2_syslog_with_split_rss() -> None:
    """6.8+ table (rss_anon/rss_file/rss_shmem) through syslog with kernel timestamps;
    a v2 memcg whose swap may grow (swap.max unlimited) and no machine swap total in
    the log: totalpages counts the limit only, and the notes say so."""
    row = "[%7d] %5d %5d %8d %8d %8d %8d %9d %8d %8d         %5d %s"
    body = stamp([
        "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "CPU: 1 UID: 0 PID: 4847 Comm: python3 Not tainted 6.13.7 #1 PREEMPT(voluntary)",
        "memory: usage 98304kB, limit 98304kB, failcnt 10",
        "swap: usage 0kB, limit 9007199254740988kB, failcnt 0",
        "Memory cgroup stats for /app.slice/web.service:",
        "anon 99831808",
        "file 0",
        "kernel 831488",
        "shmem 0",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
        "oom_score_adj name",
        row % (4724, 0, 4724, 9274, 8453, 6816, 1637, 0, 114688, 0, 0, "python3"),
        row % (4847, 0, 4847, 14391, 13343, 11680, 1663, 0, 163840, 0, 0, "python3"),
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/app.slice/web.service,task_memcg=/app.slice/web.service,task=python3,pid=4847,uid=0",
        "Memory cgroup out of memory: Killed process 4847 (python3) total-vm:57564kB, anon-rss:46720kB, "
        "file-rss:6652kB, shmem-rss:0kB, UID:0 pgtables:160kB oom_score_adj:0",
    ], t0=153.241486)
    lines = [f"Nov 26 22:48:00 web-7 kernel: {text}" for text in body]
    k = kills_of(lines).kills[0]
    assert k.ts_ns == 153_241_486_000
    assert k.totalpages == 24576
    assert "no swap counted" in k.extra["totalpages_how"]
    c = {c.pid: c for c in k.candidates}
    assert c[4847].points == 13383 and c[4847].rss_file_pages == 1663
    assert k.victim.pid == 4847 and k.victim_ranked_first is True


def test_panic_on_oom() -> None:
    row = "[%7d] %5d %5d %8d %8d %8d %8d %9d %8d %8d         %5d %s"
    lines = stamp([
        "leaky invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, "
        "oom_score_adj=0",
        "CPU: 0 UID: 1000 PID: 1733 Comm: leaky Not tainted 6.8.0-45-generic #45-Ubuntu",
        "Mem-Info:",
        "Total swap = 0kB",
        "2097152 pages RAM",
        "68152 pages reserved",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
        "oom_score_adj name",
        row % (1733, 1000, 1733, 3154022, 1903551, 1901020, 2531, 0, 15491072, 0, 0, "leaky"),
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ])
    k = kills_of(lines).kills[0]
    assert k.victim.pid is None
    assert k.extra["panic"] == "Out of memory: system-wide panic_on_oom is enabled"
    assert any("panicked" in line for line in k.explanation)
    assert k.candidates[0].points == 1903551 + 3782


def test_no_killable_process_and_deadlock_panic() -> None:
    lines = stamp([
        "init invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "Out of memory and no killable processes...",
        "Kernel panic - not syncing: System is deadlocked on memory",
    ])
    k = kills_of(lines).kills[0]
    assert k.victim.pid is None
    assert k.extra["panic"] == "System is deadlocked on memory"


def test_oom_group_kills_every_task() -> None:
    lines = stamp([
        "w invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "memory: usage 1024kB, limit 1024kB, failcnt 1",
        "swap: usage 0kB, limit 0kB, failcnt 0",
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/g,"
        "task_memcg=/g,task=w,pid=10,uid=0",
        "Memory cgroup out of memory: Killed process 10 (w) total-vm:100kB, anon-rss:80kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
        "Tasks in /g are going to be killed due to memory.oom.group set",
        "Memory cgroup out of memory: Killed process 11 (x) total-vm:100kB, anon-rss:80kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
    ])
    rep = kills_of(lines)
    assert len(rep.kills) == 1
    assert rep.kills[0].extra["also_killed"] == [{"pid": 11, "comm": "x"}]


# --------------------------------------------------------------------------- logs as found


def test_interleaved_reports_and_unrelated_lines() -> None:
    """Two reports, other kernel messages between and inside them, and a kill whose
    dump_header was rate-limited (only its 'Killed process' line)."""
    real = REAL_LOG.read_text().splitlines()
    noise = ["[  150.000000] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
             "[  153.241900] audit: type=1400 audit(1700000000.123:42): apparmor=\"DENIED\"",
             "[  153.300000] cache 12345"]  # looks like a memcg stat line, outside any report
    mixed = noise[:1] + real[:40] + noise[1:2] + real[40:] + noise[2:]
    mixed.append("[  200.000000] Out of memory: Killed process 5000 (x) total-vm:1000kB, anon-rss:800kB, "
                 "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
    log = parse_oom_lines(mixed)
    assert [r.victim_pid for r in log.reports] == [4725, 4847, 5000]
    assert log.reports[0].memcg_stats["rss"] == 99831808
    assert "cache" not in log.reports[1].memcg_stats or log.reports[1].memcg_stats["cache"] == 0
    assert log.unknown_lines >= 3
    rep = kills_of(mixed)
    assert rep.kills[2].candidates == () and rep.kills[2].victim.comm == "x"


@pytest.mark.parametrize("prefix", [
    "kern  :warn  : [  153.241486] ",          # dmesg -x
    "<4>[  153.241486] ",                      # /dev/kmsg, dmesg -r
    "[Tue Nov 26 22:48:00 2024] ",             # dmesg -T
    "2024-11-26T22:48:00,123456+00:00 ",       # dmesg --time-format iso
    "[  153.241486] web-7 kernel: ",           # journalctl -o short-monotonic
    "2024-11-26T22:48:00.123456+00:00 web-7 kernel: [  153.241486] ",  # rsyslog RFC 3339
    "[  153.241486] [ T4847] ",                # CONFIG_PRINTK_CALLER
])
def test_prefixes_are_stripped(prefix: str) -> None:
    ts, wall, text = split_prefix(prefix + "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, "
                                           "oom_score_adj=0")
    assert text.startswith("python3 invoked oom-killer")
    assert ts in (None, 153_241_486_000)
    assert ts is not None or wall is not None


def test_truncated_report_is_kept_with_a_warning() -> None:
    real = REAL_LOG.read_text().splitlines()
    cut = real[:real.index(next(ln for ln in real if "[   4725]" in ln))]
    log = parse_oom_lines(cut)
    assert len(log.reports) == 1 and not log.reports[0].complete
    assert any("truncated" in w for w in log.warnings)
    k = kills_of(cut).kills[0]
    assert k.victim.pid is None and k.extra["truncated"] is True
    assert [c.pid for c in k.candidates] == [4724]


def test_gzipped_log_and_file_errors(tmp_path: Path) -> None:
    gz = tmp_path / "kern.log.gz"
    gz.write_bytes(gzip.compress(REAL_LOG.read_bytes()))
    assert [k.victim.pid for k in report_from_log(gz).kills] == [4725, 4847]
    assert looks_like_kernel_log(gz)
    with pytest.raises(ParseError, match="cannot read"):
        report_from_log(tmp_path / "missing.log")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 50)
    with pytest.raises(ParseError, match="neither a memtrace trace nor a kernel log"):
        report_from_log(junk)
    quiet = tmp_path / "quiet.log"
    quiet.write_text("[    0.000000] Linux version 6.8.0\n[    1.000000] usb 1-1: new device\n")
    rep = report_from_log(quiet)
    assert rep.kills == () and "no OOM report" in rep.warnings[0]


def test_looks_like_kernel_log(tmp_path: Path) -> None:
    assert looks_like_kernel_log(REAL_LOG)
    perf = SHARED / "memcg-oom-two-victims.perf-script.txt.gz"
    assert not looks_like_kernel_log(perf)
    text = tmp_path / "notes.txt"
    text.write_text("hello\nworld\n")
    assert not looks_like_kernel_log(text)


# --------------------------------------------------------------------------- own samples


@pytest.mark.parametrize("name, victims", [
    ("memcg-v1-two-kills.dmesg.txt.gz", None),
    ("memcg-v1-ftrace.dmesg.txt.gz", None),
])
def test_own_real_samples(name: str, victims: object) -> None:
    """Logs recorded on this project's machine (tests/data/real/make_samples.sh): a
    64 MiB v1 memcg, a 16 MiB holder at oom_score_adj 1000 and a 1 MiB-per-5 ms
    leaker; the holder's adj outweighs the leaker's RSS, then the leaker goes."""
    log = parse_oom_log(OWN / name)
    assert len(log.reports) == 2
    rep = report_from_log(OWN / name)
    holder, leaker = rep.kills
    for k in rep.kills:
        assert k.constraint == "CONSTRAINT_MEMCG" and k.memcg == "/memtrace_test"
        assert k.extra["cgroup_version"] == 1 and k.totalpages == 16384
        assert k.victim.comm == "memtrace-leaky" and k.victim_ranked_first is True
        assert k.kernel_version is not None and k.kernel_version.startswith("6.18")
        assert k.memory is not None and k.memory["memcg_limit_bytes"] == 64 << 20
    assert holder.extra["killed"]["oom_score_adj"] == 1000
    assert leaker.extra["killed"]["oom_score_adj"] == 0
    assert leaker.victim.pid == leaker.trigger.pid
    assert holder.trigger.pid == leaker.victim.pid
    assert holder.victim.pid in {c.pid for c in holder.candidates}
    assert holder.victim.pid not in {c.pid for c in leaker.candidates}
    names = {c.comm for c in holder.candidates}
    assert {"sh", "timeout", "memtrace-leaky"} <= names
    hc = next(c for c in holder.candidates if c.pid == holder.victim.pid)
    assert hc.oom_score_adj == 1000 and hc.adj_points == 1000 * 16
    assert hc.rss_anon_pages == 4096  # the 16 MiB it wrote
    assert f"{holder.victim.pid}'s oom_score_adj of 1000 outweighed {leaker.victim.pid}'s larger RSS" in "\n".join(
        holder.explanation)
    assert leaker.extra["grower"]["pid"] == leaker.victim.pid


@pytest.mark.parametrize("old, new", [
    ("[   4725]     0  4725     8250", "[   4725] 99999999999  4725     8250"),  # uid beyond uid_t
    ("[   4725]     0  4725     8250", "[   4725]     0  4725  99999999999999999999"),  # total_vm
    ("UID:0 pgtables:100kB", "UID:99999999999 pgtables:100kB"),
    ("total-vm:33000kB", "total-vm:99999999999999999999kB"),
])
def test_numbers_no_kernel_prints_are_dropped_and_import_goes_on(tmp_path: Path, old: str, new: str) -> None:
    """A damaged number in the companion log (no value the kernel could print there)
    drops that row or field; the report and an import with the log still work, and
    the first kill is still 4725's."""
    from memtrace.analysis.importers import import_trace

    text = REAL_LOG.read_text()
    assert old in text
    log = tmp_path / "k.log"
    log.write_text(text.replace(old, new, 1))
    report = report_from_log(log)
    assert [k.victim.pid for k in report.kills] == [4725, 4847]
    result = import_trace(SHARED / "memcg-oom-two-victims.perf-script.txt.gz", tmp_path / "t.mtrace", dmesg=log)
    assert [k["victim_pid"] for k in result.oom_kills] == [4725, 4847]
