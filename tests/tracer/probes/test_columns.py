"""String columns: dictionary encoding, comparison, unification."""

from __future__ import annotations

import numpy as np

from memtrace.tracer.probes import StrColumn


def test_str_column_encodes_compares_and_unifies() -> None:
    words = ["a", "b", "a", "c", "b", "a"]
    col = StrColumn.from_list(words)
    assert col.tolist() == words
    assert (col == "a").tolist() == [w == "a" for w in words]
    assert (col != "b").tolist() == [w != "b" for w in words]
    other = StrColumn.from_list(["c", "b", "a", "c", "x", "a"])
    assert (col == other).tolist() == [x == y for x, y in zip(words, other.tolist())]
    assert StrColumn.from_list(["z"] * 5).values == ["z"]
    assert col[np.array([1, 3])].tolist() == ["b", "c"]
