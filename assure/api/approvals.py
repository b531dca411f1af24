"""``POST /api/v1/decisions/{id}/approval``: an operator approves or rejects a decision.

A decision of a policy in mode ``approve`` waits for this answer (or for its
approval timeout, then its default). The answer is recorded and the VNF's
loop woken (:meth:`policy.control.LoopControl.answer`), so the decision runs,
or ends rejected, at the policy workers' next look. The caller's token
names who answered.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from assure.api.body import read_body
from assure.api.problems import conflict, not_found
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS, PRINCIPAL
from assure.api.tokens import Role
from policy.control import ControlError, LoopControl


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Literal["approve", "reject"]


class ApprovalReply(BaseModel):
    decision: str
    answer: str
    by: str
    policy: str
    vnf: str


async def answer_decision(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    body = await read_body(request, ApprovalRequest)
    decision_id = request.match_info["decision_id"]
    principal = request.get(PRINCIPAL)
    by = principal.name if principal is not None and principal.name else "operator"
    control = LoopControl(deps.redis, deps.keys, deps.clock)
    try:
        done = await control.answer(decision_id, body.answer, by)
    except ControlError as exc:
        if str(exc).startswith("no decision"):
            raise not_found(str(exc)) from None
        raise conflict(str(exc)) from None
    reply = ApprovalReply(
        decision=done.decision_id, answer=done.answer, by=done.by, policy=done.policy, vnf=done.vnf
    )
    return web.json_response(reply.model_dump())


_PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}

ROUTES = [
    Route(
        "POST", "/api/v1/decisions/{decision_id}/approval", answer_decision, Role.OPERATOR,
        "Approve or reject a decision waiting for approval (a policy in mode approve).",
        "decisions", "answerDecision", body=ApprovalRequest,
        params=[Param("decision_id", "path", "The decision's id.", required=True)],
        replies={
            200: Reply("The answer is recorded; the policy workers act on it.", ApprovalReply),
            404: Reply("No such decision.", _PROBLEM, media_type="application/problem+json"),
            409: Reply("The decision does not wait for approval.", _PROBLEM,
                       media_type="application/problem+json"),
        },
    ),
]  # fmt: skip
