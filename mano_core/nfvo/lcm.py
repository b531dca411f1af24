"""The NFVO's lifecycle of network services: :class:`NsLcm`.

An NS instance is created from an onboarded NSD (NOT_INSTANTIATED), then
instantiated, scaled, healed and terminated; a NOT_INSTANTIATED one can be
deleted. Each of those operations is an
:class:`~mano_core.nfvo.records.NsOperation` recorded in the NS instance
(PROCESSING, then COMPLETED, ROLLED_BACK or FAILED, through ROLLING_BACK
when it undoes its partial work); its module says what it does
(:mod:`.instantiate`, :mod:`.scale`, :mod:`.heal`, :mod:`.terminate`).

One operation at a time per NS: each runs under the NS's lease
(``keys.ns_lease``); a request while another runs is refused with
:class:`NsBusy` (an :class:`~mano_core.errors.InvalidRequest` that passes
with time). A request
that can never succeed as asked (an unknown aspect, a level out of bounds,
an NS in the wrong state) raises :class:`~mano_core.errors.InvalidRequest`
or :class:`~mano_core.errors.NotFound` before any operation is recorded;
once recorded, failures end up in the operation, never raised. A call with
the ``op_id`` of an operation the NS already has returns that operation
as it stands, and does nothing (so a caller may choose the id, start the
call, and look the operation up while it runs).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bus.clock import Clock
from bus.keys import Keys
from bus.lease import Lease
from bus.streams import consumer_name
from mano_core.catalogue import Catalogue
from mano_core.errors import InvalidRequest, ManoError, NotFound
from mano_core.inventory import Inventory
from mano_core.nfvo import heal, instantiate, scale, terminate
from mano_core.nfvo.context import NsContext
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.members import Members
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsState
from mano_core.vim.registry import VimRegistry
from mano_core.vnfd import RecoveryLevel
from mano_core.vnfm import Direction, Vnfm

Body = Callable[[NsInstance, NsOperation], Awaitable[tuple[NsInstance, NsOperation]]]


class NsBusy(InvalidRequest):
    """Another lifecycle operation holds the NS: the request may succeed once it ends."""


class NsLcm:
    """Network service instances and their lifecycle operations.

    ``lease_ttl_s`` (clock seconds) is the TTL of the leases it holds (the
    NS's, each member VNF's while its operation runs): longer than any
    operation takes. ``member_retries`` is how many times a member
    operation that failed on a temporary VIM failure is retried;
    ``member_wait_s`` (clock seconds) how long a member VNF busy with
    another operation is waited for.
    """

    def __init__(
        self,
        vnfm: Vnfm,
        ns_inventory: NsInventory,
        redis: Any,
        keys: Keys,
        clock: Clock,
        *,
        lease_ttl_s: float = 600.0,
        member_retries: int = 2,
        member_wait_s: float = 60.0,
    ) -> None:
        self.ns_inventory = ns_inventory
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._lease_ttl_s = lease_ttl_s
        members = Members(
            vnfm,
            redis,
            keys,
            clock,
            lease_ttl_s=lease_ttl_s,
            retries=member_retries,
            wait_s=member_wait_s,
        )
        self._ctx = NsContext(
            vims=vnfm.vims,
            ns_inventory=ns_inventory,
            inventory=vnfm.inventory,
            catalogue=vnfm.catalogue,
            members=members,
            clock=clock,
        )

    @property
    def catalogue(self) -> Catalogue:
        return self._ctx.catalogue

    @property
    def inventory(self) -> Inventory:
        return self._ctx.inventory

    @property
    def vims(self) -> VimRegistry:
        return self._ctx.vims

    # ------------------------------------------------------------------
    # Instances
    # ------------------------------------------------------------------
    async def create(
        self,
        nsd_id: str,
        name: str,
        *,
        version: str | None = None,
        description: str = "",
        labels: dict[str, str] | None = None,
    ) -> NsInstance:
        """A new NS instance of NSD ``nsd_id`` (``version``, default: the latest), NOT_INSTANTIATED.

        ``labels`` go to every member VNF it instantiates. Names are unique
        among NS instances (its VNFs are named after it).
        """
        if not name:
            raise InvalidRequest("an NS instance needs a name")
        entry = await self.catalogue.entry("nsd", nsd_id, version)
        if any(ns.name == name for ns in await self.ns_inventory.list()):
            raise InvalidRequest(f"an NS instance named {name!r} exists already")
        now = self._clock.now()
        ns = NsInstance(
            id=str(uuid.uuid4()),
            name=name,
            nsd_id=nsd_id,
            nsd_version=entry.version,
            state=NsState.NOT_INSTANTIATED,
            created_at=now,
            updated_at=now,
            description=description,
            labels=dict(labels or {}),
        )
        await self.ns_inventory.save(ns)
        return ns

    async def get(self, ref: str) -> NsInstance:
        """The NS instance whose id or name is ``ref``; raises :class:`NotFound`."""
        return await self.ns_inventory.resolve(ref)

    async def list(self) -> builtins.list[NsInstance]:
        """Every NS instance, oldest first."""
        return await self.ns_inventory.list()

    async def operation(self, op_id: str) -> tuple[NsInstance, NsOperation]:
        """The NS operation ``op_id`` and its NS instance; raises :class:`NotFound`."""
        for ns in await self.ns_inventory.list():
            for op in ns.operations:
                if op.id == op_id:
                    return ns, op
        raise NotFound(f"no NS operation has the id {op_id!r}")

    async def delete(self, ref: str) -> None:
        """Forget a NOT_INSTANTIATED NS instance; raises :class:`InvalidRequest` otherwise."""
        ns = await self.get(ref)
        lease = self._lease(ns.id)
        if not await lease.try_acquire():
            raise NsBusy(f"a lifecycle operation is in progress on NS {ns.name}")
        try:
            ns = await self.ns_inventory.get(ns.id)
            if ns.state is not NsState.NOT_INSTANTIATED or ns.vnfs or ns.networks:
                raise InvalidRequest(
                    f"NS {ns.name} is {ns.state} with {len(ns.vnfs)} VNF(s): terminate it first"
                )
            await self.ns_inventory.delete(ns.id)
        finally:
            await lease.release()

    # ------------------------------------------------------------------
    # Operations
    # ------------------------------------------------------------------
    async def instantiate(self, ref: str, *, op_id: str | None = None) -> NsOperation:
        """Place and instantiate every member VNF; the whole NS is rolled back if one fails."""

        async def check(ns: NsInstance) -> Body:
            if ns.state is not NsState.NOT_INSTANTIATED or ns.vnfs:
                raise InvalidRequest(f"NS {ns.name} is {ns.state}: terminate it first")
            return lambda ns, op: instantiate.run(self._ctx, ns, op)

        return await self._operate(ref, "INSTANTIATE", {}, op_id, check)

    async def scale(
        self,
        ref: str,
        aspect_id: str,
        direction: Direction,
        steps: int = 1,
        *,
        op_id: str | None = None,
    ) -> NsOperation:
        """Add (out) or remove (in) ``steps`` steps of NS scaling aspect ``aspect_id``."""
        if direction not in ("out", "in"):
            raise InvalidRequest(f"direction is 'out' or 'in', not {direction!r}")

        async def check(ns: NsInstance) -> Body:
            _instantiated(ns)
            nsd = await self.catalogue.get_nsd(ns.nsd_id, ns.nsd_version)
            plan = await scale.prepare(self._ctx, ns, nsd, aspect_id, direction, steps)
            return lambda ns, op: scale.run(self._ctx, ns, op, aspect_id, direction, steps, plan)

        params = {"aspect_id": aspect_id, "direction": direction, "steps": steps}
        return await self._operate(ref, "SCALE", params, op_id, check)

    async def heal(
        self,
        ref: str,
        *,
        vnfs: Sequence[str] | None = None,
        vnfc_ids: Sequence[str] | None = None,
        level: RecoveryLevel | str | None = None,
        op_id: str | None = None,
    ) -> NsOperation:
        """Heal member VNFCs: those named, else those the VIM sees unwell, in ``vnfs``
        (member VNF ids or names; default: all), at ``level`` or else up their ladders."""
        try:
            step = None if level is None else RecoveryLevel(level)
        except ValueError:
            raise InvalidRequest(f"unknown recovery level {level!r}") from None

        async def check(ns: NsInstance) -> Body:
            _instantiated(ns)
            targets = await heal.prepare(self._ctx, ns, vnfs, vnfc_ids, step)
            return lambda ns, op: heal.run(self._ctx, ns, op, targets)

        params: dict[str, object] = {
            "vnfs": list(vnfs) if vnfs is not None else None,
            "vnfc_ids": list(vnfc_ids) if vnfc_ids is not None else None,
            "level": None if step is None else step.value,
        }
        return await self._operate(ref, "HEAL", params, op_id, check)

    async def terminate(
        self, ref: str, *, graceful: bool = True, op_id: str | None = None
    ) -> NsOperation:
        """Terminate every member VNF (``graceful``: drain hooks first), then the networks."""

        async def check(ns: NsInstance) -> Body:
            if ns.state is NsState.NOT_INSTANTIATED and not ns.vnfs and not ns.networks:
                raise InvalidRequest(f"NS {ns.name} is not instantiated")
            return lambda ns, op: terminate.run(self._ctx, ns, op, graceful=graceful)

        return await self._operate(ref, "TERMINATE", {"graceful": graceful}, op_id, check)

    async def recover(self) -> builtins.list[NsOperation]:
        """Settle the NS operations left running by a process that stopped: FAILED.

        One whose NS lease is still held (a live process runs it) is left
        alone. Returns the operations it settled.
        """
        settled = []
        for ns in await self.ns_inventory.list():
            moved = await self._settle(ns, "found abandoned at start-up")
            if moved is not None:
                settled.append(moved)
        return settled

    async def settle_abandoned(self, ref: str) -> NsOperation | None:
        """Settle the NS's last operation as FAILED when no live process runs it.

        For a caller waiting on an operation that another process started:
        while the NS's lease is held it is left alone (None), as is a final one.
        """
        return await self._settle(await self.get(ref), "abandoned by the process running it")

    async def _settle(self, ns: NsInstance, why: str) -> NsOperation | None:
        op = ns.last_operation
        if op is None or op.state.final or await self._redis.exists(self._keys.ns_lease(ns.id)):
            return None
        _, moved = await self._ctx.move(ns, op, NsOpState.FAILED, error=f"{op.error or ''} ({why})")
        return moved

    # ------------------------------------------------------------------
    def _lease(self, ns_id: str) -> Lease:
        return Lease(
            self._redis,
            self._keys.ns_lease(ns_id),
            self._clock,
            ttl_s=self._lease_ttl_s,
            holder=consumer_name("nfvo"),
            name=f"NS {ns_id}",
        )

    async def _operate(
        self,
        ref: str,
        operation: str,
        params: dict[str, object],
        op_id: str | None,
        check: Callable[[NsInstance], Awaitable[Body]],
    ) -> NsOperation:
        ns = await self.get(ref)
        done = _existing(ns, op_id, operation)
        if done is not None:
            return done
        lease = self._lease(ns.id)
        if not await lease.try_acquire():
            raise NsBusy(f"another lifecycle operation is in progress on NS {ns.name}")

        async def under_lease() -> NsOperation:
            current = await self.ns_inventory.get(ns.id)
            again = _existing(current, op_id, operation)
            if again is not None:
                return again
            body = await check(current)
            op = NsOperation(
                id=op_id or str(uuid.uuid4()),
                operation=operation,
                state=NsOpState.PROCESSING,
                started_at=self._clock.now(),
                params=params,
            )
            current = await self._ctx.save(current, op)
            try:
                _, op = await body(current, op)
            except ManoError as exc:  # recorded, as every failure once the operation exists
                latest = await self.ns_inventory.get(ns.id)
                _, op = await self._ctx.move(latest, op, NsOpState.FAILED, error=str(exc))
            return op

        return await lease.hold(under_lease)


def _existing(ns: NsInstance, op_id: str | None, operation: str) -> NsOperation | None:
    if op_id is None:
        return None
    op = next((o for o in ns.operations if o.id == op_id), None)
    if op is not None and op.operation != operation:
        raise InvalidRequest(f"operation {op_id} is a {op.operation}, not a {operation}")
    return op


def _instantiated(ns: NsInstance) -> None:
    if ns.state is not NsState.INSTANTIATED:
        raise InvalidRequest(f"NS {ns.name} is {ns.state}")
