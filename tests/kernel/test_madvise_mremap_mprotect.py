"""madvise(2), mremap(2), mprotect(2) and partial munmap(2) with the kernel's
accounting (mm/madvise.c, mm/mremap.c, mm/mprotect.c, mm/vma.c of 6.18): RSS,
/proc/meminfo, Committed_AS and the events each emits."""

from __future__ import annotations

from typing import Any

import pytest

from memtrace.errors import ScenarioError
from memtrace.kernel.mm_types import VM_ACCOUNT
from memtrace.kernel.workload import (
    CgroupSpec,
    FileSpec,
    FileWrite,
    MachineSpec,
    Madvise,
    Mlock,
    Mmap,
    Mprotect,
    Mremap,
    Munmap,
    ProcessSpec,
    Scenario,
    Sleep,
    Snapshot,
    Step,
    Touch,
    scenario_from_dict,
)
from memtrace.tracer import TRACEPOINTS

from ..conftest import GiB, MiB, run, run_steps

PAGE = 4096
MB8 = 8 * MiB


def meminfo(result: Any, label: str) -> dict[str, int]:
    return next(s.meminfo for s in result.snapshots if s.label == label)


def rss(c: Any, member: str, label: str | None = None) -> int:
    """One RSS counter of the process (bytes) at snapshot ``label`` (the last one
    by default), before it exits."""
    snaps = [r["seq"] for r in c.records("snapshot") if label is None or r["label"] == label]
    values = [r["size_bytes"] for r in c.records("rss_stat") if r["member"] == member and r["seq"] < snaps[-1]]
    return values[-1] if values else 0


# ---------------------------------------------------------------------- madvise


def test_dontneed_frees_anonymous_pages_and_the_next_touch_faults_them_in_again() -> None:
    """MADV_DONTNEED of the second half: RSS and AnonPages drop by 4 MiB at once,
    the madvise event counts 1024 pages, and touching the half again takes 1024
    new faults (zeroed pages)."""
    _, result, c = run_steps(
        Mmap(handle="buf", length_bytes=MB8), Touch(handle="buf", write=True), Snapshot(label="written"),
        Madvise(handle="buf", advice="dontneed", offset_bytes=4 * MiB, length_bytes=4 * MiB),
        Snapshot(label="advised"), Touch(handle="buf", write=True), Snapshot(label="again"))
    assert meminfo(result, "written")["AnonPages"] - meminfo(result, "advised")["AnonPages"] == 4 * MiB
    [ev] = c.records("madvise")
    assert (ev["advice"], ev["len_bytes"], ev["nr_pages"], ev["ret"]) == ("dontneed", 4 * MiB, 1024, 0)
    faults = c.records("page_fault")
    assert len(faults) == 2048 + 1024
    assert meminfo(result, "again")["AnonPages"] == meminfo(result, "written")["AnonPages"]


def test_dontneed_of_a_file_mapping_keeps_the_page_cache() -> None:
    """File pages are only unmapped: Cached stays, Mapped and the file RSS drop."""
    _, result, c = run_steps(
        Mmap(handle="f", length_bytes=MB8, prot="r", shared=True, path="/data/f"), Touch(handle="f"),
        Snapshot(label="mapped"), Madvise(handle="f", advice="dontneed"), Snapshot(label="advised"),
        files=(FileSpec("/data/f", MB8),))
    before, after = meminfo(result, "mapped"), meminfo(result, "advised")
    assert after["Cached"] == before["Cached"] == MB8
    assert (before["Mapped"], after["Mapped"]) == (MB8, 0)
    assert rss(c, "MM_FILEPAGES") == 0


def test_dontneed_frees_the_page_tables_of_whole_2mib_regions_since_6_14() -> None:
    """PT_RECLAIM: an 8 MiB mapping 2 MiB-aligned has 4 PTE tables; MADV_DONTNEED of
    its second half frees 2 of them on 6.18, none on 6.13."""
    def tables(version: str) -> int:
        sc = Scenario(name="t", machine=MachineSpec(ram_bytes=GiB, kernel_version=version), processes=(
            ProcessSpec("t", steps=(Mmap(handle="b", length_bytes=MB8), Touch(handle="b", write=True),
                                    Snapshot(label="w"),
                                    Madvise(handle="b", advice="dontneed", offset_bytes=4 * MiB),
                                    Snapshot(label="d"))),))
        _, result, _ = run(sc)
        return (meminfo(result, "w")["PageTables"] - meminfo(result, "d")["PageTables"]) // PAGE

    assert (tables("6.18"), tables("6.13")) == (2, 0)


