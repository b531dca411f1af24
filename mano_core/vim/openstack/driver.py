"""The OpenStack VIM driver: :class:`OpenStackVim`, on openstacksdk.

One driver is one cloud of ``clouds.yaml`` (``openstack.connect(cloud=NAME)``,
or ``OS_CLOUD`` when no name is given) and the project its credentials are
scoped to. Several drivers, for several clouds, can run side by side.

- Every SDK call runs in the driver's own thread pool, never on the event
  loop, and its HTTP requests give up after ``api_timeout_s``; the
  platform adds the VIM call deadline around each method
  (:class:`~mano_core.vim.timed.TimedVim`).
- SDK exceptions become the project's VIM errors in one place,
  :mod:`mano_core.vim.openstack.errors`.
- Servers carry ``managed-by: nfv-assure`` besides the caller's metadata,
  and are found again by metadata (:meth:`OpenStackVim.list_servers`), so a
  create whose reply was lost is found rather than repeated.
- A server is attached to the driver's management ``networks`` (Nova makes
  a port on each and deletes it with the server; the server's address, where
  its exporters are scraped, is its address on the first of them), then to
  the ports of its spec (the VNF's own networks), which outlive it.
- Flavours are Nova's by name, else one with exactly the asked sizes.
- Host status, migrations to a named host, server diagnostics and Placement
  need an administrator's credentials; with a member's, those calls fail
  permanently (403) and telemetry reports servers only.
- A migration, live or cold, off a host whose nova-compute is down or forced
  down is an evacuation: Nova refuses to migrate from a dead host (its guest
  is gone anyway), and rebuilds the server on another host instead, with its
  id, ports and addresses; it shows REBUILD, then ACTIVE there, with nothing
  to confirm.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openstack
from openstack.connection import Connection

from bus.clock import Clock, WallClock
from mano_core.errors import PermanentVimError
from mano_core.vim.base import (
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
    SubnetInfo,
    TelemetryPoint,
)
from mano_core.vim.openstack import convert, hosts, network
from mano_core.vim.openstack.errors import translate
from mano_core.vim.openstack.evacuation import Evacuations

T = TypeVar("T")
log = logging.getLogger(__name__)

MANAGED_BY = ("managed-by", "nfv-assure")
"""The metadata pair that marks a server as created by nfv-assure."""
EVACUATE_MICROVERSION = "2.94"
"""Before 2.95 an evacuated server keeps running (from 2.95 on it is left stopped)."""


class OpenStackVim:
    """A :class:`~mano_core.vim.base.VimDriver` over one openstacksdk connection."""

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        networks: Sequence[str] = (),
        workers: int = 8,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._conn = connection
        self._network_names = tuple(networks)
        self._network_ids: tuple[str, ...] | None = None
        self._flavors: dict[str, tuple[str, Flavor]] = {}
        self._flavor_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"vim-{name}")
        self._now = (clock or WallClock()).now
        self._hosts_visible = True
        self._evacuations = Evacuations()

    @classmethod
    def connect(
        cls,
        name: str,
        *,
        cloud: str | None = None,
        networks: Sequence[str] = (),
        api_timeout_s: float = 60.0,
        clock: Clock | None = None,
    ) -> OpenStackVim:
        """A driver on ``cloud`` of ``clouds.yaml`` (None: ``OS_CLOUD``); reads files, so
        call it off the event loop. An unknown cloud: :class:`PermanentVimError`. Nothing
        is asked of the cloud yet: bad credentials show at the first call."""
        try:
            connection = openstack.connect(cloud=cloud, api_timeout=api_timeout_s)
        except Exception as exc:
            error = translate(exc, f"VIM {name}: connect to cloud {cloud or '(OS_CLOUD)'}")
            if error is None:
                raise
            raise error from exc
        return cls(name, connection, networks=networks, clock=clock)

    # ------------------------------------------------------------------
    # Plumbing
    # ------------------------------------------------------------------
    async def _run(self, what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call`` in the driver's threads; OpenStack's exceptions as VIM errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(call, *args, **kwargs)
            )
        except Exception as exc:
            error = translate(exc, f"VIM {self.name}: {what}")
            if error is None:
                raise
            raise error from exc

    # ------------------------------------------------------------------
    # Hosts, quotas, images
    # ------------------------------------------------------------------
    async def list_hosts(self) -> list[HostInfo]:
        return await self._run("list hosts", self._hosts_now)

    def _hosts_now(self) -> list[HostInfo]:
        return hosts.list_hosts(self._conn, self._servers_now(None))

    async def get_limits(self) -> Limits:
        return await self._run("read quotas", hosts.limits, self._conn)

    async def list_images(self) -> list[ImageInfo]:
        return await self._run("list images", network.images, self._conn)

    async def find_image(self, name: str, version: str | None = None) -> ImageInfo:
        return await self._run(f"find image {name}", network.find_image, self._conn, name, version)

    # ------------------------------------------------------------------
    # Servers
    # ------------------------------------------------------------------
    async def list_servers(self, *, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        return await self._run("list servers", self._servers_now, metadata)

    def _servers_now(self, metadata: Mapping[str, str] | None) -> list[ServerInfo]:
        found = [self._server(s) for s in self._conn.compute.servers(details=True)]
        chosen = [s for s in found if convert.carries(s.metadata, metadata)]
        return sorted(chosen, key=lambda s: (s.created_at, s.id))

    async def get_server(self, server_id: str) -> ServerInfo:
        return await self._run(f"get server {server_id}", self._get_server, server_id)

    def _get_server(self, server_id: str) -> ServerInfo:
        return self._server(self._conn.compute.get_server(server_id))

    def _server(self, raw: Any) -> ServerInfo:
        return self._evacuations.settle(self._conn, convert.server(raw, self._network_names))

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        return await self._run(f"create server {spec.name}", self._create_server, spec)

    def _create_server(self, spec: ServerSpec) -> ServerInfo:
        attrs: dict[str, Any] = {
            "name": spec.name,
            "flavor_id": self._flavor_id(spec.flavor),
            "image_id": spec.image,
            "metadata": {**spec.metadata, MANAGED_BY[0]: MANAGED_BY[1]},
            "networks": self._networks_for(spec),
        }
        if spec.availability_zone is not None:
            attrs["availability_zone"] = spec.availability_zone
        if spec.host is not None:
            attrs["host"] = spec.host
        if spec.server_group is not None:
            attrs["scheduler_hints"] = {"group": spec.server_group}
        created = self._conn.compute.create_server(**attrs)
        return self._get_server(str(created.id))

    def _networks_for(self, spec: ServerSpec) -> list[dict[str, str]] | str:
        """The management networks first (Nova makes the server a port on each, its
        address among them), then the caller's ports; neither: no network."""
        if self._network_ids is None:
            self._network_ids = network.network_ids(self._conn, self._network_names)
        attached = [{"uuid": network_id} for network_id in self._network_ids]
        attached += [{"port": port_id} for port_id in spec.ports]
        return attached or "none"

    def _flavor_id(self, flavor: Flavor) -> str:
        """Nova's flavour called ``flavor.name``, else one of exactly its sizes."""
        with self._flavor_lock:
            if flavor.name not in self._flavors:
                self._flavors = {
                    str(f.name): (str(f.id), Flavor(str(f.name), f.vcpus, f.ram, f.disk or 0))
                    for f in self._conn.compute.flavors(details=True)
                }
            if flavor.name in self._flavors:
                return self._flavors[flavor.name][0]
            for flavor_id, known in self._flavors.values():
                if (known.vcpus, known.ram_mb, known.disk_gb) == (
                    flavor.vcpus,
                    flavor.ram_mb,
                    flavor.disk_gb,
                ):
                    return flavor_id
        raise PermanentVimError(
            f"VIM {self.name} has no flavour {flavor.name} nor one of {flavor.vcpus} vCPU, "
            f"{flavor.ram_mb} MB RAM, {flavor.disk_gb} GB disk"
        )

    async def delete_server(self, server_id: str) -> None:
        await self._run(
            f"delete server {server_id}",
            self._conn.compute.delete_server,
            server_id,
            ignore_missing=False,
        )

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        kind = "HARD" if hard else "SOFT"
        await self._run(
            f"reboot ({kind}) server {server_id}", self._conn.compute.reboot_server, server_id, kind
        )

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        await self._run(f"rebuild server {server_id}", self._rebuild, server_id, image)

    def _rebuild(self, server_id: str, image: str | None) -> None:
        if image is None:
            image = self._get_server(server_id).image
        self._conn.compute.rebuild_server(server_id, image=image)

    async def resize_server(self, server_id: str, flavor: Flavor) -> None:
        await self._run(f"resize server {server_id}", self._resize, server_id, flavor)

    def _resize(self, server_id: str, flavor: Flavor) -> None:
        self._conn.compute.resize_server(server_id, self._flavor_id(flavor))

    async def migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._run(f"migrate server {server_id}", self._migrate, server_id, host)

    def _migrate(self, server_id: str, host: str | None, live: bool = False) -> None:
        source = self._get_server(server_id).host
        if source is not None and self._host_dead(source):
            self._evacuate(server_id, source, host)
        elif live:
            self._conn.compute.live_migrate_server(server_id, host=host, block_migration="auto")
        else:
            self._conn.compute.migrate_server(server_id, host=host)

    def _evacuate(self, server_id: str, source: str, host: str | None) -> None:
        body: dict[str, Any] = {"evacuate": {} if host is None else {"host": host}}
        response = self._conn.compute.post(
            f"/servers/{server_id}/action", json=body, microversion=EVACUATE_MICROVERSION
        )
        openstack.exceptions.raise_from_response(response)
        self._evacuations.started(server_id, source)

    def _host_dead(self, host: str) -> bool:
        for service in self._conn.compute.services(binary="nova-compute", host=host):
            return bool(service.is_forced_down) or service.state != "up"
        return False

    async def live_migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._run(f"live-migrate server {server_id}", self._migrate, server_id, host, True)

    async def confirm_resize(self, server_id: str) -> None:
        await self._run(
            f"confirm resize of server {server_id}",
            self._conn.compute.confirm_server_resize,
            server_id,
        )

    async def revert_resize(self, server_id: str) -> None:
        await self._run(
            f"revert resize of server {server_id}",
            self._conn.compute.revert_server_resize,
            server_id,
        )

    async def stop_server(self, server_id: str) -> None:
        await self._run(f"stop server {server_id}", self._conn.compute.stop_server, server_id)

    async def start_server(self, server_id: str) -> None:
        await self._run(f"start server {server_id}", self._conn.compute.start_server, server_id)

    # ------------------------------------------------------------------
    # Server groups
    # ------------------------------------------------------------------
    async def create_server_group(self, name: str, policy: GroupPolicy) -> ServerGroupInfo:
        raw = await self._run(
            f"create server group {name}",
            self._conn.compute.create_server_group,
            name=name,
            policy=policy.value,
        )
        return convert.group(raw)

    async def list_server_groups(self) -> list[ServerGroupInfo]:
        raws = await self._run("list server groups", _listed, self._conn.compute.server_groups)
        return [convert.group(raw) for raw in raws]

    async def delete_server_group(self, group_id: str) -> None:
        await self._run(
            f"delete server group {group_id}",
            self._conn.compute.delete_server_group,
            group_id,
            ignore_missing=False,
        )

    # ------------------------------------------------------------------
    # Networks, subnets, ports
    # ------------------------------------------------------------------
    async def create_network(
        self, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        return await self._run(
            f"create network {name}", network.create_network, self._conn, name, metadata
        )

    async def list_networks(
        self, *, metadata: Mapping[str, str] | None = None
    ) -> list[NetworkInfo]:
        return await self._run("list networks", network.networks, self._conn, metadata)

    async def delete_network(self, network_id: str) -> None:
        await self._run(
            f"delete network {network_id}", network.delete_network, self._conn, network_id
        )

    async def create_subnet(
        self,
        network_id: str,
        name: str,
        cidr: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> SubnetInfo:
        return await self._run(
            f"create subnet {name}",
            network.create_subnet,
            self._conn,
            network_id,
            name,
            cidr,
            metadata,
        )

    async def list_subnets(
        self,
        *,
        network_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[SubnetInfo]:
        return await self._run("list subnets", network.subnets, self._conn, network_id, metadata)

    async def delete_subnet(self, subnet_id: str) -> None:
        await self._run(f"delete subnet {subnet_id}", network.delete_subnet, self._conn, subnet_id)

    async def create_port(self, spec: PortSpec) -> PortInfo:
        return await self._run(f"create port {spec.name}", network.create_port, self._conn, spec)

    async def list_ports(
        self,
        *,
        network_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        return await self._run(
            "list ports", network.ports, self._conn, network_id, server_id, metadata
        )

    async def delete_port(self, port_id: str) -> None:
        await self._run(f"delete port {port_id}", network.delete_port, self._conn, port_id)

    # ------------------------------------------------------------------
    # Telemetry
    # ------------------------------------------------------------------
    async def telemetry(self) -> list[TelemetryPoint]:
        return await self._run("read telemetry", self._telemetry)

    def _telemetry(self) -> list[TelemetryPoint]:
        servers = self._servers_now(None)
        host_list: list[HostInfo] | None = None
        if self._hosts_visible:
            try:
                host_list = hosts.list_hosts(self._conn, servers)
            except Exception as exc:
                error = translate(exc, f"VIM {self.name}: list hosts")
                if not isinstance(error, PermanentVimError):
                    raise
                # A member's credentials (403): servers only from now on, said once.
                self._hosts_visible = False
                log.warning("VIM %s reports no host telemetry: %s", self.name, error)
        return hosts.telemetry(self._conn, servers, host_list, self._now)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._conn.close)


def _listed(source: Callable[[], Any]) -> list[Any]:
    return list(source())
