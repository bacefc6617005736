"""The providers' declarations: each tracepoint's knowledge sits on its handler, and
the folder's tables, dispatch and checks are made from them."""

from __future__ import annotations

from pathlib import Path

import pytest

import memtrace.analysis.state as state
from memtrace.analysis.state import (
    FOLD_READS,
    HISTORY_TRACEPOINTS,
    PROVIDERS,
    UNNAMED,
    Fold,
    StateFolder,
    StateProvider,
    folds,
    keeps,
)
from memtrace.tracer import Bus, EventBatch, TraceReader, default_registry
from memtrace.tracer.tracepoints import check_fields

from ..test_odd_values import write


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_exports_are_sorted_and_resolve() -> None:
    assert state.__all__ == sorted(state.__all__, key=_isort_key)
    for name in state.__all__:
        assert getattr(state, name) is not None, name


def test_every_declaration_names_fields_of_this_memtraces_schema() -> None:
    """What a handler says it reads, and which fields name page frames or swap
    slots, exist in the registry's tracepoint with the kind the fold reads."""
    reg = default_registry()
    for provider in PROVIDERS:
        for spec, _handler in provider.declarations():
            tp = reg[spec.tracepoint]
            check_fields(tp, provider.__name__, (*spec.reads, *spec.pfns, *spec.slots), spec.reads_if_present)
            for name in (*spec.pfns, *spec.slots):
                assert tp.field(name).type != "str", (spec.tracepoint, name)


def test_each_tracepoint_is_declared_by_the_providers_that_fold_it() -> None:
    """The derived tables: fork is folded by the tasks and the VMAs and kept; a
    kept-only tracepoint has no handler; every tracepoint of this memtrace is declared
    by some provider (a new one needs a line in one)."""
    by_name: dict[str, list[str]] = {}
    for provider in PROVIDERS:
        for spec, handler in provider.declarations():
            by_name.setdefault(spec.tracepoint, []).append(f"{provider.__name__}.{handler}")
    assert by_name["fork"] == ["TaskProvider._fork", "VmaProvider._fork"]
    assert by_name["exit"] == ["TaskProvider._exit", "VmaProvider._exit", "PageProvider._exit"]
    assert by_name["oom_candidate"] == ["HistoryProvider.None"]
    assert FOLD_READS["fork"] == ("child_pid", "child_comm")
    assert FOLD_READS["cgroup"] == ("op", "path", "memcg_id", "limit_bytes", "task_pid")
    assert {"fork", "oom_candidate", "cgroup"} <= HISTORY_TRACEPOINTS
    assert not {"page_fault", "rss_stat", "snapshot", "lru_move"} & HISTORY_TRACEPOINTS
    undeclared = sorted({tp.name for tp in default_registry()} - set(by_name))
    assert not undeclared, f"declare {undeclared} in the provider of their subsystem (or keeps() in history.py)"


def test_folds_stacks_in_the_order_written() -> None:
    class Toy(StateProvider):
        declared = keeps("zoneinfo")

        @folds("snapshot", reads=("label",))
        @folds("meminfo_sample", keep=True)
        def _reading(self, batch: EventBatch) -> None:
            pass

    assert Toy.declarations() == [(Fold("zoneinfo", keep=True), None),
                                  (Fold("snapshot", reads=("label",)), "_reading"),
                                  (Fold("meminfo_sample", keep=True), "_reading")]


def test_task_fields_come_from_the_task_table(tmp_path: Path) -> None:
    """A pid an mm event names first reads as '?' (and uid, oom_score_adj 0) until
    a task event names it; fork copies uid, oom_score_adj and cgroup from the
    parent; exit and oom_kill are the table's."""
    trace = write(tmp_path / "t.mtrace", [
        ("mmap", 1, 10, {"addr": 0x10000000, "len_bytes": 4096, "handle": "a"}),
        ("cgroup", 2, 0, {"op": "mkdir", "path": "/app", "memcg_id": 5}),
        ("cgroup", 3, 0, {"op": "attach", "path": "/app", "memcg_id": 5, "task_pid": 10}),
        ("fork", 4, 10, {"child_pid": 11, "child_comm": "kid"}),
        ("process_start", 5, 10, {"comm": "parent", "uid": 1000, "oom_score_adj": 300}),
        ("oom_kill", 6, 11, {"victim_pid": 11, "comm": "kid"}),
        ("exit", 7, 11, {"comm": "kid", "code": 137}),
    ])
    folder = StateFolder(TraceReader(trace).meta)
    seen = []
    for batch in TraceReader(trace).ordered_batches():
        folder.on_batch(batch)
        seen.append((folder.procs[10].comm, folder.procs[10].uid, folder.procs[10].oom_score_adj))
    assert seen[0] == (UNNAMED, 0, 0) and seen[-1] == ("parent", 1000, 300)
    kid = folder.procs[11]
    assert (kid.comm, kid.parent, kid.memcg_id, kid.uid) == ("kid", 10, 5, 0)
    assert kid.killed and not kid.alive and kid.exit_code == 137 and kid.vmas == []
    assert folder.tasks.get(11) is kid.task and folder.state().cgroup_path(kid.memcg_id) == "/app"
    assert list(folder.procs) == [10, 11]


def test_a_kept_only_tracepoint_is_counted_and_kept() -> None:
    """drop_caches: History keeps it whole; no handler changes the picture."""
    reg = default_registry()
    folder = StateFolder({})
    bus = Bus(reg)
    bus.attach(folder)
    bus.emit(reg["drop_caches"], 5, 1, value=3, nr_pages=0, slab_pages=0)
    assert folder.history.counts == {"drop_caches": 1} and len(folder.history.of("drop_caches")) == 1
    assert folder.last_ts_ns == 5 and folder.procs == {}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_providers_say_what_they_model(provider: type[StateProvider]) -> None:
    assert provider.__doc__ and provider.declarations()
