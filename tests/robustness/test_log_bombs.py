"""Kernel logs that, read without bounds, cost minutes and gigabytes (issue 14, findings
2 and 6): a gzip of a log of one real OOM report repeated, thousands of kills, a task
table without end, lines made to look wrapped.

The bombs are built here (:mod:`memtrace.analysis.kernlog.craft`, from the real memcg
report of the corpus) and ``memtrace report`` (or ``import --dmesg``) runs on each in a
fresh interpreter under an address-space limit: it must end with exit 0 or 1, no
traceback, no internal error, under 1 GiB of peak resident memory, and say in a
warning which bound stopped it (:mod:`memtrace.analysis.kernlog.limits`). Before the
bounds, a 100 MB log of this report took 1.4 GiB, and 10 MB of it as HTML 279 s; the
times are the ``guardrails`` benchmark's, never asserted here. The small tests at the
end lower the bounds in this process to check what the reader counts, line for line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.kernlog import craft, parse
from memtrace.analysis.kernlog.limits import (
    LOG_MAX_REJOIN_STEPS,
    LOG_MAX_REPORT_LINES,
    LOG_MAX_REPORTS,
    LOG_MAX_TEXT_BYTES,
)
from memtrace.analysis.report.sections import MAX_DETAILED_KILLS

from .helpers import CliRun, GiB, MiB, assert_clean, peak

CORPUS = Path(__file__).resolve().parents[1] / "data" / "oomlogs"
#: One real memcg v1 OOM report (5.2), as pasted to the cgroups list: 54 lines.
REPORT = (CORPUS / "008-cgroups-5.2-memcg-v1-oom_memcg.log").read_bytes() + b"\n"
PERF = Path(__file__).resolve().parents[1] / "data" / "real" / "experiments" / "leak" / "leak-L128.perf-script.txt.gz"

#: ``memtrace ARGV`` in the child, stdout to /dev/null: its exit code and stderr.
RUN_CLI = """
import contextlib, io, os
from memtrace.cli import main
err = io.StringIO()
code = 0
with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(err):
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
out["code"] = code
out["stderr"] = err.getvalue()
"""


def _cli(*argv: str) -> dict[str, Any]:
    """``memtrace ARGV`` in a fresh interpreter: ended as memtrace promises, under 1 GiB."""
    got = peak(RUN_CLI, *argv, timeout_s=600)
    assert_clean(CliRun(got["code"], "", got["stderr"]))
    assert got["peak_bytes"] < GiB, got["peak_bytes"] / MiB
    return got


def _json_report(log: Path, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "report.json"
    got = _cli("report", str(log), "--json", "-o", str(out))
    assert got["code"] == 0, got["stderr"]
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def _line_of(marker: bytes) -> int:
    """The first raw line of REPORT that holds ``marker`` (1-based)."""
    return next(i for i, ln in enumerate(REPORT.split(b"\n"), 1) if marker in ln)


def test_a_gzip_of_reports_is_read_to_its_bounds(tmp_path: Path) -> None:
    """160 MiB of the report repeated, in a 1 MB gzip: the first 2,000 reports are read,
    the rest of the first 128 MiB counted (each copy one header and one kill line), the
    rest not read; each bound named in a warning."""
    bomb = tmp_path / "reports.log.gz"
    assert craft.gzip_bomb(bomb, REPORT, 160 * MiB) < 10_000_000
    report = _json_report(bomb, tmp_path)
    assert len(report["kills"]) == LOG_MAX_REPORTS
    per_copy = REPORT.count(b"\n")
    stop = LOG_MAX_REPORTS * per_copy + _line_of(b"invoked oom-killer")  # report 2,001's header
    counted = [w for w in report["warnings"] if "memtrace's bound" in w and "read in full" in w]
    assert len(counted) == 1
    head = (f"{bomb}: read in full up to line {stop - 1:,} ({LOG_MAX_REPORTS:,} OOM reports, memtrace's bound); "
            "the ")
    assert counted[0].startswith(head), counted[0]
    words = counted[0].removeprefix(head).split()
    rest_lines, headers, kills = (int(words[i].replace(",", "")) for i in (0, 5, 10))
    read = stop - 1 + rest_lines  # raw lines up to the cut, which may fall inside a copy
    assert headers == (read - _line_of(b"invoked oom-killer")) // per_copy + 1 - LOG_MAX_REPORTS
    assert kills == (read - _line_of(b"Killed process")) // per_copy + 1 - LOG_MAX_REPORTS
    # the bound falls between two blocks of about a MiB (a copy's lines are not all as long)
    assert LOG_MAX_TEXT_BYTES - MiB <= read * len(REPORT) / per_copy <= LOG_MAX_TEXT_BYTES + len(REPORT)
    assert any(w == f"{bomb}: only the first 128 MiB of its text (inflated) are read (128 MiB, memtrace's bound); "
               "the rest is not" for w in report["warnings"])


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_10000_kills_in_every_format(tmp_path: Path, fmt: str) -> None:
    """10,000 lone kill lines (1.7 MB): 2,000 read, the first 100 detailed, the others a
    row each; the 8,000 after them counted."""
    log = tmp_path / "kills.log"
    craft.lone_kills(log, 10_000)
    out = tmp_path / f"report.{fmt}"
    got = _cli("report", str(log), "-f", fmt, "-o", str(out))
    assert got["code"] == 0, got["stderr"]
    text = out.read_text()
    assert text.count("OOM kill 100 at") == 1 and "OOM kill 101 at" not in text
    assert f"OOM kills {MAX_DETAILED_KILLS + 1} to {LOG_MAX_REPORTS:,}" in text
    assert "(pid 11999)" in text  # kill 2,000: a row
    assert "(pid 12000)" not in text  # kill 2,001: counted
    assert "with 0 more" in " ".join(text.split()) and "and 8,000 more" in " ".join(text.split())


def test_a_task_table_without_end_stops_at_the_line_bound(tmp_path: Path) -> None:
    """A 3 MB gzip of the report's head and one task row repeated: 131,072 lines read
    into reports, then counted."""
    head = REPORT[:REPORT.index(b"\n", REPORT.index(b"[  pid  ]")) + 1]
    row = b"[337533.314336] [   1000]     0  1000     4100      110    53248        0             0 proc7\n"
    bomb = tmp_path / "table.log.gz"
    assert craft.gzip_bomb(bomb, head + row * 100_000, 200 * MiB) < 10_000_000
    report = _json_report(bomb, tmp_path)
    assert any(f"({LOG_MAX_REPORT_LINES:,} lines of OOM reports, memtrace's bound)" in w for w in report["warnings"])
    assert sum(len(k["candidates"]) for k in report["kills"]) < LOG_MAX_REPORT_LINES


def test_lines_made_to_look_wrapped_spend_the_rejoin_bound(tmp_path: Path) -> None:
    """20,000 lines of 79 ``[`` (1.6 MB): each could begin a wrapped line; the search
    stops after 262,144 tries, with a warning. Not a kernel log: one-line refusal."""
    log = tmp_path / "wrapped.log"
    craft.repeated(log, craft.WRAPPED_LINE, 20_000 * len(craft.WRAPPED_LINE))
    got = _cli("report", str(log))
    assert got["code"] == 1 and "neither a memtrace trace nor a kernel log" in got["stderr"]
    got = peak("""
from memtrace.analysis.kernlog import parse_oom_log
out["warnings"] = parse_oom_log(sys.argv[1]).warnings
""", str(log))
    assert got["warnings"] == [f"{log}: wrapped lines are no longer rejoined after {LOG_MAX_REJOIN_STEPS:,} tries "
                               "(memtrace's bound): lines after that are read as they stand"]


def test_import_with_a_dmesg_bomb(tmp_path: Path) -> None:
    """``import --dmesg`` reads the companion log through the same bounds."""
    bomb = tmp_path / "dmesg.gz"
    craft.gzip_bomb(bomb, REPORT, 40 * MiB)
    got = _cli("import", str(PERF), "--dmesg", str(bomb), "-o", str(tmp_path / "t.mtrace"))
    assert got["code"] == 0, got["stderr"]
    assert f"({LOG_MAX_REPORTS:,} OOM reports, memtrace's bound)" in got["stderr"]


# --------------------------------------------------------------------------- the counts, bounds lowered


def test_the_reports_after_the_bound_are_counted_line_for_line(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Bound of 3 reports, 7 copies of the report: 3 read, from the 4th header on the
    lines, headers and kill lines counted; every raw line accounted for."""
    monkeypatch.setattr(parse, "LOG_MAX_REPORTS", 3)
    log = tmp_path / "seven.log"
    craft.repeated(log, REPORT, 7 * len(REPORT))
    got = parse.parse_oom_log(log)
    per_copy = REPORT.count(b"\n")
    stop = 3 * per_copy + _line_of(b"invoked oom-killer")
    assert len(got.reports) == 3 and all(r.killed_pid == 23793 for r in got.reports)
    assert got.lines == 7 * per_copy
    assert got.warnings == [f"{log}: read in full up to line {stop - 1:,} (3 OOM reports, memtrace's bound); the "
                            f"{7 * per_copy - stop + 1:,} lines after it, with 4 more 'invoked oom-killer' and 4 more "
                            "'Killed process' lines, are counted, not read"]


def test_a_report_cut_by_the_line_bound_is_counted_from_the_next_line(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Bound of 30 report lines, in the middle of the first report: the rest is counted
    from the next raw line, the open report kept as truncated."""
    monkeypatch.setattr(parse, "LOG_MAX_REPORT_LINES", 30)
    log = tmp_path / "two.log"
    craft.repeated(log, REPORT, 2 * len(REPORT))
    got = parse.parse_oom_log(log)
    assert len(got.reports) == 1 and not got.reports[0].complete
    assert got.lines == 2 * REPORT.count(b"\n")
    counted = [w for w in got.warnings if "memtrace's bound" in w]
    assert len(counted) == 1 and "(30 lines of OOM reports, memtrace's bound)" in counted[0]
    assert "with 1 more 'invoked oom-killer' and 2 more 'Killed process' lines" in counted[0]


def test_text_beyond_the_bound_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bound of 2 MiB of text on a 3 MiB log (blocks of 1 MiB): the reports of the first
    2 MiB are read, the rest is not, and a warning says how much was."""
    monkeypatch.setattr(parse, "LOG_MAX_TEXT_BYTES", 2 * MiB)
    log = tmp_path / "three.log"
    craft.repeated(log, REPORT, 3 * MiB)
    got = parse.parse_oom_log(log)
    assert len(got.reports) <= 2 * MiB // len(REPORT) + 1  # the last one cut by the bound
    assert len(got.reports) >= 2 * MiB // len(REPORT) - 300  # a block ends within a MiB of lines
    assert got.warnings[-1].endswith("are read (2 MiB, memtrace's bound); the rest is not")
