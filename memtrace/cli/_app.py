"""The typer app, its global options, and :func:`main` with the one error handler.

A leaf of the CLI package: it imports no command module. Each command module
registers its commands on :data:`app`; ``memtrace.cli`` imports them all.
"""

from __future__ import annotations

import sys
from typing import NoReturn, TextIO, cast

import typer

from memtrace import __version__
from memtrace.errors import MemtraceError, UsageError
from memtrace.escape import PrintableStdout, printable
from memtrace.interrupts import exit_code
from memtrace.logsetup import configure_logging
from memtrace.pipes import user_text

__all__ = ["app", "main"]

app = typer.Typer(
    name="memtrace",
    help="Trace, replay and explain Linux memory management.",
    epilog=(
        "Examples:\n\n"
        "  memtrace record oom-leak                 # simulate a built-in scenario\n\n"
        "  memtrace report oom-leak.mtrace          # why was it OOM-killed, what if\n\n"
        "  memtrace replay oom-leak.mtrace --sysctl vm.overcommit_memory=2\n\n"
        "  memtrace explain oom-leak.mtrace --at 4.9s\n\n"
        "  memtrace report /var/log/kern.log        # a real kernel's OOM reports\n\n"
        "  memtrace ps                              # this machine's oom_score"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    """``--version``: eager, so it answers before typer asks for a command."""
    if value:
        typer.echo(f"memtrace {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="Log more to stderr (-vv for debug)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    configure_logging(verbose)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point, and the one place errors become exit codes.

    typer reports bad options and arguments itself (exit 2). A
    :class:`~memtrace.errors.UsageError` is one line and exit 2; any other
    :class:`~memtrace.errors.MemtraceError` one line and exit 1. Anything else is a
    bug: one line too, with the traceback only under ``-v``.
    """
    stdout = sys.stdout
    sys.stdout = cast(TextIO, PrintableStdout(stdout))  # no control character of an input reaches the terminal
    try:
        _run(argv)
    finally:
        sys.stdout = stdout


def _run(argv: list[str] | None) -> None:
    try:
        app(args=argv, prog_name="memtrace")
    except UsageError as e:
        typer.echo(f"memtrace: {printable(user_text(str(e)))}", err=True)
        sys.exit(2)
    except MemtraceError as e:
        typer.echo(f"memtrace: {printable(user_text(str(e)))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM as Terminated (memtrace.interrupts)
        _interrupted(e)
    except SystemExit as e:
        # typer turns a KeyboardInterrupt into a silent exit 130: say it, with the
        # signal's own code.
        interrupt = _interrupt_behind(e)
        if interrupt is None:
            raise
        _interrupted(interrupt)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # the last resort: a bug, shown in one line (-v shows the traceback)
        args = sys.argv if argv is None else argv
        if any(a in ("-v", "-vv", "--verbose") for a in args):
            raise
        typer.echo(f"memtrace: internal error: {type(e).__name__}: {printable(user_text(str(e)))} (run with -v for "
                   "the traceback)", err=True)
        sys.exit(1)


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt an exception was raised while handling, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    typer.echo("memtrace: interrupted", err=True)
    sys.exit(exit_code(exc))
