"""Maps: vectorised aggregations equal a loop over one event at a time; dict behaviour."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.tracer.probes import (
    Map,
    Stats,
    StrColumn,
)

from ..helpers import hist_slot


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(-1000, 10**6)), min_size=1, max_size=80))
def test_aggregations_equal_a_loop_over_events(rows: list[tuple[int, int]]) -> None:
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    vals = np.array([v for _, v in rows], dtype=np.int64)
    maps = {name: Map(name) for name in ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist")}
    # Fed in two halves, to exercise merging into existing values.
    half = len(rows) // 2
    for sl in (slice(0, half), slice(half, None)):
        k, v = keys[sl], vals[sl]
        maps["count"].count(k, n=len(k))
        maps["sum"].sum(v, k)
        maps["min"].min(v, k)
        maps["max"].max(v, k)
        maps["avg"].avg(v, k)
        maps["stats"].stats(v, k)
        maps["hist"].hist(v, k)
        maps["lhist"].lhist(v, 0, 1000, 100, k)
    by: dict[int, list[int]] = defaultdict(list)
    for k, v in rows:
        by[k].append(v)

    def c_avg(xs: list[int]) -> int:
        q = abs(sum(xs)) // len(xs)
        return q if sum(xs) >= 0 else -q

    assert dict(maps["count"]) == {k: len(xs) for k, xs in by.items()}
    assert dict(maps["sum"]) == {k: sum(xs) for k, xs in by.items()}
    assert dict(maps["min"]) == {k: min(xs) for k, xs in by.items()}
    assert dict(maps["max"]) == {k: max(xs) for k, xs in by.items()}
    assert dict(maps["avg"]) == {k: c_avg(xs) for k, xs in by.items()}
    assert dict(maps["stats"]) == {k: Stats(len(xs), c_avg(xs), sum(xs)) for k, xs in by.items()}
    for k, xs in by.items():
        slots = Counter(hist_slot(x) for x in xs)
        assert maps["hist"][k].counts == tuple(slots.get(i, 0) for i in range(65))
        lin = Counter(0 if x < 0 else 11 if x >= 1000 else x // 100 + 1 for x in xs)
        assert maps["lhist"][k].counts == tuple(lin.get(i, 0) for i in range(12))


def test_map_behaves_like_a_dict() -> None:
    m = Map("faults")
    assert m.name == "@faults" and len(m) == 0 and m.value is None
    m.count(StrColumn.from_list(["a", "b", "a"]))
    assert dict(m) == {"a": 2, "b": 1}
    assert m["a"] == 2 and m.get("zz") is None and "b" in m
    m["c"] = 7
    del m["b"]
    assert sorted(m.items()) == [("a", 2), ("c", 7)]
    m.zero()
    assert dict(m) == {"a": 0, "c": 0}
    m.clear()
    assert len(m) == 0
    scalar = Map("@total")
    scalar.sum(np.array([1, 2, 3]))
    assert scalar.value == 6 and scalar[()] == 6
    with pytest.raises(TypeError, match="@total holds sum values; it cannot also take hist"):
        scalar.hist(np.array([1]))


def test_assign_keeps_the_last_value_per_key_and_delete_and_lookup() -> None:
    m = Map("@last")
    m.assign(np.array([10, 20, 30, 40]), np.array([1, 2, 1, 3]))
    assert dict(m) == {1: 30, 2: 20, 3: 40}
    assert m.lookup(np.array([3, 9, 1])).tolist() == [40, 0, 30]
    m.delete(np.array([1, 1]))
    assert dict(m) == {2: 20, 3: 40}
    names = Map("@name")
    names.assign(StrColumn.from_list(["x", "y", "z"]), np.array([5, 6, 5]))
    assert dict(names) == {5: "z", 6: "y"}
    assert names.lookup(np.array([6, 7])).tolist() == ["y", ""]
