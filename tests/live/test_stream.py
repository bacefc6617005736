"""The pieces of ``trace --live`` that need no kernel: the live clock of interval
probes, batches put in seq order, the text of events, kernel log records."""

from __future__ import annotations

import numpy as np

from memtrace.analysis.importers.live.kmsg import KmsgRecord, parse_record
from memtrace.analysis.importers.live.payload import fault_text, payload_text, rss_stat_text
from memtrace.analysis.importers.live.stream import seq_ordered
from memtrace.tracer import EventBatch, default_registry
from memtrace.tracer.oneliner import compile_program
from memtrace.tracer.probes import Output, PrintfOutput, Tracer

REG = default_registry()


def _printed(program: str) -> tuple[list[str], Tracer]:
    out: list[str] = []

    def write(o: Output) -> None:
        if isinstance(o, PrintfOutput):
            out.append(o.text)

    return out, compile_program(program, output=write)


def _faults(seqs: list[int], ts: list[int]) -> EventBatch:
    return EventBatch.build(REG["page_fault"], len(seqs), {
        "seq": np.array(seqs, dtype=np.uint64), "ts_ns": np.array(ts, dtype=np.int64), "pid": 7, "address": 0,
        "write": 1, "major": 0, "vma_kind": 0, "pfn": 0})


def test_a_live_clock_fires_intervals_a_period_after_the_start_with_no_event() -> None:
    out, tracer = _printed('interval:ms:100 { printf("%d\\n", nsecs); }')
    tracer.start_clock(5_000_000_000_000)
    tracer.advance(5_000_000_050_000)
    assert out == []
    tracer.advance(5_000_350_000_000)
    assert out == [f"{5_000_000_000_000 + k * 100_000_000}\n" for k in (1, 2, 3)]


def test_a_live_clock_and_events_share_one_time() -> None:
    out, tracer = _printed('interval:ms:10 { printf("tick %d\\n", nsecs); } '
                           'page_fault { printf("fault %d\\n", nsecs); }')
    tracer.start_clock(1_000_000_000)
    tracer.advance(1_015_000_000)
    tracer.on_batch(_faults([0, 1], [1_016_000_000, 1_021_000_000]))
    assert out == ["tick 1010000000\n", "fault 1016000000\n", "tick 1020000000\n", "fault 1021000000\n"]


def test_batches_come_out_in_seq_order_as_runs_of_one_tracepoint() -> None:
    rss = EventBatch.build(REG["rss_stat"], 3, {
        "seq": np.array([1, 2, 5], dtype=np.uint64), "ts_ns": np.array([1, 2, 5]), "pid": 7, "mm_pid": 7,
        "curr": 1, "member": 1, "size_bytes": 4096})
    runs = list(seq_ordered([_faults([0, 3, 4], [0, 3, 4]), rss]))
    assert [(b.tp.name, b.ints("seq").tolist()) for b in runs] == [
        ("page_fault", [0]), ("rss_stat", [1, 2]), ("page_fault", [3, 4]), ("rss_stat", [5])]


def test_events_print_as_their_tp_printk() -> None:
    assert rss_stat_text(7, 1, 1, 8192) == "mm_id=7 curr=1 type=MM_ANONPAGES size=8192B"
    assert fault_text(0x7F0000001008, 0x401000, 6) == "address=0x7f0000001008 ip=0x401000 error_code=0x6"
    assert payload_text("syscalls:sys_enter_mmap", {"__syscall_nr": 9, "addr": 0, "len": 8192, "prot": 3,
                                                     "flags": 0x22, "fd": 0xFFFFFFFF, "off": 0}) == (
        "addr: 0x00000000, len: 0x00002000, prot: 0x00000003, flags: 0x00000022, fd: 0xffffffff, off: 0x00000000")
    assert payload_text("syscalls:sys_exit_mmap", {"__syscall_nr": 9, "ret": -12}) == "0xfffffffffffffff4"
    assert payload_text("oom:mark_victim", {"pid": 9, "comm": "leaker", "total_vm": 70000, "anon_rss": 65000,
                                            "file_rss": 1000, "shmem_rss": 0, "uid": 0, "pgtables": 180,
                                            "oom_score_adj": 0}) == (
        "pid=9 comm=leaker total-vm=70000kB anon-rss=65000kB file-rss:1000kB shmem-rss:0kB uid=0 pgtables=180kB "
        "oom_score_adj=0")
    assert payload_text("filemap:mm_filemap_add_to_page_cache", {"pfn": 0x1234, "i_ino": 0xAB, "index": 3,
                                                                 "s_dev": (8 << 20) | 1, "order": 0}) == (
        "dev 8:1 ino ab pfn=0x1234 ofs=12288 order=0")
    assert payload_text("vmscan:mm_vmscan_memcg_reclaim_begin", {"order": 0, "gfp_flags": 0xCC0}) == (
        "order=0 gfp_flags=0xcc0")
    assert payload_text("sched:sched_process_exit", {"comm": "a", "pid": 3, "prio": 120, "group_dead": 1}) == (
        "comm=a pid=3 prio=120 group_dead=true")
    assert payload_text("oom:wake_reaper", {"pid": 4}) == "pid=4"


def test_kmsg_records_become_dmesg_lines() -> None:
    rec = parse_record(b"6,2301,4751037772,-;Memory cgroup out of memory: Killed process 7737 (mt-leaker)\n"
                       b" SUBSYSTEM=x\n")
    assert rec == KmsgRecord(2301, 6, 0, 4751037772,
                             "Memory cgroup out of memory: Killed process 7737 (mt-leaker)")
    assert rec.dmesg_line() == "[ 4751.037772] Memory cgroup out of memory: Killed process 7737 (mt-leaker)"
    assert parse_record(b"no header") is None
