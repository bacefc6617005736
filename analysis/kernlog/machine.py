"""The machine behind an OOM report: page size, architecture, distribution, swap, huge
pages, and where its RAM was.

Everything here is read from what the report printed, each with how it was found; a
guess says it is one. The page size matters more than it looks: a 64 KiB-page kernel
(ppc64le on RHEL and SUSE, arm64 ``-64k`` kernels) prints task-table columns and
``pages RAM`` in 64 KiB pages, so every size derived from them is 16 times larger than
on x86. It is read from the smallest block of a buddy free list, or from the same
memory printed both in kB and in pages (the victim's ``total-vm:`` against its
task-table row, the zones' ``present:`` against ``pages RAM``).

The architecture comes from the kernel release (``x86_64``, ``aarch64``, ``ppc64le``),
the registers and call-trace frames of the dump (``RIP:``, ``pc :``, ``NIP:``,
``el0_da``), the ``Hardware name:`` line or the page size; never from a distribution's
kernel flavour alone (``-aws``, ``-azure`` and ``-generic`` kernels run on arm64 too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memtrace.linux.limits import LONG_MAX

from ..report.model import (
    HugePoolState,
    MemcgState,
    MemoryComposition,
    PageSize,
    Platform,
    SwapState,
    TaskTableState,
)
from .parse import ParsedOom

__all__ = ["huge_pools", "memcg_state", "memory_composition", "page_size", "platform", "swap_state", "task_table_state"]

_KB_SIZES = (4, 8, 16, 64, 256)


def page_size(r: ParsedOom, arch: str | None = None) -> PageSize:
    """The page size of ``r``'s machine (see the module docstring)."""
    if r.buddy and r.buddy[0].block_kb:
        kb = r.buddy[0].block_kb[0]
        if kb in _KB_SIZES:
            return PageSize(kb * 1024, f"the smallest block of the {r.buddy[0].zone} buddy list (line "
                                       f"{r.buddy[0].lineno}): {kb} kB", False)
    row = r.row(r.killed_pid) if r.killed_pid is not None else None
    if row is not None and row.total_vm and r.killed_total_vm_kb:
        ratio = r.killed_total_vm_kb / row.total_vm
        kb = round(ratio)
        if kb in _KB_SIZES and abs(ratio - kb) < 0.01:
            return PageSize(kb * 1024, f"the victim's total-vm: {r.killed_total_vm_kb} kB on its Killed line, "
                                       f"{row.total_vm} pages in its task-table row", False)
    present = [z.get("present") for z in r.zones]
    if r.ram_pages and present and all(isinstance(p, int) for p in present):
        total_kb = sum(p for p in present if isinstance(p, int))
        ratio = total_kb / r.ram_pages
        kb = round(ratio)
        if kb in _KB_SIZES and abs(ratio - kb) < 0.01:
            return PageSize(kb * 1024, f"the zones' present: ({total_kb} kB) against {r.ram_pages} pages RAM", False)
    release = r.kernel_release or ""
    if re.search(r"[-+_]64k\b", release):
        return PageSize(65536, f"guessed from the kernel release {release} (a 64k-page flavour)", True)
    if arch == "ppc64" and re.search(r"\.el\d|SLE|default", release + " " + (r.kernel_build or "")):
        return PageSize(65536, "guessed: RHEL and SUSE build ppc64le kernels with 64 KiB pages", True)
    return PageSize(4096, "guessed: 4 KiB, the page size of x86 and most kernels (nothing in the report "
                          "tells it)", True)


