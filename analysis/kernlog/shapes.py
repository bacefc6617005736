"""The line shapes of an OOM report: what a whole kernel line of each kind looks like.

The reader of a pasted kernel log (:mod:`.lines`) rejoins what a mail client or a terminal
hard-wrapped only when the joined text completes one of these shapes and the first piece
alone does not (:mod:`.rejoin`). Each shape is a regular expression that must match the
whole (stripped) text of a line, for the layouts of mm/oom_kill.c, mm/show_mem.c (ex
page_alloc.c ``show_free_areas``), mm/memcontrol.c and lib/dump_stack.c from 2.6.11 to
6.18 as seen in real reports (``kernel-mm-facts.md`` §3). They are looser than the
parser's (:mod:`.formats`): they tell where a line ends, not what it means.

Simplified, on purpose: other kernel lines have no shape and are passed through
unjoined, however they were wrapped.
"""

from __future__ import annotations

import re

from .limits import LOG_MAX_REJOIN_STEPS
from .prefix import Rec

__all__ = [
    "COMM_OF",
    "CPU_TAIL",
    "MAX_SHAPE",
    "MILESTONES",
    "NO_COMM",
    "ROW_NAME_TAIL",
    "SHAPES",
    "TAILS",
    "ReaderState",
    "complete",
    "key_lead",
    "kv_continues",
    "kv_family",
    "kv_line",
    "maybe_key",
    "milestone",
    "set_row_layout",
]

MAX_SHAPE = 2048  # printk lines are < 1024 chars; longer texts are not checked or joined
_RE_HEADER = re.compile(
    r"(?:.{1,64}? invoked oom-killer: gfp_mask=(?:0x[0-9a-fA-F]+|\d+)(?:\([^()]*\))?(?:, nodemask=[^,\s]*)?"
    r", order=-?\d+(?:, oomkilladj=-?\d+|, oom_adj=-?\d+(?:, oom_score_adj=-?\d+)?|, oom_score_adj=-?\d+)"
    r"|oom-killer: gfp_mask=(?:0x[0-9a-fA-F]+|\d+)(?:, order=-?\d+)?)(?:\s.*)?"
)
_RE_CPU = re.compile(
    r"(?:CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: .{0,64}? (?:Kdump: loaded )?"
    r"|Pid: \d+, comm: .{0,64}? )(?:Not tainted|Tainted: [A-Z \-]*?) *\d+\.\d+\S*(?:\s.*)?"
)
_RE_KILLED = re.compile(
    r"(?:[^:]{1,80}: )?Killed process \d+(?:, UID \d+,)? \(.*\)"
    r"(?:\.?"
    r"| total-vm:\d+kB, anon-rss:\d+kB, file-rss:\d+kB"
    r"(?:, shmem-rss:\d+kB(?:, UID:\d+(?: pgtables:\d+kB oom_score_adj:-?\d+)?)?)?"
    r"|, UID \d+, total-vm:\d+kB, anon-rss:\d+kB, file-rss:\d+kB(?:, shmem-rss:\d+kB)?"
    r")(?: *(?:\.{2,}|…))?"
)
_RE_KILL = re.compile(
    r"(?:[^:]{1,80}: )?[Kk]ill process \d+ \(.*\) (?:score -?\d+ or (?:sacrifice child|a child)|sharing same memory)"
)
_RE_SUMMARY = re.compile(r"oom-kill:constraint=[^,\s]*,nodemask=[^,\s]*(?:,[^,\s]+)*?,task=.*,pid=-?\d+,uid=\d+")
_RE_OOM_GROUP = re.compile(r"Tasks in \S.* are going to be killed due to memory\.oom\.group set")
_RE_REAPED = re.compile(
    r"oom_reaper: reaped process \d+ \(.*\), now anon-rss:\d+kB, file-rss:\d+kB, shmem-rss:\d+kB"
)
# The columns of dump_tasks() in every era (kernel-mm-facts.md §3.5), and a vendor's
# patched "(01)nrss" column.
_RE_TASK_HEADER = re.compile(
    r"\[ *pid *\] +uid +tgid +total_vm +rss(?P<cols>(?: +(?:rss_anon|rss_file|rss_shmem|pgtables_bytes|nr_ptes"
    r"|nr_pmds|swapents|oom_score_adj|oom_adj|cpu|\(\d+\)\w+))*) +name"
)
_RE_TASK_ROW_START = re.compile(r"\[ *\d+\] ")
_RE_TASKS_STATE = re.compile(r"Tasks state \(memory values in pages\):")
_RE_TASK_IN = re.compile(r"Task in \S.* killed as a result of limit of \S+")
_RE_CPUSET = re.compile(r"\S.* cpuset=\S* mems_allowed=\S+")
_RE_MEMCG = re.compile(r"(?:memory|memory\+swap|swap|kmem|kmem\.tcp): usage \d+kB, limit \d+kB, failcnt \d+")
_RE_MEMCG_STATS = re.compile(r"Memory cgroup stats for \S.*:")
_RE_EXITING = re.compile(r".{1,80}?: OOM victim \d+ \(.*\) is already exiting\. Skip killing the task")
_RE_NO_KILLABLE = re.compile(r"Out of memory and no killable processes\.\.\.")
_RE_PANIC = re.compile(
    r"Kernel panic - not syncing: (?:Out of memory: (?:compulsory|system-wide) panic_on_oom is (?:enabled|selected)"
    r"|Out of memory and no killable processes\.\.\.|System is deadlocked on memory"
    r"|[Oo]ut of memory\. (?:Compulsory )?panic_on_oom is selected\.?)(?:\s.*)?"
)
_RE_SWAP_CACHE = re.compile(r"Swap cache(?: stats)?: add \d+, delete \d+, find \d+/\d+(?:, race \d+\+\d+)?")
_RE_HUGEPAGES = re.compile(
    r"Node \d+ hugepages_total=\d+ hugepages_free=\d+ hugepages_surp=\d+ hugepages_size=\d+kB"
)
_ZONE = r"(?:DMA32|DMA|Normal|HighMem|Movable|Device)"
_RE_BUDDY = re.compile(r"(?:Node \d+ )?" + _ZONE + r": (?:(?:\d+\*\d+kB (?:\([A-Z]+\) )?)+= \d+kB|empty)")

