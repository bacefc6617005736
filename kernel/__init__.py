"""The simulated Linux memory manager and the workload model that drives it.

One module per kernel file modelled (``page_alloc``, ``memory``, ``mmap``,
``filemap``, ``shmem``, ``fork``, ``rmap``, ``vmscan``, ``swap``, ``swapfile``,
``page_writeback``, ``memcontrol``, ``oom``, ``meminfo``, ``proc_base``,
``sysctl``), each emitting the tracepoints of the paths it models; ``kernel.py``
holds the machine state they share; ``runner.py`` runs a scenario's processes on
it and ``recorder.py`` records the run. The workload model (scenarios, their TOML
form and their validation) is the ``workload`` package.

Imports only ``memtrace.tracer`` (its emit interface) and the leaves
(``memtrace.errors``, ``memtrace.units``, ``memtrace.linux``).
"""

from .kernel import Kernel, OutOfMemory
from .runner import RunResult, SnapshotRecord, StepError, run_scenario
from .workload import Scenario, builtin_names, load_scenario, resolve_scenario

__all__ = [
    "Kernel",
    "OutOfMemory",
    "RunResult",
    "Scenario",
    "SnapshotRecord",
    "StepError",
    "builtin_names",
    "load_scenario",
    "resolve_scenario",
    "run_scenario",
]
