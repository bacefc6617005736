"""printf() as C formats it, and strftime of simulated time."""

from __future__ import annotations

import numpy as np
import pytest

from memtrace.tracer.probes import (
    StrColumn,
    parse_format,
    sim_strftime,
)


def test_printf_formats_like_c() -> None:
    spec = parse_format("%-6s|%5d|%x|%u|%c|%%|%03i\n")
    assert spec.convs == ("s", "d", "x", "u", "c", "i")
    from memtrace.tracer.probes import format_rows

    rows = format_rows(spec, [StrColumn.from_list(["ab", "c"]), np.array([7, -7]), np.array([255, -1]),
                              np.array([1, -1]), np.array([65, 97]), 5], 2)
    assert rows == ["ab    |    7|ff|1|A|%|005\n",
                    f"c     |   -7|{(1 << 64) - 1:x}|{(1 << 64) - 1}|a|%|005\n"]
    with pytest.raises(ValueError, match="unsupported printf conversion '%q'"):
        parse_format("%q")


def test_sim_strftime_reads_time_since_boot() -> None:
    assert sim_strftime("%H:%M:%S", 3_723_000_000_123) == "01:02:03"
    assert sim_strftime("%S.%f", 1_500_000_000) == "01.500000"


def test_printf_widths_and_precisions_are_bounded() -> None:
    """%999999999d would write a gigabyte per event: a width or precision over 1000
    is refused, naming the conversion; 1000 itself is accepted."""
    assert parse_format("%1000d|%.1000s").convs == ("d", "s")
    for fmt, what in (("%1001d", "width 1001 in '%1001d'"), ("%-5.99999999999s", "precision 99999999999"),
                      ("%0999999999x", "width 999999999")):
        with pytest.raises(ValueError, match=f"printf field {what}"):
            parse_format(fmt)
