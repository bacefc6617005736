"""``perf script`` text: one tracepoint event per line.

The default layout of ``perf script`` for tracepoints (tools/perf/builtin-script.c,
``../shared/reference/kernel-mm-facts.md`` §7.7)::

    "%16s " comm, "%7d " tid, "[%03d] " cpu, "%12s: " time (sec.usec, or sec.nsec
    with --ns), "%*s: " system:event (right-aligned), then the event's text as
    libtraceevent renders its print_fmt.

Also read: ``pid/tid`` instead of the tid (``-F comm,pid,tid,...``), no cpu column,
comms with spaces. Header comments (``#``) and blank lines are skipped; any other line
that does not have this shape (callchains, non-tracepoint samples) is counted as
unknown.

:mod:`.perf_line` reads a line and learns the file's column layout;
:func:`feed_lines` reads the file a line of text at a time, :class:`.perf_blocks.BlockFeeder`
a block of bytes at a time with numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from .builder import Handler, TraceBuilder, feed_line
from .mapping.fields import UnreadableLine
from .perf_blocks import BlockFeeder, RawBlocks
from .perf_line import PerfLayout, parse_line

__all__ = ["LineBlocks", "RawBlocks", "feed", "feed_lines", "parse_line"]


@runtime_checkable
class LineBlocks(Protocol):
    """Text read as blocks of decoded lines (:meth:`.textio.TextLines.blocks`)."""

    def blocks(self) -> Iterator[list[str]]: ...


def feed(lines: Iterable[str], builder: TraceBuilder, *, vectorised: bool = True) -> None:
    """Parse every line into ``builder``.

    A :class:`~.textio.TextLines` input is read in blocks of bytes whose lines in the
    file's fixed-width layout are cut up with numpy (:mod:`.perf_blocks`): the two
    tracepoints that make up nearly all of a memory trace, ``kmem:rss_stat`` and
    ``exceptions:page_fault_user``, are parsed there, and runs of them in the common
    case become events in bulk (:class:`.perf_blocks.BlockFeeder`); every other line is read as
    text (:func:`feed_lines`' general path). ``vectorised=False`` reads every line
    as text; both give the same trace.
    """
    if vectorised and isinstance(lines, RawBlocks):
        BlockFeeder(builder).feed(lines)
    else:
        feed_lines(lines, builder)


def feed_lines(lines: Iterable[str], builder: TraceBuilder) -> None:
    """Parse every line into ``builder``, one line of text at a time.

    The loop inlines :func:`parse_line` and :meth:`TraceBuilder.event` for lines in
    the file's fixed-width layout (learnt from a line, see :class:`.perf_line.PerfLayout`) from a
    task whose comm is unchanged: nearly every line. Any other line takes the
    general path, which also learns the layout again.
    """
    blocks: Iterable[Sequence[str]] = (lines.blocks() if isinstance(lines, LineBlocks)
                                       else [lines if isinstance(lines, Sequence) else list(lines)])
    handlers = builder.handlers
    comms = builder.comms
    tgid = builder.tgid
    out = builder.out
    padded: dict[str, Handler] = {}  # event names as printed (right-aligned) -> handler
    raw_comm: dict[int, str] = {}  # pid -> its comm as printed, when it matches comms
    total = 0
    last_ts = builder.last_ts
    lay: PerfLayout | None = None
    # Positions of the learnt layout (-1: none yet; then the fast test always fails).
    ce = co = colon = ne = dot = ts0 = -1
    longer = 1 << 30
    scale = 1000
    for block in blocks:
        total += len(block)
        for line in block:
            # The fixed-width fast path: single-character tests, then slices. The
            # separators are those parse_line() splits at, so that a line read here
            # is one it reads the same way.
            if (len(line) > longer and line[colon:colon + 2] == ": " and line[ne:ne + 2] == ": "
                    and line[dot] == "." and line[ce] == " " and line[co - 1:co + 1] == " [" and line[ts0] == " "
                    and line[co + 1:ts0 - 1].isdigit() and line[dot + 1:colon].isdigit()
                    and line[ts0:dot].lstrip().isdigit()):
                handler = padded.get(line[colon + 2:ne])
                if handler is not None:
                    try:
                        ts = int(line[ts0:dot]) * 1_000_000_000 + int(line[dot + 1:colon]) * scale
                        pid = int(line[ce:co])
                    except ValueError:
                        pass
                    else:
                        builder.tid = pid
                        if tgid:
                            pid = tgid.get(pid, pid)
                        if raw_comm.get(pid) == line[:ce]:
                            if ts > last_ts:
                                last_ts = builder.last_ts = ts
                                if builder.first_ts is None:
                                    builder.first_ts = ts
                            try:
                                if not handler(comms[pid], pid, ts, line[ne + 2:]):
                                    builder.unreadable(line[colon + 2:ne].strip())
                            except UnreadableLine:
                                builder.unreadable(line[colon + 2:ne].strip())
                            if out.seq >= out.next_flush:
                                builder.flush()
                            continue
            # The general path.
            parsed = feed_line(builder, line, parse_line)
            if parsed is None:
                continue
            comm, tid, pid_, _ts_ns, name, _payload = parsed
            last_ts = builder.last_ts
            if pid_ is not None:  # "pid/tid": the comm may have changed without the column telling
                raw_comm.pop(tgid.get(tid, tid), None)
            else:
                learnt = PerfLayout.learn(line)
                if learnt is not None:
                    lay = learnt
                    ce, co, colon, ne, scale = lay.comm_end, lay.cpu_open, lay.colon, lay.name_end, lay.scale
                    dot = lay.dot
                    ts0 = lay.cpu_close + 1
                    longer = ne + 1
                    name_text = line[colon + 2:ne]
                    h = handlers.get(name_text.strip())
                    if h is not None:
                        padded[name_text] = h
                tid = tgid.get(tid, tid)
                column = line[:ce] if ce > 0 else comm
                if comms.get(tid) == comm and column.strip() == comm:
                    raw_comm[tid] = column
                else:  # the comm is not the column's (it spills out of it, or changed)
                    raw_comm.pop(tid, None)
                h = handlers.get(name)
                if h is not None and ne > 0:
                    padded.setdefault(line[colon + 2:ne], h)
    builder.lines += total
