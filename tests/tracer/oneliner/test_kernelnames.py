"""Kernel tracepoint names (tracer/oneliner/kernelnames.py): each reads the memtrace
tracepoint whose schema names it, every field it gives compiles, and the doc lists
them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtrace.tracer.oneliner import KERNEL_PROBES, compile_program, probe_listing
from memtrace.tracer.tracepoints import default_registry

ROOT = Path(__file__).parent.parent.parent.parent
DOC = ROOT / "docs" / "bpftrace.md"


@pytest.mark.parametrize("kp", KERNEL_PROBES, ids=lambda kp: kp.name)
def test_each_kernel_probe_reads_the_tracepoint_the_schema_or_the_importer_names(kp: object) -> None:
    """The memtrace tracepoint's schema names the kernel tracepoint (``kernel``), or
    the importer's module of its system handles it (sys_exit_munmap and
    skip_task_reaping, which the schemas' text leaves out)."""
    from memtrace.tracer.oneliner import KernelProbe

    assert isinstance(kp, KernelProbe)
    tp = default_registry()[kp.tracepoint]
    importer = ROOT / "analysis" / "importers" / "mapping" / f"{kp.system}.py"
    handled = importer.exists() and f'"{kp.event}"' in importer.read_text()
    assert kp.event in tp.kernel or handled, (kp.name, tp.kernel)


@pytest.mark.parametrize("kp", KERNEL_PROBES, ids=lambda kp: kp.name)
def test_every_recorded_field_compiles(kp: object) -> None:
    """A program reading each field memtrace gives, by the kernel's name, compiles
    (with the probe's filter): no typo in the table's expressions."""
    from memtrace.tracer.oneliner import KernelProbe

    assert isinstance(kp, KernelProbe)
    fields = [f.name for f in kp.fields if f.expr]
    body = " ".join(f"@v{i}[args.{name}] = count();" for i, name in enumerate(fields))
    tracer = compile_program(f"{kp.probe} {{ {body} @n = count(); }}")
    assert tracer.nr_probes == 1


def test_the_doc_lists_every_kernel_probe() -> None:
    text = DOC.read_text()
    for kp in KERNEL_PROBES:
        assert f"| `{kp.name}` | `{kp.tracepoint}`" in text, kp.name


def test_listing_globs_the_whole_name_or_the_event() -> None:
    assert [r.probe for r in probe_listing("tracepoint:oom:*mark*")] == ["tracepoint:oom:mark_victim"]
    assert [r.probe for r in probe_listing("*rss_stat")] == ["tracepoint:kmem:rss_stat", "tracepoint:rss_stat"]
    assert len(probe_listing()) == len(KERNEL_PROBES) + len(default_registry())
