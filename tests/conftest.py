"""Shared fixtures: a private real redis-server per test session, a clean DB per test."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from assure.settings import Settings, load_settings
from bus.keys import Keys
from bus.redis import connect
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Any]:
    """A client on the private server; the database is emptied after each test."""
    client = connect(redis_server.url)
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    """A fresh prefix per test, so tests never see each other's keys."""
    return Keys(prefix=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(redis_url: str, keys: Keys) -> Settings:
    """The embedded defaults, on the private Redis under the test's key prefix."""
    defaults = load_settings()
    return dataclasses.replace(
        defaults,
        redis=dataclasses.replace(defaults.redis, url=redis_url, prefix=keys.prefix),
    )
