"""Notifications reach a real HTTP receiver, in the format it asks for, retried when it fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from actuator.notify import Notifier
from actuator.service import Actuator
from bus.contracts import Action, OpResult, OpState
from bus.keys import Keys
from tests.actuator_support import make_world
from tests.policy_support import one, policies_from, vnfc_target, world_with
from tests.redis_server import free_port


@dataclass
class Receiver:
    """A webhook receiver: records what it gets, answers the statuses it is told to."""

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    got.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield got
    finally:
        await runner.cleanup()


POLICY = """
apiVersion: assure/v1
kind: KpiPolicy
metadata:
  name: heal
  description: Heal a silent firewall VNFC
  labels: {{team: edge, severity: critical}}
spec:
  target: {{vnfd: vfw}}
  conditions:
    - {{name: silent, kind: absent, kpi: vnf_requests_per_second, scope: vnfc, for: 15s}}
  action: {{type: heal, level: rebuild}}
  notify: {{url: '{url}', format: {format}}}
"""


async def sent(actuator: Actuator, decision: Any) -> OpResult | None:
    try:
        return await actuator.execute(decision)
    finally:
        await actuator.aclose()


async def escalation(redis: Any, keys: Keys, url: str, fmt: str) -> Any:
    """The decision the policy engine takes when the last rung of the ladder fails."""
    world = await world_with(redis, keys, policies_from(POLICY.format(url=url, format=fmt)))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    rebuild = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))
    recreate = one(await world.finish(rebuild, state=OpState.FAILED, error="no host"))
    return one(await world.finish(recreate, state=OpState.FAILED, error="no host"), Action.NOTIFY)


async def test_an_escalation_reaches_a_slack_webhook(
    redis: Any, keys: Keys, receiver: Receiver
) -> None:
    notify = await escalation(redis, keys, receiver.url, "slack")
    world = await make_world(redis, keys)

    result = await sent(world.actuator(), notify)

    assert result is not None and result.state is OpState.COMPLETED
    assert result.detail == {"attempts": 1, "http_status": 200}
    [body] = receiver.bodies
    assert body["text"].startswith("[failed] heal on vnfc:c1")
    [attachment] = body["attachments"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["target"] == "vnfc:c1" and fields["result"] == "failed"
    assert fields["team"] == "edge" and fields["severity"] == "critical"
    assert fields["chain"] == "heal (failed), heal (failed)"
    assert attachment["title"] == "Heal a silent firewall VNFC"


async def test_an_escalation_reaches_an_alertmanager_receiver_as_alertmanager_sends_it(
    redis: Any, keys: Keys, receiver: Receiver
) -> None:
    notify = await escalation(redis, keys, receiver.url, "alertmanager")
    world = await make_world(redis, keys)

    result = await sent(world.actuator(), notify)

    assert result is not None and result.state is OpState.COMPLETED
    [body] = receiver.bodies
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert (body["version"], body["status"]) == ("4", "firing")
    [alert] = body["alerts"]
    assert alert["labels"] == {
        "alertname": "heal",
        "policy": "heal",
        "target": "vnfc:c1",
        "team": "edge",
        "severity": "critical",
    }
    assert alert["annotations"]["result"] == "failed"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert dt.datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).year == 2023
    assert len(alert["fingerprint"]) == 16


async def test_a_failing_receiver_is_retried_until_it_takes_the_notification(
    redis: Any, keys: Keys, receiver: Receiver
) -> None:
    notify = await escalation(redis, keys, receiver.url, "json")
    world = await make_world(redis, keys)
    receiver.answers = [503, 500]

    result = await sent(world.actuator(notifier=Notifier(world.clock, backoff_s=1.0)), notify)

    assert result is not None and result.state is OpState.COMPLETED
    assert result.detail["attempts"] == 3
    assert len(receiver.bodies) == 3
    assert receiver.bodies[-1]["decision"]["id"] == notify.id
    assert receiver.bodies[-1]["event"]["result"] == "failed"


async def test_a_receiver_that_refuses_the_notification_is_not_retried(
    redis: Any, keys: Keys, receiver: Receiver
) -> None:
    notify = await escalation(redis, keys, receiver.url, "json")
    world = await make_world(redis, keys)
    receiver.answers = [400]

    result = await sent(world.actuator(), notify)

    assert result is not None and result.state is OpState.FAILED
    assert result.error == "the receiver answered HTTP 400 (not retried)"
    assert len(receiver.bodies) == 1


async def test_an_unreachable_receiver_fails_after_every_attempt(redis: Any, keys: Keys) -> None:
    notify = await escalation(redis, keys, f"http://127.0.0.1:{free_port()}/hook", "json")
    world = await make_world(redis, keys)
    notifier = Notifier(world.clock, attempts=2, backoff_s=1.0)

    result = await sent(world.actuator(notifier=notifier), notify)

    assert result is not None and result.state is OpState.FAILED
    assert (result.error or "").endswith("after 2 attempts")
    assert result.detail == {"attempts": 2, "http_status": None}
