"""The first stage of the kernel-log reader: prefixes stripped, wrapped lines rejoined.

Ground truth: the hand-read facts of the OOM corpus (tests/data/oomlogs/index.json), the
printk formats of ``kernel-mm-facts.md`` §3, the lines of OOMAnalyser's example logs (only
where that material is at hand: set MEMTRACE_OOMANALYSER to its directory; it is not part
of the repository), and properties (rewrapping, reprefixing, garbage) checked with
hypothesis.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import pathlib
import random
import re
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.analysis.kernlog import LogLine, kernel_log_lines, lines, parse, rejoin, shapes, split_prefix
from memtrace.analysis.kernlog.prefix import make_logline

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "data" / "oomlogs"
OOMA = pathlib.Path(os.environ.get("MEMTRACE_OOMANALYSER", "/nonexistent")) / "examples"
INDEX = json.loads((CORPUS / "index.json").read_text())


def read(path: pathlib.Path) -> list[LogLine]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return list(kernel_log_lines(f))


def texts(out: list[LogLine]) -> list[str]:
    return [ln.text.strip() for ln in out]


def one(raw: str) -> LogLine:
    out = list(kernel_log_lines([raw]))
    assert len(out) == 1, out
    return out[0]


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Fail a test that runs away instead of hanging the suite (not a timing assertion:
    the limit is two orders of magnitude above the slowest test)."""
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError("test ran away")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(300)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- API


def test_logline_is_a_frozen_dataclass_with_the_agreed_fields() -> None:
    line = LogLine(1, "x", 3)
    assert (line.ts_ns, line.text, line.lineno, line.wall, line.host, line.linenos, line.rule, line.caller) == (
        1, "x", 3, None, None, (), "", None)
    field = "text"
    with pytest.raises(AttributeError):  # frozen
        setattr(line, field, "y")
    assert make_logline(1, "x", 3, None, None, (), "") == line


def test_the_fast_constructor_builds_equal_lines() -> None:
    """The reader's LogLines compare, hash and print like ones built by the dataclass."""
    got = one("[  123.456789] usb 1-1: new device\n")
    want = LogLine(123_456_789_000, "usb 1-1: new device", 1, None, None, (1,), "kts")
    assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
    got = one("Nov 26 22:48:00 web-01 kernel: usb 1-1: new device\n")
    assert got == LogLine(None, "usb 1-1: new device", 1, "Nov 26 22:48:00", "web-01", (1,), "syslog")


def test_split_prefix_keeps_its_contract() -> None:
    assert split_prefix("[  153.241486] Out of memory\n") == (153_241_486_000, None, "Out of memory")
    assert split_prefix("Nov 26 22:48:00 host kernel: [ 5.5] x") == (5_500_000_000, "Nov 26 22:48:00", "x")
    assert split_prefix("[Tue Nov 26 22:48:00 2024] x") == (None, "Tue Nov 26 22:48:00 2024", "x")
    assert split_prefix("plain text") == (None, None, "plain text")
    line = "Jan 25 14:59:34 host systemd[1]: firewalld.service: Main process exited"
    assert split_prefix(line) == (None, None, line)  # another program's line stays whole


# --------------------------------------------------------------------------- prefixes

