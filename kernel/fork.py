"""fork(2) and exit(2): kernel/fork.c dup_mmap() and kernel/exit.c do_exit()/exit_mmap().

At fork the child gets a copy of every VMA. ``dup_mmap()`` re-charges each
VM_ACCOUNT VMA to Committed_AS; ``copy_page_range()`` copies page tables only for
VMAs that ``vma_needs_copy()`` (those with an anon_vma), write-protecting private
pages in both parent and child so that the first write copies (COW). Shared and
never-written mappings are refilled by faults in the child.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer import tracepoints as tp

from . import costs, mmap
from .errors import StepFault
from .mm_types import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, VM_ACCOUNT, Task, VmArea
from .page_alloc import PG_ANON, PG_KERNEL, PG_SWAPBACKED
from .swapfile import is_swap_entry, swp_offset

if TYPE_CHECKING:
    from .kernel import Kernel


def do_fork(k: Kernel, parent: Task, comm: str) -> Task:
    """Create a child of ``parent`` named ``comm`` sharing its memory copy-on-write.

    Raises StepFault(ENOMEM) when the overcommit policy refuses the child's
    VM_ACCOUNT charges (nothing of the child is left behind).
    """
    pmm = parent.mm
    assert pmm is not None
    k.advance(costs.SYSCALL_NS)
    charge = sum(v.charged_pages for v in pmm.vmas if v.flags & VM_ACCOUNT)
    if charge and not k.vm_enough_memory(pmm, charge, cap_sys_admin=parent.uid == 0, op="fork"):
        raise StepFault("ENOMEM", f"fork refused: {charge} pages of Committed_AS for the child")
    child = k.new_task(comm, parent.uid, parent.oom_score_adj, parent)
    cmm = k.new_mm(child.pid)
    child.mm = cmm
    cmm.start_brk, cmm.brk = pmm.start_brk, pmm.brk
    mem = k.mem_map
    for vma in pmm.vmas:
        copy = VmArea(start=vma.start, end=vma.end, flags=vma.flags, kind=vma.kind, handle=vma.handle,
                      inode=vma.inode, pgoff=vma.pgoff, charged_pages=vma.charged_pages,
                      anon_vma=vma.anon_vma, anon_pgoff=vma.anon_pgoff)
        if vma.inode is not None:
            vma.inode.i_mmap += 1
        # In the mm before anything below allocates: reclaim's rmap walk must see
        # the child's copy of the page tables.
        cmm.insert(copy)
        if vma.anon_vma:
            present = vma.ptes >= 0
            pfns = vma.ptes[present]
            copy.ptes = vma.ptes.copy()
            mem.mapcount[pfns] += 1
            if not vma.shared:
                # Both sides lose write access: the next write copies (or reuses).
                vma.pte_write[:] = False
                copy.pte_write = np.zeros(vma.nr_pages, dtype=bool)
            else:
                copy.pte_write = vma.pte_write.copy()
            flags = mem.flags[pfns]
            anon = (flags & PG_ANON) != 0
            shmem = ~anon & ((flags & PG_SWAPBACKED) != 0)
            k.add_rss(cmm, MM_ANONPAGES, int(np.count_nonzero(anon)))
            k.add_rss(cmm, MM_SHMEMPAGES, int(np.count_nonzero(shmem)))
            k.add_rss(cmm, MM_FILEPAGES, int(np.count_nonzero(~anon & ~shmem)))
            entries = vma.ptes[is_swap_entry(vma.ptes)]
            if len(entries):
                k.swap.duplicate(swp_offset(entries))
                k.add_rss(cmm, MM_SWAPENTS, len(entries))
            touched = vma.start + np.flatnonzero(vma.ptes != -1) * PAGE_SIZE
            k.alloc_page_tables(cmm, touched)
            k.advance(len(pfns) * costs.FORK_PTE_NS)
    k.emit(tp.FORK, child_pid=child.pid, child_comm=child.comm, charged_pages=charge)
    return child


def do_exit(k: Kernel, task: Task, code: int) -> None:
    """Models do_exit() -> exit_mm() -> exit_mmap(): unmap everything, return every
    charge and page table, free the PGD and the kernel stack."""
    mm = task.mm
    if mm is not None:
        for vma in list(mm.vmas):
            mmap.remove_vma(k, task, vma)
        if mm.pgd_pfn >= 0:
            k.free_pages(np.array([mm.pgd_pfn], dtype=np.int32))
            k.stat.nr_pagetable -= 1
            mm.pgd_pfn = -1
    k.flush_rss()
    task.mm = None
    task.exited = True
    task.exit_code = code
    k.emit(tp.EXIT, comm=task.comm, code=code)
    if len(task.kernel_stack_pfns):
        assert (k.mem_map.flags[task.kernel_stack_pfns] == PG_KERNEL).all()
        k.free_pages(task.kernel_stack_pfns)
        k.stat.nr_kernel_stack_pages -= len(task.kernel_stack_pfns)
        task.kernel_stack_pfns = task.kernel_stack_pfns[:0]
