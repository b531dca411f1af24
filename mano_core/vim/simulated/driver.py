"""The simulated VIM driver: :class:`SimulatedVim`, and the faults you inject into it.

It is the default VIM of the demo and the VIM of most tests. Each server
gets its own loopback address (``127.a.b.n``), so the exporters of
different servers can all listen on the same port, as on real VMs.

Failure injection and workload hooks (``crash_server``, ``degrade_host``,
``fail_host``, ``fail_next``, ``hang_next``, ``set_server_cpu``, ...) are
for tests, the demo scenario and the ``nfv-assure sim`` commands; they act
on the shared cloud, so a fault injected from one process is seen by all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bus.clock import Clock
from bus.keys import Keys
from mano_core.vim.base import (
    HOST_CPU,
    HOST_DEGRADED,
    HOST_RAM_MB,
    HOST_RAM_USED_MB,
    HOST_UP,
    HOST_VCPUS,
    HOST_VCPUS_USED,
    SERVER_CPU,
    SERVER_UP,
    Flavor,
    GroupPolicy,
    HostInfo,
    ImageInfo,
    Limits,
    NetworkInfo,
    PortInfo,
    PortSpec,
    ServerGroupInfo,
    ServerInfo,
    ServerSpec,
    ServerStatus,
    SubnetInfo,
    TelemetryPoint,
)
from mano_core.vim.simulated import network
from mano_core.vim.simulated.cloud import Cloud, info
from mano_core.vim.simulated.controls import SimControls
from mano_core.vim.simulated.state import (
    CloudState,
    FlavorRec,
    HostRec,
    QuotaRec,
    Timings,
)
from mano_core.vim.simulated.store import CloudStore

T = TypeVar("T")


@dataclass(frozen=True)
class SimHost:
    """A compute host of the simulated VIM and its capacity."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 1000
    zone: str = "nova"


