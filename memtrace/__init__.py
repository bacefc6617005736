"""memtrace: eBPF-style tracing and replay of a faithful simulated Linux memory manager.

The public API, re-exported lazily from the modules that define it (so that the
layers importing ``memtrace.errors`` never pull in the whole package)::

    import memtrace
    result = memtrace.record("private-file-mapping", "pfm.mtrace")
    reader = memtrace.TraceReader("pfm.mtrace")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Bus": "memtrace.tracer",
    "Collector": "memtrace.tracer",
    "EventBatch": "memtrace.tracer",
    "MemtraceError": "memtrace.errors",
    "ParseError": "memtrace.errors",
    "RecordResult": "memtrace.api",
    "Scenario": "memtrace.kernel.workload",
    "ScenarioError": "memtrace.errors",
    "SysctlError": "memtrace.errors",
    "TraceFormatError": "memtrace.errors",
    "TraceReader": "memtrace.tracer",
    "TraceWriter": "memtrace.tracer",
    "builtin_names": "memtrace.kernel.workload",
    "default_registry": "memtrace.tracer",
    "diff_traces": "memtrace.replay",
    "load_scenario": "memtrace.kernel.workload",
    "read_snapshots": "memtrace.api",
    "record": "memtrace.api",
    "replay_trace": "memtrace.replay",
    "resolve_scenario": "memtrace.kernel.workload",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'memtrace' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
