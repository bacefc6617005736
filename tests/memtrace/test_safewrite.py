"""Safe writes (issue 14, finding 1): an output replaces its target only when
complete, through a temporary file nobody can plant a symlink at; a failure leaves
the old target byte-identical and nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtrace import safewrite
from memtrace.errors import OutputError
from memtrace.safewrite import SafeOutput, resolve_output, safe_output, write_file

OLD = b"old content\n" * 10


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_a_complete_write_replaces_the_target_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(OLD)
    target.chmod(0o600)
    write_file(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert listing(tmp_path) == ["out.txt"]


def test_an_error_while_writing_leaves_the_old_file_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc), safe_output(target) as f:
            f.write(b"half a new file")
            raise exc()
        assert target.read_bytes() == OLD
        assert listing(tmp_path) == ["out.bin"]


def test_the_temporary_file_is_created_exclusively_under_a_random_name(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink planted at the temporary name is never followed: with the random part
    forced to a value the planter guessed, every try fails and the write is refused;
    the file the link points at is untouched."""
    victim = tmp_path / "victim"
    victim.write_bytes(OLD)
    target = tmp_path / "out.txt"
    monkeypatch.setattr(safewrite.secrets, "token_hex", lambda n: "a" * (2 * n))
    (tmp_path / ".out.txt.aaaaaaaaaaaa.tmp").symlink_to(victim)
    with pytest.raises(OutputError, match="no unused temporary name"):
        write_file(target, "x")
    assert victim.read_bytes() == OLD and not target.exists()
    out = SafeOutput(tmp_path / "other.txt")
    assert out.path != out.final and os.path.dirname(out.path) == str(tmp_path)
    out.discard()


def test_two_writes_use_different_temporary_names(tmp_path: Path) -> None:
    a, b = SafeOutput(tmp_path / "x"), SafeOutput(tmp_path / "x")
    assert a.path != b.path and len(Path(a.path).name) == len(".x.") + 12 + len(".tmp")
    a.discard()
    b.discard()
    assert listing(tmp_path) == []


def test_a_symlink_the_user_names_is_followed_and_stays(tmp_path: Path) -> None:
    """-o LINK writes where LINK points, as a shell's > does: the link is kept, the
    file it names is replaced; a dangling link creates its target."""
    real = tmp_path / "d" / "real.txt"
    real.parent.mkdir()
    real.write_bytes(OLD)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_file(link, "via link\n")
    assert link.is_symlink() and real.read_text() == "via link\n"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "d" / "created.txt")
    write_file(dangling, "created\n")
    assert dangling.is_symlink() and (tmp_path / "d" / "created.txt").read_text() == "created\n"
    assert listing(tmp_path / "d") == ["created.txt", "real.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a symlink as another user")
def test_a_symlink_planted_by_another_user_in_a_sticky_directory_is_refused(tmp_path: Path) -> None:
    """fs/namei.c may_follow_link(): in a sticky world-writable directory (as /tmp) a
    link owned by neither the directory's owner nor the writer is not followed."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(OLD)
    link = shared / "report.html"
    link.symlink_to(victim)
    os.lchown(link, 65534, 65534)
    with pytest.raises(OutputError, match="symlink owned by another user in a sticky world-writable directory"):
        write_file(link, "x")
    assert victim.read_bytes() == OLD and listing(shared) == ["report.html"]
    os.lchown(link, 0, 0)  # the writer's own link is followed
    write_file(link, "mine\n")
    assert victim.read_text() == "mine\n"


def test_targets_that_cannot_be_replaced(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_file(tmp_path, "x")
    with pytest.raises(OutputError, match="an empty path"):
        resolve_output("")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OutputError, match="too many levels of symbolic links"):
        write_file(loop, "x")
    with pytest.raises(OutputError, match="No such file or directory"):
        write_file(tmp_path / "missing" / "x", "x")


def test_a_device_or_pipe_is_written_directly() -> None:
    write_file("/dev/null", b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_new_file_written_in_place(tmp_path: Path) -> None:
    """in_place_if_new: created exclusively at the target; abandon() keeps it (an
    interrupted trace), discard() removes it; a file already there gets a temporary."""
    target = tmp_path / "t"
    out = SafeOutput(target, in_place_if_new=True)
    assert out.in_place and out.path == str(target)
    out.file.write(b"partial")
    out.abandon()
    assert target.read_bytes() == b"partial"
    out = SafeOutput(target, in_place_if_new=True)
    assert not out.in_place
    out.abandon()
    assert target.read_bytes() == b"partial" and listing(tmp_path) == ["t"]
    target.unlink()
    out = SafeOutput(target, in_place_if_new=True)
    out.discard()
    assert listing(tmp_path) == []


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only: mount(2) needs CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_filesystem_leaves_the_old_file_byte_identical(full_tmpfs: Path) -> None:
    target = full_tmpfs / "out.bin"
    target.write_bytes(OLD)
    with pytest.raises(OutputError, match="No space left on device"):
        write_file(target, b"x" * (1 << 20))
    assert target.read_bytes() == OLD
    assert listing(full_tmpfs) == ["out.bin"]


def test_symlinks_planted_at_the_old_fixed_paths_change_nothing(tmp_path: Path) -> None:
    """import wrote OUTPUT.importing and record .OUTPUT.partial-PID (issue 14,
    finding 1): links planted there, and at the import's scratch and temporary
    names' fixed parts, are never followed; the victim stays byte-identical."""
    from memtrace.cli import main

    victim = tmp_path / "victim"
    victim.write_bytes(OLD)
    perf = Path(__file__).resolve().parents[3] / "shared" / "real-traces" / \
        "memcg-oom-two-victims.perf-script.txt.gz"
    out = tmp_path / "o.mtrace"
    out.write_bytes(OLD)  # an existing output: record and import write beside it
    planted = ["o.mtrace.importing", f".o.mtrace.partial-{os.getpid()}", ".o.mtrace.tmp", ".o.mtrace.events",
               ".import-.events", ".import-.head"]
    for name in planted:
        (tmp_path / name).symlink_to(victim)
    for argv in (["import", str(perf), "-o", str(out)], ["record", "private-anon-mapping", "-o", str(out)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert out.read_bytes()[:7] == b"\x89MTRACE"
        assert victim.read_bytes() == OLD
        assert listing(tmp_path) == sorted(["o.mtrace", "victim", *planted])
