"""``python -m memtrace`` and the ``memtrace`` console script.

SIGINT and SIGTERM become exceptions (:func:`memtrace.interrupts.install`) before
the command line's heavy imports (typer, numpy, the commands), so an interrupt at
any moment ends memtrace with one line, ``memtrace: interrupted``, and exit code
130 or 143, never a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Install the signal handlers, then run the command line."""
    from memtrace.interrupts import exit_code, finish_interrupted, ignore_late_signals, install

    install()
    try:
        try:
            from memtrace.cli import main as cli_main
        except KeyboardInterrupt as e:  # interrupted while importing
            sys.stderr.write("memtrace: interrupted\n")
            sys.exit(exit_code(e))
        cli_main()
    except SystemExit as e:
        ignore_late_signals()  # the command is done: a signal now must not undo its exit code
        finish_interrupted(e)
        raise
    finally:
        ignore_late_signals()


if __name__ == "__main__":
    main()
