"""Signals (issue 14, finding 4): SIGINT, SIGTERM and SIGKILL at random moments of
record, replay, report (with its what-if workers), import and export.

Each command runs as ``python -m memtrace`` in a session of its own, so that every
process it starts can be found afterwards (same session id). SIGINT and SIGTERM
end it with one line, ``memtrace: interrupted``, and exit 130 or 143 (or it
finished first: exit 0), never a traceback; the old output is byte-identical or
replaced whole, an interrupted new recording says ``aborted``, and nothing but
the output is left in its directory. SIGKILL cannot be handled: the old output is
still byte-identical, and no worker survives its parent (PR_SET_PDEATHSIG).

The moments are drawn from a seeded generator (reproducible), after the
interpreter's own start: a signal in the first ~50 ms arrives before memtrace's
first line runs (Python's own default handling applies; see README).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memtrace.tracer.tracefile import TraceReader

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
PERF = ROOT.parent / "shared" / "real-traces" / "memcg-oom-two-victims.perf-script.txt.gz"
OLD = b"an old output that must survive\n"
RNG = random.Random(14)

pytestmark = pytest.mark.slow


def session_members(sid: int) -> list[int]:
    """Pids of the live processes of session ``sid`` (zombies aside)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def run_and_signal(argv: list[str], cwd: Path, sig: signal.Signals, delay_s: float) -> tuple[int, str]:
    """Start ``memtrace ARGV``, send ``sig`` after ``delay_s``; its exit code and
    stderr once it and every process of its session are gone."""
    proc = subprocess.Popen([sys.executable, "-m", "memtrace", *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(delay_s)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    deadline = time.monotonic() + 10
    while (left := session_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"{argv}: processes {left} outlived memtrace after {sig.name}"
    return proc.returncode, err.decode()


def check_ending(code: int, err: str, sig: signal.Signals) -> bool:
    """True when the command was interrupted (False: it had finished first)."""
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        return False
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL, (code, err)
        return True
    assert code == 128 + sig, (code, err)
    assert err.splitlines()[-1:] == ["memtrace: interrupted"], err
    assert [line for line in err.splitlines() if not line.startswith("memtrace: warning:")] == \
        ["memtrace: interrupted"], err
    return True


def leftovers(d: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name not in keep)


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_record_over_an_old_trace(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "o.mtrace"
    out.write_bytes(OLD)
    code, err = run_and_signal(["record", "oom-leak", "-o", str(out)], tmp_path, sig, RNG.uniform(0.4, 3.0))
    interrupted = check_ending(code, err, sig)
    if interrupted:
        assert out.read_bytes() == OLD
    else:
        assert TraceReader(out).scan().complete
    if sig != signal.SIGKILL:
        assert leftovers(tmp_path, {"o.mtrace"}) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_record_of_a_new_trace_says_aborted(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "n.mtrace"
    code, err = run_and_signal(["record", "oom-leak", "-o", str(out)], tmp_path, sig, RNG.uniform(1.5, 3.0))
    if check_ending(code, err, sig) and out.exists():  # (interrupted before the run began: no file)
        reader = TraceReader(out)
        stats = reader.scan()
        assert reader.aborted in ("KeyboardInterrupt", "Terminated") and not stats.complete
    assert leftovers(tmp_path, {"n.mtrace"}) == []


def test_record_killed_leaves_a_new_trace_readable(tmp_path: Path) -> None:
    """kill -9 of a recording into a new file: the file is there, read up to its last
    flushed group, reported incomplete (no footer)."""
    out = tmp_path / "n.mtrace"
    code, err = run_and_signal(["record", "oom-leak", "-o", str(out)], tmp_path, signal.SIGKILL, 2.0)
    if check_ending(code, err, signal.SIGKILL) and out.exists():
        assert not TraceReader(out).scan().complete


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_replay(tmp_path: Path, sig: signal.Signals) -> None:
    src = tmp_path / "oom-leak.mtrace"
    shutil.copy(SAMPLES / "oom-leak.mtrace", src)
    out = tmp_path / "r.mtrace"
    out.write_bytes(OLD)
    code, err = run_and_signal(["replay", str(src), "--sysctl", "vm.overcommit_memory=2", "-o", str(out)],
                               tmp_path, sig, RNG.uniform(0.4, 3.0))
    if check_ending(code, err, sig):  # replay writes its trace, then compares it: either may be interrupted
        assert out.read_bytes() == OLD or TraceReader(out).scan().complete
    if sig != signal.SIGKILL:
        assert leftovers(tmp_path, {"oom-leak.mtrace", "r.mtrace"}) == []


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_report_with_what_if_workers(tmp_path: Path, sig: signal.Signals) -> None:
    """report -j 2 forks two what-if workers: none outlives it, whatever the signal."""
    src = tmp_path / "oom-leak.mtrace"
    shutil.copy(SAMPLES / "oom-leak.mtrace", src)
    out = tmp_path / "r.html"
    out.write_bytes(OLD)
    code, err = run_and_signal(["report", str(src), "--what-if", "-j", "2", "--format", "html", "-o", str(out)],
                               tmp_path, sig, RNG.uniform(1.5, 4.0))
    if check_ending(code, err, sig):
        assert out.read_bytes() == OLD
    if sig != signal.SIGKILL:
        assert leftovers(tmp_path, {"oom-leak.mtrace", "r.html"}) == []


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_import(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "i.mtrace"
    out.write_bytes(OLD)
    code, err = run_and_signal(["import", str(PERF), "-o", str(out)], tmp_path, sig, RNG.uniform(0.3, 1.5))
    if check_ending(code, err, sig):
        assert out.read_bytes() == OLD
    if sig != signal.SIGKILL:
        assert leftovers(tmp_path, {"i.mtrace"}) == []


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize("fmt", ["perfetto", "parquet"])
def test_export(tmp_path: Path, sig: signal.Signals, fmt: str) -> None:
    src = tmp_path / "oom-leak.mtrace"
    shutil.copy(SAMPLES / "oom-leak.mtrace", src)
    out = tmp_path / "x"
    if fmt == "perfetto":
        out.write_bytes(OLD)
    code, err = run_and_signal(["export", str(src), "--format", fmt, "-o", str(out)], tmp_path, sig,
                               RNG.uniform(0.4, 2.5))
    if check_ending(code, err, sig) and fmt == "perfetto":
        if sig == signal.SIGKILL and out.read_bytes() != OLD:
            # killed after the rename (while the interpreter exited): the whole export, never a part
            whole = tmp_path / "whole.pftrace"
            subprocess.run([sys.executable, "-m", "memtrace", "export", str(src), "--format", fmt, "-o", str(whole)],
                           check=True, capture_output=True)
            assert out.read_bytes() == whole.read_bytes()
            whole.unlink()
        else:
            assert out.read_bytes() == OLD
    if sig != signal.SIGKILL:
        assert leftovers(tmp_path, {"oom-leak.mtrace", "x"}) == []
        if out.is_dir():
            assert all(not p.name.startswith(".") for p in out.iterdir())


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_sweep_on_a_local_cluster(tmp_path: Path, sig: signal.Signals) -> None:
    """sweep starts a Dask LocalCluster (a nanny and a worker process per worker):
    none of them outlives it."""
    code, err = run_and_signal(["sweep", "oom-leak", "--vary", "vm.swappiness=0,30,60,100", "--workers", "2"],
                               tmp_path, sig, RNG.uniform(6.0, 9.0))
    if sig == signal.SIGKILL:  # the resource tracker may warn of semaphores the killed parent left
        err = "\n".join(line for line in err.splitlines() if "resource_tracker" not in line and "warn(" not in line)
    check_ending(code, err, sig)
    assert leftovers(tmp_path, set()) == []
