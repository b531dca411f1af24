"""The REST API on a real port over the test's private Redis, and clients for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from assure.api.app import build_app, deps_of, finish_background
from assure.api.routing import RouteSet
from assure.api.state import ApiDeps
from assure.api.tokens import Role
from assure.platform import Platform
from policy.schema import KpiPolicy


@dataclass
class Api:
    """A running API: its client, its collaborators and a token of each role."""

    client: TestClient[web.Request, web.Application]
    deps: ApiDeps
    tokens: dict[Role, str]

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def get_json(self, path: str, role: Role = Role.VIEWER, **kw: Any) -> Any:
        response = await self.client.get(path, headers=self.auth(role), **kw)
        assert response.status == 200, await response.text()
        return await response.json()


@contextlib.asynccontextmanager
async def running_api(
    platform: Platform,
    policies: Sequence[KpiPolicy] = (),
    *,
    routes: Sequence[RouteSet] = (),
    registry: CollectorRegistry | None = None,
    policy_dir: Path | None = None,
) -> AsyncIterator[Api]:
    deps = deps_of(platform, policies, registry or CollectorRegistry(), policy_dir)
    app = build_app(deps, routes=routes)
    tokens = {role: (await deps.tokens.create(role, f"test {role}"))[0] for role in Role}
    async with TestClient(TestServer(app)) as client:
        try:
            yield Api(client, deps, tokens)
        finally:
            deps.stopping.set()
            await finish_background(deps)
