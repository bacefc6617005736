"""What bpftrace has and memtrace cannot run, by name: the parser and the compiler
refuse each with an error that names the feature (memtrace reads recorded
tracepoint fields; it has no kernel memory, stacks, symbols or running system to
act on)."""

from __future__ import annotations

__all__ = [
    "C_TYPE_WORDS",
    "UNSUPPORTED_BUILTINS",
    "UNSUPPORTED_FUNCTIONS",
    "UNSUPPORTED_PROBES",
    "UNSUPPORTED_STATEMENTS",
    "UNSUPPORTED_TOP_LEVEL",
]

#: bpftrace's probe types memtrace cannot run (it reads recorded tracepoints), each
#: spelling -> the name an error gives it.
UNSUPPORTED_PROBES = {
    **dict.fromkeys(("kprobe", "k"), "kprobe"), **dict.fromkeys(("kretprobe", "kr"), "kretprobe"),
    **dict.fromkeys(("uprobe", "u"), "uprobe"), **dict.fromkeys(("uretprobe", "ur"), "uretprobe"),
    **dict.fromkeys(("usdt", "U"), "USDT"), **dict.fromkeys(("profile", "p"), "profile"),
    **dict.fromkeys(("software", "s"), "software event"), **dict.fromkeys(("hardware", "h"), "hardware event"),
    **dict.fromkeys(("watchpoint", "w", "asyncwatchpoint", "aw"), "watchpoint"),
    **dict.fromkeys(("rawtracepoint", "rt"), "raw tracepoint"),
    **dict.fromkeys(("fentry", "f", "kfunc"), "fentry"), **dict.fromkeys(("fexit", "fr", "kretfunc"), "fexit"),
    "iter": "iterator", "self": "self", "bench": "bench",
}
#: What bpftrace takes between probes and memtrace does not: keyword -> its name.
UNSUPPORTED_TOP_LEVEL = {"struct": "C struct definitions", "union": "C union definitions",
                         "enum": "C enum definitions", "typedef": "C typedefs", "macro": "macros",
                         "let": "map declarations (let @m = ...)", "import": "imports", "fn": "functions"}
#: Statements of bpftrace memtrace does not have: keyword -> what an error calls it.
UNSUPPORTED_STATEMENTS = {"while": "while loops", "for": "for loops", "unroll": "unroll loops",
                          "return": "return", "let": "let declarations", "macro": "macros",
                          "import": "imports"}
#: Words that start a C type: ``(`` followed by one is a cast.
C_TYPE_WORDS = {"struct", "union", "enum", "unsigned", "signed", "char", "short", "int", "long", "void",
                "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool", "const"}

#: bpftrace builtins memtrace cannot give, and why (an error names them).
UNSUPPORTED_BUILTINS = {
    **dict.fromkeys(("kstack", "ustack"), "stacks: a trace holds no stacks"),
    **dict.fromkeys((*(f"arg{i}" for i in range(10)), "retval", "func", "args"),
                    "kprobe and uprobe arguments (use a tracepoint's fields: args.NAME)"),
    **dict.fromkeys(tuple(f"sarg{i}" for i in range(10)), "stack arguments"),
    **dict.fromkeys(("uid", "gid", "username"), "the task's credentials: events do not carry them"),
    "cgroup": "the task's cgroup id: events do not carry it", "cpid": "the pid of -c CMD",
    "curtask": "kernel memory (struct task_struct)", "rand": "random numbers", "jiffies": "jiffies",
    "numaid": "the NUMA node of the CPU", "ncpus": "the number of CPUs", "$0": "positional parameters",
}
#: bpftrace functions memtrace cannot run, and why.
UNSUPPORTED_FUNCTIONS = {
    **dict.fromkeys(("ksym", "usym", "kaddr", "uaddr", "kptr", "uptr", "reg"), "symbols, addresses and registers"),
    **dict.fromkeys(("system", "cat", "signal", "override"), "actions on the running system"),
    **dict.fromkeys(("buf", "sizeof", "offsetof"), "kernel memory and types"),
    **dict.fromkeys(("ntop", "pton", "macaddr"), "network addresses"),
    "cgroup_path": "cgroups by id", "join": "argv arrays", "tseries": "time series",
    **dict.fromkeys(("strncmp", "strcontains", "len", "has_key", "percpu_kaddr", "skboutput", "socket_cookie",
                     "pid_ns"), "this function"),
}
