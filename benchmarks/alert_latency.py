"""Step -> decision latency two ways in one run, and the webhook's handling time under load.

One KPI step change (a VNFC's p95 latency from 10 ms to 200 ms) is detected
by two chains at once, each with a policy of its own (both ``dry_run``: they
decide and record, and run nothing):

(a) Prometheus (scrape 1 s, evaluation 1 s, rule ``for: 0s``) -> Alertmanager
    (``group_wait: 0s``) -> the webhook -> the policy's decision;
(b) nfv-assure's own collector (scrape 1 s) -> analytics -> the decision.

Each trial steps the KPI up at a random phase of the scrape cycle, waits for
both decisions, steps it back down and waits for both violations to abate.
It prints p50/p99 of step -> decision for each chain and their ratio, then
the webhook's own handling time (from its handler's start to its answer)
p50/p99 over five bursts of 200 notifications arriving at once from another
process (one connection each, as Alertmanager opens one per notification it
has in flight), after a burst that warms the server up: first
with the collector, analytics and policy roles still running in the same
process (``nfv-assure serve``), then with the API alone in it (``nfv-assure
run --role api``), which the target is about; and last, with the API alone,
the notifications a real Alertmanager sends when 200 alerts start firing at
once, each in a group of its own. A line between the last two gives one
notification of 200 alerts (what an Alertmanager grouping them together
sends), 20 times one after the other: the cost of an alert within a
notification, not the target's case (``deploy/alertmanager/alertmanager.yml``
groups by VNFC, so 200 VNFCs' alerts are 200 notifications). A reference line
comes before them: the same five bursts answered by a handler that only reads
the body, lets the event loop turn once (as any handler waiting for Redis must)
and answers, which shows how much of a handling time is the wait for the event
loop while 200 requests share it, whatever the handler does.

Targets: (b) p99 <= scrape interval + 50 ms; (b) at least 2x faster than (a);
webhook handling (the API alone) p99 < 10 ms.

    .venv/bin/python benchmarks/alert_latency.py [--trials 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from assure.api.alerts import receive_alerts
from assure.api.app import build_app, deps_of
from assure.api.routing import Handler, Route
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import load_settings
from assure.simulation.exporter import ExporterFleet, specs_from_vnfs
from benchmarks.stream_watch import Watch as StreamWatch
from benchmarks.stream_watch import is_kind, quantile
from bus.clock import WallClock
from bus.contracts import Decision
from policy.loader import LoadResult, parse_text
from tests.monitoring import Alertmanager, Prometheus
from tests.redis_server import RedisServer

SCRAPE_S = 1.0
BURSTS = 5
"""Bursts of 200 notifications each webhook figure is taken over."""
GROUPED = 20
"""Notifications of 200 alerts each, one after the other, for the grouped figure."""
SCRAPE = f"{SCRAPE_S:g}s"
KPI = "vnf_request_latency_seconds"
LOW, HIGH, THRESHOLD = 0.01, 0.2, 0.05

POLICIES = f"""\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: bench-prometheus}}
spec:
  target: {{vnfd: vfw}}
  mode: dry_run
  trigger: {{alert: BenchLatencyHigh}}
  action: {{type: heal}}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: bench-own}}
spec:
  target: {{vnfd: vfw}}
  mode: dry_run
  conditions:
    - {{name: latency-high, kpi: {KPI}, scope: vnfc, op: ">", threshold: {THRESHOLD}}}
  action: {{type: heal}}
"""

LOAD = """
import asyncio, json, sys, aiohttp
url, token, body = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
async def main():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one(n):
            async with s.post(url, json=n, headers={"Authorization": "Bearer " + token}) as r:
                assert r.status == 200, await r.text()
        await asyncio.gather(*(one(n) for n in body))
