"""Open-file limits: raise the soft RLIMIT_NOFILE, fit the run's connections into it, and wait
out a moment without a free descriptor instead of blaming a document for it.

Every request in flight holds a socket, two with ``--mock`` (the in-process simulator holds the
other end of each connection in the same process). Under the usual soft limit of 1,024,
``--concurrency 2000`` took every descriptor, and documents opened then failed as unreadable.
So ``dscall process`` raises the soft limit to the hard one (the hard limit is the
administrator's choice and is never touched) and sizes itself to what it got
(``plan_fd_budget``, pure):

    spare            = limit - FD_RESERVED
    workers          = min(workers, spare // (2 * FD_PER_WORKER))   at most half of spare
    pool             = (spare - workers * FD_PER_WORKER) // (2 with --mock, else 1)
    max_concurrency  = min(max_concurrency, pool); concurrency = min(concurrency, that)

Extraction lookahead costs no descriptor of its own: a file is open only while it is read
(one at a time on the event loop, the others in worker processes with their own tables), so
capping the workers is what bounds it.

The one-line note names only what the user asked for: ``--concurrency``, and
``--max-concurrency`` or ``--workers`` when given. dscall's own defaults for those two (a
ceiling of 256 for adaptive growth, one worker per CPU) are lowered without a word: under
``ulimit -n 256``, ``--concurrency 8`` runs as asked and says nothing.

An open that still meets EMFILE/ENFILE (another process took the system's last descriptors, a
socket not yet closed) is retried with backoff (``retry_out_of_fds``, its async twin where a
blocking wait would keep the event loop from closing the very sockets it waits for).
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from dscall.config import (
    DEFAULT_MAX_CONCURRENCY,
    FD_PER_WORKER,
    FD_RESERVED,
    FD_RETRY_FIRST_S,
    FD_RETRY_MAX_S,
    FD_RETRY_TOTAL_S,
    ProcessSettings,
)

if sys.platform != "win32":
    # Imported now, not when needed: a module imported once no descriptor is left fails.
    import resource

T = TypeVar("T")
# The limit reported where there is none to read (Windows: sockets are not counted against one).
UNLIMITED = sys.maxsize
# macOS reports an unlimited hard limit but refuses a soft limit above OPEN_MAX.
_OPEN_MAX = 10240
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})


def raise_soft_limit() -> int:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows; return the soft limit now
    in force. Child processes (extraction workers) inherit it."""
    if sys.platform == "win32":
        return UNLIMITED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if soft == infinite:
        return UNLIMITED
    candidates = [] if hard == infinite else [hard]
    if hard == infinite or hard > _OPEN_MAX:
        candidates.append(_OPEN_MAX)
    for candidate in candidates:
        if candidate <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
        except (ValueError, OSError):  # refused (macOS above OPEN_MAX): try the next one
            continue
        return candidate
    return soft


def soft_limit() -> int:
    """The soft RLIMIT_NOFILE in force (``UNLIMITED`` where there is none)."""
    if sys.platform == "win32":
        return UNLIMITED
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return UNLIMITED if soft == resource.RLIM_INFINITY else soft


@dataclass(frozen=True, slots=True)
class FdPlan:
    concurrency: int
    max_concurrency: int
    workers: int
    note: str | None  # one line for the user when something had to be capped


