"""A parsed report's facts as the report shows them: each fact with how it was read, the
machine, the zones, swap, huge pages and where RAM was (:class:`~..report.model.LogFacts`).

:func:`log_facts` turns what :mod:`.parse` read (its statements, :mod:`.evidence`) and
what :mod:`.watermarks` and :mod:`.machine` compute from it into the report's data; it
decides nothing the parser did not read, and leaves None what the log does not tell.
"""

from __future__ import annotations

from collections.abc import Hashable

from memtrace.linux.gfp import gfp_names
from memtrace.linux.version import V4_9, KernelVersion, format_kernel_version

from ..report.model import Evidence, Fact, GfpInfo, LogFacts, PageSize, Platform, TaskRef
from .evidence import Statement
from .machine import huge_pools, memcg_state, memory_composition, swap_state, task_table_state
from .parse import ParsedOom
from .watermarks import configured_zones, fragmentation, gfp_zone, node_states, watermark_verdict, zone_states

__all__ = ["FACTS", "log_facts"]

#: The facts every log report carries (each a :class:`~..report.model.Fact`).
FACTS = ("victim", "chosen", "trigger_pid", "trigger_comm", "constraint", "memcg", "kernel_release", "gfp_mask",
         "order")

#: 4.4 changed the gfp bit layout (__GFP_WAIT split into direct/kswapd reclaim); %pGg
#: names came in 4.5, so 4.4 is the one kernel that prints the new layout in hex only.
_GFP_LAYOUT_4_4: KernelVersion = (4, 4)


def _evidence(s: Statement, with_value: bool = False) -> Evidence:
    return Evidence(lines=s.source.linenos, rule=s.source.rule, read_as=s.source.line_rule or None,
                    value=_jsonable(s.value) if with_value else None, note=s.note)


def _jsonable(value: Hashable) -> object:
    if isinstance(value, tuple) and len(value) == 2:
        return {"pid": value[0], "comm": value[1]}
    return value


def _fact(r: ParsedOom, name: str) -> Fact:
    resolved = r.fact(name)
    return Fact(value=_jsonable(resolved.value), evidence=tuple(_evidence(s) for s in resolved.support),
                conflicts=tuple(_evidence(s, True) for s in resolved.conflicts))


def _gfp(r: ParsedOom, version: KernelVersion | None, zones: tuple[str, ...]) -> GfpInfo | None:
    mask = r.gfp_mask
    if mask is None:
        return None
    zone = gfp_zone(mask, zones) if zones else None
    if r.gfp_flags is not None:
        return GfpInfo(mask, r.gfp_flags, "printed by the kernel (%pGg)", zone)
    if version is not None:
        layout = V4_9 if _GFP_LAYOUT_4_4 <= version < V4_9 else version
        how = f"decoded with the bit layout of {format_kernel_version(version)} (the kernel printed hex only)"
    else:
        # No release: a hex-only header is older than 4.5; 4.4 alone used the bits above 0x800000.
        layout = V4_9 if mask >= 0x1000000 else (3, 10)
        how = ("decoded with the 4.4 bit layout (hex only, no release: bits above 0x800000 exist from 4.4 on)"
               if mask >= 0x1000000 else "decoded with the 2.6.x-4.3 bit layout (hex only, no release: before 4.5)")
    return GfpInfo(mask, gfp_names(mask, layout), how, zone)


def _oom_kind(r: ParsedOom) -> str | None:
    if r.sysrq:
        return "sysrq"
    if r.is_memcg:
        return "memcg_charge"
    if r.header or r.zones or r.meminfo_pages or any(f.startswith("__alloc_pages") for f in r.frames):
        return "allocation"
    return None


def _chosen(r: ParsedOom) -> TaskRef | None:
    value = r.fact("chosen").value
    if isinstance(value, tuple) and len(value) == 2:
        pid, comm = value
        return TaskRef(pid if isinstance(pid, int) else None, comm if isinstance(comm, str) else None)
    return None


def _victim_rss(r: ParsedOom) -> int | None:
    parts = (r.killed_anon_rss_kb, r.killed_file_rss_kb)
    if any(p is None for p in parts):
        return None
    return sum(p for p in parts if p is not None) + (r.killed_shmem_rss_kb or 0)


def log_facts(r: ParsedOom, version: KernelVersion | None, psize: PageSize, plat: Platform) -> LogFacts:
    """Everything the report shows of ``r`` beyond the kill (see the module docstring)."""
    page_kb = psize.nr_bytes // 1024
    zones = zone_states(r)
    reserve_len = next((len(z.lowmem_reserve_pages) for z in zones if z.lowmem_reserve_pages), None)
    highmem = None if plat.arch is None else plat.arch in ("i386", "arm")
    configured = configured_zones([z.zone for z in zones], reserve_len, highmem) if zones else ()
    gfp = _gfp(r, version, configured)
    kind = _oom_kind(r)
    watermarks = frag = None
    order = r.order if r.order is not None else 0
    if kind == "allocation" and zones:
        if gfp is not None:
            watermarks = watermark_verdict(zones, configured, gfp.mask, order, page_kb)
        frag = fragmentation(zones, configured, gfp.zone if gfp else None, order)
    pools = huge_pools(r)
    return LogFacts(
        facts={name: _fact(r, name) for name in FACTS},
        oom_kind=kind,
        chosen=_chosen(r),
        chosen_score=r.chosen_score,
        gfp=gfp,
        page_size=psize,
        platform=plat,
        zones=zones,
        nodes=node_states(r, zones),
        watermarks=watermarks,
        fragmentation=frag,
        swap=swap_state(r, page_kb),
        hugepages=pools,
        memory=memory_composition(r, page_kb, pools),
        memcg=memcg_state(r, page_kb, plat.arch),
        task_table=task_table_state(r),
        victim_rss_kb=_victim_rss(r),
        abridged=tuple(r.abridged),
    )
