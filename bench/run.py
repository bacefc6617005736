#!/usr/bin/env python3
"""memtrace's benchmarks, measured side by side with the real kernel.

Each benchmark is an entry of :func:`benchmarks`: a name mapped to a function that
takes the number of timed runs and returns one JSON-able dict. ``--json`` prints one
object holding every entry that ran and a description of the machine::

    {"first_touch_1gib": {"sim_s": ..., "real_kernel_s": ..., "ratio": ...,
                          "events": ..., "trace_bytes": ..., "runs": ...},
     "machine": {"cpu_model": ..., "nproc": ..., "python": ...}}

Timings are medians of ``--runs`` timed runs after one untimed warm-up run (the first
touch of guest memory on a VM, and Python's first pass through the code, are far
slower than the steady state and would be measured otherwise). A value that could not
be measured is null, with a ``*_reason`` key saying why. The exit code is 1 when a
benchmark's own checks failed (wrong event count, a failed recording), else 0.

Run it with the project's venv (``make bench``), where memtrace is installed::

    .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --json --runs 3
    .venv/bin/python bench/run.py --only first_touch_1gib

See bench/README.md for what each entry measures and the targets.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from bench_cli import cli_startup
from bench_explain import explain_large
from bench_export import export_parquet
from bench_guardrails import TARGET_PEAK_RSS_MIB, TARGET_SECONDS, guardrails
from bench_import import import_perf_script
from bench_kernlog import read_kernel_log
from bench_live import live_overhead
from bench_oom_leak import oom_leak
from bench_probe import probe_count
from bench_report_real import report_real
from bench_sweep import sweep
from bench_trace_io import trace_io  # bench/ is sys.path[0] when this script runs

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = BENCH_DIR / ".build"  # git-ignored
PAGE_SIZE_BYTES = 4096
MIB = 1 << 20

FIRST_TOUCH_LENGTH_BYTES = 1 << 30
FIRST_TOUCH_NR_PAGES = FIRST_TOUCH_LENGTH_BYTES // PAGE_SIZE_BYTES  # 262,144
FIRST_TOUCH_MACHINE_RAM_BYTES = 24 << 30

DEFAULT_RUNS = 5
WARMUP_RUNS = 1
REAL_KERNEL_TIMEOUT_S = 300

Entry = dict[str, Any]


class Benchmark(NamedTuple):
    """One entry of the benchmark object: what it measures, how, and its targets."""

    description: str
    run: Callable[[int], Entry]
    # Entry key -> the largest value that meets the target (ratio <= 1.0, ...).
    targets: dict[str, float]


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark by name, in the order they run. Add new ones here."""
    return {
        "first_touch_1gib": Benchmark(
            description="record a 1 GiB private anon first touch; vs. touch.c",
            run=first_touch_1gib,
            targets={"ratio": 1.0, "trace_bytes": 4 * MIB},
        ),
        "oom_leak": Benchmark(
            description="record the oom-leak scenario: reclaim, kswapd, OOM kill (bench_oom_leak.py)",
            run=oom_leak,
            targets={"seconds": 2.0},
        ),
        "trace_io": Benchmark(
            description="write and read 10 M page-fault-like events (bench_trace_io.py)",
            run=trace_io,
            # >= 5 M events/s written, >= 10 M/s read, as ns per event.
            targets={"write_ns_per_event": 200, "read_ns_per_event": 100, "reader_peak_rss_mib": 200},
        ),
        "probe_count": Benchmark(
            description="count() keyed by pid over the 1 GiB first-touch trace (bench_probe.py)",
            run=probe_count,
            # >= 20 M events/s, as ns per event.
            targets={"ns_per_event": 50},
        ),
        "explain_large": Benchmark(
            description="memtrace explain on a 64 GiB machine full of mixed memory (bench_explain.py)",
            run=explain_large,
            targets={"seconds": 10.0, "peak_rss_mib": 2048},
        ),
        "guardrails": Benchmark(
            description="stat, trace and ps on small hostile traces; an unbounded-key map (bench_guardrails.py)",
            run=guardrails,
            # issue 14: no input under 10 MB makes a command exceed 1 GiB or 60 s.
            targets={"max_peak_rss_mib": TARGET_PEAK_RSS_MIB, "max_seconds": TARGET_SECONDS},
        ),
        "import_perf_script": Benchmark(
            description="memtrace import of a 1 M-line perf script (bench_import.py)",
            run=import_perf_script,
            # >= 300,000 lines/s, as ns per line.
            targets={"ns_per_line": 3333},
        ),
        "read_kernel_log": Benchmark(
            description="read a 1 M-line journal with 100 real OOM reports interleaved (bench_kernlog.py)",
            run=read_kernel_log,
            # >= 500,000 lines/s, as ns per line.
            targets={"ns_per_line": 2000},
        ),
        "sweep": Benchmark(
            description="64 replays of oom-leak on a 2-worker Dask LocalCluster vs. serially (bench_sweep.py)",
            run=sweep,
            # speed-up >= 1.7 over serial, as serial-over-dask inverted.
            targets={"seconds_per_serial_second": 1 / 1.7},
        ),
        "report_real": Benchmark(
            description="memtrace report with what-ifs on a 261k-line real import, 2 kills (bench_report_real.py)",
            run=report_real,
            targets={"seconds": 15.0},
        ),
        "live_overhead": Benchmark(
            description="touch.c's 1 GiB first touch under memtrace record --live -p vs. alone (bench_live.py)",
            run=live_overhead,
            targets={"ratio": 2.0, "lost": 0},
        ),
        "cli_startup": Benchmark(
            description="memtrace --version and --help, each a new process (bench_cli.py)",
            run=cli_startup,
            targets={"cli_startup_s": 0.25, "help_s": 0.25},
        ),
        "export_parquet": Benchmark(
            description="export a 10 M-event trace as Parquet tables (bench_export.py)",
            run=export_parquet,
            # >= 10 M events/s, as ns per event; memory flat.
            targets={"ns_per_event": 100, "peak_rss_mib": 1024},
        ),
    }


