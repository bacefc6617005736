"""The report laid out as a document: which sections a kill has, in what order, with
what in them. Every format draws what this module returns (:mod:`.document`).

To add a section: write a function here that takes the kill and returns its
:class:`~.document.Section` in a list (empty when the kill has nothing to show), and
put it in :func:`kill_sections`'s list where it should appear (or build it in
:func:`document` for a section about the whole input). Text, Markdown and HTML then
show it; no renderer changes. If it shows data the report does not hold yet, add the
field to :mod:`.model` and fill it in :mod:`.build` (and in the kernel-log reader, if
a log can tell it).

Some sections come in per-format variants (``formats=...``): before the report was a
document, its text, Markdown and HTML forms showed these differently (the text
report's tables in MiB and upper case for 80 columns, Markdown's and HTML's titles,
HTML's candidate plot before the growers). The variants keep each output as it was;
merging them into one section each is a change of output, for another day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from memtrace.linux.limits import PAGE_SIZE
from memtrace.units import format_duration, format_seconds, format_size

from .document import (
    BadnessPlot,
    Block,
    Cell,
    Chapter,
    Code,
    Column,
    Count,
    Document,
    Fields,
    Inline,
    Item,
    ItemList,
    Marked,
    MemcgPlot,
    MemoryPlot,
    Mib,
    Paragraph,
    ProcessesPlot,
    Seconds,
    Section,
    Size,
    Table,
    cell_text,
    plain,
)
from .log_sections import LOG_SECTIONS, log_head_fields
from .model import Candidate, OomKillReport, OomReport, ReclaimActivity, Timeline
from .sweep import sweep_chapter

__all__ = ["document", "headline", "kill_sections", "report_title"]

TEXT = frozenset({"text"})
MD = frozenset({"md"})
HTML = frozenset({"html"})
MD_HTML = MD | HTML

_CONSTRAINT_TEXT = {
    "CONSTRAINT_NONE": "global",
    "CONSTRAINT_MEMCG": "memory cgroup",
    "CONSTRAINT_CPUSET": "cpuset",
    "CONSTRAINT_MEMORY_POLICY": "memory policy",
    "overcommit": "none: overcommit refused the request first",
}

NO_KILL = "No OOM kill, OOM panic or overcommit refusal in this input."

#: Most kills a text, Markdown or HTML report details, a chapter each (with its plots
#: in HTML: about 0.1 s a kill); each kill after them is one row of a last chapter.
#: A log can hold thousands of kills (an OOM loop; 2,816 in 10 MB of one real report
#: repeated took 279 s as HTML before this bound), where a reader wants the first
#: ones in full and the others listed. JSON holds every kill in full.
MAX_DETAILED_KILLS = 100


def document(report: OomReport, title: str | None = None) -> Document:
    """``report`` as a document; ``title`` names the input (default: its source)."""
    kills = [k for k in report.kills if k.constraint != "overcommit"]
    refusals = len(report.kills) - len(kills)
    sections = []
    if report.timeline is not None and report.timeline.ts_ns:
        sections.append(Section("Memory over time", (
            MemoryPlot(report.timeline, "Memory by kind (/proc/meminfo); kills marked"),)))
    return Document(
        title=report_title(report, title),
        summary=f"{len(kills)} OOM kill(s)" + (f", {refusals} overcommit refusal(s)" if refusals else ""),
        source=report.source,
        warnings=report.warnings,
        sections=tuple(sections),
        chapters=(*(Chapter(f"kill-{i}", headline(i, k), kill_sections(k))
                    for i, k in enumerate(report.kills[:MAX_DETAILED_KILLS], 1)),
                  *_further_kills(report.kills),
                  *(sweep_chapter(s, i) for i, s in enumerate(report.sweeps, 1))),
        empty_note=None if report.kills else NO_KILL,
    )


def _further_kills(kills: Sequence[OomKillReport]) -> list[Chapter]:
    """The kills after the first :data:`MAX_DETAILED_KILLS`, one row each, in one
    chapter (none when there are no more)."""
    if len(kills) <= MAX_DETAILED_KILLS:
        return []
    first, last = MAX_DETAILED_KILLS + 1, len(kills)
    rows = tuple((Count(i), _when(k), _constraint(k), headline(i, k).partition(": ")[2])
                 for i, k in enumerate(kills[MAX_DETAILED_KILLS:], first))
    note = Paragraph(f"This report details the first {MAX_DETAILED_KILLS} kills; here is one line for each of the "
                     f"other {last - first + 1:,}. --format json holds every one in full.")
    table = Table((Column("kill", right=True), Column("time"), Column("constraint"), Column("what", wraps=True)),
                  rows)
    return [Chapter("kill-more", f"OOM kills {first:,} to {last:,}", (Section(None, (note, table)),))]


def report_title(report: OomReport, title: str | None) -> str:
    """``memtrace report: INPUT (scenario, kernel, RAM, swap)``."""
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


def _when(k: OomKillReport) -> str:
    """When the kill happened: the log's wall-clock time as the log prints it (``Wed
    Mar 13 11:16:48 2024``), the seconds since boot in parentheses where known, or only
    the seconds since boot."""
    wall = k.extra.get("wall_clock")
    if isinstance(wall, str) and wall:
        return wall if k.ts_ns is None else f"{wall} ({format_seconds(k.ts_ns)})"
    return format_seconds(k.ts_ns)


def headline(i: int, k: OomKillReport) -> str:
    """``OOM kill 1 at 4.929 s: leaker (pid 102) killed`` (or a panic, or a refusal).
    A kernel log whose lines carry the wall clock (``dmesg -T``, syslog, the
    journal) gives it as printed, with the seconds since boot where it has them too."""
    when = _when(k)
    if k.constraint == "overcommit":
        trigger = _who(k.trigger.pid, k.trigger.comm) if k.trigger else _who(None, None)
        return f"ENOMEM {i} at {when}: {trigger} refused by overcommit"
    if k.victim.pid is None and k.extra.get("panic"):
        return f"OOM {i} at {when}: kernel panic"
    if k.log is not None and k.victim.pid is None:
        chosen = k.log.chosen
        if chosen is not None:
            return f"OOM {i} at {when}: {_who(chosen.pid, chosen.comm)} chosen; the log ends before the kill"
        return f"OOM {i} at {when}: the log ends before the kill"
    return f"OOM kill {i} at {when}: {_who(k.victim.pid, k.victim.comm)} killed"


def kill_sections(k: OomKillReport) -> tuple[Section, ...]:
    """The sections of one kill, in order (format variants side by side)."""
    builders: Sequence[Callable[[OomKillReport], list[Section]]] = (
        _facts, _why, *LOG_SECTIONS, _before_the_kill, _memcg_usage, _candidates_plotted, _growers, _reclaim,
        _unreclaimable, _candidates, _outlived, _what_if)
    return tuple(section for build in builders for section in build(k))


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
        shown = [(key, v) for key, v in m.items() if isinstance(v, int) and v and key.endswith("_bytes")
                 and v < 1 << 62][:8]
        return ", ".join(f"{key.removesuffix('_bytes')} {format_size(v)}" for key, v in shown) or "unknown"
    return ", ".join(f"{key} {format_size(m[key])}" for key in keys if key in m and (m[key] or key != "swap"))


def _window(k: OomKillReport) -> str:
    return format_duration(k.window_ns, unknown="window")


# --------------------------------------------------------------------------- sections


def _facts(k: OomKillReport) -> list[Section]:
    """Constraint, trigger, victim and memory (Markdown sets the gfp mask as code)."""
    trigger = _who(k.trigger.pid, k.trigger.comm) if k.trigger else "unknown"
    gfp: tuple[str | Code, ...] = ()
    if k.gfp_mask is not None:
        gfp = (", gfp_mask ", Code(f"{k.gfp_mask:#x}"), f", order {k.order}")
    victim: list[tuple[str, Inline]] = []
    if k.victim.pid is not None:
        pts = f", {k.victim_points:,} points" if k.victim_points is not None else ""
        victim = [("victim", _who(k.victim.pid, k.victim.comm) + pts)]
    victim.extend(log_head_fields(k))
    return [
        Section(None, (Fields((("constraint", _constraint(k)), ("trigger", trigger + plain(gfp)), *victim,
                               ("memory", _memory_line(k)))),), formats=TEXT | HTML),
        Section(None, (Fields((("constraint", _constraint(k)), ("trigger", (trigger, *gfp)), *victim,
                               ("memory", _memory_line(k)))),), formats=MD),
    ]


def _why(k: OomKillReport) -> list[Section]:
    if not k.explanation:
        return []
    return [Section("Why", (ItemList(tuple(Item(s) for s in k.explanation), ordered=True),))]


def _before_the_kill(k: OomKillReport) -> list[Section]:
    """The window before the kill: a table of /proc/meminfo readings (text) and a plot
    of each process's RSS (HTML)."""
    t = k.timeline
    if t is None:
        return []
    out = []
    if t.ts_ns:
        kinds = ("anon", "file", "shmem", "kernel", "free", "swap")
        columns = (Column("time", right=True), *(Column(kind, right=True) for kind in kinds))
        rows: tuple[tuple[Cell, ...], ...] = tuple(
            (Seconds(t.ts_ns[i]), *(Mib(t.kinds[kind][i]) for kind in kinds)) for i in _sampled(t))
        out.append(Section(f"Memory before the kill (MiB; {_window(k)} window)", (Table(columns, rows),), TEXT))
    if t.ts_ns or t.processes:
        out.append(Section(f"Before the kill ({_window(k)})",
                           (ProcessesPlot(t, "Resident memory of each process (RSS)"),)))
    return out


