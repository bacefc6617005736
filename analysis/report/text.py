"""The report for terminals: every line under 80 columns.

Draws any :class:`~.document.Document`: the title, a summary line, the warnings,
then each chapter as a heading underlined with ``=`` and its sections, each titled
two columns in and drawn four columns in. Figures are left out.
"""

from __future__ import annotations

from memtrace.escape import printable

from ..terminal import WIDTH, table, wrap
from .document import Block, Chapter, Document, Fields, Item, ItemList, Paragraph, Section, Table, cell_text, plain
from .model import OomReport
from .sections import document

__all__ = ["render_text"]

FORMAT = "text"


def render_text(report: OomReport, title: str | None = None) -> str:
    """``report`` for terminals; ``title`` names the input."""
    return draw(document(report, title))


def draw(doc: Document) -> str:
    out: list[str] = []
    out.extend(wrap(doc.title))
    out.append(doc.summary)
    for w in doc.warnings:
        out.extend(wrap(f"warning: {w}", "    "))
    for section in doc.sections:
        out.extend(_section(section))
    for chapter in doc.chapters:
        out.append("")
        out.extend(_chapter(chapter))
    if doc.empty_note:
        out.append("")
        out.append(doc.empty_note)
    return printable("\n".join(out) + "\n")  # what no wrap() or table() drew too (titles)


def _chapter(chapter: Chapter) -> list[str]:
    out = [chapter.heading, "=" * min(len(chapter.heading), WIDTH)]
    for section in chapter.sections:
        out.extend(_section(section))
    return out


def _section(section: Section) -> list[str]:
    blocks = section.blocks_in(FORMAT)
    if not blocks:
        return []
    if section.title is None:
        return [line for b in blocks for line in _block(b, "  ")]
    out = ["", *wrap(plain(section.title), "    ", "  ")]
    for b in blocks:
        out.extend(_block(b, "    "))
    return out


def _block(block: Block, indent: str) -> list[str]:
    if isinstance(block, Fields):
        return [line for name, value in block.items
                for line in wrap(f"{name:<12}{plain(value)}", indent + " " * 12, indent)]
    if isinstance(block, Paragraph):
        return wrap(plain(block.text), indent + "  ", indent)
    if isinstance(block, ItemList):
        return [line for item in block.items for line in _item(item, indent)]
    if isinstance(block, Table):
        headers = [c.header.upper().replace(" ", "_") for c in block.columns]
        rows = [[cell_text(c) for c in row] for row in block.rows]
        right = {i for i, c in enumerate(block.columns) if c.right}
        return table(headers, rows, right=right, indent=indent, last_wraps=block.columns[-1].wraps)
    return []  # a figure


def _item(item: Item, indent: str) -> list[str]:
    out = wrap(item.text, indent + "  ", indent + "* ")
    if item.more is not None:
        out.extend(wrap(item.more, indent + "  ", indent + "  "))
    return out
