"""Signals (issue 14, finding 4) for every command the other signal tests leave out:
stat, free, explain, ps, dmesg, diff, trace (on a trace file, on a simulated
scenario, on the running kernel), snapshot, list, scenarios, tools, and
``record --live``; and interrupted recordings (record, replay) read back by
``stat --json``.

Each case runs ``python -m memtrace`` in a session of its own with ``TMPDIR`` set to
an empty directory, waits until the command is at work (a marker read from
``/proc/PID``: its handlers are installed, and it has its input open, is reading
procfs, is blocked writing a full stdout pipe, or has printed its progress line),
sends SIGINT or SIGTERM at a seeded random moment after that, and checks: exit
130/143, stderr exactly ``memtrace: interrupted`` (warnings aside), no traceback,
no process of the session left, nothing left in TMPDIR or the working directory,
the old output byte-identical (or the whole new one). A command that finished
before the signal (exit 0) is run again with a shorter delay; a case fails when
the signal never landed during the command's work, so it cannot pass vacuously.

``record --live`` and ``trace --live`` stop at SIGINT and SIGTERM as ``perf
record`` and ``bpftrace`` do (their documented way to end a capture): exit 0 with
what was read kept. A signal once the capture has stopped (the import of the
spooled pages) interrupts as in any other command.

SIGKILL (record, replay, record --live, trace --live): the old output
byte-identical or the whole new one, a new trace readable without its footer, the
``-c`` command ended with the capture, and the spool left in TMPDIR removed by
the next capture. (tests/robustness/test_signals.py has the first cases of
record, replay, report, import, export and sweep; this file repeats them with a
signal that is sure to land during the work.)
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..live.conftest import memtrace_instances, tracefs_root
from .test_signals import session_members

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
#: 1.2 M events: each reading command spends 0.3-1.5 s on it here.
BIG = SAMPLES / "memcg-writer.mtrace"
OLD = b"an old output that must survive\n"
#: MEMTRACE_SIGNAL_SEED=N draws other moments (the failures of a seed repeat with it)
RNG = random.Random(int(os.environ.get("MEMTRACE_SIGNAL_SEED", "1414")))
#: fcntl F_SETPIPE_SZ (linux/fcntl.h): the stdout pipe of the listing cases holds one page
_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 4096
#: /proc/PID/status SigCgt: bit N-1 is signal N
_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)

BOTH = [signal.SIGINT, signal.SIGTERM]


# -- markers: is the command at work now? (pid -> bool)

def handlers_installed(pid: int) -> bool:
    """memtrace.interrupts.install() has run: SIGTERM is caught (Python alone leaves
    it at its default)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(caught & _SIGTERM_BIT)


def open_files(pid: int) -> list[str]:
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return out


def has_open(path: Path) -> Callable[[int], bool]:
    """The command has ``path`` open (a trace is open for the whole of each pass)."""
    target = str(path.resolve())
    return lambda pid: target in open_files(pid)


def reads_procfs(pid: int) -> bool:
    """The command has a file of another process under /proc open (snapshot, ps)."""
    return any(p.startswith("/proc/") and not p.startswith(f"/proc/{pid}/") for p in open_files(pid))


def printed(path: Path, text: str) -> Callable[[int], bool]:
    """The command has written ``text`` to its stdout or stderr file ``path``."""
    return lambda _pid: path.exists() and text in path.read_text(errors="replace")


def always(_pid: int) -> bool:
    return True


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    delay_s: float


