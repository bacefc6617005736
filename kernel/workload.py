"""The workload model: scenarios as data, and their TOML form.

A :class:`Scenario` is a machine (RAM, swap), sysctls, files that exist on disk at
boot, and processes with per-process steps. Steps name mappings by *handle*, never by
address, so a replay whose outcome diverges (an mmap refused, a process killed
earlier) stays well defined.

The TOML form mirrors the objects one to one::

    name = "private-anon-mapping"
    description = "mmap 1 GiB private anonymous memory, write it, unmap it"

    [machine]
    ram = "24GiB"

    [[process]]
    name = "writer"
    steps = [
      { op = "snapshot", label = "before" },
      { op = "mmap", handle = "buf", length = "1GiB", prot = "rw" },
      { op = "touch", handle = "buf", write = true },
    ]

A process with ``forked = true`` does not start at boot: a ``fork`` step of another
process starts it (``{ op = "fork", child = "name" }``), sharing the parent's
mappings (same handles) copy-on-write.

Sizes take an integer of bytes or a string with a binary unit (``"64MiB"``, ``"4k"``);
durations an integer of nanoseconds or a string (``"100ms"``, ``"2s"``).

Every value is bounded when the scenario is validated, before a run starts: by the
kernel's own limits where it has them (uid, exit status, oom_score_adj, pid) and
otherwise by what the simulator can hold (see :data:`MAX_RAM_BYTES` and friends).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from memtrace.errors import ScenarioError, SysctlError
from memtrace.linux.limits import PAGE_SIZE
from memtrace.linux.version import DEFAULT_KERNEL_VERSION, parse_kernel_version
from memtrace.units import format_duration_exact, format_size_exact, parse_duration, parse_size

from .filemap import is_tmpfs_path
from .sysctl import check_all as check_sysctls

# Bounds of a scenario. The simulator keeps numpy arrays per page: about 80 bytes per
# page of RAM in use (struct page columns, LRU lists, page tables; 256 GiB of RAM
# written through takes 5.3 GiB of host memory), 14 bytes per swap slot plus what
# the swapped pages cost, 12 bytes per page of a file's page-cache index and 5 per
# page of a mapping's page table. The bounds keep a run inside a 24 GiB host.

#: Smallest simulated RAM: the kernel image (48 MiB), the memmap and the DMA
#: reserve leave no managed pages at 64 MiB.
MIN_RAM_BYTES = 128 << 20
#: Largest simulated RAM.
MAX_RAM_BYTES = 256 << 30
#: Largest swap device.
MAX_SWAP_BYTES = 256 << 30
#: Largest size, offset or length a step or a boot-time file may name; also the
#: end (offset + length) of a range.
MAX_SIZE_BYTES = 256 << 30
#: Largest memory.max or memory.swap.max of a cgroup: PAGE_COUNTER_MAX pages
#: (LONG_MAX / PAGE_SIZE, mm/page_counter.c) in bytes.
MAX_CGROUP_LIMIT_BYTES = (2**63 - 1) // PAGE_SIZE * PAGE_SIZE
#: Memory cgroups besides the root: memcg ids are int16 in the simulator's page
#: columns, 1 being the root.
MAX_CGROUPS = 32766
#: Largest time a scenario names (start, sleep, time_limit): one day. Every
#: timestamp then fits the trace's 64-bit ns columns many times over; the bound is
#: the run's cost: the meminfo sampler wakes every 100 ms, so a simulated day takes
#: about 75 s and 0.5 GiB of host memory even with every process asleep.
MAX_TIME_NS = 86_400 * 1_000_000_000
#: Largest uid: uid_t is 32 bits and (uid_t)-1 means "no uid" (include/linux/uidgid.h).
MAX_UID = 2**32 - 2
#: Largest exit status: exit(2) keeps the low 8 bits.
MAX_EXIT_CODE = 255
#: Most iterations of a repeat, nested repeats' counts multiplied.
MAX_REPEAT_COUNT = 1_000_000
#: Deepest nesting of repeats.
MAX_REPEAT_DEPTH = 16
#: A scenario name: it names the default trace file (NAME.mtrace), so no slash, no
#: leading dot or dash, at most 128 characters.
SCENARIO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
#: PATH_MAX (include/uapi/linux/limits.h), counting the terminating NUL.
PATH_MAX = 4096
#: Largest scenario file read (the built-ins are a few KiB): a device such as
#: /dev/zero or a stray huge file is refused instead of read into memory.
MAX_SCENARIO_FILE_BYTES = 16 << 20

def _brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: int) -> str:
    """``value`` in decimal, or its size in bits when it has too many digits to print."""
    if abs(value) < 10**30:
        return str(value)
    return f"a {value.bit_length()}-bit {'negative ' if value < 0 else ''}number"


def _key(name: str, kind: str, default: Any = dataclasses.MISSING) -> Any:
    """A step field read from TOML key ``name`` and converted as ``kind``."""
    meta = {"key": name, "kind": kind}
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Step:
    """Base of every workload step. ``op`` is the step's name in TOML."""

    op: ClassVar[str] = ""


