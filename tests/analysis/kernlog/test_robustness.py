"""The whole reader (lines, parser, report, renderers) never crashes and never hangs, and
reads the same facts from a real report however it is wrapped or prefixed.

Ground truth: the corpus (tests/data/oomlogs) read as it is; hypothesis varies what a
paste does to it (a mail client's wrap at 60..80 columns, prefixes of 20 kinds shuffled
between the lines) and throws garbage, binary and huge lines at it.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines
from memtrace.analysis.report import render_report

CORPUS = Path(__file__).resolve().parents[2] / "data" / "oomlogs"
INDEX = json.loads((CORPUS / "index.json").read_text())
# Whole files the corpus holds unwrapped and unquoted: they wrap freshly without doubt.
UNWRAPPED = [CORPUS / e["file"] for e in INDEX
             if not e["wrapped"] and not re.search(r"wrapped|truncated|cut|split|quoted|json|#012|abbrev|hash|excerpt",
                                                   e["file"])]


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Fail a run-away test instead of hanging the suite (not a timing assertion: the
    limit is two orders of magnitude above the slowest example)."""
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError("the reader ran away")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(300)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def facts(lines: list[str]) -> list[tuple[object, ...]]:
    """Each report's victim, chosen, trigger and constraint, and every format drawn."""
    rep = oom_report_from_parsed(parse_oom_lines(lines).reports)
    for fmt in ("text", "md", "json"):
        render_report(rep, fmt)
    out = []
    for k in rep.kills:
        chosen = k.log.chosen if k.log is not None else None
        out.append((k.victim.pid, k.victim.comm, chosen, k.trigger, k.constraint))
    return out


def mail_wrap(line: str, width: int) -> list[str]:
    """Wrap as a mail client does: at the last space that keeps the piece within ``width``
    (the space dropped); a word wider than ``width`` stays whole; the pieces of a quoted
    line are quoted again."""
    m = re.match(r"(?:> ?)+", line)
    if m:
        return [m.group() + piece for piece in mail_wrap(line[m.end():], width - m.end())]
    out = []
    while len(line) > width:
        cut = line.rfind(" ", 1, width + 1)
        while cut > 0 and line[cut - 1] == " ":
            cut -= 1
        if cut <= 0:
            cut = line.find(" ", width)
            if cut < 0:
                break
        out.append(line[:cut])
        line = line[cut + 1:]
    out.append(line)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(UNWRAPPED), width=st.integers(60, 80))
def test_a_report_rewrapped_by_a_mail_client_reads_the_same(path: Path, width: int) -> None:
    raw = path.read_text(encoding="utf-8", errors="replace").split("\n")
    wrapped = [piece for line in raw for piece in mail_wrap(line, width)]
    assert facts(wrapped) == facts(raw), (path.name, width)


def kts(us: int) -> str:
    return f"[{us // 10**6:5d}.{us % 10**6:06d}]"


PREFIXES = [
    lambda t, us: f"{kts(us)} {t}",
    lambda t, us: f"Nov 26 22:48:00 web-01 kernel: {t}",
    lambda t, us: f"Nov 26 22:48:00 web-01 kernel: {kts(us)} {t}",
    lambda t, us: f"Nov  6 22:48:00 kernel: {kts(us)} {t}",
    lambda t, us: f"Apr 01 14:13:32 mysrv: {t}",
    lambda t, us: f"Apr 01 14:13:32 mysrv <kern.warning> kernel: {t}",
    lambda t, us: f"kernel: {t}",
    lambda t, us: f"<4>{kts(us)} {t}",
    lambda t, us: f"kern  :warn  : {kts(us)} {t}",
    lambda t, us: f"6,{us % 977},{us},-;{t.replace(chr(92), chr(92) + 'x5c')}",
    lambda t, us: f"4,{us % 977},{us},-,caller=T12845;{t.replace(chr(92), chr(92) + 'x5c')}",
    lambda t, us: f"[Di Aug 12 03:54:03 2025] {t}",
    lambda t, us: f"{kts(us)}[ T123] {t}",
    lambda t, us: f"2024-11-26T22:48:00+0100 web-01 kernel: {t}",
    lambda t, us: f"Nov 03 08:06:47.252691 localhost kernel: {t}",
    lambda t, us: f"{kts(us)} web-01 kernel: {t}",
    lambda t, us: f"> {kts(us)} {t}",
    lambda t, us: f"\t{kts(us)} {t}",
    lambda t, us: f"{kts(us)} {t}\r",
    lambda t, us: f"{kts(us)} {t.replace(' ', chr(0xA0))}",
]
REPORT = [re.sub(r"^\[ *\d+\.\d+\] ", "", line)
          for line in (CORPUS / "032-cgroups-5.15-memcg-then-panic_on_oom-attachment.log").read_text().splitlines()
          if re.match(r"^\[ *\d+\.\d+\] \S", line) and "#0" not in line]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choice=st.lists(st.integers(0, len(PREFIXES) - 1), min_size=len(REPORT), max_size=len(REPORT)))
