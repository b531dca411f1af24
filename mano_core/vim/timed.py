"""A deadline on every VIM call.

A VIM API that stops answering (an overloaded controller, a network
partition, a load balancer holding the connection open) would otherwise
hold whoever called it for ever: an operation would sit PROCESSING while
its worker kept the VNF's lease renewed, so no other operation could run on
that VNF, and the collector's VIM telemetry would stop for good.
:class:`TimedVim` wraps any driver and turns a call that takes longer than
``call_timeout_s`` (wall seconds: API latency is real time, whatever the
clock) into a :class:`~mano_core.errors.TemporaryVimError`, so the operation
ends FAILED_TEMP and is retried, resuming where it stood. A call that timed
out may still have taken effect in the VIM; the VNFM's resume logic finds
such servers by their metadata rather than creating them twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from mano_core.errors import TemporaryVimError
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
    VimDriver,
)

T = TypeVar("T")


class TimedVim:
    """A :class:`VimDriver` whose calls fail temporarily after ``call_timeout_s``."""

    def __init__(self, vim: VimDriver, call_timeout_s: float, *, retry_after_s: float = 5.0):
        if not call_timeout_s > 0:
            raise ValueError(f"call_timeout_s must be positive, got {call_timeout_s}")
        self.inner = vim
        self.name = vim.name
        self.call_timeout_s = call_timeout_s
        self.retry_after_s = retry_after_s

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.call_timeout_s):
                return await call
        except TimeoutError:
            raise TemporaryVimError(
                f"VIM {self.name} did not answer {what} within {self.call_timeout_s:g} s",
                retry_after=self.retry_after_s,
            ) from None

    async def list_hosts(self) -> list[HostInfo]:
        return await self._call("list_hosts", self.inner.list_hosts())

    async def get_limits(self) -> Limits:
        return await self._call("get_limits", self.inner.get_limits())

    async def list_images(self) -> list[ImageInfo]:
        return await self._call("list_images", self.inner.list_images())

    async def find_image(self, name: str, version: str | None = None) -> ImageInfo:
        return await self._call(f"find_image {name}", self.inner.find_image(name, version))

    async def list_servers(self, *, metadata: Mapping[str, str] | None = None) -> list[ServerInfo]:
        return await self._call("list_servers", self.inner.list_servers(metadata=metadata))

    async def get_server(self, server_id: str) -> ServerInfo:
        return await self._call(f"get_server {server_id}", self.inner.get_server(server_id))

    async def create_server(self, spec: ServerSpec) -> ServerInfo:
        return await self._call(f"create_server {spec.name}", self.inner.create_server(spec))

    async def delete_server(self, server_id: str) -> None:
        await self._call(f"delete_server {server_id}", self.inner.delete_server(server_id))

    async def reboot_server(self, server_id: str, *, hard: bool = False) -> None:
        await self._call(
            f"reboot_server {server_id}", self.inner.reboot_server(server_id, hard=hard)
        )

    async def rebuild_server(self, server_id: str, *, image: str | None = None) -> None:
        await self._call(
            f"rebuild_server {server_id}", self.inner.rebuild_server(server_id, image=image)
        )

    async def resize_server(self, server_id: str, flavor: Flavor) -> None:
        await self._call(f"resize_server {server_id}", self.inner.resize_server(server_id, flavor))

    async def migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call(
            f"migrate_server {server_id}", self.inner.migrate_server(server_id, host=host)
        )

    async def live_migrate_server(self, server_id: str, *, host: str | None = None) -> None:
        await self._call(
            f"live_migrate_server {server_id}",
            self.inner.live_migrate_server(server_id, host=host),
        )

    async def confirm_resize(self, server_id: str) -> None:
        await self._call(f"confirm_resize {server_id}", self.inner.confirm_resize(server_id))

    async def revert_resize(self, server_id: str) -> None:
        await self._call(f"revert_resize {server_id}", self.inner.revert_resize(server_id))

    async def stop_server(self, server_id: str) -> None:
        await self._call(f"stop_server {server_id}", self.inner.stop_server(server_id))

    async def start_server(self, server_id: str) -> None:
        await self._call(f"start_server {server_id}", self.inner.start_server(server_id))

    async def create_server_group(self, name: str, policy: GroupPolicy) -> ServerGroupInfo:
        return await self._call(
            f"create_server_group {name}", self.inner.create_server_group(name, policy)
        )

    async def list_server_groups(self) -> list[ServerGroupInfo]:
        return await self._call("list_server_groups", self.inner.list_server_groups())

    async def delete_server_group(self, group_id: str) -> None:
        await self._call(
            f"delete_server_group {group_id}", self.inner.delete_server_group(group_id)
        )

    async def create_network(
        self, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        return await self._call(
            f"create_network {name}", self.inner.create_network(name, metadata=metadata)
        )

    async def list_networks(
        self, *, metadata: Mapping[str, str] | None = None
    ) -> list[NetworkInfo]:
        return await self._call("list_networks", self.inner.list_networks(metadata=metadata))

    async def delete_network(self, network_id: str) -> None:
        await self._call(f"delete_network {network_id}", self.inner.delete_network(network_id))

    async def create_subnet(
        self,
        network_id: str,
        name: str,
        cidr: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> SubnetInfo:
        return await self._call(
            f"create_subnet {name}",
            self.inner.create_subnet(network_id, name, cidr, metadata=metadata),
        )

    async def list_subnets(
        self,
        *,
        network_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[SubnetInfo]:
        return await self._call(
            "list_subnets", self.inner.list_subnets(network_id=network_id, metadata=metadata)
        )

    async def delete_subnet(self, subnet_id: str) -> None:
        await self._call(f"delete_subnet {subnet_id}", self.inner.delete_subnet(subnet_id))

    async def create_port(self, spec: PortSpec) -> PortInfo:
        return await self._call(f"create_port {spec.name}", self.inner.create_port(spec))

    async def list_ports(
        self,
        *,
        network_id: str | None = None,
        server_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[PortInfo]:
        return await self._call(
            "list_ports",
            self.inner.list_ports(network_id=network_id, server_id=server_id, metadata=metadata),
        )

    async def delete_port(self, port_id: str) -> None:
        await self._call(f"delete_port {port_id}", self.inner.delete_port(port_id))

    async def telemetry(self) -> list[TelemetryPoint]:
        return await self._call("telemetry", self.inner.telemetry())

    async def aclose(self) -> None:
        await self.inner.aclose()
