"""The closed loop: from violations to a chain of guarded decisions, verified by the KPI.

Per VNF, the loop keeps the conditions open on it and one **episode** per
policy and target while the policy's trigger holds. An episode takes the
steps of the policy's chain (:mod:`policy.schema_chain`) one decision at a
time:

- a step is *decided*: its plan (:mod:`policy.plans`) and the guards
  (:mod:`policy.guards`). A final denial follows the step's ``on_denied``
  branch; a denial that passes with time *queues* the decision, which is
  re-checked when the guard frees (its cooldown ends, the decision in
  flight on the VNF ends...), never dropped. A passed decision is
  published for the actuator (``enforce``), waits for an operator
  (``approve``, with a timeout and a default), or is only recorded
  (``dry_run``);
- when its operation completes the episode *verifies*: the trigger must
  release (the violation ABATES) within the step's verify window, else the
  ``on_unrecovered`` branch is taken (a heal climbs the recovery ladder, a
  scale takes another step after the cooldown);
- a failed operation is retried ``retries`` times, then ``on_failure``; one
  that outlasts its timeout takes ``on_timeout``;
- the episode ends ``recovered``, ``abated``, ``not_recovered``, ``failed``,
  ``denied`` or ``dry_run``; the policy's receiver is notified of the
  results it asks for (escalation).

Every method works on one VNF's :class:`~policy.state.VnfLoop`, changes it
in place and returns the :class:`Effects`: decisions to publish and the
episodes touched (for the audit trail). Time is always the ``now`` given,
so the same code runs live, in a backtest and in a simulated day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bus.contracts import Action, OpResult, OpState, Target, Violation, to_builtins
from bus.units import format_duration
from mano_core.models import VnfInstance
from policy.chain import Chain, drop_if_released
from policy.decide import Decider, remember_action
from policy.facts import Facts
from policy.plans import SCALE_COOLDOWNS, aspect_vdu, first_rung, scale_cooldown_key
from policy.records import (
    Effects,
    Turn,
    acted,
    decision_of,
    notify_parameters,
)
from policy.schema import KpiPolicy, Step
from policy.schema_triggers import AlertTrigger, holds
from policy.state import (
    Episode,
    OpenCondition,
    Outcome,
    Phase,
    StepRecord,
    Verdict,
    VnfLoop,
    episode_id,
    episode_key,
    find_step,
)

log = logging.getLogger(__name__)

__all__ = ["ClosedLoop", "Effects"]


class ClosedLoop(Chain):
    """Decides, per VNF record, what the loaded policies do about violations.

    ``requeue_s`` is how often a decision queued behind a guard that frees
    on an event elsewhere (a slot of the global concurrency cap) is
    re-checked; ``grace_s`` how long past a step's timeout the loop waits
    for the actuator's result before it takes the timeout branch itself;
    ``settle_s`` how long decisions on a VNF wait after an operation on it
    completed (the ``settle`` guard; 0: not at all).
    """

    def __init__(
        self,
        policies: Sequence[KpiPolicy],
        facts: Facts,
        *,
        requeue_s: float = 5.0,
        grace_s: float = 30.0,
        settle_s: float = 0.0,
    ) -> None:
        self._policies: dict[str, KpiPolicy] = {}
        self.set_policies(policies)
        self._facts = facts
        self._decider = Decider(facts, requeue_s=requeue_s, settle_s=settle_s)
        self.grace_s = grace_s

    # --- policies ---------------------------------------------------------------
    def set_policies(self, policies: Sequence[KpiPolicy]) -> None:
        """Replace the loaded policies (hot reload); open episodes go on under the new ones."""
        by_name: dict[str, KpiPolicy] = {}
        for policy in policies:
            if policy.name in by_name:
                raise ValueError(f"two policies are named {policy.name!r}")
            by_name[policy.name] = policy
        self._policies = by_name

    @property
    def policies(self) -> list[KpiPolicy]:
        return list(self._policies.values())

    def policy(self, name: str) -> KpiPolicy | None:
        return self._policies.get(name)

    # --- events -------------------------------------------------------------------
    async def onset(
        self, state: VnfLoop, violation: Violation, action_targets: Sequence[Target], now: float
    ) -> Effects:
        """A condition (or alert) of a policy started to hold on the VNF or under it.

        ``action_targets`` are what the policy's action acts on for this
        violation on this VNF (the VNF, the VNFC, the VNFCs on the host).
        """
        t = Turn(state, now)
        caused_by = getattr(violation, "caused_by", None)
        opened = OpenCondition(
            violation_id=violation.id,
            policy=violation.policy,
            condition=violation.condition,
            target=violation.target,
            since=violation.started_at,
            value=violation.evidence.value,
            description=violation.evidence.description,
            caused_by=caused_by if isinstance(caused_by, str) and caused_by else None,
            request_id=violation.request_id,
            action_targets=list(action_targets),
            violation=to_builtins(violation),
        )
        state.conditions[opened.key] = opened
        policy = self._policies.get(violation.policy)
        if policy is None:
            log.warning(
                "violation %s names unknown policy %r; recorded, not acted on [request %s]",
                violation.id,
                violation.policy,
                violation.request_id,
            )
            return t.fx
        await self._trigger_changed(t, policy, violation.target, opened)
        return t.fx

    async def abated(self, state: VnfLoop, violation: Violation, now: float) -> Effects:
        """A condition stopped holding: episodes whose trigger released end (or end with
        their operation)."""
        t = Turn(state, now)
        key = next((k for k, c in state.conditions.items() if c.violation_id == violation.id), None)
        if key is None:
            return t.fx
        closed = state.conditions.pop(key)
        policy = self._policies.get(closed.policy)
        if policy is not None:
            await self._trigger_changed(t, policy, closed.target, None)
        return t.fx

    async def result(self, state: VnfLoop, result: OpResult, now: float) -> Effects:
        """The operation of one of the VNF's decisions ended."""
        t = Turn(state, now)
        if state.inflight == result.decision_id:
            state.inflight = None
            changed = result.state is OpState.COMPLETED
            _wake_queued(state, now + self._decider.settle_s if changed else now)
        await self._facts.release_slot(result.decision_id)
        found = find_step(state, result.decision_id)
        if found is None:
            return t.fx
        episode, step = found
        if step.op_state == result.state.value and step.outcome is not None:
            return t.fx  # a result delivered twice
        _record_result(step, result, now)
        t.fx.touch(episode)
        policy = self._policies.get(episode.policy)
        completed = step.outcome is Outcome.COMPLETED
        if completed and step.action != Action.NOTIFY.value:
            state.completions[_cooldown_key(episode, step)] = step.finished_at or now
        if episode.phase is not Phase.RUNNING or episode.current is not step:
            return t.fx  # a notification, or a step the episode has moved past
        await self._ended(t, policy, episode, step)
        key = episode_key(episode.policy, episode.target)
        if policy is not None and key not in state.episodes:
            # The episode's trigger released while it ran, and it is gone: a
            # violation that opened meanwhile (the condition fired again) was
            # kept from opening one while it ran, and opens one now.
            await self._trigger_changed(t, policy, episode.trigger_target, None)
        return t.fx

    def scaled_by_ns(self, state: VnfLoop, aspect: str, ended_at: float, now: float) -> Effects:
        """An NS scale that ended at ``ended_at`` stepped the VNF's ``aspect``: as after a
        scale of its own, its KPIs settle and its scaling of that aspect cools down."""
        key = scale_cooldown_key(Action.SCALE_OUT, aspect)
        state.completions[key] = max(state.completions.get(key, ended_at), ended_at)
        _wake_queued(state, max(now, ended_at + self._decider.settle_s))
        return Effects()

    async def _ended(
        self, t: Turn, policy: KpiPolicy | None, episode: Episode, step: StepRecord
    ) -> None:
        """Move the episode on from its running step's result."""
        completed = step.outcome is Outcome.COMPLETED
        if policy is None:
            self._close(t, episode, "failed", "its policy is no longer loaded")
        elif completed:
            await self._completed(t, policy, episode, step)
        elif episode.released_at is not None:
            self._close(t, episode, "abated", "the violation abated while the action failed")
            drop_if_released(t.state, episode)
        elif (
            step.outcome is Outcome.FAILED and episode.attempt < self._step(policy, episode).retries
        ):
            episode.attempt += 1
            await self._decide(t, policy, episode)
        else:
            which = "timeout" if step.outcome is Outcome.TIMEOUT else "failure"
            await self._branch(t, policy, episode, which)

    async def tick(self, state: VnfLoop, now: float) -> Effects:
        """Take every step that is due: re-checks, approvals, verifications, timeouts."""
        t = Turn(state, now)
        for episode in list(state.episodes.values()):
            # An answer to an approval wakes the VNF before the episode is due.
            waiting = episode.phase is Phase.APPROVAL
            if not waiting and (episode.due_at() or now + 1) > now:
                continue
            policy = self._policies.get(episode.policy)
            if policy is None:
                self._close(t, episode, "denied", "its policy is no longer loaded")
            elif episode.deadline is not None and now >= episode.deadline:
                limit = format_duration(policy.spec.timeout or 0)
                self._close(t, episode, "not_recovered", f"gave up after the timeout {limit}")
            else:
                await self._due(t, policy, episode)
        return t.fx

    # --- triggers -----------------------------------------------------------------
    async def _trigger_changed(
        self, t: Turn, policy: KpiPolicy, where: Target, opened: OpenCondition | None
    ) -> None:
        holding = self._holds(t.state, policy, where)
        for episode in list(t.state.episodes.values()):
            same = episode.policy == policy.name and episode.trigger_target.key() == where.key()
            if same and not holding:
                await self._release(t, policy, episode)
        if not holding or await self._facts.mode(policy) == "disabled":
            return
        sources = [opened] if opened is not None else self._open_here(t.state, policy, where)[:1]
        for source in sources:
            if source.caused_by:
                continue  # explained by another violation, which is acted on instead
            for target in source.action_targets:
                key = episode_key(policy.name, target)
                if key in t.state.episodes:
                    continue  # open, or ended while its trigger still holds
                episode = await self._open(t, policy, source, target)
                t.state.episodes[key] = episode
                await self._decide(t, policy, episode)

    def _open_here(self, state: VnfLoop, policy: KpiPolicy, where: Target) -> list[OpenCondition]:
        return [
            c
            for c in state.conditions.values()
            if c.policy == policy.name and c.target.key() == where.key() and not c.caused_by
        ]

    def _holds(self, state: VnfLoop, policy: KpiPolicy, where: Target) -> bool:
        names = {c.condition for c in self._open_here(state, policy, where)}
        trigger = policy.spec.trigger
        if trigger is None or isinstance(trigger, AlertTrigger):
            return bool(names)
        return holds(trigger, names)

    async def _open(
        self, t: Turn, policy: KpiPolicy, source: OpenCondition, target: Target
    ) -> Episode:
        first = policy.spec.chain()[0]
        vnf = await self._facts.vnf(t.state.vnf)
        return Episode(
            id=episode_id(policy.name, target, source.violation_id),
            policy=policy.name,
            target=target,
            trigger_target=source.target,
            opened_at=t.now,
            opened_by=source.violation_id,
            request_id=source.request_id,
            evidence=source.description,
            violation=source.violation,
            value=source.value,
            count_at_open=None if vnf is None else await self._scaled_count(vnf, first),
            step=first.id,
            action=first.action.type,
            rung=first_rung(first.action),
            deadline=None if policy.spec.timeout is None else t.now + policy.spec.timeout,
        )

    async def _scaled_count(self, vnf: VnfInstance, step: Step) -> int | None:
        aspect_id = getattr(step.action, "aspect", None)
        vnfd = None if aspect_id is None else await self._facts.vnfd_of(vnf)
        if vnfd is None or aspect_id is None:
            return None
        try:
            return len(vnf.vnfcs_of(aspect_vdu(vnfd.aspect(aspect_id))[0]))
        except KeyError:
            return None

    async def _release(self, t: Turn, policy: KpiPolicy, episode: Episode) -> None:
        """The episode's trigger stopped holding."""
        t.fx.touch(episode)
        episode.released_at = t.now
        if episode.phase is Phase.CLOSED:
            t.state.episodes.pop(episode_key(episode.policy, episode.target), None)
            return
        if episode.phase is Phase.RUNNING:
            return  # it ends with its operation
        step = episode.current
        if episode.phase in (Phase.QUEUED, Phase.APPROVAL) and step is not None:
            step.outcome = Outcome.WITHDRAWN
        if episode.phase is Phase.DRY_RUN:
            result, why = "dry_run", "the violation abated; the policy runs dry"
        elif acted(episode):
            result, why = "recovered", "the violation abated after the action"
        else:
            result, why = "abated", "the violation abated with no action taken"
        if step is not None and episode.phase is Phase.VERIFYING:
            step.verification = "recovered"
        notifying = policy.spec.action is not None and policy.spec.action.type == "notify"
        self._close(t, episode, result, why)
        drop_if_released(t.state, episode)
        if notifying:
            self._notify(t, policy, episode, "resolved")

    # --- deciding -------------------------------------------------------------------
    async def _due(self, t: Turn, policy: KpiPolicy, episode: Episode) -> None:
        t.fx.touch(episode)
        step = episode.current
        if episode.phase in (Phase.DECIDING, Phase.QUEUED):
            await self._decide(t, policy, episode)
        elif episode.phase is Phase.APPROVAL:
            await self._approval_due(t, policy, episode)
        elif episode.phase is Phase.RUNNING and step is not None:
            step.outcome = Outcome.TIMEOUT
            step.op_error = (
                f"no result within {format_duration(step.timeout_s or 0)} "
                f"(+{format_duration(self.grace_s)} grace)"
            )
            if t.state.inflight == step.decision_id:
                t.state.inflight = None
            await self._facts.release_slot(step.decision_id)
            await self._branch(t, policy, episode, "timeout")
        elif episode.phase is Phase.VERIFYING:
            if step is not None:
                step.verification = "unrecovered"
            await self._branch(t, policy, episode, "unrecovered")
        else:
            episode.next_at = None

    async def _approval_due(self, t: Turn, policy: KpiPolicy, episode: Episode) -> None:
        step = episode.current
        assert step is not None
        answered = await self._facts.approval(step.decision_id)
        approval = policy.spec.effective_approval
        expires = step.decided_at + approval.timeout
        if answered is None and t.now >= expires:
            waited = format_duration(approval.timeout)
            answered = approval.default, f"default: nobody answered within {waited}"
        if answered is None:
            episode.next_at = min(t.now + self._decider.requeue_s, expires)
            return
        answer, by = answered
        step.approved_by = by
        if answer == "reject":
            step.verdict, step.outcome = Verdict.REJECTED, Outcome.REJECTED
            step.reason += f" (rejected by {by})"
            t.fx.decisions.append(decision_of(policy, episode, step))
            self._close(t, episode, "denied", f"the decision was rejected by {by}")
            return
        await self._decide(t, policy, episode)

    async def _decide(self, t: Turn, policy: KpiPolicy, episode: Episode) -> None:
        """Decide the episode's current step now, and act on the verdict."""
        t.fx.touch(episode)
        episode.phase = Phase.DECIDING
        conf = self._step(policy, episode)
        mode = await self._facts.mode(policy)
        if mode == "disabled":
            self._close(t, episode, "denied", "the policy is disabled")
            return
        was = _pending_verdict(episode)
        record, plan, verdicts = await self._decider.decide(t, policy, episode, conf, mode)
        if verdicts.final is not None:
            record.verdict, record.outcome = Verdict.DENIED, Outcome.DENIED
            t.fx.decisions.append(decision_of(policy, episode, record))
            await self._branch(t, policy, episode, "denied")
            return
        if verdicts.waiting:
            record.verdict = Verdict.QUEUED
            if was is not Verdict.QUEUED:
                t.fx.decisions.append(decision_of(policy, episode, record))
            episode.phase = Phase.QUEUED
            episode.next_at = self._decider.next_check(verdicts, t.now)
            return
        if mode == "dry_run":
            record.verdict, record.outcome = Verdict.DRY_RUN, Outcome.DRY_RUN
            t.fx.decisions.append(decision_of(policy, episode, record))
            episode.phase, episode.next_at = Phase.DRY_RUN, None
            return
        if mode == "approve" and record.approved_by is None:
            record.verdict = Verdict.AWAITING_APPROVAL
            t.fx.decisions.append(decision_of(policy, episode, record))
            episode.phase = Phase.APPROVAL
            approval = policy.spec.effective_approval
            episode.next_at = t.now + min(self._decider.requeue_s, approval.timeout)
            return
        record.verdict = Verdict.APPROVED
        record.decided_at = t.now
        if plan.action is Action.NOTIFY:
            message = str(plan.parameters.get("message", ""))
            record.parameters = notify_parameters(policy, episode, "firing", t.now, message)
        else:
            t.state.inflight = record.decision_id
            remember_action(t, episode_key(policy.name, episode.target))
        t.fx.decisions.append(decision_of(policy, episode, record))
        episode.phase = Phase.RUNNING
        limit = record.timeout_s
        episode.next_at = None if limit is None else t.now + limit + self.grace_s


def _record_result(step: StepRecord, result: OpResult, now: float) -> None:
    step.op_id = result.op_id
    step.op_state = result.state.value
    step.op_error = result.error
    step.started_at = result.started_at
    step.finished_at = result.finished_at or now
    if result.state is OpState.COMPLETED:
        step.outcome = Outcome.COMPLETED
        return
    error = (result.error or "").lower()
    timed_out = "timed out" in error or "timeout" in error
    step.outcome = Outcome.TIMEOUT if timed_out else Outcome.FAILED


def _cooldown_key(episode: Episode, step: StepRecord) -> str:
    aspect = step.parameters.get("aspect")
    if step.action in SCALE_COOLDOWNS and aspect:
        return scale_cooldown_key(Action(step.action), str(aspect))
    return f"{episode.policy}|{episode.target.key()}"


def _pending_verdict(episode: Episode) -> Verdict | None:
    step = episode.current
    return None if step is None or step.outcome is not None else step.verdict


def _wake_queued(state: VnfLoop, at: float) -> None:
    """Re-check the VNF's queued decisions at ``at`` (the decision in flight ended)."""
    for episode in state.episodes.values():
        if episode.phase is Phase.QUEUED:
            episode.next_at = at
