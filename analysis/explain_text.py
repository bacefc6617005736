"""``memtrace explain`` for terminals: free(1) in MiB, then each kind's parts with
their owner, reason and what would free them; every line under 80 columns. Parts
whose explanation differs only in the process they belong to share one paragraph
("each: ..."); ``--by process`` is smem's table."""

from __future__ import annotations

from memtrace.units import format_mib, format_seconds, format_size

from .explain import FREED_BY, KINDS, ExplainResult, Part, ProcessUsageTable
from .terminal import wrap

__all__ = ["render_explain_text", "render_process_usage_text"]

#: free(1)'s columns, in its order: (key of ExplainResult.free, header).
_FREE_COLUMNS = (("total", "total"), ("used", "used"), ("free", "free"), ("shared", "shared"),
                 ("buff_cache", "buff/cache"), ("available", "available"))


def _general(p: Part, text: str) -> str:
    """``text`` of part ``p`` with its own process and mapping named generally
    ("the process", "its mapping"), so that parts that differ only in those read
    alike."""
    o = p.owner
    if o.pid is not None and o.comm is not None:
        text = text.replace(f"{o.comm} (pid {o.pid})", "the process")
    if o.mapping:
        text = text.replace(f"mapping {o.mapping}", "its mapping")
    return text


def _same_reason(parts: list[Part]) -> list[list[Part]]:
    """Parts whose reason, detail and remedies read the same once their own process
    is named generally, grouped (in order of their first part): their paragraph is
    printed once, not once per process."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[Part]] = {}
    for p in parts:
        groups.setdefault((_general(p, p.reason), _general(p, p.detail), p.freed_by), []).append(p)
    return list(groups.values())


def render_explain_text(res: ExplainResult, title: str | None = None) -> str:
    """``res`` for terminals; ``title`` names the input (default: its source)."""
    out: list[str] = []
    scope = "" if res.scope == "system" else f" ({res.scope})"
    ts = f" (t={format_seconds(res.ts_ns)})" if res.ts_ns is not None and not res.at.startswith("t=") else ""
    # The heading leads with the moment, the source goes on a line of its own: a long path
    # must not split the heading wherever the terminal width happens to fall.
    out.append(f"memory at {res.at}{ts}{scope}")
    out.extend(wrap(f"from {title or res.source}", "  ", ""))
    if res.free:
        free = res.free
        out.append("")
        out.append(f"{'':6}" + "".join(f"{header:>11}" for _, header in _FREE_COLUMNS))
        out.append(f"{'Mem:':6}" + "".join(f"{format_mib(free[key]):>11}" for key, _ in _FREE_COLUMNS) + "  MiB")
        fb = res.free_breakdown()
        if fb:
            bc = fb["buff_cache"]
            out.extend(wrap(f"buff/cache = FILE {format_size(bc['file'])} + SHMEM {format_size(bc['shmem'])} + "
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
        for group in _same_reason(parts):
            for p in group:
                out.extend(wrap(f"{format_size(p.bytes):>9}  {p.owner.name}", " " * 13, "  "))
            first = group[0]
            each = "each: " if len(group) > 1 else ""
            reason, detail = (_general(first, first.reason), _general(first, first.detail)) if each else \
                (first.reason, first.detail)
            out.extend(wrap(each + reason, " " * 13, " " * 13))
            if detail:
                out.extend(wrap(detail, " " * 13, " " * 13))
            if first.kind != "free":
                freed = ", ".join(first.freed_by) if first.freed_by else "-"
                out.extend(wrap(f"freed by: {freed}", " " * 13, " " * 13))
    if res.unknown:
        out.append("")
        out.append("Cannot be told from this input:")
        for u in res.unknown:
            out.extend(wrap(u, "    ", "  - "))
    for w in res.warnings:
        out.extend(wrap(f"warning: {w}", "    "))
    used_by = sorted({how for p in res.parts for how in p.freed_by if how in FREED_BY})
    if used_by:
        out.append("")
        out.append("freed by:")
        for how in used_by:
            out.extend(wrap(f"{how}: {FREED_BY[how]}", "      ", "  "))
    return "\n".join(out) + "\n"


def _user(uid: int) -> str:
    """smem's User column: a trace holds uids, not the machine's user names; uid 0
    is root everywhere."""
    return "root" if uid == 0 else str(uid)


def render_process_usage_text(table: ProcessUsageTable) -> str:
    """``explain --by process`` as smem prints it with ``-t``: PID, User, Command,
    Swap, USS, PSS, RSS in kB, smaller PSS first, then a rule and the totals (the
    number of processes, of users, and each column summed)."""
    ts = f" (t={format_seconds(table.ts_ns)})" if table.ts_ns is not None and not table.at.startswith("t=") else ""
    out = [f"memory by process at {table.at}{ts}, in kB (smem's columns)", ""]
    header = f"{'PID':>5} {'User':<8} {'Command':<27} {'Swap':>8} {'USS':>8} {'PSS':>8} {'RSS':>8}"
    out.append(header)
    for r in table.rows:
        out.append(f"{r.pid:>5} {_user(r.uid):<8.8} {r.comm:<27.27} {r.swap_bytes // 1024:>8} "
                   f"{r.uss_bytes // 1024:>8} {r.pss_bytes // 1024:>8} {r.rss_bytes // 1024:>8}")
    t = table.totals()
    # smem sums the kB it read, row by row.
    kb = [sum(getattr(r, f"{col}_bytes") // 1024 for r in table.rows) for col in ("swap", "uss", "pss", "rss")]
    out.append("-" * len(header))
    out.append(f"{t['processes']:>5} {t['users']:<8} {'':<27} {kb[0]:>8} {kb[1]:>8} {kb[2]:>8} {kb[3]:>8}")
    for note in table.notes:
        out.extend(wrap(f"note: {note}", "  "))
    return "\n".join(out) + "\n"
