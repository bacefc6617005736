"""The report's figures as SVG, drawn with matplotlib (imported by :mod:`.html` only
when a page has a figure: matplotlib is slow to import).

The SVG is deterministic (a fixed hash salt, no date) and self-contained: text is
drawn as paths, so the page needs no font. Sizes are plotted in MiB, or GiB from
4 GiB up; times in seconds since boot.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib
from matplotlib.figure import Figure as MplFigure

from memtrace.units import GiB, MiB

from .document import CompositionPlot, Figure, MemcgPlot, MemoryPlot, ProcessesPlot, SweepPlot
from .model import Candidate, MemoryComposition, OomKillReport, SwapState, SweepTable, Timeline

__all__ = [
    "KIND_COLORS",
    "PART_COLORS",
    "plot_badness_svg",
    "plot_composition_svg",
    "plot_memcg_svg",
    "plot_memory_svg",
    "plot_processes_svg",
    "plot_sweep_svg",
    "svg",
    "sweep_figure",
]

#: Plot colours by memory kind (colour-blind safe: Okabe-Ito).
KIND_COLORS = {"anon": "#D55E00", "file": "#0072B2", "shmem": "#CC79A7", "kernel": "#999999",
               "free": "#E8E8E8", "swap": "#009E73"}
#: The OOM kill marker.
KILL_COLOR = "#C00000"
NS_PER_S = 1e9


def svg(figure: Figure) -> str:
    """``figure`` drawn as an ``<svg>`` element."""
    if isinstance(figure, MemoryPlot):
        return plot_memory_svg(figure.timeline, figure.title)
    if isinstance(figure, ProcessesPlot):
        return plot_processes_svg(figure.timeline, figure.title)
    if isinstance(figure, CompositionPlot):
        return plot_composition_svg(figure.memory, figure.swap, figure.title)
    if isinstance(figure, MemcgPlot):
        return plot_memcg_svg(figure.kill)
    if isinstance(figure, SweepPlot):
        return plot_sweep_svg(figure.sweep, figure.figure)
    return plot_badness_svg(figure.kill)


def _figure(width_in: float = 10.0, height_in: float = 3.6) -> Any:
    fig = MplFigure(figsize=(width_in, height_in), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "memtrace"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "memtrace"})
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _scale(peak_bytes: int) -> tuple[float, str]:
    """The unit to plot sizes up to ``peak_bytes`` in: GiB from 4 GiB, else MiB."""
    if peak_bytes >= 4 * GiB:
        return float(GiB), "GiB"
    return float(MiB), "MiB"


def _mark_kills(ax: Any, kills_ts_ns: tuple[int, ...]) -> None:
    for i, kt in enumerate(kills_ts_ns):
        ax.axvline(kt / NS_PER_S, color=KILL_COLOR, linewidth=2, linestyle="--", label="OOM kill" if i == 0 else None)


def plot_memory_svg(t: Timeline, title: str) -> str:
    """Memory by kind over time (stacked), kills as red dashed vertical lines."""
    fig = _figure()
    ax = fig.add_subplot()
    xs = [ts / NS_PER_S for ts in t.ts_ns]
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
    _mark_kills(ax, t.kills_ts_ns)
    ax.set_xlabel("time since boot (s)")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.margins(x=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.grid(True, alpha=0.3)
    return _svg(fig)


def plot_memcg_svg(k: OomKillReport) -> str:
    """A memcg OOM's window: every candidate's RSS stacked (each a step function of
    its rss_stat changes, resampled on the union of their times), the cgroup's limit
    as a line, its usage at the kill as a point (memory.usage_in_bytes / memory.current
    from the OOM report) and the kill marked. The stack is RSS only: page cache and
    kernel memory charged to the cgroup are the gap between its top and the usage."""
    import numpy as np

    t = k.memcg_timeline
    procs = [p for p in (t.processes if t is not None else ()) if p.ts_ns]
    memory = k.memory or {}
    limit = memory.get("limit") or 0
    usage = memory.get("usage")
    xs_ns = sorted({x for p in procs for x in p.ts_ns})
    peak = max([limit, usage or 0, *(int(sum(max(p.rss_bytes) for p in procs)),)])
    scale, unit = _scale(peak)
    fig = _figure(height_in=3.4)
    ax = fig.add_subplot()
    if xs_ns:
        grid = np.array(xs_ns, dtype=np.int64)
        ys = []
        for p in procs:
            at = np.searchsorted(np.array(p.ts_ns, dtype=np.int64), grid, side="right") - 1
            values = np.array(p.rss_bytes, dtype=np.float64)[np.maximum(at, 0)]
            ys.append(np.where(at >= 0, values, 0.0) / scale)
        ax.stackplot(grid / NS_PER_S, *ys, step="post", labels=[f"{p.comm} ({p.pid})" for p in procs], alpha=0.85)
    if 0 < limit < (1 << 62):
        ax.axhline(limit / scale, color="#000000", linewidth=1.5, linestyle="-", label="limit")
    if usage is not None and k.ts_ns is not None:
        ax.plot([k.ts_ns / NS_PER_S], [usage / scale], marker="o", color="#000000", linestyle="none",
                label="usage at the kill")
    _mark_kills(ax, (k.ts_ns,) if k.ts_ns is not None else ())
    ax.set_xlabel("time since boot (s)")
    ax.set_ylabel(unit)
    ax.set_title(f"{k.memcg}: candidates' RSS against the limit", fontsize=10)
    ax.margins(x=0)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
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
        xs = [x / NS_PER_S for x in p.ts_ns]
        ys = [y / scale for y in p.rss_bytes]
        ax.step(xs, ys, where="post", linewidth=2, label=f"{p.comm} ({p.pid})")
    _mark_kills(ax, t.kills_ts_ns)
    ax.set_xlabel("time since boot (s)")
    ax.set_ylabel(f"RSS ({unit})")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if t.processes or t.kills_ts_ns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return _svg(fig)


#: The positive badness terms, stacked in this order: (label, colour, pages of a candidate).
_TERMS: tuple[tuple[str, str, Callable[[Candidate], int]], ...] = (
    ("rss", KIND_COLORS["anon"], lambda c: c.rss_pages or 0),
    ("swap", KIND_COLORS["swap"], lambda c: c.swap_pages or 0),
    ("page tables", KIND_COLORS["kernel"], lambda c: c.pgtables_pages or 0),
)


def plot_badness_svg(k: OomKillReport) -> str:
    """Each candidate's badness as stacked terms (rss, swap, page tables, adj), in pages."""
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
    for name, color, pages in _TERMS:
        vals = [float(pages(c)) for c in cands]
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


