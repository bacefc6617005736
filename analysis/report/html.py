"""The report as one self-contained HTML page: inline CSS, plots as inline SVG (fonts
drawn as paths), no script, no link, nothing fetched.

Draws any :class:`~.document.Document`. Every piece of text is escaped, names from the
input (comms, cgroup paths, file names) included; the SVG comes from matplotlib, which
escapes the text it draws. matplotlib is imported only when a page has a figure.
"""

from __future__ import annotations

from html import escape

from .document import (
    FIGURES,
    Block,
    Document,
    Fields,
    Figure,
    Inline,
    ItemList,
    Marked,
    Paragraph,
    Section,
    Table,
    cell_text,
    spans,
)
from .model import OomReport
from .sections import document

__all__ = ["render_html"]

FORMAT = "html"

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#555} .warn{background:#fff4e5;border-left:4px solid #e69f00;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;margin:6px 0;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums} tr.victim td{background:#ffe9e0;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0} dt{font-weight:600} dd{margin:0}
.plot{background:#fff;border:1px solid #ddd;margin:8px 0;padding:4px} .plot svg{width:100%;height:auto;display:block}
.avoided{color:#007a3d;font-weight:600} .changed{color:#b35c00;font-weight:600}
ol li{margin:3px 0}
"""


def render_html(report: OomReport, title: str | None = None) -> str:
    """``report`` as one HTML page with plots; ``title`` names the input."""
    return draw(document(report, title))


def draw(doc: Document) -> str:
    e = escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{e(doc.title)}</title>", f"<style>{_CSS}</style></head><body><main>",
           f"<h1>{e(doc.title)}</h1>",
           f"<p class=\"meta\">{e(doc.summary)}; source: {e(doc.source)}</p>"]
    out.extend(f"<div class=\"warn\">{e(w)}</div>" for w in doc.warnings)
    for section in doc.sections:
        out.extend(_section(section, "h2"))
    if doc.empty_note:
        out.append(f"<p>{e(doc.empty_note)}</p>")
    for chapter in doc.chapters:
        out.append(f"<h2 id=\"{e(chapter.anchor)}\">{e(chapter.heading)}</h2>")
        for section in chapter.sections:
            out.extend(_section(section, "h3"))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _section(section: Section, tag: str) -> list[str]:
    blocks = section.blocks_in(FORMAT)
    if not blocks:
        return []
    out = [line for b in blocks for line in _block(b)]
    if section.title is not None:
        heading = f"<{tag}>{_inline(section.title)}</{tag}>"
        # A lead paragraph, or a list's opening tag, shares the heading's line.
        if isinstance(blocks[0], (Paragraph, ItemList)):
            out[0] = heading + out[0]
        else:
            out.insert(0, heading)
    return out


def _inline(text: Inline) -> str:
    return "".join(escape(s) if isinstance(s, str) else f"<code>{escape(s.text)}</code>" for s in spans(text))


def _block(block: Block) -> list[str]:
    e = escape
    if isinstance(block, Fields):
        return ["<dl>", *(f"<dt>{e(name)}</dt><dd>{_inline(value)}</dd>" for name, value in block.items), "</dl>"]
    if isinstance(block, Paragraph):
        return [f"<p class=\"meta\">{_inline(block.text)}</p>"]
    if isinstance(block, ItemList):
        tag = "ol" if block.ordered else "ul"
        return [f"<{tag}>",
                *(f"<li>{e(i.text)}" + ("" if i.more is None else f"<br>{e(i.more)}") + "</li>" for i in block.items),
                f"</{tag}>"]
    if isinstance(block, Table):
        return [_table(block)]
    if isinstance(block, FIGURES):
        return [f"<div class=\"plot\">{_svg(block)}</div>"]
    raise TypeError(f"no HTML for {type(block).__name__}")


def _svg(figure: Figure) -> str:
    # matplotlib takes a good part of a second to import: only pages with a figure pay it.
    from . import plots

    return plots.svg(figure)


def _table(t: Table) -> str:
    e = escape
    head = "".join(f"<th{' class=n' if c.right else ''}>{e(c.header)}</th>" for c in t.columns)
    out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for j, row in enumerate(t.rows):
        cells = []
        for c, col in zip(row, t.columns):
            classes = ["n"] if col.right else []
            if isinstance(c, Marked) and c.mark:
                classes.append(c.mark)
            attr = f" class=\"{' '.join(classes)}\"" if classes else ""
            cells.append(f"<td{attr}>{e(cell_text(c))}</td>")
        out.append(f"<tr{' class=victim' if j in t.marked_rows else ''}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)
