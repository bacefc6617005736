"""Rows grouped by key, checked against a Counter; batches cut where order matters."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from memtrace.tracer.probes import (
    cuts_isolate,
    cuts_unique,
    group_rows,
)


@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "z"]), st.integers(0, 2**40)),
                min_size=1, max_size=60))
def test_group_rows_matches_a_counter(rows: list[tuple[int, str, int]]) -> None:
    a = np.array([r[0] for r in rows], dtype=np.int64)
    s = [r[1] for r in rows]
    big = np.array([r[2] for r in rows], dtype=np.int64)
    g = group_rows((a, s, big), len(rows))
    got = dict(zip(g.keys, g.counts.tolist()))
    assert got == Counter(rows)
    inverse = g.inverse if g.inverse is not None else np.zeros(len(rows), np.intp)
    assert [g.keys[i] for i in inverse.tolist()] == rows
    single = group_rows(a, len(rows))
    assert dict(zip(single.keys, single.counts.tolist())) == Counter(r[0] for r in rows)


def test_cuts() -> None:
    assert cuts_unique([[1, 2, 1, 3, 3]], 5).tolist() == [2, 4]
    assert cuts_unique([[1, 2, 3]], 3).tolist() == []
    assert cuts_isolate(np.array([False, True, False, False, True]), 5).tolist() == [1, 2, 4]
