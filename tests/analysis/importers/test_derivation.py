"""The derived workload's rules, each on a few hand-made lines in perf script's layout.

Lines follow the kernel's print formats (``../shared/reference/kernel-mm-facts.md``
§7, and the 6.18 recordings in tests/data/real/experiments): an exec is what the
kernel says is one, a rename keeps the mappings, a thread joins its process, and
madvise, mremap, mprotect and partial munmap become steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memtrace.analysis.importers import import_trace
from memtrace.tracer import TraceReader
from memtrace.tracer.tracepoints import EXEC, TASK_RENAME

from .test_import_ftrace import perf_line

MiB = 1 << 20
BASE = 0x7F0000000000


class Lines:
    """Perf script lines of one program, one microsecond apart."""

    def __init__(self, comm: str = "app", pid: int = 100) -> None:
        self.comm, self.pid, self.us = comm, pid, 1_000_000
        self.out: list[str] = []

    def add(self, event: str, payload: str, *, comm: str | None = None, pid: int | None = None,
            step_us: int = 1) -> None:
        self.us += step_us
        self.out.append(perf_line(comm or self.comm, pid or self.pid, self.us, event, payload))

    def call(self, name: str, args: str, ret: int, **kw: Any) -> None:
        self.add(f"syscalls:sys_enter_{name}", args, **kw)
        self.add(f"syscalls:sys_exit_{name}", f"0x{ret & (1 << 64) - 1:x}", **kw)

    def mmap(self, addr: int, length: int, *, fd: int = -1, prot: int = 3, flags: int = 0x22, **kw: Any) -> None:
        self.call("mmap", f"addr: 0x00000000, len: 0x{length:08x}, prot: 0x{prot:08x}, flags: 0x{flags:08x}, "
                          f"fd: 0x{fd & 0xFFFFFFFF:08x}, off: 0x00000000", addr, **kw)

    def faults(self, addr: int, pages: int, *, write: bool = True, mm: int = 42, member: str = "MM_ANONPAGES",
               start_pages: int = 0, **kw: Any) -> None:
        for i in range(pages):
            code = "0x6" if write else "0x4"
            self.add("exceptions:page_fault_user", f"address=0x{addr + i * 4096:x} ip=0x1 error_code={code}", **kw)
            self.add("kmem:rss_stat", f"mm_id={mm} curr=1 type={member} size={(start_pages + i + 1) * 4096}B",
                     **kw)

    def write(self, tmp: Path) -> Path:
        path = tmp / "in.txt"
        path.write_text("\n".join(self.out) + "\n")
        return path


def derive(tmp_path: Path, lines: Lines, **kw: Any) -> tuple[dict[str, Any], Path]:
    out = tmp_path / "out.mtrace"
    import_trace(lines.write(tmp_path), out, format="perf-script", **kw)
    return TraceReader(out).meta, out


def steps_of(meta: dict[str, Any], comm: str) -> list[dict[str, Any]]:
    """The steps of the process named ``comm``, without the sleeps."""
    steps = next(p for p in meta["workload"]["process"] if p["comm"] == comm)["steps"]
    return [s for s in steps if s["op"] != "sleep"]


def records(path: Path, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in TraceReader(path).events() if r.name == name]


def test_the_tracepoints() -> None:
    assert [f.name for f in EXEC.fields] == ["comm", "filename", "old_pid"]
    assert EXEC.kernel == "sched:sched_process_exec"
    assert [f.name for f in TASK_RENAME.fields] == ["oldcomm", "newcomm"]
    assert TASK_RENAME.kernel == "task:task_rename"


def test_a_rename_keeps_the_file_pages(tmp_path: Path) -> None:
    """prctl(PR_SET_NAME) after 1,700 file pages faulted: a task_rename, no munmap;
    the pages stay touched and the name at the end is the new one."""
    ln = Lines("leaker")
    ln.mmap(BASE, 1700 * 4096, fd=3, prot=1, flags=0x02)
    ln.faults(BASE, 1700, write=False, member="MM_FILEPAGES")
    ln.add("task:task_rename", "pid=100 oldcomm=leaker newcomm=leaker-2 oom_score_adj=0")
    ln.faults(BASE + (1 << 30), 10, start_pages=0, comm="leaker-2", step_us=20_000)
    meta, out = derive(tmp_path, ln)
    steps = steps_of(meta, "leaker-2")
    assert not [s for s in steps if s["op"] == "munmap"]
    touched = sum(s.get("length", 0) for s in steps if s["op"] == "touch" and s["handle"] == "m1")
    assert touched == 1700 * 4096
    assert [(r["oldcomm"], r["newcomm"]) for r in records(out, "task_rename")] == [("leaker", "leaker-2")]
    assert not records(out, "exec")


def test_a_comm_change_in_the_column_alone_is_a_rename(tmp_path: Path) -> None:
    """No task_rename traced (another kernel, another event list): the comm column
    changing is a rename all the same."""
    ln = Lines("web")
    ln.mmap(BASE, 16 * 4096)
    ln.faults(BASE, 16)
    ln.faults(BASE + 16 * 4096, 1, start_pages=16, comm="web-worker")
    meta, out = derive(tmp_path, ln)
    assert [(r["oldcomm"], r["newcomm"]) for r in records(out, "task_rename")] == [("web", "web-worker")]
    assert not [s for s in steps_of(meta, "web-worker") if s["op"] == "munmap"]


def test_an_exec_unmaps_and_names_the_file(tmp_path: Path) -> None:
    """execve: its task_rename is the exec's (inside the call), sched_process_exec
    the exec: an ``exec`` event with the file name; the old mappings go."""
    ln = Lines("sh")
    ln.mmap(BASE, 8 * 4096)
    ln.faults(BASE, 8)
    ln.add("syscalls:sys_enter_execve", "filename: 0x7ffe0000, argv: 0x7ffe0100, envp: 0x7ffe0200")
    ln.add("task:task_rename", "pid=100 oldcomm=sh newcomm=db oom_score_adj=0")
    ln.add("sched:sched_process_exec", "filename=/usr/bin/db pid=100 old_pid=100", comm="db")
    ln.add("syscalls:sys_exit_execve", "0x0", comm="db")
    meta, out = derive(tmp_path, ln)
    assert [(r["comm"], r["filename"], r["old_pid"]) for r in records(out, "exec")] == [("db", "/usr/bin/db", 100)]
    assert not records(out, "task_rename")
    assert {"op": "munmap", "handle": "m1"} in steps_of(meta, "db")


def test_an_exec_without_exec_tracepoints_is_the_new_mm(tmp_path: Path) -> None:
    """A trace of faults and counters only: the new mm (another mm_id, curr=1) is
    the exec, and the comm change that came with it is no rename."""
    ln = Lines("bash")
    ln.mmap(BASE, 4 * 4096)
    ln.faults(BASE, 4, mm=1)
    ln.faults(BASE + (1 << 20), 2, mm=2, comm="python3")
    meta, out = derive(tmp_path, ln)
    assert [r["comm"] for r in records(out, "exec")] == ["python3"]
    assert not records(out, "task_rename")
    assert {"op": "munmap", "handle": "m1"} in steps_of(meta, "python3")


def test_a_thread_joins_its_process(tmp_path: Path) -> None:
    """clone(CLONE_VM|CLONE_THREAD|...) then sched_process_fork: the child is a
    thread (no fork, no process of its own); its faults and counters are its
    process's."""
    ln = Lines("java")
    ln.add("syscalls:sys_enter_clone", "clone_flags: 0x003d0f00, newsp: 0x7f0000100000, parent_tidptr: 0x0, "
                                       "child_tidptr: 0x0, tls: 0x0")
    ln.add("sched:sched_process_fork", "comm=java pid=100 child_comm=java child_pid=101")
    ln.add("syscalls:sys_exit_clone", "0x65")
    ln.add("syscalls:sys_exit_clone", "0x0", pid=101)
    ln.mmap(BASE, 4 * 4096, pid=101)
    ln.faults(BASE, 4, pid=101)
    ln.add("syscalls:sys_enter_clone", "clone_flags: 0x01200011, newsp: 0x0, parent_tidptr: 0x0, "
                                       "child_tidptr: 0x7f0000000a10, tls: 0x0")
    ln.add("sched:sched_process_fork", "comm=java pid=100 child_comm=java child_pid=102")
    ln.add("syscalls:sys_exit_clone", "0x66")
    meta, out = derive(tmp_path, ln)
    assert [r["child_pid"] for r in records(out, "fork")] == [102]
    assert {r["mm_pid"] for r in records(out, "rss_stat")} == {100}
    assert {r["pid"] for r in records(out, "page_fault")} == {100}
    names = [p["name"] for p in meta["workload"]["process"]]
    assert "java-100" in names and "java-101" not in names
    assert [s["op"] for s in steps_of(meta, "java")].count("touch") >= 1


