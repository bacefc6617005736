"""The ``memtrace`` command line (typer).

Commands render what :mod:`memtrace.api` returns: human text under 80 columns, or
one JSON object with ``--json``. Every MemtraceError becomes one line on stderr,
``memtrace: <message>``, and exit code 1 (2 for a UsageError): see
:func:`memtrace.cli._app.main`, the one error handler.

The package's imports form a tree: this module imports the command modules, each
of which imports only the two leaves, ``_app`` (the app, global options, ``main``)
and ``_io`` (inputs, outputs, warnings, progress); no module imports
``memtrace.cli`` back, and no command module imports another::

    __init__ ─┬─ record   record, scenarios
              ├─ explain  stat, free, explain, ps
              ├─ report   report, dmesg
              ├─ replay   replay, diff
              ├─ real     import, snapshot
              └─ trace    list, trace, tools
                   (each) ─► _app, _io

A command module registers its commands on the app when imported; the order of
the imports below is the order of ``memtrace --help``. A new command goes into
the module of its group (or a new module imported here).
"""

# isort: off
from . import record  # noqa: F401  (registers record and scenarios)
from . import explain  # noqa: F401  (stat, free, explain, ps)
from . import report  # noqa: F401  (report, dmesg)
from . import replay  # noqa: F401  (replay, diff)
from . import real  # noqa: F401  (import, snapshot)
from . import trace  # noqa: F401  (list, trace, tools)

# isort: on
from ._app import app, main

__all__ = ["app", "main"]