_RELEASE_ARCH = (
    (re.compile(r"x86_64|amd64"), "x86_64"), (re.compile(r"aarch64|arm64"), "arm64"),
    (re.compile(r"ppc64le|ppc64"), "ppc64"), (re.compile(r"s390x"), "s390x"), (re.compile(r"i[3-6]86"), "i386"),
    (re.compile(r"riscv64"), "riscv64"), (re.compile(r"armv7|armhf"), "arm"),
)
_HARDWARE_ARCH = (
    (re.compile(r"i440FX|Q35 \+ ICH9|VMware|Supermicro|Dell|HP ProLiant|Lenovo|Hyper-V|Amazon EC2 [a-z]\d[a-z]?[ai]?\."
                r"|Google Compute Engine|innotek|KVM|Xen HVM", re.I), "x86_64"),
    (re.compile(r"linux,dummy-virt|Graviton|Ampere|ARM Juno|Raspberry Pi 4|NVIDIA Grace|Tegra", re.I), "arm64"),
    (re.compile(r"pSeries|PowerNV|POWER\d", re.I), "ppc64"),
    (re.compile(r"riscv-virtio|SiFive|Kendryte|StarFive", re.I), "riscv64"),
    (re.compile(r"PXA|Marvell Armada 3|Freescale i\.MX|BCM2835", re.I), "arm"),
)
_DISTRIBUTIONS = (
    (re.compile(r"\.el(\d+)uek"), "Oracle Linux {0} (UEK)"),
    (re.compile(r"\.el(\d+)"), "RHEL {0} or a rebuild (CentOS, Rocky, Alma, Oracle)"),
    (re.compile(r"\.fc(\d+)"), "Fedora {0}"),
    (re.compile(r"\.amzn(\d+)"), "Amazon Linux {0}"),
    (re.compile(r"-pve\b"), "Proxmox VE"),
    (re.compile(r"-(?:generic|lowlatency|aws|azure|gcp|gke|oracle|kvm|ibm|raspi|nvidia)(?:-64k)?\b"), "Ubuntu"),
    (re.compile(r"-(?:cloud-)?(?:amd64|arm64|686(?:-pae)?|rt-amd64)\b"), "Debian"),
    (re.compile(r"-(?:default|azure)\b.*"), "SUSE (SLES or openSUSE)"),
    (re.compile(r"-arch\d|-ARCH\b|-zen\d"), "Arch Linux"),
    (re.compile(r"android"), "Android"),
)


def platform(r: ParsedOom, psize: PageSize | None = None) -> Platform:
    """Architecture and distribution of ``r``'s machine, each with how it was told."""
    release = r.kernel_release
    build = r.kernel_build or ""
    arch = how = None
    if release:
        for regex, name in _RELEASE_ARCH:
            if regex.search(release):
                arch, how = name, f"the kernel release {release}"
                break
    if arch is None and r.arch_hints:
        # The strongest kind of hint decides (registers, then entry frames, then the
        # layout of addresses), the most frequent arch among them.
        strongest = max(h[2] for h in r.arch_hints)
        counts: dict[str, int] = {}
        for name, _src, strength in r.arch_hints:
            if strength == strongest:
                counts[name] = counts.get(name, 0) + 1
        arch = max(counts, key=lambda a: counts[a])
        src = next(s for name, s, strength in r.arch_hints if name == arch and strength == strongest)
        how = f"the {src.rule} (line {src.linenos[0] if src.linenos else '?'})"
    if arch is None and r.hardware:
        for regex, name in _HARDWARE_ARCH:
            if regex.search(r.hardware):
                arch, how = name, f"the Hardware name: line ({r.hardware})"
                break
    if arch is None and psize is not None and not psize.guessed and psize.nr_bytes != 4096:
        how = f"not x86 (pages of {psize.nr_bytes // 1024} KiB; x86 has only 4 KiB): arm64 or ppc64, not told which"
    dist = dist_how = None
    text = f"{release or ''} {build}"
    if "Ubuntu" in build:
        dist, dist_how = "Ubuntu", f"the kernel build tag ({build.strip()[:60]})"
    elif re.search(r"openSUSE|SLE\d", build):
        dist, dist_how = "SUSE (SLES or openSUSE)", f"the kernel build tag ({build.strip()[:60]})"
    elif "Debian" in build:
        dist, dist_how = "Debian", f"the kernel build tag ({build.strip()[:60]})"
    else:
        for regex, name in _DISTRIBUTIONS:
            m = regex.search(text)
            if m and release:
                dist, dist_how = name.format(*m.groups()), f"the kernel release {release}"
                break
    return Platform(arch=arch, arch_how=how, distribution=dist, distribution_how=dist_how, release=release,
                    taint=r.taint, build=r.kernel_build, hardware=r.hardware)


