"""Column encodings: deltas exact whatever the values, and small on the common case."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memtrace.tracer import (
    Bus,
    Registry,
    concat,
)
from memtrace.tracer.tracefile import TraceReader

from .helpers import record


def test_wrapping_deltas_are_exact(tmp_path: Path) -> None:
    """Deltas are taken modulo 2**bits: extreme u64, i64 and i32 values survive."""
    u64_max = 2**64 - 1
    values = np.array([u64_max, 0, 1, u64_max, 2**63, 5], dtype=np.uint64)
    signed = np.array([-(2**63), 2**63 - 1, -1, 0, -(2**63), 7], dtype=np.int64)
    pids = np.array([-(2**31), 2**31 - 1, 0, -1, 2**31 - 1, 3], dtype=np.int32)

    def script(bus: Bus, reg: Registry) -> None:
        bus.emit(reg["brk"], values, pids, 6, old_brk=values, brk=values[::-1].copy(),
                 ret=0, charged_pages=signed)

    path = tmp_path / "wrap.mtrace"
    collector = record(path, script)
    (batch,) = TraceReader(path).batches()
    assert batch.equals(collector.batches[0])
    assert batch["ts_ns"].dtype == np.uint64 and batch["pid"].dtype == np.int32
    assert batch["charged_pages"].tolist() == signed.tolist()
    assert batch["old_brk"].flags.writeable


def test_page_faults_of_one_gib_are_small(tmp_path: Path) -> None:
    """262,144 first-touch faults with regular addresses, times and pfns: far under 4 MiB."""
    n = 262_144
    path = tmp_path / "gib.mtrace"

    def script(bus: Bus, reg: Registry) -> None:
        idx = np.arange(n, dtype=np.uint64)
        bus.emit(reg["page_fault"], 1_000 + idx * 250, 100, n,
                 address=0x7F0000000000 + idx * 4096, write=True, major=False,
                 vma_kind="anon_private", pfn=0x10000 + idx)

    collector = record(path, script)
    assert path.stat().st_size < 256 * 1024
    read = list(TraceReader(path).batches())
    assert [b.n for b in read] == [65536] * 4
    assert concat(read).equals(collector.batches[0])
