"""``perf script`` text imported as memtrace traces.

Ground truth: the real 6.18 ``perf script`` of a memcg OOM and its dmesg in
../shared/real-traces/ (counts taken with grep, numbers from the log's task table),
the samples recorded on this machine (tests/data/real/make_samples.sh), and
hand-written lines in the formats of ../shared/reference/kernel-mm-facts.md §7.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.importers import detect_format, import_trace
from memtrace.analysis.importers.perf_script import parse_line
from memtrace.errors import ParseError
from memtrace.tracer import TraceReader

SHARED = Path(__file__).resolve().parents[4] / "shared" / "real-traces"
PERF = SHARED / "memcg-oom-two-victims.perf-script.txt.gz"
DMESG = SHARED / "memcg-oom-two-victims.dmesg.txt"
OWN = Path(__file__).resolve().parents[2] / "data" / "real"


def records(path: Path, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in TraceReader(path).events() if r.name == name]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imp") / "plain.mtrace"
    import_trace(PERF, out)
    return out


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imp") / "combined.mtrace"
    import_trace(PERF, out, dmesg=DMESG)
    return out


# --------------------------------------------------------------------------- lines


def test_parse_default_layout() -> None:
    line = ("         python3  4847 [001]   153.243120:                      oom:mark_victim: pid=4725 "
            "comm=python3 total-vm=33000kB")
    assert parse_line(line) == ("python3", 4847, None, 153_243_120_000, "oom:mark_victim",
                                "pid=4725 comm=python3 total-vm=33000kB")


@pytest.mark.parametrize("line, expect", [
    # pid/tid (-F comm,pid,tid,cpu,time,event,trace), nanoseconds (--ns)
    ("            java 100/101 [003] 81234.567812345: kmem:rss_stat: mm_id=1 curr=1 type=MM_ANONPAGES size=4096B",
     ("java", 101, 100, 81234_567812345, "kmem:rss_stat")),
    # no cpu column, a comm with a space
    ("     Web Content  1733 81234.567812: exceptions:page_fault_user: address=0x1000 ip=0x1000 error_code=0x6",
     ("Web Content", 1733, None, 81234_567812000, "exceptions:page_fault_user")),
])
def test_parse_other_layouts(line: str, expect: tuple[Any, ...]) -> None:
    got = parse_line(line)
    assert got is not None and got[:5] == expect


@pytest.mark.parametrize("line", ["", "# ========", "\tffffffff81234567 do_page_fault+0x1 ([kernel.kallsyms])",
                                  "garbage: with: colons", "x 12 [000] notatime: a:b: c"])
def test_parse_rejects_other_lines(line: str) -> None:
    assert parse_line(line) is None


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(PERF) == "perf-script"
    assert detect_format(OWN / "memcg-v1-ftrace.trace.txt.gz") == "ftrace"
    other = tmp_path / "x.txt"
    other.write_text("hello\n")
    with pytest.raises(ParseError, match="neither perf script nor ftrace"):
        detect_format(other)


# --------------------------------------------------------------------------- the shared sample


def test_sample_counts(plain: Path) -> None:
    """Every line is a known event: 18,629 faults, 19,487 rss_stat, 258 mmap, 40 brk,
    12 munmap, 143 + 143 memcg reclaim, 2 mark_victim, 1 oom_score_adj_update (grep -c)."""
    st = TraceReader(plain).scan()
    assert st.counts["page_fault"] == 18629
    assert st.counts["rss_stat"] == 19487
    assert st.counts["mmap"] == 258 and st.counts["brk"] == 40 and st.counts["munmap"] == 12
    assert st.counts["reclaim_begin"] == 143 == st.counts["reclaim_end"]
    assert st.counts["oom_kill"] == 2 and st.counts["oom_score_adj_update"] == 1
    meta = TraceReader(plain).meta
    assert meta["source"]["format"] == "perf-script"
    assert meta["source"]["lines"] == 38715 and meta["source"]["unknown_lines"] == 0
    assert meta["source"]["path"].endswith("memcg-oom-two-victims.perf-script.txt.gz")
    assert meta["seed"] == 0 and meta["sysctl"] == {} and meta["sysctl_overrides"] == {}


def test_sample_mark_victim_to_oom_kill(plain: Path) -> None:
    """6.10+ mark_victim carries the Killed line's numbers; what it does not carry
    (badness, constraint) is listed under meta.source.unknown, not invented."""
    kills = records(plain, "oom_kill")
    assert [(k["pid"], k["victim_pid"]) for k in kills] == [(4847, 4725), (4847, 4847)]
    first = kills[0]
    assert (first["total_vm_kb"], first["anon_rss_kb"], first["file_rss_kb"], first["pgtables_kb"],
            first["oom_score_adj"]) == (33000, 23168, 6628, 100, 300)
    assert first["ts_ns"] == 153_243_120_000
    unknown = TraceReader(plain).meta["source"]["unknown"]
    assert {"points", "totalpages", "constraint"} <= set(unknown["oom_kill"])
    assert "pfn" in unknown["page_fault"] and "major" in unknown["page_fault"]


def test_sample_rss_stat_per_mm(plain: Path) -> None:
    """mm_id hashes resolve to the pid owning the mm (curr=1); 4725's teardown after
    its kill (curr=0, in its own context) is attributed to 4725."""
    rss = records(plain, "rss_stat")
    owners = {r["mm_pid"] for r in rss}
    assert {4847, 4725} <= owners and 0 not in owners
    last_4725 = [r for r in rss if r["mm_pid"] == 4725][-1]
    assert last_4725["size_bytes"] == 0 and last_4725["curr"] is False
    anon = [r["size_bytes"] for r in rss if r["mm_pid"] == 4847 and r["member"] == "MM_ANONPAGES"
            and r["ts_ns"] <= 153_243_120_000]
    assert max(anon) >= 11680 * 4096  # the RSS the log's task table shows at the first kill


def test_sample_page_faults(plain: Path) -> None:
    faults = records(plain, "page_fault")
    assert all(f["pfn"] == 0 and f["major"] is False for f in faults)
    assert all(f["address"] % 4096 == 0 for f in faults)
    kinds = {f["vma_kind"] for f in faults}
    assert {"anon_private", "file_private"} <= kinds  # from the rss_stat each fault raised
    assert sum(f["write"] for f in faults) > 1000  # error_code bit 1
    meta = TraceReader(plain).meta["source"]["page_fault_vma_kind"]
    assert meta["from_rss_stat"] > 17000


def test_sample_exec_names(plain: Path) -> None:
    """perf-exec -> bash -> pyenv -> python3: the sample traces no exec tracepoint, so
    each exec is the new mm its rss_stat shows (with the comm the line shows), an
    ``exec`` event, not a rename."""
    starts = [r["comm"] for r in records(plain, "process_start") if r["pid"] == 4847]
    execs = [r["comm"] for r in records(plain, "exec") if r["pid"] == 4847]
    assert starts == ["perf-exec"]
    assert execs[-1] == "python3" and "bash" in execs and "pyenv" in execs
    assert not [r for r in records(plain, "task_rename") if r["pid"] == 4847]


def test_gzip_and_plain_give_the_same_trace(tmp_path: Path, plain: Path) -> None:
    text = tmp_path / "sample.perf-script.txt"
    text.write_bytes(gzip.decompress(PERF.read_bytes()))
    out = tmp_path / "from-text.mtrace"
    r = import_trace(text, out)
    assert r.lines == 38715
    assert TraceReader(out).scan().counts == TraceReader(plain).scan().counts


# --------------------------------------------------------------------------- with the kernel log


def test_combined_oom_context_from_the_log(combined: Path) -> None:
    """--dmesg adds the memcg stats and the task table before each kill, and the
    kill's badness, totalpages, constraint and memcg."""
    kills = records(combined, "oom_kill")
    assert [(k["victim_pid"], k["points"], k["totalpages"]) for k in kills] == [(4725, 14674, 24576),
                                                                             (4847, 19283, 24576)]
    assert {k["constraint"] for k in kills} == {"CONSTRAINT_MEMCG"}
    assert {k["memcg"] for k in kills} == {"/oracle_oom"}
    assert kills[0]["message"] == "Memory cgroup out of memory" and kills[0]["gfp_mask"] == 0xCC0
    cands = records(combined, "oom_candidate")
    first = {c["tgid"]: c["points"] for c in cands if c["oom_id"] == 1}
    assert first == {4724: 8481, 4725: 14674, 4847: 13383}
    stats = records(combined, "memcg_stat")
    assert [s["limit_bytes"] for s in stats] == [96 << 20, 96 << 20]
    assert stats[0]["anon_bytes"] == 99831808
    reclaim = records(combined, "reclaim_begin")
    assert {r["kind"] for r in reclaim} == {"memcg"} and {r["memcg"] for r in reclaim} == {"/oracle_oom"}
    meta = TraceReader(combined).meta
    assert meta["machine"]["kernel_version"] == "6.18.44" and meta["machine"]["cgroup_version"] == 1
    assert meta["source"]["companion_log"]["matched_kills"] == 2


