"""SOL003 lifecycle through REST only: create, instantiate, scale, heal, terminate, each followed
to COMPLETED through its operation occurrence; and what is refused, and how."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actuator.lease import VnfLease
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import ScaledClock
from tests.api_support import Api, running_api

INSTANCES = "/vnflcm/v2/vnf_instances"
OCCS = "/vnflcm/v2/vnf_lcm_op_occs"


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        settings, vim=dataclasses.replace(settings.vim, boot=0.0, reboot=0.0)
    )
    platform = await Platform.open(settings, ScaledClock(20))
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        async with running_api(platform) as running:
            yield running
    finally:
        await platform.aclose()


async def post(api: Api, path: str, body: Any, role: Role = Role.OPERATOR) -> Any:
    return await api.client.post(path, json=body, headers=api.auth(role))


async def followed(api: Api, response: Any) -> dict[str, Any]:
    """Follow a 202's Location until the occurrence is final; returns it."""
    assert response.status == 202, await response.text()
    location = response.headers["Location"]
    assert location.startswith(OCCS + "/")
    for _ in range(600):
        op: dict[str, Any] = await api.get_json(location)
        if op["operationState"] in ("COMPLETED", "FAILED", "ROLLED_BACK", "FAILED_TEMP"):
            return op
        await asyncio.sleep(0.02)
    raise AssertionError(f"{location} did not finish")


async def created_and_instantiated(api: Api) -> dict[str, Any]:
    made = await post(api, INSTANCES, {"vnfdId": "vfw", "vnfInstanceName": "fw-rest",
                               "vnfInstanceDescription": "made by REST"})  # fmt: skip
    assert made.status == 201, await made.text()
    instance = await made.json()
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    assert made.headers["Location"] == f"{INSTANCES}/{instance['id']}"
    op = await followed(api, await post(api, f"{INSTANCES}/{instance['id']}/instantiate",
                                        {"flavourId": "default"}))  # fmt: skip
    assert op["operationState"] == "COMPLETED", op
    assert op["operation"] == "INSTANTIATE" and op["vnfInstanceId"] == instance["id"]
    assert op["isAutomaticInvocation"] is False
    shown: dict[str, Any] = await api.get_json(f"{INSTANCES}/{instance['id']}")
    return shown


async def test_instantiate_scale_heal_and_terminate_driven_only_through_rest(api: Api) -> None:
    vnf = await created_and_instantiated(api)
    assert vnf["instantiationState"] == "INSTANTIATED"
    assert vnf["vnfInstanceDescription"] == "made by REST"
    vnfcs = vnf["instantiatedVnfInfo"]["vnfcResourceInfo"]
    assert len(vnfcs) == 2

    out = {"type": "SCALE_OUT", "aspectId": "fw-scale"}
    scaled = await followed(api, await post(api, f"{INSTANCES}/{vnf['id']}/scale", out))
    assert scaled["operationState"] == "COMPLETED", scaled
    after = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert len(after["instantiatedVnfInfo"]["vnfcResourceInfo"]) == 3
    assert after["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "fw-scale", "scaleLevel": 1}
    ]

    healed = await followed(api, await post(api, f"{INSTANCES}/{vnf['id']}/heal",
                                            {"vnfcInstanceId": [vnfcs[0]["id"]],
                                             "cause": "operator says so"}))  # fmt: skip
    assert healed["operationState"] == "COMPLETED", healed
    assert healed["operation"] == "HEAL"

    listed = await api.get_json(OCCS, params={"vnfInstanceId": vnf["id"], "operation": "SCALE"})
    assert [o["id"] for o in listed] == [scaled["id"]]

    ended = await followed(api, await post(api, f"{INSTANCES}/{vnf['id']}/terminate", {}))
    assert ended["operationState"] == "COMPLETED", ended
    gone = await api.get_json(f"{INSTANCES}/{vnf['id']}")
    assert gone["instantiationState"] == "NOT_INSTANTIATED", "terminated: the resource remains"
    deleted = await api.client.delete(f"{INSTANCES}/{vnf['id']}", headers=api.auth(Role.OPERATOR))
    assert deleted.status == 204
    assert (await api.client.get(f"{INSTANCES}/{vnf['id']}", headers=api.auth())).status == 404


async def test_what_cannot_be_done_gets_the_right_status(api: Api) -> None:
    vnf = await created_and_instantiated(api)
    base = f"{INSTANCES}/{vnf['id']}"
    first_vnfc = vnf["instantiatedVnfInfo"]["vnfcResourceInfo"][0]["id"]
    cases = [
        (f"{INSTANCES}/nope/scale", {"type": "SCALE_OUT", "aspectId": "fw-scale"}, 404),
        (f"{base}/scale", {"type": "SCALE_OUT", "aspectId": "no-such-aspect"}, 422),
        (f"{base}/scale", {"type": "SCALE_UP", "aspectId": "fw-scale"}, 400),
        (f"{base}/scale", {"type": "SCALE_OUT", "aspectId": "fw-scale", "numberOfSteps": "2"}, 400),
        (f"{base}/scale", {"aspectId": "fw-scale"}, 400),
        (f"{base}/heal", {"vnfcInstanceId": ["no-such-vnfc"]}, 422),
        (f"{base}/heal", {"vnfcInstanceId": [first_vnfc], "additionalParams": {"level": "pray"}},
         422),
        (f"{base}/instantiate", {}, 409),
        (INSTANCES, {"vnfdId": "no-such-vnfd", "vnfInstanceName": "x"}, 422),
        (INSTANCES, {"vnfdId": "vfw"}, 400),
    ]  # fmt: skip
    for path, body, status in cases:
        response = await post(api, path, body)
        assert response.status == status, (path, body, await response.text())
        assert response.content_type == "application/problem+json"
    assert (await post(api, f"{base}/scale", {"type": "SCALE_OUT", "aspectId": "fw-scale"},
                       Role.VIEWER)).status == 403  # fmt: skip
    occurrences = await api.get_json(OCCS, params={"vnfInstanceId": vnf["id"]})
    assert [o["operation"] for o in occurrences] == ["INSTANTIATE"], "nothing else was started"
    delete = await api.client.delete(base, headers=api.auth(Role.OPERATOR))
    assert delete.status == 409, "an instantiated instance is terminated first"


