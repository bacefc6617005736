"""Live /proc snapshots: this machine's memory read now, written to a file, explained.

:func:`take_snapshot` reads what the kernel publishes about memory, as root sees it:

- ``/proc/meminfo`` (every line, in bytes);
- for every process: ``/proc/PID/status`` (the VmRSS/RssAnon/RssFile/RssShmem/VmSwap/
  VmPTE counters, uid, threads, NSpid, CapEff), ``/proc/PID/smaps_rollup`` (Rss, Pss and its
  anon/file/shmem split, Swap, Locked: 4.14+), ``oom_score_adj``, ``oom_score``,
  its memory cgroup (``/proc/PID/cgroup``) and whether it is a kernel thread;
- every memory cgroup of the v1 ``memory`` hierarchy (``memory.usage_in_bytes``,
  ``limit_in_bytes``, ``memsw.*``, ``memory.stat``) and of the v2 hierarchy
  (``memory.current``, ``memory.max``, ``memory.swap.*``, ``memory.stat``) where
  the memory controller is enabled;
- SysV shared memory segments (``/proc/sysvipc/shm``) and the tmpfs mounts' usage.

:func:`write_snapshot` stores it as JSON (gzip when the name ends in ``.gz``);
:func:`explain_snapshot` breaks it down with :mod:`.explain`'s objects, as for a
trace: parts by kind, owner and reason that sum exactly to the meminfo totals
(:func:`~.explain.kind_totals`; the RAM kinds to MemTotal).

What a snapshot cannot tell, and how explain handles it (``unknown`` in the result):
processes are read one after another while the machine runs, so per-process numbers
and meminfo are not one instant; PSS splits shared pages between their mappers
(``Pss_Anon`` sums to about AnonPages); page cache no process maps is not broken
down by file (the kernel publishes no per-file page-cache table); what no process
accounts for is shown as a remainder with its reason, never spread over owners. If
per-process numbers add up to more than a total (a race), they are scaled down to
it, and a warning says so.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from memtrace.errors import NotFoundError, ParseError
from memtrace.safewrite import write_file

from .explain import ExplainResult, Owner, Part, free_dict, kind_totals

__all__ = ["SNAPSHOT_FORMAT", "explain_snapshot", "load_snapshot", "take_snapshot", "write_snapshot"]

SNAPSHOT_FORMAT = "memtrace-snapshot"
SNAPSHOT_VERSION = 1
KiB = 1024
PF_KTHREAD = 0x00200000
PROC_PID_INIT_INO = 0xEFFFFFFC

#: /proc/PID/status lines kept, each in bytes (they print kB).
STATUS_KB = ("VmPeak", "VmSize", "VmLck", "VmPin", "VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem",
             "VmData", "VmStk", "VmExe", "VmLib", "VmPTE", "VmSwap", "HugetlbPages")


# --------------------------------------------------------------------------- reading


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _kb_table(text: str) -> dict[str, int]:
    """``Name:   123 kB`` lines as bytes (lines without kB are taken as they are)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        out[key.strip()] = value * KiB if len(parts) > 1 and parts[1] == "kB" else value
    return out


def read_meminfo(root: str = "/proc") -> dict[str, int]:
    """/proc/meminfo in bytes (HugePages_* counts stay counts)."""
    text = _read(f"{root}/meminfo")
    if text is None:
        raise ParseError(f"cannot read {root}/meminfo: is this Linux?")
    return _kb_table(text)


