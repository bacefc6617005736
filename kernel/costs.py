"""How long kernel work takes in simulated time, in nanoseconds.

These are invented, order-of-magnitude figures for a current x86-64 machine with an
NVMe disk, chosen so that simulated timelines read plausibly (a 1 GiB first touch
takes about 0.2 s, a 1 GiB cold read about 0.3 s); nothing is calibrated per
machine. They set the order of events, never their counts.
"""

from __future__ import annotations

SYSCALL_NS = 1_000  # entering and leaving a cheap syscall (mmap, munmap, brk, ...)
ANON_FAULT_NS = 700  # do_anonymous_page: allocate, zero 4 KiB, map
ZERO_PAGE_FAULT_NS = 250  # read fault mapping the shared zero page
FILE_MINOR_FAULT_NS = 300  # filemap_fault on a cached page, map it
SHMEM_FAULT_NS = 700  # shmem_fault allocating a new zeroed page
COW_FAULT_NS = 900  # wp_page_copy: allocate, copy 4 KiB, remap
WP_REUSE_FAULT_NS = 200  # wp_page_reuse / page_mkwrite: make the pte writable
DISK_READ_PAGE_NS = 1_200  # one 4 KiB page of sequential readahead I/O (~3.4 GB/s)
DISK_WRITE_PAGE_NS = 2_000  # one 4 KiB page written to swap (~2 GB/s)
COPY_PAGE_NS = 150  # copy_to_user/copy_from_user of 4 KiB in read()/write()
ZAP_PAGE_NS = 20  # unmapping one present pte (zap_pte_range)
FREE_PAGE_NS = 30  # dropping one page-cache page (invalidate, truncate)
FORK_PTE_NS = 10  # copying one pte in copy_page_range
SCAN_PAGE_NS = 40  # isolating and checking one page in reclaim
SWAP_WRITE_PAGE_NS = DISK_WRITE_PAGE_NS  # pageout of one page to swap
SWAP_READ_PAGE_NS = DISK_READ_PAGE_NS  # swap-in of one page (major fault I/O)

#: The default write speed of the disk file writeback goes to (a machine parameter,
#: MachineSpec.disk_write_bytes_per_s): 1.3 GB/s, measured, unlike the figures
#: above. The 1 GiB writer of experiment B (../staging/real) ran its write phase
#: in 0.47-0.94 s on that machine, bound by writeback once its memory cgroup was
#: full: 960 MiB written back in 0.67-0.81 s at a 64 MiB limit, 768 MiB in
#: 0.50-0.94 s at 256 MiB, i.e. about 1.3 GB/s.
DEFAULT_DISK_WRITE_BYTES_PER_S = 1_300_000_000

#: CONFIG_HZ of the kernel the real traces come from (mm_vmscan_throttled reports
#: its delays in steps of 4000 us there), and one jiffy in ns.
HZ = 250
JIFFY_NS = 1_000_000_000 // HZ
