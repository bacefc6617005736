"""Replay of recorded workloads with altered sysctls, machines and cgroups; diffs.

:func:`replay_trace` re-runs the workload a trace recorded on a fresh kernel and
records it again; :func:`diff_traces` compares two traces (inputs, outcome, figures,
first divergence) and says in one line what changed; :func:`render_diff` gives the
text ``memtrace diff`` prints. See ``docs/trace-format.md`` for the file both read
and write.
"""

from .assume import AfterKill, apply_assumption, describe_assumption, parse_assumption
from .baseline import BaselineScore, MemoryMatch, score_baseline
from .diff import Divergence, EventAt, TraceDiff, diff_traces, first_divergence, input_changes
from .overrides import Overrides, apply_overrides, merge_sysctls, parse_set, set_in_workload
from .render import render_diff, verdict
from .replay import (
    ReplayResult,
    default_output,
    recorded_total_events,
    replay_scenario,
    replay_trace,
)
from .summary import (
    COUNTERS,
    MEMORY_KINDS,
    Counter,
    MemoryByKind,
    OomKill,
    Refusal,
    Summarizer,
    TraceSummary,
    summarize_trace,
)

__all__ = [
    "COUNTERS",
    "MEMORY_KINDS",
    "AfterKill",
    "BaselineScore",
    "Counter",
    "Divergence",
    "EventAt",
    "MemoryByKind",
    "MemoryMatch",
    "OomKill",
    "Overrides",
    "Refusal",
    "ReplayResult",
    "Summarizer",
    "TraceDiff",
    "TraceSummary",
    "apply_assumption",
    "apply_overrides",
    "default_output",
    "describe_assumption",
    "diff_traces",
    "first_divergence",
    "input_changes",
    "merge_sysctls",
    "parse_assumption",
    "parse_set",
    "recorded_total_events",
    "render_diff",
    "replay_scenario",
    "replay_trace",
    "score_baseline",
    "set_in_workload",
    "summarize_trace",
    "verdict",
]
