"""VES 7.x events on the server: measurements become samples, faults violations, bad ones a 400."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assure.api.push import VES_PATH, push_routes
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import Violation, ViolationStatus
from bus.sample_view import read_samples
from bus.series import SeriesRegistry
from bus.streams import read_all
from collector.instances import InstanceLabels
from collector.push.ves import VesReceiver
from collector.writer import SampleWriter
from mano_core.models import VnfInstance
from policy.loader import parse_text
from tests.api_support import Api, running_api

LINK_DOWN = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal-on-link-down}
spec:
  target: {vnfd: vfw}
  trigger: {alert: linkDown, matchers: {severity: critical}}
  action: {type: heal}
"""


def header(domain: str, source: str, **extra: Any) -> dict[str, Any]:
    return {
        "domain": domain,
        "eventId": f"{domain}-1",
        "eventName": f"{domain}_vFirewall",
        "lastEpochMicrosec": 1_700_000_010_000_000,
        "priority": "Normal",
        "reportingEntityName": "fw-agent",
        "sequence": 1,
        "sourceName": source,
        "startEpochMicrosec": 1_700_000_000_000_000,
        "version": "4.1",
        "vesEventListenerVersion": "7.2.1",
        **extra,
    }


def measurement(source: str) -> dict[str, Any]:
    return {
        "commonEventHeader": header("measurement", source),
        "measurementFields": {
            "measurementInterval": 10,
            "measurementFieldsVersion": "4.0",
            "meanRequestLatency": 12.5,
            "cpuUsageArray": [{"cpuIdentifier": "0", "percentUsage": 81.5, "cpuIdle": 18.5}],
            "nicPerformanceArray": [
                {"nicIdentifier": "eth0", "receivedTotalPacketsDelta": 1200,
                 "valuesAreSuspect": "false"}
            ],
            "additionalMeasurements": [
                {"name": "sessions", "hashMap": {"active": "42", "note": "n/a"}}
            ],
        },
    }  # fmt: skip


def fault(source: str, severity: str) -> dict[str, Any]:
    return {
        "commonEventHeader": header("fault", source),
        "faultFields": {
            "alarmCondition": "linkDown",
            "eventSeverity": severity,
            "eventSourceType": "virtualNetworkFunction",
            "faultFieldsVersion": "4.0",
            "specificProblem": "eth1 down",
            "vfStatus": "Active",
        },
    }


@dataclasses.dataclass
class World:
    api: Api
    platform: Platform
    vnf: VnfInstance

    async def post(self, body: Any, **headers: str) -> Any:
        return await self.api.client.post(
            VES_PATH, data=json.dumps(body) if not isinstance(body, bytes) else body,
            headers={"Content-Type": "application/json", **self.api.auth(Role.OPERATOR),
                     **headers},
        )  # fmt: skip


@contextlib.asynccontextmanager
async def receiving(settings: Settings) -> AsyncIterator[World]:
    settings = dataclasses.replace(settings, vim=dataclasses.replace(settings.vim, boot=0.0))
    platform = await Platform.open(settings, WallClock())
    writer = SampleWriter(
        platform.redis, platform.keys, SeriesRegistry(platform.redis, platform.keys),
        maxlen=1000, max_batch_samples=2000,
    )  # fmt: skip
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf, _ = await platform.vnfm.instantiate("vfw", "fw-1")
        ((policy, _),) = parse_text(LINK_DOWN).policies
        receiver = VesReceiver(writer, InstanceLabels(platform.inventory), platform.clock)
        async with running_api(platform, [policy], routes=[push_routes(ves=receiver)]) as api:
            yield World(api, platform, vnf)
    finally:
        await writer.aclose()
        await platform.aclose()


