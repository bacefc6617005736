"""Map values: hist() slots at every power of two, from the bucket rule written out by hand."""

from __future__ import annotations

import numpy as np

from memtrace.tracer.probes import log2_buckets

from ..helpers import hist_slot


def test_log2_buckets_at_every_power_of_two_edge() -> None:
    values = [-5, 0, 1, 2, 3, 4, 7, 8]
    for k in range(2, 63):
        values += [(1 << k) - 1, 1 << k, (1 << k) + 1]
    values.append((1 << 63) - 1)
    got = log2_buckets(np.array(values, dtype=np.int64)).tolist()
    assert got == [hist_slot(v) for v in values]
