"""Type checker and vectorised compiler of the one-liner language.

A program compiles onto a :class:`~memtrace.tracer.probes.Tracer`: each probe,
once per tracepoint it matches, becomes a :class:`~memtrace.tracer.probes.Probe`
whose predicate and action are trees of closures over whole columns. An
expression node becomes a function from a context (the batch's selected events and
the probe's variables) to a column: an int64 numpy array (or a Python int for a
constant) or a :class:`~memtrace.tracer.probes.StrColumn` (or a Python str). So
``/comm == "leaker" && major/`` is two numpy masks and an ``&``; ``@[pid] = count()``
is one grouping of the pid column; ``if`` runs each branch on the rows selected
for it. Only ``printf`` (and ``print``/``time``) produce Python objects per event.

Types are ``int`` and ``str``. Integer fields (``u8`` ... ``i64``, ``bool`` as 0/1)
are 64-bit signed integers; ``str`` fields and ``enum`` fields are strings; an enum
compared with a string literal must name one of its values. Map values take their
type from what writes them; variables from their first assignment.

Type checking runs in passes: discovery passes learn every map's kind, key types
and value type from its writes wherever they are in the program; a final strict
pass reports what is still wrong, with a caret under it.

Where running a probe over a whole batch would differ from running it event by
event, the compiler says so to the tracer (see ``probes.py``): a map that probes of
one tracepoint both read and write has its keys checked for repeats within the
batch, and statements that act on a whole map at once (``print(@m)``, ``clear``,
``zero``, ``exit``) run on one event at a time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..probes import (
    INT_KINDS,
    Events,
    Map,
    PrintfOutput,
    StrColumn,
    Tracer,
    as_int64,
    cuts_isolate,
    cuts_unique,
    format_rows,
    parse_format,
    sim_strftime,
    unify_strings,
)
from ..schema import Field, Registry, Tracepoint
from .errors import ProgramError
from .nodes import (
    AttachPoint,
    Binary,
    Call,
    CallStmt,
    Expr,
    FieldRef,
    Ident,
    If,
    IntLit,
    MapRef,
    MapWrite,
    Node,
    ProbeDef,
    Program,
    Stmt,
    StrLit,
    Ternary,
    Unary,
    Var,
    VarWrite,
)
from .parser import parse

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


# ----------------------------------------------------------------------------- runtime


class Ctx:
    """The events a compiled block runs on, and the probe's variables for them."""

    __slots__ = ("ev", "n", "vars")

    def __init__(self, ev: Events, variables: dict[str, Any] | None = None) -> None:
        self.ev = ev
        self.n = ev.n
        self.vars: dict[str, Any] = variables if variables is not None else {}

    def select(self, mask: np.ndarray) -> Ctx:
        return Ctx(self.ev.select(mask), {k: _take(v, mask) for k, v in self.vars.items()})


def _take(v: Any, mask: np.ndarray) -> Any:
    if isinstance(v, (np.ndarray, StrColumn)):
        return v[mask]
    return v


