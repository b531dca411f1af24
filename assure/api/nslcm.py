"""SOL005 NS lifecycle management: ``/nslcm/v2/ns_instances`` and ``/nslcm/v2/ns_lcm_op_occs``.

The NFVO (:class:`~mano_core.nfvo.lcm.NsLcm`) does the work; this module
maps SOL005 onto it. As in SOL005, an NS instance resource is created
first (``NOT_INSTANTIATED``), then instantiated; each task (instantiate,
scale, heal, terminate) answers 202 with the ``Location`` of its operation
occurrence, which the client follows to COMPLETED (or ROLLED_BACK,
FAILED). An instance in the wrong state for a task is 409, as is one with
an operation under way; a request the NFVO refuses as asked (an unknown
aspect, a VNF that is no member) is 422. A terminated instance is
``NOT_INSTANTIATED`` again and may be deleted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from assure.api.body import read_body
from assure.api.lcm_replies import json_record
from assure.api.problems import Problem, conflict, not_found, unprocessable
from assure.api.routing import Param, Reply, Route
from assure.api.sol003 import VnfInstanceRecord, dump, vnf_instance_record
from assure.api.sol005 import (
    NSLCM,
    CreateNsRequest,
    HealNsRequest,
    InstantiateNsRequest,
    NsInstanceRecord,
    NsLcmOpOccRecord,
    ScaleNsRequest,
    TerminateNsRequest,
    ns_instance_record,
    ns_op_occ_record,
)
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from mano_core.errors import InvalidRequest, NotFound
from mano_core.nfvo.lcm import NsBusy
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsState
from mano_core.vnfm import Direction

log = logging.getLogger(__name__)

POLL_S = 0.01
"""Wall seconds between two looks for a started operation."""


async def _ns(deps: ApiDeps, ns_id: str) -> NsInstance:
    found = await deps.ns_inventory.find(ns_id)
    if found is None:
        raise not_found(f"no NS instance {ns_id}")
    return found


async def _record(deps: ApiDeps, ns: NsInstance) -> NsInstanceRecord:
    members: list[VnfInstanceRecord] = []
    for vnf_id in ns.vnf_ids():
        vnf = await deps.inventory.find(vnf_id)
        if vnf is not None:
            members.append(vnf_instance_record(vnf))
    return ns_instance_record(ns, members)


def _accepted(op: NsOperation) -> web.Response:
    return web.Response(status=202, headers={"Location": f"{NSLCM}/ns_lcm_op_occs/{op.id}"})


async def _start(
    deps: ApiDeps, ns: NsInstance, run: Callable[[str], Coroutine[Any, Any, NsOperation]]
) -> web.Response:
    """Run ``run(op_id)`` (an NsLcm task) in the background; 202 once its operation exists."""
    if await deps.redis.exists(deps.keys.ns_lease(ns.id)):
        raise conflict(f"another lifecycle operation is in progress on NS instance {ns.id}")
    op_id = str(uuid.uuid4())
    task = asyncio.create_task(run(op_id), name=f"ns lcm {op_id}")
    deps.background.add(task)
    task.add_done_callback(_finished(deps))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.settings.request_timeout
    while True:
        current = await deps.ns_inventory.find(ns.id)
        op = next((o for o in current.operations if o.id == op_id), None) if current else None
        if op is not None:
            return _accepted(op)
        if task.done():
            exc = task.exception()
            if exc is None:
                return _accepted(task.result())
            if isinstance(exc, NotFound):
                raise unprocessable(str(exc))
            if isinstance(exc, InvalidRequest):
                status = 409 if isinstance(exc, NsBusy) else 422
                raise Problem(status, str(exc))
            raise exc
        if loop.time() > deadline:
            raise Problem(503, f"operation {op_id} did not start in time; it may still")
        await asyncio.wait({task}, timeout=POLL_S)


def _finished(deps: ApiDeps) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        deps.background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, InvalidRequest | NotFound):
            log.error("NS lifecycle operation %s failed", task.get_name(), exc_info=exc)

    return done


# --- NS instances ------------------------------------------------------------
async def list_ns_instances(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    records = [await _record(deps, ns) for ns in await deps.ns_lcm.list()]
    return web.json_response([dump(r) for r in records])


async def create_ns_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, CreateNsRequest)
    try:
        ns = await deps.ns_lcm.create(body.nsdId, body.nsName, description=body.nsDescription)
    except NotFound as exc:
        raise unprocessable(str(exc)) from None
    except InvalidRequest as exc:
        raise conflict(str(exc)) from None
    return json_record(await _record(deps, ns), 201, Location=f"{_I}/{ns.id}")


async def show_ns_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    return json_record(await _record(deps, await _ns(deps, request.match_info["nsInstanceId"])))


async def delete_ns_instance(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    ns = await _ns(deps, request.match_info["nsInstanceId"])
    try:
        await deps.ns_lcm.delete(ns.id)
    except InvalidRequest as exc:
        raise conflict(str(exc)) from None
    return web.Response(status=204)


def _instantiated(ns: NsInstance) -> None:
    if ns.state is not NsState.INSTANTIATED:
        raise conflict(f"NS instance {ns.id} is {ns.state}")


async def instantiate_ns(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    ns = await _ns(deps, request.match_info["nsInstanceId"])
    await read_body(request, InstantiateNsRequest)
    if ns.state is not NsState.NOT_INSTANTIATED or ns.vnfs:
        raise conflict(f"NS instance {ns.id} is {ns.state}: terminate it first")
    lcm = deps.ns_lcm
    return await _start(deps, ns, lambda op_id: lcm.instantiate(ns.id, op_id=op_id))


async def scale_ns(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    ns = await _ns(deps, request.match_info["nsInstanceId"])
    steps = (await read_body(request, ScaleNsRequest)).scaleNsData.scaleNsByStepsData
    _instantiated(ns)
    direction: Direction = "out" if steps.scalingDirection == "SCALE_OUT" else "in"
    lcm = deps.ns_lcm
    return await _start(
        deps,
        ns,
        lambda op_id: lcm.scale(ns.id, steps.aspectId, direction, steps.numberOfSteps, op_id=op_id),
    )


async def heal_ns(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    ns = await _ns(deps, request.match_info["nsInstanceId"])
    body = await read_body(request, HealNsRequest)
    if (body.healNsData is None) == (body.healVnfData is None):
        raise unprocessable("give either healNsData (the whole NS) or healVnfData, not both")
    _instantiated(ns)
    vnfs: list[str] | None = None
    vnfc_ids: list[str] | None = None
    level: str | None = None
    if body.healVnfData is not None:
        vnfs = [v.vnfInstanceId for v in body.healVnfData]
        named = [c for v in body.healVnfData for c in v.additionalParams.vnfcInstanceId or []]
        vnfc_ids = named or None
        levels = {v.additionalParams.level for v in body.healVnfData}
        if len(levels) > 1:
            raise unprocessable("one recovery level for the whole heal (additionalParams.level)")
        (level,) = levels
    lcm = deps.ns_lcm
    return await _start(
        deps,
        ns,
        lambda op_id: lcm.heal(ns.id, vnfs=vnfs, vnfc_ids=vnfc_ids, level=level, op_id=op_id),
    )


async def terminate_ns(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    ns = await _ns(deps, request.match_info["nsInstanceId"])
    await read_body(request, TerminateNsRequest)
    if ns.state is NsState.NOT_INSTANTIATED and not ns.vnfs and not ns.networks:
        raise conflict(f"NS instance {ns.id} is NOT_INSTANTIATED")
    lcm = deps.ns_lcm
    return await _start(deps, ns, lambda op_id: lcm.terminate(ns.id, op_id=op_id))


# --- operation occurrences ---------------------------------------------------
async def list_ns_op_occs(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    query = request.query
    wanted_ns = query.get("nsInstanceId")
    wanted_op = query.get("lcmOperationType")
    wanted_state = query.get("operationState")
    if wanted_op and wanted_op not in _OPERATIONS:
        raise Problem(400, f"unknown lcmOperationType {wanted_op!r}")
    if wanted_state and wanted_state not in NsOpState.__members__:
        raise Problem(400, f"unknown operationState {wanted_state!r}")
    records: list[NsLcmOpOccRecord] = []
    for ns in await deps.ns_lcm.list():
        if wanted_ns and ns.id != wanted_ns:
            continue
        for op in ns.operations:
            if (not wanted_op or op.operation == wanted_op) and (
                not wanted_state or op.state == wanted_state
            ):
                records.append(ns_op_occ_record(ns, op))
    records.sort(key=lambda r: r.startTime, reverse=True)
    return web.json_response([dump(r) for r in records])


async def show_ns_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op_id = request.match_info["nsLcmOpOccId"]
    try:
        ns, op = await deps.ns_lcm.operation(op_id)
    except NotFound:
        raise not_found(f"no NS LCM operation occurrence {op_id}") from None
    return json_record(ns_op_occ_record(ns, op))


_OPERATIONS = ("INSTANTIATE", "SCALE", "HEAL", "TERMINATE")
_PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
_NS_ID = Param("nsInstanceId", "path", "The NS instance's id.")
_OP_ID = Param("nsLcmOpOccId", "path", "The NS operation occurrence's id.")
_ACCEPTED = Reply(
    "Started: follow the operation occurrence.",
    headers={"Location": "The operation occurrence (ns_lcm_op_occs/{id})."},
)
_CONFLICT = Reply("The instance's state forbids it, or an operation runs on it.", _PROBLEM,
                  media_type="application/problem+json")  # fmt: skip
_NOT_FOUND = Reply("No such resource.", _PROBLEM, media_type="application/problem+json")
_INVALID = Reply("The request cannot be done (unknown NSD, aspect, member VNF, level).",
                 _PROBLEM, media_type="application/problem+json")  # fmt: skip
_TASK = {202: _ACCEPTED, 404: _NOT_FOUND, 409: _CONFLICT, 422: _INVALID}
_I = f"{NSLCM}/ns_instances"
_O = f"{NSLCM}/ns_lcm_op_occs"
_INSTANCES = {"type": "array", "items": {"$ref": "#/components/schemas/NsInstanceRecord"}}
_OCCS = {"type": "array", "items": {"$ref": "#/components/schemas/NsLcmOpOccRecord"}}
_QUERY = [
    Param("nsInstanceId", "query", "Only this NS instance's operations."),
    Param("lcmOperationType", "query", "Only this operation.",
          {"type": "string", "enum": list(_OPERATIONS)}),
    Param("operationState", "query", "Only operations in this state.",
          {"type": "string", "enum": list(NsOpState.__members__)}),
]  # fmt: skip

ROUTES = [
    Route("GET", _I, list_ns_instances, Role.VIEWER, "List NS instances.", "nslcm",
          "listNsInstances", replies={200: Reply("The instances.", _INSTANCES)}),
    Route("POST", _I, create_ns_instance, Role.OPERATOR,
          "Create an NS instance resource (NOT_INSTANTIATED).", "nslcm", "createNsInstance",
          body=CreateNsRequest,
          replies={201: Reply("Created.", NsInstanceRecord,
                              headers={"Location": "The new instance."}),
                   409: _CONFLICT, 422: _INVALID}),
    Route("GET", f"{_I}/{{nsInstanceId}}", show_ns_instance, Role.VIEWER,
          "Show an NS instance and its member VNF instances.", "nslcm", "showNsInstance",
          params=[_NS_ID], replies={200: Reply("The instance.", NsInstanceRecord),
                                    404: _NOT_FOUND}),
    Route("DELETE", f"{_I}/{{nsInstanceId}}", delete_ns_instance, Role.OPERATOR,
          "Delete a NOT_INSTANTIATED NS instance resource.", "nslcm", "deleteNsInstance",
          params=[_NS_ID], replies={204: Reply("Deleted."), 404: _NOT_FOUND, 409: _CONFLICT}),
    Route("POST", f"{_I}/{{nsInstanceId}}/instantiate", instantiate_ns, Role.OPERATOR,
          "Instantiate an NS: place and instantiate every member VNF.", "nslcm",
          "instantiateNs", body=InstantiateNsRequest, params=[_NS_ID], replies=_TASK),
    Route("POST", f"{_I}/{{nsInstanceId}}/scale", scale_ns, Role.OPERATOR,
          "Scale an NS out or in by steps of an NS scaling aspect.", "nslcm", "scaleNs",
          body=ScaleNsRequest, params=[_NS_ID], replies=_TASK),
    Route("POST", f"{_I}/{{nsInstanceId}}/heal", heal_ns, Role.OPERATOR,
          "Heal member VNFCs of an NS.", "nslcm", "healNs", body=HealNsRequest,
          params=[_NS_ID], replies=_TASK),
    Route("POST", f"{_I}/{{nsInstanceId}}/terminate", terminate_ns, Role.OPERATOR,
          "Terminate an NS: every member VNF, then its networks.", "nslcm", "terminateNs",
          body=TerminateNsRequest, params=[_NS_ID], replies=_TASK),
    Route("GET", _O, list_ns_op_occs, Role.VIEWER, "List NS LCM operation occurrences.",
          "nslcm", "listNsLcmOpOccs", params=_QUERY,
          replies={200: Reply("The occurrences, newest first.", _OCCS),
                   400: Reply("An unknown filter value.", _PROBLEM,
                              media_type="application/problem+json")}),
    Route("GET", f"{_O}/{{nsLcmOpOccId}}", show_ns_op_occ, Role.VIEWER,
          "Show an NS operation occurrence.", "nslcm", "showNsLcmOpOcc", params=[_OP_ID],
          replies={200: Reply("The occurrence.", NsLcmOpOccRecord), 404: _NOT_FOUND}),
]  # fmt: skip
