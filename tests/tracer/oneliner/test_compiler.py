"""Compiled programs: every result is checked against a computation made independently
of the engine, from the same trace: numpy over the raw columns of its batches, or a
Python loop over its events one at a time (``collections.Counter``, a pid->comm dict
built by hand from process_start and fork records, ``int.bit_length`` for histogram
slots); generated programs run per batch as per event.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.tracer import EventBatch
from memtrace.tracer.oneliner import ProgramError
from memtrace.tracer.probes import MapOutput, render_text

from ..helpers import MS, Stream
from ..programs import Trace, map_text, maps_of, printed, run, slot


def test_count_by_enum_prints_names(mixed: Trace) -> None:
    out = run("page_fault { @[vma_kind] = count(); }", mixed.batches)
    codes = mixed.column("page_fault", "vma_kind")
    values = mixed.registry["page_fault"].field("vma_kind").values
    uniq, counts = np.unique(codes, return_counts=True)
    expected = {values[c]: int(n) for c, n in zip(uniq.tolist(), counts.tolist())}
    assert maps_of(out)["@"] == expected
    assert render_text(out[0]) == map_text("@", expected)
    assert "@[anon_private]: " in render_text(out[0])


def test_predicates_with_and_or_and_parentheses(mixed: Trace) -> None:
    prog = 'page_fault /write && (vma_kind == "anon_private" || vma_kind == "file_private")/ { @[pid] = count(); }'
    kind = mixed.column("page_fault", "vma_kind")
    values = mixed.registry["page_fault"].field("vma_kind").values
    mask = mixed.column("page_fault", "write").astype(bool) & (
        (kind == values.index("anon_private")) | (kind == values.index("file_private")))
    pids, counts = np.unique(mixed.column("page_fault", "pid")[mask], return_counts=True)
    assert maps_of(run(prog, mixed.batches))["@"] == dict(zip(pids.tolist(), counts.tolist()))
    assert mask.sum() > 0 and (~mask).sum() > 0


def test_comm_compare_and_comm_keys_follow_process_and_fork_events(mixed: Trace) -> None:
    prog = 'page_fault /comm == "kid" || major/ { @[comm, major] = count(); } ' \
           'cow /comm != "kid"/ { @cow[comm] = count(); }'
    expected: Counter[tuple[str, int]] = Counter()
    cows: Counter[str] = Counter()
    for name, f, comms, _ in mixed.records():
        comm = comms.get(f["pid"], "[unknown]")
        if name == "page_fault" and (comm == "kid" or f["major"]):
            expected[(comm, int(f["major"]))] += 1
        elif name == "cow" and comm != "kid":
            cows[comm] += 1
    got = maps_of(run(prog, mixed.batches))
    assert got["@"] == dict(expected) and got["@cow"] == dict(cows)
    assert {k[0] for k in expected} == {"kid", "filer"}


def test_sum_min_max_avg_stats_on_rss_stat(mixed: Trace) -> None:
    prog = ("rss_stat { @mx[mm_pid, member] = max(size_bytes); @mn[member] = min(size_bytes); "
            "@a = avg(size_bytes); @s[member] = stats(size_bytes); @t[comm] = sum(size_bytes / 4096); }")
    by_key: dict[Any, list[int]] = defaultdict(list)
    by_member: dict[str, list[int]] = defaultdict(list)
    by_comm: dict[str, int] = defaultdict(int)
    every = []
    for name, f, comms, _ in mixed.records():
        if name != "rss_stat":
            continue
        v = f["size_bytes"]
        by_key[(f["mm_pid"], f["member"])].append(v)
        by_member[f["member"]].append(v)
        by_comm[comms.get(f["pid"], "[unknown]")] += int(v / 4096)
        every.append(v)
    got = maps_of(run(prog, mixed.batches))
    assert got["@mx"] == {k: max(v) for k, v in by_key.items()}
    assert got["@mn"] == {k: min(v) for k, v in by_member.items()}
    assert got["@a"] == {(): sum(every) // len(every)}
    assert {k: (v.count, v.average, v.total) for k, v in got["@s"].items()} == \
        {k: (len(v), sum(v) // len(v), sum(v)) for k, v in by_member.items()}
    assert got["@t"] == dict(by_comm)


def test_hist_and_lhist_buckets(mixed: Trace) -> None:
    out = run("page_fault { @h = hist((address >> 12) & 1023); @l[vma_kind] = lhist(pfn % 1000, 0, 1000, 100); }",
              mixed.batches)
    addr = mixed.column("page_fault", "address").astype(np.int64)
    vals = ((addr >> 12) & 1023).tolist()
    slots = Counter(slot(v) for v in vals)
    h = maps_of(out)["@h"][()]
    assert h.counts == tuple(slots.get(i, 0) for i in range(65))
    pfn = mixed.column("page_fault", "pfn").astype(np.int64)
    kinds = mixed.column("page_fault", "vma_kind")
    names = mixed.registry["page_fault"].field("vma_kind").values
    lin: dict[str, Counter[int]] = defaultdict(Counter)
    for k, p in zip(kinds.tolist(), (pfn % 1000).tolist()):
        lin[names[k]][p // 100 + 1] += 1
    got = maps_of(out)["@l"]
    assert {k: v.counts for k, v in got.items()} == {k: tuple(c.get(i, 0) for i in range(12)) for k, c in lin.items()}
    text = render_text(next(o for o in out if o.name == "@h"))
    assert text.startswith("@h:\n[") and text.endswith("|\n\n")


def test_page_cache_additions_by_path(mixed: Trace) -> None:
    expected: Counter[str] = Counter()
    for name, f, _, paths in mixed.records():
        if name == "page_cache_add":
            expected[paths.get(f["ino"], f"[ino {f['ino']}]")] += 1
    got = maps_of(run("page_cache_add { @[path(ino)] = count(); }", mixed.batches))["@"]
    assert got == dict(expected) and "/data/a.bin" in got


def test_printf_per_event_in_order_with_strings_and_fields(mixed: Trace) -> None:
    prog = r'fork, exit { printf("%s %s %d %-6s|\n", probe, comm, pid, probe == "fork" ? "fork" : "exit"); }'
    expected = [f"{name} {comms[f['pid']]} {f['pid']} {name:<6}|\n"
                for name, f, comms, _ in mixed.records() if name in ("fork", "exit")]
    assert printed(run(prog, mixed.batches)) == expected
    assert len(expected) == 5


def test_field_shadowed_by_a_builtin_through_args(mixed: Trace) -> None:
    out = run("exit { @[comm, args.comm, code] = count(); } fork { @k[comm(child_pid)] = count(); }", mixed.batches)
    expected = Counter((comms[f["pid"]], f["comm"], f["code"]) for name, f, comms, _ in mixed.records()
                       if name == "exit")
    assert maps_of(out)["@"] == dict(expected)
    assert maps_of(out)["@k"] == {"kid": 1}


def test_interval_lines_equal_a_clock_computed_by_hand(mixed: Trace) -> None:
    period = 40 * MS
    prog = 'page_fault { @ = count(); } interval:ms:40 { printf("%d %d\\n", nsecs / 1000000, @); clear(@); }'
    # Independent: the clock is the running maximum of every event's ts_ns, in seq
    # order; boundary k fires before the first event whose clock reaches k * period.
    ts = np.concatenate([np.asarray(b.columns["ts_ns"], dtype=np.int64) for b in mixed.batches])
    is_fault = np.concatenate([np.full(b.n, b.tp.name == "page_fault") for b in mixed.batches])
    clock = np.maximum.accumulate(ts)
    interval = clock // period
    last = int(clock[-1])
    expected = [f"{(k + 1) * period // MS} {int((is_fault & (interval == k)).sum())}\n"
                for k in range(last // period)]
    expected.append(f"{last // MS} {int((is_fault & (interval == last // period)).sum())}\n")
    assert printed(run(prog, mixed.batches)) == expected
    assert len(expected) >= 4


def test_builtins_nsecs_elapsed_strftime(mixed: Trace) -> None:
    out = run('fork { printf("%d %d %s\\n", nsecs, elapsed, strftime("%H:%M:%S.%f", nsecs)); }', mixed.batches)
    first_ts = int(np.asarray(mixed.batches[0].columns["ts_ns"])[0])
    (fork,) = [f for name, f, _, _ in mixed.records() if name == "fork"]
    ts = fork["ts_ns"]
    assert printed(out) == [f"{ts} {ts - first_ts} 00:00:00.{ts // 1000 % 1_000_000:06d}\n"]


def test_variables_if_else_and_ternary_per_row(mixed: Trace) -> None:
    prog = '''page_fault {
        $kb = 4;
        if (major) { $kind = "major"; $kb = 8; } else if (write) { $kind = "write"; } else { $kind = "read"; }
        @[$kind] = sum($kb);
        @n[$kind == "write" ? comm : "other"] = count();
    }'''
    sums: Counter[str] = Counter()
    n: Counter[str] = Counter()
    for name, f, comms, _ in mixed.records():
        if name != "page_fault":
            continue
        kind = "major" if f["major"] else "write" if f["write"] else "read"
        sums[kind] += 8 if f["major"] else 4
        n[comms[f["pid"]] if kind == "write" else "other"] += 1
    got = maps_of(run(prog, mixed.batches))
    assert got["@"] == dict(sums) and got["@n"] == dict(n)


def test_string_values_delete_and_clear(mixed: Trace) -> None:
    prog = ('process_start { @name[pid] = comm; } exit { @code[args.comm] = code; delete(@name[pid]); } '
            'END { print(@name); clear(@name); }')
    out = run(prog, mixed.batches)
    # Every started process exited: the map printed at END is empty.
    assert not [o for o in out if isinstance(o, MapOutput) and o.name == "@name" and o.entries]
    assert maps_of(out)["@code"] == {f["comm"]: f["code"] for name, f, _, _ in mixed.records() if name == "exit"}


def test_same_output_whatever_the_batch_boundaries() -> None:
    """Splitting a stream's batches anywhere changes nothing: hazards, intervals,
    printf order and histograms are batch-independent."""
    prog = r'''reclaim_begin { @start[pid] = nsecs; }
        reclaim_end /@start[pid]/ { @us = hist((nsecs - @start[pid]) / 1000); printf("%d %d\n", pid, nsecs - @start[pid]);
                                   delete(@start[pid]); }
        page_fault { @f[pid] = count(); if (@f[pid] == 3) { printf("third %d\n", pid); } }
        interval:ms:1 { printf("tick %d\n", nsecs); }'''
    rng = np.random.default_rng(23)
    s = Stream()
    t = 0
    for _ in range(23):
        k = int(rng.integers(1, 6))
        pids = rng.integers(100, 103, size=k).tolist()
        t += int(rng.integers(1, 400_000))
        kind = ("reclaim_begin", "reclaim_end", "page_fault")[int(rng.integers(0, 3))]
        s.emit(kind, [t + 1000 * i for i in range(k)], pids, n=k)
    whole = run(prog, s.batches)
    assert printed(whole)
    singles: list[EventBatch] = []
    for b in s.batches:
        singles.extend(b.select(np.arange(b.n) == i) for i in range(b.n))
    assert run(prog, singles) == whole


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=20))
def test_count_by_pid_equals_bincount(pids: list[int]) -> None:
    s = Stream().emit("page_fault", list(range(len(pids))), pids, n=len(pids))
    got = maps_of(run("page_fault { @[pid] = count(); }", s.batches))["@"]
    counts = np.bincount(np.array(pids))
    assert got == {p: int(c) for p, c in enumerate(counts.tolist()) if c}


class ProgramGen:
    """Random well-typed programs over page_fault and cow: integer and string
    expressions, map reads and writes of every kind, if/else, variables, printf,
    print, clear, zero, delete, exit."""

    INTS = ["pid", "nsecs", "address", "pfn", "major", "write", "3", "0", "-2", "@m[pid]", "@c", "$i", "elapsed",
            "@m[pfn % 3]"]
    STRS = ["comm", "vma_kind", '"anon_private"', '"x"', "path(pfn)", "comm(pid)", "$s", "@n[pid]", "probe"]
    OPS = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", ">=", "&&", "||"]

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def int_expr(self, d: int = 0) -> str:
        r = self.rng.random()
        if d > 2 or r < 0.35:
            return self.pick(self.INTS)
        if r < 0.75:
            return f"({self.int_expr(d + 1)} {self.pick(self.OPS)} {self.int_expr(d + 1)})"
        if r < 0.85:
            return f"{self.pick(['!', '-', '~'])}{self.int_expr(d + 1)}"
        if r < 0.92:
            return f"({self.int_expr(d + 1)} ? {self.int_expr(d + 1)} : {self.int_expr(d + 1)})"
        return f"({self.str_expr(d + 1)} == {self.str_expr(d + 1)})"

    def str_expr(self, d: int = 0) -> str:
        if d > 2 or self.rng.random() < 0.6:
            return self.pick(self.STRS)
        return f"({self.int_expr(d + 1)} ? {self.str_expr(d + 1)} : {self.str_expr(d + 1)})"

    def stmt(self, d: int = 0) -> str:
        r = self.rng.random()
        k = self.pick(["pid", "pfn % 3"])
        key = self.pick(["pid", "pfn % 3", "comm", "vma_kind", "pfn % 3, comm", "$i & 1"])
        e = self.int_expr
        choices = [
            (0.10, lambda: f"@m[{k}] = {e()}"),
            (0.16, lambda: "@c = count()"),
            (0.22, lambda: f"@h[{key}] = hist({e()})"),
            (0.28, lambda: f"@s[{key}] = {self.pick(['sum', 'min', 'max', 'avg', 'stats'])}({e()})"),
            (0.33, lambda: f"@n[pid] = {self.str_expr()}"),
            (0.40, lambda: f'printf("%d %s\\n", {e()}, {self.str_expr()})'),
            (0.46, lambda: f"$i = {e()}"),
            (0.50, lambda: f"$s = {self.str_expr()}"),
            (0.58, lambda: (f"if ({e()}) {{ {self.stmt(d + 1)}; {self.stmt(d + 1)} }} else {{ {self.stmt(d + 1)} }}"
                            if d < 2 else "@c = count()")),
            (0.63, lambda: f"delete(@m[{k}])"),
            (0.66, lambda: "print(@c)"),
            (0.68, lambda: self.pick(["clear(@m)", "zero(@s)", "print(@m)"])),
            (0.70, lambda: self.pick(["exit()", "time()", "time()"])),
            (0.74, lambda: f"@l = lhist({e()}, 0, 100, 10)"),
            (0.80, lambda: f"@m[{k}] += {e()}"),
            (0.85, lambda: f"@m[{k}] *= {e()}"),
            (0.90, lambda: f"print({e()})"),
            (1.00, lambda: f"@m[{k}]++"),
        ]
        return next(f for p, f in choices if r < p)()

    def program(self) -> str:
        body = "; ".join(self.stmt() for _ in range(int(self.rng.integers(1, 5))))
        body2 = "; ".join(self.stmt() for _ in range(int(self.rng.integers(1, 4))))
        return (f'BEGIN {{ $s = "q"; $i = 1; }} page_fault /{self.int_expr()}/ {{ $i = 0; $s = ""; {body} }} '
                f"page_fault {{ $i = pid; $s = comm; {body2} }} cow {{ @m[pid]++; @c = count() }} "
                f'interval:ms:2 {{ printf("t %d\\n", nsecs); print(@c) }}')


def test_generated_programs_run_per_batch_as_per_event() -> None:
    """Differential test: random programs give the same output on whole batches as
    on batches of one event each (the per-event semantics), including map reads
    after writes, assignments mixed with aggregations, per-event map prints and
    exit(); a program that does not type-check raises only ProgramError."""
    rng = np.random.default_rng(5)
    s = Stream().start(100, "a").start(101, "b")
    t = 0
    for _ in range(14):
        k = int(rng.integers(1, 7))
        t += int(rng.integers(1, 3_000_000))
        ts = [t + i for i in range(k)]
        pids = rng.integers(99, 103, size=k).tolist()
        kinds = rng.integers(0, 6, size=k).tolist()
        if rng.random() < 0.7:
            s.emit("page_fault", ts, pids, n=k, address=rng.integers(0, 1 << 40, size=k).tolist(),
                   pfn=rng.integers(0, 6, size=k).tolist(), major=rng.integers(0, 2, size=k).tolist(),
                   write=rng.integers(0, 2, size=k).tolist(), vma_kind=kinds)
        else:
            s.emit("cow", ts, pids, n=k, vma_kind=kinds)
    singles: list[EventBatch] = []
    for b in s.batches:
        singles.extend(b.select(np.arange(b.n) == i) for i in range(b.n))
    gen = ProgramGen(23)
    compared = 0
    for _ in range(80):
        src = gen.program()
        try:
            whole = run(src, s.batches)
        except ProgramError:
            continue
        assert run(src, singles) == whole, src
        compared += 1
    assert compared >= 30
