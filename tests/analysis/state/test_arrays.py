"""The numpy helpers of the state fold."""

from __future__ import annotations

import numpy as np

from memtrace.analysis.state._arrays import no_repeat_segments


def test_no_repeat_segments_keep_event_order() -> None:
    keys = np.array([1, 2, 3, 2, 4, 1, 5])
    assert list(no_repeat_segments(keys)) == [(0, 3), (3, 7)]
    assert list(no_repeat_segments(np.array([3, 1, 2]))) == [(0, 3)]
    assert list(no_repeat_segments(np.array([7, 7, 7]))) == [(0, 1), (1, 2), (2, 3)]
