"""Safe writes: the one way every memtrace output reaches the disk.

An output (a trace, an import, a report, a graph, a snapshot, an export, a sweep
table or plot) is written to a temporary file created beside its target and renamed
over the target only once it is complete::

    with safe_output("report.html", text=True) as f:
        f.write(html)

- The temporary file is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``)
  under an unpredictable name (``.TARGET.XXXXXXXXXXXX.tmp``, 48 random bits): a
  symlink or file planted at any fixed or guessed path is never followed and never
  written. It gets the permission bits of the file it replaces (else 0666 less the
  umask, as ``open()``).
- On success the file is flushed and fsynced, renamed over the target
  (``rename(2)`` is atomic within a directory) and the directory is fsynced, so the
  rename itself survives a crash.
- On any error, or an interrupt that unwinds the stack (``KeyboardInterrupt``, the
  CLI's SIGTERM), the temporary file is removed and the old target is untouched.
  Only ``kill -9`` (or a crash) can leave a temporary file behind; its name starts
  with a dot and ends in ``.tmp``.

The target itself, as the user named it:

- A symlink at the target is followed, as a shell's ``>`` follows it (a dangling one
  creates its target), except where the kernel would refuse to follow it: a symlink
  in a sticky world-writable directory (``/tmp``) owned by neither the directory's
  owner nor the user, as fs/namei.c may_follow_link() does with
  ``fs.protected_symlinks = 1`` (the default since Linux 3.6). Such a link is a
  planted one: refused with an :class:`~memtrace.errors.OutputError`.
- A target that is not a regular file (``/dev/stdout``, ``/dev/null``, a pipe) is
  written directly: it cannot be replaced, and there is nothing to keep.
- ``in_place_if_new=True`` (traces only) writes a target that does not exist yet in
  place, created exclusively: a recorder killed with ``kill -9`` then leaves a trace
  readable up to its last flushed chunk rather than a hidden temporary file. A failed
  run removes it (:meth:`SafeOutput.discard`); an interrupted one may keep it
  (:meth:`SafeOutput.abandon`), its footer saying ``aborted``.

This module is a leaf: it imports nothing of memtrace but the errors, and every
layer writes through it.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from memtrace.errors import OutputError

__all__ = ["SafeOutput", "resolve_output", "safe_output", "write_file"]

#: Flags of every file this module creates.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: Tries at an unused random name before giving up (48 random bits each).
_TRIES = 16


def resolve_output(target: str | os.PathLike[str], kind: str = "") -> str:
    """The path a write to ``target`` lands on: ``target`` with every symlink the
    user named followed (a dangling one included), refusing a symlink the kernel
    would refuse to follow (see the module docstring). An :class:`OutputError`
    names ``target`` (after ``kind``, e.g. "trace") when it cannot be an output (a
    directory, a refused link)."""
    path = os.fspath(target)
    target = f"{kind} {path}" if kind else path
    if not path:
        raise OutputError("an empty path cannot be an output")
    for _hop in range(40):  # MAXSYMLINKS
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        except OSError as e:
            raise OutputError(f"cannot write {target}: {e.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {target}: is a directory")
        if not stat.S_ISLNK(st.st_mode):
            return path
        head = os.path.dirname(path) or "."
        _check_link(target, path, st, head)
        link = os.readlink(path)
        path = link if os.path.isabs(link) else os.path.join(head, link)
    raise OutputError(f"cannot write {target}: too many levels of symbolic links")


def _check_link(target: str | os.PathLike[str], path: str, st: os.stat_result, head: str) -> None:
    """fs/namei.c may_follow_link() (Linux 3.6+, fs.protected_symlinks = 1): a
    symlink in a sticky world-writable directory is followed only by its owner or
    when the directory's owner owns it."""
    try:
        d = os.stat(head)
    except OSError:
        return
    sticky_world = (d.st_mode & stat.S_ISVTX) and (d.st_mode & stat.S_IWOTH)
    if sticky_world and st.st_uid not in (d.st_uid, os.geteuid()):
        raise OutputError(f"cannot write {target}: {path} is a symlink owned by another user in a "
                          "sticky world-writable directory (not followed, as fs.protected_symlinks)")


