"""The simulated cloud's state: plain records, one document per VIM.

Everything the simulated VIM knows is in one :class:`CloudState`, so it can
be stored whole (as JSON) and changed under one compare-and-set: every
process that shares the store sees the same cloud. Time-driven changes are
not stored as they happen: a server's :class:`Task` says when it ends, and
:mod:`mano_core.vim.simulated.cloud` settles what has ended whenever the
state is read.
"""

from __future__ import annotations

import msgspec

from mano_core.vim.base import Flavor, GroupPolicy, ServerStatus

DEFAULT_SERVER_CPU = 10.0
"""CPU utilisation (percent) of a new server until the workload sets it."""


class FlavorRec(msgspec.Struct, frozen=True):
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0

    @classmethod
    def of(cls, flavor: Flavor) -> FlavorRec:
        return cls(flavor.name, flavor.vcpus, flavor.ram_mb, flavor.disk_gb)

    def flavor(self) -> Flavor:
        return Flavor(self.name, self.vcpus, self.ram_mb, self.disk_gb)


class HostRec(msgspec.Struct):
    name: str
    zone: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    up: bool = True
    enabled: bool = True
    degraded: bool = False
    forced_down: bool = False


class Task(msgspec.Struct):
    """A state change in progress, finished at ``done_at`` (clock time)."""

    kind: str
    """boot, reboot, hard_reboot, rebuild, resize, migrate, live_migrate,
    revert, stop or start."""
    done_at: float
    destination: str | None = None
    """Where the server ends up (resize, migrations); None: where it is."""
    flavor: FlavorRec | None = None
    """The flavour it ends up with (resize); None: its own."""


class Pending(msgspec.Struct):
    """What a server in VERIFY_RESIZE goes back to if reverted (still held)."""

    host: str
    flavor: FlavorRec


class ServerRec(msgspec.Struct):
    id: str
    name: str
    flavor: FlavorRec
    image: str
    metadata: dict[str, str]
    created_at: float
    address: str
    host: str
    zone: str
    group: str | None = None
    ports: list[str] = []
    status: ServerStatus = ServerStatus.BUILD
    fault: str | None = None
    cpu: float = DEFAULT_SERVER_CPU
    task: Task | None = None
    pending: Pending | None = None


class GroupRec(msgspec.Struct):
    id: str
    name: str
    policy: GroupPolicy


class NetworkRec(msgspec.Struct):
    id: str
    name: str
    metadata: dict[str, str]


class SubnetRec(msgspec.Struct):
    id: str
    name: str
    network_id: str
    cidr: str
    metadata: dict[str, str]
    next_host: int = 2
    """Index of the next address handed out (.1 is the gateway's)."""


class PortRec(msgspec.Struct):
    id: str
    name: str
    network_id: str
    metadata: dict[str, str]
    subnet_id: str | None = None
    address: str | None = None
    server_id: str | None = None


class ImageRec(msgspec.Struct):
    id: str
    name: str
    version: str | None
    created_at: float
    status: str = "active"


class QuotaRec(msgspec.Struct):
    """Project limits; None: unlimited."""

    instances: int | None = None
    vcpus: int | None = None
    ram_mb: int | None = None
    ports: int | None = None
    networks: int | None = None


class VimCall(msgspec.Struct, frozen=True):
    """One call the simulated VIM answered, as its call log keeps it."""

    at: float
    operation: str
    """The operation (``create``, ``reboot``, ``delete``, ``create_port``...)."""
    subject: str
    """What it acted on: the server (or port, network...) id; for a create, the new id."""
    metadata: dict[str, str] = {}
    """A created server's metadata (the VNFM's ``vnf``, ``vnfc``, ``op``...)."""
    error: str | None = None
    """Set when an injected failure answered the call instead (nothing changed)."""


class Injected(msgspec.Struct):
    """A failure queued for the next call of an operation."""

    id: str
    kind: str
    """``temporary``, ``permanent``, ``hang`` (the call never answers) or
    ``pass`` (the call goes through: failures queued ``after`` some calls)."""
    retry_after: float = 5.0


class Timings(msgspec.Struct, frozen=True):
    """Clock seconds each kind of task takes."""

    boot: float = 20.0
    reboot: float = 10.0
    rebuild: float = 20.0
    migrate: float = 8.0
    resize: float = 10.0
    power: float = 2.0
    """Stopping or starting a server."""

    def of(self, kind: str) -> float:
        return {
            "boot": self.boot,
            "reboot": self.reboot,
            "hard_reboot": self.reboot,
            "rebuild": self.rebuild,
            "migrate": self.migrate,
            "live_migrate": self.migrate,
            "resize": self.resize,
            "revert": self.resize,
            "stop": self.power,
            "start": self.power,
        }[kind]


class CloudState(msgspec.Struct):
    """One simulated VIM, whole."""

    hosts: dict[str, HostRec]
    timings: Timings
    next_address: int
    """The next management address (as an integer), never reused."""
    id_seed: str
    """Ids are derived from it and ``serial``: the same seed, the same ids."""
    serial: int = 0
    servers: dict[str, ServerRec] = {}
    groups: dict[str, GroupRec] = {}
    networks: dict[str, NetworkRec] = {}
    subnets: dict[str, SubnetRec] = {}
    ports: dict[str, PortRec] = {}
    images: dict[str, ImageRec] = {}
    quotas: QuotaRec = msgspec.field(default_factory=QuotaRec)
    failures: dict[str, list[Injected]] = {}
    """Queued failures by operation name (``any``: whatever the call)."""
