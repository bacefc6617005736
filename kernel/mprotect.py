"""mprotect(2): mm/mprotect.c as of 6.18 (read in 6.18.19), mprotect_fixup().

A range of a mapping takes new PROT_* bits; a range covering part of a VMA splits
it (vma_modify_flags() -> split_vma()). Committed_AS follows the kernel's rule:

- a private mapping made writable that was neither accounted nor writable nor
  shared nor MAP_NORESERVE is charged for the range (ENOMEM when the overcommit
  policy refuses it, nothing changed) and becomes VM_ACCOUNT;
- made read-only it stays charged ("cannot reduce our commit if we make it
  unwritable again"), except a private anonymous range that was never written
  (no anon_vma yet), whose charge is returned.

Pages lose write access at once; made writable again, exclusively mapped
anonymous pages of a private mapping and the pages of a shmem mapping are writable
at once (MM_CP_TRY_CHANGE_WRITABLE), others take a write fault first (copy-on-
write, or a dirty-tracked shared file page). A private VM_LOCKED range made
writable is faulted in for writing (populate_vma_page_range()). A range that
starts in or crosses a hole is ENOMEM after the part before the hole is changed.

Simplified: no VMA merging; every file is taken to be open for writing (no EACCES
for a shared mapping of a read-only file); no protection keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.errors import ENOMEM
from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, memory, mmap
from .errors import StepFault
from .mm_types import (
    VM_ACCOUNT,
    VM_EXEC,
    VM_LOCKED,
    VM_NORESERVE,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
    Task,
    VmArea,
    prot_bits,
)
from .page_alloc import PG_ANON

if TYPE_CHECKING:
    from .kernel import Kernel


def _vm_flags(prot: str) -> int:
    return (VM_READ if "r" in prot else 0) | (VM_WRITE if "w" in prot else 0) | (VM_EXEC if "x" in prot else 0)


def mprotect_fixup(k: Kernel, task: Task, part: mmap.RangePart, prot: str) -> int:
    """Change one VMA part's protection (mprotect_fixup()). Returns the change of
    Committed_AS in pages; raises StepFault(ENOMEM) when a charge is refused."""
    vma, count = part.vma, part.nr
    old = vma.flags
    new = (old & ~(VM_READ | VM_WRITE | VM_EXEC)) | _vm_flags(prot)
    if new == old:
        return 0
    charge = 0
    if new & VM_WRITE:
        if not old & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE):
            if not k.vm_enough_memory(task.mm, count, cap_sys_admin=task.uid == 0, op="mprotect"):
                raise StepFault("ENOMEM", f"mprotect of {count} pages of {vma.handle!r} writable refused "
                                          "by overcommit")
            charge = count
            new |= VM_ACCOUNT
    elif old & VM_ACCOUNT and vma.inode is None and not vma.shared and not vma.anon_vma:
        new &= ~VM_ACCOUNT
    target: VmArea = mmap.isolate_range(k, task, part)
    target.flags = new
    target.charged_pages += charge
    if old & VM_ACCOUNT and not new & VM_ACCOUNT:
        charge = -target.charged_pages
        k.vm_unacct_memory(target.charged_pages)
        target.charged_pages = 0
    # change_protection()
    if not new & VM_WRITE:
        target.pte_write[:] = False
    else:
        present = target.ptes >= 0
        if target.shared:
            if target.inode is not None and target.inode.shmem:
                target.pte_write[present] = True
        else:
            pfns = target.ptes[present]
            exclusive = ((k.mem_map.flags[pfns] & PG_ANON) != 0) & (k.mem_map.mapcount[pfns] == 1)
            target.pte_write[present] = target.pte_write[present] | exclusive
        if (old & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED:
            memory.handle_mm_fault_range(k, task, target, 0, target.nr_pages, True)
    return charge


def do_mprotect(k: Kernel, task: Task, handle: str, offset_bytes: int, length_bytes: int, prot: str) -> None:
    """Models do_mprotect_pkey() on a range of the mapping named ``handle`` (offset
    from its lowest address; length 0: to its end). Emits mprotect; raises
    StepFault(ENOMEM) for a refused charge or a hole in the range."""
    k.advance(costs.SYSCALL_NS)
    start, length, parts, _ = mmap.handle_range(task, handle, offset_bytes, length_bytes, "ENOMEM")
    charged = 0

    def event(ret: int) -> None:
        k.emit(tp.MPROTECT, addr=start, len_bytes=length, prot=prot_bits(prot), handle=handle,
               charged_pages=charged, ret=ret)

    pos = start
    try:
        for part in parts:
            lo = part.vma.start + part.first * PAGE_SIZE
            if lo != pos:
                raise StepFault("ENOMEM", f"mprotect range of {handle!r} covers unmapped addresses")
            charged += mprotect_fixup(k, task, part, prot)
            pos = lo + part.nr * PAGE_SIZE
        if pos != start + length:
            raise StepFault("ENOMEM", f"mprotect range of {handle!r} covers unmapped addresses")
    except StepFault:
        k.flush_rss()
        event(ENOMEM)
        raise
    k.flush_rss()
    event(0)


__all__ = ["do_mprotect", "mprotect_fixup"]