# --- first_touch_1gib ---------------------------------------------------------------


def first_touch_1gib(runs: int) -> Entry:
    """Time memtrace against the real kernel on 262,144 first-touch page faults.

    sim_s: median wall time of ``memtrace.api.record()`` of a scenario that mmaps
    1 GiB private anonymous memory and writes all of it, trace written to a temp file.
    real_kernel_s: median time of bench/touch.c's touch loop (same mapping, one byte
    written per 4096-byte page), compiled with ``cc -O2``.
    """
    sim = _time_first_touch_sim(runs)
    real = _time_touch_c(runs, FIRST_TOUCH_LENGTH_BYTES)

    problems = list(sim.problems) + list(real.problems)
    if sim.median_s is not None and sim.events != FIRST_TOUCH_NR_PAGES:
        problems.append(
            f"simulation counted {sim.events} page_fault events, "
            f"expected {FIRST_TOUCH_NR_PAGES}"
        )
    if real.minor_faults is not None and real.minor_faults < FIRST_TOUCH_NR_PAGES:
        # Fewer faults than pages means the kernel mapped more than a page per
        # fault (THP despite MADV_NOHUGEPAGE): not the experiment simulated.
        problems.append(
            f"touch.c took {real.minor_faults} minor faults, "
            f"expected at least {FIRST_TOUCH_NR_PAGES}"
        )

    ratio = None
    if sim.median_s is not None and real.median_s:
        ratio = float(f"{sim.median_s / real.median_s:.4g}")
    return {
        "sim_s": sim.median_s,
        "real_kernel_s": real.median_s,
        "ratio": ratio,
        "events": sim.events,
        "trace_bytes": sim.trace_bytes,
        "runs": runs,
        "sim_reason": sim.reason,
        "real_kernel_reason": real.reason,
        "real_kernel_minor_faults": real.minor_faults,
        "sim_runs_s": sim.runs_s,
        "real_kernel_runs_s": real.runs_s,
        "problems": problems,
    }


class SimTiming(NamedTuple):
    """Median and per-run wall times of recording a scenario, in seconds."""

    median_s: float | None
    runs_s: list[float]
    events: int | None  # page_fault events of the last run
    trace_bytes: int | None  # size of the last run's trace file
    reason: str | None  # why median_s is None
    problems: list[str]


