"""Node-wide page counters, as node_page_state()/global_node_page_state() read them.

Models include/linux/mmzone.h ``enum node_stat_item`` (6.13), only the items
/proc/meminfo and the OOM report read. Every counter is in pages and is updated by
the code path that changes the pages, as in the kernel; tests recount them from the
struct page array to prove they never drift.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class NodeStat:
    """Counters of one node, in pages (slab counters too, where the kernel uses bytes)."""

    nr_inactive_anon: int = 0
    nr_active_anon: int = 0
    nr_inactive_file: int = 0
    nr_active_file: int = 0
    nr_unevictable: int = 0
    nr_anon_mapped: int = 0  # NR_ANON_MAPPED: AnonPages
    nr_file_mapped: int = 0  # NR_FILE_MAPPED: Mapped (includes mapped shmem)
    nr_file_pages: int = 0  # NR_FILE_PAGES: page cache incl. shmem and swap cache
    nr_shmem: int = 0  # NR_SHMEM
    nr_file_dirty: int = 0  # NR_FILE_DIRTY (shmem pages are never counted)
    nr_writeback: int = 0  # NR_WRITEBACK
    nr_swapcache: int = 0  # NR_SWAPCACHE
    nr_mlock: int = 0  # NR_MLOCK
    nr_slab_reclaimable: int = 0  # NR_SLAB_RECLAIMABLE_B / PAGE_SIZE
    nr_slab_unreclaimable: int = 0  # NR_SLAB_UNRECLAIMABLE_B / PAGE_SIZE
    nr_pagetable: int = 0  # NR_PAGETABLE
    nr_kernel_stack_pages: int = 0  # NR_KERNEL_STACK_KB / 4
    nr_kernel_misc: int = 0  # other kernel allocations (percpu, vmalloc): not in meminfo lines used

    def lru_counter(self, active: bool, file: bool) -> str:
        """Name of the LRU counter for a list: nr_{in,}active_{anon,file}."""
        return f"nr_{'active' if active else 'inactive'}_{'file' if file else 'anon'}"

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
