"""The trace header's ``meta`` map and the footer, checked once where they are read.

A file's checksums say nothing of its values. The reader decodes the header and the
footer into plain data (:mod:`.tracefile.unpack`: text keys, no bytes, no extension
types, bounded nesting), then checks the keys memtrace itself reads here, once:

- :func:`check_meta` gives a :class:`TraceMeta` (with its :class:`MachineMeta`) and
  the meta map with every value of a wrong kind removed (a ``seed`` that is
  negative, a ``scenario`` that is a number, a ``sysctl_overrides`` value that is
  not text ...), each removal named in a warning;
- :func:`check_footer` does the same for the footer (:class:`TraceFooter`).

Code after the reader therefore never meets bytes, a number or a nested map where it
expects text. :func:`meta_part` and :func:`meta_int` remain for readers of maps that
did not come through a :class:`~memtrace.tracer.tracefile.TraceReader` (a header
built in a test, an imported snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "CGROUP_VERSIONS",
    "EMPTY_MACHINE",
    "SEED_MAX",
    "MachineMeta",
    "TraceFooter",
    "TraceMeta",
    "check_footer",
    "check_meta",
    "meta_int",
    "meta_part",
    "note",
    "value_desc",
]

#: Largest seed of the kernel's random number generator (``memtrace record --seed``).
SEED_MAX = (1 << 63) - 1
#: Largest byte count or time a header or footer may give (RAM, swap, ns): 2**63 - 1.
_COUNT_MAX = (1 << 63) - 1
#: The cgroup hierarchies a machine can run.
CGROUP_VERSIONS = (1, 2)
#: Longest scenario name or kernel version accepted (the scenario bound is 128).
_NAME_MAX_CHARS = 256


def value_desc(value: Any) -> str:
    """``'bogus' (str)``: a header value as a message shows it, at most 40 characters."""
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({type(value).__name__})"


def meta_part(meta: Mapping[str, Any], key: str, warnings: list[str] | None = None) -> Mapping[str, Any]:
    """``meta[key]`` (``machine``, ``sysctl`` ...) when it is a map. A part that is
    absent, or not a map (a damaged or hand-written header), reads as empty; the
    second adds a warning naming it to ``warnings``."""
    part = meta.get(key) if isinstance(meta, Mapping) else None
    if part is None or isinstance(part, Mapping):
        return part or {}
    note(warnings, f"trace header: meta.{key} is {value_desc(part)}, not a map: ignored")
    return {}


def meta_int(part: Mapping[str, Any], key: str, where: str, warnings: list[str] | None = None) -> int | None:
    """``part[key]`` as an integer, or None when absent; a value that is not one
    (``"lots"``, a list) reads as absent, with a warning naming ``where.key``."""
    value = part.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            pass
    note(warnings, f"trace header: meta.{where}.{key} is {value_desc(value)}, not an integer: ignored")
    return None


def note(warnings: list[str] | None, message: str) -> None:
    if warnings is not None and message not in warnings:
        warnings.append(message)


@dataclass(frozen=True)
class MachineMeta:
    """The header's ``meta.machine``: the machine the trace was recorded on (or, for
    an import, what the real kernel's log said of it). None: not given, or not a
    value that could be true (it was dropped with a warning)."""

    ram_bytes: int | None = None
    swap_bytes: int | None = None
    kernel_version: str | None = None
    cgroup_version: int | None = None


EMPTY_MACHINE = MachineMeta()


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class TraceMeta:
    """The header's ``meta`` map, checked: what a recording depended on.

    ``scenario`` is the scenario's name; ``workload`` the scenario as data (checked
    as a map only: a replay checks it as a scenario); ``sysctl`` every effective
    sysctl at boot (name -> int); ``sysctl_overrides`` the ``--sysctl`` values given
    to the recorder (name -> text); ``seed`` the kernel RNG's seed; ``source`` the
    importer's description of a trace imported from a real kernel. ``raw`` is the
    whole checked map, unknown keys included (plain data).
    """

    scenario: str | None = None
    seed: int | None = None
    machine: MachineMeta = EMPTY_MACHINE
    sysctl: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    sysctl_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    workload: Mapping[str, Any] | None = None
    source: Mapping[str, Any] | str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class _Checker:
    """Drops values of a wrong kind from a plain map, warning once for each."""

    def __init__(self, where: str, warnings: list[str]) -> None:
        self.where = where
        self.warnings = warnings

    def drop(self, path: str, value: Any, wanted: str) -> None:
        note(self.warnings, f"{self.where}: {path} is {value_desc(value)}, not {wanted}: ignored")

    def take(self, d: dict[str, Any], key: str, path: str, ok: bool, wanted: str) -> bool:
        """Keep ``d[key]`` when ``ok``; drop it with a warning otherwise."""
        if ok:
            return True
        self.drop(path, d.pop(key), wanted)
        return False

    def count(self, d: dict[str, Any], key: str, path: str, low: int = 0, high: int = _COUNT_MAX) -> int | None:
        """``d[key]`` when it is an integer in ``low..high`` (None when absent or dropped)."""
        if key not in d or d[key] is None:
            return None
        value = d[key]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return value if self.take(d, key, path, ok, f"an integer in {low}..{high}") else None

    def text(self, d: dict[str, Any], key: str, path: str, max_chars: int = _NAME_MAX_CHARS) -> str | None:
        if key not in d or d[key] is None:
            return None
        value = d[key]
        ok = isinstance(value, str) and len(value) <= max_chars and "\0" not in value
        return value if self.take(d, key, path, ok, f"text of at most {max_chars} characters") else None

    def table(self, d: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        """``d[key]`` when it is a map (copied, so it can be pruned), else None."""
        if key not in d or d[key] is None:
            return None
        value = d[key]
        if not self.take(d, key, path, isinstance(value, dict), "a map"):
            return None
        copy = dict(value)
        d[key] = copy
        return copy

    def records(self, items: list[Any], path: str, ints: tuple[str, ...], texts: tuple[str, ...]) -> list[Any]:
        """The maps of ``items`` whose ``ints`` keys (when present) are integers and
        ``texts`` keys text; the others are dropped, with one warning."""
        def ok(item: Any) -> bool:
            return (isinstance(item, dict)
                    and all(type(item.get(k, 0)) is int for k in ints)
                    and all(isinstance(item.get(k, ""), str) for k in texts))

        kept = [item for item in items if ok(item)]
        if len(kept) < len(items):
            bad = next(item for item in items if not ok(item))
            note(self.warnings, f"{self.where}: {len(items) - len(kept)} of {path} ignored (such as "
                                f"{value_desc(bad)}): not maps of the recorder's kinds")
        return kept

    def entries(self, d: dict[str, Any], path: str, kind: type, wanted: str) -> dict[str, Any]:
        """Keep the entries of map ``d`` whose value is a ``kind`` (no bool for int)."""
        for key in list(d):
            value = d[key]
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if kind is int and ok and not -(1 << 63) <= value < 1 << 64:
                ok = False
            self.take(d, key, f"{path}.{key}", ok, wanted)
        return d


def check_meta(meta: Mapping[str, Any], warnings: list[str]) -> tuple[TraceMeta, dict[str, Any]]:
    """The checked :class:`TraceMeta` of a header's plain ``meta`` map, and the map
    with each value of a wrong kind removed (each named in ``warnings``)."""
    c = _Checker("trace header", warnings)
    m = dict(meta)
    scenario = c.text(m, "scenario", "meta.scenario")
    seed = c.count(m, "seed", "meta.seed", 0, SEED_MAX)
    machine = MachineMeta()
    mach = c.table(m, "machine", "meta.machine")
    if mach is not None:
        machine = MachineMeta(
            ram_bytes=c.count(mach, "ram_bytes", "meta.machine.ram_bytes"),
            swap_bytes=c.count(mach, "swap_bytes", "meta.machine.swap_bytes"),
            kernel_version=c.text(mach, "kernel_version", "meta.machine.kernel_version", 64),
            cgroup_version=c.count(mach, "cgroup_version", "meta.machine.cgroup_version", 1, 2),
        )
    sysctl = c.table(m, "sysctl", "meta.sysctl")
    if sysctl is not None:
        c.entries(sysctl, "meta.sysctl", int, "an integer")
    overrides = c.table(m, "sysctl_overrides", "meta.sysctl_overrides")
    if overrides is not None:
        c.entries(overrides, "meta.sysctl_overrides", str, "text")
    workload = c.table(m, "workload", "meta.workload")
    source = m.get("source")
    if source is not None and not isinstance(source, (str, dict)):
        c.drop("meta.source", m.pop("source"), "a name or a map")
        source = None
    typed = TraceMeta(
        scenario=scenario,
        seed=seed,
        machine=machine,
        sysctl=_frozen(sysctl or {}),
        sysctl_overrides=_frozen(overrides or {}),
        workload=_frozen(workload) if workload is not None else None,
        source=_frozen(source) if isinstance(source, dict) else source,
        raw=_frozen(m),
    )
    return typed, m


@dataclass(frozen=True)
class TraceFooter:
    """The footer, checked: the writer's totals and the recorder's summary.

    ``aborted`` is the reason a recording stopped early (the exception's class name,
    or ``"aborted"``), None for a recording that finished; an aborted trace holds
    what was recorded until then.
    """

    counts: Mapping[str, int]
    total_events: int | None
    last_seq: int | None
    first_ts_ns: int | None
    last_ts_ns: int | None
    chunks: int | None
    groups: int | None
    extra: Mapping[str, Any]
    aborted: str | None


#: The keys of a footer's ``errors`` and ``oom_kills`` entries that readers take as
#: integers or as text (see kernel/runner.py's StepError and the OOM killer's record).
_ERROR_INTS = ("pid", "ts_ns")
_ERROR_TEXTS = ("comm", "op", "errno", "message")
_KILL_INTS = ("pid", "ts_ns", "points", "oom_score_adj", "oom_id", "trigger_pid")
_KILL_TEXTS = ("comm", "constraint", "memcg", "trigger_comm")


def check_footer(footer: Mapping[str, Any], warnings: list[str], where: str) -> tuple[TraceFooter, dict[str, Any]]:
    """The checked :class:`TraceFooter` of a plain footer map, and the map with each
    value of a wrong kind removed (each named in ``warnings``, prefixed ``where``)."""
    c = _Checker(where, warnings)
    f = dict(footer)
    counts = c.table(f, "counts", "footer counts")
    if counts is not None:
        c.entries(counts, "footer counts", int, "an integer")
    totals = {key: c.count(f, key, f"footer {key}")
              for key in ("total_events", "last_seq", "first_ts_ns", "last_ts_ns", "chunks", "groups")}
    extra = c.table(f, "extra", "footer extra")
    if extra is None:
        extra = {}
        f["extra"] = extra
    pids = c.table(extra, "pids", "footer extra.pids")
    if pids is not None:
        c.entries(pids, "footer extra.pids", int, "a pid")
    for key, ints, texts in (("errors", _ERROR_INTS, _ERROR_TEXTS), ("oom_kills", _KILL_INTS, _KILL_TEXTS)):
        if isinstance(extra.get(key), list):
            extra[key] = c.records(extra[key], f"footer extra.{key}", ints, texts)
    c.count(extra, "end_ns", "footer extra.end_ns")
    c.text(extra, "panic", "footer extra.panic", 4096)
    # The writer puts ``aborted: true`` at the top and the reason in
    # ``extra.aborted``; an older writer wrote the reason only.
    reason = c.text(extra, "aborted", "footer extra.aborted")
    flag = f.get("aborted")
    if flag is not None and not isinstance(flag, bool):
        c.drop("footer aborted", f.pop("aborted"), "true or false")
        flag = None
    aborted = (reason or "aborted") if flag or reason is not None else None
    typed = TraceFooter(
        counts=_frozen(counts or {}),
        extra=_frozen(extra),
        aborted=aborted,
        **totals,
    )
    return typed, f