def _first_touch_scenario() -> Any:
    """The simulated twin of bench/touch.c, as a memtrace Scenario."""
    from memtrace.kernel.workload import MachineSpec, Mmap, ProcessSpec, Scenario, Touch

    return Scenario(
        name="first-touch-1gib",
        machine=MachineSpec(ram_bytes=FIRST_TOUCH_MACHINE_RAM_BYTES),
        processes=(
            ProcessSpec(
                name="toucher",
                steps=(
                    Mmap(handle="buf", length_bytes=FIRST_TOUCH_LENGTH_BYTES),
                    Touch(handle="buf", write=True),
                ),
            ),
        ),
    )


def _time_first_touch_sim(runs: int) -> SimTiming:
    """Time ``record()`` of the first-touch scenario: one warm-up, then ``runs`` runs."""
    try:
        from memtrace.api import record

        scenario = _first_touch_scenario()
    except ImportError as exc:
        reason = (
            f"cannot import memtrace ({exc}); run `make venv` and use .venv/bin/python"
        )
        return SimTiming(None, [], None, None, reason, [reason])

    runs_s: list[float] = []
    sizes_bytes: list[int] = []
    problems: list[str] = []
    events = None
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-") as tmp:
        for i in range(WARMUP_RUNS + runs):
            trace_path = Path(tmp) / f"first-touch-{i}.mtrace"
            try:
                start_s = time.perf_counter()
                result = record(scenario, str(trace_path))
                elapsed_s = time.perf_counter() - start_s
                size_bytes = trace_path.stat().st_size
            except Exception as exc:  # report, keep the benchmark object whole
                traceback.print_exc(file=sys.stderr)
                reason = f"record() failed: {type(exc).__name__}: {exc}"
                return SimTiming(None, [], None, None, reason, [reason])
            trace_path.unlink()
            events = result.events.get("page_fault")
            sizes_bytes.append(size_bytes)
            mismatch = (
                f"record() reported trace_bytes={result.trace_bytes}, "
                f"the file has {size_bytes}"
            )
            if result.trace_bytes != size_bytes and mismatch not in problems:
                problems.append(mismatch)
            if i >= WARMUP_RUNS:
                runs_s.append(round(elapsed_s, 6))

    if len(set(sizes_bytes)) != 1:
        problems.append(f"trace sizes differ between identical runs: {sizes_bytes}")
    median_s = round(statistics.median(runs_s), 6)
    return SimTiming(median_s, runs_s, events, sizes_bytes[-1], None, problems)


# --- real kernel --------------------------------------------------------------------


class RealTiming(NamedTuple):
    """Median and per-run times of a C program's timed loop, in seconds."""

    median_s: float | None
    runs_s: list[float]
    minor_faults: int | None  # minor faults in the timed loop of the last run
    reason: str | None  # why median_s is None
    problems: list[str]


