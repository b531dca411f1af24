"""The policies in force as the API sees them: the directory's, re-read, with the replacements.

The policy workers re-read their directory and lay the operator's
replacements over it on each hot reload (:mod:`policy.replacements`); the
API does the same, at most once per ``max_age_s`` wall seconds and once
for all the requests that ask meanwhile (a burst of webhook calls), so
that the webhook matches alerts against the policies the workers act on,
and ``/api/v1/policies`` shows them. A replacement made through this API
is seen at once (:meth:`PoliciesInForce.changed`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bus.keys import Keys
from policy.reload import PolicyDirectory
from policy.replacements import PolicyReplacements, apply_replacements
from policy.schema import KpiPolicy


@dataclass(frozen=True)
class InForce:
    policies: list[KpiPolicy]
    """As replaced, in the files' order."""
    replaced: frozenset[str]
    """The names of those an operator's replacement is in force for."""


class PoliciesInForce:
    def __init__(
        self,
        redis: Any,
        keys: Keys,
        loaded: Sequence[KpiPolicy],
        directory: Path | None,
        *,
        max_age_s: float = 1.0,
    ) -> None:
        self._replacements = PolicyReplacements(redis, keys)
        self._loaded = list(loaded)
        self._watcher = None if directory is None else PolicyDirectory(directory)
        self._max_age_s = max_age_s
        self._read_at = -math.inf
        self._current = InForce(list(loaded), frozenset())
        self._reading: asyncio.Future[InForce] | None = None

    async def current(self) -> InForce:
        if time.monotonic() - self._read_at <= self._max_age_s:
            return self._current
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._done)
        return await asyncio.shield(self._reading)

    def changed(self) -> None:
        """The replacements changed: the next look reads them again."""
        self._read_at = -math.inf

    def _done(self, _reading: asyncio.Future[InForce]) -> None:
        self._reading = None

    async def _read(self) -> InForce:
        started = time.monotonic()
        texts = await self._replacements.texts()
        files = self._loaded
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.poll)
            files = self._watcher.snapshot.policies
        policies, _ = apply_replacements(files, texts)
        replaced = frozenset(p.name for p, f in zip(policies, files, strict=True) if p is not f)
        self._current, self._read_at = InForce(policies, replaced), started
        return self._current


IN_FORCE = web.AppKey("policies_in_force", PoliciesInForce)
