"""The OpenAPI 3.1 document, generated from the route table (``/api/v1/openapi.json``).

Each documented :class:`~assure.api.routing.Route` becomes one operation:
its parameters, its request body's schema (from its pydantic model), its
replies, and the problem documents every route can answer (401/403 where a
token is needed, 400/413/415 where a body is read, and a ``default`` for
the rest), so that every status the server sends is in the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from assure.api.routing import Reply, Route, Schema
from assure.api.state import ROUTE_OF

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "ETSI SOL013 ProblemDetails (RFC 9457).",
    "required": ["status", "title", "detail"],
    "properties": {
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per place of the request body that is wrong.",
            "items": {
                "type": "object",
                "required": ["place", "problem"],
                "properties": {
                    "place": {"type": "string"},
                    "problem": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "column": {"type": ["integer", "null"]},
                },
            },
        },
    },
}

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"ProblemDetails": PROBLEM_SCHEMA}

    def schema(self, schema: Schema) -> dict[str, Any]:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            doc = schema.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            self.schemas.update(doc.pop("$defs", {}))
            self.schemas[schema.__name__] = doc
            return {"$ref": f"#/components/schemas/{schema.__name__}"}
        return dict(schema)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
    }


def _reply(reply: Reply, components: _Components) -> dict[str, Any]:
    doc: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        doc["content"] = {reply.media_type: {"schema": components.schema(reply.schema)}}
    if reply.headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers.items()
        }
    return doc


def _operation(route: Route, components: _Components) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "description": p.description,
                "required": p.required or p.where == "path",
                "schema": dict(p.schema),
            }
            for p in route.params
        ]
    responses: dict[str, Any] = {
        str(status): _reply(reply, components) for status, reply in route.replies.items()
    }
    if route.body is not None:
        schema = components.schema(route.body)
        op["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media in route.body_media_types},
        }
        responses.setdefault("400", _problem("The body is malformed or invalid."))
        responses.setdefault("413", _problem("The body is larger than the limit."))
        responses.setdefault("415", _problem("The body is not JSON."))
    if route.role is not None:
        op["security"] = [{"bearer": []}, *([{"basic": []}] if route.basic_auth else [])]
        op["description"] = f"Needs a token of role {route.role.value} or above."
        responses.setdefault("401", _problem("No token, or not a valid one."))
        responses.setdefault("403", _problem("The token's role may not do this."))
    responses.setdefault("default", _problem("Any other error."))
    op["responses"] = responses
    return op


def openapi_document(routes: Iterable[Route], *, version: str) -> dict[str, Any]:
    """The document of ``routes`` (those marked ``documented``)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.documented:
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nfv-assure",
            "version": version,
            "description": "Closed-loop assurance for NFV MANO: lifecycle operations shaped "
            "as ETSI SOL003/SOL005, policies, violations, decisions, the Alertmanager webhook.",
        },
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The token as the password (Alertmanager http_config).",
                },
            },
        },
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("nfv-assure")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


async def openapi_json(request: web.Request) -> web.Response:
    routes = request.app[ROUTE_OF].values()
    return web.json_response(openapi_document(routes, version=_version()))
