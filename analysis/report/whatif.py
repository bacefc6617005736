"""What-if questions about a kill, and how to read the replays that answer them.

Analysis cannot replay (it imports only the tracer): :func:`what_if_changes`
proposes the changes worth trying for a kill, the caller replays the recorded
workload with each and hands back a :class:`ReplayOutcome`, :func:`judge_what_if`
classifies it as a :class:`~.model.WhatIf`, and :func:`with_what_if` adds the answers
to the report, after the unchanged replay's score (:func:`with_baseline`: when
it does not reproduce the recording, no what-if is presented as an answer).

A kill's what-ifs stay in its scope: for a memcg OOM, the replay's kills in that
memory cgroup only (:func:`kill_scope`), and the grower whose oom_score_adj is
tried is one of that cgroup's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from memtrace.linux.limits import PAGE_SIZE
from memtrace.tracer.meta import meta_int, meta_part
from memtrace.units import GiB, format_seconds, format_size

from .model import OomKillReport, OomReport, TaskRef, WhatIf, WhatIfBaseline

__all__ = ["ReplayOutcome", "WhatIfChange", "judge_what_if", "kill_scope", "what_if_changes", "with_baseline",
           "with_what_if"]

#: The outcome of a what-if whose baseline does not reproduce the recording.
NOT_AN_ANSWER = "not an answer"


@dataclass(frozen=True)
class WhatIfChange:
    """A change a replay can try: sysctls, ``--set`` keys (machine, cgroup) and
    oom_score_adj of processes (by pid), with the question it answers."""

    label: str
    kind: str  # oom_score_adj, overcommit, limit, ram, swap
    sysctls: tuple[tuple[str, str], ...] = ()
    sets: tuple[tuple[str, str], ...] = ()
    oom_score_adj: tuple[tuple[int, int], ...] = ()
    question: str = ""


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay with one change did: its OOM kills (pid, comm, points, ts_ns) in
    order and the memory cgroup of each (``kill_memcgs``: its OOM's memcg path, ``""``
    for a global OOM; empty when not known), its ENOMEM refusals (pid, comm, op), a
    panic, or why it could not run."""

    kills: tuple[tuple[int, str, int | None, int], ...] = ()
    kill_memcgs: tuple[str, ...] = ()
    refusals: tuple[tuple[int, str, str], ...] = ()
    panic: str | None = None
    error: str | None = None


