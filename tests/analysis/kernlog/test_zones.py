"""The zones, free lists, swap, memory and machine of a log's report, worked by hand.

Ground truth: ``../shared/reference/kernel-mm-facts.md`` §5.2-5.4 (the watermark test:
``free - (2^order - 1) <= mark + lowmem_reserve[classzone]`` fails; the slow path gives
up at min after reclaim; ``__GFP_HIGH`` halves the mark) and §3.3 (the show_mem layout
the report lines below are written in), gfp_zone()'s table (include/linux/gfp.h), and
real reports of tests/data/oomlogs (a 64 KiB-page ppc64le kernel, an i386 one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines, report_from_log
from memtrace.analysis.kernlog.watermarks import configured_zones, gfp_zone
from memtrace.analysis.report.model import LogFacts, OomKillReport

CORPUS = Path(__file__).resolve().parents[2] / "data" / "oomlogs"
MOVABLE_USER = "0x100cca(GFP_HIGHUSER_MOVABLE)"  # __GFP_HIGHMEM|__GFP_MOVABLE: classzone Movable


def zone(name: str, free: int, mins: int, low: int, high: int, reserve: str, cma: int = 0) -> list[str]:
    return [f"Node 0 {name} free:{free}kB boost:0kB min:{mins}kB low:{low}kB high:{high}kB "
            f"reserved_highatomic:0KB active_anon:0kB inactive_anon:0kB active_file:0kB inactive_file:0kB "
            f"unevictable:0kB writepending:0kB present:1048576kB managed:1000000kB mlocked:0kB bounce:0kB "
            f"free_pcp:0kB local_pcp:0kB free_cma:{cma}kB", f"lowmem_reserve[]: {reserve}"]


def report(zones: list[str], gfp: str = MOVABLE_USER, order: int = 0, buddy: tuple[str, ...] = (),
           tail: tuple[str, ...] = ()) -> OomKillReport:
    lines = [f"leaky invoked oom-killer: gfp_mask={gfp}, order={order}, oom_score_adj=0",
             "CPU: 0 PID: 1733 Comm: leaky Not tainted 6.6.9 #1",
             "Mem-Info:",
             "active_anon:1000 inactive_anon:500 isolated_anon:0",
             " active_file:100 inactive_file:50 isolated_file:0",
             " unevictable:0 dirty:0 writeback:0",
             " slab_reclaimable:200 slab_unreclaimable:300",
             " mapped:10 shmem:20 pagetables:40",
             " sec_pagetables:0 bounce:0",
             " kernel_misc_reclaimable:0",
             " free:4000 free_pcp:0 free_cma:0",
             *zones, *buddy, *tail,
             "Out of memory: Killed process 1733 (leaky) total-vm:4000kB, anon-rss:3000kB, file-rss:0kB, "
             "shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0"]
    [kill] = oom_report_from_parsed(parse_oom_lines(lines).reports).kills
    return kill


def log_of(k: OomKillReport) -> LogFacts:
    assert k.log is not None
    return k.log


# --------------------------------------------------------------------------- zone types, gfp_zone


def test_zone_types_from_the_printed_zones_and_the_reserve_length() -> None:
    assert configured_zones(["DMA", "DMA32", "Normal"], 5) == ("DMA", "DMA32", "Normal", "Movable", "Device")
    assert configured_zones(["DMA", "DMA32", "Normal"], 4) == ("DMA", "DMA32", "Normal", "Movable")
    assert configured_zones(["DMA", "Normal", "HighMem"], 4) == ("DMA", "Normal", "HighMem", "Movable")
    assert configured_zones(["DMA32", "Normal"], 3, highmem=False) == ("DMA32", "Normal", "Movable")


@pytest.mark.parametrize(("mask", "zone"), [
    (0xCC0, "Normal"),      # GFP_KERNEL
    (0x100CCA, "Movable"),  # GFP_HIGHUSER_MOVABLE: __GFP_HIGHMEM|__GFP_MOVABLE
    (0x100CC2, "Normal"),   # GFP_HIGHUSER on 64-bit: no HighMem zone
    (0xCC1, "DMA"), (0xCC4, "DMA32"),
])
def test_gfp_zone(mask: int, zone: str) -> None:
    assert gfp_zone(mask, ("DMA", "DMA32", "Normal", "Movable")) == zone


# --------------------------------------------------------------------------- the watermark test


def test_every_zone_short_at_min_plus_reserve() -> None:
    """Normal: 61900 <= 61948 + 0; DMA32: 250000 <= 9000 + 62000 pages x 4 kB = 257000;
    DMA: 15000 <= 100 + 300000 x 4: every zone of the zonelist fails, the allocator gave up."""
    k = report(zone("DMA", 15000, 100, 125, 150, "0 2000 300000 300000 300000")
               + zone("DMA32", 250000, 9000, 11250, 13500, "0 0 62000 62000 62000")
               + zone("Normal", 61900, 61948, 77435, 92922, "0 0 0 0 0"))
    w = log_of(k).watermarks
    assert w is not None and w.classzone == "Movable" and w.mark == "min"
    checks = {c.zone: c for c in w.zones}
    assert (checks["DMA32"].mark_kb, checks["DMA32"].reserve_kb) == (9000, 248000)
    assert w.all_short and set(w.short) == {"node 0 DMA", "node 0 DMA32", "node 0 Normal"}
    assert "could not serve it even after reclaim" in w.verdict
    # OOMAnalyser tests low in Normal alone and says "below the low watermark"
    assert w.oomanalyser is not None and "low watermark" in w.oomanalyser


def test_a_zone_above_min_is_said_to_be_a_snapshot() -> None:
    """Normal at 61949 > 61948: above min, below low. The allocator could have served it
    at min; show_mem prints the zones after the failure, so the report says so."""
    k = report(zone("DMA", 15000, 100, 125, 150, "0 2000 300000 300000 300000")
               + zone("DMA32", 250000, 9000, 11250, 13500, "0 0 62000 62000 62000")
               + zone("Normal", 61949, 61948, 77435, 92922, "0 0 0 0 0"))
    w = log_of(k).watermarks
    assert w is not None and not w.all_short and w.short == ("node 0 DMA32", "node 0 DMA")
    normal = next(c for c in w.zones if c.zone == "Normal")
    assert normal.ok and not normal.ok_at_low
    assert "after the allocation failed" in w.verdict


def test_gfp_high_halves_the_mark_and_cma_is_not_for_unmovable_requests() -> None:
    k = report(zone("Normal", 4100, 8000, 10000, 12000, "0 0 0 0 0"), gfp="0xca0(GFP_KERNEL|__GFP_HIGH)")
    w = log_of(k).watermarks
    assert w is not None
    [c] = w.zones
    assert (c.mark_kb, c.ok) == (4000, True)  # 8000 - 8000/2
    k = report(zone("Normal", 9000, 8000, 10000, 12000, "0 0 0 0 0", cma=2000), gfp="0xcc0(GFP_KERNEL)")
    w = log_of(k).watermarks
    assert w is not None
    [c] = w.zones
    assert (c.usable_kb, c.ok) == (7000, False)


def test_an_order_3_request_needs_a_block_of_order_3() -> None:
    """40000 kB free against min 8000, but every block below order 3: the zone fails the
    order-3 test (no free block of order >= 3 in U, M or E), which is fragmentation."""
    buddy = ("Node 0 Normal: 5000*4kB (UME) 2500*8kB (UME) 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB "
             "0*1024kB 0*2048kB 1*4096kB (H) = 44096kB",)
    k = report(zone("Normal", 44096, 8000, 10000, 12000, "0 0 0 0 0"), gfp="0xcc0(GFP_KERNEL)", order=3,
               buddy=buddy)
    log = log_of(k)
    assert log.watermarks is not None and log.watermarks.all_short and "fragmentation" in log.watermarks.verdict
    assert log.fragmentation is not None and log.fragmentation.fragmented_for_request
    [z] = log.fragmentation.zones
    assert (z.largest_free_order, z.free_kb, z.free_kb_at_order, z.unusable_kb) == (10, 44096, 0, 4096)


def test_fragmentation_from_the_buddy_lists() -> None:
    not_fragmented = ("Node 0 Normal: 10*4kB (U) 0*8kB 0*16kB 2*32kB (M) 0*64kB 0*128kB 0*256kB 0*512kB "
                      "0*1024kB 0*2048kB 0*4096kB = 104kB",)
    k = report(zone("Normal", 104, 8000, 10000, 12000, "0 0 0 0 0"), buddy=not_fragmented)
    f = log_of(k).fragmentation
    assert f is not None and not f.heavily_fragmented and f.zones[0].free_kb_at_costly_order == 64
    fragmented = ("Node 0 Normal: 10*4kB (U) 5*8kB (M) 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB "
                  "0*1024kB 0*2048kB 0*4096kB = 80kB",)
    k = report(zone("Normal", 80, 8000, 10000, 12000, "0 0 0 0 0"), buddy=fragmented)
    f = log_of(k).fragmentation
    assert f is not None and f.heavily_fragmented and "heavily fragmented" in f.verdict


def test_zone_and_buddy_lines_are_kept_as_printed() -> None:
    buddy = ("Node 0 Normal: 1231*4kB (UEM) 391*8kB (UEM) 456*16kB (UEM) 342*32kB (UEM) 141*64kB (UEM) "
             "23*128kB (UEM) 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 38260kB",)
    k = report(zone("Normal", 36692, 36784, 45980, 55176, "0 0 0 0 0"), buddy=buddy)
    [z] = log_of(k).zones
    assert (z.node, z.zone, z.free_kb, z.min_kb, z.low_kb, z.high_kb, z.boost_kb) == (
        0, "Normal", 36692, 36784, 45980, 55176, 0)
    assert z.free_blocks == (1231, 391, 456, 342, 141, 23, 0, 0, 0, 0, 0)
    assert z.block_kb[:3] == (4, 8, 16) and z.block_types[0] == "UEM" and z.block_types[6] == ""
    assert (z.buddy_free_kb, z.largest_free_order, z.lowmem_reserve_pages) == (38260, 5, (0, 0, 0, 0, 0))


# --------------------------------------------------------------------------- swap, memory, huge pages


def test_swap_used_counts_the_swap_cache() -> None:
    """free(1)'s used is total - free: 8388604 - 0; OOMAnalyser's leaves the swap cache
    (11342 pages x 4 kB = 45368 kB) out: 8343236 kB, 99 %."""
    k = report(zone("Normal", 36692, 36784, 45980, 55176, "0 0 0 0 0"),
               tail=("11342 pages in swap cache", "Free swap  = 0kB", "Total swap = 8388604kB"))
    s = log_of(k).swap
    assert s is not None
    assert (s.total_kb, s.used_kb, s.used_percent, s.cache_kb) == (8388604, 8388604, 100, 45368)
    assert (s.used_without_cache_kb, s.used_without_cache_percent) == (8343236, 99)


def test_where_ram_was() -> None:
    """Mem-Info in pages x 4 kB: free 16000, anon 6000, file 600, slab 800 + 1200, page
    tables 160, kernel stacks 32 (node line), a 2 MiB-page pool of 10 pages; 1000 pages
    RAM, 100 reserved: 3600 kB managed, and what no counter accounts for."""
    k = report(zone("Normal", 16000, 100, 125, 150, "0 0 0 0 0"), tail=(
        "Node 0 active_anon:4000kB inactive_anon:2000kB active_file:400kB inactive_file:200kB unevictable:0kB "
        "isolated(anon):0kB isolated(file):0kB mapped:40kB dirty:0kB writeback:0kB shmem:80kB shmem_thp:0kB "
        "shmem_pmdmapped:0kB anon_thp:0kB writeback_tmp:0kB kernel_stack:32kB pagetables:160kB "
        "sec_pagetables:0kB all_unreclaimable? no",
        "Node 0 hugepages_total=10 hugepages_free=4 hugepages_surp=0 hugepages_size=2048kB",
        "Total swap = 0kB", "100000 pages RAM", "10000 pages reserved"))
    log = log_of(k)
    m = log.memory
    assert m is not None
    assert m.parts_kb == {"free": 16000, "anon": 6000, "file": 600, "unevictable": 0, "slab_reclaimable": 800,
                          "slab_unreclaimable": 1200, "pagetables": 160, "kernel_stack": 32, "hugepages": 20480}
    assert (m.ram_kb, m.managed_kb) == (400000, 360000)
    assert m.unaccounted_kb == 360000 - sum(m.parts_kb.values())
    [pool] = log.hugepages
    assert (pool.pool_kb, pool.used_kb) == (20480, 12288)
    assert log.nodes[0].all_unreclaimable is False and log.nodes[0].kernel_stack_kb == 32


# --------------------------------------------------------------------------- page size, platform


def test_a_64k_page_kernel() -> None:
    """020: ppc64le RHEL 10: the victim's row says 571 pages, its Killed line 36544 kB."""
    k = report_from_log(next(CORPUS.glob("020*"))).kills[0]
    log = log_of(k)
    assert (log.page_size.nr_bytes, log.page_size.guessed) == (65536, False)
    assert log.platform.arch == "ppc64" and log.platform.distribution is not None
    assert "RHEL 10" in log.platform.distribution
    # the badness of its rows counts 64 KiB pages: rss 0 + swap 96 + page tables 51200 B / 64 KiB = 0
    [c] = k.candidates
    assert (c.pgtables_pages, c.points) == (0, 96)


