"""explain: every kind's parts sum exactly to the /proc/meminfo total they break down,
and each part has the right owner, reason and what frees it (the seed experiments of
../shared/reference/seed-real-kernel.md, as the simulated kernel reproduces them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memtrace.analysis.explain import (
    FREED_BY,
    KINDS,
    OWNER_TYPES,
    ExplainResult,
    Part,
    explain_state,
    explain_trace,
    kind_totals,
)
from memtrace.analysis.state import StateFolder, walk
from memtrace.errors import NotFoundError
from memtrace.tracer import TraceReader, TraceWriter, default_registry
from memtrace.tracer.bus import Bus

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"
GiB, MiB = 1 << 30, 1 << 20


def _at(name: str, label: str, pid: int | None = None) -> ExplainResult:
    return explain_trace(TraceReader(SAMPLES / f"{name}.mtrace"), label, pid)


def _one(res: ExplainResult, kind: str) -> Part:
    parts = [p for p in res.parts_of(kind) if p.bytes]
    assert len(parts) == 1, [(p.owner.name, p.bytes) for p in parts]
    return parts[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.mtrace")))
def test_parts_sum_to_meminfo_at_every_snapshot(name: str) -> None:
    """For every snapshot of every sample trace: each kind's parts add up exactly to
    its /proc/meminfo total, RAM kinds to MemTotal, with nothing left unattributed."""
    reader = TraceReader(SAMPLES / f"{name}.mtrace")
    results: list[ExplainResult] = []

    def observe(_: str, __: dict, folder: StateFolder) -> None:
        results.append(explain_state(folder.state(), folder.history.readings[-1]))

    walk(reader, StateFolder(reader.meta), observe=observe, observe_tracepoints=("snapshot",))
    assert results
    for res in results:
        assert res.mismatches() == [], res.at
        assert res.warnings == () and res.unknown == (), (res.at, res.warnings, res.unknown)
        assert sum(res.totals[k] for k in ("anon", "file", "shmem", "kernel", "free")) == res.meminfo["MemTotal"]
        assert res.totals == kind_totals(res.meminfo)
        for p in res.parts:
            assert p.kind in KINDS and p.owner.type in OWNER_TYPES and p.bytes > 0
            assert set(p.freed_by) <= set(FREED_BY)
            assert not any(p.owner.type == "none" and p.kind != "free" for p in res.parts)


def test_private_file_mapping_after_write() -> None:
    """The seed experiment: after writing a 1 GiB MAP_PRIVATE file mapping, 1 GiB is
    anonymous, owned by the process's mapping and made by copy-on-write of the file;
    the file's 1 GiB of page cache is no longer mapped and drop_caches frees it."""
    res = _at("private-file-mapping", "after-write")
    anon = _one(res, "anon")
    assert anon.bytes == GiB
    assert anon.owner.type == "mapping" and anon.owner.mapping == "map" and anon.owner.comm == "cow-writer"
    assert "copy-on-write" in anon.reason and "/data/file.bin" in anon.reason
    assert set(anon.freed_by) == {"munmap", "exit"}  # no swap on this machine
    file = _one(res, "file")
    assert file.bytes == GiB and file.owner.type == "file" and file.owner.path == "/data/file.bin"
    assert "no longer mapped" in file.reason and file.mapped_by == ()
    assert "drop_caches" in file.freed_by
    assert res.totals["anon"] == res.meminfo["AnonPages"] == GiB


def test_private_file_mapping_after_read_and_unmap() -> None:
    read = _one(_at("private-file-mapping", "after-read"), "file")
    assert read.bytes == GiB and "mapped by cow-writer" in read.reason and len(read.mapped_by) == 1
    assert "drop_caches" not in read.freed_by  # mapped pages stay through drop_caches
    unmapped = _at("private-file-mapping", "after-unmap")
    assert unmapped.totals["anon"] == 0
    assert "the mapping is gone" in _one(unmapped, "file").reason


def test_tmpfs_file_is_shmem_no_process_owns() -> None:
    res = _at("tmpfs-file", "after-write")
    shm = _one(res, "shmem")
    assert shm.bytes == GiB and shm.owner.type == "shmem" and shm.mapped_by == ()
    assert "owned by no process" in shm.reason and shm.freed_by == ("unlink",)
    assert _at("tmpfs-file", "after-drop-caches").totals["shmem"] == GiB  # drop_caches cannot free it


def test_dirty_page_cache_needs_sync() -> None:
    res = _at("dirty-page-cache", "after-drop-caches")
    f = _one(res, "file")
    assert f.bytes == GiB and "dirty" in f.reason and f.freed_by[0] == "sync"


def test_fork_cow_counts_shared_pages_once() -> None:
    """fork-cow's children wrote 64, 128 and 256 MiB: their copies are their own; the
    448 MiB still shared copy-on-write is counted once, for the parent."""
    res = _at("fork-cow", "children-wrote")
    by = {(p.owner.comm, "shared" if len(p.mapped_by) > 1 else "own"): p for p in res.parts_of("anon")}
    assert by[("parent", "shared")].bytes == 448 * MiB
    assert set(by[("parent", "shared")].mapped_by) == {p.owner.pid for p in res.parts_of("anon")}
    assert by[("parent", "own")].bytes == 64 * MiB
    for comm, size in (("child-64", 64), ("child-128", 128), ("child-256", 256)):
        part = by[(comm, "own")]
        assert part.bytes == size * MiB and "copy-on-write after fork" in part.reason
    assert res.totals["anon"] == 960 * MiB


