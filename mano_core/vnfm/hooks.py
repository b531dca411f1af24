"""The VNFD's configuration hooks: an HTTP call to a VNFC's own address.

A VDU's ``day1`` hook runs on each new VNFC once its server is ACTIVE
(instantiate, scale out, recreate), ``day2`` on each VNFC by the configure
operation, ``drain`` on a VNFC before it is removed (scale in, terminate) or
stopped. The call is ``METHOD scheme://ADDRESS:PORT/PATH`` with the hook's
parameters (plus the request's, for day 2) as its JSON body.

A guest that has just booted may not listen yet, and one that is busy may
answer 503: such calls are tried again until the hook's ``timeout`` (wall
seconds: an HTTP round trip does not get faster with a scaled clock) runs
out. Any other answer but 2xx, or the timeout, fails the hook with
:class:`HookFailed`, naming the VNFC, the URL and what it answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from mano_core.errors import ManoError
from mano_core.models import VnfcInstance
from mano_core.vnfd import HttpHook

_RETRY_S = 0.2
"""Wall seconds between two tries of a hook whose VNFC does not answer yet."""


class HookFailed(ManoError):
    """A configuration hook did not succeed."""


class HookClient:
    """Calls hooks over one HTTP session (made on first use; :meth:`aclose` ends it)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own = session is None

    async def call(
        self,
        name: str,
        hook: HttpHook,
        vnfc: VnfcInstance,
        parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``hook`` (called ``name``) on ``vnfc``; returns what it answered (as JSON, or
        ``{"status": N}``). Raises :class:`HookFailed`."""
        if vnfc.address is None:
            raise HookFailed(f"{name} hook of VNFC {vnfc.id}: the VNFC has no address")
        url = f"{hook.scheme}://{vnfc.address}:{hook.port}{hook.path}"
        body = {**hook.parameters, **(parameters or {})}
        deadline = time.monotonic() + hook.timeout
        last = "no answer"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HookFailed(
                    f"{name} hook of VNFC {vnfc.id} ({hook.method} {url}) failed within "
                    f"{hook.timeout:g} s: {last}"
                )
            try:
                async with self._client().request(
                    hook.method, url, json=body, timeout=aiohttp.ClientTimeout(total=left)
                ) as response:
                    text = await response.text()
                    if 200 <= response.status < 300:
                        return _answer(response.status, text)
                    last = f"HTTP {response.status}: {text[:200]}"
                    if response.status != 503:
                        raise HookFailed(
                            f"{name} hook of VNFC {vnfc.id} ({hook.method} {url}) answered {last}"
                        )
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await asyncio.sleep(min(_RETRY_S, max(0.0, deadline - time.monotonic())))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None


def _answer(status: int, text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"status": status}
