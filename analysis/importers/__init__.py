"""Importers of real kernel text into memtrace traces.

``perf script`` dumps (:mod:`.perf_script`) and raw ftrace buffers (:mod:`.ftrace`)
of the real memory-management tracepoints become ordinary memtrace traces
(:mod:`.builder` dispatches each event to its tracepoint system's mapper in
:mod:`.mapping`; :mod:`.workload` derives the replay workload; :mod:`.assemble`
writes the trace), which ``stat``, ``trace``, ``explain``,
``report`` and ``replay`` read like a simulated one. A companion kernel log with
the OOM reports (:mod:`memtrace.analysis.kernlog`) adds what the tracepoints do not
carry: the victims' badness, the task tables, the memory cgroup and its limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from memtrace.errors import ParseError

from .textio import TextLines, head_text, open_text

if TYPE_CHECKING:  # the modules below import memtrace.analysis.kernlog, which imports .textio
    from .assemble import ImportResult

__all__ = ["FORMATS", "ImportResult", "detect_format", "import_trace"]

#: The input formats ``memtrace import --format`` takes.
FORMATS = ("perf-script", "ftrace")

_PERF = re.compile(r"^\s*\S.*?\s\d+(?:/\d+)?\s+(?:\[\d+\]\s+)?\d+\.\d+:\s+[\w-]+:[\w-]+:")
_FTRACE = re.compile(r"^\s*.*-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S{4,5}\s+)?\d+\.\d+:\s")


def detect_format(path: str | os.PathLike[str]) -> str:
    """``perf-script`` or ``ftrace`` from the first lines of ``path``; ParseError
    naming the file when it looks like neither."""
    head = head_text(path, 256 << 10)
    if head.startswith("# tracer:"):
        return "ftrace"
    perf = ftr = 0
    for line in head.splitlines()[:400]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if _PERF.match(line):
            perf += 1
        elif _FTRACE.match(line):
            ftr += 1
    if perf == 0 and ftr == 0:
        raise ParseError(f"{os.fsdecode(path)}: neither perf script nor ftrace text "
                         "(give --format, or see 'memtrace import --help')")
    return "perf-script" if perf >= ftr else "ftrace"


def import_trace(input_path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                 format: str = "auto", dmesg: str | os.PathLike[str] | None = None,
                 kernel_version: str | None = None, memtrace_version: str = "0.1.0",
                 progress: Callable[[int], None] | None = None,
                 snapshot: str | os.PathLike[str] | None = None, vma_steps: bool | None = None,
                 names: Mapping[str, str] | None = None) -> ImportResult:
    """Import a ``perf script`` or ftrace text file (plain or gzip) into the memtrace
    trace ``output``.

    ``dmesg`` is a companion kernel log of the same run: its OOM reports fill the
    ``oom_kill`` events' badness, constraint and memcg, add the task tables
    (``oom_candidate``) and memcg stats, and size the replay workload's machine and
    memory cgroup. ``snapshot`` is a ``memtrace snapshot`` (JSON, plain or gzip)
    taken when the trace started: the processes that predate the trace start with
    its memory, and it gives the memory cgroups, their limits and the machine's RAM
    when no log does. ``kernel_version`` names the traced kernel when no log does.
    ``vma_steps`` says whether the derived workload uses the scenario steps
    madvise, mremap and mprotect (default: :data:`.workload.VMA_STEPS`).
    ``progress`` is called with the bytes read so far, now and then. ``names``
    gives an input the name the trace records for it (``"input"``, ``"dmesg"``,
    ``"snapshot"``: the pipe a user gave, read from a temporary copy). Raises
    ParseError when an input cannot be read or its format not recognised.
    """
    from ..kernlog.parse import OomLog, parse_oom_log
    from ..procsnap import load_snapshot
    from . import ftrace, perf_script
    from .builder import TraceBuilder
    from .workload import VMA_STEPS

    if os.path.exists(output) and os.path.samefile(output, input_path):
        raise ParseError(f"{os.fsdecode(output)}: the trace would overwrite the input it imports; choose another -o")
    fmt = detect_format(input_path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ParseError(f"unknown input format {format!r} (known: {', '.join(FORMATS)}, auto)")
    names = names or {}
    text = open_text(input_path)
    companion: OomLog | None = parse_oom_log(dmesg) if dmesg is not None else None
    if companion is not None:
        companion.path = names.get("dmesg", companion.path)
    snap = load_snapshot(snapshot) if snapshot is not None else None
    builder = TraceBuilder(output, source_format=fmt, source_path=names.get("input", text.path), companion=companion,
                           kernel_version=kernel_version, memtrace_version=memtrace_version, snapshot=snap,
                           snapshot_path=(names.get("snapshot", os.fsdecode(snapshot)) if snapshot is not None
                                          else None),
                           vma_steps=VMA_STEPS if vma_steps is None else vma_steps)
    lines: Iterable[str] = text if progress is None else _Counting(text, progress)
    try:
        (perf_script if fmt == "perf-script" else ftrace).feed(lines, builder)
        warnings = list(text.warnings)
        if companion is not None:
            warnings.extend(companion.warnings)
        return builder.finish(extra_warnings=warnings)
    except BaseException:
        builder.abort()
        raise


def __getattr__(name: str) -> Any:
    if name == "ImportResult":
        from .assemble import ImportResult

        return ImportResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Counting:
    """The lines of ``text``, reporting the bytes read to ``progress`` once per
    block (the perf reader's bulk path reads :meth:`raw_blocks`)."""

    def __init__(self, text: TextLines, progress: Callable[[int], None]) -> None:
        self.text = text
        self.progress = progress

    @property
    def warnings(self) -> list[str]:
        return self.text.warnings

    def raw_blocks(self) -> Iterator[bytes]:
        done = 0
        for block in self.text.raw_blocks():
            yield block
            done += len(block)
            self.progress(done)

    def blocks(self) -> Iterator[list[str]]:
        chars = 0
        for block in self.text.blocks():
            yield block
            chars += sum(map(len, block)) + len(block)
            self.progress(chars)

    def __iter__(self) -> Iterator[str]:
        for block in self.blocks():
            yield from block
