"""What a run of a scenario costs the host, estimated before it starts.

A trace embeds the workload it recorded, and replaying it (report's what-ifs,
``replay``, ``sweep``) runs that workload again: a trace from someone else can
name a 256 GiB machine or 16 mappings of 256 GiB. The bounds of :mod:`.bounds`
keep a run inside a 24 GiB host; this estimate says, before the run, whether it is
small enough to start without being asked (``report`` runs its what-ifs
automatically only then).

The estimate follows the simulator's per-page costs (see :mod:`.bounds`): about 80
bytes of host memory per page of RAM in use, 14 per swap slot in use, 5 per page
of a mapping's page table, 12 per page of a file's page-cache index. Time is about
2 us per page a step goes through (touch, read, write, mlock; a fault, an LRU
add, an rss_stat each: measured here as oom-leak's 1.5 M events in 2.5 s) plus
87 us per 100 ms of simulated time (the meminfo sampler; a simulated day takes
about 75 s).

Simplified: a repeat with ``count = 0`` (until the process ends) is counted as
running as often as the runner lets it: at most MAX_REPEAT_COUNT iterations, at
most the time limit (``machine.time_limit``, an hour by default) over the sleeps
of one iteration, and, when an iteration maps or writes memory, until RAM and swap
are full (the OOM kill or ENOMEM that ends such a loop). Forked children are
counted once, as written in their own steps, not as copies of their parent's
mappings.
"""

from __future__ import annotations

from dataclasses import dataclass

from memtrace.linux.limits import PAGE_SIZE

from .bounds import MAX_REPEAT_COUNT
from .model import Scenario
from .steps import Brk, FileRead, FileWrite, Ftruncate, Mlock, Mmap, Mremap, Repeat, Shmget, Sleep, Step, Touch

__all__ = [
    "HOST_BYTES_PER_FILE_PAGE",
    "HOST_BYTES_PER_MAPPED_PAGE",
    "HOST_BYTES_PER_RAM_PAGE",
    "HOST_BYTES_PER_SWAP_SLOT",
    "SECONDS_PER_PAGE",
    "SECONDS_PER_SAMPLE",
    "SMALL_RUN_HOST_BYTES",
    "SMALL_RUN_SECONDS",
    "RunCost",
    "estimate_cost",
]

#: Host bytes per simulated page (see the module docstring and :mod:`.bounds`).
HOST_BYTES_PER_RAM_PAGE = 80
HOST_BYTES_PER_SWAP_SLOT = 14
HOST_BYTES_PER_MAPPED_PAGE = 5
HOST_BYTES_PER_FILE_PAGE = 12
#: Seconds per page a step goes through, and per 100 ms of simulated time.
SECONDS_PER_PAGE = 2e-6
SECONDS_PER_SAMPLE = 87e-6
SAMPLE_NS = 100_000_000
#: A run this small starts without being asked: 512 MiB of host memory and 15 s
#: (the built-in scenarios take at most 89 MiB and 4 s by this estimate).
SMALL_RUN_HOST_BYTES = 512 << 20
SMALL_RUN_SECONDS = 15.0


@dataclass(frozen=True)
class RunCost:
    """The estimated cost of one run: host memory in bytes and time in seconds,
    with the page counts they come from."""

    host_bytes: int
    seconds: float
    range_pages: int  # pages the range steps go through, repeats multiplied
    mapped_pages: int  # pages of every mapping made (mmap, brk, mremap, shmget)
    simulated_ns: int  # the longest process's start + sleeps, repeats multiplied (or the time limit)

    @property
    def small(self) -> bool:
        """Within :data:`SMALL_RUN_HOST_BYTES` and :data:`SMALL_RUN_SECONDS`."""
        return self.host_bytes <= SMALL_RUN_HOST_BYTES and self.seconds <= SMALL_RUN_SECONDS

    def at_least(self, seconds: float) -> RunCost:
        """This cost, taking at least ``seconds`` (e.g. what the recording took)."""
        if seconds <= self.seconds:
            return self
        return RunCost(self.host_bytes, seconds, self.range_pages, self.mapped_pages, self.simulated_ns)

    def describe(self) -> str:
        """``about 12 s and 340 MiB``."""
        return f"about {self.seconds:,.0f} s and {self.host_bytes >> 20:,} MiB"


