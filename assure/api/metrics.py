"""``/metrics``: the registry the server was given, rendered in the Prometheus text format.

Collectors whose values live in Redis (violations by status, stream lag)
cannot read it inside prometheus-client's synchronous ``collect()``. They
implement :class:`AsyncRefresh` as well: ``/metrics`` awaits every such
collector's ``refresh()`` first (concurrently), then renders, so values are
read from their source of truth at scrape time, never poked into gauges.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector


@runtime_checkable
class AsyncRefresh(Protocol):
    """A collector that reads its values (asynchronously) just before each scrape."""

    async def refresh(self) -> None: ...


class MetricsHub:
    """The registry and the collectors to refresh before rendering it."""

    def __init__(self, registry: CollectorRegistry, collectors: Sequence[Collector] = ()) -> None:
        self.registry = registry
        self.collectors: list[Collector] = []
        """What this hub registered (to unregister at shutdown)."""
        self._refresh: list[AsyncRefresh] = []
        for collector in collectors:
            self.add(collector)

    def add(self, collector: Collector) -> None:
        """Register ``collector``; one with ``refresh()`` is refreshed before every scrape."""
        self.registry.register(collector)
        self.collectors.append(collector)
        if isinstance(collector, AsyncRefresh):
            self._refresh.append(collector)

    async def render(self) -> bytes:
        if self._refresh:
            await asyncio.gather(*(c.refresh() for c in self._refresh))
        return generate_latest(self.registry)


async def metrics_response(hub: MetricsHub) -> web.Response:
    body = await hub.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