def test_dontneed_of_a_locked_mapping_is_einval_and_the_process_goes_on() -> None:
    _, result, c = run_steps(Mmap(handle="b", length_bytes=MiB), Mlock(handle="b"),
                             Madvise(handle="b", advice="dontneed"), Snapshot(label="after"))
    assert [(e.op, e.errno) for e in result.errors] == [("madvise", "EINVAL")]
    assert c.records("madvise")[0]["ret"] == -22
    assert [s.label for s in result.snapshots] == ["after"]


def test_free_is_for_private_anonymous_memory_only() -> None:
    _, result, _ = run_steps(Mmap(handle="s", length_bytes=MiB, shared=True), Madvise(handle="s", advice="free"))
    assert [(e.op, e.errno) for e in result.errors] == [("madvise", "EINVAL")]


def test_free_keeps_pages_mapped_and_charged_on_the_inactive_file_list() -> None:
    """MADV_FREE: AnonPages and RSS unchanged, the 4 MiB leave the anon lists for
    Inactive(file) (lazily freed pages are clean and not swap-backed), Cached
    unchanged."""
    _, result, c = run_steps(
        Mmap(handle="b", length_bytes=MB8), Touch(handle="b", write=True), Snapshot(label="written"),
        Madvise(handle="b", advice="free", offset_bytes=4 * MiB), Snapshot(label="freed"))
    before, after = meminfo(result, "written"), meminfo(result, "freed")
    assert after["AnonPages"] == before["AnonPages"] and after["Cached"] == before["Cached"]
    assert after["Inactive(file)"] - before["Inactive(file)"] == 4 * MiB
    assert before["Inactive(anon)"] + before["Active(anon)"] - after["Inactive(anon)"] - after["Active(anon)"] \
        == 4 * MiB
    assert rss(c, "MM_ANONPAGES") == MB8
    assert c.records("madvise")[0]["nr_pages"] == 1024


def _lazyfree_under_pressure(rewrite: bool) -> tuple[Any, Any]:
    """A 32 MiB memcg without swap: 8 MiB written and half of it MADV_FREE'd (or
    written again after that), then 26 MiB more allocated."""
    steps: list[Step] = [Mmap(handle="b", length_bytes=MB8), Touch(handle="b", write=True),
                         Madvise(handle="b", advice="free", offset_bytes=4 * MiB)]
    if rewrite:
        steps.append(Touch(handle="b", write=True, offset_bytes=4 * MiB))
    steps += [Mmap(handle="more", length_bytes=26 * MiB), Touch(handle="more", write=True), Snapshot(label="end")]
    sc = Scenario(name="t", machine=MachineSpec(ram_bytes=GiB), cgroups=(CgroupSpec("/g", 32 * MiB),),
                  processes=(ProcessSpec("t", cgroup="/g", steps=tuple(steps)),))
    _, result, c = run(sc)
    return result, c


def test_reclaim_discards_lazily_freed_pages_without_swap() -> None:
    """Under memcg pressure lazily freed pages are discarded (no swap needed), as
    many as the charges need: no OOM, and the RSS drops by what was discarded."""
    result, c = _lazyfree_under_pressure(rewrite=False)
    assert result.oom_kills == []
    discarded = len(c.records("lazyfree_discard"))
    assert 0 < discarded <= 1024
    assert rss(c, "MM_ANONPAGES") == (8 + 26) * MiB - discarded * PAGE


def test_a_lazily_freed_page_written_again_is_kept() -> None:
    """Written after MADV_FREE, the pages are anonymous again: reclaim cannot drop
    them, and without swap the memcg OOM kills the process."""
    result, c = _lazyfree_under_pressure(rewrite=True)
    assert c.records("lazyfree_discard") == []
    assert [k["comm"] for k in result.oom_kills] == ["t"]


