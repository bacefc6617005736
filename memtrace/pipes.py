"""Piped inputs: ``memtrace report <(journalctl -k)``, ``... | memtrace report /dev/stdin``.

A command may read its input more than once (is it a trace? a kernel log?), which a
pipe does not allow: :func:`spool` copies the pipe to a temporary file
(``memtrace-pipe-*``, removed at exit, a signal's included) and the command reads
that. Every message must still name what the user gave (``/dev/fd/63``), never the
copy: the CLI passes what it prints through :func:`user_text` (warnings, errors,
reports) or :func:`user_values` (JSON).

Used by the command line only (``memtrace/cli``).
"""

from __future__ import annotations

import atexit
import os
import select
import tempfile
from pathlib import Path
from typing import Any

from memtrace.errors import LimitError

__all__ = ["SPOOL_MAX_BYTES", "spool", "user_text", "user_values"]

#: The most a pipe given as input is copied to a temporary file (bytes).
SPOOL_MAX_BYTES = 16 << 30
#: Longest a copy waits in select() before it lets a signal's handler run (seconds).
_POLL_S = 0.2
#: The temporary copy of each piped input -> the path the user gave.
_SPOOLED: dict[str, str] = {}


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


def spool(path: Path) -> Path:
    """The pipe ``path`` copied to a temporary file, which is removed at exit (after
    SIGINT or SIGTERM too: :mod:`memtrace.interrupts` makes them exceptions, and the
    exit handlers run); messages name it as ``path`` (:func:`user_text`). LimitError
    beyond :data:`SPOOL_MAX_BYTES`."""
    fd, tmp = tempfile.mkstemp(prefix="memtrace-pipe-")
    atexit.register(_remove, tmp)
    _SPOOLED[tmp] = str(path)
    copied = 0
    with open(path, "rb", buffering=0) as src, os.fdopen(fd, "wb") as dst:
        while True:
            # CPython runs a signal's handler between bytecodes: a signal that comes
            # just before a blocking read() waits with it for the pipe's next bytes,
            # for ever if the writer stalls (journalctl -f). select() returns at least
            # every _POLL_S, so SIGINT and SIGTERM end the copy promptly.
            if not select.select([src], [], [], _POLL_S)[0]:
                continue
            block = src.read(1 << 20)  # what the pipe holds, up to 1 MiB (one read())
            if not block:
                break
            copied += len(block)
            if copied > SPOOL_MAX_BYTES:
                raise LimitError(f"{path}: a pipe of more than {SPOOL_MAX_BYTES >> 30} GiB; write it to a file first")
            dst.write(block)
    return Path(tmp)


def user_text(text: str) -> str:
    """``text`` with each temporary copy of a pipe named as the user gave it:
    ``/dev/fd/63``, not ``/tmp/memtrace-pipe-...`` (its file name alone, as some
    messages give it, becomes the given path's)."""
    for tmp, given in _SPOOLED.items():
        if tmp in text:
            text = text.replace(tmp, given)
        name = os.path.basename(tmp)
        if name in text:
            text = text.replace(name, os.path.basename(given) or given)
    return text


def user_values(obj: Any) -> Any:
    """``obj`` (JSON-like: dicts, lists, strings, numbers) with :func:`user_text`
    applied to every string in it, keys included."""
    if not _SPOOLED:
        return obj
    if isinstance(obj, str):
        return user_text(obj)
    if isinstance(obj, dict):
        return {user_values(k): user_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [user_values(v) for v in obj]
    return obj
