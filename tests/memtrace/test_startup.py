"""``memtrace --version`` and ``--help`` start light: the CLI imports the heavy
libraries only inside the commands that use them (bench/run.py's cli_startup
measures the time; this checks what is imported)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "matplotlib", "networkx", "dask", "pyarrow", "structlog", "msgpack")


def test_importing_the_cli_imports_no_heavy_library() -> None:
    """A fresh interpreter that imports the CLI (what --version and --help run)
    has none of the heavy libraries loaded."""
    code = "import sys, memtrace.cli; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    assert "typer" in loaded and "memtrace" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))

