"""Logging through structlog to stderr; the CLI sets the level with -v."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(verbosity: int) -> None:
    """Warnings only by default, info with -v, debug with -vv; always to stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger() -> structlog.typing.FilteringBoundLogger:
    """memtrace's logger (structlog, configured by :func:`configure_logging`)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("memtrace")
    return logger
