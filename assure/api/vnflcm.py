"""SOL003 VNF lifecycle management: ``/vnflcm/v2/vnf_instances`` and ``/vnflcm/v2/vnf_lcm_op_occs``.

As in SOL003, a VNF instance resource is created first (``NOT_INSTANTIATED``),
then instantiated; each task (instantiate, scale, heal, terminate) answers
202 with the ``Location`` of its operation occurrence, which the client
follows to COMPLETED (or FAILED_TEMP, then ``retry`` or ``fail``). An
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
from pydantic import BaseModel

from assure.api.body import read_body
from assure.api.lcm_tasks import LcmTasks
from assure.api.problems import Problem, conflict, not_found, unprocessable
from assure.api.routing import Param, Reply, Route
from assure.api.sol003 import (
    VNFLCM,
    CreateVnfRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    ScaleVnfRequest,
    TerminateVnfRequest,
    VnfInstanceRecord,
    VnfLcmOpOccRecord,
    dump,
    op_occ_record,
    vnf_instance_record,
)
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from bus.contracts import OpState
from mano_core.errors import NotFound
from mano_core.models import InstantiationState, LcmOperation, LcmOpOcc, VnfInstance


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


def _json(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(dump(model), status=status, headers=headers)


def _accepted(op: LcmOpOcc) -> web.Response:
    location = f"{VNFLCM}/vnf_lcm_op_occs/{op.id}"
    return web.Response(status=202, headers={"Location": location})


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
    return _json(record, 201, Location=f"{VNFLCM}/vnf_instances/{created.id}")


async def show_vnf_instance(request: web.Request) -> web.Response:
    record, _ = await _record(request.app[DEPS], request.match_info["vnfInstanceId"])
    return _json(record)


async def delete_vnf_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    record, _ = await _record(deps, vnf_id)
    if record.instantiationState == "INSTANTIATED":
        raise conflict(f"VNF instance {vnf_id} is INSTANTIATED: terminate it first")
    await deps.redis.hdel(deps.keys.api_created_vnfs(), vnf_id)
    return web.Response(status=204)


async def _instantiated(deps: ApiDeps, vnf_id: str) -> VnfInstance:
    vnf = await deps.inventory.find(vnf_id)
    if vnf is None:
        if await _created(deps, vnf_id) is not None:
            raise conflict(f"VNF instance {vnf_id} is NOT_INSTANTIATED")
        raise not_found(f"no VNF instance {vnf_id}")
    if vnf.state is not InstantiationState.INSTANTIATED:
        raise conflict(f"VNF instance {vnf_id} is {vnf.state}")
    return vnf


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
    return _accepted(op)


async def scale_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, ScaleVnfRequest)
    vnfm = deps.vnfm
    await _instantiated(deps, vnf_id)
    op_id = str(uuid.uuid4())
    direction: Literal["out", "in"] = "out" if body.type == "SCALE_OUT" else "in"
    op = await LcmTasks(deps).start(
        vnf_id,
        op_id,
        lambda: vnfm.scale(vnf_id, body.aspectId, direction, body.numberOfSteps, op_id=op_id),
    )
    return _accepted(op)


async def heal_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, HealVnfRequest)
    vnfm = deps.vnfm
    vnf = await _instantiated(deps, vnf_id)
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
    return _accepted(op)


async def terminate_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    await read_body(request, TerminateVnfRequest)
    vnfm = deps.vnfm
    await _instantiated(deps, vnf_id)
    op_id = str(uuid.uuid4())
    op = await LcmTasks(deps).start(vnf_id, op_id, lambda: vnfm.terminate(vnf_id, op_id=op_id))
    return _accepted(op)


# --- operation occurrences ---------------------------------------------------
async def _find_op(deps: ApiDeps, op_id: str) -> LcmOpOcc:
    async for member, _score in deps.redis.zscan_iter(deps.keys.op_index(), match=f"*/{op_id}"):
        vnf_id, _, found = (member.decode() if isinstance(member, bytes) else member).partition("/")
        if found == op_id:
            op = await deps.ops.find(vnf_id, op_id)
            if op is not None:
                return op
    raise not_found(f"no VNF LCM operation occurrence {op_id}")


async def list_op_occs(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise Problem(400, "limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise Problem(400, "limit must be between 1 and 1000")
    vnf_id = query.get("vnfInstanceId") or None
    wanted_op = query.get("operation")
    wanted_state = query.get("operationState")
    if wanted_op and wanted_op not in LcmOperation.__members__:
        raise Problem(400, f"unknown operation {wanted_op!r}")
    if wanted_state and wanted_state not in OpState.__members__:
        raise Problem(400, f"unknown operationState {wanted_state!r}")
    ops = await deps.ops.list(vnf_id, limit=limit if not (wanted_op or wanted_state) else 1000)
    chosen = [
        op
        for op in ops
        if (not wanted_op or op.operation == wanted_op)
        and (not wanted_state or op.state == wanted_state)
    ][:limit]
    return web.json_response([dump(op_occ_record(op)) for op in chosen])


async def show_op_occ(request: web.Request) -> web.Response:
    op = await _find_op(request.app[DEPS], request.match_info["vnfLcmOpOccId"])
    return _json(op_occ_record(op))


async def retry_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op = await _find_op(deps, request.match_info["vnfLcmOpOccId"])
    if op.state is not OpState.FAILED_TEMP:
        raise conflict(f"operation {op.id} is {op.state}: only FAILED_TEMP can be retried")
    vnfm = deps.vnfm
    # Every kind of operation resumes from its stored parameters alone.
    started = await LcmTasks(deps).start(op.vnf_id, op.id, lambda: vnfm.retry(op.id))
    return _accepted(started)


async def fail_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op = await _find_op(deps, request.match_info["vnfLcmOpOccId"])
    if op.state is not OpState.FAILED_TEMP:
        raise conflict(f"operation {op.id} is {op.state}: only FAILED_TEMP can be failed")
    failed = await deps.ops.transition(
        op, OpState.FAILED, detail="failed by request", error=op.error or "failed by request"
    )
    return _json(op_occ_record(failed))


_VNF_ID = Param("vnfInstanceId", "path", "The VNF instance's id.")
_OP_ID = Param("vnfLcmOpOccId", "path", "The operation occurrence's id.")
_ACCEPTED = Reply(
    "Started: follow the operation occurrence.",
    headers={"Location": "The operation occurrence (vnf_lcm_op_occs/{id})."},
)
_CONFLICT = Reply("The instance's state forbids it, or another operation runs on it.",
                  {"$ref": "#/components/schemas/ProblemDetails"},
                  media_type="application/problem+json")  # fmt: skip
_NOT_FOUND = Reply("No such resource.", {"$ref": "#/components/schemas/ProblemDetails"},
                   media_type="application/problem+json")  # fmt: skip
_INVALID = Reply("The request cannot be done (unknown aspect, VNFC, level, VNFD).",
                 {"$ref": "#/components/schemas/ProblemDetails"},
                 media_type="application/problem+json")  # fmt: skip
_INSTANCES = {"type": "array", "items": {"$ref": "#/components/schemas/VnfInstanceRecord"}}
_OP_OCCS = {"type": "array", "items": {"$ref": "#/components/schemas/VnfLcmOpOccRecord"}}
_TASK_REPLIES = {202: _ACCEPTED, 404: _NOT_FOUND, 409: _CONFLICT, 422: _INVALID}
_QUERY = [
    Param("vnfInstanceId", "query", "Only this VNF instance's operations."),
    Param("operation", "query", "Only this operation (INSTANTIATE, SCALE, HEAL, ...)."),
    Param("operationState", "query", "Only operations in this state."),
    Param("limit", "query", "At most this many (1-1000, default 100), newest first.",
          {"type": "integer", "minimum": 1, "maximum": 1000}),
]  # fmt: skip
_I = f"{VNFLCM}/vnf_instances"
_O = f"{VNFLCM}/vnf_lcm_op_occs"

ROUTES = [
    Route("GET", _I, list_vnf_instances, Role.VIEWER, "List VNF instances.", "vnflcm",
          "listVnfInstances", replies={200: Reply("The instances.", _INSTANCES)}),
    Route("POST", _I, create_vnf_instance, Role.OPERATOR,
          "Create a VNF instance resource (NOT_INSTANTIATED).", "vnflcm", "createVnfInstance",
          body=CreateVnfRequest,
          replies={201: Reply("Created.", VnfInstanceRecord,
                              headers={"Location": "The new instance."}),
                   422: _INVALID}),
    Route("GET", f"{_I}/{{vnfInstanceId}}", show_vnf_instance, Role.VIEWER,
          "Show a VNF instance.", "vnflcm", "showVnfInstance", params=[_VNF_ID],
          replies={200: Reply("The instance.", VnfInstanceRecord), 404: _NOT_FOUND}),
    Route("DELETE", f"{_I}/{{vnfInstanceId}}", delete_vnf_instance, Role.OPERATOR,
          "Delete a NOT_INSTANTIATED VNF instance resource.", "vnflcm", "deleteVnfInstance",
          params=[_VNF_ID],
          replies={204: Reply("Deleted."), 404: _NOT_FOUND, 409: _CONFLICT}),
    Route("POST", f"{_I}/{{vnfInstanceId}}/instantiate", instantiate_vnf, Role.OPERATOR,
          "Instantiate a VNF instance.", "vnflcm", "instantiateVnf", body=InstantiateVnfRequest,
          params=[_VNF_ID], replies=_TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/scale", scale_vnf, Role.OPERATOR,
          "Scale a VNF instance out or in by steps of an aspect.", "vnflcm", "scaleVnf",
          body=ScaleVnfRequest, params=[_VNF_ID], replies=_TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/heal", heal_vnf, Role.OPERATOR,
          "Heal a VNFC of a VNF instance (a step of its recovery ladder).", "vnflcm", "healVnf",
          body=HealVnfRequest, params=[_VNF_ID], replies=_TASK_REPLIES),
    Route("POST", f"{_I}/{{vnfInstanceId}}/terminate", terminate_vnf, Role.OPERATOR,
          "Terminate a VNF instance (every VNFC removed).", "vnflcm", "terminateVnf",
          body=TerminateVnfRequest, params=[_VNF_ID], replies=_TASK_REPLIES),
    Route("GET", _O, list_op_occs, Role.VIEWER, "List VNF LCM operation occurrences.",
          "vnflcm", "listVnfLcmOpOccs", params=_QUERY,
          replies={200: Reply("The occurrences, newest first.", _OP_OCCS)}),
    Route("GET", f"{_O}/{{vnfLcmOpOccId}}", show_op_occ, Role.VIEWER,
          "Show an operation occurrence.", "vnflcm", "showVnfLcmOpOcc", params=[_OP_ID],
          replies={200: Reply("The occurrence.", VnfLcmOpOccRecord), 404: _NOT_FOUND}),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/retry", retry_op_occ, Role.OPERATOR,
          "Retry a FAILED_TEMP operation.", "vnflcm", "retryVnfLcmOpOcc", params=[_OP_ID],
          replies=_TASK_REPLIES),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/fail", fail_op_occ, Role.OPERATOR,
          "Give up a FAILED_TEMP operation (FAILED).", "vnflcm", "failVnfLcmOpOcc",
          params=[_OP_ID],
          replies={200: Reply("Now FAILED.", VnfLcmOpOccRecord), 404: _NOT_FOUND,
                   409: _CONFLICT}),
]  # fmt: skip
