"""Garbage, truncated input and binary junk never crash the importers."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.analysis.importers import import_trace
from memtrace.errors import ParseError
from memtrace.tracer import TraceReader

SHARED = Path(__file__).resolve().parents[3] / "shared" / "real-traces"
REAL = gzip.decompress((SHARED / "memcg-oom-two-victims.perf-script.txt.gz").read_bytes()).decode().splitlines()
SAMPLE = REAL[:200] + [ln for ln in REAL if "oom:" in ln or "vmscan" in ln][:20]

PIECES = st.sampled_from([
    "python3", " 4847 ", "[000]", " 153.243120: ", "kmem:rss_stat: ", "exceptions:page_fault_user: ",
    "syscalls:sys_enter_mmap: ", "syscalls:sys_exit_mmap: ", "oom:mark_victim: ", "mm_id=", "curr=1 ",
    "type=MM_ANONPAGES ", "size=", "B", "address=0x", "error_code=0x", "pid=", "addr: 0x", ", len: 0x",
    "ffffffffffffffffffff", "-1", "99999999999999999999999", ": ", "sys_mmap(", ") ", " -> ", "-", "\x00",
])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.function_scoped_fixture])


def _import(tmp_path: Path, data: bytes, fmt: str) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    out = tmp_path / "out.mtrace"
    try:
        result = import_trace(src, out, format=fmt)
    except ParseError:
        assert fmt == "auto"  # not recognisable as either format: a one-line error
        return
    assert result.lines >= 0
    st_ = TraceReader(out).scan()
    assert st_.damage is None and st_.total_events == sum(result.events.values())


@SETTINGS
@given(st.lists(st.lists(PIECES, max_size=10).map("".join), max_size=30), st.sampled_from(["perf-script", "ftrace"]))
def test_event_shaped_garbage(tmp_path: Path, lines: list[str], fmt: str) -> None:
    _import(tmp_path, "\n".join(lines).encode(), fmt)


@SETTINGS
@given(st.binary(max_size=3000), st.sampled_from(["perf-script", "ftrace", "auto"]))
def test_binary_junk(tmp_path: Path, data: bytes, fmt: str) -> None:
    _import(tmp_path, data, fmt)


@SETTINGS
@given(st.integers(0, len(SAMPLE)), st.lists(st.integers(0, len(SAMPLE) - 1), max_size=10), st.text(max_size=20))
def test_truncated_and_damaged_real_lines(tmp_path: Path, cut: int, damaged: list[int], junk: str) -> None:
    lines = SAMPLE[:cut]
    for i in damaged:
        if i < len(lines):
            lines[i] = lines[i][: len(lines[i]) * 2 // 3] + junk
    _import(tmp_path, "\n".join(lines).encode(), "perf-script")


@SETTINGS
@given(st.integers(10, 4000))
def test_truncated_gzip(tmp_path: Path, keep: int) -> None:
    data = gzip.compress("\n".join(SAMPLE).encode())[:keep]
    src = tmp_path / "cut.txt.gz"
    src.write_bytes(data)
    result = import_trace(src, tmp_path / "o.mtrace", format="perf-script")
    if keep < len(gzip.compress("\n".join(SAMPLE).encode())):
        assert any("ends early" in w for w in result.warnings)
