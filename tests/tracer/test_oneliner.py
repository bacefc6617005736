"""The one-liner language: parser, type errors with carets, and results.

Every result is checked against a computation made independently of the engine,
from the same trace: numpy over the raw columns of the trace's batches, or a
Python loop over its events one at a time (``collections.Counter``, a pid->comm
dict built by hand from process_start and fork records, ``int.bit_length`` for
histogram slots). The traces are a small recorded scenario with four processes
and a fork (TOML below), the built-in sample traces, and hand-built streams of the
memory-pressure tracepoints (kswapd, reclaim, OOM) through a real Bus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.errors import ParseError
from memtrace.tracer import EventBatch
from memtrace.tracer.oneliner import ProgramError, compile_program, parse
from memtrace.tracer.oneliner.nodes import Binary, Ternary
from memtrace.tracer.oneliner.parser import MAX_NESTING
from memtrace.tracer.probes import MapOutput, PrintfOutput, render_text, run_batches
from memtrace.tracer.tools import load_tool, tool_names
from memtrace.tracer.tracefile import TraceReader

from .test_probes import MS, Stream, pressure_stream

ROOT = Path(__file__).resolve().parents[2]

#: Four processes: anonymous writes, a file read then mapped private and written
#: (major faults, COW), and a parent whose forked child writes shared pages (COW).
MIXED_TOML = """\
name = "mixed"
description = "three processes and a fork"

[machine]
ram = "2GiB"

[[file]]
path = "/data/a.bin"
size = "8MiB"

[[process]]
name = "anon"
steps = [
  { op = "mmap", handle = "buf", length = "6MiB", prot = "rw" },
  { op = "touch", handle = "buf", write = true },
  { op = "sleep", duration = "150ms" },
  { op = "touch", handle = "buf" },
  { op = "munmap", handle = "buf" },
]

[[process]]
name = "filer"
steps = [
  { op = "read", file = "/data/a.bin", length = "2MiB" },
  { op = "mmap", handle = "m", file = "/data/a.bin", length = "8MiB", prot = "rw" },
  { op = "touch", handle = "m" },
  { op = "touch", handle = "m", write = true, length = "3MiB" },
  { op = "write", file = "/data/out.log", length = "1MiB" },
]

[[process]]
name = "parent"
steps = [
  { op = "mmap", handle = "d", length = "4MiB", prot = "rw" },
  { op = "touch", handle = "d", write = true },
  { op = "fork", child = "kid" },
  { op = "wait", child = "kid" },
]

[[process]]
name = "kid"
forked = true
steps = [
  { op = "touch", handle = "d", write = true, length = "1MiB" },
  { op = "sleep", duration = "120ms" },
]
"""


class Trace:
    """A recorded trace's batches in seq order, and independent views of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        reader = TraceReader(path)
        self.registry = reader.registry
        self.batches: list[EventBatch] = list(reader.ordered_batches())

    def of(self, name: str) -> list[EventBatch]:
        return [b for b in self.batches if b.tp.name == name]

    def column(self, tp: str, field: str) -> np.ndarray:
        cols = [np.asarray(b.columns[field]) for b in self.of(tp)]
        return np.concatenate(cols) if cols else np.zeros(0)

    def records(self) -> Iterable[tuple[str, dict[str, Any], dict[int, str], dict[int, str]]]:
        """Each event with the pid->comm and ino->path tables as of that event,
        kept by hand (process_start/fork/exit; file_open/mmap)."""
        comms: dict[int, str] = {0: "swapper/0"}
        paths: dict[int, str] = {}
        for b in self.batches:
            for rec in b.records():
                f = rec.fields
                if rec.name in ("process_start", "exit"):
                    comms[f["pid"]] = f["comm"]
                elif rec.name == "fork":
                    comms[f["child_pid"]] = f["child_comm"]
                elif rec.name == "file_open" or (rec.name == "mmap" and f["ino"] and f["path"]):
                    paths[f["ino"]] = f["path"]
                yield rec.name, f, comms, paths


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    from memtrace.api import record

    d = tmp_path_factory.mktemp("mixed")
    (d / "mixed.toml").write_text(MIXED_TOML)
    record(str(d / "mixed.toml"), d / "mixed.mtrace")
    return Trace(d / "mixed.mtrace")


def run(program: str, batches: list[EventBatch], registry: Any = None) -> list[Any]:
    tracer = compile_program(program, registry=registry)
    run_batches(tracer, batches)
    return tracer.outputs


def maps_of(outputs: list[Any]) -> dict[str, dict[Any, Any]]:
    return {o.name: dict(o.entries) for o in outputs if isinstance(o, MapOutput)}


def printed(outputs: list[Any]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, PrintfOutput)]


def map_text(name: str, counts: dict[Any, int]) -> str:
    """bpftrace's text for an int map, sorted by value then key, typed out."""
    def key_text(k: Any) -> str:
        return ", ".join(str(p) for p in (k if isinstance(k, tuple) else (k,)))

    lines = [f"{name}[{key_text(k)}]: {v}\n" for k, v in sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))]
    return "".join(lines) + "\n"


