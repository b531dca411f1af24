"""The VNF manager: every lifecycle operation of VNF instances, and the operator's actions.

Every operation is an LCM operation occurrence (:mod:`mano_core.lcm`) run by
one shared runner (:mod:`mano_core.oprunner`) from a plan its module makes
(:data:`PLANS`): it asks for a grant before it takes or gives back any
resource, then ends COMPLETED; FAILED_TEMP (with ``retry_after``) on a
temporary VIM failure or an operator's cancel; or, on a permanent failure
or timeout, ROLLED_BACK when its partial work was undone and FAILED when it
could not be. A refused grant ends it ROLLED_BACK before anything exists,
saying why. VIM failures are *reported* in the occurrence, never raised; a
request that can never succeed raises
:class:`~mano_core.errors.InvalidRequest` (or ``NotFound``) before any
occurrence exists.

Calling an operation again with the ``op_id`` of a FAILED_TEMP occurrence
resumes it, as :meth:`Vnfm.retry` does. So that a resumed operation
converges instead of repeating itself, everything it will do is decided
once, up front, and stored in the occurrence's ``operation_params``;
servers and ports carry their VNF and VNFC ids in their metadata, so one
created just before a crash is found again, never leaked. An operation
with a ``decision_id`` was started by the closed loop (``is_automatic``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from bus.clock import Clock
from bus.contracts import OpState
from mano_core.catalogue import Catalogue
from mano_core.errors import InvalidRequest
from mano_core.granter import VimGranter
from mano_core.grants import Granter
from mano_core.inventory import Inventory
from mano_core.lcm import RUNNING, OpOccStore
from mano_core.models import ComputeFlavour, LcmOperation, LcmOpOcc, VnfInstance, VnfState
from mano_core.oprunner import OpRunner, Plan
from mano_core.vim.base import VimDriver
from mano_core.vim.registry import VimRegistry
from mano_core.vnfd import RecoveryLevel
from mano_core.vnfm import (
    configure,
    flavour,
    heal,
    instantiate,
    migrate,
    operate,
    package,
    scale,
    terminate,
)
from mano_core.vnfm.context import Context, HealthCheck, vim_health
from mano_core.vnfm.hooks import HookClient
from mano_core.vnfm.scale import Direction

PLANS: dict[LcmOperation, Callable[[Context, LcmOpOcc], Plan]] = {
    LcmOperation.INSTANTIATE: instantiate.plan,
    LcmOperation.SCALE: scale.plan,
    LcmOperation.SCALE_TO_LEVEL: scale.plan,
    LcmOperation.HEAL: heal.plan,
    LcmOperation.OPERATE: operate.plan,
    LcmOperation.MIGRATE: migrate.plan,
    LcmOperation.CHANGE_FLAVOUR: flavour.plan,
    LcmOperation.CHANGE_VNFPKG: package.plan,
    LcmOperation.CONFIGURE: configure.plan,
    LcmOperation.TERMINATE: terminate.plan,
}
"""How each kind of operation is done, from its stored parameters only."""


class Vnfm:
    """Lifecycle of VNF instances on the VIMs of ``vims`` (one VIM: a registry of one).

    ``poll_s`` is the longest pause (clock seconds) between two questions to a
    VIM about how servers are doing while it waits for them (the pauses start
    shorter and double up to it: :func:`~mano_core.servers.wait_for`);
    ``timeout_s`` is how long (clock seconds) it waits before it takes them
    for failed. ``granter`` decides what an operation may take (default:
    :class:`~mano_core.granter.VimGranter` on ``vims``); ``health`` checks a
    VNFC after a move, resize or image change (default: the VIM's view,
    :func:`~mano_core.vnfm.context.vim_health`).
    """

    def __init__(
        self,
        vims: VimRegistry | VimDriver,
        inventory: Inventory,
        catalogue: Catalogue,
        ops: OpOccStore,
        clock: Clock,
        *,
        granter: Granter | None = None,
        hooks: HookClient | None = None,
        health: HealthCheck = vim_health,
        poll_s: float = 1.0,
        timeout_s: float = 300.0,
    ) -> None:
        registry = vims if isinstance(vims, VimRegistry) else VimRegistry([vims])
        self.vims = registry
        self.inventory = inventory
        self.catalogue = catalogue
        self.ops = ops
        self._ctx = Context(
            vims=registry,
            inventory=inventory,
            catalogue=catalogue,
            ops=ops,
            clock=clock,
            hooks=hooks or HookClient(),
            health=health,
            poll_s=poll_s,
            timeout_s=timeout_s,
        )
        self._runner = OpRunner(ops, granter or VimGranter(registry))

    @property
    def vim(self) -> VimDriver:
        """The default VIM (where an instantiation goes unless its grant says otherwise)."""
        return self.vims[self.vims.default]

    async def aclose(self) -> None:
        await self._ctx.hooks.aclose()

    # ------------------------------------------------------------------
    # Operations
    # ------------------------------------------------------------------
    async def instantiate(
        self,
        vnfd_id: str,
        name: str,
        *,
        version: str | None = None,
        level: str | None = None,
        ns_id: str | None = None,
        labels: dict[str, str] | None = None,
        ext_networks: dict[str, str] | None = None,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> tuple[VnfInstance, LcmOpOcc]:
        """Create a VNF instance of ``vnfd_id`` with the VNFCs of an instantiation level, ACTIVE.

        ``version`` is the VNFD version (default: the latest), ``level`` its
        instantiation level (default: its default level), ``ext_networks``
        connects its external connection points (id -> network id on the
        granted VIM). A VNFD version that onboarding acceptance has not
        validated is instantiated all the same, with a warning in the log.
        """
        vnf_id = instantiate.vnf_id_for(op_id)

        async def prepare(_vnf: VnfInstance | None) -> dict[str, Any]:
            return await instantiate.prepare(
                self._ctx,
                vnfd_id,
                name,
                version=version,
                level=level,
                ns_id=ns_id,
                labels=labels,
                ext_networks=ext_networks,
            )

        op = await self._start(
            vnf_id, LcmOperation.INSTANTIATE, op_id, decision_id, prepare, needs_vnf=False
        )
        vnf = await self.inventory.find(vnf_id)
        if vnf is None:  # it never came to be (refused, rolled back)
            await self.ops.retire(vnf_id)
            return instantiate.not_instantiated(self._ctx, op), op
        return vnf, op

    async def scale(
        self,
        vnf_id: str,
        aspect_id: str,
        direction: Direction,
        steps: int = 1,
        *,
        vnfc_ids: Sequence[str] | None = None,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Add (out) or remove (in) ``steps`` steps of a scaling aspect.

        A scale in removes ``vnfc_ids`` when named, else the VNFCs the
        aspect's ``scale_in_victims`` rule picks; each one's drain hook runs first.
        """
        return await self._start(
            vnf_id,
            LcmOperation.SCALE,
            op_id,
            decision_id,
            lambda vnf: scale.prepare_scale(
                self._ctx, vnf, aspect_id, direction, steps, victims=vnfc_ids
            ),
        )

    async def scale_to_level(
        self,
        vnf_id: str,
        *,
        levels: dict[str, int] | None = None,
        instantiation_level: str | None = None,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Bring aspects to ``levels`` (aspect -> level), or to an instantiation level's."""
        return await self._start(
            vnf_id,
            LcmOperation.SCALE_TO_LEVEL,
            op_id,
            decision_id,
            lambda vnf: scale.prepare_to_level(self._ctx, vnf, levels, instantiation_level),
        )

    async def heal(
        self,
        vnf_id: str,
        vnfc_id: str,
        level: RecoveryLevel | str = RecoveryLevel.SOFT_REBOOT,
        *,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Restore one VNFC by a step of its VDU's recovery ladder, within the step's timeout."""
        return await self._start(
            vnf_id,
            LcmOperation.HEAL,
            op_id,
            decision_id,
            lambda vnf: heal.prepare(self._ctx, vnf, vnfc_id, level),
        )

    async def operate(
        self,
        vnf_id: str,
        state: VnfState | str,
        *,
        graceful: bool = True,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Stop (``STOPPED``; ``graceful``: drain hooks first) or start (``STARTED``) the VNF."""

        async def prepare(vnf: VnfInstance) -> dict[str, Any]:
            return operate.prepare(vnf, state, graceful)

        return await self._start(vnf_id, LcmOperation.OPERATE, op_id, decision_id, prepare)

    async def migrate(
        self,
        vnf_id: str,
        vnfc_id: str,
        *,
        destination: str | None = None,
        live: bool = True,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Move one VNFC's server to another host (``destination``, or one the VIM picks):
        live, else cold (confirmed once health-checked in VERIFY_RESIZE, else reverted)."""

        async def prepare(vnf: VnfInstance) -> dict[str, Any]:
            return migrate.prepare(vnf, vnfc_id, destination, live)

        return await self._start(vnf_id, LcmOperation.MIGRATE, op_id, decision_id, prepare)

    async def change_flavour(
        self,
        vnf_id: str,
        vdu_id: str,
        new: ComputeFlavour,
        *,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Resize every VNFC of ``vdu_id`` to ``new``, one at a time, each confirmed or reverted."""
        return await self._start(
            vnf_id,
            LcmOperation.CHANGE_FLAVOUR,
            op_id,
            decision_id,
            lambda vnf: flavour.prepare(self._ctx, vnf, vdu_id, new),
        )

    async def change_package(
        self,
        vnf_id: str,
        version: str,
        *,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Move the VNF to ``version`` of its VNFD: a rolling, health-checked image change."""
        return await self._start(
            vnf_id,
            LcmOperation.CHANGE_VNFPKG,
            op_id,
            decision_id,
            lambda vnf: package.prepare(self._ctx, vnf, version),
        )

    async def configure(
        self,
        vnf_id: str,
        parameters: dict[str, Any],
        *,
        vnfc_ids: Sequence[str] | None = None,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Run the day-2 hook of each VNFC (or of ``vnfc_ids``) with ``parameters``."""
        return await self._start(
            vnf_id,
            LcmOperation.CONFIGURE,
            op_id,
            decision_id,
            lambda vnf: configure.prepare(self._ctx, vnf, parameters, vnfc_ids),
        )

    async def terminate(
        self,
        vnf_id: str,
        *,
        graceful: bool = True,
        op_id: str | None = None,
        decision_id: str | None = None,
    ) -> LcmOpOcc:
        """Drain (``graceful``), then delete every resource of the VNF instance and forget it."""

        async def prepare(_vnf: VnfInstance | None) -> dict[str, Any]:
            return terminate.prepare(await self.inventory.get(vnf_id), graceful)

        return await self._start(
            vnf_id, LcmOperation.TERMINATE, op_id, decision_id, prepare, needs_vnf=False
        )

    # ------------------------------------------------------------------
    # The operator's actions on an occurrence
    # ------------------------------------------------------------------
    async def retry(self, op_id: str) -> LcmOpOcc:
        """Resume a FAILED_TEMP occurrence where it stands (its rollback, if it failed in one)."""
        op = await self.ops.locate(op_id)
        if op.state is not OpState.FAILED_TEMP:
            raise InvalidRequest(f"operation {op_id} is {op.state}: only FAILED_TEMP is retried")
        return await self._run(op)

    async def rollback(self, op_id: str) -> LcmOpOcc:
        """Undo what a FAILED_TEMP occurrence did so far; ROLLED_BACK when it is undone."""
        op = await self.ops.locate(op_id)
        return await self._runner.roll_back(op, PLANS[op.operation](self._ctx, op))

    async def fail(self, op_id: str) -> LcmOpOcc:
        """Give up a FAILED_TEMP occurrence: FAILED, leaving things as they stand."""
        op = await self.ops.locate(op_id)
        if op.state is not OpState.FAILED_TEMP:
            raise InvalidRequest(f"operation {op_id} is {op.state}: only FAILED_TEMP is failed")
        return await self.ops.transition(op, OpState.FAILED, detail="failed by an operator")

    async def cancel(self, op_id: str) -> LcmOpOcc:
        """Stop a running occurrence: the worker running it stops at its next step.

        One nobody runs (its worker stopped) is settled at once: STARTING ->
        ROLLED_BACK, PROCESSING or ROLLING_BACK -> FAILED_TEMP.
        """
        op = await self.ops.locate(op_id)
        if op.state not in RUNNING:
            raise InvalidRequest(
                f"operation {op_id} is {op.state}: only a running one is cancelled"
            )
        if await self.ops.is_running(op):
            return await self.ops.request_cancel(op)
        target = OpState.ROLLED_BACK if op.state is OpState.STARTING else OpState.FAILED_TEMP
        return await self.ops.transition(op, target, detail="cancelled", error="cancelled")

    # ------------------------------------------------------------------
    async def _start(
        self,
        vnf_id: str,
        operation: LcmOperation,
        op_id: str | None,
        decision_id: str | None,
        prepare: Callable[[Any], Any],
        *,
        needs_vnf: bool = True,
    ) -> LcmOpOcc:
        """Continue occurrence ``op_id``, or create it from ``prepare``'s parameters and run it.

        A new occurrence's runner lease is taken before it is created (see
        :meth:`~mano_core.lcm.OpOccStore.runner_lease`).
        """
        op = await self._runner.existing(vnf_id, op_id, operation)
        if op is not None:
            return await self._run(op)
        op_id = op_id or str(uuid.uuid4())
        lease = await self._runner.take(vnf_id, op_id)
        try:
            vnf = await self._ctx.instantiated(vnf_id) if needs_vnf else None
            params = await prepare(vnf)
            op = await self._create(vnf_id, operation, params, decision_id, op_id)
        except BaseException:
            await lease.release()
            raise
        return await self._runner.run(op, PLANS[op.operation](self._ctx, op), lease)

    async def _run(self, op: LcmOpOcc) -> LcmOpOcc:
        return await self._runner.run(op, PLANS[op.operation](self._ctx, op))

    async def _create(
        self,
        vnf_id: str,
        operation: LcmOperation,
        params: dict[str, Any],
        decision_id: str | None,
        op_id: str | None,
    ) -> LcmOpOcc:
        return await self.ops.create(
            vnf_id,
            operation,
            msgspec.to_builtins(params),
            decision_id=decision_id,
            op_id=op_id,
            is_automatic=decision_id is not None,
        )
