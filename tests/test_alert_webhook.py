"""The Alertmanager webhook: alerts become violations, once per episode, or a clear 4xx."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from assure.api.alerts import Alert, violation_id
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import Action, GuardResult, TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all
from mano_core.models import VnfInstance
from policy.engine import PolicyEngine
from policy.guards import active_guard
from policy.loader import parse_text
from policy.schema import KpiPolicy
from tests.api_support import Api, running_api

HEAL_ON_ALERT = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal-on-alert}
spec:
  target: {vnfd: vfw}
  trigger: {alert: VnfcDown, matchers: {severity: critical}}
  action: {type: heal}
"""


def heal_policy() -> KpiPolicy:
    ((policy, _),) = parse_text(HEAL_ON_ALERT).policies
    return policy


def alert(status: str, labels: dict[str, str], fingerprint: str = "f1") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "VnfcDown", "severity": "critical", **labels},
        "annotations": {"summary": "the VNFC stopped answering", "value": "0"},
        "startsAt": "2026-01-01T10:00:00.000Z",
        "endsAt": "2026-01-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="VnfcDown"}',
        "truncatedAlerts": 0,
        "status": alerts[0]["status"],
        "receiver": "nfv-assure",
        "groupLabels": {"alertname": "VnfcDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@dataclasses.dataclass
class World:
    api: Api
    platform: Platform
    vnf: VnfInstance

    async def post(self, body: Any, role: Role = Role.OPERATOR, **kw: Any) -> Any:
        return await self.api.client.post("/api/v1/alerts", json=body, headers=self.api.auth(role),
                                          **kw)  # fmt: skip


@pytest.fixture
async def world(settings: Settings, redis: Any) -> AsyncIterator[World]:
    settings = dataclasses.replace(
        settings, vim=dataclasses.replace(settings.vim, boot=0.0, reboot=0.0)
    )
    platform = await Platform.open(settings, WallClock())
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf, op = await platform.vnfm.instantiate("vfw", "fw-1")
        assert op.state == "COMPLETED", op.error
        async with running_api(platform, [heal_policy()]) as api:
            yield World(api, platform, vnf)
    finally:
        await platform.aclose()


async def violations(redis: Any, keys: Keys) -> list[Violation]:
    return [m for _, m in await read_all(redis, keys.stream("violations"))
            if isinstance(m, Violation)]  # fmt: skip


async def test_a_firing_alert_is_an_onset_once_and_its_resolve_an_abated_once(
    world: World, redis: Any, keys: Keys
) -> None:
    vnfc = world.vnf.vnfcs[0]
    firing = notification(alert("firing", {"vnfc_id": vnfc.id}))
    first = await world.post(firing)
    assert first.status == 200, await first.text()
    (report,) = (await first.json())["alerts"]
    assert report["outcome"] == "queued"
    assert report["policy"] == "heal-on-alert"
    assert (await (await world.post(firing)).json())["alerts"][0]["outcome"] == "duplicate"
    (onset,) = await violations(redis, keys)
    assert onset.id == report["violation"]
    assert onset.status is ViolationStatus.ONSET
    assert onset.source == "alertmanager"
    assert onset.target.kind is TargetKind.VNFC and onset.target.id == vnfc.id
    assert onset.target.vnf == world.vnf.id
    assert onset.evidence.description == "the VNFC stopped answering"
    still = GuardResult("active", True, "the violation is still active")
    assert await active_guard(redis, keys, onset.id, onset.source) == still

    resolved = notification(alert("resolved", {"vnfc_id": vnfc.id}))
    assert (await (await world.post(resolved)).json())["alerts"][0]["outcome"] == "queued"
    assert (await (await world.post(resolved)).json())["alerts"][0]["outcome"] == "duplicate"
    assert (await (await world.post(firing)).json())["alerts"][0]["outcome"] == "duplicate", (
        "a late firing of an episode that ended does not reopen it"
    )
    events = await violations(redis, keys)
    assert [(e.id, e.status) for e in events] == [
        (onset.id, ViolationStatus.ONSET),
        (onset.id, ViolationStatus.ABATED),
    ]
    abated = GuardResult("active", False, "the violation already abated")
    assert await active_guard(redis, keys, onset.id, onset.source) == abated, (
        "the policy stage's active guard sees the resolve as soon as it is queued"
    )


def test_an_episodes_violation_id_is_the_one_earlier_releases_gave_it() -> None:
    # The ledger keeps each episode's status under this id: a resolve sent after an
    # upgrade must name the ONSET queued before it (a version 5 UUID of fingerprint,
    # startsAt and policy).
    first = Alert.model_validate(alert("firing", {"vnfc_id": "c"}))
    assert violation_id(first, "heal-on-alert") == "d8bc0afc-9580-56db-8b61-2a86a3a339f4"
    later = Alert.model_validate(
        {**alert("resolved", {}, fingerprint="é-fp"), "startsAt": "2026-01-01T10:00:00.25Z"}
    )
    assert violation_id(later, "p") == "1225e39e-e264-5438-8f2e-7055e3c95d6d"


async def test_an_ha_pair_sending_the_same_notification_at_once_queues_it_once(
    world: World, redis: Any, keys: Keys
) -> None:
    body = notification(alert("firing", {"vnfc_id": world.vnf.vnfcs[0].id}))
    replies = await asyncio.gather(*(world.post(body) for _ in range(8)))
    outcomes = sorted([(await r.json())["alerts"][0]["outcome"] for r in replies])
    assert outcomes == ["duplicate"] * 7 + ["queued"]
    assert len(await violations(redis, keys)) == 1


async def test_a_burst_is_queued_in_a_few_writes_and_each_answer_comes_once_its_event_is_in(
    world: World, redis: Any, keys: Keys
) -> None:
    vnfc = world.vnf.vnfcs[0].id
    bodies = [notification(alert("firing", {"vnfc_id": vnfc}, f"burst-{i}")) for i in range(100)]
    before = await _script_calls(redis)

    async def post_and_look(body: Any) -> tuple[str, bool]:
        reply = await world.post(body)
        assert reply.status == 200, await reply.text()
        (report,) = (await reply.json())["alerts"]
        # Answered: its event is in the stream already (durably queued before the 2xx).
        queued = {v.id for v in await violations(redis, keys)}
        return report["outcome"], report["violation"] in queued

    answers = await asyncio.gather(*(post_and_look(b) for b in [*bodies, *bodies]))
    assert all(in_stream for _, in_stream in answers)
    assert sorted(o for o, _ in answers) == ["duplicate"] * 100 + ["queued"] * 100
    events = await violations(redis, keys)
    assert len(events) == len({e.id for e in events}) == 100, "each episode queued once"
    writes = await _script_calls(redis) - before
    assert writes < 50, f"{writes} ledger writes for 200 notifications: they were not shared"


async def _script_calls(redis: Any) -> int:
    stats = await redis.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_the_webhook_matches_alerts_against_a_replaced_policy_at_once(
    world: World, redis: Any, keys: Keys
) -> None:
    vnfc = world.vnf.vnfcs[0].id
    warning = alert("firing", {"vnfc_id": vnfc, "severity": "warning"}, "warn-1")
    first = await world.post(notification(warning))
    assert (await first.json())["alerts"][0]["outcome"] == "unmatched"
    replacement = HEAL_ON_ALERT.replace("severity: critical", "severity: warning")
    headers = {**world.api.auth(Role.OPERATOR), "Content-Type": "application/yaml"}
    put = await world.api.client.put("/api/v1/policies/heal-on-alert", data=replacement,
                                     headers=headers)  # fmt: skip
    assert put.status == 200, await put.text()
    again = await world.post(notification(warning))
    assert (await again.json())["alerts"][0]["outcome"] == "queued"
    (onset,) = await violations(redis, keys)
    assert onset.policy == "heal-on-alert"


async def test_the_queued_onset_drives_the_policy_to_a_heal_decision(
    world: World, redis: Any, keys: Keys
) -> None:
    vnfc = world.vnf.vnfcs[1]
    await world.post(notification(alert("firing", {"vnfc_id": vnfc.id})))
    (onset,) = await violations(redis, keys)
    p = world.platform
    engine = PolicyEngine(redis, keys, p.inventory, p.catalogue, p.clock, [heal_policy()])
    (decision,) = await engine.handle(onset)
    assert decision.approved, decision.reason
    assert decision.action is Action.HEAL
    assert decision.target.id == vnfc.id


async def test_a_vnf_by_name_or_id_and_a_host_are_targets_too(world: World, redis: Any,
                                                               keys: Keys) -> None:  # fmt: skip
    host = world.vnf.vnfcs[0].host
    assert host is not None
    body = notification(
        alert("firing", {"vnf": "fw-1"}, "a"),
        alert("firing", {"vnf_instance_id": world.vnf.id}, "b"),
        alert("firing", {"host": host}, "c"),
    )
    reply = await world.post(body)
    assert reply.status == 200, await reply.text()
    kinds = [(e.target.kind, e.target.id) for e in await violations(redis, keys)]
    assert kinds == [
        (TargetKind.VNF, world.vnf.id),
        (TargetKind.VNF, world.vnf.id),
        (TargetKind.HOST, host),
    ]


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"vnfc_id": "no-such-vnfc"}, "no VNFC instance 'no-such-vnfc'"),
        ({"vnf": "no-such-vnf"}, "no VNF instance named 'no-such-vnf'"),
        ({"vnf_instance_id": "nope"}, "no VNF instance 'nope'"),
        ({"host": "compute-99"}, "no compute host 'compute-99'"),
        ({"ns_instance_id": "ns-1"}, "network service"),
        ({}, "names no target"),
    ],
)
async def test_an_alert_about_an_unknown_target_gets_422_and_nothing_is_queued(
    world: World, redis: Any, keys: Keys, labels: dict[str, str], words: str
) -> None:
    good = alert("firing", {"vnfc_id": world.vnf.vnfcs[0].id}, "good")
    reply = await world.post(notification(good, alert("firing", labels, "bad")))
    assert reply.status == 422
    doc = await reply.json()
    assert doc["errors"] == [{"place": "alerts[1].labels", "problem": doc["errors"][0]["problem"]}]
    assert words in doc["errors"][0]["problem"]
    assert await violations(redis, keys) == []


