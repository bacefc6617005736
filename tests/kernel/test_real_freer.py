"""Experiment C of the real-kernel ground truth (../staging/real, Linux 6.18, cgroup
v1, no swap): a 32 MiB bystander and a "freer" that 24 times maps 8 MiB, writes it
and gives back its second half (MADV_DONTNEED, MADV_FREE, or a partial munmap),
and at step 12 grows its chunk by 4 MiB with mremap(MREMAP_MAYMOVE). Run in memory
cgroups of 64 to 256 MiB (memsw limited to the same), the real kernel killed the
same victims, in the same order, in every repetition; the simulation must too.

Also experiment F: the freer alone in 64 MiB, with memsw 64 MiB (memory.failcnt
stays 0: the memsw counter is charged first and fails first) and with memsw
128 MiB (memory.failcnt counts: 93 on the real kernel).
"""

from __future__ import annotations

import pytest

from memtrace.kernel.runner import run_scenario
from memtrace.kernel.workload import (
    CgroupSpec,
    MachineSpec,
    Madvise,
    Mmap,
    Mremap,
    Munmap,
    ProcessSpec,
    Repeat,
    Scenario,
    Sleep,
    Step,
    Touch,
    resolve_scenario,
)
from memtrace.tracer import Bus, Collector, default_registry

from ..conftest import MiB

#: C.modes[MODE][LIMIT].victims of ../staging/real/outcomes.json (every repetition
#: and the perf recordings agree).
REAL_VICTIMS = {
    "dontneed": {64: ["bystander", "freer"], 96: ["freer"], 128: ["freer"], 160: [], 192: [], 256: []},
    "free": {64: ["bystander", "freer"], 96: ["freer"], 128: ["freer"], 160: [], 192: [], 256: []},
    "munmap": {64: ["bystander", "freer"], 96: ["freer"], 128: ["freer"], 160: [], 192: [], 256: []},
}
#: max_usage_in_bytes of the runs that finished, MiB (outcomes.md): MADV_FREE'd pages
#: stay charged until reclaim takes them, so the freer in free mode fills the cgroup.
REAL_PEAK_FINISHED_MIB = {"dontneed": 137.2, "munmap": 137.3, "free": {160: 160.0, 192: 192.0, 256: 229.4}}
CGROUP = "/memtrace_real_c"


def _chunk(handle: str, mode: str) -> list[Step]:
    """mmap 8 MiB, write it, give back its second half."""
    give: Step
    if mode == "munmap":
        give = Munmap(handle=handle, offset_bytes=4 * MiB, length_bytes=4 * MiB)
    else:
        give = Madvise(handle=handle, advice=mode, offset_bytes=4 * MiB, length_bytes=4 * MiB)
    return [Mmap(handle=handle, length_bytes=8 * MiB, prot="rw"), Touch(handle=handle, write=True), give]


def freer_steps(mode: str) -> tuple[Step, ...]:
    """freer.c: 24 steps 30 ms apart; at step 12 the chunk grows by 4 MiB
    (mremap MAYMOVE) and the new part is written."""
    grown = 8 * MiB if mode == "munmap" else 12 * MiB
    middle = [*_chunk("middle", mode), Mremap(handle="middle", length_bytes=grown),
              Touch(handle="middle", write=True, offset_bytes=grown - 4 * MiB, length_bytes=4 * MiB),
              Sleep(duration_ns=30_000_000)]
    return (Repeat(count=12, steps=(*_chunk("chunk{i}", mode), Sleep(duration_ns=30_000_000))),
            *middle,
            Repeat(count=11, steps=(*_chunk("late{i}", mode), Sleep(duration_ns=30_000_000))))


def experiment_c(mode: str, limit_mib: int, bystander: bool = True, memsw_mib: int | None = None) -> Scenario:
    """The workload of experiment C (or F, without the bystander) as a scenario:
    cgroup v1, memsw = the memory limit unless ``memsw_mib`` says otherwise."""
    swap_max = ((memsw_mib or limit_mib) - limit_mib) * MiB
    processes = [ProcessSpec("freer", cgroup=CGROUP, start_ns=100_000_000 if bystander else 0,
                             steps=freer_steps(mode))]
    if bystander:
        processes.insert(0, ProcessSpec("bystander", cgroup=CGROUP, steps=(
            Mmap(handle="hold", length_bytes=32 * MiB, prot="rw"), Touch(handle="hold", write=True),
            Sleep(duration_ns=3_000_000_000))))
    return Scenario(name=f"freer-{mode}-{limit_mib}", processes=tuple(processes),
                    machine=MachineSpec(kernel_version="6.18", cgroup_version=1),
                    cgroups=(CgroupSpec(CGROUP, max_bytes=limit_mib * MiB, swap_max_bytes=swap_max),))