@dataclass(frozen=True)
class Snapshot(Step):
    """Read /proc/meminfo and record it under ``label``."""

    op: ClassVar[str] = "snapshot"
    label: str = _key("label", "str")


@dataclass(frozen=True)
class Mmap(Step):
    """mmap(2): private or shared, anonymous or of ``path``, named ``handle``.

    ``prot`` is a string of ``r``, ``w``, ``x``. ``on_enomem`` says what the
    process does if the call fails: ``exit`` or ``continue``.
    """

    op: ClassVar[str] = "mmap"
    handle: str = _key("handle", "str")
    length_bytes: int = _key("length", "size")
    prot: str = _key("prot", "prot", "rw")
    shared: bool = _key("shared", "bool", False)
    path: str = _key("file", "str", "")
    offset_bytes: int = _key("offset", "size", 0)
    noreserve: bool = _key("noreserve", "bool", False)
    on_enomem: str = _key("on_enomem", "on_enomem", "exit")


@dataclass(frozen=True)
class Munmap(Step):
    """munmap(2) of a mapping by handle; the whole mapping unless a range is given."""

    op: ClassVar[str] = "munmap"
    handle: str = _key("handle", "str")
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)


@dataclass(frozen=True)
class Touch(Step):
    """Access every page of a range of a mapping (read, or write with ``write``).

    ``length`` 0 means to the end of the mapping.
    """

    op: ClassVar[str] = "touch"
    handle: str = _key("handle", "str")
    write: bool = _key("write", "bool", False)
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)


@dataclass(frozen=True)
class Brk(Step):
    """Move the program break by ``increment_bytes`` (sbrk); the heap is handle ``heap``."""

    op: ClassVar[str] = "brk"
    increment_bytes: int = _key("increment", "size")
    on_enomem: str = _key("on_enomem", "on_enomem", "exit")


@dataclass(frozen=True)
class FileRead(Step):
    """read(2) a range of a file (``length`` 0: to its end) into a user buffer."""

    op: ClassVar[str] = "read"
    path: str = _key("file", "str")
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)


@dataclass(frozen=True)
class FileWrite(Step):
    """write(2) ``length`` bytes at ``offset``; creates the file if it is missing."""

    op: ClassVar[str] = "write"
    path: str = _key("file", "str")
    length_bytes: int = _key("length", "size")
    offset_bytes: int = _key("offset", "size", 0)


@dataclass(frozen=True)
class Unlink(Step):
    """unlink(2) a file (tmpfs or disk); its pages go with the last user."""

    op: ClassVar[str] = "unlink"
    path: str = _key("file", "str")


@dataclass(frozen=True)
class Sync(Step):
    """sync(2): write back every dirty page-cache page."""

    op: ClassVar[str] = "sync"


@dataclass(frozen=True)
class DropCaches(Step):
    """Write ``value`` (1, 2 or 3) to /proc/sys/vm/drop_caches."""

    op: ClassVar[str] = "drop_caches"
    value: int = _key("value", "int")


@dataclass(frozen=True)
class Fork(Step):
    """fork(2) the process named ``child`` (declared with ``forked = true``)."""

    op: ClassVar[str] = "fork"
    child: str = _key("child", "str")


@dataclass(frozen=True)
class Wait(Step):
    """waitpid(2) for the forked process named ``child`` to exit."""

    op: ClassVar[str] = "wait"
    child: str = _key("child", "str")


@dataclass(frozen=True)
class Exit(Step):
    """exit(2): the process ends and its mm is torn down."""

    op: ClassVar[str] = "exit"
    code: int = _key("code", "int", 0)


@dataclass(frozen=True)
class Sleep(Step):
    """Sleep for ``duration_ns`` of simulated time."""

    op: ClassVar[str] = "sleep"
    duration_ns: int = _key("duration", "duration")


@dataclass(frozen=True)
class ShmOpen(Step):
    """shm_open(3): create /dev/shm/``name`` (a tmpfs file)."""

    op: ClassVar[str] = "shm_open"
    name: str = _key("name", "str")


@dataclass(frozen=True)
class Ftruncate(Step):
    """ftruncate(2) a file to ``size_bytes`` (POSIX shm objects: ``file`` = /dev/shm/NAME)."""

    op: ClassVar[str] = "ftruncate"
    path: str = _key("file", "str")
    size_bytes: int = _key("size", "size")


@dataclass(frozen=True)
class ShmUnlink(Step):
    """shm_unlink(3): remove /dev/shm/``name``."""

    op: ClassVar[str] = "shm_unlink"
    name: str = _key("name", "str")


