"""The route table's rows: what a route does, who may call it, and how it is documented.

Every route of the server is one :class:`Route`. The application factory
registers them with aiohttp, the auth middleware reads the role each one
needs, the timeout middleware spares the streaming ones, and the OpenAPI
document (:mod:`assure.api.openapi`) is generated from the same rows, so
the document cannot drift from what the server does.

Other packages contribute routes as rows too: a push receiver written as a
plain aiohttp handler becomes a ``Route`` in the wiring that mounts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from assure.api.tokens import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = type[BaseModel] | Mapping[str, Any]
"""A pydantic model, or a JSON Schema written out."""


@dataclass(frozen=True)
class Reply:
    """One documented answer of a route."""

    description: str
    schema: Schema | None = None
    """The body's schema (``application/json``); None: no JSON body."""
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response header name -> description (e.g. ``Location``)."""


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str
    """``path`` or ``query``."""
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One route: method, path, handler, the role it needs and its documentation."""

    method: str
    path: str
    handler: Handler
    role: Role | None
    """The least role a token needs; None: open to anyone (health, metrics)."""
    summary: str
    tag: str
    operation_id: str
    body: Schema | None = None
    """The JSON request body's schema; None: the route takes no body."""
    body_media_types: Sequence[str] = ("application/json",)
    replies: Mapping[int, Reply] = field(default_factory=dict)
    params: Sequence[Param] = ()
    streaming: bool = False
    """A long-lived response (server-sent events): no request timeout."""
    basic_auth: bool = False
    """Also accepts the token as the password of HTTP basic auth (Alertmanager)."""
    documented: bool = True
    """Listed in the OpenAPI document (the dashboard's page is not)."""


RouteSet = Sequence[Route]
