"""SOL005 NS lifecycle through REST only, on a real port: create, instantiate, scale, heal,
terminate and delete an NS, each task followed through its NS LCM operation occurrence; and
what is refused, and how."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assure.api.tokens import Role
from assure.settings import Settings
from bus.lease import Lease
from mano_core.vim.base import ServerStatus
from tests.api_support import Api, running_api
from tests.nfvo_support import EDGE, NfvoWorld, nfvo_world

NS = "/nslcm/v2/ns_instances"
OCCS = "/nslcm/v2/ns_lcm_op_occs"
SCALE_OUT = {"scaleType": "SCALE_NS", "scaleNsData": {"scaleNsByStepsData": {
    "scalingDirection": "SCALE_OUT", "aspectId": "capacity"}}}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[NfvoWorld, Api]]:
    async with nfvo_world(settings) as nfvo, running_api(nfvo.platform) as api:
        headers = {**api.auth(Role.OPERATOR), "Content-Type": "application/yaml"}
        onboarded = await api.client.post("/api/v1/nsds", data=EDGE, headers=headers)
        assert onboarded.status == 201, await onboarded.text()
        yield nfvo, api


async def post(api: Api, path: str, body: Any, role: Role = Role.OPERATOR) -> Any:
    return await api.client.post(path, json=body, headers=api.auth(role))


async def followed(api: Api, response: Any) -> dict[str, Any]:
    """Follow a 202's Location until the NS operation is final; returns it."""
    assert response.status == 202, await response.text()
    location = response.headers["Location"]
    assert location.startswith(OCCS + "/")
    for _ in range(1000):
        op: dict[str, Any] = await api.get_json(location)
        if op["operationState"] in ("COMPLETED", "FAILED", "ROLLED_BACK"):
            return op
        await asyncio.sleep(0.02)
    raise AssertionError(f"{location} did not finish")


async def refused(api: Api, path: str, body: Any, status: int) -> str:
    response = await post(api, path, body)
    assert response.status == status, (path, body, await response.text())
    assert response.content_type == "application/problem+json"
    detail: str = (await response.json())["detail"]
    return detail


async def test_an_ns_from_create_to_delete_driven_only_through_rest(
    world: tuple[NfvoWorld, Api],
) -> None:
    nfvo, api = world
    made = await post(api, NS, {"nsdId": "edge", "nsName": "shop", "nsDescription": "by REST"})
    assert made.status == 201, await made.text()
    ns = await made.json()
    assert made.headers["Location"] == f"{NS}/{ns['id']}"
    assert (ns["nsState"], ns["nsInstanceDescription"]) == ("NOT_INSTANTIATED", "by REST")
    assert set(ns["_links"]) == {"self", "instantiate"}
    base = f"{NS}/{ns['id']}"

    done = await followed(api, await post(api, f"{base}/instantiate", {}))
    assert (done["operationState"], done["lcmOperationType"]) == ("COMPLETED", "INSTANTIATE"), done
    assert done["nsInstanceId"] == ns["id"]
    shown = await api.get_json(base)
    assert shown["nsState"] == "INSTANTIATED"
    members = {v["vnfdId"]: v for v in shown["vnfInstance"]}
    assert set(members) == {"vfw", "vlb"}
    fw = members["vfw"]
    assert len(fw["instantiatedVnfInfo"]["vnfcResourceInfo"]) == 2
    assert {v["vnfInstanceId"] for v in done["resourceChanges"]["affectedVnfs"]} == {
        v["id"] for v in shown["vnfInstance"]
    }

    scaled = await followed(api, await post(api, f"{base}/scale", SCALE_OUT))
    assert scaled["operationState"] == "COMPLETED", scaled
    shown = await api.get_json(base)
    assert shown["nsScaleStatus"] == [{"nsScalingAspectId": "capacity", "nsScaleLevelId": "1"}]
    fw = next(v for v in shown["vnfInstance"] if v["vnfdId"] == "vfw")
    assert len(fw["instantiatedVnfInfo"]["vnfcResourceInfo"]) == 3

    victim = fw["instantiatedVnfInfo"]["vnfcResourceInfo"][0]
    sim = nfvo.sims[victim["computeResource"]["vimConnectionId"]]
    await sim.crash_server(victim["computeResource"]["resourceId"])
    heal = {"healVnfData": [{"vnfInstanceId": fw["id"], "cause": "a VNFC crashed"}]}
    healed = await followed(api, await post(api, f"{base}/heal", heal))
    assert healed["operationState"] == "COMPLETED", healed
    assert {v["vnfInstanceId"] for v in healed["resourceChanges"]["affectedVnfs"]} == {fw["id"]}
    server = await sim.get_server(victim["computeResource"]["resourceId"])
    assert server.status is ServerStatus.ACTIVE

    occurrences = await api.get_json(OCCS, params={"nsInstanceId": ns["id"]})
    assert [o["lcmOperationType"] for o in occurrences] == ["HEAL", "SCALE", "INSTANTIATE"]
    only = await api.get_json(OCCS, params={"lcmOperationType": "SCALE"})
    assert [o["id"] for o in only] == [scaled["id"]]

    ended = await followed(api, await post(api, f"{base}/terminate", {}))
    assert ended["operationState"] == "COMPLETED", ended
    assert (await api.get_json(base))["nsState"] == "NOT_INSTANTIATED"
    assert await nfvo.empty(), "terminate left nothing on the VIMs"
    deleted = await api.client.delete(base, headers=api.auth(Role.OPERATOR))
    assert deleted.status == 204
    assert (await api.client.get(base, headers=api.auth())).status == 404
    gone = await api.client.get(f"{OCCS}/{ended['id']}", headers=api.auth())
    assert gone.status == 404, "its operations went with it"


