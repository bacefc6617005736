"""Ready-made one-liner programs shipped with memtrace, bcc style.

Each tool is ``NAME.bt``, a program whose leading ``/* ... */`` comment is its doc
(first line ``NAME - summary``; a paragraph starting ``Simulated:`` says what its
output means on a simulated trace, which ``memtrace trace`` prints as a note there),
with ``NAME_example.txt`` beside it showing what it prints. ``memtrace tools`` lists
them; ``memtrace trace TARGET -t NAME`` runs one.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from importlib import resources

from memtrace.errors import NotFoundError


@dataclass(frozen=True)
class Tool:
    """A shipped tool: its name, one-line summary, doc, program text and example."""

    name: str
    summary: str
    doc: str
    source: str
    example: str
    #: what the output means on a simulated trace (the doc's ``Simulated:`` paragraph), or ""
    simulated: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.bt"


def _files() -> list[str]:
    return sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith(".bt"))


def tool_names() -> list[str]:
    """Names of the shipped tools, sorted."""
    return [f[:-3] for f in _files()]


def _doc_of(source: str) -> str:
    m = re.search(r"/\*(.*?)\*/", source, re.S)
    if not m:
        return ""
    lines = [re.sub(r"^\s*\* ?", "", line).rstrip() for line in m.group(1).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def load_tool(name: str) -> Tool:
    """The tool called ``name``; NotFoundError names the tools there are."""
    names = tool_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NotFoundError(f"unknown tool {name!r}{hint}; tools: {', '.join(names)}")
    base = resources.files(__name__)
    source = (base / f"{name}.bt").read_text()
    example_file = base / f"{name}_example.txt"
    example = example_file.read_text() if example_file.is_file() else ""
    doc = _doc_of(source)
    first = doc.splitlines()[0] if doc else name
    summary = first.split(" - ", 1)[1] if " - " in first else first
    return Tool(name, summary, doc, source, example, _simulated_of(doc))


def _simulated_of(doc: str) -> str:
    """The doc's paragraph that starts ``Simulated:``, as one line, without the word."""
    for para in doc.split("\n\n"):
        if para.startswith("Simulated:"):
            return " ".join(para[len("Simulated:"):].split())
    return ""


def tools() -> list[Tool]:
    """Every shipped tool, by name."""
    return [load_tool(n) for n in tool_names()]


__all__ = ["Tool", "load_tool", "tool_names", "tools"]
