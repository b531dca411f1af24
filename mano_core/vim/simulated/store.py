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

The **call log**: a change may say what call it answered
(:class:`~mano_core.vim.simulated.state.VimCall`); the entry is added to
the log stream in the same MULTI/EXEC as the change, so the log holds
exactly the calls the cloud served, each once, whoever made them and
whatever became of the caller. It is trimmed to about ``log_maxlen``
entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from redis.exceptions import WatchError

from mano_core.vim.simulated.state import CloudState, VimCall

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CloudState)
_call_decoder = msgspec.json.Decoder(VimCall)


class CloudStore:
    """The state of one simulated VIM at ``key``; ``initial`` builds it the first time."""

    def __init__(
        self,
        redis: Any,
        key: str,
        initial: Callable[[], CloudState],
        *,
        log_key: str | None = None,
        log_maxlen: int = 100_000,
    ) -> None:
        self._redis = redis
        self.key = key
        self._initial = initial
        self.log_key = log_key
        self.log_maxlen = log_maxlen

    async def read(self) -> CloudState:
        """The state as stored (stored first, if this is the cloud's first use)."""
        raw = await self._redis.get(self.key)
        if raw is None:
            return await self.update(lambda state: state)
        return _decoder.decode(raw)

    async def update(
        self, change: Callable[[CloudState], T], call: Callable[[T], VimCall] | None = None
    ) -> T:
        """Apply ``change`` to the stored state and store the result; returns its result.

        ``call`` says, from the result, which call the change answered: it
        goes to the call log with the change.
        """
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.key)
                    raw = await pipe.get(self.key)
                    state = self._initial() if raw is None else _decoder.decode(raw)
                    result = change(state)
                    pipe.multi()
                    pipe.set(self.key, _encoder.encode(state))
                    if call is not None and self.log_key is not None:
                        entry = {"call": _encoder.encode(call(result))}
                        pipe.xadd(self.log_key, entry, maxlen=self.log_maxlen, approximate=True)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue  # changed by another process meanwhile: do it again on the new state

    async def calls(self) -> list[VimCall]:
        """The call log, oldest first."""
        if self.log_key is None:
            return []
        entries = await self._redis.xrange(self.log_key)
        return [
            _call_decoder.decode(fields.get(b"call", fields.get("call"))) for _, fields in entries
        ]
