"""``memtrace ps`` for terminals: one row a process, sizes as ``free -h`` prints them,
every line under 80 columns."""

from __future__ import annotations

from memtrace.units import format_seconds, format_size_short

from .ps import ProcTable
from .terminal import wrap

__all__ = ["render_ps_text"]


def render_ps_text(table: ProcTable, title: str | None = None, limit: int | None = None) -> str:
    """``table`` for terminals: at most ``limit`` rows (None: all); ``title`` names the
    input. A ``*`` marks an oom_score that differs from the kernel's own (snapshots)."""
    when = (f" (t={format_seconds(table.ts_ns)})" if table.ts_ns is not None and not table.at.startswith("t=")
            and table.source != "snapshot" else "")
    out = [f"processes at {table.at}{when}"]
    out.extend(wrap(f"from {title or table.source}", "  ", ""))
    out.append("")
    out.append(f"{'PID':>7} {'COMM':<15} {'ANON':>6} {'FILE':>6} {'SHMEM':>6} {'SWAP':>6} {'PGTBL':>6} "
               f"{'ADJ':>5} {'OOM_SCORE':>9}")
    rows = table.rows if limit is None else table.rows[:limit]
    for r in rows:
        score = "-" if r.oom_score is None else str(r.oom_score)
        if r.score_differs:
            score = f"{score}*"
        sizes = " ".join(f"{format_size_short(n):>6}" for n in (r.rss_anon_bytes, r.rss_file_bytes,
                                                                  r.rss_shmem_bytes, r.swap_bytes, r.pgtables_bytes))
        out.append(f"{r.pid:>7} {r.comm[:15]:<15} {sizes} {r.oom_score_adj:>5} {score:>9}")
    if limit is not None and len(table.rows) > limit:
        out.append(f"{'':>7} ... {len(table.rows) - limit} more (--all shows every process)")
    if not table.rows:
        out.append(f"{'':>7} (no live process)")
    out.append("")
    tp = f"{table.totalpages:,} pages (RAM + swap)" if table.totalpages else "unknown"
    out.extend(wrap(f"kernel {table.kernel_version}: {table.formula}; points = rss + swap + page tables + "
                    f"oom_score_adj * totalpages / 1000; totalpages = {tp}", "  ", ""))
    for r in rows:
        if r.ineligible:
            out.extend(wrap(f"{r.comm} (pid {r.pid}) is never chosen: {r.ineligible}", "    ", "  - "))
    differ = [r for r in rows if r.score_differs]
    if differ:
        out.extend(wrap("* differs from the kernel's /proc/PID/oom_score: " + ", ".join(
            f"pid {r.pid} kernel {r.kernel_oom_score}" for r in differ), "    ", ""))
    for n in table.notes:
        out.extend(wrap(f"note: {n}", "    ", ""))
    return "\n".join(out) + "\n"