def plan_fd_budget(
    limit: int,
    *,
    concurrency: int,
    max_concurrency: int,
    workers: int,
    mock: bool,
    default_max: bool = False,
    default_workers: bool = False,
) -> FdPlan:
    """Fit connections and extraction workers into ``limit`` open files (module docstring).
    ``default_max``/``default_workers``: that value is dscall's default, lowered unmentioned."""
    spare = max(limit - FD_RESERVED, 0)
    fitted_workers = max(1, min(workers, spare // (2 * FD_PER_WORKER)))
    per_request = 2 if mock else 1
    pool = max(1, (spare - fitted_workers * FD_PER_WORKER) // per_request)
    fitted_max = min(max_concurrency, pool)
    fitted = min(concurrency, fitted_max)
    capped: list[str] = []
    if concurrency > fitted_max:  # the CLI keeps max >= concurrency: name what was asked
        capped.append(f"--concurrency {concurrency} capped at {fitted_max}")
    elif max_concurrency > fitted_max and not default_max:
        capped.append(f"--max-concurrency {max_concurrency} capped at {fitted_max}")
    if fitted_workers < workers and not default_workers:
        capped.append(f"--workers {workers} capped at {fitted_workers}")
    note = None
    if capped:
        each = ", each request holds 2 with --mock" if mock else ""
        note = (
            f"note: {' and '.join(capped)}: {limit} open files allowed (ulimit -n{each}); "
            "raise the limit to go faster"
        )
    return FdPlan(fitted, fitted_max, fitted_workers, note)


def fit_to_fd_limit(
    settings: ProcessSettings, notify: Callable[[str], None], limit: int | None = None
) -> ProcessSettings:
    """``settings`` with concurrency and workers fitted to the open-file limit, raised first
    (``limit`` given: that one, for tests); the cap, if any, is told through ``notify``."""
    if limit is None:
        limit = raise_soft_limit()
    call, extract = settings.call, settings.extract
    workers = extract.workers or os.cpu_count() or 1  # as ExtractionPool resolves 0
    plan = plan_fd_budget(
        limit,
        concurrency=call.concurrency,
        max_concurrency=call.max_concurrency,
        workers=workers,
        mock=settings.mock,
        default_max=call.max_concurrency == DEFAULT_MAX_CONCURRENCY,
        default_workers=not extract.workers,
    )
    if plan.note is not None:
        notify(plan.note)
    if (plan.concurrency, plan.max_concurrency, plan.workers) == (
        call.concurrency,
        call.max_concurrency,
        workers,
    ):
        return settings
    fitted_call = replace(call, concurrency=plan.concurrency, max_concurrency=plan.max_concurrency)
    fitted_extract = extract if plan.workers == workers else replace(extract, workers=plan.workers)
    return replace(settings, call=fitted_call, extract=fitted_extract)


def out_of_fds(exc: BaseException) -> bool:
    """Whether ``exc`` says no file descriptor was free (this process's or the system's)."""
    return isinstance(exc, OSError) and exc.errno in _EXHAUSTED


def too_many_open_files() -> str:
    """The condition in words, with the limit in force: ``too many open files (ulimit -n N)``."""
    limit = soft_limit()
    return "too many open files" + ("" if limit == UNLIMITED else f" (ulimit -n {limit})")


def fd_exhausted_reason(total_s: float = FD_RETRY_TOTAL_S) -> str:
    """One line for a document that found no free descriptor even after waiting."""
    return (
        f"{too_many_open_files()} in dscall, still after {total_s:g} s of retries: a local "
        "limit, not this file's fault; raise it or lower --concurrency"
    )


def fd_retry_delays(
    first: float = FD_RETRY_FIRST_S, most: float = FD_RETRY_MAX_S, total: float = FD_RETRY_TOTAL_S
) -> Iterator[float]:
    """The waits between tries: ``first`` doubling up to ``most``, ``total`` seconds in all."""
    delay, spent = first, 0.0
    while spent + delay <= total:
        yield delay
        spent += delay
        delay = min(delay * 2, most)


def _tries(operation: Callable[[], T], delays: Iterable[float]) -> Generator[float, None, T]:
    """The retry policy, once for both drivers below: yields each delay to wait after a try
    that found no free descriptor, and returns ``operation``'s result (any other error, or
    the last try's, is raised as is)."""
    for delay in delays:
        try:
            return operation()
        except OSError as exc:
            if not out_of_fds(exc):
                raise
        yield delay
    return operation()


def retry_out_of_fds(
    operation: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
    delays: Iterable[float] | None = None,
) -> T:
    """``operation()``, tried again after each delay while it fails for want of a descriptor;
    the last failure is raised as is. Blocking: for threads and worker processes."""
    tries = _tries(operation, fd_retry_delays() if delays is None else delays)
    while True:
        try:
            delay = next(tries)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        sleep(delay)


async def retry_out_of_fds_async(
    operation: Callable[[], T],
    sleep: Callable[[float], Awaitable[None]] | None = None,
    delays: Iterable[float] | None = None,
) -> T:
    """``retry_out_of_fds`` on the event loop: the wait lets requests in flight finish and
    close their sockets, which is what frees descriptors in dscall's own process."""
    if sleep is None:
        import asyncio  # here: worker processes import this module and never need asyncio

        sleep = asyncio.sleep
    tries = _tries(operation, fd_retry_delays() if delays is None else delays)
    while True:
        try:
            delay = next(tries)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await sleep(delay)
