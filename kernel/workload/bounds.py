"""The bounds of a scenario, and how a value beyond one is named in a message.

Every value is bounded when the scenario is validated, before a run starts: by the
kernel's own limits where it has them (uid, exit status, oom_score_adj, pid) and
otherwise by what the simulator can hold.

The simulator keeps numpy arrays per page: about 80 bytes per page of RAM in use
(struct page columns, LRU lists, page tables; 256 GiB of RAM written through takes
5.3 GiB of host memory), 14 bytes per swap slot plus what the swapped pages cost,
12 bytes per page of a file's page-cache index and 5 per page of a mapping's page
table. The bounds keep a run inside a 24 GiB host.
"""

from __future__ import annotations

import re

from memtrace.errors import ScenarioError
from memtrace.linux.limits import PAGE_COUNTER_MAX, PAGE_SIZE
from memtrace.units import format_size_exact

#: Smallest simulated RAM: the kernel image (48 MiB), the memmap and the DMA
#: reserve leave no managed pages at 64 MiB.
MIN_RAM_BYTES = 128 << 20
#: Largest simulated RAM.
MAX_RAM_BYTES = 256 << 30
#: Largest swap device.
MAX_SWAP_BYTES = 256 << 30
#: Slowest and fastest disk (write speed of file writeback, bytes per second): a
#: page written takes between 4 us and 4 ms.
MIN_DISK_WRITE_BYTES_PER_S = 1 << 20
MAX_DISK_WRITE_BYTES_PER_S = 1 << 40
#: Largest size, offset or length a step or a boot-time file may name; also the
#: end (offset + length) of a range.
MAX_SIZE_BYTES = 256 << 30
#: Largest memory.max or memory.swap.max of a cgroup: PAGE_COUNTER_MAX pages
#: (LONG_MAX / PAGE_SIZE, mm/page_counter.c) in bytes.
MAX_CGROUP_LIMIT_BYTES = PAGE_COUNTER_MAX * PAGE_SIZE
#: Memory cgroups besides the root: memcg ids are int16 in the simulator's page
#: columns, 1 being the root.
MAX_CGROUPS = 32766
#: Largest time a scenario names (start, sleep, time_limit): one day. Every
#: timestamp then fits the trace's 64-bit ns columns many times over; the bound is
#: the run's cost: the meminfo sampler wakes every 100 ms, so a simulated day takes
#: about 75 s and 0.5 GiB of host memory even with every process asleep.
MAX_TIME_NS = 86_400 * 1_000_000_000
#: Largest uid: uid_t is 32 bits and (uid_t)-1 means "no uid" (include/linux/uidgid.h).
MAX_UID = 2**32 - 2
#: Largest exit status: exit(2) keeps the low 8 bits.
MAX_EXIT_CODE = 255
#: Largest pid: PID_MAX_LIMIT on 64-bit (include/linux/threads.h); 1 is init.
MIN_PID, MAX_PID = 2, 4_194_304
#: Most iterations of a repeat, nested repeats' counts multiplied.
MAX_REPEAT_COUNT = 1_000_000
#: Deepest nesting of repeats.
MAX_REPEAT_DEPTH = 16
#: A scenario name: it names the default trace file (NAME.mtrace), so no slash, no
#: leading dot or dash, at most 128 characters.
SCENARIO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
#: PATH_MAX (include/uapi/linux/limits.h), counting the terminating NUL.
PATH_MAX = 4096


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number_text(value: int) -> str:
    """``value`` in decimal, or its size in bits when it has too many digits to print."""
    if abs(value) < 10**30:
        return str(value)
    return f"a {value.bit_length()}-bit {'negative ' if value < 0 else ''}number"


def outside(where: str, key: str, value: int, low: str, high: str) -> ScenarioError:
    """The error for ``value`` of ``key`` outside ``low..high`` (bounds as printed)."""
    return ScenarioError(f"{where}: key {key!r}: {number_text(value)} is outside {low}..{high}")


def check_pages(where: str, key: str, nr_bytes: int, low: int, high: int) -> None:
    """``nr_bytes`` is a whole number of pages in ``low..high``."""
    if not low <= nr_bytes <= high:
        high_text = str(high) if high == MAX_CGROUP_LIMIT_BYTES else format_size_exact(high)
        raise outside(where, key, nr_bytes, format_size_exact(low) if low > 0 else str(low), high_text)
    if nr_bytes % PAGE_SIZE:
        raise ScenarioError(f"{where}: key {key!r}: {number_text(nr_bytes)} is not a multiple of the page size "
                            f"({PAGE_SIZE})")
