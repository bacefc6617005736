"""Errors a simulated system call or fault returns to the process that made it.

These are not memtrace errors: they are outcomes the workload sees (an errno, or a
fatal signal) and the runner records them in the run's ``errors``.
"""

from __future__ import annotations


class StepFault(Exception):
    """A step failed with ``errno`` (``"ENOMEM"``, ``"ENOENT"``, ...) or a signal
    (``"SIGSEGV"``, ``"SIGBUS"``). ``fatal`` signals kill the process."""

    def __init__(self, errno: str, message: str, fatal: bool = False) -> None:
        super().__init__(f"{errno}: {message}")
        self.errno = errno
        self.message = message
        self.fatal = fatal
