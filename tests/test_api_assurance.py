"""Policies, violations, decisions, hosts and the event stream over REST."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assure.api.tokens import Role
from assure.api.views import ViewBuilder
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import (
    Action,
    Evidence,
    OpResult,
    OpState,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.streams import StreamPublisher
from policy.audit import AuditTrail
from policy.state import Episode
from tests.api_support import Api, running_api

TARGET = Target(TargetKind.VNFC, "c1", vnf="v1", vnfd="vfw")


def violation(status: ViolationStatus, vid: str = "v-1") -> Violation:
    evidence = Evidence(value=90.0, values={"c1": 90.0}, window_s=30, threshold=75,
                        description="avg(cpu) 90 > 75 for 30s")  # fmt: skip
    return Violation(vid, status, "vfw-scale-out", "cpu-high", TARGET, evidence, 1.0, 2.0, "r")


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    platform = await Platform.open(settings, WallClock())
    try:
        loaded = platform.load_policies()
        async with running_api(platform, loaded.policies) as running:
            yield running
    finally:
        await platform.aclose()


async def test_policies_are_listed_with_their_mode_which_an_operator_may_override(
    api: Api, redis: Any, keys: Keys
) -> None:
    listed = await api.get_json("/api/v1/policies")
    names = {p["name"] for p in listed}
    assert {"vfw-scale-out", "vfw-heal"} <= names
    one = await api.get_json("/api/v1/policies/vfw-heal")
    assert one["policy"]["spec"]["action"]["type"] == "heal"
    path = "/api/v1/policies/vfw-heal/mode"
    viewer = await api.client.put(path, json={"mode": "dry_run"}, headers=api.auth(Role.VIEWER))
    assert viewer.status == 403
    bad = await api.client.put(path, json={"mode": "yolo"}, headers=api.auth(Role.OPERATOR))
    assert bad.status == 400
    ok = await api.client.put(path, json={"mode": "dry_run"}, headers=api.auth(Role.OPERATOR))
    assert (await ok.json())["mode"] == "dry_run"
    assert await redis.hget(keys.policy_modes(), "vfw-heal") == b"dry_run"
    cleared = await api.client.delete(path, headers=api.auth(Role.OPERATOR))
    assert (await cleared.json())["mode"] == one["mode"]
    missing = await api.client.get("/api/v1/policies/nope", headers=api.auth())
    assert missing.status == 404


async def test_a_policy_file_is_validated_with_every_problem_placed(api: Api) -> None:
    text = (
        "apiVersion: assure/v1\nkind: KpiPolicy\nmetadata: {name: x}\nspec:\n"
        "  target: {vnfd: vfw}\n  action: {type: heal}\n  trigger: {alert: A, matcher: {}}\n"
    )
    headers = {**api.auth(), "Content-Type": "application/yaml"}
    reply = await api.client.post("/api/v1/policies/validate", data=text, headers=headers)
    doc = await reply.json()
    assert reply.status == 200 and doc["valid"] is False
    assert doc["problems"] == [
        {
            "place": "spec.trigger.matcher",
            "line": 7,
            "column": 23,
            "message": "unknown field 'matcher' (did you mean 'matchers'?)",
            "text": "request:7:23: spec.trigger.matcher: "
            "unknown field 'matcher' (did you mean 'matchers'?)",
        }
    ]
    good = text.replace("matcher:", "matchers:")
    ok = await api.client.post("/api/v1/policies/validate", data=good, headers=headers)
    assert await ok.json() == {"valid": True, "policies": ["x"], "problems": []}


async def test_open_and_recent_violations_carry_their_evidence(
    api: Api, redis: Any, keys: Keys
) -> None:
    views = ViewBuilder(redis, keys)
    publisher = StreamPublisher(redis, keys.stream("violations"))
    for event in (violation(ViolationStatus.ONSET), violation(ViolationStatus.ONSET, "v-2"),
                  violation(ViolationStatus.ABATED)):  # fmt: skip
        await publisher.publish(event)
        await views.apply(event)
    opened = await api.get_json("/api/v1/violations")
    assert [v["id"] for v in opened] == ["v-2"]
    assert opened[0]["evidence"]["description"] == "avg(cpu) 90 > 75 for 30s"
    recent = await api.get_json("/api/v1/violations", params={"state": "recent", "limit": "2"})
    assert [(v["id"], v["status"]) for v in recent] == [("v-1", "ABATED"), ("v-2", "ONSET")]
    bad = await api.client.get("/api/v1/violations?state=later", headers=api.auth())
    assert bad.status == 400


async def test_decisions_come_with_their_episode_from_the_audit_trail(
    api: Api, redis: Any, keys: Keys
) -> None:
    assert await api.get_json("/api/v1/decisions") == []
    assert (await api.client.get("/api/v1/decisions/nope", headers=api.auth())).status == 404
    episode = Episode(id="e-1", policy="vfw-heal", target=TARGET, trigger_target=TARGET,
                      opened_at=1.0, opened_by="v-1", request_id="r")  # fmt: skip
    trail = AuditTrail(redis, keys, WallClock())
    await trail.record("v1", [episode], {})
    # No step yet: nothing decided, nothing listed.
    assert await api.get_json("/api/v1/decisions") == []


async def test_hosts_are_those_of_every_vim(api: Api) -> None:
    hosts = await api.get_json("/api/v1/hosts")
    expected = [(vim.name, h.name) for vim in api.deps.vims for h in await vim.list_hosts()]
    assert [(h["vim"], h["name"]) for h in hosts] == expected
    assert len(expected) >= 2 and all(h["vcpus"] > 0 for h in hosts)


async def _next_event(stream: Any) -> dict[str, str]:
    event: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(stream.readline(), 10)).decode().rstrip("\n")
        if not line:
            if "event" in event:
                return event
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        event[name] = value


async def test_the_event_stream_sends_what_happens_and_resumes_from_last_event_id(
    api: Api, redis: Any, keys: Keys
) -> None:
    violations = StreamPublisher(redis, keys.stream("violations"))
    results = StreamPublisher(redis, keys.stream("op_results"))
    await violations.publish(violation(ViolationStatus.ONSET, "before"))
    response = await api.client.get("/api/v1/events", headers=api.auth())
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    await violations.publish(violation(ViolationStatus.ONSET, "v-live"))
    result = OpResult("op", "d", "v1", "HEAL", Action.HEAL, TARGET, OpState.COMPLETED, 1.0, 2.0)
    await results.publish(result)
    first = await _next_event(response.content)
    assert first["event"] == "violation"
    assert json.loads(first["data"])["id"] == "v-live", "it starts with what happens next"
    second = await _next_event(response.content)
    assert second["event"] == "operation"
    assert json.loads(second["data"])["op_id"] == "op"
    response.close()

    await violations.publish(violation(ViolationStatus.ABATED, "v-live"))
    resumed = await api.client.get("/api/v1/events", headers={**api.auth(),
                                   "Last-Event-ID": second["id"]})  # fmt: skip
    again = await _next_event(resumed.content)
    assert json.loads(again["data"])["status"] == "ABATED"
    resumed.close()
    filtered = await api.client.get("/api/v1/events?types=bogus", headers=api.auth())
    assert filtered.status == 400
