"""The report as JSON: :meth:`~.model.OomReport.as_dict`, indented (the shape is in
:mod:`.model`'s docstring)."""

from __future__ import annotations

import json
from typing import Any

from .model import OomReport

__all__ = ["render_json"]


def render_json(report: OomReport) -> str:
    """``report`` as one JSON object, and a newline."""
    return json.dumps(report.as_dict(), indent=2, default=_json_default) + "\n"


def _json_default(v: Any) -> Any:
    """numpy scalars as numbers, sets and tuples as lists."""
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"cannot write {type(v).__name__} as JSON")
