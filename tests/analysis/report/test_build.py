"""OOM reports built from traces: trigger, constraint, victim and reason; every
candidate's badness equal to the kernel formula recomputed by hand from the recorded
task rows; what reclaim could not free; what outlived the kill; imported traces that
cannot tell everything say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.analysis.report import OomKillReport, OomReport, build_report, render_report, what_if_changes
from memtrace.analysis.state import fold_trace
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"

MiB = 1 << 20
LONG_MIN = -(1 << 63)


def _kills(r: OomReport) -> list[OomKillReport]:
    return [k for k in r.kills if k.constraint != "overcommit"]


def _by_hand(row: dict, totalpages: int) -> int | None:
    """oom_badness() of 5.9+ (kernel-mm-facts.md §2): rss + swap + page tables +
    oom_score_adj * (totalpages / 1000), in pages; -1000 is never chosen."""
    if row["oom_score_adj"] == -1000:
        return None
    rss = row["rss_anon"] + row["rss_file"] + row["rss_shmem"]
    return rss + row["swapents"] + row["pgtables_bytes"] // 4096 + row["oom_score_adj"] * (totalpages // 1000)


@pytest.mark.parametrize("name", ["oom-leak", "memcg-oom", "shmem-pressure"])
def test_candidates_badness_equals_the_kernel_formula(name: str, reports: dict[str, OomReport]) -> None:
    """Every candidate's recorded points equal the 5.9+ formula computed by hand from
    the oom_candidate rows, and the recomputation ranks the victim first."""
    history = fold_trace(TraceReader(SAMPLES / f"{name}.mtrace")).history
    kills = _kills(reports[name])
    assert kills
    for k in kills:
        rows = [c for c in history.of("oom_candidate") if c["oom_id"] == k.extra["oom_id"]]
        assert len(rows) == len(k.candidates) > 0
        for row in rows:
            cand = next(c for c in k.candidates if c.pid == row["tgid"])
            want = _by_hand(row, k.totalpages or 0)
            recorded = None if row["points"] == LONG_MIN else row["points"]
            assert cand.points == recorded == want == cand.formula_points
            assert cand.note == ""
        assert k.victim_ranked_first is True
        assert k.victim_points == max(c.points for c in k.candidates if c.points is not None)


def test_oom_leak(reports: dict[str, OomReport]) -> None:
    """oom-leak: the leaker's own allocation triggers a global OOM on a machine with
    no swap after kswapd reclaimed all the page cache; the leaker has the highest
    badness and dies; the database's oom_score_adj -500 protected it."""
    (k,) = _kills(reports["oom-leak"])
    assert (k.trigger.comm, k.victim.comm) == ("leaker", "leaker")
    assert k.constraint == "CONSTRAINT_NONE" and k.memcg is None
    assert k.growers[0].comm == "leaker" and k.growers[0].growth_bytes > 2000 * MiB
    assert k.reclaim is not None and k.reclaim.kswapd_wakes == 18
    assert k.reclaim.file_cache_reclaimed_bytes == 1024 * MiB
    kinds = {u.kind: u for u in k.unreclaimable}
    assert {"anon_no_swap", "file_cache_gone"} <= set(kinds)
    assert k.memory is not None and kinds["anon_no_swap"].bytes == k.memory["anon"]
    text = " ".join(k.explanation)
    assert "global OOM" in text and "no swap" in text and "leaker (pid 102)" in text
    assert "db (pid 100) was protected: its oom_score_adj of -500" in text
    assert "every candidate's points equal the recorded ones" in text
    assert k.timeline is not None and k.timeline.kills_ts_ns == (k.ts_ns,)


def test_memcg_oom(reports: dict[str, OomReport]) -> None:
    """memcg-oom (the real kernel's sample): two memcg kills in /oracle_oom, victims
    4725 then 4847; 4725's oom_score_adj of 300 outweighed 4847's larger RSS; 4847
    is the grower."""
    first, second = _kills(reports["memcg-oom"])
    assert (first.victim.pid, second.victim.pid) == (4725, 4847)
    for k in (first, second):
        assert k.constraint == "CONSTRAINT_MEMCG" and k.memcg == "/oracle_oom"
        assert k.trigger.pid == 4847 and k.growers[0].pid == 4847
        assert k.memory is not None and k.memory["limit"] == 96 * MiB
    text = " ".join(first.explanation)
    assert ("python3 (pid 4725)'s oom_score_adj of 300 outweighed python3 (pid 4847)'s larger RSS "
            "(points 14,667 against 13,581)") in text
    assert "memory cgroup /oracle_oom" in text


def test_shmem_pressure_says_the_tmpfs_outlived_the_kill(reports: dict[str, OomReport]) -> None:
    (k,) = _kills(reports["shmem-pressure"])
    assert k.victim.comm == "leaker" and k.memcg == "/batch"
    owned = [u for u in k.unreclaimable if u.kind == "shmem_no_owner"]
    assert owned and owned[0].bytes == 768 * MiB and "/dev/shm/spool.dat" in owned[0].detail
    (out,) = k.outlived_kill
    assert out.bytes == 768 * MiB and "/dev/shm/spool.dat" in out.detail and "/batch" in out.detail
    assert any("outlived the kill" in s for s in k.explanation)


def test_overcommit_refusal_is_reported_as_no_oom(reports: dict[str, OomReport]) -> None:
    (r,) = reports["overcommit-strict"].kills
    assert r.constraint == "overcommit" and r.victim.pid is None and r.trigger.comm == "leaker"
    assert "ENOMEM" in r.explanation[0] and "vm.overcommit_memory=2" in r.explanation[0]
    assert what_if_changes(r, {}) == []