def slot(v: int) -> int:
    return 0 if v < 0 else 1 if v == 0 else v.bit_length() + 1


# ----------------------------------------------------------------------------- parsing


def test_operators_follow_c_precedence_and_semantics() -> None:
    s = Stream().emit("page_fault", 5, 7)
    prog = r'''page_fault {
        printf("%d %d %d %d %d %d\n", 1 + 2 * 3, (1 + 2) * 3, 7 / 2, -7 / 2, -7 % 3, 7 % 0);
        printf("%d %d %d %d %d %d\n", 1 << 4 | 1, 6 & 3 ^ 1, !0 + !5, ~0, 5 / 0, 2 - 3 - 4);
        printf("%d %d %d %d\n", 1 < 2 == 1, 3 > 2 && 0 || 4, pid == 7 ? 10 : 20, 0 ? 1 : 0 ? 2 : 3);
        printf("%d %d %d\n", (pid / 2) * 2, pid % 4, -pid);
    }'''
    assert printed(run(prog, s.batches)) == ["7 9 3 -3 -1 7\n", "17 3 1 -1 0 -5\n", "1 1 10 3\n", "6 3 -7\n"]


def test_parse_tree_shapes() -> None:
    probe = parse("page_fault /a || b && c == 1 + 2 * 3/ { @x = a ? b : c ? d : e; }").probes[0]
    pred = probe.predicate
    assert isinstance(pred, Binary) and pred.op == "||"
    assert isinstance(pred.right, Binary) and pred.right.op == "&&"
    eq = pred.right.right
    assert isinstance(eq, Binary) and eq.op == "==" and isinstance(eq.right, Binary) and eq.right.op == "+"
    value = probe.body[0].value  # type: ignore[union-attr]
    assert isinstance(value, Ternary) and isinstance(value.orelse, Ternary)


def test_syntax_comments_shebang_lists_globs_and_divide_in_predicate(mixed: Trace) -> None:
    prog = """#!/usr/bin/env -S memtrace trace -f
    // counts by tracepoint
    /* a list, a glob, a prefixed name */
    cow, page_*, tracepoint:fork
    /(pid / 1) > 0/
    {
        @[probe] = count();;
    }
    """
    got = maps_of(run(prog, mixed.batches))["@"]
    expected = {name: sum(b.n for b in mixed.of(name) if (np.asarray(b.columns["pid"]) > 0).all())
                for name in ("cow", "page_fault", "page_cache_add", "page_cache_delete", "fork")}
    assert got == {k: v for k, v in expected.items() if v}
    tracer = compile_program(prog)
    assert tracer.nr_probes == 5


ERRORS = [
    ("page_fault { @[foo] = count(); }", "unknown field 'foo' of page_fault", 16, 3),
    ("page_falt { @ = count(); }", "no tracepoint matches 'page_falt' (did you mean 'page_fault'?)", 1, 9),
    ('page_fault /vma_kind == "anon"/ { @ = count(); }', "'anon' is not a value of vma_kind", 25, 6),
    ('page_fault /comm > "x"/ { @ = count(); }', "strings compare only with == and !=", 18, 1),
    ("page_fault { @x = count(); @x = hist(pid); }", "@x holds count() values elsewhere", 33, 9),
    ('page_fault { printf("%d\\n", comm); }', "%d needs an integer, not a string", 29, 4),
    ('page_fault { printf("%s %d\\n", comm); }', "format has 2 conversion(s) but 1 argument(s)", 14, 23),
    ("page_fault { @x[pid] = count(); @x[comm] = count(); }", "@x is keyed by [int] elsewhere", 36, 4),
    ("page_fault { @ = count() }\n  cow { @y = 1 +; }", "expected an expression but found ';'", 17, 1),
    ("page_fault { @ = count() @y = 1 }", "expected ';' or '}' after the statement", 26, 2),
    ("BEGIN { printf(\"%d\", address) }", "BEGIN probes have no fields", 22, 7),
    ("page_fault { @a = @b; }", "map @b is never assigned", 19, 2),
    ("page_fault { prinft(\"x\") }", "unknown function prinft() (did you mean", 14, 6),
    ("page_fault /pid / 2 == 50/ { @ = count() }", "divide in parentheses", 19, 1),
    ('page_fault { @s = "a" + 1; }', "'+' needs integers, not a string", 19, 3),
    ("interval:xs:100 { }", "bad interval unit 'xs'", 1, 15),
    ("page_fault { @h = hist(comm) }", "hist() needs an integer, not a string", 24, 4),
    ("page_fault { @ = lhist(pid, 0, 100, 0) }", "lhist() step must be positive", 37, 1),
    ("page_fault { $x = 1; $x = \"a\" }", "$x holds int values; cannot assign str", 27, 3),
    ("page_fault { printf(\"%d\", $y) }", "variable $y is used before it is assigned", 27, 2),
    ('page_fault { @ = "unterminated }', "unterminated string", 18, 15),
    ('page_fault { @h[pid] = hist(pid); printf("%d", @h[1]) }', "@h holds hist() histograms", 48, 5),
    ("", "empty program", 1, 1),
    # Bounds: what would write gigabytes, take hours or mean nothing is refused.
    ('page_fault { printf("%999999999d\\n", pid); }', "printf field width 999999999 in '%999999999d' is more",
     21, 15),
    ('page_fault { printf("pid %-8.1001s\\n", comm); }', "printf field precision 1001", 21, 17),
    ("page_fault { @m[pid] = count(); } END { print(@m, 1, 99999999999); }",
     "print() div must be a constant integer from 0 to 4294967295, not 99999999999", 54, 11),
    ("page_fault { @m[pid] = count(); } END { print(@m, -1); }", "print() top must be a constant integer", 51, 2),
    ("page_fault { @m[pid] = count(); } END { print(@m, pid); }", "print() top must be a constant integer", 51, 3),
    ("BEGIN { @x = 1e99999999; }", "integer too large for 64 bits", 14, 10),
    ("BEGIN { @x = 123456789012345678901234567890; }", "integer too large for 64 bits", 14, 30),
]