def _sampled(t: Timeline, max_rows: int = 8) -> list[int]:
    """At most ``max_rows`` reading indexes, evenly spread, first and last included."""
    n = len(t.ts_ns)
    if n <= max_rows:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_rows - 1)) for i in range(max_rows)})


def _growers(k: OomKillReport) -> list[Section]:
    if not k.growers:
        return []
    text = Table((Column("pid", right=True), Column("comm"), Column("before_mib", right=True),
                  Column("at_kill_mib", right=True), Column("growth_mib", right=True)),
                 tuple((str(g.pid), (g.comm or "?")[:15], Mib(g.start_bytes), Mib(g.end_bytes), Mib(g.growth_bytes))
                       for g in k.growers))
    other = Table((Column("pid", right=True), Column("comm"), Column("before", right=True),
                   Column("at kill", right=True), Column("growth", right=True)),
                  tuple((str(g.pid), g.comm or "?", Size(g.start_bytes), Size(g.end_bytes), Size(g.growth_bytes))
                        for g in k.growers))
    return [Section("Top growers", (text,), TEXT), Section("Top growers", (other,), MD_HTML)]


def _reclaim(k: OomKillReport) -> list[Section]:
    """Reclaim runs in the window and why scanned pages stayed (text leaves out the
    runs that could not apply: no kswapd or direct reclaim for a memcg OOM)."""
    rc = k.reclaim
    if rc is None:
        return []
    title = "Reclaim in the window"
    memcg = k.constraint == "CONSTRAINT_MEMCG"
    rows: list[tuple[Cell, ...]] = []
    if rc.kswapd_wakes or not memcg:
        rows.append(("kswapd", f"{rc.kswapd_wakes:,} wakes", "-", _pages(rc.kswapd_reclaimed_pages)))
    if rc.direct_runs or not memcg:
        rows.append(("direct", f"{rc.direct_runs:,} runs", _pages(rc.direct_scanned_pages),
                     _pages(rc.direct_reclaimed_pages)))
    if rc.memcg_runs or memcg:
        rows.append(("memcg", f"{rc.memcg_runs:,} runs", _pages(rc.memcg_scanned_pages),
                     _pages(rc.memcg_reclaimed_pages)))
    columns = (Column("reclaim"), Column("runs", right=True), Column("scanned", right=True),
               Column("reclaimed", right=True))
    if rc.file_cache_reclaimed_bytes is None or rc.swapped_out_pages is None:
        dropped = "page cache dropped and swapped out: unknown (the trace has no per-page events)"
    else:
        dropped = (f"page cache dropped {format_size(rc.file_cache_reclaimed_bytes)}; "
                   f"swapped out {_bytes(rc.swapped_out_pages)}")
    kept = Paragraph(f"{dropped}; kept: no swap {_bytes(rc.kept_no_swap_pages)}, "
                     f"dirty {_bytes(rc.kept_dirty_pages)}, mapped {_bytes(rc.kept_mapped_pages)}")
    every = Table(columns, _every_reclaim_row(rc))
    html_kept = Paragraph(
        f"{dropped}; scanned pages kept for lack of swap {_bytes(rc.kept_no_swap_pages)}, "
        f"dirty {_bytes(rc.kept_dirty_pages)}, mapped {_bytes(rc.kept_mapped_pages)}")
    return [Section(title, (Table(columns, tuple(rows)), kept), TEXT),
            Section(title, (every,), MD),
            Section(title, (every, html_kept), HTML)]


