"""memtrace.interrupts.deferred: a signal inside the block takes effect when it ends."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from memtrace import interrupts


@pytest.fixture
def handlers() -> Iterator[None]:
    """memtrace's handlers installed for the test, Python's put back after it."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    try:
        yield
    finally:
        interrupts._State.received = None
        for s, h in old.items():
            signal.signal(s, h)


@pytest.mark.usefixtures("handlers")
@pytest.mark.parametrize(("sig", "exc"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, interrupts.Terminated)])
def test_a_signal_inside_the_block_is_raised_when_it_ends(sig: signal.Signals, exc: type[BaseException]) -> None:
    done = []
    with pytest.raises(exc), interrupts.deferred():
        signal.raise_signal(sig)
        done.append("first")
        with interrupts.deferred():  # nested: waits for the outermost
            done.append("second")
        done.append("third")
    assert done == ["first", "second", "third"]
    assert interrupts._State.received == sig


@pytest.mark.usefixtures("handlers")
def test_without_a_signal_the_block_just_runs() -> None:
    with interrupts.deferred():
        pass
    assert interrupts._State.received is None
    with pytest.raises(KeyboardInterrupt):  # and outside a block a signal raises at once
        signal.raise_signal(signal.SIGINT)