def _wrap64(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def _truthy(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v if v.dtype == np.bool_ else v != 0
    return bool(v)


def _not(v: Any) -> Any:
    t = _truthy(v)
    return ~t if isinstance(t, np.ndarray) else int(not t)


def _i64(v: Any, n: int) -> np.ndarray:
    return as_int64(v, n)


def _c_div(a: np.ndarray, b: Any) -> np.ndarray:
    """C division (truncating) with BPF's x / 0 = 0."""
    if isinstance(b, int):
        if b == 0:
            return np.zeros(len(a), np.int64)
        if b > 0:
            q = a // b
            neg = a < 0
            if neg.any():
                q[neg] = -((-a[neg]) // b)
            return q
        b = np.full(len(a), b, np.int64)
    zero = b == 0
    bb = np.where(zero, 1, b)
    q = np.abs(a) // np.abs(bb)
    q = np.where((a < 0) != (bb < 0), -q, q)
    return np.where(zero, 0, q)


def _c_mod(a: np.ndarray, b: Any) -> np.ndarray:
    """C remainder (sign of the dividend) with BPF's x % 0 = x."""
    q = _c_div(a, b)
    bb = np.full(len(a), b, np.int64) if isinstance(b, int) else b
    r = a - q * bb
    return np.where(bb == 0, a, r)


def _py_arith(op: str, a: int, b: int) -> int:
    if op == "/":
        if b == 0:
            return 0
        q = abs(a) // abs(b)
        return _wrap64(q if (a >= 0) == (b > 0) else -q)
    if op == "%":
        if b == 0:
            return a
        q = abs(a) // abs(b)
        q = q if (a >= 0) == (b > 0) else -q
        return _wrap64(a - q * b)
    if op in ("<<", ">>"):
        s = min(max(b, 0), 63)
        return _wrap64(a << s) if op == "<<" else a >> s
    return _wrap64({"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op])


def _np_arith(op: str, a: np.ndarray, b: Any) -> np.ndarray:
    with np.errstate(over="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return _c_div(a, b)
        if op == "%":
            return _c_mod(a, b)
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        s = np.clip(b, 0, 63)
        return np.left_shift(a, s) if op == "<<" else np.right_shift(a, s)


_COMPARE = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


def _to_str_column(v: Any, n: int) -> StrColumn:
    return v if isinstance(v, StrColumn) else StrColumn.full(v, n)


def _str_where(mask: np.ndarray, a: Any, b: Any, n: int) -> StrColumn:
    ca, cb = unify_strings(_to_str_column(a, n), _to_str_column(b, n))
    return StrColumn(np.where(mask, ca.codes, cb.codes), ca.values)


def _scatter(parent: Any, mask: np.ndarray, child: Any, ty: str, n: int) -> Any:
    """``parent`` with the rows under ``mask`` replaced by ``child``'s."""
    if ty == "str":
        p, c = unify_strings(_to_str_column(parent if parent is not None else "", n),
                             _to_str_column(child, int(mask.sum())))
        codes = p.codes.copy()
        codes[mask] = c.codes
        return StrColumn(codes, p.values)
    full = _i64(parent if parent is not None else 0, n).copy()
    full[mask] = _i64(child, int(mask.sum()))
    return full


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
    predicate: Typed | None = None
    body: Callable[[Ctx], None] | None = None
    reads: list[Site] = field(default_factory=list)
    writes: list[Site] = field(default_factory=list)
    barrier: bool = False


class Compiler:
    """Compiles one parsed program onto a tracer (see :func:`compile_program`)."""

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

    # -- driver

    def run(self) -> Tracer:
        instances = self._instances()
        self._declare_maps()
        for _ in range(6):
            self.changed = False
            for inst in instances:
                self._compile_instance(inst)
            if not self.changed:
                break
        self.strict = True
        for inst in instances:
            self._compile_instance(inst)
        for name, info in self.maps.items():
            # The maps know their kind before the first write: a read that runs
            # before any write must give the right type ('' for a str map).
            m = self.tracer.map(name)
            if m.kind is None and not len(m):
                m.kind, m.lhist_params = info.kind, info.lhist
        self._install(instances)
        return self.tracer

    def _instances(self) -> list[Instance]:
        out: list[Instance] = []
        for probe in self.program.probes:
            for ap in probe.attach:
                if ap.kind == "tracepoint":
                    tps = self.registry.match(ap.pattern)
                    if not tps:
                        names = [tp.name for tp in self.registry]
                        raise self.error(f"no tracepoint matches {ap.pattern!r}{_suggest(ap.pattern, names)} "
                                         f"(see 'memtrace list')", ap)
                    out.extend(Instance(probe, ap, tp, tp.name) for tp in tps)
                else:
                    out.append(Instance(probe, ap, None, ap.text))
        return out

    def _declare_maps(self) -> None:
        """Every map in order of first appearance (the order END prints them)."""
        order: list[str] = []

        def visit(node: Any) -> None:
            if isinstance(node, MapRef) and node.name not in order:
                order.append(node.name)
            if isinstance(node, Node):
                for value in vars(node).values():
                    if isinstance(value, list):
                        for item in value:
                            visit(item)
                    elif isinstance(value, Node):
                        visit(value)

        for probe in self.program.probes:
            visit(probe)
        for i, name in enumerate(order):
            self.maps[name] = MapInfo(name, i)
            self.tracer.map(name)

    def _install(self, instances: list[Instance]) -> None:
        tracer = self.tracer
        groups: dict[str, list[Instance]] = {}
        for inst in instances:
            if inst.tp is not None:
                groups.setdefault(inst.tp.name, []).append(inst)
        segmenters = {name: _segmenter(group) for name, group in groups.items()}
        done: set[str] = set()
        for inst in instances:
            run = _runner(inst)
            pred = _predicate(inst)
            kind = inst.attach.kind
            if kind == "BEGIN":
                tracer.begin(_synthetic(run, pred))
            elif kind == "END":
                tracer.end(_synthetic(run, pred))
            elif kind == "interval":
                tracer.interval(inst.attach.period_ns, _synthetic(run, pred), inst.attach.text)
            else:
                assert inst.tp is not None
                name = inst.tp.name
                seg = segmenters[name] if name not in done else None
                done.add(name)
                tracer.probe(name, run, predicate=pred, segment=seg, name=inst.label)

    # -- per instance

    def _compile_instance(self, inst: Instance) -> None:
        inst.reads, inst.writes, inst.barrier = [], [], False
        env = Env(inst, {})
        if inst.probe.predicate is not None:
            pred = self.expr(inst.probe.predicate, env)
            self._want(pred, "int", inst.probe.predicate, "a predicate must be an integer (true when non-zero)")
            inst.predicate = pred
        else:
            inst.predicate = None
        inst.body, _ = self.block(inst.probe.body, env)

    def block(self, stmts: list[Stmt], env: Env) -> tuple[Callable[[Ctx], None], set[str]]:
        fns = []
        assigned: set[str] = set()
        for stmt in stmts:
            fn, names = self.statement(stmt, env)
            fns.append(fn)
            assigned |= names
        if len(fns) == 1:
            return fns[0], assigned

        def run(ctx: Ctx) -> None:
            for f in fns:
                f(ctx)
        return run, assigned

    def statement(self, stmt: Stmt, env: Env) -> tuple[Callable[[Ctx], None], set[str]]:
        if isinstance(stmt, MapWrite):
            return self.map_write(stmt, env), set()
        if isinstance(stmt, VarWrite):
            return self.var_write(stmt, env), {stmt.target.name}
        if isinstance(stmt, If):
            return self.if_stmt(stmt, env)
        assert isinstance(stmt, CallStmt)
        return self.call_stmt(stmt.call, env), set()

    def if_stmt(self, stmt: If, env: Env) -> tuple[Callable[[Ctx], None], set[str]]:
        cond = self.expr(stmt.cond, env)
        self._want(cond, "int", stmt.cond, "an if condition must be an integer")
        then, a1 = self.block(stmt.then, env)
        orelse, a2 = self.block(stmt.orelse, env) if stmt.orelse else (None, set())
        assigned = a1 | a2
        types = {name: env.vars.get(name) or "int" for name in assigned}
        cond_fn = cond.fn

        def run_branch(ctx: Ctx, mask: np.ndarray, body: Callable[[Ctx], None]) -> None:
            sub = ctx.select(mask)
            body(sub)
            for name in assigned:
                if name in sub.vars:
                    ctx.vars[name] = _scatter(ctx.vars.get(name), mask, sub.vars[name], types[name], ctx.n)

        def run(ctx: Ctx) -> None:
            m = _truthy(cond_fn(ctx))
            if not isinstance(m, np.ndarray):
                if m:
                    then(ctx)
                elif orelse is not None:
                    orelse(ctx)
                return
            if m.all():
                then(ctx)
                return
            if m.any():
                run_branch(ctx, m, then)
            if orelse is not None:
                inv = ~m
                if inv.all():
                    orelse(ctx)
                elif inv.any():
                    run_branch(ctx, inv, orelse)
        return run, assigned

    def var_write(self, stmt: VarWrite, env: Env) -> Callable[[Ctx], None]:
        name = stmt.target.name
        if stmt.op == "=":
            assert stmt.value is not None
            value = self.expr(stmt.value, env)
            old = env.vars.get(name)
            if old is not None and value.ty is not None and old != value.ty:
                raise self.error(f"{name} holds {old} values; cannot assign {value.ty}", stmt.value)
            if value.ty is not None:
                env.vars[name] = value.ty
            elif name not in env.vars:
                env.vars[name] = None  # type: ignore[assignment]
            fn = value.fn

            def assign(ctx: Ctx) -> None:
                ctx.vars[name] = fn(ctx)
            return assign
        # Compound: $x op= e, $x++.
        if name not in env.vars:
            raise self.error(f"variable {name} is used before it is assigned", stmt.target)
        if env.vars[name] == "str":
            raise self.error(f"{name} holds strings; {stmt.op} needs an integer", stmt)
        value_node = stmt.value if stmt.value is not None else IntLit(stmt.end, stmt.end, 1)
        value = self.expr(value_node, env)
        self._want(value, "int", value_node, f"{stmt.op} needs an integer")
        op = _compound_op(stmt.op)
        vfn = value.fn

        def update(ctx: Ctx) -> None:
            old = ctx.vars.get(name, 0)
            ctx.vars[name] = self._arith(op, old, vfn(ctx), ctx.n)
        return update

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
                raise self.error(f"{ref.name} is keyed by {_key_desc(known)} elsewhere; here by {_key_desc(types)}",
                                 ref)
            merged = []
            for a, b, node in zip(known, types, ref.keys):
                if a is not None and b is not None and a != b:
                    raise self.error(f"{ref.name} is keyed by {_key_desc(known)} elsewhere; this key is {b}", node)
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
            raise self.error(f"{ref.name} is keyed by {_key_desc(info.key_types)} elsewhere; it needs a key here",
                             ref)

    def _set_kind(self, ref: MapRef, kind: str, node: Node, lhist: tuple[int, int, int] | None = None) -> None:
        info = self._map_info(ref)
        if info.kind is None:
            info.kind, info.write_node = kind, node
            self.changed = True
        elif info.kind != kind and not (info.kind in INT_KINDS and kind in INT_KINDS):
            raise self.error(f"{ref.name} holds {_kind_desc(info.kind)} elsewhere; it cannot also hold "
                             f"{_kind_desc(kind)}", node)
        if lhist is not None:
            if info.lhist is not None and info.lhist != lhist:
                raise self.error(f"{ref.name} is lhist{info.lhist} elsewhere; here lhist{lhist}", node)
            info.lhist = lhist
        info.written = True

    def map_write(self, stmt: MapWrite, env: Env) -> Callable[[Ctx], None]:
        ref = stmt.target
        m = self.tracer.map(ref.name)
        key_fn, key_typed = self._keys(ref, env)
        if key_fn is None:
            self._check_no_keys(ref)
        pure = all(t.pure for t in key_typed)
        site = Site(ref.name, [t.fn for t in key_typed] if key_fn else None, pure)
        env.inst.writes.append(site)
        kf = key_fn or (lambda ctx: None)
        value = stmt.value
        if stmt.op in ("++", "--", "+=", "-="):
            if stmt.op in ("++", "--"):
                step = 1 if stmt.op == "++" else -1
                self._set_kind(ref, "sum", stmt)

                def incr(ctx: Ctx) -> None:
                    m.add(step, kf(ctx), n=ctx.n)
                return incr
            assert value is not None
            v = self.expr(value, env)
            self._want(v, "int", value, f"{stmt.op} on a map needs an integer")
            self._set_kind(ref, "sum", stmt)
            sign = 1 if stmt.op == "+=" else -1
            vfn = v.fn

            def add(ctx: Ctx) -> None:
                x = vfn(ctx)
                m.add(x if sign == 1 else self._neg(x, ctx.n), kf(ctx), n=ctx.n)
            return add
        if stmt.op != "=":
            # @m op= e: read, compute, write back.
            assert value is not None
            v = self.expr(value, env)
            self._want(v, "int", value, f"{stmt.op} needs an integer")
            self._set_kind(ref, "int", stmt)
            site.op = "set"
            env.inst.reads.append(Site(ref.name, [t.fn for t in key_typed] if key_fn else None, pure))
            op = _compound_op(stmt.op)
            vfn = v.fn

            def rmw(ctx: Ctx) -> None:
                k = kf(ctx)
                m.assign(self._arith(op, m.lookup(k, n=ctx.n), vfn(ctx), ctx.n), k, n=ctx.n)
            return rmw
        assert value is not None
        if isinstance(value, Call) and value.name in AGGREGATIONS:
            return self._aggregate(ref, m, kf, value, env)
        v = self.expr(value, env)
        if v.ty is not None:
            self._set_kind(ref, "str" if v.ty == "str" else "int", stmt)
        site.op = "set"
        vfn = v.fn

        def assign(ctx: Ctx) -> None:
            m.assign(vfn(ctx), kf(ctx), n=ctx.n)
        return assign

    def _aggregate(self, ref: MapRef, m: Map, kf: Callable[[Ctx], Any], call: Call, env: Env) -> Callable[[Ctx], None]:
        name = call.name
        lo, hi = AGGREGATIONS[name]
        if not lo <= len(call.args) <= hi:
            want = "no arguments" if hi == 0 else ("1 argument" if hi == 1 else f"{hi} arguments")
            raise self.error(f"{name}() takes {want}, got {len(call.args)}", call)
        if name == "count":
            self._set_kind(ref, "count", call)

            def count(ctx: Ctx) -> None:
                m.count(kf(ctx), n=ctx.n)
            return count
        v = self.expr(call.args[0], env)
        self._want(v, "int", call.args[0], f"{name}() needs an integer")
        vfn = v.fn
        if name == "lhist":
            params = []
            for arg, what in zip(call.args[1:], ("min", "max", "step")):
                t = self.expr(arg, env)
                if not isinstance(t.const, int):
                    raise self.error(f"lhist() {what} must be a constant integer", arg)
                params.append(t.const)
            lo_v, hi_v, step = params
            if step <= 0:
                raise self.error("lhist() step must be positive", call.args[3])
            if hi_v <= lo_v:
                raise self.error("lhist() max must be greater than min", call.args[2])
            if (hi_v - lo_v) // step > 1000:
                raise self.error("lhist() may have at most 1000 buckets", call)
            self._set_kind(ref, "lhist", call, (lo_v, hi_v, step))

            def lhist(ctx: Ctx) -> None:
                m.lhist(vfn(ctx), lo_v, hi_v, step, kf(ctx), n=ctx.n)
            return lhist
        self._set_kind(ref, name, call)
        method = getattr(m, name)

        def agg(ctx: Ctx) -> None:
            method(vfn(ctx), kf(ctx), n=ctx.n)
        return agg

    # -- calls as statements

    def call_stmt(self, call: Call, env: Env) -> Callable[[Ctx], None]:
        name = call.name
        args = call.args
        if name == "printf":
            return self._printf(call, env)
        if name == "print":
            if not 1 <= len(args) <= 3:
                raise self.error(f"print() takes 1 to 3 arguments, got {len(args)}", call)
            target = args[0]
            if isinstance(target, MapRef) and target.keys is None:
                info = self._map_info(target)
                if not info.written and self.strict:
                    raise self.error(f"map {target.name} is never assigned", target)
                top_div = []
                for arg, what in zip(args[1:], ("top", "div")):
                    # bpftrace: integer literals, passed to the printer as u32.
                    t = self.expr(arg, env)
                    if not isinstance(t.const, int) or not 0 <= t.const <= PRINT_ARG_MAX:
                        got = f", not {t.const}" if isinstance(t.const, int) else ""
                        raise self.error(f"print() {what} must be a constant integer from 0 to "
                                         f"{PRINT_ARG_MAX}{got}", arg)
                    top_div.append(t.const)
                top = top_div[0] if top_div else 0
                div = top_div[1] if len(top_div) > 1 else 1
                m = self.tracer.map(target.name)
                env.inst.barrier = True

                def print_map(ctx: Ctx) -> None:
                    ctx.ev.print(m, top, div or 1)
                return print_map
            if len(args) != 1:
                raise self.error("print(value) takes one argument; top and div are for maps", call)
            v = self.expr(target, env)
            vfn = v.fn

            def print_value(ctx: Ctx) -> None:
                ctx.ev.print_value(vfn(ctx))
            return print_value
        if name in ("clear", "zero"):
            if len(args) != 1 or not isinstance(args[0], MapRef) or args[0].keys is not None:
                raise self.error(f"{name}() takes one map: {name}(@m)", call)
            m = self.tracer.map(args[0].name)
            env.inst.barrier = True
            env.inst.writes.append(Site(args[0].name, None, True, "set"))
            method = m.clear if name == "clear" else m.zero

            def whole_map(ctx: Ctx) -> None:
                method()
            return whole_map
        if name == "delete":
            if len(args) == 1 and isinstance(args[0], MapRef) and args[0].keys is not None:
                ref = args[0]
            elif len(args) >= 2 and isinstance(args[0], MapRef) and args[0].keys is None:
                ref = MapRef(args[0].pos, args[-1].end, args[0].name, list(args[1:]))
            else:
                raise self.error("delete() takes a map element: delete(@m[key]) or delete(@m, key)", call)
            m = self.tracer.map(ref.name)
            key_fn, typed = self._keys(ref, env)
            assert key_fn is not None
            env.inst.writes.append(Site(ref.name, [t.fn for t in typed], all(t.pure for t in typed), "delete"))

            def delete(ctx: Ctx) -> None:
                m.delete(key_fn(ctx), n=ctx.n)
            return delete
        if name == "exit":
            if args:
                raise self.error("exit() takes no arguments", call)
            env.inst.barrier = True

            def do_exit(ctx: Ctx) -> None:
                ctx.ev.tracer.exit()
            return do_exit
        if name == "time":
            if len(args) > 1 or (args and not isinstance(args[0], StrLit)):
                raise self.error('time() takes an optional format string: time("%H:%M:%S\\n")', call)
            fmt = args[0].value if args else "%H:%M:%S\n"  # type: ignore[union-attr]

            def do_time(ctx: Ctx) -> None:
                ctx.ev.time(fmt)
            return do_time
        if name in AGGREGATIONS:
            raise self.error(f"{name}() must be assigned to a map: @m = {name}(...)", call)
        if name in EXPR_FUNCTIONS:
            raise self.error(f"the value of {name}() is unused", call)
        hint = _suggest(name, [*STMT_FUNCTIONS, *EXPR_FUNCTIONS, *AGGREGATIONS])
        raise self.error(f"unknown function {name}(){hint}", (call.pos, call.name_end))

    def _printf(self, call: Call, env: Env) -> Callable[[Ctx], None]:
        if not call.args or not isinstance(call.args[0], StrLit):
            raise self.error('printf() needs a format string first: printf("%d\\n", pid)', call)
        fmt_node = call.args[0]
        try:
            spec = parse_format(fmt_node.value)
        except ValueError as e:
            raise self.error(str(e), fmt_node) from None
        args = call.args[1:]
        if len(args) != len(spec.convs):
            raise self.error(f"printf format has {len(spec.convs)} conversion(s) but {len(args)} argument(s) follow",
                             call)
        fns = []
        for conv, arg in zip(spec.convs, args):
            t = self.expr(arg, env)
            want = "str" if conv == "s" else "int"
            self._want(t, want, arg, f"%{conv} needs {'a string' if want == 'str' else 'an integer'}")
            fns.append(t.fn)

        def printf(ctx: Ctx) -> None:
            texts = format_rows(spec, [f(ctx) for f in fns], ctx.n)
            ctx.ev.tracer.queue(ctx.ev.rows, [PrintfOutput(t) for t in texts])
        return printf

    # -- expressions

    def _want(self, t: Typed, ty: str, node: Node, message: str) -> None:
        if t.ty is not None and t.ty != ty:
            raise self.error(f"{message}, not {'a string' if t.ty == 'str' else 'an integer'}", node)

    def expr(self, node: Expr, env: Env) -> Typed:
        if isinstance(node, IntLit):
            v = _wrap64(node.value)
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
        return self.field(name, node, env)

    def field(self, name: str, node: Node, env: Env) -> Typed:
        tp = env.inst.tp
        if tp is None:
            hint = "" if isinstance(node, FieldRef) else _suggest(name, list(BUILTINS))
            raise self.error(f"{env.inst.label} probes have no fields: {name!r} is not a builtin{hint}", node)
        if not tp.has_field(name):
            names = list(tp.field_names) + ([] if isinstance(node, FieldRef) else list(BUILTINS))
            raise self.error(f"unknown field {name!r} of {tp.name}{_suggest(name, names)} "
                             f"(fields: {', '.join(tp.field_names)})", node)
        f = tp.field(name)
        if f.type in ("str", "enum"):
            return Typed(lambda ctx: ctx.ev.field(name), "str", enum=f if f.type == "enum" else None)
        return Typed(lambda ctx: ctx.ev.int_field(name), "int")

    def map_read(self, node: MapRef, env: Env) -> Typed:
        info = self._map_info(node)
        m = self.tracer.map(node.name)
        key_fn, typed = self._keys(node, env)
        if key_fn is None:
            self._check_no_keys(node)
        env.inst.reads.append(Site(node.name, [t.fn for t in typed] if key_fn else None,
                                   all(t.pure for t in typed)))
        if info.kind in ("hist", "lhist", "stats"):
            raise self.error(f"{node.name} holds {_kind_desc(info.kind)}, which have no value to use here", node)
        if self.strict and not info.written:
            raise self.error(f"map {node.name} is never assigned", node)
        kf = key_fn or (lambda ctx: None)
        return Typed(lambda ctx: m.lookup(kf(ctx), n=ctx.n), info.value_type, pure=False)

    def call_expr(self, node: Call, env: Env) -> Typed:
        name = node.name
        args = node.args
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
            t = self.expr(args[1], env)
            self._want(t, "int", args[1], "strftime() needs a time in ns")
            tfn = t.fn

            def fmt_time(ctx: Ctx) -> Any:
                ts = tfn(ctx)
                if isinstance(ts, int):
                    return sim_strftime(fmt, ts)
                secs = _i64(ts, ctx.n)
                if "%f" not in fmt:
                    secs = secs // 1_000_000_000 * 1_000_000_000
                uniq, inv = np.unique(secs, return_inverse=True)
                return StrColumn(inv.reshape(-1).astype(np.intp), [sim_strftime(fmt, s) for s in uniq.tolist()])
            return Typed(fmt_time, "str", pure=t.pure)
        if name in AGGREGATIONS:
            raise self.error(f"{name}() can only be assigned to a map: @m = {name}(...)", node)
        if name in STMT_FUNCTIONS:
            raise self.error(f"{name}() is a statement and has no value", node)
        hint = _suggest(name, [*EXPR_FUNCTIONS, *STMT_FUNCTIONS, *AGGREGATIONS])
        raise self.error(f"unknown function {name}(){hint}", (node.pos, node.name_end))

    def _neg(self, x: Any, n: int) -> Any:
        if isinstance(x, int):
            return _wrap64(-x)
        with np.errstate(over="ignore"):
            return -_i64(x, n)

    def _arith(self, op: str, a: Any, b: Any, n: int) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            return _py_arith(op, a, b)
        av = _i64(a, n)
        bv = b if isinstance(b, int) else _i64(b, n)
        return _np_arith(op, av, bv)

    def unary(self, node: Unary, env: Env) -> Typed:
        t = self.expr(node.operand, env)
        self._want(t, "int", node.operand, f"'{node.op}' needs an integer")
        op = node.op
        if isinstance(t.const, int):
            c = t.const
            v = int(not c) if op == "!" else (_wrap64(-c) if op == "-" else _wrap64(~c))
            return Typed(lambda ctx: v, "int", const=v)
        fn = t.fn
        if op == "!":
            return Typed(lambda ctx: _not(fn(ctx)), "int", pure=t.pure)
        if op == "-":
            return Typed(lambda ctx: self._neg(fn(ctx), ctx.n), "int", pure=t.pure)
        return Typed(lambda ctx: ~_i64(fn(ctx), ctx.n), "int", pure=t.pure)

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
                return Typed(lambda ctx: np.logical_and(_truthy(afn(ctx)), _truthy(bfn(ctx))), "int", pure=pure)
            return Typed(lambda ctx: np.logical_or(_truthy(afn(ctx)), _truthy(bfn(ctx))), "int", pure=pure)
        if op in _COMPARE:
            if a.ty is not None and b.ty is not None and a.ty != b.ty:
                raise self.error(f"cannot compare {_ty_desc(a.ty)} with {_ty_desc(b.ty)}", node)
            if "str" in (a.ty, b.ty):
                if op not in ("==", "!="):
                    raise self.error(f"strings compare only with == and !=, not '{op}'",
                                     (node.op_pos, node.op_pos + len(op)))
                for enum_side, lit_side, lit_node in ((a, b, node.right), (b, a, node.left)):
                    if enum_side.enum is not None and isinstance(lit_side.const, str) \
                            and lit_side.const not in enum_side.enum.values:
                        f = enum_side.enum
                        hint = _suggest(lit_side.const, f.values)
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
            cmp = _COMPARE[op]
            if isinstance(a.const, int) and isinstance(b.const, int):
                v = int(bool(cmp(a.const, b.const)))
                return Typed(lambda ctx: v, "int", const=v)
            return Typed(lambda ctx: cmp(afn(ctx), bfn(ctx)), "int", pure=pure)
        # arithmetic, bitwise, shifts
        self._want(a, "int", node.left, f"'{op}' needs integers")
        self._want(b, "int", node.right, f"'{op}' needs integers")
        if isinstance(a.const, int) and isinstance(b.const, int):
            v = _py_arith(op, a.const, b.const)
            return Typed(lambda ctx: v, "int", const=v)
        return Typed(lambda ctx: self._arith(op, afn(ctx), bfn(ctx), ctx.n), "int", pure=pure)

    def ternary(self, node: Ternary, env: Env) -> Typed:
        c = self.expr(node.cond, env)
        self._want(c, "int", node.cond, "a condition must be an integer")
        a = self.expr(node.then, env)
        b = self.expr(node.orelse, env)
        if a.ty is not None and b.ty is not None and a.ty != b.ty:
            raise self.error(f"both branches must have one type: {_ty_desc(a.ty)} and {_ty_desc(b.ty)}", node)
        ty = a.ty or b.ty
        cfn, afn, bfn = c.fn, a.fn, b.fn
        pure = c.pure and a.pure and b.pure

        def pick(ctx: Ctx) -> Any:
            m = _truthy(cfn(ctx))
            if not isinstance(m, np.ndarray):
                return afn(ctx) if m else bfn(ctx)
            x, y = afn(ctx), bfn(ctx)
            if ty == "str":
                return _str_where(m, x, y, ctx.n)
            return np.where(m, _i64(x, ctx.n), _i64(y, ctx.n))
        return Typed(pick, ty, pure=pure)


@dataclass
class Env:
    """Per compiled instance: the instance and its variables' types."""

    inst: Instance
    vars: dict[str, str]


# ----------------------------------------------------------------------------- installing


def _predicate(inst: Instance) -> Callable[[Events], Any] | None:
    if inst.predicate is None:
        return None
    fn = inst.predicate.fn
    return lambda ev: _truthy(fn(Ctx(ev)))


def _runner(inst: Instance) -> Callable[[Events], None]:
    body = inst.body
    assert body is not None
    return lambda ev: body(Ctx(ev))


def _synthetic(run: Callable[[Events], None], pred: Callable[[Events], Any] | None) -> Callable[[Events], None]:
    if pred is None:
        return run

    def guarded(ev: Events) -> None:
        mask = pred(ev)
        if bool(np.asarray(mask).any()):
            run(ev)
    return guarded


def _segmenter(group: list[Instance]) -> Callable[[Events], np.ndarray | None] | None:
    """The cuts one tracepoint's probes need (see the module docstring)."""
    writes: dict[str, list[Site]] = {}
    for inst in group:
        for s in inst.writes:
            writes.setdefault(s.map, []).append(s)
    read = {s.map for inst in group for s in inst.reads}
    # A map read and written, or written twice where one write is not an
    # aggregation (aggregations commute; an assignment or delete does not).
    hazards = (set(writes) & read) | {m for m, ss in writes.items()
                                       if len(ss) > 1 and any(s.op != "agg" for s in ss)}
    sites = [s for inst in group for s in (*inst.reads, *inst.writes) if s.map in hazards]
    barriers = [inst for inst in group if inst.barrier]
    if not sites and not barriers:
        return None
    per_row = any(s.keys is None or not s.pure for s in sites)

    def segment(ev: Events) -> np.ndarray | None:
        n = ev.n
        if per_row:
            return np.arange(1, n, dtype=np.intp)
        cuts = []
        ctx = Ctx(ev)
        if sites:
            keys = []
            for s in sites:
                assert s.keys is not None
                cols = [_as_list(f(ctx), n) for f in s.keys]
                keys.append([(s.map, *row) for row in zip(*cols)])
            cuts.append(cuts_unique(keys, n))
        for inst in barriers:
            pred = inst.predicate
            if pred is None or not pred.pure:
                return np.arange(1, n, dtype=np.intp)
            cuts.append(cuts_isolate(_truthy(pred.fn(ctx)), n))
        return np.concatenate(cuts) if cuts else None
    return segment


def _as_list(v: Any, n: int) -> list[Any]:
    if isinstance(v, StrColumn):
        return v.tolist()
    if isinstance(v, np.ndarray):
        return as_int64(v, n).tolist()
    return [v] * n


# ----------------------------------------------------------------------------- helpers


def _compound_op(op: str) -> str:
    return op[:-1]


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _ty_desc(ty: str | None) -> str:
    return "a string" if ty == "str" else "an integer"


def _key_desc(types: tuple[str | None, ...]) -> str:
    if not types:
        return "nothing (a map without keys)"
    return "[" + ", ".join(t or "?" for t in types) + "]"


def _kind_desc(kind: str | None) -> str:
    return {"count": "count() values", "sum": "integer values", "int": "integer values", "str": "string values",
            "min": "min() values", "max": "max() values", "avg": "avg() values", "stats": "stats() values",
            "hist": "hist() histograms", "lhist": "lhist() histograms"}.get(kind or "", "values")


def compile_program(source: str | Program, *, filename: str = "-e", registry: Registry | None = None,
                    tracer: Tracer | None = None, output: Callable[[Any], None] | None = None) -> Tracer:
    """Parse, type-check and compile a program onto a new (or the given) tracer.

    Raises ProgramError (a memtrace ParseError) with a caret under the problem.
    """
    program = parse(source, filename) if isinstance(source, str) else source
    if tracer is None:
        tracer = Tracer(registry, output)
    return Compiler(program, tracer).run()
