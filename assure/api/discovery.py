"""``/api/v1/prometheus/targets``: the VNFC exporters, for Prometheus' HTTP service discovery.

Prometheus (``http_sd_configs``) polls this list and scrapes every VNFC
exporter the inventory knows, with the labels the closed loop needs on
every series and therefore on every alert: ``vnfc_id``, ``vnf_instance_id``,
``vnf`` (the instance's name), ``vnfd`` and ``host``. Alert rules keep them,
and the webhook resolves an alert's target from them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from assure.api.routing import Reply, Route
from assure.api.state import DEPS
from assure.api.tokens import Role

_TARGET_GROUPS = {
    "type": "array",
    "description": "Prometheus HTTP service-discovery target groups, one per VNFC.",
    "items": {
        "type": "object",
        "required": ["targets", "labels"],
        "properties": {
            "targets": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


async def prometheus_targets(request: web.Request) -> web.Response:
    groups = []
    for vnf in await request.app[DEPS].inventory.list():
        for vnfc in vnf.vnfcs:
            if not vnfc.metrics_url:
                continue
            url = urlsplit(vnfc.metrics_url)
            labels = {
                "__scheme__": url.scheme or "http",
                "__metrics_path__": url.path or "/metrics",
                "vnfc_id": vnfc.id,
                "vnf_instance_id": vnf.id,
                "vnf": vnf.name,
                "vnfd": vnf.vnfd_id,
            }
            if vnfc.host:
                labels["host"] = vnfc.host
            groups.append({"targets": [url.netloc], "labels": labels})
    return web.json_response(groups)


ROUTES = [
    Route(
        "GET", "/api/v1/prometheus/targets", prometheus_targets, Role.VIEWER,
        "Every VNFC exporter with the loop's labels (Prometheus http_sd_configs).",
        "prometheus", "listPrometheusTargets",
        replies={200: Reply("Target groups.", _TARGET_GROUPS)},
    ),
]  # fmt: skip