def test_exit_group_gives_the_exit_code_and_an_exit_step(tmp_path: Path) -> None:
    ln = Lines()
    ln.mmap(BASE, 4096)
    ln.faults(BASE, 1)
    ln.add("syscalls:sys_enter_exit_group", "error_code: 0x00000003")
    ln.add("sched:sched_process_exit", "comm=app pid=100 prio=120 group_dead=true")
    meta, out = derive(tmp_path, ln)
    assert [r["code"] for r in records(out, "exit")] == [3]
    assert steps_of(meta, "app")[-1] == {"op": "exit", "code": 3}


def test_a_hole_in_the_middle_splits_the_mapping(tmp_path: Path) -> None:
    """munmap of the middle of a mapping (the simulator unmaps only ends): the tail
    from the hole goes, the part above it is mapped anew and touched again."""
    ln = Lines()
    ln.mmap(BASE, 8 * 4096)
    ln.faults(BASE, 8)
    ln.call("munmap", f"addr: 0x{BASE + 2 * 4096:x}, len: 0x{2 * 4096:08x}", 0)
    meta, _ = derive(tmp_path, ln)
    steps = steps_of(meta, "app")
    at = steps.index({"op": "munmap", "handle": "m1", "offset": 2 * 4096, "length": 6 * 4096})
    assert steps[at + 1]["op"] == "mmap" and steps[at + 1]["length"] == 4 * 4096
    assert steps[at + 2] == {"op": "touch", "handle": steps[at + 1]["handle"], "offset": 0, "length": 4 * 4096,
                             "write": True}
    assert meta["derived"]["steps"]["munmap_split"] == 1


