"""Where a simulated cloud lives: one JSON document in Redis, changed under WATCH.

Every process of a deployment that builds a :class:`SimulatedVim` with the
same Redis, key prefix and name shares one cloud, and a restart of the
platform finds it as it was. The first process to use it stores the
initial state it was configured with; later ones use what is stored.

A change reads the document, applies a function to it and writes it back
in a MULTI/EXEC guarded by WATCH, retrying when another process changed
it meanwhile, so no change is lost. A function that raises writes
nothing. Reads do not write: the time-driven changes that have happened
by now are settled on the copy that was read (and stored by the next
change), so a poll of a server's state costs one GET.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from redis.exceptions import WatchError

from mano_core.vim.simulated.state import CloudState

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CloudState)


class CloudStore:
    """The state of one simulated VIM at ``key``; ``initial`` builds it the first time."""

    def __init__(self, redis: Any, key: str, initial: Callable[[], CloudState]) -> None:
        self._redis = redis
        self.key = key
        self._initial = initial

    async def read(self) -> CloudState:
        """The state as stored (stored first, if this is the cloud's first use)."""
        raw = await self._redis.get(self.key)
        if raw is None:
            return await self.update(lambda state: state)
        return _decoder.decode(raw)

    async def update(self, change: Callable[[CloudState], T]) -> T:
        """Apply ``change`` to the stored state and store the result; returns its result."""
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.key)
                    raw = await pipe.get(self.key)
                    state = self._initial() if raw is None else _decoder.decode(raw)
                    result = change(state)
                    pipe.multi()
                    pipe.set(self.key, _encoder.encode(state))
                    await pipe.execute()
                    return result
                except WatchError:
                    continue  # changed by another process meanwhile: do it again on the new state
