"""The simulated cloud's compute behaviour, over one :class:`CloudState` at one instant.

A :class:`Cloud` is made for one call: it first settles every task that has
ended by ``now`` (BUILD -> ACTIVE, RESIZE -> VERIFY_RESIZE, MIGRATING ->
ACTIVE on the new host, ...), then applies the call, raising the driver
errors of :mod:`mano_core.vim.base` when the cloud would refuse it. It
never waits: state changes happen in clock time, lazily, so there are no
background tasks and an accelerated clock speeds everything up.

Capacity follows Nova's allocations: a server holds its flavour on its
host, plus its target while it moves or resizes, plus its old host and
flavour while it waits in VERIFY_RESIZE.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator, Mapping

from mano_core.errors import (
    NotFound,
    NoValidHost,
    PermanentVimError,
    QuotaExceeded,
    TemporaryVimError,
)
from mano_core.vim.base import (
    GroupPolicy,
    HostInfo,
    HostState,
    Limits,
    Quota,
    ServerInfo,
    ServerSpec,
    ServerStatus,
)
from mano_core.vim.simulated.state import (
    CloudState,
    FlavorRec,
    HostRec,
    Pending,
    ServerRec,
    Task,
)

_ENDS_IN: dict[str, ServerStatus] = {
    "boot": ServerStatus.ACTIVE,
    "reboot": ServerStatus.ACTIVE,
    "hard_reboot": ServerStatus.ACTIVE,
    "rebuild": ServerStatus.ACTIVE,
    "live_migrate": ServerStatus.ACTIVE,
    "revert": ServerStatus.ACTIVE,
    "start": ServerStatus.ACTIVE,
    "resize": ServerStatus.VERIFY_RESIZE,
    "migrate": ServerStatus.VERIFY_RESIZE,
    "stop": ServerStatus.SHUTOFF,
}
_SHOWN_AS: dict[str, ServerStatus] = {
    "boot": ServerStatus.BUILD,
    "reboot": ServerStatus.REBOOT,
    "hard_reboot": ServerStatus.HARD_REBOOT,
    "rebuild": ServerStatus.REBUILD,
    "live_migrate": ServerStatus.MIGRATING,
    "resize": ServerStatus.RESIZE,
    "migrate": ServerStatus.RESIZE,
    "revert": ServerStatus.REVERT_RESIZE,
}
"""What a server shows while a task runs (stop and start keep the status they start from)."""

_ALLOWED_FROM: dict[str, frozenset[ServerStatus]] = {
    "reboot": frozenset({ServerStatus.ACTIVE}),
    "hard_reboot": frozenset({ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.ERROR}),
    "rebuild": frozenset({ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.ERROR}),
    "resize": frozenset({ServerStatus.ACTIVE, ServerStatus.SHUTOFF}),
    "migrate": frozenset({ServerStatus.ACTIVE, ServerStatus.SHUTOFF}),
    "live_migrate": frozenset({ServerStatus.ACTIVE}),
    "confirm": frozenset({ServerStatus.VERIFY_RESIZE}),
    "revert": frozenset({ServerStatus.VERIFY_RESIZE}),
    "stop": frozenset({ServerStatus.ACTIVE, ServerStatus.ERROR}),
    "start": frozenset({ServerStatus.SHUTOFF}),
}
"""The states each action is accepted in (as Nova's ``check_instance_state``)."""


class Cloud:
    """The simulated VIM called ``vim`` at clock time ``now``."""

    def __init__(self, state: CloudState, now: float, vim: str) -> None:
        self.state = state
        self.now = now
        self.vim = vim
        self._settle()

    # --- ids and lookups --------------------------------------------------
    def new_id(self) -> str:
        self.state.serial += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.state.id_seed}:{self.state.serial}"))

    def server(self, server_id: str) -> ServerRec:
        try:
            return self.state.servers[server_id]
        except KeyError:
            raise NotFound(f"server {server_id} does not exist in VIM {self.vim}") from None

    def host(self, name: str) -> HostRec:
        try:
            return self.state.hosts[name]
        except KeyError:
            raise NotFound(f"host {name} does not exist in VIM {self.vim}") from None

    def servers(self, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        """Every server (carrying all of ``metadata``), oldest first."""
        wanted = dict(metadata or {}).items()
        chosen = [s for s in self.state.servers.values() if wanted <= s.metadata.items()]
        return [info(s) for s in sorted(chosen, key=lambda s: (s.created_at, s.id))]

    def hosts(self) -> list[HostInfo]:
        return [self.host_info(name) for name in self.state.hosts]

    def host_info(self, name: str) -> HostInfo:
        host = self.state.hosts[name]
        vcpus, ram, disk = self._used(name)
        return HostInfo(
            name=name,
            # As in Nova: a compute service forced down reports down, a host fault.
            state=HostState.UP if host.up and not host.forced_down else HostState.DOWN,
            enabled=host.enabled,
            # As the OpenStack driver reports: fenced or taken out of service is a host fault.
            degraded=host.degraded or host.forced_down or not host.enabled,
            vcpus=host.vcpus,
            ram_mb=host.ram_mb,
            vcpus_used=vcpus,
            ram_used_mb=ram,
            servers=tuple(s.id for s in self.state.servers.values() if s.host == name),
            zone=host.zone,
            disk_gb=host.disk_gb,
            disk_used_gb=disk,
            forced_down=host.forced_down,
        )

    def limits(self) -> Limits:
        q = self.state.quotas
        servers = self.state.servers.values()
        return Limits(
            instances=Quota(q.instances, len(self.state.servers)),
            vcpus=Quota(q.vcpus, sum(s.flavor.vcpus for s in servers)),
            ram_mb=Quota(q.ram_mb, sum(s.flavor.ram_mb for s in servers)),
            ports=Quota(q.ports, len(self.state.ports)),
            networks=Quota(q.networks, len(self.state.networks)),
        )

    # --- servers ------------------------------------------------------------
    def create_server(self, spec: ServerSpec) -> ServerInfo:
        flavor = FlavorRec.of(spec.flavor)
        limits = self.limits()
        if not limits.instances.allows(1):
            raise QuotaExceeded(f"quota of {limits.instances.limit} instances exceeded")
        self._check_compute_quota(limits, flavor.vcpus, flavor.ram_mb)
        image = self.state.images.get(spec.image)
        if image is None or image.status != "active":
            raise PermanentVimError(f"image {spec.image} does not exist in VIM {self.vim}")
        if spec.server_group is not None and spec.server_group not in self.state.groups:
            raise NotFound(f"server group {spec.server_group} does not exist in VIM {self.vim}")
        for port_id in spec.ports:
            port = self.state.ports.get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} does not exist in VIM {self.vim}")
            if port.server_id is not None:
                raise PermanentVimError(f"port {port_id} is in use by server {port.server_id}")
        host = self.schedule(
            flavor,
            zone=spec.availability_zone,
            host=spec.host,
            group=spec.server_group,
            exclude=(),
        )
        # Addresses are never reused: a stale exporter or scrape target of a
        # deleted server must not be mistaken for a new one.
        address = str(ipaddress.IPv4Address(self.state.next_address))
        self.state.next_address += 1
        server = ServerRec(
            id=self.new_id(),
            name=spec.name,
            flavor=flavor,
            image=spec.image,
            metadata=dict(spec.metadata),
            created_at=self.now,
            address=address,
            host=host,
            zone=self.state.hosts[host].zone,
            group=spec.server_group,
            ports=list(spec.ports),
        )
        for port_id in spec.ports:
            self.state.ports[port_id].server_id = server.id
        self._start(server, "boot")
        self.state.servers[server.id] = server
        return info(server)

    def delete_server(self, server_id: str) -> None:
        server = self.server(server_id)
        for port_id in server.ports:
            port = self.state.ports.get(port_id)
            if port is not None:
                port.server_id = None
        del self.state.servers[server.id]

    def act(self, server_id: str, action: str, **options: str | FlavorRec | None) -> None:
        """Start ``action`` (a key of ``_ALLOWED_FROM``) on the server."""
        server = self.server(server_id)
        if server.task is not None:
            raise TemporaryVimError(
                f"cannot {action} server {server.id}: it is {server.status}",
                retry_after=max(1.0, server.task.done_at - self.now),
            )
        if server.status not in _ALLOWED_FROM[action]:
            hint = " (only a hard reboot helps)" if action == "reboot" else ""
            raise PermanentVimError(
                f"cannot {action} server {server.id} while it is {server.status}{hint}"
            )
        if not self.state.hosts[server.host].up:
            raise PermanentVimError(
                f"cannot {action} server {server.id}: its host {server.host} is down"
            )
        if action == "confirm":
            server.pending = None
            server.status = ServerStatus.ACTIVE
            return
        if action in ("reboot", "hard_reboot", "rebuild", "stop", "start", "revert"):
            if action == "rebuild":
                image = options.get("image")
                if isinstance(image, str):
                    if image not in self.state.images:
                        raise PermanentVimError(f"image {image} does not exist in VIM {self.vim}")
                    server.image = image
            self._start(server, action)
            return
        if action == "resize":
            flavor = options["flavor"]
            assert isinstance(flavor, FlavorRec)
            if flavor == server.flavor:
                raise PermanentVimError(f"server {server.id} already has flavour {flavor.name}")
            self._check_compute_quota(
                self.limits(),
                flavor.vcpus - server.flavor.vcpus,
                flavor.ram_mb - server.flavor.ram_mb,
            )
            if self._fits(server.host, flavor):
                destination = server.host
            else:
                destination = self.schedule(
                    flavor, zone=None, host=None, group=server.group, exclude=(), moving=server.id
                )
            self._start(server, "resize", Task("resize", 0.0, destination, flavor))
            return
        # migrate / live_migrate
        wanted = options.get("host")
        if isinstance(wanted, str):
            self.host(wanted)
            if wanted == server.host:
                raise PermanentVimError(f"server {server.id} is already on host {wanted}")
            if not (self._schedulable(wanted) and self._fits(wanted, server.flavor)):
                raise NoValidHost(
                    f"host {wanted} cannot take server {server.id} "
                    "(down, disabled, degraded or full)"
                )
        destination = self.schedule(
            server.flavor,
            zone=None,
            host=wanted if isinstance(wanted, str) else None,
            group=server.group,
            exclude=(server.host,),
            moving=server.id,
        )
        self._start(server, action, Task(action, 0.0, destination))

    # --- failures -------------------------------------------------------------
    def crash_server(self, server_id: str) -> None:
        server = self.server(server_id)
        server.status = ServerStatus.ERROR
        server.fault = "guest crashed (injected)"
        server.task = None

    def fail_host(self, name: str) -> None:
        self.host(name).up = False
        for server in self.state.servers.values():
            moving_here = server.task is not None and server.task.destination == name
            if server.host == name or moving_here:
                server.status = ServerStatus.ERROR
                server.fault = f"host {name} is down"
                server.task = None

    # --- scheduling -----------------------------------------------------------
    def schedule(
        self,
        flavor: FlavorRec,
        *,
        zone: str | None,
        host: str | None,
        group: str | None,
        exclude: tuple[str, ...],
        moving: str | None = None,
    ) -> str:
        """The host for a server: fits and obeys the hints, then most free vCPUs."""
        policy = self.state.groups[group].policy if group in self.state.groups else None
        members = {
            s.host
            for s in self.state.servers.values()
            if group and s.group == group and s.id != moving
        }
        candidates = []
        for name, rec in self.state.hosts.items():
            if name in exclude or not self._schedulable(name) or not self._fits(name, flavor):
                continue
            if (zone is not None and rec.zone != zone) or (host is not None and name != host):
                continue
            if policy is GroupPolicy.ANTI_AFFINITY and name in members:
                continue
            if policy is GroupPolicy.AFFINITY and members and name not in members:
                continue
            candidates.append(name)
        if not candidates:
            where = "".join(
                [f" in zone {zone}" if zone else "", f" on host {host}" if host else ""]
            )
            raise NoValidHost(
                f"no valid host for flavor {flavor.name} ({flavor.vcpus} vCPU, "
                f"{flavor.ram_mb} MB){where} in VIM {self.vim}"
            )

        def preference(name: str) -> tuple[bool, int, str]:
            crowded = name in members if policy is GroupPolicy.SOFT_ANTI_AFFINITY else False
            lonely = bool(members) and name not in members and policy is GroupPolicy.SOFT_AFFINITY
            free = self.state.hosts[name].vcpus - self._used(name)[0]
            return (crowded or lonely, -free, name)

        return min(candidates, key=preference)

    # --- internals ------------------------------------------------------------
    def _check_compute_quota(self, limits: Limits, vcpus: int, ram_mb: int) -> None:
        if not limits.vcpus.allows(vcpus):
            raise QuotaExceeded(f"quota of {limits.vcpus.limit} vCPUs exceeded")
        if not limits.ram_mb.allows(ram_mb):
            raise QuotaExceeded(f"quota of {limits.ram_mb.limit} MB of RAM exceeded")

    def _start(self, server: ServerRec, kind: str, task: Task | None = None) -> None:
        task = task or Task(kind, 0.0)
        task.done_at = self.now + self.state.timings.of(kind)
        server.task = task
        server.fault = None
        if kind in _SHOWN_AS:
            server.status = _SHOWN_AS[kind]
        if kind == "revert":
            # It goes back to its old host and flavour, releasing the new ones at the end.
            assert server.pending is not None
            task.destination = server.pending.host
            task.flavor = server.pending.flavor

    def _settle(self) -> None:
        """Finish every task whose time has come."""
        for server in self.state.servers.values():
            task = server.task
            if task is None or task.done_at > self.now:
                continue
            server.task = None
            if task.kind in ("resize", "migrate"):
                server.pending = Pending(server.host, server.flavor)
            elif task.kind == "revert":
                server.pending = None
            if task.destination is not None:
                server.host = task.destination
                server.zone = self.state.hosts[task.destination].zone
            if task.flavor is not None:
                server.flavor = task.flavor
            if self.state.hosts[server.host].up:
                server.status = _ENDS_IN[task.kind]
            else:
                server.status = ServerStatus.ERROR
                server.fault = f"host {server.host} is down"

    def _holdings(self) -> Iterator[tuple[str, FlavorRec]]:
        """Every (host, flavour) allocation of every server."""
        for server in self.state.servers.values():
            yield server.host, server.flavor
            task = server.task
            if task is not None and task.kind in ("resize", "migrate", "live_migrate"):
                yield task.destination or server.host, task.flavor or server.flavor
            if server.pending is not None:
                yield server.pending.host, server.pending.flavor

    def _used(self, host: str) -> tuple[int, int, int]:
        vcpus = ram = disk = 0
        for where, flavor in self._holdings():
            if where == host:
                vcpus += flavor.vcpus
                ram += flavor.ram_mb
                disk += flavor.disk_gb
        return vcpus, ram, disk

    def _schedulable(self, name: str) -> bool:
        host = self.state.hosts[name]
        return host.up and host.enabled and not host.degraded and not host.forced_down

    def _fits(self, name: str, flavor: FlavorRec) -> bool:
        host = self.state.hosts[name]
        vcpus, ram, disk = self._used(name)
        return (
            host.vcpus - vcpus >= flavor.vcpus
            and host.ram_mb - ram >= flavor.ram_mb
            and host.disk_gb - disk >= flavor.disk_gb
        )


def info(server: ServerRec) -> ServerInfo:
    return ServerInfo(
        id=server.id,
        name=server.name,
        status=server.status,
        host=server.host,
        address=server.address,
        flavor=server.flavor.flavor(),
        image=server.image,
        metadata=dict(server.metadata),
        created_at=server.created_at,
        zone=server.zone,
        fault=server.fault,
    )