asyncio.run(main())
"""


class Watch(StreamWatch):
    async def until(self, wanted: set[str], kind: str, deadline_s: float) -> dict[str, float]:
        """Wait for a decision (or an ABATED) of each policy in ``wanted``; policy -> time."""
        seen: dict[str, float] = {}
        end = time.monotonic() + deadline_s
        while set(seen) != wanted:
            if time.monotonic() > end:
                raise TimeoutError(f"no {kind} of {sorted(wanted - set(seen))}")
            messages, _ = await self.read(block_ms=200)
            for message in messages:
                if is_kind(message, kind):
                    at = message.decided_at if isinstance(message, Decision) else message.at
                    seen.setdefault(message.policy, at)
        return seen


async def chains(
    platform: Platform, api_url: str, token: str, trials: int
) -> dict[str, list[float]]:
    vnf, _ = await platform.vnfm.instantiate("vfw", "bench")
    fleet = ExporterFleet()
    await fleet.sync(specs_from_vnfs([vnf]))
    for vnfc in vnf.vnfcs:
        fleet[vnfc.id].set(KPI, LOW)
    victim = fleet[vnf.vnfcs[0].id]
    alertmanager = Alertmanager({
        "route": {"receiver": "nfva", "group_by": ["alertname", "vnfc_id"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "nfva", "webhook_configs": [{
            "url": f"{api_url}/api/v1/alerts", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": token}}}]}],
    })  # fmt: skip
    await alertmanager.start()
    prometheus = Prometheus(
        {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "scrape_configs": [{"job_name": "vnfc", "http_sd_configs": [{
                "url": f"{api_url}/api/v1/prometheus/targets", "refresh_interval": "5s",
                "authorization": {"type": "Bearer", "credentials": token}}]}],
        },
        {"groups": [{"name": "bench", "rules": [{
            "alert": "BenchLatencyHigh", "expr": f"{KPI} > {THRESHOLD}", "for": "0s"}]}]},
    )  # fmt: skip
    await prometheus.start()
    watch = Watch(platform.redis, platform.keys)
    await watch.start()
    out: dict[str, list[float]] = {"prometheus": [], "own": []}
    wanted = {"bench-prometheus", "bench-own"}
    try:
        for _ in range(150):
            if await prometheus.query('up{job="vnfc"} == 1'):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2 * SCRAPE_S)
        for trial in range(trials):
            await asyncio.sleep(random.uniform(0, SCRAPE_S))  # a random phase of the cycle
            step = time.time()
            victim.set(KPI, HIGH)
            decided = await watch.until(wanted, "decision", 30)
            out["prometheus"].append(decided["bench-prometheus"] - step)
            out["own"].append(decided["bench-own"] - step)
            victim.set(KPI, LOW)
            await watch.until(wanted, "abated", 30)
            print(f"trial {trial + 1}/{trials}: prometheus {out['prometheus'][-1] * 1000:.0f} ms,"
                  f" own {out['own'][-1] * 1000:.0f} ms", file=sys.stderr)  # fmt: skip
    finally:
        prometheus.stop()
        alertmanager.stop()
        await fleet.stop_all()
    return out


@contextlib.asynccontextmanager
async def timed_webhook(
    platform: Platform, handler: Handler = receive_alerts
) -> AsyncIterator[tuple[str, str, list[float]]]:
    """A server whose webhook route (answered by ``handler``) records each notification's
    handling time (s): its URL, an operator token, and the times as they come."""
    times: list[float] = []

    async def timed(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            times.append(time.perf_counter() - start)

    ((policy, _),) = [p for p in parse_text(POLICIES).policies if p[0].name == "bench-prometheus"]
    deps = deps_of(platform, [policy], CollectorRegistry())
    route = Route("POST", "/bench/alerts", timed, Role.OPERATOR, "bench", "bench", "bench")
    app = build_app(deps, routes=[[route]])
    token, _ = await deps.tokens.create(Role.OPERATOR, "bench")
    async with TestServer(app) as server:
        yield f"http://127.0.0.1:{server.port}/bench/alerts", token, times


async def one_turn(request: web.Request) -> web.StreamResponse:
    """The reference handler: reads the body, lets the event loop turn once, answers."""
    await request.read()
    await asyncio.sleep(0)
    return web.json_response({"alerts": []})


async def webhook_load(
    platform: Platform,
    vnfc_id: str,
    count: int,
    tag: str,
    *,
    alerts_each: int = 1,
    bursts: int = BURSTS,
    handler: Handler = receive_alerts,
) -> list[float]:
    """Handling times (s) of ``bursts`` bursts of ``count`` notifications of ``alerts_each``
    alerts, each burst sent at once by another process, after one burst that warms the
    server up (alerts of their own: ``tag`` is in their fingerprints)."""
    async with timed_webhook(platform, handler) as (url, token, times):
        for burst in range(bursts + 1):
            if burst == 1:
                times.clear()  # the warm-up's
            bodies = [{
                "version": "4", "groupKey": f"g{i}", "status": "firing", "receiver": "nfva",
                "alerts": [{"status": "firing", "labels": {"alertname": "BenchLatencyHigh",
                                                           "vnfc_id": vnfc_id, "n": str(n)},
                            "startsAt": "2026-01-01T00:00:00Z",
                            "fingerprint": f"{tag}-{burst}-{i}-{n}"} for n in range(alerts_each)],
            } for i in range(count)]  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LOAD, url, token, stdin=subprocess.PIPE
            )
            await process.communicate(json.dumps(bodies).encode())
            assert process.returncode == 0, "the load generator failed"
        return list(times)


async def alertmanager_load(platform: Platform, vnfc_id: str, count: int, tag: str) -> list[float]:
    """Handling times (s) of the notifications a real Alertmanager sends when ``count``
    alerts start firing at once, each in a group of its own (``group_wait: 0s``):
    :data:`BURSTS` times, after one burst that warms the server up."""
    async with timed_webhook(platform) as (url, token, times):
        alertmanager = Alertmanager({
            "route": {"receiver": "nfva", "group_by": ["alertname", "bench_alert"],
                      "group_wait": "0s", "group_interval": "1m", "repeat_interval": "1h"},
            "receivers": [{"name": "nfva", "webhook_configs": [{
                "url": url, "send_resolved": False,
                "http_config": {"authorization": {"type": "Bearer", "credentials": token}}}]}],
        })  # fmt: skip
        await alertmanager.start()
        try:
            url_v2 = f"{alertmanager.url}/api/v2/alerts"
            async with aiohttp.ClientSession() as session:
                for burst in range(BURSTS + 1):
                    if burst == 1:
                        times.clear()  # the warm-up's
                    seen = len(times)
                    starts = datetime.datetime.now(datetime.UTC).isoformat()
                    alerts = [{"labels": {"alertname": "BenchLatencyHigh", "vnfc_id": vnfc_id,
                                          "bench_alert": f"{tag}-{burst}-{i}"},
                               "startsAt": starts} for i in range(count)]  # fmt: skip
                    async with session.post(url_v2, json=alerts) as response:
                        assert response.status == 200, await response.text()
                    deadline = time.monotonic() + 30
                    while len(times) < seen + count:
                        if time.monotonic() > deadline:
                            raise TimeoutError(
                                f"Alertmanager delivered {len(times) - seen} of {count}"
                            )
                        await asyncio.sleep(0.05)
        finally:
            alertmanager.stop()
        return list(times)


async def main(trials: int, as_json: bool) -> int:
    redis_server = RedisServer()
    defaults = load_settings()
    settings = dataclasses.replace(
        defaults,
        redis=dataclasses.replace(defaults.redis, url=redis_server.url),
        vim=dataclasses.replace(defaults.vim, boot=0.0),
        collector=dataclasses.replace(defaults.collector, scrape_interval=SCRAPE_S),
    )
    platform = await Platform.open(settings, WallClock())
    stop = asyncio.Event()
    roles: asyncio.Task[None] | None = None
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        policies = [p for p, _ in parse_text(POLICIES).policies]
        deps = deps_of(platform, policies, CollectorRegistry())
        token, _ = await deps.tokens.create(Role.OPERATOR, "bench")
        loaded = LoadResult(policies=policies)
        roles = asyncio.create_task(
            platform.run_roles(["collector", "analytics", "policy"], stop, loaded)
        )
        async with TestServer(build_app(deps)) as server:
            latencies = await chains(platform, f"http://127.0.0.1:{server.port}", token, trials)
        vnfc_id = (await platform.inventory.list())[0].vnfcs[0].id
        shared = await webhook_load(platform, vnfc_id, 200, "shared")
        stop.set()
        await asyncio.wait_for(roles, 30)
        one_turn_times = await webhook_load(platform, vnfc_id, 200, "turn", handler=one_turn)
        handling = await webhook_load(platform, vnfc_id, 200, "alone")
        grouped = await webhook_load(
            platform, vnfc_id, 1, "grouped", alerts_each=200, bursts=GROUPED
        )
        delivered = await alertmanager_load(platform, vnfc_id, 200, f"delivered-{time.time()}")
    finally:
        stop.set()
        if roles is not None:
            await asyncio.wait_for(roles, 30)
        await platform.aclose()
        redis_server.stop()
    a, b = latencies["prometheus"], latencies["own"]
    report = {
        "trials": trials,
        "scrape_interval_s": SCRAPE_S,
        "prometheus_p50_ms": quantile(a, 0.5) * 1000,
        "prometheus_p99_ms": quantile(a, 0.99) * 1000,
        "own_p50_ms": quantile(b, 0.5) * 1000,
        "own_p99_ms": quantile(b, 0.99) * 1000,
        "ratio_p50": quantile(a, 0.5) / quantile(b, 0.5),
        "ratio_p99": quantile(a, 0.99) / quantile(b, 0.99),
        "webhook_shared_p50_ms": quantile(shared, 0.5) * 1000,
        "webhook_shared_p99_ms": quantile(shared, 0.99) * 1000,
        "webhook_one_turn_p50_ms": quantile(one_turn_times, 0.5) * 1000,
        "webhook_one_turn_p99_ms": quantile(one_turn_times, 0.99) * 1000,
        "webhook_handling_p50_ms": quantile(handling, 0.5) * 1000,
        "webhook_handling_p99_ms": quantile(handling, 0.99) * 1000,
        "webhook_notifications": len(handling),
        "webhook_mean_ms": statistics.fmean(handling) * 1000,
        "webhook_grouped_p50_ms": quantile(grouped, 0.5) * 1000,
        "webhook_grouped_p99_ms": quantile(grouped, 0.99) * 1000,
        "webhook_alertmanager_p50_ms": quantile(delivered, 0.5) * 1000,
        "webhook_alertmanager_p99_ms": quantile(delivered, 0.99) * 1000,
    }
    targets = {
        "own p99 <= scrape interval + 50 ms": report["own_p99_ms"] <= SCRAPE_S * 1000 + 50,
        "own at least 2x faster than prometheus (p99)": report["ratio_p99"] >= 2,
        "webhook handling p99 < 10 ms": report["webhook_handling_p99_ms"] < 10,
    }
    if as_json:
        print(json.dumps({**report, "targets": targets}))
    else:
        print(f"step -> decision over {trials} trials (scrape interval {SCRAPE_S:g} s):")
        for label, key in (("(a) Prometheus -> Alertmanager -> webhook", "prometheus"),
                           ("(b) own collector -> analytics", "own")):  # fmt: skip
            p50, p99 = report[f"{key}_p50_ms"], report[f"{key}_p99_ms"]
            print(f"  {label:42} p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        print(f"  ratio (a)/(b): p50 {report['ratio_p50']:.1f}x, p99 {report['ratio_p99']:.1f}x")
        print(
            f"webhook handling, {BURSTS} x 200 notifications at once, roles in the process: "
            f"p50 {report['webhook_shared_p50_ms']:.2f} ms, "
            f"p99 {report['webhook_shared_p99_ms']:.2f} ms"
        )
        print(
            f"reference, {BURSTS} x 200 notifications at once, a handler that only lets the "
            f"event loop turn once: p50 {report['webhook_one_turn_p50_ms']:.2f} ms, "
            f"p99 {report['webhook_one_turn_p99_ms']:.2f} ms"
        )
        print(
            f"webhook handling, {BURSTS} x 200 notifications at once, the API alone: "
            f"p50 {report['webhook_handling_p50_ms']:.2f} ms, "
            f"p99 {report['webhook_handling_p99_ms']:.2f} ms"
        )
        print(
            f"webhook handling, {GROUPED} x one notification of 200 alerts, the API alone: "
            f"p50 {report['webhook_grouped_p50_ms']:.2f} ms, "
            f"p99 {report['webhook_grouped_p99_ms']:.2f} ms"
        )
        print(
            f"webhook handling, {BURSTS} x 200 alerts firing at once, each its own "
            f"notification from Alertmanager, the API alone: "
            f"p50 {report['webhook_alertmanager_p50_ms']:.2f} ms, "
            f"p99 {report['webhook_alertmanager_p99_ms']:.2f} ms"
        )
        for name, met in targets.items():
            print(f"  target {name}: {'met' if met else 'NOT met'}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.trials, args.json)))
