"""The zones at an OOM: watermarks, free lists, and why the page allocator gave up.

Models mm/page_alloc.c as of 5.x/6.x (``../shared/reference/kernel-mm-facts.md`` §5):

- ``gfp_zone()``: the highest zone a gfp mask may allocate from (the zone bits,
  ``__GFP_DMA`` 0x01, ``__GFP_HIGHMEM`` 0x02, ``__GFP_DMA32`` 0x04 and ``__GFP_MOVABLE``
  0x08, are the same in every era since 2.6.23);
- the zonelist walk of ``get_page_from_freelist()``: every zone from that one down, on
  every node the allocation may use;
- ``__zone_watermark_ok()``: the zone's free pages, less ``2^order - 1`` and what the
  request may not take (the highatomic reserve, CMA for an unmovable request), must stay
  above the mark plus ``lowmem_reserve[classzone]``; an order > 0 request also needs a
  free block of at least its order in an ordinary migrate type (U, M or E).

The slow path gives up (and ``__alloc_pages_may_oom()`` runs) when no zone passes at the
**min** mark after reclaim; the verdict is that test. OOMAnalyser tests the **low** mark
(the fast path's, which only wakes kswapd) in one zone chosen from two gfp bits, with
``lowmem_reserve`` indexed by that zone's own position: the verdict says what that test
would conclude where it differs.

Simplified: show_mem prints the zones *after* the allocation failed, so a zone may show
more free memory than the allocator saw (freed meanwhile, per-cpu lists drifting); the
verdict says so rather than blaming one zone. The non-blocking (``mark -= mark/4``) and
OOM-victim reductions, and cpuset/mempolicy limits on the nodes, are not modelled: every
node printed is taken as allowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from ..report.model import Fragmentation, NodeState, WatermarkVerdict, ZoneBlocks, ZoneCheck, ZoneState
from .parse import BuddyList, ParsedOom

__all__ = [
    "PAGE_ALLOC_COSTLY_ORDER",
    "ZONE_TYPES",
    "configured_zones",
    "fragmentation",
    "gfp_zone",
    "node_states",
    "watermark_verdict",
    "zone_states",
]

#: enum zone_type, in order (include/linux/mmzone.h); which of them a kernel has depends
#: on its configuration (:func:`configured_zones`).
ZONE_TYPES = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")
#: include/linux/mmzone.h: orders above it are "costly" (the allocator tries less hard).
PAGE_ALLOC_COSTLY_ORDER = 3

_GFP_DMA, _GFP_HIGHMEM, _GFP_DMA32, _GFP_MOVABLE, _GFP_HIGH = 0x01, 0x02, 0x04, 0x08, 0x20
#: Configurations seen in practice, most likely first (x86-64, then 32-bit, arm64).
_LIKELY = (
    ("DMA", "DMA32", "Normal", "Movable"), ("DMA", "DMA32", "Normal", "Movable", "Device"),
    ("DMA", "Normal", "HighMem", "Movable"), ("DMA32", "Normal", "Movable"), ("DMA", "Normal", "Movable"),
    ("DMA32", "Normal", "Movable", "Device"), ("DMA", "Normal", "Movable", "Device"), ("Normal", "Movable"),
)


def configured_zones(printed: Sequence[str], nr_reserve: int | None, highmem: bool | None = None) -> tuple[str, ...]:
    """The zone types of the kernel (their order indexes ``lowmem_reserve[]``): from the
    zones it printed and the length of its ``lowmem_reserve[]`` lines; ``highmem`` when the
    kernel is known 32-bit (True) or 64-bit (False)."""
    names = set(printed)
    if nr_reserve is None:
        return tuple(z for z in ZONE_TYPES if z in names)
    candidates: list[tuple[str, ...]] = []
    optional = ("DMA", "DMA32", "HighMem", "Device")
    for picks in itertools.product((False, True), repeat=len(optional)):
        chosen = {z for z, p in zip(optional, picks) if p} | {"Normal", "Movable"}
        zones = tuple(z for z in ZONE_TYPES if z in chosen)
        if len(zones) != nr_reserve or not names <= chosen:
            continue
        if highmem is False and "HighMem" in chosen:
            continue
        candidates.append(zones)
    if not candidates:
        return tuple(z for z in ZONE_TYPES if z in names)
    for likely in _LIKELY:
        if likely in candidates:
            return likely
    return candidates[0]


def gfp_zone(gfp_mask: int, zones: Sequence[str]) -> str:
    """``gfp_zone()``: the highest zone type ``gfp_mask`` may use, among ``zones`` (a
    zone type the kernel lacks falls to Normal: HighMem on 64-bit, DMA32 on 32-bit)."""
    if gfp_mask & _GFP_DMA:
        want = "DMA"
    elif gfp_mask & _GFP_DMA32:
        want = "DMA32"
    elif gfp_mask & _GFP_HIGHMEM and gfp_mask & _GFP_MOVABLE:
        want = "Movable"
    elif gfp_mask & _GFP_HIGHMEM:
        want = "HighMem"
    else:
        want = "Normal"
    return want if want in zones else "Normal"


def zone_states(r: ParsedOom) -> tuple[ZoneState, ...]:
    """Each zone line of the report with its ``lowmem_reserve[]`` and buddy lists."""
    buddy: dict[tuple[int | None, str], BuddyList] = {(b.node, b.zone): b for b in r.buddy}
    out = []
    for z in r.zones:
        node = z.get("nid")
        b = buddy.get((node, z["zone"])) or (buddy.get((None, z["zone"])) if node in (0, None) else None)
        largest = None
        if b is not None:
            nonzero = [i for i, c in enumerate(b.counts) if c]
            largest = nonzero[-1] if nonzero else None
        out.append(ZoneState(
            node=node, zone=z["zone"], free_kb=z.get("free"), min_kb=z.get("min"), low_kb=z.get("low"),
            high_kb=z.get("high"), boost_kb=z.get("boost"), managed_kb=z.get("managed"), present_kb=z.get("present"),
            free_cma_kb=z.get("free_cma"), reserved_highatomic_kb=z.get("reserved_highatomic"),
            lowmem_reserve_pages=tuple(z.get("lowmem_reserve", ())),
            free_blocks=b.counts if b else (), block_kb=b.block_kb if b else (), block_types=b.types if b else (),
            buddy_free_kb=b.total_kb if b else None, largest_free_order=largest,
            all_unreclaimable=z.get("all_unreclaimable"),
            lines=tuple(x for x in (z.get("lineno"), b.lineno if b else None) if x is not None)))
    # Buddy lines of zones whose watermark line the paste left out.
    seen = {(z.node, z.zone) for z in out} | {(None, z.zone) for z in out if z.node in (0, None)}
    for b in r.buddy:
        if (b.node, b.zone) not in seen:
            nonzero = [i for i, c in enumerate(b.counts) if c]
            out.append(ZoneState(node=b.node, zone=b.zone, free_kb=None, min_kb=None, low_kb=None, high_kb=None,
                                 free_blocks=b.counts, block_kb=b.block_kb, block_types=b.types,
                                 buddy_free_kb=b.total_kb, largest_free_order=nonzero[-1] if nonzero else None,
                                 lines=(b.lineno,)))
    return tuple(out)


def node_states(r: ParsedOom, zones: Sequence[ZoneState]) -> tuple[NodeState, ...]:
    """Each node: its zones' free memory and watermarks summed, and its node line."""
    node_lines = {n["nid"]: n for n in r.nodes}
    nodes = sorted({z.node for z in zones if z.free_kb is not None}, key=lambda n: -1 if n is None else n)
    out = []
    for nid in nodes:
        mine = [z for z in zones if z.node == nid and z.free_kb is not None]
        line = node_lines.get(nid if nid is not None else 0)
        # Kernel stacks and page tables: per node from 4.8, per zone before.
        zone_lines = [z for z in r.zones if z.get("nid") == nid]
        stacks = line.get("kernel_stack") if line else _sum(z.get("kernel_stack") for z in zone_lines)
        tables = line.get("pagetables") if line else _sum(z.get("pagetables") for z in zone_lines)
        unreclaimable = line.get("all_unreclaimable") if line else None
        if unreclaimable is None and zone_lines and all("all_unreclaimable" in z for z in zone_lines):
            unreclaimable = all(z["all_unreclaimable"] for z in zone_lines)  # 2.6.x: per zone
        out.append(NodeState(
            node=nid, free_kb=_sum(z.free_kb for z in mine), min_kb=_sum(z.min_kb for z in mine),
            low_kb=_sum(z.low_kb for z in mine), high_kb=_sum(z.high_kb for z in mine),
            kernel_stack_kb=stacks, pagetables_kb=tables, all_unreclaimable=unreclaimable))
    return tuple(out)


