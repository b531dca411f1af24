"""SOL003 day-2 tasks and occurrence actions through REST only: scale to level, operate,
change flavour, change package, rollback and cancel, each followed through its occurrence."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import ScaledClock
from tests.api_support import Api, running_api
from tests.test_api_vnflcm import INSTANCES, OCCS, created_and_instantiated, followed, post

VFW = Path(__file__).resolve().parents[1] / "assure/defaults/vnfds/vfw.yaml"


@dataclasses.dataclass
class World:
    api: Api
    platform: Platform


@pytest.fixture
def boot_s() -> float:
    """Clock seconds a server takes to boot (the clock runs 20 times faster than the wall)."""
    return 0.0


@pytest.fixture
async def world(settings: Settings, redis: Any, boot_s: float) -> AsyncIterator[World]:
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(settings.vim, boot=boot_s, reboot=0.0, migrate=0.0),
    )
    platform = await Platform.open(settings, ScaledClock(20))
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        async with running_api(platform) as running:
            yield World(running, platform)
    finally:
        await platform.aclose()


async def task(api: Api, vnf_id: str, name: str, body: Any) -> dict[str, Any]:
    return await followed(api, await post(api, f"{INSTANCES}/{vnf_id}/{name}", body))


async def refused(api: Api, path: str, body: Any, status: int) -> dict[str, Any]:
    response = await post(api, path, body)
    assert response.status == status, (path, body, await response.text())
    assert response.content_type == "application/problem+json"
    problem: dict[str, Any] = await response.json()
    return problem


def vnfcs(instance: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = instance["instantiatedVnfInfo"]["vnfcResourceInfo"]
    return found


async def test_scale_to_level_by_aspect_and_by_instantiation_level(world: World) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    assert vnf["_links"]["scaleToLevel"]["href"] == f"{INSTANCES}/{vnf['id']}/scale_to_level"
    up = await task(api, vnf["id"], "scale_to_level",
                    {"scaleInfo": [{"aspectId": "fw-scale", "scaleLevel": 2}]})  # fmt: skip
    assert (up["operationState"], up["operation"]) == ("COMPLETED", "SCALE_TO_LEVEL"), up
    shown = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert len(vnfcs(shown)) == 4
    assert shown["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "fw-scale", "scaleLevel": 2}
    ]
    down = await task(api, vnf["id"], "scale_to_level", {"instantiationLevelId": "basic"})
    assert down["operationState"] == "COMPLETED", down
    assert len(vnfcs(await api.get_json(f"{INSTANCES}/{vnf['id']}"))) == 2

    base = f"{INSTANCES}/{vnf['id']}/scale_to_level"
    await refused(api, base, {"scaleInfo": [{"aspectId": "fw-scale", "scaleLevel": 9}]}, 422)
    await refused(api, base, {"instantiationLevelId": "huge"}, 422)
    await refused(api, base, {}, 422)
    both = {
        "instantiationLevelId": "basic",
        "scaleInfo": [{"aspectId": "fw-scale", "scaleLevel": 1}],
    }
    await refused(api, base, both, 422)
    twice = [{"aspectId": "fw-scale", "scaleLevel": 1}, {"aspectId": "fw-scale", "scaleLevel": 2}]
    await refused(api, base, {"scaleInfo": twice}, 422)
    bad = await refused(
        api, base, {"scaleInfo": [{"aspectId": "fw-scale", "scaleLevel": "1"}]}, 400
    )
    assert bad["errors"][0]["place"] == "scaleInfo[0].scaleLevel"
    ops = await api.get_json(OCCS, params={"vnfInstanceId": vnf["id"]})
    assert [o["operation"] for o in ops] == ["SCALE_TO_LEVEL", "SCALE_TO_LEVEL", "INSTANTIATE"]


async def test_operate_stops_and_starts_the_servers(world: World) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    sim = world.platform.sims[world.platform.vims.default]
    servers = {c["computeResource"]["resourceId"] for c in vnfcs(vnf)}
    assert vnf["instantiatedVnfInfo"]["vnfState"] == "STARTED"

    stop = await task(api, vnf["id"], "operate",
                      {"changeStateTo": "STOPPED", "stopType": "GRACEFUL"})  # fmt: skip
    assert (stop["operationState"], stop["operation"]) == ("COMPLETED", "OPERATE"), stop
    assert stop["operationParams"]["graceful"] is True
    assert {s.status for s in await sim.servers() if s.id in servers} == {"SHUTOFF"}
    shown = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert shown["instantiatedVnfInfo"]["vnfState"] == "STOPPED"

    base = f"{INSTANCES}/{vnf['id']}/operate"
    again = await refused(api, base, {"changeStateTo": "STOPPED"}, 422)
    assert "STOPPED already" in again["detail"]
    await refused(api, base, {"changeStateTo": "STARTED", "stopType": "FORCEFUL"}, 422)
    await refused(api, base, {"changeStateTo": "PAUSED"}, 400)
    await refused(api, base, {"changeStateTo": "STARTED", "gracefulStopTimeout": 5}, 400)

    start = await task(api, vnf["id"], "operate", {"changeStateTo": "STARTED"})
    assert start["operationState"] == "COMPLETED", start
    assert {s.status for s in await sim.servers() if s.id in servers} == {"ACTIVE"}
    shown = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert shown["instantiatedVnfInfo"]["vnfState"] == "STARTED"


async def test_change_flavour_resizes_the_vdus_vnfcs(world: World) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    sim = world.platform.sims[world.platform.vims.default]
    sizes = {"vduId": "fw", "vcpus": 4, "ramMb": 4096, "diskGb": 10}
    body: dict[str, Any] = {"newFlavourId": "fw.large", "additionalParams": sizes}
    op = await task(api, vnf["id"], "change_flavour", body)
    assert (op["operationState"], op["operation"]) == ("COMPLETED", "CHANGE_FLAVOUR"), op
    servers = {c["computeResource"]["resourceId"] for c in vnfcs(vnf)}
    resized = {(s.flavor.name, s.flavor.vcpus, s.flavor.ram_mb) for s in await sim.servers()
               if s.id in servers}  # fmt: skip
    assert resized == {("fw.large", 4, 4096)}

    base = f"{INSTANCES}/{vnf['id']}/change_flavour"
    same = await refused(api, base, body, 422)
    assert "already" in same["detail"]
    other_vdu = {**body, "additionalParams": {**body["additionalParams"], "vduId": "lb"}}
    await refused(api, base, other_vdu, 422)
    no_cpu = {**body, "additionalParams": {"vduId": "fw", "vcpus": 0, "ramMb": 4096}}
    problem = await refused(api, base, no_cpu, 400)
    assert problem["errors"][0]["place"] == "additionalParams.vcpus"
    await refused(api, base, {"newFlavourId": "fw.large"}, 400)


async def test_change_vnfpkg_moves_the_instance_to_another_version(world: World) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    assert vnf["vnfdVersion"] == "1.0"
    newer = VFW.read_text().replace('version: "1.0"', 'version: "2.0"')
    assert newer.count('version: "2.0"') == 2, "the VNFD's version and its image's"
    headers = {**api.auth(Role.OPERATOR), "Content-Type": "application/yaml"}
    onboarded = await api.client.post("/api/v1/vnfds", data=newer, headers=headers)
    assert onboarded.status == 201, await onboarded.text()
    sim = world.platform.sims[world.platform.vims.default]
    await sim.add_image("fw-image", "2.0")  # as an operator uploads it to the VIM

    base = f"{INSTANCES}/{vnf['id']}/change_vnfpkg"
    await refused(api, base, {"vnfdId": "vlb"}, 422)
    await refused(api, base, {"vnfdId": "vfw", "additionalParams": {"vnfdVersion": "9.9"}}, 422)
    op = await task(api, vnf["id"], "change_vnfpkg",
                    {"vnfdId": "vfw", "additionalParams": {"vnfdVersion": "2.0"}})  # fmt: skip
    assert (op["operationState"], op["operation"]) == ("COMPLETED", "CHANGE_VNFPKG"), str(op)
    shown = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert shown["vnfdVersion"] == "2.0"
    images = {i.id: i.version for i in await sim.images()}
    servers = {c["computeResource"]["resourceId"] for c in vnfcs(shown)}
    assert {images[s.image] for s in await sim.servers() if s.id in servers} == {"2.0"}
    latest = await refused(api, base, {"vnfdId": "vfw"}, 422)
    assert "already" in latest["detail"], "no version named: the latest, which it runs"


async def test_rollback_undoes_a_failed_scale_and_what_cannot_be_undone_is_409(
    world: World,
) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    sim = world.platform.sims[world.platform.vims.default]
    await sim.fail_next("create", temporary=True, after=1)
    two_out = {"type": "SCALE_OUT", "aspectId": "fw-scale", "numberOfSteps": 2}
    failed = await task(api, vnf["id"], "scale", two_out)
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert set(failed["_links"]) >= {"retry", "rollback", "fail"}
    assert len(await sim.servers()) == 3, "one server was added before the failure"

    rollback = f"{OCCS}/{failed['id']}/rollback"
    viewer = await api.client.post(rollback, headers=api.auth(Role.VIEWER))
    assert viewer.status == 403
    undone = await followed(api, await api.client.post(rollback, headers=api.auth(Role.OPERATOR)))
    assert undone["id"] == failed["id"]
    assert undone["operationState"] == "ROLLED_BACK", undone
    assert [h["state"] for h in undone["history"]][-2:] == ["ROLLING_BACK", "ROLLED_BACK"]
    after = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert {s.id for s in await sim.servers()} == {
        c["computeResource"]["resourceId"] for c in vnfcs(after)
    }, "the added server was removed"
    assert len(vnfcs(after)) == 2
    assert after["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "fw-scale", "scaleLevel": 0}
    ]
    again = await api.client.post(rollback, headers=api.auth(Role.OPERATOR))
    assert again.status == 409, "ROLLED_BACK is final"

    # An operate has nothing to undo: refused, and the occurrence stays FAILED_TEMP.
    await sim.fail_next("stop", temporary=True)
    stop = await task(api, vnf["id"], "operate", {"changeStateTo": "STOPPED"})
    assert stop["operationState"] == "FAILED_TEMP", stop
    response = await api.client.post(
        f"{OCCS}/{stop['id']}/rollback", headers=api.auth(Role.OPERATOR)
    )
    assert response.status == 409, await response.text()
    assert "cannot be rolled back" in (await response.json())["detail"]
    assert (await api.get_json(f"{OCCS}/{stop['id']}"))["operationState"] == "FAILED_TEMP"
    missing = await api.client.post(f"{OCCS}/nope/rollback", headers=api.auth(Role.OPERATOR))
    assert missing.status == 404


@pytest.mark.parametrize("boot_s", [40.0])
async def test_cancel_stops_a_running_scale_which_can_then_be_retried(world: World) -> None:
    api = world.api
    vnf = await created_and_instantiated(api)
    response = await post(api, f"{INSTANCES}/{vnf['id']}/scale",
                          {"type": "SCALE_OUT", "aspectId": "fw-scale"})  # fmt: skip
    assert response.status == 202
    location = response.headers["Location"]
    running = await api.get_json(location)
    assert running["operationState"] in ("STARTING", "PROCESSING"), running
    assert "cancel" in running["_links"]
    cancel = f"{location}/cancel"
    forceful = await refused(api, cancel, {"cancelMode": "FORCEFUL"}, 422)
    assert "GRACEFUL" in forceful["detail"]
    await refused(api, cancel, {}, 400)
    accepted = await post(api, cancel, {"cancelMode": "GRACEFUL"})
    assert accepted.status == 202, await accepted.text()
    assert accepted.headers["Location"] == location
    stopped = await followed(api, accepted)
    assert stopped["operationState"] == "FAILED_TEMP", stopped
    assert "cancelled" in stopped["error"]["detail"]
    assert stopped["isCancelPending"] is False
    await refused(api, cancel, {"cancelMode": "GRACEFUL"}, 409)

    retry = await api.client.post(f"{location}/retry", headers=api.auth(Role.OPERATOR))
    retried = await followed(api, retry)
    assert retried["operationState"] == "COMPLETED", retried
    assert len(vnfcs(await api.get_json(f"{INSTANCES}/{vnf['id']}"))) == 3
    await refused(api, f"{OCCS}/nope/cancel", {"cancelMode": "GRACEFUL"}, 404)


async def test_day2_tasks_need_an_instantiated_instance(world: World) -> None:
    api = world.api
    made = await post(api, INSTANCES, {"vnfdId": "vfw", "vnfInstanceName": "idle"})
    idle = (await made.json())["id"]
    bodies = {
        "scale_to_level": {"instantiationLevelId": "basic"},
        "operate": {"changeStateTo": "STOPPED"},
        "change_flavour": {"newFlavourId": "x",
                           "additionalParams": {"vduId": "fw", "vcpus": 1, "ramMb": 1}},
        "change_vnfpkg": {"vnfdId": "vfw"},
    }  # fmt: skip
    for name, body in bodies.items():
        await refused(api, f"{INSTANCES}/{idle}/{name}", body, 409)
        await refused(api, f"{INSTANCES}/no-such-vnf/{name}", body, 404)
        viewer = await post(api, f"{INSTANCES}/{idle}/{name}", body, Role.VIEWER)
        assert viewer.status == 403
    assert await api.get_json(OCCS) == [], "nothing was started"
