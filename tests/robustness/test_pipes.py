"""Piped inputs (issue 14, finding 7): ``memtrace report <(journalctl -k)`` copies the
pipe to a temporary file (``memtrace-pipe-*``) to read it twice; every message must
name what the user gave (``/dev/fd/63``, ``/dev/stdin``), never the copy, and the copy
must be gone when memtrace ends, a SIGTERM while it reads the pipe included.

Each test runs ``python -m memtrace`` (the console script's code) with a real pipe:
its read end passed as ``/dev/fd/N``, or as stdin read through ``/dev/stdin``, and
``TMPDIR`` a directory of the test's own, so the copy can be watched.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "data" / "oomlogs"
LOG = (CORPUS / "008-cgroups-5.2-memcg-v1-oom_memcg.log").read_bytes()


def _run(tmp_path: Path, data: bytes, *args: str, stdin: bool = False) -> tuple[subprocess.CompletedProcess[str], str]:
    """``memtrace report PIPE ARGS`` with ``data`` written into the pipe; the process and
    the path it was given. The spool directory must be empty afterwards."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(spool)}
    r, w = os.pipe()
    given = "/dev/stdin" if stdin else f"/dev/fd/{r}"
    writer = threading.Thread(target=_write_all, args=(w, data))
    writer.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "memtrace", "report", given, *args], env=env,
                              stdin=r if stdin else subprocess.DEVNULL, pass_fds=() if stdin else (r,),
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.close(r)
        writer.join()
    assert list(spool.iterdir()) == []
    return proc, given


def _write_all(fd: int, data: bytes) -> None:
    try:
        with open(fd, "wb") as f:
            f.write(data)
    except BrokenPipeError:
        pass  # the reader gave up first


def _clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert "memtrace-pipe" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("stdin", [False, True])
def test_garbage_on_a_pipe_is_named_as_given(tmp_path: Path, stdin: bool) -> None:
    """Not a log: the one-line error names the pipe."""
    proc, given = _run(tmp_path, bytes(range(256)) * 40, stdin=stdin)
    _clean(proc)
    assert proc.returncode == 1
    assert proc.stderr == (f"memtrace: {given}: neither a memtrace trace nor a kernel log (dmesg, journalctl -k, "
                           "syslog); a perf script or ftrace dump is read with 'memtrace import'\n")


def test_a_log_on_a_pipe(tmp_path: Path) -> None:
    """A good log: the report, in JSON, names nothing but the pipe."""
    proc, _given = _run(tmp_path, LOG, "--json")
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [k["victim"]["pid"] for k in report["kills"]] == [23793]


@pytest.mark.parametrize("fmt", ["text", "json", "html", "md"])
def test_a_cut_gzip_on_a_pipe_is_named_as_given_in_every_format(tmp_path: Path, fmt: str) -> None:
    """A gzip cut short: the warning in the report names the pipe."""
    data = gzip.compress(LOG)
    proc, given = _run(tmp_path, data[:len(data) // 2], "-f", fmt)
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert f"{given}: input ends early" in proc.stdout


def test_sigterm_while_reading_a_pipe_removes_the_copy(tmp_path: Path) -> None:
    """SIGTERM once the copy holds a MiB and the pipe is still open: exit 143, one line,
    and the copy is gone (the issue found a 1 GiB copy left in /tmp)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "memtrace", "report", f"/dev/fd/{r}"], pass_fds=(r,),
                            env={**os.environ, "TMPDIR": str(spool)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    os.close(r)
    try:
        with open(w, "wb") as f:
            chunk = LOG * 16
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                f.write(chunk)
                f.flush()
                copies = list(spool.iterdir())
                if copies and copies[0].stat().st_size >= 1 << 20:
                    break
            else:
                pytest.fail("the copy of the pipe never reached a MiB")
            proc.send_signal(signal.SIGTERM)
            _stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    assert stderr == "memtrace: interrupted\n"
    assert list(spool.iterdir()) == []


def test_import_of_a_pipe_records_the_pipe(tmp_path: Path) -> None:
    """``import <(zcat perf.gz) --dmesg <(zcat dmesg.gz)``: the trace's header names the
    two pipes as given, nothing names the copies."""
    from memtrace.tracer.tracefile import TraceReader

    leak = Path(__file__).resolve().parents[1] / "data" / "real" / "experiments" / "leak"
    spool = tmp_path / "spool"
    spool.mkdir()
    pipes = [os.pipe(), os.pipe()]
    datas = [gzip.decompress((leak / name).read_bytes()) for name in ("leak-L128.perf-script.txt.gz",
                                                                     "leak-L128.dmesg.txt.gz")]
    writers = [threading.Thread(target=_write_all, args=(w, data)) for (_r, w), data in zip(pipes, datas)]
    for t in writers:
        t.start()
    trace = tmp_path / "imported.mtrace"
    (perf, _), (dmesg, _) = pipes
    try:
        proc = subprocess.run([sys.executable, "-m", "memtrace", "import", f"/dev/fd/{perf}", "--dmesg",
                               f"/dev/fd/{dmesg}", "-o", str(trace), "--json"], pass_fds=(perf, dmesg),
                              env={**os.environ, "TMPDIR": str(spool)}, capture_output=True, text=True,
                              timeout=300, check=False)
    finally:
        for r, _w in pipes:
            os.close(r)
        for t in writers:
            t.join()
    _clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert list(spool.iterdir()) == []
    result = json.loads(proc.stdout)
    assert (result["source"], result["companion_log"]) == (f"/dev/fd/{perf}", f"/dev/fd/{dmesg}")
    source = TraceReader(trace).header["meta"]["source"]
    assert (source["path"], source["companion_log"]["path"]) == (f"/dev/fd/{perf}", f"/dev/fd/{dmesg}")
    assert "memtrace-pipe" not in json.dumps(TraceReader(trace).header, default=str)
