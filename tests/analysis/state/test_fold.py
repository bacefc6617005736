"""State folding: the page picture rebuilt from events matches the simulator's own
/proc/meminfo at every reading (independent ground truth: the kernel's counters)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from memtrace.analysis.state import K_ANON, StateFolder, fold_at, fold_trace, walk
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"
P = 4096


def _expected(mi: dict[str, int]) -> dict[str, int]:
    """What the fold must count, in pages, from a /proc/meminfo reading."""
    return {"anon": mi["AnonPages"] // P, "file": (mi["Cached"] - mi["Shmem"]) // P, "shmem": mi["Shmem"] // P,
            "file_mapped": mi["Mapped"] // P, "dirty": mi["Dirty"] // P,
            "swap": (mi["SwapTotal"] - mi["SwapFree"]) // P, "mlocked": mi["Mlocked"] // P,
            "pgtables": mi["PageTables"] // P}


def _check_readings(path: Path, snapshots_only: bool = True) -> int:
    """Fold ``path`` and compare with every (labelled) reading; returns readings checked."""
    reader = TraceReader(path)
    bad: list[tuple[str, dict[str, tuple[int, int]]]] = []
    checked = 0

    def observe(name: str, fields: dict, folder: StateFolder) -> None:
        nonlocal checked
        if snapshots_only and name != "snapshot":
            return
        st = folder.state()
        reading = folder.history.readings[-1]
        got = st.page_counts()
        got["pgtables"] = st.pgtables_pages()
        want = _expected(reading.meminfo)
        diff = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        if diff:
            bad.append((reading.name, diff))
        checked += 1

    walk(reader, StateFolder(reader.meta), observe=observe, observe_tracepoints=("snapshot", "meminfo_sample"))
    assert not bad, bad[:3]
    return checked


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.mtrace")))
def test_fold_matches_meminfo_at_every_snapshot(name: str) -> None:
    """Anon, page cache, shmem, mapped, dirty, swap, mlocked and page-table pages
    folded from events equal the snapshot's /proc/meminfo, in every sample trace."""
    assert _check_readings(SAMPLES / f"{name}.mtrace") >= 1


@pytest.mark.parametrize("name", ["swap-pressure", "oom-leak"])
def test_fold_matches_every_periodic_reading_under_pressure(name: str) -> None:
    """Under reclaim, swap and OOM kills, every 100 ms reading (and the OOM's own)
    matches too."""
    assert _check_readings(SAMPLES / f"{name}.mtrace", snapshots_only=False) > 10


EDGE_SCENARIO = """
name = "fold-edges"
description = "brk, partial munmap, file offset, mlock, shared writes, swap of forked memory"

[machine]
ram = "512MiB"
swap = "256MiB"

[[file]]
path = "/data/f.bin"
size = "64MiB"

[[process]]
name = "heapy"
steps = [
  { op = "brk", increment = "24MiB" },
  { op = "touch", handle = "heap", write = true },
  { op = "brk", increment = "-8MiB" },
  { op = "mmap", handle = "m", length = "32MiB", prot = "rw" },
  { op = "touch", handle = "m", write = true },
  { op = "munmap", handle = "m", length = "8MiB" },
  { op = "munmap", handle = "m", offset = "16MiB", length = "8MiB" },
  { op = "mmap", handle = "fo", file = "/data/f.bin", offset = "16MiB", length = "16MiB", prot = "r" },
  { op = "touch", handle = "fo" },
  { op = "mmap", handle = "fs", file = "/data/f.bin", length = "8MiB", prot = "rw", shared = true },
  { op = "touch", handle = "fs", write = true },
  { op = "mmap", handle = "locked", length = "8MiB", prot = "rw" },
  { op = "mlock", handle = "locked" },
  { op = "snapshot", label = "edges" },
  { op = "fork", child = "kid" },
  { op = "mmap", handle = "big", length = "400MiB", prot = "rw" },
  { op = "touch", handle = "big", write = true },
  { op = "snapshot", label = "pressure" },
  { op = "munmap", handle = "big" },
  { op = "snapshot", label = "after" },
]

[[process]]
name = "kid"
forked = true
steps = [
  { op = "sleep", duration = "20s" },
  { op = "touch", handle = "m", write = true },
  { op = "snapshot", label = "kid-touched" },
]
"""


@pytest.fixture(scope="module")
def edge_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memtrace.api import record
    from memtrace.kernel.workload import load_scenario

    d = tmp_path_factory.mktemp("edges")
    toml = d / "edges.toml"
    toml.write_text(textwrap.dedent(EDGE_SCENARIO))
    out = d / "edges.mtrace"
    result = record(load_scenario(toml), out)
    assert not [e for e in result.errors if e["errno"] != "ENOMEM"], result.errors
    return out


def test_fold_matches_meminfo_through_brk_munmap_offsets_mlock_and_swap(edge_trace: Path) -> None:
    """brk growth and shrink, munmap of a mapping's head and tail, a file mapping at
    an offset, mlock, writes through a shared file mapping and swap-out of memory
    shared with a fork child: every reading still matches."""
    assert _check_readings(edge_trace, snapshots_only=False) >= 4
    folder, _reading, _ = fold_at(TraceReader(edge_trace), "edges")
    st = folder.state()
    heapy = next(p for p in st.procs.values() if p.comm == "heapy")
    fo = heapy.vma_by_handle("fo")
    assert fo is not None and fo.pgoff == (16 << 20) // P  # learnt from the faults
    assert st.page_counts()["mlocked"] == (8 << 20) // P
    assert st.page_counts()["dirty"] == (8 << 20) // P


