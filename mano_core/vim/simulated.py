"""A simulated VIM: compute hosts with capacity, servers, and failures you inject.

It is the default VIM of the demo and the VIM of most tests. Servers change
state in clock time, lazily: every call first settles what has finished by
``clock.now()`` (BUILD -> ACTIVE after ``boot_s``, REBOOT -> ACTIVE after
``reboot_s``, MIGRATING -> ACTIVE on the new host after ``migrate_s``), so
there are no background tasks and an accelerated clock speeds everything up.

Each server gets its own loopback address (``127.a.b.n``), so the exporters
of different servers can all listen on the same port, as on real VMs.

Failure injection and workload hooks (``crash_server``, ``degrade_host``,
``fail_host``, ``fail_next``, ``hang_next``, ``set_server_cpu``) are synchronous, for tests
and the demo scenario.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bus.clock import Clock
from mano_core.errors import NotFound, PermanentVimError, TemporaryVimError
from mano_core.vim.base import (
    HOST_CPU,
    HOST_DEGRADED,
    HOST_UP,
    SERVER_CPU,
    SERVER_UP,
    Flavor,
    HostInfo,
    HostState,
    ServerInfo,
    ServerSpec,
    ServerStatus,
    TelemetryPoint,
)

OPERATIONS = ("create", "delete", "reboot", "rebuild", "migrate")
"""The operations :meth:`SimulatedVim.fail_next` and :meth:`~SimulatedVim.hang_next` act on."""

DEFAULT_SERVER_CPU = 10.0
"""CPU utilisation (percent) of a new server until the workload sets it."""

_BUSY = frozenset(
    {
        ServerStatus.BUILD,
        ServerStatus.REBOOT,
        ServerStatus.HARD_REBOOT,
        ServerStatus.REBUILD,
        ServerStatus.MIGRATING,
        ServerStatus.RESIZE,
    }
)
"""States with a task in progress: another task is refused until it ends."""


@dataclass(frozen=True)
class SimHost:
    """A compute host of the simulated VIM and its capacity."""

    name: str
    vcpus: int
    ram_mb: int


@dataclass
class _Host:
    spec: SimHost
    up: bool = True
    enabled: bool = True
    degraded: bool = False


@dataclass
class _Task:
    """A state change in progress, finished at ``done_at`` (clock time)."""

    done_at: float
    destination: str | None = None
    """For migrations: the host the server moves to."""


@dataclass
class _Server:
    id: str
    name: str
    flavor: Flavor
    image: str
    metadata: dict[str, str]
    different_host: tuple[str, ...]
    created_at: float
    address: str
    host: str
    status: ServerStatus = ServerStatus.BUILD
    fault: str | None = None
    cpu: float = DEFAULT_SERVER_CPU
    task: _Task | None = None

    def info(self) -> ServerInfo:
        return ServerInfo(
            id=self.id,
            name=self.name,
            status=self.status,
            host=self.host,
            address=self.address,
            flavor=self.flavor,
            image=self.image,
            metadata=dict(self.metadata),
            created_at=self.created_at,
            fault=self.fault,
        )


@dataclass
class _Injected:
    temporary: bool
    retry_after: float
    hang: asyncio.Event | None = None
    """Set: the call never answers, and this is set once it hangs."""


@dataclass
class _Failures:
    """Failures queued by :meth:`SimulatedVim.fail_next` and ``hang_next``, per operation."""

    queued: dict[str, deque[_Injected]] = field(
        default_factory=lambda: {op: deque() for op in OPERATIONS}
    )

    async def apply(self, operation: str) -> None:
        queue = self.queued[operation]
        if not queue:
            return
        injected = queue.popleft()
        if injected.hang is not None:
            # An API that stops answering: only the caller giving up ends the call.
            injected.hang.set()
            await asyncio.Event().wait()
        if injected.temporary:
            raise TemporaryVimError(
                f"injected temporary failure of {operation}", retry_after=injected.retry_after
            )
        raise PermanentVimError(f"injected permanent failure of {operation}")


class SimulatedVim:
    """A VIM in memory, implementing :class:`~mano_core.vim.base.VimDriver`.

    ``address_base`` is the address before the first server's (the first
    gets ``address_base + 1``). Left unset, a random ``127.a.b.0`` block is
    drawn from the OS, never ``127.0.x.x``, and not from ``seed``: ports are
    shared by every process on the machine, so two simulated VIMs (two test
    runs, a test and the demo) must not hand out the same addresses.
    ``seed`` makes the server ids reproducible; None draws them from the OS.
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
        address_base: str | None = None,
        seed: int | None = None,
    ) -> None:
        names = [h.name for h in hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be unique, got {names}")
        self.name = name
        self._clock = clock
        self._hosts = {h.name: _Host(h) for h in hosts}
        self._servers: dict[str, _Server] = {}
        self._boot_s = boot_s
        self._reboot_s = reboot_s
        self._rebuild_s = rebuild_s
        self._migrate_s = migrate_s
        self._rng = random.Random(seed)
        if address_base is None:
            system = random.SystemRandom()
            address_base = f"127.{system.randint(1, 254)}.{system.randint(0, 255)}.0"
        self._next_address = ipaddress.IPv4Address(address_base) + 1
        self._failures = _Failures()

    # ------------------------------------------------------------------
    # VimDriver
    # ------------------------------------------------------------------
    async def list_hosts(self) -> list[HostInfo]:
        return self.hosts()

    async def list_servers(self) -> list[ServerInfo]:
        return self.servers()

    async def get_server(self, server_id: str) -> ServerInfo:
        self._settle()
        return self._server(server_id).info()

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        self._settle()
        await self._failures.apply("create")
        host = self._schedule(spec.flavor, avoid=spec.different_host, exclude=())
        now = self._clock.now()
        # Addresses are never reused: a stale exporter or scrape target of a
        # deleted server must not be mistaken for a new one.
        address = str(self._next_address)
        self._next_address += 1
        server = _Server(
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            name=spec.name,
            flavor=spec.flavor,
            image=spec.image,
            metadata=dict(spec.metadata),
            different_host=spec.different_host,
            created_at=now,
            address=address,
            host=host,
            task=_Task(done_at=now + self._boot_s),
        )
        self._servers[server.id] = server
        return server.info()

    async def delete_server(self, server_id: str) -> None:
        self._settle()
        self._server(server_id)
        await self._failures.apply("delete")
        del self._servers[server_id]

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        self._settle()
        server = self._server(server_id)
        await self._failures.apply("reboot")
        self._check_can_act(server, "reboot")
        if not hard and server.status is ServerStatus.ERROR:
            raise PermanentVimError(f"server {server_id} is in ERROR: only a hard reboot helps")
        server.status = ServerStatus.HARD_REBOOT if hard else ServerStatus.REBOOT
        server.fault = None
        server.task = _Task(done_at=self._clock.now() + self._reboot_s)

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        self._settle()
        server = self._server(server_id)
        await self._failures.apply("rebuild")
        self._check_can_act(server, "rebuild")
        server.status = ServerStatus.REBUILD
        server.fault = None
        server.image = image or server.image
        server.task = _Task(done_at=self._clock.now() + self._rebuild_s)

    async def migrate_server(
        self, server_id: str, *, destination: str | None = None, live: bool = True
    ) -> None:
        self._settle()
        server = self._server(server_id)
        await self._failures.apply("migrate")
        self._check_can_act(server, "migrate")
        if server.status is not ServerStatus.ACTIVE:
            raise PermanentVimError(
                f"server {server_id} is {server.status}: only an ACTIVE server can be migrated"
            )
        if destination is None:
            target = self._schedule(
                server.flavor, avoid=server.different_host, exclude=(server.host,)
            )
        else:
            target = self._check_destination(server, destination)
        # A live migration keeps the server running; a cold one stops it
        # (Nova shows RESIZE while it moves).
        server.status = ServerStatus.MIGRATING if live else ServerStatus.RESIZE
        server.task = _Task(done_at=self._clock.now() + self._migrate_s, destination=target)

    async def telemetry(self) -> list[TelemetryPoint]:
        self._settle()
        now = self._clock.now()
        points: list[TelemetryPoint] = []
        host_load = dict.fromkeys(self._hosts, 0.0)
        for server in self._servers.values():
            active = server.status is ServerStatus.ACTIVE
            cpu = server.cpu if active else 0.0
            host_load[server.host] += cpu * server.flavor.vcpus
            labels = {"server": server.id, "host": server.host}
            points.append(TelemetryPoint(SERVER_CPU, labels, cpu, now))
            points.append(
                TelemetryPoint(
                    SERVER_UP, {**labels, "status": server.status.value}, float(active), now
                )
            )
        for name, host in self._hosts.items():
            labels = {"host": name}
            cpu = min(100.0, host_load[name] / host.spec.vcpus) if host.up else 0.0
            points.append(TelemetryPoint(HOST_CPU, labels, cpu, now))
            points.append(TelemetryPoint(HOST_UP, labels, float(host.up and host.enabled), now))
            points.append(TelemetryPoint(HOST_DEGRADED, labels, float(host.degraded), now))
        return points

    async def aclose(self) -> None:
        """Nothing to release: the simulation holds no connections."""

    # ------------------------------------------------------------------
    # Inspection, workload and failure injection (synchronous)
    # ------------------------------------------------------------------
    def servers(self) -> list[ServerInfo]:
        """Every server, oldest first."""
        self._settle()
        return [s.info() for s in sorted(self._servers.values(), key=lambda s: s.created_at)]

    def hosts(self) -> list[HostInfo]:
        """Every host with its current load."""
        self._settle()
        return [self._host_info(name) for name in self._hosts]

    def set_server_cpu(self, server_id: str, percent: float) -> None:
        """Set the CPU utilisation the server reports while ACTIVE (0-100)."""
        self._server(server_id).cpu = max(0.0, min(100.0, percent))

    def crash_server(self, server_id: str) -> None:
        """The server's guest dies: ERROR until it is rebooted, rebuilt or replaced."""
        self._settle()
        server = self._server(server_id)
        server.status = ServerStatus.ERROR
        server.fault = "guest crashed (injected)"
        server.task = None

    def degrade_host(self, host: str) -> None:
        """The host reports a fault: it keeps running but takes no new servers."""
        self._host(host).degraded = True

    def restore_host(self, host: str) -> None:
        """The host is repaired: up and no longer degraded (its ERROR servers stay ERROR)."""
        self._settle()
        state = self._host(host)
        state.degraded = False
        state.up = True

    def fail_host(self, host: str) -> None:
        """The host goes down: every server on it (or moving to it) goes to ERROR."""
        self._settle()
        self._host(host).up = False
        for server in self._servers.values():
            moving_here = server.task is not None and server.task.destination == host
            if server.host == host or moving_here:
                server.status = ServerStatus.ERROR
                server.fault = f"host {host} is down"
                server.task = None

    def disable_host(self, host: str) -> None:
        """Take the host out of scheduling (its servers keep running)."""
        self._host(host).enabled = False

    def enable_host(self, host: str) -> None:
        """Put the host back into scheduling."""
        self._host(host).enabled = True

    def fail_next(
        self, operation: str, *, temporary: bool, count: int = 1, retry_after: float = 5.0
    ) -> None:
        """Make the next ``count`` calls of ``operation`` fail.

        ``operation`` is one of :data:`OPERATIONS`; a temporary failure
        raises :class:`TemporaryVimError` with ``retry_after`` (clock
        seconds), a permanent one :class:`PermanentVimError`.
        """
        self._check_operation(operation)
        for _ in range(count):
            self._failures.queued[operation].append(_Injected(temporary, retry_after))

    def hang_next(self, operation: str, *, count: int = 1) -> asyncio.Event:
        """Make the next ``count`` calls of ``operation`` never answer.

        The VIM's API stops responding mid-call, as an overloaded or
        partitioned controller does: such a call ends only when its caller
        gives up on it (cancels it), and changes nothing. Returns an event
        set once the first of them hangs.
        """
        self._check_operation(operation)
        hung = asyncio.Event()
        for _ in range(count):
            self._failures.queued[operation].append(_Injected(False, 0.0, hang=hung))
        return hung

    @staticmethod
    def _check_operation(operation: str) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}, expected one of {OPERATIONS}")

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------
    def _settle(self) -> None:
        """Finish every task whose time has come."""
        now = self._clock.now()
        for server in self._servers.values():
            task = server.task
            if task is None or task.done_at > now:
                continue
            server.task = None
            if task.destination is not None:
                server.host = task.destination
            if self._hosts[server.host].up:
                server.status = ServerStatus.ACTIVE
            else:
                server.status = ServerStatus.ERROR
                server.fault = f"host {server.host} is down"

    def _server(self, server_id: str) -> _Server:
        try:
            return self._servers[server_id]
        except KeyError:
            raise NotFound(f"server {server_id} does not exist in VIM {self.name}") from None

    def _host(self, host: str) -> _Host:
        try:
            return self._hosts[host]
        except KeyError:
            raise NotFound(f"host {host} does not exist in VIM {self.name}") from None

    def _check_can_act(self, server: _Server, action: str) -> None:
        if server.task is not None:
            raise TemporaryVimError(
                f"cannot {action} server {server.id}: it is {server.status}",
                retry_after=max(1.0, server.task.done_at - self._clock.now()),
            )
        if not self._hosts[server.host].up:
            raise PermanentVimError(
                f"cannot {action} server {server.id}: its host {server.host} is down"
            )

    def _used(self, host: str) -> tuple[int, int]:
        """vCPUs and RAM taken on ``host``, including servers migrating to it."""
        vcpus = ram = 0
        for server in self._servers.values():
            moving_here = server.task is not None and server.task.destination == host
            if server.host == host or moving_here:
                vcpus += server.flavor.vcpus
                ram += server.flavor.ram_mb
        return vcpus, ram

    def _fits(self, host: str, flavor: Flavor) -> bool:
        state = self._hosts[host]
        vcpus, ram = self._used(host)
        return (
            state.up
            and state.enabled
            and not state.degraded
            and state.spec.vcpus - vcpus >= flavor.vcpus
            and state.spec.ram_mb - ram >= flavor.ram_mb
        )

    def _schedule(self, flavor: Flavor, *, avoid: Sequence[str], exclude: Sequence[str]) -> str:
        """The host for a server: fits, then away from ``avoid``'s hosts, then most free vCPUs."""
        candidates = [h for h in self._hosts if h not in exclude and self._fits(h, flavor)]
        if not candidates:
            raise PermanentVimError(
                f"no valid host for flavor {flavor.name} "
                f"({flavor.vcpus} vCPU, {flavor.ram_mb} MB) in VIM {self.name}"
            )
        crowded = {self._servers[s].host for s in avoid if s in self._servers}

        def preference(host: str) -> tuple[bool, int, str]:
            free = self._hosts[host].spec.vcpus - self._used(host)[0]
            return (host in crowded, -free, host)

        return min(candidates, key=preference)

    def _check_destination(self, server: _Server, destination: str) -> str:
        self._host(destination)
        if destination == server.host:
            raise PermanentVimError(f"server {server.id} is already on host {destination}")
        if not self._fits(destination, server.flavor):
            raise PermanentVimError(
                f"host {destination} cannot take server {server.id} "
                "(down, disabled, degraded or full)"
            )
        return destination

    def _host_info(self, name: str) -> HostInfo:
        state = self._hosts[name]
        vcpus, ram = self._used(name)
        return HostInfo(
            name=name,
            state=HostState.UP if state.up else HostState.DOWN,
            enabled=state.enabled,
            degraded=state.degraded,
            vcpus=state.spec.vcpus,
            ram_mb=state.spec.ram_mb,
            vcpus_used=vcpus,
            ram_used_mb=ram,
            servers=tuple(s.id for s in self._servers.values() if s.host == name),
        )
