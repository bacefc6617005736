"""bpftrace's own one-liners and tools, run unchanged by ``memtrace trace``.

The programs are the ones of bpftrace's tutorial (``docs/tutorial_one_liners.md``,
lessons 1-12) and of its ``tools/`` that touch tracepoints memtrace records, typed
here as bpftrace prints them (docs/bpftrace.md lists every tool tried and its
outcome). What memtrace can run is checked against counts taken by hand from the
same trace (a Python loop over its events); what it cannot run must fail in one
line that names the feature. bpftrace's hist()/lhist() text is checked against the
expected files of bpftrace's runtime tests (``tests/runtime/outputs/hist.txt``,
``lhist.txt``, ``hist_2_values.txt``), typed out here.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memtrace.cli import app, main
from memtrace.tracer.tracefile import TraceReader

SAMPLES = Path(__file__).parent.parent.parent / "sample_traces"
FORK_COW = SAMPLES / "fork-cow.mtrace"
OOM_LEAK = SAMPLES / "oom-leak.mtrace"
MEMCG_OOM = SAMPLES / "memcg-oom.mtrace"


def run(*args: str | os.PathLike[str]) -> tuple[str, str]:
    result = CliRunner().invoke(app, [os.fspath(a) for a in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout, result.stderr


def refused(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> str:
    """The one error line (exit 1, nothing on stdout), program lines aside."""
    with pytest.raises(SystemExit) as exc:
        main([os.fspath(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == 1, err
    assert out == "" and "Traceback" not in err
    return err.splitlines()[0]


def records(trace: Path, *names: str) -> list[Any]:
    """Every event of the tracepoints ``names``, in trace order."""
    return [r for b in TraceReader(trace).ordered_batches() if b.tp.name in names for r in b.records()]


def comms(trace: Path) -> dict[int, str]:
    """pid -> comm, from process_start and fork events (what memtrace's comm reads)."""
    out: dict[int, str] = {}
    for r in records(trace, "process_start", "fork"):
        if r.name == "process_start":
            out[r["pid"]] = r["comm"]
        else:
            out[r["child_pid"]] = r["child_comm"]
    return out


def map_lines(stdout: str) -> dict[str, str]:
    """``@name[key]: value`` lines of a text output, as a dict."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if line.startswith("@") and ": " in line)


# ----------------------------------------------------------------------------- the tutorial


def test_lesson_1_listing_probes() -> None:
    """``bpftrace -l 'tracepoint:syscalls:sys_enter_*'``: the syscall tracepoints
    memtrace records, as bpftrace names them."""
    out, _ = run("trace", "-l", "tracepoint:syscalls:sys_enter_*")
    assert out.splitlines() == [f"tracepoint:syscalls:sys_enter_{s}" for s in
                                ("brk", "madvise", "mmap", "mprotect", "mremap", "munmap", "openat", "unlink")]


def test_lesson_1_listing_with_fields() -> None:
    """``-lv``: the kernel's fields, each with what memtrace reads for it."""
    out, _ = run("trace", "-l", "-v", "tracepoint:oom:mark_victim")
    lines = out.splitlines()
    assert lines[0] == "tracepoint:oom:mark_victim"
    assert lines[1].split() == ["int", "pid", "=", "oom_kill:", "args.victim_pid"]
    assert lines[3].split() == ["unsigned", "long", "total_vm", "=", "oom_kill:", "args.total_vm_kb"]
    assert len(lines) == 10


def test_lesson_2_hello_world() -> None:
    out, _ = run("trace", FORK_COW, "-e", 'BEGIN { printf("hello world\\n"); }')
    assert out == "Attaching 1 probe...\nhello world\n"


def test_lesson_3_file_opens() -> None:
    """``tracepoint:syscalls:sys_enter_openat { printf("%s %s\\n", comm, str(args.filename)); }``:
    one line per file_open, the opener's comm and the path."""
    out, _ = run("trace", MEMCG_OOM, "-e",
                 'tracepoint:syscalls:sys_enter_openat { printf("%s %s\\n", comm, str(args.filename)); }')
    names = comms(MEMCG_OOM)
    want = [f"{names[r['pid']]} {r['path']}" for r in records(MEMCG_OOM, "file_open")]
    assert len(want) == 4
    assert out.splitlines()[1:] == want


def test_lesson_8_count_process_level_events() -> None:
    """``tracepoint:sched:sched* { @[probe] = count(); } interval:s:5 { exit(); }``: the
    sched tracepoints memtrace records, counted by probe name as bpftrace names them.
    fork-cow lasts 1.2 s: the interval never fires."""
    out, _ = run("trace", FORK_COW, "-e", "tracepoint:sched:sched* { @[probe] = count(); } interval:s:5 { exit(); }")
    counts = Counter(r.name for r in records(FORK_COW, "fork", "exit", "process_start"))
    assert out.splitlines()[0] == "Attaching 4 probes..."
    assert map_lines(out) == {
        "@[tracepoint:sched:sched_process_exec]": str(counts["process_start"]),
        "@[tracepoint:sched:sched_process_fork]": str(counts["fork"]),
        "@[tracepoint:sched:sched_process_exit]": str(counts["exit"]),
    }
    assert (counts["process_start"], counts["fork"], counts["exit"]) == (1, 3, 4)


@pytest.mark.parametrize(("lesson", "program", "says"), [
    (4, "tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }",
     "memtrace does not record the kernel tracepoint 'raw_syscalls:sys_enter'"),
    (5, "tracepoint:syscalls:sys_exit_read /pid == 18644/ { @bytes = hist(args.ret); }",
     "memtrace does not record the kernel tracepoint 'syscalls:sys_exit_read'"),
    (6, "kretprobe:vfs_read { @bytes = lhist(retval, 0, 2000, 200); }",
     "kretprobe probes (kretprobe:) are a bpftrace feature memtrace cannot run"),
    (7, "kprobe:vfs_read { @start[tid] = nsecs; } kretprobe:vfs_read /@start[tid]/ "
        "{ @ns[comm] = hist(nsecs - @start[tid]); delete(@start, tid); }",
     "kprobe probes (kprobe:) are a bpftrace feature memtrace cannot run"),
    (9, "profile:hz:99 { @[kstack] = count(); }", "profile probes (profile:) are a bpftrace feature"),
    (10, "tracepoint:sched:sched_switch { @[kstack] = count(); }",
     "memtrace does not record the kernel tracepoint 'sched:sched_switch'"),
    (11, "tracepoint:block:block_rq_issue { @ = hist(args.bytes); }",
     "memtrace does not record the kernel tracepoint 'block:block_rq_issue'"),
    (12, "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/path.h>\n#include <linux/dcache.h>\n#endif\n\n"
         "kprobe:vfs_open\n{\n  printf(\"open path: %s\\n\", str(((struct path *)arg0)->dentry->d_name.name));\n}\n",
     "-e:6:1: kprobe probes (kprobe:) are a bpftrace feature memtrace cannot run"),
])
def test_lessons_memtrace_cannot_run_name_the_feature(capsys: pytest.CaptureFixture[str], lesson: int,
                                                      program: str, says: str) -> None:
    line = refused(capsys, "trace", FORK_COW, "-e", program)
    assert says in line, (lesson, line)


# ----------------------------------------------------------------------------- bpftrace's tools

#: tools/pidpersec.bt, its program (the comment block aside).
PIDPERSEC = """BEGIN
{
  printf("Tracing new processes... Hit Ctrl-C to end.\\n");
}

tracepoint:sched:sched_process_fork
{
  @ = count();
}

interval:1s
{
  time("%H:%M:%S PIDs/sec: ");
  print(@);
  clear(@);
}

END
{
  clear(@);
}
"""


def test_pidpersec_counts_forks_per_second(tmp_path: Path) -> None:
    """pidpersec.bt as a program file: one line per simulated second with the forks
    of that second (fork-cow forks its three children in its first second), and
    the one memtrace adds at the end of the trace, for the part-second left."""
    prog = tmp_path / "pidpersec.bt"
    prog.write_text(PIDPERSEC)
    out, _ = run("trace", prog, FORK_COW)
    forks = [r["ts_ns"] for r in records(FORK_COW, "fork")]
    assert len(forks) == 3 and all(t < 1_000_000_000 for t in forks)
    assert out.splitlines() == ["Attaching 4 probes...", "Tracing new processes... Hit Ctrl-C to end.",
                                "00:00:01 PIDs/sec: @: 3", "00:00:01 PIDs/sec: @: 0"]


@pytest.mark.parametrize(("tool", "program", "says"), [
    ("oomkill.bt", "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/oom.h>\n#endif\n\nBEGIN\n{\n  printf(\"Tracing "
                   "oom_kill_process()... Hit Ctrl-C to end.\\n\");\n}\n\nkprobe:oom_kill_process\n{\n"
                   "  $oc = (struct oom_control*)arg0;\n}\n",
     "kprobe probes (kprobe:) are a bpftrace feature memtrace cannot run"),
    ("swapin.bt", "config = {\n  missing_probes = ignore;\n}\n\nkprobe:swap_readpage,\nkprobe:swap_read_folio\n"
                  "{\n  @[comm, pid] = count();\n}\n\ninterval:1s\n{\n  time();\n  print(@);\n  clear(@);\n}\n",
     "kprobe probes (kprobe:) are a bpftrace feature memtrace cannot run"),
    ("writeback.bt", "tracepoint:writeback:writeback_start\n{\n  @start[args.sb_dev] = nsecs;\n}\n",
     "memtrace does not record the kernel tracepoint 'writeback:writeback_start' (it records some of the "),
    ("execsnoop.bt", "tracepoint:syscalls:sys_enter_exec*\n{\n  printf(\"%-15s %-7d %-7d \", strftime(\"%H:%M:%S\", "
                     "nsecs), pid, curtask->real_parent->tgid);\n  join(args.argv);\n}\n",
     "bpftrace's builtin curtask (kernel memory (struct task_struct)) is a bpftrace feature memtrace cannot run"),
    ("execsnoop-probe.bt", "tracepoint:syscalls:sys_enter_exec*\n{\n  @ = count();\n}\n",
     "no tracepoint memtrace records matches 'syscalls:sys_enter_exec*'"),
    ("biosnoop.bt", "tracepoint:block:block_io_start\n{\n  $key = (args.dev, args.sector);\n}\n",
     "tuples such as (a, b) are a bpftrace feature memtrace cannot run"),
    ("loads.bt", "interval:1s\n{\n  $avenrun = kaddr(\"avenrun\");\n  $load1 = *$avenrun;\n}\n",
     "pointer dereference (*expr) is a bpftrace feature memtrace cannot run"),
    ("opensnoop.bt", "macro max_path_depth()\n{\n  getopt(\"depth\", 35, \"Maximum depth of full path\")\n}\n",
     "macros are a bpftrace feature memtrace cannot run"),
    ("naptime.bt", "let @rqtp = lruhash(4096);\n", "map declarations (let @m = ...) are a bpftrace feature"),
    ("dcsnoop.bt", "struct nameidata {\n  struct path path;\n};\n", "C struct definitions are a bpftrace feature"),
    ("runqlat.bt", "#define TASK_RUNNING 0\n", "the C preprocessor's #define is a bpftrace feature"),
])
def test_tools_memtrace_cannot_run_name_the_feature(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    tool: str, program: str, says: str) -> None:
    prog = tmp_path / tool
    prog.write_text(program)
    line = refused(capsys, "trace", prog, FORK_COW)
    assert line.startswith(f"memtrace: {prog}:") and says in line, line


def test_missing_probes_warn_skips_what_memtrace_does_not_record(tmp_path: Path) -> None:
    """statsnoop.bt's config (missing_probes = warn): the probes memtrace has no
    counterpart for are skipped, one warning each, and BEGIN still runs."""
    prog = tmp_path / "statsnoop.bt"
    prog.write_text('config = {\n  missing_probes = warn;\n}\n\nBEGIN\n{\n  printf("%-6s %-16s %3s %s\\n", "PID", '
                    '"COMM", "ERR", "PATH");\n}\n\ntracepoint:syscalls:sys_enter_statfs\n{\n  @filename[tid] = '
                    "args.pathname;\n}\n")
    out, err = run("trace", prog, FORK_COW)
    assert out == "Attaching 1 probe...\nPID    COMM             ERR PATH\n"
    assert "warning: probe tracepoint:syscalls:sys_enter_statfs skipped: memtrace does not record it" in err


# ----------------------------------------------------------------------------- the tracepoints of the issue


def test_mark_victim_fields_are_the_kernels() -> None:
    """``args.pid`` of oom:mark_victim is the victim, ``args.anon_rss`` its kB, as in
    the kernel's tracepoint; ``pid`` stays the task that triggered the kill."""
    out, _ = run("trace", MEMCG_OOM, "-e", 'tracepoint:oom:mark_victim { printf("%d %s %d %d %d\\n", args.pid, '
                                           'args->comm, args.anon_rss, args.total_vm, pid); }')
    kills = records(MEMCG_OOM, "oom_kill")
    assert len(kills) == 2
    assert out.splitlines()[1:] == [f"{k['victim_pid']} {k['comm']} {k['anon_rss_kb']} {k['total_vm_kb']} {k['pid']}"
                                    for k in kills]


def test_page_fault_user_by_comm() -> None:
    out, _ = run("trace", FORK_COW, "-e", "tracepoint:exceptions:page_fault_user { @[comm] = count(); }")
    names = comms(FORK_COW)
    want: Counter[str] = Counter()
    for b in TraceReader(FORK_COW).ordered_batches():
        if b.tp.name == "page_fault":
            for pid, n in Counter(b.ints("pid").tolist()).items():
                want[names[pid]] += n
    assert map_lines(out) == {f"@[{c}]": str(n) for c, n in want.items()}
    assert sum(want.values()) == 245_760


def test_rss_stat_member_is_the_kernels_number() -> None:
    """``args->member`` of kmem:rss_stat is the counter's number (MM_FILEPAGES 0,
    MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3), ``args->size`` bytes."""
    out, _ = run("trace", OOM_LEAK, "-e", "t:kmem:rss_stat { @[args->member] = max(args->size); }")
    want: dict[int, int] = {}
    members = ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES")
    for r in records(OOM_LEAK, "rss_stat"):
        code = members.index(r["member"])
        want[code] = max(want.get(code, r["size_bytes"]), r["size_bytes"])
    assert map_lines(out) == {f"@[{k}]": str(v) for k, v in want.items()}


def test_direct_and_memcg_reclaim_begin_are_told_apart() -> None:
    program = ("tracepoint:vmscan:mm_vmscan_direct_reclaim_begin { @direct = count(); } "
               "tracepoint:vmscan:mm_vmscan_memcg_reclaim_begin { @memcg = count(); }")
    for trace in (OOM_LEAK, MEMCG_OOM):
        out, _ = run("trace", trace, "-e", program)
        kinds = Counter(r["kind"] for r in records(trace, "reclaim_begin"))
        want = {f"@{k}": str(n) for k, n in kinds.items()}
        assert map_lines(out) == want
    assert kinds == {"memcg": 36}


def test_sys_enter_mmap_len_as_json_hist() -> None:
    """``@bytes = hist(args.len)`` of sys_enter_mmap, bpftrace's JSON buckets."""
    out, _ = run("trace", OOM_LEAK, "-f", "json", "-e", "tracepoint:syscalls:sys_enter_mmap { @bytes = hist(args.len); }")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"type": "attached_probes", "data": {"probes": 1}}
    buckets = lines[1]["data"]["@bytes"]
    lens = [r["len_bytes"] for r in records(OOM_LEAK, "mmap")]
    assert sum(b["count"] for b in buckets) == len(lens) == 37
    for b in buckets:
        assert b["count"] == sum(1 for v in lens if b["min"] <= v <= b["max"])