def test_cold_deactivates_and_pageout_without_swap_keeps_anonymous_pages() -> None:
    """MADV_COLD moves active pages to the inactive list; MADV_PAGEOUT with no swap
    frees no anonymous page (it is activated again)."""
    _, result, c = run_steps(
        Mmap(handle="f", length_bytes=MiB, shared=True, path="/data/f"), Touch(handle="f"),
        Madvise(handle="f", advice="willneed"), FileWrite(path="/data/g", length_bytes=PAGE),
        Mmap(handle="b", length_bytes=MiB), Touch(handle="b", write=True),
        Madvise(handle="b", advice="pageout"), Snapshot(label="paged"),
        Madvise(handle="f", advice="cold"), Snapshot(label="cold"),
        files=(FileSpec("/data/f", MiB),))
    advice = {r["advice"]: r for r in c.records("madvise")}
    assert advice["pageout"]["nr_pages"] == 0 and advice["cold"]["ret"] == 0
    assert meminfo(result, "paged")["AnonPages"] == MiB


def test_pageout_swaps_anonymous_pages_and_drops_clean_file_pages() -> None:
    """With swap, MADV_PAGEOUT writes the anonymous range to swap now (RSS moves to
    swap entries) and drops the clean page cache it maps."""
    sc = Scenario(name="t", machine=MachineSpec(ram_bytes=GiB, swap_bytes=64 * MiB),
                  files=(FileSpec("/data/f", MiB),), processes=(ProcessSpec("t", steps=(
                      Mmap(handle="b", length_bytes=MiB), Touch(handle="b", write=True),
                      Mmap(handle="f", length_bytes=MiB, prot="r", path="/data/f"), Touch(handle="f"),
                      Snapshot(label="before"), Madvise(handle="b", advice="pageout"),
                      Madvise(handle="f", advice="pageout"), Snapshot(label="after"))),))
    _, result, c = run(sc)
    assert len(c.records("swap_out")) == 256
    assert rss(c, "MM_SWAPENTS") == MiB and rss(c, "MM_ANONPAGES") == 0
    assert meminfo(result, "before")["Cached"] - meminfo(result, "after")["Cached"] == MiB
    assert [r["nr_pages"] for r in c.records("madvise")] == [256, 256]


def test_willneed_reads_a_file_into_the_page_cache_without_mapping_it() -> None:
    _, result, c = run_steps(Mmap(handle="f", length_bytes=MiB, prot="r", path="/data/f"),
                             Madvise(handle="f", advice="willneed"), Snapshot(label="after"),
                             files=(FileSpec("/data/f", MiB),))
    assert meminfo(result, "after")["Cached"] == MiB and meminfo(result, "after")["Mapped"] == 0
    assert c.records("madvise")[0]["nr_pages"] == 256 and c.records("page_fault") == []


# ---------------------------------------------------------------------- munmap


def test_munmap_of_the_middle_splits_the_mapping() -> None:
    """munmap(2) of 1 MiB in the middle of 3 MiB: two VMAs remain under the handle,
    the middle's Committed_AS charge is returned, the hole is SIGSEGV and the
    parts around it are still there."""
    _k, result, c = run_steps(
        Mmap(handle="b", length_bytes=3 * MiB), Touch(handle="b", write=True),
        Munmap(handle="b", offset_bytes=MiB, length_bytes=MiB), Snapshot(label="split"),
        Touch(handle="b", write=True, offset_bytes=2 * MiB), Snapshot(label="tail"),
        Touch(handle="b", write=True))
    [ev] = c.records("munmap")
    assert (ev["len_bytes"], ev["uncharged_pages"]) == (MiB, 256)
    assert meminfo(result, "split")["AnonPages"] == 2 * MiB
    assert meminfo(result, "split")["Committed_AS"] == meminfo(result, "tail")["Committed_AS"]
    assert [(e.op, e.errno) for e in result.errors] == [("touch", "SIGSEGV")]


# ---------------------------------------------------------------------- mremap


def test_mremap_grows_in_place_when_there_is_room() -> None:
    """After munmap of its upper half, a mapping grows back in place, charged for
    the new pages."""
    _, result, c = run_steps(
        Mmap(handle="b", length_bytes=MB8), Touch(handle="b", write=True),
        Munmap(handle="b", offset_bytes=4 * MiB), Snapshot(label="half"),
        Mremap(handle="b", length_bytes=MB8), Snapshot(label="grown"))
    [ev] = c.records("mremap")
    assert ev["new_addr"] == ev["addr"] and ev["charged_pages"] == 1024 and ev["ret"] == 0
    assert meminfo(result, "grown")["Committed_AS"] - meminfo(result, "half")["Committed_AS"] == 4 * MiB


