"""The simulated Linux memory manager and the workload model that drives it.

Imports only ``memtrace.tracer`` (its emit interface) and ``memtrace.errors``.
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
