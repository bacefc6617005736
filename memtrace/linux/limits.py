"""Sizes and C-type limits of a 64-bit x86 kernel, named once.

Every module that needs the page size or the range of a C type the kernel prints a
field as (``%d``, ``%u``, ``%ld``, ``%lu``) imports it from here.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_MAP_COUNT",
    "INT_MAX",
    "INT_MIN",
    "LONG_MAX",
    "LONG_MIN",
    "PAGE_COUNTER_MAX",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "RES_COUNTER_MAX_KB",
    "TASK_SIZE_MAX_4LEVEL",
    "TASK_SIZE_MAX_5LEVEL",
    "UINT_MAX",
    "ULONG_MAX",
]

#: arch/x86/include/asm/page_types.h: 4 KiB pages, in bytes.
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

#: The C types of a 64-bit kernel (LP64): ``int``, ``unsigned int``, ``long``,
#: ``unsigned long``.
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
UINT_MAX = (1 << 32) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
ULONG_MAX = (1 << 64) - 1

#: arch/x86/include/asm/page_64_types.h TASK_SIZE_MAX with 4-level paging: the end of
#: the user address space (128 TiB less the guard page), in bytes. The simulator and
#: the state fold use this one.
TASK_SIZE_MAX_4LEVEL = (1 << 47) - PAGE_SIZE
#: TASK_SIZE_MAX with 5-level paging (x86-64 LA57; arm64's 52-bit space is smaller):
#: the largest user address any real kernel accepts, in bytes. Importers of real
#: traces use this bound: a break or mapping beyond it is one no kernel grants.
TASK_SIZE_MAX_5LEVEL = (1 << 56) - PAGE_SIZE

#: include/linux/mm.h DEFAULT_MAX_MAP_COUNT (USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN),
#: the default of vm.max_map_count: do_mmap() fails with -ENOMEM once an mm has
#: more VMAs than this. Checked on this machine (6.18): a process mapping single
#: pages of alternating protections fails at map_count 65,531.
DEFAULT_MAX_MAP_COUNT = 65530

#: include/linux/page_counter.h PAGE_COUNTER_MAX (LONG_MAX / PAGE_SIZE), in pages:
#: what an unlimited memcg counter reads since 3.19.
PAGE_COUNTER_MAX = LONG_MAX // PAGE_SIZE
#: res_counter's RES_COUNTER_MAX (ULLONG_MAX bytes) as mem_cgroup_print_oom_info
#: printed it (``>> 10``, in kB) before page counters replaced res_counters (3.19).
RES_COUNTER_MAX_KB = ULONG_MAX >> 10
