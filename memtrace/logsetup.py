"""Logging through structlog to stderr; the CLI sets the level with -v.

structlog is imported when logging is configured (a command runs), not when this
module is: ``memtrace --version`` and ``memtrace --help`` answer before any
command and start without it (``bench/run.py``'s ``cli_startup_s``). Library
code of the layers logs with ``structlog.get_logger("memtrace...")``; this
module configures the level and the renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import structlog.typing

#: The level set by :func:`configure_logging`; structlog is configured lazily.
_level = {"value": logging.WARNING, "configured": False}


def configure_logging(verbosity: int) -> None:
    """Warnings only by default, info with -v, debug with -vv; always to stderr."""
    _level["value"] = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    _configure()


def _configure() -> None:
    import structlog

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level["value"]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _level["configured"] = True


def get_logger(name: str = "memtrace") -> structlog.typing.FilteringBoundLogger:
    """memtrace's logger (structlog, configured by :func:`configure_logging`)."""
    import structlog

    if not _level["configured"]:
        _configure()
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
