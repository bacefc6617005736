"""How closely a replay reproduces a recording: the baseline score.

A what-if is an answer only when the UNCHANGED replay of the recorded workload
reproduces the recording; otherwise the difference a change makes cannot be told
from the difference the replay already makes. :func:`score_baseline` compares two
summaries (:class:`~.summary.TraceSummary`), the recording's and the replay's:

- the OOM kills: victims (by comm, then pid) and their order;
- the ENOMEM refusals, counted;
- each process's memory (``kmem:rss_stat``): peak and final resident size, and the
  peak of each kind, for processes that held at least :data:`MIN_COMPARED_BYTES`;
- each memory cgroup's peak usage, where both traces read it (``memcg_stat``).

The baseline *reproduces* the recording when the kills match in order and the
ENOMEM counts are equal; RSS deviations are reported beside it (a replay whose
processes hold 30 % less memory may still kill the same victims, and a reader
should know). When it does not reproduce, :attr:`BaselineScore.reasons` says which
process diverged and what the replay gave it, so a report can say why it declines
to answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memtrace.units import format_seconds, format_size

from .summary import ProcessMemory, TraceSummary

__all__ = ["MIN_COMPARED_BYTES", "BaselineScore", "MemoryMatch", "score_baseline"]

#: Processes smaller than this in the recording (1 MiB) are not compared: a shell
#: or a timeout process differs by pages without meaning anything.
MIN_COMPARED_BYTES = 1 << 20
#: Below this relative deviation of resident memory, a process "matches".
RSS_TOLERANCE = 0.10


@dataclass(frozen=True)
class MemoryMatch:
    """One process of the recording and what the replay gave the same process (by
    pid, else by comm): peak and final resident bytes in each."""

    pid: int
    comm: str
    recorded_peak: int
    replayed_peak: int | None
    recorded_final: int
    replayed_final: int | None

    @property
    def deviation(self) -> float | None:
        """The larger relative deviation of peak and final (None: not in the replay)."""
        if self.replayed_peak is None or self.replayed_final is None:
            return None
        peak = abs(self.replayed_peak - self.recorded_peak) / max(self.recorded_peak, 1)
        final = abs(self.replayed_final - self.recorded_final) / max(self.recorded_final, MIN_COMPARED_BYTES)
        return max(peak, final)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "comm": self.comm, "recorded_peak_bytes": self.recorded_peak,
                "replayed_peak_bytes": self.replayed_peak, "recorded_final_bytes": self.recorded_final,
                "replayed_final_bytes": self.replayed_final, "deviation": self.deviation}


@dataclass(frozen=True)
class BaselineScore:
    """The unchanged replay against the recording (see the module docstring)."""

    kills_recorded: tuple[tuple[str, int], ...]
    kills_replayed: tuple[tuple[str, int], ...]
    enomem_recorded: int
    enomem_replayed: int
    memory: tuple[MemoryMatch, ...]
    memcg: tuple[tuple[str, int, int], ...]
    reasons: tuple[str, ...]

    @property
    def kills_matched(self) -> int:
        """How many of the recording's kills the replay repeats, in order (by comm)."""
        n = 0
        for (a, _), (b, _) in zip(self.kills_recorded, self.kills_replayed):
            if a != b:
                break
            n += 1
        return n

    @property
    def reproduces(self) -> bool:
        """The kills match in order (same victims, same count) and the ENOMEMs too."""
        return ([c for c, _ in self.kills_recorded] == [c for c, _ in self.kills_replayed]
                and self.enomem_recorded == self.enomem_replayed)

    @property
    def worst_deviation(self) -> float | None:
        """The largest memory deviation of a compared process (None: none compared)."""
        devs = [m.deviation for m in self.memory if m.deviation is not None]
        return max(devs) if devs else None

    def summary(self) -> str:
        """One line: ``baseline reproduces the recording: kills 2/2 in order, RSS within 3%``."""
        verb = "reproduces" if self.reproduces else "does NOT reproduce"
        return f"baseline {verb} the recording: {self.figures()}"

    def figures(self) -> str:
        """The comparison alone: ``kills 2/2 in order, RSS within 3%``."""
        kills = f"kills {self.kills_matched}/{len(self.kills_recorded)} in order"
        if len(self.kills_replayed) != len(self.kills_recorded):
            kills += f" ({len(self.kills_replayed)} in the replay)"
        parts = [kills]
        if self.enomem_recorded or self.enomem_replayed:
            parts.append(f"ENOMEM {self.enomem_replayed}/{self.enomem_recorded}")
        worst = self.worst_deviation
        missing = sum(1 for m in self.memory if m.deviation is None)
        if worst is not None:
            parts.append(f"RSS within {worst:.0%}")
        if missing:
            parts.append(f"{missing} process(es) missing")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reproduces": self.reproduces,
            "summary": self.summary(),
            "kills_recorded": [{"comm": c, "pid": p} for c, p in self.kills_recorded],
            "kills_replayed": [{"comm": c, "pid": p} for c, p in self.kills_replayed],
            "kills_matched": self.kills_matched,
            "enomem_recorded": self.enomem_recorded,
            "enomem_replayed": self.enomem_replayed,
            "worst_rss_deviation": self.worst_deviation,
            "processes": [m.as_dict() for m in self.memory],
            "memcg": [{"path": p, "recorded_peak_bytes": a, "replayed_peak_bytes": b} for p, a, b in self.memcg],
            "reasons": list(self.reasons),
        }


