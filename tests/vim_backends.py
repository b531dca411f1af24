"""The VIMs the VIM-driver contract runs on, each with what a test does behind its back.

:class:`SimulatedBackend` is :class:`~mano_core.vim.simulated.SimulatedVim`
in accelerated time; :class:`OpenStackBackend` is
:class:`~mano_core.vim.openstack.OpenStackVim` on the OpenStack tier's cloud,
with faults and quotas set through openstacksdk (:mod:`tests.openstack_cloud`).
Both offer the same faces: the driver, two images, two flavours, two hosts,
forcing a host's compute service down and back, and an instance quota.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from bus.clock import ScaledClock
from bus.keys import Keys
from bus.redis import Backoff
from mano_core.vim.base import Flavor, ServerInfo, VimDriver
from mano_core.vim.simulated import QuotaRec, SimHost, SimulatedVim

T = TypeVar("T")

WAIT_S = 120.0
"""Wall seconds a server may take to reach a state (a cold migration on the tier: ~11 s)."""


class Backend(Protocol):
    vim: VimDriver
    image: str
    """Id of the image servers boot from."""
    other_image: str
    """Id of a second image (to rebuild with)."""
    flavor: Flavor
    bigger: Flavor
    """A flavour to resize to."""
    hosts: tuple[str, str]
    run: str
    """Metadata value ``test-run`` of every server this test creates."""

    async def force_down(self, host: str) -> None: ...

    async def disable(self, host: str) -> None: ...

    async def restore(self, host: str) -> None: ...

    async def limit_instances(self, limit: int | None) -> None:
        """Set the project's instance quota (None: back to what it was)."""
        ...

    async def cleanup(self) -> None: ...


async def wait_server(
    vim: VimDriver,
    server_id: str,
    done: Callable[[ServerInfo], bool],
    what: str,
    timeout_s: float = WAIT_S,
) -> ServerInfo:
    """Poll the driver with bounded back-off until ``done`` holds; AssertionError after
    ``timeout_s`` wall seconds, naming the last state seen."""
    deadline = time.monotonic() + timeout_s
    backoff = Backoff(first_s=0.05, cap_s=1.0)
    while True:
        server = await vim.get_server(server_id)
        if done(server):
            return server
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server_id} not {what} after {timeout_s:g} s: {server}")
        await backoff.wait()


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = WAIT_S
) -> T:
    """Poll ``check`` with bounded back-off until it returns something true (that is
    returned); AssertionError after ``timeout_s`` wall seconds."""
    deadline = time.monotonic() + timeout_s
    backoff = Backoff(first_s=0.05, cap_s=1.0)
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout_s:g} s")
        await backoff.wait()


class SimulatedBackend:
    def __init__(self, sim: SimulatedVim, clock: ScaledClock, image: str, other_image: str) -> None:
        self.clock = clock
        self.sim = sim
        self.vim: VimDriver = sim
        self.image = image
        self.other_image = other_image
        self.flavor = Flavor("m1.tiny", 1, 512, 1)
        self.bigger = Flavor("m1.small", 1, 2048, 20)
        self.hosts = ("compute-1", "compute-2")
        self.run = uuid.uuid4().hex

    @classmethod
    async def create(cls, redis: Any, keys: Keys) -> SimulatedBackend:
        clock = ScaledClock(speed=200)
        sim = SimulatedVim(
            clock, redis, keys, [SimHost("compute-1", 16, 32768), SimHost("compute-2", 16, 32768)]
        )
        image = (await sim.add_image("cirros-fake")).id
        other_image = (await sim.add_image("cirros-fake-2")).id
        return cls(sim, clock, image, other_image)

    async def force_down(self, host: str) -> None:
        await self.sim.force_down_host(host)

    async def disable(self, host: str) -> None:
        await self.sim.disable_host(host)

    async def restore(self, host: str) -> None:
        await self.sim.restore_host(host)
        await self.sim.enable_host(host)

    async def limit_instances(self, limit: int | None) -> None:
        await self.sim.set_quotas(QuotaRec(instances=limit))

    async def cleanup(self) -> None:
        """Nothing outlives the simulation."""


class OpenStackBackend:
    """The tier's cloud as administrator (host status and migrations to a host need it)."""

    def __init__(self, vim: VimDriver, operator: Any) -> None:
        from tests import openstack_cloud

        self._cloud = openstack_cloud
        self.vim = vim
        self.operator = operator
        conn = operator.conn
        self.image = str(conn.image.find_image(openstack_cloud.IMAGES[0], ignore_missing=False).id)
        self.other_image = str(
            conn.image.find_image(openstack_cloud.IMAGES[1], ignore_missing=False).id
        )
        self.flavor = Flavor("m1.tiny", 1, 512, 1)
        self.bigger = Flavor("m1.small", 1, 2048, 20)
        self.hosts = openstack_cloud.HOSTS
        self.run = uuid.uuid4().hex
        self._quota = operator.instance_quota()

    async def force_down(self, host: str) -> None:
        await asyncio.to_thread(self.operator.force_down, host)

    async def disable(self, host: str) -> None:
        await asyncio.to_thread(self.operator.disable, host)

    async def restore(self, host: str) -> None:
        await asyncio.to_thread(self.operator.restore, host)

    async def limit_instances(self, limit: int | None) -> None:
        await asyncio.to_thread(
            self.operator.set_instance_quota, self._quota if limit is None else limit
        )

    async def cleanup(self) -> None:
        await asyncio.to_thread(self.operator.purge, **{"test-run": self.run})
