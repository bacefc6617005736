"""tracefs: where it is, the ``format`` files of events, and instances of our own.

A live capture never touches the top-level trace buffer a user may be using: it
makes ``instances/memtrace-<PID>`` (a tracefs instance: its own ring buffers, event
switches, pid filters and clock), and removes it when it ends. The kernel keeps an
instance, and keeps tracing into it, until someone removes it: a recorder killed
with SIGKILL leaves one behind that costs every traced task its events for ever, so
each capture first removes the instances of recorders that are gone
(:func:`remove_stale`).

Facts this module relies on, as measured on Linux 6.18 (``rmdir`` and the defaults
are the same since instances appeared in 3.11):

- a new instance starts with ``tracing_on`` 1 and ``trace_clock`` local;
- ``rmdir`` fails with EBUSY while any file of the instance is open;
- ``options/record-cmd`` and ``record-tgid`` exist at the top level only, so an
  instance's events carry no comm and no tgid (the capture keeps them itself).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from memtrace.errors import CaptureError

__all__ = [
    "INSTANCE_PREFIX",
    "TRACEFS_MOUNTS",
    "EventFormat",
    "FormatField",
    "Instance",
    "find_tracefs",
    "instance_name",
    "parse_format",
    "remove_stale",
    "stale_instances",
]

#: Where tracefs is mounted: its own mount (4.1+), or inside debugfs.
TRACEFS_MOUNTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
#: Our instances are ``memtrace-<PID>`` (PID: the recording process).
INSTANCE_PREFIX = "memtrace-"
_INSTANCE_NAME = re.compile(re.escape(INSTANCE_PREFIX) + r"(\d+)")
#: What a capture needs, said in the errors that find it missing.
NEEDS = ("run as root (or with CAP_PERFMON and a tracefs it may write), with tracefs mounted at "
         "/sys/kernel/tracing or /sys/kernel/debug/tracing")

FieldKind = Literal["int", "chars", "data_loc", "dynamic", "bytes"]


@dataclass(frozen=True)
class FormatField:
    """One field of an event's ``format`` file: ``field:DECL; offset:N; size:N; signed:N;``.

    ``kind`` is how its bytes are read: ``int`` (1, 2, 4 or 8 bytes), ``chars`` (a
    ``char[N]`` string), ``data_loc`` (a ``__data_loc`` string: a u32 of length << 16
    | offset), ``dynamic`` (an array of size 0 that runs to the record's end), or
    ``bytes`` (anything else: kept raw).
    """

    name: str
    decl: str
    offset: int
    size: int
    signed: bool
    kind: FieldKind


@dataclass(frozen=True)
class EventFormat:
    """An event's ``format`` file: system, name, the id in ``common_type``, fields."""

    system: str
    name: str
    id: int
    fields: tuple[FormatField, ...]
    print_fmt: str = ""

    @property
    def full_name(self) -> str:
        """``system:name``, as perf and bpftrace name it."""
        return f"{self.system}:{self.name}"

    def field(self, name: str) -> FormatField | None:
        """The field called ``name``, if the event has one."""
        for f in self.fields:
            if f.name == name:
                return f
        return None


_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);"
                    r"(?:\s*signed:(?P<signed>\d+);)?")
_DECL = re.compile(r"^(?P<type>.*?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<array>\[[^\]]*\])?$")