def swap_state(r: ParsedOom, page_kb: int) -> SwapState | None:
    """Swap at the OOM; None when the report prints no swap total (a memcg report)."""
    if r.swap_total_kb is None:
        return None
    total, free = r.swap_total_kb, r.swap_free_kb
    used = total - free if free is not None else None
    cache = r.swapcache_pages * page_kb if r.swapcache_pages is not None else None
    return SwapState(
        total_kb=total, free_kb=free, used_kb=used,
        used_percent=int(100 * used / total) if used is not None and total else None,
        cache_kb=cache, cache_percent=int(100 * cache / total) if cache is not None and total else None,
        used_without_cache_kb=used - cache if used is not None and cache is not None else None,
        used_without_cache_percent=int(100 * (used - cache) / total) if used is not None and cache is not None
        and total else None,
        used_definition="total - free, as free(1): a slot whose page is also in the swap cache counts as used")


def huge_pools(r: ParsedOom) -> tuple[HugePoolState, ...]:
    """The huge page pools the report prints (every node, every size)."""
    return tuple(HugePoolState(node=h.node, size_kb=h.size_kb, total=h.total, free=h.free, surp=h.surp,
                               pool_kb=h.total * h.size_kb, used_kb=(h.total - h.free) * h.size_kb)
                 for h in r.hugepages)


def memory_composition(r: ParsedOom, page_kb: int, pools: Sequence[HugePoolState]) -> MemoryComposition | None:
    """Where RAM was (see :class:`~..report.model.MemoryComposition`); None for a
    report that prints neither Mem-Info nor a task table."""
    mi = r.meminfo_pages
    rss_pages = sum(t.rss or 0 for t in r.tasks) if r.tasks else None
    if not mi and rss_pages is None:
        return None
    ram_kb = r.ram_pages * page_kb if r.ram_pages is not None else None
    managed_kb = (r.ram_pages - (r.reserved_pages or 0)) * page_kb if r.ram_pages is not None else None
    parts: dict[str, int] = {}

    def add(name: str, *keys: str) -> None:
        vals = [mi[k] for k in keys if k in mi]
        if vals:
            parts[name] = sum(vals) * page_kb

    add("free", "free")
    add("anon", "active_anon", "inactive_anon", "isolated_anon")
    add("file", "active_file", "inactive_file", "isolated_file")
    add("unevictable", "unevictable")
    add("slab_reclaimable", "slab_reclaimable")
    add("slab_unreclaimable", "slab_unreclaimable")
    add("pagetables", "pagetables")
    # Kernel stacks: per node from 4.8, per zone before.
    for lines in (r.nodes, r.zones):
        stacks = [n.get("kernel_stack") for n in lines]
        if stacks and all(isinstance(s, int) for s in stacks):
            parts["kernel_stack"] = sum(s for s in stacks if isinstance(s, int))
            break
    if pools:
        parts["hugepages"] = sum(p.pool_kb for p in pools)
    caveats = []
    unaccounted = None
    if managed_kb is not None and parts:
        unaccounted = managed_kb - sum(parts.values())
        caveats.append("unaccounted: what the kernel manages less every counter above (vmalloc, per-cpu, "
                       "drivers, the rest of kernel memory); negative when counters drift")
    if "anon" in parts and "shmem" in mi:
        caveats.append(f"anon includes {mi['shmem'] * page_kb} kB of shmem/tmpfs (on the anon LRU)")
    tasks_kb = rss_pages * page_kb if rss_pages is not None else None
    if tasks_kb is not None:
        caveats.append("tasks' RSS counts a page shared by several processes once per process, and no kernel "
                       "memory")
    percent = int(100 * tasks_kb / ram_kb) if tasks_kb is not None and ram_kb else None
    ram_swap = ram_kb + (r.swap_total_kb or 0) if ram_kb is not None else None
    return MemoryComposition(ram_kb=ram_kb, managed_kb=managed_kb, parts_kb=parts, unaccounted_kb=unaccounted,
                             tasks_rss_kb=tasks_kb, tasks_rss_percent_of_ram=percent, ram_plus_swap_kb=ram_swap,
                             caveats=tuple(caveats))


