"""memtrace's errors: one hierarchy, caught once by the CLI.

::

    MemtraceError                 anything memtrace reports as a one-line error (exit 1)
    ├── UsageError                a command-line value that cannot be used (exit 2)
    ├── InputError                something read cannot be used (file, line, key named)
    │   ├── ScenarioError         a scenario file or object is malformed (file, step, key)
    │   ├── SysctlError           unknown sysctl or out-of-range value
    │   ├── TraceFormatError      a trace file cannot be read (bad header, newer version)
    │   │   └── NotATraceError    not a memtrace trace at all (no magic): try another reader
    │   ├── ParseError            kernel text (perf script, ftrace, dmesg, snapshots) or a
    │   │                         one-liner program cannot be parsed
    │   └── NotFoundError         a name the input does not hold (a snapshot label, a
    │                             pid, a tool, a tracepoint)
    ├── OutputError               an output cannot be written (an input, a device, a
    │                             directory, a full disk)
    ├── CaptureError              a live capture cannot run here (no tracefs, not root,
    │                             a target that is gone)
    └── LimitError                an input is beyond a documented bound (size, count,
                                  memory, time): refused before the work starts

Every message names the bad value and where it came from. Code decides on the
class, never on the text of a message. A damaged but readable input is not an
error: readers keep what they can and report warnings.

This module is a leaf: it imports nothing of memtrace, and every layer may raise
its errors.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "InputError",
    "LimitError",
    "MemtraceError",
    "NotATraceError",
    "NotFoundError",
    "OutputError",
    "ParseError",
    "ScenarioError",
    "SysctlError",
    "TraceFormatError",
    "UsageError",
]


class MemtraceError(Exception):
    """Base of every error memtrace reports to a user."""


class UsageError(MemtraceError):
    """A command-line value that cannot be used; the CLI exits 2, as for usage."""


class InputError(MemtraceError):
    """Something memtrace read cannot be used: the message names the input and where."""


class ScenarioError(InputError):
    """A scenario is malformed: the message names the file, step and key."""


class SysctlError(InputError):
    """An unknown sysctl or a value outside its range."""


class TraceFormatError(InputError):
    """A trace file cannot be read at all (a bad header, an unsupported version)."""


class NotATraceError(TraceFormatError):
    """The file is not a memtrace trace (no magic): a caller that accepts other
    inputs (a snapshot, a kernel log, a scenario) tries those instead."""


class ParseError(InputError):
    """Text from a real kernel, a snapshot or a one-liner program cannot be parsed."""


class NotFoundError(InputError):
    """A name the input does not hold: a snapshot label, a pid, a tool, a tracepoint."""


class OutputError(MemtraceError):
    """An output cannot be written: it is an input, a device or a directory, or the
    write failed."""


class CaptureError(MemtraceError):
    """A live capture from the running kernel cannot run: tracefs is missing or not
    writable, or a target process or cgroup does not exist. The message says what
    is needed."""


class LimitError(MemtraceError):
    """An input is beyond one of the documented bounds (size, count, memory, time)."""
