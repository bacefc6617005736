"""Text renderers for the CLI: free(1) tables, tracepoint listings, sizes.

Pure functions from data to strings, every line under 80 columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from memtrace.tracer.schema import Tracepoint

MiB = 1 << 20
FREE_COLUMNS = ("total", "used", "free", "shared", "buff_cache", "available")
FREE_HEADERS = ("total", "used", "free", "shared", "buff/cache", "available")


def format_bytes(n: int) -> str:
    """Human size with a binary unit: 512 B, 12.0 KiB, 1.50 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def free_table(snapshots: Sequence[dict[str, Any]], deltas: bool = True) -> str:
    """free -m for each snapshot (MiB, as procps divides: floor of kB/1024), with a
    ``change`` row against the previous snapshot when ``deltas``."""
    lines: list[str] = []
    head = f"{'':8}" + "".join(f"{h:>11}" for h in FREE_HEADERS)
    prev: dict[str, int] | None = None
    for snap in snapshots:
        free = snap["free"]
        lines.append(f"{snap['label']}  (t={snap['ts_ns'] / 1e9:.6f} s)")
        lines.append(head)
        lines.append(f"{'Mem:':8}" + "".join(f"{free[c] // MiB:>11}" for c in FREE_COLUMNS))
        if deltas and prev is not None:
            lines.append(f"{'change:':8}" + "".join(
                f"{'':>11}" if c == "total" else f"{free[c] // MiB - prev[c] // MiB:>+11}" for c in FREE_COLUMNS))
        prev = free
        lines.append("")
    if not snapshots:
        lines.append("(no snapshots)")
    return "\n".join(lines).rstrip("\n")


def _wrap(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def tracepoint_listing(tps: Iterable[Tracepoint]) -> str:
    """Tracepoints with typed fields, in the manner of ``bpftrace -lv``."""
    out: list[str] = []
    for t in tps:
        out.append(f"{t.name}  [{_wrap(t.kernel or '-', 70 - len(t.name))}]")
        out.append(f"    {_wrap(t.doc, 74)}")
        for f in t.all_fields:
            unit = f" ({f.unit})" if f.unit else ""
            if f.values:
                doc = f"{f.doc}: {'|'.join(f.values)}"
            else:
                doc = f.doc + unit
            prefix = f"    {f.type:<5} {f.name:<14} "
            out.append(prefix + _wrap(doc, 79 - len(prefix)))
        out.append("")
    return "\n".join(out).rstrip("\n")