@pytest.mark.parametrize("vma_steps", [False, True])
def test_madvise_dontneed_and_a_refault(tmp_path: Path, vma_steps: bool) -> None:
    """MADV_DONTNEED of 4 pages: with the scenario's madvise step, that; without it,
    a fresh mapping in their place. Either way a fault there afterwards touches the
    page again, and the counters falling are not taken as other memory going."""
    ln = Lines()
    ln.mmap(BASE, 8 * 4096)
    ln.faults(BASE, 8)
    ln.call("madvise", f"start: 0x{BASE + 4 * 4096:x}, len_in: 0x{4 * 4096:08x}, behavior: 0x00000004", 0)
    ln.add("kmem:rss_stat", "mm_id=42 curr=1 type=MM_ANONPAGES size=16384B")
    ln.faults(BASE + 4 * 4096, 1, start_pages=4, step_us=20_000)
    meta, _ = derive(tmp_path, ln, vma_steps=vma_steps)
    steps = steps_of(meta, "app")
    if vma_steps:
        assert {"op": "madvise", "handle": "m1", "offset": 4 * 4096, "length": 4 * 4096, "advice": "dontneed"} in steps
        assert steps[-1] == {"op": "touch", "handle": "m1", "offset": 4 * 4096, "length": 4096, "write": True}
    else:
        assert {"op": "munmap", "handle": "m1", "offset": 4 * 4096, "length": 4 * 4096} in steps
        fresh = next(s for s in steps if s["op"] == "mmap" and s["handle"] != "m1")
        assert fresh["length"] == 4 * 4096
        assert steps[-1] == {"op": "touch", "handle": fresh["handle"], "offset": 0, "length": 4096, "write": True}
    assert not [s for s in steps if s["op"] == "mmap" and s["handle"].startswith("anon")]


def test_mremap_in_place_and_moved(tmp_path: Path) -> None:
    """Without the mremap step: growing in place adds a mapping for the new part;
    a move keeps the pages under their handle and faults at the new address land
    in it (the trace maps it there: munmap + mmap)."""
    ln = Lines()
    ln.mmap(BASE, 4 * 4096)
    ln.faults(BASE, 4)
    new = BASE + (1 << 30)
    ln.call("mremap", f"addr: 0x{BASE:x}, old_len: 0x{4 * 4096:08x}, new_len: 0x{8 * 4096:08x}, "
                      f"flags: 0x00000001, new_addr: 0x0", new)
    ln.faults(new + 4 * 4096, 4, start_pages=4, step_us=20_000)
    meta, out = derive(tmp_path, ln, vma_steps=False)
    steps = steps_of(meta, "app")
    grown = next(s for s in steps if s["op"] == "mmap" and s["handle"] != "m1")
    assert grown["length"] == 4 * 4096
    touches = [(s["offset"], s["length"]) for s in steps if s["op"] == "touch" and s["handle"] == grown["handle"]]
    assert touches == [(i * 4096, 4096) for i in range(4)]  # (a slice each: 20 ms apart)
    assert [(r["addr"], r["len_bytes"]) for r in records(out, "mmap")][-1] == (new, 8 * 4096)
    assert not [s for s in steps if s["op"] == "mmap" and s["handle"].startswith("anon")]


def test_mprotect_step_and_the_protection_it_gives(tmp_path: Path) -> None:
    ln = Lines()
    ln.mmap(BASE, 4 * 4096, prot=0)
    ln.call("mprotect", f"start: 0x{BASE:x}, len: 0x{4 * 4096:08x}, prot: 0x00000003", 0)
    ln.faults(BASE, 2)
    with_steps, _ = derive(tmp_path, ln, vma_steps=True)
    steps = steps_of(with_steps, "app")
    assert steps[0]["prot"] == ""
    assert {"op": "mprotect", "handle": "m1", "offset": 0, "length": 4 * 4096, "prot": "rw"} in steps
    without, _ = derive(tmp_path, ln, vma_steps=False)
    assert steps_of(without, "app")[0]["prot"] == "w"  # no mprotect step: the mmap is made writable