# raw line -> (ts_ns, wall, host, text, rule)
PREFIXES = [
    ("[  123.456789] foo bar", (123_456_789_000, None, None, "foo bar", "kts")),
    ("[  123.456789 <    0.000123>] foo", (123_456_789_000, None, None, "foo", "kts")),
    ("[    0.000000] Linux version 6.1", (0, None, None, "Linux version 6.1", "kts")),
    ("[Tue Nov 26 22:48:00 2024] foo", (None, "Tue Nov 26 22:48:00 2024", None, "foo", "ctime")),
    ("[Di Aug 12 03:54:03 2025] foo", (None, "Di Aug 12 03:54:03 2025", None, "foo", "ctime")),
    ("[二 9月  3 05:57:48 2024] foo", (None, "二 9月  3 05:57:48 2024", None, "foo", "ctime")),
    ("[mar. août 12 03:54:03 2025] foo", (None, "mar. août 12 03:54:03 2025", None, "foo", "ctime")),
    ("[Nov26 22:48] foo", (None, "Nov26 22:48", None, "foo", "ctime")),
    ("[  +0.000123] foo", (None, None, None, "foo", "delta")),
    ("kern  :warn  : [  123.456789] foo", (123_456_789_000, None, None, "foo", "fac+kts")),
    ("kern  :err   : foo", (None, None, None, "foo", "fac")),
    ("<4>[  123.456789] foo", (123_456_789_000, None, None, "foo", "lvl+kts")),
    ("<6>foo", (None, None, None, "foo", "lvl")),
    ("6,1234,5678,-;foo", (5_678_000, None, None, "foo", "kmsg")),
    ("4,19685342,241227987454,-,caller=T12845;dumpsys x", (241_227_987_454_000, None, None, "dumpsys x", "kmsg")),
    ("4,5,6,c;cont", (6_000, None, None, "cont", "kmsg")),
    ("[  123.456789] [ T123] foo", (123_456_789_000, None, None, "foo", "kts")),
    ("[  123.456789][  C1] foo", (123_456_789_000, None, None, "foo", "kts")),
    ("[71073.562094] [T13546] foo", (71_073_562_094_000, None, None, "foo", "kts")),
    ("[ T123] foo", (None, None, None, "foo", "caller")),
    ("Nov 26 22:48:00 host kernel: foo", (None, "Nov 26 22:48:00", "host", "foo", "syslog")),
    ("Nov  6 02:48:00 host kernel: [ 12.5] foo", (12_500_000_000, "Nov  6 02:48:00", "host", "foo", "syslog+kts")),
    ("Jan  5 15:19:27 kernel: [ 5864.708440] foo", (5_864_708_440_000, "Jan  5 15:19:27", None, "foo",
                                                   "syslog-nohost+kts")),
    ("Apr 01 14:13:32 mysrv: foo", (None, "Apr 01 14:13:32", "mysrv", "foo", "syslog-host")),
    ("Apr 01 14:13:32 mysrv <kern.warning> kernel: foo", (None, "Apr 01 14:13:32", "mysrv", "foo", "syslog+tag")),
    ("Apr 01 14:13:32 mysrv <kern.warn> kernel:foo", (None, "Apr 01 14:13:32", "mysrv", "foo", "syslog+tag")),
    ("Feb 03 19:57:08 ** kernel: foo", (None, "Feb 03 19:57:08", "**", "foo", "syslog")),
    ("Nov 26 22:48:00 host kernel[0]: foo", (None, "Nov 26 22:48:00", "host", "foo", "syslog")),
    ("kernel: foo", (None, None, None, "foo", "kernel")),
    ("kernel:foo", (None, None, None, "foo", "kernel")),
    ("kernel: [ 1.5] foo", (1_500_000_000, None, None, "foo", "kernel+kts")),
    ("Nov 03 08:06:47.252691 localhost kernel: foo", (None, "Nov 03 08:06:47.252691", "localhost", "foo", "syslog")),
    ("2024-11-26T22:48:00+0100 host kernel: foo", (None, "2024-11-26T22:48:00+0100", "host", "foo", "journal")),
    ("2024-11-26T22:48:00.123456+01:00 host kernel: [ 2.0] foo",
     (2_000_000_000, "2024-11-26T22:48:00.123456+01:00", "host", "foo", "journal+kts")),
    ("Tue 2024-11-26 22:48:00 CET host kernel: foo", (None, "Tue 2024-11-26 22:48:00 CET", "host", "foo", "journal")),
    ("1732657680.123456 host kernel: foo", (None, "1732657680.123456", "host", "foo", "journal")),
    ("[  123.456789] host kernel: foo", (123_456_789_000, None, "host", "foo", "kts+host")),
    ("2024-11-26T22:48:00,123456+00:00 foo", (None, "2024-11-26T22:48:00,123456+00:00", None, "foo", "iso")),
    ("<4>1 2024-11-26T22:48:00.123+00:00 host kernel - - - foo",
     (None, "2024-11-26T22:48:00.123+00:00", "host", "foo", "lvl+rfc5424")),
    ("    [  123.456789] foo", (123_456_789_000, None, None, "foo", "indent+kts")),
    ("\t[  123.456789] foo", (123_456_789_000, None, None, "foo", "indent+kts")),
    ("\tOct 22 11:13:11 localhost kernel: foo", (None, "Oct 22 11:13:11", "localhost", "foo", "indent+syslog")),
    ("> [  123.456789] foo", (123_456_789_000, None, None, "foo", "quote+kts")),
    (">> [  123.456789] foo", (123_456_789_000, None, None, "foo", "quote+kts")),
    ("> > [Wed Mar 13 11:16:48 2024] foo", (None, "Wed Mar 13 11:16:48 2024", None, "foo", "quote+ctime")),
    ("# [16969.674115] foo", (16_969_674_115_000, None, None, "foo", "quote+kts")),
    ("[\xa0\xa0123.456789]\xa0foo\xa0bar", (123_456_789_000, None, None, "foo bar", "kts+nbsp")),
    ("[  123.456789] foo\r\n", (123_456_789_000, None, None, "foo", "kts")),
    ("Nov 26 22:48:00 host kernel: foo\r\n", (None, "Nov 26 22:48:00", "host", "foo", "syslog")),
    ("no prefix at all", (None, None, None, "no prefix at all", "")),
    ("    indented, no prefix", (None, None, None, "    indented, no prefix", "")),
]


@pytest.mark.parametrize(("raw", "want"), PREFIXES, ids=[p[0][:40] for p in PREFIXES])
def test_prefix(raw: str, want: tuple[object, ...]) -> None:
    line = one(raw)
    assert (line.ts_ns, line.wall, line.host, line.text, line.rule) == want


def test_other_programs_keep_their_tag() -> None:
    line = one("Jan 25 14:59:34 dhcp-132 systemd[1]: firewalld.service: Main process exited")
    assert (line.text, line.host, line.rule) == ("systemd[1]: firewalld.service: Main process exited", "dhcp-132",
                                                 "syslog-other")
    assert one("2024-11-26T22:48:00+0100 h sshd[5]: Accepted").text == "sshd[5]: Accepted"
    # a program name that is no host name is not OOMAnalyser's "host:" form
    assert one("Jan  5 15:20:01 /usr/bin/lock: called by /bin/bash").rule == "syslog-other"


def test_rsyslog_escapes_split_one_line_into_kernel_lines() -> None:
    raw = ("Oct 22 11:13:11 localhost kernel: active_anon:110175 inactive_anon:110433 isolated_anon:0"
           "#012 active_file:68 inactive_file:2679 isolated_file:0#012 free:12219 free_pcp:83#011x")
    out = list(kernel_log_lines([raw]))
    assert [ln.text for ln in out] == ["active_anon:110175 inactive_anon:110433 isolated_anon:0",
                                       " active_file:68 inactive_file:2679 isolated_file:0",
                                       " free:12219 free_pcp:83\tx"]
    assert all(ln.lineno == 1 and ln.linenos == (1,) and ln.wall == "Oct 22 11:13:11" for ln in out)
    assert all("split:#012" in ln.rule for ln in out)


def test_kmsg_dictionary_lines_are_dropped_and_escapes_split() -> None:
    raw = ["6,339,5140900,-;NET: Registered protocol family 10\n", " SUBSYSTEM=net\n", " DEVICE=+net:lo\n",
           "4,340,5140901,-,caller=T1;a\\x0a b\\\\c\n", "[    5.2] next\n"]
    out = list(kernel_log_lines(raw))
    assert [(ln.text, ln.lineno) for ln in out] == [("NET: Registered protocol family 10", 1), ("a", 4),
                                                    (" b\\c", 4), ("next", 5)]
    assert out[1].ts_ns == 5_140_901_000


