"""The one-liner language's syntax: C precedence, parse trees, errors with a caret
under the problem, and the nesting limit.
"""

from __future__ import annotations

import numpy as np
import pytest

from memtrace.errors import ParseError
from memtrace.tracer.oneliner import ProgramError, compile_program, parse
from memtrace.tracer.oneliner.nodes import Binary, Ternary
from memtrace.tracer.oneliner.parser import MAX_NESTING
from memtrace.tracer.probes import run_batches
from memtrace.tracer.tracefile import TraceReader

from ..helpers import Stream
from ..programs import ROOT, Trace, maps_of, printed, run


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
    value = probe.body[0].value
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
