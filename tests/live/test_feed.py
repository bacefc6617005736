"""Decoded live events into the importer: the same trace as ``perf script | memtrace import``.

The events are written as ring-buffer pages (two CPUs, the task moving between
them), decoded and fed by :class:`LiveFeeder`; the same events as ``perf script``
lines (each with the comm perf would print) go through :func:`import_trace`. Both
traces must hold the same events, field for field, seq for seq: the hot events'
row-level path and the text path agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memtrace import api
from memtrace.analysis.importers import import_trace
from memtrace.analysis.importers.builder import TraceBuilder
from memtrace.analysis.importers.live.feed import CLONE_THREAD, LiveFeeder, LiveMerger, merge_cpus
from memtrace.analysis.importers.live.payload import fault_text, payload_text, rss_stat_text
from memtrace.analysis.importers.live.ringbuf import EventChunk, RingDecoder
from memtrace.analysis.importers.live.targets import TaskInfo

from .ringbuf_pages import PAGE_SIZE, formats, page, record

FMT = formats()
IDS = {f.id: f for f in FMT.values()}
BASE_NS = 5_000_000_000_000

#: (ts offset ns, cpu, event, tid, comm perf prints, fields)
Event = tuple[int, int, str, int, str, dict[str, Any]]


def _workload() -> list[Event]:
    """A process that maps, faults, is renamed, migrates CPUs and exits."""
    ev: list[Event] = []
    t = 0

    def add(cpu: int, name: str, shown: str, tid: int = 100, **fields: Any) -> None:
        nonlocal t
        t += 1000
        ev.append((t, cpu, name, tid, shown, fields))

    add(0, "syscalls:sys_enter_mmap", "app", __syscall_nr=9, addr=0, len=64 << 12, prot=3, flags=0x22,
        fd=0xFFFFFFFF, off=0)
    add(0, "syscalls:sys_exit_mmap", "app", __syscall_nr=9, ret=0x7F0000000000)
    for i in range(40):
        cpu = 0 if i < 20 else 1
        add(cpu, "exceptions:page_fault_user", "app", address=0x7F0000000000 + (i << 12) + 8, ip=0x401000,
            error_code=6)
        add(cpu, "kmem:rss_stat", "app", mm_id=11, curr=1, member=1, size=(i + 1) << 12)
    add(1, "task:task_rename", "app", pid=100, oldcomm="app", newcomm="app2", oom_score_adj=0)
    for i in range(40, 50):
        add(1, "exceptions:page_fault_user", "app2", address=0x7F0000000000 + (i << 12), ip=0x401000, error_code=4)
        add(1, "kmem:rss_stat", "app2", mm_id=11, curr=1, member=0, size=(i - 39) << 12)
    add(1, "syscalls:sys_enter_munmap", "app2", __syscall_nr=11, addr=0x7F0000000000, len=64 << 12)
    add(1, "kmem:rss_stat", "app2", mm_id=11, curr=1, member=1, size=0)
    add(1, "syscalls:sys_exit_munmap", "app2", __syscall_nr=11, ret=0)
    add(1, "sched:sched_process_exit", "app2", comm="app2", pid=100, prio=120, group_dead=1)
    return ev


def _pages(events: list[Event]) -> dict[int, bytes]:
    """Each CPU's events as ring-buffer pages (one page each here)."""
    out: dict[int, bytes] = {}
    for cpu in sorted({e[1] for e in events}):
        mine = [e for e in events if e[1] == cpu]
        start = BASE_NS + mine[0][0] - 10
        recs, prev = [], start
        for ts, _cpu, name, tid, _comm, fields in mine:
            recs.append((BASE_NS + ts - prev, record(FMT[name], tid, **fields)))
            prev = BASE_NS + ts
        out[cpu] = page(start, recs)
    return out


