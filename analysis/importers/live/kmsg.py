"""The kernel log during a live capture, read from ``/dev/kmsg``.

``/dev/kmsg`` (3.5+) gives one record per ``read()``: ``prio,seq,ts_usec,flags[,...];
text`` then optional `` KEY=VALUE`` lines. Opened non-blocking and seeked to its end,
its next read is the first record printed after that; EAGAIN means no more for now,
EPIPE that records were overwritten before they were read (counted). ``ts_usec`` is
``local_clock()`` in microseconds: the clock of the capture's ``trace_clock``
(``perf``), so an OOM report lines up with the ``oom:mark_victim`` event without any
conversion. The records become dmesg lines (``[  123.456789] text``) for the
importer's companion log (:mod:`memtrace.analysis.kernlog`).
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

__all__ = ["KMSG_PATH", "MAX_RECORDS", "KmsgReader", "KmsgRecord", "parse_record"]

KMSG_PATH = "/dev/kmsg"
#: The most records a capture keeps (the others are counted): an OOM report is a
#: hundred lines or so; a busy machine's log over hours could be far more.
MAX_RECORDS = 50_000


class KmsgRecord(NamedTuple):
    """One kernel log record: its sequence number, level, facility, time (µs on
    ``local_clock``) and text."""

    seq: int
    level: int
    facility: int
    ts_us: int
    text: str

    def dmesg_line(self) -> str:
        """As ``dmesg`` prints it: ``[  123.456789] text``."""
        return f"[{self.ts_us // 1_000_000:5d}.{self.ts_us % 1_000_000:06d}] {self.text}"


def parse_record(raw: bytes) -> KmsgRecord | None:
    """One ``/dev/kmsg`` read; None when it is not a record."""
    head, sep, rest = raw.partition(b";")
    if not sep:
        return None
    parts = head.split(b",")
    try:
        prio, seq, ts_us = int(parts[0]), int(parts[1]), int(parts[2])
    except (ValueError, IndexError):
        return None
    text = rest.decode("utf-8", errors="replace").split("\n", 1)[0]
    return KmsgRecord(seq, prio & 7, prio >> 3, ts_us, text)


class KmsgReader:
    """Records printed from now on (:meth:`read` drains what is there).

    When ``/dev/kmsg`` cannot be opened (no permission, no device in a container)
    :attr:`error` says why and the reader reads nothing.
    """

    def __init__(self, path: str = KMSG_PATH, max_records: int = MAX_RECORDS) -> None:
        self.records: list[KmsgRecord] = []
        self.max_records = max_records
        #: records printed while the capture ran but not kept (beyond max_records)
        self.dropped = 0
        #: times the kernel overwrote records before they were read (EPIPE)
        self.overruns = 0
        self.error: str | None = None
        self.fd: int | None = None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as e:
            self.error = f"cannot read {path}: {e.strerror or e}"
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def fileno(self) -> int:
        """The fd to wait on (-1 when closed)."""
        return -1 if self.fd is None else self.fd

    def read(self) -> int:
        """Every record there is now; how many."""
        if self.fd is None:
            return 0
        got = 0
        while True:
            try:
                raw = os.read(self.fd, 16384)
            except BlockingIOError:
                return got
            except BrokenPipeError:  # EPIPE: overwritten before read; the next read goes on
                self.overruns += 1
                continue
            except OSError:
                return got
            if not raw:
                return got
            rec = parse_record(raw)
            if rec is None:
                continue
            got += 1
            if len(self.records) < self.max_records:
                self.records.append(rec)
            else:
                self.dropped += 1

    def close(self) -> None:
        """Read what is left, then close."""
        self.read()
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def dmesg_lines(self) -> list[str]:
        return [r.dmesg_line() for r in self.records]
