"""``python -m memtrace``: the same as the ``memtrace`` command."""

from memtrace.cli import main

main()
