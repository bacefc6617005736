"""The report as a document: sections of paragraphs, lists, tables and figures.

A document is presentation, not data: :mod:`.sections` makes one from the frozen
:class:`~.model.OomReport` for each rendering (JSON shows the report itself). The
text, Markdown and HTML renderers (:mod:`.text`, :mod:`.markdown`, :mod:`.html`) draw
any document the same way, knowing nothing of OOM kills: a new report section is one
more :class:`Section` from :mod:`.sections`, and every format shows it.

What each format does with a block:

==========  ==============================  ==================  =========================
block       text (79 columns)               Markdown            HTML
==========  ==============================  ==================  =========================
Fields      ``name        value``           ``- **name**: v``   ``<dl>``
Paragraph   wrapped, hanging indent         the line            ``<p class="meta">``
ItemList    ``* item``                      ``1.`` or ``-``     ``<ol>`` or ``<ul>``
Table       aligned, headers in upper case  GFM table           ``<table>``
Figure      left out                        left out            inline SVG (:mod:`.plots`)
==========  ==============================  ==================  =========================

A section none of whose blocks a format draws (a figure, in text) is left out of that
format, title and all. Table cells are typed (:data:`Cell`) and spelled one way in
every format (:func:`cell_text`, from :mod:`memtrace.units`): sizes as ``free -h``
prints them, MiB columns as ``free -m``.

``Section.formats`` is for the sections whose formats showed different things before
the report became a document (the text report's MiB tables, Markdown's shorter
titles); it keeps each format's output as it was. A new section leaves it None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from memtrace.units import format_mib, format_seconds, format_size_short

from .model import MemoryComposition, OomKillReport, SwapState, SweepTable, Timeline


@dataclass(frozen=True)
class Code:
    """Literal text (a formula, a mask): backticks in Markdown, ``<code>`` in HTML."""

    text: str


#: Running text: plain strings and :class:`Code` spans.
Inline: TypeAlias = str | tuple[str | Code, ...]


def spans(text: Inline) -> tuple[str | Code, ...]:
    """``text`` as a tuple of spans."""
    return (text,) if isinstance(text, str) else text


def plain(text: Inline) -> str:
    """``text`` without markup."""
    return "".join(s if isinstance(s, str) else s.text for s in spans(text))


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Count:
    """A count (pages, points, runs), with thousands separators; ``none`` when unknown."""

    value: int | None
    none: str = "-"


@dataclass(frozen=True)
class Size:
    """A size in bytes, as ``free -h`` prints it (``1.5Gi``); ``unknown`` when None."""

    nr_bytes: int | None


@dataclass(frozen=True)
class Mib:
    """A size in bytes, in whole MiB as ``free -m`` prints it (the header names the
    unit); ``unknown`` when None."""

    nr_bytes: int | None


@dataclass(frozen=True)
class Seconds:
    """A moment in ns since boot, as seconds (``4.929 s``)."""

    ts_ns: int | None


@dataclass(frozen=True)
class Marked:
    """Text that HTML marks with a CSS class of the page (``avoided``, ``changed``);
    no class when ``mark`` is empty."""

    text: str
    mark: str = ""


Cell: TypeAlias = str | Count | Size | Mib | Seconds | Marked


def cell_text(cell: Cell) -> str:
    """The one spelling of ``cell``, whatever the format."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Count):
        return cell.none if cell.value is None else f"{cell.value:,}"
    if isinstance(cell, Size):
        return format_size_short(cell.nr_bytes, unknown="unknown")
    if isinstance(cell, Mib):
        return "unknown" if cell.nr_bytes is None else format_mib(cell.nr_bytes)
    if isinstance(cell, Seconds):
        return format_seconds(cell.ts_ns)
    return cell.text


# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Fields:
    """Named values: the facts at the head of a kill."""

    items: tuple[tuple[str, Inline], ...]


@dataclass(frozen=True)
class Paragraph:
    text: Inline


