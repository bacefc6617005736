"""Type checker and vectorised compiler of the one-liner language: programs,
probes and statements (expressions are :mod:`.expressions`').

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
event, the compiler says so to the tracer (see :mod:`memtrace.tracer.probes.runtime`): a map that probes of
one tracepoint both read and write has its keys checked for repeats within the
batch, and statements that act on a whole map at once (``print(@m)``, ``clear``,
``zero``, ``exit``) run on one event at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..probes import Events, Map, PrintfOutput, Tracer, cuts_isolate, cuts_unique, format_rows, parse_format
from ..schema import Registry
from .expressions import (
    AGGREGATIONS,
    EXPR_FUNCTIONS,
    PRINT_ARG_MAX,
    STMT_FUNCTIONS,
    Env,
    ExpressionCompiler,
    Instance,
    MapInfo,
    Site,
    alias_expr,
    suggest,
)
from .kernelnames import KERNEL_PROBES, match_kernel_probes
from .nodes import (
    AttachPoint,
    Binary,
    Call,
    CallStmt,
    If,
    IntLit,
    MapRef,
    MapWrite,
    Node,
    ProbeDef,
    Program,
    Stmt,
    StrLit,
    VarWrite,
)
from .ops import Ctx, as_list, scatter, truthy
from .parser import parse

__all__ = ["Compiler", "compile_program"]


class Compiler(ExpressionCompiler):
    """Compiles one parsed program onto a tracer (see :func:`compile_program`):
    the probes, their statements and the cuts their batches need."""

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
            m.scalar = info.key_types == ()
            if m.kind is None and not len(m):
                m.kind, m.lhist_params = info.kind, info.lhist
        self._install(instances)
        return self.tracer

    def _instances(self) -> list[Instance]:
        out: list[Instance] = []
        for probe in self.program.probes:
            for ap in probe.attach:
                if ap.kind == "tracepoint" and ap.system:
                    out.extend(self._kernel_instances(probe, ap))
                elif ap.kind == "tracepoint":
                    tps = self.registry.match(ap.pattern)
                    if not tps:
                        names = [tp.name for tp in self.registry]
                        raise self.error(f"no tracepoint matches {ap.pattern!r}{suggest(ap.pattern, names)} "
                                         f"(see 'memtrace list')", ap)
                    out.extend(Instance(probe, ap, tp, tp.name) for tp in tps)
                else:
                    out.append(Instance(probe, ap, None, ap.text))
        if not out:
            raise self.error("no probe of the program is one memtrace can attach (missing_probes = ignore "
                             "dropped every one)", (0, len(self.program.source) or 1))
        return out

    def _kernel_instances(self, probe: ProbeDef, ap: AttachPoint) -> list[Instance]:
        """``tracepoint:SYSTEM:EVENT`` (globs allowed): each real tracepoint it names
        that memtrace records, read through its memtrace tracepoint."""
        kps = match_kernel_probes(ap.system, ap.pattern)
        if not kps:
            missing = self.program.config.get("missing_probes", "error")
            globbed = any(c in ap.system + ap.pattern for c in "*?[")
            name = f"{ap.system}:{ap.pattern}"
            if missing == "error":
                known = sorted({p.system for p in KERNEL_PROBES})
                what = (f"no tracepoint memtrace records matches {name!r}" if globbed else
                        f"memtrace does not record the kernel tracepoint {name!r}")
                raise self.error(f"{what} (it records some of the {', '.join(known)} systems: see "
                                 "'memtrace trace -l'; config = { missing_probes = ignore } skips it)", ap)
            if missing == "warn":
                self.tracer.warnings.append(f"probe tracepoint:{name} skipped: memtrace does not record it")
            return []
        out = []
        for kp in kps:
            tp = self.registry.get(kp.tracepoint)
            if tp is None:
                raise self.error(f"{kp.probe} reads memtrace's {kp.tracepoint}, which this trace's schema lacks",
                                 ap)
            out.append(Instance(probe, ap, tp, kp.probe, kernel=kp))
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
                tracer.probe(name, run, predicate=pred, segment=seg, name=inst.label, maps=_maps(inst))

    # -- per instance

    def _compile_instance(self, inst: Instance) -> None:
        inst.reads, inst.writes, inst.barrier, inst.emits = [], [], False, False
        env = Env(inst, {})
        predicate = inst.probe.predicate
        if inst.kernel is not None and inst.kernel.where:
            # The events of this kernel tracepoint among its memtrace tracepoint's.
            where = alias_expr(inst.kernel.where, inst.attach.pos, inst.attach.end)
            predicate = where if predicate is None else Binary(predicate.pos, predicate.end, "&&", where, predicate,
                                                               predicate.pos)
        if predicate is not None:
            pred = self.expr(predicate, env)
            self._want(pred, "int", predicate, "a predicate must be an integer (true when non-zero)")
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
                    ctx.vars[name] = scatter(ctx.vars.get(name), mask, sub.vars[name], types[name], ctx.n)

        def run(ctx: Ctx) -> None:
            m = truthy(cond_fn(ctx))
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
                env.vars[name] = None
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
        if name == "hist" and len(call.args) == 2:
            raise self.error("hist()'s bits argument (bpftrace's finer log2 buckets, hist(v, k)) is a bpftrace "
                             "feature memtrace cannot run: hist(v) has one bucket per power of 2", call.args[1])
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
            env.inst.emits = True

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
            first = args[0] if args else None
            fmt = first.value if isinstance(first, StrLit) else "%H:%M:%S\n"
            if first is not None:
                self.check_time_format(fmt, first)
            env.inst.emits = True

            def do_time(ctx: Ctx) -> None:
                ctx.ev.time(fmt)
            return do_time
        if name in AGGREGATIONS:
            raise self.error(f"{name}() must be assigned to a map: @m = {name}(...)", call)
        if name in EXPR_FUNCTIONS:
            raise self.error(f"the value of {name}() is unused", call)
        hint = suggest(name, [*STMT_FUNCTIONS, *EXPR_FUNCTIONS, *AGGREGATIONS])
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

        env.inst.emits = True

        def printf(ctx: Ctx) -> None:
            texts = format_rows(spec, [f(ctx) for f in fns], ctx.n)
            ctx.ev.tracer.queue(ctx.ev.rows, [PrintfOutput(t) for t in texts])
        return printf


# ----------------------------------------------------------------------------- installing


def _predicate(inst: Instance) -> Callable[[Events], Any] | None:
    if inst.predicate is None:
        return None
    fn = inst.predicate.fn
    return lambda ev: truthy(fn(Ctx(ev)))


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


def _maps(inst: Instance) -> list[tuple[str, str]] | None:
    """What ``inst`` does to maps, as ``Probe.maps`` says it; None when it also
    prints, exits or clears (its events then keep their place)."""
    if inst.barrier or inst.emits:
        return None
    return [(s.map, "read") for s in inst.reads] + [(s.map, s.op) for s in inst.writes]


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
                cols = [as_list(f(ctx), n) for f in s.keys]
                keys.append([(s.map, *row) for row in zip(*cols)])
            cuts.append(cuts_unique(keys, n))
        for inst in barriers:
            pred = inst.predicate
            if pred is None or not pred.pure:
                return np.arange(1, n, dtype=np.intp)
            cuts.append(cuts_isolate(truthy(pred.fn(ctx)), n))
        return np.concatenate(cuts) if cuts else None
    return segment


# ----------------------------------------------------------------------------- helpers


def _compound_op(op: str) -> str:
    return op[:-1]


def compile_program(source: str | Program, *, filename: str = "-e", registry: Registry | None = None,
                    tracer: Tracer | None = None, output: Callable[[Any], None] | None = None,
                    max_map_keys: int | None = None) -> Tracer:
    """Parse, type-check and compile a program onto a new (or the given) tracer.

    Each map holds at most ``max_map_keys`` keys: the program's ``config = {
    max_map_keys = N }`` if it has one, else this argument, else the tracer's
    (:data:`~memtrace.tracer.probes.DEFAULT_MAX_MAP_KEYS`, 4096, as bpftrace).
    Raises ProgramError (a memtrace ParseError) with a caret under the problem.
    """
    program = parse(source, filename) if isinstance(source, str) else source
    if tracer is None:
        tracer = Tracer(registry, output)
    keys = program.config.get("max_map_keys", max_map_keys)
    if isinstance(keys, int):
        tracer.max_map_keys = keys
    return Compiler(program, tracer).run()
