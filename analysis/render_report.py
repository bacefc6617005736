"""Renderers: OOM reports as text, Markdown, HTML or JSON; explanations as text.

They read only the data models (:mod:`.report_model`, :mod:`.explain`), whatever
built them (a trace, a kernel log, a /proc snapshot). Text lines stay under 80
columns. The HTML page is one self-contained file: inline CSS, plots drawn with
matplotlib as inline SVG (fonts as paths), no script, no network.
"""

from __future__ import annotations

import html
import io
import json
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from .explain import FREED_BY, KINDS, ExplainResult
from .ps import ProcTable
from .report import format_size, format_size_ns, format_ts
from .report_model import Candidate, OomKillReport, OomReport, Timeline

WIDTH = 79
FORMATS = ("text", "md", "html", "json")
MiB = 1 << 20

#: Plot colours by memory kind (colour-blind safe: Okabe-Ito).
KIND_COLORS = {"anon": "#D55E00", "file": "#0072B2", "shmem": "#CC79A7", "kernel": "#999999",
               "free": "#E8E8E8", "swap": "#009E73"}

_CONSTRAINT_TEXT = {
    "CONSTRAINT_NONE": "global",
    "CONSTRAINT_MEMCG": "memory cgroup",
    "CONSTRAINT_CPUSET": "cpuset",
    "CONSTRAINT_MEMORY_POLICY": "memory policy",
    "overcommit": "none: overcommit refused the request first",
}


