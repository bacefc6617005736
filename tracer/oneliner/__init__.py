"""The one-liner language: a bpftrace subset compiled to vectorised probes.

::

    from memtrace.tracer import compile_program, run_trace
    tracer = compile_program('page_fault /comm == "leaker" && major/ { @faults[vma_kind] = count(); }')
    run_trace(tracer, reader)   # a TraceReader; or tracer.attach(bus), then tracer.finish()
    tracer.maps["@faults"]["anon_private"]

Reference
=========

**Config.** A program may start with ``config = { max_map_keys = N }``: each map
then holds at most N keys (default 4096, bpftrace's; at most 1,048,576);
``missing_probes = ignore`` (or ``warn``) skips a probe on a kernel tracepoint
memtrace does not record instead of refusing the program. Once a map
is full, updates of keys it does not hold are dropped, and the run ends with a
warning saying how many (``Tracer.warnings``); keys it holds still update. A program
file is read up to 1 MiB (:func:`read_program`).

**Probes.** ``NAME`` or ``tracepoint:NAME`` (a glob such as ``page_*`` matches
several; ``memtrace list`` names them); a real kernel tracepoint as bpftrace names
it, ``tracepoint:SYSTEM:EVENT`` or ``t:SYSTEM:EVENT`` (globs too), read through
the memtrace tracepoint it becomes, with the kernel's field names
(:mod:`.kernelnames`; ``memtrace trace -l``); ``BEGIN``, ``END``,
``interval:UNIT:N`` or ``interval:NUNIT`` (``s ms us ns``, or ``hz``) on the
trace's time. ``a, b { ... }`` attaches one block to several; ``/predicate/``
filters. A program has any number of probes. What bpftrace has and memtrace
cannot run (kprobes, stacks, casts, loops ...) is a ProgramError naming it
(:mod:`.unsupported`).

**Statements**, separated by ``;``: ``@map[k1, k2] = AGG(...)``, ``@map[k] = expr``,
``@map[k] += expr`` (``-=``, ``*=`` ..., ``++``, ``--``), ``$var = expr``,
``if (expr) { ... } else if (...) { ... } else { ... }``, and the calls
``if`` takes its condition with or without parentheses. Calls:
``printf(fmt, ...)``, ``print(@m [, top [, div]])``, ``print(expr)``, ``clear(@m)``,
``zero(@m)``, ``delete(@m[k])`` (or ``delete(@m, k)``), ``time([fmt])``, ``exit()``.

**Aggregations**: ``count()``, ``sum(v)``, ``min(v)``, ``max(v)``, ``avg(v)``,
``stats(v)``, ``hist(v)`` (power-of-2 buckets), ``lhist(v, min, max, step)``.

**Expressions**: integers (``42``, ``0x1f``, ``1_000``, ``1e6``), strings, ``true``
and ``false``; C operators and precedence: ``?:`` ``||`` ``&&`` ``|`` ``^`` ``&``
``== !=`` ``< <= > >=`` ``<< >>`` ``+ -`` ``* / %`` and unary ``! ~ -``. Integer
arithmetic is 64-bit signed, division truncates, and as in BPF ``x / 0`` is 0 and
``x % 0`` is ``x``. Strings compare with ``==`` and ``!=``.

**Names.** A bare name is a builtin or a field of the tracepoint (``args.NAME``
or ``args->NAME`` is always the field: ``args.comm`` of an oom_kill is the
victim's, ``comm`` the current task's). Integer and bool fields are integers (bool:
0 or 1); ``str`` and ``enum`` fields are strings, and an enum compared with a
literal must name one of its values (``vma_kind == "anon_private"``); as map keys
enums print their names. Builtins: ``pid``, ``tid``, ``comm`` (from the pid, via
the process_start/fork events seen so far), ``nsecs`` (event time, ns since boot),
``elapsed``, ``cpu``, ``probe``. Functions: ``str(s)`` (of a string: itself),
``path(ino)``, ``comm(pid)``, ``strftime(fmt, ns)``. ``#include`` and
``#if``/``#endif`` lines are skipped.

**Output** is bpftrace's: printf lines as events happen, maps at the end sorted by
value (histograms drawn in ASCII), or one JSON object per output line
(:func:`memtrace.tracer.probes.render_json`).

The grammar is in :mod:`.parser`; types and the compilation of expressions in
:mod:`.expressions`, over the column operations of :mod:`.ops`; statements and
probes in :mod:`.compiler`; the runtime (maps, output, event order) in
:mod:`memtrace.tracer.probes`.
"""

from .compiler import compile_program
from .errors import ProgramError
from .expressions import AGGREGATIONS, BUILTINS, EXPR_FUNCTIONS, STMT_FUNCTIONS
from .kernelnames import KERNEL_PROBES, KernelProbe, ProbeRow, probe_listing
from .parser import CONFIG_KEYS, parse
from .source import MAX_PROGRAM_BYTES, read_program

__all__ = [
    "AGGREGATIONS",
    "BUILTINS",
    "CONFIG_KEYS",
    "EXPR_FUNCTIONS",
    "KERNEL_PROBES",
    "MAX_PROGRAM_BYTES",
    "STMT_FUNCTIONS",
    "KernelProbe",
    "ProbeRow",
    "ProgramError",
    "compile_program",
    "parse",
    "probe_listing",
    "read_program",
]
