"""Sizes and times: exact parsing and the one way each is printed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memtrace.units import (
    GiB,
    MiB,
    format_duration,
    format_duration_exact,
    format_mib,
    format_seconds,
    format_size,
    format_size_exact,
    format_size_short,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("1.005s", 1_005_000_000), ("30ms", 30_000_000), ("2us", 2_000), ("500ns", 500), (1000, 1000),
    ("0.5min", 30_000_000_000),
])
def test_durations_parse_exactly(text: object, expected: int) -> None:
    assert parse_duration(text) == expected


def test_bare_numbers_take_the_default_unit() -> None:
    assert parse_duration("4.8", default_unit="s") == 4_800_000_000
    assert parse_duration("1.005", default_unit="s") == 1_005_000_000
    assert parse_duration(3, default_unit="s") == 3_000_000_000


@pytest.mark.parametrize("bad", ["1.5ns", "fast", True, "1e9", None, "10 parsecs"])
def test_durations_that_are_not_whole_nanoseconds_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "expected"), [
    ("1.5GiB", 3 * GiB // 2), ("64k", 65536), ("96MiB", 96 * MiB), ("4096", 4096), ("1kB", 1024), (7, 7),
])
def test_sizes_parse_exactly(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["1.5B", "lots", False, "1e3"])
def test_sizes_that_are_not_whole_bytes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(bad)


@pytest.mark.parametrize(("nr_bytes", "text"), [
    (0, "0 B"), (512, "512 B"), (12 * 1024, "12 KiB"), (768 * MiB, "768 MiB"), (3 * GiB // 2, "1.5 GiB"),
    (-(MiB + MiB // 5), "-1.2 MiB"), (None, "unknown"), (150 * MiB + MiB // 2, "150 MiB"),
])
def test_sizes_for_people(nr_bytes: int | None, text: str) -> None:
    assert format_size(nr_bytes) == text


@pytest.mark.parametrize(("nr_bytes", "text"), [
    (0, "0B"), (1023, "1023B"), (1536, "1.5Ki"), (512 * MiB, "512Mi"), (int(1.2 * GiB), "1.2Gi"), (23 * GiB, "23Gi"),
])
def test_table_cells_as_free_h_prints_them(nr_bytes: int, text: str) -> None:
    assert format_size_short(nr_bytes) == text


def test_mib_columns_floor_as_free_m() -> None:
    assert format_mib(24143 * MiB + MiB - 1) == "24,143"


@given(st.integers(min_value=0, max_value=1 << 50))
def test_exact_sizes_and_durations_read_back(n: int) -> None:
    assert parse_size(format_size_exact(n)) == n
    assert parse_duration(format_duration_exact(n)) == n


def test_seconds_are_rounded_on_the_integer() -> None:
    assert format_seconds(1_004_999_999) == "1.005 s"
    assert format_seconds(4_929_499_999) == "4.929 s"
    assert format_seconds(153_500_000, digits=6) == "0.153500 s"
    assert format_seconds(None) == "?"


def test_durations_for_people() -> None:
    assert [format_duration(x) for x in (120_000_000, 4_900_000_000, 300_000_000_000)] == ["120 ms", "4.9 s", "5 min"]
