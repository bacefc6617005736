"""vm.max_map_count: do_mmap() refuses a mapping once the mm has more VMAs than
DEFAULT_MAX_MAP_COUNT, as the real kernel did (tests/data/real/max_map_count)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.kernel.workload import Mmap, Repeat
from memtrace.linux.limits import DEFAULT_MAX_MAP_COUNT

from ..conftest import run_steps

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "max_map_count" / "outcome.txt"


@pytest.mark.slow
def test_the_mapping_after_65531_fails_with_enomem_as_on_the_real_kernel() -> None:
    _, _result, events = run_steps(Repeat(steps=(Mmap(handle="m{i}", length_bytes=4096, prot="rw"),), count=0))
    rets = [r["ret"] for r in events.records() if r.name == "mmap"]
    assert rets.count(0) == DEFAULT_MAX_MAP_COUNT + 1 == 65_531
    assert rets[-1] == -12 and len(rets) == 65_532
    # The real kernel: ENOMEM with 65,532 lines in /proc/self/maps, [vsyscall]
    # (not a VMA) among them: map_count 65,531.
    _kernel, limit, result = REAL.read_text().splitlines()
    assert int(limit) == DEFAULT_MAX_MAP_COUNT
    assert result.endswith("errno=12 (Cannot allocate memory) map_count_at_failure=65532")
