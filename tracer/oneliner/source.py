"""Reading a program file (``memtrace trace -f FILE``), bounded.

A program file may be anything a user names: a pipe (``-f <(generate)``), a device
(``-f /dev/zero``), a stray multi-gigabyte file. It is read up to
:data:`MAX_PROGRAM_BYTES` and refused beyond, before anything is parsed.
"""

from __future__ import annotations

import os

from memtrace.errors import InputError, LimitError

__all__ = ["MAX_PROGRAM_BYTES", "read_program"]

#: Largest program file read: 1 MiB. bpftrace programs and memtrace's tools are a
#: few KiB; a generated program of a few thousand probes still fits. The whole text
#: is held, lexed and shown in error messages, so it must stay small.
MAX_PROGRAM_BYTES = 1 << 20


def read_program(path: str | os.PathLike[str]) -> str:
    """The text of the program file ``path`` (UTF-8).

    LimitError when it holds more than :data:`MAX_PROGRAM_BYTES` (read no further);
    InputError naming the file when it cannot be read or is not UTF-8 text.
    """
    name = os.fsdecode(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_PROGRAM_BYTES + 1)
    except IsADirectoryError:
        raise InputError(f"cannot read program {name}: it is a directory") from None
    except OSError as e:
        raise InputError(f"cannot read program {name}: {e.strerror or e}") from None
    if len(data) > MAX_PROGRAM_BYTES:
        raise LimitError(f"program {name} is larger than {MAX_PROGRAM_BYTES >> 20} MiB (the most a program file "
                         "may hold)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read program {name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                         f"{e.start})") from None