def test_journal_json_takes_message_and_monotonic_time() -> None:
    obj = {"MESSAGE": "Out of memory: Killed process 1 (x)", "_SOURCE_MONOTONIC_TIMESTAMP": "123456789",
           "_HOSTNAME": "h", "_TRANSPORT": "kernel", "__REALTIME_TIMESTAMP": "1732657680123456"}
    line = one(json.dumps(obj))
    assert (line.ts_ns, line.text, line.host, line.wall, line.rule) == (
        123_456_789_000, "Out of memory: Killed process 1 (x)", "h", "1732657680123456", "json")
    obj = {"MESSAGE": [104, 105], "__MONOTONIC_TIMESTAMP": "5", "_TRANSPORT": "kernel"}
    assert (one(json.dumps(obj)).text, one(json.dumps(obj)).ts_ns) == ("hi", 5000)
    obj = {"MESSAGE": "Started x.", "SYSLOG_IDENTIFIER": "systemd", "_TRANSPORT": "journal"}
    assert one(json.dumps(obj)).text == "systemd: Started x."


def test_whole_oom_lines_quoted_in_json_are_taken() -> None:
    killed = ("Memory cgroup out of memory: Killed process 3504804 (kubectl) total-vm:753508kB, anon-rss:58776kB,"
              " file-rss:29400kB, shmem-rss:0kB, UID:0 pgtables:288kB oom_score_adj:999")
    line = one(f'    "message": {json.dumps(killed)},')
    assert (line.text, line.rule) == (killed, "json-quoted")
    docker = json.dumps({"log": "[ 12.5] " + killed + "\n", "stream": "stdout"})
    assert (one(docker).text, one(docker).ts_ns) == (killed, 12_500_000_000)
    # a quoted fragment that is no whole OOM line is left as it was
    raw = '    "reason": "OOMKilling: Killed process 1",'
    assert one(raw).text == raw


def test_console_output_glued_before_a_kernel_line() -> None:
    line = one("Creating journal (262144 blocks): [   35.419377] mkfs.ext4 invoked oom-killer: "
               "gfp_mask=0x101cc0(GFP_USER|__GFP_WRITE), order=0, oom_score_adj=0")
    assert line.ts_ns == 35_419_377_000 and line.text.startswith("mkfs.ext4 invoked") and "midline" in line.rule


# --------------------------------------------------------------------------- rejoining

HEADER = "test_memcontrol invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"


def test_mail_wrapped_report_lines_are_rejoined() -> None:
    raw = ["[  270.699078] test_memcontrol invoked oom-killer:\n",
           "gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
           "[  270.699921] CPU: 1 UID: 0 PID: 946 Comm: test_memcontrol Not\n",
           "tainted 6.14.0-rc5-next-20250303 #1\n",
           "[ 270.729527] Memory cgroup out of memory: Killed process 946\n",
           "(test_memcontrol) total-vm:104840kB, anon-rss:30596kB,\n",
           "file-rss:1056kB, shmem-rss:0kB, UID:0 pgtables:104kB oom_score_adj:0\n",
           "# not ok 7 test_memcg_max\n"]
    out = list(kernel_log_lines(raw))
    assert [ln.text for ln in out] == [
        HEADER,
        "CPU: 1 UID: 0 PID: 946 Comm: test_memcontrol Not tainted 6.14.0-rc5-next-20250303 #1",
        "Memory cgroup out of memory: Killed process 946 (test_memcontrol) total-vm:104840kB, anon-rss:30596kB,"
        " file-rss:1056kB, shmem-rss:0kB, UID:0 pgtables:104kB oom_score_adj:0",
        "not ok 7 test_memcg_max"]
    assert [ln.linenos for ln in out] == [(1, 2), (3, 4), (5, 6, 7), (8,)]
    assert [ln.lineno for ln in out] == [1, 3, 5, 8]
    assert out[0].ts_ns == 270_699_078_000
    assert [ln.rule for ln in out[:3]] == ["kts+rejoined:wrapped-header", "kts+rejoined:wrapped-cpu",
                                           "kts+rejoined:wrapped-killed"]


def test_a_wrapped_oom_group_notice_stays_one_line() -> None:
    path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb.slice"
    notice = f"Tasks in {path} are going to be killed due to memory.oom.group set"
    pieces = mail_wrap(f"[  100.000001] {notice}", 72)
    assert len(pieces) == 3  # the path is wider than 72 columns: a line of its own
    raw = [p + "\n" for p in pieces] + [
        "[  100.000002] Memory cgroup out of memory: Killed process 10 (a) total-vm:1kB, anon-rss:1kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0\n"]
    out = list(kernel_log_lines(raw))
    assert len(out) == 2 and out[0].text == notice
    assert out[0].rule == "kts+rejoined:wrapped-oom-group"


def test_a_cut_field_is_marked_truncated() -> None:
    """The paste cut the line at 100 columns and kept its last character: pid=10 is a
    cut pid=116849, not a pid."""
    out = list(kernel_log_lines([
        "[ 1974.205922] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0-1,"
        "oom_memcg=/a,task_memcg=/a,task=alloc_anon,pid=10\n",
        "[ 1974.205929] Memory cgroup out of memory: Killed process 116849\n",
        "(alloc_anon) total-vm:12236kB, anon-rss:6888kB, file-rss:0kB,\n",
        "shmem-rss:0kB,0\n"]))
    assert out[0].rule == "kts+truncated:oom-kill"
    assert out[1].text == ("Memory cgroup out of memory: Killed process 116849 (alloc_anon) total-vm:12236kB,"
                           " anon-rss:6888kB, file-rss:0kB, shmem-rss:0kB,0")
    assert out[1].rule == "kts+rejoined:wrapped-killed+truncated:killed"


def test_no_rejoin_across_a_line_with_its_own_timestamp() -> None:
    raw = ["[   71.713649] dd invoked oom-killer:\n", "[   71.713650] unrelated line\n",
           "gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"]
    out = list(kernel_log_lines(raw))
    assert [ln.text for ln in out] == ["dd invoked oom-killer:", "unrelated line",
                                       "gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"]
    assert out[0].rule == "kts+truncated:header"


def test_a_whole_line_is_never_glued_to_the_one_before() -> None:
    """Two prefix-less lines: the first is cut short (a human elided it), the second is a
    whole Killed line of its own."""
    raw = ["Out of memory: Killed process 13432 (mem_on_node1) total-vm:1kB, anon-rss:1kB,\n",
           "Out of memory: Killed process 2614 (mem_on_node0) total-vm:1kB, anon-rss:1kB, file-rss:1kB\n"]
    assert len(list(kernel_log_lines(raw))) == 2