def _sum(values: Iterable[int | None]) -> int | None:
    vals = list(values)
    if not vals:
        return None
    total = 0
    for v in vals:
        if v is None:
            return None
        total += v
    return total


def _name(z: ZoneState | ZoneCheck) -> str:
    return z.zone if z.node is None else f"node {z.node} {z.zone}"


def watermark_verdict(zones: Sequence[ZoneState], configured: Sequence[str], gfp_mask: int, order: int,
                      page_kb: int) -> WatermarkVerdict | None:
    """The slow path's last test on every zone the request could use (see the module
    docstring); None when the report prints no watermarks for them."""
    classzone = gfp_zone(gfp_mask, configured)
    cz = configured.index(classzone) if classzone in configured else None
    usable = [z for z in zones if z.zone in configured and cz is not None and configured.index(z.zone) <= cz
              and z.free_kb is not None and z.min_kb is not None]
    if not usable:
        return None
    high_prio = bool(gfp_mask & _GFP_HIGH)
    movable = bool(gfp_mask & _GFP_MOVABLE)
    checks = []
    for z in sorted(usable, key=lambda z: (-1 if z.node is None else z.node, -configured.index(z.zone))):
        assert z.free_kb is not None and z.min_kb is not None
        reserve_pages = z.lowmem_reserve_pages[cz] if cz is not None and cz < len(z.lowmem_reserve_pages) else 0
        reserve_kb = reserve_pages * page_kb
        usable_kb = z.free_kb - ((1 << max(order, 0)) - 1) * page_kb
        if not high_prio:
            usable_kb -= z.reserved_highatomic_kb or 0
        if not movable:
            usable_kb -= z.free_cma_kb or 0
        mark = z.min_kb - z.min_kb // 2 if high_prio else z.min_kb
        ok = usable_kb > mark + reserve_kb and _block_for(z, order)
        checks.append(ZoneCheck(
            node=z.node, zone=z.zone, free_kb=z.free_kb, usable_kb=usable_kb, mark_kb=mark, reserve_kb=reserve_kb,
            ok=ok, ok_at_low=z.low_kb is not None and usable_kb > z.low_kb + reserve_kb,
            ok_at_high=z.high_kb is not None and usable_kb > z.high_kb + reserve_kb))
    short = tuple(_name(c) for c in checks if not c.ok)
    mark_name = "min/2 (__GFP_HIGH)" if high_prio else "min"
    where = ", ".join(_name(c) for c in checks)
    frag = [c for c in checks if c.usable_kb > c.mark_kb + c.reserve_kb and not c.ok]
    if len(short) == len(checks):
        verdict = (f"every zone an order-{order} request for {classzone} and below could use ({where}) was at or "
                   f"below its {mark_name} watermark plus lowmem_reserve[{classzone}]"
                   + (" or had no free block large enough" if frag else "")
                   + ": the page allocator could not serve it even after reclaim, so it invoked the OOM killer")
    else:
        passing = [c for c in checks if c.ok]
        verdict = (f"{', '.join(_name(c) for c in passing)} had free memory above {mark_name} + lowmem_reserve "
                   "in this snapshot, which show_mem prints after the allocation failed (memory freed since, "
                   "per-cpu counters drifting): the shortage was in "
                   + (", ".join(short) if short else "no zone the snapshot shows"))
    if frag:
        verdict += (f"; {', '.join(_name(c) for c in frag)} had the pages but no free block of order {order} "
                    "or more: fragmentation")
    absurd = [z for z in usable if z.min_kb is not None and (z.present_kb or z.managed_kb)
              and z.min_kb > max(z.present_kb or 0, z.managed_kb or 0)]
    if absurd:
        verdict += (f"; beware: the watermarks of {', '.join(_name(z) for z in absurd)} exceed the zone's own size "
                    "(a kernel whose counters went wrong): the test above is only as good as they are")
    return WatermarkVerdict(classzone=classzone, order=order, mark=mark_name, zones=tuple(checks), short=short,
                            all_short=len(short) == len(checks), verdict=verdict,
                            oomanalyser=_oomanalyser_test(zones, gfp_mask, page_kb, checks))