def test_combined_workload_for_replay(combined: Path) -> None:
    """The derived workload: the memcg from the log with its 96 MiB limit and no swap,
    4847 from its faults and counters, 4724 and 4725 (whose memory the trace does not
    show being made) from the task table, 4725 with its oom_score_adj 300."""
    from memtrace.kernel.workload import scenario_from_dict

    w = TraceReader(combined).meta["workload"]
    sc = scenario_from_dict(w, "imported")
    assert [(c.path, c.max_bytes, c.swap_max_bytes) for c in sc.cgroups] == [("/oracle_oom", 96 << 20, 0)]
    procs = {p.pid: p for p in sc.processes if p.pid is not None}
    assert {4724, 4725, 4847} <= set(procs)
    assert procs[4725].oom_score_adj == 300 and procs[4725].cgroup == "/oracle_oom"
    assert procs[4847].cgroup == "/oracle_oom" and procs[4847].comm == "python3"
    assert sc.machine.kernel_version == "6.18.44" and sc.machine.cgroup_version == 1


def test_combined_replay_kills_the_same_victims(combined: Path, tmp_path: Path) -> None:
    """``memtrace replay`` of the imported trace: 4725 first, then the grower 4847."""
    from memtrace.replay.overrides import Overrides
    from memtrace.replay.replay import replay_trace

    out = tmp_path / "replay.mtrace"
    replay_trace(combined, out, Overrides.parse(["vm.swappiness=10"]))
    reader = TraceReader(out)
    reader.scan()
    assert reader.footer is not None
    assert [k["pid"] for k in reader.footer["extra"]["oom_kills"]] == [4725, 4847]
    assert reader.footer["extra"]["errors"] == []