@pytest.mark.parametrize(
    ("mutate", "place"),
    [
        (lambda n: n.update(version="3"), "version"),
        (lambda n: n["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint"),
        (lambda n: n["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda n: n["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda n: n["alerts"][0].update(labels=["a"]), "alerts[0].labels"),
        (lambda n: n.update(alerts=[]), "alerts"),
    ],
)
async def test_a_payload_that_is_not_alertmanagers_gets_400_naming_the_place(
    world: World, redis: Any, keys: Keys, mutate: Any, place: str
) -> None:
    body = notification(alert("firing", {"vnfc_id": world.vnf.vnfcs[0].id}))
    mutate(body)
    reply = await world.post(body)
    assert reply.status == 400
    assert place in [e["place"] for e in (await reply.json())["errors"]]
    assert await violations(redis, keys) == []


async def test_an_alert_no_policy_is_triggered_by_is_reported_and_not_queued(
    world: World, redis: Any, keys: Keys
) -> None:
    other = alert("firing", {"vnfc_id": world.vnf.vnfcs[0].id, "severity": "warning"})
    reply = await world.post(notification(other))
    assert reply.status == 200
    assert (await reply.json())["alerts"][0]["outcome"] == "unmatched"
    assert await violations(redis, keys) == []


async def test_a_resolve_whose_vnfc_is_gone_still_abates_its_violation(
    world: World, redis: Any, keys: Keys
) -> None:
    vnfc = world.vnf.vnfcs[0]
    await world.post(notification(alert("firing", {"vnfc_id": vnfc.id})))
    gone = msgspec.structs.replace(world.vnf, vnfcs=world.vnf.vnfcs[1:])
    await world.platform.inventory.save(gone)
    reply = await world.post(notification(alert("resolved", {"vnfc_id": vnfc.id})))
    assert reply.status == 200, await reply.text()
    abated = (await violations(redis, keys))[-1]
    assert abated.status is ViolationStatus.ABATED
    assert abated.target.id == vnfc.id


async def test_alertmanager_basic_auth_works_and_a_viewer_may_not_post(world: World) -> None:
    body = notification(alert("firing", {"vnfc_id": world.vnf.vnfcs[0].id}))
    pair = base64.b64encode(f"am:{world.api.tokens[Role.OPERATOR]}".encode()).decode()
    basic = await world.api.client.post("/api/v1/alerts", json=body,
                                        headers={"Authorization": f"Basic {pair}"})  # fmt: skip
    assert basic.status == 200
    assert (await world.post(body, Role.VIEWER)).status == 403


async def test_webhook_outcomes_are_counted_in_metrics(world: World) -> None:
    vnfc = world.vnf.vnfcs[0].id
    await world.post(notification(alert("firing", {"vnfc_id": vnfc})))
    await world.post(notification(alert("firing", {"vnfc_id": vnfc})))
    await world.post(notification(alert("firing", {"vnfc_id": "gone"})))
    await world.post({"version": "4"})
    await world.api.client.post("/api/v1/alerts", json={})
    text = await (await world.api.client.get("/metrics")).text()
    for line in (
        'nfva_webhook_requests_total{outcome="accepted"} 2.0',
        'nfva_webhook_requests_total{outcome="unknown_target"} 1.0',
        'nfva_webhook_requests_total{outcome="malformed"} 1.0',
        'nfva_webhook_requests_total{outcome="unauthorized"} 1.0',
        'nfva_webhook_alerts_total{outcome="queued"} 1.0',
        'nfva_webhook_alerts_total{outcome="duplicate"} 1.0',
    ):
        assert line in text, text
