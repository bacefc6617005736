"""``memtrace trace`` and ``memtrace tools``, run in-process.

Output is checked against text typed out from bpftrace's formats and counts
computed independently from the same trace (a Python loop over its events, with a
pid->comm table kept by hand). A live scenario and its recording must print the
same. Errors go through ``memtrace.cli.main``: one line (plus the program and a
caret for program errors) on stderr, exit 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from memtrace.cli import main
from memtrace.tracer.tools import tool_names
from memtrace.tracer.tracefile import TraceReader
from tests.cli import invoke, ok
from tests.tracer.helpers import pressure_stream
from tests.tracer.programs import MIXED_TOML


def fails(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str], code: int = 1) -> list[str]:
    """Run through main(): the exit code, no traceback, nothing on stdout; stderr lines."""
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == code, err
    assert "Traceback" not in out + err
    assert out == ""
    return err.splitlines()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The scenario TOML and its recording."""
    from memtrace.api import record

    d = tmp_path_factory.mktemp("cli-trace")
    toml = d / "mixed.toml"
    toml.write_text(MIXED_TOML)
    record(str(toml), d / "mixed.mtrace")
    return toml, d / "mixed.mtrace"


def fault_counts(trace: Path) -> Counter[tuple[Any, ...]]:
    """faults' map computed by hand: comm from process_start/fork, one event at a time."""
    comms: dict[int, str] = {}
    counts: Counter[tuple[Any, ...]] = Counter()
    for rec in TraceReader(trace).events():
        f = rec.fields
        if rec.name == "process_start":
            comms[f["pid"]] = f["comm"]
        elif rec.name == "fork":
            comms[f["child_pid"]] = f["child_comm"]
        elif rec.name == "page_fault":
            counts[(comms[f["pid"]], f["pid"], f["vma_kind"], "major" if f["major"] else "minor")] += 1
    return counts


# ----------------------------------------------------------------------------- tools


def test_tools_lists_every_tool_narrowly() -> None:
    out = ok("tools")
    lines = out.splitlines()
    assert lines[0].split() == ["TOOL", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == tool_names()
    assert all(len(line) < 80 for line in lines)
    listed = json.loads(ok("tools", "--json"))
    assert [t["name"] for t in listed] == tool_names()
    assert listed[0]["usage"] == "memtrace trace TARGET -t cacheadd"


def test_tools_name_shows_program_and_example() -> None:
    out = ok("tools", "oomkill")
    assert "oom_kill" in out and "Demonstrations of oomkill" in out
    doc = json.loads(ok("tools", "oomkill", "--json"))
    assert doc["summary"].startswith("Trace OOM kills") and "Triggered by PID" in doc["program"]


def test_unknown_tool_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = fails(capsys, "tools", "oomkil")
    assert line.startswith("memtrace: unknown tool 'oomkil' (did you mean 'oomkill'?)")


# ----------------------------------------------------------------------------- trace


def test_trace_file_with_a_tool_prints_maps_sorted_by_value(mixed: tuple[Path, Path]) -> None:
    _, trace = mixed
    counts = fault_counts(trace)
    expected = "Attaching 1 probe...\n" + "".join(
        f"@faults[{', '.join(str(p) for p in k)}]: {v}\n"
        for k, v in sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))) + "\n"
    assert ok("trace", trace, "-t", "faults") == expected


def test_trace_json_is_one_object_per_output(mixed: tuple[Path, Path]) -> None:
    _, trace = mixed
    out = ok("trace", trace, "--json", "-e",
             r'fork { printf("fork %d\n", child_pid); } page_fault { @[comm, vma_kind] = count(); '
             r'@us = hist(nsecs / 1000); } END { printf("end\n"); }')
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs[0] == {"type": "attached_probes", "data": {"probes": 3}}
    forks = [r.fields["child_pid"] for r in TraceReader(trace).events() if r.name == "fork"]
    assert objs[1:1 + len(forks)] == [{"type": "printf", "data": f"fork {c}\n"} for c in forks]
    assert objs[1 + len(forks)] == {"type": "printf", "data": "end\n"}
    maps = {o["type"]: o["data"] for o in objs[2 + len(forks):]}
    by_comm_kind: Counter[str] = Counter()
    for (comm, _, kind, _), n in fault_counts(trace).items():
        by_comm_kind[f"{comm},{kind}"] += n
    assert maps["map"] == {"@": dict(sorted(by_comm_kind.items(), key=lambda kv: (kv[1], kv[0])))}
    assert sum(b["count"] for b in maps["hist"]["@us"]) == sum(by_comm_kind.values())
    assert set(maps["hist"]["@us"][0]) <= {"min", "max", "count"}


PROGRAMS = [
    ("-t", "faults"),
    ("-t", "cowstat"),
    ("-t", "cacheadd"),
    ("-e", r'page_fault { @ = count(); } interval:ms:30 { printf("%d %d\n", nsecs, @); clear(@); }'),
    ("-e", r'fork, exit { printf("%s %s %d\n", probe, comm, pid); } '
           r'page_fault /major/ { @lat[comm] = hist(nsecs / 1000); @l = lhist(pid, 95, 110, 2); }'),
]


