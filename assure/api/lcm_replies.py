"""How the SOL003 routes answer: the replies they share, as responses and as documentation."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from assure.api.routing import Param, Reply
from assure.api.sol003 import VNFLCM, dump
from mano_core.models import LcmOpOcc

INSTANCES = f"{VNFLCM}/vnf_instances"
OP_OCCS = f"{VNFLCM}/vnf_lcm_op_occs"

VNF_ID = Param("vnfInstanceId", "path", "The VNF instance's id.")
OP_ID = Param("vnfLcmOpOccId", "path", "The operation occurrence's id.")

_PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
ACCEPTED = Reply(
    "Started: follow the operation occurrence.",
    headers={"Location": "The operation occurrence (vnf_lcm_op_occs/{id})."},
)
CONFLICT = Reply(
    "The instance's or occurrence's state forbids it, or another operation runs on the instance.",
    _PROBLEM,
    media_type="application/problem+json",
)
NOT_FOUND = Reply("No such resource.", _PROBLEM, media_type="application/problem+json")
INVALID = Reply("The request cannot be done (unknown aspect, VNFC, level, VNFD, version).",
                _PROBLEM, media_type="application/problem+json")  # fmt: skip
TASK_REPLIES = {202: ACCEPTED, 404: NOT_FOUND, 409: CONFLICT, 422: INVALID}
"""What a task resource (``vnf_instances/{id}/...``) answers."""


def json_record(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    """A SOL003 record as the JSON body."""
    return web.json_response(dump(model), status=status, headers=headers)


def accepted(op: LcmOpOcc) -> web.Response:
    """SOL003's answer to a task: 202, ``Location`` the operation occurrence."""
    return web.Response(status=202, headers={"Location": f"{OP_OCCS}/{op.id}"})