def _perf_line(e: Event) -> str:
    ts, cpu, name, tid, comm, f = e
    if name == "kmem:rss_stat":
        text = rss_stat_text(f["mm_id"], f["curr"], f["member"], f["size"])
    elif name == "exceptions:page_fault_user":
        text = fault_text(f["address"], f["ip"], f["error_code"])
    else:
        text = payload_text(name, f)
    ns = BASE_NS + ts
    return f"{comm:>16} {tid:>7} [{cpu:03d}] {ns // 10**9:>5}.{ns % 10**9:09d}: {name:>30}: {text}"


def _events(trace: Path) -> list[tuple[str, dict[str, Any]]]:
    return sorted(((b.tp.name, r.fields) for b in api.open_trace(trace).ordered_batches() for r in b.records()),
                  key=lambda x: x[1]["seq"])


def _live(events: list[Event], out: Path, tasks: list[TaskInfo]) -> LiveFeeder:
    builder = TraceBuilder(out, source_format="tracefs", source_path="test", kernel_version="6.18")
    dec = RingDecoder(IDS, PAGE_SIZE)
    feeder = LiveFeeder(builder, IDS, tasks)
    for chunk in merge_cpus([iter([dec.decode(p)]) for p in _pages(events).values()]):
        feeder.feed(chunk)
    feeder.finish()
    builder.finish()
    return feeder


def test_live_feed_writes_what_perf_script_import_writes(tmp_path: Path) -> None:
    events = _workload()
    (tmp_path / "run.perf").write_text("\n".join(_perf_line(e) for e in events) + "\n")
    import_trace(tmp_path / "run.perf", tmp_path / "perf.mtrace", kernel_version="6.18")
    feeder = _live(events, tmp_path / "live.mtrace", [TaskInfo(100, 100, "app")])
    perf, live = _events(tmp_path / "perf.mtrace"), _events(tmp_path / "live.mtrace")
    assert live == perf
    names = [n for n, _ in live]
    assert names.count("page_fault") == 50 and names.count("rss_stat") == 51
    # A rename is no exec (issue 12): one process, renamed, its mappings kept.
    assert [f["comm"] for n, f in live if n == "process_start"] == ["app"]
    assert [(f["oldcomm"], f["newcomm"]) for n, f in live if n == "task_rename"] == [("app", "app2")]
    assert feeder.counts["task:task_rename"] == 1


def test_a_forks_copied_counters_are_the_childs(tmp_path: Path) -> None:
    """fork() copies the parent's counters into the child's mm in the parent's
    context (curr=0) before task_newtask names the child: they are the child's."""
    ev: list[Event] = [
        (1000, 0, "kmem:rss_stat", 100, "app", {"mm_id": 11, "curr": 1, "member": 1, "size": 8 << 20}),
        (2000, 0, "syscalls:sys_enter_clone", 100, "app", {"__syscall_nr": 56, "clone_flags": 0x1200011}),
        (3000, 0, "kmem:rss_stat", 100, "app", {"mm_id": 22, "curr": 0, "member": 1, "size": 4 << 20}),
        (4000, 0, "kmem:rss_stat", 100, "app", {"mm_id": 22, "curr": 0, "member": 1, "size": 8 << 20}),
        (5000, 0, "task:task_newtask", 100, "app", {"pid": 101, "comm": "app", "clone_flags": 0x1200011}),
        (6000, 0, "sched:sched_process_fork", 100, "app",
         {"parent_comm": "app", "parent_pid": 100, "child_comm": "app", "child_pid": 101}),
        (7000, 1, "kmem:rss_stat", 101, "app", {"mm_id": 22, "curr": 1, "member": 0, "size": 4096}),
        (8000, 0, "kmem:rss_stat", 100, "app", {"mm_id": 11, "curr": 1, "member": 1, "size": 9 << 20}),
    ]
    feeder = _live(ev, tmp_path / "fork.mtrace", [TaskInfo(100, 100, "app")])
    rss = [(f["mm_pid"], f["size_bytes"]) for n, f in _events(tmp_path / "fork.mtrace") if n == "rss_stat"]
    assert rss == [(100, 8 << 20), (101, 4 << 20), (101, 8 << 20), (101, 4096), (100, 9 << 20)]
    assert feeder.fork_copies == 1


