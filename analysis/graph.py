"""The memory graph: processes, VMAs, page runs, backing objects and cgroups (networkx).

:func:`memory_graph` turns a :class:`~memtrace.analysis.state.MemoryState` into a
``networkx.DiGraph``::

    process --maps--> vma --contains--> page run --backed_by--> backing --charged_to--> cgroup
    process --member_of--> cgroup           process --forked--> process
    vma --cow_shares--> vma                 vma --shares_cache--> vma
    backing (shmem) --swapped_to--> swap

A *page run* is a stretch of consecutive virtual pages of one VMA in the same state
(what they hold, whether another process maps them too, how an anonymous page was
made), never one node per page. Page cache that no process maps gets runs of
consecutive file pages, attached to their file only. *Backing* nodes are files,
shmem objects (tmpfs files, POSIX and SysV shared memory, shared anonymous mappings),
the anonymous memory of a VMA and its fork copies (``anon``), the swap device and the
zero page. Sharing edges say how many pages two VMAs share: copy-on-write anonymous
pages after fork (``cow_shares``), page cache or shmem mapped by both
(``shares_cache``).

Node ids are strings (``proc:100``, ``vma:7``, ``run:7:0``, ``file:12``, ``anon:3``,
``cache:12:0``, ``cgroup:/batch``, ``swap``, ``zero``); every node has ``type`` and
``label``. :func:`write_graph` exports GraphML (``.graphml``) or node-link JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import networkx as nx
import numpy as np

from memtrace.linux.limits import PAGE_SHIFT, PAGE_SIZE
from memtrace.safewrite import safe_output

from .state import (
    K_ANON,
    K_FILE,
    K_SHMEM,
    ORIGIN_NAMES,
    PTE_ZERO,
    SWP_BASE,
    MemoryState,
    VmArea,
)

#: Page-run states, as the ``state`` attribute of a run node.
RUN_STATES = ("zero", "anon", "anon_cow_shared", "file", "file_shared", "shmem", "shmem_shared", "swap")
_KIND_OF_STATE = {"zero": "zero", "anon": "anon", "anon_cow_shared": "anon", "file": "file", "file_shared": "file",
                  "shmem": "shmem", "shmem_shared": "shmem", "swap": "swap"}


def memory_graph(state: MemoryState) -> nx.DiGraph:
    """The graph of ``state`` (see the module docstring)."""
    g = nx.DiGraph(name="memtrace memory graph", ts_ns=int(state.ts_ns))
    pg = state.pages
    for path in sorted(set(state.cgroups.values())):
        g.add_node(_cg(path), type="cgroup", label=path, path=path,
                   limit_bytes=int(state.cgroup_limits.get(path, 0)))
    for pid in sorted(state.procs):
        p = state.procs[pid]
        if not p.alive:
            continue
        g.add_node(f"proc:{pid}", type="process", label=f"{p.comm} (pid {pid})", pid=pid, comm=p.comm, uid=p.uid,
                   oom_score_adj=p.oom_score_adj, cgroup=state.cgroup_path(p.memcg_id),
                   pgtables_bytes=p.pgtables_pages * PAGE_SIZE)
        _edge(g, f"proc:{pid}", _cg(state.cgroup_path(p.memcg_id)), "member_of")
        if p.parent is not None and p.parent in state.procs and state.procs[p.parent].alive:
            _edge(g, f"proc:{p.parent}", f"proc:{pid}", "forked")
    vmas = list(state.live_vmas())
    lineage = _lineage(state, vmas)
    by_vid = {v.vid: v for v in vmas}
    first_owner = np.full(pg.nr_pfns, -1, dtype=np.int32)
    for v in vmas:
        _add_vma(g, state, v, lineage, by_vid)
        present = v.ptes[v.ptes >= 0].astype(np.int64)
        if len(present):
            present = present[pg.kind[present] != 0]
            prev = first_owner[present]
            first_owner[present[prev < 0]] = v.vid
            shared_with = prev[prev >= 0]
            for other, n in zip(*np.unique(shared_with, return_counts=True)):
                kinds = pg.kind[present[prev == other]]
                rel = "cow_shares" if bool((kinds == K_ANON).any()) else "shares_cache"
                _edge(g, f"vma:{int(other)}", f"vma:{v.vid}", rel, pages=int(n), bytes=int(n) * PAGE_SIZE)
    _add_backing_charges(g, state, vmas, lineage)
    _add_unmapped_cache(g, state)
    _add_shmem_swap(g, state)
    return g


def _cg(path: str) -> str:
    return f"cgroup:{path}"


def _edge(g: nx.DiGraph, a: str, b: str, rel: str, **attrs: Any) -> None:
    g.add_edge(a, b, rel=rel, **attrs)


def _lineage(state: MemoryState, vmas: list[VmArea]) -> dict[int, int]:
    """vid -> vid of the VMA whose anonymous memory it inherited by fork (itself if none)."""
    by_vid = {v.vid: v for v in vmas}
    out: dict[int, int] = {}
    for v in vmas:
        root = v
        while root.forked_from is not None and root.forked_from in by_vid:
            root = by_vid[root.forked_from]
        out[v.vid] = root.vid
    return out


def _inode_node(g: nx.DiGraph, state: MemoryState, ino: int) -> str:
    node_id = f"file:{ino}"
    if node_id not in g:
        node = state.inodes.get(ino)
        g.add_node(node_id, type="shmem" if node is not None and node.shmem else "file",
                   label=node.display if node is not None else f"inode {ino}", ino=int(ino),
                   path=(node.path if node is not None else ""),
                   object_kind=(node.kind if node is not None else "file"),
                   unlinked=bool(node.unlinked) if node is not None else False)
    return node_id


def _special(g: nx.DiGraph, node_id: str, label: str) -> str:
    if node_id not in g:
        g.add_node(node_id, type=node_id, label=label)
    return node_id


def _add_vma(g: nx.DiGraph, state: MemoryState, v: VmArea, lineage: dict[int, int],
             by_vid: dict[int, VmArea]) -> None:
    pg = state.pages
    vid = f"vma:{v.vid}"
    g.add_node(vid, type="vma", label=f"{v.label} [{v.kind}]", pid=v.pid, handle=v.handle, kind=v.kind,
               start=int(v.start), end=int(v.end), nr_pages=v.nr_pages, path=v.path, ino=int(v.ino))
    _edge(g, f"proc:{v.pid}", vid, "maps")
    ptes = v.ptes.astype(np.int64)
    state_code = np.full(len(ptes), -1, dtype=np.int64)
    present = ptes >= 0
    p = ptes[present]
    k = pg.kind[p]
    shared = pg.mapcount[p] > 1
    code = np.full(len(p), -1, dtype=np.int64)
    code[k == K_ANON] = np.where(shared[k == K_ANON], 2, 1)
    code[k == K_FILE] = np.where(shared[k == K_FILE], 4, 3)
    code[k == K_SHMEM] = np.where(shared[k == K_SHMEM], 6, 5)
    origin = np.where(k == K_ANON, pg.origin[p], 0).astype(np.int64)
    state_code[present] = code * 8 + np.where(code >= 0, origin, 0)
    state_code[ptes == PTE_ZERO] = 0
    state_code[ptes <= SWP_BASE] = 7 * 8
    if not (state_code >= 0).any():
        return
    change = np.flatnonzero(np.diff(state_code) != 0) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(state_code)]))
    n_run = 0
    for a, b in zip(starts.tolist(), ends.tolist()):
        c = int(state_code[a])
        if c < 0:
            continue
        st = RUN_STATES[c // 8]
        run_id = f"run:{v.vid}:{n_run}"
        n_run += 1
        attrs: dict[str, Any] = {"type": "page_run", "label": f"{st} x{b - a}", "state": st,
                                 "kind": _KIND_OF_STATE[st], "first_page": a,
                                 "address": int(v.start + (a << PAGE_SHIFT)), "nr_pages": b - a,
                                 "bytes": (b - a) * PAGE_SIZE, "shared": st.endswith("_shared")}
        if st.startswith("anon"):
            attrs["origin"] = ORIGIN_NAMES[c % 8]
        g.add_node(run_id, **attrs)
        _edge(g, vid, run_id, "contains")
        if st.startswith("anon"):
            backing = f"anon:{lineage[v.vid]}"
            if backing not in g:
                root = by_vid.get(lineage[v.vid], v)
                g.add_node(backing, type="anon", label=f"anonymous memory of {root.label} (pid {root.pid})",
                           root_vma=int(root.vid))
        elif st in ("file", "file_shared", "shmem", "shmem_shared"):
            backing = _inode_node(g, state, v.ino) if v.ino else _special(g, "anon-shared", "shared anonymous")
        elif st == "swap":
            backing = _special(g, "swap", "swap device")
        else:
            backing = _special(g, "zero", "the zero page")
        _edge(g, run_id, backing, "backed_by")


def _add_backing_charges(g: nx.DiGraph, state: MemoryState, vmas: list[VmArea], lineage: dict[int, int]) -> None:
    """backing --charged_to--> cgroup, with the bytes each cgroup is charged."""
    pg = state.pages
    anon = np.flatnonzero((pg.kind == K_ANON) & (pg.mapcount > 0))
    if len(anon):
        owner = pg.owner_vid[anon].astype(np.int64)
        root_of = {o: lineage.get(o, o) for o in np.unique(owner).tolist()}
        key = owner * 65536 + pg.memcg[anon]
        vals, counts = np.unique(key, return_counts=True)
        merged: dict[tuple[int, int], int] = {}
        for k, n in zip(vals.tolist(), counts.tolist()):
            root = root_of[k // 65536]
            merged[(root, k % 65536)] = merged.get((root, k % 65536), 0) + n
        for (root, memcg), n in merged.items():
            node = f"anon:{root}"
            if node in g:
                _edge(g, node, _cg(state.cgroup_path(memcg)), "charged_to", bytes=n * PAGE_SIZE)
    cached = np.flatnonzero((pg.kind == K_FILE) | (pg.kind == K_SHMEM))
    if len(cached):
        key = pg.ino[cached].astype(np.int64) * 65536 + pg.memcg[cached]
        vals, counts = np.unique(key, return_counts=True)
        for k, n in zip(vals.tolist(), counts.tolist()):
            node = _inode_node(g, state, k // 65536)
            _edge(g, node, _cg(state.cgroup_path(k % 65536)), "charged_to", bytes=n * PAGE_SIZE)


def _add_unmapped_cache(g: nx.DiGraph, state: MemoryState) -> None:
    """Runs of page cache no process maps, attached to their file or shmem object."""
    pg = state.pages
    p = np.flatnonzero(((pg.kind == K_FILE) | (pg.kind == K_SHMEM)) & (pg.mapcount <= 0))
    if not len(p):
        return
    ino = pg.ino[p].astype(np.int64)
    idx = pg.index[p]
    dirty = pg.dirty[p]
    order = np.lexsort((idx, ino))
    ino, idx, dirty, kinds = ino[order], idx[order], dirty[order], pg.kind[p][order]
    brk = np.flatnonzero((ino[1:] != ino[:-1]) | (idx[1:] != idx[:-1] + 1) | (dirty[1:] != dirty[:-1])) + 1
    starts = np.concatenate(([0], brk))
    ends = np.concatenate((brk, [len(p)]))
    counters: dict[int, int] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        i = int(ino[a])
        n = counters.get(i, 0)
        counters[i] = n + 1
        st = "shmem" if kinds[a] == K_SHMEM else "file"
        run_id = f"cache:{i}:{n}"
        g.add_node(run_id, type="page_run", label=f"unmapped {st} x{b - a}", state=st, kind=st, mapped=False,
                   first_index=int(idx[a]), nr_pages=b - a, bytes=(b - a) * PAGE_SIZE, dirty=bool(dirty[a]),
                   shared=False)
        _edge(g, run_id, _inode_node(g, state, i), "backed_by")


def _add_shmem_swap(g: nx.DiGraph, state: MemoryState) -> None:
    used = np.flatnonzero(state.slot_shmem)
    if not len(used):
        return
    vals, counts = np.unique(state.slot_ino[used].astype(np.int64), return_counts=True)
    swap = _special(g, "swap", "swap device")
    for ino, n in zip(vals.tolist(), counts.tolist()):
        _edge(g, _inode_node(g, state, ino), swap, "swapped_to", pages=n, bytes=n * PAGE_SIZE)


def write_graph(g: nx.DiGraph, path: str | os.PathLike[str]) -> str:
    """Write ``g`` as GraphML when ``path`` ends in ``.graphml`` (or ``.xml``), else as
    node-link JSON (``{"directed", "graph", "nodes", "links"}``). Returns the format."""
    p = os.fspath(path)
    if p.endswith((".graphml", ".xml")):
        clean = nx.DiGraph()
        clean.graph.update({k: v for k, v in g.graph.items() if _graphml_ok(v)})
        for n, attrs in g.nodes(data=True):
            clean.add_node(n, **{k: v for k, v in attrs.items() if _graphml_ok(v)})
        for a, b, attrs in g.edges(data=True):
            clean.add_edge(a, b, **{k: v for k, v in attrs.items() if _graphml_ok(v)})
        with safe_output(p) as b:
            nx.write_graphml(clean, b)
        return "graphml"
    data = nx.node_link_data(g, edges="links")
    with safe_output(p, text=True) as f:
        json.dump(data, f, indent=1, default=_json_default)
        f.write("\n")
    return "node-link-json"


def _graphml_ok(v: Any) -> bool:
    return isinstance(v, (str, bool, int, float)) and not (isinstance(v, int) and not -(1 << 63) <= v < (1 << 63))


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot write {type(v).__name__} as JSON")


def graph_summary(g: nx.DiGraph) -> dict[str, int]:
    """Nodes by type and edges by relation: what ``--graph`` reports."""
    out: dict[str, int] = {}
    for _, t in g.nodes(data="type"):
        out[f"nodes.{t}"] = out.get(f"nodes.{t}", 0) + 1
    for _, _, r in g.edges(data="rel"):
        out[f"edges.{r}"] = out.get(f"edges.{r}", 0) + 1
    return dict(sorted(out.items()))


__all__ = ["RUN_STATES", "graph_summary", "memory_graph", "write_graph"]
