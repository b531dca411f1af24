"""SOL003 VNF lifecycle management: ``/vnflcm/v2/vnf_instances`` and their main tasks.

As in SOL003, a VNF instance resource is created first (``NOT_INSTANTIATED``),
then instantiated; each task (instantiate, scale, heal, terminate here, the
day-2 ones in :mod:`assure.api.vnflcm_day2`) answers 202 with the
``Location`` of its operation occurrence, which the client follows
(:mod:`assure.api.op_occs`) to COMPLETED (or FAILED_TEMP, then ``retry``,
``rollback`` or ``fail``). An
instance created here and not yet instantiated is kept by the API; once
instantiated it is the inventory's. A terminated instance is
``NOT_INSTANTIATED`` again and may be deleted. An instantiation is one
occurrence per instance resource: one that was rolled back cannot be
instantiated again (delete it and create another).
"""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec
from aiohttp import web

from assure.api.body import read_body
from assure.api.lcm_replies import (
    CONFLICT,
    INSTANCES,
    INVALID,
    NOT_FOUND,
    TASK_REPLIES,
    VNF_ID,
    accepted,
    json_record,
)
from assure.api.lcm_tasks import LcmTasks, instantiated
from assure.api.problems import conflict, not_found, unprocessable
from assure.api.routing import Reply, Route
from assure.api.sol003 import (
    CreateVnfRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    ScaleVnfRequest,
    TerminateVnfRequest,
    VnfInstanceRecord,
    dump,
    vnf_instance_record,
)
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from mano_core.errors import NotFound
from mano_core.models import InstantiationState, VnfInstance


class CreatedVnf(msgspec.Struct, frozen=True):
    """A VNF instance resource created through the API, not instantiated yet."""

    id: str
    vnfd_id: str
    name: str
    description: str
    metadata: dict[str, str]
    instantiate_op: str
    """The id its instantiation will have (the instance id derives from it)."""
    created_at: float


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CreatedVnf)


