"""The simulated VIM driver: :class:`SimulatedVim`, and the faults you inject into it.

It is the default VIM of the demo and the VIM of most tests. Each server
gets its own loopback address (``127.a.b.n``), so the exporters of
different servers can all listen on the same port, as on real VMs.

Failure injection and workload hooks (``crash_server``, ``degrade_host``,
``fail_host``, ``fail_next``, ``hang_next``, ``set_server_cpu``, ...) are
for tests, the demo scenario and the ``nfv-assure sim`` commands.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bus.clock import Clock
from mano_core.errors import PermanentVimError, TemporaryVimError
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
from mano_core.vim.simulated.state import (
    CloudState,
    FlavorRec,
    HostRec,
    Injected,
    QuotaRec,
    Timings,
)

T = TypeVar("T")

OPERATIONS = (
    "any",
    "create",
    "delete",
    "reboot",
    "rebuild",
    "resize",
    "migrate",
    "live_migrate",
    "confirm",
    "revert",
    "stop",
    "start",
    "create_port",
    "delete_port",
    "create_network",
    "delete_network",
    "create_subnet",
    "delete_subnet",
    "create_server_group",
    "delete_server_group",
)
"""The operations :meth:`SimulatedVim.fail_next` and :meth:`~SimulatedVim.hang_next`
act on; ``any`` is whatever call comes next, reads included."""


@dataclass(frozen=True)
class SimHost:
    """A compute host of the simulated VIM and its capacity."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 1000
    zone: str = "nova"


