"""The fold by commute class (``commute_classes``, as ``walk`` and ``fold_at``
read a trace) gives the state of the fold in ``seq`` order: compared object by
object on every sample trace and on a real recording imported from ``perf
script`` (whose page faults and rss_stat values alternate event by event), and
the interleave bomb comes as two batches per group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memtrace.analysis.state import StateFolder, commute_classes, fold_at, fold_trace
from memtrace.tracer import default_registry
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.craft import bomb_interleave

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "sample_traces").glob("*.mtrace"))


def _plain(reader: TraceReader) -> StateFolder:
    """The fold fed every batch in seq order, as before commute classes."""
    folder = StateFolder(reader.meta)
    for batch in reader.ordered_batches():
        folder.on_batch(batch)
    return folder


def _norm(obj: Any, seen: set[int]) -> Any:
    """``obj`` as plain comparable data: arrays as (dtype, shape, bytes), objects as
    their attributes, dicts by sorted key (the process table's order is the one
    difference commute_classes allows), lists in order."""
    if isinstance(obj, (int, float, str, bool, bytes)) or obj is None:
        return obj
    if isinstance(obj, np.ndarray):
        return (str(obj.dtype), obj.shape, obj.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if id(obj) in seen:
        return "<seen>"
    seen.add(id(obj))
    if isinstance(obj, dict):
        return sorted(((repr(k), _norm(v, seen)) for k, v in obj.items()), key=lambda kv: kv[0])
    if isinstance(obj, (list, tuple)):
        return [_norm(x, seen) for x in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(repr(x) for x in obj)
    if hasattr(obj, "__dict__"):
        return (type(obj).__name__, _norm(vars(obj), seen))
    slots = [s for c in type(obj).__mro__ for s in getattr(c, "__slots__", ())]
    if slots:
        return (type(obj).__name__, [(s, _norm(getattr(obj, s, None), seen)) for s in slots])
    return repr(obj)


def _same_state(a: StateFolder, b: StateFolder) -> None:
    sa, sb = vars(a)["_state"], vars(b)["_state"]
    fields = sorted(set(vars(sa)) - {"_proc_pids"})  # a cache of sorted(procs)
    for name in fields:
        assert _norm(getattr(sa, name), set()) == _norm(getattr(sb, name), set()), name
    assert sorted(a.warnings) == sorted(b.warnings)


@pytest.mark.parametrize("trace", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_fold_by_commute_class_equals_the_fold_in_seq_order(trace: Path) -> None:
    reader = TraceReader(trace)
    _same_state(fold_trace(reader), _plain(reader))


def test_real_import_folds_the_same_in_far_fewer_batches(real_leak_import: Path) -> None:
    reader = TraceReader(real_leak_import)
    _same_state(fold_trace(reader), _plain(reader))
    commute = commute_classes(tp.name for tp in reader.registry)
    plain = sum(1 for _ in reader.ordered_batches())
    grouped = sum(1 for _ in reader.ordered_batches(commute=commute))
    # The real kernel's page faults and rss_stat updates alternate: regrouped,
    # far fewer batches (counted on this recording: see the assertion's message).
    assert grouped * 3 < plain, (grouped, plain)


def test_fold_at_a_reading_by_commute_class_equals_seq_order() -> None:
    """Up to a snapshot label the readings keep their place; up to a time there is
    no regrouping at all (fold_at reads events in time order)."""
    trace = ROOT / "sample_traces" / "swap-pressure.mtrace"
    reader = TraceReader(trace)
    folder, reading, _warnings = fold_at(reader)
    assert reading is not None
    # The same fold, in seq order, stopped at the same reading's seq.
    plain = StateFolder(reader.meta)
    for batch in reader.ordered_batches():
        seq = batch.ints("seq")
        keep = seq <= folder.last_seq
        if keep.any():
            plain.on_batch(batch if keep.all() else batch.select(keep))
    _same_state(folder, plain)


def test_the_fold_regroups_the_page_and_rss_parts() -> None:
    classes = commute_classes(tp.name for tp in default_registry())
    pages = {"page_fault", "cow", "lru_move", "page_cache_add", "page_cache_delete", "swap_out", "swap_in",
             "lazyfree_discard"}
    assert {name for name, cls in classes.items() if cls == classes["page_fault"]} == pages
    assert classes["rss_stat"] != classes["page_fault"]
    # Tracepoints whose fold reads what others write keep their place.
    for ordered in ("mmap", "munmap", "exit", "fork", "meminfo_sample", "snapshot", "oom_kill", "process_start"):
        assert ordered not in classes
    # An observed tracepoint keeps its place too (walk's observe).
    assert "page_fault" not in commute_classes(classes, ordered=["page_fault"])


def test_interleave_bomb_folds_in_two_batches_per_group(tmp_path: Path) -> None:
    path = tmp_path / "bomb.mtrace"
    bomb_interleave(path, size_bytes=40_000)
    reader = TraceReader(path)
    commute = commute_classes(tp.name for tp in reader.registry)
    batches = list(reader.ordered_batches(commute=commute))
    assert len(batches) == reader.scan().chunks
    folder = fold_trace(reader)
    assert folder.history.counts == reader.scan().counts
    _same_state(folder, _plain(reader))