@dataclass
class Bench:
    """A case's directories: ``work`` (the command's cwd, where its outputs go),
    ``tmp`` (its TMPDIR), and the files its stdout and stderr go to."""

    root: Path

    def __post_init__(self) -> None:
        self.work = self.root / "work"
        self.tmp = self.root / "tmpdir"
        self.out = self.root / "stdout"
        self.err = self.root / "stderr"
        self.work.mkdir(exist_ok=True)
        self.tmp.mkdir(exist_ok=True)

    #: the command's stdin (a file descriptor), when not /dev/null
    stdin: int | None = None

    def start(self, argv: list[str], stdout: int | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            return subprocess.Popen([sys.executable, "-m", "memtrace", *argv], cwd=self.work, env=env,
                                    stdin=self.stdin if self.stdin is not None else subprocess.DEVNULL,
                                    stdout=stdout if stdout is not None else out, stderr=err,
                                    start_new_session=True)

    def left_in_tmp(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir())

    def left_in_work(self, keep: set[str]) -> list[str]:
        return sorted(p.name for p in self.work.iterdir() if p.name not in keep)


def wait_for_session(pid: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while (left := session_members(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"{what}: processes {left} outlived memtrace"


def run_once(bench: Bench, argv: list[str], sig: signal.Signals, working: Callable[[int], bool], delay_s: float,
             *, small_pipe: bool = False) -> Run:
    """Start ``memtrace ARGV``; once its handlers are installed and ``working`` says
    it is at work, wait ``delay_s`` and send ``sig``; its ending once every process
    of its session is gone."""
    rfd = wfd = -1
    if small_pipe:
        rfd, wfd = os.pipe()
        fcntl.fcntl(wfd, _F_SETPIPE_SZ, _PIPE_BYTES)
        working = _pipe_full(rfd)
    proc = bench.start(argv, stdout=wfd if small_pipe else None)
    if small_pipe:
        os.close(wfd)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if handlers_installed(proc.pid) and working(proc.pid):
                time.sleep(delay_s)
                proc.send_signal(sig)  # (nothing when it has exited meanwhile)
                break
            time.sleep(0.001)
        piped = b""
        if small_pipe:
            while chunk := os.read(rfd, 65536):
                piped += chunk
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if small_pipe:
            os.close(rfd)
    wait_for_session(proc.pid, f"memtrace {' '.join(argv)} after {sig.name}")
    stdout = piped.decode(errors="replace") if small_pipe else bench.out.read_text(errors="replace")
    return Run(proc.returncode, stdout, bench.err.read_text(errors="replace"), delay_s)


def _pipe_full(rfd: int) -> Callable[[int], bool]:
    """The stdout pipe is full: the command is blocked writing its output."""
    def full(_pid: int) -> bool:
        buf = bytearray(4)
        fcntl.ioctl(rfd, termios.FIONREAD, buf)
        return int.from_bytes(buf, sys.byteorder) >= _PIPE_BYTES
    return full


def interrupt(bench: Bench, argv: list[str], sig: signal.Signals, working: Callable[[int], bool], window_s: float,
              *, prepare: Callable[[], None] = lambda: None, attempts: int = 4, small_pipe: bool = False,
              landed: Callable[[Run], bool] = lambda run: run.code != 0) -> Run:
    """:func:`run_once` at a random moment of the first ``window_s`` seconds of the
    work, again with half the window while the signal did not land during the work
    (``landed``; by default: the command finished first, exit 0); fails when it
    never did. ``prepare`` resets the outputs before each run."""
    window = window_s
    for _ in range(attempts):
        prepare()
        run = run_once(bench, argv, sig, working, RNG.uniform(0.0, window), small_pipe=small_pipe)
        if landed(run):
            return run
        assert "Traceback" not in run.stderr, run.stderr
        window /= 2
    pytest.fail(f"memtrace {' '.join(argv)}: finished before {sig.name} in {attempts} runs; the signal never "
                "landed during its work")


def assert_interrupted(run: Run, sig: signal.Signals) -> None:
    """Exit 128 + the signal, one line on stderr (warnings aside), no traceback."""
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    assert run.code == 128 + sig, (run.code, run.stderr, run.delay_s)
    lines = [line for line in run.stderr.splitlines() if not line.startswith("memtrace: warning:")]
    assert lines == ["memtrace: interrupted"], run.stderr


def copy_in(bench: Bench, src: Path, name: str | None = None) -> Path:
    dst = bench.work / (name or src.name)
    shutil.copy(src, dst)
    return dst


def stat_json(path: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "memtrace", "stat", "--json", str(path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


# -- commands that read a trace

READERS: dict[str, tuple[list[str], float]] = {
    # name: (arguments after the command and the trace, the work window in seconds)
    "stat": ([], 0.3),
    "free": ([], 0.3),
    "explain": (["--at", "written"], 0.8),
    "ps": ([], 0.8),
    "dmesg": ([], 0.6),
    "trace": (["-e", "page_fault { @[comm, vma_kind] = count(); } page_cache_add { @pages = count(); }"], 0.4),
}


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("command", sorted(READERS))
def test_a_command_reading_a_trace(tmp_path: Path, command: str, sig: signal.Signals) -> None:
    bench = Bench(tmp_path)
    trace = copy_in(bench, BIG)
    args, window = READERS[command]
    run = interrupt(bench, [command, trace.name, *args], sig, has_open(trace), window)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work({trace.name}) == []
    assert trace.read_bytes() == BIG.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_diff(tmp_path: Path, sig: signal.Signals) -> None:
    bench = Bench(tmp_path)
    a = copy_in(bench, BIG, "a.mtrace")
    b = copy_in(bench, BIG, "b.mtrace")
    run = interrupt(bench, ["diff", a.name, b.name], sig, has_open(a), 1.0)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work({"a.mtrace", "b.mtrace"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_trace_output_file_keeps_the_old_one(tmp_path: Path, sig: signal.Signals) -> None:
    """trace -o FILE: the old FILE stays byte-identical (the output of an interrupted
    run is a part: it never replaces it)."""
    bench = Bench(tmp_path)
    trace = copy_in(bench, BIG)
    out = bench.work / "out.txt"
    argv = ["trace", trace.name, "-e", "page_fault { @[comm] = count(); }", "-o", out.name]
    run = interrupt(bench, argv, sig, has_open(trace), 0.4, prepare=lambda: out.write_bytes(OLD))
    assert_interrupted(run, sig)
    assert out.read_bytes() == OLD
    assert bench.left_in_tmp() == [] and bench.left_in_work({trace.name, "out.txt"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_trace_of_a_simulated_scenario(tmp_path: Path, sig: signal.Signals) -> None:
    """trace SCENARIO: the program runs while the scenario is simulated (after
    "Attaching 1 probe...", printed before the simulation starts)."""
    bench = Bench(tmp_path)
    run = interrupt(bench, ["trace", "oom-leak", "-e", "page_fault /write/ { @[comm] = count(); }"], sig,
                    printed(bench.out, "Attaching"), 0.6)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work(set()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_reading_a_pipe(tmp_path: Path, sig: signal.Signals) -> None:
    """record /dev/stdin while the pipe is still being written: memtrace copies it
    to a spool in TMPDIR first (memtrace/cli/_io.py input_file); the signal during
    the copy leaves no spool (issue 14, finding 7) and no trace."""
    bench = Bench(tmp_path)
    scenario = (ROOT / "kernel" / "scenarios" / "oom-leak.toml").read_bytes()
    rfd = wfd = -1

    def reset() -> None:
        nonlocal rfd, wfd
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        rfd, wfd = os.pipe()
        os.write(wfd, scenario[: len(scenario) // 2])  # the rest never comes: the copy goes on
        bench.stdin = rfd

    def spooling(_pid: int) -> bool:
        return any(p.name.startswith("memtrace-pipe-") for p in bench.tmp.iterdir())

    try:
        run = interrupt(bench, ["record", "/dev/stdin", "-o", "x.mtrace"], sig, spooling, 0.3, prepare=reset)
    finally:
        for fd in (rfd, wfd):
            os.close(fd)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work(set()) == []


# -- this machine

@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_snapshot(tmp_path: Path, sig: signal.Signals) -> None:
    """snapshot -o FILE while it reads /proc: the old FILE is byte-identical, or the
    whole new snapshot (a valid one: it is read back)."""
    bench = Bench(tmp_path)
    out = bench.work / "snap.json"
    run = interrupt(bench, ["snapshot", "-o", out.name], sig, reads_procfs, 0.05,
                    prepare=lambda: out.write_bytes(OLD), attempts=8)
    assert_interrupted(run, sig)
    if out.read_bytes() != OLD:
        assert "meminfo" in json.loads(out.read_bytes())
    assert bench.left_in_tmp() == [] and bench.left_in_work({"snap.json"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_ps_of_this_machine(tmp_path: Path, sig: signal.Signals) -> None:
    bench = Bench(tmp_path)
    run = interrupt(bench, ["ps"], sig, reads_procfs, 0.05, attempts=8)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work(set()) == []


# -- listings: their work is printing (a stdout pipe of one page nobody reads holds
# them there, as `memtrace list | less` does), or their imports (tools)

@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("argv", [["list", "--json"], ["scenarios", "--json"], ["list"]], ids=" ".join)
def test_a_listing_blocked_on_its_output(tmp_path: Path, argv: list[str], sig: signal.Signals) -> None:
    bench = Bench(tmp_path)
    run = interrupt(bench, argv, sig, always, 0.2, small_pipe=True)
    assert_interrupted(run, sig)
    assert bench.left_in_tmp() == [] and bench.left_in_work(set()) == []


@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("argv", [["tools"], ["tools", "oomkill"]], ids=" ".join)
def test_tools_while_it_imports(tmp_path: Path, argv: list[str], sig: signal.Signals) -> None:
    """tools prints a few hundred bytes: its time goes to the imports that follow
    the handlers' installation (memtrace/__main__.py), where the signal lands."""
    bench = Bench(tmp_path)
    run = interrupt(bench, argv, sig, always, 0.15, attempts=6)
    assert_interrupted(run, sig)


# -- interrupted recordings, as stat --json reports them

@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["record", "replay"])
def test_an_interrupted_new_recording_is_incomplete(tmp_path: Path, command: str, sig: signal.Signals) -> None:
    """record/replay into a new file, interrupted once it has begun writing: the
    file's footer says aborted; stat --json says it is not complete."""
    bench = Bench(tmp_path)
    out = bench.work / "n.mtrace"
    keep = {"n.mtrace"}
    if command == "record":
        argv = ["record", "swap-pressure", "-o", out.name]
    else:
        copy_in(bench, SAMPLES / "swap-pressure.mtrace")
        keep.add("swap-pressure.mtrace")
        argv = ["replay", "swap-pressure.mtrace", "--sysctl", "vm.swappiness=100", "-o", out.name]

    def reset() -> None:
        out.unlink(missing_ok=True)

    def writing(_pid: int) -> bool:
        return out.exists() and out.stat().st_size > 0

    def recording(run: Run) -> bool:  # (a signal once the trace is whole interrupts what follows)
        return run.code != 0 and stat_json(out)["complete"] is False

    run = interrupt(bench, argv, sig, writing, 1.0, prepare=reset, landed=recording)
    assert_interrupted(run, sig)
    stats = stat_json(out)
    assert stats["complete"] is False, stats
    damage = stats["damage"]
    assert isinstance(damage, dict) and damage.get("reason") in ("recording aborted (KeyboardInterrupt)", "recording aborted (Terminated)"), stats
    assert bench.left_in_tmp() == [] and bench.left_in_work(keep) == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["record", "replay"])
def test_a_killed_new_recording_is_readable(tmp_path: Path, command: str) -> None:
    """kill -9 of record/replay into a new file while it writes: the file is there
    (written in place), read up to its last flushed group, without a footer: stat
    --json reads it (exit 0) and says it is not complete."""
    bench = Bench(tmp_path)
    out = bench.work / "n.mtrace"
    if command == "record":
        argv = ["record", "swap-pressure", "-o", out.name]
    else:
        copy_in(bench, SAMPLES / "swap-pressure.mtrace")
        argv = ["replay", "swap-pressure.mtrace", "--sysctl", "vm.swappiness=100", "-o", out.name]

    def writing(_pid: int) -> bool:
        return out.exists() and out.stat().st_size > 0

    def recording(run: Run) -> bool:
        assert run.code in (0, -signal.SIGKILL), (run.code, run.stderr)
        return run.code == -signal.SIGKILL and stat_json(out)["complete"] is False

    interrupt(bench, argv, signal.SIGKILL, writing, 1.0, prepare=lambda: out.unlink(missing_ok=True),
              landed=recording)
    stats = stat_json(out)
    assert isinstance(stats["total_events"], int) and stats["total_events"] > 0, stats
    damage = stats["damage"]
    assert isinstance(damage, dict) and damage.get("reason") == "missing footer", stats


# -- the running kernel (root, tracefs)

@pytest.fixture
def live_ready() -> None:
    root = tracefs_root()
    if os.geteuid() != 0:
        pytest.skip("record --live needs root")
    if root is None or not os.access(os.path.join(root, "instances"), os.W_OK):
        pytest.skip("no writable tracefs (mount -t tracefs nodev /sys/kernel/tracing)")


#: A command that faults in 200 MiB (about 120,000 events to import: 0.5-1 s here).
TOUCHER = f"{sys.executable} -c 'x = bytes(1) * (200 << 20)'"


@pytest.mark.slow
@pytest.mark.usefixtures("live_ready")
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_record_live_stops_at_the_signal_and_keeps_what_it_read(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM during the capture end it as its command's exit would: the
    trace is complete, says why it stopped, the command is ended, the spool and the
    tracefs instance are removed."""
    bench = Bench(tmp_path)
    before = memtrace_instances()
    run = run_once(bench, ["record", "--live", "-c", "sleep 60", "-o", "live.mtrace", "--json"], sig,
                   printed(bench.err, "Ctrl-C to stop"), RNG.uniform(0.0, 1.0))
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr
    result = json.loads(run.stdout)
    assert result["stop_reason"] == sig.name, result
    assert stat_json(bench.work / "live.mtrace")["complete"] is True
    assert bench.left_in_tmp() == [] and bench.left_in_work({"live.mtrace"}) == []
    assert memtrace_instances() == before


@pytest.mark.slow
@pytest.mark.usefixtures("live_ready")
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_record_live_interrupted_while_importing(tmp_path: Path, sig: signal.Signals) -> None:
    """Once the capture has stopped, a signal interrupts the import of the spooled
    pages: exit 130/143, the old trace byte-identical, the spool removed."""
    bench = Bench(tmp_path)
    out = bench.work / "live.mtrace"
    before = memtrace_instances()
    run = interrupt(bench, ["record", "--live", "-c", TOUCHER, "-o", out.name], sig,
                    printed(bench.err, "importing"), 0.4, prepare=lambda: out.write_bytes(OLD))
    assert "Traceback" not in run.stderr and run.code == 128 + sig, (run.code, run.stderr)
    assert run.stderr.splitlines()[-1] == "memtrace: interrupted"
    assert all(line.startswith("memtrace: ") for line in run.stderr.splitlines()), run.stderr
    assert out.read_bytes() == OLD
    assert bench.left_in_tmp() == [] and bench.left_in_work({"live.mtrace"}) == []
    assert memtrace_instances() == before


@pytest.mark.slow
@pytest.mark.usefixtures("live_ready")
def test_record_live_killed_while_importing(tmp_path: Path) -> None:
    """kill -9 while importing: the old trace is byte-identical; the spool left in
    TMPDIR is removed by the next recording (remove_stale_spools)."""
    bench = Bench(tmp_path)
    out = bench.work / "live.mtrace"

    def importing(run: Run) -> bool:
        assert run.code == -signal.SIGKILL, (run.code, run.stderr)
        if out.read_bytes() == OLD:
            return True
        assert stat_json(out)["complete"] is True  # killed after the rename: the whole new trace
        return False

    interrupt(bench, ["record", "--live", "-c", TOUCHER, "-o", out.name], signal.SIGKILL,
              printed(bench.err, "importing"), 0.3, prepare=lambda: out.write_bytes(OLD), landed=importing)
    assert [n for n in bench.left_in_tmp() if n.startswith("memtrace-live-")], bench.left_in_tmp()
    print("left by kill -9:", bench.left_in_tmp(), bench.left_in_work({"live.mtrace"}))
    again = run_once(bench, ["record", "--live", "-c", "true", "-o", "other.mtrace"], signal.SIGINT,
                     lambda _pid: False, 0.0)  # (never signalled: it runs to its end)
    assert again.code == 0, again.stderr
    assert "removed stale spool" in again.stderr
    assert bench.left_in_tmp() == []


@pytest.mark.slow
@pytest.mark.usefixtures("live_ready")
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_trace_live_stops_at_the_signal_and_prints_its_maps(tmp_path: Path, sig: signal.Signals) -> None:
    """trace --live ends at SIGINT/SIGTERM as bpftrace does: its maps printed,
    exit 0, the command ended, nothing left in TMPDIR or tracefs."""
    bench = Bench(tmp_path)
    before = memtrace_instances()
    run = run_once(bench, ["trace", "--live", "-c", "sleep 60", "-e", "page_fault { @faults[comm] = count(); }"],
                   sig, printed(bench.err, "Ctrl-C to stop"), RNG.uniform(0.0, 1.0))
    assert run.code == 0 and "Traceback" not in run.stderr, run.stderr
    assert "@faults[sleep]: " in run.stdout, run.stdout
    assert bench.left_in_tmp() == [] and bench.left_in_work(set()) == []
    assert memtrace_instances() == before


@pytest.mark.slow
@pytest.mark.usefixtures("live_ready")
def test_trace_live_killed_leaves_a_spool_the_next_capture_removes(tmp_path: Path) -> None:
    """kill -9 of trace --live leaves its spool directory in TMPDIR (and its tracefs
    instance): the next capture removes both."""
    bench = Bench(tmp_path)
    before = memtrace_instances()
    run = run_once(bench, ["trace", "--live", "-c", "sleep 60", "-e", "page_fault { @ = count(); }"], signal.SIGKILL,
                   printed(bench.err, "Ctrl-C to stop"), RNG.uniform(0.0, 0.5))
    assert run.code == -signal.SIGKILL
    assert [n for n in bench.left_in_tmp() if n.startswith("memtrace-live-")], bench.left_in_tmp()
    again = run_once(bench, ["trace", "--live", "-c", "true", "-e", "page_fault { @ = count(); }"], signal.SIGINT,
                     lambda _pid: False, 0.0)  # (never signalled: it runs to its end)
    assert again.code == 0, again.stderr
    assert "removed stale spool" in again.stderr
    assert bench.left_in_tmp() == [] and memtrace_instances() == before

@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_trace_output_to_a_new_file_keeps_what_it_printed(tmp_path: Path, sig: signal.Signals) -> None:
    """trace -o NEW: written in place as the program prints (bpftrace -o); an
    interrupted run keeps what it printed (the start of the whole output, perhaps
    nothing yet), and nothing else is left."""
    bench = Bench(tmp_path)
    trace = copy_in(bench, BIG)
    out = bench.work / "new.txt"
    argv = ["trace", trace.name, "-e", "page_fault { @[comm] = count(); }", "-o", out.name]
    run = interrupt(bench, argv, sig, has_open(trace), 0.4, prepare=lambda: out.unlink(missing_ok=True))
    assert_interrupted(run, sig)
    whole = tmp_path / "whole.txt"
    subprocess.run([sys.executable, "-m", "memtrace", *argv[:-1], str(whole)], cwd=bench.work, check=True,
                   capture_output=True)
    assert whole.read_text().startswith(out.read_text())
    assert bench.left_in_tmp() == [] and bench.left_in_work({trace.name, "new.txt"}) == []


# -- the commands tests/robustness/test_signals.py covers, with a signal that is
# sure to land during their work

def has_children(pid: int) -> bool:
    """The command has started its worker processes (from any of its threads: a
    LocalCluster starts its nannies from its event loop's)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                if f.read().split():
                    return True
        except OSError:
            continue
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_report_while_its_what_if_workers_run(tmp_path: Path, sig: signal.Signals) -> None:
    """report -j 2: the workers end with it and leave nothing in TMPDIR (their
    temporary traces too); the old report is byte-identical."""
    bench = Bench(tmp_path)
    copy_in(bench, SAMPLES / "oom-leak.mtrace")
    out = bench.work / "r.html"
    run = interrupt(bench, ["report", "oom-leak.mtrace", "--what-if", "-j", "2", "-f", "html", "-o", out.name], sig,
                    has_children, 2.0, prepare=lambda: out.write_bytes(OLD))
    assert_interrupted(run, sig)
    assert out.read_bytes() == OLD
    assert bench.left_in_tmp() == [] and bench.left_in_work({"oom-leak.mtrace", "r.html"}) == []


PERF = ROOT.parent / "shared" / "real-traces" / "memcg-oom-two-victims.perf-script.txt.gz"


@pytest.mark.slow
@pytest.mark.skipif(not PERF.exists(), reason=f"{PERF} is not on this machine")
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
def test_import_while_it_reads(tmp_path: Path, sig: signal.Signals) -> None:
    bench = Bench(tmp_path)
    out = bench.work / "i.mtrace"
    run = interrupt(bench, ["import", str(PERF), "-o", out.name], sig, has_open(PERF), 0.3,
                    prepare=lambda: out.write_bytes(OLD))
    assert_interrupted(run, sig)
    assert out.read_bytes() == OLD
    assert bench.left_in_tmp() == [] and bench.left_in_work({"i.mtrace"}) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("fmt", ["perfetto", "chrome-json", "parquet", "csv"])
def test_export_while_it_reads(tmp_path: Path, fmt: str, sig: signal.Signals) -> None:
    """export over an old file (perfetto, chrome-json) or into a new directory (parquet,
    csv): the old file byte-identical; no directory, or every table (a signal while
    they are put in place waits until all are: interrupts.deferred)."""
    bench = Bench(tmp_path)
    trace = copy_in(bench, BIG)
    out = bench.work / "x"
    is_file = fmt in ("perfetto", "chrome-json")

    def reset() -> None:
        shutil.rmtree(out, ignore_errors=True)
        if is_file:
            out.write_bytes(OLD)

    run = interrupt(bench, ["export", trace.name, "-f", fmt, "-o", out.name], sig, has_open(trace), 1.0,
                    prepare=reset)
    assert_interrupted(run, sig)
    if is_file:
        assert out.read_bytes() == OLD
    elif out.exists():  # interrupted once the tables were being put in place: every one of them
        whole = tmp_path / "whole"
        subprocess.run([sys.executable, "-m", "memtrace", "export", str(trace), "-f", fmt, "-o", str(whole)],
                       check=True, capture_output=True)
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())
    assert bench.left_in_tmp() == [] and bench.left_in_work({trace.name, "x"}) == []


def replaying_a_cell(tmp: Path) -> Callable[[int], bool]:
    """A sweep cell's temporary trace is in TMPDIR (replay/sweep.py: a worker replays)."""
    return lambda _pid: any(p.name.startswith(".memtrace-sweep-") for p in tmp.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("sig", BOTH, ids=lambda s: s.name)
@pytest.mark.parametrize("moment", ["starting", "replaying"])
def test_sweep(tmp_path: Path, moment: str, sig: signal.Signals) -> None:
    """sweep on a LocalCluster, while its workers start or once they replay cells:
    no process outlives it, no traceback (Dask's exit handler asserts on a cluster
    still starting), the old table byte-identical, and TMPDIR holds nothing but
    Dask's own scratch space (dask-scratch-space, which every Dask run shares and
    keeps: its global.lock, and the worker-*.dirlock of a worker ended as it started)."""
    bench = Bench(tmp_path)
    out = bench.work / "s.json"
    working = has_children if moment == "starting" else replaying_a_cell(bench.tmp)
    run = interrupt(bench, ["sweep", "oom-leak", "--vary", "vm.swappiness=0,20,40,60,80,100", "--workers", "2",
                            "-o", out.name], sig, working, 0.5 if moment == "starting" else 2.0,
                    prepare=lambda: out.write_bytes(OLD))
    lines = [line for line in run.stderr.splitlines() if "resource_tracker" not in line and "warn(" not in line]
    assert_interrupted(Run(run.code, run.stdout, "\n".join(lines), run.delay_s), sig)
    assert out.read_bytes() == OLD
    left = [str(p.relative_to(bench.tmp)) for p in bench.tmp.rglob("*")
            if p.is_file() and "dask-scratch-space" not in p.relative_to(bench.tmp).parts]
    assert left == [] and bench.left_in_work({"s.json"}) == []
