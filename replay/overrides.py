"""What a replay changes: sysctls, machine keys and cgroup keys of a recorded workload.

The recorded workload is the header's ``workload`` map, the scenario in its TOML
shape (:meth:`Scenario.to_dict`). Overrides edit that map and the scenario is
rebuilt from it with :func:`scenario_from_dict`, so an override is validated
exactly as the same key in a scenario file would be, with the same bounds (RAM,
swap, time limit, kernel version, cgroup limits), before the replay starts::

    --sysctl vm.swappiness=10            the sysctls of the run (over the recorded ones)
    --set machine.ram=8GiB               [machine] ram = "8GiB"
    --set machine.swap=+50%              a size relative to the recorded one
    --set machine.time_limit=-50%        so is a duration
    --set cgroup./leaker.max=192MiB      [[cgroup]] path = "/leaker", max = "192MiB"
    --assume-after-kill grow=64MiB       what a process killed in the recording would
                                         have done (an imported trace: see .assume)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from memtrace.errors import ScenarioError, SysctlError
from memtrace.kernel.sysctl import Sysctls, parse_sysctl_assignment
from memtrace.kernel.workload import MachineSpec, Scenario, scenario_from_dict
from memtrace.linux.limits import PAGE_SIZE
from memtrace.units import parse_duration, parse_size

from .assume import DEFAULT_ASSUMPTION, AfterKill, apply_assumption, parse_assumption

#: Keys whose value is a string even when it looks like a number.
_STRING_KEYS = frozenset({"kernel_version", "path", "name", "description"})
#: Keys that take a relative value (``+20%``): sizes (rounded down to a page) and durations.
_SIZE_KEYS = frozenset({"ram", "swap", "max", "swap_max"})
_DURATION_KEYS = frozenset({"time_limit"})
_RELATIVE = re.compile(r"^([+-])([0-9]{1,12}(?:\.[0-9]{1,12})?)%$")


@dataclass(frozen=True)
class Overrides:
    """The changes of a replay, as given on the command line (``KEY=VALUE`` parts).

    ``sysctls`` maps a sysctl name to its value; ``sets`` holds ``(key, value)``
    pairs such as ``("machine.ram", "8GiB")`` or ``("cgroup./leaker.max", "+20%")``,
    applied in order; ``assume_after_kill`` is what a process the recording's OOM
    killer took would have done (``stop``, ``continue``, ``grow``, ``grow=SIZE``;
    None: the default, ``grow``), for a workload derived from a real trace.
    """

    sysctls: tuple[tuple[str, str], ...] = ()
    sets: tuple[tuple[str, str], ...] = ()
    assume_after_kill: str | None = None

    def __post_init__(self) -> None:
        if self.assume_after_kill is not None:
            object.__setattr__(self, "assume_after_kill", str(parse_assumption(self.assume_after_kill)))

    @property
    def empty(self) -> bool:
        """No change at all (an explicit assumption is one)."""
        return not self.sysctls and not self.sets and self.assume_after_kill is None

    @property
    def assumption(self) -> AfterKill:
        """The after-kill assumption (the default when none was given)."""
        if self.assume_after_kill is None:
            return DEFAULT_ASSUMPTION
        return parse_assumption(self.assume_after_kill)

    @classmethod
    def parse(cls, sysctls: list[str] | tuple[str, ...] = (), sets: list[str] | tuple[str, ...] = (),
              assume_after_kill: str | None = None) -> Overrides:
        """Overrides from ``KEY=VALUE`` strings and an assumption
        (``stop|continue|grow|grow=SIZE``); SysctlError or ScenarioError if malformed."""
        return cls(tuple(parse_sysctl_assignment(s) for s in sysctls), tuple(parse_set(s) for s in sets),
                   assume_after_kill)

    def describe(self) -> list[str]:
        """Each override as ``KEY=VALUE``, sysctls first, the assumption last."""
        out = [f"{k}={v}" for k, v in self.sysctls] + [f"{k}={v}" for k, v in self.sets]
        if self.assume_after_kill is not None:
            out.append(f"assume-after-kill={self.assume_after_kill}")
        return out


def parse_set(text: str) -> tuple[str, str]:
    """Split a ``--set`` assignment into (key, value); ScenarioError if malformed.

    The key is ``machine.KEY`` or ``cgroup.PATH.KEY`` (PATH may contain dots and
    slashes; the last dot ends it).
    """
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ScenarioError(f"bad --set {text!r}: expected KEY=VALUE, e.g. machine.ram=8GiB "
                            "or cgroup./leaker.max=192MiB")
    section = key.split(".", 1)[0]
    if section not in ("machine", "cgroup"):
        raise ScenarioError(f"bad --set {text!r}: the key must start with 'machine.' or 'cgroup.' "
                            "(sysctls take --sysctl)")
    if section == "cgroup":
        path, dot, name = key[len("cgroup."):].rpartition(".")
        if not dot or not path or not name:
            raise ScenarioError(f"bad --set {text!r}: expected cgroup.PATH.KEY=VALUE, e.g. cgroup./leaker.max=192MiB")
    elif key.count(".") != 1 or not key.split(".", 1)[1]:
        raise ScenarioError(f"bad --set {text!r}: expected machine.KEY=VALUE, e.g. machine.ram=8GiB")
    return key, value


def _coerce(option: str, key: str, text: str, old: Any) -> Any:
    """The TOML value of ``key`` for ``text`` (given as ``--set option=text``): a
    relative size or duration (``+20%``) of ``old``, an integer, a boolean, or the
    string itself (size strings such as ``8GiB`` stay strings and are parsed by
    the scenario loader)."""
    m = _RELATIVE.match(text)
    if m is not None:
        if key not in _SIZE_KEYS | _DURATION_KEYS:
            raise ScenarioError(f"--set {option}={text}: a relative value applies to a size or a duration "
                                f"({', '.join(sorted(_SIZE_KEYS | _DURATION_KEYS))}), not to {key}")
        what = "size" if key in _SIZE_KEYS else "duration"
        try:
            base = parse_size(old) if key in _SIZE_KEYS else parse_duration(old)
        except ValueError:
            raise ScenarioError(f"--set {option}={text}: a relative value needs a recorded {what}, "
                                f"and {key} is {old!r}") from None
        factor = 1 + Fraction(m.group(2)) / 100 * (1 if m.group(1) == "+" else -1)
        value = int(base * factor)
        return value - value % PAGE_SIZE if key in _SIZE_KEYS else value
    if key in _STRING_KEYS:
        return text
    if re.fullmatch(r"-?[0-9]{1,30}", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def set_in_workload(workload: Mapping[str, Any], key: str, text: str) -> dict[str, Any]:
    """A copy of ``workload`` with one ``--set`` applied (not validated: see
    :func:`apply_overrides`). ScenarioError when the key names no recorded cgroup."""
    parse_set(f"{key}={text}")
    data = copy.deepcopy(dict(workload))
    _apply_set(data, key, text)
    return data


def _apply_set(workload: dict[str, Any], key: str, text: str) -> None:
    section, rest = key.split(".", 1)
    if section == "machine":
        machine = workload.setdefault("machine", {})
        old = machine.get(rest)
        if old is None and rest == "time_limit":  # to_dict() leaves the default out
            old = MachineSpec.time_limit_ns
        machine[rest] = _coerce(key, rest, text, old)
        return
    path, _, name = rest.rpartition(".")
    if not path.startswith("/"):
        path = "/" + path
    groups = workload.get("cgroup") or []
    for group in groups:
        if isinstance(group, dict) and group.get("path") == path:
            group[name] = _coerce(key, name, text, group.get(name))
            return
    known = ", ".join(str(g.get("path")) for g in groups if isinstance(g, dict)) or "none"
    raise ScenarioError(f"--set {key}={text}: the recorded workload has no cgroup {path!r} (cgroups: {known})")


def apply_overrides(workload: Mapping[str, Any], overrides: Overrides, source: str, *,
                    derived: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario of ``workload`` (a trace header's map) with ``overrides.sets`` applied.

    ``derived`` is the header's ``derived`` map of an imported trace: each process
    the recording's OOM killer took then runs the steps of ``overrides.assumption``
    after the point of its kill (:mod:`.assume`). Each ``--set`` is checked as it
    is applied, so an error names it. Sysctls are not applied here: they go to the
    run (see :func:`merge_sysctls`).
    """
    data = apply_assumption(workload, derived, overrides.assumption)
    try:
        scenario = scenario_from_dict(data, source)
    except ScenarioError as e:
        raise ScenarioError(f"the recorded workload does not load: {e}") from None
    for key, text in overrides.sets:
        _apply_set(data, key, text)
        try:
            scenario = scenario_from_dict(data, source)
        except ScenarioError as e:
            raise ScenarioError(f"--set {key}={text}: {e}") from None
    return scenario


