"""Type checking and compilation of the language's expressions.

An expression node becomes a :class:`Typed`: a closure from a :class:`~.ops.Ctx`
(the selected events and the probe's variables) to a column or a scalar, with its
type (``int`` or ``str``), the enum field it reads (so a literal compared with it
can be checked) and, for a constant, its value. Map reads and the key types of
every map are checked here too; statements and probes are :mod:`.compiler`'s.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..probes import INT_KINDS, StrColumn, Tracer, sim_strftime
from ..probes.printf import time_format_problem
from ..schema import Field, Tracepoint
from .errors import ProgramError
from .kernelnames import KernelField, KernelProbe
from .nodes import (
    AttachPoint,
    Binary,
    Call,
    Expr,
    FieldRef,
    Ident,
    IntLit,
    MapRef,
    Node,
    ProbeDef,
    Program,
    StrLit,
    Ternary,
    Unary,
    Var,
)
from .ops import COMPARE, Ctx, i64, logical_not, np_arith, py_arith, str_where, truthy, wrap64
from .parser import Parser
from .unsupported import UNSUPPORTED_BUILTINS, UNSUPPORTED_FUNCTIONS

__all__ = [
    "AGGREGATIONS",
    "BUILTINS",
    "EXPR_FUNCTIONS",
    "PRINT_ARG_MAX",
    "STMT_FUNCTIONS",
    "VALUE_KIND",
    "Env",
    "ExpressionCompiler",
    "Instance",
    "MapInfo",
    "Site",
    "Typed",
    "key_desc",
    "kind_desc",
    "suggest",
    "ty_desc",
]

#: Builtin variables: name -> (type, description).
BUILTINS: dict[str, tuple[str, str]] = {
    "pid": ("int", "pid of the task in whose context the event fired"),
    "tid": ("int", "same as pid (tasks are single-threaded)"),
    "comm": ("str", "command name of pid, from process_start/fork events seen so far"),
    "nsecs": ("int", "event time, simulated ns since boot (the ts_ns field)"),
    "elapsed": ("int", "ns since the first event traced"),
    "cpu": ("int", "always 0: one simulated CPU"),
    "probe": ("str", "the probe's name: the tracepoint, BEGIN, END or interval:UNIT:N"),
}

#: Aggregating functions, only as the value of a map write: name -> (min, max) args.
AGGREGATIONS: dict[str, tuple[int, int]] = {
    "count": (0, 0), "sum": (1, 1), "min": (1, 1), "max": (1, 1), "avg": (1, 1),
    "stats": (1, 1), "hist": (1, 1), "lhist": (4, 4),
}
#: Functions usable in expressions.
EXPR_FUNCTIONS = {
    "str": "str(s): the string s (bpftrace reads a string at a pointer; memtrace's fields are strings already)",
    "path": "path(ino): path of an inode, from file_open/mmap events seen so far",
    "comm": "comm(pid): command name of any pid",
    "strftime": "strftime(fmt, ns): simulated time as text (clock reads 00:00:00 at boot)",
}
#: Functions usable as statements.
STMT_FUNCTIONS = {
    "printf": "printf(fmt, ...): one line per event (%d %u %x %s %c ...)",
    "print": "print(@m [, top [, div]]) prints a map; print(expr) prints a value",
    "clear": "clear(@m): delete every key",
    "zero": "zero(@m): set every value to zero",
    "delete": "delete(@m[key]) or delete(@m, key): delete one key",
    "time": "time([fmt]): print the simulated time (default \"%H:%M:%S\\n\")",
    "exit": "exit(): stop tracing; END still runs",
}
#: print(@m, top, div): bpftrace takes both as u32 (0 top: every entry; 0 div: 1).
PRINT_ARG_MAX = (1 << 32) - 1
VALUE_KIND = {"count": "int", "sum": "int", "int": "int", "min": "int", "max": "int", "avg": "int", "str": "str"}


# ----------------------------------------------------------------------------- checking


@dataclass
class MapInfo:
    """What the program does with one map: its kind, key types and where it is."""

    name: str
    order: int
    kind: str | None = None
    key_types: tuple[str | None, ...] | None = None
    lhist: tuple[int, int, int] | None = None
    written: bool = False
    write_node: Node | None = None
    key_node: Node | None = None

    @property
    def value_type(self) -> str | None:
        return VALUE_KIND.get(self.kind or "")


@dataclass
class Typed:
    """A compiled expression: its closure, type, enum field (for literal checks),
    constant value if any, and whether it reads only fields and builtins."""

    fn: Callable[[Ctx], Any]
    ty: str | None
    enum: Field | None = None
    const: Any = None
    pure: bool = True


@dataclass
class Site:
    """A map access by a compiled probe: which map, its key closures (None: a map
    without keys) and whether they are pure."""

    map: str
    keys: list[Callable[[Ctx], Any]] | None
    pure: bool
    op: str = "agg"  # writes: agg (commutes with other aggregations), set or delete


@dataclass
class Instance:
    """One probe compiled for one tracepoint (or BEGIN/END/interval)."""

    probe: ProbeDef
    attach: AttachPoint
    tp: Tracepoint | None
    label: str
    #: the kernel tracepoint the probe names (tracepoint:oom:mark_victim), or None
    kernel: KernelProbe | None = None
    predicate: Typed | None = None
    body: Callable[[Ctx], None] | None = None
    reads: list[Site] = field(default_factory=list)
    writes: list[Site] = field(default_factory=list)
    barrier: bool = False
    #: prints (printf, print, time): its events keep their place among every
    #: tracepoint's (see Tracer.commute)
    emits: bool = False


@dataclass
class Env:
    """Per compiled instance: the instance and its variables' types."""

    inst: Instance
    #: variable -> its type; None while only assignments of unknown type are seen
    vars: dict[str, str | None]


