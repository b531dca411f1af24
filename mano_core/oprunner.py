"""Driving one LCM operation occurrence through its states, by a plan.

A :class:`Plan` says how to do an operation (``work``) and how to undo its
partial work (``undo``). :meth:`OpRunner.run` moves the occurrence::

    work returns                      -> COMPLETED
    work raises TemporaryVimError     -> FAILED_TEMP with retry_after (resumable)
    work raises another ManoError     -> FAILED_TEMP -> ROLLING_BACK -> ROLLED_BACK
                                         (or FAILED when it cannot be undone)
    undo raises TemporaryVimError     -> FAILED_TEMP (resuming it resumes the rollback)

VIM failures end up in the occurrence; they are never raised to the caller,
who alone decides whether and when to retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bus.clock import Clock
from bus.contracts import OpState
from mano_core.errors import InvalidRequest, ManoError, TemporaryVimError
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOperation, LcmOpOcc

Result = dict[str, Any]

_RUNNING = (OpState.STARTING, OpState.PROCESSING, OpState.ROLLING_BACK)
_ROLLBACK_FAILURE = "; rolling back: "


@dataclass(frozen=True)
class Plan:
    """How to do one operation, and how to undo it."""

    work: Callable[[bool], Awaitable[Result]]
    """Does the operation, or finishes it (the flag: resuming an earlier attempt);
    returns the occurrence's result."""
    undo: Callable[[], Awaitable[Result]] | None = None
    """Undoes partial work, returning what it undid; None: it cannot be undone."""
    undoable: Callable[[], Awaitable[bool]] | None = None
    """Whether ``undo`` can still restore the earlier state; None: always."""


async def nothing_to_undo() -> Result:
    """The undo of a plan whose failure leaves nothing changed."""
    return {}


class OpRunner:
    """Runs occurrences of :class:`OpOccStore` by their plans."""

    def __init__(self, ops: OpOccStore, clock: Clock, *, abandoned_after_s: float) -> None:
        self._ops = ops
        self._clock = clock
        self._abandoned_after_s = abandoned_after_s
        """How long an occurrence may sit in a running state before it is taken
        for abandoned by a crashed worker, and may be resumed."""

    async def existing(
        self, vnf_id: str, op_id: str | None, operation: LcmOperation
    ) -> LcmOpOcc | None:
        """The occurrence a call with ``op_id`` continues, if there is one.

        Raises :class:`InvalidRequest` when ``op_id`` names another kind of
        operation, or one still running.
        """
        if op_id is None:
            return None
        op = await self._ops.find(vnf_id, op_id)
        if op is None:
            return None
        if op.operation is not operation:
            raise InvalidRequest(f"operation {op_id} is a {op.operation}, not a {operation}")
        abandoned = self._clock.now() - op.state_entered_at > self._abandoned_after_s
        if op.state in _RUNNING and not abandoned:
            raise InvalidRequest(f"operation {op_id} is {op.state}: it is still running")
        return op

    async def run(self, op: LcmOpOcc, plan: Plan) -> LcmOpOcc:
        """Take ``op`` as far as it goes; a finished one is returned as it is."""
        if op.state.final:
            return op  # a replay of a finished operation: report it, do nothing
        resumed = op.state is not OpState.STARTING
        if op.state is OpState.ROLLING_BACK or _failed_while_rolling_back(op):
            return await self._roll_back(op, plan)
        if op.state is not OpState.PROCESSING:
            op = await self._ops.transition(
                op, OpState.PROCESSING, detail="resumed" if resumed else ""
            )
        try:
            result = await plan.work(resumed)
        except TemporaryVimError as exc:
            return await self._ops.transition(
                op,
                OpState.FAILED_TEMP,
                error=str(exc),
                retry_after=exc.retry_after,
                detail="temporary failure: call again with the same op_id to resume",
            )
        except ManoError as exc:
            op = await self._ops.transition(
                op, OpState.FAILED_TEMP, error=str(exc), detail="permanent failure"
            )
            if plan.undo is None or not await _undoable(plan):
                return await self._ops.transition(op, OpState.FAILED, detail="cannot be undone")
            return await self._roll_back(op, plan)
        return await self._ops.transition(op, OpState.COMPLETED, result=result)

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
            result = await plan.undo()
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