def test_sched_process_fork_parent_and_child() -> None:
    out, _ = run("trace", FORK_COW, "-e", 'tracepoint:sched:sched_process_fork { printf("%s %d -> %s %d\\n", '
                                          "args.parent_comm, args.parent_pid, args.child_comm, args.child_pid); }")
    names = comms(FORK_COW)
    want = [f"{names[r['pid']]} {r['pid']} -> {r['child_comm']} {r['child_pid']}" for r in records(FORK_COW, "fork")]
    assert out.splitlines()[1:] == want and len(want) == 3


@pytest.mark.parametrize(("program", "says"), [
    ("tracepoint:exceptions:page_fault_user { @[args.ip] = count(); }",
     "field 'ip' of tracepoint:exceptions:page_fault_user is not recorded by memtrace"),
    ("t:kmem:rss_stat { @[args.mm_id] = count(); }",
     "field 'mm_id' of tracepoint:kmem:rss_stat is not recorded by memtrace (memtrace names the mm by its owner: "
     "args.mm_pid)"),
    ("tracepoint:oom:mark_victim { @[args.nosuch] = count(); }", "unknown field 'nosuch' of tracepoint:oom:mark_victim"),
    ("tracepoint:syscalls:sys_enter_mmap { @[ustack] = count(); }",
     "bpftrace's builtin ustack is a feature memtrace cannot run: stacks"),
    ("tracepoint:syscalls:sys_enter_mmap { @[ksym(args.addr)] = count(); }",
     "bpftrace's ksym() is a feature memtrace cannot run"),
    ("tracepoint:syscalls:sys_enter_openat { @[str(args.flags)] = count(); }",
     "field 'flags' of tracepoint:syscalls:sys_enter_openat is not recorded by memtrace"),
    ("tracepoint:syscalls:sys_enter_brk { printf(\"%s\\n\", str(args.brk)); }",
     "str() of an integer reads a string at a kernel address"),
    ("tracepoint:syscalls:sys_enter_brk { while ($i < 3) { $i++; } }", "while loops are a bpftrace feature"),
    ("tracepoint:syscalls:sys_enter_mmap { @ = hist(args.len, 2); }", "hist()'s bits argument"),
])
def test_kernel_fields_and_features_memtrace_lacks_are_named(capsys: pytest.CaptureFixture[str], program: str,
                                                             says: str) -> None:
    line = refused(capsys, "trace", FORK_COW, "-e", program)
    assert says in line, line


