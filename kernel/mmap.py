"""mmap(2), munmap(2) and brk(2): mm/mmap.c and mm/vma.c as of 6.13.

Committed_AS is charged exactly as ``mmap_region()`` and ``do_brk_flags()`` do
(kernel-mm-facts.md §4.4): a mapping is charged in full when
``accountable_mapping()`` holds (private and writable, without MAP_NORESERVE, which
mode 2 ignores); shared anonymous memory is charged in full by its shmem object;
brk charges the pages it adds.

A mapping is named by its handle; a partial munmap or mprotect splits it into
several VMAs with that handle (MmStruct.fragments()), addressed from its lowest
address. mremap is mremap.py's, mprotect mprotect.py's, madvise madvise.py's.

Simplified: no VMA merging (adjacent VMAs with equal flags stay apart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from memtrace.linux.errors import ENOMEM
from memtrace.linux.limits import DEFAULT_MAX_MAP_COUNT, PAGE_SHIFT, PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, filemap, memory, vmscan
from .errors import StepFault
from .mm_types import (
    MAP_ANONYMOUS,
    MAP_NORESERVE,
    MAP_PRIVATE,
    MAP_SHARED,
    PTE_NONE,
    VM_ACCOUNT,
    VM_EXEC,
    VM_LOCKED,
    VM_NORESERVE,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
    Inode,
    Task,
    VmArea,
    prot_bits,
)

if TYPE_CHECKING:
    from .kernel import Kernel


def page_align(nr_bytes: int) -> int:
    return (nr_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def accountable_mapping(vm_flags: int) -> bool:
    """mm/mmap.c accountable_mapping(): private writable mappings without NORESERVE."""
    return (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE


def shmem_zero_setup(k: Kernel, task: Task, length_bytes: int, vm_flags: int) -> Inode:
    """Models shmem_zero_setup(): a MAP_SHARED|MAP_ANONYMOUS mapping is backed by an
    unnamed shmem object ("dev/zero") charged in full unless VM_NORESERVE."""
    inode = k.new_inode("/dev/zero (deleted)", shmem=True, size_bytes=length_bytes, acct="size")
    inode.nlink = 0
    if not vm_flags & VM_NORESERVE:
        nr = length_bytes >> PAGE_SHIFT
        if not k.vm_enough_memory(task.mm, nr, cap_sys_admin=task.uid == 0, op="mmap"):
            del k.inodes[inode.ino]
            raise StepFault("ENOMEM", f"shared anonymous mapping of {length_bytes} bytes refused by overcommit")
        inode.charged_pages = nr
    return inode


def do_mmap(k: Kernel, task: Task, handle: str, length_bytes: int, prot: str, shared: bool,
            path: str, offset_bytes: int, noreserve: bool, inode: Inode | None = None,
            kind: str | None = None) -> VmArea:
    """Models do_mmap()/mmap_region(): create the mapping named ``handle``.

    ``inode`` may be given directly (shmat); otherwise ``path`` is opened, or the
    mapping is anonymous. Raises StepFault(ENOMEM) when refused.
    """
    mm = task.mm
    assert mm is not None
    k.advance(costs.SYSCALL_NS)
    length = page_align(length_bytes)
    pbits = prot_bits(prot)
    flags = (MAP_SHARED if shared else MAP_PRIVATE) | (0 if (path or inode) else MAP_ANONYMOUS)
    if noreserve:
        flags |= MAP_NORESERVE
    vm_flags = (VM_READ if "r" in prot else 0) | (VM_WRITE if "w" in prot else 0) | (
        VM_EXEC if "x" in prot else 0) | (VM_SHARED if shared else 0)
    # MAP_NORESERVE is ignored in strict mode (mmap_region, 6.13).
    if noreserve and k.sysctls["vm.overcommit_memory"] != 2:
        vm_flags |= VM_NORESERVE
    if mm.by_handle(handle) is not None:
        raise StepFault("EEXIST", f"mapping handle {handle!r} is already in use")
    if offset_bytes % PAGE_SIZE:
        raise StepFault("EINVAL", f"mmap offset {offset_bytes} is not page aligned")

    def refuse(why: str) -> StepFault:
        k.emit(tp.MMAP, addr=0, len_bytes=length, prot=pbits, flags=flags, vma_kind=kind or "anon_private",
               ino=0, path=path, handle=handle, charged_pages=0, ret=ENOMEM)
        return StepFault("ENOMEM", why)

    if len(mm.vmas) > DEFAULT_MAX_MAP_COUNT:
        # do_mmap(): "Too many mappings?" (vm.max_map_count at its default; not a
        # tunable sysctl here, and the simulated mm has no text, stack or vdso VMAs).
        # Simplified: only mmap checks it, not __split_vma(), brk or mremap.
        raise refuse(f"more than {DEFAULT_MAX_MAP_COUNT:,} mappings (vm.max_map_count)")
    if inode is None and path:
        inode = filemap.open_file(k, path, create=False)
    if inode is None:
        if shared:
            kind = "anon_shared"
            try:
                inode = shmem_zero_setup(k, task, length, vm_flags)
            except StepFault as e:
                raise refuse(e.message) from None
        else:
            kind = "anon_private"
    elif kind is None:
        kind = ("shm" if inode.shmem else "file_shared") if shared else "file_private"

    addr = mm.get_unmapped_area(length)
    if addr == 0:
        raise refuse(f"no room for a mapping of {length} bytes")
    charged = 0
    if accountable_mapping(vm_flags):
        nr = length >> PAGE_SHIFT
        if not k.vm_enough_memory(mm, nr, cap_sys_admin=task.uid == 0, op="mmap"):
            if inode is not None and inode.i_mmap == 0 and kind == "anon_shared":
                del k.inodes[inode.ino]
            raise refuse(f"mmap of {length} bytes refused: Committed_AS would exceed the overcommit limit")
        vm_flags |= VM_ACCOUNT
        charged = nr
    vma = VmArea(start=addr, end=addr + length, flags=vm_flags, kind=kind, handle=handle, inode=inode,
                 pgoff=offset_bytes >> PAGE_SHIFT, charged_pages=charged)
    if inode is not None:
        inode.i_mmap += 1
    mm.insert(vma)
    # A shared anonymous mapping's charge is its shmem object's (shmem_zero_setup()).
    object_charge = inode.charged_pages if inode is not None and kind == "anon_shared" else 0
    k.emit(tp.MMAP, addr=addr, len_bytes=length, prot=pbits, flags=flags, vma_kind=kind,
           ino=inode.ino if inode else 0, path=inode.path if inode else "", handle=handle,
           charged_pages=charged + object_charge, ret=0)
    return vma


def remove_vma(k: Kernel, task: Task, vma: VmArea) -> int:
    """Unmap every page of ``vma``, drop it from the mm, return its Committed_AS
    charge and its page tables; the backing inode may go. Returns pages uncharged."""
    mm = task.mm
    assert mm is not None
    memory.zap_vma_range(k, task, vma, 0, vma.nr_pages)
    mm.remove(vma)
    uncharged = vma.charged_pages
    if uncharged:
        k.vm_unacct_memory(uncharged)
        vma.charged_pages = 0
    k.free_page_tables(mm, vma.start, vma.end)
    if vma.inode is not None:
        vma.inode.i_mmap -= 1
        filemap.iput(k, vma.inode)
    return uncharged


def find_vma(task: Task, handle: str, errno: str) -> VmArea:
    """The (lowest) VMA of the mapping named ``handle``, or the errno the syscall
    gives for none."""
    vma = task.mm.by_handle(handle) if task.mm is not None else None
    if vma is None:
        raise StepFault(errno, f"no mapping named {handle!r}")
    return vma


class RangePart(NamedTuple):
    """The part of one VMA a range of a mapping covers: its pages [first, first+nr)."""

    vma: VmArea
    first: int
    nr: int


def handle_range(task: Task, handle: str, offset_bytes: int, length_bytes: int,
                 errno: str) -> tuple[int, int, list[RangePart], bool]:
    """Resolve a range of the mapping named ``handle``: ``offset_bytes`` from its
    lowest address, ``length_bytes`` long (0: to the end of its highest VMA), page
    aligned as the syscalls align it (the start must be, the length is rounded up).

    Returns (start address, length, the VMA parts it covers lowest first, whether
    part of it is unmapped: a hole a munmap left). StepFault(``errno``) for no
    such mapping, StepFault(EINVAL) for an unaligned start or an empty range.
    """
    mm = task.mm
    frags = mm.fragments(handle) if mm is not None else []
    if not frags:
        raise StepFault(errno, f"no mapping named {handle!r}")
    if offset_bytes % PAGE_SIZE or offset_bytes < 0:
        raise StepFault("EINVAL", f"offset {offset_bytes} of mapping {handle!r} is not page aligned")
    base = frags[0].start
    start = base + offset_bytes
    end = frags[-1].end if length_bytes == 0 else start + page_align(length_bytes)
    if end <= start:
        raise StepFault("EINVAL", f"empty range at offset {offset_bytes} of mapping {handle!r}")
    parts: list[RangePart] = []
    covered = 0
    for vma in frags:
        lo, hi = max(start, vma.start), min(end, vma.end)
        if lo < hi:
            parts.append(RangePart(vma, (lo - vma.start) >> PAGE_SHIFT, (hi - lo) >> PAGE_SHIFT))
            covered += hi - lo
    return start, end - start, parts, covered < end - start


def split_vma(k: Kernel, task: Task, vma: VmArea, nr_first: int) -> VmArea:
    """Models __split_vma(): ``vma`` keeps its first ``nr_first`` pages and a new VMA,
    same flags, backing and handle, takes the rest, with its page-table entries,
    its share of the VM_ACCOUNT charge and its offsets (vm_pgoff, and the anon
    index). Returns the new (upper) VMA."""
    mm = task.mm
    assert mm is not None and 0 < nr_first < vma.nr_pages
    cut = vma.start + nr_first * PAGE_SIZE
    upper = VmArea(start=cut, end=vma.end, flags=vma.flags, kind=vma.kind, handle=vma.handle, inode=vma.inode,
                   pgoff=vma.pgoff + nr_first, anon_vma=vma.anon_vma, anon_pgoff=vma.anon_pgoff + nr_first)
    upper.ptes = vma.ptes[nr_first:].copy()
    upper.pte_write = vma.pte_write[nr_first:].copy()
    if vma.charged_pages:
        upper.charged_pages = vma.nr_pages - nr_first
        vma.charged_pages = nr_first
    vma.ptes = vma.ptes[:nr_first].copy()
    vma.pte_write = vma.pte_write[:nr_first].copy()
    vma.end = cut
    if vma.inode is not None:
        vma.inode.i_mmap += 1
    mm.insert(upper)
    return upper


def isolate_range(k: Kernel, task: Task, part: RangePart) -> VmArea:
    """The VMA holding exactly ``part``: split off below and above it as needed
    (vma_modify() -> split_vma())."""
    vma, first, count = part
    if first:
        vma = split_vma(k, task, vma, first)
    if count < vma.nr_pages:
        split_vma(k, task, vma, count)
    return vma


def unmap_parts(k: Kernel, task: Task, parts: list[RangePart]) -> int:
    """Unmap each part (do_vmi_align_munmap()): a whole VMA goes, a head or tail
    is cut off, a middle is split off first. Returns the VM_ACCOUNT pages
    returned to Committed_AS."""
    mm = task.mm
    assert mm is not None
    uncharged = 0
    for part in parts:
        vma, first, count = part
        if count == vma.nr_pages:
            uncharged += remove_vma(k, task, vma)
            continue
        if first != 0 and first + count != vma.nr_pages:
            vma = isolate_range(k, task, part)
            uncharged += remove_vma(k, task, vma)
            continue
        memory.zap_vma_range(k, task, vma, first, count)
        gone = count if vma.flags & VM_ACCOUNT else 0
        if gone:
            k.vm_unacct_memory(gone)
            vma.charged_pages -= gone
            uncharged += gone
        keep = slice(count, None) if first == 0 else slice(0, first)
        vma.ptes = vma.ptes[keep].copy()
        vma.pte_write = vma.pte_write[keep].copy()
        lo = vma.start + first * PAGE_SIZE
        if first == 0:
            vma.start += count * PAGE_SIZE
            vma.pgoff += count
            vma.anon_pgoff += count
        else:
            vma.end -= count * PAGE_SIZE
        k.free_page_tables(mm, lo, lo + count * PAGE_SIZE)
    return uncharged


def do_munmap(k: Kernel, task: Task, handle: str, offset_bytes: int = 0, length_bytes: int = 0) -> None:
    """Models do_vmi_munmap(): unmap a range of the mapping named ``handle`` (the
    whole of it by default); a range inside one VMA splits it in two
    (__split_vma()), as munmap(2) of the middle of a mapping does. The pages go,
    their VM_ACCOUNT charge is returned, page tables no VMA uses any more are
    freed. A range partly over a hole unmaps what is mapped (munmap(2) does not
    fail on holes); EINVAL for a range reaching past the mapping's end."""
    mm = task.mm
    assert mm is not None
    k.advance(costs.SYSCALL_NS)
    start, length, parts, _ = handle_range(task, handle, offset_bytes, length_bytes, "EINVAL")
    if not parts or start + length > mm.fragments(handle)[-1].end:
        # The range would reach past the mapping, into addresses the scenario
        # does not name: refused rather than guessed at.
        raise StepFault("EINVAL", f"munmap range {offset_bytes}+{length} is outside mapping {handle!r}")
    uncharged = unmap_parts(k, task, parts)
    k.emit(tp.MUNMAP, addr=start, len_bytes=length, handle=handle, uncharged_pages=uncharged)


