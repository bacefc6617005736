"""Hostile names through the commands' text output (issue 14, finding 8): a comm
holding a terminal escape sequence, a carriage return and a bidi override, taken
from a scenario as any byte but NUL may be (prctl(PR_SET_NAME)), never reaches the
terminal raw: ps, explain, report, stat and the one-liners print it escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import assert_clean, run_cli

#: ESC [2J clears the screen; CR returns to the line start; U+202E reverses text.
COMM = "\x1b[2J\rx\u202ey"
RAW = ("\x1b", "\r", "\u202e")


@pytest.fixture(scope="module")
def hostile_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("esc")
    toml = d / "s.toml"
    toml.write_text('name = "esc"\n[machine]\nram = "256MiB"\n[[process]]\nname = "p"\n'
                    'comm = "\\u001b[2J\\rx\\u202ey"\n'
                    'steps = [{ op = "mmap", handle = "b", length = "1MiB" },\n'
                    '         { op = "touch", handle = "b", write = true },\n'
                    '         { op = "snapshot", label = "s" }]\n')
    out = d / "esc.mtrace"
    assert_clean(run_cli("record", str(toml), "-o", str(out)))
    return out


@pytest.mark.parametrize("argv", [["ps"], ["explain"], ["stat"], ["report", "--no-what-if"],
                                  ["trace", "-e", 'page_fault { printf("%s %d\\n", comm, pid); @[comm] = count(); }']])
def test_no_control_character_of_a_name_is_printed(hostile_trace: Path, argv: list[str]) -> None:
    run = run_cli(argv[0], str(hostile_trace), *argv[1:])
    assert_clean(run)
    assert not any(c in run.stdout + run.stderr for c in RAW), run.stdout
    if argv[0] in ("ps", "trace"):
        assert "\\x0dx\\u202ey" in run.stdout  # shown, as text
    if argv[0] == "trace":
        assert "\\x1b[2J\\x0dx\\u202ey 100\n" in run.stdout
