"""The ``guardrails`` benchmark: what small hostile inputs cost the commands.

Issue 14 found files of a megabyte or less that made commands take gigabytes: chunks
claiming millions of events, one flush group for the whole file, millions of meminfo
samples, one-liner maps with unbounded keys; to those this adds a header nested 500
deep, 80 M task starts and two tracepoints alternating event by event (every bomb of
:data:`~memtrace.tracer.tracefile.craft.BOMBS`). This benchmark builds those files
(:mod:`memtrace.tracer.tracefile.craft`: real framing, valid checksums) and runs
``memtrace stat``, ``memtrace trace`` and ``memtrace ps`` on each (and on the
interleave bomb every other command that reads a trace in ``seq`` order: explain,
``ps --at``, report, dmesg, diff, export), every command in
a fresh interpreter through the CLI's entry point, under an 8 GiB address-space limit
and a :data:`TIMEOUT_S` timeout. Then ``memtrace trace`` with a one-liner keyed by an
unbounded value (``@[address] = count()``) over a 10-million-event trace (the
``trace_io`` benchmark's stream).

Measured, per case: ``peak_rss_mib`` (the command's ``VmHWM``, interpreter and
imports included), ``seconds`` (wall time of the whole command), ``exit`` and the
command's first line on stderr. ``max_peak_rss_mib`` and ``max_seconds`` are the
worst over all cases; the targets (issue 14, "Must show") are 1 GiB and 60 s. A case
over a target, an exit code other than 0 or 1, or an internal error is a problem.
Each case runs once: the point is a bound, not a timing (``--runs`` is ignored).

Run it alone: ``.venv/bin/python bench/run.py --only guardrails``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1 << 20
#: Longest a command may run before it is stopped (and reported as over target).
TIMEOUT_S = 120
#: Address space a measured command may take: a command that loses its bound fails
#: with MemoryError rather than swapping the machine.
ADDRESS_SPACE_BYTES = 8 << 30
#: Events of the unbounded-key trace (the issue asks for 10 million).
KEYS_EVENTS = 10_000_000
TARGET_PEAK_RSS_MIB = 1024
TARGET_SECONDS = 60

#: A one-liner every bomb has tracepoints for.
COUNT_PROGRAM = "page_fault, meminfo_sample, exit { @[probe] = count(); }"
UNBOUNDED_PROGRAM = "page_fault { @[address] = count(); }"

#: Run in a fresh interpreter: the CLI's main() on argv, then this process's peak
#: resident memory and exit code written as JSON to the file named by argv[1].
_CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
out_path, argv = sys.argv[1], sys.argv[2:]
code = 0
try:
    from memtrace.cli import main
    main(argv)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
finally:
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(out_path, "w") as out:
        json.dump({{"exit": code, "peak_kib": peak_kib}}, out)
"""


def _run(argv: list[str], tmp: Path) -> dict[str, Any]:
    """One command: its peak RSS, wall time, exit code and first stderr line."""
    out_path = tmp / "child.json"
    out_path.unlink(missing_ok=True)
    code = _CHILD.format(limit=ADDRESS_SPACE_BYTES)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(out_path), *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    timed_out = False
    peak_kib: int | None = None
    try:
        _out, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        peak_kib = _vm_hwm_kib(proc.pid)  # how far it got before it is stopped
        proc.kill()
        _out, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"seconds": round(seconds, 2), "timed_out": timed_out}
    try:
        child = json.loads(out_path.read_text())
        peak_kib, result["exit"] = child["peak_kib"], child["exit"]
    except (OSError, ValueError, KeyError):
        result["exit"] = None if timed_out else proc.returncode
    result["peak_rss_mib"] = round(peak_kib / 1024, 1) if peak_kib is not None else None
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("memtrace: warning: ")]
    result["stderr"] = (errors or lines or [""])[0][:200]
    result["warnings"] = sum(line.startswith("memtrace: warning: ") for line in lines)
    return result