def test_combined_report_explains_the_kills(combined: Path) -> None:
    """The analysis report of the imported trace (issue 6's builder) finds the two
    memcg kills, the adj that outweighed the larger RSS, and the grower."""
    from memtrace.analysis.report import build_report

    rep = build_report(TraceReader(combined))
    assert [k.victim.pid for k in rep.kills] == [4725, 4847]
    assert [k.constraint for k in rep.kills] == ["CONSTRAINT_MEMCG"] * 2
    first = rep.kills[0]
    points = {c.pid: c.points for c in first.candidates}
    assert points[4725] == 14674 and points[4847] == 13383
    text = "\n".join(first.explanation)
    assert "oom_score_adj of 300 outweighed" in text and "4847" in text
    assert "14,674 against 13,383" in text or "14674 against 13383" in text
    assert first.growers and first.growers[0].pid == 4847
    assert rep.kills[1].growers[0].pid == 4847


# --------------------------------------------------------------------------- own samples


@pytest.mark.parametrize("trace, log", [
    ("memcg-v1-two-kills.perf-script.txt.gz", "memcg-v1-two-kills.dmesg.txt.gz"),
    ("memcg-v1-ftrace.trace.txt.gz", "memcg-v1-ftrace.dmesg.txt.gz"),
])
def test_own_samples_import_and_replay(tmp_path: Path, trace: str, log: str) -> None:
    """Recorded on this machine: the holder (adj 1000) killed first, then the leaker;
    the import matches both kills to the log, and the replay kills them in order."""
    from memtrace.analysis.kernlog import parse_oom_log
    from memtrace.replay.replay import replay_trace

    out = tmp_path / "own.mtrace"
    result = import_trace(OWN / trace, out, dmesg=OWN / log)
    reports = parse_oom_log(OWN / log).reports
    victims = [r.victim_pid for r in reports]
    assert [k["victim_pid"] for k in result.oom_kills] == victims
    assert all(k["constraint"] == "CONSTRAINT_MEMCG" and k["memcg"] == "/memtrace_test" for k in result.oom_kills)
    assert result.unknown_lines == 0
    kills = records(out, "oom_kill")
    assert kills[0]["oom_score_adj"] == 1000 and kills[1]["oom_score_adj"] == 0
    assert kills[1]["pid"] == victims[1]  # the leaker invoked the OOM killer that took it
    meta = TraceReader(out).meta
    assert meta["workload"]["cgroup"] == [{"path": "/memtrace_test", "max": 64 << 20, "swap_max": 0}]
    rep = tmp_path / "replay.mtrace"
    replay_trace(out, rep)
    reader = TraceReader(rep)
    reader.scan()
    assert [k["pid"] for k in reader.footer["extra"]["oom_kills"]] == victims


# --------------------------------------------------------------------------- the two readers


