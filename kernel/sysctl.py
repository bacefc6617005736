"""The vm.* sysctls the simulated kernel honours, with their kernel defaults and ranges.

:data:`SYSCTLS` is the one table: a new sysctl is one :class:`SysctlDef` here (name,
default, range, meaning) and the kernel code that reads it (``k.sysctls["vm.x"]``).
Everything else reads the table: scenario validation (``[sysctl]``), ``record
--sysctl`` and ``replay --sysctl`` (:meth:`Sysctls.check`), the ``sysctl_set``
events and the trace header's effective sysctls (:meth:`Sysctls.as_dict`).

Models kernel/sysctl.c and mm/*.c sysctl tables as of 6.13 (defaults and ranges
from ``../shared/reference/kernel-mm-facts.md`` §1.1, §4.1, §5). A default of
``None`` means the kernel computes it at boot (min_free_kbytes, the reserves):
``Kernel._boot()`` fills it in.

Ranges are the kernel's: the ``extra1``/``extra2`` bounds of a ``*_minmax``
handler, else the limits of the variable's C type (INT_MAX for an ``int`` read by
proc_dointvec, ULONG_MAX for an ``unsigned long`` read by proc_doulongvec_minmax).
Simplified: the kernel takes any ``int`` for overcommit_ratio,
dirty_writeback_centisecs, oom_kill_allocating_task and oom_dump_tasks (plain
proc_dointvec); here they take 0..INT_MAX, 0..INT_MAX, 0..1 and 0..1. One bound is
the simulator's: overcommit_kbytes stops at 2^52 kB (4 EiB), so that CommitLimit in
bytes fits the trace's 64-bit columns (with RAM at most 256 GiB, the
overcommit_ratio term does for any ratio up to INT_MAX).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from memtrace.errors import SysctlError
from memtrace.linux.limits import INT_MAX, ULONG_MAX

#: The simulator's bound on overcommit_kbytes (see the module docstring).
OVERCOMMIT_KBYTES_MAX = 1 << 52


@dataclass(frozen=True)
class SysctlDef:
    """One sysctl: its name, kernel default (None: computed at boot), range and meaning."""

    name: str
    default: int | None
    min: int
    max: int
    doc: str


SYSCTLS: tuple[SysctlDef, ...] = (
    SysctlDef("vm.overcommit_memory", 0, 0, 2, "0 heuristic, 1 always, 2 never (strict CommitLimit)"),
    SysctlDef("vm.overcommit_ratio", 50, 0, INT_MAX, "% of RAM in CommitLimit when overcommit_memory=2"),
    SysctlDef("vm.overcommit_kbytes", 0, 0, OVERCOMMIT_KBYTES_MAX,
              "CommitLimit RAM part in kB; replaces the ratio when non-zero"),
    SysctlDef("vm.admin_reserve_kbytes", None, 0, ULONG_MAX, "reserve kept for CAP_SYS_ADMIN in strict mode (kB)"),
    SysctlDef("vm.user_reserve_kbytes", None, 0, ULONG_MAX, "reserve kept per process in strict mode (kB)"),
    SysctlDef("vm.min_free_kbytes", None, 0, INT_MAX, "basis of the zone watermarks (kB)"),
    SysctlDef("vm.watermark_scale_factor", 10, 1, 3000, "gap between watermarks, in 1/10000 of the zone"),
    SysctlDef("vm.swappiness", 60, 0, 200, "relative I/O cost weight of anon vs file reclaim"),
    SysctlDef("vm.vfs_cache_pressure", 100, 0, INT_MAX, "scales dentry/inode shrinker counts (%)"),
    SysctlDef("vm.dirty_ratio", 20, 0, 100, "% of dirtyable memory at which writers are throttled"),
    SysctlDef("vm.dirty_background_ratio", 10, 0, 100, "% of dirtyable memory at which background writeback starts"),
    SysctlDef("vm.dirty_expire_centisecs", 3000, 0, INT_MAX, "age at which dirty data is written back (cs)"),
    SysctlDef("vm.dirty_writeback_centisecs", 500, 0, INT_MAX, "flusher wake-up interval (cs); 0 disables"),
    SysctlDef("vm.panic_on_oom", 0, 0, 2, "0 kill, 1 panic on global OOM, 2 panic always"),
    SysctlDef("vm.oom_kill_allocating_task", 0, 0, 1, "kill the allocating task instead of scanning"),
    SysctlDef("vm.oom_dump_tasks", 1, 0, 1, "print the task table in OOM reports"),
)

#: The table by name, in SYSCTLS order: what every reader looks a sysctl up in.
SYSCTL_DEFS: dict[str, SysctlDef] = {d.name: d for d in SYSCTLS}

#: What proc_get_long() (kernel/sysctl.c) reads: an optional '-', then ASCII digits
#: as strtoul() with base 0 takes them: 0x hex, a leading 0 for octal, else decimal.
_PROC_LONG = re.compile(r"(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
#: TMPBUFLEN - 2: the longest number proc_get_long() accepts, sign included.
_PROC_LONG_MAX_CHARS = 20


def _brief(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_proc_long(text: str) -> int:
    """The integer of a sysctl value written as text, as proc_dointvec() and
    proc_doulongvec_minmax() read it: ``"10"``, ``"-1"``, ``"0x1f"``, ``"010"``
    (octal, 8). Surrounding whitespace is dropped; anything else (``"+1"``,
    ``"1_0"``, ``"0b101"``, ``"1e3"``, non-ASCII digits) is ValueError, as the
    kernel's -EINVAL."""
    stripped = text.strip(" \t\n")
    m = _PROC_LONG.fullmatch(stripped)
    if m is None:
        raise ValueError(f"{_brief(text)} is not an integer (decimal, 0x hex or 0 octal)")
    if len(stripped) > _PROC_LONG_MAX_CHARS:
        raise ValueError(f"{_brief(text)} is longer than the {_PROC_LONG_MAX_CHARS} characters the kernel reads")
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if m.group(1) else value


