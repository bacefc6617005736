"""The era tables of kernlog.formats: what the writer prints, the reader reads back.

Each layout of each era is rendered from known values and read with the expression
(or the parser) that reads it; the values must come back. The last tests add a
layout that no kernel has (a "6.20" task row) to the table and show that the
writer and the reader both follow it with no other change.
"""

from __future__ import annotations

import pytest

from memtrace.analysis.kernlog import formats as fmt
from memtrace.analysis.kernlog import infer_kernel_version, parse_oom_lines
from memtrace.analysis.kernlog.formats import (
    DumpTaskRow,
    Printk,
    TaskLayout,
    dump_tasks_header,
    format_dump_task,
    layout_for,
    printf,
)
from memtrace.linux.version import READ_TREES, V2_6_32, V3_4, V5_4, V6_8, V6_13, KernelVersion

#: Every read tree, versions between them, one older than all and one newer.
VERSIONS: list[KernelVersion] = [*READ_TREES, (2, 6, 20), (3, 7), (4, 5), (5, 10), (6, 1), (6, 11), (6, 16), (6, 18)]
ROW = DumpTaskRow(pid=4847, uid=1000, tgid=4847, total_vm=56789, rss_anon=12000, rss_file=345, rss_shmem=6,
                  pgtables_bytes=245760, swapents=17, oom_score_adj=500, comm="python3")


def test_printf_drops_only_the_length_modifiers() -> None:
    assert printf("[%7d] %5hd %8lu %8ld %llukB %.5s|%3u", 1, -2, 3, -4, 5, "abcdefgh", 6) == \
        "[      1]    -2        3       -4 5kB abcde|  6"


def test_layout_for_takes_the_newest_entry_not_newer_than_the_version() -> None:
    table = ((V6_8, "new"), (V3_4, "mid"), (V2_6_32, "old"))
    assert layout_for(table, V6_13) == "new" and layout_for(table, V6_8) == "new"
    assert layout_for(table, (6, 7, 12)) == "mid" and layout_for(table, V3_4) == "mid"
    assert layout_for(table, (3, 2)) == "old" and layout_for(table, (2, 6, 20)) == "old"


def test_every_table_is_newest_first() -> None:
    for table in (fmt.OOM_HEADER, fmt.CPUSET_LINE, fmt.DUMP_STACK, fmt.CALL_TRACE, fmt.MEMINFO, fmt.MEMCG,
                  fmt.TASK_TABLE, fmt.OOM_KILL_SUMMARY, fmt.KILL_LINES, fmt.REAPER_LINES):
        versions = [since for since, _ in table]
        assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)