def _compile_c(source: Path) -> tuple[Path | None, str | None]:
    """Compile ``source`` with ``$CC`` (default ``cc``) ``-O2`` into bench/.build/.

    Returns the binary, or None and the reason it could not be built.
    """
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        return None, f"C compiler {compiler!r} not found on PATH"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    binary = BUILD_DIR / source.stem
    # Build beside the target and rename, so a concurrent run never sees half a file.
    tmp_binary = BUILD_DIR / f".{source.stem}.{os.getpid()}"
    cmd = [compiler, "-O2", "-Wall", "-o", str(tmp_binary), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp_binary.unlink(missing_ok=True)
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return None, f"{compiler} -O2 {source.name} failed: {detail[0]}"
    os.replace(tmp_binary, binary)
    return binary, None


def _run_touch(binary: Path, length_bytes: int) -> tuple[float, int | None]:
    """Run touch.c once; its loop time in seconds and minor faults (see touch.c)."""
    proc = subprocess.run(
        [str(binary), str(length_bytes)],
        capture_output=True,
        text=True,
        check=False,
        timeout=REAL_KERNEL_TIMEOUT_S,
    )
    if proc.returncode != 0:
        stderr = proc.stderr.strip() or "(no stderr)"
        raise RuntimeError(f"{binary.name} exited {proc.returncode}: {stderr}")
    lines = proc.stdout.split()
    elapsed_s = float(lines[0])
    minor_faults = None
    for line in lines[1:]:
        key, _, value = line.partition("=")
        if key == "minor_faults":
            minor_faults = int(value)
    return elapsed_s, minor_faults


def _time_touch_c(runs: int, length_bytes: int) -> RealTiming:
    """Build bench/touch.c and time it: one warm-up, then ``runs`` runs."""
    binary, reason = _compile_c(BENCH_DIR / "touch.c")
    if binary is None:
        return RealTiming(None, [], None, reason, [])
    runs_s: list[float] = []
    minor_faults = None
    try:
        for i in range(WARMUP_RUNS + runs):
            elapsed_s, minor_faults = _run_touch(binary, length_bytes)
            if i >= WARMUP_RUNS:
                runs_s.append(round(elapsed_s, 6))
    except (OSError, RuntimeError, ValueError, IndexError, subprocess.SubprocessError) as e:
        reason = f"running {binary.name} failed: {e}"
        return RealTiming(None, [], None, reason, [reason])
    median_s = round(statistics.median(runs_s), 6)
    return RealTiming(median_s, runs_s, minor_faults, None, [])


# --- machine ------------------------------------------------------------------------


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, memory, kernel, Python, key packages."""
    cpu_model = platform.processor() or platform.machine()
    mem_total_bytes = None
    for line in (_read_text("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu_model = line.partition(":")[2].strip()
            break
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem_total_bytes = int(line.split()[1]) * 1024
            break
    thp = _read_text("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp and "[" in thp:
        thp = thp.split("[", 1)[1].split("]", 1)[0]
    try:
        nproc = len(os.sched_getaffinity(0))  # what nproc(1) prints
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "nproc": nproc,
        "mem_total_bytes": mem_total_bytes,
        "kernel": f"{platform.system()} {platform.release()}",
        "transparent_hugepage": thp,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "memtrace": _version("memtrace"),
        "numpy": _version("numpy"),
    }


# --- output -------------------------------------------------------------------------

_HIDDEN_KEYS = {"problems"}


def _format_value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_bytes") and isinstance(value, int):
        return f"{value:,} ({value / MIB:.2f} MiB)"
    if isinstance(value, float):
        return f"{value:.4g}" if key == "ratio" else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_text(results: dict[str, Any], registry: dict[str, Benchmark]) -> str:
    """The human twin of --json: one block per benchmark, lines under 80 columns."""
    out: list[str] = []
    for name, entry in results.items():
        if name == "machine":
            continue
        bench = registry[name]
        out.append(f"{name}: {bench.description}")
        notes: list[str] = []
        problems: list[str] = entry.get("problems", [])
        for key, value in entry.items():
            if key in _HIDDEN_KEYS or isinstance(value, (list, dict)):
                continue
            if key.endswith("_reason"):
                if value and value not in problems:
                    notes.append(f"{key.removesuffix('_reason')} not measured: {value}")
                continue
            line = f"  {key.upper():<26} {_format_value(key, value)}"
            if key in bench.targets:
                limit = bench.targets[key]
                if value is None:
                    verdict = "?"
                else:
                    verdict = "met" if value <= limit else "MISSED"
                shown = f"{limit / MIB:g} MiB" if key.endswith("_bytes") else str(limit)
                line = f"{line:<52} target <= {shown}: {verdict}"
            out.append(line)
        for label, texts in (("note", notes), ("PROBLEM", problems)):
            for text in texts:
                out.extend(textwrap.wrap(
                    text, width=79, initial_indent=f"  {label}: ",
                    subsequent_indent="    ", break_on_hyphens=False,
                ))
        out.append("")
    m = results["machine"]
    out.append(
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['kernel']}, "
        f"Python {m['python']}"
    )
    return "\n".join(out)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    registry = benchmarks()
    parser = argparse.ArgumentParser(
        description="Benchmark memtrace against the real kernel.",
        epilog="examples:\n  bench/run.py\n  bench/run.py --json --runs 3\n"
        "  bench/run.py --only first_touch_1gib",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only", choices=sorted(registry), metavar="NAME",
        help=f"run one benchmark ({', '.join(sorted(registry))})",
    )
    parser.add_argument(
        "--runs", type=_positive_int, default=DEFAULT_RUNS,
        help=f"timed runs per measurement, median reported (default {DEFAULT_RUNS})",
    )
    args = parser.parse_args(argv)

    selected = [args.only] if args.only else list(registry)
    results: dict[str, Any] = {}
    for name in selected:
        entry = registry[name].run(args.runs)
        entry["targets"] = dict(registry[name].targets)
        results[name] = entry
    results["machine"] = machine_info()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render_text(results, registry))

    failed = [name for name in selected if results[name].get("problems")]
    if failed:
        print(f"bench: checks failed in {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
