"""Waiting for worker threads without sleeping through a Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nixfly import futures


def test_result_is_the_works_own_and_so_are_its_errors():
    with ThreadPoolExecutor(1) as pool:
        assert futures.result(pool.submit(lambda: 42)) == 42

        def times_out() -> None:
            raise TimeoutError("the work's own timeout")

        with pytest.raises(TimeoutError, match="the work's own"):
            futures.result(pool.submit(times_out))


def test_a_ctrl_c_while_waiting_raises_before_the_work_ends():
    """A Ctrl-C from another thread (what the terminal does) ends the wait, not the work."""
    release = threading.Event()
    main = threading.main_thread().ident
    assert main is not None
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ThreadPoolExecutor(2) as pool:
            busy = pool.submit(release.wait, 30)
            pool.submit(lambda: (time.sleep(0.1), signal.pthread_kill(main, signal.SIGINT)))
            begun = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                futures.wait_all([busy])
            assert not busy.done(), f"waited {time.monotonic() - begun:.1f}s: until the work ended"
            release.set()
    finally:
        release.set()
        signal.signal(signal.SIGINT, previous)
