"""Pushed KPIs close the loop: a step pushed by remote_write or VES gives an ONSET, then a decision.

The whole platform runs as ``nfv-assure serve`` (every role, the push
receivers on its HTTP server) over the test's Redis. Each push names its
object the way senders do: a remote_write series by the VNF's instance
id (a VNF-level KPI, which scope ``vnf`` aggregates), a VES measurement
by the hostname of the VNFC's server (its ``sourceName``), or by the
VNF's name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cramjam
import pytest

from assure.api.push import REMOTE_WRITE_PATH, VES_PATH
from bus.contracts import Decision, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import read_all
from collector.push.remote_write_wire import TimeSeries, encode_write_request
from tests.serve_support import serving

POLICIES = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: pushed-latency}
spec:
  target: {vnfd: vfw}
  mode: dry_run
  conditions:
    - {name: latency-high, kpi: vnf_pushed_latency_ms, scope: vnf, aggregate: max,
       op: ">", threshold: 50, for: 0s}
  action: {type: scale_out, aspect: fw-scale, steps: 1}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: ves-latency}
spec:
  target: {vnfd: vfw}
  mode: dry_run
  conditions:
    - {name: latency-high, kpi: ves_mean_request_latency, scope: vnfc,
       op: ">", threshold: 50, for: 0s}
  action: {type: heal, level: soft_reboot}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: ves-vnf-sessions}
spec:
  target: {vnfd: vfw}
  mode: dry_run
  conditions:
    - {name: sessions-high, kpi: ves_sessions_active, scope: vnf, aggregate: sum,
       op: ">", threshold: 1000, for: 0s}
  action: {type: scale_out, aspect: fw-scale, steps: 1}
"""


@dataclass
class Loop:
    url: str
    session: aiohttp.ClientSession
    auth: dict[str, str]
    redis: Any
    keys: Keys
    vnf: dict[str, Any]

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        headers = {**self.auth, **kw.pop("headers", {})}
        async with self.session.post(self.url + path, headers=headers, **kw) as reply:
            await reply.read()
            return reply

    async def onsets(self, policy: str) -> list[Violation]:
        return [
            m for _, m in await read_all(self.redis, self.keys.stream("violations"))
            if isinstance(m, Violation) and m.policy == policy
            and m.status is ViolationStatus.ONSET
        ]  # fmt: skip

    async def decisions(self, violation_id: str) -> list[Decision]:
        return [
            m for _, m in await read_all(self.redis, self.keys.stream("decisions"))
            if isinstance(m, Decision) and m.violation_id == violation_id
        ]  # fmt: skip


async def eventually(check: Callable[[], Awaitable[list[Any]]], what: str) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not (found := await check()):
        assert loop.time() < deadline, f"no {what} within 30 s"
        await asyncio.sleep(0.1)
    return found


@pytest.fixture
async def platform(tmp_path: Path, redis_url: str, redis: Any, keys: Keys) -> AsyncIterator[Loop]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "pushed.yaml").write_text(POLICIES)
    env = {
        "REDIS_URL": redis_url,
        "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_POLICY_POLICY_DIR": str(policies),
        "NFVA_VIM_BOOT": "0s",
    }
    async with serving(tmp_path / "data", env) as served, aiohttp.ClientSession() as session:
        token = served.first_token()
        assert token is not None
        auth = {"Authorization": f"Bearer {token}"}
        base = served.url + "/vnflcm/v2/vnf_instances"
        create = {"vnfdId": "vfw", "vnfInstanceName": "edge-fw"}
        async with session.post(base, headers=auth, json=create) as made:
            vnf_id = (await made.json())["id"]
        async with session.post(f"{base}/{vnf_id}/instantiate", headers=auth, json={}) as started:
            occurrence = served.url + started.headers["Location"]

        async def completed() -> list[bool]:
            async with session.get(occurrence, headers=auth) as reply:
                return [True] if (await reply.json())["operationState"] == "COMPLETED" else []

        await eventually(completed, "instantiation")
        async with session.get(f"{base}/{vnf_id}", headers=auth) as reply:
            vnf = await reply.json()
        yield Loop(served.url, session, auth, redis, keys, vnf)


def remote_write(series: list[TimeSeries]) -> bytes:
    return bytes(cramjam.snappy.compress_raw(encode_write_request(series)))


def ves_measurement(source: str, at_s: float, n: int, **fields: Any) -> dict[str, Any]:
    micros = int(at_s * 1e6)
    return {"event": {
        "commonEventHeader": {
            "domain": "measurement", "eventId": f"m-{n}", "eventName": "Measurement_vFW",
            "lastEpochMicrosec": micros, "priority": "Normal", "reportingEntityName": source,
            "sequence": n, "sourceName": source, "startEpochMicrosec": micros - 10_000_000,
            "version": "4.1", "vesEventListenerVersion": "7.2.1",
        },
        "measurementFields": {"measurementInterval": 10, "measurementFieldsVersion": "4.0",
                              **fields},
    }}  # fmt: skip


async def test_a_step_pushed_by_remote_write_for_the_vnf_gives_an_onset_then_a_decision(
    platform: Loop,
) -> None:
    now_ms = int(time.time() * 1000)
    step = [
        TimeSeries(
            {"__name__": "vnf_pushed_latency_ms", "vnf_instance_id": platform.vnf["id"]},
            [(12.0, now_ms - 1000), (95.0, now_ms)],
        )
    ]
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    reply = await platform.post(REMOTE_WRITE_PATH, data=remote_write(step), headers=headers)
    assert reply.status == 204

    (onset,) = await eventually(lambda: platform.onsets("pushed-latency"), "ONSET")
    assert onset.target.kind.value == "vnf" and onset.target.id == platform.vnf["id"]
    assert onset.evidence.value == 95.0
    (decision,) = await eventually(lambda: platform.decisions(onset.id), "decision")
    assert decision.action.value == "scale_out" and decision.target.id == platform.vnf["id"]


async def test_a_step_pushed_by_ves_measurements_gives_an_onset_then_a_decision(
    platform: Loop,
) -> None:
    vnfc = platform.vnf["instantiatedVnfInfo"]["vnfcResourceInfo"][0]["id"]
    hostname = f"edge-fw-{vnfc}"  # the server's name, as the agent on it knows itself
    now = time.time()
    for n, (at, latency) in enumerate([(now - 1, 12.0), (now, 95.0)]):
        event = ves_measurement(hostname, at, n, meanRequestLatency=latency)
        assert (await platform.post(VES_PATH, json=event)).status == 202

    (onset,) = await eventually(lambda: platform.onsets("ves-latency"), "ONSET")
    assert onset.target.kind.value == "vnfc" and onset.target.id == vnfc
    assert onset.evidence.value == 95.0
    (decision,) = await eventually(lambda: platform.decisions(onset.id), "decision")
    assert decision.action.value == "heal" and decision.target.id == vnfc

    # A VES agent reporting for the VNF as a whole names it by its name.
    sessions = {"additionalMeasurements": [{"name": "sessions", "hashMap": {"active": "4200"}}]}
    event = ves_measurement("edge-fw", now, 9, **sessions)
    assert (await platform.post(VES_PATH, json=event)).status == 202
    (onset,) = await eventually(lambda: platform.onsets("ves-vnf-sessions"), "ONSET")
    assert onset.target.id == platform.vnf["id"] and onset.evidence.value == 4200.0
    await eventually(lambda: platform.decisions(onset.id), "decision")