class SimulatedVim(SimControls):
    """A simulated VIM, implementing :class:`~mano_core.vim.base.VimDriver`.

    ``address_base`` is the address before the first server's (the first
    gets ``address_base + 1``). Left unset, a random ``127.a.b.0`` block is
    drawn from the OS, never ``127.0.x.x``, and not from ``seed``: ports are
    shared by every process on the machine, so two simulated VIMs (two test
    runs, a test and the demo) must not hand out the same addresses.
    ``seed`` makes ids reproducible; None draws them from the OS.

    The cloud's state lives in ``redis`` under ``keys.sim_cloud(name)``
    (:mod:`~mano_core.vim.simulated.store`): every process that builds a
    SimulatedVim of that name on that Redis sees the same cloud. The hosts,
    timings, quotas and address block given here are the cloud's initial
    state, used by the first process only; a cloud that exists keeps its own.
    """

    def __init__(
        self,
        clock: Clock,
        redis: Any,
        keys: Keys,
        hosts: Sequence[SimHost],
        *,
        name: str = "sim",
        boot_s: float = 20.0,
        reboot_s: float = 10.0,
        rebuild_s: float = 20.0,
        migrate_s: float = 8.0,
        resize_s: float = 10.0,
        power_s: float = 2.0,
        quotas: QuotaRec | None = None,
        address_base: str | None = None,
        seed: int | None = None,
    ) -> None:
        names = [h.name for h in hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be unique, got {names}")
        self.name = name
        self._clock = clock
        if address_base is None:
            system = random.SystemRandom()
            address_base = f"127.{system.randint(1, 254)}.{system.randint(0, 255)}.0"
        id_seed = (
            f"{name}:{seed}" if seed is not None else f"{name}:{random.SystemRandom().random()}"
        )

        def initial() -> CloudState:
            return CloudState(
                hosts={
                    h.name: HostRec(h.name, h.zone, h.vcpus, h.ram_mb, h.disk_gb) for h in hosts
                },
                timings=Timings(
                    boot=boot_s,
                    reboot=reboot_s,
                    rebuild=rebuild_s,
                    migrate=migrate_s,
                    resize=resize_s,
                    power=power_s,
                ),
                next_address=int(ipaddress.IPv4Address(address_base)) + 1,
                id_seed=id_seed,
                quotas=quotas or QuotaRec(),
            )

        self._store = CloudStore(redis, keys.sim_cloud(name), initial, log_key=keys.sim_calls(name))
        self._hangs: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------
    # VimDriver: hosts, quotas, images
    # ------------------------------------------------------------------
    async def list_hosts(self) -> list[HostInfo]:
        return await self._read(lambda c: c.hosts())

    async def get_limits(self) -> Limits:
        return await self._read(lambda c: c.limits())

    async def list_images(self) -> list[ImageInfo]:
        return await self._read(network.images)

    async def find_image(self, name: str, version: str | None = None) -> ImageInfo:
        return await self._read(lambda c: network.find_image(c, name, version))

    # ------------------------------------------------------------------
    # VimDriver: servers
    # ------------------------------------------------------------------
    async def list_servers(self, *, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        return await self._read(lambda c: c.servers(metadata))

    async def get_server(self, server_id: str) -> ServerInfo:
        return await self._read(lambda c: info(c.server(server_id)))

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        return await self._call("create", lambda c: c.create_server(spec))

    async def delete_server(self, server_id: str) -> None:
        await self._call("delete", lambda c: c.delete_server(server_id), server_id)

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        await self._call(
            "reboot", lambda c: c.act(server_id, "hard_reboot" if hard else "reboot"), server_id
        )

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        await self._call("rebuild", lambda c: c.act(server_id, "rebuild", image=image), server_id)

    async def resize_server(self, server_id: str, flavor: Flavor) -> None:
        record = FlavorRec.of(flavor)
        await self._call("resize", lambda c: c.act(server_id, "resize", flavor=record), server_id)

    async def migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call("migrate", lambda c: c.act(server_id, "migrate", host=host), server_id)

    async def live_migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call(
            "live_migrate", lambda c: c.act(server_id, "live_migrate", host=host), server_id
        )

    async def confirm_resize(self, server_id: str) -> None:
        await self._call("confirm", lambda c: c.act(server_id, "confirm"), server_id)

    async def revert_resize(self, server_id: str) -> None:
        await self._call("revert", lambda c: c.act(server_id, "revert"), server_id)

    async def stop_server(self, server_id: str) -> None:
        await self._call("stop", lambda c: c.act(server_id, "stop"), server_id)

    async def start_server(self, server_id: str) -> None:
        await self._call("start", lambda c: c.act(server_id, "start"), server_id)

    # ------------------------------------------------------------------
    # VimDriver: server groups, networks, ports
    # ------------------------------------------------------------------
    async def create_server_group(self, name: str, policy: GroupPolicy) -> ServerGroupInfo:
        return await self._call(
            "create_server_group", lambda c: network.create_group(c, name, policy)
        )

    async def list_server_groups(self) -> list[ServerGroupInfo]:
        return await self._read(network.groups)

    async def delete_server_group(self, group_id: str) -> None:
        await self._call(
            "delete_server_group", lambda c: network.delete_group(c, group_id), group_id
        )

    async def create_network(
        self, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        return await self._call(
            "create_network", lambda c: network.create_network(c, name, metadata)
        )

    async def list_networks(
        self, *, metadata: Mapping[str, str] | None = None
    ) -> list[NetworkInfo]:
        return await self._read(lambda c: network.networks(c, metadata))

    async def delete_network(self, network_id: str) -> None:
        await self._call(
            "delete_network", lambda c: network.delete_network(c, network_id), network_id
        )

    async def create_subnet(
        self,
        network_id: str,
        name: str,
        cidr: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> SubnetInfo:
        return await self._call(
            "create_subnet",
            lambda c: network.create_subnet(c, network_id, name, cidr, metadata),
        )

    async def list_subnets(
        self,
        *,
        network_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[SubnetInfo]:
        return await self._read(lambda c: network.subnets(c, network_id, metadata))

    async def delete_subnet(self, subnet_id: str) -> None:
        await self._call("delete_subnet", lambda c: network.delete_subnet(c, subnet_id), subnet_id)

    async def create_port(self, spec: PortSpec) -> PortInfo:
        return await self._call("create_port", lambda c: network.create_port(c, spec))

    async def list_ports(
        self,
        *,
        network_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        return await self._read(lambda c: network.ports(c, network_id, server_id, metadata))

    async def delete_port(self, port_id: str) -> None:
        await self._call("delete_port", lambda c: network.delete_port(c, port_id), port_id)

    # ------------------------------------------------------------------
    # VimDriver: telemetry
    # ------------------------------------------------------------------
    async def telemetry(self) -> list[TelemetryPoint]:
        return await self._read(_telemetry)

    async def aclose(self) -> None:
        """Nothing to release: the simulation holds no connections."""


def _telemetry(cloud: Cloud) -> list[TelemetryPoint]:
    now = cloud.now
    points: list[TelemetryPoint] = []
    hosts = cloud.state.hosts
    host_load = dict.fromkeys(hosts, 0.0)
    for server in cloud.state.servers.values():
        active = server.status is ServerStatus.ACTIVE
        cpu = server.cpu if active else 0.0
        host_load[server.host] += cpu * server.flavor.vcpus
        labels = {"server": server.id, "host": server.host}
        points.append(TelemetryPoint(SERVER_CPU, labels, cpu, now))
        points.append(
            TelemetryPoint(SERVER_UP, {**labels, "status": server.status.value}, float(active), now)
        )
    for name, host in hosts.items():
        labels = {"host": name}
        cpu = min(100.0, host_load[name] / host.vcpus) if host.up else 0.0
        points.append(TelemetryPoint(HOST_CPU, labels, cpu, now))
        up = host.up and host.enabled and not host.forced_down
        points.append(TelemetryPoint(HOST_UP, labels, float(up), now))
        points.append(
            TelemetryPoint(
                HOST_DEGRADED,
                labels,
                float(host.degraded or host.forced_down or not host.enabled),
                now,
            )
        )
        held = cloud.host_info(name)
        points += [
            TelemetryPoint(HOST_VCPUS, labels, float(held.vcpus), now),
            TelemetryPoint(HOST_VCPUS_USED, labels, float(held.vcpus_used), now),
            TelemetryPoint(HOST_RAM_MB, labels, float(held.ram_mb), now),
            TelemetryPoint(HOST_RAM_USED_MB, labels, float(held.ram_used_mb), now),
        ]
    return points