@pytest.mark.parametrize(("flag", "program"), PROGRAMS)
def test_live_scenario_and_its_recording_print_the_same(mixed: tuple[Path, Path], flag: str, program: str) -> None:
    toml, trace = mixed
    live = ok("trace", toml, flag, program)
    assert live == ok("trace", trace, flag, program)
    assert live.count("\n") > 2


def test_program_from_a_file(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    _, trace = mixed
    prog = tmp_path / "cow.bt"
    prog.write_text("#!/usr/bin/env -S memtrace trace -f\n// COW by kind\ncow\n{\n\t@[vma_kind] = count();\n}\n")
    out = ok("trace", trace, "-f", prog)
    kinds = Counter(r.fields["vma_kind"] for r in TraceReader(trace).events() if r.name == "cow")
    assert out == "Attaching 1 probe...\n" + "".join(
        f"@[{k}]: {v}\n" for k, v in sorted(kinds.items(), key=lambda kv: (kv[1], kv[0]))) + "\n"


def test_oomkill_reclaimlat_kswapdwake_on_a_hand_built_trace(tmp_path: Path) -> None:
    trace = pressure_stream().write(tmp_path / "pressure.mtrace")
    assert ok("trace", trace, "-t", "oomkill") == (
        "Attaching 2 probes...\n"
        "Tracing OOM kills...\n"
        '00:00:00 Triggered by PID 101 ("leaker"), OOM kill of PID 101 ("leaker"), 1019648 pages\n'
        '01:02:03 Triggered by PID 102 ("worker"), OOM kill of PID 100 ("db"), 24576 pages\n')
    lat = ok("trace", trace, "-t", "reclaimlat")
    assert "@usecs[direct]:\n[2, 4)                 1 |" in lat
    assert lat.endswith("@reclaimed_pages[memcg]: 5\n@reclaimed_pages[direct]: 37\n\n")
    wakes = ok("trace", trace, "-t", "kswapdwake").splitlines()
    assert wakes[1].split() == ["TIME_MS", "WAKES", "RECLAIMED"]
    assert wakes[2:5] == ["100               1          300", "200               3           30",
                          "300               0           40"]


# ----------------------------------------------------------------------------- errors


def test_parse_error_shows_program_and_caret_exit_1(capsys: pytest.CaptureFixture[str],
                                                    mixed: tuple[Path, Path]) -> None:
    _, trace = mixed
    lines = fails(capsys, "trace", trace, "-e", "page_fault { @[foo] = count(); }")
    assert lines == [
        "memtrace: -e:1:16: unknown field 'foo' of page_fault (fields: seq, ts_ns, pid, address, write, major, "
        "vma_kind, pfn)",
        "page_fault { @[foo] = count(); }",
        "               ^~~",
    ]
    lines = fails(capsys, "trace", trace, "-e", "page_fault /pid == / { @ = count(); }")
    assert lines[0] == "memtrace: -e:1:20: expected an expression but found '/'"
    assert lines[2] == " " * 19 + "^"


def test_error_in_a_program_file_names_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 mixed: tuple[Path, Path]) -> None:
    prog = tmp_path / "bad.bt"
    prog.write_text("cow\n{\n  @[vma_kind] = count();\n  @[pid] = count();\n}\n")
    lines = fails(capsys, "trace", prog, mixed[1])
    assert lines == [f"memtrace: {prog}:4:5: @ is keyed by [str] elsewhere; this key is int",
                     "  @[pid] = count();",
                     "    ^~~"]


def test_wrong_program_options_are_usage_errors(capsys: pytest.CaptureFixture[str],
                                                mixed: tuple[Path, Path]) -> None:
    _, trace = mixed
    with pytest.raises(SystemExit) as exc:
        main(["trace", os.fspath(trace)])
    assert exc.value.code == 2
    assert f"{trace} is a trace, not a program: give the program first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["trace", os.fspath(trace), "-e", "BEGIN { }", "-t", "faults"])
    assert exc.value.code == 2
    assert "give one program: -e and -t both name one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["trace", "prog.bt", os.fspath(trace), "-e", "BEGIN { }"])
    assert exc.value.code == 2
    assert "with -e the program is given: one TRACE (or scenario) follows" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["trace"])
    assert exc.value.code == 2
    assert "no program: give a program file (memtrace trace PROGRAM.bt TRACE)" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "start"), [
    (["trace", "nosuch-scenario", "-t", "faults"], "memtrace: unknown scenario 'nosuch-scenario'"),
    (["trace", "missing.mtrace", "-t", "faults"], "memtrace: cannot read missing.mtrace: no such file"),
    (["trace", "private-anon-mapping", "-t", "nosuch"], "memtrace: unknown tool 'nosuch'"),
    (["trace", "/nonexistent/x.bt", "private-anon-mapping"], "memtrace: cannot read program /nonexistent/x.bt"),
])
def test_bad_targets_and_programs_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str],
                                               start: str) -> None:
    (line,) = fails(capsys, *args)
    assert line.startswith(start)


