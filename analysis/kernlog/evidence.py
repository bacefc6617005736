"""How each fact of an OOM report was read, and what else the log said about it.

A pasted report states some facts several times (the victim in the ``Killed process``
line and in the ``oom-kill:`` summary; the constraint in the summary, in the kill message
and in the memcg lines; the trigger in the header, on the ``CPU:`` line and in the printk
caller id), and a paste may cut or garble one of the statements. The parser records
every statement as a :class:`Statement` (the value, the raw lines it came from, the rule
that read it, how much that rule is worth, and whether its field sat at the cut end of a
truncated line); :func:`resolve` picks the value of the strongest trusted statement and
keeps the others that disagree as conflicts, so that the report can show both readings
rather than silently trusting one.

Weights are ordinal, not probabilities: a statement the kernel prints for exactly this
fact (the ``Killed process`` line for the victim) outweighs one it implies (a memcg usage
line for the constraint), which outweighs a default (no constraint printed: global).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

__all__ = ["Resolved", "Source", "Statement", "resolve"]


class Source(NamedTuple):
    """Where a statement was read: the raw lines (1-based), the parser's rule (which
    layout of which line), and how the line stage read those lines (``LogLine.rule``:
    prefixes, rejoining, truncation)."""

    linenos: tuple[int, ...]
    rule: str
    line_rule: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"lines": list(self.linenos), "rule": self.rule, "read_as": self.line_rule or None}


class Statement(NamedTuple):
    """One statement of a fact in the log. ``weight``: how much the rule that read it is
    worth (higher wins); ``trusted`` False when the value was the last field of a line the
    paste cut (``pid=10`` of a cut ``pid=116849``): it is reported, never chosen."""

    value: Hashable
    source: Source
    weight: int
    trusted: bool = True
    note: str = ""


class Resolved(NamedTuple):
    """A fact's value (None when nothing trustworthy states it), the statements that
    support it, and those that disagree."""

    value: Hashable
    support: tuple[Statement, ...]
    conflicts: tuple[Statement, ...]


_NOTHING = Resolved(None, (), ())


def resolve(statements: list[Statement] | None) -> Resolved:
    """The value of the strongest trusted statement (the first of equal weight); the
    statements of the same value support it (strongest first), every other one is a
    conflict."""
    if not statements:
        return _NOTHING
    trusted = [s for s in statements if s.trusted and s.value is not None]
    if not trusted:
        return Resolved(None, (), tuple(statements))
    best = max(trusted, key=lambda s: s.weight)  # max keeps the first of equal weights
    support = tuple(sorted((s for s in trusted if s.value == best.value), key=lambda s: -s.weight))
    conflicts = tuple(s for s in statements if s.value != best.value or not s.trusted)
    return Resolved(best.value, support, conflicts)
