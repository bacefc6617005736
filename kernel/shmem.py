"""POSIX and SysV shared memory on shmem: mm/shmem.c and ipc/shm.c as of 6.13.

POSIX shm is a tmpfs file under /dev/shm (shm_open is open(O_CREAT) there, and
shm_unlink is unlink): its pages are charged to Committed_AS one by one as they are
allocated. A SysV segment is an unnamed shmem object ("SYSV%08x") charged in full at
shmget (unless SHM_NORESERVE outside strict mode) and destroyed by IPC_RMID once
nothing is attached (shm_destroy()).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memtrace.linux.limits import PAGE_SHIFT
from memtrace.tracer import tracepoints as tp

from . import costs, filemap, mmap, vmscan
from .errors import StepFault
from .mm_types import Inode, Task, VmArea

if TYPE_CHECKING:
    from .kernel import Kernel

SHM_DIR = "/dev/shm/"


def posix_path(name: str) -> str:
    return SHM_DIR + name.lstrip("/")


def shm_open(k: Kernel, task: Task, name: str) -> Inode:
    """shm_open(name, O_CREAT|O_RDWR): create or open /dev/shm/NAME."""
    k.advance(costs.SYSCALL_NS)
    inode = filemap.open_file(k, posix_path(name), create=True)
    k.emit(tp.SHM, op="shm_open", name=name, ino=inode.ino, size_bytes=inode.size_bytes, charged_pages=0)
    return inode


def ftruncate(k: Kernel, task: Task, path: str, size_bytes: int) -> None:
    """ftruncate(2) of a file by path (shm_open'ed objects: /dev/shm/NAME)."""
    k.advance(costs.SYSCALL_NS)
    inode = k.namespace.get(path)
    if inode is None:
        raise StepFault("ENOENT", f"no such file {path!r}")
    before = inode.charged_pages
    filemap.ftruncate(k, inode, size_bytes)
    k.emit(tp.SHM, op="ftruncate", name=path, ino=inode.ino, size_bytes=size_bytes,
           charged_pages=inode.charged_pages - before)


def shm_unlink(k: Kernel, task: Task, name: str) -> None:
    """shm_unlink(name): unlink /dev/shm/NAME; pages go with the last mapping."""
    k.advance(costs.SYSCALL_NS)
    path = posix_path(name)
    inode = k.namespace.get(path)
    if inode is None:
        raise StepFault("ENOENT", f"no POSIX shm object {name!r}")
    before = inode.charged_pages
    ino = inode.ino
    filemap.unlink(k, path)
    k.emit(tp.SHM, op="shm_unlink", name=name, ino=ino, size_bytes=inode.size_bytes,
           charged_pages=inode.charged_pages - before)


def shmget(k: Kernel, task: Task, segment: str, size_bytes: int, noreserve: bool) -> Inode:
    """Models newseg(): a shmem object of ``size_bytes`` charged in full unless
    SHM_NORESERVE (honoured only when overcommit_memory != 2)."""
    k.advance(costs.SYSCALL_NS)
    if segment in k.sysv:
        return k.sysv[segment]
    size = mmap.page_align(size_bytes)
    key = len(k.sysv) + len(k.sysv_removed) + 1
    inode = k.new_inode(f"SYSV{key:08x}", shmem=True, size_bytes=size, acct="size")
    nr = size >> PAGE_SHIFT
    if not (noreserve and k.sysctls["vm.overcommit_memory"] != 2):
        if not k.vm_enough_memory(task.mm, nr, cap_sys_admin=task.uid == 0, op="shmget"):
            del k.inodes[inode.ino]
            k.emit(tp.SHM, op="shmget", name=segment, ino=0, size_bytes=size, charged_pages=0)
            raise StepFault("ENOMEM", f"shmget of {size} bytes refused by overcommit")
        inode.charged_pages = nr
    k.sysv[segment] = inode
    k.emit(tp.SHM, op="shmget", name=segment, ino=inode.ino, size_bytes=size, charged_pages=inode.charged_pages)
    return inode


def shmat(k: Kernel, task: Task, segment: str, handle: str) -> VmArea:
    """Models do_shmat(): map the whole segment shared, read-write."""
    inode = k.sysv.get(segment)
    if inode is None:
        raise StepFault("EINVAL", f"no SysV segment {segment!r}")
    return mmap.do_mmap(k, task, handle, inode.size_bytes, "rw", True, "", 0, False, inode=inode, kind="shm")


def shmctl_rmid(k: Kernel, task: Task, segment: str) -> None:
    """Models shmctl(IPC_RMID): the segment is destroyed now if nothing is attached,
    else when the last attacher detaches."""
    k.advance(costs.SYSCALL_NS)
    inode = k.sysv.pop(segment, None)
    if inode is None:
        raise StepFault("EINVAL", f"no SysV segment {segment!r}")
    k.sysv_removed.add(segment)
    before = inode.charged_pages
    inode.nlink = 0
    filemap.iput(k, inode)
    k.emit(tp.SHM, op="shmctl_rmid", name=segment, ino=inode.ino, size_bytes=inode.size_bytes,
           charged_pages=inode.charged_pages - before)


def shm_lock(k: Kernel, task: Task, segment: str, lock: bool) -> None:
    """Models shmctl(SHM_LOCK/SHM_UNLOCK) -> shmem_lock(): mark the object
    AS_UNEVICTABLE (or not) and move its resident pages accordingly."""
    k.advance(costs.SYSCALL_NS)
    inode = k.sysv.get(segment)
    if inode is None:
        raise StepFault("EINVAL", f"no SysV segment {segment!r}")
    inode.unevictable = lock
    vmscan.mapping_set_unevictable(k, inode.cached_pfns(), lock)
