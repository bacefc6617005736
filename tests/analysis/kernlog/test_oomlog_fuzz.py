"""Garbage, truncated reports and binary junk never crash the log parser."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines, report_from_log
from memtrace.errors import ParseError

REAL = (Path(__file__).resolve().parents[4] / "shared" / "real-traces" / "memcg-oom-two-victims.dmesg.txt"
        ).read_text().splitlines()

FRAGMENTS = st.sampled_from([
    "invoked oom-killer: gfp_mask=", "order=", "oom_score_adj=", "Killed process", "Kill process ",
    "score ", "or sacrifice child", "total-vm:", "kB, anon-rss:", "memory: usage ", "kB, limit ",
    "Memory cgroup stats for ", "Tasks state (memory values in pages):", "[  pid  ]   uid  tgid",
    "oom-kill:constraint=", ",pid=", "[", "]", "(", ")", ":", "-", "0x", "999999999999999999999999",
    "-1", " ", "Kernel panic - not syncing: Out of memory", "Mem-Info:", "pages RAM", "\x00", "\ufffd",
])


def _check(lines: list[str]) -> None:
    log = parse_oom_lines(lines)
    rep = oom_report_from_parsed(log.reports)
    rep.as_dict()
    assert log.lines == len(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=200), max_size=40))
def test_random_text(lines: list[str]) -> None:
    _check(lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(FRAGMENTS, max_size=12).map("".join), max_size=40))
def test_report_shaped_garbage(lines: list[str]) -> None:
    _check(lines)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(REAL)), st.integers(0, len(REAL)), st.lists(st.integers(0, len(REAL) - 1), max_size=8),
       st.text(max_size=30))
def test_truncated_and_damaged_real_reports(start: int, end: int, damaged: list[int], junk: str) -> None:
    lines = list(REAL[min(start, end):max(start, end)])
    for i in damaged:
        if i < len(lines):
            lines[i] = lines[i][: len(lines[i]) // 2] + junk
    _check(lines)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4000))
def test_binary_junk_file(tmp_path_factory: object, data: bytes) -> None:
    path = Path(str(tmp_path_factory.mktemp("junk"))) / "junk.log"
    path.write_bytes(data)
    # "neither a memtrace trace nor a kernel log" is a one-line error, not a crash
    with contextlib.suppress(ParseError):
        report_from_log(path).as_dict()