#: The line shapes the next stage needs whole, by name: each regex must match the whole
#: (stripped) text. Task rows are checked against the latest task-table header's columns.
SHAPES: dict[str, re.Pattern[str]] = {
    "header": _RE_HEADER,
    "cpu": _RE_CPU,
    "killed": _RE_KILLED,
    "kill": _RE_KILL,
    "oom-kill": _RE_SUMMARY,
    "oom-group": _RE_OOM_GROUP,
    "reaper": _RE_REAPED,
    "task-header": _RE_TASK_HEADER,
    "tasks-state": _RE_TASKS_STATE,
    "task-in": _RE_TASK_IN,
    "cpuset": _RE_CPUSET,
    "memcg-usage": _RE_MEMCG,
    "memcg-stats": _RE_MEMCG_STATS,
    "exiting": _RE_EXITING,
    "no-killable": _RE_NO_KILLABLE,
    "panic": _RE_PANIC,
    "swap-cache": _RE_SWAP_CACHE,
    "hugepages": _RE_HUGEPAGES,
    "buddy": _RE_BUDDY,
}

# What may follow a shape that is already complete in an older, shorter form (the
# 2.6.32 "Killed process N (comm)" wrapped before " total-vm:", the 6.x CPU line before
# its build tag): the next piece must start so.
TAILS: dict[str, re.Pattern[str]] = {
    "killed": re.compile(r",? ?(?:total-vm|anon-rss|file-rss|shmem-rss|UID|pgtables|oom_score_adj):|UID \d|\.{2,}|…"),
    "header": re.compile(r",? ?(?:nodemask|order|oomkilladj|oom_adj|oom_score_adj)="),
    # the build tag after the release ("#1 SMP", "PREEMPT(voluntary)", "openSUSE Tumbleweed
    # (unreleased)"), never the next line of the dump ("Hardware name: ...", "Call Trace:")
    "cpu": re.compile(r"(?![^:]*:(?:\s|$))(?:#\w|SMP\b|PREEMPT|VOLUNTARY\b|\([\w.-]+\)|openSUSE|SLE\d|Debian"
                      r"|Ubuntu|[0-9a-f]{16,}\b|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} )"),
}
CPU_TAIL = TAILS["cpu"]
ROW_NAME_TAIL = re.compile(r"\S")
TAILS["task-row"] = ROW_NAME_TAIL


