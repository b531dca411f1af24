"""Driving one LCM operation occurrence through its states, by a plan.

A :class:`Plan` says what an operation needs granted (``grant``), how to do
it (``work``) and how to undo its partial work (``undo``).
:meth:`OpRunner.run` moves the occurrence::

    STARTING: grant refused            -> ROLLED_BACK (nothing was created)
    STARTING: granted                  -> PROCESSING (the grant kept in the parameters)
    work returns                       -> COMPLETED
    work raises TemporaryVimError      -> FAILED_TEMP with retry_after (resumable)
    cancelled by an operator           -> FAILED_TEMP (retry, roll back or fail it)
    work raises another ManoError      -> FAILED_TEMP -> ROLLING_BACK -> ROLLED_BACK
                                          (or FAILED when it cannot be undone)
    undo raises TemporaryVimError      -> FAILED_TEMP (resuming it resumes the rollback)

It holds the occurrence's runner lease the whole time (see
:mod:`mano_core.lcm`), so an occurrence nobody runs is told from one under
way. VIM failures end up in the occurrence; they are never raised to the
caller, who alone decides whether and when to retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from bus.contracts import OpState
from bus.lease import Lease
from mano_core.errors import GrantRefused, InvalidRequest, ManoError, TemporaryVimError
from mano_core.grants import Grant, Granter, GrantRequest
from mano_core.lcm import RUNNING, OpOccStore
from mano_core.models import LcmOperation, LcmOpOcc

Result = dict[str, Any]

_ROLLBACK_FAILURE = "; rolling back: "


class OperationCancelled(ManoError):
    """An operator cancelled the operation; it stopped at its next step."""


class Run:
    """What a plan's steps see of the occurrence they run."""

    def __init__(self, op: LcmOpOcc, ops: OpOccStore, *, resumed: bool) -> None:
        self.op = op
        self.resumed = resumed
        """True when an earlier attempt may have done part of the work."""
        self._ops = ops

    @property
    def grant(self) -> Grant | None:
        raw = self.op.operation_params.get("grant")
        return None if raw is None else msgspec.convert(raw, Grant)

    async def check_cancel(self) -> None:
        """Raise :class:`OperationCancelled` when an operator cancelled the operation."""
        if await self._ops.cancel_requested(self.op):
            raise OperationCancelled(f"operation {self.op.id} was cancelled by an operator")


@dataclass(frozen=True)
class Plan:
    """How to do one operation, and how to undo it."""

    work: Callable[[Run], Awaitable[Result]]
    """Does the operation, or finishes it (``Run.resumed``: an earlier attempt
    may have done part of it); returns the occurrence's result."""
    undo: Callable[[Run], Awaitable[Result]] | None = None
    """Undoes partial work, returning what it undid; None: it cannot be undone."""
    undoable: Callable[[], Awaitable[bool]] | None = None
    """Whether ``undo`` can still restore the earlier state; None: always."""
    grant: Callable[[], Awaitable[GrantRequest | None]] | None = None
    """The resources the operation will take or give back, to be granted before
    it starts; None (or a None request): nothing to grant."""


async def nothing_to_undo(_run: Run) -> Result:
    """The undo of a plan whose failure leaves nothing changed."""
    return {}


