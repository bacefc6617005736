"""Map single anonymous pages until mmap(2) fails; print how many, the errno and
the lines of /proc/self/maps then (see README.md). Alternating protections keep
neighbouring mappings from merging into one VMA."""

import ctypes
import ctypes.util
import os

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANON = 1, 2, 2, 0x20
MAP_FAILED = 2**64 - 1

n = 0
while True:
    prot = PROT_READ if n % 2 else PROT_READ | PROT_WRITE
    addr = libc.mmap(None, 4096, prot, MAP_PRIVATE | MAP_ANON, -1, 0)
    if addr is None or addr == MAP_FAILED:
        err = ctypes.get_errno()
        break
    n += 1
with open("/proc/self/maps") as f:
    lines = sum(1 for _ in f)
print(f"mmaps={n} errno={err} ({os.strerror(err)}) map_count_at_failure={lines}")
