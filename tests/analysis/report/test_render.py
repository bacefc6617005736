"""The report's renderers: text under 80 columns, Markdown, the JSON shape, and a
self-contained HTML page that headless Chromium renders."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from memtrace.analysis.report import OomKillReport, OomReport, render_report


def _kills(r: OomReport) -> list[OomKillReport]:
    return [k for k in r.kills if k.constraint != "overcommit"]


@pytest.mark.parametrize("name", ["oom-leak", "memcg-oom", "shmem-pressure", "overcommit-strict"])
def test_text_and_markdown(name: str, reports: dict[str, OomReport]) -> None:
    text = render_report(reports[name], "text", title=f"{name}.mtrace")
    assert max(len(line) for line in text.splitlines()) < 80
    md = render_report(reports[name], "md")
    assert md.startswith("# memtrace report")
    for k in _kills(reports[name]):
        assert f"{k.victim.comm} (pid {k.victim.pid})" in text
        assert "| pid | comm | rss |" in md


def test_json_shape(reports: dict[str, OomReport]) -> None:
    d = json.loads(render_report(reports["memcg-oom"], "json"))
    k = d["kills"][0]
    assert {"ts_ns", "trigger", "constraint", "memcg", "victim", "candidates", "unreclaimable", "explanation",
            "what_if"} <= set(k)
    assert k["victim"] == {"pid": 4725, "comm": "python3", "points": 14667}
    assert set(k["trigger"]) == {"pid", "comm"}
    assert {"pid", "comm", "points", "rss_pages", "swap_pages", "pgtables_pages", "oom_score_adj",
            "adj_points"} <= set(k["candidates"][0])
    assert d["timeline"]["kinds"]["anon"] and d["timeline"]["kills_ts_ns"] == [k["ts_ns"], d["kills"][1]["ts_ns"]]


def test_html_is_self_contained(reports: dict[str, OomReport]) -> None:
    page = render_report(reports["oom-leak"], "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_browser() is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path: Path, reports: dict[str, OomReport]) -> None:
    """The HTML report loads in headless Chromium with no console error, and the
    screenshot shows the plots: the anonymous-memory area and the red kill line."""
    page = tmp_path / "report.html"
    page.write_text(render_report(reports["oom-leak"], "html", title="oom-leak.mtrace"))
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [str(_browser()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
         "--window-size=1200,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), proc.stderr[-2000:]
    assert ":CONSOLE" not in proc.stderr, [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    from matplotlib.image import imread

    img = (imread(shot)[..., :3] * 255).astype(np.int16)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000

    def near(rgb: tuple[int, int, int]) -> int:
        return int(np.count_nonzero(np.abs(img - np.array(rgb)).max(axis=-1) < 30))

    assert near((213, 94, 0)) > 20_000  # the anon area of the memory plot and the rss bars
    assert near((0, 114, 178)) > 2_000  # the page cache kswapd reclaimed
    assert near((192, 0, 0)) > 100  # the OOM kill marker
