"""Columns of a chunk: how one field's values are stored, and read back.

Three encodings (see :mod:`.format` and ``docs/trace-format.md``): ``raw``
little-endian values, ``delta`` (first value and the differences modulo 2**bits,
in the narrowest width that holds them: exact whatever the values) for the wide
integer types, and ``dict`` (distinct strings and u32 codes) for strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..schema import Field
from .format import DELTA_TYPES

__all__ = ["DELTA_WIDTHS", "decode_column", "encode_column"]

#: Byte widths a delta-encoded column's differences may be stored in.
DELTA_WIDTHS = (1, 2, 4, 8)


def encode_column(f: Field, col: Any) -> dict[str, Any]:
    """One column of a chunk, as the module docstring's ``cols`` entry describes."""
    if f.type == "str":
        values = list(dict.fromkeys(col))
        if len(values) <= 1:
            codes = np.zeros(len(col), dtype="<u4")
        else:
            index = {s: i for i, s in enumerate(values)}
            codes = np.fromiter(map(index.__getitem__, col), dtype="<u4", count=len(col))
        return {"enc": "dict", "values": values, "codes": codes.tobytes()}
    dtype = f.dtype
    assert dtype is not None
    arr = np.asarray(col, dtype=dtype)
    if f.type not in DELTA_TYPES or arr.size == 0:
        return {"enc": "raw", "data": arr.astype(dtype.newbyteorder("<"), copy=False).tobytes()}
    size = dtype.itemsize
    bits = arr.view(f"u{size}")
    # Differences modulo 2**(8*size), read as signed: exact for any values.
    diffs = np.subtract(bits[1:], bits[:-1]).view(f"i{size}")
    width = _narrowest_width(diffs, size)
    return {
        "enc": "delta",
        "first": int(bits[0]),
        "width": width,
        "data": diffs.astype(f"<i{width}", copy=False).tobytes(),
    }


def _narrowest_width(diffs: np.ndarray, size: int) -> int:
    """Fewest bytes (1, 2, 4 or ``size``) holding every signed difference."""
    if diffs.size == 0:
        return 1
    lo, hi = int(diffs.min()), int(diffs.max())
    for width in DELTA_WIDTHS:
        if width >= size:
            break
        limit = 1 << (8 * width - 1)
        if -limit <= lo and hi < limit:
            return width
    return size


def decode_column(f: Field, entry: Any, n: int) -> Any:
    """A column of ``n`` values from its ``cols`` entry; ValueError when malformed."""
    if not isinstance(entry, dict):
        raise ValueError("column entry is not a map")
    enc = entry["enc"]
    if f.type == "str":
        if enc != "dict":
            raise ValueError(f"str column stored as {enc!r}")
        values = entry["values"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("dictionary is not a list of strings")
        codes = _frombuffer(entry["codes"], np.dtype("<u4"), n)
        if n == 0:
            return []
        if int(codes.max()) >= len(values):
            raise ValueError("string code out of range")
        table = np.empty(len(values), dtype=object)
        table[:] = values
        return table[codes].tolist()
    dtype = f.dtype
    assert dtype is not None
    size = dtype.itemsize
    if enc == "raw":
        col = _frombuffer(entry["data"], dtype.newbyteorder("<"), n).astype(dtype)
    elif enc == "delta":
        width = entry["width"]
        if width not in DELTA_WIDTHS or width > size or f.type in ("bool", "enum"):
            raise ValueError(f"bad delta width {width!r}")
        if n == 0:
            return np.empty(0, dtype=dtype)
        diffs = _frombuffer(entry["data"], np.dtype(f"<i{width}"), n - 1)
        unsigned = np.dtype(f"u{size}")
        out = np.empty(n, dtype=unsigned)
        out[0] = entry["first"]
        out[1:] = diffs.astype(f"i{size}").view(unsigned)
        np.cumsum(out, dtype=unsigned, out=out)
        col = out.view(dtype)
    else:
        raise ValueError(f"unknown column encoding {enc!r}")
    if f.type == "enum" and n and int(col.max()) >= len(f.values):
        raise ValueError("enum code out of range")
    if f.type == "bool" and n and int(col.view(np.uint8).max()) > 1:
        raise ValueError("bool value not 0 or 1")
    return col


def _frombuffer(data: Any, dtype: np.dtype, count: int) -> np.ndarray:
    if not isinstance(data, (bytes, memoryview)) or len(data) != count * dtype.itemsize:
        raise ValueError(f"expected {count} values of {dtype.itemsize} bytes")
    return np.frombuffer(data, dtype=dtype)