def test_unlimited_memcg_swap_on_64k_pages() -> None:
    """PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE pages: 9007199254740928 kB with 64 KiB
    pages (OOMAnalyser takes it for a real limit)."""
    lines = ["a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             "CPU: 1 PID: 7 Comm: a Not tainted 6.12.0-211.el10.ppc64le #1",
             "memory: usage 1024kB, limit 1024kB, failcnt 3",
             "swap: usage 0kB, limit 9007199254740928kB, failcnt 0",
             "Memory cgroup stats for /t:", "anon 1048576",
             "Tasks state (memory values in pages):",
             "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents "
             "oom_score_adj name",
             "[      7]     0     7      571       16       16        0         0    51200        0             0 a",
             "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/t,"
             "task_memcg=/t,task=a,pid=7,uid=0",
             "Memory cgroup out of memory: Killed process 7 (a) total-vm:36544kB, anon-rss:1024kB, file-rss:0kB, "
             "shmem-rss:0kB, UID:0 pgtables:50kB oom_score_adj:0"]
    [k] = oom_report_from_parsed(parse_oom_lines(lines).reports).kills
    log = log_of(k)
    assert log.page_size.nr_bytes == 65536
    assert log.memcg is not None and log.memcg.swap == "unlimited"


@pytest.mark.parametrize(("release", "regs", "arch", "distro"), [
    ("6.2.0-1009-aws", "pc : do_page_fault+0x1c/0x4a0", "arm64", "Ubuntu"),  # a Graviton kernel
    ("5.15.0-1019-aws", "", None, "Ubuntu"),  # -aws alone: which arch is not told
    ("5.14.0-70.13.1.el9_0.aarch64", "", "arm64", "RHEL 9 or a rebuild (CentOS, Rocky, Alma, Oracle)"),
    ("6.1.1-arch1-1", "RIP: 0033:0x7f3c2a400000", "x86_64", "Arch Linux"),
    ("4.19.0-21-amd64", "", "x86_64", "Debian"),
    ("5.15.158-2-pve", "", None, "Proxmox VE"),
])
def test_platform_is_told_not_guessed(release: str, regs: str, arch: str | None, distro: str) -> None:
    lines = ["a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             f"CPU: 1 PID: 7 Comm: a Not tainted {release} #1", *([regs] if regs else []),
             "Out of memory: Killed process 7 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB"]
    [k] = oom_report_from_parsed(parse_oom_lines(lines).reports).kills
    p = log_of(k).platform
    assert (p.arch, p.distribution) == (arch, distro)