@dataclass(frozen=True)
class Item:
    """One list item; ``more`` (when not None) continues it on lines of its own."""

    text: str
    more: str | None = None


@dataclass(frozen=True)
class ItemList:
    items: tuple[Item, ...]
    ordered: bool = False


@dataclass(frozen=True)
class Column:
    """A table column: its header (lower case; text upper-cases it), whether its cells
    align right (numbers), and whether it wraps (text: the last column only)."""

    header: str
    right: bool = False
    wraps: bool = False


@dataclass(frozen=True)
class Table:
    """Rows of typed cells; ``marked_rows`` (indexes) stand out in HTML (the victim)."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    marked_rows: frozenset[int] = frozenset()


@dataclass(frozen=True)
class MemoryPlot:
    """Memory by kind over time (stacked), the kills marked."""

    timeline: Timeline
    title: str


@dataclass(frozen=True)
class ProcessesPlot:
    """Each process's RSS over time, the kills marked."""

    timeline: Timeline
    title: str


@dataclass(frozen=True)
class BadnessPlot:
    """Each candidate's badness as stacked terms."""

    kill: OomKillReport


@dataclass(frozen=True)
class CompositionPlot:
    """Where RAM was at an OOM (a kernel log's Mem-Info): one stacked bar of its parts,
    beside the tasks' RSS sum and swap."""

    memory: MemoryComposition
    swap: SwapState | None
    title: str


@dataclass(frozen=True)
class MemcgPlot:
    """A memcg OOM: every candidate's RSS over the window, stacked, against the
    cgroup's limit and its usage at the kill."""

    kill: OomKillReport


@dataclass(frozen=True)
class SweepPlot:
    """One figure of an embedded sweep over its cells: a line (one varied key) or a
    heatmap (two), the mean over seeds per cell."""

    sweep: SweepTable
    figure: str  # a column of SweepCell.figures: kills, enomem, peak_anon_bytes, ...


Figure: TypeAlias = MemoryPlot | ProcessesPlot | BadnessPlot | CompositionPlot | MemcgPlot | SweepPlot
Block: TypeAlias = Fields | Paragraph | ItemList | Table | Figure
FIGURES = (MemoryPlot, ProcessesPlot, BadnessPlot, CompositionPlot, MemcgPlot, SweepPlot)


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Section:
    """A titled run of blocks (untitled: the facts at the head of a chapter).
    ``formats`` limits it to some formats (see the module docstring); None: all."""

    title: Inline | None
    blocks: tuple[Block, ...]
    formats: frozenset[str] | None = None

    def blocks_in(self, fmt: str) -> tuple[Block, ...]:
        """The blocks ``fmt`` draws: none when the section is not for ``fmt``; no
        figures unless ``fmt`` is HTML."""
        if self.formats is not None and fmt not in self.formats:
            return ()
        if fmt == "html":
            return self.blocks
        return tuple(b for b in self.blocks if not isinstance(b, FIGURES))


@dataclass(frozen=True)
class Chapter:
    """One OOM kill (or panic, or refusal): a heading and its sections."""

    anchor: str
    heading: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Document:
    """A whole report: a title, a one-line summary, the input's warnings, sections
    about the whole input, one chapter per kill, and what to say when there is none."""

    title: str
    summary: str
    source: str
    warnings: tuple[str, ...]
    sections: tuple[Section, ...]
    chapters: tuple[Chapter, ...]
    empty_note: str | None = None


__all__ = [
    "FIGURES",
    "BadnessPlot",
    "Block",
    "Cell",
    "Chapter",
    "Code",
    "Column",
    "CompositionPlot",
    "Count",
    "Document",
    "Fields",
    "Figure",
    "Inline",
    "Item",
    "ItemList",
    "Marked",
    "MemcgPlot",
    "MemoryPlot",
    "Mib",
    "Paragraph",
    "ProcessesPlot",
    "Seconds",
    "Section",
    "Size",
    "SweepPlot",
    "Table",
    "cell_text",
    "plain",
    "spans",
]
