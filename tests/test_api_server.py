"""The HTTP server's frame: open probes, tokens and roles, problem documents, limits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel

from assure.api.problems import PROBLEM_JSON
from assure.api.routing import Route
from assure.api.tokens import Role, TokenStore
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.keys import Keys
from tests.api_support import Api, running_api


class Echo(BaseModel):
    name: str
    count: int


async def _echo(request: web.Request) -> web.Response:
    from assure.api.body import read_body

    body = await read_body(request, Echo)
    return web.json_response(body.model_dump())


async def _slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


async def _boom(_request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


EXTRA = [
    Route("GET", "/x/read", _echo, Role.VIEWER, "read", "test", "read"),
    Route("POST", "/x/echo", _echo, Role.OPERATOR, "echo", "test", "echo", body=Echo),
    Route("POST", "/x/admin", _echo, Role.ADMIN, "admin", "test", "admin", body=Echo),
    Route("POST", "/x/basic", _echo, Role.OPERATOR, "basic", "test", "basic", body=Echo,
          basic_auth=True),
    Route("GET", "/x/slow", _slow, Role.VIEWER, "slow", "test", "slow"),
    Route("GET", "/x/boom", _boom, Role.VIEWER, "boom", "test", "boom"),
]  # fmt: skip


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    import dataclasses

    settings = dataclasses.replace(
        settings, api=dataclasses.replace(settings.api, body_limit=2048, request_timeout=0.5)
    )
    platform = await Platform.open(settings, WallClock())
    try:
        async with running_api(platform, routes=[EXTRA]) as running:
            yield running
    finally:
        await platform.aclose()


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_JSON
    doc = await response.json()
    assert doc["status"] == status
    assert doc["title"] and doc["detail"]
    return dict(doc)


async def test_probes_and_metrics_need_no_token(api: Api) -> None:
    assert (await (await api.client.get("/healthz")).json()) == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"redis": "ok", "vim:site-a": "ok", "vim:site-b": "ok"}
    metrics = await api.client.get("/metrics")
    assert metrics.status == 200
    assert metrics.content_type == "text/plain"


async def test_readyz_is_503_naming_the_vim_that_does_not_answer(
    api: Api, settings: Settings, redis: Any
) -> None:
    from assure.vims import simulated_site

    # The simulated VIM's state is in Redis: a failure queued here meets the server's call.
    site_b = simulated_site(settings, WallClock(), redis, api.deps.keys, "site-b")
    await site_b.fail_next("any", temporary=False)
    ready = await api.client.get("/readyz")
    assert ready.status == 503
    doc = await ready.json()
    assert doc["status"] == "not ready"
    assert doc["checks"]["redis"] == "ok" and doc["checks"]["vim:site-a"] == "ok"
    assert doc["checks"]["vim:site-b"].startswith("PermanentVimError"), doc
    assert (await api.client.get("/readyz")).status == 200, "the next look finds it back"


async def test_every_other_route_needs_a_valid_token_of_a_sufficient_role(api: Api) -> None:
    body = {"name": "a", "count": 1}
    none = await api.client.post("/x/echo", json=body)
    doc = await _problem(none, 401)
    assert "Bearer" in none.headers["WWW-Authenticate"]
    assert "needs a token" in doc["detail"]
    wrong = await api.client.post("/x/echo", json=body, headers={"Authorization": "Bearer nfva_x"})
    assert "not valid" in (await _problem(wrong, 401))["detail"]
    viewer = await api.client.post("/x/echo", json=body, headers=api.auth(Role.VIEWER))
    assert "needs operator" in (await _problem(viewer, 403))["detail"]
    operator = await api.client.post("/x/echo", json=body, headers=api.auth(Role.OPERATOR))
    assert operator.status == 200
    assert (
        await api.client.post("/x/admin", json=body, headers=api.auth(Role.OPERATOR))
    ).status == 403
    assert (
        await api.client.post("/x/admin", json=body, headers=api.auth(Role.ADMIN))
    ).status == 200


async def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    store = api.deps.tokens
    secret, record = await store.create(Role.VIEWER, "short-lived")
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await api.client.get("/x/read", headers=headers)).status != 401
    assert await store.revoke(record.id)
    await _problem(await api.client.get("/x/read", headers=headers), 401)
    assert not await store.revoke(record.id), "revoking twice finds nothing"


async def test_basic_auth_carries_the_token_only_where_the_route_allows_it(api: Api) -> None:
    pair = base64.b64encode(f"alertmanager:{api.tokens[Role.OPERATOR]}".encode()).decode()
    headers = {"Authorization": f"Basic {pair}"}
    body = {"name": "a", "count": 1}
    assert (await api.client.post("/x/basic", json=body, headers=headers)).status == 200
    await _problem(await api.client.post("/x/echo", json=body, headers=headers), 401)
    bad = {"Authorization": "Basic !!!notbase64"}
    await _problem(await api.client.post("/x/basic", json=body, headers=bad), 401)


async def test_tokens_are_stored_hashed_never_in_clear(api: Api, redis: Any, keys: Keys) -> None:
    stored = await redis.hgetall(keys.api_tokens())
    assert len(stored) == len(Role)
    dump = b"".join(k + v for k, v in stored.items())
    for secret in api.tokens.values():
        assert secret.encode() not in dump


@pytest.mark.parametrize(
    ("body", "content_type", "place", "problem"),
    [
        (b'{"name": "a", "count": ', "application/json", "(body)", "malformed JSON"),
        (b'{"name": "a"}', "application/json", "count", "required field is missing"),
        (b'{"name": "a", "count": "many"}', "application/json", "count", "integer"),
        (b"[1, 2]", "application/json", "(body)", "object"),
    ],
)
async def test_a_bad_body_gets_400_naming_the_place(
    api: Api, body: bytes, content_type: str, place: str, problem: str
) -> None:
    headers = {**api.auth(Role.OPERATOR), "Content-Type": content_type}
    doc = await _problem(await api.client.post("/x/echo", data=body, headers=headers), 400)
    assert doc["errors"][0]["place"] == place
    assert problem in doc["errors"][0]["problem"]


async def test_a_body_that_is_not_json_gets_415(api: Api) -> None:
    headers = {**api.auth(Role.OPERATOR), "Content-Type": "text/plain"}
    await _problem(await api.client.post("/x/echo", data=b"hello", headers=headers), 415)


async def test_a_body_over_the_limit_gets_413(api: Api) -> None:
    big = {"name": "x" * 4096, "count": 1}
    response = await api.client.post("/x/echo", json=big, headers=api.auth(Role.OPERATOR))
    assert "2048 bytes" in (await _problem(response, 413))["detail"]


async def test_a_slow_request_gets_503_and_a_crash_500_without_internals(api: Api) -> None:
    slow = await api.client.get("/x/slow", headers=api.auth())
    assert "0.5 s" in (await _problem(slow, 503))["detail"]
    boom = await api.client.get("/x/boom", headers=api.auth())
    doc = await _problem(boom, 500)
    assert "secret internals" not in await boom.text()
    assert "request" in doc["detail"]


async def test_unknown_paths_and_methods_are_problem_documents(api: Api) -> None:
    await _problem(await api.client.get("/nowhere"), 404)
    wrong = await api.client.delete("/healthz")
    await _problem(wrong, 405)
    assert "GET" in wrong.headers["Allow"]


async def test_the_first_admin_token_is_handed_out_once(redis: Any, keys: Keys) -> None:
    store = TokenStore(redis, keys, WallClock())
    first = await store.bootstrap()
    assert first is not None
    record = await store.check(first)
    assert record is not None and record.role is Role.ADMIN
    assert await store.bootstrap() is None
    await store.revoke(record.id)
    assert await store.bootstrap() is None, "not again, even once every token is revoked"
