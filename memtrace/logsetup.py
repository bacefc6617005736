"""Logging through structlog to stderr; the CLI sets the level with -v (info) or
-vv (debug).

Every layer logs what each phase does (what it read, how many events, what it
skipped and why, how long it took) with the standard library's loggers under
``memtrace`` (``logging.getLogger(__name__)``, the fields as ``extra``): the
layers may import nothing of memtrace's, and a library's stdlib loggers stay
silent until an application configures them. :func:`configure_logging` (the CLI
calls it for every command) renders those records, and what
:func:`get_logger`'s structlog loggers log, with structlog's console renderer to
stderr: ``07:45:01 [info     ] trace read  chunks=3 events=1,234 seconds=0.01``.

structlog is imported when logging is configured or a logger asked for, not when
this module is: ``memtrace --version`` and ``memtrace --help`` answer before any
command and start without it (``bench/run.py``'s ``cli_startup``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog.typing

__all__ = ["configure_logging", "get_logger", "phase"]

#: The level set by :func:`configure_logging`, and whether structlog is configured.
_state: dict[str, Any] = {"level": logging.WARNING, "configured": False}


class _StderrHandler(logging.Handler):
    """Writes each record to the ``sys.stderr`` of the moment (a test runner may
    have replaced it since logging was configured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a closed or broken stderr: as logging.StreamHandler does
            self.handleError(record)


def configure_logging(verbosity: int) -> None:
    """Warnings only by default, info with -v, debug with -vv; always to stderr."""
    _state["level"] = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    _configure()


def _configure() -> None:
    import structlog

    level = _state["level"]
    shared: list[Any] = [structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="%H:%M:%S")]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.dev.ConsoleRenderer(colors=False),
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
    ))
    root = logging.getLogger("memtrace")
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    _state["configured"] = True


def get_logger(name: str = "memtrace") -> structlog.typing.FilteringBoundLogger:
    """A structlog logger (configured by :func:`configure_logging`, else at the
    default level: warnings only)."""
    import structlog

    if not _state["configured"]:
        _configure()
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextmanager
def phase(logger: logging.Logger, what: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log one phase of work: ``what: start`` at debug, then ``what`` at info with
    ``fields``, what the block adds to the dict it is given, and ``seconds``."""
    logger.debug(f"{what}: start", extra=_extra(fields))
    out: dict[str, Any] = dict(fields)
    t0 = time.perf_counter()
    yield out
    out["seconds"] = round(time.perf_counter() - t0, 3)
    logger.info(what, extra=_extra(out))


def _extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as a LogRecord's extra: a key the record itself has (``name``,
    ``filename``, ``process`` ...) gets a trailing underscore."""
    reserved = _RESERVED
    return {(f"{k}_" if k in reserved else k): v for k, v in fields.items()}


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
