"""The tracepoint schemas: defined once, in a fixed id order, looked up by name."""

from __future__ import annotations

import pytest

from memtrace.errors import NotFoundError
from memtrace.tracer import TRACEPOINTS, Bus, Collector, default_registry
from memtrace.tracer import tracepoints as tps

#: Registry ids of the tracepoints of trace format 1.0: a trace file names each
#: chunk's tracepoint by its id, so these never change (new ones go at the end).
IDS_OF_FORMAT_1_0 = (
    "mmap", "munmap", "brk", "page_fault", "cow", "fork", "exit", "process_start", "file_open", "unlink", "shm",
    "page_cache_add", "page_cache_delete", "writeback", "drop_caches", "rss_stat", "sysctl_set", "snapshot",
    "lru_move", "kswapd_wake", "kswapd_sleep", "reclaim_begin", "reclaim_end", "shrink_list", "shrink_slab",
    "swap_out", "swap_in", "vm_enough_memory", "oom_score_adj_update", "oom_candidate", "oom_kill", "oom_reap",
    "oom_panic", "zoneinfo", "cgroup", "memcg_stat", "meminfo_sample",
)


def test_existing_tracepoints_keep_their_ids() -> None:
    reg = default_registry()
    assert [tp.name for tp in TRACEPOINTS][:len(IDS_OF_FORMAT_1_0)] == list(IDS_OF_FORMAT_1_0)
    for i, name in enumerate(IDS_OF_FORMAT_1_0):
        assert reg.id_of(reg[name]) == i and reg.by_id(i).name == name


def test_every_definition_is_in_the_registry_once() -> None:
    """TRACEPOINTS is derived from the definitions: each module-level schema is in it."""
    defined = [v for v in vars(tps).values() if isinstance(v, tps.Tracepoint)]
    assert {tp.name for tp in defined} == {tp.name for tp in TRACEPOINTS}
    assert len({tp.name for tp in TRACEPOINTS}) == len(TRACEPOINTS)
    assert default_registry() is not default_registry()  # a fresh registry each call


def test_an_unknown_tracepoint_is_not_found() -> None:
    reg = default_registry()
    assert reg.get("nosuch") is None and reg.get("mmap") is tps.MMAP
    with pytest.raises(NotFoundError, match="unknown tracepoint 'nosuch'"):
        reg["nosuch"]
    with pytest.raises(NotFoundError, match="no tracepoint matches 'nosuch_\\*'"):
        Bus(reg).attach(Collector(), ["nosuch_*"])