def test_prefixes_shuffled_between_the_lines_read_the_same(choice: list[int]) -> None:
    plain = [kts(1_000_000 + i) + " " + t for i, t in enumerate(REPORT)]
    shuffled = [PREFIXES[c](t, 1_000_000 + i) for i, (c, t) in enumerate(zip(choice, REPORT))]
    got, want = facts(shuffled), facts(plain)
    assert [(*g[:3], g[4]) for g in got] == [(*w[:3], w[4]) for w in want]


FRAGMENTS = st.sampled_from([
    "[  12.345678] ", "Nov 26 22:48:00 h kernel: ", "kernel:", "<4>", "6,1,2,-;", "> ", "# ", "\t", "#012",
    " invoked oom-killer: gfp_mask=", "0xcc0(GFP_KERNEL)", ", order=", "-1", ", oom_score_adj=", "Killed process ",
    "Kill process ", " score ", " or sacrifice child", " total-vm:", "kB, anon-rss:", "oom-kill:constraint=",
    "CONSTRAINT_MEMCG", ",oom_memcg=/a", ",task=", ",pid=", "CPU: 1 PID: 2 Comm: x Not tainted 6.1 #1",
    "Mem-Info:", "Node 0 Normal free:1kB min:2kB low:3kB high:4kB", "lowmem_reserve[]: 0 0", "Node 0 DMA: ",
    "1*4kB (UME) ", "= 4kB", "Node 0 hugepages_total=1 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB",
    "memory: usage 1kB, limit 1kB, failcnt 1", "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name", "[   42]", " 0",
    "Kernel panic - not syncing: Out of memory", "BUG: ", " dump_header+0x1/0x2", " out_of_memory+0x1/0x2",
    "...", "(", ")", ":", "=", "999999999999999999999999", "\x00", "\ufffd", "\xa0",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(FRAGMENTS, max_size=10).map("".join), max_size=40))
def test_report_shaped_garbage_never_breaks_the_reader(lines: list[str]) -> None:
    facts(lines)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300).map(lambda b: b.decode("latin-1")), max_size=30))
def test_binary_never_breaks_the_reader(lines: list[str]) -> None:
    facts(lines)


@pytest.mark.parametrize("line", [
    "x" * 1_000_000,
    "[  12.345678] " + "Killed process 1 (" * 50_000,
    "[  12.345678] oom-kill:constraint=" + ",task=" * 150_000,
    "[  12.345678] a invoked oom-killer: gfp_mask=0xcc0, order=0, oom_score_adj=0" + " x" * 400_000,
    "[  12.345678] [  pid  ]   uid  tgid total_vm      rss" + " 1" * 400_000 + " name",
    "[  12.345678] Node 0 Normal free:1kB" + " min:2kB" * 100_000,
    "[  12.345678] Node 0 Normal: " + "1*4kB (UME) " * 80_000 + "= 4kB",
])
def test_huge_lines(line: str) -> None:
    """1 MB lines, among the lines of a real report, are read (a line this long is never
    checked against a shape nor joined)."""
    report = (CORPUS / "013-ltp-5.8-memcg-indented-elided.log").read_text().splitlines()
    facts([*report[:20], line, *report[20:]])
