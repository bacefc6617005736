"""Output: histograms and maps as bpftrace prints them (16-column label, 8-column count,
52-column bar), and their JSON.
"""

from __future__ import annotations

import json

import numpy as np

from memtrace.tracer.probes import (
    Map,
    PrintfOutput,
    StrColumn,
    render_json,
    render_text,
)


def test_hist_text_is_drawn_as_bpftrace_draws_it() -> None:
    m = Map("@bytes")
    m.hist(np.array([0, 1, 1, 5, 5, 5, 5, 1024 * 1024 + 1] + [3000] * 8))
    text = render_text(m.snapshot())
    def bar(c: int) -> str:
        return "@" * int(c / 8 * 52)
    rows = [("[0]", 1), ("[1]", 2), ("[2, 4)", 0), ("[4, 8)", 4), ("[8, 16)", 0), ("[16, 32)", 0),
            ("[32, 64)", 0), ("[64, 128)", 0), ("[128, 256)", 0), ("[256, 512)", 0), ("[512, 1K)", 0),
            ("[1K, 2K)", 0), ("[2K, 4K)", 8), ("[4K, 8K)", 0), ("[8K, 16K)", 0), ("[16K, 32K)", 0),
            ("[32K, 64K)", 0), ("[64K, 128K)", 0), ("[128K, 256K)", 0), ("[256K, 512K)", 0),
            ("[512K, 1M)", 0), ("[1M, 2M)", 1)]
    expected = "@bytes:\n" + "".join(f"{label:<16}{c:>8} |{bar(c):<52}|\n" for label, c in rows) + "\n"
    assert text == expected
    assert all(len(line) <= 80 for line in text.splitlines())


def test_lhist_labels_and_json() -> None:
    m = Map("@l")
    m.lhist(np.array([-1, 0, 1023, 1024, 2047, 5000]), 0, 4096, 1024)
    out = m.snapshot()
    lines = render_text(out).splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["(...,", "[0,", "[1K,", "[2K,", "[3K,", "[4K,"]
    assert lines[1].startswith("(..., 0)") and lines[-2].startswith("[4K, ...)")
    data = json.loads(render_json(out))
    assert data == {"type": "hist", "data": {"@l": [
        {"max": -1, "count": 1}, {"min": 0, "max": 1023, "count": 2}, {"min": 1024, "max": 2047, "count": 2},
        {"min": 2048, "max": 3071, "count": 0}, {"min": 3072, "max": 4095, "count": 0},
        {"min": 4096, "count": 1}]}}


def test_maps_print_sorted_by_value_and_json_like_bpftrace() -> None:
    m = Map("@")
    m.count((StrColumn.from_list(["b", "a", "b", "c", "b", "a"]), np.array([1, 2, 1, 3, 1, 2])))
    out = m.snapshot()
    assert render_text(out) == "@[c, 3]: 1\n@[a, 2]: 2\n@[b, 1]: 3\n\n"
    assert render_json(out) == '{"type": "map", "data": {"@": {"c,3": 1, "a,2": 2, "b,1": 3}}}\n'
    assert render_text(m.snapshot(top=1)) == "@[b, 1]: 3\n\n"
    s = Map("@s")
    s.stats(np.array([1, 2, 6]))
    assert render_text(s.snapshot()) == "@s: count 3, average 3, total 9\n\n"
    assert json.loads(render_json(s.snapshot())) == {"type": "stats", "data": {"@s": {"count": 3, "average": 3,
                                                                                      "total": 9}}}
    assert render_json(PrintfOutput("hi\n")) == '{"type": "printf", "data": "hi\\n"}\n'
    assert render_text(Map("@empty").snapshot()) == ""