def test_sysctl_applies_to_live_scenarios_only(capsys: pytest.CaptureFixture[str], mixed: tuple[Path, Path]) -> None:
    (line,) = fails(capsys, "trace", mixed[1], "-t", "faults", "--sysctl", "vm.swappiness=10")
    assert "--sysctl applies to live scenarios" in line


def test_help_has_examples() -> None:
    for cmd in ("trace", "tools"):
        assert "Examples:" in ok(cmd, "--help")


def test_program_file_first_then_trace_and_output_to_a_file(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    """bpftrace's order (program file, then trace), -f json and -o FILE: the file
    holds what stdout would; -o naming the trace is refused."""
    prog = tmp_path / "cow.bt"
    prog.write_text("cow { @[vma_kind] = count(); }\n")
    stdout = ok("trace", prog, mixed[1], "-f", "json")
    out = tmp_path / "out.json"
    assert ok("trace", prog, mixed[1], "-f", "json", "-o", out) == ""
    assert out.read_text() == stdout
    assert json.loads(stdout.splitlines()[0]) == {"type": "attached_probes", "data": {"probes": 1}}
    result = invoke("trace", prog, mixed[1], "-o", mixed[1])
    assert result.exit_code == 1 and "would overwrite the input" in str(result.exception)
    # -o goes through the safe writer: a failed run leaves the old file as it was and
    # nothing beside it; a symlink planted at the output's temporary names is never met
    before = out.read_bytes()
    bad = tmp_path / "bad.bt"
    bad.write_text("cow { @[nosuchfield] = count(); }\n")
    assert invoke("trace", bad, mixed[1], "-o", out).exit_code == 1
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    ok("trace", prog, mixed[1], "-o", out)
    assert out.read_text().startswith("Attaching 1 probe")


def test_old_program_flag_still_works_with_a_note(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    prog = tmp_path / "cow.bt"
    prog.write_text("cow { @[vma_kind] = count(); }\n")
    old = invoke("trace", mixed[1], "-f", prog)
    assert old.exit_code == 0
    assert old.stdout == ok("trace", prog, mixed[1])
    assert "-f FILE is deprecated for the program file" in old.stderr


def test_pid_and_command_are_the_running_kernels(capsys: pytest.CaptureFixture[str], mixed: tuple[Path, Path]) -> None:
    lines = fails(capsys, "trace", mixed[1], "-e", "BEGIN { }", "-p", "1", code=2)
    assert "trace the running kernel, not" in lines[0] and "/pid == N/" in lines[0]


def test_list_probes_as_json() -> None:
    listed = json.loads(ok("trace", "-l", "t*:kmem:*", "--json"))
    assert [r["probe"] for r in listed] == ["tracepoint:kmem:rss_stat"]
    assert listed[0]["fields"][0] == {"type": "unsigned int", "name": "mm_id",
                                      "source": "not recorded: memtrace names the mm by its owner: args.mm_pid"}


REAL_RECLAIM = """# tracer: nop
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
  leaky-8318    [000] .....  4592.320423: mm_vmscan_memcg_reclaim_begin: order=0 gfp_flags=GFP_HIGHUSER_MOVABLE
  leaky-8318    [000] .....  4592.320539: mm_vmscan_memcg_reclaim_end: nr_reclaimed=32
  leaky-8318    [000] .....  4592.330000: mm_vmscan_memcg_reclaim_begin: order=0 gfp_flags=GFP_HIGHUSER_MOVABLE
  leaky-8318    [000] .....  4592.330900: mm_vmscan_memcg_reclaim_end: nr_reclaimed=0
"""


def test_reclaimlat_says_a_simulated_latency_is_the_models_cost(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    """On a simulated trace (a recording, or a scenario run live) reclaimlat says its
    latency is the model's cost; on a real kernel's trace it says nothing and times
    what the kernel took: 116 us and 900 us here."""
    from memtrace.api import import_trace

    for target in (mixed[1], mixed[0]):
        result = invoke("trace", target, "-t", "reclaimlat")
        assert result.exit_code == 0
        assert "memtrace: note: reclaimlat: on a simulated trace the latency is the model's cost of the reclaim" \
            in result.stderr
    src = tmp_path / "real.txt"
    src.write_text(REAL_RECLAIM)
    import_trace(src, tmp_path / "real.mtrace", format="ftrace")
    result = invoke("trace", tmp_path / "real.mtrace", "-t", "reclaimlat")
    assert result.exit_code == 0 and "note" not in result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines() if line.startswith("[")]
    assert rows == [["[64,", "128)", "1"], ["[128,", "256)", "0"], ["[256,", "512)", "0"], ["[512,", "1K)", "1"]]
    assert "@reclaimed_pages[memcg]: 32" in result.stdout
