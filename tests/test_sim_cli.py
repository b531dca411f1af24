"""``nfv-assure sim``: the shared simulated clouds, seen and broken from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from click.testing import CliRunner

from assure.cli import main
from assure.settings import Settings
from assure.vims import build_sites
from bus.clock import WallClock
from bus.keys import Keys
from bus.redis import connect
from mano_core.errors import TemporaryVimError
from mano_core.vim.base import Flavor, ServerSpec, ServerStatus
from mano_core.vim.simulated import SimulatedVim

T = TypeVar("T")


def on_site_a(settings: Settings, work: Callable[[SimulatedVim], Awaitable[T]]) -> T:
    """Run ``work`` on site-a as this process sees it (a process of its own)."""

    async def go() -> T:
        assert settings.redis.url is not None
        client = connect(settings.redis.url)
        try:
            keys = Keys(prefix=settings.redis.prefix)
            sites = await build_sites(settings, WallClock(), client, keys)
            return await work(sites.simulated["site-a"])
        finally:
            await client.aclose()

    return asyncio.run(go())


def env_of(settings: Settings) -> dict[str, str]:
    assert settings.redis.url is not None
    return {"REDIS_URL": settings.redis.url, "NFVA_REDIS_PREFIX": settings.redis.prefix}


def cli(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), env=env_of(settings))
    assert result.exit_code == 0, result.output
    return result


async def a_server(vim: SimulatedVim) -> str:
    image = await vim.add_image("img", "1")
    server = await vim.create_server(ServerSpec("web-1", Flavor("s", 1, 512), image.id))
    return server.id


def test_another_process_sees_the_servers_and_crashes_one(settings: Settings) -> None:
    server_id = on_site_a(settings, a_server)
    listed = subprocess.run(
        [sys.executable, "-m", "assure", "sim", "servers", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **env_of(settings)},
    )
    [server] = json.loads(listed.stdout)
    assert (server["site"], server["id"], server["name"]) == ("site-a", server_id, "web-1")

    said = cli(settings, "sim", "fault", "crash-server", server_id)
    assert f"crashed server {server_id} on site site-a" in said.output
    calls = json.loads(cli(settings, "sim", "calls", "--operation", "create", "--json").output)
    assert [(c["site"], c["operation"], c["subject"]) for c in calls] == [
        ("site-a", "create", server_id)
    ]
    log = cli(settings, "sim", "calls", "--site", "site-a").output.splitlines()
    assert [line.split()[2:] for line in log] == [["create", server_id]]

    async def status(vim: SimulatedVim) -> ServerStatus:
        return (await vim.get_server(server_id)).status

    assert on_site_a(settings, status) is ServerStatus.ERROR


def test_host_faults_and_their_repair(settings: Settings) -> None:
    hosts = json.loads(cli(settings, "sim", "hosts", "--json").output)
    names = [h["name"] for h in hosts]
    assert names == [f"site-{s}-compute-{i}" for s in "ab" for i in (1, 2, 3)]
    host = "site-b-compute-2"
    cli(settings, "sim", "fault", "fail-host", host)
    cli(settings, "sim", "fault", "degrade-host", "site-b-compute-3")
    down = {h["name"]: h for h in json.loads(cli(settings, "sim", "hosts", "--json").output)}
    assert (down[host]["state"], down["site-b-compute-3"]["degraded"]) == ("down", True)
    text = cli(settings, "sim", "hosts", "--site", "site-b").output
    assert f"site-b {host} down" in text and "degraded" in text
    cli(settings, "sim", "fault", "restore-host", host)
    up = {h["name"]: h for h in json.loads(cli(settings, "sim", "hosts", "--json").output)}
    assert up[host]["state"] == "up"


def test_api_errors_hit_the_next_calls_of_every_process(settings: Settings) -> None:
    said = cli(
        settings, "sim", "fault", "api-errors", "--operation", "create", "--count", "2",
        "--retry-after", "30s",
    )  # fmt: skip
    assert "the next 2 create call(s) fail (temporary)" in said.output

    async def create_twice(vim: SimulatedVim) -> list[float]:
        waits = []
        for _ in range(2):
            try:
                await a_server(vim)
            except TemporaryVimError as exc:
                waits.append(exc.retry_after)
        return waits

    assert on_site_a(settings, create_twice) == [30.0, 30.0]
    cli(settings, "sim", "fault", "api-errors", "--count", "5")
    assert (
        "5 queued API error(s) dropped"
        in cli(settings, "sim", "fault", "api-errors", "--clear").output
    )


def test_bad_fault_requests_are_refused_plainly(settings: Settings) -> None:
    runner = CliRunner()
    env = env_of(settings)
    bad_operation = runner.invoke(
        main, ["sim", "fault", "api-errors", "--operation", "teleport"], env=env
    )
    assert bad_operation.exit_code == 2 and "unknown operation 'teleport'" in bad_operation.output
    no_host = runner.invoke(main, ["sim", "fault", "fail-host", "nowhere"], env=env)
    assert no_host.exit_code == 1 and "no simulated site has a host 'nowhere'" in no_host.output
    no_site = runner.invoke(main, ["sim", "servers", "--site", "site-z"], env=env)
    assert no_site.exit_code == 2 and "no simulated site 'site-z'" in no_site.output
    assert no_host.exception is None or isinstance(no_host.exception, SystemExit)