@dataclass(frozen=True)
class Shmget(Step):
    """shmget(2) with IPC_CREAT: a SysV segment of ``size_bytes`` named ``segment``."""

    op: ClassVar[str] = "shmget"
    segment: str = _key("segment", "str")
    size_bytes: int = _key("size", "size")
    noreserve: bool = _key("noreserve", "bool", False)
    on_enomem: str = _key("on_enomem", "on_enomem", "exit")


@dataclass(frozen=True)
class Shmat(Step):
    """shmat(2): map SysV ``segment`` shared, as mapping ``handle``."""

    op: ClassVar[str] = "shmat"
    segment: str = _key("segment", "str")
    handle: str = _key("handle", "str")


@dataclass(frozen=True)
class Shmdt(Step):
    """shmdt(2): unmap the SysV mapping ``handle``."""

    op: ClassVar[str] = "shmdt"
    handle: str = _key("handle", "str")


@dataclass(frozen=True)
class ShmctlRmid(Step):
    """shmctl(IPC_RMID): the segment goes once nothing is attached."""

    op: ClassVar[str] = "shmctl_rmid"
    segment: str = _key("segment", "str")


@dataclass(frozen=True)
class ShmLock(Step):
    """shmctl(SHM_LOCK): the segment's pages become unevictable (AS_UNEVICTABLE)."""

    op: ClassVar[str] = "shm_lock"
    segment: str = _key("segment", "str")


@dataclass(frozen=True)
class ShmUnlock(Step):
    """shmctl(SHM_UNLOCK): the segment's pages can be swapped again."""

    op: ClassVar[str] = "shm_unlock"
    segment: str = _key("segment", "str")


@dataclass(frozen=True)
class SetOomScoreAdj(Step):
    """Write ``value`` to /proc/self/oom_score_adj (-1000..1000)."""

    op: ClassVar[str] = "set_oom_score_adj"
    value: int = _key("value", "int")


@dataclass(frozen=True)
class SetOomAdj(Step):
    """Write ``value`` to the legacy /proc/self/oom_adj (-17..15), converted as
    fs/proc/base.c does (x * 1000 / 17, 15 -> 1000)."""

    op: ClassVar[str] = "set_oom_adj"
    value: int = _key("value", "int")


@dataclass(frozen=True)
class Mlock(Step):
    """mlock(2) a whole mapping: fault every page in and make it unevictable."""

    op: ClassVar[str] = "mlock"
    handle: str = _key("handle", "str")


@dataclass(frozen=True)
class Munlock(Step):
    """munlock(2) a whole mapping: its pages become evictable again."""

    op: ClassVar[str] = "munlock"
    handle: str = _key("handle", "str")


@dataclass(frozen=True)
class Repeat(Step):
    """Run ``steps`` ``count`` times (0: until the process is killed or a step
    fails, at most MAX_REPEAT_COUNT times). ``{i}`` in a handle, label, file or
    segment is the iteration, from 0.

    Counts are at most MAX_REPEAT_COUNT, nested counts multiplied. With count 0
    every iteration must take simulated time: validate() refuses a body of
    snapshots, syncs, drop_caches and zero sleeps, and the runner stops the run
    at an iteration that took none.
    """

    op: ClassVar[str] = "repeat"
    steps: tuple[Step, ...] = _key("steps", "steps")
    count: int = _key("count", "int", 0)


STEP_TYPES: dict[str, type[Step]] = {
    cls.op: cls
    for cls in (
        Snapshot, Mmap, Munmap, Touch, Brk, FileRead, FileWrite, Unlink, Sync,
        DropCaches, Fork, Wait, Exit, Sleep, ShmOpen, Ftruncate, ShmUnlink, Shmget,
        Shmat, Shmdt, ShmctlRmid, ShmLock, ShmUnlock, SetOomScoreAdj, SetOomAdj, Mlock, Munlock, Repeat,
    )
}


@dataclass(frozen=True)
class MachineSpec:
    """The simulated machine: RAM and swap in bytes, the kernel version emulated
    (it picks the OOM killer's formula and the report formats), the cgroup
    version (1 or 2) and a cap on simulated time."""

    ram_bytes: int = 24 << 30
    swap_bytes: int = 0
    kernel_version: str = DEFAULT_KERNEL_VERSION
    cgroup_version: int = 2
    time_limit_ns: int = 3600 * 1_000_000_000


@dataclass(frozen=True)
class CgroupSpec:
    """A memory cgroup: its path and memory.max (0: no limit), in bytes; swap_max
    -1 means no swap limit."""

    path: str
    max_bytes: int = 0
    swap_max_bytes: int = -1


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