#: Colours of the parts of RAM at an OOM (a kernel log's Mem-Info), in stacking order.
PART_COLORS = {
    "anon": KIND_COLORS["anon"], "file": KIND_COLORS["file"], "unevictable": "#882255",
    "slab_reclaimable": "#56B4E9", "slab_unreclaimable": "#999999", "pagetables": "#666666",
    "kernel_stack": "#444444", "hugepages": "#E69F00", "unaccounted": "#F0E442", "free": KIND_COLORS["free"],
}


def plot_composition_svg(m: MemoryComposition, swap: SwapState | None, title: str) -> str:
    """Where RAM was at the OOM: one stacked bar of the Mem-Info parts (kB), the tasks'
    RSS sum beside it (shared pages counted per process), and swap used of total."""
    fig = _figure(height_in=2.6 if swap is None or not swap.total_kb else 3.2)
    ax = fig.add_subplot()
    parts = [(k, v) for k, v in m.parts_kb.items() if v > 0]
    if m.unaccounted_kb is not None and m.unaccounted_kb > 0:
        parts.insert(len(parts) - 1 if parts and parts[-1][0] == "free" else len(parts), ("unaccounted",
                                                                                         m.unaccounted_kb))
    order = list(PART_COLORS)
    parts.sort(key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    peak = max(sum(v for _, v in parts), m.ram_kb or 0, m.tasks_rss_kb or 0,
               (swap.total_kb if swap is not None else 0)) * 1024
    scale, unit = _scale(peak)
    rows = ["RAM"]
    if m.tasks_rss_kb is not None:
        rows.append("tasks' RSS")
    if swap is not None and swap.total_kb:
        rows.append("swap")
    ypos = {name: len(rows) - 1 - i for i, name in enumerate(rows)}
    left = 0.0
    for name, kb in parts:
        width = kb * 1024 / scale
        ax.barh(ypos["RAM"], width, left=left, height=0.6, color=PART_COLORS.get(name, "#CCCCCC"), label=name,
                edgecolor="white", linewidth=0.5)
        left += width
    if m.ram_kb is not None:
        ax.axvline(m.ram_kb * 1024 / scale, color="black", linewidth=1, linestyle=":", label="pages RAM")
    if m.tasks_rss_kb is not None:
        ax.barh(ypos["tasks' RSS"], m.tasks_rss_kb * 1024 / scale, height=0.6, color="#CC79A7",
                label="tasks' RSS (shared pages per process)")
    if swap is not None and swap.total_kb:
        used = (swap.used_kb or 0) * 1024 / scale
        ax.barh(ypos["swap"], used, height=0.6, color=KIND_COLORS["swap"], label="swap used")
        ax.barh(ypos["swap"], swap.total_kb * 1024 / scale - used, left=used, height=0.6, color="#E8E8E8",
                label="swap free")
    ax.set_yticks([ypos[n] for n in rows], rows)
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return _svg(fig)


def sweep_figure(sweep: SweepTable, figure: str, label: str) -> Any:
    """A matplotlib figure of ``figure`` (a column of the cells' figures) over a sweep of
    one key (a line) or two (a heatmap, the first key on the y axis), the mean over
    seeds per cell; cells that failed are left out (NaN). ``label`` names the figure's
    unit on its axis. ValueError for another number of keys or an unknown figure.
    Used for the report's SVG and for ``memtrace sweep --plot``."""
    import numpy as np

    if len(sweep.axes) not in (1, 2):
        raise ValueError(f"a plot shows one or two varied keys, not {len(sweep.axes)}")
    if sweep.cells and figure not in sweep.cells[0].figures:
        raise ValueError(f"unknown figure {figure!r}: choose one of {', '.join(sweep.cells[0].figures)}")
    sums: dict[tuple[str, ...], list[float]] = {}
    for c in sweep.cells:
        v = c.figures.get(figure)
        sums.setdefault(tuple(v for _, v in c.settings), []).append(
            float("nan") if v is None or c.error else float(v))
    means = {k: float(np.mean(v)) for k, v in sums.items()}
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    nan = float("nan")
    if len(sweep.axes) == 1:
        ((key, values),) = sweep.axes
        ax.plot(range(len(values)), [means.get((v,), nan) for v in values], marker="o")
        ax.set_xticks(range(len(values)), values, rotation=45, ha="right", fontsize=8)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{figure} ({label})")
        ax.grid(alpha=0.3)
    else:
        (key_a, values_a), (key_b, values_b) = sweep.axes
        grid = np.array([[means.get((va, vb), nan) for vb in values_b] for va in values_a])
        im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis")
        ax.set_yticks(range(len(values_a)), values_a, fontsize=8)
        ax.set_xticks(range(len(values_b)), values_b, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(key_a)
        ax.set_xlabel(key_b)
        fig.colorbar(im, ax=ax, label=f"{figure} ({label})")
    ax.set_title(f"{sweep.target}: {figure}", fontsize=10)
    return fig


def plot_sweep_svg(sweep: SweepTable, figure: str) -> str:
    """:func:`sweep_figure` as an ``<svg>`` element."""
    units = {"kills": "OOM kills", "enomem": "ENOMEM refusals", "swap_outs": "pages"}
    return _svg(sweep_figure(sweep, figure, units.get(figure, "bytes")))