class SafeOutput:
    """A file being written for ``target``: see the module docstring.

    ``file`` is the open file (binary, or text with ``text=True``); ``path`` is where
    it is being written (the temporary file, or the target when written in place).
    End it with :meth:`commit` (keep it), :meth:`discard` (remove what was written)
    or :meth:`abandon` (an interrupted write: keep an in-place file, remove a
    temporary one). Used as a context manager it commits on success and discards on
    any exception.
    """

    def __init__(self, target: str | os.PathLike[str], *, text: bool = False, encoding: str = "utf-8",
                 newline: str | None = None, in_place_if_new: bool = False, kind: str = "") -> None:
        self.target = os.fspath(target)
        #: how errors name the output: "trace x.mtrace" with ``kind`` "trace"
        self.name = f"{kind} {self.target}" if kind else self.target
        #: where the result lands (the target, symlinks followed)
        self.final = resolve_output(target, kind)
        #: True when writing the target directly (a device or pipe, or a new file in place)
        self.in_place = False
        self._stream = False
        self._replaces: os.stat_result | None = None
        try:
            st = os.stat(self.final)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise OutputError(f"cannot write {self.name}: {e.strerror}") from None
        try:
            if st is not None and not stat.S_ISREG(st.st_mode):
                # A device or pipe: written directly, nothing to replace.
                fd = os.open(self.final, os.O_WRONLY | os.O_CLOEXEC)
                self.path, self.in_place, self._stream = self.final, True, True
            elif st is None and in_place_if_new:
                fd = os.open(self.final, _CREATE, 0o666)
                self.path, self.in_place = self.final, True
            else:
                self._replaces = st
                fd, self.path = self._create_temporary()
        except FileExistsError:
            raise OutputError(f"cannot write {self.name}: it appeared while being created (another writer?)") from None
        except OSError as e:
            raise OutputError(f"cannot write {self.name}: {e.strerror}") from None
        self._fd = fd
        raw: IO[Any] = os.fdopen(fd, "wb")
        self.file: IO[Any] = io.TextIOWrapper(raw, encoding=encoding, newline=newline) if text else raw
        self.closed = False
        self._removed = False

    def _create_temporary(self) -> tuple[int, str]:
        head, tail = os.path.split(self.final)
        for _try in range(_TRIES):
            path = os.path.join(head, f".{tail}.{secrets.token_hex(6)}.tmp")
            try:
                fd = os.open(path, _CREATE, 0o666)
            except FileExistsError:
                continue
            if self._replaces is not None:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, stat.S_IMODE(self._replaces.st_mode))
            return fd, path
        raise OutputError(f"cannot write {self.name}: no unused temporary name beside it after {_TRIES} tries")

    def __enter__(self) -> SafeOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Flush and fsync the file, rename it over the target (unless written in
        place) and fsync the directory. An error removes the temporary file."""
        if self.closed:
            return
        try:
            self.file.flush()
            if not self._stream:
                os.fsync(self._fd)
            self.closed = True
            self.file.close()
            if self._stream:
                return
            if not self.in_place:
                os.replace(self.path, self.final)
            _fsync_dir(self.final)
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write {self.name}: {e.strerror or e}") from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove what was written (a device or pipe is only closed). The
        old target, if any, is untouched."""
        self._close_quietly()
        if not self._stream and not self._removed:
            self._removed = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def abandon(self) -> None:
        """End an interrupted write: a file written in place is kept (flushed and
        fsynced as far as possible: whatever it holds is readable), a temporary
        file is removed."""
        if not (self.in_place and not self._stream):
            self.discard()
            return
        if not self.closed:
            with contextlib.suppress(OSError, ValueError):
                self.file.flush()
                os.fsync(self._fd)
            self._close_quietly()

    def _close_quietly(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError, ValueError):
                self.file.close()


def _fsync_dir(path: str) -> None:
    """fsync the directory holding ``path`` (a rename is durable only then);
    filesystems that cannot (some FUSE, network mounts) are left as they are."""
    head = os.path.dirname(path) or "."
    try:
        fd = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@overload
def safe_output(target: str | os.PathLike[str], *,
                text: Literal[False] = ...) -> contextlib.AbstractContextManager[BinaryIO]: ...
@overload
def safe_output(target: str | os.PathLike[str], *, text: Literal[True], encoding: str = ...,
                newline: str | None = ...) -> contextlib.AbstractContextManager[TextIO]: ...


def safe_output(target: str | os.PathLike[str], *, text: bool = False, encoding: str = "utf-8",
                newline: str | None = None) -> contextlib.AbstractContextManager[IO[Any]]:
    """``with safe_output(target) as f:`` a :class:`SafeOutput`'s file, committed when
    the block ends and discarded when it raises."""
    return _safe_output(target, text, encoding, newline)


@contextmanager
def _safe_output(target: str | os.PathLike[str], text: bool, encoding: str, newline: str | None) -> Iterator[IO[Any]]:
    out = SafeOutput(target, text=text, encoding=encoding, newline=newline)
    try:
        yield out.file
    except OSError as e:
        out.discard()
        if e.filename is None:  # a write to the output failed (a full disk, an I/O error)
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
        raise
    except BaseException:
        out.discard()
        raise
    out.commit()


def write_file(target: str | os.PathLike[str], data: bytes | str, *, encoding: str = "utf-8") -> None:
    """``target``'s whole content, written safely (``Path.write_bytes``/``write_text``)."""
    if isinstance(data, str):
        with safe_output(target, text=True, encoding=encoding) as f:
            f.write(data)
    else:
        with safe_output(target) as b:
            b.write(data)
