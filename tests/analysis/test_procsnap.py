"""Live /proc snapshots: read on this machine, and from a /proc tree written here.

Ground truth: /proc/meminfo itself (the parts of each kind must add up to its
totals, the RAM kinds to MemTotal) and, for the written tree, numbers chosen here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from memtrace.analysis.explain import RAM_KINDS, kind_totals
from memtrace.analysis.procsnap import (
    explain_snapshot,
    explain_snapshot_data,
    load_snapshot,
    take_snapshot,
    write_snapshot,
)
from memtrace.errors import NotFoundError, ParseError

KiB = 1024
MiB = 1 << 20


def test_this_machine(tmp_path: Path) -> None:
    snap = take_snapshot()
    mi = snap["meminfo"]
    assert mi["MemTotal"] > 0 and mi["MemTotal"] % KiB == 0
    me = next(p for p in snap["processes"] if p["pid"] == os.getpid())
    assert me["status"]["VmRSS"] > 0 and me["kthread"] is False
    assert me["smaps_rollup"]["Rss"] > 0 and "Pss_Anon" in me["smaps_rollup"]
    assert "oom_score_adj" in me and me["memcg"] is not None
    assert snap["cgroups"]["v1"] or snap["cgroups"]["v2"]
    path = tmp_path / "now.json.gz"
    write_snapshot(snap, path)
    assert load_snapshot(path)["meminfo"] == mi
    res = explain_snapshot(path)
    assert res.source == "snapshot" and not res.mismatches()
    sums = res.sums()
    assert sum(sums[k] for k in RAM_KINDS) == res.meminfo["MemTotal"]
    assert all(p.bytes > 0 for p in res.parts)
    mine = [p for p in res.parts if p.owner.pid == os.getpid()]
    assert {p.kind for p in mine} >= {"anon", "file"}
    view = explain_snapshot(path, pid=os.getpid())
    assert view.scope == "process" and not view.mismatches()
    assert view.totals["anon"] == me["status"]["RssAnon"]


def _fake_proc(root: Path, cg: Path) -> None:
    """A /proc tree: 1 GiB of RAM, two processes, a kernel thread, one v1 memcg."""
    kb = {
        "MemTotal": 1048576, "MemFree": 524288, "MemAvailable": 700000, "Buffers": 4096, "Cached": 204800,
        "SwapCached": 0, "SwapTotal": 102400, "SwapFree": 92160, "Dirty": 2048, "Writeback": 0,
        "AnonPages": 204800, "Mapped": 51200, "Shmem": 20480, "KReclaimable": 30720, "Slab": 40960,
        "SReclaimable": 30720, "SUnreclaim": 10240, "KernelStack": 2048, "PageTables": 4096, "Percpu": 1024,
    }
    root.mkdir()
    (root / "meminfo").write_text("".join(f"{k}: {v:>12} kB\n" for k, v in kb.items()))
    (root / "uptime").write_text("1234.50 100.00\n")
    (root / "sysvipc").mkdir()
    (root / "sysvipc" / "shm").write_text(
        "       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime"
        "      ctime        rss       swap\n"
        "      1234          7   600    8388608   10    10      0     0     0     0     0          0          0"
        "          0    4194304          0\n")
    (root / "mounts").write_text(f"cgroup {cg} cgroup rw,relatime,memory 0 0\n")
    procs = {
        10: ("db", {"VmRSS": 163840, "RssAnon": 122880, "RssFile": 30720, "RssShmem": 10240, "VmSwap": 8192,
                    "VmPTE": 512}, {"Rss": 163840, "Pss": 150000, "Pss_Anon": 122880, "Pss_File": 20480,
                                    "Pss_Shmem": 8192, "Swap": 8192}, 0, "/app"),
        11: ("web", {"VmRSS": 71680, "RssAnon": 61440, "RssFile": 10240, "RssShmem": 0, "VmSwap": 0,
                     "VmPTE": 256}, {"Rss": 71680, "Pss": 60000, "Pss_Anon": 61440, "Pss_File": 5120,
                                     "Pss_Shmem": 0, "Swap": 0}, 300, "/app"),
        2: ("kthreadd", {}, None, 0, "/"),
    }
    for pid, (comm, status, rollup, adj, memcg) in procs.items():
        d = root / str(pid)
        d.mkdir()
        lines = [f"Name:\t{comm}", "Umask:\t0022", "State:\tS (sleeping)", f"Tgid:\t{pid}", "PPid:\t1",
                 "Uid:\t0\t0\t0\t0"] + [f"{k}:\t{v:>8} kB" for k, v in status.items()] + ["Threads:\t1"]
        (d / "status").write_text("\n".join(lines) + "\n")
        flags = 0x00200040 if not status else 0x00400100
        (d / "stat").write_text(f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 {flags} 0 0 0 0\n")
        if rollup is not None:
            (d / "smaps_rollup").write_text("55a0dfb96000-7ffddcc03000 ---p 00000000 00:00 0   [rollup]\n" + "".join(
                f"{k}: {v:>14} kB\n" for k, v in rollup.items()))
        (d / "oom_score_adj").write_text(f"{adj}\n")
        (d / "cgroup").write_text(f"9:memory:{memcg}\n0::/\n")
        (d / "cmdline").write_bytes(comm.encode() + b"\x00--serve\x00")
    cg.mkdir()
    (cg / "memory.usage_in_bytes").write_text(str(300 * MiB))
    (cg / "memory.limit_in_bytes").write_text(str(9223372036854771712))
    (cg / "memory.stat").write_text("cache 1024\nrss 2048\n")
    (cg / "cgroup.procs").write_text("1\n")
    app = cg / "app"
    app.mkdir()
    (app / "memory.usage_in_bytes").write_text(str(230 * MiB))
    (app / "memory.limit_in_bytes").write_text(str(256 * MiB))
    (app / "memory.memsw.limit_in_bytes").write_text(str(256 * MiB))
    (app / "memory.stat").write_text(f"cache {30 * MiB}\nrss {180 * MiB}\nshmem {10 * MiB}\n")
    (app / "cgroup.procs").write_text("10\n11\n")


def test_written_proc_tree(tmp_path: Path) -> None:
    """Every kind broken down: anon 200 MiB = db 120 + web 60 + 20 unaccounted; file
    (4 + 200 - 20 = 184 MiB) = mapped 20 + 5, buffers 4, dirty 2, the rest unmapped;
    shmem 20 MiB = db 8 + the SysV segment nobody attached 4 + 8 on tmpfs; swap 10
    MiB = db 8 + 2 shmem; kernel = slab 30 + 10, page tables 4, stacks 2, percpu 1,
    and the rest."""
    _fake_proc(tmp_path / "proc", tmp_path / "memory")
    snap = take_snapshot(str(tmp_path / "proc"))
    assert [p["pid"] for p in snap["processes"]] == [2, 10, 11]
    assert snap["processes"][0]["kthread"] is True and snap["processes"][1]["kthread"] is False
    assert snap["processes"][2]["oom_score_adj"] == 300 and snap["processes"][2]["memcg"] == "/app"
    assert snap["processes"][1]["cmdline"] == "db --serve"
    app = snap["cgroups"]["v1"]["/app"]
    assert app["memory.limit_in_bytes"] == 256 * MiB and app["procs"] == [10, 11]
    assert app["memory.stat"]["rss"] == 180 * MiB
    assert snap["taken"]["uptime_s"] == 1234.5
    res = explain_snapshot_data(snap, "fake")
    assert not res.mismatches() and not res.warnings
    parts = {(p.kind, p.owner.name): p.bytes for p in res.parts}
    assert parts[("anon", "db (10)")] == 120 * MiB and parts[("anon", "web (11)")] == 60 * MiB
    assert parts[("anon", "not accounted to a process")] == 20 * MiB
    assert parts[("file", "db (10)")] == 20 * MiB and parts[("file", "web (11)")] == 5 * MiB
    assert parts[("file", "block device buffers")] == 4 * MiB
    assert parts[("file", "dirty page cache")] == 2 * MiB
    assert parts[("file", "unmapped page cache")] == (4 + 200 - 20 - 25 - 4 - 2) * MiB
    assert parts[("shmem", "db (10)")] == 8 * MiB
    assert parts[("shmem", "SysV segment 7 (key 0x4d2)")] == 4 * MiB
    assert parts[("shmem", "tmpfs and shm files no process maps")] == 8 * MiB
    assert parts[("swap", "db (10)")] == 8 * MiB and parts[("swap", "swapped shmem and tmpfs")] == 2 * MiB
    assert parts[("kernel", "reclaimable slab (dentries, inodes)")] == 30 * MiB
    totals = kind_totals(res.meminfo)
    assert sum(res.sums()[k] for k in RAM_KINDS) == res.meminfo["MemTotal"] == 1024 * MiB
    assert res.totals == totals
    assert parts[("free", "free memory")] == 512 * MiB
    db = next(p for p in res.parts if p.owner.name == "db (10)" and p.kind == "anon")
    assert db.owner.cgroup == "/app" and db.mapped_by == (10,) and "exit" in db.freed_by
    view = explain_snapshot_data(snap, "fake", pid=11)
    assert view.totals == {"anon": 60 * MiB, "file": 10 * MiB, "shmem": 0, "swap": 0, "kernel": 256 * KiB,
                           "free": 0}
    with pytest.raises(NotFoundError, match="fake: no process 99 in the snapshot"):
        explain_snapshot_data(snap, "fake", pid=99)


def test_racy_numbers_are_scaled_not_invented(tmp_path: Path) -> None:
    """Per-process PSS read after meminfo can add up to more than AnonPages: the
    parts are scaled down to the total, with a warning."""
    _fake_proc(tmp_path / "proc", tmp_path / "memory")
    snap = take_snapshot(str(tmp_path / "proc"))
    snap["meminfo"]["AnonPages"] = 90 * MiB
    snap["meminfo"]["MemFree"] += 110 * MiB
    res = explain_snapshot_data(snap, "racy")
    anon = res.parts_of("anon")
    assert sum(p.bytes for p in anon) == 90 * MiB and not res.mismatches()
    assert [p.owner.name for p in anon] == ["db (10)", "web (11)"]
    assert any("scaled down" in w for w in res.warnings)


def test_not_a_snapshot(tmp_path: Path) -> None:
    for name, data in (("x.json", b"{\"format\": \"other\"}"), ("y.json", b"\x89PNG\r\n"), ("z.json.gz", b"\x1f\x8b!")):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ParseError, match="not a memtrace trace nor a snapshot"):
            load_snapshot(p)
    with pytest.raises(ParseError, match="cannot read snapshot"):
        load_snapshot(tmp_path / "missing.json")
    newer = tmp_path / "new.json"
    newer.write_text('{"format": "memtrace-snapshot", "version": 99, "meminfo": {"MemTotal": 1}}')
    with pytest.raises(ParseError, match="newer"):
        load_snapshot(newer)


@pytest.mark.parametrize("key, value, message", [
    ("processes", None, "snapshot key 'processes' is a NoneType, not a list"),
    ("taken", "now", "snapshot key 'taken' is a str, not a dict"),
    ("tmpfs", {}, "snapshot key 'tmpfs' is a dict, not a list"),
    ("version", "2", "snapshot version '2' is not a number"),
    ("processes", [{"comm": "x"}], "processes[0] is not a process with a pid"),
    ("processes", [{"pid": 7, "status": [1]}], "processes[0] (pid 7): 'status' is not a table"),
])
def test_a_snapshot_with_wrong_types_is_one_error(tmp_path: Path, key: str, value: object, message: str) -> None:
    """A snapshot file edited by hand, or written by something else: ParseError
    naming the key, never a TypeError deep inside explain."""
    snap = take_snapshot()
    snap[key] = value
    path = tmp_path / "bad.json"
    write_snapshot(snap, path)
    with pytest.raises(ParseError, match=re.escape(message)):
        load_snapshot(path)
