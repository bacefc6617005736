"""The memory graph: process -> VMA -> page runs -> backing -> cgroup, with sharing
edges; runs, not pages; GraphML and node-link JSON export."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from memtrace.analysis.graph import graph_summary, memory_graph, write_graph
from memtrace.analysis.state import StateFolder, Stop, fold_at, walk
from memtrace.tracer import TraceReader

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MiB = 1 << 20


def _graph(name: str, label: str) -> nx.DiGraph:
    folder, _, _ = fold_at(TraceReader(SAMPLES / f"{name}.mtrace"), label)
    return memory_graph(folder.state())


def _rel(g: nx.DiGraph, rel: str) -> list[tuple[str, str, dict]]:
    return [(a, b, d) for a, b, d in g.edges(data=True) if d["rel"] == rel]


def test_fork_cow_graph_has_runs_and_cow_sharing_edges() -> None:
    """fork-cow after the children wrote: one VMA per process, each cut into a run of
    private copies and a run still shared with the parent; cow_shares edges count
    the shared pages exactly (512 MiB minus what each child wrote)."""
    g = _graph("fork-cow", "children-wrote")
    s = graph_summary(g)
    assert s["nodes.process"] == 4 and s["nodes.vma"] == 4
    assert s["nodes.page_run"] == 8  # 2 runs per VMA for 960 MiB: never one node per page
    shares = {g.nodes[b]["pid"]: d["pages"] for a, b, d in _rel(g, "cow_shares")}
    assert shares == {101: (512 - 64) * MiB // 4096, 102: (512 - 128) * MiB // 4096, 103: (512 - 256) * MiB // 4096}
    runs = [d for _, d in g.nodes(data=True) if d["type"] == "page_run"]
    assert sum(d["bytes"] for d in runs if not d["shared"]) == (64 + 64 + 128 + 256) * MiB
    assert {d["origin"] for d in runs} == {"zero-fill", "cow-anon"}
    # every anon run is backed by the one anon object of the parent's VMA, charged to /
    assert len({b for _, b, _ in _rel(g, "backed_by")}) == 1
    (_anon, cg, d), = _rel(g, "charged_to")
    assert cg == "cgroup:/" and d["bytes"] == 960 * MiB
    assert len(_rel(g, "forked")) == 3


def test_page_cache_shared_by_several_mappers() -> None:
    """memcg-oom: three processes map libpython shared: shares_cache edges, one file node."""
    reader = TraceReader(SAMPLES / "memcg-oom.mtrace")

    def at_first_oom(name: str, fields: dict, folder: StateFolder) -> None:
        raise Stop

    folder = walk(reader, StateFolder(reader.meta), observe=at_first_oom, observe_tracepoints=("oom_candidate",))
    g = memory_graph(folder.state())
    files = [n for n, d in g.nodes(data=True) if d["type"] == "file"]
    assert len(files) == 1 and "libpython" in g.nodes[files[0]]["path"]
    mappers = {g.nodes[a]["pid"] for a, b, d in g.edges(data=True) if d["rel"] == "maps"
               and g.nodes[b]["path"].endswith("libpython3.11.so.1.0")}
    shares = _rel(g, "shares_cache")
    assert mappers == {4724, 4725, 4847}
    # each edge leaves the first VMA that maps a page: 4724 shares with both later
    # mappers; 4725 with 4847 the pages 4724 never touched
    assert sorted(d["pages"] for _, _, d in shares) == [20, 1637, 1637]


def test_unmapped_tmpfs_runs_hang_off_their_object() -> None:
    g = _graph("shmem-pressure", "after-kill")
    shm = [n for n, d in g.nodes(data=True) if d["type"] == "shmem"]
    assert len(shm) == 1
    runs = [a for a, b, d in _rel(g, "backed_by") if b == shm[0]]
    assert sum(g.nodes[r]["bytes"] for r in runs) == 768 * MiB
    assert all(g.nodes[r]["mapped"] is False for r in runs)
    (_, cg, d), = [e for e in _rel(g, "charged_to") if e[0] == shm[0]]
    assert cg == "cgroup:/batch" and d["bytes"] == 768 * MiB


def test_export_graphml_and_node_link_json(tmp_path: Path) -> None:
    g = _graph("private-file-mapping", "after-write")
    assert write_graph(g, tmp_path / "g.graphml") == "graphml"
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert back.number_of_nodes() == g.number_of_nodes() and back.number_of_edges() == g.number_of_edges()
    assert write_graph(g, tmp_path / "g.json") == "node-link-json"
    data = json.loads((tmp_path / "g.json").read_text())
    assert {"nodes", "links", "directed"} <= set(data)
    assert nx.node_link_graph(data, edges="links").number_of_edges() == g.number_of_edges()
    kinds = {d["state"] for _, d in g.nodes(data=True) if d["type"] == "page_run"}
    assert kinds == {"anon", "file"}  # the private copies, and the unmapped cache of the file
