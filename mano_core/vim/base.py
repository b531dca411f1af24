"""The VIM driver protocol and the value types it speaks.

A driver is a small async seam over one VIM (one cloud, one project in it).
Every method returns once the VIM has *accepted* the request; state changes
(BUILD -> ACTIVE, REBOOT -> ACTIVE, RESIZE -> VERIFY_RESIZE, MIGRATING ->
ACTIVE) happen over time and are observed with :meth:`VimDriver.get_server`.
Callers wait with :func:`mano_core.servers.wait_for`; drivers never wait for
a state change themselves.

Errors: drivers raise only the VIM errors of :mod:`mano_core.errors`, the
one place where they are documented:

- :class:`~mano_core.errors.TemporaryVimError` with ``retry_after``: the
  VIM is busy, overloaded or unreachable, or the server has a task in
  progress (HTTP 409 "in task_state ...", 429, 503, connection errors).
- :class:`~mano_core.errors.PermanentVimError`: retrying the same call will
  not help (the server is in a state that forbids the action, an image or
  flavour is missing, a bad request). Two subclasses say more:
  :class:`~mano_core.errors.QuotaExceeded` (the project's quota is used up)
  and :class:`~mano_core.errors.NoValidHost` (no host can take the server).
- :class:`~mano_core.errors.NotFound`: the named server, port, network,
  subnet, server group, image or host does not exist (HTTP 404). Deleting
  something already gone raises it too; callers that only want it gone
  suppress it.

Our own metadata: everything the VNFM creates carries ``metadata`` (on
servers: Nova server metadata; on networks, subnets and ports: a driver
may keep it as Neutron tags ``key=value``). ``list_*(metadata=...)``
returns what carries every given pair, so a create whose reply was lost is
found again instead of being repeated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class ServerStatus(enum.StrEnum):
    """Server states, named as Nova names them."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    REBOOT = "REBOOT"
    """A soft reboot (the guest is asked to restart) is under way."""
    HARD_REBOOT = "HARD_REBOOT"
    """A hard reboot (power cycle) is under way."""
    REBUILD = "REBUILD"
    MIGRATING = "MIGRATING"
    """A live migration is under way; the server keeps running."""
    RESIZE = "RESIZE"
    """A resize or a cold migration is under way; the server is stopped."""
    VERIFY_RESIZE = "VERIFY_RESIZE"
    """A resize or cold migration is done and waits to be confirmed or reverted.
    Until then the server runs with its new flavour (or on its new host), and
    the old one is still held."""
    REVERT_RESIZE = "REVERT_RESIZE"
    """A revert is under way: the server goes back to its old flavour and host."""
    SHUTOFF = "SHUTOFF"
    """Stopped (by :meth:`VimDriver.stop_server`)."""
    ERROR = "ERROR"
    DELETED = "DELETED"


TASK_STATES = frozenset(
    {
        ServerStatus.BUILD,
        ServerStatus.REBOOT,
        ServerStatus.HARD_REBOOT,
        ServerStatus.REBUILD,
        ServerStatus.MIGRATING,
        ServerStatus.RESIZE,
        ServerStatus.REVERT_RESIZE,
    }
)
"""States with a task in progress: the VIM refuses another action until it ends."""


@dataclass(frozen=True)
class Flavor:
    """Compute resources of one server.

    A driver uses the VIM flavour called ``name``; a VIM without one of that
    name may use one with exactly these sizes, else it raises
    :class:`~mano_core.errors.PermanentVimError`.
    """

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0
    """Root disk (GB)."""


class GroupPolicy(enum.StrEnum):
    """How the servers of a server group are placed relative to each other."""

    AFFINITY = "affinity"
    """All on one host; a server that cannot join them is not created."""
    ANTI_AFFINITY = "anti-affinity"
    """Each on a different host; a server that cannot be is not created."""
    SOFT_AFFINITY = "soft-affinity"
    """Together where possible."""
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"
    """Apart where possible."""


@dataclass(frozen=True)
class ServerSpec:
    """What to create."""

    name: str
    flavor: Flavor
    image: str
    """The image id (see :meth:`VimDriver.find_image`)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Carried on the server; the VNFM sets ``vnf``, ``vnfc`` and ``vdu``."""
    ports: tuple[str, ...] = ()
    """Ids of ports (made by :meth:`VimDriver.create_port`) to attach, in order.
    Deleting the server detaches them; they are not deleted with it."""
    availability_zone: str | None = None
    """Place the server in this zone; None: the VIM's choice."""
    host: str | None = None
    """Place the server on this host (an administrator's request); None: the
    VIM's choice. A host that cannot take it fails the create with
    :class:`~mano_core.errors.NoValidHost`."""
    server_group: str | None = None
    """Id of a server group (:meth:`VimDriver.create_server_group`) the server
    joins; its policy constrains where the server goes."""


