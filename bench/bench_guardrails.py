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

Then the kernel-log cases (issue 14, findings 2 and 6): ``memtrace report`` (in each
--format) and ``memtrace import --dmesg`` on logs built from the corpus's real memcg
OOM report (:mod:`memtrace.analysis.kernlog.craft`), each under 10 MB: a 6.5 MB gzip
of that report repeated to 1 GiB, the report repeated to 10 MB, 10 MB of lone kill
lines (60,000 kills), a gzip of a task table without end, a gzip of lines made to
look wrapped (the reader's costliest) and a gzip of ``CPU:`` lines (each parsed,
none a report). Before the bounds of :mod:`memtrace.analysis.kernlog.limits`, the
10 MB log as HTML took 279 s.

``GUARDRAILS_CASES=traces`` or ``=logs`` runs only those cases (default: both).

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


def _log_bombs(tmp: Path) -> dict[str, tuple[Path, int]]:
    """The kernel logs of the module docstring, built in ``tmp``: name -> (path, size)."""
    from memtrace.analysis.kernlog import craft

    report = REPORT_LOG.read_bytes() + b"\n"
    head = report[:report.index(b"\n", report.index(b"[  pid  ]")) + 1]
    row = b"[337533.314336] [   1000]     0  1000     4100      110    53248        0             0 proc7\n"
    cpu = b"[  100.000000] CPU: 3 PID: 23793 Comm: leaker Not tainted 5.2.0-rc7 #54\n"
    builds = {
        "reports_1gib.gz": lambda p: craft.gzip_bomb(p, report, 1 << 30),
        "reports_10mb.log": lambda p: craft.repeated(p, report, LOG_BYTES),
        "kills_10mb.log": lambda p: craft.lone_kills(p, LOG_BYTES // 167),  # 167 bytes a kill line
        "task_table_1gib.gz": lambda p: craft.gzip_bomb(p, head + row * 100_000, 1 << 30),
        "wrapped_1gib.gz": lambda p: craft.gzip_bomb(p, craft.WRAPPED_LINE, 1 << 30),
        "cpu_lines_1gib.gz": lambda p: craft.gzip_bomb(p, cpu, 1 << 30),
    }
    out = {}
    for name, build in builds.items():
        path = tmp / name
        out[name] = (path, build(path))
    return out


#: Each log case: (log, the command's arguments after it, or import's with the log as --dmesg).
LOG_CASES = (
    *(("reports_1gib.gz", ["report", "-f", fmt]) for fmt in ("text", "md", "html", "json")),
    *(("reports_10mb.log", ["report", "-f", fmt]) for fmt in ("text", "md", "html", "json")),
    ("kills_10mb.log", ["report", "-f", "html"]),
    ("kills_10mb.log", ["report", "-f", "json"]),
    ("task_table_1gib.gz", ["report", "-f", "json"]),
    ("task_table_1gib.gz", ["report", "-f", "html"]),
    ("wrapped_1gib.gz", ["report"]),
    ("cpu_lines_1gib.gz", ["report"]),
    ("reports_1gib.gz", ["import", "--dmesg"]),
)
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data"
#: The real memcg OOM report the log bombs repeat (5.2, 54 lines).
REPORT_LOG = CORPUS / "oomlogs" / "008-cgroups-5.2-memcg-v1-oom_memcg.log"
#: The perf script ``import --dmesg`` reads with the bomb as its log.
PERF_SCRIPT = CORPUS / "real" / "experiments" / "leak" / "leak-L128.perf-script.txt.gz"
#: Size of the plain log bombs: the issue's "any input under 10 MB".
LOG_BYTES = 10_000_000


def _trace_cases(tmp: Path, cases: dict[str, dict[str, Any]], problems: list[str], sizes: dict[str, int]) -> None:
    bombs = _bombs(tmp)
    keys = _unbounded_keys_trace(tmp)
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


def _log_cases(tmp: Path, cases: dict[str, dict[str, Any]], problems: list[str], sizes: dict[str, int]) -> None:
    logs = _log_bombs(tmp)
    sizes.update((name, size) for name, (_path, size) in logs.items())
    out = tmp / "out"
    for name, argv in LOG_CASES:
        path = logs[name][0]
        if argv[0] == "import":
            full = ["import", str(PERF_SCRIPT), "--dmesg", str(path), "-o", str(out.with_suffix(".mtrace"))]
        else:
            full = [*argv[:1], str(path), *argv[1:], "-o", str(out)]
        case = " ".join([argv[0], name, *argv[1:]])
        cases[case] = _run(full, tmp)
        _check(case, cases[case], problems)


def guardrails(runs: int) -> dict[str, Any]:
    """Build the bombs, the unbounded-key trace and the log bombs, run the commands;
    see the module docstring for each figure (``GUARDRAILS_CASES`` selects)."""
    del runs  # one run per case: a bound, not a timing
    cases: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    sizes: dict[str, int] = {}
    which = os.environ.get("GUARDRAILS_CASES", "")
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-guardrails-") as tmp_name:
        tmp = Path(tmp_name)
        for kind, run in (("traces", _trace_cases), ("logs", _log_cases)):
            if which and which != kind:
                continue
            try:
                run(tmp, cases, problems, sizes)
            except Exception as exc:  # keep the benchmark object whole
                reason = f"building the inputs failed ({kind}): {type(exc).__name__}: {exc}"
                return {"max_peak_rss_mib": None, "max_seconds": None, "runs": 1, "reason": reason,
                        "problems": [reason]}
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
