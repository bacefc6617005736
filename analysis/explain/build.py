"""Explain built from a folded trace: every page attributed to an owner, with the
reason it is there and what would free it (vectorised over the page arrays)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from memtrace.errors import NotFoundError
from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import TraceReader

from ..state import (
    K_ANON,
    K_FILE,
    K_SHMEM,
    O_COW_ANON,
    O_COW_FILE,
    O_COW_SHMEM,
    O_SWAPIN,
    SWP_BASE,
    UNNAMED,
    Inode,
    MemoryState,
    Process,
    Reading,
    VmArea,
    fold_at,
    swp_offset,
)
from .result import KINDS, ExplainResult, Owner, Part, free_dict, kind_totals

__all__ = ["explain_state", "explain_trace"]


def explain_trace(reader: TraceReader, at: str | int | None = None, pid: int | None = None) -> ExplainResult:
    """Explain a trace at a snapshot label, a time (ns, the last reading at or
    before it) or, by default, its last /proc/meminfo reading.

    :class:`~memtrace.errors.NotFoundError` names the label when no snapshot has it,
    or ``pid`` when no process of the trace has it by then.
    """
    folder, reading, warnings = fold_at(reader, at)
    name = f"t={at / 1e9:.3f}s" if isinstance(at, int) else None
    res = explain_state(folder.state(), reading, pid=pid, at=name)
    if warnings or reader.warnings:
        res = _with_warnings(res, [*warnings, *reader.warnings])
    return res


def _with_warnings(res: ExplainResult, extra: list[str]) -> ExplainResult:
    return replace(res, warnings=tuple(dict.fromkeys([*res.warnings, *extra])))


def explain_state(state: MemoryState, reading: Reading | None, pid: int | None = None,
                  at: str | None = None) -> ExplainResult:
    """Break down memory as ``state`` holds it at ``reading`` (its /proc/meminfo).

    With ``pid`` the view is that process's pages; see the module docstring. ``at``
    names the moment when there is no reading (default: the end of the trace).
    :class:`~memtrace.errors.NotFoundError` when no process has ``pid`` by then.
    """
    meminfo = dict(reading.meminfo) if reading is not None else {}
    at = reading.name if reading is not None else (at or "end of trace")
    ts = reading.ts_ns if reading is not None else state.ts_ns
    b = _Builder(state, meminfo)
    if pid is not None:
        proc = state.procs.get(pid)
        if proc is None:
            known = ", ".join(str(p) for p in sorted(state.procs)) or "none"
            raise NotFoundError(f"no process {pid} at {at} (pids by then: {known}); it may start later")
        return b.process_view(proc, at, ts)
    return b.system_view(at, ts)


class _Builder:
    """Collects parts from a state (vectorised over its page arrays)."""

    def __init__(self, state: MemoryState, meminfo: dict[str, int]) -> None:
        self.s = state
        self.mi = meminfo
        self.parts: list[Part] = []
        self.warnings: list[str] = []
        self.unknown: list[str] = []
        swap_total = meminfo.get("SwapTotal", state.swap_bytes)
        swap_free = meminfo.get("SwapFree", swap_total)
        self.swap_usable = swap_total > 0 and swap_free > 0
        self.no_swap_note = "" if self.swap_usable else (
            "; swap is full" if swap_total > 0 else "; there is no swap, so reclaim cannot free it")

    # -- owners

    def _proc_owner(self, proc: Process, vma: VmArea | None = None, memcg: int | None = None) -> Owner:
        cg = self.s.cgroup_path(memcg if memcg is not None else proc.memcg_id)
        comm = proc.comm if proc.comm != UNNAMED else None
        who = f"{comm} (pid {proc.pid})" if comm else f"pid {proc.pid}"
        if vma is None:
            return Owner("process", who, pid=proc.pid, comm=comm, cgroup=cg)
        return Owner("mapping", f"{who} mapping {vma.label}", pid=proc.pid, comm=comm,
                     mapping=vma.label, path=vma.path or None, ino=vma.ino or None, cgroup=cg)

    def _inode_owner(self, ino: int, memcg: int | None) -> Owner:
        node = self.s.inodes.get(ino)
        cg = self.s.cgroup_path(memcg) if memcg is not None else None
        if node is None:
            return Owner("file", f"inode {ino}", ino=ino, cgroup=cg)
        kind = "shmem" if node.shmem else "file"
        name = node.display + (" (deleted)" if node.unlinked and node.kind in ("file", "tmpfs") else "")
        return Owner(kind, name, path=node.path or None, ino=ino, cgroup=cg)

    def _who(self, pid: int) -> str:
        p = self.s.procs.get(pid)
        return f"{p.comm} (pid {pid})" if p is not None else f"pid {pid}"

    def _whos(self, pids: list[int]) -> str:
        names = [self._who(p) for p in pids[:4]]
        more = f" and {len(pids) - 4} more" if len(pids) > 4 else ""
        return ", ".join(names) + more

    # -- anonymous and mapped pages (first mapper owns a shared page)

    def _mapped_pass(self, vmas: list[VmArea]) -> dict[str, Any]:
        """Assign each mapped page to the first VMA (in pid, address order) mapping it."""
        pg = self.s.pages
        first_vid = np.full(pg.nr_pfns, -1, dtype=np.int32)
        by_vid: dict[int, np.ndarray] = {}
        sharers: dict[int, set[int]] = {}  # first vid -> pids also mapping some of its pages
        vma_of = {v.vid: v for v in vmas}
        for v in vmas:
            p = v.ptes[v.ptes >= 0].astype(np.int64)
            if not len(p):
                continue
            p = p[pg.kind[p] != 0]
            seen = first_vid[p]
            mine = p[seen < 0]
            first_vid[mine] = v.vid
            by_vid[v.vid] = mine
            other = seen[seen >= 0]
            if len(other):
                for ov in np.unique(other).tolist():
                    sharers.setdefault(int(ov), set()).add(v.pid)
        return {"first_vid": first_vid, "by_vid": by_vid, "sharers": sharers, "vma_of": vma_of}

    def _anon_parts(self, vmas: list[VmArea], mp: dict[str, Any], proc_view: Process | None = None) -> None:
        pg = self.s.pages
        for v in vmas:
            proc = self.s.procs[v.pid]
            if proc_view is not None:
                p = v.ptes[v.ptes >= 0].astype(np.int64)
            else:
                p = mp["by_vid"].get(v.vid, np.empty(0, dtype=np.int64))
            p = p[pg.kind[p] == K_ANON]
            if not len(p):
                continue
            shared = pg.mapcount[p] > 1
            key = pg.origin[p].astype(np.int64) * 2 + shared
            key = key * 65536 + pg.memcg[p]
            for k, n in _group(key):
                memcg, rest = int(k % 65536), int(k // 65536)
                origin, is_shared = rest // 2, bool(rest % 2)
                reason, detail, mapped_by = self._anon_reason(proc, v, origin, is_shared, p, mp, proc_view)
                freed = ("munmap", "exit") + (("swap-out",) if self.swap_usable else ())
                self.parts.append(Part("anon", n * PAGE_SIZE, self._proc_owner(proc, v, memcg), reason, freed,
                                       detail, mapped_by))

    def _anon_reason(self, proc: Process, v: VmArea, origin: int, shared: bool, p: np.ndarray,
                     mp: dict[str, Any], proc_view: Process | None) -> tuple[str, str, tuple[int, ...]]:
        who = f"{proc.comm} (pid {proc.pid})"
        backing = self._backing_name(v)
        if origin in (O_COW_FILE, O_COW_SHMEM):
            reason = (f"private copies of {backing} pages, made by copy-on-write when {who} wrote to its "
                      f"MAP_PRIVATE mapping {v.label} of the file")
        elif origin == O_COW_ANON:
            parent = self.s.procs.get(proc.parent) if proc.parent is not None else None
            src = f" it shared with {parent.comm} (pid {parent.pid})" if parent is not None else " it shared"
            reason = f"private copies made by copy-on-write after fork: {who} wrote to pages{src}"
        elif origin == O_SWAPIN:
            reason = f"anonymous memory of {who} read back from swap (mapping {v.label})"
        elif v.kind == "heap":
            reason = f"heap (brk) memory {who} wrote"
        else:
            reason = f"private anonymous memory {who} wrote through mapping {v.label} (demand-zero pages)"
        mapped_by: tuple[int, ...] = (proc.pid,)
        detail = ""
        if shared:
            pids = sorted(mp["sharers"].get(v.vid, set()) - {proc.pid}) if proc_view is None else self._sharers_of(
                v, p[self.s.pages.mapcount[p] > 1])
            mapped_by = tuple(sorted({proc.pid, *pids}))
            sharing = (f"shared copy-on-write with {self._whos(pids)} since fork" if pids
                       else "shared copy-on-write with another process since fork")
            detail = "counted once, here, though the RSS of each process mapping it counts it"
            reason += "; " + sharing
        reason += self.no_swap_note
        return reason, detail, mapped_by

    def _sharers_of(self, v: VmArea, pfns: np.ndarray) -> list[int]:
        """Other live processes whose page tables map some of ``pfns``."""
        if not len(pfns):
            return []
        out = []
        for other in self.s.live_vmas():
            if other.pid == v.pid:
                continue
            if np.isin(other.ptes, pfns).any():
                out.append(other.pid)
        return sorted(set(out))

    def _backing_name(self, v: VmArea) -> str:
        if v.ino:
            node = self.s.inodes.get(v.ino)
            return node.display if node is not None else (v.path or f"inode {v.ino}")
        return "anonymous memory"

    def _mapped_cache_parts(self, vmas: list[VmArea], mp: dict[str, Any], proc_view: Process | None) -> None:
        pg = self.s.pages
        for v in vmas:
            proc = self.s.procs[v.pid]
            if proc_view is not None:
                p = v.ptes[v.ptes >= 0].astype(np.int64)
            else:
                p = mp["by_vid"].get(v.vid, np.empty(0, dtype=np.int64))
            k = pg.kind[p]
            p = p[(k == K_FILE) | (k == K_SHMEM)]
            if not len(p):
                continue
            key = (pg.ino[p].astype(np.int64) * 4 + (pg.kind[p] == K_SHMEM) * 2 + pg.dirty[p]) * 65536 + pg.memcg[p]
            others = sorted(mp["sharers"].get(v.vid, set()) - {proc.pid}) if proc_view is None else []
            for key_v, n in _group(key):
                memcg, rest = int(key_v % 65536), int(key_v // 65536)
                ino, is_shmem, dirty = rest // 4, bool(rest // 2 % 2), bool(rest % 2)
                owner = self._inode_owner(ino, memcg)
                node = self.s.inodes.get(ino)
                how = "shared" if v.shared else "private, read-only until written"
                who = f"{proc.comm} (pid {proc.pid})"
                kind = "shmem" if is_shmem else "file"
                what = ("shared memory" if is_shmem and node is not None and node.kind != "tmpfs"
                        else "tmpfs pages" if is_shmem else "page cache")
                reason = f"{what} of {owner.name}, mapped by {who} through its {how} mapping {v.label}"
                if others:
                    reason += f", also mapped by {self._whos(others)}"
                if dirty:
                    reason += "; dirty: written through the mapping, not yet written back"
                if is_shmem:
                    freed = self._shmem_freed(node, mapped=True)
                else:
                    freed = (("sync",) if dirty else ()) + ("munmap", "exit", "reclaim")
                self.parts.append(Part(kind, n * PAGE_SIZE, owner, reason, freed,
                                       mapped_by=tuple(sorted({proc.pid, *others}))))

    def _shmem_freed(self, node: Inode | None, mapped: bool) -> tuple[str, ...]:
        swap = ("swap-out",) if self.swap_usable else ()
        kind = node.kind if node is not None else "tmpfs"
        if kind == "anon_shared":
            return ("munmap", "exit", *swap)
        named: tuple[str, ...] = ("ipc_rmid",) if kind == "sysv" else ("unlink",)
        if node is not None and node.unlinked:
            named = ()
        return named + (("munmap", "exit") if mapped else ()) + swap

    def _unmapped_cache_parts(self) -> None:
        pg = self.s.pages
        k = pg.kind
        p = np.flatnonzero(((k == K_FILE) | (k == K_SHMEM)) & (pg.mapcount <= 0))
        if not len(p):
            return
        key = ((pg.ino[p].astype(np.int64) * 2 + (k[p] == K_SHMEM)) * 4 + pg.dirty[p] * 2 + pg.cow_src[p]) * 65536
        key += pg.memcg[p]
        live_private: dict[int, list[VmArea]] = {}
        for v in self.s.live_vmas():
            if v.ino and v.kind == "file_private":
                live_private.setdefault(v.ino, []).append(v)
        for key_v, n in _group(key):
            memcg, rest = int(key_v % 65536), int(key_v // 65536)
            cow, dirty, rest = bool(rest % 2), bool(rest // 2 % 2), rest // 4
            is_shmem, ino = bool(rest % 2), rest // 2
            owner = self._inode_owner(ino, memcg)
            node = self.s.inodes.get(ino)
            if is_shmem:
                reason, shmem_freed = self._unowned_shmem_reason(node, owner)
                self.parts.append(Part("shmem", n * PAGE_SIZE, owner, reason, shmem_freed))
                continue
            if cow and ino in live_private:
                v = live_private[ino][0]
                proc = self.s.procs[v.pid]
                reason = (f"page cache of {owner.name}, no longer mapped: {proc.comm} (pid {proc.pid}) wrote to "
                          f"its MAP_PRIVATE mapping {v.label}, and copy-on-write replaced these pages by "
                          f"private anonymous copies")
            elif cow:
                reason = (f"page cache of {owner.name}, no longer mapped: a private mapping's writes replaced "
                          f"these pages by copies, and the mapping is gone")
            else:
                reason = (f"page cache of {owner.name}, not mapped by any process: kept after it was read or "
                          f"written, for the next reader")
            if dirty:
                reason += "; dirty: written, not yet written back"
                freed: tuple[str, ...] = ("sync", "drop_caches", "reclaim")
            else:
                freed = ("drop_caches", "reclaim")
            self.parts.append(Part("file", n * PAGE_SIZE, owner, reason, freed))

    def _unowned_shmem_reason(self, node: Inode | None, owner: Owner) -> tuple[str, tuple[str, ...]]:
        kind = node.kind if node is not None else "tmpfs"
        swap = ("swap-out",) if self.swap_usable else ()
        tail = "" if self.swap_usable else (
            "; swap is full, so reclaim cannot move it" if self.mi.get("SwapTotal", 0) else
            "; there is no swap, so reclaim cannot move it")
        if kind == "sysv":
            return (f"{owner.name}: no process is attached; it stays until shmctl(IPC_RMID){tail}",
                    ("ipc_rmid", *swap))
        if kind == "posix_shm":
            return (f"{owner.name}: no process maps it; it stays until shm_unlink(){tail}", ("unlink", *swap))
        if kind == "anon_shared":
            return (f"{owner.name}: no mapping is left{tail}", ("nothing",))
        return (f"tmpfs file {owner.name}: in memory (shmem) and owned by no process; it stays until the file "
                f"is deleted{tail}", ("unlink", *swap))

    def _swap_parts(self, vmas: list[VmArea], proc_view: Process | None) -> None:
        if proc_view is None:
            seen = np.zeros(0, dtype=np.int64)
        for v in vmas:
            if v.shared:
                continue
            e = v.ptes[v.ptes <= SWP_BASE]
            if not len(e):
                continue
            slots = np.unique(swp_offset(e))
            if proc_view is None:
                new = slots[~np.isin(slots, seen)]
                seen = np.concatenate([seen, new])
                n = len(new)
            else:
                n = len(e)
            if not n:
                continue
            proc = self.s.procs[v.pid]
            self.parts.append(Part(
                "swap", n * PAGE_SIZE, self._proc_owner(proc, v),
                f"anonymous pages of {proc.comm} (pid {proc.pid}) mapping {v.label}, written to swap by reclaim",
                ("munmap", "exit"), mapped_by=(proc.pid,)))
        if proc_view is not None:
            return
        used = np.flatnonzero(self.s.slot_shmem)
        if len(used):
            for ino, n in _group(self.s.slot_ino[used].astype(np.int64)):
                node = self.s.inodes.get(int(ino))
                owner = self._inode_owner(int(ino), None)
                freed = self._shmem_freed(node, mapped=False)
                self.parts.append(Part("swap", n * PAGE_SIZE, owner,
                                       f"pages of {owner.name} written to swap by reclaim",
                                       tuple(f for f in freed if f != "swap-out") or ("nothing",)))

    # -- kernel, free, reconciliation

    def _kernel_parts(self, total: int) -> None:
        mi = self.mi
        if not mi:
            return
        left = total
        srec = mi.get("SReclaimable", 0)
        sunrec = mi.get("SUnreclaim", mi.get("Slab", 0) - srec)
        stacks = mi.get("KernelStack", 0)
        if srec:
            self.parts.append(Part("kernel", srec, Owner("kernel", "slab: dentry and inode caches"),
                                   "reclaimable slab (SReclaimable): cached directory entries and inodes",
                                   ("drop_caches", "reclaim")))
            left -= srec
        if sunrec:
            self.parts.append(Part("kernel", sunrec, Owner("kernel", "slab: unreclaimable"),
                                   "unreclaimable slab (SUnreclaim): kernel objects in use", ("nothing",)))
            left -= sunrec
        if stacks:
            alive = sum(1 for p in self.s.procs.values() if p.alive and p.has_mm)
            self.parts.append(Part("kernel", stacks, Owner("kernel", "kernel stacks"),
                                   f"kernel stacks (KernelStack) of every task: kernel threads and the "
                                   f"{alive} live process(es) of the trace", ("exit",)))
            left -= stacks
        left -= self._pgtable_parts(mi.get("PageTables", 0))
        if left:
            self.parts.append(Part("kernel", left, Owner("kernel", "other kernel memory"),
                                   "kernel memory /proc/meminfo does not break down: boot-time reservations, "
                                   "per-cpu data, and pages taken by an allocation still in progress",
                                   ("nothing",)))

    def _pgtable_parts(self, total: int) -> int:
        if not total:
            return 0
        per = {p.pid: p.pgtables_pages * PAGE_SIZE for p in self.s.procs.values() if p.pgtables_pages}
        if self.s.has_pages and sum(per.values()) == total:
            for pid, n in sorted(per.items()):
                proc = self.s.procs[pid]
                self.parts.append(Part("kernel", n, self._proc_owner(proc),
                                       f"page tables of {proc.comm} (pid {pid}): one page per 2 MiB it has "
                                       f"touched, plus the upper levels", ("munmap", "exit"), mapped_by=(pid,)))
        else:
            self.parts.append(Part("kernel", total, Owner("kernel", "page tables"),
                                   "page tables (PageTables) of every process", ("munmap", "exit")))
        return total

    def _reconcile(self, totals: dict[str, int], kinds: tuple[str, ...]) -> None:
        sums: dict[str, int] = {}
        for p in self.parts:
            sums[p.kind] = sums.get(p.kind, 0) + p.bytes
        for kind in kinds:
            diff = totals.get(kind, 0) - sums.get(kind, 0)
            if diff == 0:
                continue
            what = "/proc/meminfo" if self.mi else "the total"
            if diff > 0:
                self.parts.append(Part(kind, diff, Owner("none", "not attributed"),
                                       f"{kind} memory the trace's events do not attribute to an owner",
                                       ("nothing",)))
            self.warnings.append(
                f"{kind}: the trace's events account for {sums.get(kind, 0):,} bytes, {what} for "
                f"{totals.get(kind, 0):,}")

    # -- views

    def system_view(self, at: str, ts: int | None) -> ExplainResult:
        s = self.s
        totals = kind_totals(self.mi) if self.mi else {}
        if not s.has_pages:
            return self._counter_view(at, ts, totals)
        vmas = list(s.live_vmas())
        mp = self._mapped_pass(vmas)
        self._anon_parts(vmas, mp)
        self._mapped_cache_parts(vmas, mp, None)
        self._unmapped_cache_parts()
        self._swap_parts(vmas, None)
        if not totals:
            totals = dict.fromkeys(KINDS, 0)
            for p in self.parts:
                totals[p.kind] += p.bytes
            self.unknown.append("no /proc/meminfo reading: totals are what the trace's events account for; "
                                "kernel and free memory are unknown")
        else:
            self._kernel_parts(totals["kernel"])
            if totals["free"]:
                self.parts.append(Part("free", totals["free"], Owner("none", "free memory"),
                                       "free pages (MemFree), ready for any allocation", ()))
            self._reconcile(totals, KINDS)
            self._check_estimates()
        return self._result(at, ts, totals, "system", None)

    def _check_estimates(self) -> None:
        c = self.s.page_counts()
        dirty = self.mi.get("Dirty")
        if dirty is not None and dirty != c["dirty"] * PAGE_SIZE:
            self.unknown.append(
                f"which files the {dirty:,} bytes of Dirty page cache belong to: the events show "
                f"{c['dirty'] * PAGE_SIZE:,} bytes (a write to an already cached page emits no event)")

    def process_view(self, proc: Process, at: str, ts: int | None) -> ExplainResult:
        s = self.s
        rss = {m: proc.rss_bytes.get(m, 0) for m in ("MM_ANONPAGES", "MM_FILEPAGES", "MM_SHMEMPAGES", "MM_SWAPENTS")}
        if not s.has_pages or not proc.alive:
            parts = self._rss_parts(proc)
            totals = {"anon": rss["MM_ANONPAGES"], "file": rss["MM_FILEPAGES"], "shmem": rss["MM_SHMEMPAGES"],
                      "swap": rss["MM_SWAPENTS"]}
            self.parts = parts
            if not proc.alive:
                self.warnings.append(f"{proc.comm} (pid {proc.pid}) had exited by {at}: it holds no memory")
                self.parts = []
                totals = dict.fromkeys(totals, 0)
            else:
                self.unknown.append("which mappings and files hold this process's pages: the trace names no "
                                    "page frames; the parts are its kmem:rss_stat counters")
            return self._result(at, ts, totals, f"pid {proc.pid}", proc.pid)
        vmas = sorted(proc.vmas, key=lambda v: v.start)
        mp: dict[str, Any] = {"by_vid": {}, "sharers": {}}
        self._anon_parts(vmas, mp, proc_view=proc)
        self._mapped_cache_parts(vmas, mp, proc)
        self._swap_parts(vmas, proc)
        if proc.pgtables_pages:
            n = proc.pgtables_pages * PAGE_SIZE
            self.parts.append(Part("kernel", n, self._proc_owner(proc),
                                   f"page tables of {proc.comm} (pid {proc.pid})", ("munmap", "exit"),
                                   mapped_by=(proc.pid,)))
        totals = dict.fromkeys(("anon", "file", "shmem", "swap", "kernel"), 0)
        for p in self.parts:
            totals[p.kind] += p.bytes
        want = {"anon": "MM_ANONPAGES", "file": "MM_FILEPAGES", "shmem": "MM_SHMEMPAGES", "swap": "MM_SWAPENTS"}
        for kind, member in want.items():
            if member in proc.rss_bytes and proc.rss_bytes[member] != totals[kind]:
                self.warnings.append(f"{kind}: the pages mapped add up to {totals[kind]:,} bytes, the last "
                                     f"kmem:rss_stat {member} says {proc.rss_bytes[member]:,}")
        return self._result(at, ts, totals, f"pid {proc.pid}", proc.pid)

    def _rss_parts(self, proc: Process) -> list[Part]:
        names = {"MM_ANONPAGES": "anon", "MM_FILEPAGES": "file", "MM_SHMEMPAGES": "shmem", "MM_SWAPENTS": "swap"}
        out = []
        for member, kind in names.items():
            n = proc.rss_bytes.get(member, 0)
            if n:
                owner = self._proc_owner(proc)
                out.append(Part(kind, n, owner, f"{kind} RSS of {owner.name}, from kmem:rss_stat {member}",
                                ("exit",), mapped_by=(proc.pid,)))
        return out

    def _counter_view(self, at: str, ts: int | None, totals: dict[str, int]) -> ExplainResult:
        """Without page frames: processes' RSS counters, and what cannot be told."""
        self.unknown.append("per-page state: the trace names no page frames (imported from a real kernel?), "
                            "so pages are attributed to processes by their kmem:rss_stat counters only; which "
                            "mappings and files hold them, and unmapped page cache, tmpfs and shmem owned by no "
                            "process, are unknown")
        for proc in sorted(self.s.procs.values(), key=lambda p: p.pid):
            if proc.alive:
                self.parts.extend(self._rss_parts(proc))
        if totals:
            sums: dict[str, int] = {}
            for p in self.parts:
                sums[p.kind] = sums.get(p.kind, 0) + p.bytes
            for kind in ("anon", "file", "shmem", "swap"):
                diff = totals[kind] - sums.get(kind, 0)
                if diff > 0:
                    self.parts.append(Part(kind, diff, Owner("none", "not attributed"),
                                           f"{kind} memory no process's RSS counter accounts for (unmapped page "
                                           f"cache, shmem no process maps, or processes the trace does not show)",
                                           ("nothing",)))
                elif diff < 0:
                    self.warnings.append(f"{kind}: processes' RSS counters add up to more than /proc/meminfo "
                                         f"({-diff:,} bytes): shared pages count in each sharer's RSS")
            self._kernel_parts(totals["kernel"])
            if totals["free"]:
                self.parts.append(Part("free", totals["free"], Owner("none", "free memory"),
                                       "free pages (MemFree), ready for any allocation", ()))
            self.warnings.extend(m for m in self._mismatch_list(totals) if m not in self.warnings)
        else:
            totals = dict.fromkeys(KINDS, 0)
            for p in self.parts:
                totals[p.kind] += p.bytes
            self.unknown.append("no /proc/meminfo reading: totals are the processes' RSS counters")
        return self._result(at, ts, totals, "system", None)

    def _mismatch_list(self, totals: dict[str, int]) -> list[str]:
        sums: dict[str, int] = {}
        for p in self.parts:
            sums[p.kind] = sums.get(p.kind, 0) + p.bytes
        return [f"{k}: parts sum to {sums.get(k, 0):,} bytes, /proc/meminfo to {v:,}"
                for k, v in totals.items() if sums.get(k, 0) != v]

    def _result(self, at: str, ts: int | None, totals: dict[str, int], scope: str, pid: int | None) -> ExplainResult:
        order = {k: i for i, k in enumerate(KINDS)}
        parts = sorted(self.parts, key=lambda p: (order.get(p.kind, 99), -p.bytes, p.owner.name))
        if self.s.unattributed_faults and self.s.has_pages:
            self.warnings.append(f"{self.s.unattributed_faults:,} page faults hit no mapping the trace shows")
        return ExplainResult(at=at, ts_ns=ts, meminfo=dict(self.mi), free=free_dict(self.mi) if self.mi else {},
                             parts=tuple(parts), totals=dict(totals), source=self.s.source, scope=scope, pid=pid,
                             unknown=tuple(self.unknown), warnings=tuple(self.warnings))


def _group(keys: np.ndarray) -> list[tuple[int, int]]:
    """(key, count) for each distinct key, in key order."""
    if not len(keys):
        return []
    keys = np.asarray(keys, dtype=np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if lo >= 0 and hi < (1 << 24):
        counts = np.bincount(keys, minlength=hi + 1)
        nz = np.flatnonzero(counts)
        return list(zip(nz.tolist(), counts[nz].tolist()))
    vals, counts = np.unique(keys, return_counts=True)
    return list(zip(vals.tolist(), counts.tolist()))