def task_table_state(r: ParsedOom) -> TaskTableState:
    """The task table's state (read by the parser) with its rows' RSS sum."""
    why = list(r.task_table_why)
    if r.task_table == "absent":
        why.append("no task table: vm.oom_dump_tasks=0, or the paste left it out; the victim's badness cannot be "
                   "checked against the other tasks")
    return TaskTableState(state=r.task_table, why=tuple(why), rows=len(r.tasks), columns=r.task_columns,
                          rss_pages=sum(t.rss or 0 for t in r.tasks) if r.tasks else None)


def memcg_state(r: ParsedOom, page_kb: int, arch: str | None = None) -> MemcgState | None:
    """The OOM memcg's usage, limit and swap (see :class:`~..report.model.MemcgState`);
    None for a global OOM. ``arch`` tells a 32-bit kernel (``i386``, ``arm``)."""
    if not r.is_memcg:
        return None
    mem = r.memcg_counters.get("memory")
    # include/linux/page_counter.h: PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE pages on 64-bit
    # (9007199254740988 kB with 4 KiB pages, 9007199254740928 kB with 64 KiB) and LONG_MAX
    # pages on 32-bit (8589934588 kB); the res_counter of kernels before 3.19 printed more.
    if arch in ("i386", "arm"):
        unlimited_kb = (2**31 - 1) * page_kb
    else:
        unlimited_kb = LONG_MAX // (page_kb * 1024) * page_kb
    swap = how = None
    swap_usage = swap_limit = room = None
    if "swap" in r.memcg_counters:  # v2: swap.max
        swap_usage, swap_limit, _ = r.memcg_counters["swap"]
        if swap_limit == 0:
            swap, how = "disabled", "swap: limit 0kB (memory.swap.max = 0)"
        elif swap_limit >= unlimited_kb:
            swap, how = "unlimited", f"swap: limit {swap_limit}kB is PAGE_COUNTER_MAX (max) for {page_kb} KiB pages"
        else:
            swap, how, room = "limited", f"swap: limit {swap_limit}kB", max(0, swap_limit - swap_usage)
    elif "memory+swap" in r.memcg_counters and mem is not None:  # v1: memsw.limit_in_bytes
        swap_usage, swap_limit, _ = r.memcg_counters["memory+swap"]
        if swap_limit >= unlimited_kb:
            swap, how = "unlimited", (f"memory+swap: limit {swap_limit}kB is the counter's maximum (max) for "
                                      f"{page_kb} KiB pages")
        elif swap_limit <= mem[1]:
            swap, how = "disabled", f"memory+swap limit {swap_limit}kB equals the memory limit {mem[1]}kB"
        else:
            swap, how = "limited", f"memory+swap limit {swap_limit}kB, memory limit {mem[1]}kB"
            room = max(0, swap_limit - swap_usage)
    return MemcgState(path=r.memcg, cgroup_version=r.cgroup_version, usage_kb=mem[0] if mem else None,
                      limit_kb=mem[1] if mem else None, failcnt=mem[2] if mem else None, swap_usage_kb=swap_usage,
                      swap_limit_kb=swap_limit, swap=swap, swap_room_kb=room, swap_how=how)