@pytest.mark.parametrize(("program", "message", "col", "width"), ERRORS)
def test_errors_name_the_problem_and_put_a_caret_under_it(program: str, message: str, col: int, width: int) -> None:
    with pytest.raises(ProgramError) as info:
        compile_program(program)
    e = info.value
    assert isinstance(e, ParseError)
    head, line, caret = str(e).split("\n")
    assert message in head
    assert head.startswith(f"-e:{e.line}:{col}: ")
    assert line == program.split("\n")[e.line - 1]
    assert caret == " " * (col - 1) + "^" + "~" * (width - 1)


def test_an_error_on_a_long_line_shows_a_window_around_the_caret() -> None:
    """A generated program can be one line of megabytes: the error shows 160
    characters of it around the problem, cut ends marked '...'."""
    program = "page_fault { @x = " + " + ".join(["pid"] * 45) + " + nope + " + " + ".join(["pid"] * 45) + "; }"
    with pytest.raises(ProgramError) as info:
        compile_program(program)
    head, line, caret = str(info.value).split("\n")
    assert head.startswith(f"-e:1:{program.index('nope') + 1}: unknown field 'nope' of page_fault")
    assert line.startswith("...") and line.endswith("...") and len(line) == 166
    assert caret == " " * (len(caret) - 4) + "^~~~" and line[len(caret) - 4:len(caret)] == "nope"


def test_error_in_a_program_file_names_file_and_line() -> None:
    src = "page_fault\n{\n\t@[comm] = count(nope);\n}\n"
    with pytest.raises(ProgramError) as info:
        compile_program(src, filename="tool.bt")
    assert str(info.value).splitlines() == [
        "tool.bt:3:12: count() takes no arguments, got 1",
        "\t@[comm] = count(nope);",
        "\t          ^~~~~~~~~~~",
    ]


# ----------------------------------------------------------------------------- nesting

#: Programs nested ``n`` deep, by construct: each builds one level per ``n``.
NESTED = {
    "parentheses": lambda n: "page_fault { @x = " + "(" * n + "pid" + ")" * n + "; }",
    "chain": lambda n: "page_fault { @x = " + " + ".join(["pid"] * n) + "; }",
    "unary": lambda n: "page_fault { @x = " + "!" * n + "pid; }",
    "ternary": lambda n: "page_fault { @x = " + "pid > 1 ? " * n + "pid" + " : 2" * n + "; }",
    "if": lambda n: "page_fault { " + "if (pid > 0) { " * n + "@x = count();" + " }" * n + " }",
    "else if": lambda n: ("page_fault { if (pid == -1) { @x[-1] = count(); }"
                          + "".join(f" else if (pid == {i}) {{ @x[{i}] = count(); }}" for i in range(n)) + " }"),
}


@pytest.mark.parametrize("n", [5_000, 10_000])
@pytest.mark.parametrize("construct", sorted(NESTED))
def test_a_program_nested_too_deeply_is_a_parse_error_with_a_caret(construct: str, n: int) -> None:
    """5,000 parentheses, a 10,000-term chain, ifs inside ifs: one ProgramError
    (not a RecursionError) with the caret on the token past the limit."""
    program = NESTED[construct](n)
    with pytest.raises(ProgramError) as info:
        compile_program(program)
    e = info.value
    assert e.message.startswith(f"program nests too deeply (more than {MAX_NESTING} levels")
    head, line, caret = str(e).split("\n")
    assert head == f"-e:1:{e.col}: {e.message}"
    # A window of the (one, long) line, the caret under the token at the column.
    assert len(line) <= 166 and line.startswith("...") and caret.strip()[0] == "^"
    assert line[caret.index("^")] == program[e.col - 1] not in " ;}"


