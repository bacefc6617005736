"""How a state provider declares what it folds: one :func:`folds` line on each handler.

A provider is the code of one subsystem (tasks, VMAs, pages, ...), in the manner of
lttng-analyses' linuxautomaton state providers. Everything the state fold knows of a
tracepoint sits on the handler that folds it::

    class VmaProvider(StateProvider):
        @folds("munmap", reads=("addr", "len_bytes", "handle"), keep=True)
        def _munmap(self, batch: EventBatch) -> None:
            ...

``reads`` are the fields the handler reads (a trace whose schema lacks one is
refused in one line, see :func:`memtrace.tracer.tracepoints.check_fields`; ``seq``,
``ts_ns`` and ``pid`` are in every schema), ``reads_if_present`` those it reads
when the schema has them, ``keep`` whether the events are kept whole in
:class:`~.model.History`, ``pfns`` and ``slots`` the fields naming a page frame or
a swap slot (events whose value the fold cannot track are left out before any
handler sees them), ``touches`` the one part of the state the handler reads and
writes when no handler of another part reads or writes it ("pages": page frames,
page tables, page cache, swap slots; "rss": the kmem:rss_stat counters), so that
its events may be folded out of ``seq`` order against another part's (see
:func:`~.folder.commute_classes`); empty: it reads what others write, and keeps its
place. A tracepoint kept but folded by no code is declared with :func:`keeps`.
:class:`~.folder.StateFolder` collects the declarations of its providers, in their
fixed order, into one dispatch table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from memtrace.tracer import EventBatch

from .core import FoldState

__all__ = ["Fold", "Handler", "StateProvider", "folds", "keeps"]

#: A provider's fold of one batch (events of one tracepoint, in seq order).
Handler = Callable[[EventBatch], None]
F = TypeVar("F", bound=Callable[..., Any])

#: The attribute :func:`folds` marks a handler with.
_MARK = "__state_folds__"


@dataclass(frozen=True)
class Fold:
    """What a provider declares about one tracepoint (see the module docstring)."""

    tracepoint: str
    reads: tuple[str, ...] = ()
    reads_if_present: tuple[str, ...] = ()
    keep: bool = False
    pfns: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    touches: str = ""


def folds(tracepoint: str, *, reads: tuple[str, ...] = (), reads_if_present: tuple[str, ...] = (),
          keep: bool = False, pfns: tuple[str, ...] = (), slots: tuple[str, ...] = (),
          touches: str = "") -> Callable[[F], F]:
    """Mark a provider method as its fold of ``tracepoint`` (a method may fold several:
    stack the decorators)."""
    spec = Fold(tracepoint, reads, reads_if_present, keep, pfns, slots, touches)

    def mark(handler: F) -> F:
        setattr(handler, _MARK, (spec, *_marks(handler)))  # top decorator first
        return handler

    return mark


def keeps(*tracepoints: str) -> tuple[Fold, ...]:
    """Declarations of tracepoints kept whole in History that no code folds."""
    return tuple(Fold(name, keep=True) for name in tracepoints)


def _marks(obj: object) -> Iterator[Fold]:
    for spec in getattr(obj, _MARK, ()):
        if isinstance(spec, Fold):
            yield spec


class StateProvider:
    """Base of the state providers: holds the shared :class:`~.core.FoldState` and
    lists the provider's declarations."""

    #: Declarations with no handler (:func:`keeps`).
    declared: ClassVar[tuple[Fold, ...]] = ()

    def __init__(self, state: FoldState) -> None:
        self.state = state

    @classmethod
    def declarations(cls) -> list[tuple[Fold, str | None]]:
        """Every declaration of the class with the name of its handler method (None
        for :attr:`declared`), in the order they are written."""
        out: list[tuple[Fold, str | None]] = [(spec, None) for spec in cls.declared]
        for name, attr in vars(cls).items():
            out.extend((spec, name) for spec in _marks(attr))
        return out

    def handlers(self) -> list[tuple[Fold, Handler | None]]:
        """:meth:`declarations` with each handler bound to this provider."""
        out: list[tuple[Fold, Handler | None]] = []
        for spec, name in self.declarations():
            handler: Handler | None = None if name is None else getattr(self, name)
            out.append((spec, handler))
        return out