def render_report(report: OomReport, fmt: str = "text", title: str | None = None) -> str:
    """``report`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2, default=_json_default) + "\n"
    if fmt == "text":
        return render_text(report, title)
    if fmt == "md":
        return render_markdown(report, title)
    if fmt == "html":
        return render_html(report, title)
    raise ValueError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


# --------------------------------------------------------------------------- shared bits


def _who(pid: int | None, comm: str | None) -> str:
    if pid is None and comm is None:
        return "unknown"
    if pid is None:
        return str(comm)
    return f"{comm or '?'} (pid {pid})"


def _constraint(k: OomKillReport) -> str:
    text = _CONSTRAINT_TEXT.get(k.constraint or "", k.constraint or "unknown")
    if k.constraint == "CONSTRAINT_MEMCG" and k.memcg:
        text += f" {k.memcg}"
    if k.constraint and k.constraint.startswith("CONSTRAINT"):
        text += f" ({k.constraint})"
    return text


def _headline(i: int, k: OomKillReport) -> str:
    if k.constraint == "overcommit":
        return f"ENOMEM {i} at {format_ts(k.ts_ns)}: {_who(k.trigger.pid if k.trigger else None, k.trigger.comm if k.trigger else None)} refused by overcommit"  # noqa: E501
    if k.victim.pid is None and k.extra.get("panic"):
        return f"OOM {i} at {format_ts(k.ts_ns)}: kernel panic"
    return f"OOM kill {i} at {format_ts(k.ts_ns)}: {_who(k.victim.pid, k.victim.comm)} killed"


def _memory_line(k: OomKillReport) -> str:
    m = k.memory or {}
    if not m:
        return "unknown"
    if "usage" in m:
        keys: tuple[str, ...] = ("usage", "limit", "anon", "file", "shmem", "kernel", "swap")
    elif "committed" in m:
        keys = ("committed", "limit", "requested")
    elif "anon" in m:
        keys = ("anon", "file", "shmem", "kernel", "free", "swap")
    else:
        # Another source's keys (a kernel log's Mem-Info or memcg lines): the
        # non-zero byte counts, as they come.
        shown = [(k, v) for k, v in m.items() if isinstance(v, int) and v and k.endswith("_bytes")
                 and v < 1 << 62][:8]
        return ", ".join(f"{k.removesuffix('_bytes')} {format_size(v)}" for k, v in shown) or "unknown"
    return ", ".join(f"{key} {format_size(m[key])}" for key in keys if key in m and (m[key] or key != "swap"))


def _wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first if first is not None else indent,
                         subsequent_indent=indent, break_on_hyphens=False, break_long_words=True) or [first or ""]


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = (), indent: str = "  ",
           last_wraps: bool = False) -> list[str]:
    rows = [list(map(str, r)) for r in rows]
    right = set(right)
    n = len(headers)
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r[: n - 1] if last_wraps else r):
            widths[i] = max(widths[i], len(c))
    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            if last_wraps and i == n - 1:
                out.append(c)
            elif i in right:
                out.append(c.rjust(widths[i]))
            else:
                out.append(c.ljust(widths[i]))
        return (indent + "  ".join(out)).rstrip()
    lines = [fmt(headers)]
    for r in rows:
        if last_wraps:
            head = fmt([*r[:-1], ""])
            pad = len(head) if head.strip() else len(indent) + sum(widths[: n - 1]) + 2 * (n - 1)
            pad = len(indent) + sum(widths[: n - 1]) + 2 * (n - 1)
            lead = fmt([*r[:-1], ""]).ljust(pad)
            wrapped = textwrap.wrap(r[-1], max(WIDTH - pad, 20), break_on_hyphens=False) or [""]
            lines.append((lead + wrapped[0]).rstrip())
            lines.extend((" " * pad + w).rstrip() for w in wrapped[1:])
        else:
            lines.append(fmt(r))
    return lines


def _candidate_rows(k: OomKillReport) -> list[list[str]]:
    rows = []
    for c in k.candidates:
        mark = "*" if c.pid == k.victim.pid else ""
        rows.append([f"{mark}{c.pid}", (c.comm or "?")[:15], _n(c.rss_pages), _n(c.swap_pages), _n(c.pgtables_pages),
                     _n(c.oom_score_adj), _n(c.adj_points), _points(c.points), _formula_check(c)])
    return rows


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _points(v: int | None) -> str:
    return "ineligible" if v is None else f"{v:,}"


def _formula_check(c: Candidate) -> str:
    if c.formula_points is None and c.points is None:
        return "="
    if c.formula_points is None:
        return "?"
    return "=" if c.formula_points == c.points else f"{c.formula_points:,}"


def _mib(v: int) -> str:
    return f"{v / MiB:,.0f}"


def _timeline_rows(t: Timeline, max_rows: int = 8) -> list[list[str]]:
    n = len(t.ts_ns)
    if not n:
        return []
    if n <= max_rows:
        idx = list(range(n))
    else:
        idx = sorted({round(i * (n - 1) / (max_rows - 1)) for i in range(max_rows)})
    rows = []
    for i in idx:
        rows.append([f"{t.ts_ns[i] / 1e9:.3f}"] + [_mib(t.kinds[kind][i]) for kind in ("anon", "file", "shmem",
                                                                                         "kernel", "free", "swap")])
    return rows


def _reclaim_lines(k: OomKillReport) -> list[str]:
    rc = k.reclaim
    if rc is None:
        return []
    P = 4096
    rows = []
    if rc.kswapd_wakes or k.constraint != "CONSTRAINT_MEMCG":
        rows.append(["kswapd", f"{rc.kswapd_wakes:,} wakes", "-", format_size(rc.kswapd_reclaimed_pages * P)])
    if rc.direct_runs or k.constraint != "CONSTRAINT_MEMCG":
        rows.append(["direct", f"{rc.direct_runs:,} runs", format_size(rc.direct_scanned_pages * P),
                     format_size(rc.direct_reclaimed_pages * P)])
    if rc.memcg_runs or k.constraint == "CONSTRAINT_MEMCG":
        rows.append(["memcg", f"{rc.memcg_runs:,} runs", format_size(rc.memcg_scanned_pages * P),
                     format_size(rc.memcg_reclaimed_pages * P)])
    lines = _table(["RECLAIM", "RUNS", "SCANNED", "RECLAIMED"], rows, right=(1, 2, 3), indent="    ")
    kept = [f"page cache dropped {format_size(rc.file_cache_reclaimed_bytes)}",
            f"swapped out {format_size(rc.swapped_out_pages * P)}",
            f"kept: no swap {format_size(rc.kept_no_swap_pages * P)}, dirty {format_size(rc.kept_dirty_pages * P)}, "
            f"mapped {format_size(rc.kept_mapped_pages * P)}"]
    lines.extend(_wrap("; ".join(kept), "      ", "    "))
    return lines


# --------------------------------------------------------------------------- text


def render_text(report: OomReport, title: str | None = None) -> str:
    """The terminal form: every line under 80 columns."""
    out: list[str] = []
    out.extend(_wrap(_title(report, title)))
    kills = [k for k in report.kills if k.constraint != "overcommit"]
    refusals = [k for k in report.kills if k.constraint == "overcommit"]
    out.append(f"{len(kills)} OOM kill(s)" + (f", {len(refusals)} overcommit refusal(s)" if refusals else ""))
    for w in report.warnings:
        out.extend(_wrap(f"warning: {w}", "    "))
    for i, k in enumerate(report.kills, 1):
        out.append("")
        out.extend(_kill_text(i, k))
    if not report.kills:
        out.append("")
        out.append("No OOM kill, OOM panic or overcommit refusal in this input.")
    return "\n".join(out) + "\n"


def _title(report: OomReport, title: str | None) -> str:
    bits = []
    if report.scenario:
        bits.append(f"scenario {report.scenario}")
    m = report.machine or {}
    if m.get("kernel_version"):
        bits.append(f"kernel {m['kernel_version']}")
    if m.get("ram_bytes"):
        bits.append(f"{format_size(int(m['ram_bytes']))} RAM")
    if "swap_bytes" in m:
        bits.append(f"{format_size(int(m['swap_bytes']))} swap" if m["swap_bytes"] else "no swap")
    head = f"memtrace report: {title or report.source}"
    return head + (f" ({', '.join(bits)})" if bits else "")


def _kill_text(i: int, k: OomKillReport) -> list[str]:
    out = [_headline(i, k), "=" * min(len(_headline(i, k)), WIDTH)]
    trig = _who(k.trigger.pid, k.trigger.comm) if k.trigger else "unknown"
    if k.gfp_mask is not None:
        trig += f", gfp_mask {k.gfp_mask:#x}, order {k.order}"
    out.extend(_wrap(f"constraint  {_constraint(k)}", " " * 14, "  "))
    out.extend(_wrap(f"trigger     {trig}", " " * 14, "  "))
    if k.victim.pid is not None:
        pts = f", {k.victim_points:,} points" if k.victim_points is not None else ""
        out.extend(_wrap(f"victim      {_who(k.victim.pid, k.victim.comm)}{pts}", " " * 14, "  "))
    out.extend(_wrap(f"memory      {_memory_line(k)}", " " * 14, "  "))
    if k.explanation:
        out.append("")
        out.append("  Why")
        for s in k.explanation:
            out.extend(_wrap(s, "      ", "    * "))
    if k.timeline is not None and k.timeline.ts_ns:
        out.append("")
        out.append(f"  Memory before the kill (MiB; {format_size_ns(k.window_ns)} window)")
        out.extend(_table(["TIME_S", "ANON", "FILE", "SHMEM", "KERNEL", "FREE", "SWAP"],
                          _timeline_rows(k.timeline), right=range(7), indent="    "))
    if k.growers:
        out.append("")
        out.append("  Top growers")
        out.extend(_table(["PID", "COMM", "BEFORE_MIB", "AT_KILL_MIB", "GROWTH_MIB"],
                          [[str(g.pid), (g.comm or "?")[:15], _mib(g.start_bytes), _mib(g.end_bytes),
                            _mib(g.growth_bytes)] for g in k.growers], right=(0, 2, 3, 4), indent="    "))
    if k.reclaim is not None:
        out.append("")
        out.append("  Reclaim in the window")
        out.extend(_reclaim_lines(k))
    if k.unreclaimable:
        out.append("")
        out.append("  Not reclaimable at the kill")
        out.extend(_table(["KIND", "SIZE", "WHY"],
                          [[u.kind, format_size(u.bytes), u.detail] for u in k.unreclaimable],
                          right=(1,), indent="    ", last_wraps=True))
    if k.candidates:
        out.append("")
        out.extend(_wrap(f"Candidates: badness as oom_badness() computes it (pages; kernel {k.kernel_version}: "
                         f"{k.formula}); * = victim, FORMULA = recomputed", "    ", "  "))
        out.extend(_table(["PID", "COMM", "RSS", "SWAP", "PGTBL", "ADJ", "ADJ_PTS", "POINTS", "FORMULA"],
                          _candidate_rows(k), right=(0, 2, 3, 4, 5, 6, 7, 8), indent="    "))
    if k.outlived_kill:
        out.append("")
        out.append("  Outlived the kill")
        for u in k.outlived_kill:
            out.extend(_wrap(u.detail, "      ", "    * "))
    if k.what_if:
        out.append("")
        out.append("  What if (replays of the workload)")
        for w in k.what_if:
            out.extend(_wrap(f"{w.change}: {w.outcome.upper()}", "      ", "    * "))
            out.extend(_wrap(w.detail, "      ", "      "))
    return out


# --------------------------------------------------------------------------- markdown


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()) -> list[str]:
    right = set(right)
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    out.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows)
    return out


def render_markdown(report: OomReport, title: str | None = None) -> str:
    """The Markdown form (GitHub-flavoured tables)."""
    out = [f"# {_title(report, title)}", ""]
    for w in report.warnings:
        out.append(f"> warning: {w}")
    if not report.kills:
        out.append("No OOM kill, OOM panic or overcommit refusal in this input.")
    for i, k in enumerate(report.kills, 1):
        out += ["", f"## {_headline(i, k)}", ""]
        out.append(f"- **constraint**: {_constraint(k)}")
        trig = _who(k.trigger.pid, k.trigger.comm) if k.trigger else "unknown"
        out.append(f"- **trigger**: {trig}" + (f", gfp_mask `{k.gfp_mask:#x}`, order {k.order}"
                                                 if k.gfp_mask is not None else ""))
        if k.victim.pid is not None:
            out.append(f"- **victim**: {_who(k.victim.pid, k.victim.comm)}"
                       + (f", {k.victim_points:,} points" if k.victim_points is not None else ""))
        out.append(f"- **memory**: {_memory_line(k)}")
        if k.explanation:
            out += ["", "### Why", ""]
            out.extend(f"1. {s}" for s in k.explanation)
        if k.growers:
            out += ["", "### Top growers", ""]
            out.extend(_md_table(["pid", "comm", "before", "at kill", "growth"],
                                 [[g.pid, g.comm, format_size(g.start_bytes), format_size(g.end_bytes),
                                   format_size(g.growth_bytes)] for g in k.growers], right=(0, 2, 3, 4)))
        if k.reclaim is not None:
            rc, P = k.reclaim, 4096
            out += ["", "### Reclaim in the window", ""]
            out.extend(_md_table(["reclaim", "runs", "scanned", "reclaimed"], [
                ["kswapd", rc.kswapd_wakes, "-", format_size(rc.kswapd_reclaimed_pages * P)],
                ["direct", rc.direct_runs, format_size(rc.direct_scanned_pages * P),
                 format_size(rc.direct_reclaimed_pages * P)],
                ["memcg", rc.memcg_runs, format_size(rc.memcg_scanned_pages * P),
                 format_size(rc.memcg_reclaimed_pages * P)]], right=(1, 2, 3)))
        if k.unreclaimable:
            out += ["", "### Not reclaimable at the kill", ""]
            out.extend(_md_table(["kind", "size", "why"],
                                 [[u.kind, format_size(u.bytes), u.detail] for u in k.unreclaimable], right=(1,)))
        if k.candidates:
            out += ["", f"### Candidates (kernel {k.kernel_version}: `{k.formula}`)", ""]
            out.extend(_md_table(["pid", "comm", "rss", "swap", "pgtables", "oom_score_adj", "adj points", "points",
                                  "formula"], _candidate_rows(k), right=range(2, 9)))
        if k.outlived_kill:
            out += ["", "### Outlived the kill", ""]
            out.extend(f"- {u.detail}" for u in k.outlived_kill)
        if k.what_if:
            out += ["", "### What if (replays)", ""]
            out.extend(_md_table(["change", "outcome", "detail"], [[w.change, w.outcome, w.detail] for w in k.what_if]))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- html


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#555} .warn{background:#fff4e5;border-left:4px solid #e69f00;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;margin:6px 0;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums} tr.victim td{background:#ffe9e0;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0} dt{font-weight:600} dd{margin:0}
.plot{background:#fff;border:1px solid #ddd;margin:8px 0;padding:4px} .plot svg{width:100%;height:auto;display:block}
.avoided{color:#007a3d;font-weight:600} .changed{color:#b35c00;font-weight:600}
ol li{margin:3px 0}
"""


