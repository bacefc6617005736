"""The report as a document: the text, Markdown and HTML renderers draw any section
the same way, so a new section shows in every format; cells are spelled one way
(memtrace.units); HTML escapes every name an input gives."""

from __future__ import annotations

from memtrace.analysis.report import html, markdown, text
from memtrace.analysis.report.document import (
    Chapter,
    Code,
    Column,
    Count,
    Document,
    Fields,
    Item,
    ItemList,
    Marked,
    MemoryPlot,
    Mib,
    Paragraph,
    Seconds,
    Section,
    Size,
    Table,
    cell_text,
)
from memtrace.analysis.report.model import (
    Candidate,
    Grower,
    OomKillReport,
    OomReport,
    ProcessSeries,
    TaskRef,
    Timeline,
    Unreclaimable,
    WhatIf,
)
from memtrace.analysis.report.render import render_report

MiB = 1 << 20
KINDS = ("anon", "file", "shmem", "kernel", "free", "swap")


def _doc(*sections: Section) -> Document:
    return Document(title="memtrace report: t", summary="1 OOM kill(s)", source="trace", warnings=(),
                    sections=(), chapters=(Chapter("kill-1", "OOM kill 1", sections),))


def _draw_all(doc: Document) -> dict[str, str]:
    return {"text": text.draw(doc), "md": markdown.draw(doc), "html": html.draw(doc)}


def test_cells_are_spelled_one_way() -> None:
    """Sizes as free -h, MiB columns as free -m (floor), times as seconds since boot."""
    assert cell_text(Size(1536 * MiB)) == "1.5Gi" and cell_text(Size(0)) == "0B"
    assert cell_text(Size(None)) == "unknown"
    assert cell_text(Mib(1536 * MiB + MiB - 1)) == "1,536"
    assert cell_text(Count(1234567)) == "1,234,567" and cell_text(Count(None)) == "-"
    assert cell_text(Count(None, "ineligible")) == "ineligible"
    assert cell_text(Seconds(4_929_000_000)) == "4.929 s"
    assert cell_text(Marked("avoided", "avoided")) == "avoided"


def test_a_new_section_shows_in_every_format() -> None:
    """A section the renderers never saw before (a swap table, say) is drawn by all
    three: its title, its paragraph, its list and its table's cells."""
    swap = Section("Swap activity", (
        Paragraph(("swap devices: ", Code("/dev/zram0"))),
        ItemList((Item("kswapd wrote pages out", "and read some back"),)),
        Table((Column("device"), Column("used", right=True), Column("since boot", right=True)),
              (("/dev/zram0", Size(512 * MiB), Seconds(1_500_000_000)),)),
    ))
    out = _draw_all(_doc(swap))
    for fmt, page in out.items():
        assert "Swap activity" in page and "/dev/zram0" in page and "512Mi" in page and "1.500 s" in page, fmt
        assert "kswapd wrote pages out" in page and "and read some back" in page, fmt
    assert "SINCE_BOOT" in out["text"] and "`/dev/zram0`" in out["md"] and "<code>/dev/zram0</code>" in out["html"]
    assert "| device | used | since boot |" in out["md"] and "|---|---:|---:|" in out["md"]
    assert "<th class=n>used</th>" in out["html"]
    assert max(len(line) for line in out["text"].splitlines()) < 80


def test_format_variants_and_figures() -> None:
    """A section limited to some formats is drawn only there; a figure is drawn in
    HTML only, and a section with nothing else is left out of text and Markdown."""
    only_text = Section("Only text", (Fields((("name", "value"),)),), formats=frozenset({"text"}))
    t = Timeline(ts_ns=(0, 10**9), kinds=dict.fromkeys(KINDS, (MiB, 2 * MiB)), kills_ts_ns=(10**9,))
    plot = Section("A plot", (MemoryPlot(t, "memory"),))
    out = _draw_all(_doc(only_text, plot))
    assert "Only text" in out["text"] and "name        value" in out["text"]
    assert "Only text" not in out["md"] and "Only text" not in out["html"]
    assert "A plot" not in out["text"] and "A plot" not in out["md"]
    assert "<h3>A plot</h3>" in out["html"] and out["html"].count("<svg") == 1


EVIL = "--><script>alert(1)</script><!--&\"'"


