"""memtrace report --sweep: a sweep's results embedded in the report (issue 13, item 3).

Ground truth: the sweep's own JSON (every cell replayed by ``memtrace sweep``, checked
against serial replays in tests/replay/test_sweep.py): the report must show every cell
with its outcome, the boundary between the two values the bisection found, and the
baseline line, in every format; HTML draws the plot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtrace.analysis.report.sweep import read_sweep, sweep_from_dict
from memtrace.cli import app, main
from memtrace.errors import InputError

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MEMCG_OOM = SAMPLES / "memcg-oom.mtrace"
LIMIT = "cgroup./oracle_oom.max"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sweep_json(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("sweep") / "s.json"
    code, out = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB:320MiB:64MiB", "--serial", "-o", str(path))
    assert code == 0, out
    return path, json.loads(path.read_text())


def test_the_results_file_reads_back_cell_for_cell(sweep_json: tuple[Path, dict]) -> None:
    path, doc = sweep_json
    s = read_sweep(path)
    assert s.target == doc["target"] and s.axes == ((LIMIT, ("64MiB", "128MiB", "192MiB", "256MiB", "320MiB")),)
    assert [c.outcome for c in s.cells] == [c["outcome"] for c in doc["cells"]]
    assert [c.figures["kills"] for c in s.cells] == [c["kills"] for c in doc["cells"]]
    assert [c.figures["memcg_peak_bytes"] for c in s.cells] == [c["memcg_peak_bytes"] for c in doc["cells"]]
    assert s.baseline == doc["baseline"]["summary"]


@pytest.mark.parametrize("fmt", ["text", "md", "html", "json"])
def test_every_format_shows_every_cell(sweep_json: tuple[Path, dict], fmt: str, tmp_path: Path) -> None:
    path, doc = sweep_json
    out = tmp_path / f"r.{fmt}"
    code, msg = run("report", str(MEMCG_OOM), "--no-what-if", "--sweep", str(path), "-f", fmt, "-o", str(out))
    assert code == 0, msg
    text = out.read_text()
    if fmt == "json":
        (embedded,) = json.loads(text)["sweeps"]
        assert [c["outcome"] for c in embedded["cells"]] == [c["outcome"] for c in doc["cells"]]
        return
    assert doc["baseline"]["summary"] in text
    for cell in doc["cells"]:
        assert cell[LIMIT] in text and cell["outcome"] in text
    # the kill chapters are still there, before the sweep
    assert text.index("Sweep 1") > text.index("python3")
    if fmt == "html":
        assert text.count("<svg") >= 2  # memory over time, and the sweep's kills


def test_a_bisection_says_between_which_values(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    code, out = run("sweep", str(MEMCG_OOM), "--vary", f"{LIMIT}=64MiB:512MiB:32MiB", "--find-min", LIMIT,
                    "--serial", "-o", str(path))
    assert code == 0, out
    (b,) = json.loads(path.read_text())["boundaries"]
    code, text = run("report", str(MEMCG_OOM), "--no-what-if", "--sweep", str(path))
    assert code == 0, text
    sentence = f"{LIMIT}: {b['outcome_below']} up to {b['below']}; {b['outcome_above']} from {b['above']}."
    assert sentence in " ".join(text.split())


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not sweep results"),
    ("[1, 2]", "expected a JSON object"),
    ('{"target": "t", "axes": [{"key": "vm.swappiness", "values": [1]}], "seeds": 1, "cells": []}',
     "axes[0]: 'values' are not strings"),
    ('{"target": "t", "axes": [], "seeds": 1, "cells": [{"seed": "x", "outcome": "no kill"}]}',
     "cells[0]: 'seed' missing or not an integer"),
    ('{"target": "t", "axes": [], "seeds": 1, "cells": [{"seed": 0, "outcome": "o", "kills": "2"}]}', ""),
])
def test_bad_results_files_are_one_line_errors(tmp_path: Path, content: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(MEMCG_OOM), "--no-what-if", "--sweep", str(path)])
    err = capsys.readouterr().err
    if message:
        assert exc.value.code == 1, err
        assert len(err.strip().splitlines()) == 1 and str(path) in err and message in err
    else:  # a figure that is not a number is not a figure: left out, not an error
        assert exc.value.code == 0, err


def test_sweep_from_dict_refuses_a_non_object() -> None:
    with pytest.raises(InputError):
        sweep_from_dict(None)