def merge_sysctls(recorded: Mapping[str, Any], overrides: Overrides) -> dict[str, str]:
    """The sysctl overrides of the replay run: the recorded ones, then ``overrides``.

    With no new sysctls the recorded map comes back unchanged (same keys, same
    strings), so the new header is byte-identical. New ones are checked (SysctlError
    names the bad one) and replace a recorded value of the same sysctl however it
    was spelled (``swappiness`` and ``vm.swappiness`` are one).
    """
    merged = {str(k): str(v) for k, v in recorded.items()}
    if not overrides.sysctls:
        return merged
    probe = Sysctls()
    canonical: dict[str, str] = {}
    for key, value in merged.items():
        try:
            name, _ = probe.check(key, value)
        except SysctlError:
            name = key
        canonical[name] = value
    for key, value in overrides.sysctls:
        try:
            name, _ = probe.check(key, value)
        except SysctlError as e:
            raise SysctlError(f"--sysctl {key}={value}: {e}") from None
        canonical[name] = value
    return dict(sorted(canonical.items()))


def replay_template(meta: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The header template of a replay of the trace whose header is ``meta``: the
    same, with the after-kill assumption the replay used in ``derived`` (for an
    imported trace with OOM kills), so that its header says what it assumed."""
    out = dict(meta)
    derived = meta.get("derived")
    if isinstance(derived, Mapping) and derived.get("after_kill"):
        out["derived"] = {**derived, "assumption": str(overrides.assumption)}
    return out