def test_memtrace_names_and_kernel_names_mix() -> None:
    """``args.NAME`` of a kernel-named probe falls back to memtrace's field; the same
    program by memtrace's names prints the same."""
    a, _ = run("trace", FORK_COW, "-e", "t:exceptions:page_fault_user { @[args.vma_kind, args.write] = count(); }")
    b, _ = run("trace", FORK_COW, "-e", "page_fault { @[vma_kind, write] = count(); }")
    assert a == b and map_lines(a)


# ----------------------------------------------------------------------------- hist() and lhist() text

#: bpftrace's tests/runtime/outputs/hist.txt, for
#: begin { @=hist(-1); @=hist(2); @=hist(3); @=hist(7); @=hist(20); }
HIST_TXT = """@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0]                    0 |                                                    |
[1]                    0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 16)                0 |                                                    |
[16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"""
#: tests/runtime/outputs/lhist.txt, for
#: @=lhist(2,0,10,2); @=lhist(3,0,10,2); @=lhist(7,0,10,2); @=lhist(-1,0,10,2); @=lhist(11,0,10,2)
LHIST_TXT = """@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0, 2)                 0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 6)                 0 |                                                    |
[6, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 10)                0 |                                                    |
[10, ...)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"""
#: tests/runtime/outputs/hist_2_values.txt, for @=hist(3);@=hist(20);
HIST_2_VALUES_TXT = """@:
[2, 4)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 8)                 0 |                                                    |
[8, 16)                0 |                                                    |
[16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|

"""


