"""Raw ftrace text and every mapped tracepoint family, in both text formats.

Lines are written in the print formats of ../shared/reference/kernel-mm-facts.md §7
(and as this machine's 6.18 tracefs prints them: syscalls with ``0x``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.importers import import_trace
from memtrace.analysis.importers.ftrace import parse_line
from memtrace.tracer import TraceReader

OWN = Path(__file__).resolve().parents[2] / "data" / "real"


def perf_line(comm: str, pid: int, ts_us: int, event: str, payload: str) -> str:
    return f"{comm:>16} {pid:>7} [000] {ts_us // 1_000_000:>5}.{ts_us % 1_000_000:06d}: {event:>40}: {payload}"


def ftrace_line(comm: str, pid: int, ts_us: int, event: str, payload: str) -> str:
    name = event.split(":")[-1]
    if name.startswith("sys_enter_"):
        body = f"sys_{name[10:]}({payload})"
    elif name.startswith("sys_exit_"):
        body = f"sys_{name[9:]} -> {payload}"
    else:
        body = f"{name}: {payload}"
    return f"{comm:>16}-{pid:<7} [001] d..1. {ts_us // 1_000_000:5d}.{ts_us % 1_000_000:06d}: {body}"


#: One of each mapped event, in time order (microseconds), as (comm, pid, event, text).
EVENTS: list[tuple[str, int, str, str]] = [
    ("app", 100, "sched:sched_process_fork", "comm=app pid=100 child_comm=app child_pid=101"),
    ("app", 100, "syscalls:sys_enter_mmap", "addr: 0x00000000, len: 0x00200000, prot: 0x00000003, "
                                            "flags: 0x00000022, fd: 0xffffffff, off: 0x00000000"),
    ("app", 100, "syscalls:sys_exit_mmap", "0x7f0000000000"),
    ("app", 100, "exceptions:page_fault_user", "address=0x7f0000000010 ip=0x401000 error_code=0x6"),
    ("app", 100, "kmem:rss_stat", "mm_id=77 curr=1 type=MM_ANONPAGES size=4096B"),
    ("app", 100, "exceptions:page_fault_user", "address=0x7f0000001000 ip=0x401000 error_code=0x4"),
    ("app", 100, "syscalls:sys_enter_brk", "brk: 0x00000000"),
    ("app", 100, "syscalls:sys_exit_brk", "0x555500000000"),
    ("app", 100, "syscalls:sys_enter_brk", "brk: 0x555500021000"),
    ("app", 100, "syscalls:sys_exit_brk", "0x555500021000"),
    ("app", 100, "syscalls:sys_enter_mmap", "addr: 0x00000000, len: 0x00001000, prot: 0x00000001, "
                                            "flags: 0x00000002, fd: 0x00000003, off: 0x00000000"),
    ("app", 100, "syscalls:sys_exit_mmap", "0xfffffffffffffff4"),  # -ENOMEM
    ("app", 100, "filemap:mm_filemap_add_to_page_cache", "dev 8:1 ino 1a2b pfn=0x1234 ofs=8192 order=1"),
    ("kswapd0", 90, "vmscan:mm_vmscan_kswapd_wake", "nid=0 order=0"),
    ("kswapd0", 90, "filemap:mm_filemap_delete_from_page_cache", "dev 8:1 ino 1a2b pfn=0x1234 ofs=8192 order=0"),
    ("kswapd0", 90, "vmscan:mm_vmscan_lru_shrink_inactive",
     "nid=0 nr_scanned=32 nr_reclaimed=30 nr_dirty=1 nr_writeback=0 nr_congested=0 nr_immediate=0 "
     "nr_activate_anon=0 nr_activate_file=2 nr_ref_keep=0 nr_unmap_fail=0 priority=12 "
     "flags=RECLAIM_WB_FILE|RECLAIM_WB_ASYNC"),
    ("kswapd0", 90, "vmscan:mm_vmscan_kswapd_sleep", "nid=0"),
    ("app", 100, "vmscan:mm_vmscan_direct_reclaim_begin", "order=0 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
    ("app", 100, "vmscan:mm_vmscan_direct_reclaim_end", "nr_reclaimed=7"),
    ("app", 100, "kmem:mm_page_alloc", "page=0xffffea0004a1b2c0 pfn=0x1286cb order=2 migratetype=1 "
                                       "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
    ("app", 100, "kmem:mm_page_free", "page=0xffffea0004a1b2c0 pfn=0x1286cb order=0"),
    ("app", 100, "oom:oom_score_adj_update", "pid=101 comm=app oom_score_adj=500"),
    ("app", 100, "oom:mark_victim", "pid=101"),  # <= 6.8: the pid only
    ("oom_reaper", 30, "oom:finish_task_reaping", "pid=101"),
    ("app", 101, "sched:sched_process_exit", "comm=app pid=101 prio=120"),
    ("app", 100, "syscalls:sys_enter_munmap", "addr: 0x7f0000000000, len: 0x00200000"),
    ("app", 100, "syscalls:sys_exit_munmap", "0x0"),
    ("app", 100, "sched:sched_switch", "prev_comm=app prev_pid=100 ==> next_comm=x next_pid=1"),  # unknown
]


def write(tmp_path: Path, fmt: str) -> Path:
    make = perf_line if fmt == "perf-script" else ftrace_line
    lines = [make(c, p, 1_000_000 + 10 * i, e, t) for i, (c, p, e, t) in enumerate(EVENTS)]
    if fmt == "ftrace":
        lines = ["# tracer: nop", "#", *lines, "CPU:1 [LOST 12 EVENTS]"]
    else:
        lines.append("not a perf line at all")
    path = tmp_path / f"events.{fmt}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def by_name(path: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in TraceReader(path).events():
        out.setdefault(r.name, []).append(r.fields)
    return out


@pytest.mark.parametrize("fmt", ["perf-script", "ftrace"])
def test_every_family_maps(tmp_path: Path, fmt: str) -> None:
    src = write(tmp_path, fmt)
    out = tmp_path / "t.mtrace"
    result = import_trace(src, out, format="auto")
    assert result.format == fmt
    ev = by_name(out)
    mmaps = ev["mmap"]
    assert (mmaps[0]["addr"], mmaps[0]["len_bytes"], mmaps[0]["vma_kind"], mmaps[0]["ret"]) == (
        0x7F0000000000, 2 << 20, "anon_private", 0)
    assert mmaps[1]["ret"] == -12 and mmaps[1]["vma_kind"] == "file_private"
    faults = ev["page_fault"]
    assert [(f["address"], f["write"], f["vma_kind"]) for f in faults] == [
        (0x7F0000000000, True, "anon_private"), (0x7F0000001000, False, "anon_private")]
    assert [(b["old_brk"], b["brk"], b["ret"]) for b in ev["brk"]] == [
        (0x555500000000, 0, 0x555500000000), (0x555500000000, 0x555500021000, 0x555500021000)]
    assert [(p["index"], p["pfn"]) for p in ev["page_cache_add"]] == [(2, 0x1234), (3, 0x1235)]
    assert ev["page_cache_add"][0]["ino"] == 0x1A2B
    assert ev["page_cache_delete"][0]["reason"] == "reclaim"  # in kswapd
    assert ev["kswapd_wake"][0]["nid"] == 0 and len(ev["kswapd_sleep"]) == 1
    sl = ev["shrink_list"][0]
    assert (sl["lru"], sl["nr_scanned"], sl["nr_reclaimed"], sl["nr_dirty"], sl["nr_activate"], sl["priority"]) == (
        "inactive_file", 32, 30, 1, 2, 12)
    rb, re_ = ev["reclaim_begin"][0], ev["reclaim_end"][0]
    assert rb["kind"] == "direct" and rb["gfp_flags"] == 0x100DCA and re_["nr_reclaimed"] == 7
    assert ev["oom_score_adj_update"][0]["pid"] == 101 and ev["oom_score_adj_update"][0]["oom_score_adj"] == 500
    kill = ev["oom_kill"][0]
    assert (kill["pid"], kill["victim_pid"], kill["comm"], kill["oom_score_adj"]) == (100, 101, "app", 500)
    assert ev["oom_reap"][0]["victim_pid"] == 101 and ev["oom_reap"][0]["success"] is True
    assert ev["fork"][0]["child_pid"] == 101 and ev["exit"][0]["pid"] == 101
    assert ev["munmap"][0]["addr"] == 0x7F0000000000 and ev["munmap"][0]["handle"] == "m1"
    assert result.summarised["mm_page_alloc"] == {"events": 1, "pages": 4, "failed": 0}
    assert result.summarised["mm_page_free"]["pages"] == 1
    assert result.unknown_events == {"sched:sched_switch" if fmt == "perf-script" else "sched_switch": 1}
    assert result.unknown_lines == 2
    unknown = TraceReader(out).meta["source"]["unknown"]
    assert "comm" in unknown["oom_kill"] and "points" in unknown["oom_kill"]
    if fmt == "ftrace":
        assert any("lost 12 events" in w for w in result.warnings)


def test_ftrace_line_shapes() -> None:
    assert parse_line("           <...>-30564   [001] .....  3343.230797: sys_brk(brk: 0x5628ed41f000)") == (
        "<...>", 30564, None, 3343_230797000, "sys_enter_brk", "brk: 0x5628ed41f000")
    assert parse_line("            true-30660   [000] .....  3343.273103: sys_mmap -> 0x7fa3d4f07000") == (
        "true", 30660, None, 3343_273103000, "sys_exit_mmap", "0x7fa3d4f07000")
    # 4.19: "%-5d" pid and four flag characters; the tgid column option
    got = parse_line("   kworker/u4:1-12    [000] d..1    12.000100: mm_vmscan_kswapd_wake: nid=0 zid=2 order=0")
    assert got == ("kworker/u4:1", 12, None, 12_000100000, "mm_vmscan_kswapd_wake", "nid=0 zid=2 order=0")
    got = parse_line("            java-101   (    100) [003] ..... 99.000001: rss_stat: mm_id=1 curr=1 "
                     "type=MM_ANONPAGES size=4096B")
    assert got is not None and got[1:3] == (101, 100)
    # Syscall text without 0x (as §7.6 documents for older kernels)
    got = parse_line("             cat-7       [000] .....    1.000000: sys_mmap(addr: 0, len: 1000, prot: 3, "
                     "flags: 22, fd: ffffffffffffffff, off: 0)")
    assert got is not None and got[4] == "sys_enter_mmap"
    assert parse_line("# tracer: nop") is None and parse_line("random words") is None


def test_own_ftrace_sample(tmp_path: Path) -> None:
    """This machine's tracefs buffer of the memcg run: the workload's tasks only."""
    out = tmp_path / "f.mtrace"
    result = import_trace(OWN / "memcg-v1-ftrace.trace.txt.gz", out)
    assert result.format == "ftrace" and result.unknown_lines == 0
    st = TraceReader(out).scan()
    assert st.counts["page_fault"] > 16000 and st.counts["rss_stat"] > 16000
    assert st.counts["oom_kill"] == 2
    kills = [r.fields for r in TraceReader(out).events() if r.name == "oom_kill"]
    assert [k["oom_score_adj"] for k in kills] == [1000, 0]
    assert kills[1]["victim_pid"] == kills[1]["pid"] == kills[0]["pid"]
    mmaps = [r.fields for r in TraceReader(out).events() if r.name == "mmap"]
    assert all(m["addr"] != 0 for m in mmaps if m["ret"] == 0)  # sys_exit_mmap gives every address
    faults = [r.fields for r in TraceReader(out).events() if r.name == "page_fault"]
    leaker = kills[1]["victim_pid"]
    assert sum(1 for f in faults if f["pid"] == leaker and f["vma_kind"] == "anon_private") > 15000


@pytest.mark.parametrize("line", [
    "              sh-2147483648 [000] .....  4591.719856: rss_stat: mm_id=1 curr=1 type=MM_ANONPAGES size=4096B",
    "            java-101   (4294967296) [003] ..... 99.000001: rss_stat: mm_id=1 curr=1 type=MM_ANONPAGES size=4096B",
    "              sh-8312    [000] .....  99999999999999999999.720254: sys_brk(brk: 0)",
])
def test_ftrace_head_out_of_range(line: str) -> None:
    """A pid or tgid beyond pid_t, a time past 2**63 ns: not an event line."""
    assert parse_line(line) is None


def test_ftrace_numbers_out_of_range(tmp_path: Path) -> None:
    """Lines with numbers no kernel prints there are unknown (the head) or unreadable
    (the text), never an OverflowError; a lost-events count of 5000 digits (past
    int()'s limit: a ValueError) is no count."""
    ok = ftrace_line("app", 100, 1_000_000, "kmem:rss_stat", "mm_id=77 curr=1 type=MM_ANONPAGES size=4096B")
    lines = [ok,
             "             app-2147483648 [001] d..1.     1.000001: page_fault_user: address=0x1 ip=0x1 error_code=0x6",
             ftrace_line("app", 100, 1_000_002, "syscalls:sys_enter_mmap",
                         "addr: 0, len: 10000000000000000, prot: 3, flags: 22, fd: ffffffff, off: 0"),
             ftrace_line("app", 100, 1_000_003, "syscalls:sys_enter_brk", "brk: 0"),
             ftrace_line("app", 100, 1_000_004, "syscalls:sys_exit_brk", "-0x1000"),
             ftrace_line("app", 100, 1_000_005, "vmscan:mm_vmscan_kswapd_wake", f"nid={1 << 31} order=0"),
             ftrace_line("app", 100, 1_000_006, "filemap:mm_filemap_add_to_page_cache",
                         "dev 8:1 ino 1a2b pfn=0xffffffffffffffff ofs=0 order=1"),
             ftrace_line("app", 100, 1_000_007, "sched:sched_process_fork",
                         f"comm=app pid=100 child_comm=app child_pid={1 << 32}"),
             "CPU:1 [LOST " + "9" * 5000 + " EVENTS]"]
    src = tmp_path / "t.txt"
    src.write_text("# tracer: nop\n" + "\n".join(lines) + "\n")
    out = tmp_path / "t.mtrace"
    result = import_trace(src, out, format="ftrace")
    assert result.unknown_lines == 7
    assert result.unknown_events == {f"{name} (unreadable)": 1 for name in (
        "sys_enter_mmap", "sys_exit_brk", "mm_vmscan_kswapd_wake", "mm_filemap_add_to_page_cache",
        "sched_process_fork")}
    assert not any("lost" in w for w in result.warnings)
    assert TraceReader(out).scan().damage is None