def _process(root: str, pid: int) -> dict[str, Any] | None:
    status_text = _read(f"{root}/{pid}/status")
    if status_text is None:
        return None  # gone
    status: dict[str, Any] = {}
    info: dict[str, Any] = {"pid": pid}
    for line in status_text.splitlines():
        key, _, rest = line.partition(":")
        rest = rest.strip()
        if key == "Name":
            info["comm"] = rest
        elif key == "PPid":
            info["ppid"] = int(rest or 0)
        elif key == "Tgid":
            info["tgid"] = int(rest or 0)
        elif key == "Uid":
            info["uid"] = int(rest.split()[0]) if rest else 0
        elif key == "Threads":
            info["threads"] = int(rest or 0)
        elif key == "NSpid":
            info["nspid"] = [int(x) for x in rest.split() if x.isdigit()]
        elif key == "CapEff":
            with contextlib.suppress(ValueError):
                info["cap_eff"] = int(rest, 16)
        elif key in STATUS_KB:
            with contextlib.suppress(ValueError, IndexError):
                status[key] = int(rest.split()[0]) * KiB
    info["status"] = status
    stat = _read(f"{root}/{pid}/stat")
    if stat is not None and ")" in stat:
        fields = stat.rsplit(")", 1)[1].split()
        try:
            info["kthread"] = bool(int(fields[6]) & PF_KTHREAD)  # field 9: flags
        except (ValueError, IndexError):
            info["kthread"] = "VmRSS" not in status
    else:
        info["kthread"] = "VmRSS" not in status
    rollup = _read(f"{root}/{pid}/smaps_rollup")
    if rollup is not None:
        table = _kb_table(rollup.split("\n", 1)[1] if "\n" in rollup else "")
        info["smaps_rollup"] = table
    for name in ("oom_score_adj", "oom_score"):
        text = _read(f"{root}/{pid}/{name}")
        if text is not None and text.strip().lstrip("-").isdigit():
            info[name] = int(text)
    cg = _read(f"{root}/{pid}/cgroup")
    if cg is not None:
        v1 = v2 = None
        for line in cg.splitlines():
            hid, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hid == "0" and controllers == "":
                v2 = path
            elif "memory" in controllers.split(","):
                v1 = path
        info["memcg"] = v1 if v1 is not None else v2
        info["memcg_version"] = 1 if v1 is not None else (2 if v2 is not None else None)
    cmdline = _read(f"{root}/{pid}/cmdline")
    if cmdline:
        info["cmdline"] = cmdline.replace("\x00", " ").strip()[:200]
    return info


def _mounts(root: str) -> list[tuple[str, str, str, str]]:
    text = _read(f"{root}/mounts") or ""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.append((parts[0], parts[1], parts[2], parts[3]))
    return out


def _cgroup_dirs(base: str, limit: int = 4000) -> Iterable[tuple[str, str]]:
    """(cgroup path, directory) of every cgroup under a hierarchy's mount point."""
    for count, (dirpath, dirnames, _) in enumerate(os.walk(base), start=1):
        dirnames.sort()
        rel = "/" + os.path.relpath(dirpath, base) if dirpath != base else "/"
        yield rel.replace("/./", "/").rstrip("/") or "/", dirpath
        if count >= limit:
            return