def parse_format(system: str, text: str) -> EventFormat:
    """An event's ``format`` file read; CaptureError when it is not one."""
    name = re.search(r"^name:\s*(\S+)", text, re.M)
    ident = re.search(r"^ID:\s*(\d+)", text, re.M)
    if name is None or ident is None:
        raise CaptureError(f"tracefs: {system} event format without name or ID: {text[:80]!r}")
    fields: list[FormatField] = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m is None:
            continue
        decl = m.group("decl").strip()
        d = _DECL.match(decl)
        if d is None:
            continue
        offset, size = int(m.group("off")), int(m.group("size"))
        array = d.group("array")
        kind: FieldKind
        if decl.startswith("__data_loc"):
            kind = "data_loc"
        elif array is not None and size == 0:
            kind = "dynamic"
        elif array is not None and "char" in d.group("type"):
            kind = "chars"
        elif array is None and size in (1, 2, 4, 8):
            kind = "int"
        else:
            kind = "bytes"
        fields.append(FormatField(d.group("name"), decl, offset, size, m.group("signed") == "1", kind))
    fmt = re.search(r"^print fmt:\s*(.*)$", text, re.M)
    return EventFormat(system, name.group(1), int(ident.group(1)), tuple(fields), fmt.group(1) if fmt else "")


def find_tracefs(mounts: tuple[str, ...] = TRACEFS_MOUNTS) -> str:
    """The tracefs directory that has ``instances/``; CaptureError saying what is
    needed when none does."""
    for path in mounts:
        if os.path.isdir(os.path.join(path, "instances")):
            return path
    for path in mounts:
        try:
            os.listdir(path)
        except PermissionError:
            raise CaptureError(f"cannot read {path}: permission denied; live capture needs to {NEEDS}") from None
        except OSError:
            continue
    raise CaptureError(f"no tracefs found (mount -t tracefs nodev /sys/kernel/tracing); live capture needs to "
                       f"{NEEDS}")


def instance_name(pid: int | None = None) -> str:
    """The instance name of recorder ``pid`` (default: this process)."""
    return f"{INSTANCE_PREFIX}{os.getpid() if pid is None else pid}"


class Instance:
    """A tracefs instance, ``<tracefs>/instances/<name>``: files read and written."""

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        self.path = os.path.join(root, "instances", name)

    def file(self, rel: str) -> str:
        """The path of one of the instance's files."""
        return os.path.join(self.path, rel)

    def read(self, rel: str) -> str:
        with open(self.file(rel)) as f:
            return f.read()

    def write(self, rel: str, value: str, *, append: bool = False) -> None:
        """One ``write()`` of ``value`` (tracefs parses each write on its own):
        replacing the file's setting, or added to it with ``append``. CaptureError
        names the file, the value, and the kernel's ``error_log`` if it said why."""
        flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
        try:
            fd = os.open(self.file(rel), flags)
        except OSError as e:
            raise CaptureError(f"cannot open {self.file(rel)}: {e.strerror or e}") from None
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise CaptureError(f"cannot write {value!r} to {self.file(rel)}: {e.strerror or e}"
                               f"{self._error_log()}") from None
        finally:
            os.close(fd)

    def _error_log(self) -> str:
        try:
            tail = self.read("error_log").strip().splitlines()[-2:]
        except OSError:
            return ""
        return f" (error_log: {' / '.join(s.strip() for s in tail)})" if tail else ""

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def create(self) -> None:
        """``mkdir`` the instance, tracing off at once (a new instance traces)."""
        try:
            os.mkdir(self.path)
        except FileExistsError:
            raise CaptureError(f"tracefs instance {self.path} exists: another capture of this process "
                               "is running") from None
        except PermissionError:
            raise CaptureError(f"cannot create {self.path}: permission denied; live capture needs to "
                               f"{NEEDS}") from None
        except OSError as e:
            raise CaptureError(f"cannot create {self.path}: {e.strerror or e}; live capture needs to "
                               f"{NEEDS}") from None
        self.write("tracing_on", "0")

    def remove(self, *, attempts: int = 40, delay_s: float = 0.05) -> None:
        """Switch everything off and ``rmdir`` the instance; EBUSY (a file of it still
        open somewhere) is retried ``attempts`` times, then raised as CaptureError."""
        if not self.exists():
            return
        for rel in ("tracing_on", "set_event", "set_event_pid", "set_event_notrace_pid"):
            with contextlib.suppress(OSError, CaptureError):
                self.write(rel, "0" if rel == "tracing_on" else "")
        for attempt in range(attempts):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY or attempt == attempts - 1:
                    raise CaptureError(f"cannot remove tracefs instance {self.path}: {e.strerror or e}") from None
                time.sleep(delay_s)

    # -- events

    def events(self, spec: str) -> list[tuple[str, str]]:
        """The events ``system:name`` or ``system:*`` names that this kernel has,
        as (system, name) pairs."""
        system, _, name = spec.partition(":")
        sysdir = self.file(f"events/{system}")
        if name == "*":
            try:
                names = os.listdir(sysdir)
            except OSError:
                return []
            return sorted((system, n) for n in names if os.path.isfile(os.path.join(sysdir, n, "format")))
        return [(system, name)] if os.path.isfile(os.path.join(sysdir, name, "format")) else []

    def format_of(self, system: str, name: str) -> EventFormat:
        return parse_format(system, self.read(f"events/{system}/{name}/format"))

    def enable(self, system: str, name: str) -> None:
        self.write(f"events/{system}/{name}/enable", "1")

    def cpus(self) -> list[int]:
        """The CPUs with a ring buffer (``per_cpu/cpuN``)."""
        return sorted(int(d[3:]) for d in os.listdir(self.file("per_cpu")) if d[3:].isdigit())

    def cpu_stats(self, cpu: int) -> dict[str, int]:
        """``per_cpu/cpuN/stats`` as numbers (``overrun``, ``dropped events``, ...);
        the timestamps in it are left out."""
        out: dict[str, int] = {}
        for line in self.read(f"per_cpu/cpu{cpu}/stats").splitlines():
            key, _, value = line.partition(":")
            with contextlib.suppress(ValueError):
                out[key.strip()] = int(value.strip())
        return out


