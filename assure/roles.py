"""The stage roles a platform process can run, as one table.

Each :class:`Role` builds its stage from the shared :class:`~assure.platform.Platform`
and returns the coroutine that runs it until a stop event is set. No role
runs active/standby: the collector and analytics split their work by shard
(:mod:`bus.shards`), policy and actuator share their streams through
consumer groups, and any number of API processes serve the same Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from actuator.notify import Notifier
from actuator.service import Actuator
from analytics.service import Analytics
from assure.api.app import run_api
from assure.api.loop_metrics import CallbackCounter
from assure.api.push import push_routes
from assure.platform import Platform
from assure.reloading import reloading
from bus.series import SeriesRegistry
from bus.shards import ShardOwner
from collector.exporter_access import ExporterAccess
from collector.instances import InstanceLabels
from collector.metrics import CollectorMetrics
from collector.promql_source import PromQLQuery, PromQLSource
from collector.push.remote_write import RemoteWriteReceiver
from collector.push.stats import PushStats
from collector.push.ves import VesReceiver
from collector.service import DEFAULT_MAX_BATCH_SAMPLES, Collector
from collector.writer import SampleWriter
from mano_core.granter import VimGranter
from policy.conditions import conditions_of
from policy.engine import PolicyEngine
from policy.loader import LoadResult
from policy.reload import PolicyDirectory
from policy.replacements import PolicyReplacements
from policy.schema import KpiPolicy

RoleWork = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Role:
    """How to start one stage in this process."""

    start: Callable[[Platform, LoadResult], RoleWork]
    """Builds the stage; returns what runs it until the stop event is set."""


def _collector(platform: Platform, _policies: LoadResult) -> RoleWork:
    s = platform.settings
    owner = ShardOwner(
        platform.redis,
        platform.keys,
        platform.clock,
        group="collector",
        n_shards=s.collector.shards,
        ttl_s=s.collector.shard_ttl,
    )
    collector = Collector(
        platform.redis,
        platform.keys,
        platform.inventory,
        list(platform.vims.values()),
        platform.clock,
        scrape_interval_s=s.collector.scrape_interval,
        vim_interval_s=s.collector.vim_interval,
        scrape_timeout_s=s.collector.scrape_timeout,
        maxlen=s.redis.samples_maxlen,
        concurrency=s.collector.scrape_concurrency,
        max_body_bytes=s.collector.body_limit,
        max_buffered_samples=s.collector.buffer_samples,
        owner=owner,
        promql=(
            PromQLSource(s.collector.promql_url, InstanceLabels(platform.inventory))
            if s.collector.promql_url
            else None
        ),
        promql_queries=lambda: promql_queries(platform),
        access=ExporterAccess(platform.catalogue),
    )

    async def collect(stop: asyncio.Event) -> None:
        # Its self-metrics on the process's registry (what /metrics renders when
        # the server runs in this process too).
        metrics = CollectorMetrics(collector)
        platform.registry.register(metrics)
        try:
            await collector.run(stop)
        finally:
            platform.registry.unregister(metrics)

    return collect


async def promql_queries(platform: Platform) -> list[PromQLQuery]:
    """The ``promql`` KPIs of the VNFDs of the VNFs instantiated now (each query once)."""
    queries: dict[PromQLQuery, None] = {}
    for vnf in await platform.inventory.list():
        vnfd = await platform.catalogue.of(vnf)
        for parameter in vnfd.monitoring_parameters:
            if parameter.source == "promql" and parameter.query:
                queries[PromQLQuery(parameter.name, parameter.query)] = None
    return list(queries)


def _analytics(platform: Platform, policies: LoadResult) -> RoleWork:
    s = platform.settings
    return reloading(
        "analytics",
        policies.policies,
        lambda current: _analytics_on(platform, current),
        key=conditions_of,
        directory=policies.directory,
        interval_s=s.policy.reload_interval,
        clock=platform.clock,
        replacements=PolicyReplacements(platform.redis, platform.keys),
    )


def _analytics_on(platform: Platform, policies: Sequence[KpiPolicy]) -> RoleWork:
    s = platform.settings
    conditions = conditions_of(policies)

    async def analyse(stop: asyncio.Event) -> None:
        analytics = Analytics(
            platform.redis,
            platform.keys,
            platform.inventory,
            platform.clock,
            conditions,
            eval_interval_s=s.analytics.eval_interval,
            stale_after_s=s.analytics.stale_after,
            maxlen=s.redis.stream_maxlen,
            max_samples=s.analytics.window_samples,
            shards=s.analytics.shards,
            shard_ttl_s=s.analytics.shard_ttl,
            ns_inventory=platform.ns_inventory,
        )
        ingested = CallbackCounter(
            "nfva_samples_ingested", "Samples the analytics stage took in (this process).",
            lambda: analytics.samples_ingested,
        )  # fmt: skip
        platform.registry.register(ingested)
        try:
            await analytics.run(stop)
        finally:
            platform.registry.unregister(ingested)

    return analyse


def _policy(platform: Platform, policies: LoadResult) -> RoleWork:
    s = platform.settings
    engine = PolicyEngine(
        platform.redis,
        platform.keys,
        platform.inventory,
        platform.catalogue,
        platform.clock,
        policies.policies,
        maxlen=s.redis.stream_maxlen,
        ns_inventory=platform.ns_inventory,
        vim=platform.vim,
        granter=VimGranter(platform.vims),
        max_concurrent=s.policy.max_concurrent,
        max_concurrent_per_host=s.policy.max_concurrent_per_host,
        tick_s=s.policy.tick,
        settle_s=s.settle_s,
        reloader=None if policies.directory is None else PolicyDirectory(policies.directory),
        reload_s=s.policy.reload_interval,
    )
    return engine.run


def _actuator(platform: Platform, _policies: LoadResult) -> RoleWork:
    s = platform.settings
    actuator = Actuator(
        platform.redis,
        platform.keys,
        platform.vnfm,
        platform.clock,
        lease_ttl_s=s.actuator.lease_ttl,
        max_attempts=s.actuator.max_attempts,
        results_maxlen=s.redis.stream_maxlen,
        max_decision_age_s=s.actuator.decision_max_age,
        retry_base_s=s.actuator.retry_base,
        notifier=Notifier(
            platform.clock,
            timeout_s=s.actuator.notify_timeout,
            attempts=s.actuator.notify_attempts,
        ),
        nslcm=platform.nslcm,
    )
    return actuator.run


def _api(platform: Platform, policies: LoadResult) -> RoleWork:
    async def serve_api(stop: asyncio.Event) -> None:
        s = platform.settings
        writer = SampleWriter(
            platform.redis,
            platform.keys,
            SeriesRegistry(platform.redis, platform.keys),
            maxlen=s.redis.samples_maxlen,
            max_batch_samples=DEFAULT_MAX_BATCH_SAMPLES,
            max_buffered_samples=s.collector.buffer_samples,
        )
        instances = InstanceLabels(platform.inventory)
        stats = PushStats()
        remote_write = RemoteWriteReceiver(writer, instances, platform.clock, stats=stats)
        ves = VesReceiver(writer, instances, platform.clock, stats=stats)
        try:
            await run_api(
                platform,
                policies.policies,
                stop,
                routes=[push_routes(remote_write, ves)],
                collectors=[CollectorMetrics(writers=[writer], push=stats)],
                policy_dir=policies.directory,
            )
        finally:
            await writer.aclose()

    return serve_api


ROLE_TABLE: dict[str, Role] = {
    "collector": Role(_collector),
    "analytics": Role(_analytics),
    "policy": Role(_policy),
    "actuator": Role(_actuator),
    "api": Role(_api),
}
"""Every role by name, in the order a process starts them."""
