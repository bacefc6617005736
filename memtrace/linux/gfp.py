"""GFP flags: the ``___GFP_*`` bit layout of each kernel era, and their names.

include/linux/gfp.h (gfp_types.h from 6.0) assigns a bit to each ``__GFP_*`` flag;
the assignment changed several times, so the same mask prints differently on
different kernels. Flags are keyed here by their name without the ``__GFP_`` prefix.
The simulator and memtrace's own events use the 6.x layout (:data:`GFP_BITS_6X`);
:func:`format_gfp_mask` re-encodes such a mask for an older kernel's log, and
:func:`gfp_names` decodes a mask read from a log of a given kernel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from .version import V4_9, V4_19, V5_4, V6_6, KernelVersion, kernel_era

__all__ = [
    "GFP_BITS_6X",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_HIGHUSER_MOVABLE_ZERO",
    "GFP_KERNEL",
    "format_flags",
    "format_gfp_mask",
    "gfp_from_names",
    "gfp_layout",
    "gfp_names",
    "gfp_names_table",
]

#: 5.4 ... 6.x (no KASAN tags before 5.12's ZEROTAGS). ATOMIC (0x200) was removed in 6.4.
GFP_BITS_6X: Mapping[str, int] = {
    "DMA": 0x01, "HIGHMEM": 0x02, "DMA32": 0x04, "MOVABLE": 0x08, "RECLAIMABLE": 0x10,
    "HIGH": 0x20, "IO": 0x40, "FS": 0x80, "ZERO": 0x100, "ATOMIC": 0x200,
    "DIRECT_RECLAIM": 0x400, "KSWAPD_RECLAIM": 0x800, "WRITE": 0x1000, "NOWARN": 0x2000,
    "RETRY_MAYFAIL": 0x4000, "NOFAIL": 0x8000, "NORETRY": 0x10000, "MEMALLOC": 0x20000,
    "COMP": 0x40000, "NOMEMALLOC": 0x80000, "HARDWALL": 0x100000, "THISNODE": 0x200000,
    "ACCOUNT": 0x400000, "ZEROTAGS": 0x800000,
}
#: 4.19 (GFP_KERNEL 0x6000c0, GFP_HIGHUSER_MOVABLE 0x6200ca: reference §3.2).
_GFP_BITS_4_19: Mapping[str, int] = {
    "DMA": 0x01, "HIGHMEM": 0x02, "DMA32": 0x04, "MOVABLE": 0x08, "RECLAIMABLE": 0x10,
    "HIGH": 0x20, "IO": 0x40, "FS": 0x80, "WRITE": 0x100, "NOWARN": 0x200,
    "RETRY_MAYFAIL": 0x400, "NOFAIL": 0x800, "NORETRY": 0x1000, "MEMALLOC": 0x2000,
    "COMP": 0x4000, "ZERO": 0x8000, "NOMEMALLOC": 0x10000, "HARDWALL": 0x20000,
    "THISNODE": 0x40000, "ATOMIC": 0x80000, "ACCOUNT": 0x100000,
    "DIRECT_RECLAIM": 0x200000, "KSWAPD_RECLAIM": 0x400000,
}
#: 4.9 (GFP_KERNEL 0x24000c0). Not in the reference: from the 4.9 gfp.h as quoted in
#: the mm patches that changed it.
_GFP_BITS_4_9: Mapping[str, int] = {
    "DMA": 0x01, "HIGHMEM": 0x02, "DMA32": 0x04, "MOVABLE": 0x08, "RECLAIMABLE": 0x10,
    "HIGH": 0x20, "IO": 0x40, "FS": 0x80, "COLD": 0x100, "NOWARN": 0x200,
    "REPEAT": 0x400, "NOFAIL": 0x800, "NORETRY": 0x1000, "MEMALLOC": 0x2000,
    "COMP": 0x4000, "ZERO": 0x8000, "NOMEMALLOC": 0x10000, "HARDWALL": 0x20000,
    "THISNODE": 0x40000, "ATOMIC": 0x80000, "ACCOUNT": 0x100000, "NOTRACK": 0x200000,
    "DIRECT_RECLAIM": 0x400000, "OTHER_NODE": 0x800000, "WRITE": 0x1000000,
    "KSWAPD_RECLAIM": 0x2000000,
}
#: 2.6.32 ... 3.x, where __GFP_WAIT stood for direct reclaim (GFP_KERNEL 0xd0,
#: GFP_HIGHUSER_MOVABLE 0x200da). Not in the reference (recalled); printed as hex only.
_GFP_BITS_LEGACY: Mapping[str, int] = {
    "DMA": 0x01, "HIGHMEM": 0x02, "DMA32": 0x04, "MOVABLE": 0x08, "WAIT": 0x10,
    "HIGH": 0x20, "IO": 0x40, "FS": 0x80, "COLD": 0x100, "NOWARN": 0x200,
    "REPEAT": 0x400, "NOFAIL": 0x800, "NORETRY": 0x1000, "COMP": 0x4000,
    "ZERO": 0x8000, "NOMEMALLOC": 0x10000, "HARDWALL": 0x20000, "THISNODE": 0x40000,
    "RECLAIMABLE": 0x80000,
}
#: 6.x flag names under their older names.
_GFP_ALIASES_4_9 = {"RETRY_MAYFAIL": "REPEAT"}
_GFP_ALIASES_LEGACY = {"RETRY_MAYFAIL": "REPEAT", "DIRECT_RECLAIM": "WAIT"}

_RECLAIM = ("DIRECT_RECLAIM", "KSWAPD_RECLAIM")
_KERNEL = (*_RECLAIM, "IO", "FS")
_HIGHUSER_MOVABLE = (*_KERNEL, "HARDWALL", "HIGHMEM", "MOVABLE")
_TRANSHUGE_LIGHT = ("IO", "FS", "HARDWALL", "HIGHMEM", "MOVABLE", "COMP", "NOMEMALLOC", "NOWARN")


def _mask(*flags: str) -> int:
    return sum(GFP_BITS_6X[f] for f in flags)


#: The 6.x composites the simulated kernel allocates with.
GFP_KERNEL = _mask(*_KERNEL)  # 0xcc0: memcg charges, page tables, kernel stacks
GFP_HIGHUSER_MOVABLE = _mask(*_HIGHUSER_MOVABLE)  # 0x100cca: page cache, user pages
GFP_HIGHUSER_MOVABLE_ZERO = GFP_HIGHUSER_MOVABLE | GFP_BITS_6X["ZERO"]  # 0x100dca: anonymous faults


def gfp_layout(version: KernelVersion) -> tuple[dict[str, int], dict[str, str]]:
    """The ``___GFP_*`` bits of kernels of ``version``'s era, and the names its
    flags had there for the 6.x names that were renamed."""
    era = kernel_era(version)
    if era >= V6_6:  # __GFP_ATOMIC removed in 6.4
        return {k: v for k, v in GFP_BITS_6X.items() if k != "ATOMIC"}, {}
    if era >= V5_4:
        return {k: v for k, v in GFP_BITS_6X.items() if k != "ZEROTAGS"}, {}
    if era >= V4_19:
        return dict(_GFP_BITS_4_19), {}
    if era >= V4_9:
        return dict(_GFP_BITS_4_9), dict(_GFP_ALIASES_4_9)
    return dict(_GFP_BITS_LEGACY), dict(_GFP_ALIASES_LEGACY)


def gfp_names_table(bits: Mapping[str, int]) -> list[tuple[str, int]]:
    """include/trace/events/mmflags.h ``__def_gfpflag_names`` (gfpflags.h before
    4.5) for a bit layout: the composite names first, then the single flags, in the
    kernel's order; entries whose flags do not exist in the layout are left out. In
    the layouts before 4.4, ``__GFP_WAIT`` is what the composites' reclaim bits are
    (``GFP_KERNEL`` = ``__GFP_WAIT|__GFP_IO|__GFP_FS``) and GFP_ATOMIC is
    ``__GFP_HIGH``."""
    legacy = "WAIT" in bits
    reclaim: tuple[str, ...] = ("WAIT",) if legacy else _RECLAIM
    kernel = (*reclaim, "IO", "FS")
    user = (*kernel, "HARDWALL")
    highuser = (*user, "HIGHMEM")
    if legacy:
        atomic: tuple[str, ...] = ("HIGH",)
    else:
        atomic = ("HIGH", "ATOMIC", "KSWAPD_RECLAIM") if "ATOMIC" in bits else ("HIGH", "KSWAPD_RECLAIM")
    composites: list[tuple[str, tuple[str, ...]]] = [
        ("GFP_TRANSHUGE", (*_TRANSHUGE_LIGHT, *reclaim[:1])),
        ("GFP_TRANSHUGE_LIGHT", _TRANSHUGE_LIGHT),
        ("GFP_HIGHUSER_MOVABLE", (*highuser, "MOVABLE")),
        ("GFP_HIGHUSER", highuser),
        ("GFP_USER", user),
    ]
    if "COLD" in bits:  # GFP_TEMPORARY, removed in 4.14
        composites.append(("GFP_TEMPORARY", (*kernel, "RECLAIMABLE")))
    composites += [
        ("GFP_KERNEL_ACCOUNT", (*kernel, "ACCOUNT")),
        ("GFP_KERNEL", kernel),
        ("GFP_NOFS", (*reclaim, "IO")),
        ("GFP_ATOMIC", atomic),
        ("GFP_NOIO", reclaim),
    ]
    if not legacy:
        composites.append(("GFP_NOWAIT", ("KSWAPD_RECLAIM",)))
    composites += [
        ("GFP_DMA", ("DMA",)),
        ("__GFP_HIGHMEM", ("HIGHMEM",)),
        ("GFP_DMA32", ("DMA32",)),
    ]
    singles = (
        "HIGH", "ATOMIC", "IO", "FS", "COLD", "NOWARN", "REPEAT", "RETRY_MAYFAIL",
        "NOFAIL", "NORETRY", "COMP", "ZERO", "NOMEMALLOC", "MEMALLOC", "HARDWALL",
        "THISNODE", "RECLAIMABLE", "MOVABLE", "ACCOUNT", "NOTRACK", "WRITE",
    )
    table: list[tuple[str, int]] = []
    for name, flags in composites:
        if all(f in bits for f in flags):
            table.append((name, sum(bits[f] for f in flags)))
    table += [(f"__GFP_{f}", bits[f]) for f in singles if f in bits]
    if not legacy:
        table.append(("__GFP_RECLAIM", bits["DIRECT_RECLAIM"] | bits["KSWAPD_RECLAIM"]))
    table += [(f"__GFP_{f}", bits[f]) for f in ("DIRECT_RECLAIM", "WAIT", "KSWAPD_RECLAIM", "OTHER_NODE", "ZEROTAGS")
              if f in bits]
    return table


def format_flags(value: int, table: Sequence[tuple[str, int]]) -> str:
    """lib/vsprintf.c format_flags(): each table entry whose bits are all set is
    printed and its bits cleared, joined by ``|``; leftover bits end as ``0x%lx``."""
    parts: list[str] = []
    for name, mask in table:
        if not value:
            break
        if mask and value & mask == mask:
            parts.append(name)
            value &= ~mask
    if value:
        parts.append(f"{value:#x}")
    return "|".join(parts)


def gfp_names(gfp_mask: int, version: KernelVersion) -> str:
    """``%pGg`` of a mask in ``version``'s own bit layout (as a log of that kernel
    prints it in hex): ``0x201da`` on 3.10 -> ``GFP_HIGHUSER_MOVABLE|__GFP_COLD``
    (``__GFP_WAIT`` spelt as direct reclaim's old name)."""
    bits, _aliases = gfp_layout(version)
    return format_flags(gfp_mask, gfp_names_table(bits))


def format_gfp_mask(gfp_mask: int, version: KernelVersion) -> str:
    """The header's gfp_mask as kernel ``version`` prints it: ``%#x(%pGg)`` from 4.9
    (``0x100dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO)`` on 5.4+, ``0x6280ca(...)`` on 4.19),
    plain ``0x%x`` before. ``gfp_mask`` is in the 6.x bit layout (the simulator's);
    each of its flags is re-encoded in ``version``'s layout, flags it lacks are
    dropped."""
    era = kernel_era(version)
    bits, aliases = gfp_layout(era)
    value = 0
    unknown = gfp_mask
    for name, bit in GFP_BITS_6X.items():
        if gfp_mask & bit:
            unknown &= ~bit
            value |= bits.get(aliases.get(name, name), 0)
    if era >= V5_4:
        value |= unknown  # same layout: keep bits memtrace has no name for
    if era < V4_9:
        return f"0x{value:x}"
    hexed = f"{value:#x}" if value else "0"  # C's %#x prints 0 bare
    return f"{hexed}({format_flags(value, gfp_names_table(bits))})"


#: Every name a 6.x ``%pGg``/``show_gfp_flags`` rendering can hold, with its bits:
#: the 6.4+ table (GFP_ATOMIC without __GFP_ATOMIC) plus __GFP_ATOMIC itself, which
#: 5.4..6.3 print.
_NAMES_6X: dict[str, int] = {
    **dict(gfp_names_table(gfp_layout(V6_6)[0])),
    "__GFP_ATOMIC": GFP_BITS_6X["ATOMIC"],
}


def gfp_from_names(text: str) -> int:
    """The 6.x gfp bits of a ``%pGg``/``show_gfp_flags`` rendering such as
    ``GFP_HIGHUSER_MOVABLE|__GFP_ZERO``; numbers (``0x100cca``) are taken as they
    are; unknown names count 0."""
    value = 0
    for part in text.strip().split("|"):
        part = part.strip()
        if not part or part == "0":
            continue
        if part[:2].lower() == "0x":
            with contextlib.suppress(ValueError):
                value |= int(part, 16)
            continue
        value |= _NAMES_6X.get(part, 0)
    return value
