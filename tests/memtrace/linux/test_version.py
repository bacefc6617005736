"""Kernel versions: parsing, eras, and the thresholds named once in memtrace.linux.version."""

from __future__ import annotations

import pytest

from memtrace.linux import version as v
from memtrace.linux.version import (
    READ_TREES,
    format_kernel_version,
    kernel_era,
    parse_kernel_version,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("6.13", (6, 13)),
    ("2.6.32", (2, 6, 32)),
    ("6.18.44-fc-v669", (6, 18, 44)),
    ("5.4.0-42-generic", (5, 4, 0)),
    ("3.10.0-957.el7.x86_64", (3, 10, 0)),
    (" 4.19.112+", (4, 19, 112)),
])
def test_release_strings_parse_to_their_leading_numbers(text: str, expected: tuple[int, ...]) -> None:
    assert parse_kernel_version(text) == expected


@pytest.mark.parametrize("bad", ["six", "6", "", "v6.1", "-6.1"])
def test_a_string_without_major_minor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad kernel version"):
        parse_kernel_version(bad)


def test_a_release_with_trailing_zeros_is_of_the_era_it_names() -> None:
    """Thresholds carry no trailing zero, so "5.4" and "5.4.0" both reach 5.4's rules."""
    for text in ("5.4", "5.4.0", "5.4.286"):
        assert parse_kernel_version(text) >= v.OOM_LAST_WINS
    assert parse_kernel_version("5.3.18") < v.OOM_LAST_WINS
    assert parse_kernel_version("2.6.36") >= v.OOM_BADNESS_REWRITE > parse_kernel_version("2.6.35.14")


def test_eras_map_to_the_newest_tree_read_not_newer() -> None:
    assert kernel_era((6, 18, 44)) == (6, 13)
    assert kernel_era((5, 10)) == (5, 4)
    assert kernel_era((5, 4, 0)) == (5, 4)
    assert kernel_era((3, 10, 0, 957)) == (3, 10)
    assert kernel_era((2, 4, 37)) == (2, 6, 32)
    assert list(READ_TREES) == sorted(READ_TREES)


def test_thresholds_are_in_the_order_their_docstrings_tell() -> None:
    order = [v.OOM_BADNESS_REWRITE, v.OOM_BADNESS_IN_PAGES, v.OOM_ADJ_FIELD_REMOVED, v.OOM_ROOT_BONUS_ON_USAGE,
             v.OOM_KILL_SCORE_UNSIGNED, v.OOM_REAPER, v.OOM_SKIP_FLAG, v.OOM_NO_ROOT_BONUS, v.OOM_LAST_WINS,
             v.OOM_SIGNED_BADNESS, v.OOM_ADJ_READ_CAP, v.DUMP_STACK_UID, v.DUMP_STACK_PREEMPT_MODEL]
    assert order == sorted(order)
    for threshold in order:
        assert threshold[-1] != 0 or len(threshold) == 1, threshold


def test_versions_format_back() -> None:
    assert format_kernel_version((2, 6, 32)) == "2.6.32"
    assert format_kernel_version(parse_kernel_version(v.DEFAULT_KERNEL_VERSION)) == v.DEFAULT_KERNEL_VERSION
