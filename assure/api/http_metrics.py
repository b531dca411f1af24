"""The server's own request metrics, and the webhook's outcomes.

- ``nfva_http_requests_total{route, method, code}``: every answer, by route
  template (``unmatched`` for paths no route has);
- ``nfva_http_request_duration_seconds{route}``: time to answer;
- ``nfva_webhook_requests_total{outcome}``: the Alertmanager webhook's
  notifications: ``accepted``, ``malformed`` (400, 413, 415),
  ``unauthorized`` (401, 403), ``unknown_target`` (422), ``failed`` (5xx);
- ``nfva_webhook_alerts_total{outcome}``: its alerts: ``queued``,
  ``duplicate`` (a repeat: nothing queued), ``unknown`` (resolved, never
  seen firing), ``unmatched`` (no policy's trigger matches).
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from assure.api.routing import Handler

WEBHOOK_PATH = "/api/v1/alerts"

_OUTCOME_OF = {400: "malformed", 413: "malformed", 415: "malformed", 401: "unauthorized",
               403: "unauthorized", 422: "unknown_target"}  # fmt: skip


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "nfva_http_requests", "HTTP requests answered.", ["route", "method", "code"],
            registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "nfva_http_request_duration_seconds", "Time to answer an HTTP request.", ["route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )  # fmt: skip
        self.webhook = Counter(
            "nfva_webhook_requests", "Alertmanager notifications by outcome.", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.alerts = Counter(
            "nfva_webhook_alerts", "Alerts of Alertmanager notifications by outcome.",
            ["outcome"], registry=registry,
        )  # fmt: skip

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        if request.match_info.http_exception is not None:
            route = "unmatched"
        self.requests.labels(route, request.method, str(status)).inc()
        self.duration.labels(route).observe(seconds)
        if route == WEBHOOK_PATH and request.method == "POST":
            outcome = "accepted" if status < 300 else _OUTCOME_OF.get(status, "failed")
            self.webhook.labels(outcome).inc()


HTTP_METRICS = web.AppKey("http_metrics", HttpMetrics)


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every answer (outermost: it sees the final status, errors included)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        request.app[HTTP_METRICS].observe(request, status, time.perf_counter() - start)
