"""Reading kernel text from disk: plain or gzipped, any bytes, never a traceback.

Real input arrives as ``perf script`` dumps, ftrace buffers and kernel logs, often
gzipped, sometimes with binary junk in them (a log copied from a serial console, a
truncated download). :func:`open_text` opens any of them as lines of text: gzip is
recognised by its magic bytes (not by the file name), bytes that are not UTF-8 are
replaced (U+FFFD), and a truncated gzip stream ends the input with a warning instead
of an exception.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Generator, Iterator

from memtrace.errors import ParseError

GZIP_MAGIC = b"\x1f\x8b"
#: Lines longer than this many bytes are cut (binary junk with no newline would
#: otherwise make one line of the whole file); the cut part is dropped, the line
#: still counted.
MAX_LINE_BYTES = 1 << 16


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == GZIP_MAGIC
    except OSError:
        return False


def _open_binary(path: str | os.PathLike[str]) -> io.BufferedIOBase:
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
        if magic == GZIP_MAGIC:
            return gzip.open(path, "rb")
        return open(path, "rb")
    except IsADirectoryError:
        raise ParseError(f"cannot read {os.fsdecode(path)}: it is a directory") from None
    except OSError as e:
        raise ParseError(f"cannot read {os.fsdecode(path)}: {e.strerror or e}") from None


class TextLines:
    """The lines of a text file, gzipped or not, decoded leniently.

    Iterate it for lines without their newline. After iteration :attr:`warnings`
    says whether the input was cut short (a truncated or corrupt gzip stream).
    ``size_bytes`` is the size on disk (compressed size for gzip).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fsdecode(path)
        self.warnings: list[str] = []
        self.gzipped = is_gzip(path)
        try:
            self.size_bytes = os.path.getsize(path)
        except OSError as e:
            raise ParseError(f"cannot read {self.path}: {e.strerror or e}") from None
        _open_binary(path).close()  # fail early, with a one-line error

    def __iter__(self) -> Iterator[str]:
        for block in self.blocks():
            yield from block

    def raw_blocks(self, block_bytes: int = 1 << 20) -> Generator[bytes, None, None]:
        """The input as bytes, in blocks of whole lines, about ``block_bytes`` each.

        Every block ends with a newline (one is added after a last line without
        one); CR and CRLF become LF; a line longer than :data:`MAX_LINE_BYTES` bytes
        is cut there (at the start of the UTF-8 character the cut would split), the
        rest of it dropped, wherever it lies: inside a block or across blocks. This
        is the one reader of the file: :meth:`blocks` decodes what it gives.
        """
        binary = _open_binary(self.path)
        carry = b""  # the start of a line whose end is in a later read
        skipping = False  # inside an overlong line, dropping its rest
        after_cr = False  # the last read ended with a CR: a LF starting the next one is its CRLF
        try:
            for data in self._reads(binary, block_bytes):
                if after_cr and data[:1] == b"\n":
                    data = data[1:]
                after_cr = data[-1:] == b"\r"
                if b"\r" in data:
                    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                if skipping:
                    nl = data.find(b"\n")
                    if nl < 0:
                        continue
                    data = data[nl + 1:]
                    skipping = False
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry += data
                    if len(carry) > MAX_LINE_BYTES:
                        yield _cut_line(carry, 0) + b"\n"
                        carry, skipping = b"", True
                    continue
                block = _cut_overlong_lines(carry + data[:cut + 1])
                carry = data[cut + 1:]
                if len(carry) > MAX_LINE_BYTES:
                    block += _cut_line(carry, 0) + b"\n"
                    carry, skipping = b"", True
                yield block
            if carry and not skipping:
                yield carry + b"\n"
        finally:
            binary.close()

    def text_blocks(self, block_bytes: int = 1 << 20) -> Iterator[str]:
        """Each of :meth:`raw_blocks`' blocks, decoded: whole lines, each ending with
        a newline."""
        for raw in self.raw_blocks(block_bytes):
            yield raw.decode("utf-8", errors="replace")

    def blocks(self, block_bytes: int = 1 << 20) -> Iterator[list[str]]:
        """The lines of each of :meth:`text_blocks`, without their newlines (the fast
        way to walk a large file as text)."""
        for text in self.text_blocks(block_bytes):
            lines = text.split("\n")
            lines.pop()  # the empty string after the block's last newline
            yield lines

    def _reads(self, binary: io.BufferedIOBase, block_bytes: int) -> Iterator[bytes]:
        """The bytes of ``binary`` in pieces of ``block_bytes`` (the last shorter).

        A stream that ends early (a truncated or corrupt gzip stream, a read error)
        ends them with a warning, after the bytes it gave: each piece is gathered
        with ``read1``, which returns what was decompressed so far, where one large
        ``read`` would lose it with the exception.
        """
        while True:
            parts: list[bytes] = []
            got = 0
            try:
                while got < block_bytes:
                    piece = binary.read1(block_bytes - got)
                    if not piece:
                        break
                    parts.append(piece)
                    got += len(piece)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
                self.warnings.append(f"{self.path}: input ends early ({type(e).__name__}: {e}); "
                                     "read what came before")
                if parts:
                    yield b"".join(parts)
                return
            if not parts:
                return
            yield parts[0] if len(parts) == 1 else b"".join(parts)


