"""What a process killed in the recording would have done: an assumption, stated.

A workload derived from a real trace (``memtrace import``) ends each OOM victim's
steps at its kill: what it would have done had it lived is not in the trace. The
import records what was seen of it instead (``meta["derived"]["after_kill"]``: the
kill time, its growth over the last second before it by kind, the chunk and period
of that growth, and its planned end: an exit_group it had entered, else the end of
the derived workload). A replay adds the steps of one assumption to each victim:

========================  ======================================================
``grow`` (default)        a victim that was growing at its kill (allocating: the
                          OOM was in its own allocation) keeps growing at its
                          observed rate (the leak goes on) until its planned end;
                          one that was not holds its memory until then
``grow=N`` (a size)       it grows N more at its observed rate, then holds its
                          memory until its planned end
``continue``              it holds its memory, alive, until its planned end
``stop``                  nothing more: it ends at the time it was killed (after
                          the allocation it was killed in, one chunk of its
                          growth, when it was allocating)
========================  ======================================================

Only anonymous and shared-anonymous growth is extended; a growth of file pages is
not (the workload maps no real file), and :func:`describe_assumption` says so.
A trace that is not an import, or an import without kills, needs no assumption.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memtrace.errors import ScenarioError
from memtrace.linux.limits import PAGE_SIZE
from memtrace.units import format_seconds, format_size, format_size_exact, parse_size

__all__ = ["ASSUMPTION_KINDS", "DEFAULT_ASSUMPTION", "AfterKill", "apply_assumption", "describe_assumption",
           "parse_assumption", "victims"]

#: The assumptions ``--assume-after-kill`` takes (``grow`` also as ``grow=SIZE``).
ASSUMPTION_KINDS = ("grow", "continue", "stop")
#: The handles of the mappings an assumption adds (``{i}``: the iteration).
_HANDLE = "after-kill{i}"
_SHM_HANDLE = "after-kill-shm{i}"
#: The most chunks an assumption adds per victim (the scenario language's repeat bound).
_MAX_CHUNKS = 1_000_000
_GROW_SIZE = re.compile(r"^grow\s*=\s*(.+)$")


@dataclass(frozen=True)
class AfterKill:
    """An assumption about a killed process: ``kind`` is grow, continue or stop;
    ``more_bytes`` bounds ``grow`` (None: until its planned end)."""

    kind: str = "grow"
    more_bytes: int | None = None

    def __str__(self) -> str:
        if self.kind == "grow" and self.more_bytes is not None:
            return f"grow={format_size_exact(self.more_bytes)}"
        return self.kind


DEFAULT_ASSUMPTION = AfterKill()


def parse_assumption(text: str) -> AfterKill:
    """``stop``, ``continue``, ``grow`` or ``grow=SIZE`` (``grow=64MiB``);
    ScenarioError naming the bad text otherwise."""
    t = text.strip()
    if t in ASSUMPTION_KINDS:
        return AfterKill(t)
    m = _GROW_SIZE.match(t)
    if m is not None:
        try:
            more = parse_size(m.group(1).strip())
        except ValueError as e:
            raise ScenarioError(f"--assume-after-kill {text!r}: {e}") from None
        if more < 0:
            raise ScenarioError(f"--assume-after-kill {text!r}: a negative size")
        return AfterKill("grow", more)
    raise ScenarioError(f"--assume-after-kill {text!r}: expected stop, continue, grow or grow=SIZE "
                        "(e.g. grow=64MiB)")


def victims(derived: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The after-kill records of a trace header's ``derived`` map (none for a
    trace that is not an import, or has no kill)."""
    if not isinstance(derived, Mapping):
        return []
    entries = derived.get("after_kill")
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("process"), str)]


