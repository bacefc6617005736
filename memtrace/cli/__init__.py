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
from . import record  # registers record and scenarios
from . import explain  # stat, free, explain, ps
from . import report  # report, dmesg
from . import replay  # replay, diff
from . import real  # import, snapshot
from . import trace  # list, trace, tools
from . import sweep  # sweep, export

# isort: on
from ._app import app, main

#: The app and its entry point; the command modules are listed too, since
#: importing them is what registers the commands.
__all__ = ["app", "explain", "main", "real", "record", "replay", "report", "sweep", "trace"]