def test_the_caret_of_a_deep_nesting_is_on_the_first_level_too_many() -> None:
    """The statement's expression starts at the first parenthesis, level 1: the k-th
    parenthesis opens level k, and the 101st is the first one too many."""
    program = NESTED["parentheses"](5_000)
    with pytest.raises(ProgramError) as info:
        parse(program)
    assert info.value.col == len("page_fault { @x = ") + MAX_NESTING + 1


@pytest.mark.parametrize("construct", sorted(NESTED))
def test_a_program_at_the_nesting_limit_runs_as_its_shallow_equivalent(construct: str) -> None:
    """Nested just under the limit, each construct parses, compiles and runs over a
    sample trace (no RecursionError in the compiled closures) and gives what a
    shallow program computes: pid, pid * n, !!pid, pid or 2, a count of faults, a
    count by pid. (A ternary takes three levels: the '?' and both branches.)"""
    n = {"parentheses": 98, "chain": 98, "unary": 98, "ternary": 33, "if": 90, "else if": 95}[construct]
    trace = TraceReader(ROOT / "sample_traces" / "fork-cow.mtrace")
    tracer = compile_program(NESTED[construct](n))
    run_batches(tracer, trace.ordered_batches())
    shallow = {"parentheses": "page_fault { @x = pid; }", "chain": f"page_fault {{ @x = pid * {n}; }}",
               "unary": "page_fault { @x = " + ("!!" if n % 2 == 0 else "!") + "pid; }",
               "ternary": "page_fault { @x = pid > 1 ? pid : 2; }",
               "if": "page_fault { if (pid > 0) { @x = count(); } }",
               "else if": f"page_fault {{ if (pid == -1 || (pid >= 0 && pid < {n})) {{ @x[pid] = count(); }} }}",
               }[construct]
    want = compile_program(shallow)
    run_batches(want, trace.ordered_batches())
    assert dict(tracer.maps["@x"]) == dict(want.maps["@x"])


# ----------------------------------------------------------------------------- results


def test_count_by_enum_prints_names(mixed: Trace) -> None:
    out = run("page_fault { @[vma_kind] = count(); }", mixed.batches)
    codes = mixed.column("page_fault", "vma_kind")
    values = mixed.registry["page_fault"].field("vma_kind").values
    uniq, counts = np.unique(codes, return_counts=True)
    expected = {values[c]: int(n) for c, n in zip(uniq.tolist(), counts.tolist())}
    assert maps_of(out)["@"] == expected
    assert render_text(out[0]) == map_text("@", expected)
    assert "@[anon_private]: " in render_text(out[0])


def test_predicates_with_and_or_and_parentheses(mixed: Trace) -> None:
    prog = 'page_fault /write && (vma_kind == "anon_private" || vma_kind == "file_private")/ { @[pid] = count(); }'
    kind = mixed.column("page_fault", "vma_kind")
    values = mixed.registry["page_fault"].field("vma_kind").values
    mask = mixed.column("page_fault", "write").astype(bool) & (
        (kind == values.index("anon_private")) | (kind == values.index("file_private")))
    pids, counts = np.unique(mixed.column("page_fault", "pid")[mask], return_counts=True)
    assert maps_of(run(prog, mixed.batches))["@"] == dict(zip(pids.tolist(), counts.tolist()))
    assert mask.sum() > 0 and (~mask).sum() > 0


def test_comm_compare_and_comm_keys_follow_process_and_fork_events(mixed: Trace) -> None:
    prog = 'page_fault /comm == "kid" || major/ { @[comm, major] = count(); } ' \
           'cow /comm != "kid"/ { @cow[comm] = count(); }'
    expected: Counter[tuple[str, int]] = Counter()
    cows: Counter[str] = Counter()
    for name, f, comms, _ in mixed.records():
        comm = comms.get(f["pid"], "[unknown]")
        if name == "page_fault" and (comm == "kid" or f["major"]):
            expected[(comm, int(f["major"]))] += 1
        elif name == "cow" and comm != "kid":
            cows[comm] += 1
    got = maps_of(run(prog, mixed.batches))
    assert got["@"] == dict(expected) and got["@cow"] == dict(cows)
    assert {k[0] for k in expected} == {"kid", "filer"}


