"""SOL003 day-2 tasks of an instantiated VNF: scale to level, operate, change flavour and package.

Each answers 202 with the ``Location`` of its operation occurrence, as the
tasks of :mod:`assure.api.vnflcm` do, and runs the VNFM operation of the
same name under the VNF's lease; a request the VNFM refuses before it
starts (a level out of bounds, a VNF already in the wanted state, a
version it cannot change to) is 422, an instance in the wrong state 409.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from assure.api.body import read_body
from assure.api.lcm_replies import INSTANCES, TASK_REPLIES, VNF_ID, accepted
from assure.api.lcm_tasks import LcmTasks, instantiated
from assure.api.problems import unprocessable
from assure.api.routing import Route
from assure.api.sol003 import (
    ChangeCurrentVnfPkgRequest,
    ChangeVnfFlavourRequest,
    OperateVnfRequest,
    ScaleVnfToLevelRequest,
)
from assure.api.state import DEPS
from assure.api.tokens import Role
from mano_core.errors import NotFound
from mano_core.models import ComputeFlavour


async def scale_vnf_to_level(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, ScaleVnfToLevelRequest)
    await instantiated(deps, vnf_id)
    levels = None
    if body.scaleInfo is not None:
        levels = {info.aspectId: info.scaleLevel for info in body.scaleInfo}
        if len(levels) < len(body.scaleInfo):
            raise unprocessable("scaleInfo names an aspect more than once")
    vnfm = deps.vnfm
    op_id = str(uuid.uuid4())
    op = await LcmTasks(deps).start(
        vnf_id,
        op_id,
        lambda: vnfm.scale_to_level(
            vnf_id, levels=levels, instantiation_level=body.instantiationLevelId, op_id=op_id
        ),
    )
    return accepted(op)


async def operate_vnf(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, OperateVnfRequest)
    if body.changeStateTo == "STARTED" and body.stopType is not None:
        raise unprocessable("stopType applies only to changeStateTo STOPPED")
    await instantiated(deps, vnf_id)
    vnfm = deps.vnfm
    op_id = str(uuid.uuid4())
    graceful = body.stopType == "GRACEFUL"
    op = await LcmTasks(deps).start(
        vnf_id,
        op_id,
        lambda: vnfm.operate(vnf_id, body.changeStateTo, graceful=graceful, op_id=op_id),
    )
    return accepted(op)


async def change_vnf_flavour(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, ChangeVnfFlavourRequest)
    await instantiated(deps, vnf_id)
    wanted = body.additionalParams
    flavour = ComputeFlavour(wanted.vcpus, wanted.ramMb, wanted.diskGb, body.newFlavourId)
    vnfm = deps.vnfm
    op_id = str(uuid.uuid4())
    op = await LcmTasks(deps).start(
        vnf_id,
        op_id,
        lambda: vnfm.change_flavour(vnf_id, wanted.vduId, flavour, op_id=op_id),
    )
    return accepted(op)


async def change_vnf_package(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    vnf_id = request.match_info["vnfInstanceId"]
    body = await read_body(request, ChangeCurrentVnfPkgRequest)
    vnf = await instantiated(deps, vnf_id)
    if body.vnfdId != vnf.vnfd_id:
        raise unprocessable(
            f"VNF instance {vnf_id} runs VNFD {vnf.vnfd_id}, not {body.vnfdId}: "
            "a package change moves to another version of the same VNFD"
        )
    try:
        entry = await deps.catalogue.entry("vnfd", vnf.vnfd_id, body.additionalParams.vnfdVersion)
    except NotFound as exc:
        raise unprocessable(str(exc)) from None
    vnfm = deps.vnfm
    op_id = str(uuid.uuid4())
    op = await LcmTasks(deps).start(
        vnf_id, op_id, lambda: vnfm.change_package(vnf_id, entry.version, op_id=op_id)
    )
    return accepted(op)


_TASK = f"{INSTANCES}/{{vnfInstanceId}}"

ROUTES = [
    Route("POST", f"{_TASK}/scale_to_level", scale_vnf_to_level, Role.OPERATOR,
          "Bring a VNF instance to an instantiation level, or each named aspect to a level.",
          "vnflcm", "scaleVnfToLevel", body=ScaleVnfToLevelRequest, params=[VNF_ID],
          replies=TASK_REPLIES),
    Route("POST", f"{_TASK}/operate", operate_vnf, Role.OPERATOR,
          "Stop or start a VNF instance's servers.", "vnflcm", "operateVnf",
          body=OperateVnfRequest, params=[VNF_ID], replies=TASK_REPLIES),
    Route("POST", f"{_TASK}/change_flavour", change_vnf_flavour, Role.OPERATOR,
          "Resize the VNFCs of one VDU, one at a time, each health-checked.", "vnflcm",
          "changeVnfFlavour", body=ChangeVnfFlavourRequest, params=[VNF_ID],
          replies=TASK_REPLIES),
    Route("POST", f"{_TASK}/change_vnfpkg", change_vnf_package, Role.OPERATOR,
          "Move a VNF instance to another version of its VNFD (a rolling image change).",
          "vnflcm", "changeCurrentVnfPkg", body=ChangeCurrentVnfPkgRequest, params=[VNF_ID],
          replies=TASK_REPLIES),
]  # fmt: skip
