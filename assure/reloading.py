"""Roles that follow the policy directory: started again on the policies a reload brings.

The policy engine reloads its own policies in place
(:meth:`policy.engine.PolicyEngine.reload`). A stage built from what the
policies say, but that cannot change it while it runs (the analytics stage
and its conditions), runs under :func:`reloading`: when the directory's
policies change what the stage is built from, it is stopped (finishing what
it holds, as at shutdown) and started on the new policies, in the same
process. What it keeps in Redis (open episodes) carries over. An
operator's replacements (:mod:`policy.replacements`) count as a change of
the directory: the stage runs on the policies as replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bus.clock import Clock
from bus.tasks import cancel_and_wait, wait_for_stop
from policy.reload import PolicyDirectory
from policy.replacements import PolicyReplacements
from policy.schema import KpiPolicy

log = logging.getLogger(__name__)

Work = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def reloading(
    name: str,
    policies: Sequence[KpiPolicy],
    build: Callable[[Sequence[KpiPolicy]], Work],
    *,
    key: Callable[[Sequence[KpiPolicy]], object],
    directory: Path | None,
    interval_s: float,
    clock: Clock,
    replacements: PolicyReplacements | None = None,
) -> Work:
    """Run ``build(policies)``; run it again on new policies whose ``key`` differs.

    With ``replacements``, the policies run are the directory's as replaced.
    """
    if directory is None or interval_s <= 0:
        return build(policies)

    async def poll(watcher: PolicyDirectory) -> Sequence[KpiPolicy] | None:
        texts = None if replacements is None else await replacements.texts()
        snapshot = await asyncio.to_thread(watcher.poll, texts)
        return None if snapshot is None else snapshot.policies

    async def run(stop: asyncio.Event) -> None:
        watcher = PolicyDirectory(directory)
        await poll(watcher)
        current: Sequence[KpiPolicy] = policies
        if replacements is not None:
            current = watcher.snapshot.policies
        while not stop.is_set():
            inner = asyncio.Event()
            task = asyncio.create_task(build(current)(inner))
            try:
                current = await _until_changed(
                    lambda: poll(watcher),
                    current,
                    task,
                    stop=stop,
                    key=key,
                    wall_s=clock.to_wall(interval_s),
                )
            finally:
                inner.set()
                try:
                    await asyncio.wait_for(asyncio.shield(task), 30)
                except TimeoutError:
                    await cancel_and_wait([task])
            if not stop.is_set():
                log.info("the %s role starts again on the reloaded policies", name)

    return run


async def _until_changed(
    poll: Callable[[], Coroutine[Any, Any, Sequence[KpiPolicy] | None]],
    current: Sequence[KpiPolicy],
    task: asyncio.Task[None],
    *,
    stop: asyncio.Event,
    key: Callable[[Sequence[KpiPolicy]], object],
    wall_s: float,
) -> Sequence[KpiPolicy]:
    """Wait until ``stop``, the end of ``task`` (re-raised) or new policies with another key."""
    while True:
        if await wait_for_stop(stop, wall_s):
            return current
        if task.done():
            task.result()  # a crash of the role ends it, as without reloading
            return current
        changed = await poll()
        if changed is not None and key(changed) != key(current):
            return changed
