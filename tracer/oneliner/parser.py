"""A hand-written Pratt parser for the one-liner language.

Grammar (a bpftrace subset; ``/* */`` and ``//`` comments anywhere)::

    program    := [config] probe*
    config     := "config" "=" "{" (NAME "=" (INT | WORD) [";"])* "}"   (max_map_keys, missing_probes)
    probe      := attach ("," attach)* ["/" expr "/"] block
    attach     := "BEGIN" | "END" | ("interval"|"i") ":" ("s"|"ms"|"us"|"ns"|"hz") ":" INT
                | ("interval"|"i") ":" INT ("s"|"ms"|"us"|"ns"|"hz")
                | ["tracepoint:" | "t:"] NAME-OR-GLOB
                | ("tracepoint:" | "t:") SYSTEM-OR-GLOB ":" EVENT-OR-GLOB     (a kernel tracepoint)
    block      := "{" [stmt (";" stmt)* [";"]] "}"
    stmt       := "if" expr block ["else" (block | stmt-if)]
                | map ("=" expr | OP"=" expr | "++" | "--")
                | "$"NAME ("=" expr | OP"=" expr | "++" | "--")
                | NAME "(" [expr ("," expr)*] ")"
    map        := "@"[NAME] ["[" expr ("," expr)* "]"]
    expr       := Pratt, lowest to highest binding:
                  ?:  ||  &&  |  ^  &  == !=  < <= > >=  << >>  + -  * / %  unary ! ~ -
    primary    := INT | STRING | true | false | NAME | NAME "(" args ")" | args.NAME
                | args->NAME | map | "$"NAME | "(" expr ")"

Inside a predicate ``/.../`` a top-level ``/`` ends the predicate; divide inside
parentheses: ``/(pid / 2) == 50/``. bpftrace's other probe types, casts, tuples,
member access, pointers, struct definitions, macros and loops are refused with a
ProgramError naming them (:mod:`.unsupported`).

Nesting is bounded (:data:`MAX_NESTING`): each parenthesis, operand of a unary
operator, argument, map key, ``if`` and each operator of a chain such as
``1 + 1 + ... + 1`` is one level deeper. The parser, the compiler and the compiled
closures all recurse on that depth, so a deeper program is a ProgramError
("program nests too deeply", caret on the token where the limit is passed) rather
than a RecursionError.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..probes.maps import MAX_MAP_KEYS_LIMIT
from .lexer import Lexer, Token
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
    ProbeDef,
    Program,
    Stmt,
    StrLit,
    Ternary,
    Unary,
    Var,
    VarWrite,
)
from .unsupported import (
    C_TYPE_WORDS,
    UNSUPPORTED_BUILTINS,
    UNSUPPORTED_PROBES,
    UNSUPPORTED_STATEMENTS,
    UNSUPPORTED_TOP_LEVEL,
)

#: Left binding power of each binary operator (C precedence).
BINARY_BP = {
    "||": 2, "&&": 3, "|": 4, "^": 5, "&": 6,
    "==": 7, "!=": 7, "<": 8, "<=": 8, ">": 8, ">=": 8,
    "<<": 9, ">>": 9, "+": 10, "-": 10, "*": 11, "/": 11, "%": 11,
}
TERNARY_BP = 1
PREFIX_BP = 12
COMPOUND = {"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="}
#: interval units in nanoseconds; hz is handled apart (period = 1 s / N).
UNITS_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: Keys of a program's ``config = { ... }`` block and the range of each.
CONFIG_KEYS = {"max_map_keys": (1, MAX_MAP_KEYS_LIMIT)}
#: Keys whose value is a word, and the words each takes (``missing_probes``: what a
#: probe on a kernel tracepoint memtrace does not record does, as bpftrace's).
CONFIG_WORDS = {"missing_probes": ("error", "warn", "ignore")}

#: How deep a program may nest (see the module docstring): far beyond what a
#: one-liner writes, well within Python's recursion limit for the parser, the
#: compiler and the closures it builds (a few frames per level each).
MAX_NESTING = 100


class Parser:
    """Parses one program; :func:`parse` is the entry point."""

    def __init__(self, source: str, filename: str = "-e") -> None:
        self.source = source
        self.filename = filename
        self.lex = Lexer(source, filename)
        self.tok = self.lex.next()
        self.in_predicate = False
        self.depth = 0  # (), [] nesting inside a predicate
        self.nesting = 0  # levels of expressions and ifs (MAX_NESTING)

    # -- token helpers

    def error(self, message: str, start: int, end: int | None = None) -> Exception:
        return self.lex.error(message, start, end)

    def advance(self) -> Token:
        tok = self.tok
        self.tok = self.lex.next()
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_ident(self, name: str) -> bool:
        return self.tok.kind == "ident" and self.tok.value == name

    def nest(self, tok: Token, levels: int = 1) -> None:
        """Go ``levels`` deeper at ``tok``; ProgramError with the caret on it past
        :data:`MAX_NESTING`."""
        self.nesting += levels
        if self.nesting > MAX_NESTING:
            raise self.error(f"program nests too deeply (more than {MAX_NESTING} levels of parentheses, operators, "
                             "arguments or ifs; each operator of a chain such as 1 + 1 + ... counts one)",
                             tok.pos, tok.end)

    def expect(self, op: str, after: str = "") -> Token:
        if not self.is_op(op):
            where = f" {after}" if after else ""
            raise self.error(f"expected '{op}'{where} but found {self.tok.describe()}", self.tok.pos, self.tok.end)
        return self.advance()

    # -- program and probes

    def program(self) -> Program:
        prog = Program(self.source, self.filename)
        if self.is_ident("config") and self._peek_is("="):
            prog.config = self.config()
        while self.tok.kind != "eof":
            prog.probes.append(self.probe())
        if not prog.probes:
            raise self.error("empty program: expected at least one probe", 0, len(self.source) or 1)
        return prog

    def config(self) -> dict[str, int | str]:
        """``config = { max_map_keys = N; ... }`` at the start of a program, as
        bpftrace takes it: each key one of :data:`CONFIG_KEYS`, each value an integer
        in its range."""
        self.advance()
        self.expect("=", "after 'config'")
        self.expect("{", "to start the config block")
        out: dict[str, int | str] = {}
        while not self.is_op("}"):
            key = self.tok
            if key.kind != "ident":
                raise self.error(f"expected a config key (one of {', '.join(CONFIG_KEYS)}) but found "
                                 f"{key.describe()}", key.pos, key.end)
            if key.value not in CONFIG_KEYS and key.value not in CONFIG_WORDS:
                known = ", ".join([*CONFIG_KEYS, *CONFIG_WORDS])
                raise self.error(f"unknown config key {key.value!r} (memtrace knows: {known})", key.pos, key.end)
            self.advance()
            self.expect("=", f"after {key.value}")
            value = self.tok
            if key.value in CONFIG_WORDS:
                words = CONFIG_WORDS[key.value]
                if value.kind not in ("ident", "str") or value.value not in words:
                    raise self.error(f"{key.value} takes one of {', '.join(words)}", value.pos, value.end)
                self.advance()
                out[key.value] = value.value
                if self.is_op(";"):
                    self.advance()
                continue
            low, high = CONFIG_KEYS[key.value]
            if value.kind != "int" or not low <= value.value <= high:
                raise self.error(f"{key.value} takes an integer in {low:,}..{high:,}", value.pos, value.end)
            self.advance()
            out[key.value] = value.value
            if self.is_op(";"):
                self.advance()
            elif not self.is_op("}"):
                raise self.error(f"expected ';' or '}}' in the config block but found {self.tok.describe()}",
                                 self.tok.pos, self.tok.end)
        self.advance()
        return out

    def probe(self) -> ProbeDef:
        start = self.tok.pos
        if self.tok.kind == "ident" and self.tok.value in UNSUPPORTED_TOP_LEVEL:
            raise self.error(f"{UNSUPPORTED_TOP_LEVEL[self.tok.value]} are a bpftrace feature memtrace cannot run",
                             self.tok.pos, self.tok.end)
        attach = [self.attach_point()]
        while self.is_op(","):
            self.advance()
            attach.append(self.attach_point())
        predicate = None
        if self.is_op("/"):
            self.advance()
            self.in_predicate, self.depth = True, 0
            predicate = self.expr()
            self.in_predicate = False
            self.expect("/", "to end the predicate")
        if not self.is_op("{"):
            hint = " (inside /.../ divide in parentheses: /(a / b) > c/)" if predicate is not None else ""
            raise self.error(f"expected '{{' to start the probe's block but found {self.tok.describe()}{hint}",
                             self.tok.pos, self.tok.end)
        body, end = self.block()
        return ProbeDef(start, end, attach, predicate, body)

    def attach_point(self) -> AttachPoint:
        self.lex.pos = self.tok.pos
        tok = self.lex.attach_point()
        self.tok = self.lex.next()
        text: str = tok.value
        pos, end = tok.pos, tok.end
        if text in ("BEGIN", "END"):
            return AttachPoint(pos, end, text, text)
        parts = text.split(":")
        if parts[0] in ("interval", "i"):
            return self._interval(text, parts, pos, end)
        if parts[0] in ("tracepoint", "t") and len(parts) in (2, 3):
            system, pattern = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[1])
        elif len(parts) == 1:
            system, pattern = "", text
        elif parts[0] in UNSUPPORTED_PROBES:
            what = UNSUPPORTED_PROBES[parts[0]]
            raise self.error(f"{what} probes ({parts[0]}:) are a bpftrace feature memtrace cannot run: memtrace "
                             "reads the kernel's tracepoints, and only those it records (see 'memtrace trace -l')",
                             pos, end)
        else:
            raise self.error(f"unknown probe type {parts[0]!r}: expected a tracepoint, BEGIN, END or interval",
                             pos, end)
        for part in (system, pattern) if system else (pattern,):
            if not part or not all((c.isascii() and c.isalnum()) or c in "_*?[]!" for c in part):
                raise self.error(f"bad tracepoint name {text if system else pattern!r}", pos, end)
        return AttachPoint(pos, end, "tracepoint", text, pattern=pattern, system=system)

    def _interval(self, text: str, parts: list[str], pos: int, end: int) -> AttachPoint:
        """``interval:UNIT:N``, or bpftrace's newer ``interval:Nunit`` (``interval:1s``)."""
        if len(parts) == 2:
            m = re.fullmatch(r"([0-9]+)(s|ms|us|ns|hz)", parts[1])
            if not m:
                raise self.error(f"bad interval probe {text!r}: expected interval:UNIT:N or interval:NUNIT "
                                 "(UNIT s, ms, us, ns or hz)", pos, end)
            count, unit = m.group(1), m.group(2)
        elif len(parts) == 3:
            unit, count = parts[1], parts[2]
        else:
            raise self.error(f"bad interval probe {text!r}: expected interval:UNIT:N (UNIT s, ms, us, ns or hz)",
                             pos, end)
        if unit not in UNITS_NS and unit != "hz":
            raise self.error(f"bad interval unit {unit!r}: expected s, ms, us, ns or hz", pos, end)
        if not (count.isascii() and count.isdigit()) or int(count) == 0:
            raise self.error(f"bad interval {count!r}: expected a positive integer", pos, end)
        if len(count) > 20:
            raise self.error(f"interval {text!r} is longer than 64 bits of nanoseconds", pos, end)
        period = 1_000_000_000 // int(count) if unit == "hz" else int(count) * UNITS_NS[unit]
        if period <= 0:
            raise self.error(f"interval {text!r} is shorter than a nanosecond", pos, end)
        if period >= 1 << 63:
            raise self.error(f"interval {text!r} is longer than 64 bits of nanoseconds", pos, end)
        return AttachPoint(pos, end, "interval", f"interval:{unit}:{int(count)}", period_ns=period)

    def block(self) -> tuple[list[Stmt], int]:
        self.expect("{")
        stmts: list[Stmt] = []
        while True:
            while self.is_op(";"):
                self.advance()
            if self.is_op("}"):
                end = self.advance().end
                return stmts, end
            if self.tok.kind == "eof":
                raise self.error("expected '}' to close the block but found end of program", self.tok.pos)
            stmt = self.statement()
            stmts.append(stmt)
            if isinstance(stmt, If):
                continue
            if not self.is_op(";", "}"):
                raise self.error(f"expected ';' or '}}' after the statement but found {self.tok.describe()}",
                                 self.tok.pos, self.tok.end)

    # -- statements

    def statement(self) -> Stmt:
        tok = self.tok
        if tok.kind == "ident" and tok.value == "if":
            return self.if_statement()
        if tok.kind == "map":
            target = self.map_ref()
            return self._write(target, lambda pos, end, op, value: MapWrite(pos, end, target, op, value))
        if tok.kind == "var":
            self.advance()
            var = Var(tok.pos, tok.end, tok.value)
            return self._write(var, lambda pos, end, op, value: VarWrite(pos, end, var, op, value))
        if tok.kind == "ident" and tok.value in UNSUPPORTED_STATEMENTS:
            raise self.error(f"{UNSUPPORTED_STATEMENTS[tok.value]} are a bpftrace feature memtrace cannot run",
                             tok.pos, tok.end)
        if tok.kind == "ident" and self._peek_is("("):
            call = self.call(self.advance())
            return CallStmt(call.pos, call.end, call)
        raise self.error(f"expected a statement (@map = ..., $var = ..., a call or if) but found {tok.describe()}",
                         tok.pos, tok.end)

    def _write(self, target: MapRef | Var,
               make: Callable[[int, int, str, Expr | None], MapWrite | VarWrite]) -> MapWrite | VarWrite:
        """The rest of a write to ``target``: ``= value``, ``op= value``, ``++`` or
        ``--``; ``make(pos, end, op, value)`` builds the statement."""
        tok = self.tok
        if self.is_op("=") or (tok.kind == "op" and tok.value in COMPOUND):
            self.advance()
            value = self.expr()
            return make(target.pos, value.end, tok.value, value)
        if self.is_op("++", "--"):
            self.advance()
            return make(target.pos, tok.end, tok.value, None)
        name = target.name
        raise self.error(f"expected '=', '+=', '++' ... after {name} but found {tok.describe()}", tok.pos, tok.end)

    def if_statement(self) -> If:
        self.nest(self.tok)
        start = self.advance().pos
        # bpftrace takes the condition with or without parentheses: if (a) {...}, if a {...}
        cond = self.expr()
        if not self.is_op("{"):
            raise self.error(f"expected '{{' after the if condition but found {self.tok.describe()}",
                             self.tok.pos, self.tok.end)
        then, end = self.block()
        orelse: list[Stmt] = []
        if self.is_ident("else"):
            self.advance()
            if self.is_ident("if"):
                inner = self.if_statement()
                orelse, end = [inner], inner.end
            else:
                orelse, end = self.block()
        self.nesting -= 1
        return If(start, end, cond, then, orelse)

    def _peek_is(self, op: str) -> bool:
        save = self.lex.pos
        nxt = self.lex.next()
        self.lex.pos = save
        return nxt.kind == "op" and nxt.value == op

    # -- expressions

    def expr(self, rbp: int = 0) -> Expr:
        self.nest(self.tok)
        left = self.prefix()
        chain = 0  # operators folded into ``left`` so far: the tree is that much deeper
        while self.tok.kind == "op":
            op = self.tok.value
            if op == "?":
                if rbp >= TERNARY_BP:
                    break
                self.nest(self.tok)
                chain += 1
                self.advance()
                then = self.expr()
                self.expect(":", "in the conditional expression")
                orelse = self.expr(TERNARY_BP - 1)
                left = Ternary(left.pos, orelse.end, left, then, orelse)
                continue
            bp = BINARY_BP.get(op)
            if bp is None or bp <= rbp:
                break
            if op == "/" and self.in_predicate and self.depth == 0:
                break
            self.nest(self.tok)
            chain += 1
            op_tok = self.advance()
            right = self.expr(bp)
            left = Binary(left.pos, right.end, op, left, right, op_tok.pos)
        self.nesting -= chain + 1
        return left

    def prefix(self) -> Expr:
        tok = self.tok
        kind = tok.kind
        if kind == "int":
            self.advance()
            return IntLit(tok.pos, tok.end, tok.value)
        if kind == "str":
            self.advance()
            return StrLit(tok.pos, tok.end, tok.value)
        if kind == "ident":
            self.advance()
            name = tok.value
            if name in ("true", "false"):
                return IntLit(tok.pos, tok.end, int(name == "true"))
            if name == "args" and self.is_op(".", "->"):
                self.advance()
                field = self.tok
                if field.kind != "ident":
                    raise self.error(f"expected a field name after 'args.' but found {field.describe()}",
                                     field.pos, field.end)
                self.advance()
                return FieldRef(tok.pos, field.end, field.value)
            if self.is_op("("):
                return self.call(tok)
            if self.is_op("->", "."):
                what = (f"bpftrace's builtin {name} ({UNSUPPORTED_BUILTINS[name]})" if name in UNSUPPORTED_BUILTINS
                        else f"member access ({name}{self.tok.value}...)")
                raise self.error(f"{what} is a bpftrace feature memtrace cannot run: fields are args.NAME",
                                 tok.pos, self.tok.end)
            return Ident(tok.pos, tok.end, name)
        if kind == "map":
            return self.map_ref()
        if kind == "var":
            self.advance()
            return Var(tok.pos, tok.end, tok.value)
        if kind == "op":
            op = tok.value
            if op == "(":
                self.advance()
                if self.tok.kind == "ident" and self.tok.value in C_TYPE_WORDS:
                    raise self.error("C casts such as (struct task_struct *)arg0 are a bpftrace feature memtrace "
                                     "cannot run: a trace holds tracepoint fields, not kernel memory",
                                     self.tok.pos, self.tok.end)
                self.depth += 1
                inner = self.expr()
                self.depth -= 1
                if self.is_op(","):
                    raise self.error("tuples such as (a, b) are a bpftrace feature memtrace cannot run (a map "
                                     "takes several keys: @m[a, b])", self.tok.pos, self.tok.end)
                close = self.expect(")", "to close the parenthesis")
                inner.pos, inner.end = tok.pos, close.end
                return inner
            if op in ("*", "&"):
                raise self.error(f"pointer {'dereference' if op == '*' else 'address-of'} ({op}expr) is a bpftrace "
                                 "feature memtrace cannot run: a trace holds tracepoint fields, not kernel memory",
                                 tok.pos, tok.end)
            if op in ("!", "~", "-", "+"):
                self.advance()
                operand = self.expr(PREFIX_BP)
                if op == "+":
                    return operand
                if op == "-" and isinstance(operand, IntLit):
                    return IntLit(tok.pos, operand.end, -operand.value)
                return Unary(tok.pos, operand.end, op, operand)
        raise self.error(f"expected an expression but found {tok.describe()}", tok.pos, tok.end)

    def call(self, name_tok: Token) -> Call:
        self.expect("(")
        self.depth += 1
        args: list[Expr] = []
        if not self.is_op(")"):
            args.append(self.expr())
            while self.is_op(","):
                self.advance()
                args.append(self.expr())
        self.depth -= 1
        close = self.expect(")", f"to close {name_tok.value}(")
        return Call(name_tok.pos, close.end, name_tok.value, args, name_tok.end)

    def map_ref(self) -> MapRef:
        tok = self.advance()
        keys = None
        end = tok.end
        if self.is_op("["):
            self.advance()
            self.depth += 1
            keys = [self.expr()]
            while self.is_op(","):
                self.advance()
                keys.append(self.expr())
            self.depth -= 1
            end = self.expect("]", f"to close {tok.value}[").end
        return MapRef(tok.pos, end, tok.value, keys)


def parse(source: str, filename: str = "-e") -> Program:
    """Parse a program; ProgramError (a ParseError) shows the caret."""
    return Parser(source, filename).program()
