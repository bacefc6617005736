"""Fuzz of trace headers and chunk contents, with valid checksums.

Damage to the framing is tested in tests/tracer/tracefile/test_damage.py. Here every
frame is made with the real framing code (:mod:`memtrace.tracer.tracefile.craft`),
so each checksum passes and what the reader meets is a hostile *value*: a header
whose keys, schemas and meta hold anything msgpack can carry (bytes, extension
types, timestamps, NaN, integers of any size, maps with integer keys, deep nesting);
a chunk whose ``tp``, ``n``, ``group`` and columns claim anything. The template is
``sample_traces/memcg-oom.mtrace``.

Whatever is drawn: opening either succeeds or raises one TraceFormatError of one
line naming the file; after the header nothing raises; every event of an intact
chunk is read once; and the commands end as memtrace promises (exit 0 or 1, one
line, no internal error).
"""

from __future__ import annotations

import copy
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace.errors import TraceFormatError
from memtrace.tracer import run_batches
from memtrace.tracer.oneliner import ProgramError, compile_program
from memtrace.tracer.tracefile import TraceReader
from memtrace.tracer.tracefile.craft import chunk_frame, write_trace
from memtrace.tracer.tracefile.format import frame

from .helpers import assert_clean, frames_of, run_cli, sample_parts

HEAD, FRAMES = sample_parts("memcg-oom")
#: (type, body) of the template's frames after the header; chunk bodies decoded.
RAW = [(f[12:13], f[13:]) for f in FRAMES]
CHUNKS = [msgpack.unpackb(zlib.decompress(body), raw=False) for kind, body in RAW if kind == b"C"]
CHUNK_AT = [i for i, (kind, _b) in enumerate(RAW) if kind == b"C"]
TOTAL_EVENTS = sum(c["n"] for c in CHUNKS)

#: Examples per fuzz test: a few seconds each in the suite; set MEMTRACE_FUZZ_EXAMPLES
#: for a longer hunt (the command-level fuzz takes a tenth as many).
EXAMPLES = int(os.environ.get("MEMTRACE_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                              HealthCheck.too_slow])
FUZZ_COMMANDS = settings(max_examples=max(EXAMPLES // 10, 5),
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.binary(max_size=6),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1)),
)
hostile = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-3, 3)), inner, max_size=4)),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    """Every key/index path in ``value`` (maps and lists), to ``depth`` 7."""
    if depth > 7:
        return
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value[:6]))
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k), depth + 1)


HEADER_PATHS = sorted(_paths(HEAD), key=repr)
CHUNK_PATHS = sorted({p for c in CHUNKS for p in _paths(c)}, key=repr)


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutations(draw: st.DrawFn, paths: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "nest", "huge"]))
        value = draw(hostile) if action == "replace" else None
        out.append((path, action, value))
    return out