def test_a_fork_child_may_get_the_mm_id_of_its_parents_old_image(tmp_path: Path) -> None:
    """A shell that exec'd freed its mm; the child it forks next may get the same
    mm_struct, so the same mm_id: the copies are still the child's."""
    rss = "kmem:rss_stat"
    ev: list[Event] = [
        (1000, 0, rss, 100, "sh", {"mm_id": 11, "curr": 1, "member": 1, "size": 4096}),
        (2000, 0, "task:task_rename", 100, "sh", {"pid": 100, "oldcomm": "sh", "newcomm": "app"}),
        (3000, 0, rss, 100, "app", {"mm_id": 33, "curr": 1, "member": 1, "size": 8 << 20}),
        (4000, 0, rss, 100, "app", {"mm_id": 11, "curr": 0, "member": 1, "size": 8 << 20}),
        (5000, 0, "task:task_newtask", 100, "app", {"pid": 101, "comm": "app", "clone_flags": 0x1200011}),
        (6000, 1, rss, 101, "app", {"mm_id": 11, "curr": 1, "member": 0, "size": 4096}),
    ]
    _live(ev, tmp_path / "reuse.mtrace", [TaskInfo(100, 100, "sh")])
    got = [(f["mm_pid"], f["size_bytes"]) for n, f in _events(tmp_path / "reuse.mtrace") if n == "rss_stat"]
    assert got == [(100, 4096), (100, 8 << 20), (101, 8 << 20), (101, 4096)]


def test_threads_count_for_their_process(tmp_path: Path) -> None:
    ev: list[Event] = [
        (1000, 0, "kmem:rss_stat", 100, "app", {"mm_id": 11, "curr": 1, "member": 1, "size": 4096}),
        (2000, 0, "task:task_newtask", 100, "app", {"pid": 105, "comm": "app", "clone_flags": CLONE_THREAD | 0x100}),
        (3000, 1, "exceptions:page_fault_user", 105, "app", {"address": 0x1000, "ip": 0, "error_code": 6}),
        (4000, 1, "kmem:rss_stat", 105, "app", {"mm_id": 11, "curr": 1, "member": 1, "size": 8192}),
    ]
    _live(ev, tmp_path / "thr.mtrace", [TaskInfo(100, 100, "app")])
    got = _events(tmp_path / "thr.mtrace")
    assert {f["pid"] for n, f in got if n in ("page_fault", "rss_stat")} == {100}
    assert [f["pid"] for n, f in got if n == "process_start"] == [100]


def _chunk(ts: list[int], tid: int) -> EventChunk:
    n = len(ts)
    z = np.zeros(n, dtype=np.int64)
    return EventChunk(np.array(ts, dtype=np.int64), np.full(n, tid, dtype=np.int64), z, z, z, z, z)


def test_cpus_merge_in_time_order_a_chunk_at_a_time() -> None:
    cpu0 = [_chunk([1, 4, 9], 0), _chunk([12, 20], 0)]
    cpu1 = [_chunk([2, 3, 10, 11], 1), _chunk([13], 1)]
    out = list(merge_cpus([iter(cpu0), iter(cpu1)]))
    merged = EventChunk.concat(out)
    assert merged.ts_ns.tolist() == [1, 2, 3, 4, 9, 10, 11, 12, 13, 20]
    assert merged.tid.tolist() == [0, 1, 1, 0, 0, 1, 1, 0, 1, 0]
    assert len(out) > 1  # streamed, not all at once


def test_live_merger_holds_back_what_is_newer_than_the_watermark() -> None:
    m = LiveMerger()
    m.add(_chunk([5, 1, 9], 0))
    m.add(_chunk([3, 7], 1))
    assert m.release(6).ts_ns.tolist() == [1, 3, 5]
    m.add(_chunk([8], 1))
    assert m.release(None).ts_ns.tolist() == [7, 8, 9]