@dataclass(frozen=True)
class Scenario:
    """A whole workload: machine, sysctls, boot-time files and processes."""

    name: str
    processes: tuple[ProcessSpec, ...]
    machine: MachineSpec = MachineSpec()
    sysctls: Mapping[str, int] = field(default_factory=dict)
    files: tuple[FileSpec, ...] = ()
    cgroups: tuple[CgroupSpec, ...] = ()
    description: str = ""
    source: str = "<python>"

    def process(self, name: str) -> ProcessSpec:
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
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "machine": machine,
            "sysctl": dict(sorted(self.sysctls.items())),
            "file": [{"path": f.path, "size": f.size_bytes} for f in self.files],
        }
        if self.cgroups:
            out["cgroup"] = [_cgroup_to_dict(c) for c in self.cgroups]
        out["process"] = [_process_to_dict(p) for p in self.processes]
        return out


def _cgroup_to_dict(c: CgroupSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"path": c.path}
    if c.max_bytes:
        out["max"] = c.max_bytes
    if c.swap_max_bytes >= 0:
        out["swap_max"] = c.swap_max_bytes
    return out


def _process_to_dict(p: ProcessSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name}
    if p.uid:
        out["uid"] = p.uid
    if p.oom_score_adj:
        out["oom_score_adj"] = p.oom_score_adj
    if p.start_ns:
        out["start"] = p.start_ns
    if p.forked:
        out["forked"] = True
    if p.pid is not None:
        out["pid"] = p.pid
    if p.cgroup != "/":
        out["cgroup"] = p.cgroup
    if p.comm:
        out["comm"] = p.comm
    out["steps"] = [step_to_dict(s) for s in p.steps]
    return out


def step_to_dict(step: Step) -> dict[str, Any]:
    """A step as its TOML inline table (defaults left out)."""
    out: dict[str, Any] = {"op": step.op}
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.metadata["kind"] == "steps":
            value = [step_to_dict(s) for s in value]
        out[f.metadata["key"]] = value
    return out


# --------------------------------------------------------------------------- loading


