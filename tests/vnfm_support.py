"""A MANO world for the VNFM's operation tests: real Redis, simulated VIMs, a real hook server.

The VNFD ``app`` has two VDUs (``db``, then ``web``) on an internal virtual
link, an external connection point, day-1/day-2/drain hooks, two scaling
aspects, an instantiation level, and two versions (``1.0`` boots images
``*:1``, ``2.0`` images ``*:2``). Hooks are served by one aiohttp server on
every address of the machine (so each VNFC's own loopback address reaches
it); it records each call by the address it was made to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from bus.clock import ScaledClock
from bus.contracts import LcmNotification
from bus.keys import Keys
from bus.streams import read_all
from mano_core.catalogue import Catalogue
from mano_core.grants import Granter
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOpOcc, VnfInstance
from mano_core.vim.base import ServerInfo
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import parse_vnfd
from mano_core.vnfm import Vnfm
from mano_core.vnfm.context import HealthCheck, vim_health

SPEED = 400.0


def app_vnfd(version: str, image: str, hook_port: int) -> str:
    return f"""\
apiVersion: assure/v1
kind: Vnfd
id: app
version: "{version}"
virtual_links:
  - {{id: internal, cidr: 10.9.0.0/24}}
external_connection_points:
  - {{id: north, connection_point: web-north}}
vdus:
  - id: db
    image: {{name: db, version: "{image}"}}
    flavour: {{vcpus: 1, ram_mb: 512}}
    min_instances: 1
    max_instances: 2
    connection_points:
      - {{id: db-internal, virtual_link: internal}}
    hooks:
      day1: {{port: {hook_port}, path: /day1, timeout: 5s}}
  - id: web
    image: {{name: web, version: "{image}"}}
    flavour: {{vcpus: 1, ram_mb: 512}}
    min_instances: 1
    max_instances: 10
    start_order: 1
    connection_points:
      - {{id: web-internal, virtual_link: internal}}
      - {{id: web-north}}
    hooks:
      day1: {{port: {hook_port}, path: /day1, timeout: 5s}}
      day2: {{port: {hook_port}, path: /day2, parameters: {{mode: standard}}, timeout: 2s}}
      drain: {{port: {hook_port}, path: /drain, timeout: 2s}}
instantiation_levels:
  - {{id: small, vdu_instances: {{db: 1, web: 2}}}}
  - {{id: big, vdu_instances: {{db: 1, web: 4}}, scale_levels: {{web-scale: 2}}}}
scaling_aspects:
  - {{id: web-scale, max_scale_level: 4, deltas: {{web: 1}}}}
  - {{id: idle-first, max_scale_level: 4, deltas: {{web: 1}}, scale_in_victims: least_loaded}}
"""


@dataclass
class HookServer:
    """Answers every hook call, recording ``(path, address, body)``; ``fail`` picks failures."""

    port: int
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)
    """Path -> HTTP status to answer instead of 200."""

    def paths(self, path: str) -> list[str]:
        """The addresses ``path`` was called on, in order."""
        return [address for p, address, _ in self.calls if p == path]


async def _hook_app(server: HookServer) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        address = (request.host or "").rsplit(":", 1)[0]
        server.calls.append((request.path, address, body))
        status = server.failing.get(request.path, 200)
        return web.json_response({"ok": status == 200, "got": body}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@dataclass
class World:
    redis: Any
    keys: Keys
    clock: ScaledClock
    sims: dict[str, SimulatedVim]
    inventory: Inventory
    catalogue: Catalogue
    ops: OpOccStore
    vnfm: Vnfm
    hooks: HookServer

    @property
    def sim(self) -> SimulatedVim:
        return next(iter(self.sims.values()))

    async def deploy(self, **options: Any) -> VnfInstance:
        """``app`` at version 1.0 (images ``*:1``), COMPLETED."""
        options.setdefault("version", "1.0")
        vnf, op = await self.vnfm.instantiate("app", "app-1", **options)
        assert op.state == "COMPLETED", op.error
        return vnf

    async def vnf(self, vnf_id: str) -> VnfInstance:
        return await self.inventory.get(vnf_id)

    async def servers(self, vnf_id: str) -> list[ServerInfo]:
        found = []
        for sim in self.sims.values():
            found += [s for s in await sim.servers() if s.metadata.get("vnf") == vnf_id]
        return found

    async def leftovers(self, vnf_id: str) -> dict[str, list[str]]:
        """Everything of the VNF still on any VIM, by kind (empty lists: nothing leaked)."""
        left: dict[str, list[str]] = {"servers": [], "ports": [], "networks": [], "groups": []}
        for sim in self.sims.values():
            left["servers"] += [s.id for s in await sim.list_servers(metadata={"vnf": vnf_id})]
            left["ports"] += [p.id for p in await sim.list_ports(metadata={"vnf": vnf_id})]
            left["networks"] += [n.id for n in await sim.list_networks(metadata={"vnf": vnf_id})]
            left["groups"] += [
                g.id for g in await sim.list_server_groups() if g.name.startswith(vnf_id)
            ]
        return left

    async def notifications(self) -> list[LcmNotification]:
        entries = await read_all(self.redis, self.keys.stream("lcm_notifications"))
        return [m for _, m in entries if isinstance(m, LcmNotification)]


def states(op: LcmOpOcc) -> list[str]:
    return [h.state.value for h in op.history]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def make_world(
    redis: Any,
    keys: Keys,
    *,
    sites: Sequence[str] = ("site-a",),
    hosts: int = 3,
    boot_s: float = 0.0,
    granter: Granter | None = None,
    health: HealthCheck = vim_health,
    timeout_s: float = 120.0,
) -> AsyncIterator[World]:
    clock = ScaledClock(speed=SPEED)
    port = free_port()
    hooks = HookServer(port)
    runner = web.AppRunner(await _hook_app(hooks))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    sims = {}
    for site in sites:
        sim = SimulatedVim(
            clock,
            redis,
            keys,
            [SimHost(f"{site}-h{i}", 8, 16384, zone=f"{site}-az") for i in range(hosts)],
            name=site,
            boot_s=boot_s,
            reboot_s=boot_s / 2,
            rebuild_s=boot_s,
            migrate_s=boot_s / 2,
            resize_s=boot_s / 2,
            power_s=boot_s / 4,
        )
        for image in ("db", "web"):
            for version in ("1", "2"):
                await sim.add_image(image, version)
        sims[site] = sim
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(parse_vnfd(app_vnfd("1.0", "1", port)))
    await catalogue.onboard(parse_vnfd(app_vnfd("2.0", "2", port)))
    ops = OpOccStore(redis, keys, clock, runner_ttl_s=2.0)
    vnfm = Vnfm(
        VimRegistry(list(sims.values())),
        inventory,
        catalogue,
        ops,
        clock,
        granter=granter,
        health=health,
        poll_s=1.0,
        timeout_s=timeout_s,
    )
    try:
        yield World(redis, keys, clock, sims, inventory, catalogue, ops, vnfm, hooks)
    finally:
        await vnfm.aclose()
        await runner.cleanup()


async def eventually(check: Any, *, timeout_s: float = 10.0) -> Any:
    """Await ``check()`` until it is truthy (wall seconds), then return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout_s:g} s")
        await asyncio.sleep(0.01)


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)
