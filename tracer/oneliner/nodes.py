"""The one-liner language's syntax tree.

Every node records ``pos`` and ``end``, offsets into the program text, so that type
errors found later can put a caret under the right characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    pos: int
    end: int


# ----------------------------------------------------------------------------- expressions


@dataclass
class IntLit(Node):
    value: int


@dataclass
class StrLit(Node):
    value: str


@dataclass
class Ident(Node):
    """A bare name: a builtin (pid, comm, nsecs ...) or a field of the tracepoint."""

    name: str


@dataclass
class FieldRef(Node):
    """``args.name`` / ``args->name``: a field, even where a builtin has its name.

    Under a probe named as the kernel names it (``tracepoint:oom:mark_victim``) the
    name is the kernel's field first (:mod:`.kernelnames`); ``memtrace`` is set on
    the references such a field is defined by, which read memtrace's field."""

    name: str
    memtrace: bool = False


@dataclass
class MapRef(Node):
    """``@name`` or ``@name[k1, k2]``; ``keys`` None for a map without keys."""

    name: str
    keys: list[Expr] | None


@dataclass
class Var(Node):
    name: str


@dataclass
class Call(Node):
    name: str
    args: list[Expr]
    name_end: int = 0


@dataclass
class Unary(Node):
    op: str
    operand: Expr


@dataclass
class Binary(Node):
    op: str
    left: Expr
    right: Expr
    op_pos: int = 0


@dataclass
class Ternary(Node):
    cond: Expr
    then: Expr
    orelse: Expr


Expr = IntLit | StrLit | Ident | FieldRef | MapRef | Var | Call | Unary | Binary | Ternary


# ----------------------------------------------------------------------------- statements


@dataclass
class MapWrite(Node):
    """``@m[k] = value``, ``@m[k] op= value``, ``@m[k]++``/``--``."""

    target: MapRef
    op: str  # "=", "+=", "-=", ..., "++", "--"
    value: Expr | None


@dataclass
class VarWrite(Node):
    target: Var
    op: str
    value: Expr | None


@dataclass
class If(Node):
    cond: Expr
    then: list[Stmt]
    orelse: list[Stmt]


@dataclass
class CallStmt(Node):
    call: Call


Stmt = MapWrite | VarWrite | If | CallStmt


# ----------------------------------------------------------------------------- probes


@dataclass
class AttachPoint(Node):
    """One attach point: ``kind`` is tracepoint, BEGIN, END or interval."""

    kind: str
    text: str
    pattern: str = ""  # tracepoint name or glob (memtrace's, or the kernel event's with ``system``)
    period_ns: int = 0
    system: str = ""  # a kernel tracepoint system or glob (tracepoint:SYSTEM:EVENT), "" for memtrace's


@dataclass
class ProbeDef(Node):
    attach: list[AttachPoint]
    predicate: Expr | None
    body: list[Stmt]


@dataclass
class Program:
    source: str
    filename: str
    probes: list[ProbeDef] = field(default_factory=list)
    #: the ``config = { ... }`` block (key -> value), empty without one
    config: dict[str, int | str] = field(default_factory=dict)