def do_brk(k: Kernel, task: Task, increment_bytes: int) -> None:
    """Models SYSCALL_DEFINE1(brk): move the break; the heap is the mapping named
    ``heap``. On refusal the break stays and StepFault(ENOMEM) is raised (the
    syscall itself returns the old break; glibc's sbrk turns that into ENOMEM)."""
    mm = task.mm
    assert mm is not None
    k.advance(costs.SYSCALL_NS)
    old_brk = mm.brk
    new_brk = max(mm.start_brk, old_brk + increment_bytes)
    old_top = page_align(old_brk)
    new_top = page_align(new_brk)
    heaps = mm.fragments("heap")
    heap = heaps[-1] if heaps and heaps[-1].end == old_top and heaps[-1].writable else None
    delta_pages = (new_top - old_top) >> PAGE_SHIFT
    charged = 0
    if delta_pages > 0:
        next_vma = min((v.start for v in mm.vmas if v.start >= old_top), default=None)
        if next_vma is not None and new_top > next_vma:
            k.emit(tp.BRK, old_brk=old_brk, brk=new_brk, ret=old_brk, charged_pages=0)
            raise StepFault("ENOMEM", "brk would run into a mapping")
        if not k.vm_enough_memory(mm, delta_pages, cap_sys_admin=task.uid == 0, op="brk"):
            k.emit(tp.BRK, old_brk=old_brk, brk=new_brk, ret=old_brk, charged_pages=0)
            raise StepFault("ENOMEM", f"brk growth of {delta_pages} pages refused by overcommit")
        charged = delta_pages
        if heap is None:
            # do_brk_flags(): a new VMA unless the top of the heap can grow.
            heap = VmArea(start=old_top, end=new_top, flags=VM_READ | VM_WRITE | VM_ACCOUNT, kind="heap",
                          handle="heap", charged_pages=delta_pages)
            mm.insert(heap)
        else:
            heap.ptes = np.concatenate([heap.ptes, np.full(delta_pages, PTE_NONE, dtype=np.int32)])
            heap.pte_write = np.concatenate([heap.pte_write, np.zeros(delta_pages, dtype=bool)])
            heap.end = new_top
            heap.charged_pages += delta_pages
    elif delta_pages < 0 and heaps:
        # The break moves down: do_vmi_munmap() of [new_top, old_top).
        parts = []
        for vma in heaps:
            lo, hi = max(new_top, vma.start), min(old_top, vma.end)
            if lo < hi:
                parts.append(RangePart(vma, (lo - vma.start) >> PAGE_SHIFT, (hi - lo) >> PAGE_SHIFT))
        charged = -unmap_parts(k, task, parts)
    mm.brk = new_brk
    mm.layout_changed()  # get_unmapped_area() stays above the break
    k.emit(tp.BRK, old_brk=old_brk, brk=new_brk, ret=new_brk, charged_pages=charged)


def do_mlock(k: Kernel, task: Task, handle: str, lock: bool) -> None:
    """Models mlock(2)/munlock(2) of a whole mapping: set or clear VM_LOCKED; mlock
    faults every page in (populate_vma_page_range(), writing to private writable
    mappings so that no copy-on-write is left to do) and moves it to the
    unevictable list."""
    find_vma(task, handle, "ENOMEM")
    assert task.mm is not None
    k.advance(costs.SYSCALL_NS)
    for vma in task.mm.fragments(handle):
        if lock:
            vma.flags |= VM_LOCKED
            nr = vma.nr_pages
            if vma.inode is not None and not vma.inode.shmem:
                nr = min(nr, max(vma.inode.size_pages - vma.pgoff, 0))
            memory.handle_mm_fault_range(k, task, vma, 0, nr, vma.writable and not vma.shared)
        else:
            vma.flags &= ~VM_LOCKED
            vmscan.munlock_pages(k, vma.ptes[vma.ptes >= 0])