def test_mremap_moves_a_mapping_with_its_pages() -> None:
    """The lower of two adjacent mappings cannot grow in place: it moves, with its
    pages (no fault when they are touched again, RSS unchanged)."""
    _, result, c = run_steps(
        Mmap(handle="top", length_bytes=MB8), Mmap(handle="low", length_bytes=MB8),
        Touch(handle="low", write=True), Snapshot(label="before"),
        Mremap(handle="low", length_bytes=12 * MiB), Touch(handle="low", write=True, length_bytes=MB8),
        Snapshot(label="moved"))
    [ev] = c.records("mremap")
    assert ev["new_addr"] != ev["addr"] and ev["ret"] == 0
    assert len(c.records("page_fault")) == 2048
    assert meminfo(result, "moved")["AnonPages"] == meminfo(result, "before")["AnonPages"]


def test_mremap_without_maymove_and_without_room_is_enomem() -> None:
    _, result, c = run_steps(
        Mmap(handle="top", length_bytes=MB8), Mmap(handle="low", length_bytes=MB8),
        Mremap(handle="low", length_bytes=12 * MiB, maymove=False, on_enomem="continue"))
    assert [(e.op, e.errno) for e in result.errors] == [("mremap", "ENOMEM")]
    assert c.records("mremap")[0]["ret"] == -12


def test_mremap_growth_is_refused_under_strict_overcommit() -> None:
    """vm.overcommit_memory=2: the growth's charge is checked like an mmap's."""
    _, result, c = run_steps(
        Mmap(handle="b", length_bytes=MiB), Mremap(handle="b", length_bytes=2 * GiB, on_enomem="continue"),
        sysctls={"vm.overcommit_memory": 2})
    assert [(e.op, e.errno) for e in result.errors] == [("mremap", "ENOMEM")]
    assert len(c.records("vm_enough_memory")) == 1


def test_mremap_shrink_unmaps_the_tail() -> None:
    _, result, c = run_steps(Mmap(handle="b", length_bytes=MB8), Touch(handle="b", write=True),
                             Mremap(handle="b", length_bytes=2 * MiB), Snapshot(label="small"))
    assert meminfo(result, "small")["AnonPages"] == 2 * MiB
    assert c.records("mremap")[0]["charged_pages"] == -1536


# ---------------------------------------------------------------------- mprotect


def test_mprotect_writable_charges_a_private_mapping_and_read_only_keeps_it() -> None:
    """A read-only private mapping costs nothing; made writable it is charged
    (VM_ACCOUNT); made read-only again after a write it stays charged."""
    _k, result, c = run_steps(
        Mmap(handle="b", length_bytes=MiB, prot="r"), Snapshot(label="ro"),
        Mprotect(handle="b", prot="rw"), Touch(handle="b", write=True), Snapshot(label="rw"),
        Mprotect(handle="b", prot="r"), Snapshot(label="ro-again"))
    committed = [meminfo(result, label)["Committed_AS"] for label in ("ro", "rw", "ro-again")]
    assert committed[1] - committed[0] == MiB and committed[2] == committed[1]
    assert [r["charged_pages"] for r in c.records("mprotect")] == [256, 0]


def test_mprotect_read_only_of_a_never_written_anonymous_mapping_uncharges_it() -> None:
    _, result, c = run_steps(Mmap(handle="b", length_bytes=MiB), Snapshot(label="rw"),
                             Mprotect(handle="b", prot="r"), Snapshot(label="ro"))
    assert meminfo(result, "rw")["Committed_AS"] - meminfo(result, "ro")["Committed_AS"] == MiB
    assert c.records("mprotect")[0]["charged_pages"] == -256


def test_mprotect_writable_is_refused_under_strict_overcommit() -> None:
    _, result, c = run_steps(Mmap(handle="b", length_bytes=2 * GiB, prot="r"),
                             Mprotect(handle="b", prot="rw", on_enomem="continue"),
                             sysctls={"vm.overcommit_memory": 2})
    assert [(e.op, e.errno) for e in result.errors] == [("mprotect", "ENOMEM")]
    assert c.records("mprotect")[0]["ret"] == -12


