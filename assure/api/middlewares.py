"""The middlewares every request passes, outermost first: errors, time limit, auth.

- :func:`problems`: whatever goes wrong becomes a problem document
  (:mod:`assure.api.problems`). aiohttp's own errors keep their status (404,
  405, 413 for a body over ``api.body_limit``). Redis unreachable is 503,
  so a client (Alertmanager) retries; anything else unexpected is logged
  with its traceback and answered 500 naming the request id the log names.
- :func:`time_limit`: a request not answered within ``api.request_timeout``
  gets 503; streaming routes (server-sent events) are exempt.
- :func:`authenticate`: every route that names a role needs a bearer token
  of that role or above (401 without a valid one, 403 with too low a role);
  a route marked ``basic_auth`` also takes the token as a basic-auth password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid

from aiohttp import web
from redis.exceptions import RedisError

from assure.api.problems import Problem
from assure.api.routing import Handler, Route
from assure.api.state import DEPS, PRINCIPAL, ROUTE_OF, route_key
from assure.api.tokens import TokenRecord
from bus.redis import is_transient

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nfv-assure"'}


def route_of(request: web.Request) -> Route | None:
    """The table row the request matched, if it matched one."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return request.app[ROUTE_OF].get(route_key(method, resource.canonical))


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        detail = _HTTP_DETAIL.get(exc.status, exc.reason)
        if exc.status == 413:
            limit = request.app[DEPS].settings.body_limit
            detail = f"the request body is larger than the limit of {limit} bytes"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return Problem(exc.status, detail, headers=headers).response()
    except RedisError as exc:
        if not is_transient(exc):
            return _internal(request, exc)
        log.warning("%s %s: Redis unavailable: %s", request.method, request.path, exc)
        return Problem(503, "the platform's Redis is unavailable; try again").response()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _internal(request, exc)


_HTTP_DETAIL = {
    404: "no such resource",
    405: "this resource does not support that method",
}


def _internal(request: web.Request, exc: BaseException) -> web.Response:
    request_id = uuid.uuid4().hex[:12]
    log.error("%s %s failed [request %s]", request.method, request.path, request_id, exc_info=exc)
    detail = f"the server failed to handle the request; its log names request {request_id}"
    return Problem(500, detail).response()


@web.middleware
async def time_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = route_of(request)
    if route is not None and route.streaming:
        return await handler(request)
    seconds = request.app[DEPS].settings.request_timeout
    try:
        async with asyncio.timeout(seconds):
            return await handler(request)
    except TimeoutError:
        raise Problem(503, f"the request was not answered within {seconds:g} s") from None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = route_of(request)
    if route is None or route.role is None:
        return await handler(request)
    token = _credential(request, route)
    if token is None:
        raise Problem(401, "this resource needs a token: 'Authorization: Bearer <token>'",
                      headers=_CHALLENGE)  # fmt: skip
    record = await request.app[DEPS].tokens.check(token)
    if record is None:
        raise Problem(401, "the token is not valid (unknown or revoked)", headers=_CHALLENGE)
    if not record.role.allows(route.role):
        raise Problem(
            403, f"a {record.role.value} token may not do this; it needs {route.role.value}"
        )
    request[PRINCIPAL] = record
    return await handler(request)


def _credential(request: web.Request, route: Route) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if route.basic_auth and scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep else None
    return None


def principal(request: web.Request) -> TokenRecord | None:
    """The token record the request was authenticated with (None on open routes)."""
    return request.get(PRINCIPAL)