def clock_origin_ns(derived: Mapping[str, Any] | None) -> int:
    """The recording's time (ns) of a replay's time 0: an imported trace's
    ``meta["derived"]["clock_origin_ns"]`` (its first event), 0 for a recorded scenario
    (the replay runs on the recording's own clock)."""
    value = derived.get("clock_origin_ns") if derived is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _int(entry: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = entry.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _rate(entry: Mapping[str, Any], cls: str) -> int:
    rates = entry.get("bytes_per_s")
    value = rates.get(cls, 0) if isinstance(rates, Mapping) else 0
    return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _growing(entry: Mapping[str, Any]) -> bool:
    """The victim was growing at its kill: the OOM was in its own allocation
    (``allocating``) and its anonymous or shmem memory grew before it. A victim
    killed for another task's allocation is not taken as growing, whatever it did
    earlier (a holder's start-up allocation is no leak)."""
    return entry.get("allocating") is True and _rate(entry, "anon") + _rate(entry, "shmem") > 0


def _steps(entry: Mapping[str, Any], assumption: AfterKill) -> list[dict[str, Any]]:
    """The steps a victim runs after the point of its kill under ``assumption``."""
    every = _int(entry, "every_ns")
    chunk = _int(entry, "chunk_bytes") // PAGE_SIZE * PAGE_SIZE
    if assumption.kind == "stop":
        # The allocation it was killed in is part of what the trace shows (the
        # kill happened inside it): one chunk of its growth, then nothing.
        if entry.get("allocating") is True and chunk > 0 and _rate(entry, "anon") > 0:
            return [{"op": "mmap", "handle": _HANDLE.format(i=""), "length": chunk, "prot": "rw",
                     "on_enomem": "continue"},
                    {"op": "touch", "handle": _HANDLE.format(i=""), "write": True}]
        return []
    hold_ns = max(0, _int(entry, "planned_end_ns") - _int(entry, "kill_ns"))
    steps: list[dict[str, Any]] = []
    grown_ns = 0
    if assumption.kind == "grow" and every > 0 and chunk > 0 and _rate(entry, "anon") > 0 and _growing(entry):
        count = hold_ns // every
        if assumption.more_bytes is not None:
            count = min(count, -(-assumption.more_bytes // chunk))
        count = min(count, _MAX_CHUNKS)
        if count > 0:
            body: list[dict[str, Any]] = [
                {"op": "sleep", "duration": every},
                {"op": "mmap", "handle": _HANDLE, "length": chunk, "prot": "rw", "on_enomem": "continue"},
                {"op": "touch", "handle": _HANDLE, "write": True},
            ]
            shm = _rate(entry, "shmem") * every // 1_000_000_000 // PAGE_SIZE * PAGE_SIZE
            if shm > 0:
                body += [{"op": "mmap", "handle": _SHM_HANDLE, "length": shm, "prot": "rw", "shared": True,
                          "on_enomem": "continue"},
                         {"op": "touch", "handle": _SHM_HANDLE, "write": True}]
            steps.append({"op": "repeat", "count": count, "steps": body})
            grown_ns = count * every
    rest = hold_ns - grown_ns
    if rest > 0:
        steps.append({"op": "sleep", "duration": rest})
    return steps


def apply_assumption(workload: Mapping[str, Any], derived: Mapping[str, Any] | None,
                     assumption: AfterKill | None = None) -> dict[str, Any]:
    """A copy of ``workload`` (a trace header's map) in which each OOM victim of
    ``derived`` (the header's ``derived`` map) runs its derived steps up to its kill
    and then ``assumption``'s (default :data:`DEFAULT_ASSUMPTION`). Without
    after-kill records the copy is unchanged."""
    data = copy.deepcopy(dict(workload))
    entries = victims(derived)
    if not entries:
        return data
    chosen = assumption if assumption is not None else DEFAULT_ASSUMPTION
    by_name = {str(e["process"]): e for e in entries}
    for proc in data.get("process") or []:
        if not isinstance(proc, dict):
            continue
        entry = by_name.get(str(proc.get("name")))
        steps = proc.get("steps")
        if entry is None or not isinstance(steps, list):
            continue
        cut = _int(entry, "steps_at_kill", len(steps))
        if not 0 < cut <= len(steps):
            continue
        proc["steps"] = steps[:cut] + _steps(entry, chosen)
    return data


def _mib_s(bytes_per_s: int) -> str:
    return f"{bytes_per_s / 2**20:.0f} MiB/s"


def describe_assumption(derived: Mapping[str, Any] | None, assumption: AfterKill | None = None) -> list[str]:
    """One sentence per OOM victim of the recording saying what the replay assumed
    it would have done (empty when nothing was assumed)."""
    chosen = assumption if assumption is not None else DEFAULT_ASSUMPTION
    out: list[str] = []
    origin = clock_origin_ns(derived)
    for e in victims(derived):
        name = f"{e.get('comm', e['process'])} (pid {e.get('pid', '?')})"
        kill_s = format_seconds(origin + _int(e, "kill_ns"))
        end_s = format_seconds(origin + _int(e, "planned_end_ns"))
        anon, shmem, file = _rate(e, "anon"), _rate(e, "shmem"), _rate(e, "file")
        growing = _growing(e)
        seen = (f"growing {_mib_s(anon)} anon" + (f", {_mib_s(shmem)} shmem" if shmem else "")
                if growing else "not growing" if e.get("allocating") is True
                else "not allocating (the OOM was another task's)")
        head = f"{name}, killed at {kill_s} while {seen}"
        if chosen.kind == "stop":
            out.append(f"{head}: assumed to end there (--assume-after-kill stop)")
            if growing:
                out[-1] = (f"{head}: assumed to end there, after the allocation it was killed in "
                           "(--assume-after-kill stop)")
        elif chosen.kind == "continue" or not growing:
            out.append(f"{head}: assumed to hold its memory, alive, until {end_s} "
                       f"({e.get('planned_end', 'its planned end')})")
        else:
            more = (f"{format_size(chosen.more_bytes)} more at that rate, then to hold it"
                    if chosen.more_bytes is not None else "to keep growing at that rate")
            out.append(f"{head}: assumed {more} until {end_s} ({e.get('planned_end', 'its planned end')}; "
                       f"--assume-after-kill {chosen})")
        if file and chosen.kind == "grow":
            out[-1] += f"; its file-page growth ({_mib_s(file)}) is not extended"
    return out
