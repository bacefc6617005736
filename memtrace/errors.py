"""memtrace's errors: one hierarchy, caught once by the CLI.

::

    MemtraceError                 anything memtrace reports as a one-line error
    ├── ScenarioError             a scenario file or object is malformed (file, step, key)
    ├── SysctlError               unknown sysctl or out-of-range value
    ├── TraceFormatError          a trace file cannot be read (bad magic, newer major version)
    └── ParseError                kernel text (perf script, ftrace, dmesg) cannot be parsed

Every message names the bad value and where it came from.
"""

from __future__ import annotations


class MemtraceError(Exception):
    """Base of every error memtrace reports to a user."""


class ScenarioError(MemtraceError):
    """A scenario is malformed: the message names the file, step and key."""


class SysctlError(MemtraceError):
    """An unknown sysctl or a value outside its range."""


class TraceFormatError(MemtraceError):
    """A trace file cannot be read at all (not a trace, or an unsupported version)."""


class ParseError(MemtraceError):
    """Text from a real kernel cannot be parsed."""