def _stat_file(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


def _int_file(path: str) -> int | str | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return "max"
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def read_cgroups(proc_root: str = "/proc") -> dict[str, dict[str, dict[str, Any]]]:
    """Every memory cgroup, v1 and v2: ``{"v1": {path: {...}}, "v2": {path: {...}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {"v1": {}, "v2": {}}
    for _, mountpoint, fstype, options in _mounts(proc_root):
        if fstype == "cgroup" and "memory" in options.split(","):
            for path, d in _cgroup_dirs(mountpoint):
                entry: dict[str, Any] = {}
                for name in ("memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes",
                             "memory.failcnt", "memory.memsw.usage_in_bytes", "memory.memsw.limit_in_bytes",
                             "memory.kmem.usage_in_bytes", "memory.swappiness", "memory.oom_control"):
                    if name == "memory.oom_control":
                        table = _stat_file(f"{d}/{name}")
                        if table:
                            entry[name] = table
                        continue
                    v = _int_file(f"{d}/{name}")
                    if v is not None:
                        entry[name] = v
                stat = _stat_file(f"{d}/memory.stat")
                if stat:
                    entry["memory.stat"] = stat
                procs = _read(f"{d}/cgroup.procs")
                if procs is not None:
                    entry["procs"] = [int(x) for x in procs.split() if x.isdigit()]
                if entry:
                    out["v1"][path] = entry
        elif fstype == "cgroup2":
            for path, d in _cgroup_dirs(mountpoint):
                if not os.path.exists(f"{d}/memory.current") and path != "/":
                    continue
                entry = {}
                for name in ("memory.current", "memory.max", "memory.high", "memory.low", "memory.min",
                             "memory.peak", "memory.swap.current", "memory.swap.max"):
                    v = _int_file(f"{d}/{name}")
                    if v is not None:
                        entry[name] = v
                for name in ("memory.stat", "memory.events"):
                    table = _stat_file(f"{d}/{name}")
                    if table:
                        entry[name] = table
                procs = _read(f"{d}/cgroup.procs")
                if procs is not None:
                    entry["procs"] = [int(x) for x in procs.split() if x.isdigit()]
                if entry:
                    out["v2"][path] = entry
    return out


def _sysv_shm(root: str) -> list[dict[str, int]]:
    text = _read(f"{root}/sysvipc/shm")
    if not text:
        return []
    lines = text.splitlines()
    header = lines[0].split()
    out = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != len(header):
            continue
        try:
            row = {k: int(v) for k, v in zip(header, parts) if k in ("key", "shmid", "size", "cpid", "nattch",
                                                                   "uid", "rss", "swap")}
        except ValueError:
            continue
        out.append(row)
    return out


def _tmpfs(root: str) -> list[dict[str, Any]]:
    out = []
    seen: set[str] = set()
    for _source, mountpoint, fstype, options in _mounts(root):
        if fstype != "tmpfs" or "ro" in options.split(",") or mountpoint in seen:
            continue
        seen.add(mountpoint)
        try:
            st = os.statvfs(mountpoint)
        except OSError:
            continue
        out.append({"mountpoint": mountpoint, "size_bytes": st.f_blocks * st.f_frsize,
                    "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize})
    return out


def take_snapshot(proc_root: str = "/proc") -> dict[str, Any]:
    """Read this machine's memory now (see the module docstring) as plain data."""
    started = time.monotonic()
    meminfo = read_meminfo(proc_root)
    processes: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        pids = sorted(int(n) for n in os.listdir(proc_root) if n.isdigit())
    except OSError as e:
        raise ParseError(f"cannot list {proc_root}: {e.strerror or e}") from None
    for pid in pids:
        try:
            info = _process(proc_root, pid)
        except (ValueError, IndexError) as e:  # a half-written file: keep going
            errors.append(f"pid {pid}: {e}")
            continue
        if info is not None:
            processes.append(info)
    uptime = _read(f"{proc_root}/uptime")
    try:
        pid_ns: str | None = os.readlink(f"{proc_root}/1/ns/pid")
    except OSError:
        pid_ns = None
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "taken": {
            "wall_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "uptime_s": float(uptime.split()[0]) if uptime else None,
            "hostname": platform.node(),
            "kernel_release": platform.release(),
            "read_seconds": round(time.monotonic() - started, 3),
            # pid 1 is the global init only in the initial pid namespace, whose
            # nsfs inode is PROC_PID_INIT_INO (include/linux/proc_ns.h).
            "initial_pid_ns": pid_ns == f"pid:[{PROC_PID_INIT_INO}]" if pid_ns is not None else None,
        },
        "meminfo": meminfo,
        "processes": processes,
        "cgroups": read_cgroups(proc_root),
        "sysv_shm": _sysv_shm(proc_root),
        "tmpfs": _tmpfs(proc_root),
        "errors": errors,
    }


def write_snapshot(snapshot: Mapping[str, Any], path: str | os.PathLike[str]) -> int:
    """Write ``snapshot`` as JSON (gzip if the name ends in .gz); returns the bytes written."""
    data = json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()
    p = Path(path)
    if p.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    write_file(p, data)
    return len(data)


#: The type of each top-level key of a snapshot file.
_SNAPSHOT_TYPES: dict[str, type] = {"taken": dict, "processes": list, "cgroups": dict, "sysv_shm": list,
                                    "tmpfs": list, "errors": list}


def load_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A snapshot written by :func:`write_snapshot`; ParseError naming the file
    when it is not one."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ParseError(f"cannot read snapshot {p}: {e.strerror or e}") from None
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, ValueError, UnicodeDecodeError):
        raise ParseError(f"{p}: not a memtrace trace nor a snapshot from 'memtrace snapshot'") from None
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise ParseError(f"{p}: not a memtrace trace nor a snapshot from 'memtrace snapshot'")
    if not isinstance(data.get("meminfo"), dict) or "MemTotal" not in data["meminfo"]:
        raise ParseError(f"{p}: the snapshot has no /proc/meminfo")
    for key, kind in _SNAPSHOT_TYPES.items():
        if key in data and not isinstance(data[key], kind):
            raise ParseError(f"{p}: snapshot key {key!r} is a {type(data[key]).__name__}, not a "
                             f"{kind.__name__}")
    bad = next((k for k, v in data["meminfo"].items() if not isinstance(v, int) or isinstance(v, bool)), None)
    if bad is not None:
        raise ParseError(f"{p}: meminfo {bad!r} is not a byte count: {data['meminfo'][bad]!r}")
    for i, proc in enumerate(data.get("processes", [])):
        if not isinstance(proc, dict) or not isinstance(proc.get("pid"), int):
            raise ParseError(f"{p}: processes[{i}] is not a process with a pid")
        for key in ("status", "smaps_rollup"):
            if key in proc and not isinstance(proc[key], dict):
                raise ParseError(f"{p}: processes[{i}] (pid {proc['pid']}): {key!r} is not a table")
    if not isinstance(data.get("version", 0), int):
        raise ParseError(f"{p}: snapshot version {data.get('version')!r} is not a number")
    if int(data.get("version", 0)) > SNAPSHOT_VERSION:
        raise ParseError(f"{p}: snapshot version {data.get('version')} is newer than this memtrace reads "
                         f"({SNAPSHOT_VERSION})")
    return data


