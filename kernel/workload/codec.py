"""Reading a scenario: TOML files and TOML-shaped data into :class:`Scenario`.

The TOML form mirrors the objects one to one::

    name = "private-anon-mapping"
    description = "mmap 1 GiB private anonymous memory, write it, unmap it"

    [machine]
    ram = "24GiB"

    [[process]]
    name = "writer"
    steps = [
      { op = "snapshot", label = "before" },
      { op = "mmap", handle = "buf", length = "1GiB", prot = "rw" },
      { op = "touch", handle = "buf", write = true },
    ]

Sizes take an integer of bytes or a string with a binary unit (``"64MiB"``,
``"4k"``); durations an integer of nanoseconds or a string (``"100ms"``, ``"2s"``),
both read exactly by :mod:`memtrace.units`. Every problem is a ScenarioError naming
the source, the process, the step number (from 1) and the key; a bad sysctl is a
SysctlError. The way back, a scenario as plain data, is :meth:`Scenario.to_dict`
(and :func:`step_to_dict` for one step).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memtrace.errors import LimitError, ScenarioError
from memtrace.units import format_size_exact, parse_duration, parse_size

from .bounds import MAX_REPEAT_DEPTH, SCENARIO_NAME, brief
from .model import CgroupSpec, FileSpec, MachineSpec, ProcessSpec, Scenario
from .steps import MADV_ADVICE, STEP_TYPES, Step, StepKind, step_fields
from .validate import check_machine, validate

#: Largest scenario file read (the built-ins are a few KiB): a device such as
#: /dev/zero or a stray huge file is refused instead of read into memory.
MAX_SCENARIO_FILE_BYTES = 16 << 20

#: Keys of the scenario's top-level table and of its sub-tables.
SCENARIO_KEYS = frozenset({"name", "description", "machine", "sysctl", "file", "cgroup", "process"})
MACHINE_KEYS = frozenset({"ram", "swap", "kernel_version", "cgroup_version", "time_limit", "disk_write_rate"})
FILE_KEYS = frozenset({"path", "size"})
CGROUP_KEYS = frozenset({"path", "max", "swap_max"})
PROCESS_KEYS = frozenset({"name", "uid", "oom_score_adj", "start", "forked", "steps", "pid", "cgroup", "comm"})


def _convert(kind: StepKind, value: object) -> Any:
    """``value`` read as ``kind``; ValueError says what was expected."""
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {brief(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {brief(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {brief(value)}")
        return value
    if kind == "size":
        return parse_size(value)
    if kind == "duration":
        return parse_duration(value)
    if kind == "prot":
        if not isinstance(value, str) or not set(value) <= set("rwx"):
            raise ValueError(f"expected a protection such as \"r\", \"rw\" or \"rx\", got {brief(value)}")
        return "".join(c for c in "rwx" if c in value)
    if kind == "advice":
        if value not in MADV_ADVICE:
            raise ValueError(f"expected one of {', '.join(repr(a) for a in MADV_ADVICE)}, got {brief(value)}")
        return value
    if kind == "on_enomem":
        if value not in ("exit", "continue"):
            raise ValueError(f"expected \"exit\" or \"continue\", got {brief(value)}")
        return value
    raise AssertionError(kind)


def step_from_dict(data: object, where: str, depth: int = 0) -> Step:
    """Build a step from its TOML table; ScenarioError names ``where`` and the key.

    ``depth`` is the number of repeats the step is inside.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: a step must be a table such as {{ op = \"sleep\", duration = \"1ms\" }}")
    op = data.get("op")
    if op is None:
        raise ScenarioError(f"{where}: missing key 'op'")
    cls = STEP_TYPES.get(op) if isinstance(op, str) else None
    if cls is None:
        raise ScenarioError(f"{where}: key 'op': unknown op {brief(op)} (known: {', '.join(sorted(STEP_TYPES))})")
    fields = step_fields(cls)
    keys = {f.key for f in fields}
    unknown = sorted(str(k) for k in set(data) - keys - {"op"})
    if unknown:
        names = ", ".join(f.key for f in fields) or "none"
        raise ScenarioError(f"{where}: op {op!r} takes no key {unknown[0]!r} (keys: {names})")
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.key not in data:
            if f.required:
                raise ScenarioError(f"{where}: op {op!r} needs key {f.key!r}")
            continue
        value = data[f.key]
        if f.kind == "steps":
            if not isinstance(value, list) or not value:
                raise ScenarioError(f"{where}: key {f.key!r}: expected a non-empty array of step tables")
            if depth + 1 > MAX_REPEAT_DEPTH:
                raise ScenarioError(f"{where}: key {f.key!r}: repeats nest more than {MAX_REPEAT_DEPTH} deep")
            kwargs[f.attr] = tuple(step_from_dict(b, f"{where}.{n}", depth + 1) for n, b in enumerate(value, 1))
            continue
        try:
            kwargs[f.attr] = _convert(f.kind, value)
        except ValueError as e:
            raise ScenarioError(f"{where}: key {f.key!r}: {e}") from None
    return cls(**kwargs)


def _check_keys(table: Mapping[Any, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(table) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")


def _get(table: Mapping[Any, Any], key: str, kind: StepKind, default: Any, where: str) -> Any:
    if key not in table:
        return default
    try:
        return _convert(kind, table[key])
    except ValueError as e:
        raise ScenarioError(f"{where}: key {key!r}: {e}") from None


def _tables(data: Mapping[Any, Any], key: str, source: str) -> list[Any]:
    """The array of tables under ``key`` (``[[file]]``, ``[[cgroup]]``), or []."""
    tables = data.get(key, [])
    if not isinstance(tables, list):
        raise ScenarioError(f"{source}: key {key!r} must be an array of tables ([[{key}]])")
    return tables


def _machine_from_dict(table: object, source: str) -> MachineSpec:
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{source}: [machine] must be a table")
    where = f"{source}: [machine]"
    _check_keys(table, MACHINE_KEYS, where)
    machine = MachineSpec(
        ram_bytes=_get(table, "ram", "size", MachineSpec.ram_bytes, where),
        swap_bytes=_get(table, "swap", "size", MachineSpec.swap_bytes, where),
        kernel_version=_get(table, "kernel_version", "str", MachineSpec.kernel_version, where),
        cgroup_version=_get(table, "cgroup_version", "int", MachineSpec.cgroup_version, where),
        time_limit_ns=_get(table, "time_limit", "duration", MachineSpec.time_limit_ns, where),
        disk_write_bytes_per_s=_get(table, "disk_write_rate", "size", MachineSpec.disk_write_bytes_per_s, where),
    )
    check_machine(machine, where)
    return machine


def _sysctls_from_dict(table: object, source: str) -> dict[str, Any]:
    """``"vm.name" = value`` pairs, or ``[sysctl.vm] name = value``; checked by validate()."""
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{source}: [sysctl] must be a table of \"vm.name\" = value")
    sysctls: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):  # [sysctl.vm] swappiness = 10
            for sub, v in value.items():
                sysctls[f"{key}.{sub}"] = v
        else:
            sysctls[key] = value
    return sysctls


def _process_from_dict(p: object, i: int, source: str) -> ProcessSpec:
    where = f"{source}: process {i}"
    if not isinstance(p, Mapping):
        raise ScenarioError(f"{where}: must be a table")
    _check_keys(p, PROCESS_KEYS, where)
    pname = _get(p, "name", "str", None, where)
    if not pname:
        raise ScenarioError(f"{where}: needs key 'name'")
    where = f"{source}: process {pname!r}"
    raw_steps = p.get("steps", [])
    if not isinstance(raw_steps, list):
        raise ScenarioError(f"{where}: key 'steps' must be an array of tables")
    steps = tuple(step_from_dict(s, f"{where} step {j}") for j, s in enumerate(raw_steps, 1))
    return ProcessSpec(
        name=pname,
        steps=steps,
        uid=_get(p, "uid", "int", 0, where),
        oom_score_adj=_get(p, "oom_score_adj", "int", 0, where),
        start_ns=_get(p, "start", "duration", 0, where),
        forked=_get(p, "forked", "bool", False, where),
        pid=_get(p, "pid", "int", None, where),
        cgroup=_get(p, "cgroup", "str", "/", where),
        comm=_get(p, "comm", "str", "", where),
    )


def scenario_from_dict(data: object, source: str = "<dict>") -> Scenario:
    """Build and validate a scenario from TOML-shaped data.

    Every problem raises ScenarioError naming ``source``, the process, the step
    number (from 1) and the key (SysctlError for a sysctl).
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: a scenario must be a table, not {type(data).__name__}")
    _check_keys(data, SCENARIO_KEYS, source)
    if "name" in data:
        name = _get(data, "name", "str", "", source)
    else:
        name = Path(source).stem
        if not SCENARIO_NAME.fullmatch(name):
            raise ScenarioError(f"{source}: no key 'name', and the file name {name!r} is not a scenario name "
                                "(letters, digits, '.', '_', '-'): add name = \"...\"")
    description = _get(data, "description", "str", "", source)
    machine = _machine_from_dict(data.get("machine", {}), source)
    sysctls = _sysctls_from_dict(data.get("sysctl", {}), source)

    files: list[FileSpec] = []
    for i, f in enumerate(_tables(data, "file", source), 1):
        where = f"{source}: file {i}"
        if not isinstance(f, Mapping):
            raise ScenarioError(f"{where}: must be a table with path and size")
        _check_keys(f, FILE_KEYS, where)
        if "path" not in f or "size" not in f:
            raise ScenarioError(f"{where}: needs keys 'path' and 'size'")
        files.append(FileSpec(_get(f, "path", "str", "", where), _get(f, "size", "size", 0, where)))

    cgroups: list[CgroupSpec] = []
    for i, c in enumerate(_tables(data, "cgroup", source), 1):
        where = f"{source}: cgroup {i}"
        if not isinstance(c, Mapping) or "path" not in c:
            raise ScenarioError(f"{where}: must be a table with at least a path")
        _check_keys(c, CGROUP_KEYS, where)
        cgroups.append(CgroupSpec(_get(c, "path", "str", "", where), _get(c, "max", "size", 0, where),
                                  _get(c, "swap_max", "size", -1, where)))

    raw_procs = data.get("process", [])
    if not isinstance(raw_procs, list) or not raw_procs:
        raise ScenarioError(f"{source}: needs at least one [[process]]")
    processes = tuple(_process_from_dict(p, i, source) for i, p in enumerate(raw_procs, 1))
    scenario = Scenario(
        name=name,
        description=description,
        machine=machine,
        sysctls=sysctls,
        files=tuple(files),
        cgroups=tuple(cgroups),
        processes=processes,
        source=source,
    )
    validate(scenario)
    return scenario


#: Most parts of a dotted TOML key (``a.b.c = 1`` has three): 64, where a scenario
#: uses at most three. tomllib's time and memory grow with the square of a dotted
#: key's parts (a 60 KB line of one 30,000-part key takes 3.6 GB), so longer keys
#: are refused by a linear scan before tomllib sees the file.
MAX_TOML_KEY_PARTS = 64
#: Longest TOML key (one part of a dotted key, bare or quoted): 4096 characters
#: (PATH_MAX); scenario keys are short names.
MAX_TOML_KEY_CHARS = 4096
_KEY_PART = r"""(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
#: A dotted key of more than MAX_TOML_KEY_PARTS parts; starts only where a key
#: can start, and possessive, so the scan is linear.
_LONG_DOTTED = re.compile(rf"""(?<![A-Za-z0-9_"'.-])(?:{_KEY_PART}[ \t]*+\.[ \t]*+){{{MAX_TOML_KEY_PARTS}}}""")
#: A key part longer than MAX_TOML_KEY_CHARS, followed by '=' or '.'.
_LONG_KEY = re.compile(rf"""(?<![A-Za-z0-9_"'.-])(?:[A-Za-z0-9_-]{{{MAX_TOML_KEY_CHARS + 1},}}+"""
                       rf"""|"[^"\n]{{{MAX_TOML_KEY_CHARS + 1},}}+"|'[^'\n]{{{MAX_TOML_KEY_CHARS + 1},}}+')"""
                       rf"""[ \t]*+[=.]""")


def _check_toml_keys(text: str, path: Path) -> None:
    """LimitError naming the line of a key beyond MAX_TOML_KEY_PARTS parts or
    MAX_TOML_KEY_CHARS characters (a text in a string that looks like one is
    refused too: a scenario has no such text)."""
    for pattern, what, possible in (
            (_LONG_DOTTED, f"a dotted key of more than {MAX_TOML_KEY_PARTS} parts",
             text.count(".") >= MAX_TOML_KEY_PARTS),
            (_LONG_KEY, f"a key longer than {MAX_TOML_KEY_CHARS} characters", len(text) > MAX_TOML_KEY_CHARS)):
        m = pattern.search(text) if possible else None
        if m is not None:
            line = text.count("\n", 0, m.start()) + 1
            raise LimitError(f"{path}: line {line}: {what} ({brief(m.group(), 40)}): not a scenario file")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (UTF-8, as TOML requires)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SCENARIO_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"cannot read scenario {path}: {e.strerror or e}") from None
    if len(raw) > MAX_SCENARIO_FILE_BYTES:
        raise ScenarioError(f"{path}: not a scenario file: larger than {format_size_exact(MAX_SCENARIO_FILE_BYTES)}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not a TOML file: byte 0x{raw[e.start]:02x} at offset {e.start} "
                            "is not UTF-8") from None
    _check_toml_keys(text, path)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:  # ValueError: an integer of over 4300 digits
        raise ScenarioError(f"{path}: malformed TOML: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: malformed TOML: arrays or tables nest too deeply") from None
    return scenario_from_dict(data, str(path))
