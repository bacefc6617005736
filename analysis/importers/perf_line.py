"""The line layout of ``perf script`` for tracepoints: one event per line.

The default layout (tools/perf/builtin-script.c,
``../shared/reference/kernel-mm-facts.md`` §7.7)::

    "%16s " comm, "%7d " tid, "[%03d] " cpu, "%12s: " time (sec.usec, or sec.nsec
    with --ns), "%*s: " system:event (right-aligned), then the event's text as
    libtraceevent renders its print_fmt.

Also read: ``pid/tid`` instead of the tid (``-F comm,pid,tid,...``), no cpu column,
comms with spaces. :func:`parse_line` reads any such line; :class:`PerfLayout` is the
fixed-width column layout of one file, learnt from a line, which both fast paths
read by position.
"""

from __future__ import annotations

from memtrace.linux.limits import INT_MAX, INT_MIN, LONG_MAX

from .builder import ParsedLine

__all__ = ["PerfLayout", "parse_line"]

_SCALE = tuple(10 ** (9 - n) if n <= 9 else 0 for n in range(16))


def parse_line(line: str) -> ParsedLine | None:
    """``(comm, tid, pid or None, ts_ns, event, payload)`` of one perf script line,
    or None when the line is not a tracepoint event line, or its numbers are none
    perf prints there (a tid or pid beyond ``pid_t``, a time past 2**63 ns)."""
    head, sep, rest = line.partition(": ")
    if not sep:
        return None
    name, sep, payload = rest.partition(": ")
    if not sep:
        name = rest.rstrip().rstrip(":")
        payload = ""
    name = name.strip()
    if ":" not in name or " " in name:
        return None
    toks = head.rsplit(None, 3)
    if len(toks) == 4 and toks[2][:1] == "[":
        comm, who, ts = toks[0], toks[1], toks[3]
    else:
        toks = head.rsplit(None, 2)
        if len(toks) != 3:
            return None
        comm, who, ts = toks
    sec, dot, frac = ts.partition(".")
    if not dot or not sec.isdigit() or not frac.isdigit():
        return None
    ts_ns = int(sec) * 1_000_000_000 + int(frac) * _SCALE[min(len(frac), 15)]
    pid: int | None = None
    if "/" in who:
        p, _, t = who.partition("/")
        pid, tid = int(p), int(t)
        if not INT_MIN <= pid <= INT_MAX:
            return None
    else:
        tid = int(who)
    if not INT_MIN <= tid <= INT_MAX or ts_ns > LONG_MAX:
        return None
    return comm.strip(), tid, pid, ts_ns, name, payload


class PerfLayout:
    """Column positions of perf script's fixed-width default layout, learnt from
    one line: comm ``[:comm_end]``, tid ``[comm_end:cpu_open]``, time
    ``[cpu_close + 1:colon]``, event name ``[colon + 2:name_end]`` (padded), text
    ``[name_end + 2:]``. Lines that do not fit take the general path.

    The tid and seconds columns are at most 9 characters wide (without the spaces
    around them): a number read there fits ``pid_t``, and a time in ns ``int64``,
    whatever the line holds. Wider ones are no layout: perf's ``%7d`` tid takes 10
    digits only past pid 10**9 (pid_max is at most 2**22), its ``%5lu`` seconds
    only past 31 years of uptime.
    """

    __slots__ = ("colon", "comm_end", "cpu_close", "cpu_open", "dot", "name_end", "scale")

    def __init__(self, comm_end: int, cpu_open: int, cpu_close: int, colon: int, name_end: int,
                 scale: int, dot: int) -> None:
        self.dot = dot  # the '.' of the time
        self.comm_end = comm_end
        self.cpu_open = cpu_open
        self.cpu_close = cpu_close
        self.colon = colon
        self.name_end = name_end
        self.scale = scale

    @classmethod
    def learn(cls, line: str) -> PerfLayout | None:
        colon = line.find(": ")
        name_end = line.find(": ", colon + 2)
        if colon < 0 or name_end < 0:
            return None
        head = line[:colon]
        cpu_close = head.rfind("]")
        cpu_open = head.rfind("[", 0, cpu_close)
        if cpu_open < 0 or head[cpu_close + 1:].strip().count(".") != 1:
            return None
        before = head[:cpu_open].rstrip()
        tid_start = before.rfind(" ") + 1
        if not before[tid_start:].isdigit():
            return None
        comm_end = len(before[:tid_start].rstrip())
        if comm_end <= 0 or line[comm_end] != " ":
            return None
        frac = head[cpu_close + 1:].strip().partition(".")[2]
        if not frac.isdigit() or len(frac) > 9:
            return None
        dot = colon - len(frac) - 1
        if cpu_open - comm_end - 2 > 9 or dot - cpu_close - 2 > 9:  # the tid's and the seconds' widths
            return None
        return cls(comm_end, cpu_open, cpu_close, colon, name_end, 10 ** (9 - len(frac)), dot)


