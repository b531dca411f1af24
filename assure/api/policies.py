"""KPI policies: ``/api/v1/policies``: list, show, validate, replace, and the operator's mode.

- list and show: the policies in force (:mod:`assure.api.policies_in_force`:
  the directory's, as replaced), each with its effective mode (an
  operator's override, else the policy's own) and whether it is replaced.
- validate: checks a policy file's text, every problem at its
  ``LINE:COL`` and place, as loading a file does.
- replace (``PUT /api/v1/policies/{name}``, YAML text of one KpiPolicy
  document named ``name``): validated as a file is, then stored in Redis;
  each policy worker (and the analytics stage) takes it up on its next hot
  reload (``policy.reload_interval``), as it takes up a changed file, and
  keeps it over restarts. Dropping the replacement brings the file's back.
- mode: sets or clears the override, which every policy worker reads on
  each decision (``keys.policy_modes()``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from assure.api.body import read_body
from assure.api.policies_in_force import IN_FORCE, InForce
from assure.api.problems import Problem, bad_request, conflict, not_found, unprocessable
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from bus.problems import Problem as FileProblem
from bus.redis import reply_text
from policy.loader import parse_text
from policy.replacements import PolicyReplacements, check_replacement
from policy.schema import KpiPolicy
from policy.store import MODES

YAML_TYPES = ("application/yaml", "text/yaml", "text/plain")
SOURCE = "request"
"""The file name of the problems of a request's YAML text."""


async def _mode_of(deps: ApiDeps, policy: KpiPolicy) -> str:
    override = reply_text(await deps.redis.hget(deps.keys.policy_modes(), policy.name))
    return override if override in MODES else policy.spec.mode


async def _in_force(request: web.Request) -> InForce:
    return await request.app[IN_FORCE].current()