def _convert(kind: str, value: Any) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_brief(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_brief(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_brief(value)}")
        return value
    if kind == "size":
        return parse_size(value)
    if kind == "duration":
        return parse_duration(value)
    if kind == "prot":
        if not isinstance(value, str) or not set(value) <= set("rwx"):
            raise ValueError(f"expected a protection such as \"r\", \"rw\" or \"rx\", got {_brief(value)}")
        return "".join(c for c in "rwx" if c in value)
    if kind == "on_enomem":
        if value not in ("exit", "continue"):
            raise ValueError(f"expected \"exit\" or \"continue\", got {_brief(value)}")
        return value
    raise AssertionError(kind)


def step_from_dict(data: Mapping[str, Any], where: str, depth: int = 0) -> Step:
    """Build a step from its TOML table; ScenarioError names ``where`` and the key.

    ``depth`` is the number of repeats the step is inside.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: a step must be a table such as {{ op = \"sleep\", duration = \"1ms\" }}")
    op = data.get("op")
    if op is None:
        raise ScenarioError(f"{where}: missing key 'op'")
    cls = STEP_TYPES.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ScenarioError(f"{where}: key 'op': unknown op {_brief(op)} (known: {', '.join(sorted(STEP_TYPES))})")
    fields = {f.metadata["key"]: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(fields) - {"op"})
    if unknown:
        raise ScenarioError(f"{where}: op {op!r} takes no key {unknown[0]!r} (keys: {', '.join(fields) or 'none'})")
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        if key not in data:
            if f.default is dataclasses.MISSING:
                raise ScenarioError(f"{where}: op {op!r} needs key {key!r}")
            continue
        if f.metadata["kind"] == "steps":
            body = data[key]
            if not isinstance(body, list) or not body:
                raise ScenarioError(f"{where}: key {key!r}: expected a non-empty array of step tables")
            if depth + 1 > MAX_REPEAT_DEPTH:
                raise ScenarioError(f"{where}: key {key!r}: repeats nest more than {MAX_REPEAT_DEPTH} deep")
            kwargs[f.name] = tuple(step_from_dict(b, f"{where}.{n}", depth + 1) for n, b in enumerate(body, 1))
            continue
        try:
            kwargs[f.name] = _convert(f.metadata["kind"], data[key])
        except ValueError as e:
            raise ScenarioError(f"{where}: key {key!r}: {e}") from None
    return cls(**kwargs)


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(table) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")


def _get(table: Mapping[str, Any], key: str, kind: str, default: Any, where: str) -> Any:
    if key not in table:
        return default
    try:
        return _convert(kind, table[key])
    except ValueError as e:
        raise ScenarioError(f"{where}: key {key!r}: {e}") from None


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    """The array of tables under ``key`` (``[[file]]``, ``[[cgroup]]``), or []."""
    tables = data.get(key, [])
    if not isinstance(tables, list):
        raise ScenarioError(f"{source}: key {key!r} must be an array of tables ([[{key}]])")
    return tables


def scenario_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Build and validate a scenario from TOML-shaped data.

    Every problem raises ScenarioError naming ``source``, the process, the step
    number (from 1) and the key (SysctlError for a sysctl).
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: a scenario must be a table, not {type(data).__name__}")
    _check_keys(data, {"name", "description", "machine", "sysctl", "file", "cgroup", "process"}, source)
    if "name" in data:
        name = _get(data, "name", "str", "", source)
    else:
        name = Path(source).stem
        if not SCENARIO_NAME.fullmatch(name):
            raise ScenarioError(f"{source}: no key 'name', and the file name {name!r} is not a scenario name "
                                "(letters, digits, '.', '_', '-'): add name = \"...\"")
    description = _get(data, "description", "str", "", source)

    machine_t = data.get("machine", {})
    if not isinstance(machine_t, Mapping):
        raise ScenarioError(f"{source}: [machine] must be a table")
    where = f"{source}: [machine]"
    _check_keys(machine_t, {"ram", "swap", "kernel_version", "cgroup_version", "time_limit"}, where)
    machine = MachineSpec(
        ram_bytes=_get(machine_t, "ram", "size", MachineSpec.ram_bytes, where),
        swap_bytes=_get(machine_t, "swap", "size", MachineSpec.swap_bytes, where),
        kernel_version=_get(machine_t, "kernel_version", "str", MachineSpec.kernel_version, where),
        cgroup_version=_get(machine_t, "cgroup_version", "int", MachineSpec.cgroup_version, where),
        time_limit_ns=_get(machine_t, "time_limit", "duration", MachineSpec.time_limit_ns, where),
    )
    _check_machine(machine, where)

    sysctl_t = data.get("sysctl", {})
    if not isinstance(sysctl_t, Mapping):
        raise ScenarioError(f"{source}: [sysctl] must be a table of \"vm.name\" = value")
    sysctls: dict[str, int] = {}
    for key, value in sysctl_t.items():
        if isinstance(value, Mapping):  # [sysctl.vm] swappiness = 10
            for sub, v in value.items():
                sysctls[f"{key}.{sub}"] = v
        else:
            sysctls[key] = value

    files: list[FileSpec] = []
    for i, f in enumerate(_tables(data, "file", source), 1):
        where = f"{source}: file {i}"
        if not isinstance(f, Mapping):
            raise ScenarioError(f"{where}: must be a table with path and size")
        _check_keys(f, {"path", "size"}, where)
        if "path" not in f or "size" not in f:
            raise ScenarioError(f"{where}: needs keys 'path' and 'size'")
        files.append(FileSpec(_get(f, "path", "str", "", where), _get(f, "size", "size", 0, where)))

    cgroups: list[CgroupSpec] = []
    for i, c in enumerate(_tables(data, "cgroup", source), 1):
        where = f"{source}: cgroup {i}"
        if not isinstance(c, Mapping) or "path" not in c:
            raise ScenarioError(f"{where}: must be a table with at least a path")
        _check_keys(c, {"path", "max", "swap_max"}, where)
        cgroups.append(CgroupSpec(_get(c, "path", "str", "", where), _get(c, "max", "size", 0, where),
                                  _get(c, "swap_max", "size", -1, where)))

    processes: list[ProcessSpec] = []
    raw_procs = data.get("process", [])
    if not isinstance(raw_procs, list) or not raw_procs:
        raise ScenarioError(f"{source}: needs at least one [[process]]")
    for i, p in enumerate(raw_procs, 1):
        where = f"{source}: process {i}"
        if not isinstance(p, Mapping):
            raise ScenarioError(f"{where}: must be a table")
        _check_keys(p, {"name", "uid", "oom_score_adj", "start", "forked", "steps", "pid", "cgroup", "comm"}, where)
        pname = _get(p, "name", "str", None, where)
        if not pname:
            raise ScenarioError(f"{where}: needs key 'name'")
        where = f"{source}: process {pname!r}"
        raw_steps = p.get("steps", [])
        if not isinstance(raw_steps, list):
            raise ScenarioError(f"{where}: key 'steps' must be an array of tables")
        steps = tuple(step_from_dict(s, f"{where} step {j}") for j, s in enumerate(raw_steps, 1))
        processes.append(
            ProcessSpec(
                name=pname,
                steps=steps,
                uid=_get(p, "uid", "int", 0, where),
                oom_score_adj=_get(p, "oom_score_adj", "int", 0, where),
                start_ns=_get(p, "start", "duration", 0, where),
                forked=_get(p, "forked", "bool", False, where),
                pid=_get(p, "pid", "int", None, where),
                cgroup=_get(p, "cgroup", "str", "/", where),
                comm=_get(p, "comm", "str", "", where),
            )
        )
    scenario = Scenario(
        name=name,
        description=description,
        machine=machine,
        sysctls=sysctls,
        files=tuple(files),
        cgroups=tuple(cgroups),
        processes=tuple(processes),
        source=source,
    )
    validate(scenario)
    return scenario


def _outside(where: str, key: str, value: int, low: str, high: str) -> ScenarioError:
    return ScenarioError(f"{where}: key {key!r}: {_number(value)} is outside {low}..{high}")


def _check_pages(where: str, key: str, nr_bytes: int, low: int, high: int) -> None:
    """``nr_bytes`` is a whole number of pages in ``low..high``."""
    if not low <= nr_bytes <= high:
        high_text = str(high) if high == MAX_CGROUP_LIMIT_BYTES else format_size_exact(high)
        raise _outside(where, key, nr_bytes, format_size_exact(low) if low > 0 else str(low), high_text)
    if nr_bytes % PAGE_SIZE:
        raise ScenarioError(f"{where}: key {key!r}: {_number(nr_bytes)} is not a multiple of the page size "
                            f"({PAGE_SIZE})")


def _check_machine(m: MachineSpec, where: str) -> None:
    """The bounds of the machine: see MIN_RAM_BYTES and the other module constants."""
    _check_pages(where, "ram", m.ram_bytes, MIN_RAM_BYTES, MAX_RAM_BYTES)
    _check_pages(where, "swap", m.swap_bytes, 0, MAX_SWAP_BYTES)
    try:
        parse_kernel_version(m.kernel_version)
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"{where}: key 'kernel_version': {e}") from None
    if m.cgroup_version not in (1, 2):
        raise ScenarioError(f"{where}: key 'cgroup_version': {_number(m.cgroup_version)} is not 1 or 2")
    if not 1 <= m.time_limit_ns <= MAX_TIME_NS:
        raise _outside(where, "time_limit", m.time_limit_ns, "1ns", format_duration_exact(MAX_TIME_NS))


def _check_path(path: str, where: str, key: str) -> None:
    """A file path as open(2) takes it here: absolute, not a directory, under PATH_MAX."""
    if not path.startswith("/") or path.endswith("/") or "\0" in path or len(path) >= PATH_MAX:
        raise ScenarioError(f"{where}: key {key!r}: {_brief(path)} is not an absolute file path such as /data/f")


#: Steps that never advance simulated time once there is nothing to write back or
#: drop (the runner checks the others as they run).
_TIMELESS_STEPS = (Snapshot, Sync, DropCaches)


def _takes_time(steps: tuple[Step, ...]) -> bool:
    """Whether ``steps`` may advance simulated time or end the process: False only
    for snapshots, syncs, drop_caches, zero sleeps and repeats of those."""
    for step in steps:
        if isinstance(step, Repeat):
            if _takes_time(step.steps):
                return True
        elif isinstance(step, Sleep):
            if step.duration_ns > 0:
                return True
        elif not isinstance(step, _TIMELESS_STEPS):
            return True
    return False


def _check_step(step: Step, where: str) -> None:
    """The bounds of one step's own values."""
    keys = {f.name: f.metadata["key"] for f in dataclasses.fields(step)}
    if isinstance(step, SetOomScoreAdj) and not -1000 <= step.value <= 1000:
        raise ScenarioError(f"{where}: key 'value': {_number(step.value)} is outside -1000..1000")
    if isinstance(step, SetOomAdj) and not -17 <= step.value <= 15:
        raise ScenarioError(f"{where}: key 'value': {_number(step.value)} is outside -17..15")
    if isinstance(step, Exit) and not 0 <= step.code <= MAX_EXIT_CODE:
        raise _outside(where, "code", step.code, "0", str(MAX_EXIT_CODE))
    if isinstance(step, Sleep) and not 0 <= step.duration_ns <= MAX_TIME_NS:
        raise _outside(where, "duration", step.duration_ns, "0", format_duration_exact(MAX_TIME_NS))
    if isinstance(step, DropCaches) and step.value not in (1, 2, 3):
        raise ScenarioError(f"{where}: key 'value': drop_caches takes 1, 2 or 3, not {_number(step.value)}")
    if isinstance(step, Repeat) and step.count == 0 and not _takes_time(step.steps):
        raise ScenarioError(
            f"{where}: key 'count': a count = 0 repeat runs until the process ends, but its steps "
            f"(snapshot, sync, drop_caches or sleep 0 only) take no simulated time: "
            f"give a count of 1..{MAX_REPEAT_COUNT} or add a sleep"
        )
    max_size = format_size_exact(MAX_SIZE_BYTES)
    for attr in ("length_bytes", "size_bytes", "offset_bytes"):
        value = getattr(step, attr, 0)
        if not 0 <= value <= MAX_SIZE_BYTES:
            raise _outside(where, keys[attr], value, "0", max_size)
    end = getattr(step, "offset_bytes", 0) + getattr(step, "length_bytes", 0)
    if end > MAX_SIZE_BYTES:
        raise ScenarioError(f"{where}: key 'length': offset + length = {end} is beyond {max_size}")
    if isinstance(step, Brk) and not -MAX_SIZE_BYTES <= step.increment_bytes <= MAX_SIZE_BYTES:
        raise _outside(where, "increment", step.increment_bytes, f"-{max_size}", max_size)
    if isinstance(step, Mmap) and step.length_bytes <= 0:
        raise ScenarioError(f"{where}: key 'length': mmap needs a length > 0")
    path = getattr(step, "path", None)
    if path is not None and not (isinstance(step, Mmap) and path == ""):
        _check_path(path, where, "file")


def _check_repeats(steps: tuple[Step, ...], where: str, prefix: str = "", iterations: int = 1,
                   depth: int = 0) -> None:
    """Repeats nest at most MAX_REPEAT_DEPTH deep and run at most MAX_REPEAT_COUNT
    iterations, nested counts multiplied (a count of 0 counts as 1 here: the runner
    stops it at MAX_REPEAT_COUNT iterations, and the time limit bounds it too)."""
    for j, step in enumerate(steps, 1):
        if not isinstance(step, Repeat):
            continue
        number = f"{prefix}{j}"
        if depth + 1 > MAX_REPEAT_DEPTH:
            raise ScenarioError(f"{where} step {number}: key 'steps': repeats nest more than {MAX_REPEAT_DEPTH} deep")
        if not 0 <= step.count <= MAX_REPEAT_COUNT:
            raise _outside(f"{where} step {number}", "count", step.count, "0", str(MAX_REPEAT_COUNT))
        total = iterations * max(step.count, 1)
        if total > MAX_REPEAT_COUNT:
            raise ScenarioError(f"{where} step {number}: key 'count': {step.count} iterations inside "
                                f"repeats of {iterations} make {total}, more than {MAX_REPEAT_COUNT}")
        _check_repeats(step.steps, where, number + ".", total, depth + 1)


def validate(scenario: Scenario) -> None:
    """Check every bound (the module constants) and the cross-checks that need the
    whole scenario: unique names, forks name children, waits name children forked
    earlier, steps name mappings created earlier.

    ScenarioError names the source, the process, the step and the key; a bad
    sysctl raises SysctlError.
    """
    src = scenario.source
    if not isinstance(scenario.name, str) or not SCENARIO_NAME.fullmatch(scenario.name):
        raise ScenarioError(f"{src}: key 'name': {_brief(scenario.name)} is not a scenario name: 1 to 128 "
                            "letters, digits, '.', '_' or '-', not starting with '.' or '-'")
    _check_machine(scenario.machine, f"{src}: [machine]")
    try:
        check_sysctls(scenario.sysctls)
    except SysctlError as e:
        raise SysctlError(f"{src}: [sysctl]: {e}") from None
    names = [p.name for p in scenario.processes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScenarioError(f"{src}: process name {dupes[0]!r} is used twice")
    paths: set[str] = set()
    for f in scenario.files:
        where = f"{src}: file {f.path!r}"
        _check_path(f.path, where, "path")
        if is_tmpfs_path(f.path):
            raise ScenarioError(f"{where}: key 'path': tmpfs files are made by write steps")
        if f.path in paths:
            raise ScenarioError(f"{where}: key 'path': declared twice")
        paths.add(f.path)
        if not 0 <= f.size_bytes <= MAX_SIZE_BYTES:
            raise _outside(where, "size", f.size_bytes, "0", format_size_exact(MAX_SIZE_BYTES))
    if len(scenario.cgroups) > MAX_CGROUPS:
        raise ScenarioError(f"{src}: {len(scenario.cgroups)} cgroups, more than {MAX_CGROUPS}")
    known_cgroups = {"/"}
    for c in scenario.cgroups:
        where = f"{src}: cgroup {c.path!r}"
        if not c.path.startswith("/") or c.path == "/" or c.path.endswith("/"):
            raise ScenarioError(f"{where}: key 'path': expected a path such as /app or /app/web")
        if c.path in known_cgroups:
            raise ScenarioError(f"{where}: key 'path': declared twice")
        parent = c.path.rsplit("/", 1)[0] or "/"
        if parent not in known_cgroups:
            raise ScenarioError(f"{where}: key 'path': parent {parent!r} must be declared first")
        _check_pages(where, "max", c.max_bytes, 0, MAX_CGROUP_LIMIT_BYTES)
        if c.swap_max_bytes != -1:  # -1: no limit (the key left out)
            try:
                _check_pages(where, "swap_max", c.swap_max_bytes, 0, MAX_CGROUP_LIMIT_BYTES)
            except ScenarioError as e:
                raise ScenarioError(f"{e} (leave swap_max out for no limit)") from None
        known_cgroups.add(c.path)
    pids = [p.pid for p in scenario.processes if p.pid is not None]
    if len(set(pids)) != len(pids):
        raise ScenarioError(f"{src}: two processes ask for the same pid")
    forked_by: dict[str, str] = {}
    for p in scenario.processes:
        where = f"{src}: process {p.name!r}"
        if p.cgroup not in known_cgroups:
            raise ScenarioError(f"{where}: key 'cgroup': no [[cgroup]] with path {p.cgroup!r}")
        if p.pid is not None and not 2 <= p.pid <= 4_194_304:
            raise ScenarioError(f"{where}: key 'pid': {_number(p.pid)} is outside 2..4194304")
        if not -1000 <= p.oom_score_adj <= 1000:
            raise ScenarioError(f"{where}: key 'oom_score_adj': {_number(p.oom_score_adj)} is outside -1000..1000")
        if not 0 <= p.uid <= MAX_UID:
            raise _outside(where, "uid", p.uid, "0", str(MAX_UID))
        if not 0 <= p.start_ns <= MAX_TIME_NS:
            raise _outside(where, "start", p.start_ns, "0", format_duration_exact(MAX_TIME_NS))
        _check_repeats(p.steps, where)
        forked_here: set[str] = set()
        for j, step in _walk_steps(p.steps):
            where = f"{src}: process {p.name!r} step {j}"
            _check_step(step, where)
            if isinstance(step, (Fork, Wait)):
                try:
                    child = scenario.process(step.child)
                except KeyError:
                    raise ScenarioError(f"{where}: key 'child': no process named {step.child!r}") from None
                if isinstance(step, Fork):
                    if not child.forked:
                        raise ScenarioError(f"{where}: key 'child': process {step.child!r} must say forked = true")
                    if step.child in forked_by:
                        raise ScenarioError(f"{where}: key 'child': process {step.child!r} is forked twice")
                    forked_by[step.child] = p.name
                    forked_here.add(step.child)
                elif step.child not in forked_here:
                    raise ScenarioError(
                        f"{where}: key 'child': process {step.child!r} is not forked by {p.name!r} before this step"
                    )
    for p in scenario.processes:
        if p.forked and p.name not in forked_by:
            raise ScenarioError(f"{src}: process {p.name!r} says forked = true but no step forks it")
    _check_handles(scenario, forked_by)


def _walk_steps(steps: tuple[Step, ...], prefix: str = "") -> list[tuple[str, Step]]:
    """Steps in program order with their numbers ("3", "4.1" inside a repeat)."""
    out: list[tuple[str, Step]] = []
    for j, step in enumerate(steps, 1):
        number = f"{prefix}{j}"
        out.append((number, step))
        if isinstance(step, Repeat):
            out.extend(_walk_steps(step.steps, number + "."))
    return out


def _check_handles(scenario: Scenario, forked_by: Mapping[str, str]) -> None:
    """Every touch, munmap and shmdt names a mapping that its process created at an
    earlier step (mmap, shmat; brk creates ``heap``) or inherited at its fork point.

    A static check of names only: whether the mapping still exists when the step
    runs (an mmap refused, an earlier munmap) is the run's business (SIGSEGV).
    """
    src = scenario.source
    inherited: dict[str, frozenset[str]] = {p.name: frozenset() for p in scenario.processes if not p.forked}
    pending = [p.name for p in scenario.processes if not p.forked]
    while pending:
        p = scenario.process(pending.pop(0))
        handles = set(inherited[p.name])
        for j, step in _walk_steps(p.steps):
            if isinstance(step, (Touch, Munmap, Shmdt, Mlock, Munlock)) and step.handle not in handles:
                raise ScenarioError(
                    f"{src}: process {p.name!r} step {j}: key 'handle': "
                    f"no mapping {step.handle!r} is created before this step"
                )
            if isinstance(step, (Mmap, Shmat)):
                handles.add(step.handle)
            elif isinstance(step, Brk):
                handles.add("heap")
            elif isinstance(step, Fork):
                inherited[step.child] = frozenset(handles)
                pending.append(step.child)
    for p in scenario.processes:
        if p.name not in inherited:
            raise ScenarioError(
                f"{src}: process {p.name!r} never starts: process {forked_by[p.name]!r}, which forks it, never starts"
            )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (UTF-8, as TOML requires)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SCENARIO_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"cannot read scenario {path}: {e.strerror or e}") from None
    if len(raw) > MAX_SCENARIO_FILE_BYTES:
        raise ScenarioError(f"{path}: not a scenario file: larger than {format_size_exact(MAX_SCENARIO_FILE_BYTES)}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not a TOML file: byte 0x{raw[e.start]:02x} at offset {e.start} "
                            "is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:  # ValueError: an integer of over 4300 digits
        raise ScenarioError(f"{path}: malformed TOML: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: malformed TOML: arrays or tables nest too deeply") from None
    return scenario_from_dict(data, str(path))


def builtin_dir() -> Path:
    """The folder of built-in scenario TOML files shipped with the package."""
    return Path(__file__).parent / "scenarios"


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def resolve_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario TOML file by path."""
    candidate = builtin_dir() / f"{name_or_path}.toml"
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        if candidate.exists():
            return load_scenario(candidate)
        raise ScenarioError(
            f"unknown scenario {name_or_path!r} (built-in: {', '.join(builtin_names())}; or give a .toml path)"
        )
    return load_scenario(name_or_path)
