"""The sections of a kill read from a kernel log (``OomKillReport.log``): how each fact
was read, the machine, the zones and their watermarks, free memory by block size, swap,
huge pages, the memcg, and where RAM was. A kill from a trace has no ``log``: none of
these sections, and its report is drawn as before.

Each builder takes the kill and returns its sections (none when the log did not print
what it shows); :data:`LOG_SECTIONS` lists them in order for :mod:`.sections`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from memtrace.units import KiB, format_size

from .document import (
    Column,
    CompositionPlot,
    Count,
    Fields,
    Inline,
    Item,
    ItemList,
    Paragraph,
    Section,
    Size,
    Table,
)
from .model import Fact, OomKillReport, TaskRef

__all__ = ["LOG_SECTIONS", "log_head_fields"]

TEXT = frozenset({"text"})
MD_HTML = frozenset({"md", "html"})

_KIND = {"sysrq": "manual (SysRq-f, order=-1): the kernel was asked to kill; nothing was short",
         "memcg_charge": "a memcg charge hit the cgroup's limit",
         "allocation": "a page allocation failed (the page allocator invoked the OOM killer)"}


def _kb(kb: int | None) -> Size | str:
    return "-" if kb is None else Size(kb * KiB)


def _who(t: TaskRef | None) -> str:
    if t is None or (t.pid is None and t.comm is None):
        return "unknown"
    if t.pid is None:
        return str(t.comm)
    return f"{t.comm or '?'} (pid {t.pid})"


def log_head_fields(k: OomKillReport) -> list[tuple[str, Inline]]:
    """The head fields a log adds: the task chosen when it is not the one killed, and
    what kind of OOM it was."""
    log = k.log
    if log is None:
        return []
    out: list[tuple[str, Inline]] = []
    chosen = log.chosen
    if chosen is not None and (chosen.pid, chosen.comm) != (k.victim.pid, k.victim.comm):
        score = f", score {log.chosen_score}" if log.chosen_score is not None else ""
        what = "chosen" if k.victim.pid is None else "chosen, a child killed instead"
        out.append(("chosen", f"{_who(chosen)}{score} ({what})"))
    if log.oom_kind is not None:
        out.append(("oom", _KIND.get(log.oom_kind, log.oom_kind)))
    return out


def _lines(lines: Sequence[int]) -> str:
    if not lines:
        return "-"
    return ",".join(str(n) for n in lines[:4]) + ("..." if len(lines) > 4 else "")


def _value(v: object, name: str = "") -> str:
    if isinstance(v, dict) and "pid" in v:
        return _who(TaskRef(v.get("pid"), v.get("comm")))
    if isinstance(v, int) and name == "gfp_mask":
        return f"{v:#x}"
    return "unknown" if v is None else str(v)


def _evidence(k: OomKillReport) -> list[Section]:
    """Each fact, where it was read, and every statement that disagrees."""
    log = k.log
    if log is None:
        return []
    rows = []
    for name, fact in log.facts.items():
        if fact.value is None and not fact.conflicts:
            continue
        first = fact.evidence[0] if fact.evidence else None
        rows.append((name.replace("_", " "), _value(fact.value, name), _lines(first.lines) if first else "-",
                     (first.rule if first else "not stated") + (f" (+{len(fact.evidence) - 1} more)"
                                                                if len(fact.evidence) > 1 else "")))
    table = Table((Column("fact"), Column("value"), Column("line", right=True), Column("read from", wraps=True)),
                  tuple(rows))
    # For 80 columns: one item per fact, the rule under it.
    items = ItemList(tuple(Item(f"{name}: {value} (line {lines})", rule) for name, value, lines, rule in rows))
    conflicts = ItemList(tuple(Item(_conflict(name, fact, i)) for name, fact in log.facts.items()
                               for i in range(len(fact.conflicts))))
    tail: tuple[ItemList | Paragraph, ...] = ()
    if conflicts.items:
        tail += (Paragraph("Stated otherwise elsewhere in the log:"), conflicts)
    if log.abridged:
        tail += (Paragraph("Shortened by a person or the paste: " + "; ".join(log.abridged[:6])),)
    title = "How each fact was read (log lines)"
    return [Section(title, (items, *tail), TEXT), Section(title, (table, *tail), MD_HTML)]


def _conflict(name: str, fact: Fact, i: int) -> str:
    c = fact.conflicts[i]
    where = f"line {_lines(c.lines)}" if c.lines else "the log"
    return (f"{name.replace('_', ' ')}: {_value(fact.value, name)} was taken; {where} says {_value(c.value, name)} "
            f"({c.rule})" + (f": {c.note}" if c.note else ""))


def _machine(k: OomKillReport) -> list[Section]:
    log = k.log
    if log is None:
        return []
    p = log.platform
    ps = log.page_size
    items: list[tuple[str, Inline]] = []
    if p.release:
        items.append(("kernel", p.release + (f" (taint {p.taint})" if p.taint else "")))
    if p.arch:
        items.append(("arch", f"{p.arch} (from {p.arch_how})"))
    else:
        items.append(("arch", "unknown" + (f": {p.arch_how}" if p.arch_how else " (nothing in the log tells)")))
    if p.distribution:
        items.append(("distro", f"{p.distribution} (from {p.distribution_how})"))
    items.append(("page size", f"{ps.nr_bytes // 1024} KiB ({ps.how})"))
    if p.hardware:
        items.append(("hardware", p.hardware))
    if log.gfp is not None:
        g = log.gfp
        items.append(("gfp", f"{g.mask:#x} = {g.flags or '0'} ({g.flags_how})"
                      + (f"; highest zone {g.zone}" if g.zone else "")))
    return [Section("Machine", (Fields(tuple(items)),))]


def _zones(k: OomKillReport) -> list[Section]:
    """Every zone's free memory against its watermarks (a table), and the verdict."""
    log = k.log
    if log is None or not any(z.free_kb is not None for z in log.zones):
        return []
    checks = {(c.node, c.zone): c for c in log.watermarks.zones} if log.watermarks else {}
    rows = []
    for z in log.zones:
        if z.free_kb is None:
            continue
        c = checks.get((z.node, z.zone))
        test = "-" if c is None else ("ok" if c.ok else "SHORT")
        rows.append(("-" if z.node is None else str(z.node), z.zone, _kb(z.free_kb), _kb(z.min_kb), _kb(z.low_kb),
                     _kb(z.high_kb), _kb(c.reserve_kb if c else None), Count(z.largest_free_order), test))
    columns = (Column("node", right=True), Column("zone"), Column("free", right=True), Column("min", right=True),
               Column("low", right=True), Column("high", right=True), Column("reserve", right=True),
               Column("max order", right=True), Column("min test"))
    blocks: tuple[Table | Paragraph, ...] = (Table(columns, tuple(rows),
                                                   frozenset(i for i, r in enumerate(rows) if r[-1] == "SHORT")),)
    if log.watermarks is not None:
        w = log.watermarks
        blocks += (Paragraph(f"Request: order {w.order}, zones up to {w.classzone}; tested at {w.mark} + "
                             f"lowmem_reserve[{w.classzone}], as __zone_watermark_ok() does: {w.verdict}."),)
    if len(log.nodes) > 1:  # NUMA: each node's zones summed
        node_rows = tuple((str(n.node), _kb(n.free_kb), _kb(n.min_kb), _kb(n.low_kb), _kb(n.high_kb),
                           _kb(n.kernel_stack_kb), _kb(n.pagetables_kb),
                           "-" if n.all_unreclaimable is None else ("yes" if n.all_unreclaimable else "no"))
                          for n in log.nodes)
        blocks += (Table((Column("node", right=True), Column("free", right=True), Column("min", right=True),
                          Column("low", right=True), Column("high", right=True), Column("stacks", right=True),
                          Column("pgtables", right=True), Column("unreclaimable")), node_rows),)
    nodes = [n for n in log.nodes if n.all_unreclaimable]
    if nodes:
        blocks += (Paragraph("all_unreclaimable: " + ", ".join(f"node {n.node}" for n in nodes)
                             + " (kswapd gave up reclaiming there)"),)
    return [Section("Memory zones (free memory against the watermarks)", blocks)]