class ExpressionCompiler:
    """Compiles expressions and checks map keys and kinds for one program; the
    base of :class:`~.compiler.Compiler`, which adds statements and probes.

    Checking runs in passes over the whole program (see :mod:`.compiler`): until
    ``strict``, what is not known yet (a map's kind written further down) is left
    open, and ``changed`` says a pass learnt something new.
    """

    def __init__(self, program: Program, tracer: Tracer) -> None:
        self.program = program
        self.tracer = tracer
        self.registry = tracer.registry
        self.maps: dict[str, MapInfo] = {}
        self.strict = False
        self.changed = False

    def error(self, message: str, node: Node | tuple[int, int]) -> ProgramError:
        pos, end = (node.pos, node.end) if isinstance(node, Node) else node
        return ProgramError(message, self.program.source, pos, end, self.program.filename)

    def check_time_format(self, fmt: str, node: Node) -> None:
        """A ProgramError at ``node`` when ``fmt`` cannot be a strftime format (a NUL
        character: C's strftime would end the format there, Python's refuses it)."""
        problem = time_format_problem(fmt)
        if problem is not None:
            raise self.error(problem, node)

    # -- maps

    def _map_info(self, ref: MapRef) -> MapInfo:
        return self.maps[ref.name]

    def _keys(self, ref: MapRef, env: Env) -> tuple[Callable[[Ctx], Any] | None, list[Typed]]:
        """The closure giving a map access's key (None, one column, or a tuple)."""
        if ref.keys is None:
            return None, []
        typed = [self.expr(k, env) for k in ref.keys]
        for t, k in zip(typed, ref.keys):
            if t.ty is None and self.strict:
                raise self.error("cannot use this as a map key", k)
        info = self._map_info(ref)
        types = tuple(t.ty for t in typed)
        if info.key_types is None:
            info.key_types = types
            info.key_node = ref
            self.changed = True
        else:
            known = info.key_types
            if len(known) != len(types):
                raise self.error(f"{ref.name} is keyed by {key_desc(known)} elsewhere; here by {key_desc(types)}",
                                 ref)
            merged = []
            for a, b, node in zip(known, types, ref.keys):
                if a is not None and b is not None and a != b:
                    raise self.error(f"{ref.name} is keyed by {key_desc(known)} elsewhere; this key is {b}", node)
                merged.append(a if a is not None else b)
            if tuple(merged) != known:
                info.key_types = tuple(merged)
                self.changed = True
        fns = [t.fn for t in typed]
        if len(fns) == 1:
            f0 = fns[0]
            return f0, typed

        def key(ctx: Ctx) -> tuple[Any, ...]:
            return tuple(f(ctx) for f in fns)
        return key, typed

    def _check_no_keys(self, ref: MapRef) -> None:
        info = self._map_info(ref)
        if info.key_types is None:
            info.key_types = ()
            info.key_node = ref
            self.changed = True
        elif info.key_types != ():
            raise self.error(f"{ref.name} is keyed by {key_desc(info.key_types)} elsewhere; it needs a key here",
                             ref)

    def _set_kind(self, ref: MapRef, kind: str, node: Node, lhist: tuple[int, int, int] | None = None) -> None:
        info = self._map_info(ref)
        if info.kind is None:
            info.kind, info.write_node = kind, node
            self.changed = True
        elif info.kind != kind and not (info.kind in INT_KINDS and kind in INT_KINDS):
            raise self.error(f"{ref.name} holds {kind_desc(info.kind)} elsewhere; it cannot also hold "
                             f"{kind_desc(kind)}", node)
        if lhist is not None:
            if info.lhist is not None and info.lhist != lhist:
                raise self.error(f"{ref.name} is lhist{info.lhist} elsewhere; here lhist{lhist}", node)
            info.lhist = lhist
        info.written = True

    # -- expressions

    def _want(self, t: Typed, ty: str, node: Node, message: str) -> None:
        if t.ty is not None and t.ty != ty:
            raise self.error(f"{message}, not {'a string' if t.ty == 'str' else 'an integer'}", node)

    def expr(self, node: Expr, env: Env) -> Typed:
        if isinstance(node, IntLit):
            v = wrap64(node.value)
            return Typed(lambda ctx: v, "int", const=v)
        if isinstance(node, StrLit):
            s = node.value
            return Typed(lambda ctx: s, "str", const=s)
        if isinstance(node, Ident):
            return self.ident(node, env)
        if isinstance(node, FieldRef):
            return self.field(node.name, node, env)
        if isinstance(node, Var):
            if node.name not in env.vars:
                raise self.error(f"variable {node.name} is used before it is assigned", node)
            ty = env.vars[node.name]
            name = node.name
            default: Any = "" if ty == "str" else 0
            return Typed(lambda ctx: ctx.vars.get(name, default), ty, pure=False)
        if isinstance(node, MapRef):
            return self.map_read(node, env)
        if isinstance(node, Call):
            return self.call_expr(node, env)
        if isinstance(node, Unary):
            return self.unary(node, env)
        if isinstance(node, Binary):
            return self.binary(node, env)
        assert isinstance(node, Ternary)
        return self.ternary(node, env)

    def ident(self, node: Ident, env: Env) -> Typed:
        name = node.name
        if name in BUILTINS:
            if name in ("pid", "tid"):
                return Typed(lambda ctx: ctx.ev.pid, "int")
            if name == "nsecs":
                return Typed(lambda ctx: ctx.ev.nsecs, "int")
            if name == "elapsed":
                return Typed(lambda ctx: ctx.ev.elapsed, "int")
            if name == "comm":
                return Typed(lambda ctx: ctx.ev.comm, "str")
            if name == "cpu":
                return Typed(lambda ctx: 0, "int", const=0)
            label = env.inst.label
            return Typed(lambda ctx: label, "str", const=label)
        tp = env.inst.tp
        if name in UNSUPPORTED_BUILTINS and (tp is None or not tp.has_field(name)):
            raise self.error(f"bpftrace's builtin {name} is a feature memtrace cannot run: "
                             f"{UNSUPPORTED_BUILTINS[name]}", node)
        return self.field(name, node, env)

    def field(self, name: str, node: Node, env: Env) -> Typed:
        kp = env.inst.kernel
        if kp is not None and isinstance(node, FieldRef) and not node.memtrace:
            kf = kp.field(name)
            if kf is not None:
                return self.kernel_field(kp, kf, node, env)
        tp = env.inst.tp
        if tp is None:
            hint = "" if isinstance(node, FieldRef) else suggest(name, list(BUILTINS))
            raise self.error(f"{env.inst.label} probes have no fields: {name!r} is not a builtin{hint}", node)
        if not tp.has_field(name):
            if kp is not None:
                names = [f.name for f in kp.fields if f.expr and f.name != "__syscall_nr"]
                raise self.error(f"unknown field {name!r} of {kp.probe}{suggest(name, names + list(tp.field_names))} "
                                 f"(kernel fields: {', '.join(names)}; memtrace's {tp.name}: "
                                 f"{', '.join(tp.field_names)})", node)
            names = list(tp.field_names) + ([] if isinstance(node, FieldRef) else list(BUILTINS))
            raise self.error(f"unknown field {name!r} of {tp.name}{suggest(name, names)} "
                             f"(fields: {', '.join(tp.field_names)})", node)
        f = tp.field(name)
        if f.type in ("str", "enum"):
            return Typed(lambda ctx: ctx.ev.field(name), "str", enum=f if f.type == "enum" else None)
        return Typed(lambda ctx: ctx.ev.int_field(name), "int")

    def kernel_field(self, kp: KernelProbe, kf: KernelField, node: Node, env: Env) -> Typed:
        """``args.NAME`` of a probe named as the kernel names it: the kernel's field,
        read through the memtrace event (see :mod:`.kernelnames`)."""
        if not kf.expr:
            why = f" ({kf.note})" if kf.note else ""
            raise self.error(f"field {kf.name!r} of {kp.probe} is not recorded by memtrace{why}", node)
        alias = alias_expr(kf.expr, node.pos, node.end)
        tp = env.inst.tp
        if isinstance(alias, FieldRef) and tp is not None and tp.has_field(alias.name) \
                and tp.field(alias.name).type == "enum" and "char" not in kf.ctype:
            # The kernel's integer: the enum's code (memtrace keeps kernel values in order).
            field_name = alias.name
            return Typed(lambda ctx: ctx.ev.enum_code(field_name), "int")
        return self.expr(alias, env)

    def map_read(self, node: MapRef, env: Env) -> Typed:
        info = self._map_info(node)
        m = self.tracer.map(node.name)
        key_fn, typed = self._keys(node, env)
        if key_fn is None:
            self._check_no_keys(node)
        env.inst.reads.append(Site(node.name, [t.fn for t in typed] if key_fn else None,
                                   all(t.pure for t in typed)))
        if info.kind in ("hist", "lhist", "stats"):
            raise self.error(f"{node.name} holds {kind_desc(info.kind)}, which have no value to use here", node)
        if self.strict and not info.written:
            raise self.error(f"map {node.name} is never assigned", node)
        kf = key_fn or (lambda ctx: None)
        return Typed(lambda ctx: m.lookup(kf(ctx), n=ctx.n), info.value_type, pure=False)

    def call_expr(self, node: Call, env: Env) -> Typed:
        name = node.name
        args = node.args
        if name == "str":
            if len(args) != 1:
                raise self.error("str() takes one argument here (memtrace's strings have no length to cut)", node)
            a = self.expr(args[0], env)
            if a.ty == "int":
                raise self.error("str() of an integer reads a string at a kernel address, a bpftrace feature "
                                 "memtrace cannot run (memtrace's string fields are strings already)", node)
            return a
        if name in ("path", "comm"):
            if len(args) != 1:
                raise self.error(f"{name}() takes one argument", node)
            a = self.expr(args[0], env)
            self._want(a, "int", args[0], f"{name}() needs an integer ({'an inode' if name == 'path' else 'a pid'})")
            afn = a.fn
            if name == "path":
                return Typed(lambda ctx: ctx.ev.path(afn(ctx)), "str", pure=a.pure)
            return Typed(lambda ctx: ctx.ev.comm_of(afn(ctx)), "str", pure=a.pure)
        if name == "strftime":
            if len(args) != 2 or not isinstance(args[0], StrLit):
                raise self.error('strftime() takes a format string and a time: strftime("%H:%M:%S", nsecs)', node)
            fmt = args[0].value
            self.check_time_format(fmt, args[0])
            t = self.expr(args[1], env)
            self._want(t, "int", args[1], "strftime() needs a time in ns")
            tfn = t.fn

            def fmt_time(ctx: Ctx) -> Any:
                ts = tfn(ctx)
                if isinstance(ts, int):
                    return sim_strftime(fmt, ts)
                secs = i64(ts, ctx.n)
                if "%f" not in fmt:
                    secs = secs // 1_000_000_000 * 1_000_000_000
                uniq, inv = np.unique(secs, return_inverse=True)
                return StrColumn(inv.reshape(-1).astype(np.intp), [sim_strftime(fmt, s) for s in uniq.tolist()])
            return Typed(fmt_time, "str", pure=t.pure)
        if name in AGGREGATIONS:
            raise self.error(f"{name}() can only be assigned to a map: @m = {name}(...)", node)
        if name in STMT_FUNCTIONS:
            raise self.error(f"{name}() is a statement and has no value", node)
        if name in UNSUPPORTED_FUNCTIONS:
            raise self.error(f"bpftrace's {name}() is a feature memtrace cannot run ({UNSUPPORTED_FUNCTIONS[name]})",
                             (node.pos, node.name_end))
        hint = suggest(name, [*EXPR_FUNCTIONS, *STMT_FUNCTIONS, *AGGREGATIONS])
        raise self.error(f"unknown function {name}(){hint}", (node.pos, node.name_end))

    def _neg(self, x: Any, n: int) -> Any:
        if isinstance(x, int):
            return wrap64(-x)
        with np.errstate(over="ignore"):
            return -i64(x, n)

    def _arith(self, op: str, a: Any, b: Any, n: int) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            return py_arith(op, a, b)
        av = i64(a, n)
        bv = b if isinstance(b, int) else i64(b, n)
        return np_arith(op, av, bv)

    def unary(self, node: Unary, env: Env) -> Typed:
        t = self.expr(node.operand, env)
        self._want(t, "int", node.operand, f"'{node.op}' needs an integer")
        op = node.op
        if isinstance(t.const, int):
            c = t.const
            v = int(not c) if op == "!" else (wrap64(-c) if op == "-" else wrap64(~c))
            return Typed(lambda ctx: v, "int", const=v)
        fn = t.fn
        if op == "!":
            return Typed(lambda ctx: logical_not(fn(ctx)), "int", pure=t.pure)
        if op == "-":
            return Typed(lambda ctx: self._neg(fn(ctx), ctx.n), "int", pure=t.pure)
        return Typed(lambda ctx: ~i64(fn(ctx), ctx.n), "int", pure=t.pure)

    def binary(self, node: Binary, env: Env) -> Typed:
        op = node.op
        a = self.expr(node.left, env)
        b = self.expr(node.right, env)
        pure = a.pure and b.pure
        afn, bfn = a.fn, b.fn
        if op in ("&&", "||"):
            self._want(a, "int", node.left, f"'{op}' needs integers")
            self._want(b, "int", node.right, f"'{op}' needs integers")
            if op == "&&":
                return Typed(lambda ctx: np.logical_and(truthy(afn(ctx)), truthy(bfn(ctx))), "int", pure=pure)
            return Typed(lambda ctx: np.logical_or(truthy(afn(ctx)), truthy(bfn(ctx))), "int", pure=pure)
        if op in COMPARE:
            if a.ty is not None and b.ty is not None and a.ty != b.ty:
                raise self.error(f"cannot compare {ty_desc(a.ty)} with {ty_desc(b.ty)}", node)
            if "str" in (a.ty, b.ty):
                if op not in ("==", "!="):
                    raise self.error(f"strings compare only with == and !=, not '{op}'",
                                     (node.op_pos, node.op_pos + len(op)))
                for enum_side, lit_side, lit_node in ((a, b, node.right), (b, a, node.left)):
                    if enum_side.enum is not None and isinstance(lit_side.const, str) \
                            and lit_side.const not in enum_side.enum.values:
                        f = enum_side.enum
                        hint = suggest(lit_side.const, f.values)
                        raise self.error(f"{lit_side.const!r} is not a value of {f.name}{hint} "
                                         f"(values: {', '.join(f.values)})", lit_node)
                negate = op == "!="

                def str_cmp(ctx: Ctx) -> Any:
                    x, y = afn(ctx), bfn(ctx)
                    if isinstance(x, str) and isinstance(y, str):
                        eq: Any = x == y
                    elif isinstance(x, str):
                        eq = y == x
                    else:
                        eq = x == y
                    return ~eq if negate and isinstance(eq, np.ndarray) else (not eq if negate else eq)
                return Typed(str_cmp, "int", pure=pure)
            cmp = COMPARE[op]
            if isinstance(a.const, int) and isinstance(b.const, int):
                v = int(bool(cmp(a.const, b.const)))
                return Typed(lambda ctx: v, "int", const=v)
            return Typed(lambda ctx: cmp(afn(ctx), bfn(ctx)), "int", pure=pure)
        # arithmetic, bitwise, shifts
        self._want(a, "int", node.left, f"'{op}' needs integers")
        self._want(b, "int", node.right, f"'{op}' needs integers")
        if isinstance(a.const, int) and isinstance(b.const, int):
            v = py_arith(op, a.const, b.const)
            return Typed(lambda ctx: v, "int", const=v)
        return Typed(lambda ctx: self._arith(op, afn(ctx), bfn(ctx), ctx.n), "int", pure=pure)

    def ternary(self, node: Ternary, env: Env) -> Typed:
        c = self.expr(node.cond, env)
        self._want(c, "int", node.cond, "a condition must be an integer")
        a = self.expr(node.then, env)
        b = self.expr(node.orelse, env)
        if a.ty is not None and b.ty is not None and a.ty != b.ty:
            raise self.error(f"both branches must have one type: {ty_desc(a.ty)} and {ty_desc(b.ty)}", node)
        ty = a.ty or b.ty
        cfn, afn, bfn = c.fn, a.fn, b.fn
        pure = c.pure and a.pure and b.pure

        def pick(ctx: Ctx) -> Any:
            m = truthy(cfn(ctx))
            if not isinstance(m, np.ndarray):
                return afn(ctx) if m else bfn(ctx)
            x, y = afn(ctx), bfn(ctx)
            if ty == "str":
                return str_where(m, x, y, ctx.n)
            return np.where(m, i64(x, ctx.n), i64(y, ctx.n))
        return Typed(pick, ty, pure=pure)


