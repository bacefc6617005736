"""Event batches: rows sliced and taken keep every column in step."""

from __future__ import annotations

import numpy as np

from memtrace.tracer import EventBatch, default_registry


def _opens() -> EventBatch:
    tp = default_registry()["file_open"]
    return EventBatch.build(tp, 4, {"seq": np.arange(4), "ts_ns": [5, 6, 7, 8], "pid": 1, "path": ["a", "b", "c", "d"],
                                    "ino": [10, 11, 12, 13], "size_bytes": 0, "shmem": False, "created": True})


def test_slice_and_take() -> None:
    b = _opens()
    assert b.slice(0, 4) is b and b.slice(0, 4, copy=True) is not b
    part = b.slice(1, 3)
    assert part.strs("path") == ["b", "c"] and part.ints("ino").tolist() == [11, 12]
    copied = b.slice(1, 3, copy=True)
    assert not np.shares_memory(copied.ints("ino"), b.ints("ino"))
    taken = b.take(np.array([3, 0]))
    assert taken.strs("path") == ["d", "a"] and taken.ints("seq").tolist() == [3, 0]
