"""/proc views: free(1) columns and the oom_adj <-> oom_score_adj conversions (§1.6, §6.2)."""

from __future__ import annotations

import pytest

from memtrace.linux.proc import (
    c_div,
    check_oom_adj,
    free_columns,
    oom_adj_to_score_adj,
    score_adj_to_oom_adj,
    stored_oom_adj,
)

KB = 1024


def test_free_used_is_total_minus_available() -> None:
    """procps-ng >= 4.0.1: used = MemTotal - MemAvailable; buff/cache adds SReclaimable."""
    mi = {"MemTotal": 1000 * KB, "MemFree": 300 * KB, "MemAvailable": 600 * KB, "Shmem": 10 * KB,
          "Buffers": 5 * KB, "Cached": 200 * KB, "SReclaimable": 20 * KB}
    cols = free_columns(mi)
    assert cols.used == 400 * KB and cols.buff_cache == 225 * KB and cols.shared == 10 * KB


@pytest.mark.parametrize(("oom_adj", "score_adj"), [(-17, -1000), (-16, -941), (-1, -58), (1, 58), (14, 823), (15, 1000)])
def test_writing_oom_adj_stores_the_reference_examples(oom_adj: int, score_adj: int) -> None:
    assert oom_adj_to_score_adj(oom_adj) == score_adj


@pytest.mark.parametrize(("score_adj", "oom_adj"), [(-1000, -17), (500, 8), (-941, -15), (1000, 15), (0, 0)])
def test_reading_oom_adj_shows_the_reference_examples(score_adj: int, oom_adj: int) -> None:
    assert score_adj_to_oom_adj(score_adj) == oom_adj


def test_reads_of_942_to_999_are_capped_from_5_11_only() -> None:
    assert score_adj_to_oom_adj(942, (4, 19)) == 16
    assert score_adj_to_oom_adj(999, (5, 10)) == 16
    assert score_adj_to_oom_adj(999, (5, 11)) == 15
    assert score_adj_to_oom_adj(999) == 15


@pytest.mark.parametrize(("score_adj", "stored"), [(-1000, -17), (-999, -14), (500, 7), (999, 14), (1000, 15), (0, 0)])
def test_2_6_36_to_3_6_stored_oom_adj_scales_by_15_over_1000(score_adj: int, stored: int) -> None:
    """fs/proc/base.c oom_score_adj_write() before 3.7: oom_score_adj * OOM_ADJUST_MAX / OOM_SCORE_ADJ_MAX."""
    assert stored_oom_adj(score_adj) == stored


@pytest.mark.parametrize("bad", [-18, 16, 100])
def test_out_of_range_oom_adj_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        check_oom_adj(bad)
    with pytest.raises(ValueError, match="out of range"):
        oom_adj_to_score_adj(bad)


def test_c_division_truncates_toward_zero() -> None:
    assert (c_div(-7, 2), c_div(7, -2), c_div(7, 2), c_div(-7, -2)) == (-3, -3, 3, 3)