def test_a_short_line_is_not_taken_for_a_wrapped_one() -> None:
    raw = ["[ 1.0] mem_on_node0 invoked oom-killer:\n", "gfp_mask=0xcc0, order=0, oom_score_adj=0\n"]
    assert len(list(kernel_log_lines(raw))) == 2  # 38 columns + 8: no mail client wraps there


def test_kernel_continuation_lines_stay_lines() -> None:
    """The kernel's own indented Mem-Info continuation lines are not wraps."""
    raw = ["    [76578.062340] active_anon:63 inactive_anon:49016768 isolated_anon:0\n",
           "                    active_file:253 inactive_file:117 isolated_file:0\n",
           "                    unevictable:4871 dirty:4 writeback:0\n"]
    assert len(list(kernel_log_lines(raw))) == 3


def test_wrapped_task_rows_use_the_header_columns() -> None:
    raw = ["[  951.819043] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes\n",
           "swapents oom_score_adj name\n",
           "[  951.820291] [    204]     0   204     3450      354    28672\n",
           "0             0 systemd-journal\n",
           "[  951.820292] [    205]     0   205     3450      354    28672        0             0 sh\n"]
    out = list(kernel_log_lines(raw))
    assert [ln.text for ln in out] == [
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        "[    204]     0   204     3450      354    28672 0             0 systemd-journal",
        "[    205]     0   205     3450      354    28672        0             0 sh"]
    assert out[1].rule == "kts+rejoined:wrapped-task-row"


def test_a_prefix_alone_takes_the_long_line_below() -> None:
    raw = ["<6>[76541.326729] \n",
           "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
           "task_memcg=/user.slice,task=cc1plus,pid=33365,uid=1000\n"]
    out = list(kernel_log_lines(raw))
    assert len(out) == 1 and out[0].text.startswith("oom-kill:") and out[0].ts_ns == 76_541_326_729_000
    assert out[0].rule == "lvl+kts+rejoined:prefix-only"


def test_quoted_wraps_need_the_same_quote_depth() -> None:
    raw = ["> > [Wed Mar 13 11:16:48 2024] memory+swap: usage 1048556kB, limit\n", ">\n",
           "> I see you were on cgroup v1\n", "> > 9007199254740988kB, failcnt 0\n"]
    out = list(kernel_log_lines(raw))
    assert out[0].text == "memory+swap: usage 1048556kB, limit"
    raw = ["> > [Wed Mar 13 11:16:48 2024] kmem: usage 200kB, limit\n", "> > 9007199254740988kB, failcnt 0\n"]
    assert one_of(raw).text == "kmem: usage 200kB, limit 9007199254740988kB, failcnt 0"


def one_of(raw: list[str]) -> LogLine:
    out = list(kernel_log_lines(raw))
    assert len(out) == 1, out
    return out[0]


def test_mem_info_wraps_and_pager_cuts() -> None:
    raw = ["Jan 25 14:59:30 dhcp-132.rmrf.net kernel: Node 0 DMA free:15908kB\n",
           "min:64kB low:80kB high:96kB active_anon:0kB inactive_anon:0kB\n",
           "active_file:0kB inactive_file:0kB unevictabl>\n"]
    line = one_of(raw)
    assert line.text.endswith("inactive_file:0kB unevictabl>")
    assert line.rule == "syslog+rejoined:wrapped-meminfo-zone+truncated:pager"
    raw = ["Feb 24 20:42:52 localhost kernel: DMA: 1*4kB 0*8kB 0*16kB 0*32kB 0*64kB \n",
           "0*128kB 0*256kB 0*512kB 1*1024kB 1*2048kB 0*4096kB = 3076kB\n"]
    assert one_of(raw).rule == "syslog+rejoined:wrapped-buddy"


def test_inline_quote_marker_inside_a_line_is_removed() -> None:
    raw = ("# [16969.674949] Out of memory: Killed process 6311 (cpptools) total-vm:1993888kB, anon-rss:1926092kB,"
           " file-rss:16852kB, shmem-# rss:0kB, UID:1000 pgtables:3992kB oom_score_adj:0")
    line = one(raw)
    assert "shmem-rss:0kB" in line.text and line.rule == "quote+kts+rejoined:inline-quote"


def test_the_double_wrap_terminal_then_mail() -> None:
    """A terminal cut the line at its width (inside a word), then a mail client wrapped
    the first part again (053)."""
    raw = ["[   56.419663] Memory cgroup out of memory: Killed process 1122 (stress) \n",
           "total-vm:719740kB, anon-rss:522880kB, file-rss\n",
           ":536kB, shmem-rss:0kB, UID:0 pgtables:1072kB oom_score_adj:0\n"]
    assert one_of(raw).text == ("Memory cgroup out of memory: Killed process 1122 (stress) total-vm:719740kB,"
                                " anon-rss:522880kB, file-rss:536kB, shmem-rss:0kB, UID:0 pgtables:1072kB"
                                " oom_score_adj:0")


# --------------------------------------------------------------------------- the corpus


def _flat(raw: str) -> str:
    """The raw file with line breaks, quote markers and common prefixes squeezed out, to
    tell whether a fact is in it at all."""
    text = raw.replace("\xa0", " ")
    text = re.sub(r"\n(?:[>#] ?)*", " ", text)
    text = re.sub(r"\[\s*\d+\.\d+\]", " ", text)
    return re.sub(r"\s+", " ", text)