def _vm_hwm_kib(pid: int) -> int | None:
    """The peak resident memory of a running process, from /proc/PID/status."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def _bombs(tmp: Path) -> dict[str, tuple[Path, int]]:
    """Every bomb of craft.BOMBS, built in ``tmp``: name -> (path, size in bytes)."""
    from memtrace.tracer.tracefile.craft import BOMBS

    out = {}
    for name, build in BOMBS.items():
        path = tmp / f"{name}.mtrace"
        out[name] = (path, build(path))
    return out


def _unbounded_keys_trace(tmp: Path) -> Path:
    from bench_trace_io import _synthetic_writer  # bench/ is sys.path[0] when run.py runs

    path = tmp / "keys.mtrace"
    _synthetic_writer(path, KEYS_EVENTS)
    return path


def _interleave_commands(path: str, tmp: Path) -> dict[str, list[str]]:
    """Every other command that reads a trace in seq order, on the interleave bomb:
    each takes it by commute class or stops at the run bound with one line."""
    return {
        "explain": ["explain", path],
        "ps --at": ["ps", path, "--at", "1s"],
        "report": ["report", path, "--no-what-if", "-o", str(tmp / "report.txt")],
        "dmesg": ["dmesg", path],
        "diff": ["diff", path, path],
        "export perfetto": ["export", path, "-f", "perfetto", "-o", str(tmp / "out.pftrace")],
    }


def _check(name: str, result: dict[str, Any], problems: list[str]) -> None:
    if result["timed_out"]:
        problems.append(f"{name}: still running after {TIMEOUT_S} s (peak RSS {result['peak_rss_mib']} MiB by "
                        "then)")
    elif result["exit"] not in (0, 1):
        problems.append(f"{name}: exit {result['exit']}: {result['stderr']}")
    if "internal error" in result["stderr"] or "Traceback" in result["stderr"]:
        problems.append(f"{name}: {result['stderr']}")
    if result["peak_rss_mib"] is not None and result["peak_rss_mib"] > TARGET_PEAK_RSS_MIB:
        problems.append(f"{name}: peak RSS {result['peak_rss_mib']} MiB > {TARGET_PEAK_RSS_MIB} MiB")
    if result["seconds"] > TARGET_SECONDS and not result["timed_out"]:
        problems.append(f"{name}: {result['seconds']} s > {TARGET_SECONDS} s")


def guardrails(runs: int) -> dict[str, Any]:
    """Build the bombs and the unbounded-key trace, run the commands; see the module
    docstring for each figure."""
    del runs  # one run per case: a bound, not a timing
    cases: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-guardrails-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            bombs = _bombs(tmp)
            keys = _unbounded_keys_trace(tmp)
        except Exception as exc:  # keep the benchmark object whole
            reason = f"building the inputs failed: {type(exc).__name__}: {exc}"
            return {"max_peak_rss_mib": None, "max_seconds": None, "runs": 1, "reason": reason,
                    "problems": [reason]}
        for name, (path, size) in bombs.items():
            sizes[name] = size
            for command, extra in (("stat", ["--json"]), ("trace", ["-e", COUNT_PROGRAM]), ("ps", [])):
                case = f"{command} {name}"
                cases[case] = _run([command, str(path), *extra], tmp)
                _check(case, cases[case], problems)
        interleave = str(bombs["interleave"][0])
        for label, argv in _interleave_commands(interleave, tmp).items():
            case = f"{label} interleave"
            cases[case] = _run(argv, tmp)
            _check(case, cases[case], problems)
        sizes["keys_10m"] = keys.stat().st_size
        case = "trace keys_10m @[address]"
        cases[case] = _run(["trace", str(keys), "-e", UNBOUNDED_PROGRAM], tmp)
        _check(case, cases[case], problems)
    peaks = [c["peak_rss_mib"] for c in cases.values() if c["peak_rss_mib"] is not None]
    return {
        "max_peak_rss_mib": max(peaks) if peaks else None,
        "max_seconds": max(c["seconds"] for c in cases.values()),
        "cases": cases,
        "input_bytes": sizes,
        "runs": 1,
        "problems": problems,
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    print(json.dumps(guardrails(1), indent=2))
