"""The package's shape: public API and the layering rules of DESIGN.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import memtrace

ROOT = Path(__file__).parent.parent

#: Modules that belong to no layer and import nothing of memtrace but each other:
#: the errors, the units, and the kernel facts (memtrace/linux/).
LEAVES = {"memtrace.errors", "memtrace.units", "memtrace.linux"}

#: What each layer may import of memtrace (besides itself, relatively): DESIGN.md's
#: table, with no exceptions.
ALLOWED = {
    "memtrace/linux": {"memtrace.linux"},
    "tracer": LEAVES,
    "kernel": LEAVES | {"memtrace.tracer"},
    "analysis": LEAVES | {"memtrace.tracer"},
    "replay": LEAVES | {"memtrace.tracer", "memtrace.kernel"},
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


@pytest.mark.parametrize("leaf", ["memtrace/errors.py", "memtrace/units.py"])
def test_leaf_modules_import_only_leaves(leaf: str) -> None:
    path = ROOT / leaf
    if not path.exists():
        pytest.skip(f"{leaf} does not exist")
    for module in _memtrace_imports(path):
        assert any(module == a or module.startswith(a + ".") for a in LEAVES), f"{leaf} imports {module}"


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


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_tracer_exports_are_sorted() -> None:
    from memtrace import tracer

    assert tracer.__all__ == sorted(tracer.__all__, key=_isort_key)