def corpus_facts() -> list[tuple[str, str, str, str]]:
    """(file, report label, fact, regex) for each fact of index.json the raw file holds:
    the Killed line of the victim, the header of the trigger, its CPU/Pid line."""
    out = []
    for entry in INDEX:
        flat = _flat((CORPUS / entry["file"]).read_text(encoding="utf-8", errors="replace"))
        for i, rep in enumerate(entry["reports"], 1):
            label = f"{entry['file'][:60]} #{i}"
            vpid, vcomm = rep.get("victim_pid"), rep.get("victim_comm")
            if vpid is not None and vcomm is not None and re.search(rf"Killed\s+process\s+{vpid}\b", flat):
                out.append((entry["file"], label, "killed",
                            rf"^(?:[^:]{{1,80}}: )?Killed process {vpid}(?:, UID \d+,)? \({re.escape(vcomm)}\)"))
            tcomm, tpid, gfp = rep.get("trigger_comm"), rep.get("trigger_pid"), rep.get("gfp_mask")
            if tcomm is not None and re.search(re.escape(tcomm) + r" invoked oom-killer: gfp_mask=", flat):
                out.append((entry["file"], label, "header", rf"^{re.escape(tcomm)} invoked oom-killer: gfp_mask=0x"))
            elif tcomm is None and gfp and re.search(r"(?<!invoked )oom-killer: gfp_mask=" + gfp, flat):
                out.append((entry["file"], label, "header", r"^oom-killer: gfp_mask=" + gfp))
            if tpid is not None and re.search(rf"(?:PID: {tpid} Comm:|Pid: {tpid}, comm:)", flat):
                out.append((entry["file"], label, "cpu",
                            rf"^(?:CPU: \d+ (?:UID: \d+ )?PID: {tpid} Comm: |Pid: {tpid}, comm: )"))
    return out


FACTS = corpus_facts()


@pytest.mark.parametrize(("name", "label", "fact", "pattern"), FACTS, ids=[f"{f[1]}-{f[2]}" for f in FACTS])
def test_corpus_report_line_comes_out_whole(name: str, label: str, fact: str, pattern: str) -> None:
    """For each indexed report: the Killed line with the victim's pid and comm, the header
    with the trigger's comm, the CPU/Pid line with its pid, each on one LogLine."""
    out = texts(read(CORPUS / name))
    assert any(re.search(pattern, t) for t in out), (label, fact)


def test_every_corpus_file_is_read() -> None:
    for path in sorted(CORPUS.glob("*.log")):
        out = read(path)
        assert out, path.name
        # every raw line is accounted for, in order
        seen = [n for ln in out for n in ln.linenos]
        assert seen == sorted(seen), path.name


def test_corpus_victim_lines_are_complete_or_marked() -> None:
    """Every Killed line that comes out either completes its shape or says why not."""
    for path in sorted(CORPUS.glob("*.log")):
        for ln in read(path):
            t = ln.text.strip()
            if re.match(r"(?:[^:]{1,80}: )?Killed process \d", t) and ln.rule != "json-quoted":
                assert shapes.complete(t, shapes.ReaderState()) == "killed" or "truncated:killed" in ln.rule, (
                    path.name, t)


OOMA_FILES = sorted(OOMA.glob("*.log")) + sorted((OOMA / "variants").glob("*.log")) if OOMA.is_dir() else []
OOMA_PREFIXES = ("Apr 01 14:13:32 mysrv <kern.warning> kernel:", "Apr 01 14:13:32 mysrv kernel: [11686.888109] ",
                 "Apr 01 14:13:32 mysrv kernel: ", "Apr 01 14:13:32 mysrv: ", "[11686.888109] ", "kernel:",
                 "[1234567.654321] ", "[Di Aug 12 03:54:03 2025] ")


@pytest.mark.skipif(not OOMA_FILES, reason="OOMAnalyser's examples are not at hand (MEMTRACE_OOMANALYSER)")
@pytest.mark.parametrize("path", OOMA_FILES, ids=[p.name for p in OOMA_FILES])
def test_oomanalyser_example_lines_come_out_exact(path: pathlib.Path) -> None:
    """Each header, CPU and Killed line of OOMAnalyser's examples and the prefix variants
    its tests build, exactly as the example prints it."""
    want = []
    for raw in path.read_text().split("\n"):
        if re.search(r"invoked oom-killer|CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm:|Killed process", raw):
            for p in OOMA_PREFIXES:
                if raw.startswith(p):
                    raw = raw[len(p):]
                    break
            want.append(raw.strip())
    got = set(texts(read(path)))
    assert want and all(w in got for w in want), [w for w in want if w not in got]


# --------------------------------------------------------------------------- fast path = slow path


def slow(raw: str) -> list[LogLine]:
    """One raw line read by the general path only (no fast path, no rejoining)."""
    state = shapes.ReaderState()
    return [rejoin.finish(r, state) for r in lines._records(raw, 1, state)]


_FILLER = ("usb 1-1: new high-speed USB device number {n} using xhci_hcd",
           "EXT4-fs (sda{d}): mounted filesystem with ordered data mode. Quota mode: none.",
           "systemd[1]: Started Session {n} of User root.", "sshd[{n}]: Accepted publickey for deploy")


def filler(n: int) -> list[str]:
    """Unrelated lines in every common prefix (the benchmark's mix, smaller)."""
    rng = random.Random(1)
    out = []
    for i in range(n):
        msg = rng.choice(_FILLER).format(n=rng.randrange(99999), d=rng.randrange(10))
        ts = 1000 + i / 100
        out.append(rng.choice((f"[{ts:12.6f}] {msg}\n", f"Nov 26 22:48:{i % 60:02d} web-01 kernel: [{ts:12.6f}] {msg}\n",
                               f"Nov 26 22:48:{i % 60:02d} web-01 kernel: {msg}\n",
                               f"2024-11-26T22:48:{i % 60:02d}+0100 web-01 kernel: {msg}\n",
                               f"[Tue Nov 26 22:48:{i % 60:02d} 2024] {msg}\n",
                               f"[{ts:12.6f}][ T{i}] {msg}\n")))
    return out


def sample_raw_lines() -> list[str]:
    out = filler(3000)
    for path in sorted(CORPUS.glob("*.log")) + OOMA_FILES:
        out += path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    out += [p[0] for p in PREFIXES]
    return out


def test_the_fast_path_reads_lines_as_the_general_path_does() -> None:
    for raw in sample_raw_lines():
        assert list(kernel_log_lines([raw])) == slow(raw), raw


# --------------------------------------------------------------------------- properties