def _same_trace(a: Path, b: Path) -> None:
    ra, rb = TraceReader(a), TraceReader(b)
    assert ra.meta == rb.meta
    ea, eb = list(ra.events()), list(rb.events())
    assert len(ea) == len(eb) and ea == eb


@pytest.mark.parametrize("source", [PERF, OWN / "memcg-v1-two-kills.perf-script.txt.gz"])
def test_vectorised_reader_equals_the_line_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  source: Path) -> None:
    """The numpy block reader (rss_stat and page faults cut up in bulk, common cases
    inlined) gives exactly the events and header of the line-at-a-time reader."""
    from memtrace.analysis.importers import perf_script

    fast = tmp_path / "fast.mtrace"
    import_trace(source, fast, dmesg=DMESG if source == PERF else None)
    original = perf_script.feed
    monkeypatch.setattr(perf_script, "feed", lambda lines, b, vectorised=True: original(lines, b, vectorised=False))
    slow = tmp_path / "slow.mtrace"
    import_trace(source, slow, dmesg=DMESG if source == PERF else None)
    _same_trace(fast, slow)


def test_vectorised_reader_on_the_bench_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known mappings (sys_exit_mmap addresses), memcg reclaim, brk, a kill: the
    synthetic file of bench/bench_import.py, 60,000 lines, read both ways."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    try:
        from bench_import import write_perf_script
    finally:
        sys.path.pop(0)
    from memtrace.analysis.importers import perf_script

    src = tmp_path / "bench.txt"
    with open(src, "w") as f:
        lines = write_perf_script(f, 60_000)
    fast = tmp_path / "fast.mtrace"
    assert import_trace(src, fast).lines == lines
    original = perf_script.feed
    monkeypatch.setattr(perf_script, "feed", lambda lines, b, vectorised=True: original(lines, b, vectorised=False))
    slow = tmp_path / "slow.mtrace"
    import_trace(src, slow)
    _same_trace(fast, slow)