def _every_reclaim_row(rc: ReclaimActivity) -> tuple[tuple[Cell, ...], ...]:
    return (("kswapd", str(rc.kswapd_wakes), "-", _pages(rc.kswapd_reclaimed_pages)),
            ("direct", str(rc.direct_runs), _pages(rc.direct_scanned_pages), _pages(rc.direct_reclaimed_pages)),
            ("memcg", str(rc.memcg_runs), _pages(rc.memcg_scanned_pages), _pages(rc.memcg_reclaimed_pages)))


def _pages(nr_pages: int) -> Size:
    return Size(nr_pages * PAGE_SIZE)


def _bytes(nr_pages: int) -> str:
    return format_size(nr_pages * PAGE_SIZE)


def _unreclaimable(k: OomKillReport) -> list[Section]:
    if not k.unreclaimable:
        return []
    table = Table((Column("kind"), Column("size", right=True), Column("why", wraps=True)),
                  tuple((u.kind, Size(u.bytes), u.detail) for u in k.unreclaimable))
    return [Section("Not reclaimable at the kill", (table,))]


def _candidates(k: OomKillReport) -> list[Section]:
    """Every candidate's badness, as oom_badness() computes it (text and Markdown)."""
    if not k.candidates:
        return []
    rows = tuple(_candidate_row(k, c) for c in k.candidates)
    headers: tuple[str, ...] = ("rss", "swap", "pgtbl", "adj", "adj_pts", "points", "formula")
    text_title = (f"Candidates: badness as oom_badness() computes it (pages; kernel {k.kernel_version}: "
                  f"{k.formula}); * = victim, FORMULA = recomputed")
    columns = _CANDIDATE_COLUMNS
    text_rows = rows
    if k.log is not None:  # a log prints no points: they are the recomputation, nothing to check them against
        rows = text_rows = tuple(row[:-1] for row in rows)
        headers, columns = headers[:-1], columns[:-1]
        text_title = (f"Candidates: badness recomputed from the task table as oom_badness() computes it (pages; "
                      f"kernel {k.kernel_version}: {k.formula}); * = victim; columns all 0 left out")
        # For 80 columns: a term no task has (no swap, no adjustment) is left out of the text.
        keep = [0, 1] + [i for i in range(2, len(headers) + 2) if headers[i - 2] == "points"
                         or any(cell_text(r[i]) not in ("0", "-") for r in rows)]
        headers = tuple(headers[i - 2] for i in keep[2:])
        text_rows = tuple(tuple(r[i] for i in keep) for r in rows)
    text = Table((Column("pid", right=True), Column("comm"), *(Column(h, right=True) for h in headers)), text_rows)
    why = (ItemList(tuple(_not_recomputed(k))),) if k.log is None and _not_recomputed(k) else ()
    return [
        Section(text_title, (text, *why), TEXT),
        Section(("Candidates (kernel ", str(k.kernel_version), ": ", Code(str(k.formula)), ")"),
                (Table(columns, rows), *why), MD),
    ]