def test_html_escapes_every_name_from_the_input() -> None:
    """A comm, a cgroup path, a warning or a what-if detail that holds markup is
    shown as text, never run: no element it names makes it into the page."""
    t = Timeline(ts_ns=(1, 2), kinds=dict.fromkeys(KINDS, (1, 2)),
                 processes=(ProcessSeries(2, EVIL, (1, 2), (1, 2)),), kills_ts_ns=(2,))
    kill = OomKillReport(
        ts_ns=2, trigger=TaskRef(1, EVIL), constraint="CONSTRAINT_MEMCG", memcg="/" + EVIL, victim=TaskRef(2, EVIL),
        victim_points=10, candidates=(Candidate(2, EVIL, 10, 5, 0, 1, 0, 0),),
        unreclaimable=(Unreclaimable("anon_no_swap", 10, EVIL),), explanation=(EVIL,),
        what_if=(WhatIf(EVIL, "avoided", EVIL),), timeline=t, growers=(Grower(2, EVIL, 0, 10, 10),),
        outlived_kill=(Unreclaimable("shmem_no_owner", 1, EVIL),), kernel_version=EVIL, formula=EVIL)
    report = OomReport(source=EVIL, kills=(kill,), warnings=(EVIL,), timeline=t, scenario=EVIL,
                       machine={"kernel_version": EVIL})
    page = render_report(report, "html", title=EVIL)
    assert "<script" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 3
    for fmt in ("text", "md", "json"):
        assert "alert(1)" in render_report(report, fmt, title=EVIL)


#: Names a crafted input can carry (issue 14, finding 8): raw HTML, a javascript:
#: link and autolink, emphasis, a code span breaking out of its backticks, a table
#: cell separator, a newline starting a heading; terminal escapes (clear screen, an
#: OSC 8 hyperlink), a carriage return and a bidi override.
HOSTILE = ("<img src=x onerror=alert(1)>[click](javascript:alert(2)) <javascript:alert(3)> *em* `x` | y"
           "\n# heading \x1b[2J\x1b]8;;http://evil\x07link\x1b]8;;\x07\rover\u202eevil")


def _hostile_report() -> OomReport:
    t = Timeline(ts_ns=(1, 2), kinds=dict.fromkeys(KINDS, (1, 2)),
                 processes=(ProcessSeries(2, HOSTILE, (1, 2), (1, 2)),), kills_ts_ns=(2,))
    kill = OomKillReport(
        ts_ns=2, trigger=TaskRef(1, HOSTILE), constraint="CONSTRAINT_MEMCG", memcg="/" + HOSTILE,
        victim=TaskRef(2, HOSTILE), victim_points=10, candidates=(Candidate(2, HOSTILE, 10, 5, 0, 1, 0, 0),),
        unreclaimable=(Unreclaimable("anon_no_swap", 10, HOSTILE),), explanation=(HOSTILE,),
        what_if=(WhatIf(HOSTILE, "avoided", HOSTILE),), timeline=t, growers=(Grower(2, HOSTILE, 0, 10, 10),),
        outlived_kill=(Unreclaimable("shmem_no_owner", 1, HOSTILE),), kernel_version=HOSTILE, formula=HOSTILE)
    return OomReport(source=HOSTILE, kills=(kill,), warnings=(HOSTILE,), timeline=t, scenario=HOSTILE,
                     machine={"kernel_version": HOSTILE})


def test_markdown_escapes_every_name_from_the_input() -> None:
    """Rendered by a CommonMark parser (markdown-it-py, GFM tables on), the Markdown
    report holds no element, link or heading that a name made: the names are text."""
    from markdown_it import MarkdownIt

    page = render_report(_hostile_report(), "md", title=HOSTILE)
    rendered = MarkdownIt("commonmark").enable("table").render(page)
    assert "<img" not in rendered and "<a " not in rendered and "<em>" not in rendered
    assert "javascript:alert" in rendered  # as text
    assert "<h1>heading" not in rendered and "<h1># heading" not in rendered
    assert rendered.count("<h1>") == 1  # the title only
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert "\x1b" not in page and "\r" not in page and "\u202e" not in page and "\\| y" in page
    tables = rendered.split("<table>")[1:]
    assert tables
    for table in tables:  # no cell split in two by a name's |
        rows = table.split("</table>")[0].split("<tr>")[1:]
        assert len({row.count("<td") + row.count("<th") for row in rows}) == 1


def test_text_shows_terminal_escapes_as_text() -> None:
    """No control character of a name reaches the terminal: ESC, BEL, CR and the
    bidi override are printed as \\x1b, \\x07, \\x0d, \\u202e."""
    page = render_report(_hostile_report(), "text", title=HOSTILE)
    assert not any(c in page for c in "\x1b\x07\r\u202e")
    assert "\\x1b[2J" in page and "\\x1b]8;;http://evil\\x07" in page and "\\u202e" in page


def test_the_escapers() -> None:
    from memtrace.escape import markdown_code, markdown_text, printable

    assert printable("a\tb\nc\x00\x7f\x9b\u200f") == "a\tb\nc\\x00\\x7f\\x9b\\u200f"
    assert markdown_text("1. a_b _c_", line_start=True) == "1\\. a_b \\_c\\_" and markdown_text("1. x-y") == "1. x-y"
    assert markdown_code("a``b") == "```a``b```" and markdown_code("`x") == "`` `x ``"