def quote_of(line: str) -> str:
    """The mail quote markers ``line`` starts with ("" if none)."""
    m = re.match(r"(?:> ?)*", line)
    return m.group() if m else ""


def mail_wrap(line: str, width: int) -> list[str]:
    """Wrap as a mail client does: break at the last space that keeps the piece within
    ``width`` (the space is dropped); a word wider than ``width`` stays whole; a quoted
    line's pieces are quoted again."""
    quote = quote_of(line)
    if quote:
        return [quote + piece for piece in mail_wrap(line[len(quote):], width - len(quote))]
    out = []
    while len(line) > width:
        cut = line.rfind(" ", 1, width + 1)
        while cut > 0 and line[cut - 1] == " ":  # break before a run of spaces, not inside it
            cut -= 1
        if cut <= 0:
            cut = line.find(" ", width)
            if cut < 0:
                break
        out.append(line[:cut])
        line = line[cut + 1:]
    out.append(line)
    return out


def hard_wrap(line: str, width: int) -> list[str]:
    """Cut as a terminal does when a long line is copied: every ``width`` characters (a
    quoted line was cut before it was quoted)."""
    quote = quote_of(line)
    line = line[len(quote):]
    return [quote + line[i:i + width] for i in range(0, len(line), width)] or [quote]


# Whole files the corpus holds unwrapped: their lines wrap freshly without doubt.
UNWRAPPED = [CORPUS / e["file"] for e in INDEX
             if not e["wrapped"] and not re.search(r"wrapped|truncated|cut|split|quoted|json|#012|abbrev|hash",
                                                   e["file"])]


def shape_lines(out: list[LogLine]) -> list[str]:
    """The texts that complete a shape or are Mem-Info key:value lines, whitespace squeezed."""
    state = shapes.ReaderState()
    got = []
    for ln in out:
        t = ln.text.strip()
        if shapes.SHAPES["task-header"].fullmatch(t):
            shapes.set_row_layout(t, state)
        if shapes.complete(t, state) is not None or shapes.kv_family(t) in ("node", "zone"):
            got.append(" ".join(t.split()))
    return got


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(UNWRAPPED), width=st.integers(60, 80))
def test_reports_rewrapped_by_a_mail_client_rejoin(path: pathlib.Path, width: int) -> None:
    """Every shape line of a report wrapped at 60..80 columns comes back whole, and no
    LogLine is made of pieces of two different raw lines."""
    raw = path.read_text(encoding="utf-8", errors="replace").split("\n")
    wrapped, origin = [], []
    for i, line in enumerate(raw):
        for piece in mail_wrap(line, width):
            wrapped.append(piece + "\n")
            origin.append(i)
    before = shape_lines(list(kernel_log_lines(ln + "\n" for ln in raw)))
    out = list(kernel_log_lines(wrapped))
    for ln in out:
        assert len({origin[n - 1] for n in ln.linenos}) == 1, ln
    after = shape_lines(out)
    missing = [t for t in before if t not in after]
    assert not missing, (path.name, width, missing[:3])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(UNWRAPPED), width=st.integers(80, 200))
def test_reports_hard_wrapped_by_a_terminal_rejoin(path: pathlib.Path, width: int) -> None:
    raw = path.read_text(encoding="utf-8", errors="replace").split("\n")
    wrapped, origin = [], []
    for i, line in enumerate(raw):
        for piece in hard_wrap(line, width):
            wrapped.append(piece + "\n")
            origin.append(i)
    before = shape_lines(list(kernel_log_lines(ln + "\n" for ln in raw)))
    out = list(kernel_log_lines(wrapped))
    for ln in out:
        assert len({origin[n - 1] for n in ln.linenos}) == 1, ln
    after = shape_lines(out)
    missing = [t for t in before if t not in after]
    assert not missing, (path.name, width, missing[:3])


def kmsg_escape(text: str) -> str:
    return text.replace("\\", "\\x5c")


def kts(us: int) -> str:
    """A dmesg timestamp ``[12345.678901]`` of ``us`` microseconds."""
    return f"[{us // 10**6:5d}.{us % 10**6:06d}]"


# Prefix makers: (text, kernel ts in us) -> raw line.
PREFIX_MAKERS = [
    lambda t, us: f"{kts(us)} {t}",
    lambda t, us: f"Nov 26 22:48:00 web-01 kernel: {t}",
    lambda t, us: f"Nov 26 22:48:00 web-01 kernel: {kts(us)} {t}",
    lambda t, us: f"Nov  6 22:48:00 kernel: {kts(us)} {t}",
    lambda t, us: f"Apr 01 14:13:32 mysrv: {t}",
    lambda t, us: f"Apr 01 14:13:32 mysrv <kern.warning> kernel: {t}",
    lambda t, us: f"kernel: {t}",
    lambda t, us: f"<4>{kts(us)} {t}",
    lambda t, us: f"kern  :warn  : {kts(us)} {t}",
    lambda t, us: f"6,{us % 977},{us},-;{kmsg_escape(t)}",
    lambda t, us: f"4,{us % 977},{us},-,caller=T12845;{kmsg_escape(t)}",
    lambda t, us: f"[Di Aug 12 03:54:03 2025] {t}",
    lambda t, us: f"{kts(us)}[ T123] {t}",
    lambda t, us: f"2024-11-26T22:48:00+0100 web-01 kernel: {t}",
    lambda t, us: f"Nov 03 08:06:47.252691 localhost kernel: {t}",
    lambda t, us: f"{kts(us)} web-01 kernel: {t}",
    lambda t, us: f"> {kts(us)} {t}",
    lambda t, us: f"\t{kts(us)} {t}",
    lambda t, us: f"{kts(us)} {t}\r",
    lambda t, us: f"{kts(us)} {t.replace(' ', chr(0xA0))}",
]
REPORT = [ln.text for path in (CORPUS / "025-riscv64-5.4-opensuse-global.log",
                               CORPUS / "032-cgroups-5.15-memcg-then-panic_on_oom-attachment.log")
          for ln in read(path) if "kts" in ln.rule and ln.text.strip() and "#0" not in ln.text]