def _memcg_usage(k: OomKillReport) -> list[Section]:
    """A memcg OOM: the candidates' RSS against the cgroup's limit (HTML)."""
    t = k.memcg_timeline
    if t is None or not t.processes:
        return []
    return [Section(("Memory cgroup ", Code(str(k.memcg)), " against its limit"), (MemcgPlot(k),), HTML)]


def _candidates_plotted(k: OomKillReport) -> list[Section]:
    """The candidates with a plot of their badness terms (HTML, right after the
    window's plot)."""
    if not k.candidates:
        return []
    rows = tuple(_candidate_row(k, c) for c in k.candidates)
    victims = frozenset(j for j, c in enumerate(k.candidates) if c.pid == k.victim.pid)
    note = Paragraph(("oom_badness() for kernel ", str(k.kernel_version), ": ", Code(str(k.formula)),
                      "; FORMULA is the recomputation, = when equal."))
    columns = _CANDIDATE_COLUMNS
    if k.log is not None:  # see _candidates
        rows, columns = tuple(row[:-1] for row in rows), columns[:-1]
        note = Paragraph(("oom_badness() for kernel ", str(k.kernel_version), ": ", Code(str(k.formula)),
                          ", recomputed from the task table."))
    why = (ItemList(tuple(_not_recomputed(k))),) if k.log is None and _not_recomputed(k) else ()
    return [Section("Candidates", (note, BadnessPlot(k), Table(columns, rows, victims), *why), HTML)]