def what_if_changes(kill: OomKillReport, meta: Mapping[str, Any]) -> list[WhatIfChange]:
    """The candidate changes worth replaying for ``kill``: the victim's and the top
    grower's oom_score_adj, strict overcommit, a bigger limit (or RAM), and swap.
    ``meta`` is the trace header's."""
    victim_pid = kill.victim.pid
    if kill.constraint == "overcommit" or victim_pid is None:
        return []
    out: list[WhatIfChange] = []
    vname = f"{kill.victim.comm} (pid {victim_pid})"
    victim = next((c for c in kill.candidates if c.pid == victim_pid), None)
    vadj = victim.oom_score_adj if victim is not None and victim.oom_score_adj is not None else 0
    if vadj > 0:
        out.append(WhatIfChange(f"oom_score_adj of {vname} = 0", "oom_score_adj", oom_score_adj=((victim_pid, 0),),
                                question=f"without its oom_score_adj of {vadj}, is {vname} still the victim?"))
    else:
        out.append(WhatIfChange(f"oom_score_adj of {vname} = -1000", "oom_score_adj",
                                oom_score_adj=((victim_pid, -1000),),
                                question=f"if {vname} could not be killed, who would be, or is there no kill?"))
    scope = kill_scope(kill)
    # In the kill's scope only: a memcg OOM chooses among the cgroup's tasks.
    grower = next((g for g in kill.growers if g.pid != victim_pid
                   and (scope is None or _inside(g.cgroup or "/", scope))), None)
    if grower is not None and (not kill.growers or kill.growers[0].pid != victim_pid):
        gname = f"{grower.comm} (pid {grower.pid})"
        out.append(WhatIfChange(f"oom_score_adj of {gname} = 1000", "oom_score_adj",
                                oom_score_adj=((grower.pid, 1000),),
                                question=f"would the OOM killer take the grower, {gname}, instead?"))
    sysctl = meta_part(meta, "sysctl")
    if meta_int(sysctl, "vm.overcommit_memory", "sysctl") != 2:
        out.append(WhatIfChange("vm.overcommit_memory=2", "overcommit", sysctls=(("vm.overcommit_memory", "2"),),
                                question="with strict overcommit, does an allocation fail with ENOMEM instead?"))
    if kill.constraint == "CONSTRAINT_MEMCG" and kill.memcg:
        out.append(WhatIfChange(f"memory.max of {kill.memcg} +50%", "limit",
                                sets=((f"cgroup.{kill.memcg}.max", "+50%"),),
                                question="with a 50% higher cgroup limit, is the kill avoided?"))
    else:
        out.append(WhatIfChange("RAM +50%", "ram", sets=(("machine.ram", "+50%"),),
                                question="with 50% more RAM, is the kill avoided?"))
    machine = meta_part(meta, "machine")
    ram = meta_int(machine, "ram_bytes", "machine") or 0
    swap = meta_int(machine, "swap_bytes", "machine") or 0
    if swap:
        out.append(WhatIfChange("swap x2", "swap", sets=(("machine.swap", "+100%"),),
                                question="with twice the swap, is the kill avoided?"))
    elif ram:
        size = max(ram // 2 // PAGE_SIZE * PAGE_SIZE, GiB)  # --set machine.swap takes whole pages
        out.append(WhatIfChange(f"swap {format_size(size)}", "swap", sets=(("machine.swap", str(size)),),
                                question=f"with {format_size(size)} of swap, is the kill avoided?"))
    return out


def kill_scope(kill: OomKillReport) -> str | None:
    """The memory cgroup a kill's OOM was confined to (a memcg OOM's path), ``""``
    for a global OOM (the replay's kills outside any memcg OOM), None when unknown."""
    if kill.constraint == "CONSTRAINT_MEMCG":
        return kill.memcg or None
    if kill.constraint in ("CONSTRAINT_NONE", "CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY"):
        return ""
    return None


def _inside(path: str, scope: str) -> bool:
    """``path`` is the memcg ``scope`` or one below it (``""``: the global scope)."""
    return scope == "" or path == scope or path.startswith(scope.rstrip("/") + "/")


def judge_what_if(change: WhatIfChange, kill: OomKillReport, kill_index: int, outcome: ReplayOutcome) -> WhatIf:
    """Classify a replay's outcome for the ``kill_index``-th OOM kill of the recording
    in the kill's scope (:func:`kill_scope`: only the replay's kills of the same
    memcg count for a memcg OOM): ``avoided``, ``victim changed``, ``same victim``,
    ``kernel panic`` or ``not replayable``."""
    scope = kill_scope(kill)
    if scope is not None and len(outcome.kill_memcgs) == len(outcome.kills):
        outcome = replace(outcome, kills=tuple(k for k, m in zip(outcome.kills, outcome.kill_memcgs)
                                               if (m == scope if scope == "" else _inside(m or "/", scope))))
    if outcome.error is not None:
        return WhatIf(change.label, "not replayable", outcome.error)
    if outcome.panic is not None:
        return WhatIf(change.label, "kernel panic", f"the replay panicked: {outcome.panic}")
    refused = ""
    if outcome.refusals:
        who = sorted({f"{c} (pid {p}) {op}" for p, c, op in outcome.refusals})
        refused = f"; {len(outcome.refusals)} request(s) failed with ENOMEM instead ({', '.join(who[:3])})"
    if kill_index >= len(outcome.kills):
        n = len(outcome.kills)
        detail = "no OOM kill" if n == 0 else f"only {n} OOM kill(s), this one did not happen"
        return WhatIf(change.label, "avoided", detail + refused)
    pid, comm, points, ts = outcome.kills[kill_index]
    victim = TaskRef(pid, comm)
    at = f" at {format_seconds(ts)}"
    if pid == kill.victim.pid:
        return WhatIf(change.label, "same victim",
                      f"{comm} (pid {pid}) is still killed{at} ({points:,} points)" if points is not None else
                      f"{comm} (pid {pid}) is still killed{at}", victim)
    return WhatIf(change.label, "victim changed",
                  f"{comm} (pid {pid}) is killed instead{at}" + (f" ({points:,} points)" if points is not None else "")
                  + refused, victim)


def with_baseline(report: OomReport, baseline: WhatIfBaseline) -> OomReport:
    """``report`` with ``baseline`` beside every kill's what-ifs; when it does not
    reproduce the recording, each what-if becomes ``not an answer``, its detail
    saying why (the baseline's reasons: which process, which cause) before what the
    replay with the change gave."""
    kills = list(report.kills)
    for i, k in enumerate(kills):
        if not k.what_if:
            continue
        whatifs = k.what_if
        if not baseline.reproduces:
            why = "; ".join(baseline.reasons) or baseline.summary
            whatifs = tuple(replace(w, outcome=NOT_AN_ANSWER,
                                    detail=f"the unchanged replay does not reproduce the recording ({why}); "
                                           f"with the change it gave: {w.outcome}, {w.detail}") for w in whatifs)
        kills[i] = replace(k, what_if=whatifs, what_if_baseline=baseline)
    return replace(report, kills=tuple(kills))


def with_what_if(report: OomReport, answers: Mapping[int, Iterable[WhatIf]]) -> OomReport:
    """``report`` with the what-if answers of each kill (by index into ``kills``)."""
    kills = list(report.kills)
    for i, whatifs in answers.items():
        kills[i] = replace(kills[i], what_if=tuple(whatifs))
    return replace(report, kills=tuple(kills))