def parse_sysctl_assignment(text: str) -> tuple[str, str]:
    """Split ``KEY=VALUE`` as given on the command line; SysctlError if malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise SysctlError(f"bad sysctl {text!r}: expected KEY=VALUE, e.g. vm.swappiness=10")
    return key.strip(), value.strip()


class Sysctls:
    """Current values of every sysctl; writes are checked against name and range."""

    def __init__(self) -> None:
        self._values: dict[str, int | None] = {name: d.default for name, d in SYSCTL_DEFS.items()}

    def __getitem__(self, name: str) -> int:
        value = self._values[self._def(name).name]
        if value is None:
            raise SysctlError(f"sysctl {name} has no value yet (computed at boot)")
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def _def(self, name: str) -> SysctlDef:
        d = SYSCTL_DEFS.get(name)
        if d is None:
            d = SYSCTL_DEFS.get("vm." + name)
        if d is None:
            raise SysctlError(f"unknown sysctl {name!r} (known: {', '.join(SYSCTL_DEFS)})")
        return d

    def check(self, name: str, value: int | str) -> tuple[str, int]:
        """The canonical name and integer value; SysctlError if unknown or out of range."""
        d = self._def(name)
        if isinstance(value, bool):
            raise SysctlError(f"sysctl {d.name}: value {value!r} is not an integer")
        if isinstance(value, str):
            try:
                value = parse_proc_long(value)
            except ValueError as e:
                raise SysctlError(f"sysctl {d.name}: value {e}") from None
        if not isinstance(value, int):
            raise SysctlError(f"sysctl {d.name}: value {_brief(value)} is not an integer")
        if not d.min <= value <= d.max:
            shown = str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"
            raise SysctlError(f"sysctl {d.name}: value {shown} is outside {d.min}..{d.max}")
        return d.name, value

    def set(self, name: str, value: int | str) -> tuple[str, int | None, int]:
        """Write a sysctl; returns (name, old value, new value).

        As in mm/util.c, writing overcommit_ratio zeroes overcommit_kbytes and the
        other way round.
        """
        name, value = self.check(name, value)
        old = self._values[name]
        self._values[name] = value
        if name == "vm.overcommit_ratio":
            self._values["vm.overcommit_kbytes"] = 0
        elif name == "vm.overcommit_kbytes":
            self._values["vm.overcommit_ratio"] = 0
        return name, old, value

    def is_set(self, name: str) -> bool:
        """Whether ``name`` has a value (a default computed at boot has none before)."""
        return self._values[self._def(name).name] is not None

    def as_dict(self) -> dict[str, int | None]:
        """Every sysctl's value by canonical name, in table order."""
        return dict(self._values)


def check_all(assignments: Mapping[str, int | str]) -> dict[str, int]:
    """Validate a set of overrides without applying them."""
    probe = Sysctls()
    return dict(probe.check(k, v) for k, v in assignments.items())
