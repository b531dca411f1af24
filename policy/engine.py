"""The policy engine: turns violations into decisions, guarded, and publishes every one.

It consumes ``violations`` with a consumer group, so several policy workers
share the work. For each ONSET it finds the violation's policy, resolves
what to act on (:mod:`policy.targets`), checks the guards
(:mod:`policy.guards`) and publishes the decisions, approved and denied, to
``decisions``. ABATED events need no action: a policy acts once per episode.
An ONSET handled after its violation already abated (read from a backlog) is
denied by the ``active`` guard, so a condition that cleared is not acted on.

A decision's id is derived from the violation id, the action and the
target, so a violation delivered twice yields the same decision ids and the
actuator (idempotent by decision id) acts once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from bus.clock import Clock
from bus.contracts import (
    Action,
    Decision,
    GuardResult,
    Message,
    Target,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.streams import ConsumerSettings, StreamConsumer, StreamPublisher, consumer_name
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from policy.guards import Cooldowns, active_guard
from policy.schema import KpiPolicy
from policy.targets import Plan, TargetResolver

log = logging.getLogger(__name__)

_DECISION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "nfv-assure:policy:decision")


def decision_id(violation_id: str, action: Action, target: Target) -> str:
    """The deterministic id of the decision to ``action`` ``target`` for a violation."""
    return str(uuid.uuid5(_DECISION_NAMESPACE, f"{violation_id}|{action.value}|{target.key()}"))


class PolicyEngine:
    """Decides what to do about violations, per the loaded KPI policies.

    The decisions stream is trimmed to about ``maxlen`` entries on every write.
    """

    def __init__(  # noqa: PLR0917 -- the positional collaborators are the documented API
        self,
        redis: Any,
        keys: Keys,
        inventory: Inventory,
        catalogue: Catalogue,
        clock: Clock,
        policies: Sequence[KpiPolicy],
        *,
        group: str = "policy",
        consumer: str | None = None,
        settings: ConsumerSettings | None = None,
        maxlen: int = 100_000,
    ) -> None:
        self._policies: dict[str, KpiPolicy] = {}
        for policy in policies:
            if policy.name in self._policies:
                raise ValueError(f"two policies are named {policy.name!r}")
            self._policies[policy.name] = policy
        self._clock = clock
        self._resolver = TargetResolver(inventory, catalogue)
        self._redis = redis
        self._keys = keys
        self._cooldowns = Cooldowns(redis, keys)
        self._publisher = StreamPublisher(redis, keys.stream("decisions"), maxlen=maxlen)
        self.consumer = StreamConsumer(
            redis,
            keys.stream("violations"),
            group,
            consumer or consumer_name("policy"),
            self._on_message,
            settings=settings,
            dead_letter_key=keys.dead_letters("violations"),
        )

    @property
    def policies(self) -> list[KpiPolicy]:
        return list(self._policies.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Consume violations until ``stop`` is set."""
        await self.consumer.run(stop)

    async def _on_message(self, message: Message) -> None:
        if not isinstance(message, Violation):
            log.warning("ignoring a %s on the violations stream", type(message).__name__)
            return
        await self.handle(message)

    async def handle(self, violation: Violation) -> list[Decision]:
        """Decide about one violation, publish the decisions and return them.

        ABATED, violations of unknown policies and violations caused by
        another (``caused_by``: their host's) yield no decision; an ONSET of
        a violation that already abated yields denied ones.
        """
        if violation.status is not ViolationStatus.ONSET:
            return []
        if violation.caused_by is not None:
            # Explained by another violation (its host's): that one is acted on.
            log.info(
                "violation %s is caused by %s; no decision of its own [request %s]",
                violation.id,
                violation.caused_by,
                violation.request_id,
            )
            return []
        policy = self._policies.get(violation.policy)
        if policy is None:
            log.warning(
                "violation %s names unknown policy %r; no decision [request %s]",
                violation.id,
                violation.policy,
                violation.request_id,
            )
            return []
        active = await active_guard(self._redis, self._keys, violation.id)
        plans = await self._resolver.plans(policy, violation)
        decisions = [await self._decide(policy, violation, plan, active) for plan in plans]
        await self._publisher.publish_many(decisions)
        for decision in decisions:
            log.info(
                "decision %s: %s %s %s: %s [request %s]",
                decision.id,
                "approved" if decision.approved else "denied",
                decision.action.value,
                decision.target.key(),
                decision.reason,
                decision.request_id,
            )
        return decisions

    async def _decide(
        self, policy: KpiPolicy, violation: Violation, plan: Plan, active: GuardResult
    ) -> Decision:
        action = Action(policy.spec.action.type)
        did = decision_id(violation.id, action, plan.target)
        now = self._clock.now()
        guards = [active, *plan.guards]
        if plan.resolved:
            cooldown_s = policy.spec.guards.cooldown
            target = plan.target.key()
            if all(g.passed for g in guards):
                guards.append(
                    await self._cooldowns.claim(
                        policy.name,
                        target,
                        cooldown_s=cooldown_s,
                        now=now,
                        decision_id=did,
                        wall_s=self._clock.to_wall(cooldown_s),
                    )
                )
            else:
                # Denied anyway: report the cooldown but do not start it.
                guards.append(
                    await self._cooldowns.check(
                        policy.name, target, cooldown_s=cooldown_s, now=now, decision_id=did
                    )
                )
        approved = all(g.passed for g in guards)
        return Decision(
            id=did,
            violation_id=violation.id,
            policy=policy.name,
            action=action,
            target=plan.target,
            parameters=plan.parameters,
            guards=guards,
            approved=approved,
            reason=_reason(policy.name, violation, action, plan, guards),
            decided_at=now,
            request_id=violation.request_id,
        )


def _reason(
    policy: str, violation: Violation, action: Action, plan: Plan, guards: Sequence[GuardResult]
) -> str:
    """One sentence: the policy, why it fired, and what it does or what denied it."""
    why = violation.evidence.description or f"condition {violation.condition} holds"
    failed = [g for g in guards if not g.passed]
    if not failed:
        params = ", ".join(f"{k}={v}" for k, v in plan.parameters.items() if v is not None)
        what = f"{action.value} {plan.target.key()}" + (f" ({params})" if params else "")
        return f"{policy}: {why}: {what}"
    names = ", ".join(g.guard for g in failed)
    return f"{policy}: {why}: {action.value} denied by {names}: {failed[0].detail}"