def _match(recorded: ProcessMemory, replayed: Mapping[int, ProcessMemory]) -> ProcessMemory | None:
    same = replayed.get(recorded.pid)
    if same is not None and same.comm == recorded.comm:
        return same
    by_comm = [p for p in replayed.values() if p.comm == recorded.comm]
    return by_comm[0] if len(by_comm) == 1 else same


def _why(comm: str, pid: int, rec: ProcessMemory | None, rep: ProcessMemory | None, *, recorded_kill: bool,
         ts_ns: int) -> str:
    where = "the recording" if recorded_kill else "the replay"
    other = "the replay" if recorded_kill else "the recording"
    text = f"{comm} (pid {pid}) was killed at {format_seconds(ts_ns)} in {where} but not in {other}"
    if rec is not None and rep is not None:
        text += (f"; its peak RSS is {format_size(rep.peak_rss)} in the replay against "
                 f"{format_size(rec.peak_rss)} recorded")
        if rep.first_ns > rec.first_ns + 1_000_000_000:
            text += f", and the replay first gives it memory {format_seconds(rep.first_ns - rec.first_ns)} later"
        if rec.peak_rss and rep.peak_rss < rec.peak_rss // 2:
            text += " (did it hold memory from before the trace started that the replay does not give it?)"
    elif rec is not None:
        text += f"; the replay never gives it memory (recorded peak {format_size(rec.peak_rss)})"
    return text


def score_baseline(recorded: TraceSummary, replayed: TraceSummary) -> BaselineScore:
    """Score ``replayed`` (the unchanged replay) against ``recorded``."""
    kills_a = tuple((k.comm, k.pid) for k in recorded.oom_kills)
    kills_b = tuple((k.comm, k.pid) for k in replayed.oom_kills)
    memory = []
    for proc in sorted(recorded.processes.values(), key=lambda p: (-p.peak_rss, p.pid)):
        if proc.peak_rss < MIN_COMPARED_BYTES:
            continue
        twin = _match(proc, replayed.processes)
        memory.append(MemoryMatch(proc.pid, proc.comm, proc.peak_rss, twin.peak_rss if twin else None,
                                  proc.final.get("rss", 0), twin.final.get("rss", 0) if twin else None))
    memcg = tuple((path, peak, replayed.memcg_peak[path]) for path, peak in sorted(recorded.memcg_peak.items())
                  if path in replayed.memcg_peak)
    reasons: list[str] = []
    if [c for c, _ in kills_a] != [c for c, _ in kills_b]:
        names_b = [c for c, _ in kills_b]
        for kill in recorded.oom_kills:
            if kill.comm in names_b:
                names_b.remove(kill.comm)
                continue
            rec = recorded.processes.get(kill.pid)
            rep = _match(rec, replayed.processes) if rec is not None else None
            reasons.append(_why(kill.comm, kill.pid, rec, rep, recorded_kill=True, ts_ns=kill.ts_ns))
        names_a = [c for c, _ in kills_a]
        for kill in replayed.oom_kills:
            if kill.comm in names_a:
                names_a.remove(kill.comm)
                continue
            rep = replayed.processes.get(kill.pid)
            rec = _match(rep, recorded.processes) if rep is not None else None
            reasons.append(_why(kill.comm, kill.pid, rec, rep, recorded_kill=False, ts_ns=kill.ts_ns))
        if not reasons:
            reasons.append(f"the victims are the same but their order differs: recorded "
                           f"{', '.join(c for c, _ in kills_a)}; replayed {', '.join(c for c, _ in kills_b)}")
    if len(recorded.refusals) != len(replayed.refusals):
        reasons.append(f"{len(recorded.refusals)} ENOMEM refusal(s) recorded, {len(replayed.refusals)} in the replay")
    return BaselineScore(kills_a, kills_b, len(recorded.refusals), len(replayed.refusals), tuple(memory), memcg,
                         tuple(reasons))