def test_corpus_arch_is_never_wrong() -> None:
    """Where the index names the architecture and the log tells one, they agree."""
    import json

    names = {"x86_64": "x86_64", "i386": "i386", "arm64": "arm64", "ppc64le": "ppc64", "s390x": "s390x",
             "riscv64": "riscv64"}
    told = 0
    for e in json.loads((CORPUS / "index.json").read_text()):
        want = names.get(str(e["arch"]).split()[0])
        for k in report_from_log(CORPUS / e["file"]).kills:
            got = log_of(k).platform.arch
            if got is not None and e["arch"] is not None:
                told += 1
                assert got == (want or str(e["arch"]).split()[0]), (e["file"], got)
    assert told >= 50


@pytest.mark.parametrize(("release", "regs", "limit_kb", "swap"), [
    ("5.4.0-80-generic", "RIP: 0033:0x7f3c2a400000", 9007199254740988, "unlimited"),  # LONG_MAX / 4096 pages
    ("5.4.0-80-generic", "RIP: 0033:0x7f3c2a400000", 9007199254740987, "limited"),
    ("5.7.0-rc2 ", "EIP: 0xb7e2091f", 8589934588, "unlimited"),  # 32-bit: LONG_MAX pages
    ("5.7.0-rc2 ", "EIP: 0xb7e2091f", 8589934587, "limited"),
])
def test_unlimited_memcg_swap_by_word_size(release: str, regs: str, limit_kb: int, swap: str) -> None:
    lines = ["a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             f"CPU: 1 PID: 7 Comm: a Not tainted {release}#1", regs,
             "memory: usage 1024kB, limit 1024kB, failcnt 3",
             f"swap: usage 0kB, limit {limit_kb}kB, failcnt 0",
             "Memory cgroup out of memory: Killed process 7 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB, "
             "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"]
    [k] = oom_report_from_parsed(parse_oom_lines(lines).reports).kills
    memcg = log_of(k).memcg
    assert memcg is not None and memcg.swap == swap