def _apply(doc: Any, muts: list[tuple[tuple[Any, ...], str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for path, action, value in muts:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            if action == "delete":
                del parent[key]
            elif action == "nest":
                parent[key] = _nest(parent[key], 300)
            elif action == "huge":
                parent[key] = 2**64 - 1
            else:
                parent[key] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    return doc


def _read_all(path: Path) -> TraceReader | None:
    """Open and read ``path`` every way; None when opening refused it (in one line)."""
    try:
        reader = TraceReader(path)
    except TraceFormatError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e), str(e)
        return None
    stats = reader.scan()
    ordered = sum(b.n for b in reader.ordered_batches())
    assert ordered == stats.total_events == sum(b.n for b in reader.batches())
    try:
        tracer = compile_program("oom_kill, mmap { @[comm, pid] = count(); } page_fault { @f = count(); }",
                                 registry=reader.registry, output=lambda _o: None)
    except ProgramError:
        return reader  # a schema the fuzz removed or renamed: a caret error, as it should be
    run_batches(tracer, reader.ordered_batches())
    return reader


@FUZZ
@given(muts=mutations(HEADER_PATHS))
def test_hostile_header_values(tmp_path: Path, muts: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    path = tmp_path / "h.mtrace"
    write_trace(path, _apply(HEAD, muts), FRAMES)
    reader = _read_all(path)
    if reader is not None:
        assert all("\n" not in w for w in reader.warnings)
        # everything left in meta is plain data with text keys
        def plain(v: Any, depth: int = 0) -> bool:
            if isinstance(v, dict):
                return depth < 70 and all(isinstance(k, str) and plain(x, depth + 1) for k, x in v.items())
            if isinstance(v, list):
                return depth < 70 and all(plain(x, depth + 1) for x in v)
            return v is None or isinstance(v, (bool, int, float, str))
        assert plain(reader.meta) and plain(reader.header)


@FUZZ
@given(body=st.binary(max_size=200))
def test_header_of_arbitrary_msgpack_bytes(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "b.mtrace"
    write_trace(path, body, FRAMES)
    _read_all(path)


def _with_chunk(frames: list[bytes], index: int, chunk: Any, *, raw: bytes | None = None) -> list[bytes]:
    """``frames`` with the chunk at ``CHUNK_AT[index]`` replaced (checksums valid)."""
    out = list(frames)
    body = raw if raw is not None else msgpack.packb(chunk, use_bin_type=True)
    out[CHUNK_AT[index]] = chunk_frame(body)
    return out


@FUZZ
@given(index=st.integers(0, len(CHUNKS) - 1), muts=mutations(CHUNK_PATHS))
def test_hostile_chunk_values(tmp_path: Path, index: int, muts: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    """A chunk of hostile values is read, or skipped as one damaged chunk; the
    others are read whole."""
    path = tmp_path / "c.mtrace"
    write_trace(path, HEAD, _with_chunk(FRAMES, index, _apply(CHUNKS[index], muts)))
    reader = _read_all(path)
    assert reader is not None
    stats = reader.scan()
    others = TOTAL_EVENTS - CHUNKS[index]["n"]
    if reader.damage is not None:
        assert reader.damage.reason.startswith("bad chunk: ") and reader.damage.chunks_skipped == 1
        assert stats.total_events == others
    else:
        assert stats.total_events >= others


@FUZZ
@given(index=st.integers(0, len(CHUNKS) - 1), body=st.binary(max_size=300))
def test_chunk_of_arbitrary_msgpack_bytes(tmp_path: Path, index: int, body: bytes) -> None:
    path = tmp_path / "r.mtrace"
    write_trace(path, HEAD, _with_chunk(FRAMES, index, None, raw=body))
    reader = _read_all(path)
    assert reader is not None and reader.scan().total_events >= TOTAL_EVENTS - CHUNKS[index]["n"]


@FUZZ
@given(groups=st.lists(st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(0, 3)),
                       min_size=len(CHUNKS), max_size=len(CHUNKS)),
       order=st.permutations(range(len(CHUNKS))))
def test_chunks_claiming_any_group_in_any_order(tmp_path: Path, groups: list[int], order: list[int]) -> None:
    """Whatever groups the chunks claim and in whatever order they come, every event
    is read exactly once (in seq order within what the reader could merge)."""
    frames = [chunk_frame(msgpack.packb({**CHUNKS[i], "group": groups[i]}, use_bin_type=True)) for i in order]
    footer = [f for f, (kind, _b) in zip(FRAMES, RAW, strict=True) if kind == b"F"]
    path = tmp_path / "g.mtrace"
    write_trace(path, HEAD, [*frames, *footer])
    reader = _read_all(path)
    assert reader is not None and reader.damage is None
    seqs = sorted(int(s) for b in reader.ordered_batches() for s in b.ints("seq"))
    assert seqs == list(range(TOTAL_EVENTS))


@FUZZ_COMMANDS
@given(muts=mutations(HEADER_PATHS), index=st.integers(0, len(CHUNKS) - 1),
       chunk_muts=mutations(CHUNK_PATHS))
def test_commands_on_hostile_files(tmp_path: Path, muts: list[tuple[tuple[Any, ...], str, Any]], index: int,
                                   chunk_muts: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    """The commands that read a trace end cleanly on a hostile header and chunk."""
    path = tmp_path / "x.mtrace"
    write_trace(path, _apply(HEAD, muts), _with_chunk(FRAMES, index, _apply(CHUNKS[index], chunk_muts)))
    for argv in (("stat", "--json"), ("ps",), ("dmesg",), ("explain",), ("report", "--json", "--no-what-if"),
                 ("trace", "-e", "oom_kill { @[comm] = count(); }")):
        assert_clean(run_cli(argv[0], str(path), *argv[1:]))


def test_the_template_reads_whole() -> None:
    """The fuzz's template is a sound trace: every frame intact, nothing damaged."""
    assert [kind for kind, _b in frames_of(b"".join([b"\x89MTRACE\n", frame(b"H", b"\x80"), *FRAMES]))][1:] == \
        [kind for kind, _b in RAW]
    assert TOTAL_EVENTS == 37_121