def alias_expr(text: str, pos: int, end: int) -> Expr:
    """The expression ``text`` that defines a kernel field, every node placed at
    ``pos..end`` (errors point at the user's ``args.NAME``) and every ``args.NAME``
    in it reading memtrace's field."""
    p = Parser(text, "<kernel field>")
    node = p.expr()
    assert p.tok.kind == "eof", text

    def place(n: Any) -> None:
        if isinstance(n, Node):
            n.pos, n.end = pos, end
            if isinstance(n, FieldRef):
                n.memtrace = True
            elif isinstance(n, Binary):
                n.op_pos = pos
            elif isinstance(n, Call):
                n.name_end = end
            for value in vars(n).values():
                if isinstance(value, list):
                    for item in value:
                        place(item)
                else:
                    place(value)
    place(node)
    return node


def suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def ty_desc(ty: str | None) -> str:
    return "a string" if ty == "str" else "an integer"


def key_desc(types: tuple[str | None, ...]) -> str:
    if not types:
        return "nothing (a map without keys)"
    return "[" + ", ".join(t or "?" for t in types) + "]"


def kind_desc(kind: str | None) -> str:
    return {"count": "count() values", "sum": "integer values", "int": "integer values", "str": "string values",
            "min": "min() values", "max": "max() values", "avg": "avg() values", "stats": "stats() values",
            "hist": "hist() histograms", "lhist": "lhist() histograms"}.get(kind or "", "values")


