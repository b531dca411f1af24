"""``/healthz`` (the process answers), ``/readyz`` (Redis and every VIM answer), ``/metrics``.

These three are open to anyone: probes and Prometheus carry no token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from assure.api.metrics import metrics_response
from assure.api.routing import Reply, Route
from assure.api.state import DEPS, METRICS

READY_CHECK_S = 5.0
"""Wall seconds one readiness check (Redis, a VIM) may take before it counts as failed."""

_HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
}
_READY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {
            "type": "object",
            "description": "Each dependency (redis, vim:<name>) -> 'ok' or why not.",
            "additionalProperties": {"type": "string"},
        },
    },
}


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    checks: dict[str, Awaitable[Any]] = {"redis": deps.redis.ping()}
    for vim in deps.vims:
        checks[f"vim:{vim.name}"] = vim.list_hosts()
    results = await asyncio.gather(*(_check(c) for c in checks.values()))
    verdicts = dict(zip(checks, results, strict=True))
    ready = all(v == "ok" for v in verdicts.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": verdicts},
        status=200 if ready else 503,
    )


async def _check(call: Awaitable[Any]) -> str:
    try:
        async with asyncio.timeout(READY_CHECK_S):
            await call
    except TimeoutError:
        return f"no answer within {READY_CHECK_S:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


async def metrics(request: web.Request) -> web.Response:
    return await metrics_response(request.app[METRICS])


ROUTES = [
    Route(
        "GET", "/healthz", healthz, None, "The process is alive.", "health", "healthz",
        replies={200: Reply("Alive.", _HEALTH)},
    ),
    Route(
        "GET", "/readyz", readyz, None, "Redis and every VIM answer.", "health", "readyz",
        replies={200: Reply("Ready.", _READY),
                 503: Reply("Not ready: the checks say why.", _READY)},
    ),
    Route(
        "GET", "/metrics", metrics, None, "The platform's own metrics (Prometheus text format).",
        "health", "metrics",
        replies={200: Reply("Prometheus text exposition.", {"type": "string"},
                            media_type="text/plain")},
    ),
]  # fmt: skip