async def _doc(deps: ApiDeps, policy: KpiPolicy, replaced: bool) -> dict[str, Any]:
    return {
        "name": policy.name,
        "vnfd": policy.vnfd,
        "description": policy.metadata.description,
        "mode": await _mode_of(deps, policy),
        "replaced": replaced,
        "policy": policy.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


async def _one(request: web.Request, name: str) -> dict[str, Any]:
    in_force = await _in_force(request)
    found = next((p for p in in_force.policies if p.name == name), None)
    if found is None:
        raise not_found(f"no policy {name!r} is in force")
    return await _doc(request.app[DEPS], found, name in in_force.replaced)


async def _loaded(request: web.Request, name: str) -> KpiPolicy:
    found = next((p for p in (await _in_force(request)).policies if p.name == name), None)
    if found is None:
        raise not_found(f"no policy {name!r} is in force")
    return found


async def list_policies(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    in_force = await _in_force(request)
    docs = [await _doc(deps, p, p.name in in_force.replaced) for p in in_force.policies]
    return web.json_response(docs)


async def show_policy(request: web.Request) -> web.Response:
    return web.json_response(await _one(request, request.match_info["name"]))


async def _yaml_text(request: web.Request) -> str:
    if request.content_type not in YAML_TYPES:
        raise Problem(415, "send the policy file's text as application/yaml")
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the policy file is not UTF-8 text") from None


def _problem_doc(problem: FileProblem) -> dict[str, Any]:
    return {"place": problem.place, "line": problem.line, "column": problem.column,
            "message": problem.message, "text": problem.format()}  # fmt: skip


async def validate_policies(request: web.Request) -> web.Response:
    parsed = parse_text(await _yaml_text(request), SOURCE)
    problems = [_problem_doc(p) for p in parsed.problems]
    names = [policy.name for policy, _ in parsed.policies] if not problems else []
    return web.json_response({"valid": not problems, "policies": names, "problems": problems})


async def replace_policy(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    name = request.match_info["name"]
    await _loaded(request, name)
    if not deps.policies_reload:
        raise conflict(
            "hot reload of policies is off (policy.reload_interval is 0): a replacement "
            "would not take effect; change the policy file and restart"
        )
    text = await _yaml_text(request)
    _, problems = check_replacement(name, text, SOURCE)
    if problems:
        errors = [
            {"place": p.place, "problem": p.message, "line": p.line, "column": p.column}
            for p in problems
        ]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise unprocessable(f"invalid policy: {problems[0].format()}{more}", errors)
    await PolicyReplacements(deps.redis, deps.keys).put(name, text)
    request.app[IN_FORCE].changed()
    return web.json_response(await _one(request, name))


async def drop_replacement(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    name = request.match_info["name"]
    await _loaded(request, name)
    if not await PolicyReplacements(deps.redis, deps.keys).drop(name):
        raise not_found(f"policy {name!r} is not replaced")
    request.app[IN_FORCE].changed()
    return web.json_response(await _one(request, name))


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mode: str

    def checked(self) -> str:
        if self.mode not in MODES:
            raise bad_request(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        return self.mode


async def set_policy_mode(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    policy = await _loaded(request, request.match_info["name"])
    mode = (await read_body(request, ModeRequest)).checked()
    await deps.redis.hset(deps.keys.policy_modes(), policy.name, mode)
    return web.json_response(await _one(request, policy.name))


async def clear_policy_mode(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    policy = await _loaded(request, request.match_info["name"])
    await deps.redis.hdel(deps.keys.policy_modes(), policy.name)
    return web.json_response(await _one(request, policy.name))


_OBJECTS = {"type": "array", "items": {"type": "object"}}
_PROBLEM = Reply("No such policy, or a bad request.",
                 {"$ref": "#/components/schemas/ProblemDetails"},
                 media_type="application/problem+json")  # fmt: skip
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
_POLICY = Reply("The policy as in force, with its mode.", {"type": "object"})
_P = "/api/v1/policies"

ROUTES = [
    Route("GET", _P, list_policies, Role.VIEWER,
          "The loaded KPI policies as replaced, each with its effective mode.", "policies",
          "listPolicies", replies={200: Reply("The policies.", _OBJECTS)}),
    Route("POST", f"{_P}/validate", validate_policies, Role.VIEWER,
          "Check a policy file (YAML text); every problem with its place, line and column.",
          "policies", "validatePolicies", body={"type": "string"},
          body_media_types=("application/yaml",),
          replies={200: Reply("Whether it is valid, and its problems.", _VALIDATION)}),
    Route("GET", f"{_P}/{{name}}", show_policy, Role.VIEWER, "One loaded policy, as in force.",
          "policies", "showPolicy", params=[_NAME], replies={200: _POLICY, 404: _PROBLEM}),
    Route("PUT", f"{_P}/{{name}}", replace_policy, Role.OPERATOR,
          "Replace a policy with the YAML text of one KpiPolicy document of the same name; "
          "validated as a file, in force at the workers' next hot reload.", "policies",
          "replacePolicy", params=[_NAME], body={"type": "string"},
          body_media_types=("application/yaml",),
          replies={200: _POLICY, 404: _PROBLEM,
                   409: Reply("Hot reload is off: a replacement would not take effect.",
                              {"$ref": "#/components/schemas/ProblemDetails"},
                              media_type="application/problem+json"),
                   422: Reply("The policy is invalid: every problem at its line and place.",
                              {"$ref": "#/components/schemas/ProblemDetails"},
                              media_type="application/problem+json")}),
    Route("DELETE", f"{_P}/{{name}}/replacement", drop_replacement, Role.OPERATOR,
          "Drop a policy's replacement: its file's version is in force again.", "policies",
          "dropPolicyReplacement", params=[_NAME], replies={200: _POLICY, 404: _PROBLEM}),
    Route("PUT", f"{_P}/{{name}}/mode", set_policy_mode, Role.OPERATOR,
          "Set a policy's mode (enforce, approve, dry_run, disabled) over its own.",
          "policies", "setPolicyMode", params=[_NAME], body=_MODE_BODY,
          replies={200: Reply("The policy, with its new mode.", {"type": "object"}),
                   404: _PROBLEM}),
    Route("DELETE", f"{_P}/{{name}}/mode", clear_policy_mode, Role.OPERATOR,
          "Drop the operator's mode: the policy's own mode applies again.", "policies",
          "clearPolicyMode", params=[_NAME],
          replies={200: Reply("The policy, with its own mode.", {"type": "object"}),
                   404: _PROBLEM}),
]  # fmt: skip
