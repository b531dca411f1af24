"""Assurance: ``/api/v1/`` ``policies``, ``violations``, ``decisions`` and ``hosts``.

- policies: the policies this server loaded, each with its effective mode
  (an operator's override, else the file's); ``validate`` checks a policy
  file's text; ``mode`` sets or clears the override, which every policy
  worker reads (``keys.policy_modes()``).
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
from pydantic import BaseModel, ConfigDict

from assure.api.body import read_body
from assure.api.problems import Problem, bad_request, not_found
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from assure.api.views import open_violations
from bus.contracts import Violation, decode, to_builtins
from bus.redis import reply_text
from bus.streams import FIELD
from policy.audit import AuditTrail
from policy.loader import parse_text
from policy.schema import KpiPolicy
from policy.store import MODES

_OBJECTS = {"type": "array", "items": {"type": "object"}}
_PROBLEM = Reply("No such resource, or a bad request.",
                 {"$ref": "#/components/schemas/ProblemDetails"},
                 media_type="application/problem+json")  # fmt: skip


def _limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise bad_request("limit must be an integer between 1 and 1000")
    return int(raw)


# --- policies ----------------------------------------------------------------
async def _mode_of(deps: ApiDeps, policy: KpiPolicy) -> str:
    override = reply_text(await deps.redis.hget(deps.keys.policy_modes(), policy.name))
    return override if override in MODES else policy.spec.mode


async def _policy_doc(deps: ApiDeps, policy: KpiPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "vnfd": policy.vnfd,
        "description": policy.metadata.description,
        "mode": await _mode_of(deps, policy),
        "policy": policy.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _policy(deps: ApiDeps, name: str) -> KpiPolicy:
    found = next((p for p in deps.policies if p.name == name), None)
    if found is None:
        raise not_found(f"no policy {name!r} is loaded")
    return found


async def list_policies(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    return web.json_response([await _policy_doc(deps, p) for p in deps.policies])


async def show_policy(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    return web.json_response(await _policy_doc(deps, _policy(deps, request.match_info["name"])))


async def validate_policies(request: web.Request) -> web.Response:
    if request.content_type not in ("application/yaml", "text/yaml", "text/plain"):
        raise Problem(415, "send the policy file's text as application/yaml")
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the policy file is not UTF-8 text") from None
    parsed = parse_text(text, "request")
    problems = [{"place": p.place, "line": p.line, "message": p.message} for p in parsed.problems]
    names = [policy.name for policy, _ in parsed.policies] if not problems else []
    return web.json_response({"valid": not problems, "policies": names, "problems": problems})


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mode: str

    def checked(self) -> str:
        if self.mode not in MODES:
            raise bad_request(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        return self.mode


async def set_policy_mode(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    policy = _policy(deps, request.match_info["name"])
    mode = (await read_body(request, ModeRequest)).checked()
    await deps.redis.hset(deps.keys.policy_modes(), policy.name, mode)
    return web.json_response(await _policy_doc(deps, policy))


async def clear_policy_mode(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    policy = _policy(deps, request.match_info["name"])
    await deps.redis.hdel(deps.keys.policy_modes(), policy.name)
    return web.json_response(await _policy_doc(deps, policy))


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


_NAME = Param("name", "path", "The policy's name.")
_MODE_BODY = {
    "type": "object",
    "required": ["mode"],
    "additionalProperties": False,
    "properties": {"mode": {"type": "string", "enum": list(MODES)}},
}
_VALIDATION = {
    "type": "object",
    "required": ["valid", "policies", "problems"],
    "properties": {
        "valid": {"type": "boolean"},
        "policies": {"type": "array", "items": {"type": "string"}},
        "problems": {"type": "array", "items": {"type": "object"}},
    },
}
_LIMIT = Param("limit", "query", "At most this many (1-1000, default 50).",
               {"type": "integer", "minimum": 1, "maximum": 1000})  # fmt: skip

ROUTES = [
    Route("GET", "/api/v1/policies", list_policies, Role.VIEWER,
          "The loaded KPI policies, each with its effective mode.", "policies", "listPolicies",
          replies={200: Reply("The policies.", _OBJECTS)}),
    Route("POST", "/api/v1/policies/validate", validate_policies, Role.VIEWER,
          "Check a policy file (YAML text); every problem with its place and line.", "policies",
          "validatePolicies", body={"type": "string"},
          body_media_types=("application/yaml",),
          replies={200: Reply("Whether it is valid, and its problems.", _VALIDATION)}),
    Route("GET", "/api/v1/policies/{name}", show_policy, Role.VIEWER, "One loaded policy.",
          "policies", "showPolicy", params=[_NAME],
          replies={200: Reply("The policy.", {"type": "object"}), 404: _PROBLEM}),
    Route("PUT", "/api/v1/policies/{name}/mode", set_policy_mode, Role.OPERATOR,
          "Set a policy's mode (enforce, approve, dry_run, disabled) over its file's.",
          "policies", "setPolicyMode", params=[_NAME], body=_MODE_BODY,
          replies={200: Reply("The policy, with its new mode.", {"type": "object"}),
                   404: _PROBLEM}),
    Route("DELETE", "/api/v1/policies/{name}/mode", clear_policy_mode, Role.OPERATOR,
          "Drop the operator's mode: the file's mode applies again.", "policies",
          "clearPolicyMode", params=[_NAME],
          replies={200: Reply("The policy, with its file's mode.", {"type": "object"}),
                   404: _PROBLEM}),
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
