"""Descriptors: ``/api/v1/vnfds`` and ``/api/v1/nsds`` (onboard, list, show, delete).

Onboarding takes the descriptor's YAML text and runs the same checks as
``nfv-assure vnfd onboard`` (:mod:`mano_core.onboarding`): a refused one is
422 with every problem's place and line, and nothing is stored. A version,
once onboarded, is immutable (other content under it is 409); a descriptor
in use (a VNF instance runs it, an NSD names it) cannot be deleted (409).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from assure.api.problems import Problem, bad_request, conflict, not_found
from assure.api.routing import Param, Reply, Route
from assure.api.state import DEPS
from assure.api.tokens import Role
from mano_core.catalogue import CatalogueEntry, Kind, VersionConflict
from mano_core.descriptor import DescriptorError
from mano_core.errors import NotFound
from mano_core.onboarding import InUse

_PLURAL: dict[Kind, str] = {"vnfd": "vnfds", "nsd": "nsds"}


def _entry_doc(entry: CatalogueEntry, *, full: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": entry.id,
        "version": entry.version,
        "acceptance": entry.acceptance,
        "onboardedAt": entry.onboarded_at,
    }
    if entry.reasons:
        doc["reasons"] = list(entry.reasons)
    if full:
        doc["descriptor"] = json.loads(entry.descriptor)
    return doc


def _handlers(kind: Kind) -> list[Route]:
    plural = _PLURAL[kind]

    async def listing(request: web.Request) -> web.Response:
        entries = await request.app[DEPS].catalogue.latest(kind)
        return web.json_response([_entry_doc(e) for e in entries])

    async def onboard(request: web.Request) -> web.Response:
        if request.content_type not in ("application/yaml", "text/yaml", "text/plain"):
            raise Problem(415, f"send the {kind.upper()} file's text as application/yaml")
        try:
            text = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request(f"the {kind.upper()} is not UTF-8 text") from None
        onboarding = request.app[DEPS].onboarding
        try:
            entry = await (onboarding.vnfd if kind == "vnfd" else onboarding.nsd)(text, "request")
        except DescriptorError as exc:
            errors = [{"place": p.place, "problem": f"line {p.line}: {p.message}"
                       if p.line else p.message} for p in exc.problems]  # fmt: skip
            raise Problem(422, f"the {kind.upper()} is not valid", errors=errors) from None
        except VersionConflict as exc:
            raise conflict(str(exc)) from None
        location = f"/api/v1/{plural}/{entry.id}"
        return web.json_response(_entry_doc(entry), status=201, headers={"Location": location})

    async def show(request: web.Request) -> web.Response:
        catalogue = request.app[DEPS].catalogue
        try:
            entry = await catalogue.entry(kind, request.match_info["id"],
                                          request.query.get("version"))  # fmt: skip
        except NotFound as exc:
            raise not_found(str(exc)) from None
        return web.json_response(_entry_doc(entry, full=True))

    async def delete(request: web.Request) -> web.Response:
        onboarding = request.app[DEPS].onboarding
        try:
            await onboarding.delete(kind, request.match_info["id"], request.query.get("version"))
        except NotFound as exc:
            raise not_found(str(exc)) from None
        except InUse as exc:
            raise conflict(str(exc)) from None
        return web.Response(status=204)

    name = kind.upper()
    path = f"/api/v1/{plural}"
    problem = Reply(
        "Refused; the detail says why.",
        {"$ref": "#/components/schemas/ProblemDetails"},
        media_type="application/problem+json",
    )
    entry = {"type": "object", "required": ["id", "version", "acceptance"]}
    params = [
        Param("id", "path", f"The {name}'s id."),
        Param("version", "query", "One version (default: the latest; delete: all)."),
    ]
    return [
        Route("GET", path, listing, Role.VIEWER, f"Onboarded {name}s (latest versions).",
              "descriptors", f"list{name.title()}s",
              replies={200: Reply("The entries.", {"type": "array", "items": entry})}),
        Route("POST", path, onboard, Role.OPERATOR, f"Onboard a {name} (its YAML text).",
              "descriptors", f"onboard{name.title()}", body={"type": "string"},
              body_media_types=("application/yaml",),
              replies={201: Reply("Onboarded.", entry, headers={"Location": "The entry."}),
                       409: problem, 422: problem}),
        Route("GET", f"{path}/{{id}}", show, Role.VIEWER, f"One onboarded {name}.",
              "descriptors", f"show{name.title()}", params=params,
              replies={200: Reply("The entry and its descriptor.", entry), 404: problem}),
        Route("DELETE", f"{path}/{{id}}", delete, Role.OPERATOR,
              f"Delete a {name} (one version, or all) that nothing uses.", "descriptors",
              f"delete{name.title()}", params=params,
              replies={204: Reply("Deleted."), 404: problem, 409: problem}),
    ]  # fmt: skip


ROUTES = [*_handlers("vnfd"), *_handlers("nsd")]