class ReaderState:
    """What the reader remembers across lines (all of it bounded): the widest raw line so
    far (a terminal's width when it hard-wrapped the paste), the latest task-table
    header's columns, whether the last prefixed line was a /dev/kmsg record, and the task
    names seen whole."""

    __slots__ = ("comms", "kmsg", "kmsg_caller", "kmsg_ts", "rejoin_steps_left", "row_cols", "row_re", "widest")

    def __init__(self) -> None:
        # the widest raw line so far, by mail quote marker (a quote added after a terminal
        # cut the lines makes them wider than the cut)
        self.widest: dict[str, int] = {"": 0}
        self.row_cols = 0  # numeric columns of the latest "[  pid  ]   uid  tgid ..." header
        self.row_re: re.Pattern[str] | None = None
        self.kmsg = False  # the last line with a prefix was a /dev/kmsg record
        self.kmsg_ts: int | None = None
        self.kmsg_caller: str | None = None  # its printk caller id
        # task names the report printed whole so far (header, CPU and kill lines): they
        # tell a terminal's cut inside a name from a mail client's break between words
        self.comms: dict[str, None] = {}
        # pieces the rejoin searches may still try, all lines together (LOG_MAX_REJOIN_STEPS)
        self.rejoin_steps_left = LOG_MAX_REJOIN_STEPS


def _row_complete(t: str, st: ReaderState) -> bool:
    """A task row with every column of its header (or, with no header seen, at least five
    numbers and a name that is not a number)."""
    if st.row_re is not None:
        return st.row_re.fullmatch(t) is not None
    toks = t[t.index("]") + 1:].split()
    if len(toks) < 6 or toks[-1].lstrip("-").isdigit():
        return False
    n = 0
    for tok in toks:
        if not tok.lstrip("-").isdigit():
            break
        n += 1
    return n >= 5


def complete(t: str, st: ReaderState) -> str | None:
    """The name of the shape the stripped text ``t`` completes, or None."""
    if not t or len(t) > MAX_SHAPE:
        return None
    c = t[0]
    if c == "[":
        if _RE_TASK_ROW_START.match(t):
            return "task-row" if _row_complete(t, st) else None
        if _RE_TASK_HEADER.fullmatch(t):
            return "task-header"
        return None
    if (c == "C" and t.startswith("CPU: ")) or (c == "P" and t.startswith("Pid: ")):
        return "cpu" if _RE_CPU.fullmatch(t) else None
    if "oom-killer:" in t:
        return "header" if _RE_HEADER.fullmatch(t) else None
    if c == "o":
        if t.startswith("oom-kill:"):
            return "oom-kill" if _RE_SUMMARY.fullmatch(t) else None
        if t.startswith("oom_reaper: "):
            return "reaper" if _RE_REAPED.fullmatch(t) else None
    if "l process" in t or "led process" in t:
        if _RE_KILLED.fullmatch(t):
            return "killed"
        return "kill" if _RE_KILL.fullmatch(t) else None
    if c == "T":
        if t.startswith("Tasks in "):
            return "oom-group" if _RE_OOM_GROUP.fullmatch(t) else None
        if t.startswith("Tasks state"):
            return "tasks-state" if _RE_TASKS_STATE.fullmatch(t) else None
        if t.startswith("Task in "):
            return "task-in" if _RE_TASK_IN.fullmatch(t) else None
    if ": usage " in t:
        return "memcg-usage" if _RE_MEMCG.fullmatch(t) else None
    if " cpuset=" in t:
        return "cpuset" if _RE_CPUSET.fullmatch(t) else None
    if c == "M" and t.startswith("Memory cgroup stats for "):
        return "memcg-stats" if _RE_MEMCG_STATS.fullmatch(t) else None
    if c == "K" and t.startswith("Kernel panic"):
        return "panic" if _RE_PANIC.fullmatch(t) else None
    if "OOM victim" in t:
        return "exiting" if _RE_EXITING.fullmatch(t) else None
    if c == "O" and t.startswith("Out of memory and"):
        return "no-killable" if _RE_NO_KILLABLE.fullmatch(t) else None
    if c == "S" and t.startswith("Swap cache"):
        return "swap-cache" if _RE_SWAP_CACHE.fullmatch(t) else None
    if "hugepages_total=" in t:
        return "hugepages" if _RE_HUGEPAGES.fullmatch(t) else None
    if t.endswith(("kB", "empty")):
        return "buddy" if _RE_BUDDY.fullmatch(t) else None
    return None


# Key shapes whose incomplete form is marked "truncated": (name, test on the stripped text).
_LEAD_HEADER = re.compile(r".{0,64}? invoked oom-killer(?::|$)|oom-killer: ")
_LEAD_KILLED = re.compile(r"(?:[^:]{1,80}: )?Killed process \d")
_LEAD_KILL = re.compile(r"(?:[^:]{1,80}: )?[Kk]ill process \d")
_LEAD_CPU = re.compile(r"CPU: \d+ (?:UID: \d+ )?PID: \d|Pid: \d+, comm: ")


