"""Hostile kernel logs, small on disk, for the tests and the ``guardrails`` benchmark.

Each builder writes one file and returns its size in bytes. They take the text of a
real OOM report (a file of ``tests/data/oomlogs``) where a report is repeated, so the
reader meets what it would in a real log, only far more of it:

- :func:`gzip_bomb`: ``text`` repeated until it inflates to ``inflated_bytes``, as a
  gzip file of identical members (one member of about 8 MiB of text, compressed once
  and written again: a gzip file may hold any number of members, and every reader,
  ``zcat`` and Python's included, reads them all as one stream);
- :func:`repeated`: ``text`` repeated to ``size_bytes``, plain;
- :func:`lone_kills`: ``nr_kills`` ``Out of memory: Killed process`` lines, each one
  OOM report for the reader, two a second.

The bounds they test are those of :mod:`.limits` (and the report's
``MAX_DETAILED_KILLS``).
"""

from __future__ import annotations

import gzip
import os

__all__ = ["WRAPPED_LINE", "gzip_bomb", "lone_kills", "repeated"]

#: A line as wide as a terminal that every following line seems to continue: each
#: starts a search for the wrapped line it may be the first piece of
#: (:func:`~.rejoin.resolve`), the reader's costliest line.
WRAPPED_LINE = b"[" * 79 + b"\n"

_MEMBER_TEXT_BYTES = 8 << 20


def gzip_bomb(path: str | os.PathLike[str], text: bytes, inflated_bytes: int) -> int:
    """``text`` repeated to about ``inflated_bytes`` (whole copies, at least one), gzipped
    as identical members of about 8 MiB of text each."""
    copies = max(1, _MEMBER_TEXT_BYTES // len(text))
    member_text = text * copies
    member = gzip.compress(member_text, 9)
    with open(path, "wb") as f:
        for _ in range(max(1, inflated_bytes // len(member_text))):
            f.write(member)
    return os.path.getsize(path)


def repeated(path: str | os.PathLike[str], text: bytes, size_bytes: int) -> int:
    """``text`` repeated as many whole times as fit in ``size_bytes`` (at least once)."""
    with open(path, "wb") as f:
        f.write(text * max(1, size_bytes // len(text)))
    return os.path.getsize(path)


def lone_kills(path: str | os.PathLike[str], nr_kills: int) -> int:
    """``nr_kills`` kill lines in the 5.x layout (mm/oom_kill.c:__oom_kill_process()),
    dmesg timestamps 0.5 s apart, pids from 10,000 on."""
    with open(path, "w", encoding="ascii") as f:
        for i in range(nr_kills):
            f.write(f"[{1000 + i * 0.5:12.6f}] Out of memory: Killed process {10_000 + i} (leaker{i % 7}) "
                    f"total-vm:{1_000_000 + i}kB, anon-rss:{500_000 + i}kB, file-rss:0kB, shmem-rss:0kB, UID:0 "
                    "pgtables:1200kB oom_score_adj:0\n")
    return os.path.getsize(path)
