"""OOM root-cause reports: why a process was OOM-killed, and what would have avoided it.

======================  ====================================================
module                  job
======================  ====================================================
:mod:`.model`           the report as frozen data (and its JSON shape)
:mod:`.observe`         the fold a report reads: state, tasks, pictures at each OOM
:mod:`.build`           a trace's events -> :class:`OomReport`
:mod:`.why`             the sentences that explain a kill
:mod:`.whatif`          what-if changes to replay, and their verdicts
:mod:`.document`        the report as a document: sections, tables, figures
:mod:`.sections`        which sections a kill has (the one place to add one)
:mod:`.text`            the document for terminals
:mod:`.markdown`        the document as Markdown
:mod:`.html`            the document as one self-contained HTML page
:mod:`.plots`           its figures (matplotlib, loaded only for HTML)
:mod:`.as_json`         the report as JSON
:mod:`.render`          :func:`render_report`: any of those by name
======================  ====================================================

A kernel log gives the same :class:`OomReport` (the kernel-log reader), so every
renderer works on both.
"""

from __future__ import annotations

from .build import DEFAULT_WINDOW_NS, REPORT_READS, build_report
from .model import (
    Candidate,
    Grower,
    OomKillReport,
    OomReport,
    ProcessSeries,
    ReclaimActivity,
    TaskRef,
    Timeline,
    Unreclaimable,
    WhatIf,
    WhatIfBaseline,
)
from .render import FORMATS, render_report
from .whatif import (
    ReplayOutcome,
    WhatIfChange,
    judge_what_if,
    kill_scope,
    what_if_changes,
    with_baseline,
    with_what_if,
)

__all__ = [
    "DEFAULT_WINDOW_NS",
    "FORMATS",
    "REPORT_READS",
    "Candidate",
    "Grower",
    "OomKillReport",
    "OomReport",
    "ProcessSeries",
    "ReclaimActivity",
    "ReplayOutcome",
    "TaskRef",
    "Timeline",
    "Unreclaimable",
    "WhatIf",
    "WhatIfBaseline",
    "WhatIfChange",
    "build_report",
    "judge_what_if",
    "kill_scope",
    "render_report",
    "what_if_changes",
    "with_baseline",
    "with_what_if",
]