@settings(max_examples=50, deadline=None)
@given(choice=st.lists(st.integers(0, len(PREFIX_MAKERS) - 1), min_size=len(REPORT), max_size=len(REPORT)))
def test_prefixes_shuffled_between_the_lines_of_a_report(choice: list[int]) -> None:
    raw = [PREFIX_MAKERS[c](t, 1_000_000 + i) + "\n" for i, (c, t) in enumerate(zip(choice, REPORT))]
    out = list(kernel_log_lines(raw))
    assert [ln.text.strip() for ln in out] == [t.strip() for t in REPORT]
    assert [ln.lineno for ln in out] == list(range(1, len(REPORT) + 1))
    # the kernel's time wherever a prefix carries it, in order
    stamped = [ln.ts_ns for ln in out if ln.ts_ns is not None]
    assert stamped == sorted(stamped)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=30))
def test_garbage_text_never_breaks_the_reader(raw: list[str]) -> None:
    out = list(kernel_log_lines(raw))
    seen = [n for ln in out for n in ln.linenos]
    assert seen == sorted(seen) and all(1 <= n <= len(raw) for n in seen)
    assert all(isinstance(ln.text, str) for ln in out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200).map(lambda b: b.decode("latin-1")), max_size=30))
def test_binary_never_breaks_the_reader(raw: list[str]) -> None:
    list(kernel_log_lines(raw))


FRAGMENTS = ["[  12.345678] ", "Nov 26 22:48:00 h kernel: ", "kernel:", "<4>", "6,1,2,-;", "> ", "# ", "\t", "#012",
             "\\x0a", "\xa0", "Killed process 1 (a)", " total-vm:1kB,", "invoked oom-killer:", " gfp_mask=0x0,",
             "oom-kill:constraint=", "CPU: 1 PID: 2 Comm: x", "[  pid  ]   uid  tgid total_vm      rss", "[ 42]",
             " 0", "active_anon:1", "Node 0 DMA free:1kB", "1*4kB", " = 4kB", '{"MESSAGE":"x"}', '"Killed process',
             "Tasks in /x are going to be", "killed due to memory.oom.group set", " ", "(", ")", ":", "\r", ">"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join), max_size=40))
def test_kernel_looking_garbage_never_breaks_the_reader(raw: list[str]) -> None:
    out = list(kernel_log_lines(raw))
    seen = [n for ln in out for n in ln.linenos]
    assert seen == sorted(seen)


@pytest.mark.parametrize("line", [
    "x" * 1_000_000,
    "[" * 1_000_000,
    "[  12.345678] " + "Killed process 1 (" * 50_000,
    "Nov 26 22:48:00 " + "h" * 1_000_000 + " kernel: x",
    '{"MESSAGE": "' + "a" * 1_000_000 + '"}',
    '"' + "Killed process 1 (x) " * 50_000 + '"',
    "oom-kill:constraint=" + ",task=" * 150_000,
    "[  1.0] " + "a " * 500_000,
])
def test_huge_lines(line: str) -> None:
    """1 MB lines, alone and wrapped into the lines around them, are read (a line this
    long is never checked against a shape nor joined)."""
    out = list(kernel_log_lines(["[ 1.0] x " * 9 + "\n", line + "\n", line[:80] + "\n", "tail\n"]))
    assert sum(len(ln.linenos) for ln in out) <= 4


def test_the_reader_holds_a_bounded_window() -> None:
    """It yields while reading: an endless input of wrap-like pieces still flows."""
    endless = itertools.cycle(["[ 1.0] Out of memory: Killed process 1\n", "(a) total-vm:1kB,\n",
                               "anon-rss:1kB, file-rss:1kB\n", "no prefix at all " * 5 + "\n"])
    assert len(list(itertools.islice(kernel_log_lines(endless), 1000))) == 1000
    endless = itertools.repeat("no prefix here, a word and another word and more words, wider than sixty\n")
    assert len(list(itertools.islice(kernel_log_lines(endless), 1000))) == 1000


@pytest.mark.parametrize(("raw", "caller"), [
    ("[71073.562094] [T13546] oom-kill:constraint=CONSTRAINT_NONE", "T13546"),
    ("[  123.456789][  C1] foo", "C1"),
    ("[ T123] foo", "T123"),
    ("4,19685342,241227987454,-,caller=T12845;dumpsys x", "T12845"),
    ("Nov 26 22:48:00 web-01 kernel: [ 12.5] [T7] foo", "T7"),
    ("[Di Aug 12 03:54:03 2025] [T9] foo", "T9"),
    ("[  123.456789] foo", None),
])
def test_the_printk_caller_id_is_kept(raw: str, caller: str | None) -> None:
    """CONFIG_PRINTK_CALLER's id names the task that printed the line (T) or the CPU (C)."""
    assert one(raw).caller == caller


# --------------------------------------------------------------------------- block path = line path


def bench_journal(nr_lines: int) -> list[str]:
    """The raw lines (no newlines) of bench/bench_kernlog.py's journal, ``nr_lines`` of
    filler and its 100 corpus reports."""
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "bench"))
    try:
        from bench_kernlog import build_journal
    finally:
        sys.path.pop(0)
    journal, _reports = build_journal(nr_lines)
    return [raw[:-1] for raw in journal]


def read_gated(raw: list[str], active: list[bool], cuts: list[int] | None) -> tuple[list[LogLine], int, int]:
    """The LogLines, ``skipped`` and ``lines`` of raw lines (no newlines) read by the
    line path (``cuts`` None) or by the block path (the text cut into blocks after
    those line counts), with the OOM parser's gate; its consumer sets ``active`` from
    ``active``, in turn (from before the first line)."""
    gate = lines.Gate(parse._WANTED_STARTS, parse._WANTED_ANYWHERE)
    gate.active = active[0]
    if cuts is None:
        reader = kernel_log_lines(raw, gate)
    else:
        edges = [0, *sorted(min(c, len(raw)) for c in cuts), len(raw)]
        reader = lines.kernel_log_blocks(["".join(r + "\n" for r in raw[a:b]) for a, b in itertools.pairwise(edges)],
                                         gate)
    out = []
    for i, ln in enumerate(reader, 1):
        out.append(ln)
        gate.active = active[i % len(active)]
    return out, gate.skipped, gate.lines