def test_sum_min_max_avg_stats_on_rss_stat(mixed: Trace) -> None:
    prog = ("rss_stat { @mx[mm_pid, member] = max(size_bytes); @mn[member] = min(size_bytes); "
            "@a = avg(size_bytes); @s[member] = stats(size_bytes); @t[comm] = sum(size_bytes / 4096); }")
    by_key: dict[Any, list[int]] = defaultdict(list)
    by_member: dict[str, list[int]] = defaultdict(list)
    by_comm: dict[str, int] = defaultdict(int)
    every = []
    for name, f, comms, _ in mixed.records():
        if name != "rss_stat":
            continue
        v = f["size_bytes"]
        by_key[(f["mm_pid"], f["member"])].append(v)
        by_member[f["member"]].append(v)
        by_comm[comms.get(f["pid"], "[unknown]")] += int(v / 4096)
        every.append(v)
    got = maps_of(run(prog, mixed.batches))
    assert got["@mx"] == {k: max(v) for k, v in by_key.items()}
    assert got["@mn"] == {k: min(v) for k, v in by_member.items()}
    assert got["@a"] == {(): sum(every) // len(every)}
    assert {k: tuple(v) for k, v in got["@s"].items()} == \
        {k: (len(v), sum(v) // len(v), sum(v)) for k, v in by_member.items()}
    assert got["@t"] == dict(by_comm)


def test_hist_and_lhist_buckets(mixed: Trace) -> None:
    out = run("page_fault { @h = hist((address >> 12) & 1023); @l[vma_kind] = lhist(pfn % 1000, 0, 1000, 100); }",
              mixed.batches)
    addr = mixed.column("page_fault", "address").astype(np.int64)
    vals = ((addr >> 12) & 1023).tolist()
    slots = Counter(slot(v) for v in vals)
    h = maps_of(out)["@h"][()]
    assert h.counts == tuple(slots.get(i, 0) for i in range(65))
    pfn = mixed.column("page_fault", "pfn").astype(np.int64)
    kinds = mixed.column("page_fault", "vma_kind")
    names = mixed.registry["page_fault"].field("vma_kind").values
    lin: dict[str, Counter[int]] = defaultdict(Counter)
    for k, p in zip(kinds.tolist(), (pfn % 1000).tolist()):
        lin[names[k]][p // 100 + 1] += 1
    got = maps_of(out)["@l"]
    assert {k: v.counts for k, v in got.items()} == {k: tuple(c.get(i, 0) for i in range(12)) for k, c in lin.items()}
    text = render_text(next(o for o in out if o.name == "@h"))
    assert text.startswith("@h:\n[") and text.endswith("|\n\n")


def test_page_cache_additions_by_path(mixed: Trace) -> None:
    expected: Counter[str] = Counter()
    for name, f, _, paths in mixed.records():
        if name == "page_cache_add":
            expected[paths.get(f["ino"], f"[ino {f['ino']}]")] += 1
    got = maps_of(run("page_cache_add { @[path(ino)] = count(); }", mixed.batches))["@"]
    assert got == dict(expected) and "/data/a.bin" in got


def test_printf_per_event_in_order_with_strings_and_fields(mixed: Trace) -> None:
    prog = r'fork, exit { printf("%s %s %d %-6s|\n", probe, comm, pid, probe == "fork" ? "fork" : "exit"); }'
    expected = [f"{name} {comms[f['pid']]} {f['pid']} {name:<6}|\n"
                for name, f, comms, _ in mixed.records() if name in ("fork", "exit")]
    assert printed(run(prog, mixed.batches)) == expected
    assert len(expected) == 5


def test_field_shadowed_by_a_builtin_through_args(mixed: Trace) -> None:
    out = run("exit { @[comm, args.comm, code] = count(); } fork { @k[comm(child_pid)] = count(); }", mixed.batches)
    expected = Counter((comms[f["pid"]], f["comm"], f["code"]) for name, f, comms, _ in mixed.records()
                       if name == "exit")
    assert maps_of(out)["@"] == dict(expected)
    assert maps_of(out)["@k"] == {"kid": 1}


def test_interval_lines_equal_a_clock_computed_by_hand(mixed: Trace) -> None:
    period = 40 * MS
    prog = 'page_fault { @ = count(); } interval:ms:40 { printf("%d %d\\n", nsecs / 1000000, @); clear(@); }'
    # Independent: the clock is the running maximum of every event's ts_ns, in seq
    # order; boundary k fires before the first event whose clock reaches k * period.
    ts = np.concatenate([np.asarray(b.columns["ts_ns"], dtype=np.int64) for b in mixed.batches])
    is_fault = np.concatenate([np.full(b.n, b.tp.name == "page_fault") for b in mixed.batches])
    clock = np.maximum.accumulate(ts)
    interval = clock // period
    last = int(clock[-1])
    expected = [f"{(k + 1) * period // MS} {int((is_fault & (interval == k)).sum())}\n"
                for k in range(last // period)]
    expected.append(f"{last // MS} {int((is_fault & (interval == last // period)).sum())}\n")
    assert printed(run(prog, mixed.batches)) == expected
    assert len(expected) >= 4


def test_builtins_nsecs_elapsed_strftime(mixed: Trace) -> None:
    out = run('fork { printf("%d %d %s\\n", nsecs, elapsed, strftime("%H:%M:%S.%f", nsecs)); }', mixed.batches)
    first_ts = int(np.asarray(mixed.batches[0].columns["ts_ns"])[0])
    (fork,) = [f for name, f, _, _ in mixed.records() if name == "fork"]
    ts = fork["ts_ns"]
    assert printed(out) == [f"{ts} {ts - first_ts} 00:00:00.{ts // 1000 % 1_000_000:06d}\n"]


def test_variables_if_else_and_ternary_per_row(mixed: Trace) -> None:
    prog = '''page_fault {
        $kb = 4;
        if (major) { $kind = "major"; $kb = 8; } else if (write) { $kind = "write"; } else { $kind = "read"; }
        @[$kind] = sum($kb);
        @n[$kind == "write" ? comm : "other"] = count();
    }'''
    sums: Counter[str] = Counter()
    n: Counter[str] = Counter()
    for name, f, comms, _ in mixed.records():
        if name != "page_fault":
            continue
        kind = "major" if f["major"] else "write" if f["write"] else "read"
        sums[kind] += 8 if f["major"] else 4
        n[comms[f["pid"]] if kind == "write" else "other"] += 1
    got = maps_of(run(prog, mixed.batches))
    assert got["@"] == dict(sums) and got["@n"] == dict(n)


def test_string_values_delete_and_clear(mixed: Trace) -> None:
    prog = ('process_start { @name[pid] = comm; } exit { @code[args.comm] = code; delete(@name[pid]); } '
            'END { print(@name); clear(@name); }')
    out = run(prog, mixed.batches)
    # Every started process exited: the map printed at END is empty.
    assert not [o for o in out if isinstance(o, MapOutput) and o.name == "@name" and o.entries]
    assert maps_of(out)["@code"] == {f["comm"]: f["code"] for name, f, _, _ in mixed.records() if name == "exit"}


def test_same_output_whatever_the_batch_boundaries() -> None:
    """Splitting a stream's batches anywhere changes nothing: hazards, intervals,
    printf order and histograms are batch-independent."""
    prog = r'''reclaim_begin { @start[pid] = nsecs; }
        reclaim_end /@start[pid]/ { @us = hist((nsecs - @start[pid]) / 1000); printf("%d %d\n", pid, nsecs - @start[pid]);
                                   delete(@start[pid]); }
        page_fault { @f[pid] = count(); if (@f[pid] == 3) { printf("third %d\n", pid); } }
        interval:ms:1 { printf("tick %d\n", nsecs); }'''
    rng = np.random.default_rng(23)
    s = Stream()
    t = 0
    for _ in range(23):
        k = int(rng.integers(1, 6))
        pids = rng.integers(100, 103, size=k).tolist()
        t += int(rng.integers(1, 400_000))
        kind = ("reclaim_begin", "reclaim_end", "page_fault")[int(rng.integers(0, 3))]
        s.emit(kind, [t + 1000 * i for i in range(k)], pids, n=k)
    whole = run(prog, s.batches)
    assert printed(whole)
    singles: list[EventBatch] = []
    for b in s.batches:
        singles.extend(b.select(np.arange(b.n) == i) for i in range(b.n))
    assert run(prog, singles) == whole


# ----------------------------------------------------------------------------- tools


def tool_outputs(name: str, batches: list[EventBatch], registry: Any = None) -> list[Any]:
    tool = load_tool(name)
    tracer = compile_program(tool.source, filename=tool.filename, registry=registry)
    run_batches(tracer, batches)
    return tracer.outputs


def test_every_tool_has_a_doc_and_an_example() -> None:
    assert tool_names() == ["cacheadd", "cowstat", "faults", "kswapdwake", "oomkill", "reclaimlat"]
    for name in tool_names():
        tool = load_tool(name)
        assert tool.doc.startswith(f"{name} - ") and "USAGE: memtrace trace TARGET -t " + name in tool.doc
        assert tool.example.startswith(f"Demonstrations of {name}")
        assert f"-t {name}" in tool.example
        compile_program(tool.source, filename=tool.filename)


def test_tool_faults(mixed: Trace) -> None:
    expected: Counter[tuple[Any, ...]] = Counter()
    for name, f, comms, _ in mixed.records():
        if name == "page_fault":
            expected[(comms[f["pid"]], f["pid"], f["vma_kind"], "major" if f["major"] else "minor")] += 1
    out = tool_outputs("faults", mixed.batches)
    assert maps_of(out)["@faults"] == dict(expected)
    assert render_text(out[0]) == map_text("@faults", dict(expected))


def test_tool_cowstat(mixed: Trace) -> None:
    expected = Counter((comms[f["pid"]], f["pid"], f["vma_kind"]) for name, f, comms, _ in mixed.records()
                       if name == "cow")
    assert maps_of(tool_outputs("cowstat", mixed.batches))["@cow"] == dict(expected)
    assert {k[0] for k in expected} == {"kid", "filer"}


@pytest.mark.parametrize("sample", ["posix-shm", "sysv-shm", "shared-anon-mapping", "page-cache-read"])
def test_tool_cacheadd_on_sample_traces(sample: str) -> None:
    trace = Trace(ROOT / "sample_traces" / f"{sample}.mtrace")
    pages: Counter[str] = Counter()
    shmem = 0
    for name, f, _, paths in trace.records():
        if name == "page_cache_add":
            pages[paths.get(f["ino"], f"[ino {f['ino']}]")] += 1
            shmem += bool(f["shmem"])
    got = maps_of(tool_outputs("cacheadd", trace.batches, trace.registry))
    assert got["@pages"] == dict(pages)
    assert got.get("@shmem_pages", {(): 0}) == {(): shmem}


def test_tool_reclaimlat_pairs_begin_and_end_per_pid() -> None:
    s = pressure_stream()
    # By hand: each end pairs with its pid's latest begin; latency in us.
    open_at: dict[int, int] = {}
    lat: dict[str, list[int]] = defaultdict(list)
    pages: Counter[str] = Counter()
    for rec in s.records():
        f = rec.fields
        if rec.name == "reclaim_begin":
            open_at[f["pid"]] = f["ts_ns"]
        elif rec.name == "reclaim_end" and open_at.get(f["pid"]):
            lat[f["kind"]].append((f["ts_ns"] - open_at.pop(f["pid"])) // 1000)
            pages[f["kind"]] += f["nr_reclaimed"]
    assert lat == {"direct": [3, 100, 400], "memcg": [70]}
    out = tool_outputs("reclaimlat", s.batches)
    got = maps_of(out)
    assert set(got) == {"@usecs", "@reclaimed_pages"}
    for kind, values in lat.items():
        slots = Counter(slot(v) for v in values)
        assert got["@usecs"][kind].counts == tuple(slots.get(i, 0) for i in range(65))
    assert got["@reclaimed_pages"] == dict(pages)
    text = "".join(render_text(o) for o in out)
    assert "@usecs[direct]:\n[2, 4)                 1 |" in text


def test_tool_kswapdwake_lines_per_100ms() -> None:
    s = pressure_stream()
    out = printed(tool_outputs("kswapdwake", s.batches))
    wakes: Counter[int] = Counter()
    reclaimed: Counter[int] = Counter()
    last = 0
    for rec in s.records():
        t = rec.fields["ts_ns"]
        last = max(last, t)
        if rec.name == "kswapd_wake":
            wakes[t // (100 * MS)] += 1
        elif rec.name == "kswapd_sleep":
            reclaimed[t // (100 * MS)] += rec.fields["nr_reclaimed"]
    nr = last // (100 * MS)
    expected = [f"{'TIME_MS':<10} {'WAKES':>8} {'RECLAIMED':>12}\n"]
    expected += [f"{(k + 1) * 100:<10d} {wakes[k]:>8d} {reclaimed[k]:>12d}\n" for k in range(nr)]
    expected.append(f"{last // MS:<10d} {wakes[nr]:>8d} {reclaimed[nr]:>12d}\n")
    assert out == expected
    assert out[1:4] == ["100               1          300\n", "200               3           30\n",
                        "300               0           40\n"]


def test_tool_oomkill_one_line_per_kill_like_bcc() -> None:
    s = pressure_stream()
    comms = {100: "db", 101: "leaker", 102: "worker"}
    expected = ["Tracing OOM kills...\n"]
    for rec in s.records("oom_kill"):
        f = rec.fields
        secs = f["ts_ns"] // 1_000_000_000
        hms = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        expected.append(f'{hms} Triggered by PID {f["pid"]} ("{comms[f["pid"]]}"), OOM kill of PID '
                        f'{f["victim_pid"]} ("{f["comm"]}"), {f["totalpages"]} pages\n')
    out = tool_outputs("oomkill", s.batches)
    assert printed(out) == expected
    assert expected[2] == '01:02:03 Triggered by PID 102 ("worker"), OOM kill of PID 100 ("db"), 24576 pages\n'
    assert not [o for o in out if isinstance(o, MapOutput)]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=20))
def test_count_by_pid_equals_bincount(pids: list[int]) -> None:
    s = Stream().emit("page_fault", list(range(len(pids))), pids, n=len(pids))
    got = maps_of(run("page_fault { @[pid] = count(); }", s.batches))["@"]
    counts = np.bincount(np.array(pids))
    assert got == {p: int(c) for p, c in enumerate(counts.tolist()) if c}


# ----------------------------------------------------------------------------- generated programs


class ProgramGen:
    """Random well-typed programs over page_fault and cow: integer and string
    expressions, map reads and writes of every kind, if/else, variables, printf,
    print, clear, zero, delete, exit."""

    INTS = ["pid", "nsecs", "address", "pfn", "major", "write", "3", "0", "-2", "@m[pid]", "@c", "$i", "elapsed",
            "@m[pfn % 3]"]
    STRS = ["comm", "vma_kind", '"anon_private"', '"x"', "path(pfn)", "comm(pid)", "$s", "@n[pid]", "probe"]
    OPS = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", ">=", "&&", "||"]

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def int_expr(self, d: int = 0) -> str:
        r = self.rng.random()
        if d > 2 or r < 0.35:
            return self.pick(self.INTS)
        if r < 0.75:
            return f"({self.int_expr(d + 1)} {self.pick(self.OPS)} {self.int_expr(d + 1)})"
        if r < 0.85:
            return f"{self.pick(['!', '-', '~'])}{self.int_expr(d + 1)}"
        if r < 0.92:
            return f"({self.int_expr(d + 1)} ? {self.int_expr(d + 1)} : {self.int_expr(d + 1)})"
        return f"({self.str_expr(d + 1)} == {self.str_expr(d + 1)})"

    def str_expr(self, d: int = 0) -> str:
        if d > 2 or self.rng.random() < 0.6:
            return self.pick(self.STRS)
        return f"({self.int_expr(d + 1)} ? {self.str_expr(d + 1)} : {self.str_expr(d + 1)})"

    def stmt(self, d: int = 0) -> str:
        r = self.rng.random()
        k = self.pick(["pid", "pfn % 3"])
        key = self.pick(["pid", "pfn % 3", "comm", "vma_kind", "pfn % 3, comm", "$i & 1"])
        e = self.int_expr
        choices = [
            (0.10, lambda: f"@m[{k}] = {e()}"),
            (0.16, lambda: "@c = count()"),
            (0.22, lambda: f"@h[{key}] = hist({e()})"),
            (0.28, lambda: f"@s[{key}] = {self.pick(['sum', 'min', 'max', 'avg', 'stats'])}({e()})"),
            (0.33, lambda: f"@n[pid] = {self.str_expr()}"),
            (0.40, lambda: f'printf("%d %s\\n", {e()}, {self.str_expr()})'),
            (0.46, lambda: f"$i = {e()}"),
            (0.50, lambda: f"$s = {self.str_expr()}"),
            (0.58, lambda: (f"if ({e()}) {{ {self.stmt(d + 1)}; {self.stmt(d + 1)} }} else {{ {self.stmt(d + 1)} }}"
                            if d < 2 else "@c = count()")),
            (0.63, lambda: f"delete(@m[{k}])"),
            (0.66, lambda: "print(@c)"),
            (0.68, lambda: self.pick(["clear(@m)", "zero(@s)", "print(@m)"])),
            (0.70, lambda: self.pick(["exit()", "time()", "time()"])),
            (0.74, lambda: f"@l = lhist({e()}, 0, 100, 10)"),
            (0.80, lambda: f"@m[{k}] += {e()}"),
            (0.85, lambda: f"@m[{k}] *= {e()}"),
            (0.90, lambda: f"print({e()})"),
            (1.00, lambda: f"@m[{k}]++"),
        ]
        return next(f for p, f in choices if r < p)()

    def program(self) -> str:
        body = "; ".join(self.stmt() for _ in range(int(self.rng.integers(1, 5))))
        body2 = "; ".join(self.stmt() for _ in range(int(self.rng.integers(1, 4))))
        return (f'BEGIN {{ $s = "q"; $i = 1; }} page_fault /{self.int_expr()}/ {{ $i = 0; $s = ""; {body} }} '
                f"page_fault {{ $i = pid; $s = comm; {body2} }} cow {{ @m[pid]++; @c = count() }} "
                f'interval:ms:2 {{ printf("t %d\\n", nsecs); print(@c) }}')


def test_generated_programs_run_per_batch_as_per_event() -> None:
    """Differential test: random programs give the same output on whole batches as
    on batches of one event each (the per-event semantics), including map reads
    after writes, assignments mixed with aggregations, per-event map prints and
    exit(); a program that does not type-check raises only ProgramError."""
    rng = np.random.default_rng(5)
    s = Stream().start(100, "a").start(101, "b")
    t = 0
    for _ in range(14):
        k = int(rng.integers(1, 7))
        t += int(rng.integers(1, 3_000_000))
        ts = [t + i for i in range(k)]
        pids = rng.integers(99, 103, size=k).tolist()
        kinds = rng.integers(0, 6, size=k).tolist()
        if rng.random() < 0.7:
            s.emit("page_fault", ts, pids, n=k, address=rng.integers(0, 1 << 40, size=k).tolist(),
                   pfn=rng.integers(0, 6, size=k).tolist(), major=rng.integers(0, 2, size=k).tolist(),
                   write=rng.integers(0, 2, size=k).tolist(), vma_kind=kinds)
        else:
            s.emit("cow", ts, pids, n=k, vma_kind=kinds)
    singles: list[EventBatch] = []
    for b in s.batches:
        singles.extend(b.select(np.arange(b.n) == i) for i in range(b.n))
    gen = ProgramGen(23)
    compared = 0
    for _ in range(80):
        src = gen.program()
        try:
            whole = run(src, s.batches)
        except ProgramError:
            continue
        assert run(src, singles) == whole, src
        compared += 1
    assert compared >= 30