_CANDIDATE_COLUMNS = (Column("pid"), Column("comm"), *(Column(h, right=True) for h in (
    "rss", "swap", "pgtables", "oom_score_adj", "adj points", "points", "formula")))


def _candidate_row(k: OomKillReport, c: Candidate) -> tuple[Cell, ...]:
    mark = "*" if c.pid == k.victim.pid else ""
    return (f"{mark}{c.pid}", (c.comm or "?")[:15], Count(c.rss_pages), Count(c.swap_pages),
            Count(c.pgtables_pages), Count(c.oom_score_adj), Count(c.adj_points), Count(c.points, "ineligible"),
            _formula_check(c))


def _formula_check(c: Candidate) -> str:
    """``=`` when the recomputed points equal the recorded ones, else the recomputation;
    where the formula gives no points (it leaves the task out) though the kernel
    recorded some, why, in a few words (:func:`_not_recomputed` says it in full)."""
    if c.formula_points is None and c.points is None:
        return "="
    if c.formula_points is None:
        return _short_why(c.formula_why)
    return "=" if c.formula_points == c.points else f"{c.formula_points:,}"


#: oom_badness()'s reasons to leave a task out (memtrace.linux.oom_kill), as a
#: table cell says them.
_SHORT_WHY = (("OOM_SCORE_ADJ_MIN", "adj -1000"), ("MMF_OOM_SKIP", "oom-skipped"), ("find_lock_task_mm", "no mm"),
              ("vfork", "in vfork"), ("mems", "other mems"), ("global init", "init"), ("kernel thread", "kthread"))


def _short_why(why: str) -> str:
    for key, short in _SHORT_WHY:
        if key in why:
            return short
    return "left out"


def _not_recomputed(k: OomKillReport) -> list[Item]:
    """The candidates whose points the formula cannot give, each with the reason."""
    return [Item(f"{c.comm or '?'} (pid {c.pid}): the kernel recorded {c.points:,} points, but oom_badness() of "
                 f"kernel {k.kernel_version} leaves it out ({c.formula_why}); FORMULA shows "
                 f"'{_short_why(c.formula_why)}'")
            for c in k.candidates if c.formula_points is None and c.points is not None]


def _outlived(k: OomKillReport) -> list[Section]:
    if not k.outlived_kill:
        return []
    return [Section("Outlived the kill", (ItemList(tuple(Item(u.detail) for u in k.outlived_kill)),))]


def _what_if(k: OomKillReport) -> list[Section]:
    """The unchanged replay's score first (and the after-kill assumption every
    replay made), then each change; when the baseline does not reproduce the
    recording, the changes are listed as no answers, with why."""
    if not k.what_if:
        return []
    head: list[Block] = []
    b = k.what_if_baseline
    if b is not None:
        lines = [b.summary]
        if not b.reproduces:
            lines.append("so the replays below are not answers: " + "; ".join(b.reasons or (b.summary,)))
        lines += [f"assumed after the kill: {a}" for a in b.assumptions]
        head.append(ItemList(tuple(Item(line) for line in lines)))
    columns = (Column("change"), Column("outcome"), Column("detail"))
    return [
        Section("What if (replays of the workload)",
                (*head, ItemList(tuple(Item(f"{w.change}: {w.outcome.upper()}", w.detail) for w in k.what_if))),
                TEXT),
        Section("What if (replays)", (*head, Table(columns, tuple((w.change, w.outcome, w.detail)
                                                                   for w in k.what_if))), MD),
        Section("What if (replays of the workload)",
                (*head, Table(columns, tuple((w.change, Marked(w.outcome, _outcome_mark(w.outcome)), w.detail)
                                             for w in k.what_if))), HTML),
    ]


def _outcome_mark(outcome: str) -> str:
    return "avoided" if outcome == "avoided" else "changed" if outcome == "victim changed" else ""