def _mixed_perf_script(seed: int, nr_lines: int) -> tuple[str, dict[str, int]]:
    """A perf script whose tasks keep changing the state the block reader's steady
    test reads: faults inside and outside known mappings (and in a task that maps
    nothing), rss_stat of every member and of other tasks' mms (curr=0), mmaps and
    munmaps, brk left in flight, execs (a new comm), a thread learnt mid-way from a
    ``pid/tid`` line, exits whose mm a new task then reuses (the old one still
    firing), slice boundaries, reclaim and lines of no known shape. Returns the text
    and the count of each kind of line written."""
    import random

    rng = random.Random(seed)
    page = 4096
    tasks = [{"tid": 5000 + i, "comm": "python3", "mm": 700_000 + 17 * i, "base": 0x7F0000000000 + (i << 32),
              "map": None, "cursor": 0, "anon": 0} for i in range(5)]
    thread = {**tasks[2], "tid": 5099}  # a thread of task 2: its mm, its mapping, its own tid
    members = ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES")
    ts = 2_000_000_000  # microseconds
    out: list[str] = []
    count = {"fault": 0, "rss": 0, "junk": 0}

    def line(t: dict[str, Any], event: str, payload: str, who: str | None = None) -> None:
        out.append(f"{t['comm']:>16} {who or t['tid']:>7} [{t['tid'] % 4:03d}] {ts // 1_000_000:>5}."
                   f"{ts % 1_000_000:06d}: {event:>38}: {payload}")

    while len(out) < nr_lines:
        ts += rng.choice((1, 2, 3, 5, 40)) if rng.random() > 0.003 else 12_000  # 12 ms: a new slice
        t = rng.choice([*tasks, thread])
        if t is thread and len(out) > nr_lines // 3 and "taught" not in thread:
            thread["taught"] = 1
            line(t, "exceptions:page_fault_user", "address=0x1000 ip=0x1 error_code=0x6", who="5002/5099")
            count["fault"] += 1
            continue
        r = rng.random()
        if r < 0.001 and t is not thread and len(tasks) < 12:
            line(t, "sched:sched_process_exit", f"comm={t['comm']} pid={t['tid']} prio=120")
            tasks.append({**t, "tid": 6000 + len(tasks), "map": None, "cursor": 0})  # its mm_struct, reused
            continue
        if t["tid"] != 5004 and (t["map"] is None or t["cursor"] >= t["map"][1] or r < 0.004):
            start = t["base"] + rng.randrange(64) * (4 << 20)
            line(t, "syscalls:sys_enter_mmap", "addr: 0x00000000, len: 0x00200000, prot: 0x00000003, "
                 "flags: 0x00000022, fd: 0xffffffff, off: 0x00000000")
            line(t, "syscalls:sys_exit_mmap", f"0x{start:x}")
            t["map"], t["cursor"] = (start, start + (2 << 20)), start
            if t is tasks[2]:
                thread["map"], thread["cursor"] = t["map"], start + (1 << 20)
        elif r < 0.006 and t["map"] is not None:
            line(t, "syscalls:sys_enter_munmap", f"addr: 0x{t['map'][0]:08x}, len: 0x00200000")
            line(t, "syscalls:sys_exit_munmap", "0x0")
            t["map"] = None
        elif r < 0.012:
            line(t, "syscalls:sys_enter_brk", f"brk: 0x{0x55CCC52AB000 + rng.randrange(99) * page:08x}")
            if rng.random() < 0.5:
                line(t, "syscalls:sys_exit_brk", f"0x{0x55CCC52AB000 + rng.randrange(99) * page:x}")
        elif r < 0.014:
            t["comm"] = rng.choice(("python3", "worker", "sh"))  # an exec, as the next line shows it
        elif r < 0.020:
            line(t, "vmscan:mm_vmscan_memcg_reclaim_begin", "order=0 gfp_flags=GFP_HIGHUSER_MOVABLE")
            line(t, "vmscan:mm_vmscan_memcg_reclaim_end", "nr_reclaimed=12")
        elif r < 0.024:
            out.append(f"junk {rng.randrange(1 << 30)} not a perf line")
            count["junk"] += 1
        elif r < 0.060:
            other = rng.choice(tasks)
            line(t, "kmem:rss_stat", f"mm_id={other['mm']} curr=0 type={rng.choice(members)} "
                 f"size={rng.randrange(1 << 20) * page}B")
            count["rss"] += 1
        else:
            if t["map"] is not None and rng.random() > 0.03:
                addr = t["cursor"] + rng.randrange(page)
                t["cursor"] += page
            else:
                addr = 0x55CCC52AB000 + rng.randrange(1 << 16) * page + rng.randrange(page)  # no known mapping
            line(t, "exceptions:page_fault_user", f"address=0x{addr:x} ip=0x7f73a8103b03 "
                 f"error_code=0x{rng.choice((4, 6, 0x14, 0x15, 7)):x}")
            count["fault"] += 1
            t["anon"] += page
            member = "MM_ANONPAGES" if rng.random() > 0.1 else rng.choice(members)
            line(t, "kmem:rss_stat", f"mm_id={t['mm']} curr=1 type={member} size={t['anon']}B")
            count["rss"] += 1
    return "\n".join(out) + "\n", count


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_vectorised_reader_on_changing_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Both readers give the trace of the general path (every line through
    parse_line() and TraceBuilder.event()) while the tasks' state keeps changing
    (about 5 MB, so several blocks); every fault and rss_stat line written is one
    event, and only the junk lines are unknown."""
    from memtrace.analysis.importers import perf_script
    from memtrace.analysis.importers.builder import feed_line

    text, count = _mixed_perf_script(seed, 40_000)
    src = tmp_path / "mixed.txt"
    src.write_text(text)
    fast = tmp_path / "fast.mtrace"
    result = import_trace(src, fast, format="perf-script")
    assert result.events["page_fault"] == count["fault"]
    assert result.events["rss_stat"] == count["rss"]
    assert result.unknown_lines == count["junk"]
    original = perf_script.feed

    def general(lines: Any, builder: Any, vectorised: bool = True) -> None:
        for line in lines:
            builder.lines += 1
            feed_line(builder, line, parse_line)

    for name, reader in (("slow", lambda lines, b, vectorised=True: original(lines, b, vectorised=False)),
                         ("general", general)):
        monkeypatch.setattr(perf_script, "feed", reader)
        out = tmp_path / f"{name}.mtrace"
        import_trace(src, out, format="perf-script")
        _same_trace(fast, out)


def _perf_line(ts_us: int, event: str, payload: str, comm: str = "python3") -> str:
    """One line in perf script's default layout (comm, tid 4847, [cpu], time, event)."""
    return f"{comm:>16} {4847:>7} [000] {ts_us // 1_000_000:>5}.{ts_us % 1_000_000:06d}: {event:>38}: {payload}"


def _both_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> Any:
    """Import ``lines`` with the block reader and the line reader; the same trace."""
    from memtrace.analysis.importers import perf_script

    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n")
    fast = tmp_path / "fast.mtrace"
    result = import_trace(src, fast, format="perf-script")
    original = perf_script.feed
    monkeypatch.setattr(perf_script, "feed", lambda lines, b, vectorised=True: original(lines, b, vectorised=False))
    slow = tmp_path / "slow.mtrace"
    import_trace(src, slow, format="perf-script")
    _same_trace(fast, slow)
    return result, fast