def render_html(report: OomReport, title: str | None = None) -> str:
    """One self-contained HTML page with plots (inline SVG)."""
    e = html.escape
    head = _title(report, title)
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{e(head)}</title>", f"<style>{_CSS}</style></head><body><main>",
           f"<h1>{e(head)}</h1>"]
    kills = [k for k in report.kills if k.constraint != "overcommit"]
    refusals = len(report.kills) - len(kills)
    out.append(f"<p class=\"meta\">{len(kills)} OOM kill(s)"
               + (f", {refusals} overcommit refusal(s)" if refusals else "") + f"; source: {e(report.source)}</p>")
    for w in report.warnings:
        out.append(f"<div class=\"warn\">{e(w)}</div>")
    if report.timeline is not None and report.timeline.ts_ns:
        out.append("<h2>Memory over time</h2>")
        out.append(_plot_div(plot_memory_svg(report.timeline, "Memory by kind (/proc/meminfo); kills marked")))
    if not report.kills:
        out.append("<p>No OOM kill, OOM panic or overcommit refusal in this input.</p>")
    for i, k in enumerate(report.kills, 1):
        out.extend(_kill_html(i, k))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _plot_div(svg: str) -> str:
    return f"<div class=\"plot\">{svg}</div>"


def _kill_html(i: int, k: OomKillReport) -> list[str]:
    e = html.escape
    out = [f"<h2 id=\"kill-{i}\">{e(_headline(i, k))}</h2>", "<dl>"]
    trig = _who(k.trigger.pid, k.trigger.comm) if k.trigger else "unknown"
    if k.gfp_mask is not None:
        trig += f", gfp_mask {k.gfp_mask:#x}, order {k.order}"
    rows = [("constraint", _constraint(k)), ("trigger", trig)]
    if k.victim.pid is not None:
        rows.append(("victim", _who(k.victim.pid, k.victim.comm)
                     + (f", {k.victim_points:,} points" if k.victim_points is not None else "")))
    rows.append(("memory", _memory_line(k)))
    out.extend(f"<dt>{e(a)}</dt><dd>{e(b)}</dd>" for a, b in rows)
    out.append("</dl>")
    if k.explanation:
        out.append("<h3>Why</h3><ol>")
        out.extend(f"<li>{e(s)}</li>" for s in k.explanation)
        out.append("</ol>")
    if k.timeline is not None and (k.timeline.ts_ns or k.timeline.processes):
        out.append(f"<h3>Before the kill ({e(format_size_ns(k.window_ns))})</h3>")
        out.append(_plot_div(plot_processes_svg(k.timeline, "Resident memory of each process (RSS)")))
    if k.candidates:
        out.append(f"<h3>Candidates</h3><p class=\"meta\">oom_badness() for kernel {e(str(k.kernel_version))}: "
                   f"<code>{e(str(k.formula))}</code>; FORMULA is the recomputation, = when equal.</p>")
        out.append(_plot_div(plot_badness_svg(k)))
        out.append(_html_table(["pid", "comm", "rss", "swap", "pgtables", "oom_score_adj", "adj points", "points",
                                "formula"], _candidate_rows(k), right=range(2, 9),
                               victim_rows={j for j, c in enumerate(k.candidates) if c.pid == k.victim.pid}))
    if k.growers:
        out.append("<h3>Top growers</h3>")
        out.append(_html_table(["pid", "comm", "before", "at kill", "growth"],
                               [[g.pid, g.comm, format_size(g.start_bytes), format_size(g.end_bytes),
                                 format_size(g.growth_bytes)] for g in k.growers], right=(0, 2, 3, 4)))
    if k.reclaim is not None:
        rc, P = k.reclaim, 4096
        out.append("<h3>Reclaim in the window</h3>")
        out.append(_html_table(["reclaim", "runs", "scanned", "reclaimed"], [
            ["kswapd", rc.kswapd_wakes, "-", format_size(rc.kswapd_reclaimed_pages * P)],
            ["direct", rc.direct_runs, format_size(rc.direct_scanned_pages * P),
             format_size(rc.direct_reclaimed_pages * P)],
            ["memcg", rc.memcg_runs, format_size(rc.memcg_scanned_pages * P),
             format_size(rc.memcg_reclaimed_pages * P)]], right=(1, 2, 3)))
        out.append(f"<p class=\"meta\">page cache dropped {format_size(rc.file_cache_reclaimed_bytes)}; swapped out "
                   f"{format_size(rc.swapped_out_pages * P)}; scanned pages kept for lack of swap "
                   f"{format_size(rc.kept_no_swap_pages * P)}, dirty {format_size(rc.kept_dirty_pages * P)}, "
                   f"mapped {format_size(rc.kept_mapped_pages * P)}</p>")
    if k.unreclaimable:
        out.append("<h3>Not reclaimable at the kill</h3>")
        out.append(_html_table(["kind", "size", "why"],
                               [[u.kind, format_size(u.bytes), u.detail] for u in k.unreclaimable], right=(1,)))
    if k.outlived_kill:
        out.append("<h3>Outlived the kill</h3><ul>")
        out.extend(f"<li>{e(u.detail)}</li>" for u in k.outlived_kill)
        out.append("</ul>")
    if k.what_if:
        out.append("<h3>What if (replays of the workload)</h3>")
        rows = [[w.change, w.outcome, w.detail] for w in k.what_if]
        out.append(_html_table(["change", "outcome", "detail"], rows, classes={1: _outcome_class}))
    return out


