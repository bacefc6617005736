"""The package's shape: public API and the layering rules of DESIGN.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import memtrace

ROOT = Path(__file__).parent.parent

#: Modules that belong to no layer and import nothing of memtrace but each other:
#: the errors, the units, safe writes, signals, escaping, and the kernel facts (memtrace/linux/).
LEAVES = {"memtrace.errors", "memtrace.units", "memtrace.safewrite", "memtrace.interrupts", "memtrace.escape",
          "memtrace.linux"}

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


@pytest.mark.parametrize("leaf", ["memtrace/errors.py", "memtrace/units.py", "memtrace/safewrite.py",
                                  "memtrace/interrupts.py", "memtrace/escape.py"])
def test_leaf_modules_import_only_leaves(leaf: str) -> None:
    path = ROOT / leaf
    if not path.exists():
        pytest.skip(f"{leaf} does not exist")
    for module in _memtrace_imports(path):
        assert any(module == a or module.startswith(a + ".") for a in LEAVES), f"{leaf} imports {module}"


def _imports_cli(path: Path) -> bool:
    """Does ``path`` import memtrace.cli (or one of its modules), in any spelling?"""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "memtrace.cli" or node.module.startswith("memtrace.cli."):
                return True
            if node.module == "memtrace" and any(a.name == "cli" for a in node.names):
                return True
        elif isinstance(node, ast.Import) and any(
                a.name == "memtrace.cli" or a.name.startswith("memtrace.cli.") for a in node.names):
            return True
    return False


def test_nothing_imports_the_cli() -> None:
    """No module of the package imports the command line (``python -m memtrace``,
    its entry point, aside)."""
    paths = [p for folder in (*ALLOWED, "memtrace") for p in (ROOT / folder).rglob("*.py")]
    assert len(paths) > 50
    for path in sorted(set(paths)):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("memtrace", "cli") or rel == Path("memtrace/__main__.py"):
            continue
        assert not _imports_cli(path), rel


# --------------------------------------------------------------------------- the CLI package

CLI = ROOT / "memtrace" / "cli"
#: The CLI's two leaves: the app with its error handler, and the I/O helpers.
CLI_LEAVES = {"_app", "_io"}


def _cli_imports(path: Path) -> set[str]:
    """The modules of memtrace.cli that ``path`` imports (``__init__`` for the
    package itself), function-local imports included: a cycle dodged by importing
    inside a function is still a cycle."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "memtrace.cli" or (node.module == "memtrace"
                                                 and any(a.name == "cli" for a in node.names)):
                out.add("__init__")
            elif node.module.startswith("memtrace.cli."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "memtrace.cli":
                    out.add("__init__")
                elif a.name.startswith("memtrace.cli."):
                    out.add(a.name.split(".")[2])
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            out.add("..")  # reaching out of the package relatively: not done here
    return out


def test_cli_imports_form_a_tree() -> None:
    """memtrace.cli imports each command module; a command module imports only the
    leaves _app and _io; the leaves import nothing of the package; nothing imports
    memtrace.cli back. So the graph is a tree (acyclic) with _app and _io at the
    bottom, and no command module imports another."""
    graph = {p.stem: _cli_imports(p) for p in sorted(CLI.glob("*.py"))}
    commands = set(graph) - CLI_LEAVES - {"__init__"}
    assert set(graph) >= CLI_LEAVES and len(commands) >= 5, graph
    assert graph["__init__"] == commands | {"_app"}, "memtrace.cli imports every command module (they register)"
    for leaf in CLI_LEAVES:
        assert graph[leaf] == set(), f"{leaf} is a leaf: it imports {graph[leaf]}"
    for name in commands:
        assert graph[name] <= CLI_LEAVES, f"command module {name} imports {graph[name] - CLI_LEAVES}"
    # Acyclic: peel modules whose imports are all peeled already.
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"an import cycle among {set(graph) - done}"
        done |= ready


def test_the_console_script_and_python_m_memtrace_reach_main() -> None:
    """Both go through memtrace.__main__.main, which installs the signal handlers
    and only then imports the command line (whose main is memtrace.cli._app.main)."""
    import tomllib

    from memtrace.__main__ import main as entry
    from memtrace.cli import main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"memtrace": "memtrace.__main__:main"}
    assert main.__module__ == "memtrace.cli._app" and entry.__module__ == "memtrace.__main__"
    tree = ast.parse((ROOT / "memtrace" / "__main__.py").read_text())
    assert [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "memtrace.cli"] == []
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    calls = [n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert calls.index("install") < calls.index("cli_main")


def test_public_api_is_sorted_and_resolves() -> None:
    names = [n for n in memtrace.__all__ if n != "__version__"]
    assert names == sorted(names)
    assert list(memtrace._EXPORTS) == sorted(memtrace._EXPORTS)  # the table reads in order too
    for name in names:
        assert getattr(memtrace, name) is not None
    with pytest.raises(AttributeError):
        memtrace.__getattr__("nosuch")


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_tracer_exports_are_sorted() -> None:
    from memtrace import tracer

    assert tracer.__all__ == sorted(tracer.__all__, key=_isort_key)


def test_api_twins_every_command() -> None:
    """The public API has a Python twin of each command (DESIGN.md: memtrace/), and
    memtrace.api and memtrace.whatif keep their exports sorted."""
    from memtrace import api, whatif

    for name in ("open_trace", "stat_trace", "free", "explain", "ps", "report", "dmesg", "replay_trace",
                 "diff_traces", "import_trace", "run_what_ifs", "record", "load_tool"):
        assert name in memtrace.__all__, name
    for module in (api, whatif):
        assert module.__all__ == sorted(module.__all__, key=_isort_key)
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_every_package_of_the_tree_is_installed() -> None:
    """pyproject lists every package (setuptools installs only those) and maps it to
    its folder: a new subpackage missing there would import in an editable checkout
    and vanish from a wheel."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    roots = {"memtrace": "memtrace", "memtrace.tracer": "tracer", "memtrace.kernel": "kernel",
             "memtrace.replay": "replay", "memtrace.analysis": "analysis"}
    found: dict[str, str] = {}
    for package, folder in roots.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            if package == "memtrace" and rel.parts and rel.parts[0] in ("tracer", "kernel", "replay", "analysis"):
                continue
            name = ".".join([package, *rel.parts])
            found[name] = str(init.parent.relative_to(ROOT))
    assert sorted(found) == sorted(p for p in setuptools["packages"] if p in found)
    assert set(found) <= set(setuptools["packages"])
    for name, folder in found.items():
        assert package_dir.get(name) == folder, name
