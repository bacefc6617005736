"""What the tests of live capture from the running kernel need: root, a writable
tracefs, a C compiler for the test programs, a memory cgroup v1 with memsw."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")


def tracefs_root() -> str | None:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(os.path.join(root, "instances")):
            return root
    return None


def memtrace_instances() -> list[str]:
    """The memtrace-* tracefs instances there are now."""
    root = tracefs_root()
    if root is None:
        return []
    return sorted(n for n in os.listdir(os.path.join(root, "instances")) if n.startswith("memtrace-"))


@pytest.fixture(scope="session")
def tracefs() -> str:
    """The tracefs root, when this process may make instances in it; else skip."""
    root = tracefs_root()
    if os.geteuid() != 0:
        pytest.skip("live capture needs root")
    if root is None or not os.access(os.path.join(root, "instances"), os.W_OK):
        pytest.skip("no writable tracefs (mount -t tracefs nodev /sys/kernel/tracing)")
    probe = os.path.join(root, "instances", f"memtrace-test-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        pytest.skip(f"cannot make a tracefs instance: {e.strerror}")
    return root


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tests/live/programs/*.c compiled (cc -O2)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler for the test programs")
    out = tmp_path_factory.mktemp("programs")
    built: dict[str, Path] = {}
    for source in sorted(PROGRAMS.glob("*.c")):
        binary = out / f"mt-{source.stem}"
        subprocess.run([cc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
        built[source.stem] = binary
    return built


@pytest.fixture
def memcg_v1() -> Iterator[Path]:
    """A fresh memory cgroup (v1) limited to 64 MiB of memory and of memory+swap;
    removed afterwards (its tasks killed first)."""
    if not (CGROUP_V1_MEMORY / "memory.memsw.limit_in_bytes").exists():
        pytest.skip("no cgroup v1 memory controller with memsw accounting here")
    path = CGROUP_V1_MEMORY / f"memtrace_live_test_{os.getpid()}"
    path.mkdir()
    try:
        (path / "memory.limit_in_bytes").write_text(str(64 << 20))
        (path / "memory.memsw.limit_in_bytes").write_text(str(64 << 20))
        yield path
    finally:
        for _ in range(50):
            tasks = (path / "tasks").read_text().split()
            for t in tasks:
                with contextlib.suppress(OSError):
                    os.kill(int(t), 9)
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