class SimulatedVim:
    """A simulated VIM, implementing :class:`~mano_core.vim.base.VimDriver`.

    ``address_base`` is the address before the first server's (the first
    gets ``address_base + 1``). Left unset, a random ``127.a.b.0`` block is
    drawn from the OS, never ``127.0.x.x``, and not from ``seed``: ports are
    shared by every process on the machine, so two simulated VIMs (two test
    runs, a test and the demo) must not hand out the same addresses.
    ``seed`` makes ids reproducible; None draws them from the OS.
    ``images`` are registered at once as ``(name, version)``.
    """

    def __init__(
        self,
        clock: Clock,
        hosts: Sequence[SimHost],
        *,
        name: str = "sim",
        boot_s: float = 20.0,
        reboot_s: float = 10.0,
        rebuild_s: float = 20.0,
        migrate_s: float = 8.0,
        resize_s: float = 10.0,
        power_s: float = 2.0,
        images: Sequence[tuple[str, str | None]] = (),
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
        self._state = CloudState(
            hosts={h.name: HostRec(h.name, h.zone, h.vcpus, h.ram_mb, h.disk_gb) for h in hosts},
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
        self._hangs: dict[str, asyncio.Event] = {}
        for image_name, version in images:
            self.add_image(image_name, version)

    # ------------------------------------------------------------------
    # Plumbing
    # ------------------------------------------------------------------
    def _cloud(self) -> Cloud:
        return Cloud(self._state, self._clock.now(), self.name)

    async def _call(self, operation: str, change: Callable[[Cloud], T]) -> T:
        """Apply ``change`` unless a failure is queued for ``operation`` (or ``any``)."""
        cloud = self._cloud()
        injected = self._take_failure(operation)
        if injected is not None:
            if injected.kind == "hang":
                # An API that stops answering: only the caller giving up ends the call.
                hung = self._hangs.pop(injected.id, None)
                if hung is not None:
                    hung.set()
                await asyncio.Event().wait()
            if injected.kind == "temporary":
                raise TemporaryVimError(
                    f"injected temporary failure of {operation}",
                    retry_after=injected.retry_after,
                )
            raise PermanentVimError(f"injected permanent failure of {operation}")
        return change(cloud)

    def _take_failure(self, operation: str) -> Injected | None:
        for name in ("any", operation):
            queue = self._state.failures.get(name)
            if queue:
                return queue.pop(0)
        return None

    # ------------------------------------------------------------------
    # VimDriver: hosts, quotas, images
    # ------------------------------------------------------------------
    async def list_hosts(self) -> list[HostInfo]:
        return await self._call("list", lambda c: c.hosts())

    async def get_limits(self) -> Limits:
        return await self._call("list", lambda c: c.limits())

    async def list_images(self) -> list[ImageInfo]:
        return await self._call("list", network.images)

    async def find_image(self, name: str, version: str | None = None) -> ImageInfo:
        return await self._call("list", lambda c: network.find_image(c, name, version))

    # ------------------------------------------------------------------
    # VimDriver: servers
    # ------------------------------------------------------------------
    async def list_servers(self, *, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        return await self._call("list", lambda c: c.servers(metadata))

    async def get_server(self, server_id: str) -> ServerInfo:
        return await self._call("list", lambda c: info(c.server(server_id)))

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        return await self._call("create", lambda c: c.create_server(spec))

    async def delete_server(self, server_id: str) -> None:
        await self._call("delete", lambda c: c.delete_server(server_id))

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        await self._call("reboot", lambda c: c.act(server_id, "hard_reboot" if hard else "reboot"))

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        await self._call("rebuild", lambda c: c.act(server_id, "rebuild", image=image))

    async def resize_server(self, server_id: str, flavor: Flavor) -> None:
        record = FlavorRec.of(flavor)
        await self._call("resize", lambda c: c.act(server_id, "resize", flavor=record))

    async def migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call("migrate", lambda c: c.act(server_id, "migrate", host=host))

    async def live_migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call("live_migrate", lambda c: c.act(server_id, "live_migrate", host=host))

    async def confirm_resize(self, server_id: str) -> None:
        await self._call("confirm", lambda c: c.act(server_id, "confirm"))

    async def revert_resize(self, server_id: str) -> None:
        await self._call("revert", lambda c: c.act(server_id, "revert"))

    async def stop_server(self, server_id: str) -> None:
        await self._call("stop", lambda c: c.act(server_id, "stop"))

    async def start_server(self, server_id: str) -> None:
        await self._call("start", lambda c: c.act(server_id, "start"))

    # ------------------------------------------------------------------
    # VimDriver: server groups, networks, ports
    # ------------------------------------------------------------------
    async def create_server_group(self, name: str, policy: GroupPolicy) -> ServerGroupInfo:
        return await self._call(
            "create_server_group", lambda c: network.create_group(c, name, policy)
        )

    async def list_server_groups(self) -> list[ServerGroupInfo]:
        return await self._call("list", network.groups)

    async def delete_server_group(self, group_id: str) -> None:
        await self._call("delete_server_group", lambda c: network.delete_group(c, group_id))

    async def create_network(
        self, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        return await self._call(
            "create_network", lambda c: network.create_network(c, name, metadata)
        )

    async def list_networks(
        self, *, metadata: Mapping[str, str] | None = None
    ) -> list[NetworkInfo]:
        return await self._call("list", lambda c: network.networks(c, metadata))

    async def delete_network(self, network_id: str) -> None:
        await self._call("delete_network", lambda c: network.delete_network(c, network_id))

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
        return await self._call("list", lambda c: network.subnets(c, network_id, metadata))

    async def delete_subnet(self, subnet_id: str) -> None:
        await self._call("delete_subnet", lambda c: network.delete_subnet(c, subnet_id))

    async def create_port(self, spec: PortSpec) -> PortInfo:
        return await self._call("create_port", lambda c: network.create_port(c, spec))

    async def list_ports(
        self,
        *,
        network_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        return await self._call("list", lambda c: network.ports(c, network_id, server_id, metadata))

    async def delete_port(self, port_id: str) -> None:
        await self._call("delete_port", lambda c: network.delete_port(c, port_id))

    # ------------------------------------------------------------------
    # VimDriver: telemetry
    # ------------------------------------------------------------------
    async def telemetry(self) -> list[TelemetryPoint]:
        return await self._call("list", _telemetry)

    async def aclose(self) -> None:
        """Nothing to release: the simulation holds no connections."""

    # ------------------------------------------------------------------
    # Inspection, workload and failure injection
    # ------------------------------------------------------------------
    def servers(self) -> list[ServerInfo]:
        """Every server, oldest first."""
        return self._cloud().servers()

    def hosts(self) -> list[HostInfo]:
        """Every host with its current load."""
        return self._cloud().hosts()

    def images(self) -> list[ImageInfo]:
        """Every image, oldest first."""
        return network.images(self._cloud())

    def ports(self) -> list[PortInfo]:
        """Every port."""
        return network.ports(self._cloud(), None, None, None)

    def add_image(self, name: str, version: str | None = None) -> ImageInfo:
        """Register an image (the same name and version twice: the same image)."""
        return network.add_image(self._cloud(), name, version)

    def set_quotas(self, quotas: QuotaRec) -> None:
        """Replace the project's quotas."""
        self._state.quotas = quotas

    def set_server_cpu(self, server_id: str, percent: float) -> None:
        """Set the CPU utilisation the server reports while ACTIVE (0-100)."""
        self._cloud().server(server_id).cpu = max(0.0, min(100.0, percent))

    def crash_server(self, server_id: str) -> None:
        """The server's guest dies: ERROR until it is rebooted hard, rebuilt or replaced."""
        self._cloud().crash_server(server_id)

    def degrade_host(self, host: str) -> None:
        """The host reports a fault: it keeps running but takes no new servers."""
        self._cloud().host(host).degraded = True

    def restore_host(self, host: str) -> None:
        """The host is repaired: up, not degraded nor forced down (ERROR servers stay ERROR)."""
        state = self._cloud().host(host)
        state.degraded = False
        state.up = True
        state.forced_down = False

    def fail_host(self, host: str) -> None:
        """The host goes down: every server on it (or moving to it) goes to ERROR."""
        self._cloud().fail_host(host)

    def force_down_host(self, host: str) -> None:
        """An operator fences the host: marked forced down, it reports down and degraded
        (a host fault) and takes no new servers; its servers keep running."""
        self._cloud().host(host).forced_down = True

    def disable_host(self, host: str) -> None:
        """Take the host out of scheduling (its servers keep running)."""
        self._cloud().host(host).enabled = False

    def enable_host(self, host: str) -> None:
        """Put the host back into scheduling."""
        self._cloud().host(host).enabled = True

    def fail_next(
        self, operation: str, *, temporary: bool, count: int = 1, retry_after: float = 5.0
    ) -> None:
        """Make the next ``count`` calls of ``operation`` fail.

        ``operation`` is one of :data:`OPERATIONS`; a temporary failure
        raises :class:`TemporaryVimError` with ``retry_after`` (clock
        seconds), a permanent one :class:`PermanentVimError`.
        """
        self._check_operation(operation)
        cloud = self._cloud()
        kind = "temporary" if temporary else "permanent"
        queue = self._state.failures.setdefault(operation, [])
        queue.extend(Injected(cloud.new_id(), kind, retry_after) for _ in range(count))

    def hang_next(self, operation: str, *, count: int = 1) -> asyncio.Event:
        """Make the next ``count`` calls of ``operation`` never answer.

        The VIM's API stops responding mid-call, as an overloaded or
        partitioned controller does: such a call ends only when its caller
        gives up on it (cancels it), and changes nothing. Returns an event
        set once the first of them hangs (in this process).
        """
        self._check_operation(operation)
        cloud = self._cloud()
        hung = asyncio.Event()
        queue = self._state.failures.setdefault(operation, [])
        for _ in range(count):
            injected = Injected(cloud.new_id(), "hang")
            self._hangs[injected.id] = hung
            queue.append(injected)
        return hung

    @staticmethod
    def _check_operation(operation: str) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}, expected one of {OPERATIONS}")


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
            TelemetryPoint(HOST_DEGRADED, labels, float(host.degraded or host.forced_down), now)
        )
        held = cloud.host_info(name)
        points += [
            TelemetryPoint(HOST_VCPUS, labels, float(held.vcpus), now),
            TelemetryPoint(HOST_VCPUS_USED, labels, float(held.vcpus_used), now),
            TelemetryPoint(HOST_RAM_MB, labels, float(held.ram_mb), now),
            TelemetryPoint(HOST_RAM_USED_MB, labels, float(held.ram_used_mb), now),
        ]
    return points
