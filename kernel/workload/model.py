"""A scenario as data: the machine, sysctls, cgroups, boot-time files and processes.

Frozen dataclasses a Python caller builds directly and the codec (``codec.py``)
builds from TOML; ``validate.py`` checks either before a run. :meth:`Scenario.to_dict`
is the plain-data form a trace header records and replay reads back (the TOML keys,
sizes in bytes, durations in ns, defaults left out where the TOML leaves them out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memtrace.linux.version import DEFAULT_KERNEL_VERSION

from ..costs import DEFAULT_DISK_WRITE_BYTES_PER_S
from .steps import Step, step_to_dict


@dataclass(frozen=True)
class MachineSpec:
    """The simulated machine: RAM and swap in bytes, the kernel version emulated
    (it picks the OOM killer's formula, the report formats and the version-
    dependent paths), the cgroup version (1 or 2: v1 charges memory+swap first
    and has no per-memcg dirty limit), a cap on simulated time, and the write speed
    of the disk file writeback goes to, in bytes per second (TOML key
    ``disk_write_rate``, a size per second; the default is what this project's
    machine measured, see kernel/costs.py)."""

    ram_bytes: int = 24 << 30
    swap_bytes: int = 0
    kernel_version: str = DEFAULT_KERNEL_VERSION
    cgroup_version: int = 2
    time_limit_ns: int = 3600 * 1_000_000_000
    disk_write_bytes_per_s: int = DEFAULT_DISK_WRITE_BYTES_PER_S


@dataclass(frozen=True)
class CgroupSpec:
    """A memory cgroup: its path and memory.max (0: no limit), in bytes; swap_max
    -1 means no swap limit."""

    path: str
    max_bytes: int = 0
    swap_max_bytes: int = -1

    def to_dict(self) -> dict[str, Any]:
        """The ``[[cgroup]]`` table (limits left out when there are none)."""
        out: dict[str, Any] = {"path": self.path}
        if self.max_bytes:
            out["max"] = self.max_bytes
        if self.swap_max_bytes >= 0:
            out["swap_max"] = self.swap_max_bytes
        return out


@dataclass(frozen=True)
class FileSpec:
    """A file on disk at boot (not in the page cache), of ``size_bytes``."""

    path: str
    size_bytes: int


@dataclass(frozen=True)
class ProcessSpec:
    """A process of the scenario: its comm, credentials, oom_score_adj and steps.

    ``forked`` processes start from another process's ``fork`` step; the others
    start at ``start_ns``.
    """

    name: str
    steps: tuple[Step, ...]
    uid: int = 0
    oom_score_adj: int = 0
    start_ns: int = 0
    forked: bool = False
    pid: int | None = None
    cgroup: str = "/"
    comm: str = ""  # command name when it differs from ``name`` (names are unique, comms need not be)

    def to_dict(self) -> dict[str, Any]:
        """The ``[[process]]`` table (keys at their default left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.oom_score_adj:
            out["oom_score_adj"] = self.oom_score_adj
        if self.start_ns:
            out["start"] = self.start_ns
        if self.forked:
            out["forked"] = True
        if self.pid is not None:
            out["pid"] = self.pid
        if self.cgroup != "/":
            out["cgroup"] = self.cgroup
        if self.comm:
            out["comm"] = self.comm
        out["steps"] = [step_to_dict(s) for s in self.steps]
        return out


@dataclass(frozen=True)
class Scenario:
    """A whole workload: machine, sysctls, boot-time files and processes.

    ``sysctls`` map a name (``vm.swappiness`` or ``swappiness``) to a value as
    written: an integer, or text the kernel's proc handler reads (``"0x10"``).
    ``source`` names where the scenario came from in error messages.
    """

    name: str
    processes: tuple[ProcessSpec, ...]
    machine: MachineSpec = MachineSpec()
    sysctls: Mapping[str, int | str] = field(default_factory=dict)
    files: tuple[FileSpec, ...] = ()
    cgroups: tuple[CgroupSpec, ...] = ()
    description: str = ""
    source: str = "<python>"

    def process(self, name: str) -> ProcessSpec:
        """The process named ``name``; KeyError if there is none (a lookup, as a dict's)."""
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data (the TOML keys), for trace headers and replay."""
        machine: dict[str, Any] = {
            "ram": self.machine.ram_bytes,
            "swap": self.machine.swap_bytes,
            "kernel_version": self.machine.kernel_version,
        }
        if self.machine.cgroup_version != MachineSpec.cgroup_version:
            machine["cgroup_version"] = self.machine.cgroup_version
        if self.machine.time_limit_ns != MachineSpec.time_limit_ns:
            machine["time_limit"] = self.machine.time_limit_ns
        if self.machine.disk_write_bytes_per_s != MachineSpec.disk_write_bytes_per_s:
            machine["disk_write_rate"] = self.machine.disk_write_bytes_per_s
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "machine": machine,
            "sysctl": dict(sorted(self.sysctls.items())),
            "file": [{"path": f.path, "size": f.size_bytes} for f in self.files],
        }
        if self.cgroups:
            out["cgroup"] = [c.to_dict() for c in self.cgroups]
        out["process"] = [p.to_dict() for p in self.processes]
        return out
