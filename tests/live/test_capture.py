"""``record --live`` and ``trace --live`` on the running kernel (root, a writable
tracefs; skipped with the reason elsewhere).

Ground truth comes from outside memtrace: the test program's own samples of
``/proc/self/status`` (VmRSS) and the kernel's log of the OOM kill. Every test
also checks that no tracefs instance is left behind, after a normal end, SIGINT,
and (once the next recording starts) SIGKILL.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memtrace import api
from tests.cli import ok

from .conftest import memtrace_instances

#: The largest difference allowed between the trace's RSS and VmRSS (%).
RSS_TOLERANCE_PCT = 5.0


def _own_instance() -> str:
    return f"memtrace-{os.getpid()}"


# --------------------------------------------------------------------------- RSS


def _rss_series(trace: Path) -> dict[int, tuple[list[int], list[int]]]:
    """Per process (mm_pid), the RSS (bytes: file + anon + shmem) after each of
    its rss_stat events, with their times."""
    counters: dict[int, list[int]] = {}
    series: dict[int, tuple[list[int], list[int]]] = {}
    for batch in api.open_trace(trace).ordered_batches():
        if batch.tp.name != "rss_stat":
            continue
        for ts, pid, member, size in zip(batch.ints("ts_ns").tolist(), batch.ints("mm_pid").tolist(),
                                         batch.ints("member").tolist(), batch.ints("size_bytes").tolist()):
            c = counters.setdefault(pid, [0, 0, 0, 0])
            c[member] = size
            times, values = series.setdefault(pid, ([], []))
            times.append(ts)
            values.append(c[0] + c[1] + c[3])
    return series


def test_rss_over_time_matches_the_programs_own_vmrss(tracefs: str, programs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """memdemo maps, touches, forks (the child writes copy-on-write), renames itself,
    madvises and frees, sampling its VmRSS after each step; the trace's RSS of the
    process at each sample's time is within 5% of it, parent and child."""
    samples, trace = tmp_path / "vmrss.txt", tmp_path / "memdemo.mtrace"
    out = json.loads(ok("record", "--live", "-c", f"{programs['memdemo']} {samples} {tmp_path / 'memdemo.dat'}",
                        "-o", trace, "--json"))
    assert out["stop_reason"] == "command exited (exit status 0)", out
    assert out["lost_events"] == 0
    assert _own_instance() not in memtrace_instances()
    meta = api.open_trace(trace).meta
    offset = meta["live"]["clock_sync"]["start"]["trace_minus_monotonic_ns"]
    series = _rss_series(trace)
    rows = [line.split() for line in samples.read_text().splitlines()]
    assert len(rows) >= 20
    worst, pids = 0.0, set()
    for m0, m1, pid_text, label, vmrss_kb, *_ in rows:
        t0, t1, pid = int(m0) + offset, int(m1) + offset, int(pid_text)
        times, values = series[pid]
        # VmRSS was read between t0 and t1: the trace's values over that span
        lo, hi = bisect.bisect_right(times, t0) - 1, bisect.bisect_right(times, t1) - 1
        traced_kb = min((values[j] // 1024 for j in range(max(lo, 0), hi + 1)), key=lambda v: abs(v - int(vmrss_kb)))
        err = abs(traced_kb - int(vmrss_kb)) / int(vmrss_kb) * 100
        assert err <= RSS_TOLERANCE_PCT, (label, pid, vmrss_kb, traced_kb)
        worst = max(worst, err)
        pids.add(pid)
    assert len(pids) == 2  # parent and child
    # explain/ps read the same RSS: the child at its last copy-on-write sample
    m0, m1, pid_text, label, vmrss_kb, *_ = next(r for r in rows if r[3] == "child-cow-32M")
    table = api.ps(trace, at=int(m1) + offset).result
    row = next(r for r in table.rows if r.pid == int(pid_text))
    rss_kb = row.rss_bytes // 1024
    assert abs(rss_kb - int(vmrss_kb)) / int(vmrss_kb) * 100 <= RSS_TOLERANCE_PCT, (rss_kb, vmrss_kb)
    print(f"worst RSS difference over {len(rows)} samples: {worst:.3f} %")


# --------------------------------------------------------------------------- memcg OOM


def _kill_line(lines: list[str], pid: int) -> dict[str, int]:
    """The kB fields of the kernel's ``Killed process PID`` line."""
    line = next(x for x in lines if f"Killed process {pid} " in x)
    return {k: int(v) for k, v in re.findall(r"([a-z-]+):(\d+)kB", line)}


def _report_facts(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"victim": k["victim"], "trigger": k["trigger"], "constraint": k["constraint"], "memcg": k["memcg"],
             "victim_ranked_first": k["victim_ranked_first"],
             "candidates": sorted((c["pid"], c["points"]) for c in k["candidates"])} for k in report["kills"]]


def test_a_memcg_oom_kill_matches_the_kernel_log(tracefs: str, programs: dict[str, Path], memcg_v1: Path,
                                                 tmp_path: Path) -> None:
    """A leaker in a 64 MiB memory cgroup (memsw limited too) is OOM-killed: the
    trace's kill, victim and points are the kernel log's, and 'memtrace report'
    says the same of the trace as of the log."""
    trace = tmp_path / "oom.mtrace"
    command = f"sh -c 'echo $$ > {memcg_v1}/cgroup.procs; exec {programs['leaker']} 1024 2000 1024'"
    out = json.loads(ok("record", "--live", "-c", command, "--duration", "60", "-o", trace, "--json"))
    assert out["stop_reason"] == "command exited (killed by SIGKILL)", out
    assert out["lost_events"] == 0
    assert _own_instance() not in memtrace_instances()
    kills = out["import"]["oom_kills"]
    assert len(kills) == 1, kills
    kill = kills[0]
    assert kill["comm"] == "mt-leaker"
    assert kill["constraint"] == "CONSTRAINT_MEMCG" and kill["memcg"] == f"/{memcg_v1.name}"
    reader = api.open_trace(trace)
    lines = reader.meta["live"]["kernel_log"]["lines"]
    assert any(f"Killed process {kill['victim_pid']} (mt-leaker)" in x for x in lines)
    assert any("oom-kill:constraint=CONSTRAINT_MEMCG" in x for x in lines)
    event = next(r.fields for b in reader.ordered_batches() if b.tp.name == "oom_kill" for r in b.records())
    logged = _kill_line(lines, kill["victim_pid"])
    assert (event["total_vm_kb"], event["anon_rss_kb"], event["file_rss_kb"], event["shmem_rss_kb"]) == (
        logged["total-vm"], logged["anon-rss"], logged["file-rss"], logged["shmem-rss"])
    log = tmp_path / "oom.dmesg"
    log.write_text("\n".join(lines) + "\n")
    from_log = json.loads(ok("report", log, "--json"))
    from_trace = json.loads(ok("report", trace, "--json", "--no-what-if"))
    assert _report_facts(from_trace) == _report_facts(from_log)
    assert from_trace["kills"][0]["victim"]["pid"] == kill["victim_pid"]
    assert event["points"] == from_log["kills"][0]["victim"]["points"] > 0


# --------------------------------------------------------------------------- cleanup


def _start_recorder(*args: str) -> subprocess.Popen[str]:
    """``memtrace record --live ARGS`` in a process of its own, once it records."""
    rec = subprocess.Popen([sys.executable, "-m", "memtrace", "record", "--live", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert rec.stderr is not None
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([rec.stderr], [], [], 0.5)
        if ready:
            line = rec.stderr.readline()
            seen.append(line)
            if line.startswith("memtrace: recording"):
                return rec
            if not line:
                break
    rec.kill()
    rec.communicate(timeout=30)
    raise AssertionError(f"the recorder did not start: {seen}")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def test_sigint_ends_a_recording_cleanly_and_keeps_what_was_read(tracefs: str, tmp_path: Path) -> None:
    trace = tmp_path / "int.mtrace"
    rec = _start_recorder("-c", "sleep 30", "-o", str(trace), "--json")
    instance = f"memtrace-{rec.pid}"
    assert instance in memtrace_instances()
    time.sleep(0.3)
    rec.send_signal(signal.SIGINT)
    stdout, stderr = rec.communicate(timeout=60)
    assert rec.returncode == 0, stderr
    result = json.loads(stdout)
    assert result["stop_reason"] == "SIGINT"
    assert instance not in memtrace_instances()
    assert result["events_read"].get("sched:sched_process_exec") == 1  # sh became sleep: the trace has it
    assert api.stat_trace(trace).stats.counts.get("process_start", 0) >= 1


def test_a_killed_recorders_instance_goes_when_the_next_recording_starts(tracefs: str, tmp_path: Path) -> None:
    rec = _start_recorder("-c", "sleep 30", "-o", str(tmp_path / "killed.mtrace"))
    instance = f"memtrace-{rec.pid}"
    orphans = _children(rec.pid)
    rec.kill()
    rec.wait()
    for pid in orphans:  # the command outlives its recorder (and holds its pipes)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    rec.communicate(timeout=30)
    assert instance in memtrace_instances()  # SIGKILL leaves it, still tracing
    out = json.loads(ok("record", "--live", "-c", "true", "-o", tmp_path / "next.mtrace", "--json"))
    assert instance in out["removed_stale"]
    assert instance not in memtrace_instances()
    assert _own_instance() not in memtrace_instances()


# --------------------------------------------------------------------------- trace --live


def test_trace_live_runs_a_file_program_on_the_live_events(tracefs: str, programs: dict[str, Path],
                                                          tmp_path: Path) -> None:
    """The program a trace file takes runs live: counts by comm and mapping kind,
    intervals on the live clock, maps printed at the end."""
    program = ('page_fault { @faults[comm] = count(); } fork { printf("fork %s\\n", comm); } '
               'interval:ms:100 { @ticks = count(); }')
    text = ok("trace", "--live", "-c", f"{programs['memdemo']} {tmp_path / 's.txt'} {tmp_path / 'f.dat'}",
              "-e", program)
    assert text.startswith("Attaching 3 probes...")
    assert "fork mt-memdemo" in text
    faults = {m.group(1): int(m.group(2)) for m in re.finditer(r"@faults\[(.*)\]: (\d+)", text)}
    assert faults["mt-memdemo"] >= (4 + 64) * 256  # brk and the anonymous mapping, one fault per page
    assert faults["memdemo-child"] >= 32 * 256  # its copy-on-write writes
    assert re.search(r"@ticks: [1-9]", text)
    assert _own_instance() not in memtrace_instances()


def test_trace_live_stops_at_exit(tracefs: str) -> None:
    start = time.monotonic()
    text = ok("trace", "--live", "-c", "sleep 20", "-e", 'interval:ms:300 { printf("bye\\n"); exit(); }')
    assert time.monotonic() - start < 15
    assert text.splitlines()[1:] == ["bye"]
    assert _own_instance() not in memtrace_instances()


def test_c_alone_traces_the_running_kernel_as_bpftrace_does(tracefs: str, programs: dict[str, Path],
                                                           tmp_path: Path) -> None:
    """``-c CMD`` implies --live (bpftrace's -c), and kernel tracepoint names work
    live: the program's own page faults, through exceptions:page_fault_user."""
    text = ok("trace", "-c", f"{programs['memdemo']} {tmp_path / 's.txt'} {tmp_path / 'f.dat'}",
              "-e", "tracepoint:exceptions:page_fault_user { @[comm] = count(); }")
    faults = {m.group(1): int(m.group(2)) for m in re.finditer(r"@\[(.*)\]: (\d+)", text)}
    assert faults["mt-memdemo"] >= (4 + 64) * 256
    assert _own_instance() not in memtrace_instances()