@pytest.mark.parametrize(("program", "want"), [
    ("BEGIN { @=hist(-1); @=hist(2); @=hist(3); @=hist(7); @=hist(20); }", HIST_TXT),
    ("BEGIN { @=lhist(2,0,10,2); @=lhist(3,0,10,2); @=lhist(7,0,10,2); @=lhist(-1,0,10,2); @=lhist(11,0,10,2); "
     "exit()}", LHIST_TXT),
    ("BEGIN { @=hist(3);@=hist(20);}", HIST_2_VALUES_TXT),
])
def test_hist_text_is_bpftraces(program: str, want: str) -> None:
    out, _ = run("trace", FORK_COW, "-e", program)
    assert out == "Attaching 1 probe...\n" + want


def test_lhist_labels_follow_build_linear_histogram() -> None:
    """Worked from bpftrace's ``build_linear_histogram``/``lhist_index_label``: a
    step that is not a multiple of 1024 labels plainly, and adjacent integer bounds
    make single-value rows; the open row starts at min + ((max - min) / step) * step
    (9 for lhist(v, 0, 10, 3)); K only when the step is a multiple of 1024."""
    out, _ = run("trace", FORK_COW, "-e", "BEGIN { @a = lhist(5, 0, 10, 1); @a = lhist(7, 0, 10, 1); "
                                          "@b = lhist(10, 0, 10, 3); @c = lhist(2048, 0, 4096, 1024); "
                                          "@d = lhist(2048, 0, 4096, 1000); }")
    bar = "@" * 52
    assert out.split("\n\n")[:4] == [
        f"Attaching 1 probe...\n@a:\n[5]                    1 |{bar}|\n[6]                    0 |{' ' * 52}|\n"
        f"[7]                    1 |{bar}|",
        f"@b:\n[9, ...)               1 |{bar}|",
        f"@c:\n[2K, 3K)               1 |{bar}|",
        f"@d:\n[2000, 3000)           1 |{bar}|",
    ]


def test_hist_bars_are_single_precision() -> None:
    """The bar is ``(int)((count / (float)max) * 52)``: 1 of 3 is 17 ``@``, 2 of 3 is 34."""
    out, _ = run("trace", FORK_COW, "-e", "BEGIN { @=hist(2); @=hist(4); @=hist(4); @=hist(8); @=hist(8); @=hist(8); }")
    rows = out.splitlines()[2:5]
    assert [row.count("@") for row in rows] == [17, 34, 52]
