"""One entry point for every format of the report: ``memtrace report --format``."""

from __future__ import annotations

from .as_json import render_json
from .html import render_html
from .markdown import render_markdown
from .model import OomReport
from .text import render_text

__all__ = ["FORMATS", "render_report"]

#: The formats :func:`render_report` writes.
FORMATS = ("text", "md", "html", "json")


def render_report(report: OomReport, fmt: str = "text", title: str | None = None) -> str:
    """``report`` in ``fmt`` (one of :data:`FORMATS`); ``title`` names the input.
    ValueError for another format."""
    if fmt == "json":
        return render_json(report)
    if fmt == "text":
        return render_text(report, title)
    if fmt == "md":
        return render_markdown(report, title)
    if fmt == "html":
        return render_html(report, title)
    raise ValueError(f"unknown report format {fmt!r} (formats: {', '.join(FORMATS)})")
