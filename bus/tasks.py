"""Stopping asyncio tasks reliably, even when a library loses a cancellation.

On Python 3.11 ``asyncio.wait_for`` returns normally, dropping the
cancellation, when its task is cancelled in the very step its inner
awaitable finishes (CPython issue 86296, fixed in 3.12). redis-py wraps
every socket write in ``wait_for``, so a ``cancel()`` that arrives while a
Redis command is being sent can vanish: the task carries on as if nothing
happened. A worker loop that relied on one ``cancel()`` to end would then
run forever, and whoever awaited it (a shutdown, a lease's release) would
hang with it.

The request is not lost everywhere, though: :meth:`asyncio.Task.cancelling`
still counts it. So:

* every long-running loop calls :func:`raise_if_cancelled` once a round and
  ends at the next round even when a cancellation was swallowed;
* :func:`cancel_and_wait` cancels tasks and waits for them, cancelling again
  any that is still alive after a while;
* :func:`wait_for_stop` waits for a stop event with a timeout without
  ``wait_for``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


def cancel_requested() -> bool:
    """Whether the current task was asked to stop (and has not handled it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelled() -> None:
    """Raise :class:`asyncio.CancelledError` when the current task was asked to stop.

    Call it once per round of a loop: a cancellation a library swallowed
    then still ends the loop, one round late.
    """
    if cancel_requested():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], *, recancel_s: float = 0.5) -> None:
    """Cancel ``tasks`` and return once every one has ended.

    A task still alive ``recancel_s`` (wall seconds) after its cancellation
    is cancelled again, until it ends. Their results and errors are not
    looked at. If the caller itself is cancelled meanwhile, that propagates.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_s)


async def wait_for_stop(stop: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``stop`` is set or ``timeout_s`` wall seconds passed; True when set."""
    if stop.is_set():
        return True
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiter], timeout=max(0.0, timeout_s))
    finally:
        waiter.cancel()
    return stop.is_set()
