"""A kernel log's report in every format: how each fact was read, the machine, the zones,
free memory by block size, swap and where RAM was; a trace's report keeps its shape.

Ground truth: real reports of tests/data/oomlogs (the numbers below are read off their
lines by hand) and the sample traces (whose report must not change).
"""

from __future__ import annotations

import json
from pathlib import Path

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines, report_from_log
from memtrace.analysis.report import OomReport, render_report

CORPUS = Path(__file__).resolve().parents[2] / "data" / "oomlogs"


def corpus(prefix: str) -> OomReport:
    return report_from_log(next(CORPUS.glob(prefix + "*")))


def test_text_shows_the_log_sections_under_80_columns() -> None:
    text = render_report(corpus("002"), "text", title="002.log")  # 3.13 global OOM with Mem-Info
    assert max(len(line) for line in text.splitlines()) < 80
    for title in ("How each fact was read (log lines)", "Machine", "Memory zones (free memory against the "
                  "watermarks)", "Free memory by block size (buddy lists)", "Memory at the OOM"):
        assert title in text, title
    assert "MIN_TEST" in text and "tested at min +" in text


def test_markdown_and_html_show_the_zone_table_and_the_composition_plot() -> None:
    rep = corpus("025")  # riscv64 global OOM: zones, buddy lists, Mem-Info
    md = render_report(rep, "md")
    assert "### Memory zones (free memory against the watermarks)" in md
    assert "| node | zone | free | min | low | high | reserve | max order | min test |" in md
    html = render_report(rep, "html")
    assert "<th>min test</th>" in html and "Where RAM was at the OOM" not in html.split("<svg")[0][-200:]
    assert html.count("<svg") >= 2  # the candidates' badness and where RAM was
    assert "<h3>Memory at the OOM</h3>" in html


def test_a_conflict_is_said_in_every_format() -> None:
    rep = corpus("045")  # 5.2: CONSTRAINT_NONE on the summary of a memcg OOM
    for fmt in ("text", "md", "html"):
        out = render_report(rep, fmt)
        assert "CONSTRAINT_NONE" in out and "Stated otherwise elsewhere in the log" in out, fmt


def test_json_log_keys() -> None:
    d = json.loads(render_report(corpus("002"), "json"))
    log = d["kills"][0]["log"]
    assert {"facts", "oom_kind", "chosen", "chosen_score", "gfp", "page_size", "platform", "zones", "nodes",
            "watermarks", "fragmentation", "swap", "hugepages", "memory", "memcg", "task_table", "victim_rss_kb",
            "abridged"} == set(log)
    assert set(log["facts"]) == {"victim", "chosen", "trigger_pid", "trigger_comm", "constraint", "memcg",
                                 "kernel_release", "gfp_mask", "order"}
    victim = log["facts"]["victim"]
    assert victim["value"] == {"pid": 1532, "comm": "badsysprogram"}
    assert victim["evidence"][0]["lines"] and victim["evidence"][0]["rule"]
    assert log["memcg"] is None and log["swap"]["total_kb"] is not None


def test_what_a_log_cannot_tell_stays_null() -> None:
    """A lone Killed line (041): no header, no zones, no table."""
    k = json.loads(render_report(corpus("041"), "json"))["kills"][0]
    assert k["trigger"] is None and k["gfp_mask"] is None
    log = k["log"]
    assert log["gfp"] is None and log["watermarks"] is None and log["swap"] is None and log["memory"] is None
    assert log["facts"]["trigger_pid"] == {"value": None, "evidence": [], "conflicts": []}
    assert log["page_size"]["guessed"] is True and log["task_table"]["state"] == "absent"


def test_a_trace_report_has_no_log_key(reports: dict[str, OomReport]) -> None:
    d = json.loads(render_report(reports["oom-leak"], "json"))
    assert all("log" not in k for k in d["kills"])
    text = render_report(reports["oom-leak"], "text")
    assert "How each fact was read" not in text and "Memory zones" not in text


