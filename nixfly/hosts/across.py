"""Work on several hosts at once: each host's result or error, and their errors said as one.

Shared by a group's deploy (``group``) and by the reads that list or compare hosts' generations
(``releases``), which a single host runs too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from nixfly.errors import NixflyError
from nixfly.futures import wait_all


class Named(Protocol):
    """A host as these helpers see it: its errors are said with its name."""

    @property
    def name(self) -> str: ...


# Hosts talked to at once: each copy is an ssh process sharing this machine's uplink, so a large group is
# worked through 8 at a time rather than opening every connection together.
PARALLEL = 8

T = TypeVar("T")
M = TypeVar("M", bound=Named)


def each(members: Sequence[M], action: Callable[[M], T]) -> list[T | NixflyError]:
    """``action`` on every member at once; in member order, each result or the ``NixflyError`` it raised.

    Anything else a thread raises (a bug) is raised here. On Ctrl-C this returns at once, without waiting:
    the pipeline stops every child process, whichever thread started it.
    """
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL, len(members)) or 1, thread_name_prefix="nixfly-host")
    try:
        futures = [pool.submit(action, member) for member in members]
        wait_all(futures)  # not one unbounded wait(): it could sleep through a Ctrl-C (nixfly.futures)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    results: list[T | NixflyError] = []
    for future in futures:
        error = future.exception()
        if error is not None and not isinstance(error, NixflyError):
            raise error
        results.append(error if isinstance(error, NixflyError) else future.result())
    return results


def failures(members: Sequence[M], results: Sequence[object]) -> list[tuple[M, NixflyError]]:
    """The members whose result is an error, with it."""
    return [(m, r) for m, r in zip(members, results, strict=True) if isinstance(r, NixflyError)]


def one_error(failed: Sequence[tuple[Named, NixflyError]], total: int, what: str) -> NixflyError:
    """Several hosts' errors as one, each host named once, after ``what`` failed ("" to say only theirs)."""

    def named(member: Named, exc: NixflyError) -> str:
        return exc.message if member.name in exc.message else f"{member.name}: {exc.message}"

    if len(failed) == 1:
        member, exc = failed[0]
        return NixflyError(f"{what}: {named(member, exc)}" if what else named(member, exc), exc.hint)
    said = "; ".join(named(m, exc) for m, exc in failed)
    head = f"{what} on {len(failed)} of {total} hosts" if what else f"{len(failed)} of {total} hosts failed"
    return NixflyError(f"{head}: {said}", failed[0][1].hint)