@pytest.mark.parametrize("mode", sorted(REAL_VICTIMS))
@pytest.mark.parametrize("limit_mib", [64, 96, 128, 160, 192, 256])
def test_victims_and_their_order_are_the_real_kernels(mode: str, limit_mib: int) -> None:
    """At every limit the simulated OOM kills the real victims in the real order;
    where nothing is killed the freer finishes and the cgroup's peak usage is the
    real max_usage_in_bytes within 2%."""
    bus = Bus(default_registry())
    k, result = run_scenario(experiment_c(mode, limit_mib), bus)
    assert [kill["comm"] for kill in result.oom_kills] == REAL_VICTIMS[mode][limit_mib]
    if not result.oom_kills:
        real = REAL_PEAK_FINISHED_MIB[mode]
        peak_mib = k.memcgs.by_path[CGROUP].watermark_pages * 4096 / MiB
        expected = real[limit_mib] if isinstance(real, dict) else real
        assert peak_mib == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("mode", ["dontneed", "free"])
def test_the_grown_chunk_moves_unless_its_freed_half_left_room(mode: str) -> None:
    """As on the real kernel (outcomes README, surprise 6): with the 8 MiB chunk
    still mapped the mremap moves it; after a partial munmap it grows in place.
    Either way its 1024 new pages are charged to Committed_AS."""
    moved = {}
    for m in (mode, "munmap"):
        c = Collector()
        bus = Bus(default_registry())
        bus.attach(c)
        run_scenario(experiment_c(m, 256), bus)
        [ev] = c.records("mremap")
        assert ev["ret"] == 0 and ev["charged_pages"] == 1024
        moved[m] = ev["new_addr"] != ev["addr"]
    assert moved == {mode: True, "munmap": False}


def test_the_scenario_file_reproduces_the_real_kills_at_64_mib() -> None:
    """The built-in madvise-freer (kernel/scenarios/madvise-freer.toml), experiment C
    (dontneed) at 64 MiB as a
    TOML scenario with snapshots (a built-in once the state fold follows mremap
    moves): the bystander dies first, then the freer."""
    sc = resolve_scenario("madvise-freer")
    _, result = run_scenario(sc, Bus(default_registry()))
    assert [kill["comm"] for kill in result.oom_kills] == ["bystander", "freer"]
    assert [s.label for s in result.snapshots] == ["bystander-up", "after-kills"]


@pytest.mark.parametrize(("memsw_mib", "real_failcnt"), [(64, 0), (128, 93)])
def test_failcnt_of_experiment_f(memsw_mib: int, real_failcnt: int) -> None:
    """The freer alone in 64 MiB (dontneed), one OOM kill either way. With memsw =
    memory the memsw counter fails first and memory.failcnt stays 0, as measured.
    With memsw 128 MiB the memory counter fails: 2 failures for the first page that
    does not fit (its batch of 64, then itself), one per retry (the drained-stock
    retry and MAX_RECLAIM_RETRIES), the victim's own 1 + 16 after its kill: 36,
    plus one per page charged while the counter had less than a batch of room and
    the stock was dry (0..63, set by the charge history: 57 on the real run, 0
    here). The real 93 lies in that window."""
    k, result = run_scenario(experiment_c("dontneed", 64, bystander=False, memsw_mib=memsw_mib),
                             Bus(default_registry()))
    assert [kill["comm"] for kill in result.oom_kills] == ["freer"]
    failcnt = k.memcgs.by_path[CGROUP].failcnt
    if real_failcnt == 0:
        assert failcnt == 0
    else:
        assert 36 <= failcnt <= 36 + 63
        assert 36 <= real_failcnt <= 36 + 63
