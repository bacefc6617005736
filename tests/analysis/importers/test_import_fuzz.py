"""Garbage, truncated input and binary junk never crash the importers."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.analysis.importers import import_trace
from memtrace.errors import ParseError
from memtrace.tracer import TraceReader

SHARED = Path(__file__).resolve().parents[4] / "shared" / "real-traces"
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


# --------------------------------------------------------------------------- extreme numbers

# Real lines (the shared 6.18 perf script, this machine's perf script and ftrace
# buffer) and one line of every other mapped family in the kernel's print formats
# (test_import_ftrace.EVENTS; the unknown sched_switch left out), each numeric token
# replaced by numbers no field holds, or just holds. Every line of the pool is a
# known event: a window of them imports with no unknown line.

OWN = Path(__file__).resolve().parents[2] / "data" / "real"
_I32 = (-(1 << 31), (1 << 31) - 1)
_U32 = (0, (1 << 32) - 1)
_I64 = (-(1 << 63), (1 << 63) - 1)
_U64 = (0, (1 << 64) - 1)
#: Numbers at and past the edges of the kernel's C types; hex past 64 bits; digit
#: strings past Python's int() limit (4300 digits).
EXTREMES: list[int | str] = [0, -1, (1 << 31) - 1, 1 << 31, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
                             1 << 64, 10 ** 20, -(1 << 31) - 1, -(1 << 63) - 1, (1 << 68) + 5, "9" * 30,
                             "9" * 5000]
#: A number in a line: hex with 0x, or decimal (a size's B or kB may follow); not
#: the digits of a name ("python3", "kswapd0", "u4") or of a bare hex word.
NUMBER = re.compile(r"(?<!\w)(?:0x[0-9a-fA-F]+|\d+)(?=kB\b|B\b|\W|$)")
#: The fields the importers write into columns, by event, with the range of the C
#: type the kernel prints each as (include/trace/events/*.h, the syscall args'
#: unsigned long). A line with a number outside it is never imported; numbers
#: the importers only count or clamp (oom_score_adj, page orders) are not listed.
WRITTEN: dict[str, dict[str, tuple[int, int]]] = {
    "rss_stat": {"size": _I64},
    "page_fault_user": {"address": _U64},
    "sys_enter_mmap": dict.fromkeys(("addr", "len", "prot", "flags", "fd", "off"), _U64),
    "sys_enter_munmap": dict.fromkeys(("addr", "len"), _U64),
    "sys_enter_brk": {"brk": _U64},
    "mark_victim": {"pid": _I32, "uid": _U32, **dict.fromkeys(("total-vm", "anon-rss", "file-rss", "shmem-rss",
                                                                "pgtables"), _U64)},
    "oom_score_adj_update": {"pid": _I32},
    "finish_task_reaping": {"pid": _I32},
    "sched_process_fork": {"pid": _I32, "child_pid": _I32},
    "sched_process_exit": {"pid": _I32},
    "mm_vmscan_kswapd_wake": {"nid": _I32, "zid": _I32, "order": _I32},
    "mm_vmscan_kswapd_sleep": {"nid": _I32},
    "mm_vmscan_direct_reclaim_begin": {"order": _I32},
    "mm_vmscan_memcg_reclaim_begin": {"order": _I32},
    "mm_vmscan_direct_reclaim_end": {"nr_reclaimed": _U64},
    "mm_vmscan_memcg_reclaim_end": {"nr_reclaimed": _U64},
    "mm_vmscan_lru_shrink_inactive": {"priority": _I32, **dict.fromkeys(("nr_scanned", "nr_reclaimed",
                                                                         "nr_dirty"), _U64)},
    "mm_filemap_add_to_page_cache": {"ino": _U64, "pfn": _U64, "ofs": _U64},
    "mm_filemap_delete_from_page_cache": {"ino": _U64, "pfn": _U64, "ofs": _U64},
}
_PERF_HEAD = re.compile(r"^(.*?)\s(-?\d+)(?:/(-?\d+))?\s+\[\d*\]\s+(\d+)\.(\d+):\s+[\w-]+:([\w-]+): ?(.*)$")
_FTRACE_HEAD = re.compile(r"^\s*(.*)-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[\d+\]\s+(?:\S{4,5}\s+)?(\d+)\.(\d+): "
                          r"(sys_\w+\(|sys_\w+ -> |[\w-]+: ?)(.*)$")
_FIELD = re.compile(r"(?:^|[\s(,])([\w-]+)(?:=|: ?| )(-?(?:0x)?[0-9a-f]+?)(?:kB|B)?(?=[\s,)]|$)")


def _int(text: str, base: int) -> int | None:
    """``text`` as a number; None when it has more digits than any field holds."""
    if len(text) > 60:
        return None
    return int(text, base)


def _outside(text: str, bounds: tuple[int, int], base: int = 10) -> bool:
    value = _int(text, 16 if base == 16 or text.lstrip("-")[:2] == "0x" else 10)
    return value is None or not bounds[0] <= value <= bounds[1]


def out_of_range(line: str, fmt: str) -> bool:
    """Whether ``line`` has a number the kernel cannot print there: a pid, tid or
    tgid beyond pid_t, a time past 2**63 ns, a written field outside its C type.
    An oracle written from the print formats, independent of the importers."""
    m = (_PERF_HEAD if fmt == "perf-script" else _FTRACE_HEAD).match(line)
    if m is None:
        return False  # no event line: the importer's business, not this oracle's
    _, pid, other, sec, frac, event, payload = m.groups()
    if _outside(pid, _I32) or (other and other.strip("-") and _outside(other, _I32)):
        return True
    ns = _int(sec, 10)
    if ns is None or ns * 10 ** 9 + int(frac[:9].ljust(9, "0")) > _I64[1]:
        return True
    if fmt == "ftrace":
        call = event.rstrip("(->: ")
        event = call if not call.startswith("sys_") else (
            "sys_enter_" if event.endswith("(") else "sys_exit_") + call[4:]
    syscall = event.startswith("sys_enter_")
    written = WRITTEN.get(event, {})
    for f in _FIELD.finditer(payload):
        key, value = f.groups()
        if key in written and _outside(value, written[key], 16 if syscall or key == "ino" else 10):
            return True
    return False


def _event_name(line: str, fmt: str) -> str:
    m = (_PERF_HEAD if fmt == "perf-script" else _FTRACE_HEAD).match(line)
    assert m is not None, line
    return m.group(6)


def _pool() -> dict[str, list[list[str]]]:
    """The lines mutated, per format: one list per source, in its order."""
    from .test_import_ftrace import EVENTS, ftrace_line, perf_line

    def read(path: Path) -> list[str]:
        return [ln for ln in gzip.decompress(path.read_bytes()).decode().splitlines()
                if ln.strip() and not ln.startswith("#")]

    events = [e for e in EVENTS if e[2] != "sched:sched_switch"]
    return {
        "perf-script": [REAL, read(OWN / "memcg-v1-two-kills.perf-script.txt.gz"),
                        [perf_line(c, p, 1_000_000 + 10 * i, e, t) for i, (c, p, e, t) in enumerate(events)]],
        "ftrace": [read(OWN / "memcg-v1-ftrace.trace.txt.gz"),
                   [ftrace_line(c, p, 1_000_000 + 10 * i, e, t) for i, (c, p, e, t) in enumerate(events)]],
    }


def _firsts(lines: list[str], fmt: str) -> list[int]:
    seen: dict[str, int] = {}
    out = []
    for i, ln in enumerate(lines):
        name = _event_name(ln, fmt)
        if seen.get(name, 0) < 3:
            seen[name] = seen.get(name, 0) + 1
            out.append(i)
    return out


POOL = _pool()
#: (source, line) of the first three lines of each event in each source: every
#: shape of line gets mutated, not only the common rss_stat and faults.
ANCHORS = {fmt: [(s, i) for s, lines in enumerate(sources) for i in _firsts(lines, fmt)]
           for fmt, sources in POOL.items()}


@st.composite
def mutated_window(draw: st.DrawFn, fmt: str) -> tuple[list[str], set[int]]:
    """A window of consecutive pool lines around an anchor (a few lines, or a few
    thousand so that the block reader's bulk runs are in it) with 1 to 4 numbers
    replaced by extremes, the anchor's first; returns the lines and which changed."""
    source, anchor = draw(st.sampled_from(ANCHORS[fmt]))
    lines = POOL[fmt][source]
    before, after = draw(st.sampled_from([(6, 4), (6, 4), (1500, 1500)]))
    lo = max(0, anchor - before)
    window = lines[lo:anchor + after]
    changed: set[int] = set()
    for k in range(draw(st.integers(1, 4))):
        at = anchor - lo if k == 0 else draw(st.integers(0, len(window) - 1))
        spans = [m.span() for m in NUMBER.finditer(window[at])]
        if not spans:
            continue
        start, end = spans[draw(st.integers(0, len(spans) - 1))]
        value = draw(st.sampled_from(EXTREMES))
        token = window[at][start:end]
        if isinstance(value, str):
            text = value
        elif token.startswith("0x"):
            text = f"{'-' if value < 0 else ''}0x{abs(value):x}"
        else:
            text = str(value)
        window[at] = window[at][:start] + text + window[at][end:]
        changed.add(at)
    return window, changed


def _same_trace(a: Path, b: Path) -> None:
    ra, rb = TraceReader(a), TraceReader(b)
    assert ra.meta == rb.meta
    assert list(ra.events()) == list(rb.events())


def _import_extremes(tmp_path: Path, lines: list[str], changed: set[int], fmt: str) -> Path:
    """Import ``lines``; the trace reads back; the lines with numbers out of range
    are among the unknown ones, which are among the changed ones."""
    src = tmp_path / "extreme.txt"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "extreme.mtrace"
    result = import_trace(src, out, format=fmt)
    assert result.lines == len(lines)
    bad = sum(out_of_range(lines[i], fmt) for i in changed)
    assert bad <= result.unknown_lines <= len(changed), (result.unknown_events, [lines[i] for i in changed])
    reader = TraceReader(out)
    stats = reader.scan()
    assert stats.damage is None and stats.total_events == sum(result.events.values())
    assert sum(1 for _ in TraceReader(out).events()) == stats.total_events
    return out


@pytest.mark.slow
@settings(SETTINGS, max_examples=150)
@given(mutated_window("perf-script"))
def test_extreme_numbers_in_perf_script(tmp_path: Path, case: tuple[list[str], set[int]]) -> None:
    """Both perf script readers (numpy blocks, line at a time) give one trace."""
    from memtrace.analysis.importers import perf_script

    lines, changed = case
    fast = _import_extremes(tmp_path, lines, changed, "perf-script")
    original = perf_script.feed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(perf_script, "feed", lambda text, b, vectorised=True: original(text, b, vectorised=False))
        slow = tmp_path / "slow.mtrace"
        import_trace(tmp_path / "extreme.txt", slow, format="perf-script")
    _same_trace(fast, slow)


@settings(SETTINGS, max_examples=150)
@given(mutated_window("ftrace"))
def test_extreme_numbers_in_ftrace(tmp_path: Path, case: tuple[list[str], set[int]]) -> None:
    lines, changed = case
    _import_extremes(tmp_path, lines, changed, "ftrace")


@pytest.mark.parametrize("fmt", ["perf-script", "ftrace"])
def test_pool_lines_are_known_and_in_range(tmp_path: Path, fmt: str) -> None:
    """What the bounds above rest on: unchanged, every pool line is a known event
    (no unknown line) and none is out of range by the oracle."""
    for sources in POOL[fmt]:
        src = tmp_path / "pool.txt"
        src.write_text("\n".join(sources) + "\n")
        assert import_trace(src, tmp_path / "pool.mtrace", format=fmt).unknown_lines == 0
        assert not any(out_of_range(ln, fmt) for ln in sources)


# Values the kernel can print, at the edges of their C types, in every mapped family:
# they interact through the replay workload (a brk from 2**64 - 1 down to 1, an mmap
# of 2**64 - 1 bytes that succeeds by the trace) and must all be imported.

_ULONG = st.sampled_from([0, 1, 0x22, 4095, 4096, 0x7F0000000000, (1 << 56) - 4096, 1 << 56, (1 << 63) - 1, 1 << 63,
                          (1 << 64) - 4096, (1 << 64) - 4095, (1 << 64) - 1]) | st.integers(0, _U64[1])
_LONG = st.sampled_from([_I64[0], -1, 0, 4096, _I64[1]]) | st.integers(*_I64)


@st.composite
def kernel_events(draw: st.DrawFn) -> list[tuple[str, int, int, str, str]]:
    """(comm, pid, time in us, event, text) of two tasks, every number in range."""
    def u() -> int:
        return draw(_ULONG)

    texts = {
        "syscalls:sys_enter_mmap": lambda: f"addr: 0x{u():x}, len: 0x{u():x}, prot: 0x{u():x}, flags: 0x{u():x}, "
                                           f"fd: 0x{u():x}, off: 0x{u():x}",
        "syscalls:sys_exit_mmap": lambda: f"0x{u():x}",
        "syscalls:sys_enter_munmap": lambda: f"addr: 0x{u():x}, len: 0x{u():x}",
        "syscalls:sys_exit_munmap": lambda: f"0x{draw(st.sampled_from([0, _U64[1] - 21])):x}",
        "syscalls:sys_enter_brk": lambda: f"brk: 0x{u():x}",
        "syscalls:sys_exit_brk": lambda: f"0x{u():x}",
        "exceptions:page_fault_user": lambda: f"address=0x{u():x} ip=0x1 "
                                              f"error_code=0x{draw(st.sampled_from([4, 6, 21])):x}",
        "kmem:rss_stat": lambda: f"mm_id={draw(st.sampled_from([1, 2]))} curr={draw(st.sampled_from([0, 1]))} "
                                 f"type={draw(st.sampled_from(['MM_ANONPAGES', 'MM_FILEPAGES', 'MM_SHMEMPAGES']))} "
                                 f"size={draw(_LONG)}B",
        "filemap:mm_filemap_add_to_page_cache": lambda: f"dev 8:1 ino {u():x} pfn=0x{draw(st.integers(0, 1 << 52)):x} "
                                                        f"ofs={u()} order={draw(st.integers(0, 12))}",
        "oom:mark_victim": lambda: f"pid={draw(st.sampled_from([100, 101, _I32[1]]))} comm=x total-vm={u()}kB "
                                   f"anon-rss={u()}kB file-rss:{u()}kB shmem-rss:{u()}kB "
                                   f"uid={draw(st.integers(*_U32))} pgtables={u()}kB oom_score_adj={draw(_LONG)}",
    }
    out = []
    for _ in range(draw(st.integers(1, 20))):
        event = draw(st.sampled_from(sorted(texts)))
        ts_us = draw(st.sampled_from([0, 1, 10_000, _I64[1] // 1000]) | st.integers(0, _I64[1] // 1000))
        out.append((draw(st.sampled_from(["app", "app", "other"])), draw(st.sampled_from([100, 101])), ts_us,
                    event, texts[event]()))
    return out


@pytest.mark.slow
@settings(SETTINGS, max_examples=150)
@given(kernel_events(), st.sampled_from(["perf-script", "ftrace"]))
def test_numbers_the_kernel_prints_are_imported(tmp_path: Path, events: list[tuple[str, int, int, str, str]],
                                                fmt: str) -> None:
    from memtrace.analysis.importers import perf_script

    from .test_import_ftrace import ftrace_line, perf_line

    make = perf_line if fmt == "perf-script" else ftrace_line
    src = tmp_path / "edges.txt"
    src.write_text("\n".join(make(*e) for e in events) + "\n")
    out = tmp_path / "edges.mtrace"
    result = import_trace(src, out, format=fmt)
    assert result.unknown_lines == 0, result.unknown_events
    stats = TraceReader(out).scan()
    assert stats.damage is None and stats.total_events == sum(result.events.values())
    if fmt == "perf-script":
        original = perf_script.feed
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(perf_script, "feed", lambda text, b, vectorised=True: original(text, b, vectorised=False))
            import_trace(src, tmp_path / "slow.mtrace", format=fmt)
        _same_trace(out, tmp_path / "slow.mtrace")
