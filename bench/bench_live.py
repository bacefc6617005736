"""The ``live_overhead`` benchmark: what ``memtrace record --live -p`` costs the program it traces.

bench/touch.c first-touches 1 GiB (262,144 page faults) and prints the time of its
touch loop. Each run starts it stopped (``sh -c 'kill -STOP $$; exec touch'``), and
continues it either alone (untraced) or once ``memtrace record --live -p PID`` says
it is recording (traced; the recording stops when the program exits). Traced and
untraced runs alternate, so that the machine's load weighs on both alike:

- ``untraced_s``, ``traced_s``: median loop times (s);
- ``ratio``: traced_s / untraced_s, with ``ratio_min``..``ratio_max`` over the
  traced runs (each against the untraced median);
- ``events``: median events read from tracefs per traced run; ``lost``: events the
  kernel lost, summed over the traced runs (the target is 0).

Needs root and a writable tracefs, and a C compiler; else the values are null and
``reason`` says why.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = BENCH_DIR / ".build"
LENGTH_BYTES = 1 << 30
NR_PAGES = LENGTH_BYTES // 4096
#: How long the recorder may take to say it is recording (s).
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 300.0


def _touch_binary() -> tuple[Path | None, str | None]:
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        return None, f"C compiler {compiler!r} not found on PATH"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    binary = BUILD_DIR / "touch_live"
    tmp = BUILD_DIR / f".touch_live.{os.getpid()}"
    proc = subprocess.run([compiler, "-O2", "-Wall", "-o", str(tmp), str(BENCH_DIR / "touch.c")],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None, f"{compiler} -O2 touch.c failed: {proc.stderr.strip()[-200:]}"
    os.replace(tmp, binary)
    return binary, None


def _start_stopped(binary: Path, out: Path) -> subprocess.Popen[bytes]:
    """touch.c under a shell that stops itself before exec (exec keeps the pid)."""
    child = subprocess.Popen(["/bin/sh", "-c", f'kill -STOP $$; exec "$0" {LENGTH_BYTES} > "$1"',
                              str(binary), str(out)])
    _pid, status = os.waitpid(child.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        raise RuntimeError(f"touch did not stop itself (status {status:#x})")
    return child


def _loop_s(child: subprocess.Popen[bytes], out: Path) -> tuple[float, int]:
    if child.wait(timeout=RUN_TIMEOUT_S) != 0:
        raise RuntimeError(f"touch exited {child.returncode}")
    lines = out.read_text().split()
    return float(lines[0]), int(lines[1].partition("=")[2])


def _untraced(binary: Path, tmp: Path) -> float:
    out = tmp / "untraced.out"
    child = _start_stopped(binary, out)
    os.kill(child.pid, signal.SIGCONT)
    return _loop_s(child, out)[0]


def _wait_recording(rec: subprocess.Popen[str]) -> None:
    """Until the recorder prints its 'recording' line on stderr."""
    assert rec.stderr is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([rec.stderr], [], [], 0.5)
        if ready:
            line = rec.stderr.readline()
            if not line:
                break
            if line.startswith("memtrace: recording"):
                return
            if line.startswith("memtrace:") and "warning" not in line and "removed" not in line:
                raise RuntimeError(line.strip())
        if rec.poll() is not None:
            break
    raise RuntimeError("memtrace record --live did not start recording")


def _traced(binary: Path, tmp: Path) -> tuple[float, dict[str, Any]]:
    out = tmp / "traced.out"
    trace = tmp / "traced.mtrace"
    child = _start_stopped(binary, out)
    rec = subprocess.Popen([sys.executable, "-m", "memtrace", "record", "--live", "-p", str(child.pid),
                            "-o", str(trace), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_recording(rec)
    except BaseException:
        rec.kill()
        child.kill()
        os.kill(child.pid, signal.SIGCONT)
        child.wait()
        rec.wait()
        raise
    os.kill(child.pid, signal.SIGCONT)
    loop_s, faults = _loop_s(child, out)
    stdout, stderr = rec.communicate(timeout=RUN_TIMEOUT_S)
    if rec.returncode != 0:
        raise RuntimeError(f"memtrace record --live exited {rec.returncode}: {stderr.strip()[-300:]}")
    result = json.loads(stdout)
    trace.unlink(missing_ok=True)
    return loop_s, {"events": result["total_events_read"], "lost": result["lost_events"], "minor_faults": faults,
                    "page_faults_traced": result["events_read"].get("exceptions:page_fault_user", 0)}


def live_overhead(runs: int) -> dict[str, Any]:
    """See the module docstring."""
    entry: dict[str, Any] = {"untraced_s": None, "traced_s": None, "ratio": None, "events": None, "lost": None,
                             "runs": runs}
    problems: list[str] = []
    if os.geteuid() != 0 or not os.access("/sys/kernel/tracing/instances", os.W_OK):
        entry["reason"] = "needs root and a writable tracefs at /sys/kernel/tracing"
        entry["problems"] = problems
        return entry
    binary, reason = _touch_binary()
    if binary is None:
        entry["reason"] = reason
        entry["problems"] = problems
        return entry
    untraced: list[float] = []
    traced: list[float] = []
    facts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="memtrace-bench-live-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            _untraced(binary, tmp)  # warm-up
            untraced.append(_untraced(binary, tmp))
            for _ in range(runs):
                loop_s, f = _traced(binary, tmp)
                traced.append(loop_s)
                facts.append(f)
                untraced.append(_untraced(binary, tmp))
        except (OSError, RuntimeError, ValueError, KeyError, subprocess.SubprocessError) as e:
            entry["reason"] = f"{type(e).__name__}: {e}"
            problems.append(entry["reason"])
    if traced and untraced:
        base = statistics.median(untraced)
        entry.update({
            "untraced_s": round(base, 6),
            "traced_s": round(statistics.median(traced), 6),
            "ratio": round(statistics.median(traced) / base, 3),
            "ratio_min": round(min(traced) / base, 3),
            "ratio_max": round(max(traced) / base, 3),
            "events": int(statistics.median(f["events"] for f in facts)),
            "lost": sum(f["lost"] for f in facts),
            "untraced_runs_s": [round(x, 6) for x in untraced],
            "traced_runs_s": [round(x, 6) for x in traced],
            "lost_runs": [f["lost"] for f in facts],
            "page_faults_traced_runs": [f["page_faults_traced"] for f in facts],
        })
        short = [f["page_faults_traced"] for f in facts if f["page_faults_traced"] < NR_PAGES]
        if short:
            problems.append(f"traced runs saw fewer than {NR_PAGES} page faults: {short}")
    entry["problems"] = problems
    return entry