def test_mprotect_of_part_of_a_mapping_splits_it() -> None:
    """The middle MiB made read-only: a write there is SIGSEGV, the parts around
    it stay writable, and the three VMAs keep the handle."""
    _k, result, c = run_steps(Mmap(handle="b", length_bytes=3 * MiB),
                             Mprotect(handle="b", prot="r", offset_bytes=MiB, length_bytes=MiB),
                             Touch(handle="b", write=True, length_bytes=MiB),
                             Touch(handle="b", write=True, offset_bytes=2 * MiB),
                             Touch(handle="b", write=True, offset_bytes=MiB, length_bytes=PAGE))
    assert [(e.op, e.errno) for e in result.errors] == [("touch", "SIGSEGV")]
    assert c.records("mprotect")[0]["addr"] == c.records("mmap")[0]["addr"] + MiB


def test_vm_account_follows_the_split() -> None:
    """Each part of a split mapping holds the VM_ACCOUNT charge of its own pages:
    the read-only middle of a never-written mapping gave its charge back, and
    when the process exits the rest is returned exactly."""
    k, result, _ = run_steps(Mmap(handle="b", length_bytes=3 * MiB), Snapshot(label="mapped"),
                             Mprotect(handle="b", prot="r", offset_bytes=MiB, length_bytes=MiB),
                             Snapshot(label="split"), Sleep(duration_ns=1))
    assert meminfo(result, "mapped")["Committed_AS"] - meminfo(result, "split")["Committed_AS"] == MiB
    assert k.committed_pages == 0


# ---------------------------------------------------------------------- schemas and TOML


@pytest.mark.parametrize(("name", "fields"), [
    ("madvise", {"addr": "u64", "len_bytes": "u64", "advice": "enum", "handle": "str", "nr_pages": "u64",
                 "ret": "i64"}),
    ("mremap", {"addr": "u64", "old_len_bytes": "u64", "new_len_bytes": "u64", "flags": "u32",
                "new_addr": "u64", "handle": "str", "charged_pages": "i64", "ret": "i64"}),
    ("mprotect", {"addr": "u64", "len_bytes": "u64", "prot": "u8", "handle": "str", "charged_pages": "i64",
                  "ret": "i64"}),
    ("reclaim_throttled", {"nid": "i32", "timeout_us": "i64", "delayed_us": "i64", "reason": "enum",
                           "memcg": "str"}),
    ("balance_dirty_pages", {"memcg": "str", "limit_pages": "u64", "setpoint_pages": "u64", "dirty_pages": "u64",
                             "task_ratelimit_pages": "u64", "dirtied_pages": "u64", "pause_ns": "i64"}),
    ("lazyfree_discard", {"pfn": "u64", "owner": "i32", "index": "u64", "memcg_id": "u16"}),
])
def test_new_tracepoint_schemas(name: str, fields: dict[str, str]) -> None:
    """The schemas the importer and the state fold are written against."""
    [tp] = [t for t in TRACEPOINTS if t.name == name]
    assert {f.name: f.type for f in tp.fields} == fields


def test_steps_read_from_toml() -> None:
    data = {"name": "t", "process": [{"name": "p", "steps": [
        {"op": "mmap", "handle": "b", "length": "8MiB"},
        {"op": "madvise", "handle": "b", "advice": "free", "offset": "4MiB", "length": "4MiB"},
        {"op": "mremap", "handle": "b", "length": "12MiB", "maymove": False},
        {"op": "mprotect", "handle": "b", "prot": "r"},
    ]}]}
    steps = scenario_from_dict(data).processes[0].steps
    assert steps[1:] == (Madvise(handle="b", advice="free", offset_bytes=4 * MiB, length_bytes=4 * MiB),
                         Mremap(handle="b", length_bytes=12 * MiB, maymove=False), Mprotect(handle="b", prot="r"))


def test_a_bad_advice_names_the_step_and_key() -> None:
    data = {"name": "t", "process": [{"name": "p", "steps": [
        {"op": "mmap", "handle": "b", "length": "8MiB"}, {"op": "madvise", "handle": "b", "advice": "sequential"}]}]}
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data, "s.toml")
    assert str(exc.value).startswith("s.toml: process 'p' step 2: key 'advice': expected one of 'dontneed'")


def test_vm_account_constant_is_the_kernels() -> None:
    assert VM_ACCOUNT == 0x100000
