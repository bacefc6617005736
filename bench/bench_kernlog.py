"""The ``read_kernel_log`` benchmark: ``memtrace report`` reading a big kernel log.

The input is a journal of 1,000,000 raw lines made with a fixed seed: unrelated kernel
and userland lines in the prefixes logs carry (dmesg ``[ts]``, syslog with and without
the kernel's timestamp, other programs' syslog lines, journalctl short-iso, ``dmesg -T``,
printk caller ids), with 100 OOM reports interleaved at even intervals: whole files of
the real corpus (``tests/data/oomlogs``), taken in turn, as pasted (wrapped, quoted,
prefixed every way the corpus is). ``lines_per_s`` is the median over ``runs`` of raw
lines read per second of wall time by :func:`memtrace.analysis.kernlog.parse_oom_log`
(prefixes stripped, wrapped lines rejoined, every report's facts read); ``reports`` the
reports it found, which must be the corpus index's count for the files interleaved;
``ns_per_line`` the inverse; ``report_s`` the wall time of the whole report (badness
recomputed, verdicts) on top, once.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_LINES = 1_000_000
BENCH_REPORTS = 100
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "oomlogs"

_KERNEL_MSGS = (
    "usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "EXT4-fs (sda{d}): mounted filesystem with ordered data mode. Quota mode: none.",
    'audit: type=1400 audit(1700000000.{n}:{m}): apparmor="STATUS" operation="profile_load" name="snap.{w}" pid={n}',
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth{d}: link becomes ready",
    "e1000e 0000:00:1f.6 eth{d}: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "nvme nvme0: I/O {n} QID {d} timeout, completion polled",
    "TCP: request_sock_TCP: Possible SYN flooding on port {n}. Sending cookies.",
    "perf: interrupt took too long ({n} > {m}), lowering kernel.perf_event_max_sample_rate to {m}",
    "br-{w}: port {d}(veth{w}) entered forwarding state",
    "device veth{w} entered promiscuous mode",
    "kauditd_printk_skb: {d} callbacks suppressed",
    "process '{w}' started with executable stack",
    "x86/PAT: {w}:{n} map pfn RAM range req write-combining for [mem 0x{m}-0x{n}], got write-back",
    "Memory cgroup stats are not printed here; this is an ordinary line mentioning memory {n}",
)
_USER_MSGS = (
    "systemd[1]: Started Session {n} of User root.",
    "CRON[{n}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "sshd[{n}]: Accepted publickey for deploy from 10.0.{d}.{d} port {m} ssh2: ED25519 SHA256:{w}",
    "dockerd[{n}]: time=\"2024-11-26T22:48:00.{m}Z\" level=info msg=\"ignoring event\" container={w}",
    "kubelet[{n}]: I1126 22:48:00.{m} {n} kubelet.go:{d}] \"SyncLoop (PLEG): event for pod\" pod=\"kube-system/{w}\"",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _fill(rng: random.Random, pattern: str) -> str:
    return pattern.format(n=rng.randrange(1, 99999), m=rng.randrange(1000, 999999), d=rng.randrange(10),
                          w=f"{rng.getrandbits(32):08x}")


def corpus_blocks(nr_reports: int = BENCH_REPORTS) -> tuple[list[list[str]], int]:
    """Corpus files taken in turn until they hold ``nr_reports`` OOM reports (the last
    may hold more): their raw lines, and how many reports the index says they hold."""
    index = {e["file"]: len(e["reports"]) for e in json.loads((CORPUS / "index.json").read_text())}
    files = sorted(CORPUS.glob("*.log"))
    blocks: list[list[str]] = []
    reports = 0
    i = 0
    while reports < nr_reports:
        path = files[i % len(files)]
        i += 1
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        blocks.append([ln + "\n" for ln in lines] + ["\n"])
        reports += index[path.name]
    return blocks, reports


def build_journal(nr_lines: int = BENCH_LINES, seed: int = 1) -> tuple[list[str], int]:
    """The benchmark's raw lines (with their newlines), and the OOM reports they hold."""
    rng = random.Random(seed)
    blocks, reports = corpus_blocks()
    n_filler = max(0, nr_lines - sum(len(b) for b in blocks))
    every = max(1, n_filler // (len(blocks) + 1))
    out: list[str] = []
    ts = 1000.0
    block_iter = iter(blocks)
    for i in range(n_filler):
        ts += rng.random() * 0.01
        r = rng.random()
        msg = _fill(rng, rng.choice(_KERNEL_MSGS))
        mon, day = _MONTHS[(i // 50000) % 12], 1 + (i // 2000) % 28
        clock = f"{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"
        if r < 0.40:
            line = f"[{ts:12.6f}] {msg}\n"
        elif r < 0.60:
            line = f"{mon} {day:2d} {clock} web-01 kernel: [{ts:12.6f}] {msg}\n"
        elif r < 0.70:
            line = f"{mon} {day:2d} {clock} web-01 kernel: {msg}\n"
        elif r < 0.88:
            line = f"{mon} {day:2d} {clock} web-01 {_fill(rng, rng.choice(_USER_MSGS))}\n"
        elif r < 0.94:
            line = f"2024-11-{day:02d}T{clock}+0100 web-01 kernel: {msg}\n"
        elif r < 0.97:
            line = f"[Tue Nov {day:2d} {clock} 2024] {msg}\n"
        else:
            line = f"[{ts:12.6f}][ T{rng.randrange(1, 99999)}] {msg}\n"
        out.append(line)
        if (i + 1) % every == 0:
            block = next(block_iter, None)
            if block is not None:
                out.extend(block)
    for block in block_iter:
        out.extend(block)
    return out, reports


def read_kernel_log(runs: int) -> dict[str, Any]:
    from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_log

    journal, expected = build_journal()
    times: list[float] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.log"
        path.write_text("".join(journal), encoding="utf-8")
        log = parse_oom_log(path)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            log = parse_oom_log(path)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        oom_report_from_parsed(log.reports)
        report_s = time.perf_counter() - start
    if log.lines != len(journal):
        problems.append(f"read {log.lines} lines, wrote {len(journal)}")
    if len(log.reports) != expected:
        problems.append(f"found {len(log.reports)} OOM reports, the corpus index holds {expected}")
    median = statistics.median(times)
    return {
        "lines": len(journal),
        "lines_per_s": round(len(journal) / median),
        "ns_per_line": round(median * 1e9 / len(journal)),
        "reports": len(log.reports),
        "seconds": round(median, 4),
        "report_s": round(report_s, 4),
        "runs": runs,
        "runs_s": [round(t, 4) for t in times],
        "problems": problems,
    }
