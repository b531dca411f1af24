"""SOL003 operation occurrences: ``/vnflcm/v2/vnf_lcm_op_occs`` and the operator's actions on one.

An occurrence is listed (with filters) and shown whoever started it, the
closed loop or a REST client. A FAILED_TEMP one can be retried (resumed
where it stands), rolled back (its partial work undone) or failed (given
up, things left as they stand); a running one (STARTING, PROCESSING,
ROLLING_BACK) can be cancelled: the worker running it stops at its next
step and it goes FAILED_TEMP, as SOL003's GRACEFUL cancel does. Retry and
rollback run under the VNF's lease, as every lifecycle task of the API,
and answer 202 with the occurrence's ``Location``; an action the
occurrence's state forbids is 409.
"""

from __future__ import annotations

from aiohttp import web

from assure.api.body import read_body
from assure.api.lcm_replies import (
    ACCEPTED,
    CONFLICT,
    NOT_FOUND,
    OP_ID,
    OP_OCCS,
    TASK_REPLIES,
    accepted,
    json_record,
)
from assure.api.lcm_tasks import LcmTasks
from assure.api.problems import Problem, conflict, not_found, unprocessable
from assure.api.routing import Param, Reply, Route
from assure.api.sol003 import CancelModeRequest, VnfLcmOpOccRecord, dump, op_occ_record
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from bus.contracts import OpState
from mano_core.errors import InvalidRequest, NotFound
from mano_core.lcm import RUNNING
from mano_core.models import LcmOperation, LcmOpOcc


async def _find_op(deps: ApiDeps, op_id: str) -> LcmOpOcc:
    try:
        return await deps.ops.locate(op_id)
    except NotFound:
        raise not_found(f"no VNF LCM operation occurrence {op_id}") from None


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
    return json_record(op_occ_record(op))


async def _failed_temp(request: web.Request, action: str) -> LcmOpOcc:
    op = await _find_op(request.app[DEPS], request.match_info["vnfLcmOpOccId"])
    if op.state is not OpState.FAILED_TEMP:
        raise conflict(f"operation {op.id} is {op.state}: only FAILED_TEMP can be {action}")
    return op


async def retry_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op = await _failed_temp(request, "retried")
    vnfm = deps.vnfm
    # Every kind of operation resumes from its stored parameters alone.
    started = await LcmTasks(deps).start(op.vnf_id, op.id, lambda: vnfm.retry(op.id), moving=op)
    return accepted(started)


async def rollback_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op = await _failed_temp(request, "rolled back")
    vnfm = deps.vnfm
    started = await LcmTasks(deps).start(op.vnf_id, op.id, lambda: vnfm.rollback(op.id), moving=op)
    return accepted(started)


async def fail_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    op = await _failed_temp(request, "failed")
    failed = await deps.ops.transition(
        op, OpState.FAILED, detail="failed by request", error=op.error or "failed by request"
    )
    return json_record(op_occ_record(failed))


async def cancel_op_occ(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, CancelModeRequest)
    op = await _find_op(deps, request.match_info["vnfLcmOpOccId"])
    if op.state not in RUNNING:
        raise conflict(f"operation {op.id} is {op.state}: only a running one can be cancelled")
    if body.cancelMode == "FORCEFUL":
        raise unprocessable(
            "cancelMode FORCEFUL is not supported: a VIM call under way is not interrupted; "
            "GRACEFUL stops the operation at its next step"
        )
    try:
        cancelled = await deps.vnfm.cancel(op.id)
    except InvalidRequest as exc:  # it ended meanwhile
        raise conflict(str(exc)) from None
    return accepted(cancelled)


_OP_OCCS = {"type": "array", "items": {"$ref": "#/components/schemas/VnfLcmOpOccRecord"}}
_QUERY = [
    Param("vnfInstanceId", "query", "Only this VNF instance's operations."),
    Param("operation", "query", "Only this operation (INSTANTIATE, SCALE, HEAL, ...)."),
    Param("operationState", "query", "Only operations in this state."),
    Param("limit", "query", "At most this many (1-1000, default 100), newest first.",
          {"type": "integer", "minimum": 1, "maximum": 1000}),
]  # fmt: skip
_O = OP_OCCS

ROUTES = [
    Route("GET", _O, list_op_occs, Role.VIEWER, "List VNF LCM operation occurrences.",
          "vnflcm", "listVnfLcmOpOccs", params=_QUERY,
          replies={200: Reply("The occurrences, newest first.", _OP_OCCS)}),
    Route("GET", f"{_O}/{{vnfLcmOpOccId}}", show_op_occ, Role.VIEWER,
          "Show an operation occurrence.", "vnflcm", "showVnfLcmOpOcc", params=[OP_ID],
          replies={200: Reply("The occurrence.", VnfLcmOpOccRecord), 404: NOT_FOUND}),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/retry", retry_op_occ, Role.OPERATOR,
          "Retry a FAILED_TEMP operation.", "vnflcm", "retryVnfLcmOpOcc", params=[OP_ID],
          replies=TASK_REPLIES),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/rollback", rollback_op_occ, Role.OPERATOR,
          "Undo what a FAILED_TEMP operation did (ROLLED_BACK once undone).", "vnflcm",
          "rollbackVnfLcmOpOcc", params=[OP_ID], replies=TASK_REPLIES),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/fail", fail_op_occ, Role.OPERATOR,
          "Give up a FAILED_TEMP operation (FAILED).", "vnflcm", "failVnfLcmOpOcc",
          params=[OP_ID],
          replies={200: Reply("Now FAILED.", VnfLcmOpOccRecord), 404: NOT_FOUND,
                   409: CONFLICT}),
    Route("POST", f"{_O}/{{vnfLcmOpOccId}}/cancel", cancel_op_occ, Role.OPERATOR,
          "Cancel a running operation: it stops at its next step (FAILED_TEMP).", "vnflcm",
          "cancelVnfLcmOpOcc", body=CancelModeRequest, params=[OP_ID],
          replies={202: ACCEPTED, 404: NOT_FOUND, 409: CONFLICT,
                   422: Reply("A cancel mode that is not supported.",
                              {"$ref": "#/components/schemas/ProblemDetails"},
                              media_type="application/problem+json")}),
]  # fmt: skip