# --------------------------------------------------------------------------- the task table


TABLE = ["[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
         "[    553]   115   553   312668   271974  2310144        0             0 clamd",
         "[    562]   115   562    15136      456   110592        0             0 freshclam"]
HEAD = ["clamd invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        "CPU: 0 PID: 553 Comm: clamd Not tainted 5.4.0-42-generic #46-Ubuntu",
        "Tasks state (memory values in pages):"]
KILL = ["oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        "task_memcg=/system.slice/clamav-daemon.service,task=clamd,pid=553,uid=115",
        "Out of memory: Killed process 553 (clamd) total-vm:1250672kB, anon-rss:1087896kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:115 pgtables:2256kB oom_score_adj:0"]


def stamp(lines: list[str], step_us: int = 5) -> list[str]:
    return ["[%5d.%06d] %s" % ((1000_000_000 + i * step_us) // 1_000_000, (1000_000_000 + i * step_us) % 1_000_000,
                               line) for i, line in enumerate(lines)]


def table_of(lines: list[str]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    rep = oom_report_from_parsed(parse_oom_lines(lines).reports)
    [k] = rep.kills
    assert k.log is not None and k.log.task_table is not None
    return k.log.task_table.state, k.log.task_table.why, rep.warnings


def test_a_whole_table_is_full() -> None:
    state, why, warnings = table_of(stamp(HEAD + TABLE + KILL))
    assert (state, why, warnings) == ("full", (), ())


def test_an_absent_table_is_said() -> None:
    state, why, warnings = table_of(stamp(HEAD[:2] + KILL))
    assert state == "absent" and "vm.oom_dump_tasks=0" in why[0]
    assert any("task table absent" in w for w in warnings)


def test_tables_cut_and_why() -> None:
    elided = HEAD + TABLE[:2] + ["..."] + TABLE[2:] + KILL
    state, why, _ = table_of(stamp(elided))
    assert state == "cut" and "rows left out" in why[0]
    state, why, _ = table_of(stamp(TABLE[1:] + KILL))  # rows without their header
    assert state == "cut" and "without the table's header" in why[0]
    lines = stamp(HEAD + TABLE + KILL)
    lines[4], lines[5] = lines[5], lines[4]  # a person reordered two rows
    state, why, _ = table_of(lines)
    assert state == "cut" and "out of order" in " ".join(why)
    # 0.3 s between two rows against 5 us between the others: rows left out
    gap = [*stamp(HEAD + TABLE)[:5], "[ 1000.300000] " + TABLE[2], "[ 1000.300005] " + KILL[0],
           "[ 1000.300010] " + KILL[1]]
    state, why, _ = table_of(gap)
    assert state == "cut" and "pause" in " ".join(why)
    state, why, _ = table_of(stamp(HEAD + TABLE))  # the log ends inside the table
    assert state == "cut" and "ends inside the table" in " ".join(why)


def test_dmesg_T_times_print_as_wall_clock_times() -> None:
    """023 is ``dmesg -T`` output (``[Wed Mar 13 11:16:48 2024] dd invoked
    oom-killer``) followed by a plain dmesg report (``[   71.714...]``): the first
    headline gives the wall-clock time as printed, the second the seconds since boot;
    a syslog line with both (002: ``Jan 28 19:58:45 ... [  455.499...]``) gives both."""
    text = render_report(corpus("023"), "text", title="023.log")
    heads = [line for line in text.splitlines() if line.startswith("OOM")]
    assert heads[0].startswith("OOM 1 at Wed Mar 13 11:16:48 2024: dd (pid 6911) chosen")
    assert heads[1].startswith("OOM kill 2 at 71.714 s: test.sh (pid 7215) killed")
    text = render_report(corpus("002"), "text", title="002.log")
    assert "OOM kill 1 at Jan 28 19:58:45 (455.499 s): badsysprogram (pid 1532) killed" in text