async def test_measurements_become_samples_of_the_vnfc_they_name(settings: Settings) -> None:
    async with receiving(settings) as world:
        vnfc = world.vnf.vnfcs[0]
        response = await world.post({"eventList": [measurement(vnfc.id),
                                                   measurement(vnfc.server_id)]})  # fmt: skip
        assert response.status == 202, await response.text()
        assert (await response.json()) == {"accepted": 2}
        batches = [b for _, b in await read_samples(world.platform.redis, world.platform.keys)]
    samples = [s for b in batches for s in b.samples]
    assert {b.source for b in batches} == {"ves"}
    by_kpi = {s.kpi: s for s in samples}
    assert by_kpi["ves_cpu_percent_usage"].value == 81.5
    assert by_kpi["ves_cpu_percent_usage"].labels["cpu"] == "0"
    assert by_kpi["ves_nic_received_total_packets_delta"].labels["nic"] == "eth0"
    assert by_kpi["ves_sessions_active"].value == 42.0
    assert by_kpi["ves_mean_request_latency"].value == 12.5
    assert "ves_sessions_note" not in by_kpi and "ves_nic_values_are_suspect" not in by_kpi
    assert all(s.ts == 1_700_000_010.0 for s in samples)
    # Named by VNFC id or by server id: the VNFC's labels either way.
    assert {s.labels["vnfc"] for s in samples} == {vnfc.id}
    assert {s.labels["vnf"] for s in samples} == {world.vnf.id}


async def test_a_fault_raises_a_violation_and_its_normal_abates_it(settings: Settings) -> None:
    async with receiving(settings) as world:
        vnfc = world.vnf.vnfcs[0]
        assert (await world.post({"event": fault(vnfc.id, "CRITICAL")})).status == 202
        assert (await world.post({"event": fault(vnfc.id, "NORMAL")})).status == 202
        events = [m for _, m in await read_all(world.platform.redis,
                                                 world.platform.keys.stream("violations"))
                  if isinstance(m, Violation)]  # fmt: skip
    assert [e.status for e in events] == [ViolationStatus.ONSET, ViolationStatus.ABATED]
    assert {e.source for e in events} == {"ves"}
    assert events[0].id == events[1].id
    assert events[0].target.id == vnfc.id and events[0].policy == "heal-on-link-down"


MALFORMED: dict[str, tuple[Any, str]] = {
    "not json": (b"{nope", "not JSON"),
    "no event": ({"events": []}, "neither"),
    "missing eventId": (
        {"event": {**measurement("x"), "commonEventHeader": {
            k: v for k, v in header("measurement", "x").items() if k != "eventId"}}},
        "event.commonEventHeader.eventId: a mandatory field is missing",
    ),
    "wrong type": (
        {"eventList": [measurement("x"), {**measurement("x"), "commonEventHeader":
                                          header("measurement", "x", sequence="one")}]},
        "eventList[1].commonEventHeader.sequence",
    ),
    "measurement fields missing": (
        {"event": {"commonEventHeader": header("measurement", "x")}},
        "event.measurementFields",
    ),
    "fault field missing": (
        {"event": {**fault("x", "MAJOR"), "faultFields": {"alarmCondition": "linkDown"}}},
        "event.faultFields.eventSeverity",
    ),
    "unknown severity": ({"event": fault("x", "SEVERE")}, "eventSeverity"),
    "truncated": (json.dumps({"event": measurement("x")}).encode()[:-7], "not JSON"),
    "invalid utf-8": (b'{"event": "\xff\xfe"}', "not JSON"),
    "huge source name": ({"event": measurement("s" * 5000)},
                         "event.commonEventHeader.sourceName: 5000 characters, over the limit"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_events_are_a_400_naming_the_place_and_nothing_is_taken(
    settings: Settings, case: str
) -> None:
    body, reason = MALFORMED[case]
    async with receiving(settings) as world:
        response = await world.post(body)
        assert response.status == 400
        assert reason in (await response.json())["detail"]
        assert await read_samples(world.platform.redis, world.platform.keys) == []


async def test_a_100_mb_body_is_refused_and_nan_and_infinities_are_values(
    settings: Settings,
) -> None:
    async with receiving(settings) as world:
        response = await world.post(b"{" + b" " * (100 * 1024 * 1024) + b"}")
        assert response.status == 413
        assert "larger than the limit" in (await response.json())["detail"]
        odd = measurement(world.vnf.vnfcs[0].id)
        odd["measurementFields"]["additionalFields"] = {"a": math.nan, "b": math.inf}
        response = await world.post(json.dumps({"event": odd}).encode())
        assert response.status == 202, await response.text()
        samples = [s for _, b in await read_samples(world.platform.redis, world.platform.keys)
                   for s in b.samples]  # fmt: skip
    values = {s.kpi: s.value for s in samples}
    assert math.isnan(values["ves_a"]) and values["ves_b"] == math.inf
    assert values["ves_mean_request_latency"] == 12.5, "the rest of the event is taken"