def _pages(nr_bytes: int) -> int:
    return -(-max(nr_bytes, 0) // PAGE_SIZE)


class _Tally:
    """Page counts of one scenario's steps (see :func:`estimate_cost`)."""

    def __init__(self, scenario: Scenario) -> None:
        self.files = {f.path: f.size_bytes for f in scenario.files}
        self.machine_pages = _pages(scenario.machine.ram_bytes) + _pages(scenario.machine.swap_bytes)
        self.time_limit_ns = scenario.machine.time_limit_ns
        self.range_pages = 0
        self.mapped_pages = 0
        self.file_pages = sum(_pages(n) for n in self.files.values())
        self.lengths: dict[str, int] = {}
        self.sleep_ns = 0

    def steps(self, steps: tuple[Step, ...], times: int) -> None:
        for step in steps:
            if isinstance(step, Repeat):
                if step.count == 0:
                    self._endless(step.steps, times)
                else:
                    self.steps(step.steps, times * step.count)
            elif isinstance(step, (Mmap, Mremap)):
                self.lengths[step.handle] = step.length_bytes
                self.mapped_pages += times * _pages(step.length_bytes)
            elif isinstance(step, Touch):
                length = step.length_bytes or self.lengths.get(step.handle, 0) - step.offset_bytes
                self.range_pages += times * _pages(length)
            elif isinstance(step, Mlock):
                self.range_pages += times * _pages(self.lengths.get(step.handle, 0))
            elif isinstance(step, FileRead):
                length = step.length_bytes or self.files.get(step.path, 0) - step.offset_bytes
                self.range_pages += times * _pages(length)
            elif isinstance(step, FileWrite):
                self.range_pages += times * _pages(step.length_bytes)
                self.file_pages += times * _pages(step.length_bytes)
                end = step.offset_bytes + step.length_bytes
                self.files[step.path] = max(self.files.get(step.path, 0), end)
            elif isinstance(step, Ftruncate):
                self.files[step.path] = step.size_bytes
                self.file_pages += times * _pages(step.size_bytes)
            elif isinstance(step, Shmget):
                self.mapped_pages += times * _pages(step.size_bytes)
            elif isinstance(step, Brk) and step.increment_bytes > 0:
                self.mapped_pages += times * _pages(step.increment_bytes)
            elif isinstance(step, Sleep):
                self.sleep_ns += times * step.duration_ns


    def _endless(self, body: tuple[Step, ...], times: int) -> None:
        """A count = 0 repeat: once through ``body``, then as many more times as it
        can run (see the module docstring)."""
        before = (self.range_pages, self.mapped_pages, self.file_pages, self.sleep_ns)
        self.steps(body, times)
        d_range, d_mapped, d_file, d_sleep = (after - was for after, was in zip(
            (self.range_pages, self.mapped_pages, self.file_pages, self.sleep_ns), before))
        iterations = MAX_REPEAT_COUNT
        if d_sleep:
            iterations = min(iterations, max(1, self.time_limit_ns * times // d_sleep))
        if d_mapped or d_file:  # it allocates: until RAM and swap are gone (an OOM kill, ENOMEM)
            iterations = min(iterations, max(1, -(-self.machine_pages * times // (d_mapped + d_file))))
        more = iterations - 1
        self.range_pages += more * d_range
        self.mapped_pages += more * d_mapped
        self.file_pages += more * d_file
        self.sleep_ns += more * d_sleep


def estimate_cost(scenario: Scenario) -> RunCost:
    """The estimated host memory and time of running ``scenario`` once (see the
    module docstring for the model and what it simplifies). Linear in the number
    of steps, repeats not unrolled."""
    ram_pages = _pages(scenario.machine.ram_bytes)
    swap_pages = _pages(scenario.machine.swap_bytes)
    range_pages = mapped_pages = file_pages = 0
    simulated_ns = 0
    files: dict[str, int] = {}
    for p in scenario.processes:
        tally = _Tally(scenario)
        tally.files.update(files)
        tally.steps(p.steps, 1)
        files = tally.files
        range_pages += tally.range_pages
        mapped_pages += tally.mapped_pages
        file_pages = max(file_pages, tally.file_pages)
        simulated_ns = min(max(simulated_ns, p.start_ns + tally.sleep_ns), scenario.machine.time_limit_ns)
    in_use = min(range_pages + file_pages, ram_pages + swap_pages)
    host_bytes = (HOST_BYTES_PER_RAM_PAGE * min(in_use, ram_pages) + HOST_BYTES_PER_SWAP_SLOT * min(in_use, swap_pages)
                  + HOST_BYTES_PER_MAPPED_PAGE * mapped_pages + HOST_BYTES_PER_FILE_PAGE * file_pages)
    seconds = SECONDS_PER_PAGE * range_pages + SECONDS_PER_SAMPLE * (simulated_ns // SAMPLE_NS)
    return RunCost(host_bytes, seconds, range_pages, mapped_pages, simulated_ns)
