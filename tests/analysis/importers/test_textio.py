"""The text reader every importer shares: blocks of whole lines, CR/CRLF as LF,
overlong lines cut, gzip read through, never a traceback.

Every expected value is written out by hand from the bytes of the input (a truncated
gzip stream's, from zlib read directly); each case is read with block sizes that put
the interesting bytes at, before and after a block boundary, since
:meth:`TextLines.raw_blocks` and :meth:`TextLines.blocks` must give the same lines
whatever the block size.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from memtrace.analysis.importers.textio import MAX_LINE_BYTES, open_text

M = MAX_LINE_BYTES  # 65,536
#: Block sizes: tiny (for short inputs only), odd, around the cut length, the default.
TINY = (1, 2, 3, 7)
SIZES = (1000, M - 1, M, M + 1, M + 7, 1 << 20)


def _raw(path: Path, block_bytes: int) -> list[bytes]:
    return list(open_text(path).raw_blocks(block_bytes=block_bytes))


def _lines(path: Path, block_bytes: int) -> list[str]:
    return [line for block in open_text(path).blocks(block_bytes=block_bytes) for line in block]


def _check(path: Path, expect: list[str], sizes: tuple[int, ...] = SIZES) -> None:
    """Both readers give ``expect`` at every block size; raw blocks are whole lines."""
    joined = "".join(f"{line}\n" for line in expect).encode()
    for size in sizes:
        raw = _raw(path, size)
        assert all(block.endswith(b"\n") for block in raw), size
        assert b"".join(raw) == joined, size
        assert _lines(path, size) == expect, size
    assert list(open_text(path)) == expect


def test_overlong_line_inside_a_block(tmp_path: Path) -> None:
    """A line of M + 5 bytes between two short ones, all in one 1 MiB read: cut to
    its first M bytes, the 5 after them dropped, the lines around it untouched."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"a\n" + b"x" * (M + 5) + b"\nb\n")
    assert _raw(p, 1 << 20) == [b"a\n" + b"x" * M + b"\nb\n"]
    _check(p, ["a", "x" * M, "b"])


def test_overlong_line_spanning_a_boundary(tmp_path: Path) -> None:
    """With M-byte reads the first read holds "a\\n" and M - 2 y's: the start carried
    into the next read is not overlong, the whole line (M + 5 bytes) is, and is cut."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"a\n" + b"y" * (M + 5) + b"\nb\n")
    assert b"".join(_raw(p, M)) == b"a\n" + b"y" * M + b"\nb\n"
    _check(p, ["a", "y" * M, "b"])


def test_several_overlong_lines(tmp_path: Path) -> None:
    """Two overlong lines, back to back and then after a short one, and a last
    overlong line without a newline: each cut to M bytes."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"p" * (M + 1) + b"\n" + b"q" * (3 * M) + b"\nshort\n" + b"r" * (M + 2))
    _check(p, ["p" * M, "q" * M, "short", "r" * M])


def test_line_of_exactly_the_limit_is_kept(tmp_path: Path) -> None:
    """M bytes is not overlong; M + 1 is, and loses its last byte."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"k" * M + b"\n" + b"j" * M + b"J\n")
    _check(p, ["k" * M, "j" * M])


def test_cut_keeps_utf8_characters_whole(tmp_path: Path) -> None:
    """"a" then 40,000 two-byte "é" (bytes 1 + 2k, 2 + 2k for the k-th): byte M =
    65,536 = 2 + 2 * 32,767 is the second byte of the 32,768th é, so the cut falls
    before that é: "a" and 32,767 é (65,535 bytes)."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"a" + "é".encode() * 40_000 + b"\nz\n")
    assert b"".join(_raw(p, 1 << 20)) == b"a" + "é".encode() * 32_767 + b"\nz\n"
    _check(p, ["a" + "é" * 32_767, "z"])


def test_crlf_and_cr(tmp_path: Path) -> None:
    """CRLF and a lone CR each end one line, also when the CR ends a read and its LF
    starts the next (block sizes 1 and 2 split every pair)."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"a\r\nb\rc\r\n\r\nd\r\r\ne")
    _check(p, ["a", "b", "c", "", "d", "", "e"], TINY + SIZES)


def test_cr_at_the_very_end(tmp_path: Path) -> None:
    p = tmp_path / "in.txt"
    p.write_bytes(b"a\r")
    _check(p, ["a"], TINY + SIZES)


def test_gzip_gives_the_same_lines(tmp_path: Path) -> None:
    """Gzip is recognised by its magic bytes, not the name, and read through."""
    body = b"one\r\ntwo\n" + b"w" * (M + 9) + b"\nthree"
    p = tmp_path / "in.txt"
    p.write_bytes(gzip.compress(body))
    _check(p, ["one", "two", "w" * M, "three"])
    assert open_text(p).gzipped


@pytest.mark.parametrize("keep", [1000, 200_000, -100])
def test_truncated_gzip_keeps_what_came_before(tmp_path: Path, keep: int) -> None:
    """A gzip stream cut short: every byte zlib can decompress from what is left
    (the ground truth, read independently), then a warning; nothing is lost to the
    exception that ends the stream."""
    body = "".join(f"line {i}\n" for i in range(200_000)).encode()
    stream = gzip.compress(body)[:keep]
    truth = zlib.decompressobj(wbits=31).decompress(stream)  # 31: a gzip header
    assert 0 < len(truth) < len(body)
    p = tmp_path / "in.txt.gz"
    p.write_bytes(stream)
    text = open_text(p)
    lines = list(text)
    expect = truth.decode().split("\n")
    if not expect[-1]:
        expect.pop()  # the stream was cut right after a newline
    assert lines == expect  # the last one usually cut short
    assert len(text.warnings) == 1 and "input ends early" in text.warnings[0]


def test_empty_input(tmp_path: Path) -> None:
    p = tmp_path / "in.txt"
    p.write_bytes(b"")
    assert _raw(p, 1 << 20) == []
    _check(p, [], TINY + SIZES)


def test_last_line_without_newline(tmp_path: Path) -> None:
    """A newline is added after a last line without one; none after one with."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"a\nb")
    assert b"".join(_raw(p, 1 << 20)) == b"a\nb\n"
    _check(p, ["a", "b"], TINY + SIZES)
    p.write_bytes(b"\n")
    _check(p, [""], TINY + SIZES)


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """Each undecodable byte becomes one U+FFFD in the text lines; raw blocks keep
    the bytes."""
    p = tmp_path / "in.txt"
    p.write_bytes(b"ok\n\xff\xfe x\n")
    for size in TINY + SIZES:
        assert b"".join(_raw(p, size)) == b"ok\n\xff\xfe x\n"
        assert _lines(p, size) == ["ok", "\ufffd\ufffd x"]


@pytest.mark.parametrize("junk", [b"\x00" * (3 * M + 17), b"\r" * (2 * M + 3)])
def test_binary_junk_without_newlines(tmp_path: Path, junk: bytes) -> None:
    """3M + 17 NUL bytes are one line, cut to M; 2M + 3 CRs are as many empty lines."""
    p = tmp_path / "in.txt"
    p.write_bytes(junk)
    if junk[:1] == b"\x00":
        _check(p, ["\x00" * M])
    else:
        assert sum(map(len, open_text(p).blocks(block_bytes=1000))) == 2 * M + 3
        assert list(open_text(p)) == [""] * (2 * M + 3)