def _imported(path: Path, meta: dict) -> Path:
    """A trace as an importer of perf script writes one: RSS counters, an oom_kill
    (mark_victim) and the victim's exit; no task rows, cgroups, pages or reclaim."""
    from memtrace.tracer import TraceWriter, default_registry
    from memtrace.tracer.bus import Bus

    reg = default_registry()
    with TraceWriter(path, reg, meta) as w:
        bus = Bus(reg)
        bus.attach(w)
        for t in range(10):
            bus.emit(reg["rss_stat"], 1000 + t * 10**6, 4847, 1, mm_pid=4847, curr=True, member=1,
                     size_bytes=(t + 1) * 8 * MiB)
        bus.emit(reg["rss_stat"], 1000, 4725, 1, mm_pid=4725, curr=True, member=1, size_bytes=23 * MiB)
        bus.emit(reg["oom_kill"], 20 * 10**6, 4847, 1, oom_id=1, victim_pid=4725, comm="python3", total_vm_kb=0,
                 anon_rss_kb=23000, file_rss_kb=0, shmem_rss_kb=0, uid=0, pgtables_kb=0, oom_score_adj=300,
                 points=14674, totalpages=24576, constraint="CONSTRAINT_MEMCG", memcg="/oracle_oom",
                 task_memcg="/oracle_oom", gfp_mask=0xCC0, order=0, message="Memory cgroup out of memory")
        bus.emit(reg["exit"], 20 * 10**6 + 100, 4725, 1, comm="python3", code=137)
    return path


def test_a_trace_imported_from_a_real_kernel(tmp_path: Path) -> None:
    """Without task rows, cgroup events or reclaim tracepoints (a perf trace), the
    report still names the kill, finds the grower from kmem:rss_stat, and says what
    the trace cannot tell instead of inventing it."""
    rep = build_report(TraceReader(_imported(tmp_path / "imported.mtrace", {"source": "perf-script"})))
    assert rep.source == "perf-script"
    (k,) = rep.kills
    assert (k.victim.pid, k.victim_points, k.trigger.pid, k.memcg) == (4725, 14674, 4847, "/oracle_oom")
    assert k.growers[0].pid == 4847 and k.candidates == () and k.victim_ranked_first is None
    text = " ".join(k.explanation)
    assert "no task table" in text and "reclaim tried is unknown" in text
    for fmt in ("text", "md", "html", "json"):
        assert render_report(rep, fmt)


def test_fields_the_importer_could_not_fill_are_unknown(tmp_path: Path) -> None:
    """The importer lists oom_kill fields it wrote placeholders for (mark_victim has
    no badness, constraint or memcg): the report shows them as unknown, not as 0 or
    a global OOM."""
    untraced = {"points": "mark_victim carries no badness: 0 (give the kernel log with --dmesg)",
                "constraint": "not traced: CONSTRAINT_NONE written (give the kernel log with --dmesg)",
                "memcg": "not traced", "totalpages": "not traced", "gfp_mask": "not traced"}
    meta = {"source": {"format": "perf-script", "unknown": {"oom_kill": untraced}}}
    (k,) = build_report(TraceReader(_imported(tmp_path / "i.mtrace", meta))).kills
    assert (k.constraint, k.memcg, k.victim_points, k.totalpages, k.gfp_mask) == (None, None, None, None, None)
    text = " ".join(k.explanation)
    assert "whether it was a global or a memory-cgroup OOM is not in the trace" in text
    assert "its badness is not in the trace" in text
    assert "unknown" in render_report(build_report(TraceReader(tmp_path / "i.mtrace")), "text")


@pytest.mark.parametrize("name", ["memcg-oom", "shmem-pressure"])
def test_a_memcg_kill_plots_every_candidates_rss_against_the_limit(name: str,
                                                                   reports: dict[str, OomReport]) -> None:
    """A memcg OOM's usage plot holds every candidate's RSS over the window, and each
    series ends at the RSS the kernel recorded for it in its oom_candidate row
    (MM_ANONPAGES + MM_FILEPAGES + MM_SHMEMPAGES, pages of 4 KiB): two views of the
    same counters (rss_stat and the OOM dump) that must agree. Global OOMs have none."""
    from memtrace.analysis.report.document import MemcgPlot
    from memtrace.analysis.report.sections import kill_sections

    for k in reports[name].kills:
        if k.constraint != "CONSTRAINT_MEMCG":
            assert k.memcg_timeline is None
            continue
        assert k.memcg_timeline is not None and k.memory is not None and k.memory["limit"] > 0
        series = {p.pid: p for p in k.memcg_timeline.processes}
        assert set(series) == {c.pid for c in k.candidates if c.pid in series}
        plotted = [c for c in k.candidates if c.pid in series]
        assert plotted, "no candidate plotted"
        for c in plotted:
            rss = (c.rss_anon_pages + c.rss_file_pages + c.rss_shmem_pages) * 4096
            assert series[c.pid].rss_bytes[-1] == rss, c.comm
            assert all(t <= k.ts_ns for t in series[c.pid].ts_ns)
        figures = [b for s in kill_sections(k) for b in s.blocks_in("html") if isinstance(b, MemcgPlot)]
        assert len(figures) == 1 and figures[0].kill is k
    html = render_report(reports[name], "html")
    kills = [k for k in reports[name].kills if k.memcg_timeline is not None]
    assert html.count("against its limit") == len(kills) > 0
