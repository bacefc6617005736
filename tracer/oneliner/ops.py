"""The vectorised operations compiled expressions run: C arithmetic on int64
columns, truth values, strings selected and merged by mask.

Integers are 64-bit signed, as in BPF: arithmetic wraps, division truncates toward
zero, and ``x / 0`` is 0 and ``x % 0`` is ``x`` (the BPF verifier's rules). A value
is a column (an int64 numpy array, or a :class:`~memtrace.tracer.probes.StrColumn`)
or a Python int or str standing for the same value in every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..probes import Events, StrColumn, as_int64, unify_strings

__all__ = [
    "COMPARE",
    "Ctx",
    "as_list",
    "c_div",
    "c_mod",
    "i64",
    "logical_not",
    "np_arith",
    "py_arith",
    "scatter",
    "str_where",
    "take",
    "to_str_column",
    "truthy",
    "wrap64",
]


class Ctx:
    """The events a compiled block runs on, and the probe's variables for them."""

    __slots__ = ("ev", "n", "vars")

    def __init__(self, ev: Events, variables: dict[str, Any] | None = None) -> None:
        self.ev = ev
        self.n = ev.n
        self.vars: dict[str, Any] = variables if variables is not None else {}

    def select(self, mask: np.ndarray) -> Ctx:
        return Ctx(self.ev.select(mask), {k: take(v, mask) for k, v in self.vars.items()})


def take(v: Any, mask: np.ndarray) -> Any:
    if isinstance(v, (np.ndarray, StrColumn)):
        return v[mask]
    return v


def wrap64(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def truthy(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v if v.dtype == np.bool_ else v != 0
    return bool(v)


def logical_not(v: Any) -> Any:
    t = truthy(v)
    return ~t if isinstance(t, np.ndarray) else int(not t)


def i64(v: Any, n: int) -> np.ndarray:
    return as_int64(v, n)


def c_div(a: np.ndarray, b: Any) -> np.ndarray:
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


def c_mod(a: np.ndarray, b: Any) -> np.ndarray:
    """C remainder (sign of the dividend) with BPF's x % 0 = x."""
    q = c_div(a, b)
    bb = np.full(len(a), b, np.int64) if isinstance(b, int) else b
    r = a - q * bb
    return np.where(bb == 0, a, r)


def py_arith(op: str, a: int, b: int) -> int:
    if op == "/":
        if b == 0:
            return 0
        q = abs(a) // abs(b)
        return wrap64(q if (a >= 0) == (b > 0) else -q)
    if op == "%":
        if b == 0:
            return a
        q = abs(a) // abs(b)
        q = q if (a >= 0) == (b > 0) else -q
        return wrap64(a - q * b)
    if op in ("<<", ">>"):
        s = min(max(b, 0), 63)
        return wrap64(a << s) if op == "<<" else a >> s
    return wrap64({"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op])


def np_arith(op: str, a: np.ndarray, b: Any) -> np.ndarray:
    """``a op b`` on int64 columns (``b`` a column or an int), wrapping on overflow."""
    out: np.ndarray
    with np.errstate(over="ignore"):
        if op == "/":
            out = c_div(a, b)
        elif op == "%":
            out = c_mod(a, b)
        elif op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        elif op == "&":
            out = a & b
        elif op == "|":
            out = a | b
        elif op == "^":
            out = a ^ b
        else:
            s = np.clip(b, 0, 63)
            out = np.left_shift(a, s) if op == "<<" else np.right_shift(a, s)
    return out


COMPARE = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


def to_str_column(v: Any, n: int) -> StrColumn:
    return v if isinstance(v, StrColumn) else StrColumn.full(v, n)


def str_where(mask: np.ndarray, a: Any, b: Any, n: int) -> StrColumn:
    ca, cb = unify_strings(to_str_column(a, n), to_str_column(b, n))
    return StrColumn(np.where(mask, ca.codes, cb.codes), ca.values)


def scatter(parent: Any, mask: np.ndarray, child: Any, ty: str, n: int) -> Any:
    """``parent`` with the rows under ``mask`` replaced by ``child``'s."""
    if ty == "str":
        p, c = unify_strings(to_str_column(parent if parent is not None else "", n),
                             to_str_column(child, int(mask.sum())))
        codes = p.codes.copy()
        codes[mask] = c.codes
        return StrColumn(codes, p.values)
    full = i64(parent if parent is not None else 0, n).copy()
    full[mask] = i64(child, int(mask.sum()))
    return full


def as_list(v: Any, n: int) -> list[Any]:
    if isinstance(v, StrColumn):
        return v.tolist()
    if isinstance(v, np.ndarray):
        values: list[int] = as_int64(v, n).tolist()
        return values
    return [v] * n

