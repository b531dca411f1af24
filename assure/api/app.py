"""The HTTP server: one aiohttp application built from its collaborators and one route table.

:func:`build_app` takes everything it uses (:class:`~assure.api.state.ApiDeps`),
the route sets other packages contribute (push receivers) and the metric
collectors they bring, and returns the application; nothing in it reaches
for a global. :func:`serve` runs it on ``api.host:api.port`` until a stop
event is set, then lets lifecycle operations it started finish.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from assure.api import (
    alerts,
    approvals,
    assurance,
    dashboard,
    descriptors,
    discovery,
    events,
    health,
    nslcm,
    op_occs,
    policies,
    vnflcm,
    vnflcm_day2,
)
from assure.api.alert_ledger import AlertLedger, LedgerBatches
from assure.api.alert_targets import InventorySnapshot
from assure.api.http_metrics import HTTP_METRICS, HttpMetrics, measure
from assure.api.loop_metrics import LoopCollector, LoopLatency
from assure.api.metrics import MetricsHub
from assure.api.middlewares import authenticate, problems, time_limit
from assure.api.openapi import openapi_json
from assure.api.policies_in_force import IN_FORCE, PoliciesInForce
from assure.api.routing import Reply, Route, RouteSet
from assure.api.state import DEPS, METRICS, ROUTE_OF, ApiDeps, route_key
from assure.api.tokens import Role, TokenStore
from assure.api.views import ViewBuilder
from assure.platform import Platform
from bus.heap import freeze_heap, keep_heap_frozen
from bus.tasks import cancel_and_wait
from policy.schema import KpiPolicy

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
"""Wall seconds operations the server started get to finish at shutdown."""


def deps_of(
    platform: Platform,
    policies: Sequence[KpiPolicy],
    registry: CollectorRegistry,
    policy_dir: Path | None = None,
) -> ApiDeps:
    """The server's collaborators, taken from an open platform; ``policies`` were loaded
    from ``policy_dir`` (None: not from a directory)."""
    return ApiDeps(
        settings=platform.settings.api,
        redis=platform.redis,
        keys=platform.keys,
        clock=platform.clock,
        catalogue=platform.catalogue,
        inventory=platform.inventory,
        ops=platform.ops,
        vnfm=platform.vnfm,
        vims=list(platform.vims.values()),
        tokens=TokenStore(platform.redis, platform.keys, platform.clock),
        onboarding=platform.onboarding,
        ns_inventory=platform.ns_inventory,
        ns_lcm=platform.nslcm,
        policies=list(policies),
        policy_dir=policy_dir,
        policies_reload=platform.settings.policy.reload_interval > 0,
        registry=registry,
        stream_maxlen=platform.settings.redis.stream_maxlen,
        lease_ttl_s=platform.settings.actuator.lease_ttl,
    )


OPENAPI = Route(
    "GET", "/api/v1/openapi.json", openapi_json, Role.VIEWER,
    "This document: the OpenAPI 3.1 description of every route.", "meta", "getOpenApi",
    replies={200: Reply("The OpenAPI document.", {"type": "object"})},
)  # fmt: skip


def core_routes() -> list[Route]:
    """The server's own routes, in the order the OpenAPI document lists them."""
    return [
        *health.ROUTES,
        OPENAPI,
        *vnflcm.ROUTES,
        *vnflcm_day2.ROUTES,
        *op_occs.ROUTES,
        *nslcm.ROUTES,
        *descriptors.ROUTES,
        *policies.ROUTES,
        *assurance.ROUTES,
        *events.ROUTES,
        *alerts.ROUTES,
        *discovery.ROUTES,
        *approvals.ROUTES,
        *dashboard.ROUTES,
    ]


def build_app(
    deps: ApiDeps,
    *,
    routes: Sequence[RouteSet] = (),
    collectors: Sequence[Collector] = (),
) -> web.Application:
    """The application: the core routes plus ``routes``, metrics from ``deps.registry``.

    ``collectors`` are registered on the registry, after the loop's own
    (:class:`~assure.api.loop_metrics.LoopCollector`), each refreshed before a
    scrape when it can be (see :mod:`assure.api.metrics`).
    """
    app = web.Application(
        middlewares=[measure, problems, time_limit, authenticate],
        client_max_size=deps.settings.body_limit,
    )
    app[DEPS] = deps
    app[METRICS] = MetricsHub(deps.registry, [LoopCollector(deps.redis, deps.keys), *collectors])
    app[HTTP_METRICS] = HttpMetrics(deps.registry)
    app[alerts.SNAPSHOT] = InventorySnapshot(deps.inventory)
    ledger = AlertLedger(deps.redis, deps.keys, maxlen=deps.stream_maxlen)
    app[alerts.LEDGER] = LedgerBatches(ledger, deps.clock)
    app[IN_FORCE] = PoliciesInForce(deps.redis, deps.keys, deps.policies, deps.policy_dir)
    table: dict[str, Route] = {}
    for route in [*core_routes(), *(r for route_set in routes for r in route_set)]:
        key = route_key(route.method, route.path)
        if key in table:
            raise ValueError(f"two routes for {key}")
        table[key] = route
        app.router.add_route(route.method, route.path, route.handler)
    app[ROUTE_OF] = table
    app.cleanup_ctx.append(_frozen_heap)
    return app


async def _frozen_heap(_app: web.Application) -> AsyncIterator[None]:
    """Keep what the server built out of full collections (:mod:`bus.heap`): frozen once
    it is set up, before it takes a request, and again after a slow full collection.

    A full collection walking a platform's modules and caches stalls every request
    in flight for tens of milliseconds, a burst of webhook notifications included.
    """
    freeze_heap()
    keeping = asyncio.create_task(keep_heap_frozen(), name="frozen heap")
    yield
    await cancel_and_wait([keeping])


async def run_api(
    platform: Platform,
    policies: Sequence[KpiPolicy],
    stop: asyncio.Event,
    *,
    routes: Sequence[RouteSet] = (),
    collectors: Sequence[Collector] = (),
    policy_dir: Path | None = None,
) -> None:
    """The API role: the server on ``api.host:api.port``, its views and loop metrics."""
    deps = deps_of(platform, policies, platform.registry, policy_dir)
    app = build_app(deps, routes=routes, collectors=collectors)
    first = await deps.tokens.bootstrap()
    if first is not None:
        # Shown once, as Jupyter and Grafana show a first credential.
        sys.stderr.write(
            "nfv-assure: first start, so an admin token was made (it is shown only now):\n"
            f"  {first}\n"
            "Give it to the CLI as NFVA_TOKEN; make others with 'nfv-assure token create'.\n"
        )
        sys.stderr.flush()
    latency = LoopLatency(deps.redis, deps.keys, deps.registry)
    views = ViewBuilder(deps.redis, deps.keys)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(views.run(stop))
            tasks.create_task(latency.run(stop))
            tasks.create_task(serve(app, deps.settings.host, deps.settings.port, stop))
    finally:
        deps.registry.unregister(latency.histogram)
        for collector in app[METRICS].collectors:
            deps.registry.unregister(collector)


async def serve(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("API listening on http://%s:%d", host, port)
        await stop.wait()
    finally:
        app[DEPS].stopping.set()
        await runner.cleanup()
        await finish_background(app[DEPS])


async def finish_background(deps: ApiDeps) -> None:
    """Give the server's own background work the grace period, then cancel what is left."""
    if not deps.background:
        return
    _, late = await asyncio.wait(set(deps.background), timeout=SHUTDOWN_GRACE_S)
    await cancel_and_wait(late)
