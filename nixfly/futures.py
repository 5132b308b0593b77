"""Waiting for worker threads from the main thread without sleeping through a Ctrl-C.

CPython runs a signal's Python handler (KeyboardInterrupt, ``errors.Stopped``) only in the main thread,
between bytecodes or when a blocking call returns EINTR. A signal that lands after the interpreter last
looked but before a lock wait blocks runs only its C handler and interrupts nothing: an unbounded
``Future.result()`` then sleeps until the worker finishes, which for a hung host or read is never. Waiting
in short slices lets the pending handler run within ``SIGNAL_POLL`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, wait
from typing import Any, TypeVar

T = TypeVar("T")

# Seconds between the main thread's looks for a signal that arrived while it was waiting.
SIGNAL_POLL = 0.2


def wait_all(futures: Iterable[Future[Any]]) -> None:
    """Return once every future is done; a Ctrl-C raises here within ``SIGNAL_POLL`` seconds."""
    pending = list(futures)
    while pending:
        pending = list(wait(pending, timeout=SIGNAL_POLL).not_done)


def result(future: Future[T]) -> T:
    """``future.result()``, interruptible like ``wait_all`` (a TimeoutError the work raised is its own)."""
    wait_all([future])
    return future.result()
