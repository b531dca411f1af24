"""Assurance: ``/api/v1/`` ``violations``, ``decisions`` and ``hosts`` (policies:
:mod:`assure.api.policies`).

- violations: the open ones (the API's view, :mod:`assure.api.views`) or the
  most recent events of the violations stream, with their evidence.
- decisions: the newest decisions with their whole episode from the audit
  trail (every guard and verdict, the operation, how it ended, whether the
  KPI recovered).
- hosts: the compute hosts of the VIMs this process drives, else the hosts
  the inventory's VNFCs run on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from aiohttp import web

from assure.api.problems import bad_request, not_found
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS
from assure.api.tokens import Role
from assure.api.views import open_violations
from bus.contracts import Violation, decode, to_builtins
from bus.streams import FIELD
from policy.audit import AuditTrail

_OBJECTS = {"type": "array", "items": {"type": "object"}}
_PROBLEM = Reply("No such resource, or a bad request.",
                 {"$ref": "#/components/schemas/ProblemDetails"},
                 media_type="application/problem+json")  # fmt: skip


def _limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise bad_request("limit must be an integer between 1 and 1000")
    return int(raw)


# --- violations, decisions, hosts -------------------------------------------
async def list_violations(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    state = request.query.get("state", "open")
    limit = _limit(request)
    if state == "open":
        found = (await open_violations(deps.redis, deps.keys))[-limit:]
    elif state == "recent":
        entries = await deps.redis.xrevrange(deps.keys.stream("violations"), count=limit)
        messages = [decode(fields[FIELD]) for _, fields in entries if FIELD in fields]
        found = [m for m in messages if isinstance(m, Violation)]
    else:
        raise bad_request(f"state must be open or recent, not {state!r}")
    return web.json_response([to_builtins(v) for v in found])


def _decision_doc(decision_id: str, record: Any) -> dict[str, Any]:
    doc = msgspec.to_builtins(record)
    assert isinstance(doc, dict)
    return {"decisionId": decision_id, **doc}


async def list_decisions(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    trail = AuditTrail(deps.redis, deps.keys, deps.clock)
    recent = await trail.recent(_limit(request))
    return web.json_response([_decision_doc(d, r) for d, r in recent])


async def show_decision(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    decision_id = request.match_info["decisionId"]
    record = await AuditTrail(deps.redis, deps.keys, deps.clock).episode_of(decision_id)
    if record is None:
        raise not_found(f"no decision {decision_id} in the audit trail")
    return web.json_response(_decision_doc(decision_id, record))


async def list_hosts(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    hosts: list[dict[str, Any]] = []
    for vim in deps.vims:
        for host in await vim.list_hosts():
            doc = dataclasses.asdict(host)
            doc["vim"] = vim.name
            hosts.append(msgspec.to_builtins(doc))
    if not deps.vims:
        names = sorted({c.host for v in await deps.inventory.list() for c in v.vnfcs if c.host})
        hosts = [{"name": name} for name in names]
    return web.json_response(hosts)


_LIMIT = Param("limit", "query", "At most this many (1-1000, default 50).",
               {"type": "integer", "minimum": 1, "maximum": 1000})  # fmt: skip

ROUTES = [
    Route("GET", "/api/v1/violations", list_violations, Role.VIEWER,
          "Open violations (state=open) or the latest events (state=recent), with evidence.",
          "assurance", "listViolations",
          params=[Param("state", "query", "open (default) or recent.",
                        {"type": "string", "enum": ["open", "recent"]}), _LIMIT],
          replies={200: Reply("The violations.", _OBJECTS)}),
    Route("GET", "/api/v1/decisions", list_decisions, Role.VIEWER,
          "The newest decisions, each with its episode: guards, verdicts, operation, result.",
          "assurance", "listDecisions", params=[_LIMIT],
          replies={200: Reply("The decisions, newest first.", _OBJECTS)}),
    Route("GET", "/api/v1/decisions/{decisionId}", show_decision, Role.VIEWER,
          "One decision and its whole episode.", "assurance", "showDecision",
          params=[Param("decisionId", "path", "The decision's id.")],
          replies={200: Reply("The decision.", {"type": "object"}), 404: _PROBLEM}),
    Route("GET", "/api/v1/hosts", list_hosts, Role.VIEWER,
          "Compute hosts: state, capacity and use, where this process drives the VIM.",
          "assurance", "listHosts", replies={200: Reply("The hosts.", _OBJECTS)}),
]  # fmt: skip
