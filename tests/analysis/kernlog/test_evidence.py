"""Every fact of a log's report with how it was read; a fact stated twice, both readings.

Ground truth: report lines written here with the printf formats of
``../shared/reference/kernel-mm-facts.md`` §3 (and the real forms of the corpus:
RHEL6/RHEL7 UID kill lines, 2.6.11's comm-less header, 5.2's CONSTRAINT_NONE memcg
summary), and the reports of tests/data/oomlogs where a form only occurs in a real log.
"""

from __future__ import annotations

from pathlib import Path

from memtrace.analysis.kernlog import oom_report_from_parsed, parse_oom_lines, report_from_log
from memtrace.analysis.kernlog.evidence import Source, Statement, resolve
from memtrace.analysis.report.model import OomKillReport

CORPUS = Path(__file__).resolve().parents[2] / "data" / "oomlogs"


def stamp(lines: list[str], t0: float = 1000.0) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        us = round(t0 * 1e6) + i
        out.append("[%5d.%06d] %s" % (us // 1_000_000, us % 1_000_000, line))
    return out


def kill(lines: list[str], i: int = 0) -> OomKillReport:
    return oom_report_from_parsed(parse_oom_lines(lines).reports).kills[i]


def corpus(name: str, i: int = 0) -> OomKillReport:
    return report_from_log(next(CORPUS.glob(name + "*"))).kills[i]


# --------------------------------------------------------------------------- resolve


def test_the_strongest_trusted_statement_wins_and_the_others_are_kept() -> None:
    a = Statement("CONSTRAINT_NONE", Source((5,), "summary"), 80)
    b = Statement("CONSTRAINT_MEMCG", Source((6,), "message"), 90)
    c = Statement("CONSTRAINT_MEMCG", Source((3,), "usage line"), 85)
    r = resolve([a, b, c])
    assert r.value == "CONSTRAINT_MEMCG"
    assert r.support == (b, c) and r.conflicts == (a,)


def test_a_statement_cut_by_the_paste_is_never_chosen() -> None:
    cut = Statement((10, "x"), Source((1,), "pid at the cut end"), 5, trusted=False)
    assert resolve([cut]).value is None and resolve([cut]).conflicts == (cut,)
    whole = Statement((116849, "x"), Source((2,), "Killed line"), 100)
    assert resolve([cut, whole]).value == (116849, "x")
    assert resolve(None).value is None


# --------------------------------------------------------------------------- constraint


HEADER = "stress invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0"
CPU = "CPU: 1 PID: 210 Comm: stress Not tainted 5.2.0-rc2-mm1+ #14"


def test_a_memcg_oom_whose_summary_says_none_is_memcg_and_says_both() -> None:
    """5.2 printed CONSTRAINT_NONE for a memcg OOM (045): the kill message, oom_memcg=
    and the usage line say memcg; the report gives memcg and shows the summary's reading."""
    k = kill(stamp([
        HEADER, CPU, "memory: usage 1024kB, limit 1024kB, failcnt 1",
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/foo,"
        "task_memcg=/foo,task=stress,pid=210,uid=0",
        "Memory cgroup out of memory: Killed process 210 (stress) total-vm:265768kB, anon-rss:0kB, "
        "file-rss:224kB, shmem-rss:0kB"]))
    assert k.constraint == "CONSTRAINT_MEMCG" and k.memcg == "/foo"
    assert k.log is not None
    fact = k.log.facts["constraint"]
    assert fact.value == "CONSTRAINT_MEMCG"
    assert [c.value for c in fact.conflicts] == ["CONSTRAINT_NONE"] and fact.conflicts[0].lines == (4,)
    assert {e.lines for e in fact.evidence} == {(3,), (4,), (5,)}
    assert any("CONSTRAINT_NONE" in s and "line 4" in s for s in k.explanation)


def test_the_real_5_2_report_and_a_patched_constraint_name() -> None:
    k = corpus("045")
    assert k.constraint == "CONSTRAINT_MEMCG"
    assert k.log is not None and [c.value for c in k.log.facts["constraint"].conflicts] == ["CONSTRAINT_NONE"]
    k = corpus("021")  # CONSTRAINT_BPF_PSI_MEM: no kernel of the read trees prints it
    assert k.constraint == "CONSTRAINT_MEMCG"
    assert k.log is not None
    [odd] = k.log.facts["constraint"].conflicts
    assert odd.value == "CONSTRAINT_BPF_PSI_MEM" and "patched kernel" in odd.note


def test_task_in_limit_of_and_the_header_nodemask() -> None:
    """Before 4.19 a memcg OOM prints 'Task in X killed as a result of limit of Y'. A
    4.x header's nodemask is the allocation's, which cpusets fill in for any allocation:
    no evidence of a constraint (the 5.x summary's nodemask is, and says it)."""
    k = kill(stamp(["java invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0",
                    "Task in /kubepods/pod1/c1 killed as a result of limit of /kubepods/pod1",
                    "Memory cgroup out of memory: Kill process 24 (java) score 990 or sacrifice child",
                    "Killed process 24 (java) total-vm:100kB, anon-rss:80kB, file-rss:4kB"]))
    assert (k.constraint, k.memcg) == ("CONSTRAINT_MEMCG", "/kubepods/pod1")
    k = kill(stamp(["a.out invoked oom-killer: gfp_mask=0x6280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=1, "
                    "order=0, oom_score_adj=0",
                    "Out of memory: Kill process 13135 (a.out) score 900 or sacrifice child",
                    "Killed process 13135 (a.out) total-vm:10kB, anon-rss:8kB, file-rss:0kB, shmem-rss:0kB"]))
    assert k.constraint == "CONSTRAINT_NONE"
    k = corpus("031")  # oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1,...
    assert k.constraint == "CONSTRAINT_MEMORY_POLICY"


def test_no_constraint_printed_means_global() -> None:
    k = kill(stamp([HEADER, "Out of memory: Killed process 1 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"]))
    assert k.constraint == "CONSTRAINT_NONE"
    assert k.log is not None and "global OOM" in k.log.facts["constraint"].evidence[0].rule


# --------------------------------------------------------------------------- victim, chosen, trigger


def test_a_pid_cut_by_the_paste_loses_to_the_killed_line() -> None:
    """054: the oom-kill line cut at column 100 kept 'pid=10' of pid=116849."""
    k = corpus("054")
    assert (k.victim.pid, k.victim.comm) == (116849, "alloc_anon")
    assert k.log is not None
    chosen = k.log.facts["chosen"]
    assert chosen.value is None
    assert chosen.conflicts[0].value == {"pid": 10, "comm": "alloc_anon"} and "cut" in chosen.conflicts[0].note


def test_kill_process_names_the_chosen_killed_process_the_victim() -> None:
    """Before 5.x the kernel may choose a task and kill its child ("sacrifice child")."""
    k = corpus("034")  # 2.6.26: kill process 4788 (sshd) score 11194 or a child; Killed process 4789 (bash)
    assert (k.victim.pid, k.victim.comm) == (4789, "bash")
    assert k.log is not None and k.log.chosen is not None
    assert (k.log.chosen.pid, k.log.chosen.comm, k.log.chosen_score) == (4788, "sshd", 11194)
    assert k.trigger is not None and (k.trigger.pid, k.trigger.comm) == (1, "init")


def test_a_report_cut_after_its_summary_names_the_chosen_not_a_victim() -> None:
    k = corpus("023")  # dmesg -T, quoted, ends at the oom-kill line
    assert k.victim.pid is None and k.log is not None and k.log.chosen is not None
    assert (k.log.chosen.pid, k.log.chosen.comm) == (6911, "dd")


def test_rhel_uid_forms_and_the_2_6_11_lines() -> None:
    k = kill(stamp(["Out of memory: Kill process 13550 (java) score 416 or sacrifice child",
                    "Killed process 13550, UID 500, (java) total-vm:12466024kB, anon-rss:7625016kB, file-rss:2608kB"]))
    assert (k.victim.pid, k.victim.comm, k.extra["killed"]["uid"]) == (13550, "java", 500)
    assert k.extra["killed"]["anon_rss_kb"] == 7625016
    k = kill(stamp(["Memory cgroup out of memory: Kill process 9 (mysqld) score 9 or sacrifice child",
                    "Killed process 9 (mysqld), UID 27, total-vm:100kB, anon-rss:80kB, file-rss:4kB, shmem-rss:0kB"]))
    assert (k.victim.pid, k.extra["killed"]["uid"], k.extra["killed"]["shmem_rss_kb"]) == (9, 27, 0)
    rep = report_from_log(next(CORPUS.glob("003*")))  # 2.6.11: 'oom-killer: gfp_mask=0x1d2', '... (klauncher).'
    assert [(k.victim.pid, k.victim.comm) for k in rep.kills] == [
        (19279, "klauncher"), (19296, "kwin"), (19316, "evolution-alarm"), (19342, "nautilus")]
    assert all(k.gfp_mask == 0x1D2 and k.trigger is None for k in rep.kills)


def test_the_trigger_is_its_own_dump_stack_not_a_later_oops() -> None:
    """011: a 'Bad page map' BUG of the OOM reaper follows the kill; its CPU line names
    the reaper, not the task that invoked the OOM killer."""
    k = corpus("011")
    assert k.trigger is not None and (k.trigger.pid, k.trigger.comm) == (1, "systemd")
    assert k.log is not None and k.log.facts["trigger_pid"].conflicts == ()


def test_a_splat_inside_the_oom_kill_line() -> None:
    """012: a KASAN report printed from inside dump_header() cuts the oom-kill line; its
    CPU line, whose trace runs through out_of_memory(), is the allocating task, and the
    summary's tail after the splat still names the task."""
    k = corpus("012")
    assert k.trigger is not None and (k.trigger.pid, k.trigger.comm) == (11282, "memcg_test_1")
    assert k.log is not None
    assert "call trace runs through the OOM killer" in k.log.facts["trigger_pid"].evidence[0].rule
    assert k.log.chosen is not None and k.log.chosen.pid == 11280
    assert k.victim.pid == 11280 and k.constraint == "CONSTRAINT_MEMCG"


def test_a_printk_caller_id_names_the_trigger() -> None:
    k = corpus("043")  # [T13546] on the oom-kill and Killed lines of victim 13542
    assert k.trigger is not None and k.trigger.pid == 13546 and k.trigger.comm is None
    assert k.log is not None and "caller id" in k.log.facts["trigger_pid"].evidence[0].rule


def test_taints_with_dashes_and_nbsp_keep_pid_and_release() -> None:
    k = kill(stamp(["java invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=-998",
                    "CPU: 9 PID: 14881 Comm: java Tainted: G\xa0\xa0\xa0 B\xa0\xa0\xa0\xa0\xa0\xa0\xa0 ------------ T "
                    "3.10.0-327.4.5.el7.x86_64 #1",
                    "Out of memory: Kill process 1 (x) score 1 or sacrifice child",
                    "Killed process 1 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"]))
    assert k.trigger is not None and k.trigger.pid == 14881
    assert k.log is not None and k.log.platform.release == "3.10.0-327.4.5.el7.x86_64"
    assert k.log.platform.taint is not None and "------------" in k.log.platform.taint


def test_sysrq_is_a_manual_oom() -> None:
    k = corpus("046")  # 'sysrq: Manual OOM execution', order=-1, moom_callback
    assert k.log is not None and k.log.oom_kind == "sysrq"
    assert k.constraint == "CONSTRAINT_NONE" and k.log.watermarks is None
    assert "manual OOM" in k.explanation[0] and "not short of memory" in k.explanation[0]


def test_every_fact_says_where_it_was_read() -> None:
    k = corpus("018")  # <N> level prefixes, mail-wrapped
    assert k.log is not None
    for name in ("victim", "trigger_comm", "trigger_pid", "constraint", "kernel_release", "gfp_mask", "order"):
        fact = k.log.facts[name]
        assert fact.value is not None and fact.evidence, name
        assert all(e.lines and e.rule for e in fact.evidence), name
    assert any("rejoined" in (e.read_as or "") for f in k.log.facts.values() for e in f.evidence)
