"""The report as Markdown (GitHub-flavoured tables).

Draws any :class:`~.document.Document`: ``#`` the title, ``##`` each chapter,
``###`` each section; code spans in backticks; figures left out. Every piece of
text is escaped (:mod:`memtrace.escape`): names from the input (comms, cgroups,
file paths) carry no markup, raw HTML or link into the page.
"""

from __future__ import annotations

from memtrace.escape import markdown_code, markdown_text

from .document import Block, Document, Fields, Inline, ItemList, Paragraph, Section, Table, cell_text, spans
from .model import OomReport
from .sections import document

__all__ = ["render_markdown"]

FORMAT = "md"


def render_markdown(report: OomReport, title: str | None = None) -> str:
    """``report`` as Markdown; ``title`` names the input."""
    return draw(document(report, title))


def draw(doc: Document) -> str:
    out = [f"# {markdown_text(doc.title)}", ""]
    for w in doc.warnings:
        out.append(f"> warning: {markdown_text(w)}")
    if doc.empty_note:
        out.append(markdown_text(doc.empty_note, line_start=True))
    for section in doc.sections:
        out.extend(_section(section))
    for chapter in doc.chapters:
        out += ["", f"## {markdown_text(chapter.heading)}", ""]
        for section in chapter.sections:
            out.extend(_section(section))
    return "\n".join(out) + "\n"


def _section(section: Section) -> list[str]:
    blocks = section.blocks_in(FORMAT)
    if not blocks:
        return []
    out = [] if section.title is None else ["", f"### {_inline(section.title)}", ""]
    for i, b in enumerate(blocks):
        if i:
            out.append("")
        out.extend(_block(b))
    return out


def _inline(text: Inline) -> str:
    parts = spans(text)
    return "".join(markdown_text(s, line_start=i == 0) if isinstance(s, str) else markdown_code(s.text)
                   for i, s in enumerate(parts))


def _block(block: Block) -> list[str]:
    if isinstance(block, Fields):
        return [f"- **{markdown_text(name)}**: {_inline(value)}" for name, value in block.items]
    if isinstance(block, Paragraph):
        return [_inline(block.text)]
    if isinstance(block, ItemList):
        marker = "1. " if block.ordered else "- "
        out = []
        for item in block.items:
            out.append(f"{marker}{markdown_text(item.text, line_start=True)}")
            if item.more is not None:
                out.append(" " * len(marker) + markdown_text(item.more, line_start=True))
        return out
    if isinstance(block, Table):
        out = ["| " + " | ".join(_cell(c.header) for c in block.columns) + " |",
               "|" + "|".join("---:" if c.right else "---" for c in block.columns) + "|"]
        out.extend("| " + " | ".join(_cell(cell_text(c)) for c in row) + " |" for row in block.rows)
        return out
    return []  # a figure


def _cell(text: str) -> str:
    return markdown_text(text)