def _cut_line(data: bytes, start: int) -> bytes:
    """The first :data:`MAX_LINE_BYTES` bytes of the line at ``start``, fewer when
    that would split a UTF-8 character (cut before its lead byte)."""
    end = start + MAX_LINE_BYTES
    for _ in range(3):  # at most three continuation bytes (0b10xxxxxx) follow a lead byte
        if not 0x80 <= data[end] < 0xC0:
            break
        end -= 1
    return data[start:end]


def _cut_overlong_lines(block: bytes) -> bytes:
    """``block`` (whole lines, the last ending with a newline) with every line over
    :data:`MAX_LINE_BYTES` bytes cut (see :func:`_cut_line`).

    A window of ``MAX_LINE_BYTES + 1`` bytes with no newline in it is the start of an
    overlong line; one ``rfind`` per window finds them, so a block without one costs
    about ``len(block) / MAX_LINE_BYTES`` searches.
    """
    kept: list[bytes] = []
    keep_from = 0  # the start of what is kept after the last cut
    pos = 0  # the start of a line not yet checked
    last = len(block) - 1  # the block's final newline
    while last - pos > MAX_LINE_BYTES:  # a line from here on could be overlong
        nl = block.rfind(b"\n", pos, pos + MAX_LINE_BYTES + 1)
        if nl >= 0:  # the lines starting in [pos, nl] end by nl: none is overlong
            pos = nl + 1
            continue
        kept.append(block[keep_from:pos])
        kept.append(_cut_line(block, pos))
        keep_from = block.find(b"\n", pos + MAX_LINE_BYTES)  # the newline ending the line, kept
        pos = keep_from + 1
    if not kept:
        return block
    kept.append(block[keep_from:])
    return b"".join(kept)


def open_text(path: str | os.PathLike[str]) -> TextLines:
    """The lines of ``path`` (plain or gzip); ParseError if it cannot be opened."""
    return TextLines(path)


def head_text(path: str | os.PathLike[str], max_bytes: int = 1 << 20) -> str:
    """Up to ``max_bytes`` of decoded text from the start of ``path`` (gzip read
    through); '' when it cannot be read."""
    chunks: list[bytes] = []
    got = 0
    try:
        with _open_binary(path) as f:
            while got < max_bytes:
                block = f.read(min(1 << 16, max_bytes - got))
                if not block:
                    break
                chunks.append(block)
                got += len(block)
    except (ParseError, OSError, EOFError, zlib.error):
        pass  # a truncated gzip stream: keep what came before
    return b"".join(chunks).decode("utf-8", errors="replace")