def test_the_block_path_reads_the_bench_journal_as_the_line_path_does(tmp_path: pathlib.Path) -> None:
    """The benchmark's mix (with its 100 corpus reports), read in 1 MB blocks as
    ``parse_oom_log`` reads a file, and line by line: the same reports, counts and
    LogLines, with the gate driven by the OOM parser or toggled at every line."""
    raw = bench_journal(30_000)
    path = tmp_path / "journal.log"
    path.write_text("".join(r + "\n" for r in raw))
    by_blocks = parse.parse_oom_log(path)
    by_lines = parse.parse_oom_lines(raw, str(path))
    assert by_blocks == by_lines
    assert by_blocks.lines == len(raw) and by_blocks.reports and by_blocks.unknown_lines > len(raw) * 0.7
    for active in ([True], [True, True, False], [False, True]):
        want = read_gated(raw, active, None)
        assert want[1] > 0  # lines were skipped: the block path had runs to take
        assert read_gated(raw, active, [len(raw) // 3, len(raw) // 2]) == want


# Lines that end a run or test its edges: every common-path prefix with texts the gate
# wants (by start, by content) or not, texts starting with spaces or brackets, NBSP,
# rsyslog escapes, CRs, journalctl short-monotonic, printk caller ids, non-ASCII digits,
# over-long fields, other programs (one named "kernel"), and lines of no prefix.
EDGE_TEXTS = ["usb 1-1: new device", "Memory cgroup stats for /x:", "memory: usage 1kB, limit 2kB, failcnt 3",
              "a invoked oom-killer: gfp_mask=0x0", "Out of memory: Killed process 1 (a)", "x OOM victim 1 (a)",
              "  indented text", "\tTabbed", "[ T12] caller id", "[  pid  ]   uid  tgid total_vm", "", " ", "#012x",
              "a # b", "non\xa0breaking", "CPU: 1 PID: 2 Comm: x", "oom_reaper: reaped process 1 (a)",
              "page allocation failure: order:0", "== KASAN", "[Tue Nov 26 22:48:00 2024] late ctime", "ü x",
              "web-01 kernel: monotonic", "ordinary text with oom in it"]
EDGE_LINES = [maker(t, 1_000_000 + i) for i, t in enumerate(EDGE_TEXTS) for maker in PREFIX_MAKERS] + [
    "[  \u0661\u0662.\u0663\u0664\u0665] arabic digits", "[1234567890123.123456] thirteen digits", "[  1.0]",
    "[  1.0] ", "[  1.0]  two spaces", "[  1.0][ T1] host kernel: x", "[  1.0] host kernel[5]: x",
    "Nov 26 22:48:00 host kernel[5]: x", "Nov 26 22:48:00 host kernel[5]:Memory cgroup x",
    "Nov 26 22:48:00 host kernel: [  1.0] x", "Nov 26 22:48:00 host kernel: [  1.0][ T1] x",
    "Nov 26 22:48:00 host kernel: [Tue Nov 26 22:48:00 2024] x", "Nov 26 22:48:00 host systemd[1]: Memory cgroup",
    "Nov 26 22:48:00 host kernel[1]: Memory cgroup", "Nov 26 22:48:00 host sshd[1]: #012 \xa0",
    "Nov 26 22:48:00 " + "h" * 129 + " kernel: x", "2024-11-26T22:48:00Z host kernel: x",
    "2024-11-26T22:48:00,5-01:00 host kernel: x", "2024-11-26T22:48:00+01 host kernel: x",
    "\u0662024-11-26T22:48:00Z host kernel: x", "6,1,2,-;kmsg x", " SUBSYSTEM=usb", "6,3,4,-;a\\x0ab",
    "no prefix, a continuation", "(a) total-vm:1kB, anon-rss:1kB, file-rss:0kB", "[  1.0] x\r", "x\ry"]


def test_each_edge_line_inside_runs_is_read_as_the_line_path_does() -> None:
    """Every edge line alone, twice, and before another one, at the start, in the middle
    and at the end of runs of filler (every common prefix), with the gate always active
    or off after every other yielded line: the same LogLines and counts both ways."""
    fill = [ln.rstrip("\n") for ln in filler(6)]
    for i, edge in enumerate(EDGE_LINES):
        for middle in ([edge], [edge, edge], [edge, EDGE_LINES[(i * 37 + 1) % len(EDGE_LINES)]]):
            for raw in (middle + fill, fill + middle + fill, fill + middle):
                for active in ([True], [True, False]):
                    for cuts in ([], [len(fill) + 1]):
                        assert read_gated(raw, active, cuts) == read_gated(raw, active, None), (raw, active, cuts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, 10**9), min_size=1, max_size=150),
       active=st.lists(st.booleans(), min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 150), max_size=4))
def test_the_block_path_reads_mixed_logs_as_the_line_path_does(picks: list[int], active: list[bool],
                                                               cuts: list[int]) -> None:
    """Random logs of the bench journal's lines (filler and corpus reports), the edge
    lines above and garbage fragments, cut into blocks anywhere, with the gate toggled
    by the consumer at random: the same LogLines, ``skipped`` and ``lines`` both ways."""
    pool = mixed_pool()
    raw = []
    for p in picks:
        if p % 4 == 0:  # a stretch of the journal, as it comes
            start = p // 4 % len(pool[0])
            raw += pool[0][start:start + 1 + p // 7 % 40]
        else:
            group = pool[1 + p % 3]
            raw.append(group[p // 4 % len(group)])
    assert read_gated(raw, active, cuts) == read_gated(raw, active, None)


@functools.cache
def mixed_pool() -> tuple[list[str], ...]:
    """The lines :func:`test_the_block_path_reads_mixed_logs_as_the_line_path_does` picks
    from: the bench journal (taken in stretches), the edge lines, garbage fragments and
    the filler of every common prefix."""
    return (bench_journal(20_000), EDGE_LINES,
            ["".join(FRAGMENTS[(i * 7 + j * 3) % len(FRAGMENTS)] for j in range(i % 5)) for i in range(200)],
            [ln.rstrip("\n") for ln in filler(50)])
