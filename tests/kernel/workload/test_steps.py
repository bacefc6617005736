"""The step dataclasses: one per op, and their TOML tables written back."""

from __future__ import annotations

import pytest

from memtrace.kernel.workload import STEP_TYPES, Brk, Mmap, Touch, step_to_dict


def test_step_to_dict_leaves_defaults_out() -> None:
    assert step_to_dict(Mmap(handle="buf", length_bytes=4096)) == {"op": "mmap", "handle": "buf", "length": 4096}
    assert step_to_dict(Touch(handle="buf", write=True)) == {"op": "touch", "handle": "buf", "write": True}
    assert step_to_dict(Brk(increment_bytes=-4096)) == {"op": "brk", "increment": -4096}


@pytest.mark.parametrize("op", sorted(STEP_TYPES))
def test_every_op_is_named_by_its_class(op: str) -> None:
    assert STEP_TYPES[op].op == op