def test_readers_agree_on_damaged_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines in the fixed-width columns whose separators or member name are wrong are
    not read there, but as text: "48470[000]" (no space before the cpu) and "[0 0]"
    (a space in it) are unknown lines, type=MM_FXXXXXXXX an unreadable rss_stat."""
    rss = "mm_id=7 curr=1 type=MM_ANONPAGES size={}B"
    good = [
        _perf_line(100_000_001, "kmem:rss_stat", rss.format(4096)),
        _perf_line(100_000_002, "exceptions:page_fault_user", "address=0x1000 ip=0x1 error_code=0x6"),
        _perf_line(100_000_003, "kmem:rss_stat", rss.format(8192)),
    ]
    bad_sep = _perf_line(100_000_004, "kmem:rss_stat", rss.format(12288)).replace("4847 [000]", "48470[000]")
    bad_cpu = _perf_line(100_000_005, "kmem:rss_stat", rss.format(12288)).replace("[000]", "[0 0]")
    bad_member = _perf_line(100_000_006, "kmem:rss_stat", rss.format(12288)).replace("MM_ANONPAGES", "MM_FXXXXXXXX")
    last = _perf_line(100_000_007, "exceptions:page_fault_user", "address=0x2000 ip=0x1 error_code=0x4")
    result, _ = _both_readers(tmp_path, monkeypatch, [*good, bad_sep, bad_cpu, bad_member, last])
    assert result.events["rss_stat"] == 2 and result.events["page_fault"] == 2
    assert result.unknown_lines == 3
    assert result.unknown_events == {"kmem:rss_stat (unreadable)": 1}


def test_comm_spilling_out_of_its_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line whose comm runs into the space after the comm column ("perf-exec0")
    renames the task (no exec: the mm stays), and the next line in the column
    renames it back: one process_start (perf-exec), then two task_rename."""
    rss = "mm_id=7 curr=1 type=MM_ANONPAGES size={}B"
    lines = [_perf_line(100_000_001 + i, "kmem:rss_stat", rss.format(4096 * (1 + i)), "perf-exec") for i in range(6)]
    lines[2] = lines[2][:16] + "0" + lines[2][17:]
    assert lines[2].startswith("       perf-exec0   4847 [000]")
    _, out = _both_readers(tmp_path, monkeypatch, lines)
    assert [r["comm"] for r in records(out, "process_start")] == ["perf-exec"]
    assert [(r["oldcomm"], r["newcomm"]) for r in records(out, "task_rename")] == [
        ("perf-exec", "perf-exec0"), ("perf-exec0", "perf-exec")]
    assert not records(out, "exec")


def test_comm_change_on_a_pid_tid_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``pid/tid`` line (another column layout) names the task "other"; the lines
    after it in the fixed columns name it perf-exec again: two renames, whichever
    path reads the lines."""
    rss = "mm_id=7 curr=1 type=MM_ANONPAGES size={}B"
    lines = [_perf_line(100_000_001 + i, "kmem:rss_stat", rss.format(4096 * (1 + i)), "perf-exec") for i in range(6)]
    lines[2] = f"{'other':>16} 4847/4847 [000]   100.000003: {'kmem:rss_stat':>38}: {rss.format(12288)}"
    _, out = _both_readers(tmp_path, monkeypatch, lines)
    assert [r["comm"] for r in records(out, "process_start")] == ["perf-exec"]
    assert [(r["oldcomm"], r["newcomm"]) for r in records(out, "task_rename")] == [
        ("perf-exec", "other"), ("other", "perf-exec")]


def test_first_time_when_the_trace_starts_at_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace's first time is that of its first event after time 0 (as
    TraceBuilder.event() counts it), whichever path reads that event: 0.000003 s."""
    rss = "mm_id=7 curr=1 type=MM_ANONPAGES size={}B"
    lines = [_perf_line(0, "kmem:rss_stat", rss.format(4096)), _perf_line(0, "kmem:rss_stat", rss.format(8192))]
    lines += [_perf_line(3 + i, "kmem:rss_stat", rss.format(4096 * (3 + i))) for i in range(5)]
    result, out = _both_readers(tmp_path, monkeypatch, lines)
    assert TraceReader(out).meta["source"]["first_ts_ns"] == 3_000
    assert result.duration_ns == 7_000 - 3_000


