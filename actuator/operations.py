"""How a decision becomes a VNFM call, and how an operation becomes an OpResult.

``scale_out``/``scale_in`` -> :meth:`Vnfm.scale`, ``change_flavour`` ->
:meth:`Vnfm.change_flavour` and ``operate`` -> :meth:`Vnfm.operate` on the
decision's VNF, ``heal`` -> :meth:`Vnfm.heal` and ``migrate`` ->
:meth:`Vnfm.migrate` on its VNFC. A decision whose parameters cannot make a valid call raises
:class:`~mano_core.errors.InvalidRequest`, like the VNFM does for a request
that can never succeed, so both end the same way: a FAILED result.
"""

from __future__ import annotations

from typing import Any, Literal

from bus.contracts import Action, Decision, OpResult, OpState, Target, TargetKind
from mano_core.errors import InvalidRequest
from mano_core.models import ComputeFlavour, LcmOperation, LcmOpOcc
from mano_core.vnfd import RecoveryLevel
from mano_core.vnfm import Vnfm

OPERATION_OF: dict[Action, str] = {
    Action.SCALE_OUT: LcmOperation.SCALE.value,
    Action.SCALE_IN: LcmOperation.SCALE.value,
    Action.HEAL: LcmOperation.HEAL.value,
    Action.MIGRATE: LcmOperation.MIGRATE.value,
    Action.CHANGE_FLAVOUR: LcmOperation.CHANGE_FLAVOUR.value,
    Action.OPERATE: LcmOperation.OPERATE.value,
    Action.SCALE_NS_OUT: LcmOperation.SCALE.value,
    Action.SCALE_NS_IN: LcmOperation.SCALE.value,
    Action.NOTIFY: "NOTIFY",
}
"""The SOL003 operation name each action runs as (NOTIFY runs no operation)."""


def vnf_of(target: Target) -> str | None:
    """The VNF instance a decision acts on: the target itself, or the VNF it belongs to."""
    return target.id if target.kind is TargetKind.VNF else target.vnf


def _vnfc_of(decision: Decision) -> str:
    if decision.target.kind is not TargetKind.VNFC:
        raise InvalidRequest(
            f"{decision.action.value} needs a VNFC target, got {decision.target.key()}"
        )
    return decision.target.id


async def start_operation(vnfm: Vnfm, decision: Decision, vnf_id: str, op_id: str) -> LcmOpOcc:
    """Run (or resume) the decision's operation as ``op_id``; returns the op occurrence.

    Raises :class:`~mano_core.errors.NotFound` when the VNF or VNFC is gone and
    :class:`~mano_core.errors.InvalidRequest` when the request can never succeed.
    """
    params = decision.parameters
    if decision.action in (Action.SCALE_OUT, Action.SCALE_IN):
        aspect = params.get("aspect")
        if not isinstance(aspect, str) or not aspect:
            raise InvalidRequest(f"{decision.action.value} decision has no 'aspect' parameter")
        direction: Literal["out", "in"] = "out" if decision.action is Action.SCALE_OUT else "in"
        return await vnfm.scale(
            vnf_id, aspect, direction, scale_steps(decision), op_id=op_id, decision_id=decision.id
        )
    if decision.action is Action.HEAL:
        try:
            level = RecoveryLevel(params.get("level", RecoveryLevel.SOFT_REBOOT.value))
        except ValueError:
            raise InvalidRequest(
                f"unknown recovery level {params.get('level')!r}; "
                f"expected one of {[lvl.value for lvl in RecoveryLevel]}"
            ) from None
        return await vnfm.heal(
            vnf_id, _vnfc_of(decision), level=level, op_id=op_id, decision_id=decision.id
        )
    if decision.action is Action.MIGRATE:
        destination = params.get("destination")
        if destination is not None and not isinstance(destination, str):
            raise InvalidRequest(f"'destination' must be a host name, got {destination!r}")
        return await vnfm.migrate(
            vnf_id,
            _vnfc_of(decision),
            destination=destination,
            live=bool(params.get("live", True)),
            op_id=op_id,
            decision_id=decision.id,
        )
    if decision.action is Action.CHANGE_FLAVOUR:
        vdu = params.get("vdu")
        sizes = [params.get(k, 0) for k in ("vcpus", "ram_mb", "disk_gb")]
        if not isinstance(vdu, str) or not all(_count(v) for v in sizes):
            raise InvalidRequest(f"change_flavour needs vdu, vcpus, ram_mb, disk_gb: {params!r}")
        new = ComputeFlavour(vcpus=sizes[0], ram_mb=sizes[1], disk_gb=sizes[2])
        return await vnfm.change_flavour(vnf_id, vdu, new, op_id=op_id, decision_id=decision.id)
    if decision.action is Action.OPERATE:
        state = params.get("state")
        if state not in ("STARTED", "STOPPED"):
            raise InvalidRequest(f"operate needs state STARTED or STOPPED, got {state!r}")
        graceful = bool(params.get("graceful", True))
        return await vnfm.operate(
            vnf_id, state, graceful=graceful, op_id=op_id, decision_id=decision.id
        )
    raise InvalidRequest(f"action {decision.action.value} runs no VNFM operation")


def scale_steps(decision: Decision) -> int:
    """The steps a scaling decision takes (1 unless it says); raises InvalidRequest."""
    steps = decision.parameters.get("steps", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidRequest(f"'steps' must be a positive integer, got {steps!r}")
    return steps


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def result_of(decision: Decision, op: LcmOpOcc) -> OpResult:
    """The OpResult that reports ``op`` (run for ``decision``)."""
    return OpResult(
        op_id=op.id,
        decision_id=decision.id,
        vnf=op.vnf_id,
        operation=op.operation.value,
        action=decision.action,
        target=decision.target,
        state=op.state,
        started_at=op.started_at,
        finished_at=op.state_entered_at if op.state.final else None,
        detail=dict(op.result),
        error=op.error,
        request_id=decision.request_id,
    )


def result_without_op(
    decision: Decision,
    vnf: str,
    op_id: str,
    now: float,
    *,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
) -> OpResult:
    """The result of a decision no operation was run for, ended at ``now``.

    FAILED with ``error`` when none could be run for it (or a notification
    could not be delivered); otherwise COMPLETED, as a delivered notify is.
    """
    return OpResult(
        op_id=op_id,
        decision_id=decision.id,
        vnf=vnf,
        operation=OPERATION_OF[decision.action],
        action=decision.action,
        target=decision.target,
        state=OpState.FAILED if error is not None else OpState.COMPLETED,
        started_at=now,
        finished_at=now,
        detail=detail if detail is not None else ({} if error else {"reason": decision.reason}),
        error=error,
        request_id=decision.request_id,
    )
