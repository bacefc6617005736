"""memtrace's public API, called from Python: each command's twin returns the data
the command renders (its ``--json`` is that data), and the errors are classes.

Expected values are the command's own output on the same input, and the counts of
the sample scenarios (oom-leak kills its leaker, pid 102, once; tmpfs-file takes
four snapshots).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import memtrace
from memtrace.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "real-traces"


def cli_json(*args: str | os.PathLike[str]) -> Any:
    result = CliRunner().invoke(app, [os.fspath(a) for a in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_stat_is_what_stat_json_prints() -> None:
    trace = SAMPLES / "oom-leak.mtrace"
    st = memtrace.stat_trace(trace)
    assert st.complete and st.stats.counts["oom_kill"] == 1 and st.scenario == "oom-leak"
    assert st.as_dict() == cli_json("stat", trace, "--json")


def test_free_is_what_free_json_prints() -> None:
    trace = SAMPLES / "tmpfs-file.mtrace"
    snaps = memtrace.free(trace)
    assert [s.as_dict() for s in snaps.result] == cli_json("free", trace, "--json")["snapshots"]
    (one,) = memtrace.free(trace, at="after-write").result
    assert one.label == "after-write" and one.free.shared == one.meminfo["Shmem"]
    with pytest.raises(memtrace.NotFoundError, match="no snapshot labelled 'nosuch'"):
        memtrace.free(trace, at="nosuch")


def test_explain_ps_dmesg_report_are_what_the_commands_print() -> None:
    trace = SAMPLES / "oom-leak.mtrace"
    done = memtrace.explain(trace, at=4_500_000_000, pid=100)
    want = cli_json("explain", trace, "--at", "4.5s", "--pid", "100", "--json")
    assert {**done.result.as_dict(), "trace": str(trace)} == want and done.graph is None
    table = memtrace.ps(trace)
    assert {**table.result.as_dict(), "trace": str(trace)} == cli_json("ps", trace, "--json")
    assert memtrace.ps(trace, at=4_800_000_000).result.rows[0].comm == "leaker"  # before its kill
    kills = memtrace.dmesg(trace).result
    assert [{"oom_id": r.oom_id, "ts_ns": r.ts_ns, "lines": list(r.lines)} for r in kills] == \
        cli_json("dmesg", trace, "--json")
    rep = memtrace.report(trace, what_if=False).result
    assert rep.kills[0].victim.pid == 102
    from memtrace.analysis.report import render_report

    assert json.loads(render_report(rep, "json")) == cli_json("report", trace, "--json", "--no-what-if")


def test_explain_writes_the_graph(tmp_path: Path) -> None:
    done = memtrace.explain(SAMPLES / "fork-cow.mtrace", at="children-wrote", graph=tmp_path / "g.graphml")
    assert done.graph is not None and done.graph.kind and done.graph.page_runs == 8
    assert (tmp_path / "g.graphml").read_text().startswith("<?xml")


def test_report_of_a_kernel_log() -> None:
    rep = memtrace.report(SHARED / "memcg-oom-two-victims.dmesg.txt").result
    assert [k.victim.pid for k in rep.kills] == [4725, 4847]


def test_open_trace_tells_what_is_not_a_trace(tmp_path: Path) -> None:
    """A file without the magic is NotATraceError (a caller that reads snapshots or
    kernel logs too tries those); a missing file, a directory or a damaged header
    is a TraceFormatError, never NotATraceError."""
    junk = tmp_path / "junk.mtrace"
    junk.write_bytes(b"hello\n")
    with pytest.raises(memtrace.NotATraceError, match="not a memtrace trace"):
        memtrace.open_trace(junk)
    empty = tmp_path / "empty.mtrace"
    empty.write_bytes(b"")
    with pytest.raises(memtrace.NotATraceError):
        memtrace.open_trace(empty)
    cut = tmp_path / "cut.mtrace"
    cut.write_bytes((SAMPLES / "fork-cow.mtrace").read_bytes()[:12])
    for path in (tmp_path / "missing.mtrace", tmp_path, cut):
        with pytest.raises(memtrace.TraceFormatError) as e:
            memtrace.open_trace(path)
        assert not isinstance(e.value, memtrace.NotATraceError), path
    assert memtrace.open_trace(SAMPLES / "fork-cow.mtrace").meta["scenario"] == "fork-cow"


def test_not_found_is_a_class() -> None:
    with pytest.raises(memtrace.NotFoundError, match="no process 4242"):
        memtrace.explain(SAMPLES / "tmpfs-file.mtrace", pid=4242)
    with pytest.raises(memtrace.NotFoundError, match="did you mean 'oomkill'"):
        memtrace.load_tool("oomkil")
    with pytest.raises(memtrace.UsageError, match="colour"):
        memtrace.ps(SAMPLES / "fork-cow.mtrace", sort="colour")
    assert memtrace.load_tool("oomkill").name == "oomkill"


def test_import_is_what_import_json_prints(tmp_path: Path) -> None:
    src = tmp_path / "run.perf-script.txt.gz"
    shutil.copy(SHARED / "memcg-oom-two-victims.perf-script.txt.gz", src)
    res = memtrace.import_trace(src, tmp_path / "a.mtrace", dmesg=SHARED / "memcg-oom-two-victims.dmesg.txt")
    assert [k["victim_pid"] for k in res.oom_kills] == [4725, 4847]
    assert memtrace.stat_trace(res.trace).stats.counts["oom_kill"] == 2