def test_fault_at_a_kernel_address(tmp_path: Path) -> None:
    """A user-mode access to the vsyscall page faults at 0xffffffffff600400: its page,
    0xffffffffff600000, is above 2**63 and still written as it is; an address of
    more than 64 bits is unreadable, the line counted as unknown."""
    head = "         python3    4847 [000]   153.24312{}: "
    src = tmp_path / "vsyscall.txt"
    src.write_text("".join(head.format(i) + body + "\n" for i, body in enumerate([
        "                        kmem:rss_stat: mm_id=1 curr=1 type=MM_ANONPAGES size=4096B",
        "           exceptions:page_fault_user: address=0xffffffffff600400 ip=0xffffffffff600400 error_code=0x15",
        "           exceptions:page_fault_user: address=0x1ffffffffffffffff ip=0x1 error_code=0x4",
    ])))
    out = tmp_path / "vsyscall.mtrace"
    result = import_trace(src, out)
    assert [r["address"] for r in records(out, "page_fault")] == [0xFFFFFFFFFF600000]
    assert result.unknown_events == {"exceptions:page_fault_user (unreadable)": 1}


def test_raw_blocks_line_ends(tmp_path: Path) -> None:
    """CRLF and CR become LF, a missing last newline is added, an overlong line is cut."""
    from memtrace.analysis.importers.textio import MAX_LINE_BYTES, open_text

    p = tmp_path / "x.txt"
    p.write_bytes(b"a\r\nb\rc\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\nlast")
    data = b"".join(open_text(p).raw_blocks(block_bytes=7))
    assert data.split(b"\n") == [b"a", b"b", b"c", b"x" * MAX_LINE_BYTES, b"last", b""]
    assert list(open_text(p)) == ["a", "b", "c", "x" * MAX_LINE_BYTES, "last"]


def test_progress_reporting_takes_the_same_path(tmp_path: Path) -> None:
    """With a progress callback (what the CLI passes on a terminal) the import reads
    the same blocks and writes the same bytes; the progress reaches the file's size."""
    a, b = tmp_path / "a.mtrace", tmp_path / "b.mtrace"
    import_trace(PERF, a)
    seen: list[int] = []
    import_trace(PERF, b, progress=seen.append)
    assert a.read_bytes() == b.read_bytes()
    assert seen == sorted(seen) and seen[-1] == len(gzip.decompress(PERF.read_bytes()))


# --------------------------------------------------------------------------- numbers out of range

_RSS = "mm_id=7 curr=1 type=MM_ANONPAGES size={}B"
_VICTIM = ("pid={} comm=python3 total-vm={}kB anon-rss=23168kB file-rss:6628kB shmem-rss:0kB uid={} "
           "pgtables=100kB oom_score_adj=300")
_MMAP = "addr: {}, len: {}, prot: 0x00000003, flags: 0x00000022, fd: 0xffffffff, off: 0x00000000"


@pytest.mark.parametrize("line, unreadable", [
    # The head: a time past 2**63 ns, a tid or pid beyond pid_t (unknown lines).
    (("         python3    4847 [000] 99999999999999999999.243120:           exceptions:page_fault_user: "
      "address=0x1000 ip=0x1 error_code=0x6"), None),
    (("         python3    4847 [000] 9223372036.854776:           exceptions:page_fault_user: "
      "address=0x1000 ip=0x1 error_code=0x6"), None),
    (_perf_line(100_000_002, "exceptions:page_fault_user", "address=0x1000 ip=0x1 error_code=0x6")
     .replace("   4847 ", " 2147483648 "), None),
    (_perf_line(100_000_002, "kmem:rss_stat", _RSS.format(8192)).replace("   4847 ", f" {1 << 63} "), None),
    (f"{'python3':>16} 4294967296/4847 [000]   100.000002: {'kmem:rss_stat':>38}: {_RSS.format(8192)}", None),
    # The text: a number outside the C type the kernel prints it as (unreadable events).
    (_perf_line(100_000_002, "kmem:rss_stat", _RSS.format(1 << 63)), "kmem:rss_stat"),
    (_perf_line(100_000_002, "syscalls:sys_enter_brk", "brk: 0x10000000000000000"), "syscalls:sys_enter_brk"),
    (_perf_line(100_000_002, "syscalls:sys_enter_mmap", _MMAP.format("-0x1", "0x00002000")), "syscalls:sys_enter_mmap"),
    (_perf_line(100_000_002, "syscalls:sys_enter_munmap", f"addr: 0x1000, len: 0x{1 << 68:x}"),
     "syscalls:sys_enter_munmap"),
    (_perf_line(100_000_002, "oom:mark_victim", _VICTIM.format(1 << 31, 33000, 0)), "oom:mark_victim"),
    (_perf_line(100_000_002, "oom:mark_victim", _VICTIM.format(4725, -1, 0)), "oom:mark_victim"),
    (_perf_line(100_000_002, "oom:mark_victim", _VICTIM.format(4725, 33000, 1 << 32)), "oom:mark_victim"),
    (_perf_line(100_000_002, "oom:oom_score_adj_update", f"pid={1 << 63} comm=x oom_score_adj=0"),
     "oom:oom_score_adj_update"),
    (_perf_line(100_000_002, "kmem:mm_page_alloc", f"page=0x1 pfn=0x1 order={1 << 63} migratetype=1 gfp_flags=0x0"),
     "kmem:mm_page_alloc"),
])
def test_numbers_out_of_range_are_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str,
                                               unreadable: str | None) -> None:
    """A well-formed line with a number no kernel prints there (it would not fit the
    field's column) is one unknown line, never an OverflowError: a head that does
    not parse, or an unreadable event. Both readers agree."""
    good = [_perf_line(100_000_001 + 2 * i, "kmem:rss_stat", _RSS.format(4096 * (i + 1))) for i in range(2)]
    result, out = _both_readers(tmp_path, monkeypatch, [*good[:1], line, *good[1:]])
    assert result.unknown_lines == 1
    assert result.unknown_events == ({f"{unreadable} (unreadable)": 1} if unreadable else {})
    assert result.events == {"process_start": 1, "rss_stat": 2}
    assert TraceReader(out).scan().damage is None


