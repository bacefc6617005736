"""``record --live`` and ``trace --live`` options: misuse is a one-line usage error (exit 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from memtrace.cli import main


def fails(capsys: pytest.CaptureFixture[str], *args: str, code: int = 2) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    assert exc.value.code == code, err
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("args", "says"), [
    (("record", "--live"), "needs one target"),
    (("record", "--live", "-a", "-p", "1"), "needs one target"),
    (("record", "oom-leak", "--live", "-a"), "not a scenario"),
    (("record", "-p", "1"), "add --live"),
    (("record", "--live", "-a", "--sysctl", "vm.swappiness=10"), "--sysctl"),
    (("record",), "give a scenario"),
    (("trace", "run.mtrace", "-p", "1", "-e", "page_fault { @ = count(); }"), "/pid == N/"),  # -p implies --live
    (("trace", "run.mtrace", "--live", "-e", "page_fault { @ = count(); }"), "not 'run.mtrace'"),
    (("trace", "-e", "page_fault { @ = count(); }"), "--live"),
])
def test_misuse_is_a_usage_error(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str) -> None:
    assert says in fails(capsys, *args)


def test_without_root_the_error_says_what_is_needed() -> None:
    """As an ordinary user (nobody, when the tests run as root)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        cmd = [sys.executable, "-m", "memtrace", "record", "--live", "-a", "--duration", "1", "-o",
               os.path.join(tmp, "x.mtrace")]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root, and no setpriv to run as nobody")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "root" in lines[0] and "tracefs" in lines[0], p.stderr


def test_an_output_that_cannot_be_written_is_refused_before_recording(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = fails(capsys, "record", "--live", "-a", "-o", str(tmp_path / "file" / "x.mtrace"), code=1)
    assert "cannot write trace" in line and "not a directory" in line
