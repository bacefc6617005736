"""A sweep's results embedded in a report (``memtrace report TRACE --sweep RESULTS.json``).

``memtrace sweep ... -o RESULTS.json`` (or ``--json``) writes every cell of a sweep as
plain JSON: the target, the varied keys and their values, one row per replay (the
settings, the seed, the outcome and the figures) and, with ``--find-min``/``--find-max``,
the boundaries found. This module reads that file back into a :class:`~.model.SweepTable`
(checking its shape: it may come from anywhere) and lays it out as a report chapter: a
sentence per boundary, the baseline score when the sweep had one, a table of the cells
and, in HTML, a line (one key) or heatmap (two keys) of the kills.

The analysis layer never replays: the sweep is run by ``memtrace sweep`` (replay/sweep.py)
and only its results come here, so a report can embed a sweep run elsewhere (on a Dask
cluster) or earlier.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memtrace.errors import InputError

from .document import Chapter, Column, Count, Paragraph, Section, Size, SweepPlot, Table
from .model import SweepCell, SweepTable

__all__ = ["MAX_SWEEP_BYTES", "read_sweep", "sweep_chapter", "sweep_from_dict"]

#: The largest results file read: 64 MiB (a sweep is capped at replay/sweep.MAX_CELLS cells,
#: a few hundred bytes each).
MAX_SWEEP_BYTES = 64 << 20
#: The columns of a cell row that are neither settings nor figures (CellResult.as_dict()).
_TEXT_KEYS = frozenset({"seed", "outcome", "victims", "panic", "error"})


def read_sweep(path: str | os.PathLike[str]) -> SweepTable:
    """The sweep results file ``path`` (``memtrace sweep -o R.json`` or ``--json``);
    InputError naming the file and what is wrong with it."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_SWEEP_BYTES + 1)
    except OSError as e:
        raise InputError(f"cannot read sweep results {p}: {e.strerror or e}") from None
    if len(data) > MAX_SWEEP_BYTES:
        raise InputError(f"{p}: sweep results larger than {MAX_SWEEP_BYTES >> 20} MiB")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{p}: not sweep results (memtrace sweep -o FILE.json): {e}") from None
    try:
        return sweep_from_dict(obj)
    except InputError as e:
        raise InputError(f"{p}: {e}") from None


_KIND_NAMES = {str: "a string", int: "an integer", list: "a list"}


def _want(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(f"{where}: {key!r} missing or not {_KIND_NAMES.get(kind, kind.__name__)}")
    return value


def _int_or_none(row: Mapping[str, Any], key: str, where: str) -> int | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{where}: {key!r} is not an integer")
    return value


def sweep_from_dict(obj: object) -> SweepTable:
    """:class:`SweepTable` of a sweep's JSON (``SweepResult.as_dict()``)."""
    if not isinstance(obj, dict):
        raise InputError("not sweep results: expected a JSON object with 'axes' and 'cells'")
    target = _want(obj, "target", str, "sweep")
    axes = []
    for i, axis in enumerate(_want(obj, "axes", list, "sweep")):
        where = f"axes[{i}]"
        if not isinstance(axis, dict):
            raise InputError(f"{where}: not an object")
        values = _want(axis, "values", list, where)
        if not all(isinstance(v, str) for v in values):
            raise InputError(f"{where}: 'values' are not strings")
        axes.append((_want(axis, "key", str, where), tuple(values)))
    keys = [k for k, _ in axes]
    cells = []
    for i, row in enumerate(_want(obj, "cells", list, "sweep")):
        where = f"cells[{i}]"
        if not isinstance(row, dict):
            raise InputError(f"{where}: not an object")
        settings = tuple((k, _want(row, k, str, where)) for k in keys)
        figures = {k: _int_or_none(row, k, where) for k, v in row.items()
                   if k not in _TEXT_KEYS and k not in keys and (v is None or isinstance(v, int))}
        cells.append(SweepCell(settings=settings, seed=_want(row, "seed", int, where),
                               outcome=_want(row, "outcome", str, where), figures=figures,
                               error=str(row.get("error") or "")))
    boundaries = []
    for i, b in enumerate(obj.get("boundaries") or []):
        if not isinstance(b, dict):
            raise InputError(f"boundaries[{i}]: not an object")
        boundaries.append(_boundary_text(b, f"boundaries[{i}]"))
    baseline = obj.get("baseline")
    summary = baseline.get("summary") if isinstance(baseline, dict) else None
    return SweepTable(target=target, axes=tuple(axes), seeds=_want(obj, "seeds", int, "sweep"), cells=tuple(cells),
                      boundaries=tuple(boundaries), baseline=summary if isinstance(summary, str) else None)


def _boundary_text(b: Mapping[str, Any], where: str) -> str:
    """One sentence for a boundary (the words of ``memtrace sweep``'s text)."""
    key = _want(b, "key", str, where)
    below, above = b.get("below"), b.get("above")
    lo, hi = str(b.get("outcome_below", "?")), str(b.get("outcome_above", "?"))
    settings = b.get("settings") or {}
    at = ", ".join(f"{k}={v}" for k, v in settings.items()) if isinstance(settings, dict) else ""
    at = f" (with {at})" if at else ""
    if below is None or above is None:
        return f"{key}{at}: the same outcome ({lo}) at both ends of the range: no boundary inside it"
    return f"{key}{at}: {lo} up to {below}; {hi} from {above}"


def sweep_chapter(s: SweepTable, i: int) -> Chapter:
    """The ``i``-th sweep of a report as a chapter: boundaries, baseline, table, plot."""
    keys = ", ".join(k for k, _ in s.axes) or "no key"
    blocks: list[Any] = [Paragraph(f"{len(s.cells)} replay(s) of {s.target} over {keys}"
                                   + (f", {s.seeds} seeds per cell" if s.seeds > 1 else "") + ".")]
    if s.baseline is not None:
        blocks.append(Paragraph(s.baseline + "."))
    blocks += [Paragraph(b + ".") for b in s.boundaries]
    sections = [Section(None, tuple(blocks))]
    if len(s.axes) in (1, 2) and s.cells:
        sections.append(Section("Kills over the sweep", (SweepPlot(s, "kills"),), frozenset({"html"})))
    columns = (*(Column(k.rsplit(".", 1)[-1].upper() if k.startswith("cgroup.") else k) for k, _ in s.axes),
               *((Column("SEED", right=True),) if s.seeds > 1 else ()), Column("OUTCOME", wraps=True),
               Column("ENOMEM", right=True), Column("PEAK ANON", right=True), Column("MEMCG PEAK", right=True))
    rows = tuple((*(v for _, v in c.settings), *((Count(c.seed),) if s.seeds > 1 else ()),
                  c.outcome if not c.error else f"error: {c.error}", Count(c.figures.get("enomem")),
                  Size(c.figures.get("peak_anon_bytes")), Size(c.figures.get("memcg_peak_bytes")))
                 for c in s.cells)
    sections.append(Section("Cells", (Table(columns, rows),)))
    return Chapter(f"sweep-{i}", f"Sweep {i}: {s.target} over {keys}", tuple(sections))
