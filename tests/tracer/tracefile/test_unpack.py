"""The bounded msgpack reader: every kind read as msgpack-python writes it, values
of other kinds left out and named, budgets and nesting enforced, lengths checked
before anything is sliced."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace.tracer.tracefile.unpack import Cursor, UnpackError, decode_plain, kind_of

plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=40),
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=20), st.dictionaries(st.text(max_size=10), inner, max_size=20)),
    max_leaves=60,
)


@given(plain)
def test_plain_data_round_trips(value: object) -> None:
    """What the writer packs decodes to the same value, nothing left out."""
    got = decode_plain(msgpack.packb(value, use_bin_type=True), max_values=10**6, max_depth=64)
    assert got.value == value and got.problems == []


@pytest.mark.parametrize(("value", "problem"), [
    ({"a": b"xyz"}, "a is b'xyz' (bytes, not text)"),
    ({"a": msgpack.ExtType(7, b"q")}, "a is a msgpack extension value (type 7)"),
    ({"a": msgpack.Timestamp(3)}, "a is a msgpack timestamp"),
    ({"a": {1: "x", "b": 2}}, "a has a key that is int, not text"),
    ({"a": [1, math.nan]}, "a[1] is nan, not a finite number"),
])
def test_values_of_other_kinds_are_left_out_and_named(value: object, problem: str) -> None:
    got = decode_plain(msgpack.packb(value, use_bin_type=True), max_values=100, max_depth=8)
    assert got.problems == [problem]
    assert problem.split(" ")[0] not in repr(got.value) or isinstance(got.value, dict)


def test_nesting_beyond_the_bound_is_left_out_without_recursion() -> None:
    deep: object = 0
    for _ in range(1000):
        deep = [deep]
    got = decode_plain(msgpack.packb({"keep": 1, "deep": deep}), max_values=10**5, max_depth=64)
    assert got.value["keep"] == 1
    depth, node = 0, got.value["deep"]
    while node:
        depth, node = depth + 1, node[0]
    assert depth == 62  # the map is level 1, "deep" level 2; its 63rd list is left out
    assert len(got.problems) == 1
    assert got.problems[0].startswith("deep[0][0]") and got.problems[0].endswith("nests deeper than 64 levels")


def test_a_value_budget_is_an_error() -> None:
    with pytest.raises(UnpackError, match="more than 1,000 values"):
        decode_plain(msgpack.packb([[]] * 2000), max_values=1000, max_depth=8)


@pytest.mark.parametrize("data", [b"\x92\x01", b"\xdb\xff\xff\xff\xff", b"\xc6\x00\x10\x00\x00ab", b"\xc1",
                                  b"\x01\x02", b"\xa3\xff\xfe\xfd"])
def test_malformed_data_is_an_error(data: bytes) -> None:
    """Cut short, a length past the end, the reserved byte 0xc1, trailing bytes,
    text that is not UTF-8."""
    with pytest.raises(UnpackError):
        decode_plain(data, max_values=100, max_depth=8)


def test_a_long_length_is_checked_before_slicing() -> None:
    """An array header claiming 4 billion items allocates nothing: items are read one
    at a time and the data ends."""
    with pytest.raises(UnpackError, match="ends early"):
        decode_plain(b"\xdd\xff\xff\xff\xff\x01", max_values=10**9, max_depth=8)


def test_cursor_typed_reads_do_not_move_on_another_kind() -> None:
    cur = Cursor(msgpack.packb({"n": 5, "data": b"\x00\x01"}, use_bin_type=True))
    assert cur.map_header() == 2
    assert cur.read_int() is None and cur.read_bin() is None
    assert cur.read_text() == "n" and cur.read_int() == 5
    assert cur.read_text() == "data"
    view = cur.read_bin()
    assert view is not None and bytes(view) == b"\x00\x01" and cur.at_end


@given(st.integers(0, 255))
def test_every_type_byte_has_a_kind(byte: int) -> None:
    kind = kind_of(byte)
    assert kind in {"int", "str", "bin", "map", "array", "nil", "bool", "float", "ext", "bad"}
    assert (kind == "bad") == (byte == 0xC1)


@given(plain)
def test_skip_passes_over_any_value(value: object) -> None:
    data = msgpack.packb([value, 7], use_bin_type=True)
    cur = Cursor(data)
    assert cur.array_header() == 2
    cur.skip()
    assert cur.read_int() == 7 and cur.at_end
