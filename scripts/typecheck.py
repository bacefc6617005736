#!/usr/bin/env python3
"""Type-check memtrace as it is installed: ``python scripts/typecheck.py [mypy args]``.

pyproject.toml maps ``memtrace.tracer`` to ``tracer/``, ``memtrace.kernel`` to
``kernel/`` and so on (``[tool.setuptools] package-dir``). mypy reads files, not
import hooks, so this script builds ``build/typecheck/memtrace``: a tree of links
shaped like the installed package, made from that mapping, and runs mypy on it with
pyproject's ``[tool.mypy]`` settings. Exit code: mypy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def build_tree() -> Path:
    """The link tree for every package of ``package-dir``; its root directory."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    for package in sorted(setuptools["packages"], key=lambda p: p.count(".")):
        source = ROOT / package_dir.get(package, package.replace(".", "/"))
        target = TREE / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(source.glob("*.py")):
            link = target / entry.name
            if not link.exists():
                link.symlink_to(entry)
        (target / "py.typed").touch()
    return TREE


def main(argv: list[str]) -> int:
    tree = build_tree()
    env = {**os.environ, "MYPYPATH": str(tree)}
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(ROOT / "build" / "mypy-cache"), "-p", "memtrace", *argv]
    return subprocess.call(cmd, cwd=tree, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
