"""Kernel versions, and every version at which memory-management behaviour changed.

A :data:`KernelVersion` is a tuple of ints of any length: ``"6.13"`` -> ``(6, 13)``,
``"2.6.32"`` -> ``(2, 6, 32)``, ``"6.18.44-fc"`` -> ``(6, 18, 44)``. Tuples compare
element-wise and a longer tuple sorts after its prefix, so ``(5, 4, 286) >= (5, 4)``
and ``(2, 6, 32) < (2, 6, 36)``. Every threshold below is therefore written without
trailing zeros (``(5, 4)``, never ``(5, 4, 0)``, which ``"5.4"`` would sort before).

Each threshold is the first version with the new behaviour, named once here with the
kernel commit or release that set it; code elsewhere compares against these names,
never against a literal tuple. Where the release is inferred (from a patch's date, or
bracketed between two trees that were read) the comment says so.
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_KERNEL_VERSION",
    "READ_TREES",
    "KernelVersion",
    "format_kernel_version",
    "kernel_era",
    "parse_kernel_version",
]

KernelVersion = tuple[int, ...]

#: The kernel the simulator models and a trace without a version is taken to be.
DEFAULT_KERNEL_VERSION = "6.13"

# --------------------------------------------------------------------------- read trees

#: The trees ``../shared/reference/kernel-mm-facts.md`` §0 was read from; the printk
#: layouts of the OOM report (§3) are known for each of them.
V2_6_32: KernelVersion = (2, 6, 32)
V3_4: KernelVersion = (3, 4)
V3_10: KernelVersion = (3, 10)
V4_9: KernelVersion = (4, 9)
V4_19: KernelVersion = (4, 19)
V5_4: KernelVersion = (5, 4)
V5_15: KernelVersion = (5, 15)
V6_6: KernelVersion = (6, 6)
V6_8: KernelVersion = (6, 8)
V6_13: KernelVersion = (6, 13)

#: The read trees, oldest first (:func:`kernel_era`).
READ_TREES: tuple[KernelVersion, ...] = (
    V2_6_32, V3_4, V3_10, V4_9, V4_19, V5_4, V5_15, V6_6, V6_8, V6_13,
)

# --------------------------------------------------------------------------- the OOM killer

#: ``oom_badness()`` replaces ``badness()``: "oom: badness heuristic rewrite"
#: (a63d83f427fb, 2.6.36); oom_score_adj appears beside oom_adj.
OOM_BADNESS_REWRITE: KernelVersion = (2, 6, 36)
#: "mm, oom: normalize oom scores to oom_score_adj scale only for userspace": the
#: score is kept in pages and normalised only for /proc and printing. Posted in May
#: 2012, after 3.4; the reference brackets it between its 3.4 and 3.10 trees. 3.6 is
#: inferred from the patch date, not read from a tag.
OOM_BADNESS_IN_PAGES: KernelVersion = (3, 6)
#: "mm, oom: base root bonus on current usage" (778c14affaf9, January 2014 -> 3.14):
#: before it the bonus was ``adj -= 30`` (3 % of totalpages), read in a 3.10 tree.
OOM_ROOT_BONUS_ON_USAGE: KernelVersion = (3, 14)
#: Root bonus removed: present in 4.9, absent from 4.19; the reference recalls mainline
#: 4.17 ("mm, oom: remove 3% bonus for CAP_SYS_ADMIN processes").
OOM_NO_ROOT_BONUS: KernelVersion = (4, 17)
#: MMF_OOM_SKIP and in_vfork() make a task ineligible; an existing victim whose mm has
#: MMF_OOM_SKIP is passed over instead of aborting the scan (read in 4.9).
OOM_SKIP_FLAG: KernelVersion = (4, 9)
#: "mm, oom: make the calculation of oom badness more accurate" (July 2020, 5.9):
#: signed badness, LONG_MIN for ineligible, oom_score in 0..2000.
OOM_SIGNED_BADNESS: KernelVersion = (5, 9)
#: Series that carry the 5.9 change as a stable backport: 5.4.y (5.4.286 has it;
#: which 5.4.y first had it is not known, so all of 5.4 is treated so).
OOM_SIGNED_BADNESS_BACKPORTS: tuple[KernelVersion, ...] = ((5, 4),)
#: From here an equal score replaces the earlier pick (the last task scanned wins a
#: tie), the cpuset test applies only to non-memcg OOMs, and no "Kill process ...
#: score" line is printed. 4.19 and 5.4.286 bracket these changes.
OOM_LAST_WINS: KernelVersion = (5, 4)
#: oom_adj reads are capped at OOM_ADJUST_MAX ("mm, oom: keep oom_adj under or at
#: upper limit when printing", posted October 2020; 5.11 is inferred).
OOM_ADJ_READ_CAP: KernelVersion = (5, 11)
#: "mm, oom: remove deprecated signal->oom_adj" (3.7): before it, signal_struct held
#: both values and dump_tasks()/dump_header() printed the stored ``oom_adj``.
OOM_ADJ_FIELD_REMOVED: KernelVersion = (3, 7)
#: The "Kill process ... score %u" line prints the normalised score unsigned; 3.x
#: printed it with ``%d``. Bracketed by the 3.10 and 4.9 trees; 4.0 is assumed.
OOM_KILL_SCORE_UNSIGNED: KernelVersion = (4,)
#: The OOM reaper kthread (mm/oom_kill.c ``oom_reaper``, 4.6: the reference recalls
#: "mm, oom: introduce oom reaper"); the simulator runs it synchronously until 5.4.
OOM_REAPER: KernelVersion = (4, 6)

# --------------------------------------------------------------------------- dump_stack

#: lib/dump_stack.c prints ``UID: %u`` on the ``CPU:`` line ("dump_stack: add the
#: UID", 6.11).
DUMP_STACK_UID: KernelVersion = (6, 11)
#: lib/dump_stack.c prints the preemption model, ``PREEMPT(none)`` (6.16).
DUMP_STACK_PREEMPT_MODEL: KernelVersion = (6, 16)

# --------------------------------------------------------------------------- memory cgroups, reclaim

#: "page_counter: track failcnt only for legacy cgroups" (Shakeel Butt, posted
#: February 2025; 6.15 is inferred from the date): only a cgroup v1 memory counter
#: counts failcnt, memsw never does, and a v2 OOM report prints memory.events max.
#: Read as absent in 6.13.7 and present in 6.18.19.
PAGE_COUNTER_TRACK_FAILCNT: KernelVersion = (6, 15)
#: "memcg: multi-memcg percpu charge cache": memcg_stock_pcp caches the charge of
#: NR_MEMCG_STOCK (7) memory cgroups per CPU instead of one (posted April 2025;
#: 6.16 is inferred). Read as one in 6.13.7 and seven in 6.18.19.
MEMCG_MULTI_STOCK: KernelVersion = (6, 16)
#: mm/pt_reclaim.c: MADV_DONTNEED of at least a PMD's span frees the PTE tables it
#: emptied (CONFIG_PT_RECLAIM, default y on x86-64; posted December 2024, 6.14 is
#: inferred). Read as absent in 6.13.7 and present in 6.18.19.
PT_RECLAIM: KernelVersion = (6, 14)

_VERSION = re.compile(r"\s*(\d+(?:\.\d+)+)")


def parse_kernel_version(text: str) -> KernelVersion:
    """The version tuple of a kernel release string.

    Leading dotted numbers are kept, anything after them dropped: ``"6.13"`` ->
    ``(6, 13)``, ``"2.6.32"`` -> ``(2, 6, 32)``, ``"6.18.44-fc-v669"`` ->
    ``(6, 18, 44)``. ValueError if there is no ``MAJOR.MINOR`` at the start.
    """
    m = _VERSION.match(text)
    if m is None:
        raise ValueError(f"bad kernel version {text!r}: expected MAJOR.MINOR[.PATCH], e.g. 6.13")
    return tuple(int(part) for part in m.group(1).split("."))


def format_kernel_version(version: KernelVersion) -> str:
    """``(6, 13)`` -> ``"6.13"``."""
    return ".".join(str(part) for part in version)


def kernel_era(version: KernelVersion) -> KernelVersion:
    """The newest read tree (:data:`READ_TREES`) not newer than ``version`` (the
    oldest, 2.6.32, for anything older): the printk layout ``version`` writes in."""
    era = READ_TREES[0]
    for tree in READ_TREES:
        if tree <= version:
            era = tree
    return era
