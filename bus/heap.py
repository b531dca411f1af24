"""Keeping what lives as long as the process out of the garbage collector's sight.

Caches, modules and connections live as long as the process; a full
collection walking them all takes tens of milliseconds, which stalls the
event loop (and with it every scrape, push and lease renewal) every few
seconds under load. Once a process has built them (its first collection
cycle, a push receiver whose sender's series are all known, an API server
set up and about to take requests), they are frozen (``gc.freeze``) and
never walked again; what is made later is collected as usual.

What a process builds after that (the caches of targets whose shard it
took over, of a sender's new series) would be walked by every full
collection again. So a full collection that took long (over
:data:`REFREEZE_AFTER_S` of CPU time: it walked many objects that
survived it) has the next :func:`freeze_heap` call freeze them too, after
a collection of the young generations; so does a call saying the caller
just built many (``grown``). Objects frozen and later dropped in a
reference cycle are never reclaimed; that happens on the first call,
after a slow full collection and when caches grew only, rare events, not
every cycle. A process with no cycle of its own (an API server) calls
:func:`keep_heap_frozen`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

REFREEZE_AFTER_S = 0.005
"""A full collection taking this much CPU time (or more) has what survived it frozen."""

_frozen = False
_refreeze = False
_started = 0.0


def freeze_heap(*, grown: bool = False) -> None:
    """Freeze what lives now, on the first call and after a slow full collection.

    Cheap otherwise: callers call it after every cycle (or request) that
    found its caches built. ``grown``: the caller just built many more (a
    collector's cycle over the targets of shards it took over); they are
    frozen now, before a full collection has to walk them.
    """
    global _frozen, _refreeze  # noqa: PLW0603 - once per process
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_watch_full_collections)
    elif _refreeze or grown:
        _refreeze = False
        gc.collect(1)
        gc.freeze()


async def keep_heap_frozen(every_s: float = 1.0) -> None:
    """Call :func:`freeze_heap` every ``every_s`` seconds, until cancelled (the caller
    makes the first call, where its start-up ends)."""
    while True:
        await asyncio.sleep(every_s)
        freeze_heap()


def _watch_full_collections(phase: str, info: dict[str, Any]) -> None:
    global _refreeze, _started  # noqa: PLW0603 - one collector per process
    if info["generation"] != 2:
        return
    if phase == "start":
        _started = time.thread_time()
    elif time.thread_time() - _started >= REFREEZE_AFTER_S:
        _refreeze = True
