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
from collections.abc import Awaitable
from typing import TypeVar

from mano_core.errors import TemporaryVimError
from mano_core.vim.base import HostInfo, ServerInfo, ServerSpec, TelemetryPoint, VimDriver

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

    async def list_servers(self) -> list[ServerInfo]:
        return await self._call("list_servers", self.inner.list_servers())

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

    async def migrate_server(
        self, server_id: str, *, destination: str | None = None, live: bool = True
    ) -> None:
        await self._call(
            f"migrate_server {server_id}",
            self.inner.migrate_server(server_id, destination=destination, live=live),
        )

    async def telemetry(self) -> list[TelemetryPoint]:
        return await self._call("telemetry", self.inner.telemetry())

    async def aclose(self) -> None:
        await self.inner.aclose()