def _blocks(k: OomKillReport) -> list[Section]:
    log = k.log
    if log is None or log.fragmentation is None:
        return []
    f = log.fragmentation
    rows = tuple(("-" if z.node is None else str(z.node), z.zone, _kb(z.free_kb), Count(z.largest_free_order),
                  _kb(z.free_kb_at_order), _kb(z.free_kb_at_costly_order)) for z in f.zones)
    table = Table((Column("node", right=True), Column("zone"), Column("free", right=True),
                   Column("max order", right=True), Column(f"in order>={f.order}", right=True),
                   Column(f"in order>={f.costly_order}", right=True)), rows)
    return [Section("Free memory by block size (buddy lists)", (table, Paragraph(f.verdict)))]


def _swap_and_memory(k: OomKillReport) -> list[Section]:
    log = k.log
    if log is None:
        return []
    items: list[tuple[str, Inline]] = []
    s = log.swap
    if s is not None:
        if not s.total_kb:
            items.append(("swap", "none (Total swap = 0kB)"))
        else:
            items.append(("swap", f"{format_size(s.total_kb * KiB)} total, {format_size((s.used_kb or 0) * KiB)} "
                                  f"used ({s.used_percent} %, {s.used_definition}), "
                                  f"{format_size((s.free_kb or 0) * KiB)} free"))
            if s.cache_kb is not None:
                items.append(("swap cache", f"{format_size(s.cache_kb * KiB)} ({s.cache_percent} % of swap; "
                                            "counted in used)"))
    m = log.memory
    blocks: list[Fields | Table | Paragraph | CompositionPlot] = []
    if m is not None:
        if m.ram_kb is not None:
            items.append(("RAM", f"{format_size(m.ram_kb * KiB)} (pages RAM), "
                                 f"{format_size((m.managed_kb or 0) * KiB)} managed by the kernel"))
        if m.tasks_rss_kb is not None:
            pct = f" ({m.tasks_rss_percent_of_ram} % of RAM)" if m.tasks_rss_percent_of_ram is not None else ""
            items.append(("tasks' RSS", f"{format_size(m.tasks_rss_kb * KiB)}{pct}, the task table's sum"))
    cg = log.memcg
    if cg is not None and cg.limit_kb is not None:
        items.append(("memcg", f"{cg.path or '?'} (cgroup v{cg.cgroup_version or '?'}): usage "
                               f"{format_size((cg.usage_kb or 0) * KiB)} of {format_size(cg.limit_kb * KiB)}, "
                               f"failcnt {cg.failcnt}; swap {cg.swap or 'unknown'}"
                      + (f" ({cg.swap_how})" if cg.swap_how else "")))
    for pool in log.hugepages:
        if pool.total:
            items.append(("huge pages", f"node {pool.node}: {pool.total} x {format_size(pool.size_kb * KiB)} = "
                                        f"{format_size(pool.pool_kb * KiB)} ({pool.free} free)"))
    if items:
        blocks.append(Fields(tuple(items)))
    if m is not None and m.parts_kb:
        base = m.ram_kb or sum(m.parts_kb.values())
        parts = [*m.parts_kb.items()] + ([("unaccounted", m.unaccounted_kb)] if m.unaccounted_kb is not None else [])
        rows = tuple((name.replace("_", " "), _kb(kb), f"{100 * kb / base:.1f} %" if base else "-")
                     for name, kb in parts)
        blocks.append(Table((Column("part"), Column("size", right=True), Column("of RAM", right=True)), rows))
        blocks.append(CompositionPlot(m, s, "Where RAM was at the OOM (Mem-Info)"))
        if m.caveats:
            blocks.append(Paragraph("; ".join(m.caveats)))
    if not blocks:
        return []
    return [Section("Memory at the OOM", tuple(blocks))]


#: The log sections, in order (after "Why").
LOG_SECTIONS: tuple[Callable[[OomKillReport], list[Section]], ...] = (
    _evidence, _machine, _zones, _blocks, _swap_and_memory)
