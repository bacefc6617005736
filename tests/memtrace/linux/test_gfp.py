"""GFP masks: per-era bit layouts, %pGg names, and the names read back from traces."""

from __future__ import annotations

import pytest

from memtrace.linux.gfp import (
    GFP_HIGHUSER_MOVABLE,
    GFP_HIGHUSER_MOVABLE_ZERO,
    GFP_KERNEL,
    format_gfp_mask,
    gfp_from_names,
    gfp_names,
)
from memtrace.linux.version import parse_kernel_version


def test_the_simulators_composites_have_the_6x_values_of_the_reference() -> None:
    """§3.2: GFP_KERNEL 0xcc0, GFP_HIGHUSER_MOVABLE 0x100cca on 5.15/6.x."""
    assert (GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_HIGHUSER_MOVABLE_ZERO) == (0xCC0, 0x100CCA, 0x100DCA)


@pytest.mark.parametrize(("mask", "version", "names"), [
    (0x6200CA, "4.19", "GFP_HIGHUSER_MOVABLE"),
    (0x6000C0, "4.19", "GFP_KERNEL"),
    (0x100DCA, "6.1", "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
    (0x24000C0, "4.9", "GFP_KERNEL"),
    (0xD0, "2.6.32", "GFP_KERNEL"),
    (0x200DA, "3.10", "GFP_HIGHUSER_MOVABLE"),
    (0x201DA, "3.10", "GFP_HIGHUSER_MOVABLE|__GFP_COLD"),
    (0x20, "3.10", "GFP_ATOMIC"),
])
def test_a_hex_mask_from_a_log_decodes_in_its_kernels_layout(mask: int, version: str, names: str) -> None:
    assert gfp_names(mask, parse_kernel_version(version)) == names


@pytest.mark.parametrize("mask", [0x100DCA, 0x100CCA, 0xCC0, 0x140CCA, 0x2800, 0x820])
def test_names_printed_by_a_6x_kernel_read_back_to_the_same_mask(mask: int) -> None:
    printed = format_gfp_mask(mask, (6, 13))
    names = printed[printed.index("(") + 1:-1]
    assert gfp_from_names(names) == mask


def test_names_of_5x_kernels_keep_gfp_atomic() -> None:
    assert gfp_from_names("GFP_HIGHUSER_MOVABLE|__GFP_ATOMIC") == 0x100CCA | 0x200
    assert gfp_from_names("0x100cca") == 0x100CCA
    assert gfp_from_names("__GFP_NOSUCH|GFP_KERNEL") == 0xCC0


def test_before_4_9_the_mask_prints_as_hex_only() -> None:
    assert format_gfp_mask(0x100DCA, (3, 10)) == "0x280da"  # 3.x logs: GFP_HIGHUSER_MOVABLE|__GFP_ZERO