@pytest.mark.parametrize("version", VERSIONS)
def test_header_line_reads_back(version: KernelVersion) -> None:
    printk = layout_for(fmt.OOM_HEADER, version)
    line = printk.render({"comm": "python3", "gfp": "0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP)", "order": 0,
                          "oom_score_adj": 500, "stored_oom_adj": 7, "legacy_oom_adj": 8})
    m = fmt.HEADER_RE.match(line)
    assert m is not None, line
    assert (m["comm"], m["gfp"], m["flags"], m["order"]) == ("python3", "0x140cca",
                                                             "GFP_HIGHUSER_MOVABLE|__GFP_COMP", "0")
    assert m["adj"] == ("500" if "oom_score_adj" in printk.args else None)
    if "stored_oom_adj" in printk.args:
        assert m["oom_adj"] == "7"
    elif "legacy_oom_adj" in printk.args:
        assert m["oom_adj"] == "8"
    else:
        assert m["oom_adj"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_dump_stack_line_reads_back(version: KernelVersion) -> None:
    line = layout_for(fmt.DUMP_STACK, version).render({"cpu": 0, "uid": 1000, "pid": 4847, "comm": "python3",
                                                      "taint": "Not tainted", "release": "6.18.44-fc"})
    m = fmt.CPU_LINE_RE.match(line) or fmt.PID_LINE_RE.match(line)
    assert m is not None, line
    assert (m["pid"], m["comm"], m["release"]) == ("4847", "python3", "6.18.44-fc")


@pytest.mark.parametrize("version", VERSIONS)
def test_task_table_reads_back(version: KernelVersion) -> None:
    """The header gives the reader its columns; the row's values come back by them."""
    lines = ["python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             *dump_tasks_header(version), format_dump_task(ROW, version)]
    [report] = parse_oom_lines(lines).reports
    [row] = report.tasks
    layout = layout_for(fmt.TASK_TABLE, version)
    assert report.task_columns == layout.columns
    assert (row.pid, row.uid, row.tgid, row.total_vm, row.rss, row.name) == (4847, 1000, 4847, 56789, 12351,
                                                                             "python3")
    expected = {"rss_anon": 12000, "rss_file": 345, "rss_shmem": 6, "pgtables_bytes": 245760, "swapents": 17,
                "oom_score_adj": 500, "nr_ptes": ROW.pte_pages if "nr_pmds" in layout.columns else ROW.table_pages,
                "nr_pmds": ROW.pmd_pages, "cpu": 0, "oom_adj": ROW.stored_oom_adj if "oom_score_adj" in
                layout.columns else ROW.legacy_oom_adj}
    for column in layout.columns[:-1]:
        assert getattr(row, column) == expected.get(column, getattr(row, column)), column


@pytest.mark.parametrize("version", VERSIONS)
def test_kill_lines_and_summary_read_back(version: KernelVersion) -> None:
    values = {"message": "Memory cgroup out of memory", "pid": 4847, "comm": "python3", "total_vm_kb": 227156,
              "anon_rss_kb": 48000, "file_rss_kb": 1380, "shmem_rss_kb": 24, "uid": 1000, "pgtables_kb": 240,
              "oom_score_adj": 500, "score": 612, "points": 12351}
    lines = [printk.render(values) for printk in layout_for(fmt.KILL_LINES, version)]
    summary = layout_for(fmt.OOM_KILL_SUMMARY, version)
    if summary is not None:
        lines.insert(0, summary.render({"constraint": "CONSTRAINT_MEMCG", "nodemask": "(null)", "cpuset": "/",
                                        "mems_allowed": "0", "scope": "oom_memcg=/oracle_oom",
                                        "task_memcg": "/oracle_oom", "comm": "python3", "pid": 4847, "uid": 1000}))
    lines.insert(0, "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
    [report] = parse_oom_lines(lines).reports
    assert (report.killed_pid, report.killed_comm) == (4847, "python3")
    assert report.kill_message == "Memory cgroup out of memory"
    if version >= V5_4:
        assert report.summary["oom_memcg"] == "/oracle_oom" and report.killed_oom_score_adj == 500
        assert report.killed_pgtables_kb == 240
    elif version >= V3_4:
        assert report.chosen_score == 612 and report.killed_anon_rss_kb == 48000
    else:
        assert report.chosen_score == 12351


@pytest.mark.parametrize("version", VERSIONS)
def test_reaper_lines_read_back(version: KernelVersion) -> None:
    reaper = layout_for(fmt.REAPER_LINES, version)
    if reaper is None:
        return
    reaped, unable = reaper
    values = {"pid": 4847, "comm": "python3", "anon_rss_kb": 0, "file_rss_kb": 1380, "shmem_rss_kb": 24}
    m = fmt.REAPED_RE.match(reaped.render(values))
    assert m is not None and (m["pid"], m["file"], m["shmem"]) == ("4847", "1380", "24")
    m = fmt.UNABLE_TO_REAP_RE.match(unable.render(values))
    assert m is not None and m["comm"] == "python3"


@pytest.mark.parametrize("version", VERSIONS)
def test_memcg_counter_lines_read_back(version: KernelVersion) -> None:
    for counter in ("memory", "memory+swap", "swap", "kmem"):
        line = fmt.MEMCG_COUNTER.render({"counter": counter, "usage": 98304, "limit": 98304, "failcnt": 21})
        m = fmt.MEMCG_COUNTER_RE.match(line)
        assert m is not None and (m["name"], m["usage"], m["failcnt"]) == (counter, "98304", "21")


@pytest.mark.parametrize("version", VERSIONS)
def test_meminfo_tail_reads_back(version: KernelVersion) -> None:
    values = {"pagecache": 1234, "swapcache": 5, "free_swap": 0, "total_swap": 0, "ram": 1048576,
              "reserved": 30000, "highmem": 0, "cma": 0, "hwpoisoned": 0, "shared": 0, "non_shared": 0,
              "swap_add": 0, "swap_delete": 0, "swap_find_success": 0, "swap_find_total": 0}
    lines = ["python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", "Mem-Info:",
             *(printk.render(values) for printk in layout_for(fmt.MEMINFO, version).tail)]
    [report] = parse_oom_lines(lines).reports
    assert (report.pagecache_pages, report.swapcache_pages, report.ram_pages, report.reserved_pages) == \
        (1234, 5, 1048576, 30000)
    assert (report.swap_free_kb, report.swap_total_kb) == (0, 0)


# --------------------------------------------------------------------------- a new layout

#: A task row no kernel prints: the one change a new era's layout is, made in the table.
V6_20: KernelVersion = (6, 20)


class _RowWithSwapCache(DumpTaskRow):
    """The value a 6.20 column would print (the kernel's new counter)."""

    @property
    def rss_swapcache(self) -> int:
        return 3


_LAYOUT_6_20 = TaskLayout(
    ("Tasks state (memory values in pages):",
     "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem rss_swapcache pgtables_bytes swapents "
     "oom_score_adj name"),
    Printk("[%7d] %5d %5d %8lu %8lu %8lu %8lu %9lu %13lu %8ld %8lu         %5hd %s",
           ("pid", "uid", "tgid", "total_vm", "rss", "rss_anon", "rss_file", "rss_shmem", "rss_swapcache",
            "pgtables_bytes", "swapents", "oom_score_adj", "comm")),
    "rss_swapcache")


def test_a_new_era_layout_is_written_and_read_from_its_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding ``(V6_20, TaskLayout(...))`` to TASK_TABLE is the whole change: the
    writer prints the new header and rows for 6.20+, older kernels keep theirs, and
    the reader reads the new rows by their header and tells the era from the new
    column when the log names no release."""
    monkeypatch.setattr(fmt, "TASK_TABLE", ((V6_20, _LAYOUT_6_20), *fmt.TASK_TABLE))
    row = _RowWithSwapCache(*ROW)
    new = [*dump_tasks_header((6, 21)), format_dump_task(row, (6, 21))]
    assert new[1].endswith("rss_swapcache pgtables_bytes swapents oom_score_adj name")
    assert new[2] == "[   4847]  1000  4847    56789    12351    12000      345         6             3   " \
                     "245760       17           500 python3"
    assert dump_tasks_header(V6_13) == dump_tasks_header(V6_8)  # older eras unchanged
    log = ["python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", *new,
           "Out of memory: Killed process 4847 (python3) total-vm:227156kB, anon-rss:48000kB, file-rss:1380kB, "
           "shmem-rss:24kB, UID:1000 pgtables:240kB oom_score_adj:500"]
    [report] = parse_oom_lines(log).reports
    [parsed] = report.tasks
    assert (parsed.pid, parsed.rss_anon, parsed.pgtables_bytes, parsed.swapents, parsed.name) == \
        (4847, 12000, 245760, 17, "python3")
    assert infer_kernel_version(report)[0] == V6_20