# --------------------------------------------------------------------------- stale instances


def _boot_realtime_s() -> float:
    """Wall-clock time of boot, from CLOCK_REALTIME - CLOCK_BOOTTIME (to 10 ms or so)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def _start_realtime_s(pid: int, boot_s: float) -> float | None:
    """When process ``pid`` started (wall clock, s); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None
    return boot_s + start_ticks / os.sysconf("SC_CLK_TCK")


def stale_instances(root: str) -> list[tuple[str, str]]:
    """Our instances whose recorder is gone: (name, why).

    ``memtrace-<PID>`` is stale when PID is gone, or when the process that has PID
    now started after the instance was made (the pid was reused, by this process
    too: tracefs sets a directory's ctime at mkdir; 0.5 s allowed for the clocks).
    Instances with other names are never touched.
    """
    inst_dir = os.path.join(root, "instances")
    boot_s = _boot_realtime_s()
    out: list[tuple[str, str]] = []
    try:
        names = sorted(os.listdir(inst_dir))
    except OSError:
        return out
    for name in names:
        m = _INSTANCE_NAME.fullmatch(name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            made_s = os.stat(os.path.join(inst_dir, name)).st_ctime
        except OSError:
            continue
        start = _start_realtime_s(pid, boot_s)
        if start is None:
            out.append((name, f"pid {pid} is gone"))
        elif start > made_s + 0.5:
            out.append((name, f"pid {pid} was reused by a process started after the instance"))
    return out


def remove_stale(root: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Remove the stale instances (see :func:`stale_instances`); their names. One
    that cannot be removed is logged and left."""
    removed: list[str] = []
    for name, why in stale_instances(root):
        try:
            Instance(root, name).remove(attempts=5)
        except CaptureError as e:
            if log is not None:
                log(f"stale tracefs instance {name} ({why}) not removed: {e}")
            continue
        removed.append(name)
        if log is not None:
            log(f"removed stale tracefs instance {name} ({why})")
    return removed


def instances(root: str) -> Iterator[str]:
    """The names of every memtrace instance under ``root`` (stale or not)."""
    try:
        names = sorted(os.listdir(os.path.join(root, "instances")))
    except OSError:
        return
    for name in names:
        if _INSTANCE_NAME.fullmatch(name):
            yield name