@pytest.mark.parametrize(("name", "label", "freed", "words"), [
    ("posix-shm", "after-write", {"unlink", "munmap", "exit"}, "POSIX shm"),
    ("sysv-shm", "after-write", {"ipc_rmid", "munmap", "exit"}, "SysV segment"),
    ("shared-anon-mapping", "after-child-write", {"munmap", "exit"}, "shared anonymous"),
])
def test_shared_memory_owners(name: str, label: str, freed: set[str], words: str) -> None:
    """POSIX shm, SysV segments and shared anonymous mappings are shmem owned by their
    object, mapped by the processes that map them, freed by what ends the object."""
    res = _at(name, label)
    parts = [p for p in res.parts_of("shmem") if p.bytes]
    assert parts and sum(p.bytes for p in parts) == res.meminfo["Shmem"]
    mapped = [p for p in parts if p.mapped_by]
    assert mapped, [(p.owner.name, p.reason) for p in parts]
    assert words in mapped[0].owner.name
    assert set(mapped[0].freed_by) <= freed | {"swap-out"}


def test_swap_is_attributed_to_mappings() -> None:
    res = explain_trace(TraceReader(SAMPLES / "swap-pressure.mtrace"), "worker-done")
    swap = res.parts_of("swap")
    assert swap and sum(p.bytes for p in swap) == res.meminfo["SwapTotal"] - res.meminfo["SwapFree"] > 0
    assert all(p.owner.comm == "worker" for p in swap)
    assert all("swap-out" in p.freed_by for p in res.parts_of("anon"))


def test_pid_view_sums_to_the_process_rss() -> None:
    """--pid: the process's pages, shared ones too, sum to its kmem:rss_stat counters."""
    full = _at("fork-cow", "children-wrote")
    for pid in sorted({p.owner.pid for p in full.parts_of("anon")}):
        res = _at("fork-cow", "children-wrote", pid)
        assert res.scope == f"pid {pid}" and res.warnings == ()
        assert res.totals["anon"] == 512 * MiB  # every process maps the whole 512 MiB
    child = _at("fork-cow", "children-wrote", 103)
    assert {p.mapped_by for p in child.parts_of("anon")} >= {(103,)}


def test_unknown_pid_is_an_error() -> None:
    with pytest.raises(NotFoundError, match="no process 4242"):
        _at("fork-cow", "children-wrote", 4242)


def test_json_shape() -> None:
    d = json.loads(json.dumps(_at("tmpfs-file", "after-write").as_dict()))
    assert {"at", "free", "meminfo", "parts"} <= set(d)
    assert set(d["free"]) == {"total", "used", "free", "shared", "buff_cache", "available"}
    for p in d["parts"]:
        assert {"kind", "bytes", "owner", "reason", "freed_by"} <= set(p)
        assert isinstance(p["freed_by"], list)
    assert d["free"]["shared"] == sum(p["bytes"] for p in d["parts"] if p["kind"] == "shmem")
    assert d["free"]["buff_cache"] == sum(d["free_breakdown"]["buff_cache"].values())
    assert d["free"]["free"] == d["free_breakdown"]["free"]["free"]


def test_a_trace_without_page_frames_says_what_it_cannot_tell(tmp_path: Path) -> None:
    """An imported trace (header source perf-script) has RSS counters but no pfns:
    explain attributes by process RSS, keeps the sums, and lists what is unknown."""
    from memtrace.tracer.tracepoints import MEMINFO_FIELDS

    reg = default_registry()
    path = tmp_path / "imported.mtrace"
    mi = {f: 0 for _, f in MEMINFO_FIELDS}
    mi.update(mem_total=8 * GiB, mem_free=6 * GiB, mem_available=7 * GiB, cached=GiB + 256 * MiB,
              anon_pages=512 * MiB, shmem=256 * MiB)
    with TraceWriter(path, reg, {"source": "perf-script"}) as w:
        bus = Bus(reg)
        bus.attach(w)
        bus.emit(reg["process_start"], 10, 42, 1, comm="java", uid=1000, oom_score_adj=0)
        bus.emit(reg["rss_stat"], 20, 42, 2, mm_pid=42, curr=True, member=[1, 0],
                 size_bytes=[400 * MiB, 100 * MiB])
        bus.emit(reg["snapshot"], 30, 0, 1, label="now", **mi)
    res = explain_trace(TraceReader(path), "now")
    assert res.unknown and "page frames" in res.unknown[0]
    assert res.mismatches() == []
    anon = res.parts_of("anon")
    assert {p.owner.type for p in anon} == {"process", "none"}
    assert next(p for p in anon if p.owner.pid == 42).bytes == 400 * MiB