def test_fork_shares_anonymous_pages_copy_on_write() -> None:
    """After fork-cow's children wrote, the parent's VMA still maps 448 MiB its
    children share (mapcount > 1), and each child's copies are its own."""
    folder, _, _ = fold_at(TraceReader(SAMPLES / "fork-cow.mtrace"), "children-wrote")
    st = folder.state()
    parent = next(p for p in st.procs.values() if p.comm == "parent")
    v = parent.vma_by_handle("data")
    assert v is not None
    ptes = v.ptes[v.ptes >= 0]
    shared = int(np.count_nonzero(st.pages.mapcount[ptes] > 1))
    assert shared == (512 - 64) << 20 >> 12
    assert (st.pages.kind[ptes] == K_ANON).all()


@pytest.mark.parametrize("sample", ["fork-cow", "private-file-mapping", "shared-anon-mapping"])
def test_the_fold_keeps_page_tables_of_live_mappings_only(sample: str) -> None:
    """Unmapped and exited VMAs leave ``folder.vmas`` (their page tables go), and the
    page-table entries counted against MAX_PTE_ENTRIES are those of the live VMAs; a
    header's RAM sizes the page arrays, no more, and nothing is left out."""
    reader = TraceReader(SAMPLES / f"{sample}.mtrace")
    folder = fold_trace(reader)
    live = {v.vid: v for p in folder.procs.values() for v in p.vmas}
    assert folder.vmas == live
    assert folder.pte_entries == sum(len(v.ptes) for v in live.values())
    assert all(len(v.ptes) == v.nr_pages for v in live.values())
    assert folder.pages.nr_pfns == reader.meta["machine"]["ram_bytes"] // P
    assert folder.warnings == []


MM_CALLS_SCENARIO = """
name = "fold-mm-calls"
description = "madvise (dontneed, free under memcg pressure), mremap (move, grow, shrink), mprotect and munmap splits"

[machine]
ram = "4GiB"
kernel_version = "{version}"
cgroup_version = 1

[[cgroup]]
path = "/box"
max = "96MiB"

[[process]]
name = "mover"
cgroup = "/box"
steps = [
  {{ op = "mmap", handle = "a", length = "16MiB", prot = "rw" }},
  {{ op = "touch", handle = "a", write = true }},
  {{ op = "snapshot", label = "touched" }},
  {{ op = "madvise", handle = "a", advice = "dontneed", offset = "2MiB", length = "6MiB" }},
  {{ op = "snapshot", label = "dontneed" }},
  {{ op = "munmap", handle = "a", offset = "10MiB", length = "2MiB" }},
  {{ op = "snapshot", label = "middle-unmapped" }},
  {{ op = "mprotect", handle = "a", offset = "12MiB", length = "2MiB", prot = "r" }},
  {{ op = "mmap", handle = "b", length = "4MiB", prot = "rw" }},
  {{ op = "touch", handle = "b", write = true }},
  {{ op = "mmap", handle = "wall", length = "4KiB", prot = "rw" }},
  {{ op = "mremap", handle = "b", length = "12MiB" }},
  {{ op = "touch", handle = "b", write = true }},
  {{ op = "snapshot", label = "moved" }},
  {{ op = "mremap", handle = "b", length = "6MiB" }},
  {{ op = "snapshot", label = "shrunk" }},
  {{ op = "mmap", handle = "lazy", length = "48MiB", prot = "rw" }},
  {{ op = "touch", handle = "lazy", write = true }},
  {{ op = "madvise", handle = "lazy", advice = "free" }},
  {{ op = "mmap", handle = "push", length = "48MiB", prot = "rw" }},
  {{ op = "touch", handle = "push", write = true }},
  {{ op = "snapshot", label = "pushed" }},
]
"""


@pytest.mark.parametrize("version", ["6.13", "6.18"])
def test_fold_matches_meminfo_through_madvise_mremap_mprotect_and_splits(version: str, tmp_path: Path) -> None:
    """The fold of the mm calls added for real workloads matches the simulator's
    /proc/meminfo at every reading: anon pages freed by MADV_DONTNEED, lazily freed
    pages discarded under memcg pressure, mappings moved and resized by mremap,
    split by mprotect and a middle munmap; page tables as 6.13 keeps them and as
    6.14+ reclaims them (CONFIG_PT_RECLAIM)."""
    from memtrace.api import record

    toml = tmp_path / "mm.toml"
    toml.write_text(MM_CALLS_SCENARIO.format(version=version))
    trace = tmp_path / "mm.mtrace"
    result = record(str(toml), trace)
    assert not result.oom_kills and result.events.get("lazyfree_discard", 0) > 0
    assert result.events.get("mremap") == 2 and result.events.get("mprotect") == 1
    assert _check_readings(trace, snapshots_only=False) >= 6
    folder, _, warnings = fold_at(TraceReader(trace), "pushed")
    mover = next(p for p in folder.procs.values() if p.comm == "mover")
    parts = sorted((v.start, v.end, v.prot) for v in mover.vmas if v.handle == "a")
    assert [(e - s) >> 20 for s, e, _ in parts] == [10, 2, 2] and [p for *_, p in parts] == [3, 1, 3]
    (moved,) = [v for v in mover.vmas if v.handle == "b"]
    assert moved.nr_pages == (6 << 20) >> 12 and int(np.count_nonzero(moved.ptes >= 0)) == moved.nr_pages
    assert warnings == [] and folder.warnings == []
