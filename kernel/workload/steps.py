"""The steps of a scenario process, one frozen dataclass per ``op``.

A step names mappings by *handle*, files by path and SysV segments by name, never
by address, so a replay whose outcome diverges (an mmap refused, a process killed
earlier) stays well defined. Each field carries its TOML key and the kind of value
the key takes (:class:`StepField`): the codec reads a step table through them and
:func:`step_to_dict` writes one back, so a new step is its dataclass here, its
entry in :data:`STEP_TYPES`, and its executor in ``runner.py``.

Sizes are in bytes and durations in nanoseconds (``length_bytes``,
``duration_ns``); in TOML they take units (``"64MiB"``, ``"100ms"``, see
``codec.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

#: How the TOML value of a step key is read (``codec.py``): a string, a boolean,
#: an integer, a size (bytes), a duration (ns), a protection (``"rw"``), what to do
#: on ENOMEM (``"exit"`` or ``"continue"``), an madvise advice (MADV_ADVICE), or a
#: list of nested steps.
StepKind = Literal["str", "bool", "int", "size", "duration", "prot", "on_enomem", "advice", "steps"]

#: The madvise(2) advice a Madvise step takes (MADV_DONTNEED, MADV_FREE, ...).
MADV_ADVICE = ("dontneed", "free", "cold", "pageout", "willneed")


def _key(name: str, kind: StepKind, default: Any = dataclasses.MISSING) -> Any:
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
    """munmap(2) of a mapping by handle; the whole mapping unless a range is given
    (``offset`` from its lowest address, ``length`` 0: to its end). Unmapping the
    middle of a mapping splits it in two (the handle names both parts, and offsets
    still count from the lowest address); its pages and VM_ACCOUNT charge go."""

    op: ClassVar[str] = "munmap"
    handle: str = _key("handle", "str")
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)


@dataclass(frozen=True)
class Madvise(Step):
    """madvise(2) of a range of a mapping (``offset`` from its lowest address,
    ``length`` 0: to its end), with the kernel's accounting (kernel/madvise.py):

    - ``dontneed``: the pages are unmapped now; anonymous ones are freed and
      uncharged (RSS drops), file and shmem ones stay in the page cache; the next
      touch faults again (zeroed anonymous memory);
    - ``free``: private anonymous memory only (else EINVAL): the pages become
      lazily freed, still mapped, counted and charged until reclaim discards them
      (even without swap); a page written again is kept;
    - ``cold``: the pages move to their inactive list;
    - ``pageout``: the pages are reclaimed now: swapped out (if there is swap),
      dropped (clean page cache), discarded (lazily freed); dirty page cache is
      only marked, and freed once written back;
    - ``willneed``: a file's pages are read into the page cache (not mapped).

    A locked (mlock) mapping refuses all but ``willneed`` with EINVAL; a range over
    a hole acts on what is mapped and fails with ENOMEM. Either way the process
    goes on (madvise errors are not fatal).
    """

    op: ClassVar[str] = "madvise"
    handle: str = _key("handle", "str")
    advice: str = _key("advice", "advice")
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)


@dataclass(frozen=True)
class Mremap(Step):
    """mremap(2) of a whole mapping to ``length`` bytes (kernel/mremap.py).

    Shrinking unmaps the tail. Growing charges Committed_AS for a private writable
    mapping (refused under vm.overcommit_memory=2 with ENOMEM) and grows in place
    when nothing is mapped after it, else, with ``maymove`` (MREMAP_MAYMOVE, the
    default), moves it (its pages move with it: RSS and charges unchanged);
    without ``maymove``, or with no room anywhere, ENOMEM. A mapping split by a
    partial munmap or mprotect cannot be remapped (EFAULT). ``on_enomem`` says what
    the process does if the call fails: ``exit`` or ``continue``.
    """

    op: ClassVar[str] = "mremap"
    handle: str = _key("handle", "str")
    length_bytes: int = _key("length", "size")
    maymove: bool = _key("maymove", "bool", True)
    on_enomem: str = _key("on_enomem", "on_enomem", "exit")


@dataclass(frozen=True)
class Mprotect(Step):
    """mprotect(2) of a range of a mapping (``offset`` from its lowest address,
    ``length`` 0: to its end) to ``prot`` (``r``, ``w``, ``x``; ``""`` for
    PROT_NONE), kernel/mprotect.py.

    A part of a mapping becomes a VMA of its own (the mapping is split; its handle
    names every part). A private mapping made writable is charged to Committed_AS
    (refused under vm.overcommit_memory=2 with ENOMEM); made read-only it stays
    charged, unless it is anonymous and was never written. Writes to a range
    without ``w`` are SIGSEGV. ``on_enomem`` says what the process does if the
    call fails: ``exit`` or ``continue``.
    """

    op: ClassVar[str] = "mprotect"
    handle: str = _key("handle", "str")
    prot: str = _key("prot", "prot")
    offset_bytes: int = _key("offset", "size", 0)
    length_bytes: int = _key("length", "size", 0)
    on_enomem: str = _key("on_enomem", "on_enomem", "exit")


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
        Madvise, Mremap, Mprotect,
    )
}

class StepField(NamedTuple):
    """One field of a step class: its attribute, TOML key, kind and default
    (``dataclasses.MISSING`` when the key is required)."""

    attr: str
    key: str
    kind: StepKind
    default: Any

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def _fields_of(cls: type[Step]) -> tuple[StepField, ...]:
    return tuple(StepField(f.name, f.metadata["key"], f.metadata["kind"], f.default) for f in dataclasses.fields(cls))


_STEP_FIELDS: dict[type[Step], tuple[StepField, ...]] = {cls: _fields_of(cls) for cls in STEP_TYPES.values()}


def step_fields(cls: type[Step]) -> tuple[StepField, ...]:
    """The fields of step class ``cls`` in declaration order (computed once per
    class of STEP_TYPES)."""
    fields = _STEP_FIELDS.get(cls)
    return fields if fields is not None else _fields_of(cls)


def step_to_dict(step: Step) -> dict[str, Any]:
    """A step as its TOML inline table (defaults left out; sizes in bytes, durations in ns)."""
    out: dict[str, Any] = {"op": step.op}
    for f in step_fields(type(step)):
        value = getattr(step, f.attr)
        if not f.required and value == f.default:
            continue
        if f.kind == "steps":
            value = [step_to_dict(s) for s in value]
        out[f.key] = value
    return out