@dataclass(frozen=True)
class ServerInfo:
    """A server as the VIM sees it now."""

    id: str
    name: str
    status: ServerStatus
    host: str | None
    address: str | None
    """The address the server's exporters are reached at (its management address)."""
    flavor: Flavor
    image: str
    """The image id it runs."""
    metadata: dict[str, str]
    created_at: float
    zone: str | None = None
    """Its availability zone."""
    fault: str | None = None
    """Why the server is in ERROR, when it is."""


class HostState(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class HostInfo:
    """A compute host (hypervisor), its capacity and its load."""

    name: str
    state: HostState
    """Whether its compute service reports in (Nova's service ``state``)."""
    enabled: bool
    """False when the host is disabled for scheduling (Nova's service ``status``)."""
    degraded: bool
    """True when the host reports a fault (hardware errors, noisy neighbour)."""
    vcpus: int
    ram_mb: int
    vcpus_used: int
    ram_used_mb: int
    servers: tuple[str, ...]
    """Ids of the servers it runs."""
    zone: str = "nova"
    """Its availability zone."""
    disk_gb: int = 0
    disk_used_gb: int = 0
    forced_down: bool = False
    """True when an operator marked its compute service down (fenced), so its
    servers may be evacuated even if it still seems to run."""

    @property
    def schedulable(self) -> bool:
        """Whether the VIM would place a new server here."""
        return (
            self.state is HostState.UP
            and self.enabled
            and not self.forced_down
            and not self.degraded
        )

    def fits(self, flavor: Flavor) -> bool:
        """Whether a server of ``flavor`` fits in what is left of the host."""
        return (
            self.vcpus - self.vcpus_used >= flavor.vcpus
            and self.ram_mb - self.ram_used_mb >= flavor.ram_mb
            and self.disk_gb - self.disk_used_gb >= flavor.disk_gb
        )


@dataclass(frozen=True)
class ServerGroupInfo:
    id: str
    name: str
    policy: GroupPolicy
    members: tuple[str, ...]
    """Ids of the servers in the group."""


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class SubnetInfo:
    id: str
    name: str
    network_id: str
    cidr: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class PortSpec:
    """A port to create on ``network_id`` (an address from its first subnet)."""

    name: str
    network_id: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortInfo:
    id: str
    name: str
    network_id: str
    address: str | None
    """Its fixed IP, when its network has a subnet."""
    server_id: str | None
    """The server it is attached to (Neutron's ``device_id``); None: unattached."""
    metadata: dict[str, str]


@dataclass(frozen=True)
class ImageInfo:
    """A software image the VIM holds."""

    id: str
    name: str
    version: str | None
    """The image's ``version`` property; None when it has none."""
    status: str = "active"
    """Glance's status; only an ``active`` image can boot a server."""


@dataclass(frozen=True)
class Quota:
    """One limit of the project and how much of it is used."""

    limit: int | None
    """None: unlimited."""
    used: int

    def allows(self, more: int) -> bool:
        """Whether ``more`` of it can still be taken."""
        return self.limit is None or self.used + more <= self.limit


@dataclass(frozen=True)
class Limits:
    """The project's quotas on the VIM (Nova's ``limits``, Neutron's quotas)."""

    instances: Quota
    vcpus: Quota
    ram_mb: Quota
    ports: Quota
    networks: Quota


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
HOST_VCPUS = "vim_host_vcpus"
"""vCPUs the host can allocate (after overcommit and reservations); labels: host."""
HOST_VCPUS_USED = "vim_host_vcpus_used"
"""vCPUs allocated to servers on the host; labels: host."""
HOST_RAM_MB = "vim_host_ram_mb"
"""RAM (MB) the host can allocate; labels: host."""
HOST_RAM_USED_MB = "vim_host_ram_used_mb"
"""RAM (MB) allocated to servers on the host; labels: host."""


class VimDriver(Protocol):
    """What the VNFM, the grants and the collector need from a VIM.

    Every method may raise the errors in the module docstring; only those.
    """

    name: str
    """The VIM's name, recorded on every VNF instance it hosts."""

    # --- hosts, quotas, images --------------------------------------------
    async def list_hosts(self) -> list[HostInfo]:
        """Every compute host with its capacity, load and state."""
        ...

    async def get_limits(self) -> Limits:
        """The project's quotas and their use."""
        ...

    async def list_images(self) -> list[ImageInfo]:
        """Every image the project can boot."""
        ...

    async def find_image(self, name: str, version: str | None = None) -> ImageInfo:
        """The active image called ``name`` whose ``version`` property is ``version``.

        ``version`` None: the newest active image of that name. Raises
        :class:`~mano_core.errors.NotFound` when there is none.
        """
        ...

    # --- servers ------------------------------------------------------------
    async def list_servers(self, *, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        """Every server (of the project); with ``metadata``, those carrying all its pairs."""
        ...

    async def get_server(self, server_id: str) -> ServerInfo:
        """The server as it is now."""
        ...

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        """Ask for a new server; it is returned in BUILD, and becomes ACTIVE or ERROR.

        Quota exhausted: :class:`~mano_core.errors.QuotaExceeded` at once.
        No host fits (placement hints, group policy, capacity): either
        :class:`~mano_core.errors.NoValidHost` at once or the server goes to
        ERROR with that fault (Nova schedules after accepting the request).
        """
        ...

    async def delete_server(self, server_id: str) -> None:
        """Delete the server; its ports stay, detached. NotFound when it is gone."""
        ...

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        """Reboot: soft (the guest restarts, status REBOOT) or hard (power cycle,
        HARD_REBOOT). A soft reboot of a server in ERROR or SHUTOFF is refused
        (:class:`~mano_core.errors.PermanentVimError`); a hard reboot of one in
        ERROR is how it is brought back."""
        ...

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        """Reinstall the server from ``image`` (an image id; None: its current one),
        keeping its id, ports and address (status REBUILD)."""
        ...

    async def resize_server(self, server_id: str, flavor: Flavor) -> None:
        """Give the server another flavour: RESIZE, then VERIFY_RESIZE, where it
        waits for :meth:`confirm_resize` or :meth:`revert_resize`."""
        ...

    async def migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        """Cold-migrate to ``host`` (None: the VIM's choice): RESIZE, then
        VERIFY_RESIZE on the new host, waiting for confirm or revert."""
        ...

    async def live_migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        """Move a running (ACTIVE) server to ``host`` (None: the VIM's choice):
        MIGRATING, then ACTIVE on the new host. No confirmation is needed."""
        ...

    async def confirm_resize(self, server_id: str) -> None:
        """Keep the result of a resize or cold migration (from VERIFY_RESIZE to
        ACTIVE); the old flavour or host is released."""
        ...

    async def revert_resize(self, server_id: str) -> None:
        """Undo a resize or cold migration (from VERIFY_RESIZE: REVERT_RESIZE,
        then ACTIVE with the old flavour on the old host)."""
        ...

    async def stop_server(self, server_id: str) -> None:
        """Power the server off (ACTIVE or ERROR -> SHUTOFF); it keeps its resources."""
        ...

    async def start_server(self, server_id: str) -> None:
        """Power a SHUTOFF server on (-> ACTIVE)."""
        ...

    # --- server groups ------------------------------------------------------
    async def create_server_group(self, name: str, policy: GroupPolicy) -> ServerGroupInfo:
        """A new server group (servers join it at creation, by ``ServerSpec.server_group``)."""
        ...

    async def list_server_groups(self) -> list[ServerGroupInfo]:
        """Every server group of the project."""
        ...

    async def delete_server_group(self, group_id: str) -> None:
        """Delete the group (its servers stay)."""
        ...

    # --- networks -----------------------------------------------------------
    async def create_network(
        self, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        """A new network; :class:`~mano_core.errors.QuotaExceeded` over quota."""
        ...

    async def list_networks(
        self, *, metadata: Mapping[str, str] | None = None
    ) -> list[NetworkInfo]:
        """Every network; with ``metadata``, those carrying all its pairs."""
        ...

    async def delete_network(self, network_id: str) -> None:
        """Delete a network and its subnets; one that still has ports is refused
        (:class:`~mano_core.errors.PermanentVimError`)."""
        ...

    async def create_subnet(
        self,
        network_id: str,
        name: str,
        cidr: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> SubnetInfo:
        """A subnet of ``network_id``: ports made on the network get addresses from it."""
        ...

    async def list_subnets(
        self,
        *,
        network_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[SubnetInfo]:
        """Every subnet (of one network); with ``metadata``, those carrying all its pairs."""
        ...

    async def delete_subnet(self, subnet_id: str) -> None:
        """Delete a subnet; one whose addresses ports still hold is refused
        (:class:`~mano_core.errors.PermanentVimError`)."""
        ...

    async def create_port(self, spec: PortSpec) -> PortInfo:
        """A new port, unattached; :class:`~mano_core.errors.QuotaExceeded` over quota."""
        ...

    async def list_ports(
        self,
        *,
        network_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        """Ports, filtered by network, by the server they are attached to, and by metadata."""
        ...

    async def delete_port(self, port_id: str) -> None:
        """Delete a port (detaching it from its server first, if it is attached)."""
        ...

    # --- telemetry ----------------------------------------------------------
    async def telemetry(self) -> list[TelemetryPoint]:
        """The infrastructure KPIs above, for every server and host, now."""
        ...

    async def aclose(self) -> None:
        """Release connections; the driver is not used afterwards."""
        ...