def _block_for(z: ZoneState, order: int) -> bool:
    """An order > 0 request needs a free block of its order or more in an ordinary
    migrate type (unmovable, movable, reclaimable); unknown lists count as having one."""
    if order <= 0 or not z.free_blocks:
        return True
    for o in range(order, len(z.free_blocks)):
        if z.free_blocks[o] and (o >= len(z.block_types) or not z.block_types[o]
                                 or set(z.block_types[o]) & set("UME")):
            return True
    return False


_OOMA_ZONES = ("DMA", "DMA32", "Normal", "HighMem", "Movable")


def _oomanalyser_test(zones: Sequence[ZoneState], gfp_mask: int, page_kb: int,
                      checks: Sequence[ZoneCheck]) -> str | None:
    """What OOMAnalyser's test concludes: the zone from two gfp bits (DMA, DMA32, else
    Normal) on the first node where free < min, free <= low + lowmem_reserve[that
    zone's own index in DMA, DMA32, Normal, HighMem, Movable]; None where it would agree
    or say nothing."""
    target = "DMA" if gfp_mask & _GFP_DMA else "DMA32" if gfp_mask & _GFP_DMA32 else "Normal"
    node = next((z for z in zones if z.zone == target and z.free_kb is not None and z.min_kb is not None
                 and z.free_kb < z.min_kb), None)
    if node is None:
        if not any(z.zone == target for z in zones):
            return (f"OOMAnalyser looks only at the {target} zone, which this machine does not have: it gives no "
                    "verdict")
        return None
    assert node.free_kb is not None and node.low_kb is not None
    idx = _OOMA_ZONES.index(target)
    reserve = node.lowmem_reserve_pages[idx] * page_kb if idx < len(node.lowmem_reserve_pages) else 0
    if node.free_kb <= node.low_kb + reserve:
        others = [c for c in checks if c.ok]
        said = (f"OOMAnalyser tests the low watermark of {_name(node)} alone ({node.free_kb} kB free <= low "
                f"{node.low_kb} kB + {reserve} kB) and says the request failed 'below the low watermark'; low is the "
                "fast path's mark (it wakes kswapd), the allocator gives up at min after reclaim")
        if others:
            said += f", and {', '.join(_name(c) for c in others)} passed that test in this snapshot"
        return said
    return None


