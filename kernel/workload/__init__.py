"""The workload model: scenarios as data, their TOML form, and their validation.

A :class:`Scenario` is a machine (RAM, swap), sysctls, memory cgroups, files that
exist on disk at boot, and processes with per-process steps. Steps name mappings by
*handle*, never by address, so a replay whose outcome diverges (an mmap refused, a
process killed earlier) stays well defined.

A process with ``forked = true`` does not start at boot: a ``fork`` step of another
process starts it (``{ op = "fork", child = "name" }``), sharing the parent's
mappings (same handles) copy-on-write.

The package, one concern per module:

- ``steps.py``: one frozen dataclass per step ``op``, with its TOML keys;
- ``model.py``: :class:`MachineSpec`, :class:`CgroupSpec`, :class:`FileSpec`,
  :class:`ProcessSpec`, :class:`Scenario`, and their plain-data form (``to_dict``);
- ``bounds.py``: the bounds every value is checked against;
- ``codec.py``: TOML files and TOML-shaped data into a scenario;
- ``validate.py``: the bounds and cross-references, linear in the scenario's size;
- ``builtin.py``: the built-in scenarios (TOML files in ``kernel/scenarios/``).
"""

from __future__ import annotations

from .bounds import (
    MAX_CGROUP_LIMIT_BYTES,
    MAX_CGROUPS,
    MAX_EXIT_CODE,
    MAX_PID,
    MAX_RAM_BYTES,
    MAX_REPEAT_COUNT,
    MAX_REPEAT_DEPTH,
    MAX_SIZE_BYTES,
    MAX_SWAP_BYTES,
    MAX_TIME_NS,
    MAX_UID,
    MIN_PID,
    MIN_RAM_BYTES,
    PATH_MAX,
    SCENARIO_NAME,
)
from .builtin import builtin_dir, builtin_names, resolve_scenario
from .codec import MAX_SCENARIO_FILE_BYTES, load_scenario, scenario_from_dict, step_from_dict
from .model import CgroupSpec, FileSpec, MachineSpec, ProcessSpec, Scenario
from .steps import (
    MADV_ADVICE,
    STEP_TYPES,
    Brk,
    DropCaches,
    Exit,
    FileRead,
    FileWrite,
    Fork,
    Ftruncate,
    Madvise,
    Mlock,
    Mmap,
    Mprotect,
    Mremap,
    Munlock,
    Munmap,
    Repeat,
    SetOomAdj,
    SetOomScoreAdj,
    Shmat,
    ShmctlRmid,
    Shmdt,
    Shmget,
    ShmLock,
    ShmOpen,
    ShmUnlink,
    ShmUnlock,
    Sleep,
    Snapshot,
    Step,
    StepField,
    StepKind,
    Sync,
    Touch,
    Unlink,
    Wait,
    step_fields,
    step_to_dict,
)
from .validate import validate

__all__ = [
    "MADV_ADVICE",
    "MAX_CGROUPS",
    "MAX_CGROUP_LIMIT_BYTES",
    "MAX_EXIT_CODE",
    "MAX_PID",
    "MAX_RAM_BYTES",
    "MAX_REPEAT_COUNT",
    "MAX_REPEAT_DEPTH",
    "MAX_SCENARIO_FILE_BYTES",
    "MAX_SIZE_BYTES",
    "MAX_SWAP_BYTES",
    "MAX_TIME_NS",
    "MAX_UID",
    "MIN_PID",
    "MIN_RAM_BYTES",
    "PATH_MAX",
    "SCENARIO_NAME",
    "STEP_TYPES",
    "Brk",
    "CgroupSpec",
    "DropCaches",
    "Exit",
    "FileRead",
    "FileSpec",
    "FileWrite",
    "Fork",
    "Ftruncate",
    "MachineSpec",
    "Madvise",
    "Mlock",
    "Mmap",
    "Mprotect",
    "Mremap",
    "Munlock",
    "Munmap",
    "ProcessSpec",
    "Repeat",
    "Scenario",
    "SetOomAdj",
    "SetOomScoreAdj",
    "ShmLock",
    "ShmOpen",
    "ShmUnlink",
    "ShmUnlock",
    "Shmat",
    "ShmctlRmid",
    "Shmdt",
    "Shmget",
    "Sleep",
    "Snapshot",
    "Step",
    "StepField",
    "StepKind",
    "Sync",
    "Touch",
    "Unlink",
    "Wait",
    "builtin_dir",
    "builtin_names",
    "load_scenario",
    "resolve_scenario",
    "scenario_from_dict",
    "step_fields",
    "step_from_dict",
    "step_to_dict",
    "validate",
]