def instance_id_for(op_id: str) -> str:
    """The VNF instance id the VNFM gives an instantiation with operation id ``op_id``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nfv-assure:instantiate:{op_id}"))


async def _created(deps: ApiDeps, vnf_id: str) -> CreatedVnf | None:
    raw = await deps.redis.hget(deps.keys.api_created_vnfs(), vnf_id)
    return None if raw is None else _decoder.decode(raw)


def _not_instantiated(created: CreatedVnf) -> VnfInstance:
    return VnfInstance(
        id=created.id,
        name=created.name,
        vnfd_id=created.vnfd_id,
        vim="",
        state=InstantiationState.NOT_INSTANTIATED,
        scale_levels={},
        vnfcs=[],
        created_at=created.created_at,
        updated_at=created.created_at,
        labels=dict(created.metadata),
    )


async def _record(deps: ApiDeps, vnf_id: str) -> tuple[VnfInstanceRecord, CreatedVnf | None]:
    created = await _created(deps, vnf_id)
    vnf = await deps.inventory.find(vnf_id)
    description = created.description if created else ""
    if vnf is not None:
        return vnf_instance_record(vnf, description), created
    if created is None:
        raise not_found(f"no VNF instance {vnf_id}")
    return vnf_instance_record(_not_instantiated(created), description), created


# --- VNF instances -----------------------------------------------------------
async def list_vnf_instances(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnfs = {v.id: v for v in await deps.inventory.list()}
    stored = await deps.redis.hgetall(deps.keys.api_created_vnfs())
    created = {c.id: c for c in (_decoder.decode(raw) for raw in stored.values())}
    records = [
        vnf_instance_record(vnf, created[vnf.id].description if vnf.id in created else "")
        for vnf in vnfs.values()
    ]
    records += [
        vnf_instance_record(_not_instantiated(c), c.description)
        for c in sorted(created.values(), key=lambda c: c.created_at)
        if c.id not in vnfs
    ]
    return web.json_response([dump(r) for r in records])


async def create_vnf_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, CreateVnfRequest)
    try:
        await deps.catalogue.entry("vnfd", body.vnfdId)
    except NotFound as exc:
        raise unprocessable(str(exc)) from None
    op_id = str(uuid.uuid4())
    created = CreatedVnf(
        id=instance_id_for(op_id),
        vnfd_id=body.vnfdId,
        name=body.vnfInstanceName,
        description=body.vnfInstanceDescription,
        metadata=dict(body.metadata),
        instantiate_op=op_id,
        created_at=deps.clock.now(),
    )
    await deps.redis.hset(deps.keys.api_created_vnfs(), created.id, _encoder.encode(created))
    record = vnf_instance_record(_not_instantiated(created), created.description)
    return json_record(record, 201, Location=f"{INSTANCES}/{created.id}")


async def show_vnf_instance(request: web.Request) -> web.Response:
    record, _ = await _record(request.app[DEPS], request.match_info["vnfInstanceId"])
    return json_record(record)


async def delete_vnf_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    record, _ = await _record(deps, vnf_id)
    if record.instantiationState == "INSTANTIATED":
        raise conflict(f"VNF instance {vnf_id} is INSTANTIATED: terminate it first")
    await deps.redis.hdel(deps.keys.api_created_vnfs(), vnf_id)
    return web.Response(status=204)


async def instantiate_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, InstantiateVnfRequest)
    vnfm = deps.vnfm
    if await deps.inventory.find(vnf_id) is not None:
        raise conflict(f"VNF instance {vnf_id} is already instantiated")
    created = await _created(deps, vnf_id)
    if created is None:
        raise not_found(f"no VNF instance {vnf_id}")
    earlier = await deps.ops.find(vnf_id, created.instantiate_op)
    if earlier is not None:
        raise conflict(
            f"VNF instance {vnf_id} was instantiated before (operation {earlier.id}, "
            f"{earlier.state}): delete it and create another"
        )
    op = await LcmTasks(deps).start(
        vnf_id,
        created.instantiate_op,
        lambda: vnfm.instantiate(
            created.vnfd_id,
            created.name,
            level=body.instantiationLevelId,
            labels=dict(created.metadata),
            op_id=created.instantiate_op,
        ),
    )
    return accepted(op)


async def scale_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, ScaleVnfRequest)
    vnfm = deps.vnfm
    await instantiated(deps, vnf_id)
    op_id = str(uuid.uuid4())
    direction: Literal["out", "in"] = "out" if body.type == "SCALE_OUT" else "in"
    op = await LcmTasks(deps).start(
        vnf_id,
        op_id,
        lambda: vnfm.scale(vnf_id, body.aspectId, direction, body.numberOfSteps, op_id=op_id),
    )
    return accepted(op)


async def heal_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, HealVnfRequest)
    vnfm = deps.vnfm
    vnf = await instantiated(deps, vnf_id)
    (vnfc_id,) = body.vnfcInstanceId
    vnfc = vnf.vnfc(vnfc_id)
    if vnfc is None:
        raise unprocessable(f"VNF instance {vnf_id} has no VNFC {vnfc_id}")
    level = body.additionalParams.get("level")
    if level is None:
        vnfd = await deps.catalogue.of(vnf)
        level = vnfd.ladder(vnfc.vdu)[0].level.value
    unknown = set(body.additionalParams) - {"level"}
    if unknown:
        raise unprocessable(f"unknown additionalParams: {', '.join(sorted(unknown))}")
    op_id = str(uuid.uuid4())
    chosen = level
    op = await LcmTasks(deps).start(
        vnf_id, op_id, lambda: vnfm.heal(vnf_id, vnfc_id, chosen, op_id=op_id)
    )
    return accepted(op)


async def terminate_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    await read_body(request, TerminateVnfRequest)
    vnfm = deps.vnfm
    await instantiated(deps, vnf_id)
    op_id = str(uuid.uuid4())
    op = await LcmTasks(deps).start(vnf_id, op_id, lambda: vnfm.terminate(vnf_id, op_id=op_id))
    return accepted(op)


_INSTANCES = {"type": "array", "items": {"$ref": "#/components/schemas/VnfInstanceRecord"}}
_I = INSTANCES

ROUTES = [
    Route("GET", _I, list_vnf_instances, Role.VIEWER, "List VNF instances.", "vnflcm",
          "listVnfInstances", replies={200: Reply("The instances.", _INSTANCES)}),
    Route("POST", _I, create_vnf_instance, Role.OPERATOR,
          "Create a VNF instance resource (NOT_INSTANTIATED).", "vnflcm", "createVnfInstance",
          body=CreateVnfRequest,
          replies={201: Reply("Created.", VnfInstanceRecord,
                              headers={"Location": "The new instance."}),
                   422: INVALID}),
    Route("GET", f"{_I}/{{vnfInstanceId}}", show_vnf_instance, Role.VIEWER,
          "Show a VNF instance.", "vnflcm", "showVnfInstance", params=[VNF_ID],
          replies={200: Reply("The instance.", VnfInstanceRecord), 404: NOT_FOUND}),
    Route("DELETE", f"{_I}/{{vnfInstanceId}}", delete_vnf_instance, Role.OPERATOR,
          "Delete a NOT_INSTANTIATED VNF instance resource.", "vnflcm", "deleteVnfInstance",
          params=[VNF_ID],
          replies={204: Reply("Deleted."), 404: NOT_FOUND, 409: CONFLICT}),
    Route("POST", f"{_I}/{{vnfInstanceId}}/instantiate", instantiate_vnf, Role.OPERATOR,
          "Instantiate a VNF instance.", "vnflcm", "instantiateVnf", body=InstantiateVnfRequest,
          params=[VNF_ID], replies=TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/scale", scale_vnf, Role.OPERATOR,
          "Scale a VNF instance out or in by steps of an aspect.", "vnflcm", "scaleVnf",
          body=ScaleVnfRequest, params=[VNF_ID], replies=TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/heal", heal_vnf, Role.OPERATOR,
          "Heal a VNFC of a VNF instance (a step of its recovery ladder).", "vnflcm", "healVnf",
          body=HealVnfRequest, params=[VNF_ID], replies=TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/terminate", terminate_vnf, Role.OPERATOR,
          "Terminate a VNF instance (every VNFC removed).", "vnflcm", "terminateVnf",
          body=TerminateVnfRequest, params=[VNF_ID], replies=TASK_REPLIES),
]  # fmt: skip
