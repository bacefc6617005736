"""The vm.* sysctls the simulated kernel honours, with their kernel defaults and ranges.

Models kernel/sysctl.c and mm/*.c sysctl tables as of 6.13 (ranges from
``../shared/reference/kernel-mm-facts.md`` §1.1, §4.1, §5). A default of ``None``
means the kernel computes it at boot (min_free_kbytes, the reserves); the machine
fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

from memtrace.errors import SysctlError


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
    SysctlDef("vm.overcommit_ratio", 50, 0, 1 << 31, "% of RAM in CommitLimit when overcommit_memory=2"),
    SysctlDef("vm.overcommit_kbytes", 0, 0, 1 << 62, "CommitLimit RAM part in kB; replaces the ratio when non-zero"),
    SysctlDef("vm.admin_reserve_kbytes", None, 0, 1 << 62, "reserve kept for CAP_SYS_ADMIN in strict mode (kB)"),
    SysctlDef("vm.user_reserve_kbytes", None, 0, 1 << 62, "reserve kept per process in strict mode (kB)"),
    SysctlDef("vm.min_free_kbytes", None, 0, 1 << 31, "basis of the zone watermarks (kB)"),
    SysctlDef("vm.watermark_scale_factor", 10, 1, 3000, "gap between watermarks, in 1/10000 of the zone"),
    SysctlDef("vm.swappiness", 60, 0, 200, "relative I/O cost weight of anon vs file reclaim"),
    SysctlDef("vm.vfs_cache_pressure", 100, 0, 1 << 31, "scales dentry/inode shrinker counts (%)"),
    SysctlDef("vm.dirty_ratio", 20, 0, 100, "% of dirtyable memory at which writers are throttled"),
    SysctlDef("vm.dirty_background_ratio", 10, 0, 100, "% of dirtyable memory at which background writeback starts"),
    SysctlDef("vm.dirty_expire_centisecs", 3000, 0, 1 << 31, "age at which dirty data is written back (cs)"),
    SysctlDef("vm.dirty_writeback_centisecs", 500, 0, 1 << 31, "flusher wake-up interval (cs); 0 disables"),
    SysctlDef("vm.panic_on_oom", 0, 0, 2, "0 kill, 1 panic on global OOM, 2 panic always"),
    SysctlDef("vm.oom_kill_allocating_task", 0, 0, 1, "kill the allocating task instead of scanning"),
    SysctlDef("vm.oom_dump_tasks", 1, 0, 1, "print the task table in OOM reports"),
)

SYSCTL_DEFS: dict[str, SysctlDef] = {d.name: d for d in SYSCTLS}


def parse_sysctl_assignment(text: str) -> tuple[str, str]:
    """Split ``KEY=VALUE`` as given on the command line; SysctlError if malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise SysctlError(f"bad sysctl {text!r}: expected KEY=VALUE, e.g. vm.swappiness=10")
    return key.strip(), value.strip()


class Sysctls:
    """Current values of every sysctl; writes are checked against name and range."""

    def __init__(self) -> None:
        self._values: dict[str, int | None] = {d.name: d.default for d in SYSCTLS}

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
                value = int(value, 0)
            except ValueError:
                raise SysctlError(f"sysctl {d.name}: value {value!r} is not an integer") from None
        if not isinstance(value, int):
            raise SysctlError(f"sysctl {d.name}: value {value!r} is not an integer")
        if not d.min <= value <= d.max:
            raise SysctlError(f"sysctl {d.name}: value {value} is outside {d.min}..{d.max}")
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
        return self._values[self._def(name).name] is not None

    def as_dict(self) -> dict[str, int | None]:
        return dict(self._values)


def check_all(assignments: Mapping[str, int | str]) -> dict[str, int]:
    """Validate a set of overrides without applying them."""
    probe = Sysctls()
    return dict(probe.check(k, v) for k, v in assignments.items())
