"""An event's fields as the text its ``TP_printk`` prints (and ``perf script`` shows).

The importer's mappers (:mod:`..mapping`) read what the kernel prints: a live
capture hands them the events it decoded from the ring buffer in that same text, so
that a live recording and ``perf script | memtrace import`` of the same run are read
by the same code. Only the rare events take this path; the two hot ones
(``kmem:rss_stat``, ``exceptions:page_fault_user``) go to the mappers' row-level
entry points as numbers, and are printed here only when the importer needs their
line (a task seen for the first time, or under a new comm).

Each layout below is its event's ``print fmt`` on 6.x (``events/SYS/NAME/format``),
spelt as ``perf script`` prints it: syscall arguments as ``name: 0x%08lx``, a
syscall's return as ``0x%lx``, ``%ps`` of a user address as hex. An event with no
layout here prints ``name=value`` for each of its fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from memtrace.tracer.tracepoints import RSS_MEMBERS

__all__ = ["fault_text", "payload_text", "rss_stat_text"]

Fields = Mapping[str, int | str]

_U64 = (1 << 64) - 1
#: vmscan's reclaim_flags (include/trace/events/vmscan.h, show_reclaim_flags).
_RECLAIM_FLAGS = ((0x0001, "RECLAIM_WB_ANON"), (0x0002, "RECLAIM_WB_FILE"), (0x0010, "RECLAIM_WB_MIXED"),
                  (0x0004, "RECLAIM_WB_SYNC"), (0x0008, "RECLAIM_WB_ASYNC"))


def _i(fields: Fields, name: str) -> int:
    value = fields.get(name, 0)
    return value if isinstance(value, int) else 0


def _s(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    return value if isinstance(value, str) else str(value)


def _hex(value: int) -> str:
    """C's ``0x%lx`` of an unsigned long (a negative long as its two's complement)."""
    return f"0x{value & _U64:x}"


def rss_stat_text(mm_id: int, curr: int, member: int, size_bytes: int) -> str:
    """``mm_id=%u curr=%d type=%s size=%ldB`` (5.5+)."""
    name = RSS_MEMBERS[member] if 0 <= member < len(RSS_MEMBERS) else str(member)
    return f"mm_id={mm_id} curr={curr} type={name} size={size_bytes}B"


def fault_text(address: int, ip: int, error_code: int) -> str:
    """``address=%ps ip=%ps error_code=0x%lx`` (a user address prints as hex)."""
    return f"address={_hex(address)} ip={_hex(ip)} error_code={_hex(error_code)}"


def _syscall_enter(fields: Fields) -> str:
    return ", ".join(f"{k}: 0x{(v if isinstance(v, int) else 0) & _U64:08x}" for k, v in fields.items()
                     if k != "__syscall_nr")


def _syscall_exit(fields: Fields) -> str:
    return _hex(_i(fields, "ret"))


def _gfp(fields: Fields) -> str:
    value = _i(fields, "gfp_flags")
    return _hex(value) if value else "none"


def _reclaim_flags(value: int) -> str:
    names = [name for bit, name in _RECLAIM_FLAGS if value & bit]
    return "|".join(names) if names else "0x0"


def _filemap(fields: Fields) -> str:
    dev = _i(fields, "s_dev")
    return (f"dev {dev >> 20}:{dev & ((1 << 20) - 1)} ino {_i(fields, 'i_ino'):x} pfn=0x{_i(fields, 'pfn'):x} "
            f"ofs={_i(fields, 'index') << 12} order={_i(fields, 'order')}")


def _shrink_inactive(f: Fields) -> str:
    return (f"nid={_i(f, 'nid')} nr_scanned={_i(f, 'nr_scanned')} nr_reclaimed={_i(f, 'nr_reclaimed')} "
            f"nr_dirty={_i(f, 'nr_dirty')} nr_writeback={_i(f, 'nr_writeback')} "
            f"nr_congested={_i(f, 'nr_congested')} nr_immediate={_i(f, 'nr_immediate')} "
            f"nr_activate_anon={_i(f, 'nr_activate0')} nr_activate_file={_i(f, 'nr_activate1')} "
            f"nr_ref_keep={_i(f, 'nr_ref_keep')} nr_unmap_fail={_i(f, 'nr_unmap_fail')} "
            f"priority={_i(f, 'priority')} flags={_reclaim_flags(_i(f, 'reclaim_flags'))}")


def _mark_victim(f: Fields) -> str:
    if "total_vm" not in f:  # before 6.10: the pid only
        return f"pid={_i(f, 'pid')}"
    return (f"pid={_i(f, 'pid')} comm={_s(f, 'comm')} total-vm={_i(f, 'total_vm')}kB "
            f"anon-rss={_i(f, 'anon_rss')}kB file-rss:{_i(f, 'file_rss')}kB shmem-rss:{_i(f, 'shmem_rss')}kB "
            f"uid={_i(f, 'uid')} pgtables={_i(f, 'pgtables')}kB oom_score_adj={_i(f, 'oom_score_adj')}")


def _process_exit(f: Fields) -> str:
    text = f"comm={_s(f, 'comm')} pid={_i(f, 'pid')} prio={_i(f, 'prio')}"
    if "group_dead" in f:  # 6.16+
        text += f" group_dead={'true' if _i(f, 'group_dead') else 'false'}"
    return text


_LAYOUTS: dict[str, Callable[[Fields], str]] = {
    "sched:sched_process_fork": lambda f: (f"comm={_s(f, 'parent_comm')} pid={_i(f, 'parent_pid')} "
                                           f"child_comm={_s(f, 'child_comm')} child_pid={_i(f, 'child_pid')}"),
    "sched:sched_process_exec": lambda f: f"filename={_s(f, 'filename')} pid={_i(f, 'pid')} old_pid={_i(f, 'old_pid')}",
    "sched:sched_process_exit": _process_exit,
    "task:task_rename": lambda f: (f"pid={_i(f, 'pid')} oldcomm={_s(f, 'oldcomm')} newcomm={_s(f, 'newcomm')} "
                                   f"oom_score_adj={_i(f, 'oom_score_adj')}"),
    "task:task_newtask": lambda f: (f"pid={_i(f, 'pid')} comm={_s(f, 'comm')} clone_flags={_i(f, 'clone_flags'):x} "
                                    f"oom_score_adj={_i(f, 'oom_score_adj')}"),
    "oom:mark_victim": _mark_victim,
    "oom:oom_score_adj_update": lambda f: (f"pid={_i(f, 'pid')} comm={_s(f, 'comm')} "
                                           f"oom_score_adj={_i(f, 'oom_score_adj')}"),
    "filemap:mm_filemap_add_to_page_cache": _filemap,
    "filemap:mm_filemap_delete_from_page_cache": _filemap,
    "vmscan:mm_vmscan_kswapd_wake": lambda f: f"nid={_i(f, 'nid')} order={_i(f, 'order')}",
    "vmscan:mm_vmscan_kswapd_sleep": lambda f: f"nid={_i(f, 'nid')}",
    "vmscan:mm_vmscan_direct_reclaim_begin": lambda f: f"order={_i(f, 'order')} gfp_flags={_gfp(f)}",
    "vmscan:mm_vmscan_memcg_reclaim_begin": lambda f: f"order={_i(f, 'order')} gfp_flags={_gfp(f)}",
    "vmscan:mm_vmscan_memcg_softlimit_reclaim_begin": lambda f: f"order={_i(f, 'order')} gfp_flags={_gfp(f)}",
    "vmscan:mm_vmscan_direct_reclaim_end": lambda f: f"nr_reclaimed={_i(f, 'nr_reclaimed')}",
    "vmscan:mm_vmscan_memcg_reclaim_end": lambda f: f"nr_reclaimed={_i(f, 'nr_reclaimed')}",
    "vmscan:mm_vmscan_memcg_softlimit_reclaim_end": lambda f: f"nr_reclaimed={_i(f, 'nr_reclaimed')}",
    "vmscan:mm_vmscan_lru_shrink_inactive": _shrink_inactive,
    "vmscan:mm_vmscan_wakeup_kswapd": lambda f: f"nid={_i(f, 'nid')} order={_i(f, 'order')} gfp_flags={_gfp(f)}",
}


def payload_text(event: str, fields: Fields) -> str:
    """The text ``perf script`` prints after the name of ``event`` (``system:name``)."""
    layout = _LAYOUTS.get(event)
    if layout is not None:
        return layout(fields)
    system, _, name = event.partition(":")
    if system == "syscalls":
        return _syscall_enter(fields) if name.startswith("sys_enter_") else _syscall_exit(fields)
    if system == "oom" and set(fields) == {"pid"}:
        return f"pid={_i(fields, 'pid')}"
    return " ".join(f"{k}={v}" for k, v in fields.items())
