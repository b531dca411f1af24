"""The real Prometheus and Alertmanager drive the loop: an alert rule breaks, the VNFC is healed.

Prometheus discovers the VNFC exporters through the API (HTTP service
discovery), scrapes them and the platform's own ``/metrics`` every second
and evaluates an alert rule; Alertmanager delivers the alert to the webhook
with basic auth; the policy triggered by the alert heals the VNFC; when the
KPI recovers, the resolved alert ABATES the violation.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from assure.simulation.exporter import ExporterFleet, specs_from_vnfs
from bus.clock import WallClock
from bus.contracts import Action, OpResult, OpState, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all
from policy.loader import LoadResult, parse_text
from tests.api_support import running_api
from tests.monitoring import Alertmanager, Prometheus

T = TypeVar("T")

POLICY = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal-slow-vnfc}
spec:
  target: {vnfd: vfw}
  trigger: {alert: VnfcLatencyHigh, matchers: {severity: critical}}
  action: {type: heal}
"""

RULES = {
    "groups": [
        {
            "name": "vnfc",
            "rules": [
                {
                    "alert": "VnfcLatencyHigh",
                    "expr": "vnf_request_latency_seconds > 0.05",
                    "for": "0s",
                    "labels": {"severity": "critical"},
                    "annotations": {"summary": "VNFC {{ $labels.vnfc_id }} p95 latency high"},
                }
            ],
        }
    ]
}


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, within_s: float) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        found = await probe()
        if found is not None:
            return found
        assert loop.time() < deadline, f"no {what} within {within_s:g} s"
        await asyncio.sleep(0.1)


async def test_an_alert_from_prometheus_through_alertmanager_heals_and_resolves(
    settings: Settings, redis: Any, keys: Keys
) -> None:
    settings = dataclasses.replace(
        settings, vim=dataclasses.replace(settings.vim, boot=0.0, reboot=0.5)
    )
    ((policy, _),) = parse_text(POLICY).policies
    platform = await Platform.open(settings, WallClock())
    fleet = ExporterFleet()
    stop = asyncio.Event()
    roles: asyncio.Task[None] | None = None
    processes: list[Prometheus | Alertmanager] = []
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf, _ = await platform.vnfm.instantiate("vfw", "fw-1")
        await fleet.sync(specs_from_vnfs([vnf]))
        victim = vnf.vnfcs[0]
        for vnfc in vnf.vnfcs:
            fleet[vnfc.id].set("vnf_request_latency_seconds", 0.01)
        loaded = LoadResult(policies=[policy])
        roles = asyncio.create_task(platform.run_roles(["policy", "actuator"], stop, loaded))
        async with running_api(platform, [policy]) as api:
            api_address = f"127.0.0.1:{api.client.port}"
            alertmanager = Alertmanager(
                {
                    "route": {
                        "receiver": "nfv-assure",
                        "group_by": ["alertname", "vnfc_id"],
                        "group_wait": "0s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "nfv-assure",
                            "webhook_configs": [
                                {
                                    "url": f"http://{api_address}/api/v1/alerts",
                                    "send_resolved": True,
                                    "http_config": {
                                        "basic_auth": {
                                            "username": "alertmanager",
                                            "password": api.tokens[Role.OPERATOR],
                                        }
                                    },
                                }
                            ],
                        }
                    ],
                }
            )
            processes.append(alertmanager)
            await alertmanager.start()
            # The type spelt out: Prometheus 2.42 sends none by default in http_sd.
            viewer = {"type": "Bearer", "credentials": api.tokens[Role.VIEWER]}
            prometheus = Prometheus(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {"job_name": "nfv-assure", "static_configs": [{"targets": [api_address]}]},
                        {
                            "job_name": "vnfc",
                            "http_sd_configs": [
                                {
                                    "url": f"http://{api_address}/api/v1/prometheus/targets",
                                    "refresh_interval": "1s",
                                    "authorization": viewer,
                                }
                            ],
                        },
                    ],
                },
                RULES,
            )
            processes.append(prometheus)
            await prometheus.start()

            async def scraped_all() -> bool | None:
                up = await prometheus.query("up")
                jobs = {(r["metric"]["job"], r["value"][1]) for r in up}
                return (
                    True if jobs == {("nfv-assure", "1"), ("vnfc", "1")} and len(up) == 3 else None
                )

            await eventually(scraped_all, "scrape of every target", 30)
            fleet[victim.id].set("vnf_request_latency_seconds", 0.2)  # the rule breaks

            async def heal() -> OpResult | None:
                for _, message in await read_all(redis, keys.stream("op_results")):
                    if isinstance(message, OpResult) and message.action is Action.HEAL:
                        return message
                return None

            result = await eventually(heal, "heal", 60)
            assert result.state is OpState.COMPLETED, result.error
            assert result.target.id == victim.id
            events = [m for _, m in await read_all(redis, keys.stream("violations"))]
            (onset,) = [e for e in events if isinstance(e, Violation)]
            assert onset.status is ViolationStatus.ONSET
            assert onset.source == "alertmanager"
            assert onset.labels["vnfc_id"] == victim.id

            fleet[victim.id].set("vnf_request_latency_seconds", 0.01)  # healed: it recovers

            async def abated() -> Violation | None:
                for _, message in await read_all(redis, keys.stream("violations")):
                    if isinstance(message, Violation) and message.status is ViolationStatus.ABATED:
                        return message
                return None

            assert (await eventually(abated, "ABATED", 60)).id == onset.id

            async def webhook_seen() -> bool | None:
                found = await prometheus.query('nfva_webhook_requests_total{outcome="accepted"}')
                return True if found and float(found[0]["value"][1]) >= 2 else None

            # Prometheus scraped the platform's /metrics: both notifications are counted.
            await eventually(webhook_seen, "both notifications counted in Prometheus", 30)
    finally:
        for process in processes:
            process.stop()
        stop.set()
        if roles is not None:
            await asyncio.wait_for(roles, 30)
        await fleet.stop_all()
        await platform.aclose()
