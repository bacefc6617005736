"""Small inputs that asked for unbounded work (issue 14, findings 2 and 5): TOML
dotted keys, program files, one-liner text. Each is refused in one line, before the
work starts, or bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.errors import InputError, LimitError
from memtrace.kernel.workload import load_scenario
from memtrace.kernel.workload.codec import MAX_TOML_KEY_CHARS, MAX_TOML_KEY_PARTS
from memtrace.tracer.oneliner import MAX_PROGRAM_BYTES, ProgramError, compile_program, read_program

from .helpers import MiB, assert_clean, peak, run_cli

GOOD = """name = "ok"
description = "dots in values are fine: 1.5 s, a.b.c.d, v1.2.3, ..."
[machine]
ram = "1GiB"
[sysctl]
"vm.overcommit_memory" = 1
[[process]]
name = "p"
steps = [{ op = "sleep", duration = "1.5ms" }]
"""


def test_a_30000_part_dotted_key_is_refused_before_tomllib(tmp_path: Path) -> None:
    """60 KB of one dotted key cost tomllib 3.6 GB; the pre-scan refuses it at once."""
    path = tmp_path / "dotted.toml"
    path.write_text('name = "x"\n' + "x." * 30_000 + "y = 1\n")
    got = peak("""
from memtrace.kernel.workload import load_scenario
from memtrace.errors import LimitError
try:
    load_scenario(sys.argv[1])
except LimitError as e:
    out["error"] = str(e)
""", str(path))
    assert got["error"] == (f"{path}: line 2: a dotted key of more than {MAX_TOML_KEY_PARTS} parts "
                            "('x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x....): not a scenario file")
    assert got["peak_bytes"] < 150 * MiB


@pytest.mark.parametrize("text", [
    "[" + "a." * 100 + "b]\nk = 1\n",
    "t = { " + "a." * 100 + "b = 1 }\n",
    '"q".' * 100 + "z = 1\n",
    "a . " * 100 + "z = 1\n",
])
def test_long_dotted_keys_are_refused_wherever_they_are(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k.toml"
    path.write_text(text)
    with pytest.raises(LimitError, match="a dotted key of more than 64 parts"):
        load_scenario(path)


def test_a_key_longer_than_the_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.toml"
    path.write_text("k" * (MAX_TOML_KEY_CHARS + 1) + " = 1\n")
    with pytest.raises(LimitError, match=f"line 1: a key longer than {MAX_TOML_KEY_CHARS} characters"):
        load_scenario(path)


def test_a_scenario_with_dots_in_values_and_quoted_keys_loads(tmp_path: Path) -> None:
    """Dotted words in a string (here 200 of them) and quoted sysctl names are not
    keys: the pre-scan lets them through."""
    path = tmp_path / "ok.toml"
    path.write_text(GOOD.replace('description = "', 'description = "' + "a." * 200))
    scenario = load_scenario(path)
    assert scenario.name == "ok" and scenario.description.startswith("a.a.a.")


def test_a_program_file_is_read_up_to_its_bound(tmp_path: Path) -> None:
    """-f /dev/zero read without end; a program file is read up to 1 MiB."""
    with pytest.raises(LimitError, match=r"program /dev/zero is larger than 1 MiB"):
        read_program("/dev/zero")
    big = tmp_path / "big.bt"
    big.write_text("// " + "x" * MAX_PROGRAM_BYTES)
    with pytest.raises(LimitError):
        read_program(big)
    ok = tmp_path / "ok.bt"
    ok.write_text("BEGIN { printf(\"hi\\n\"); }\n")
    assert read_program(ok).startswith("BEGIN")
    bad = tmp_path / "bad.bt"
    bad.write_bytes(b"BEGIN { \xff }")
    with pytest.raises(InputError, match=r"bad\.bt: not UTF-8 text \(byte 0xff at offset 8\)"):
        read_program(bad)
    with pytest.raises(InputError, match="it is a directory"):
        read_program(tmp_path)


@pytest.mark.parametrize(("program", "says"), [
    ("page_fault { @é = count(); }", "-e:1:15: unexpected character 'é' (U+00E9)"),
    ("page_fault /pid == ٣/ { }", "-e:1:20: unexpected character '٣' (U+0663)"),
    ("i:s:²² { }", "bad interval '²²': expected a positive integer"),
    ("interval:s:99999999999 { }", "is longer than 64 bits of nanoseconds"),
    ('BEGIN { time("%H\\0%M"); }', "a time format cannot hold a NUL character"),
    ('BEGIN { printf("%s", strftime("\\0", 1)); }', "a time format cannot hold a NUL character"),
    ('BEGIN { time("' + "%Y" * 200 + '"); }', "a time format of 400 characters is longer than 256"),
    ("config = { max_map_keys = 0 } BEGIN { }", "max_map_keys takes an integer in 1..1,048,576"),
    ("config = { max_map_keys = 1 ; other = 2 } BEGIN { }", "unknown config key 'other'"),
    ("BEGIN { @x = 123456789012345678901234567890; }", "integer too large for 64 bits"),
])
def test_one_liner_text_that_failed_inside_is_a_caret_error(program: str, says: str) -> None:
    """Non-ASCII letters and digits (an AssertionError in the lexer), NUL in a time
    format (a ValueError from strftime), numbers beyond 64 bits: a ProgramError with
    a caret."""
    with pytest.raises(ProgramError) as info:
        compile_program(program)
    assert says in str(info.value)
    assert "^" in str(info.value).splitlines()[-1]


def test_the_trace_command_reports_a_lexer_error_in_one_headline() -> None:
    from .helpers import SAMPLES

    run = run_cli("trace", str(SAMPLES / "memcg-oom.mtrace"), "-e", "oom_kill { @[cömm] = count(); }")
    assert run.code == 1 and "internal error" not in run.stderr
    assert run.stderr.startswith("memtrace: -e:1:15: unexpected character 'ö' (U+00F6)")


def test_commands_on_a_valid_sample_end_cleanly() -> None:
    """A control: the helpers' notion of clean holds on a sound trace."""
    from .helpers import SAMPLES

    assert_clean(run_cli("stat", str(SAMPLES / "memcg-oom.mtrace")))
