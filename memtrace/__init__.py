"""memtrace: eBPF-style tracing and replay of a faithful simulated Linux memory manager.

The public API, re-exported lazily from the modules that define it (so that the
layers importing ``memtrace.errors`` never pull in the whole package). Every
command has a Python twin returning the data the command renders (see
:mod:`memtrace.api`)::

    import memtrace
    memtrace.record("oom-leak", "oom-leak.mtrace")
    memtrace.stat_trace("oom-leak.mtrace").stats.counts["oom_kill"]      # 1
    memtrace.explain("oom-leak.mtrace", at=4_500_000_000).result.totals   # bytes by kind
    memtrace.ps("oom-leak.mtrace").result.rows[0].comm                   # who dies next
    report = memtrace.report("oom-leak.mtrace", jobs=2).result           # with what-if replays
    memtrace.diff_traces("oom-leak.mtrace", "overcommit-strict.mtrace").verdict
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Bus": "memtrace.tracer",
    "CaptureError": "memtrace.errors",
    "Collector": "memtrace.tracer",
    "EventBatch": "memtrace.tracer",
    "ExplainResult": "memtrace.analysis.explain",
    "Explained": "memtrace.api",
    "ExportResult": "memtrace.analysis.export",
    "FreeSnapshot": "memtrace.api",
    "GraphFile": "memtrace.api",
    "ImportResult": "memtrace.analysis.importers",
    "InputError": "memtrace.errors",
    "LimitError": "memtrace.errors",
    "LiveRecordResult": "memtrace.analysis.importers.live",
    "LiveTarget": "memtrace.analysis.importers.live",
    "LiveTraceResult": "memtrace.analysis.importers.live",
    "MemtraceError": "memtrace.errors",
    "NotATraceError": "memtrace.errors",
    "NotFoundError": "memtrace.errors",
    "OomReport": "memtrace.analysis.report.model",
    "OomReportText": "memtrace.analysis.kernlog",
    "OutputError": "memtrace.errors",
    "Overrides": "memtrace.replay",
    "ParseError": "memtrace.errors",
    "ProcTable": "memtrace.analysis.ps",
    "ProcessUsageTable": "memtrace.analysis.explain",
    "RecordResult": "memtrace.api",
    "ReplayOutcome": "memtrace.analysis.report",
    "ReplayResult": "memtrace.replay",
    "Scenario": "memtrace.kernel.workload",
    "ScenarioError": "memtrace.errors",
    "SweepResult": "memtrace.replay.sweep",
    "SysctlError": "memtrace.errors",
    "Tool": "memtrace.tracer.tools",
    "TraceDiff": "memtrace.replay",
    "TraceFormatError": "memtrace.errors",
    "TraceReader": "memtrace.tracer",
    "TraceStat": "memtrace.api",
    "TraceWriter": "memtrace.tracer",
    "UsageError": "memtrace.errors",
    "Warned": "memtrace.api",
    "WhatIfChange": "memtrace.analysis.report",
    "WhatIfPlan": "memtrace.whatif",
    "answer_what_ifs": "memtrace.whatif",
    "builtin_names": "memtrace.kernel.workload",
    "default_registry": "memtrace.tracer",
    "diff_traces": "memtrace.replay",
    "dmesg": "memtrace.api",
    "explain": "memtrace.api",
    "explain_by_process": "memtrace.api",
    "export": "memtrace.api",
    "free": "memtrace.api",
    "import_trace": "memtrace.api",
    "load_scenario": "memtrace.kernel.workload",
    "load_tool": "memtrace.api",
    "open_trace": "memtrace.api",
    "plan_what_ifs": "memtrace.whatif",
    "ps": "memtrace.api",
    "read_snapshots": "memtrace.api",
    "record": "memtrace.api",
    "record_live": "memtrace.api",
    "replay_trace": "memtrace.replay",
    "report": "memtrace.api",
    "resolve_scenario": "memtrace.kernel.workload",
    "run_what_ifs": "memtrace.whatif",
    "stat_trace": "memtrace.api",
    "sweep": "memtrace.api",
    "trace_live": "memtrace.api",
    "what_if_report": "memtrace.whatif",
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
