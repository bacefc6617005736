"""Every era, end to end: a simulated OOM rendered as that kernel's log, read back.

The simulated kernel picks its victims with the badness formula of the kernel
version it emulates, and :mod:`memtrace.analysis.kernlog.dmesg` prints the report in that
version's layout (§3). Reading the text back must name the same victims and, where
the layout prints everything the formula uses, recompute the same points.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines, render_dmesg
from memtrace.api import record
from memtrace.kernel.workload import resolve_scenario
from memtrace.tracer import TraceReader

ERAS = ("2.6.32", "3.4", "3.10", "4.9", "4.19", "5.4", "5.15", "6.6", "6.8", "6.13")
#: From 4.17 the formula is rss + swap + page tables + adj term, all of which the
#: table prints; earlier ones also use what a row lacks (CPU time, CAP_SYS_ADMIN).
EXACT_FROM = (4, 17)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["memcg-oom", "oom-leak"])
@pytest.mark.parametrize("era", ERAS)
def test_rendered_log_reads_back(tmp_path: Path, scenario: str, era: str) -> None:
    sc = resolve_scenario(scenario)
    sc = dataclasses.replace(sc, machine=dataclasses.replace(sc.machine, kernel_version=era))
    result = record(sc, tmp_path / "t.mtrace")
    texts = render_dmesg(TraceReader(tmp_path / "t.mtrace"))
    lines = [line for r in texts for line in r.lines]
    log = parse_oom_lines(lines)
    rep = oom_report_from_parsed(log.reports)
    assert [k.victim.pid for k in rep.kills] == [k["pid"] for k in result.oom_kills]
    for kill, sim in zip(rep.kills, result.oom_kills):
        assert kill.victim_ranked_first is True
        assert kill.constraint == sim["constraint"]
        if scenario == "memcg-oom":
            assert kill.memcg == "/oracle_oom"
        assert kill.kernel_version is not None and kill.kernel_version.startswith(era)
        victim = next(c for c in kill.candidates if c.pid == kill.victim.pid)
        if tuple(int(x) for x in era.split(".")) >= EXACT_FROM or not victim.note:
            # Nothing the formula uses is missing from the row: the same points.
            assert kill.victim_points == sim["points"]
        else:
            # The note says what the row lacks (CPU time, CAP_SYS_ADMIN, ...).
            assert "not" in victim.note or "lacks" in victim.note
    assert not any("truncated" in w for w in log.warnings)
