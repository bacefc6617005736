"""mremap(2): mm/mremap.c as of 6.18 (read in 6.18.19), for a whole mapping named by
its handle.

- Shrinking unmaps the tail (do_vmi_munmap()): its pages go and its VM_ACCOUNT
  charge is returned.
- Growing charges the added pages to Committed_AS when the mapping is accounted
  (VM_ACCOUNT: private and writable; ENOMEM when the overcommit policy refuses),
  then grows in place when nothing is mapped after it (vma_expandable()), else,
  with MREMAP_MAYMOVE, moves the mapping to a free range found as mmap() finds one
  (get_unmapped_area(), the old mapping still in place) and grows it there
  (move_vma() -> move_page_tables()): every page moves with its page-table entry,
  keeping its anon index (the new VMA's vm_pgoff is the old one), so RSS and the
  memory cgroup charge stay as they were; the old range's page tables are freed
  and the new range's allocated. Without MREMAP_MAYMOVE, or with no free range,
  it is ENOMEM. A VM_LOCKED mapping's new pages are faulted in (mm_populate()).

Simplified: the mapping must be one VMA (a split one is EFAULT, as an old range
spanning VMAs is); MREMAP_FIXED and MREMAP_DONTUNMAP are not modelled; growing a
shared anonymous mapping does not grow its shmem object (the kernel would SIGBUS
past the object's size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.errors import EFAULT, EINVAL, ENOMEM
from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, memory, mmap
from .errors import StepFault
from .mm_types import MMAP_BASE, PTE_NONE, VM_ACCOUNT, VM_LOCKED, Task

if TYPE_CHECKING:
    from .kernel import Kernel

MREMAP_MAYMOVE = 1


def do_mremap(k: Kernel, task: Task, handle: str, new_length_bytes: int, maymove: bool = True) -> None:
    """Models SYSCALL_DEFINE5(mremap) for the mapping named ``handle`` and a new
    length. Emits mremap; raises StepFault with the syscall's errno on failure
    (the mapping is then unchanged)."""
    mm = task.mm
    assert mm is not None
    k.advance(costs.SYSCALL_NS)
    frags = mm.fragments(handle)
    new_len = mmap.page_align(new_length_bytes)
    flags = MREMAP_MAYMOVE if maymove else 0
    old_start = frags[0].start if frags else 0
    old_len = frags[0].length_bytes if frags else 0

    def event(new_addr: int, charged: int, ret: int) -> None:
        k.emit(tp.MREMAP, addr=old_start, old_len_bytes=old_len, new_len_bytes=new_len, flags=flags,
               new_addr=new_addr, handle=handle, charged_pages=charged, ret=ret)

    if len(frags) != 1:
        event(0, 0, EFAULT)
        raise StepFault("EFAULT", f"mremap of {handle!r}: " + (
            "no such mapping" if not frags else "the mapping was split in several VMAs"))
    vma = frags[0]
    if new_len <= 0:
        event(0, 0, EINVAL)
        raise StepFault("EINVAL", f"mremap of {handle!r} to length 0")
    if new_len == old_len:
        event(old_start, 0, 0)
        return
    if new_len < old_len:
        count = (old_len - new_len) >> PAGE_SHIFT
        uncharged = mmap.unmap_parts(k, task, [mmap.RangePart(vma, vma.nr_pages - count, count)])
        k.flush_rss()
        event(old_start, -uncharged, 0)
        return
    delta = (new_len - old_len) >> PAGE_SHIFT
    charged = 0
    if vma.flags & VM_ACCOUNT:
        if not k.vm_enough_memory(mm, delta, cap_sys_admin=task.uid == 0, op="mremap"):
            event(0, 0, ENOMEM)
            raise StepFault("ENOMEM", f"mremap growth of {handle!r} by {delta} pages refused by overcommit")
        charged = delta
    new_end = vma.end + delta * PAGE_SIZE
    expandable = new_end <= MMAP_BASE and not any(
        v is not vma and v.start < new_end and v.end > vma.end for v in mm.vmas)
    if expandable:
        new_addr = old_start
    elif maymove:
        new_addr = mm.get_unmapped_area(new_len)
    else:
        new_addr = 0
    if new_addr == 0:
        if charged:
            k.vm_unacct_memory(charged)
        event(0, 0, ENOMEM)
        raise StepFault("ENOMEM", f"mremap of {handle!r} to {new_len} bytes: " + (
            "no room after it and no MREMAP_MAYMOVE" if not maymove else "no free range that large"))
    if not expandable:
        # move_page_tables(): tables for the new range, entries moved, old tables freed.
        moved = np.flatnonzero(vma.ptes != PTE_NONE)
        k.alloc_page_tables(mm, new_addr + moved * PAGE_SIZE)
        k.advance(len(moved) * costs.FORK_PTE_NS)
        mm.remove(vma)
        k.free_page_tables(mm, vma.start, vma.end)
        vma.start, vma.end = new_addr, new_addr + old_len
        mm.insert(vma)
    vma.ptes = np.concatenate([vma.ptes, np.full(delta, PTE_NONE, dtype=np.int32)])
    vma.pte_write = np.concatenate([vma.pte_write, np.zeros(delta, dtype=bool)])
    vma.end = new_addr + new_len
    vma.charged_pages += charged
    if vma.flags & VM_LOCKED:
        memory.handle_mm_fault_range(k, task, vma, old_len >> PAGE_SHIFT, delta, vma.writable and not vma.shared)
        k.flush_rss()
    event(new_addr, charged, 0)


__all__ = ["MREMAP_MAYMOVE", "do_mremap"]