async def test_an_operation_while_the_actuator_runs_one_on_the_vnf_is_refused_with_409(
    api: Api,
) -> None:
    vnf = await created_and_instantiated(api)
    deps = api.deps
    # The occurrence is COMPLETED a moment before the server's task gives the lease back.
    if deps.background:
        _, still_running = await asyncio.wait(set(deps.background), timeout=10)
        assert not still_running, "the instantiate's task never ended"
    actuator = VnfLease(deps.redis, deps.keys, deps.clock, vnf["id"], ttl_s=60, holder="actuator")
    assert await actuator.try_acquire()
    body = {"type": "SCALE_OUT", "aspectId": "fw-scale"}
    refused = await post(api, f"{INSTANCES}/{vnf['id']}/scale", body)
    assert refused.status == 409, await refused.text()
    assert "in progress" in (await refused.json())["detail"]
    await actuator.release()
    assert (await followed(api, await post(api, f"{INSTANCES}/{vnf['id']}/scale", body)))[
        "operationState"
    ] == "COMPLETED"


async def test_an_unknown_occurrence_is_404_and_a_final_one_cannot_be_retried(api: Api) -> None:
    vnf = await created_and_instantiated(api)
    assert (await api.client.get(f"{OCCS}/nope", headers=api.auth())).status == 404
    (op,) = await api.get_json(OCCS, params={"vnfInstanceId": vnf["id"]})
    retry = await api.client.post(f"{OCCS}/{op['id']}/retry", headers=api.auth(Role.OPERATOR))
    assert retry.status == 409
    fail = await api.client.post(f"{OCCS}/{op['id']}/fail", headers=api.auth(Role.OPERATOR))
    assert fail.status == 409


async def test_the_cli_reads_a_running_server_with_a_token(api: Api) -> None:
    from click.testing import CliRunner

    from assure.cli import main

    vnf = await created_and_instantiated(api)
    server = f"http://127.0.0.1:{api.client.port}"

    def cli(*args: str, token: str | None = api.tokens[Role.VIEWER]) -> Any:
        env = {"NFVA_TOKEN": token} if token else {"NFVA_TOKEN": ""}
        return CliRunner().invoke(main, ["--server", server, *args], env=env)

    shown = await asyncio.to_thread(cli, "status")
    assert shown.exit_code == 0, shown.output
    assert f"fw-rest ({vnf['id']}) vnfd=vfw INSTANTIATED" in shown.output
    listed = await asyncio.to_thread(cli, "ops", "--json")
    assert [o["operation"] for o in json.loads(listed.output)] == ["INSTANTIATE"]
    refused = await asyncio.to_thread(cli, "status", token="nfva_wrong")
    assert refused.exit_code == 1 and "401" in refused.output
    missing = await asyncio.to_thread(cli, "status", token=None)
    assert missing.exit_code == 2 and "NFVA_TOKEN" in missing.output


async def test_descriptors_are_onboarded_listed_shown_and_deleted_over_rest(api: Api) -> None:
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "assure/defaults/vnfds/vfw.yaml"
    text = shipped.read_text().replace("\nid: vfw\n", "\nid: vfw-rest\n")
    headers = {**api.auth(Role.OPERATOR), "Content-Type": "application/yaml"}
    made = await api.client.post("/api/v1/vnfds", data=text, headers=headers)
    assert made.status == 201, await made.text()
    assert made.headers["Location"] == "/api/v1/vnfds/vfw-rest"
    assert "vfw-rest" in [e["id"] for e in await api.get_json("/api/v1/vnfds")]
    shown = await api.get_json("/api/v1/vnfds/vfw-rest")
    assert shown["descriptor"]["id"] == "vfw-rest"
    bad = await api.client.post("/api/v1/vnfds", data=text.replace("vdus:", "vdu:"),
                                headers=headers)  # fmt: skip
    assert bad.status == 422
    assert (await bad.json())["errors"]
    await created_and_instantiated(api)
    in_use = await api.client.delete("/api/v1/vnfds/vfw", headers=api.auth(Role.OPERATOR))
    assert in_use.status == 409, "a VNF instance runs it"
    gone = await api.client.delete("/api/v1/vnfds/vfw-rest", headers=api.auth(Role.OPERATOR))
    assert gone.status == 204
    assert (await api.client.get("/api/v1/vnfds/vfw-rest", headers=api.auth())).status == 404
