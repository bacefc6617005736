"""The package's shape: public API and the layering rules of DESIGN.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import memtrace

ROOT = Path(__file__).parent.parent

#: What each layer may import of memtrace (besides itself, relatively).
ALLOWED = {
    "tracer": {"memtrace.errors"},
    "kernel": {"memtrace.errors", "memtrace.tracer", "memtrace.procps", "memtrace.oom_kill"},
    "analysis": {"memtrace.errors", "memtrace.tracer", "memtrace.procps", "memtrace.oom_kill"},
    "replay": {"memtrace.errors", "memtrace.tracer", "memtrace.kernel", "memtrace.procps", "memtrace.oom_kill"},
}


def _memtrace_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "memtrace" or m.startswith("memtrace.")}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_what_they_may(layer: str) -> None:
    for path in sorted((ROOT / layer).rglob("*.py")):
        for module in _memtrace_imports(path):
            assert any(module == a or module.startswith(a + ".") for a in ALLOWED[layer]), (
                f"{path.relative_to(ROOT)} imports {module}"
            )


def test_nothing_imports_the_cli() -> None:
    for path in sorted(ROOT.glob("*/*.py")):
        if path.parts[-2] in ("tests", "bench") or path.name.startswith("cli") or path.name == "__main__.py":
            continue
        assert "memtrace.cli" not in _memtrace_imports(path), path


def test_public_api_is_sorted_and_resolves() -> None:
    names = [n for n in memtrace.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in names:
        assert getattr(memtrace, name) is not None
    with pytest.raises(AttributeError):
        memtrace.nosuch  # noqa: B018


def test_tracer_exports_are_sorted() -> None:
    from memtrace import tracer

    assert tracer.__all__ == sorted(tracer.__all__)
