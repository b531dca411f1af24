"""The push receivers of :mod:`collector.push`, mounted on the server as routes.

``POST /api/v1/push/remote_write`` takes Prometheus remote_write 1.0
(snappy protobuf), ``POST /api/v1/push/ves`` ONAP VES 7.x events. Both need
an operator token (bearer, or the password of basic auth, which
Prometheus's ``remote_write`` and VES agents can send) and are bounded by
``api.body_limit`` like every request; a refused push is a problem document
with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from assure.api.problems import PROBLEM_JSON, Problem
from assure.api.routing import Handler, Reply, Route, RouteSet
from assure.api.tokens import Role
from collector.push.errors import PushError

REMOTE_WRITE_PATH = "/api/v1/push/remote_write"
VES_PATH = "/api/v1/push/ves"

_PROBLEM = Reply(
    "The push was refused; the detail says why.",
    {"$ref": "#/components/schemas/ProblemDetails"},
    media_type=PROBLEM_JSON,
)


def _answering(handle: Callable[[web.Request], Awaitable[web.Response]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await handle(request)
        except PushError as exc:
            raise Problem(exc.status, exc.detail) from None

    return handler


def push_routes(
    remote_write: Callable[[web.Request], Awaitable[web.Response]] | None = None,
    ves: Callable[[web.Request], Awaitable[web.Response]] | None = None,
) -> RouteSet:
    """The routes of the receivers given."""
    routes: list[Route] = []
    if remote_write is not None:
        routes.append(Route(
            "POST", REMOTE_WRITE_PATH, _answering(remote_write), Role.OPERATOR,
            "Prometheus remote_write 1.0: snappy-compressed protobuf WriteRequest.",
            "push", "remoteWrite", body_media_types=("application/x-protobuf",),
            basic_auth=True,
            replies={204: Reply("The samples are taken."), 400: _PROBLEM, 413: _PROBLEM,
                     415: _PROBLEM},
        ))  # fmt: skip
    if ves is not None:
        routes.append(Route(
            "POST", VES_PATH, _answering(ves), Role.OPERATOR,
            "ONAP VES 7.x events (one event or an eventList): measurements become "
            "samples, faults violations.",
            "push", "vesEvents", basic_auth=True,
            replies={202: Reply("The events are taken."), 400: _PROBLEM, 413: _PROBLEM},
        ))  # fmt: skip
    return routes
