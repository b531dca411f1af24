"""The loop's own metrics: counted from the streams, read from Redis at scrape time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from assure.api.loop_metrics import LoopLatency
from assure.api.views import ViewBuilder, open_violations
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import (
    Action,
    Decision,
    Evidence,
    GuardResult,
    OpResult,
    OpState,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.streams import StreamPublisher
from tests.api_support import Api, running_api

TARGET = Target(TargetKind.VNFC, "c1", vnf="v1", vnfd="vfw")


def violation(status: ViolationStatus, at: float, vid: str = "v-1") -> Violation:
    evidence = Evidence(value=90.0, values={}, window_s=30, threshold=75, observed_at=at - 0.4)
    return Violation(vid, status, "p", "cpu-high", TARGET, evidence, at - 30, at, "r")


def decision(approved: bool, at: float, did: str = "d-1") -> Decision:
    guards = [GuardResult("active", True), GuardResult("cooldown", approved)]
    return Decision(did, "v-1", "p", Action.HEAL, TARGET, {}, guards, approved, "why", at, "r")


def result(at: float) -> OpResult:
    return OpResult("op-1", "d-1", "v1", "HEAL", Action.HEAL, TARGET, OpState.COMPLETED,
                    at - 5, at)  # fmt: skip


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    platform = await Platform.open(settings, WallClock())
    try:
        async with running_api(platform) as running:
            yield running
    finally:
        await platform.aclose()


async def publish(redis: Any, keys: Keys, stream: str, *messages: Any) -> None:
    await StreamPublisher(redis, keys.stream(stream)).publish_many(list(messages))


async def test_counters_and_open_violations_come_from_the_views(
    api: Api, redis: Any, keys: Keys
) -> None:
    await publish(redis, keys, "violations", violation(ViolationStatus.ONSET, 100.0),
                  violation(ViolationStatus.ONSET, 101.0, "v-2"),
                  violation(ViolationStatus.ABATED, 150.0))  # fmt: skip
    await publish(redis, keys, "decisions", decision(True, 101.0), decision(False, 102.0, "d-2"))
    await publish(redis, keys, "op_results", result(110.0))
    stop = asyncio.Event()
    views = ViewBuilder(redis, keys)
    task = asyncio.create_task(views.run(stop))
    try:
        for _ in range(100):
            if sum(c.handled for c in views.consumers) == 6:
                break
            await asyncio.sleep(0.05)
        assert [v.id for v in await open_violations(redis, keys)] == ["v-2"]
        text = await (await api.client.get("/metrics")).text()
    finally:
        stop.set()
        await task
    for line in (
        "nfva_violations_open 1.0",
        'nfva_violation_events_total{status="ONSET"} 2.0',
        'nfva_violation_events_total{status="ABATED"} 1.0',
        'nfva_decisions_total{action="heal",verdict="approved"} 1.0',
        'nfva_decisions_total{action="heal",verdict="denied"} 1.0',
        'nfva_guard_verdicts_total{guard="cooldown",verdict="failed"} 1.0',
        'nfva_guard_verdicts_total{guard="active",verdict="passed"} 2.0',
        'nfva_operations_total{operation="HEAL",outcome="COMPLETED"} 1.0',
        'nfva_stream_pending_entries{group="api",stream="violations"} 0.0',
        'nfva_stream_length_entries{stream="violations"} 3.0',
    ):
        assert line in text, line


async def test_stream_lag_shows_what_a_group_has_not_read(api: Api, redis: Any, keys: Keys) -> None:
    await redis.xgroup_create(keys.stream("decisions"), "actuator", id="0", mkstream=True)
    await publish(redis, keys, "decisions", decision(True, 1.0), decision(True, 2.0, "d-2"))
    text = await (await api.client.get("/metrics")).text()
    assert 'nfva_stream_lag_entries{group="actuator",stream="decisions"} 2.0' in text, [
        line for line in text.splitlines() if "stream" in line
    ]
    assert 'nfva_stream_pending_entries{group="actuator",stream="decisions"} 0.0' in text


async def test_loop_latency_is_measured_per_stage_as_events_pass(redis: Any, keys: Keys) -> None:
    registry = CollectorRegistry()
    latency = LoopLatency(redis, keys, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(latency.run(stop))
    try:
        await asyncio.wait_for(latency.following.wait(), 10)
        await publish(redis, keys, "violations", violation(ViolationStatus.ONSET, 100.0))
        await publish(redis, keys, "decisions", decision(True, 100.25))
        await publish(redis, keys, "op_results", result(105.25))
        for _ in range(100):
            if registry.get_sample_value(
                "nfva_loop_latency_seconds_count", {"stage": "decision_to_done"}
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    total = registry.get_sample_value
    assert total(
        "nfva_loop_latency_seconds_sum", {"stage": "sample_to_violation"}
    ) == pytest.approx(0.4)
    assert total("nfva_loop_latency_seconds_sum", {"stage": "violation_to_decision"}) == 0.25
    assert total("nfva_loop_latency_seconds_sum", {"stage": "decision_to_done"}) == 5.0
    assert b"nfva_loop_latency_seconds_bucket" in generate_latest(registry)


async def test_the_analytics_role_counts_its_samples_on_the_process_registry(
    settings: Settings, redis: Any
) -> None:
    platform = await Platform.open(settings, WallClock())
    stop = asyncio.Event()
    roles = asyncio.create_task(platform.run_roles(["analytics"], stop))
    try:
        for _ in range(200):
            if platform.registry.get_sample_value("nfva_samples_ingested_total") is not None:
                break
            await asyncio.sleep(0.05)
        assert platform.registry.get_sample_value("nfva_samples_ingested_total") == 0.0
    finally:
        stop.set()
        await asyncio.wait_for(roles, 30)
        await platform.aclose()
    assert platform.registry.get_sample_value("nfva_samples_ingested_total") is None, (
        "a stopped stage leaves no stale counter behind"
    )
