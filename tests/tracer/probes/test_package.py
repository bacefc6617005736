"""The probes package re-exports its public surface from its modules."""

from __future__ import annotations

from memtrace.tracer import probes


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_exports_are_sorted_and_resolve() -> None:
    assert probes.__all__ == sorted(probes.__all__, key=_isort_key)
    for name in probes.__all__:
        assert getattr(probes, name) is not None


def test_the_names_other_code_imports_are_there() -> None:
    """The one-liner compiler, the CLI and the tools import these from the package."""
    for name in ("Events", "Map", "Tracer", "StrColumn", "PrintfOutput", "AttachOutput", "render_text",
                 "render_json", "run_batches", "format_rows", "parse_format", "sim_strftime", "cuts_unique",
                 "cuts_isolate", "unify_strings", "as_int64", "INT_KINDS"):
        assert name in probes.__all__, name