class OpRunner:
    """Runs occurrences of :class:`OpOccStore` by their plans, asking ``granter`` first."""

    def __init__(self, ops: OpOccStore, granter: Granter) -> None:
        self._ops = ops
        self._granter = granter

    async def existing(
        self, vnf_id: str, op_id: str | None, operation: LcmOperation
    ) -> LcmOpOcc | None:
        """The occurrence a call with ``op_id`` continues, if there is one.

        Raises :class:`InvalidRequest` when ``op_id`` names another kind of
        operation, or one a live worker is still running.
        """
        if op_id is None:
            return None
        op = await self._ops.find(vnf_id, op_id)
        if op is None:
            return None
        if op.operation is not operation:
            raise InvalidRequest(f"operation {op_id} is a {op.operation}, not a {operation}")
        if op.state in RUNNING and await self._ops.is_running(op):
            raise InvalidRequest(f"operation {op_id} is {op.state}: it is still running")
        return op

    async def run(self, op: LcmOpOcc, plan: Plan, lease: Lease | None = None) -> LcmOpOcc:
        """Take ``op`` as far as it goes; a finished one is returned as it is.

        ``lease``: its runner lease, already taken (for an occurrence just
        created); None: taken here.
        """
        if lease is None:
            if op.state.final:
                return op  # a replay of a finished operation: report it, do nothing
            lease = await self.take(op.vnf_id, op.id)
        return await lease.hold(lambda: self._run(op, plan))

    async def take(self, vnf_id: str, op_id: str) -> Lease:
        """The runner lease of occurrence ``op_id``; raises :class:`InvalidRequest` if held."""
        lease = self._ops.runner_lease(vnf_id, op_id)
        if not await lease.try_acquire():
            raise InvalidRequest(f"operation {op_id} is being run by another worker")
        return lease

    async def roll_back(self, op: LcmOpOcc, plan: Plan) -> LcmOpOcc:
        """Undo a FAILED_TEMP occurrence's partial work (an operator's rollback)."""
        if op.state is not OpState.FAILED_TEMP:
            raise InvalidRequest(f"operation {op.id} is {op.state}: only FAILED_TEMP rolls back")
        if plan.undo is None or not await _undoable(plan):
            raise InvalidRequest(f"operation {op.id} ({op.operation}) cannot be rolled back")
        lease = await self.take(op.vnf_id, op.id)
        return await lease.hold(lambda: self._roll_back(op, plan))

    async def _run(self, op: LcmOpOcc, plan: Plan) -> LcmOpOcc:
        # Read again under the lease: another worker may have moved it meanwhile.
        op = await self._ops.get(op.vnf_id, op.id)
        if op.state.final:
            return op
        resumed = op.state is not OpState.STARTING
        if op.state is OpState.ROLLING_BACK or _failed_while_rolling_back(op):
            return await self._roll_back(op, plan)
        if op.state is OpState.PROCESSING:
            # We hold its runner lease, so whoever ran it before stopped.
            op = await self._ops.transition(
                op,
                OpState.FAILED_TEMP,
                detail="interrupted: the worker running it stopped",
                error="interrupted: the worker running it stopped",
            )
        if op.state is OpState.STARTING or "grant" not in op.operation_params:
            granted = await self._grant(op, plan)
            if granted.state is not OpState.PROCESSING:
                return granted
            op = granted
        else:
            op = await self._ops.transition(op, OpState.PROCESSING, detail="resumed")
        run = Run(op, self._ops, resumed=resumed)
        try:
            await run.check_cancel()
            result = await plan.work(run)
        except TemporaryVimError as exc:
            return await self._ops.transition(
                op,
                OpState.FAILED_TEMP,
                error=str(exc),
                retry_after=exc.retry_after,
                detail="temporary failure: retry to resume",
            )
        except OperationCancelled as exc:
            return await self._ops.transition(
                op, OpState.FAILED_TEMP, error=str(exc), detail="cancelled"
            )
        except ManoError as exc:
            op = await self._ops.transition(
                op, OpState.FAILED_TEMP, error=str(exc), detail="permanent failure"
            )
            if plan.undo is None or not await _undoable(plan):
                return await self._ops.transition(op, OpState.FAILED, detail="cannot be undone")
            return await self._roll_back(op, plan)
        return await self._ops.transition(op, OpState.COMPLETED, result=result)

    async def _grant(self, op: LcmOpOcc, plan: Plan) -> LcmOpOcc:
        """Ask for the plan's grant; the occurrence ends PROCESSING when it may go on."""
        starting = op.state is OpState.STARTING
        try:
            await Run(op, self._ops, resumed=not starting).check_cancel()
            request = None if plan.grant is None else await plan.grant()
            grant = None if request is None else await self._granter.grant(request)
        except TemporaryVimError as exc:
            if starting:
                return await self._ops.transition(
                    op,
                    OpState.FAILED_TEMP,
                    error=str(exc),
                    retry_after=exc.retry_after,
                    detail="the grant could not be asked for now",
                )
            return op  # FAILED_TEMP already: stays so, to be retried
        except (GrantRefused, OperationCancelled) as exc:
            detail = "grant refused" if isinstance(exc, GrantRefused) else "cancelled"
            if starting:  # nothing exists yet
                return await self._ops.transition(
                    op, OpState.ROLLED_BACK, error=str(exc), detail=detail
                )
            op = await self._ops.transition(op, OpState.ROLLING_BACK, error=str(exc), detail=detail)
            return await self._ops.transition(op, OpState.ROLLED_BACK, error=str(exc))
        params = dict(op.operation_params)
        if grant is not None:
            params["grant"] = msgspec.to_builtins(grant)
        else:
            params["grant"] = None
        return await self._ops.transition(
            op,
            OpState.PROCESSING,
            params=params,
            grant_id=None if grant is None else grant.id,
            detail="granted" if grant is not None else ("resumed" if not starting else ""),
        )

    async def _roll_back(self, op: LcmOpOcc, plan: Plan) -> LcmOpOcc:
        if plan.undo is None:  # only for an occurrence left by an older version
            if op.state is OpState.ROLLING_BACK:
                op = await self._ops.transition(op, OpState.FAILED_TEMP)
            return await self._ops.transition(op, OpState.FAILED, detail="cannot be undone")
        if op.state is not OpState.ROLLING_BACK:
            op = await self._ops.transition(op, OpState.ROLLING_BACK)
        # The error stays the one that caused the rollback, plus the latest
        # rollback failure (not every one of them).
        cause = (op.error or "").partition(_ROLLBACK_FAILURE)[0]
        try:
            result = await plan.undo(Run(op, self._ops, resumed=True))
        except TemporaryVimError as exc:
            return await self._ops.transition(
                op,
                OpState.FAILED_TEMP,
                error=f"{cause}{_ROLLBACK_FAILURE}{exc}",
                retry_after=exc.retry_after,
                detail="temporary failure while rolling back",
            )
        except ManoError as exc:
            op = await self._ops.transition(
                op, OpState.FAILED_TEMP, error=f"{cause}{_ROLLBACK_FAILURE}{exc}"
            )
            return await self._ops.transition(op, OpState.FAILED, detail="rollback failed")
        return await self._ops.transition(
            op, OpState.ROLLED_BACK, error=cause or op.error, result=result
        )


async def _undoable(plan: Plan) -> bool:
    if plan.undoable is None:
        return True
    try:
        return await plan.undoable()
    except ManoError:
        return False  # cannot even tell: do not pretend the state would be restored


def _failed_while_rolling_back(op: LcmOpOcc) -> bool:
    return (
        op.state is OpState.FAILED_TEMP
        and len(op.history) >= 2
        and op.history[-2].state is OpState.ROLLING_BACK
    )
