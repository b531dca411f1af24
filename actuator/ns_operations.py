"""NS scaling decisions run through the NFVO: ``scale_ns_out`` / ``scale_ns_in`` ->
:meth:`NsLcm.scale <mano_core.nfvo.lcm.NsLcm.scale>` on the decision's NS.

The NS operation's id is the decision's operation id (:func:`~actuator.idempotency.op_id_for`),
so a decision run again (a redelivery, a worker that took over) finds the
operation the NFVO already has and returns it as it stands: it never scales
twice. The NFVO runs the whole operation under the NS's lease and each
member VNF's (the lease the actuator takes for VNF decisions), so it
never runs beside another operation on a member.

How an NS scale ends, and what the actuator does about it:

- COMPLETED: reported.
- ROLLED_BACK: a member's scale failed and the members already scaled were
  scaled back; the NS is as it was. Temporary: tried again as a new NS
  operation (``<op id>-retry-<n>``, so a replay finds each attempt) after
  an exponential back-off from ``retry_base_s``, counted from when the last
  attempt ended, until ``max_attempts`` have ended so; then reported.
- FAILED (the scale back failed too, or the process running it stopped):
  reported at once; the policy's failure branch decides what next.
- The NS busy with another operation (:class:`~mano_core.nfvo.lcm.NsBusy`):
  waited for, every ``poll_s``, as a VNF's lease is.
- Refused before it starts (the NS gone, not instantiated, the aspect
  unknown, the level out of bounds): FAILED at once.

An operation found PROCESSING is followed until it ends; when no live
process holds the NS's lease any more it is settled FAILED
(:meth:`~mano_core.nfvo.lcm.NsLcm.settle_abandoned`). A decision's
``timeout_s`` does not stop an NS scale under way: the policy stage takes
the step's timeout branch itself, and the NFVO ends (or rolls back) the
operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from actuator.operations import scale_steps
from bus.clock import Clock
from bus.contracts import Action, Decision, OpResult, OpState, TargetKind
from mano_core.errors import InvalidRequest, NotFound
from mano_core.nfvo.lcm import NsBusy, NsLcm
from mano_core.nfvo.records import NsOperation, NsOpState

NS_SCALING = frozenset({Action.SCALE_NS_OUT, Action.SCALE_NS_IN})


def attempt_id(op_id: str, attempt: int) -> str:
    """The NS operation id of the ``attempt``-th try of a decision (0: its op id)."""
    return op_id if attempt == 0 else f"{op_id}-retry-{attempt}"


class NsScaleRun:
    """Runs one NS scaling decision to its end through the NFVO (None: fails them, naming
    the missing NFVO)."""

    def __init__(
        self,
        nslcm: NsLcm | None,
        clock: Clock,
        *,
        max_attempts: int,
        retry_base_s: float,
        poll_s: float,
    ) -> None:
        self._nslcm = nslcm
        self._clock = clock
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.poll_s = poll_s

    async def run(
        self, decision: Decision, op_id: str, expired: Callable[[], str | None]
    ) -> OpResult:
        """The decision's NS scale, started or found, to its end; ``expired`` says why a
        decision is too old to start (None: it is not)."""
        nslcm = self._nslcm
        if nslcm is None:
            error = f"no NFVO here to run {decision.action.value} on {decision.target.key()}"
            return self._refused(decision, op_id, error)
        try:
            ns_id, aspect, direction, steps = _request(decision)
        except InvalidRequest as exc:
            return self._refused(decision, op_id, f"InvalidRequest: {exc}")
        attempt = 0
        while True:
            this_id = attempt_id(op_id, attempt)
            op = await _find(nslcm, this_id)
            if op is None:
                why = expired() if attempt == 0 else None
                if why is not None:
                    return self._refused(decision, op_id, why)
                try:
                    op = await nslcm.scale(ns_id, aspect, direction, steps, op_id=this_id)
                except NsBusy:
                    await self._clock.sleep(self.poll_s)
                    continue
                except (InvalidRequest, NotFound) as exc:
                    return self._refused(decision, this_id, f"{type(exc).__name__}: {exc}")
            op = await self._until_final(nslcm, ns_id, op)
            if op.state is NsOpState.ROLLED_BACK and attempt + 1 < self.max_attempts:
                ended = op.finished_at if op.finished_at is not None else self._clock.now()
                backoff = self.retry_base_s * 2**attempt
                await self._clock.sleep(max(0.0, ended + backoff - self._clock.now()))
                attempt += 1
                continue
            return _result(decision, ns_id, op, attempt + 1)

    async def _until_final(self, nslcm: NsLcm, ns_id: str, op: NsOperation) -> NsOperation:
        """Follow an operation another process runs until it ends (or is found abandoned)."""
        while not op.state.final:
            settled = await nslcm.settle_abandoned(ns_id)
            if settled is not None and settled.id == op.id:
                return settled
            await self._clock.sleep(self.poll_s)
            _, op = await nslcm.operation(op.id)
        return op

    def _refused(self, decision: Decision, op_id: str, error: str) -> OpResult:
        now = self._clock.now()
        return OpResult(
            op_id=op_id,
            decision_id=decision.id,
            vnf="",
            operation="SCALE",
            action=decision.action,
            target=decision.target,
            state=OpState.FAILED,
            started_at=now,
            finished_at=now,
            error=error,
            request_id=decision.request_id,
        )


async def _find(nslcm: NsLcm, op_id: str) -> NsOperation | None:
    try:
        _, op = await nslcm.operation(op_id)
    except NotFound:
        return None
    return op


def _request(decision: Decision) -> tuple[str, str, Literal["out", "in"], int]:
    """The NS, aspect, direction and steps a decision asks for; raises InvalidRequest."""
    if decision.target.kind is not TargetKind.NS:
        raise InvalidRequest(
            f"{decision.action.value} needs an NS target, got {decision.target.key()}"
        )
    aspect = decision.parameters.get("aspect")
    if not isinstance(aspect, str) or not aspect:
        raise InvalidRequest(f"{decision.action.value} decision has no 'aspect' parameter")
    direction: Literal["out", "in"] = "out" if decision.action is Action.SCALE_NS_OUT else "in"
    return decision.target.id, aspect, direction, scale_steps(decision)


def _result(decision: Decision, ns_id: str, op: NsOperation, attempts: int) -> OpResult:
    """The OpResult that reports NS operation ``op`` (the last of ``attempts``)."""
    return OpResult(
        op_id=op.id,
        decision_id=decision.id,
        vnf="",
        operation=op.operation,
        action=decision.action,
        target=decision.target,
        state=OpState(op.state.value),
        started_at=op.started_at,
        finished_at=op.finished_at,
        detail={"ns": ns_id, "vnf_ops": list(op.vnf_ops), "attempts": attempts},
        error=op.error,
        request_id=decision.request_id,
    )