def key_lead(t: str, kernel: bool = True) -> str | None:
    """The key shape whose beginning the stripped text ``t`` carries, or None; a line
    without a kernel prefix needs more of it (a header's colon)."""
    c = t[:1]
    if c == "o":
        if t.startswith("oom-kill:c"):
            return "oom-kill"
        if t.startswith("oom_reaper: reaped"):
            return "reaper"
    if c in "CP" and _LEAD_CPU.match(t):
        return "cpu"
    if c == "T" and t.startswith("Tasks in /"):
        return "oom-group"
    if c == "[" and "pid" in t[:12] and _RE_TASK_HEADER.match(t):
        return "task-header"
    if "oom-killer" in t and _LEAD_HEADER.match(t) and (t[-1] != "r" or kernel):
        return "header"
    if "l process" in t or "led process" in t:
        if _LEAD_KILLED.match(t):
            return "killed"
        if _LEAD_KILL.match(t):
            return "kill"
    return None


# --------------------------------------------------------------------------- Mem-Info key:value lines

# The first Mem-Info block, the node line, zone lines, the one-line memcg stats of 3.x/4.x,
# buddy lists, lowmem_reserve, hugepages and swap-cache lines: when wrapped, their
# continuation holds nothing but tokens of the same kind.
_KV_LEAD = re.compile(
    r"(?P<first>(?:active_anon|Active_anon|Active|active_file|inactive_file|unevictable|slab_reclaimable"
    r"|mapped|sec_pagetables|kernel_misc_reclaimable|free):\d)"
    r"|(?P<node>Node \d+ active_anon:)"
    r"|(?P<zone>(?:Node \d+ )?" + _ZONE + r" free:)"
    r"|(?P<stats>Memory cgroup stats for \S*: \S+:)"
    r"|(?P<lowmem>lowmem_reserve\[\]:)"
    r"|(?P<buddy>(?:Node \d+ )?" + _ZONE + r": \d)"
    r"|(?P<huge>Node \d+ hugepages_total=)"
    r"|(?P<swap>Swap cache(?: stats)?: add )"
)
_KV = r"[A-Za-z_][\w()]*: ?-?\d+[kKM]?B?"  # "free:1234kB", "isolated(anon):0kB", "shmem_thp: 0kB"
# Each family's whole line (stripped, tokens one space apart or more).
_KV_LINE = {
    "first": re.compile(r"[A-Za-z_]\w*:-?\d+(?: +[A-Za-z_]\w*:-?\d+)*"),
    # (a wrap may fall between "anon_thp:" and its value, or "all_unreclaimable?" and its answer)
    "node": re.compile(r"Node \d+(?: +(?:" + _KV + r"|all_unreclaimable\? (?:yes|no)))*"
                       r"(?: +(?:[A-Za-z_][\w()]*:|all_unreclaimable\?))?"),
    "zone": re.compile(r"(?:Node \d+ )?" + _ZONE + r"(?: +(?:" + _KV + r"|all_unreclaimable\? (?:yes|no)))*"
                       r"(?: +(?:[A-Za-z_][\w()]*:|all_unreclaimable\?))?"),
    "stats": re.compile(r"Memory cgroup stats for \S*:(?: +[A-Za-z_]\w*:-?\d+[kKM]?B?)*"),
    "lowmem": re.compile(r"lowmem_reserve\[\]:(?: +-?\d+)*"),
    "buddy": re.compile(r"(?:Node \d+ )?" + _ZONE + r":(?: +(?:\d+\*\d+kB|\([A-Z]+\)|=|\d+kB))*"),
    "huge": re.compile(r"Node \d+(?: +hugepages_\w+=\d+(?:kB)?)*"),
    "swap": re.compile(r"Swap cache(?: stats)?:(?: +(?:add|delete|find|race|\d+(?:/\d+|\+\d+)?),?)*"),
}
# A key that begins a line of its own in the first Mem-Info block (a continuation that
# starts with one is the kernel's next line, not a wrap).
_FIRST_STARTERS = frozenset(("active_anon", "active_file", "unevictable", "slab_reclaimable", "mapped", "free",
                             "sec_pagetables", "kernel_misc_reclaimable"))
_KV_DONE = re.compile(r".*(?:all_unreclaimable\? (?:yes|no)|= \d+kB|hugepages_size=\d+kB)")
_PAGER_CUT = re.compile(r"(.*?)( ?)>")
_PARTIAL_TOKEN = re.compile(r"[\w():?=*-]{1,40}")