# --------------------------------------------------------------------------- explain


def _owner(proc: Mapping[str, Any]) -> Owner:
    comm = str(proc.get("comm", "?"))
    pid = int(proc["pid"])
    return Owner("process", f"{comm} ({pid})", pid=pid, comm=comm,
                 cgroup=proc.get("memcg") if isinstance(proc.get("memcg"), str) else None)


def _fit(items: list[tuple[Any, int]], total: int) -> tuple[list[tuple[Any, int]], bool]:
    """Non-negative shares that add up to at most ``total``: as they are if they
    fit, else scaled down (largest remainder, exact integers). True if scaled."""
    items = [(k, max(0, int(v))) for k, v in items if int(v) > 0]
    s = sum(v for _, v in items)
    if s <= total or s == 0:
        return items, False
    total = max(0, total)
    shares = [(k, v * total // s, v * total % s) for k, v in items]
    left = total - sum(q for _, q, _ in shares)
    order = sorted(range(len(shares)), key=lambda i: -shares[i][2])
    out = [[k, q] for k, q, _ in shares]
    for i in order[:left]:
        out[i][1] += 1
    return [(k, q) for k, q in out if q > 0], True


def _g(d: Mapping[str, Any] | None, key: str) -> int:
    if not d:
        return 0
    v = d.get(key, 0)
    return int(v) if isinstance(v, (int, float)) else 0


def explain_snapshot(path: str | os.PathLike[str], pid: int | None = None) -> ExplainResult:
    """Explain a snapshot file like a trace's moment: every meminfo kind broken down
    by owner, each part with its reason and what would free it. With ``pid``, that
    process's view (its RSS counters from /proc/PID/status); NotFoundError naming the
    file when the snapshot has no such process."""
    snap = load_snapshot(path)
    return explain_snapshot_data(snap, str(path), pid=pid)


def explain_snapshot_data(snap: Mapping[str, Any], name: str = "snapshot", pid: int | None = None) -> ExplainResult:
    """:func:`explain_snapshot` of an already loaded snapshot, called ``name``.
    NotFoundError when ``pid`` is not a process of the snapshot."""
    mi = {k: int(v) for k, v in snap["meminfo"].items() if isinstance(v, (int, float))}
    procs = [p for p in snap.get("processes", []) if isinstance(p, dict) and "pid" in p]
    taken = snap.get("taken", {}) or {}
    at = f"{name} ({taken.get('wall_time', '?')})"
    uptime = taken.get("uptime_s")
    ts_ns = int(uptime * 1e9) if isinstance(uptime, (int, float)) else None
    unknown = (
        "per-page state: a snapshot has counters, not pages",
        "which files unmapped page cache belongs to (the kernel publishes no per-file table)",
        "processes were read one after another, not at one instant",
    )
    if pid is not None:
        return _process_view(snap, mi, procs, pid, at, ts_ns, unknown, name)
    totals = kind_totals(mi)
    parts: list[Part] = []
    warnings: list[str] = list(snap.get("errors", []))[:20]
    users = [p for p in procs if not p.get("kthread")]

    def add(kind: str, shares: list[tuple[Any, int]], reason: str, freed_by: tuple[str, ...],
            detail: str = "") -> int:
        """Parts of ``kind`` for per-owner shares; returns the bytes they add up to."""
        fitted, scaled = _fit(shares, totals[kind] - sum(p.bytes for p in parts if p.kind == kind))
        if scaled:
            warnings.append(f"{kind}: per-process numbers add up to more than meminfo's total (they were read "
                            "at different moments): scaled down to it")
        for owner, nbytes in sorted(fitted, key=lambda kv: -kv[1]):
            parts.append(Part(kind, nbytes, owner if isinstance(owner, Owner) else _owner(owner), reason, freed_by,
                              detail, mapped_by=(owner["pid"],) if isinstance(owner, dict) else ()))
        return sum(v for _, v in fitted)

    def rest(kind: str, owner: Owner, reason: str, freed_by: tuple[str, ...], detail: str = "",
             cap: int | None = None) -> None:
        left = totals[kind] - sum(p.bytes for p in parts if p.kind == kind)
        if cap is not None:
            left = min(left, cap)
        if left > 0:
            parts.append(Part(kind, left, owner, reason, freed_by, detail))

    # anon: AnonPages by process (PSS: a page shared copy-on-write after fork is
    # split between its mappers).
    add("anon", [(p, _g(p.get("smaps_rollup"), "Pss_Anon") or _g(p.get("status"), "RssAnon")) for p in users],
        "anonymous memory the process mapped and wrote (heap, stacks, private mappings)", ("swap-out", "exit"),
        "PSS: pages shared copy-on-write are split between the processes sharing them")
    rest("anon", Owner("none", "not accounted to a process"),
         "anonymous pages no process's counters show: processes that came or went while the snapshot was read, "
         "PSS rounding", ("exit",))
    # file: page cache that is not shmem.
    add("file", [(p, _g(p.get("smaps_rollup"), "Pss_File")) for p in users],
        "page cache of files the process maps (code, libraries, mapped data)", ("reclaim", "munmap", "exit"),
        "PSS: pages several processes map are split between them")
    dirty = _g(mi, "Dirty") + _g(mi, "Writeback")
    buffers = _g(mi, "Buffers")
    rest("file", Owner("kernel", "block device buffers"), "page cache of block devices (filesystem metadata)",
         ("drop_caches", "reclaim"), cap=buffers)
    rest("file", Owner("none", "dirty page cache"), "file data written and not yet on disk",
         ("sync", "drop_caches", "reclaim"), "dirty or under writeback: written back before it can be freed",
         cap=dirty)
    rest("file", Owner("none", "unmapped page cache"),
         "file data read or written earlier and kept cached; no process maps it", ("drop_caches", "reclaim"),
         "clean: drop_caches or reclaim frees it at once")
    # shmem: mapped by processes, SysV segments nobody attached, tmpfs files.
    add("shmem", [(p, _g(p.get("smaps_rollup"), "Pss_Shmem") or _g(p.get("status"), "RssShmem")) for p in users],
        "shared memory the process maps (shared anonymous, tmpfs or /dev/shm files, SysV segments)",
        ("swap-out", "munmap", "unlink"), "PSS: split between the processes mapping it")
    orphan_sysv = [(Owner("shmem", f"SysV segment {s['shmid']} (key {s['key']:#x})", ino=s.get("shmid")),
                    s.get("rss", 0)) for s in snap.get("sysv_shm", []) if s.get("nattch", 1) == 0 and s.get("rss")]
    add("shmem", orphan_sysv, "a SysV shared memory segment no process has attached", ("ipc_rmid", "swap-out"))
    tmpfs = [t for t in snap.get("tmpfs", []) if t.get("used_bytes")]
    detail = ", ".join(f"{t['mountpoint']} {t['used_bytes'] // KiB} kB used" for t in tmpfs[:6])
    rest("shmem", Owner("none", "tmpfs and shm files no process maps"),
         "files on tmpfs (/dev/shm, /run, ...) and shared memory no process maps: memory that outlives its "
         "creators until unlinked", ("unlink", "swap-out"), detail)
    # swap: by process (VmSwap), the rest is shmem/tmpfs swapped out.
    add("swap", [(p, _g(p.get("status"), "VmSwap")) for p in users],
        "the process's anonymous pages written to swap", ("exit", "munmap"))
    rest("swap", Owner("none", "swapped shmem and tmpfs"), "shmem or tmpfs pages written to swap", ("unlink",))
    # kernel: slab, stacks, page tables, the rest.
    for owner, nbytes, reason, freed in (
        (Owner("kernel", "reclaimable slab (dentries, inodes)"), _g(mi, "SReclaimable"),
         "kernel caches of directory entries and inodes", ("drop_caches", "reclaim")),
        (Owner("kernel", "unreclaimable slab"), _g(mi, "SUnreclaim"), "kernel objects in use", ("nothing",)),
        (Owner("kernel", "page tables"), _g(mi, "PageTables") + _g(mi, "SecPageTables"),
         "page tables mapping the processes' memory", ("exit", "munmap")),
        (Owner("kernel", "kernel stacks"), _g(mi, "KernelStack"), "one stack per thread", ("exit",)),
        (Owner("kernel", "per-CPU allocations"), _g(mi, "Percpu"), "per-CPU kernel data", ("nothing",)),
        (Owner("kernel", "swap cache"), _g(mi, "SwapCached"), "pages in swap and still in memory",
         ("reclaim",)),
    ):
        add("kernel", [(owner, nbytes)], reason, freed)
    hugetlb = _g(mi, "Hugetlb") or _g(mi, "HugePages_Total") * _g(mi, "Hugepagesize")
    add("kernel", [(Owner("kernel", "hugetlb pool"), hugetlb)], "huge pages reserved for hugetlbfs",
        ("nothing",))
    rest("kernel", Owner("kernel", "other kernel memory"),
         "vmalloc, drivers, network buffers and what meminfo does not break down", ("nothing",))
    rest("free", Owner("none", "free memory"), "not in use", ())
    result = ExplainResult(at=at, ts_ns=ts_ns, meminfo=mi, free=free_dict(mi), parts=tuple(parts), totals=totals,
                           source="snapshot", scope="system", unknown=unknown,
                           warnings=tuple(dict.fromkeys(warnings)))
    if result.mismatches():  # negative totals (a racy read): report, never hide
        result = replace(result, warnings=result.warnings + tuple(result.mismatches()))
    return result


def _process_view(snap: Mapping[str, Any], mi: dict[str, int], procs: list[dict[str, Any]], pid: int, at: str,
                  ts_ns: int | None, unknown: tuple[str, ...], name: str) -> ExplainResult:
    proc = next((p for p in procs if int(p["pid"]) == pid), None)
    if proc is None:
        raise NotFoundError(f"{name}: no process {pid} in the snapshot")
    st = proc.get("status", {}) or {}
    owner = _owner(proc)
    totals = {"anon": _g(st, "RssAnon"), "file": _g(st, "RssFile"), "shmem": _g(st, "RssShmem"),
              "swap": _g(st, "VmSwap"), "kernel": _g(st, "VmPTE"), "free": 0}
    parts = []
    for kind, reason, freed in (
        ("anon", "anonymous memory it wrote (heap, stacks, private mappings)", ("swap-out", "exit")),
        ("file", "page cache of files it maps", ("reclaim", "munmap", "exit")),
        ("shmem", "shared memory it maps", ("swap-out", "munmap", "unlink")),
        ("swap", "its anonymous pages in swap", ("exit",)),
        ("kernel", "its page tables", ("exit",)),
    ):
        if totals[kind] > 0:
            parts.append(Part(kind, totals[kind], owner, reason, freed, mapped_by=(pid,)))
    return ExplainResult(at=at, ts_ns=ts_ns, meminfo=mi, free=free_dict(mi), parts=tuple(parts), totals=totals,
                         source="snapshot", scope="process", pid=pid, unknown=unknown)


def summary(snap: Mapping[str, Any], top: int = 10) -> dict[str, Any]:
    """What ``memtrace snapshot`` prints: free(1), the largest processes and cgroups."""
    mi = {k: int(v) for k, v in snap["meminfo"].items() if isinstance(v, (int, float))}
    procs = [p for p in snap.get("processes", []) if not p.get("kthread")]
    procs.sort(key=lambda p: -_g(p.get("status"), "VmRSS"))
    cgroups = []
    for version, table in (snap.get("cgroups") or {}).items():
        for path, entry in table.items():
            usage = entry.get("memory.usage_in_bytes", entry.get("memory.current"))
            limit = entry.get("memory.limit_in_bytes", entry.get("memory.max"))
            if isinstance(usage, int):
                cgroups.append({"version": 1 if version == "v1" else 2, "path": path, "usage_bytes": usage,
                                "limit_bytes": limit if isinstance(limit, int) and limit < (1 << 62) else None})
    cgroups.sort(key=lambda c: -c["usage_bytes"])
    return {
        "taken": snap.get("taken", {}),
        "free": free_dict(mi),
        "processes": len(snap.get("processes", [])),
        "top_processes": [{"pid": p["pid"], "comm": p.get("comm"), "rss_bytes": _g(p.get("status"), "VmRSS"),
                           "pss_bytes": _g(p.get("smaps_rollup"), "Pss"),
                           "swap_bytes": _g(p.get("status"), "VmSwap"), "oom_score_adj": p.get("oom_score_adj"),
                           "memcg": p.get("memcg")} for p in procs[:top]],
        "cgroups": cgroups[:top],
        "errors": len(snap.get("errors", [])),
    }
