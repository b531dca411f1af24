"""Plumbing, inspection and fault injection of the simulated VIM, over its shared store.

:class:`SimControls` is the part of :class:`~mano_core.vim.simulated.SimulatedVim`
that is not the driver protocol: how a call reads or changes the stored
cloud (and meets the failures queued for it), and the hooks that tests,
the demo's workload and ``nfv-assure sim`` use to look at the cloud and to
break it. Faults are stored with the cloud, so one injected from one
process hits the calls of every process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TypeVar, cast

from bus.clock import Clock
from mano_core.errors import PermanentVimError, TemporaryVimError
from mano_core.vim.base import (
    HostInfo,
    ImageInfo,
    NetworkInfo,
    PortInfo,
    ServerGroupInfo,
    ServerInfo,
)
from mano_core.vim.simulated import network
from mano_core.vim.simulated.cloud import Cloud
from mano_core.vim.simulated.state import CloudState, Injected, QuotaRec, VimCall
from mano_core.vim.simulated.store import CloudStore

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


class SimControls:
    """Store access and the inspection and fault hooks of a simulated VIM."""

    name: str
    _clock: Clock
    _store: CloudStore
    _hangs: dict[str, asyncio.Event]
    """Events of the hangs this process queued, set when one is hit here."""

    def _cloud(self, state: CloudState) -> Cloud:
        return Cloud(state, self._clock.now(), self.name)

    async def _read(self, look: Callable[[Cloud], T]) -> T:
        """Answer a read (a failure queued for ``any`` applies to it too)."""
        state = await self._store.read()
        if state.failures.get("any"):
            return await self._call("read", look)
        return look(self._cloud(state))

    async def _change(self, change: Callable[[Cloud], T]) -> T:
        """Apply an administrative change (never failed by injection)."""
        return await self._store.update(lambda state: change(self._cloud(state)))

    async def _call(self, operation: str, change: Callable[[Cloud], T], subject: str = "") -> T:
        """Apply ``change`` unless a failure is queued for ``operation`` (or ``any``).

        Either way the call goes to the call log, naming ``subject`` (else
        the id of what the change returned).
        """

        def attempt(state: CloudState) -> tuple[Injected | None, T | None]:
            injected = _take_failure(state, operation)
            if injected is not None:
                return injected, None
            return None, change(self._cloud(state))

        def logged(outcome: tuple[Injected | None, T | None]) -> VimCall:
            injected, result = outcome
            metadata = getattr(result, "metadata", None)
            return VimCall(
                at=self._clock.now(),
                operation=operation,
                subject=subject or str(getattr(result, "id", "")),
                metadata=dict(metadata) if isinstance(metadata, dict) else {},
                error=None if injected is None else f"injected {injected.kind} failure",
            )

        injected, result = await self._store.update(
            attempt, None if operation == "read" else logged
        )
        if injected is None:
            return cast(T, result)
        if injected.kind == "hang":
            # An API that stops answering: only the caller giving up ends the call.
            hung = self._hangs.pop(injected.id, None)
            if hung is not None:
                hung.set()
            await asyncio.Event().wait()
        if injected.kind == "temporary":
            raise TemporaryVimError(
                f"injected temporary failure of {operation}", retry_after=injected.retry_after
            )
        raise PermanentVimError(f"injected permanent failure of {operation}")

    async def calls(self, operation: str | None = None) -> list[VimCall]:
        """The calls this cloud answered (every process's), oldest first; only those of
        ``operation`` when given."""
        return [c for c in await self._store.calls() if operation in (None, c.operation)]

    async def servers(self) -> list[ServerInfo]:
        """Every server, oldest first (never failed by injection)."""
        return await self._inspect(lambda c: c.servers())

    async def hosts(self) -> list[HostInfo]:
        """Every host with its current load."""
        return await self._inspect(lambda c: c.hosts())

    async def ports(self) -> list[PortInfo]:
        """Every port."""
        return await self._inspect(lambda c: network.ports(c, None, None, None))

    async def networks(self) -> list[NetworkInfo]:
        """Every network."""
        return await self._inspect(lambda c: network.networks(c, None))

    async def server_groups(self) -> list[ServerGroupInfo]:
        """Every server group."""
        return await self._inspect(network.groups)

    async def images(self) -> list[ImageInfo]:
        """Every image, oldest first."""
        return await self._inspect(network.images)

    async def _inspect(self, look: Callable[[Cloud], T]) -> T:
        return look(self._cloud(await self._store.read()))

    async def add_image(self, name: str, version: str | None = None) -> ImageInfo:
        """Register an image (the same name and version twice: the same image)."""
        return await self._change(lambda c: network.add_image(c, name, version))

    async def set_quotas(self, quotas: QuotaRec) -> None:
        """Replace the project's quotas."""

        def put(cloud: Cloud) -> None:
            cloud.state.quotas = quotas

        await self._change(put)

    async def set_server_cpu(self, cpus: Mapping[str, float]) -> None:
        """Set the CPU utilisation (0-100) servers report while ACTIVE, by server id.

        Servers that no longer exist are skipped.
        """

        def put(cloud: Cloud) -> None:
            for server_id, percent in cpus.items():
                server = cloud.state.servers.get(server_id)
                if server is not None:
                    server.cpu = max(0.0, min(100.0, percent))

        await self._change(put)

    async def crash_server(self, server_id: str) -> None:
        """The server's guest dies: ERROR until it is rebooted hard, rebuilt or replaced."""
        await self._change(lambda c: c.crash_server(server_id))

    async def fail_host(self, host: str) -> None:
        """The host goes down: every server on it (or moving to it) goes to ERROR."""
        await self._change(lambda c: c.fail_host(host))

    async def degrade_host(self, host: str) -> None:
        """The host reports a fault: it keeps running but takes no new servers."""
        await self._set_host(host, degraded=True)

    async def restore_host(self, host: str) -> None:
        """The host is repaired: up, enabled, neither degraded nor forced down
        (its ERROR servers stay ERROR)."""
        await self._set_host(host, up=True, degraded=False, forced_down=False, enabled=True)

    async def force_down_host(self, host: str) -> None:
        """An operator fences the host: marked forced down, it takes no new servers."""
        await self._set_host(host, forced_down=True)

    async def disable_host(self, host: str) -> None:
        """Take the host out of service: it takes no new servers and reports degraded (a
        host fault, so the loop moves its VNFCs away), its servers keep running."""
        await self._set_host(host, enabled=False)

    async def enable_host(self, host: str) -> None:
        """Put the host back into scheduling."""
        await self._set_host(host, enabled=True)

    async def _set_host(self, host: str, **flags: bool) -> None:
        def put(cloud: Cloud) -> None:
            record = cloud.host(host)
            for flag, value in flags.items():
                setattr(record, flag, value)

        await self._change(put)

    async def fail_next(
        self,
        operation: str,
        *,
        temporary: bool,
        count: int = 1,
        retry_after: float = 5.0,
        after: int = 0,
    ) -> None:
        """Make the next ``count`` calls of ``operation`` fail, in every process.

        ``operation`` is one of :data:`OPERATIONS`; a temporary failure
        raises :class:`TemporaryVimError` with ``retry_after`` (clock
        seconds), a permanent one :class:`PermanentVimError`. ``after``
        calls succeed first.
        """
        check_operation(operation)
        kind = "temporary" if temporary else "permanent"

        def queue(cloud: Cloud) -> None:
            queued = cloud.state.failures.setdefault(operation, [])
            queued.extend(Injected(cloud.new_id(), "pass") for _ in range(after))
            queued.extend(Injected(cloud.new_id(), kind, retry_after) for _ in range(count))

        await self._change(queue)

    async def hang_next(self, operation: str, *, count: int = 1) -> asyncio.Event:
        """Make the next ``count`` calls of ``operation`` never answer.

        The VIM's API stops responding mid-call, as an overloaded or
        partitioned controller does: such a call ends only when its caller
        gives up on it (cancels it), and changes nothing. Returns an event
        set once the first of them hangs in this process.
        """
        check_operation(operation)
        hung = asyncio.Event()

        def queue(cloud: Cloud) -> list[str]:
            queued = cloud.state.failures.setdefault(operation, [])
            added = [Injected(cloud.new_id(), "hang") for _ in range(count)]
            queued.extend(added)
            return [i.id for i in added]

        for injected_id in await self._change(queue):
            self._hangs[injected_id] = hung
        return hung

    async def clear_failures(self) -> int:
        """Drop every queued failure; returns how many there were."""

        def clear(cloud: Cloud) -> int:
            count = sum(1 for q in cloud.state.failures.values() for i in q if i.kind != "pass")
            cloud.state.failures = {}
            return count

        return await self._change(clear)


def check_operation(operation: str) -> None:
    """Raise ValueError unless ``operation`` is one of :data:`OPERATIONS`."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}, expected one of {OPERATIONS}")


def _take_failure(state: CloudState, operation: str) -> Injected | None:
    for name in ("any", operation):
        queue = state.failures.get(name)
        if queue:
            injected = queue.pop(0)
            return None if injected.kind == "pass" else injected
    return None