def _outcome_class(v: str) -> str:
    return "avoided" if v == "avoided" else "changed" if v == "victim changed" else ""


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = (),
                victim_rows: set[int] = frozenset(), classes: dict[int, Any] | None = None) -> str:  # type: ignore[assignment]
    e = html.escape
    right = set(right)
    out = ["<table><thead><tr>" + "".join(f"<th{' class=n' if i in right else ''}>{e(h)}</th>"
                                          for i, h in enumerate(headers)) + "</tr></thead><tbody>"]
    for j, r in enumerate(rows):
        cells = []
        for i, c in enumerate(r):
            cls = ["n"] if i in right else []
            if classes and i in classes and classes[i](str(c)):
                cls.append(classes[i](str(c)))
            attr = f" class=\"{' '.join(cls)}\"" if cls else ""
            cells.append(f"<td{attr}>{e('' if c is None else str(c))}</td>")
        out.append(f"<tr{' class=victim' if j in victim_rows else ''}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# --------------------------------------------------------------------------- plots


def _figure(width_in: float = 10.0, height_in: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "memtrace"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "memtrace"})
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def plot_memory_svg(t: Timeline, title: str) -> str:
    """Memory by kind over time (stacked, GiB or MiB), kills as red vertical lines."""
    fig = _figure()
    ax = fig.add_subplot()
    xs = [ts / 1e9 for ts in t.ts_ns]
    kinds = [k for k in ("anon", "file", "shmem", "kernel") if any(t.kinds.get(k, ()))]
    scale, unit = _scale(max((sum(t.kinds[k][i] for k in kinds) for i in range(len(xs))), default=0))
    ys = [[v / scale for v in t.kinds[k]] for k in kinds]
    if ys and len(xs) > 1:
        ax.stackplot(xs, *ys, labels=kinds, colors=[KIND_COLORS[k] for k in kinds], alpha=0.9)
    elif ys:
        bottom = 0.0
        for k, y in zip(kinds, ys):
            ax.bar(xs, y, bottom=bottom, color=KIND_COLORS[k], label=k, width=0.05)
            bottom += y[0]
    swap = t.kinds.get("swap", ())
    if any(swap):
        ax.plot(xs, [v / scale for v in swap], color=KIND_COLORS["swap"], linewidth=2, label="swap used")
    for i, kt in enumerate(t.kills_ts_ns):
        ax.axvline(kt / 1e9, color="#C00000", linewidth=2, linestyle="--", label="OOM kill" if i == 0 else None)
    ax.set_xlabel("time since boot (s)")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.margins(x=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.grid(True, alpha=0.3)
    return _svg(fig)


def plot_processes_svg(t: Timeline, title: str) -> str:
    """Each process's RSS over the window, the kill marked."""
    fig = _figure(height_in=3.2)
    ax = fig.add_subplot()
    peak = max((max(p.rss_bytes) for p in t.processes if p.rss_bytes), default=0)
    scale, unit = _scale(peak)
    for p in t.processes:
        if not p.ts_ns:
            continue
        xs = [x / 1e9 for x in p.ts_ns]
        ys = [y / scale for y in p.rss_bytes]
        ax.step(xs, ys, where="post", linewidth=2, label=f"{p.comm} ({p.pid})")
    for i, kt in enumerate(t.kills_ts_ns):
        ax.axvline(kt / 1e9, color="#C00000", linewidth=2, linestyle="--", label="OOM kill" if i == 0 else None)
    ax.set_xlabel("time since boot (s)")
    ax.set_ylabel(f"RSS ({unit})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if t.processes or t.kills_ts_ns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return _svg(fig)


def plot_badness_svg(k: OomKillReport) -> str:
    """Each candidate's badness as stacked terms (rss, swap, page tables, adj)."""
    cands = list(k.candidates)[:12]
    fig = _figure(height_in=max(1.6, 0.5 * len(cands) + 1.2))
    ax = fig.add_subplot()
    labels = [f"{c.comm} ({c.pid})" + (" victim" if c.pid == k.victim.pid else "") for c in cands]
    ypos = list(range(len(cands)))[::-1]
    left = [0.0] * len(cands)
    has_neg = any((c.adj_points or 0) < 0 for c in cands)
    # With negative terms, the positive stack sits in the upper part of each row and
    # the points taken off get a thinner bar below it, so that neither hides the other.
    top = [y + 0.14 for y in ypos] if has_neg else ypos
    height = 0.5 if has_neg else 0.8
    for name, color, getter in (("rss", KIND_COLORS["anon"], lambda c: c.rss_pages or 0),
                                ("swap", KIND_COLORS["swap"], lambda c: c.swap_pages or 0),
                                ("page tables", KIND_COLORS["kernel"], lambda c: c.pgtables_pages or 0)):
        vals = [float(getter(c)) for c in cands]
        if any(vals):
            ax.barh(top, vals, left=left, height=height, color=color, label=name)
            left = [a + b for a, b in zip(left, vals)]
    adj = [float(c.adj_points or 0) for c in cands]
    pos = [(y, lft, a) for y, lft, a in zip(ypos, left, adj) if a > 0]
    neg = [(y, lft, a) for y, lft, a in zip(ypos, left, adj) if a < 0]
    if pos:
        ax.barh([y + 0.14 if has_neg else y for y, _, _ in pos], [a for _, _, a in pos],
                left=[lft for _, lft, _ in pos], height=height, color="#E69F00", hatch="//", edgecolor="white",
                label="oom_score_adj term (+)")
    if neg:
        # A negative term takes points off: drawn from the sum of the terms back
        # towards (or past) zero, below the positive stack.
        ax.barh([y - 0.28 for y, _, _ in neg], [-a for _, _, a in neg], left=[lft + a for _, lft, a in neg],
                height=0.25, color="#56B4E9", hatch="\\\\", edgecolor="white", label="oom_score_adj term (-)")
    for y, c in zip(ypos, cands):
        text = "ineligible" if c.points is None else f"{c.points:,}"
        ax.plot([c.points or 0], [y], marker="D", color="black", markersize=6)
        ax.annotate(text, (c.points or 0, y), xytext=(6, 6), textcoords="offset points", fontsize=9)
    lo = min([0.0] + [min(lft + a, lft) for lft, a in zip(left, adj)])
    hi = max([1.0] + [max(lft, lft + a) for lft, a in zip(left, adj)] + [float(c.points or 0) for c in cands])
    ax.set_xlim(lo - 0.04 * (hi - lo), hi + 0.16 * (hi - lo))
    ax.set_yticks(ypos, labels)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("pages (badness points = rss + swap + page tables + adj term)")
    ax.set_title("Candidates' badness (black diamond: points)")
    if ax.get_legend_handles_labels()[0]:  # every term 0 (a log's rows of zeros): no legend
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return _svg(fig)


def _scale(peak: int) -> tuple[float, str]:
    if peak >= 4 << 30:
        return float(1 << 30), "GiB"
    return float(MiB), "MiB"


# --------------------------------------------------------------------------- explain


def render_explain_text(res: ExplainResult, title: str | None = None) -> str:
    """``memtrace explain`` for terminals: free(1), then each kind's parts."""
    out: list[str] = []
    scope = "" if res.scope == "system" else f" ({res.scope})"
    ts = f" (t={res.ts_ns / 1e9:.3f} s)" if res.ts_ns is not None and not res.at.startswith("t=") else ""
    # The heading leads with the moment, the source goes on a line of its own: a long path
    # must not split the heading wherever the terminal width happens to fall.
    out.append(f"memory at {res.at}{ts}{scope}")
    out.extend(_wrap(f"from {title or res.source}", "  ", ""))
    if res.free:
        f = res.free
        out.append("")
        out.append(f"{'':6}{'total':>11}{'used':>11}{'free':>11}{'shared':>11}{'buff/cache':>11}{'available':>11}")
        out.append(f"{'Mem:':6}" + "".join(f"{_mib(f[k]):>11}" for k in ("total", "used", "free", "shared",
                                                                         "buff_cache", "available")) + "  MiB")
        fb = res.free_breakdown()
        if fb:
            bc = fb["buff_cache"]
            out.extend(_wrap(f"buff/cache = FILE {format_size(bc['file'])} + SHMEM {format_size(bc['shmem'])} + "
                             f"reclaimable slab {format_size(bc['reclaimable slab'])}; shared = SHMEM; used = "
                             f"total - available (the kernel's estimate, not a sum of pages)", "      ", "  "))
    sums = res.sums()
    for kind in KINDS:
        parts = res.parts_of(kind)
        total = res.totals.get(kind)
        if not parts and not total:
            continue
        out.append("")
        out.append(f"{kind.upper()}: {format_size(total)}" + ("" if total == sums.get(kind) else
                                                              f" (parts sum to {format_size(sums.get(kind))})"))
        for p in parts:
            freed = ", ".join(p.freed_by) if p.freed_by else "-"
            out.extend(_wrap(f"{format_size(p.bytes):>9}  {p.owner.name}", " " * 13, "  "))
            out.extend(_wrap(p.reason, " " * 13, " " * 13))
            if p.detail:
                out.extend(_wrap(p.detail, " " * 13, " " * 13))
            if p.kind != "free":
                out.extend(_wrap(f"freed by: {freed}", " " * 13, " " * 13))
    if res.unknown:
        out.append("")
        out.append("Cannot be told from this input:")
        for u in res.unknown:
            out.extend(_wrap(u, "    ", "  - "))
    for w in res.warnings:
        out.extend(_wrap(f"warning: {w}", "    "))
    used_by = sorted({f for p in res.parts for f in p.freed_by if f in FREED_BY})
    if used_by:
        out.append("")
        out.append("freed by:")
        for f in used_by:
            out.extend(_wrap(f"{f}: {FREED_BY[f]}", "      ", "  "))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- ps


def _compact(nr_bytes: int) -> str:
    """A size in at most 6 columns, as top(1) prints it: ``512K``, ``64.0M``, ``1.50G``."""
    for unit, shift in (("G", 30), ("M", 20)):
        v = nr_bytes / (1 << shift)
        if v >= 1:
            return f"{v:.2f}{unit}" if v < 10 else f"{v:.1f}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{nr_bytes >> 10}K"


def render_ps_text(table: ProcTable, title: str | None = None, limit: int | None = None) -> str:
    """``memtrace ps`` for terminals: one row a process, sizes as top(1) prints them.
    A ``*`` marks an oom_score that differs from the kernel's own (snapshots)."""
    out = [f"processes at {table.at}" + (f" (t={table.ts_ns / 1e9:.3f} s)" if table.ts_ns is not None
                                         and not table.at.startswith("t=") and table.source != "snapshot" else "")]
    out.extend(_wrap(f"from {title or table.source}", "  ", ""))
    out.append("")
    out.append(f"{'PID':>7} {'COMM':<15} {'ANON':>6} {'FILE':>6} {'SHMEM':>6} {'SWAP':>6} {'PGTBL':>6} "
               f"{'ADJ':>5} {'OOM_SCORE':>9}")
    rows = table.rows if limit is None else table.rows[:limit]
    for r in rows:
        score = "-" if r.oom_score is None else str(r.oom_score)
        if r.score_differs:
            score = f"{score}*"
        out.append(f"{r.pid:>7} {r.comm[:15]:<15} {_compact(r.rss_anon_bytes):>6} {_compact(r.rss_file_bytes):>6} "
                   f"{_compact(r.rss_shmem_bytes):>6} {_compact(r.swap_bytes):>6} {_compact(r.pgtables_bytes):>6} "
                   f"{r.oom_score_adj:>5} {score:>9}")
    if limit is not None and len(table.rows) > limit:
        out.append(f"{'':>7} ... {len(table.rows) - limit} more (--all shows every process)")
    if not table.rows:
        out.append(f"{'':>7} (no live process)")
    out.append("")
    tp = f"{table.totalpages:,} pages (RAM + swap)" if table.totalpages else "unknown"
    out.extend(_wrap(f"kernel {table.kernel_version}: {table.formula}; points = rss + swap + page tables + "
                     f"oom_score_adj * totalpages / 1000; totalpages = {tp}", "  ", ""))
    ineligible = [r for r in rows if r.ineligible]
    for r in ineligible:
        out.extend(_wrap(f"{r.comm} (pid {r.pid}) is never chosen: {r.ineligible}", "    ", "  - "))
    differ = [r for r in rows if r.score_differs]
    if differ:
        out.extend(_wrap("* differs from the kernel's /proc/PID/oom_score: " + ", ".join(
            f"pid {r.pid} kernel {r.kernel_oom_score}" for r in differ), "    ", ""))
    for n in table.notes:
        out.extend(_wrap(f"note: {n}", "    ", ""))
    return "\n".join(out) + "\n"


__all__ = [
    "FORMATS",
    "plot_badness_svg",
    "plot_memory_svg",
    "plot_processes_svg",
    "render_explain_text",
    "render_html",
    "render_markdown",
    "render_ps_text",
    "render_report",
    "render_text",
]
