"""Reading kernel text from disk: plain or gzipped, any bytes, never a traceback.

Real input arrives as ``perf script`` dumps, ftrace buffers and kernel logs, often
gzipped, sometimes with binary junk in them (a log copied from a serial console, a
truncated download). :func:`open_text` opens any of them as lines of text: gzip is
recognised by its magic bytes (not by the file name), bytes that are not UTF-8 are
replaced (U+FFFD), and a truncated gzip stream ends the input with a warning instead
of an exception.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from typing import Iterator

from memtrace.errors import ParseError

GZIP_MAGIC = b"\x1f\x8b"
#: Lines longer than this are cut (binary junk with no newline would otherwise make
#: one line of the whole file); the cut part is dropped, the line still counted.
MAX_LINE_CHARS = 1 << 16


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
            return gzip.open(path, "rb")  # type: ignore[return-value]
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

    def raw_blocks(self, block_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The input as bytes, in blocks of whole lines: each ends with a newline
        (one is added at the end of the input); CR and CRLF become LF; a line longer
        than :data:`MAX_LINE_CHARS` bytes is cut there."""
        binary = _open_binary(self.path)
        carry = b""
        skipping = False
        try:
            while True:
                try:
                    data = binary.read(block_bytes)
                except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
                    self.warnings.append(f"{self.path}: input ends early ({type(e).__name__}: {e}); "
                                         "read what came before")
                    break
                if not data:
                    break
                if b"\r" in data:
                    if data.endswith(b"\r"):  # maybe half of a CRLF: decide with the next block
                        data += binary.read(1)
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
                    if len(carry) > MAX_LINE_CHARS:
                        yield carry[:MAX_LINE_CHARS] + b"\n"
                        carry, skipping = b"", True
                    continue
                block = carry + data[:cut + 1]
                carry = data[cut + 1:]
                if len(carry) > MAX_LINE_CHARS:
                    block += carry[:MAX_LINE_CHARS] + b"\n"
                    carry, skipping = b"", True
                yield block
            if carry and not skipping:
                yield carry + b"\n"
        finally:
            binary.close()

    def blocks(self, block_bytes: int = 1 << 20) -> Iterator[list[str]]:
        """The lines in lists, one list per ``block_bytes`` read (the fast way to
        walk a large file)."""
        binary = _open_binary(self.path)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        carry = ""
        skipping = False  # inside an overlong line, dropping its rest
        try:
            while True:
                try:
                    data = binary.read(block_bytes)
                except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
                    self.warnings.append(f"{self.path}: input ends early ({type(e).__name__}: {e}); "
                                         "read what came before")
                    break
                if not data:
                    break
                text = carry + decoder.decode(data)
                if "\r" in text:
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                lines = text.split("\n")
                carry = lines.pop()
                if skipping and lines:
                    lines.pop(0)  # the end of the overlong line
                    skipping = False
                elif skipping:
                    carry = ""
                if len(carry) > MAX_LINE_CHARS:
                    lines.append(carry[:MAX_LINE_CHARS])
                    carry = ""
                    skipping = True
                for i, line in enumerate(lines):
                    if len(line) > MAX_LINE_CHARS:
                        lines[i] = line[:MAX_LINE_CHARS]
                if lines:
                    yield lines
            tail = carry + decoder.decode(b"", final=True)
            if tail and not skipping:
                yield [tail[:MAX_LINE_CHARS]]
        finally:
            binary.close()


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
