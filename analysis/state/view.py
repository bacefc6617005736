"""The folded picture as analyses read it (:class:`MemoryState`), and what a trace's
header says of where it came from (:func:`is_imported`, :func:`source_name`,
:func:`untraced_fields`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from memtrace.tracer.meta import meta_int, meta_part

from .core import FoldState
from .model import K_ANON, K_FILE, K_SHMEM, LRU_UNEVICTABLE, SWP_BASE, VmArea, swp_offset

__all__ = ["SIMULATED_SOURCES", "MemoryState", "is_imported", "source_name", "untraced_fields"]

#: Header ``source`` values of traces the simulator recorded.
SIMULATED_SOURCES = frozenset({"", "trace", "memtrace", "simulated", "simulator"})


class MemoryState:
    """The folded picture at one moment, read-only by convention: what
    :mod:`memtrace.analysis.explain` and :mod:`memtrace.analysis.graph` read.

    It shares the folder's arrays: read it before more batches are folded.
    """

    def __init__(self, state: FoldState) -> None:
        self._s = state
        self.meta = state.meta
        self.pages = state.pages
        self.tasks = state.tasks
        self.procs = state.procs
        self.inodes = state.inodes
        self.cgroups = state.cgroups
        self.cgroup_limits = state.cgroup_limits
        self.history = state.history
        self.seq = state.last_seq
        self.ts_ns = state.last_ts_ns
        self.nr_swap = state.swap.nr_slots
        self.slot_shmem = state.swap.shmem
        self.slot_ino = state.swap.ino
        self.slot_index = state.swap.index

    @property
    def imported(self) -> bool:
        """True for a trace imported from a real kernel (its header names a source
        other than memtrace's simulator)."""
        return is_imported(self.meta)

    @property
    def has_pages(self) -> bool:
        """True when the trace names page frames: simulated traces do; imported real
        traces do not (unless their events carry pfns), and per-page state is then
        unknown."""
        return not self.imported or self._s.nr_page_events > 0

    @property
    def unattributed_faults(self) -> int:
        return self._s.unattributed_faults

    @property
    def source(self) -> str:
        """``trace`` for a simulated trace, else the importer's format (``perf-script``)."""
        return source_name(self.meta)

    @property
    def swap_bytes(self) -> int:
        """The header's ``machine.swap_bytes``; 0 when absent or unreadable."""
        return max(meta_int(meta_part(self.meta, "machine"), "swap_bytes", "machine") or 0, 0)

    def live_vmas(self) -> Iterator[VmArea]:
        """Every VMA of every live process, by pid then address."""
        for pid in sorted(self.procs):
            p = self.procs[pid]
            if p.alive:
                yield from sorted(p.vmas, key=lambda v: v.start)

    def cgroup_path(self, memcg_id: int) -> str:
        return self.cgroups.get(int(memcg_id), f"memcg {memcg_id}")

    def page_counts(self) -> dict[str, int]:
        """Pages by what they hold, as the fold sees them: ``anon`` (mapped anonymous),
        ``file`` and ``shmem`` (page cache), ``file_mapped`` (file and shmem pages
        mapped by some process, NR_FILE_MAPPED), ``dirty`` (estimate), ``mlocked``
        (on the unevictable list) and ``swap`` (slots in use)."""
        pg = self.pages
        anon = (pg.kind == K_ANON) & (pg.mapcount > 0)
        file = pg.kind == K_FILE
        shmem = pg.kind == K_SHMEM
        cached = file | shmem
        return {
            "anon": int(np.count_nonzero(anon)),
            "file": int(np.count_nonzero(file)),
            "shmem": int(np.count_nonzero(shmem)),
            "file_mapped": int(np.count_nonzero(cached & (pg.mapcount > 0))),
            "dirty": int(np.count_nonzero(file & pg.dirty)),
            "mlocked": int(np.count_nonzero((anon | cached) & (pg.lru == LRU_UNEVICTABLE))),
            "swap": self.swap_slots_in_use(),
        }

    def anon_swap_slots(self) -> np.ndarray:
        """Distinct swap slots held by anonymous page-table entries."""
        parts = [swp_offset(v.ptes[v.ptes <= SWP_BASE]) for v in self.live_vmas() if not v.shared]
        parts = [p for p in parts if len(p)]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def swap_slots_in_use(self) -> int:
        return int(len(self.anon_swap_slots()) + np.count_nonzero(self.slot_shmem))

    def pgtables_pages(self) -> int:
        """PageTables as the x86-64 rule recounts it from the faults seen, in pages."""
        return sum(p.pgtables_pages for p in self.procs.values())


def is_imported(meta: Mapping[str, Any]) -> bool:
    """True when a trace header says it was imported from a real kernel: an
    ``imported`` flag, or a ``source`` (a name such as ``perf-script``, or the
    importer's map with its ``format``)."""
    if meta.get("imported"):
        return True
    return source_name(meta) != "trace"


def source_name(meta: Mapping[str, Any]) -> str:
    """``trace`` for a simulated trace, else the format it was imported from."""
    src = meta.get("source")
    if isinstance(src, Mapping):
        src = src.get("format") or "imported"
    if not isinstance(src, str) or src.lower() in SIMULATED_SOURCES:
        return "imported" if meta.get("imported") else "trace"
    return src


def untraced_fields(meta: Mapping[str, Any], tracepoint: str) -> dict[str, str]:
    """Fields of ``tracepoint`` an importer wrote placeholders for (the real input does
    not carry them), with its note on each: the header's ``source.unknown`` map."""
    src = meta.get("source")
    unknown = src.get("unknown") if isinstance(src, Mapping) else None
    fields = unknown.get(tracepoint) if isinstance(unknown, Mapping) else None
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {}