def test_numbers_the_kernel_prints_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Values at the edges of their C types are imported as they are: rss_stat sizes
    of -2**63 and 2**63 - 1 (a long), the last time that fits 2**63 ns, a 64-bit
    mmap length (PAGE_ALIGN() wraps it to 0, as in the kernel, which fails the call
    with ENOMEM), a brk to 2**64 - 1 with no exit traced. Neither that mmap nor the
    brk is a step of the replay workload (no user address space holds them)."""
    lines = [
        _perf_line(100_000_001, "kmem:rss_stat", _RSS.format(-(1 << 63))),
        _perf_line(100_000_002, "kmem:rss_stat", _RSS.format((1 << 63) - 1)),
        _perf_line(100_000_003, "syscalls:sys_enter_mmap", _MMAP.format("0x00000000", "0xffffffffffffffff")),
        _perf_line(100_000_004, "syscalls:sys_exit_mmap", "0xfffffffffffffff4"),
        _perf_line(100_000_005, "syscalls:sys_enter_mmap", _MMAP.format("0x00000000", "0xfffffffffffff000")),
        _perf_line(100_000_006, "syscalls:sys_exit_mmap", "0x7f0000000000"),
        _perf_line(100_000_007, "syscalls:sys_enter_brk", "brk: 0xffffffffffffffff"),
        f"{'python3':>16} {4847:>7} [000] 9223372036.854775: {'kmem:rss_stat':>38}: {_RSS.format(4096)}",
    ]
    result, out = _both_readers(tmp_path, monkeypatch, lines)
    assert result.unknown_lines == 0
    assert [r["size_bytes"] for r in records(out, "rss_stat")] == [-(1 << 63), (1 << 63) - 1, 4096]
    assert [(r["len_bytes"], r["ret"]) for r in records(out, "mmap")] == [(0, -12), (0xFFFFFFFFFFFFF000, 0)]
    assert [(r["brk"], r["ret"]) for r in records(out, "brk")] == [((1 << 64) - 1, (1 << 64) - 1)]
    assert TraceReader(out).meta["source"]["last_ts_ns"] == 9_223_372_036_854_775_000
    steps = TraceReader(out).meta["workload"]["process"][0]["steps"]
    assert [s.get("handle") for s in steps if s["op"] in ("mmap", "brk")] == ["anon1"]  # rss_stat's growth


@pytest.mark.parametrize("first", [
    _perf_line(100_000_001, "kmem:rss_stat", _RSS.format(4096)).replace("[000]", "[" + "9" * 5000 + "]"),
    _perf_line(100_000_001, "kmem:rss_stat", _RSS.format(4096)).replace(": ", ": " + " " * 3000, 1),
])
def test_a_layout_wider_than_a_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    """The fixed-width layout learnt from a first line with a 5000-digit cpu, or an
    event column 3000 characters wide, reads a block shorter than that column (was
    an IndexError in the block reader)."""
    lines = [first, _perf_line(100_000_002, "kmem:rss_stat", _RSS.format(8192))]
    result, _ = _both_readers(tmp_path, monkeypatch, lines)
    assert result.unknown_lines == 0 and result.events["rss_stat"] == 2
