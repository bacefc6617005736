"""Helpers of the robustness tests: hostile trace files and what reading them costs.

:func:`peak` runs a snippet in a fresh interpreter under an address-space limit and
returns what it printed plus its peak resident memory (``VmHWM``): memory is a bound
the tests may assert, unlike time. :func:`run_cli` runs a command in-process and
says whether it ended as memtrace promises (exit 0 or 1, one line per error, no
"internal error", no traceback).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

from memtrace.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MiB = 1 << 20
GiB = 1 << 30
#: Address space a measured child may take: a regression that loses its bound
#: fails with MemoryError instead of swapping the machine.
CHILD_ADDRESS_SPACE_BYTES = 6 * GiB

_PRELUDE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
def _peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
out = {{}}
"""
_POSTLUDE = """
out["peak_bytes"] = _peak()
print(json.dumps(out))
"""


def peak(snippet: str, *args: str, timeout_s: float = 120) -> dict[str, Any]:
    """Run ``snippet`` (which fills the dict ``out``; ``sys.argv[1:]`` are ``args``)
    in a fresh interpreter; ``out`` plus ``peak_bytes``, its VmHWM."""
    code = _PRELUDE.format(limit=CHILD_ADDRESS_SPACE_BYTES) + textwrap.dedent(snippet) + _POSTLUDE
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout_s,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


class CliRun(NamedTuple):
    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> CliRun:
    """``memtrace ARGV`` in this process, through the console entry point."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return CliRun(code, out.getvalue(), err.getvalue())


def assert_clean(run: CliRun) -> None:
    """The run ended as memtrace promises: exit 0 or 1, no internal error, no
    traceback, and an error (if any) on one line."""
    assert run.code in (0, 1), run
    assert "internal error" not in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if not line.startswith("memtrace: warning: ")]
    if run.code == 1:
        assert len(errors) == 1 and errors[0].startswith("memtrace: "), run.stderr


def frames_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every frame after the magic: an independent walk of the layout."""
    import struct

    out = []
    pos = 8
    while pos + 12 <= len(data):
        _marker, length, _crc = struct.unpack_from("<4sII", data, pos)
        payload = data[pos + 12 : pos + 12 + length]
        out.append((payload[:1], payload[1:]))
        pos += 12 + length
    return out


def sample_parts(name: str) -> tuple[dict[str, Any], list[bytes]]:
    """The header map of ``sample_traces/NAME.mtrace`` (msgpack decoded) and its other
    frames, re-framed (unchanged bytes)."""
    import msgpack

    from memtrace.tracer.tracefile.format import frame

    frames = frames_of((SAMPLES / f"{name}.mtrace").read_bytes())
    head = msgpack.unpackb(frames[0][1], raw=False, strict_map_key=False)
    return head, [frame(kind, body) for kind, body in frames[1:]]