def kv_family(t: str) -> str | None:
    m = _KV_LEAD.match(t)
    return m.lastgroup if m else None


def kv_line(family: str, joined: str) -> tuple[bool, bool]:
    """Whether the stripped text ``joined`` is (the beginning of) a Mem-Info line of
    ``family``: ``(ok, pager_cut)``; a last token cut by journalctl's pager (``i>``) is
    accepted."""
    line = _KV_LINE[family]
    if line.fullmatch(joined):
        return True, False
    head, sep, last = joined.rpartition(" ")  # a terminal cut the last token: the next piece ends it
    if sep and line.fullmatch(head.rstrip()) and _PARTIAL_TOKEN.fullmatch(last):
        return True, False
    m = _PAGER_CUT.fullmatch(joined)
    if m:
        head = m.group(1)
        if not m.group(2):  # the last token was cut: any prefix of a token
            head = head.rsplit(" ", 1)[0]
        if line.fullmatch(head):
            return True, True
    return False, False


def kv_continues(family: str, joined: str, b: Rec, a_first: str) -> bool:
    """Whether piece ``b`` may continue the Mem-Info line ``joined`` (before gluing it)."""
    if _KV_DONE.match(joined):
        return False
    if family == "first":
        bt = b.text
        if bt[:1] in " \t":  # the kernel indents its own continuation lines
            return False
        key = bt.strip().split(":", 1)[0]
        if key in _FIRST_STARTERS and not a_first.startswith("Active:"):
            return False
    return True


# --------------------------------------------------------------------------- rejoining


# ``(alloc_anon) total-vm:..., file-rss:0kB,`` / ``shmem-rss:0kB,0``) never completes its
# shape; its pieces are still one line when they reach the milestone the next stage needs
# (the victim's pid and comm, the trigger's comm and gfp mask) and what follows is made of
# the shape's own fields, the last one possibly cut.
MILESTONES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "killed": (re.compile(r"(?:[^:]{1,80}: )?Killed process \d+(?:, UID \d+,)? \(.*\)(?P<rest>(?:[ ,].*)?)"),
               re.compile(r"(?:,? (?:, )?(?:total-vm|anon-rss|file-rss|shmem-rss|UID|pgtables|oom_score_adj)"
                          r"(?::\d+(?:kB)?)?)*,?(?: ?[\w:-]{0,16})?")),
    "header": (re.compile(r".{1,64}? invoked oom-killer: gfp_mask=(?:0x[0-9a-fA-F]+|\d+)(?:\([^()]*\))?,?"
                          r"(?P<rest>(?: .*)?)"),
               re.compile(r"(?: (?:nodemask|order|oomkilladj|oom_adj|oom_score_adj)=-?[\w()]*,?)*(?: ?[\w=-]{0,16})?")),
}


def milestone(shape: str, t: str) -> bool:
    """Whether the stripped text ``t`` reaches the milestone of key ``shape``, followed by
    nothing but that shape's fields."""
    pats = MILESTONES.get(shape)
    if pats is None:
        return False
    m = pats[0].fullmatch(t)
    return m is not None and pats[1].fullmatch(m.group("rest")) is not None


def maybe_key(text: str) -> bool:
    """Whether ``text`` may hold a key shape (see key_lead): a cheap filter for every line."""
    return ("oom" in text or "l process" in text or "d process" in text or "CPU:" in text or "Pid:" in text
            or "Tasks in" in text)


NO_COMM = re.compile(r"(?!)")
COMM_OF = {
    "header": re.compile(r"(.{1,64}?) invoked oom-killer"),
    "cpu": re.compile(r"(?:CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: |Pid: \d+, comm: )(.{1,64}?) "
                      r"(?:Kdump: loaded |Not tainted|Tainted: )"),
    "killed": re.compile(r"(?:[^:]{1,80}: )?Killed process \d+(?:, UID \d+,)? \((.*)\)"),
    "kill": re.compile(r"(?:[^:]{1,80}: )?[Kk]ill process \d+ \((.*)\)"),
}


def set_row_layout(t: str, st: ReaderState) -> None:
    m = _RE_TASK_HEADER.fullmatch(t)
    if m is None:
        return
    n = 4 + len(m.group("cols").split())  # uid tgid total_vm rss + the rest before name
    if n != st.row_cols:
        st.row_cols = n
        st.row_re = re.compile(r"\[ *\d+\](?: +-?\d+){" + str(n) + r"} +\S.*")
