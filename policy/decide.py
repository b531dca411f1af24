"""Deciding one step of an episode: its plan, every guard in order, and the verdict.

The verdict is ``denied`` when a final guard fails, ``queued`` when a guard
that passes with time fails (the episode is re-checked at the guard's
``retry_at``), else by the policy's mode: ``dry_run``,
``awaiting_approval`` (mode ``approve``, until an operator answers) or
``approved``. A queued or awaiting decision keeps its id when it is decided
again, so the decision the actuator finally runs is the one first recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.contracts import Action
from bus.units import format_duration
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance
from mano_core.vnfd import Vnfd
from policy.facts import Facts, hosts_of
from policy.guards import (
    CAPACITY,
    MODE,
    OPT_OUT,
    STABILISATION,
    WHEN_FREED,
    Check,
    blast_radius_check,
    cooldown_check,
    coordination_check,
    deny,
    frequency_check,
    in_flight_check,
    ok,
    recommend,
    settle_check,
    stabilised_count,
    windows_check,
)
from policy.guards_ns import member_coordination_check, ns_coordination_check
from policy.plans import Plan, ScaleChange, cooldown_key, plan_step
from policy.plans_ns import plan_ns_step
from policy.records import Turn, reason
from policy.schema import KpiPolicy, Mode, ScaleNsAction, ScaleNsToLevelAction, Step
from policy.state import Episode, StepRecord, Verdict, episode_key, ns_of_loop, step_decision_id

KEEP_ACTIONS_S = 86_400.0
"""How long approved decisions are remembered for the frequency limits."""
KEEP_RECOMMENDATIONS_S = 3_600.0
"""How long scale recommendations are remembered for the stabilisation window."""
OPT_OUT_RECHECK_S = 30.0
"""How often a decision held back by an opt-out looks again."""


@dataclass
class Verdicts:
    """The checks of one decision, sorted by what they mean for it."""

    checks: list[Check]

    @property
    def final(self) -> Check | None:
        return next((c for c in self.checks if c.final), None)

    @property
    def waiting(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.retry_at is not None]


class Decider:
    """Plans a step and runs the guards on it."""

    def __init__(self, facts: Facts, *, requeue_s: float, settle_s: float = 0.0) -> None:
        self._facts = facts
        self.requeue_s = requeue_s
        self.settle_s = settle_s

    async def decide(
        self, t: Turn, policy: KpiPolicy, episode: Episode, conf: Step, mode: Mode
    ) -> tuple[StepRecord, Plan, Verdicts]:
        """The current step's decision record (new, or the pending one) with its checks."""
        pending = pending_step(episode)
        ns_id = ns_of_loop(t.state.vnf)
        vnf = ns = None
        if ns_id is None:
            vnf = await self._facts.vnf(t.state.vnf)
            vnfd = None if vnf is None else await self._facts.vnfd_of(vnf)
            plan = plan_step(policy, conf.action, episode, vnf, vnfd)
        else:
            ns, plan = await self._ns_plan(policy, conf, episode, ns_id)
        decision_id = (
            pending.decision_id if pending else step_decision_id(episode.id, len(episode.steps))
        )
        verdicts = Verdicts(list(plan.checks))
        if verdicts.final is None and plan.action is not Action.NOTIFY:
            if vnf is not None:
                verdicts.checks.extend(
                    await self._guards(t, policy, episode, plan, vnf=vnf, decision_id=decision_id)
                )
            elif ns is not None:
                verdicts.checks.extend(
                    await self._ns_guards(t, policy, episode, plan, ns=ns, decision_id=decision_id)
                )
        approved_by = pending.approved_by if pending else None
        runs = mode == "enforce" or approved_by is not None
        if verdicts.final is None and not verdicts.waiting and runs:
            verdicts.checks.append(await self._claim(plan, decision_id, t.now))
        record = pending or StepRecord(
            decision_id=decision_id,
            index=len(episode.steps),
            step=episode.step,
            attempt=episode.attempt,
            action=plan.action.value,
            target=plan.target,
            parameters=plan.parameters,
            guards=[],
            verdict=Verdict.QUEUED,
            reason="",
            decided_at=t.now,
            timeout_s=conf.timeout if conf.timeout is not None else plan.timeout_s,
        )
        if pending is None:
            episode.steps.append(record)
        record.action = plan.action.value
        record.target = plan.target
        record.timeout_s = conf.timeout if conf.timeout is not None else plan.timeout_s
        record.parameters = plan.parameters
        record.guards = [c.result for c in verdicts.checks]
        failed = [verdicts.final] if verdicts.final else verdicts.waiting
        record.reason = reason(policy, episode, plan, [c for c in failed if c is not None])
        if approved_by is not None:
            record.reason += f" (approved by {approved_by})"
        return record, plan, verdicts

    def next_check(self, verdicts: Verdicts, now: float) -> float:
        """When a queued decision is looked at again."""
        soonest = min(c.retry_at or now for c in verdicts.waiting)
        return now + self.requeue_s if soonest == WHEN_FREED else soonest

    async def _ns_plan(
        self, policy: KpiPolicy, conf: Step, episode: Episode, ns_id: str
    ) -> tuple[NsInstance | None, Plan]:
        """The plan of a step on an NS's record, with the NS (None: gone)."""
        action = conf.action
        key = cooldown_key(policy, action, episode.target)
        if not isinstance(action, ScaleNsAction | ScaleNsToLevelAction):
            return None, plan_step(policy, action, episode, None, None)  # notify, or refused
        ns = await self._facts.ns(ns_id)
        nsd = None if ns is None else await self._facts.nsd_of(ns)
        members: dict[str, tuple[VnfInstance, Vnfd | None]] = {}
        for vnf_id in [] if ns is None else ns.vnf_ids():
            vnf = await self._facts.vnf(vnf_id)
            if vnf is not None:
                members[vnf_id] = (vnf, await self._facts.vnfd_of(vnf))
        return ns, plan_ns_step(action, ns, nsd, members, ns_id=ns_id, key=key)

    async def _ns_guards(
        self,
        t: Turn,
        policy: KpiPolicy,
        episode: Episode,
        plan: Plan,
        *,
        ns: NsInstance,
        decision_id: str,
    ) -> list[Check]:
        """The guards of an NS decision, in the order of a VNF's (no blast radius, no
        stabilisation: they count VNFCs of one VNF)."""
        guards = policy.spec.guards
        state, now = t.state, t.now
        checks: list[Check] = []
        for vnf_id in ns.vnf_ids():
            why = await self._facts.opted_out(vnf_id, [])
            if why:
                checks.append(deny(OPT_OUT, f"member {why}", now + OPT_OUT_RECHECK_S))
                break
        else:
            checks.append(ok(OPT_OUT, f"automation is on for the members of NS {ns.name}"))
        windows = windows_check(guards, now)
        if windows is not None:
            checks.append(windows)
        checks.append(await ns_coordination_check(self._facts, state, episode, plan, ns))
        checks.extend(self._timing(t, policy, episode, plan, decision_id))
        return await self._with_capacity(policy, checks, plan)

    def _timing(
        self, t: Turn, policy: KpiPolicy, episode: Episode, plan: Plan, decision_id: str
    ) -> list[Check]:
        """In flight, settle, stabilisation (a VNF's scale-in), cooldown, frequency."""
        guards = policy.spec.guards
        state, now = t.state, t.now
        checks = [in_flight_check(state, decision_id)]
        settle = settle_check(state, self.settle_s, now)
        if settle is not None:
            checks.append(settle)
        if plan.scale is not None:
            checks.extend(self._stabilise(t, policy, plan))
        checks.append(cooldown_check(state, plan.cooldown_key, guards.cooldown, now))
        if guards.frequency is not None:
            key = episode_key(policy.name, episode.target)
            checks.append(frequency_check(state, key, guards.frequency, now))
        return checks

    async def _with_capacity(
        self, policy: KpiPolicy, checks: list[Check], plan: Plan
    ) -> list[Check]:
        """The capacity pre-check of a scale-out, only when every other guard passed."""
        if not (policy.spec.guards.capacity and plan.capacity and all(c.passed for c in checks)):
            return checks
        granted = []
        for ask in plan.capacity:
            result = await self._facts.capacity(ask.vnf, ask.vnfd, ask.vdu, ask.count)
            if not result.passed:
                return [*checks, deny(CAPACITY, result.detail)]
            granted.append(result)
        if len(granted) == 1:
            return [*checks, Check(granted[0])]
        details = "; ".join(
            f"VNF {a.vnf.name}: {r.detail}" for a, r in zip(plan.capacity, granted, strict=True)
        )
        return [*checks, ok(CAPACITY, details)]

    async def _guards(
        self,
        t: Turn,
        policy: KpiPolicy,
        episode: Episode,
        plan: Plan,
        *,
        vnf: VnfInstance,
        decision_id: str,
    ) -> list[Check]:
        """Every guard, in order; the capacity pre-check only when all others passed."""
        guards = policy.spec.guards
        state, now = t.state, t.now
        hosts = hosts_of(vnf) if plan.host is None else [plan.host]
        why = await self._facts.opted_out(vnf.id, hosts)
        checks = [
            deny(OPT_OUT, why, now + OPT_OUT_RECHECK_S)
            if why
            else ok(OPT_OUT, "automation is on for the VNF and its hosts")
        ]
        radius = guards.blast_radius
        onsets = share = None
        if radius is not None and radius.onsets is not None:
            onsets = await self._facts.onsets_since(now - radius.onsets.per)
        if radius is not None and radius.hosts is not None:
            share = await self._facts.failing_host_share()
        breaker = blast_radius_check(guards, state, vnf, onsets, share)
        windows = windows_check(guards, now)
        checks.extend(c for c in (breaker, windows) if c is not None)
        coordination = coordination_check(state, episode, plan.action.value, vnf)
        if coordination.passed:
            coordination = await member_coordination_check(self._facts, vnf) or coordination
        checks.append(coordination)
        checks.extend(self._timing(t, policy, episode, plan, decision_id))
        return await self._with_capacity(policy, checks, plan)

    def _stabilise(self, t: Turn, policy: KpiPolicy, plan: Plan) -> list[Check]:
        """Scale-in no lower than the highest count recommended within the window."""
        change = plan.scale
        assert change is not None
        window = policy.spec.guards.stabilisation
        recommend(t.state, change.aspect, change.desired, t.now, KEEP_RECOMMENDATIONS_S)
        if change.direction == "out" or window is None:
            return []
        floor, until = stabilised_count(t.state, change.aspect, change.desired, window, t.now)
        span = format_duration(window)
        if floor <= change.desired:
            return [ok(STABILISATION, f"no higher recommendation within {span}")]
        steps = (change.count - floor) // change.per_step
        if steps < 1:
            return [
                deny(
                    STABILISATION,
                    f"{floor} VNFCs were recommended within {span}; no scale-in below that yet",
                    until,
                )
            ]
        plan.scale = ScaleChange(
            change.aspect, change.vdu, "in", steps, change.count, change.per_step
        )
        plan.parameters = {**plan.parameters, "steps": steps}
        return [ok(STABILISATION, f"{floor} VNFCs were recommended within {span}")]

    async def _claim(self, plan: Plan, decision_id: str, now: float) -> Check:
        if plan.action is Action.NOTIFY:
            return ok(MODE, "a notification takes no operation slot")
        result = await self._facts.claim_slot(decision_id, plan.host, now)
        return Check(result, None if result.passed else WHEN_FREED)


def pending_step(episode: Episode) -> StepRecord | None:
    """The current step's decision when it waits (queued, approval) to be decided again."""
    step = episode.current
    if (
        step is not None
        and step.outcome is None
        and step.verdict in (Verdict.QUEUED, Verdict.AWAITING_APPROVAL)
        and step.step == episode.step
        and step.attempt == episode.attempt
    ):
        return step
    return None


def remember_action(t: Turn, key: str) -> None:
    """Count an approved decision for the frequency limits (and forget old ones)."""
    t.state.actions = [(k, at) for k, at in t.state.actions if t.now - at < KEEP_ACTIONS_S]
    t.state.actions.append((key, t.now))
