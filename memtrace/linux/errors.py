"""The error returns of the syscalls memtrace models, as the kernel returns them
(negative errno values: ``return -ENOMEM;`` in mm/mmap.c, mm/mprotect.c, mm/mremap.c,
mm/madvise.c), and as the ``errno`` fields of the trace's error events hold them.
The numbers are Linux's (include/uapi/asm-generic/errno-base.h), taken from Python's
:mod:`errno`, which reads the same header on Linux."""

from __future__ import annotations

import errno

__all__ = ["EFAULT", "EINVAL", "ENOMEM"]

#: -ENOMEM (12): out of memory, or an address range with unmapped pages.
ENOMEM = -errno.ENOMEM
#: -EFAULT (14): a bad address.
EFAULT = -errno.EFAULT
#: -EINVAL (22): an invalid argument.
EINVAL = -errno.EINVAL
