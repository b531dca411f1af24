"""The VIM driver protocol and the value types it speaks.

A driver is a small async seam: every method returns once the VIM has
accepted the request; state changes (BUILD -> ACTIVE, REBOOT -> ACTIVE,
MIGRATING -> ACTIVE) happen over time and are observed with
:meth:`VimDriver.get_server`. Drivers raise only
:class:`~mano_core.errors.TemporaryVimError`,
:class:`~mano_core.errors.PermanentVimError` or
:class:`~mano_core.errors.NotFound`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class ServerStatus(enum.StrEnum):
    """Server states, named as Nova names them."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    REBOOT = "REBOOT"
    HARD_REBOOT = "HARD_REBOOT"
    REBUILD = "REBUILD"
    MIGRATING = "MIGRATING"
    RESIZE = "RESIZE"
    SHUTOFF = "SHUTOFF"
    ERROR = "ERROR"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Flavor:
    """Compute resources of one server."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0


@dataclass(frozen=True)
class ServerSpec:
    """What to create."""

    name: str
    flavor: Flavor
    image: str
    metadata: dict[str, str] = field(default_factory=dict)
    """Carried on the server; the VNFM sets ``vnf``, ``vnfc`` and ``vdu``."""
    different_host: tuple[str, ...] = ()
    """Server ids to keep away from (soft anti-affinity across a VDU's VNFCs)."""


@dataclass(frozen=True)
class ServerInfo:
    """A server as the VIM sees it now."""

    id: str
    name: str
    status: ServerStatus
    host: str | None
    address: str | None
    """The server's IP address (where its exporters listen)."""
    flavor: Flavor
    image: str
    metadata: dict[str, str]
    created_at: float
    fault: str | None = None
    """Why the server is in ERROR, when it is."""


class HostState(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class HostInfo:
    """A compute host (hypervisor) and its load."""

    name: str
    state: HostState
    enabled: bool
    """False when the host is disabled for scheduling."""
    degraded: bool
    """True when the host reports a fault (hardware errors, noisy neighbour)."""
    vcpus: int
    ram_mb: int
    vcpus_used: int
    ram_used_mb: int
    servers: tuple[str, ...]


@dataclass(frozen=True)
class TelemetryPoint:
    """One infrastructure measurement: a KPI with labels (``server``/``host``)."""

    kpi: str
    labels: dict[str, str]
    value: float
    ts: float


# KPI names of VIM telemetry: the same from every driver.
SERVER_CPU = "vim_server_cpu_utilisation"
"""Server vCPU utilisation, percent 0-100; labels: server, host."""
SERVER_UP = "vim_server_up"
"""1 when the server is ACTIVE, else 0; labels: server, host, status."""
HOST_CPU = "vim_host_cpu_utilisation"
"""Host CPU utilisation, percent 0-100; labels: host."""
HOST_UP = "vim_host_up"
"""1 when the host is up and enabled, else 0; labels: host."""
HOST_DEGRADED = "vim_host_degraded"
"""1 when the host reports a fault, else 0; labels: host."""


class VimDriver(Protocol):
    """What the VNFM and the collector need from a VIM."""

    name: str
    """The VIM's name, recorded on every VNF instance it hosts."""

    async def list_hosts(self) -> list[HostInfo]: ...

    async def list_servers(self) -> list[ServerInfo]: ...

    async def get_server(self, server_id: str) -> ServerInfo: ...

    async def create_server(self, spec: ServerSpec) -> ServerInfo: ...

    async def delete_server(self, server_id: str) -> None: ...

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None: ...

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None: ...

    async def migrate_server(
        self, server_id: str, *, destination: str | None = None, live: bool = True
    ) -> None: ...

    async def telemetry(self) -> list[TelemetryPoint]: ...

    async def aclose(self) -> None: ...