async def test_what_cannot_be_done_to_an_ns_gets_the_right_status(
    world: tuple[NfvoWorld, Api],
) -> None:
    _, api = world
    await refused(api, NS, {"nsdId": "no-such-nsd", "nsName": "x"}, 422)
    await refused(api, NS, {"nsdId": "edge"}, 400)
    made = await (await post(api, NS, {"nsdId": "edge", "nsName": "shop"})).json()
    assert "exists already" in await refused(api, NS, {"nsdId": "edge", "nsName": "shop"}, 409)
    base = f"{NS}/{made['id']}"
    assert "NOT_INSTANTIATED" in await refused(api, f"{base}/scale", SCALE_OUT, 409)
    await refused(api, f"{base}/heal", {"healNsData": {"degreeHealing": "HEAL_RESTORE"}}, 409)
    await refused(api, f"{base}/terminate", {}, 409)
    await refused(api, f"{NS}/nope/instantiate", {}, 404)
    await refused(api, f"{base}/instantiate", {"nsFlavourId": "gold"}, 400)
    viewer = await post(api, f"{base}/instantiate", {}, Role.VIEWER)
    assert viewer.status == 403

    # While another holds the NS (an operation under way elsewhere), nothing starts on it.
    deps = api.deps
    other = Lease(deps.redis, deps.keys.ns_lease(made["id"]), deps.clock, ttl_s=60,
                  holder="another process")  # fmt: skip
    assert await other.try_acquire()
    assert "in progress" in await refused(api, f"{base}/instantiate", {}, 409)
    await other.release()
    started = await post(api, f"{base}/instantiate", {})
    assert (await followed(api, started))["operationState"] == "COMPLETED"
    assert "terminate it first" in await refused(api, f"{base}/instantiate", {}, 409)
    await refused(api, f"{base}/scale", {**SCALE_OUT, "scaleNsData": {"scaleNsByStepsData": {
        "scalingDirection": "SCALE_OUT", "aspectId": "no-such-aspect"}}}, 422)  # fmt: skip
    await refused(api, f"{base}/heal", {"healVnfData": [{"vnfInstanceId": "nope"}]}, 422)
    both = {"healNsData": {"degreeHealing": "HEAL_RESTORE"},
            "healVnfData": [{"vnfInstanceId": "x"}]}  # fmt: skip
    await refused(api, f"{base}/heal", both, 422)
    await refused(api, f"{base}/heal", {}, 422)
    delete = await api.client.delete(base, headers=api.auth(Role.OPERATOR))
    assert delete.status == 409, "an instantiated NS is terminated first"
    assert (await api.client.get(f"{OCCS}/nope", headers=api.auth())).status == 404
    occurrences = await api.get_json(OCCS, params={"nsInstanceId": made["id"]})
    assert [o["lcmOperationType"] for o in occurrences] == ["INSTANTIATE"], "nothing else ran"