def fragmentation(zones: Sequence[ZoneState], configured: Sequence[str], classzone: str | None,
                  order: int) -> Fragmentation | None:
    """Free memory by block size in the zones the request could use (every zone when
    its class is unknown); None without buddy lists."""
    cz = configured.index(classzone) if classzone is not None and classzone in configured else None
    usable = [z for z in zones if z.free_blocks and (cz is None or (z.zone in configured
                                                                    and configured.index(z.zone) <= cz))]
    if not usable:
        return None
    order = max(order, 0)
    blocks = []
    for z in usable:
        per_order = [c * (z.block_kb[i] if i < len(z.block_kb) else 0) for i, c in enumerate(z.free_blocks)]
        # Blocks only of the highatomic (H) or CMA (C) types serve no ordinary request.
        reserved = [i < len(z.block_types) and bool(z.block_types[i]) and not set(z.block_types[i]) & set("UME")
                    for i in range(len(per_order))]
        ordinary = [0 if r else kb for kb, r in zip(per_order, reserved)]
        blocks.append(ZoneBlocks(
            node=z.node, zone=z.zone, largest_free_order=z.largest_free_order, free_kb=sum(per_order),
            free_kb_at_order=sum(ordinary[order:]), free_kb_at_costly_order=sum(ordinary[PAGE_ALLOC_COSTLY_ORDER:]),
            unusable_kb=sum(kb for kb, r in zip(per_order, reserved) if r)))
    free = sum(b.free_kb for b in blocks)
    at_order = sum(b.free_kb_at_order for b in blocks)
    at_costly = sum(b.free_kb_at_costly_order for b in blocks)
    for_request = order > 0 and free > 0 and at_order == 0
    heavily = free > 0 and at_costly == 0
    if order > 0 and for_request:
        verdict = (f"fragmented for this request: {free} kB free, none of it in a block of order {order} or more")
    elif heavily:
        verdict = (f"heavily fragmented: {free} kB free, all of it in blocks below order {PAGE_ALLOC_COSTLY_ORDER} "
                   f"(<{(1 << PAGE_ALLOC_COSTLY_ORDER)} pages); an order-{order} request does not need more")
    else:
        verdict = (f"not fragmented: {at_costly} kB of the {free} kB free sit in blocks of order "
                   f"{PAGE_ALLOC_COSTLY_ORDER} or more")
        if order == 0:
            verdict += "; an order-0 request fails on the amount of free memory, not on its blocks"
    return Fragmentation(order=order, costly_order=PAGE_ALLOC_COSTLY_ORDER, zones=tuple(blocks),
                         fragmented_for_request=for_request, heavily_fragmented=heavily, verdict=verdict)
