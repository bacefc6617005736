"""The OOM reports of the sample traces, built once for the report's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.analysis.report import OomReport, build_report
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[3] / "sample_traces"


@pytest.fixture(scope="session")
def reports() -> dict[str, OomReport]:
    return {n: build_report(TraceReader(SAMPLES / f"{n}.mtrace"))
            for n in ("oom-leak", "memcg-oom", "shmem-pressure", "overcommit-strict")}
